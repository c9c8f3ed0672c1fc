//! Start-up errors, many concurrent requests, reload and shutdown.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use luapool_http::{Error, Server};

use crate::{client, get, start, start_with, test_config, write_app};

#[test]
fn a_syntax_error_in_the_app_names_file_and_line() {
    let dir = write_app("function handle(req)\n  return = 1\nend", &[]);
    let err = Server::start(dir.path().join("app.lua"), test_config()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::App(luapool::Error::Syntax { line: Some(2), .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("app.lua:2:"), "{err}");
}

#[test]
fn an_app_without_handle_is_an_error() {
    let dir = write_app("function serve(req) return 'x' end", &[]);
    let err = Server::start(dir.path().join("app.lua"), test_config()).unwrap_err();
    assert!(matches!(err, Error::NoHandler { .. }), "{err:?}");
}

#[test]
fn a_failing_require_at_the_top_level_is_a_start_error() {
    let dir = write_app("local m = require('missing')\nfunction handle() end", &[]);
    let err = Server::start(dir.path().join("app.lua"), test_config()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn a_missing_app_file_is_an_error() {
    let err = Server::start("/no/such/app.lua", test_config()).unwrap_err();
    assert!(err.to_string().contains("/no/such/app.lua"), "{err}");
}

#[test]
fn a_port_in_use_is_a_bind_error() {
    let t = start("function handle() return 'x' end");
    let mut c = test_config();
    c.listen = t.server().local_addr();
    let dir = write_app("function handle() return 'x' end", &[]);
    let err = Server::start(dir.path().join("app.lua"), c).unwrap_err();
    assert!(matches!(err, Error::Bind { .. }), "{err:?}");
}

#[test]
fn a_bad_config_is_an_error() {
    let mut c = test_config();
    c.workers = 0;
    let dir = write_app("function handle() return 'x' end", &[]);
    let err = Server::start(dir.path().join("app.lua"), c).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sleeping_requests_are_served_concurrently() {
    // Every request waits until all 1000 have arrived: only possible if the one worker
    // holds them all at once (a serial server would time out every request).
    rlimit::increase_nofile_limit(8192).unwrap();
    let mut c = test_config();
    c.vm = c.vm.with_timeout(Duration::from_secs(60));
    let t = start_with(
        r#"local barrier = require("barrier")
           function handle(req)
             barrier.arrived = barrier.arrived + 1
             while barrier.arrived < 1000 do sleep(0.01) end
             return "ok"
           end"#,
        &[("barrier.lua", "return { arrived = 0 }")],
        c,
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (c, url) = (client.clone(), t.url("/"));
            tokio::spawn(async move { c.get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish() {
    let mut t = start("function handle(req) sleep(0.3) return 'done' end");
    let tasks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(client().get(t.url("/")).send()))
        .collect();
    t.wait_for_metric("luapool_http_requests_in_flight{worker=\"0\"} 20")
        .await;
    let server = t.server.take().unwrap();
    let addr = server.local_addr();
    let summary = tokio::task::spawn_blocking(move || server.shutdown(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!((summary.workers, summary.abandoned), (1, 0));
    for task in tasks {
        let r = task.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "done");
    }
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_fails_no_request() {
    let mut c = test_config();
    c.workers = 2;
    let t = start_with("function handle(req) return 'v1' end", &[], c);
    let stop = Arc::new(AtomicBool::new(false));
    let v2_seen = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, v2_seen, url) = (stop.clone(), v2_seen.clone(), t.url("/"));
        load.push(tokio::spawn(async move {
            let c = client();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = c.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let body = r.text().await.unwrap();
                assert!(body == "v1" || body == "v2", "{body}");
                if body == "v2" {
                    v2_seen.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
            n
        }));
    }
    // A broken new version is refused and the old one keeps serving.
    std::fs::write(t.app_path(), "function handle(req) return = end").unwrap();
    assert!(t.server().reload().is_err());
    assert_eq!(get(&t.url("/")).await, (200, "v1".to_string()));
    std::fs::write(t.app_path(), "function handle(req) return 'v2' end").unwrap();
    t.server().reload().unwrap();
    while v2_seen.load(Ordering::Relaxed) < 50 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for task in load {
        total += task.await.unwrap();
    }
    assert!(total > 50);
    assert_eq!(t.server().reloads(), 1);
    assert_eq!(get(&t.url("/")).await, (200, "v2".to_string()));
}

/// Reads from `s` until the server closes the connection (or 10 s pass); returns what
/// was read.
async fn read_until_closed(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server did not close the connection")
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let mut c = test_config();
    c.keep_alive_timeout = Duration::from_millis(200);
    let t = start_with("function handle() return 'x' end", &[], c);
    let mut s = tokio::net::TcpStream::connect(t.server().local_addr())
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let text = read_until_closed(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("\r\n\r\nx"), "{text}");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let mut c = test_config();
    c.header_read_timeout = Duration::from_millis(200);
    let t = start_with("function handle() return 'x' end", &[], c);
    let mut s = tokio::net::TcpStream::connect(t.server().local_addr())
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n").await.unwrap();
    let text = read_until_closed(&mut s).await;
    assert!(!text.contains("200"), "{text}");
}
