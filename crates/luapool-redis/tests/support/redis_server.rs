//! A `redis-server` of the test's own on a free loopback port, killed on drop. Shared by
//! the tests of `luapool-redis` and the workspace's `tests/redis.rs` (with `#[path]`).
//!
//! When `redis-server` is missing it is installed (Debian's `redis-server` package, as
//! root), once: concurrent test binaries serialize on a file lock (`flock`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

/// Installs `redis-server` if it is not on the path.
fn ensure_installed() {
    let present = || {
        Command::new("sh")
            .args(["-c", "command -v redis-server"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root,
        "redis-server is not installed and these tests are not running as root: \
         install the Debian package redis-server (bench/install-redis.sh) and run them again"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("bench/install-redis.sh"))
        .find(|p| p.is_file());
    let install = match script {
        Some(script) => format!(
            "command -v redis-server >/dev/null || bash {}",
            script.display()
        ),
        None => "command -v redis-server >/dev/null || (apt-get update -q && \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                 redis-server redis-tools)"
            .to_string(),
    };
    // One install at a time across test processes; the others wait, then find it there.
    let status = Command::new("flock")
        .args(["/tmp/luapool-redis-install.lock", "sh", "-c", &install])
        .stdout(Stdio::null())
        .status()
        .expect("cannot run flock to install redis-server");
    assert!(status.success(), "installing redis-server failed");
    assert!(present(), "redis-server is still missing after the install");
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        ensure_installed();
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer { child: None, port };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start (5 tries)");
    }

    /// The URL of database 0.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the process on `self.port`; false if it exited (the port was taken).
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "local",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut() {
                if child.try_wait().unwrap().is_some() {
                    self.child = None;
                    return false;
                }
            }
            if self.command(&["PING"]).is_ok_and(|r| r == "+PONG\r\n") {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server never answered PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing is saved).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
        }
    }

    /// Sends one command in RESP on a new connection and returns the raw reply (what
    /// one read returns: enough for short replies).
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut buf = vec![0; 64 * 1024];
        let n = stream.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
