//! A running `luapool serve` for the end-to-end tests: started on a free port, its
//! address read from the `listening on ...` line it prints, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `luapool serve` and the address it printed.
pub(crate) struct Serve {
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

impl Serve {
    /// A `luapool serve --listen 127.0.0.1:0` command, for the caller to add its flags,
    /// environment and standard error to.
    pub(crate) fn command() -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_luapool"));
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        command
    }

    /// Spawns `command` (from [`Serve::command`]) and waits for its address.
    pub(crate) fn spawn(mut command: Command) -> Serve {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Keep draining standard output so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Serve { child, base }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
