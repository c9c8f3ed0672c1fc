//! End-to-end tests of `luapool serve`: the real binary on 127.0.0.1, a real client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `luapool serve` and the address it printed.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_luapool"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--workers", "1"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Serve { child, base }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::blocking::get(format!("{}{}", self.base, path)).unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (up to 20 s) and returns its exit code.
    fn wait(mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "luapool serve did not exit");
            std::thread::yield_now();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn app_dir(source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.lua"), source).unwrap();
    dir
}

fn app(dir: &tempfile::TempDir) -> String {
    dir.path().join("app.lua").display().to_string()
}

#[test]
fn serves_the_example_app_and_stops_on_sigterm() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello/app.lua");
    let serve = Serve::start(&[example.to_str().unwrap()]);
    assert_eq!(serve.get("/"), (200, "Hello, World!".to_string()));
    let (status, body) = serve.get("/hits");
    assert_eq!(status, 200);
    assert!(body.contains("\"worker_hits\":1"), "{body}");
    assert!(body.contains("\"last_path\":null"), "{body}");
    assert_eq!(serve.get("/nope").0, 404);
    serve.signal("TERM");
    assert_eq!(serve.wait(), Some(0));
}

#[test]
fn sighup_reloads_the_app() {
    let dir = app_dir("function handle() return 'v1' end");
    let serve = Serve::start(&[&app(&dir)]);
    assert_eq!(serve.get("/").1, "v1");
    std::fs::write(
        dir.path().join("app.lua"),
        "function handle() return 'v2' end",
    )
    .unwrap();
    serve.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while serve.get("/").1 != "v2" {
        assert!(Instant::now() < deadline, "the reload never took effect");
        std::thread::yield_now();
    }
    serve.signal("INT");
    assert_eq!(serve.wait(), Some(0));
}

#[test]
fn flags_win_over_the_config_file() {
    let dir = app_dir("function handle(req) return #req.body .. '' end");
    std::fs::write(
        dir.path().join("luapool.toml"),
        "max_body_size = 10\nrequest_timeout = \"5s\"\n",
    )
    .unwrap();
    let serve = Serve::start(&[&app(&dir)]);
    let client = reqwest::blocking::Client::new();
    let post = |n: usize| {
        client
            .post(format!("{}/", serve.base))
            .body(vec![b'x'; n])
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!((post(10), post(11)), (200, 413));
    drop(serve);
    let serve = Serve::start(&["--max-body-size", "20", &app(&dir)]);
    let r = client
        .post(format!("{}/", serve.base))
        .body(vec![b'x'; 20])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Runs `luapool serve ARGS` expecting a startup failure: exit 1 and one line.
fn fails_to_start(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_luapool"))
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("luapool: "), "{stderr}");
    stderr
}

#[test]
fn startup_errors_are_one_line_and_exit_1() {
    let bad = app_dir("function handle(req)\n  return = 1\nend");
    assert!(fails_to_start(&["--listen", "127.0.0.1:0", &app(&bad)]).contains("app.lua:2:"));
    let no_handle = app_dir("x = 1");
    assert!(fails_to_start(&["--listen", "127.0.0.1:0", &app(&no_handle)]).contains("handle"));
    let ok = app_dir("function handle() return 'x' end");
    std::fs::write(ok.path().join("bad.toml"), "workers = \"many\"").unwrap();
    let config = ok.path().join("bad.toml").display().to_string();
    assert!(fails_to_start(&["--config", &config, &app(&ok)]).contains("bad.toml"));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    assert!(fails_to_start(&["--listen", &addr, &app(&ok)]).contains("cannot listen"));
    assert!(
        fails_to_start(&["--listen", "127.0.0.1:0", "/no/such/app.lua"])
            .contains("/no/such/app.lua")
    );
}
