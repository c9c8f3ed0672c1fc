//! End-to-end tests of `luapool serve`: the real binary on 127.0.0.1, a real client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/serve.rs"]
mod support;

use support::Serve;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut command = Serve::command();
        command
            .args(["--workers", "1"])
            .args(args)
            .env("RUST_LOG", "warn,luapool::access=info")
            .stderr(Stdio::piped());
        Serve::spawn(command)
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

    /// Stops the server with SIGTERM and returns what it wrote on standard error.
    fn stop_and_read_stderr(mut self) -> String {
        self.signal("TERM");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut text).unwrap();
        text
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

/// The app docs/handlers.md builds, step by step, each step checked.
#[test]
fn the_guides_notes_app_works_step_by_step() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/notes/app.lua");
    let serve = Serve::start(&[example.to_str().unwrap()]);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{}", serve.base, path);
    // 1: a plain reply; 7: the middleware's header.
    let r = client.get(url("/")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.text().unwrap(), "Hello from the notes app");
    // 3: no session yet, then a login form that sets the session cookie.
    assert_eq!(
        client
            .post(url("/notes"))
            .body("{}")
            .send()
            .unwrap()
            .status(),
        401
    );
    let r = client
        .post(url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=ada")
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let sid = cookie.split(';').next().unwrap().to_string();
    // 2 and 4: the JSON API over the shared dictionary.
    let post = |body: &str| {
        client
            .post(url("/notes"))
            .header("cookie", &sid)
            .body(body.to_string())
            .send()
            .unwrap()
    };
    let r = post(r#"{"text":"milk, eggs"}"#);
    assert_eq!(r.status(), 201);
    assert_eq!(r.text().unwrap(), r#"{"id":1}"#);
    assert_eq!(post("not json").status(), 400);
    let note = client.get(url("/notes/1")).send().unwrap().text().unwrap();
    assert!(note.contains(r#""user":"ada""#), "{note}");
    assert_eq!(client.get(url("/notes/9")).send().unwrap().status(), 404);
    // 5: the streamed export.
    let csv = client
        .get(url("/export.csv"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(csv, "id,user,text\n1,ada,\"milk, eggs\"\n");
    // Static files from luapool.toml's [static].
    let css = client.get(url("/assets/style.css")).send().unwrap();
    assert_eq!(css.headers()["content-type"], "text/css");
    // 6: init_worker's timer; 8: an error is a 500.
    assert_eq!(client.get(url("/boom")).send().unwrap().status(), 500);
    let stats = client.get(url("/stats")).send().unwrap().text().unwrap();
    assert!(stats.contains(r#""timers":1"#), "{stats}");
    let log = serve.stop_and_read_stderr();
    assert!(log.contains("app.lua:89: something broke"), "{log}");
}

#[test]
fn the_static_flag_mounts_a_directory() {
    let dir = app_dir("function handle() return 'handler' end");
    std::fs::create_dir(dir.path().join("pub")).unwrap();
    std::fs::write(dir.path().join("pub/a.txt"), "from disk").unwrap();
    let serve = Serve::start(&["--static", "/files=pub", &app(&dir)]);
    assert_eq!(serve.get("/files/a.txt"), (200, "from disk".to_string()));
    assert_eq!(serve.get("/other"), (200, "handler".to_string()));
    let bad = Command::new(env!("CARGO_BIN_EXE_luapool"))
        .args(["serve", "--static", "files", &app(&dir)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("is not PREFIX=DIR"), "{stderr}");
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

#[test]
fn vm_flags_win_over_the_config_file() {
    let dir =
        app_dir("function handle(req) if req.path == '/slow' then sleep(2) end return 'ok' end");
    std::fs::write(
        dir.path().join("luapool.toml"),
        "request_timeout = \"5s\"\n",
    )
    .unwrap();
    let serve = Serve::start(&["--request-timeout", "0.2", &app(&dir)]);
    let status = |path: &str| {
        reqwest::blocking::get(format!("{}{path}", serve.base))
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!((status("/"), status("/slow")), (200, 504));
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

#[test]
fn watch_reloads_on_file_change() {
    let dir = app_dir("function handle() return 'v1' end");
    let serve = Serve::start(&["--watch", &app(&dir)]);
    assert_eq!(serve.get("/").1, "v1");
    // A module change counts too; the app's new version requires it.
    std::fs::write(dir.path().join("m.lua"), "return 'v2'").unwrap();
    std::fs::write(
        dir.path().join("app.lua"),
        "local v = require('m') function handle() return v end",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while serve.get("/").1 != "v2" {
        assert!(Instant::now() < deadline, "--watch never reloaded");
        std::thread::yield_now();
    }
}

#[test]
fn access_log_lines_name_each_request() {
    let dir = app_dir("function handle() return 'x' end");
    let serve = Serve::start(&["--access-log", &app(&dir)]);
    assert_eq!(serve.get("/some/path?q=1").0, 200);
    let stderr = serve.stop_and_read_stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("luapool::access"))
        .unwrap_or_else(|| panic!("no access log line in:\n{stderr}"));
    for needle in ["method=GET", "uri=/some/path?q=1", "status=200", "id="] {
        assert!(line.contains(needle), "{needle}: {line}");
    }
}

/// Sends the headers of a POST with a 10-byte body and no body: the status line the
/// server answers, and how long it took.
fn stalled_body(serve: &Serve) -> (String, Duration) {
    use std::io::{Read, Write};
    let addr = serve.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    s.write_all(b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let first = text.lines().next().unwrap_or("").to_string();
    (first, started.elapsed())
}

#[test]
fn body_read_timeout_comes_from_the_file_or_the_flag() {
    let dir = app_dir("function handle(req) return 'x' end");
    std::fs::write(
        dir.path().join("luapool.toml"),
        "body_read_timeout = \"200ms\"\n",
    )
    .unwrap();
    let serve = Serve::start(&[&app(&dir)]);
    let (status, took) = stalled_body(&serve);
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    drop(serve);
    std::fs::write(
        dir.path().join("luapool.toml"),
        "body_read_timeout = \"1h\"\n",
    )
    .unwrap();
    let serve = Serve::start(&["--body-read-timeout", "0.2", &app(&dir)]);
    let (status, took) = stalled_body(&serve);
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn the_request_id_is_in_log_lines_and_outgoing_requests() {
    let dir = app_dir(
        r#"function handle(req)
  if req.path == "/b" then return req.headers["x-request-id"] or "none" end
  log.warn("in a")
  local res, err = http.request("http://" .. req.headers.host .. "/b")
  if not res then error(err) end
  return res.body
end"#,
    );
    let serve = Serve::start(&[&app(&dir)]);
    let (status, id) = serve.get("/a");
    assert_eq!(status, 200, "{id}");
    assert_ne!(id, "none");
    let stderr = serve.stop_and_read_stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("in a"))
        .unwrap_or_else(|| panic!("no script log line in:\n{stderr}"));
    assert!(line.contains(&format!("id={id}")), "{id}: {line}");
}

#[test]
fn a_second_stop_signal_exits_without_draining() {
    let dir = app_dir(
        r#"function handle(req)
  if req.path == "/started" then return tostring(shared.s:get("started")) end
  shared.s:set("started", true)
  sleep(60)
  return "late"
end"#,
    );
    let serve = Serve::start(&["--shared-dict", "s=10", &app(&dir)]);
    let slow = format!("{}/slow", serve.base);
    std::thread::spawn(move || reqwest::blocking::get(slow));
    // The slow request is in its handler once the flag is set.
    while serve.get("/started").1 != "true" {
        std::thread::yield_now();
    }
    // The first signal starts a graceful drain (30 s by default, longer than `wait`
    // waits); the second one exits at once.
    serve.signal("INT");
    // Two signals sent back to back could arrive as one: send the second once the server
    // has acted on the first (it no longer accepts connections).
    let probe = format!("{}/started", serve.base);
    while reqwest::blocking::get(&probe).is_ok() {
        std::thread::yield_now();
    }
    serve.signal("INT");
    assert_eq!(serve.wait(), Some(130));
}

/// A self-signed certificate for `localhost` written to `dir` as `cert.pem` and
/// `key.pem`; its PEM.
fn write_self_signed(dir: &Path) -> String {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
    ck.cert.pem()
}

/// GET `https://localhost:PORT/` trusting only `cert_pem`: the body, or the error.
fn https_get(serve: &Serve, cert_pem: &str) -> Result<String, reqwest::Error> {
    let addr: std::net::SocketAddr = serve
        .base
        .strip_prefix("https://")
        .unwrap()
        .parse()
        .unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    client
        .get(format!("https://localhost:{}/", addr.port()))
        .send()?
        .text()
}

#[test]
fn serves_https_with_the_tls_flags_and_sighup_reloads_the_certificate() {
    let dir = app_dir("function handle() return 'secure' end");
    let old = write_self_signed(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let serve = Serve::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        &app(&dir),
    ]);
    assert!(
        serve.base.starts_with("https://127.0.0.1:"),
        "{}",
        serve.base
    );
    assert_eq!(https_get(&serve, &old).unwrap(), "secure");
    let new = write_self_signed(dir.path());
    serve.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while https_get(&serve, &new).is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(https_get(&serve, &old).is_err());
    serve.signal("TERM");
    assert_eq!(serve.wait(), Some(0));
}

#[test]
fn tls_in_the_config_file_is_relative_to_it_and_bad_files_stop_the_start() {
    let dir = app_dir("function handle() return 'secure' end");
    let pem = write_self_signed(dir.path());
    let config = dir.path().join("luapool.toml");
    std::fs::write(&config, "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n").unwrap();
    // Found next to the app, its paths taken from its directory (not the cwd).
    let serve = Serve::start(&[&app(&dir)]);
    assert_eq!(https_get(&serve, &pem).unwrap(), "secure");
    drop(serve);
    std::fs::write(dir.path().join("junk.pem"), "junk").unwrap();
    let other = tempfile::tempdir().unwrap();
    write_self_signed(other.path());
    let other_key = other.path().join("key.pem").display().to_string();
    let cert = dir.path().join("cert.pem").display().to_string();
    let junk = dir.path().join("junk.pem").display().to_string();
    let app_path = app(&dir);
    for (args, expected) in [
        (
            ["--tls-cert", "/no/such/cert.pem", "--tls-key", &other_key],
            "/no/such/cert.pem",
        ),
        (
            ["--tls-cert", &junk, "--tls-key", &other_key],
            "no PEM certificate",
        ),
        (
            ["--tls-cert", &cert, "--tls-key", &junk],
            "no PEM private key",
        ),
        (
            ["--tls-cert", &cert, "--tls-key", &other_key],
            "does not match",
        ),
    ] {
        let err = fails_to_start(
            &[
                &["--listen", "127.0.0.1:0"][..],
                &args[..],
                &[app_path.as_str()][..],
            ]
            .concat(),
        );
        assert!(err.contains(expected), "{err}");
    }
}
