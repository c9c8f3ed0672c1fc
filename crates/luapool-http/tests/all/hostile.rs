//! Hostile clients (issue 12): nothing a client does takes capacity away from the
//! others. Each test cancels, stalls or malforms requests, then checks that the worker's
//! capacity is whole again: a normal request is served at once and the gauges of the
//! metrics endpoint read zero.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{start_with, test_config, TestServer};

/// Reads the admin listener's `/metrics`.
struct Probe {
    client: reqwest::Client,
    url: String,
}

impl Probe {
    fn new(t: &TestServer) -> Probe {
        Probe {
            client: reqwest::Client::new(),
            url: format!("http://{}/metrics", t.server().admin_addr().unwrap()),
        }
    }

    /// The value of one series (`name{labels}` as rendered); 0 when absent.
    async fn value(&self, series: &str) -> f64 {
        let text = self.client.get(&self.url).send().await.unwrap();
        let text = text.text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.parse().unwrap())
    }

    /// Polls until `series` reads `want`, for up to 5 s.
    async fn wait_for(&self, series: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = self.value(series).await;
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} reads {got}, never {want}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every gauge of worker 0 that a request raises reads zero.
    async fn settled(&self) {
        self.wait_for(IN_FLIGHT, 0.0).await;
        self.wait_for(QUEUED, 0.0).await;
    }
}

const IN_FLIGHT: &str = "luapool_http_requests_in_flight{worker=\"0\"}";
const QUEUED: &str = "luapool_http_requests_queued{worker=\"0\"}";
const CONNECTIONS: &str = "luapool_http_connections{worker=\"0\"}";
const CANCELLED: &str = "luapool_http_cancelled_total";

/// `/hold` sleeps for 30 s (until its client gives up); anything else answers `ok`.
const APP: &str = r#"
function handle(req)
  if req.path == "/hold" then sleep(30) end
  if req.path == "/echo" then return req.body end
  if req.path == "/query" then
    local a = req.query.a
    return #a .. "," .. a:byte(1) .. "," .. req.query.b
  end
  if req.path == "/big" then return string.rep("x", 32 * 1024 * 1024) end
  if req.path == "/boom" then error("boom " .. (req.query.n or "")) end
  return "ok"
end
"#;

fn config() -> luapool_http::ServerConfig {
    let mut c = test_config();
    c.admin = Some("127.0.0.1:0".parse().unwrap());
    c
}

/// A raw connection that has sent `text`.
async fn send(t: &TestServer, text: &str) -> TcpStream {
    let mut s = TcpStream::connect(t.server().local_addr()).await.unwrap();
    s.write_all(text.as_bytes()).await.unwrap();
    s
}

/// Everything the server sends until it closes the connection (at most 5 s).
async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    read.expect("the server did not close the connection")
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

/// Reads until the text ends with `end` (one keep-alive response), at most 5 s.
async fn read_until(s: &mut TcpStream, end: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !out.ends_with(end.as_bytes()) {
        let n = tokio::time::timeout_at(deadline.into(), s.read(&mut buf))
            .await
            .expect("no complete response")
            .unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).to_string()
}

/// A normal request on a new connection: it must be answered `ok` within 2 s.
async fn served_at_once(t: &TestServer) {
    let started = Instant::now();
    let r = reqwest::Client::new()
        .get(t.url("/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("a normal request was not served at once");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_queued_requests_give_their_place_back() {
    let mut c = config();
    c.concurrency = 1;
    c.max_queued = 3;
    let t = start_with(APP, &[], c);
    let probe = Probe::new(&t);
    let holder = send(&t, "GET /hold HTTP/1.1\r\nhost: a\r\n\r\n").await;
    probe.wait_for(IN_FLIGHT, 1.0).await;
    // Three times a full queue whose clients give up: with a leak, the queue would be
    // "full" for good after the first round and every request after it a 503.
    for round in 1..=3 {
        let mut waiting = Vec::new();
        for _ in 0..3 {
            waiting.push(send(&t, "GET /q HTTP/1.1\r\nhost: a\r\n\r\n").await);
        }
        probe.wait_for(QUEUED, 3.0).await;
        drop(waiting);
        probe.wait_for(QUEUED, 0.0).await;
        probe.wait_for(CANCELLED, 3.0 * round as f64).await;
    }
    // The queue is whole: three more wait (none gets a 503) ...
    let queued: Vec<_> = (0..3)
        .map(|_| tokio::spawn(crate::get_owned(t.url("/"))))
        .collect();
    probe.wait_for(QUEUED, 3.0).await;
    // ... and run as soon as the holder gives up its slot.
    drop(holder);
    for q in queued {
        assert_eq!(q.await.unwrap(), (200, "ok".to_string()));
    }
    probe.settled().await;
    served_at_once(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_h2_streams_leak_nothing_and_the_connection_idles_out() {
    let mut c = config();
    c.concurrency = 2;
    c.max_queued = 100;
    c.keep_alive_timeout = Duration::from_millis(300);
    let t = start_with(APP, &[], c);
    let probe = Probe::new(&t);
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    // 50 streams on one connection: 2 run, 48 wait for a slot; then all are reset.
    let streams: Vec<_> = (0..50)
        .map(|_| tokio::spawn(h2.get(t.url("/hold")).send()))
        .collect();
    probe.wait_for(IN_FLIGHT, 2.0).await;
    probe.wait_for(QUEUED, 48.0).await;
    for s in &streams {
        s.abort();
    }
    probe.wait_for(CANCELLED, 50.0).await;
    probe.settled().await;
    // The same connection serves a normal request at once (HTTP/2 needs no Host).
    let started = Instant::now();
    let r = h2.get(t.url("/")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.unwrap(), "ok");
    assert!(started.elapsed() < Duration::from_secs(2));
    // ... and, idle again, is closed after the keep-alive timeout.
    probe.wait_for(CONNECTIONS, 0.0).await;
    served_at_once(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_hold_no_slot_and_time_out_with_408() {
    let mut c = config();
    c.concurrency = 1;
    c.body_read_timeout = Duration::from_millis(2500);
    let t = start_with(APP, &[], c);
    let probe = Probe::new(&t);
    let started = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..20 {
        // One byte of a 100-byte body, or headers and nothing.
        let body = if i % 2 == 0 { "x" } else { "" };
        let text = format!("POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n{body}");
        stalled.push(send(&t, &text).await);
    }
    // A client that sends part of its body and goes away.
    drop(
        send(
            &t,
            "POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\nxx",
        )
        .await,
    );
    probe.wait_for(CONNECTIONS, 20.0).await;
    // The one slot is free for everyone else meanwhile.
    served_at_once(&t).await;
    let r = reqwest::Client::new()
        .post(t.url("/echo"))
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "abc");
    assert_eq!(probe.value(IN_FLIGHT).await, 0.0);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "too slow to tell"
    );
    for s in &mut stalled {
        let text = read_all(s).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
    assert!(started.elapsed() >= Duration::from_millis(2500));
    probe
        .wait_for("luapool_http_rejected_total{kind=\"body_timeout\"}", 20.0)
        .await;
    probe.wait_for(CONNECTIONS, 0.0).await;
    probe.settled().await;
    served_at_once(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_keep_alive_timeouts_bound_their_own_phases() {
    let mut c = config();
    c.header_read_timeout = Duration::from_millis(300);
    c.keep_alive_timeout = Duration::from_millis(1500);
    let t = start_with(APP, &[], c);
    // A connection that never sends a byte: closed by the header read timeout.
    let started = Instant::now();
    let mut silent = send(&t, "").await;
    assert_eq!(read_all(&mut silent).await, "");
    let silent_for = started.elapsed();
    assert!(
        silent_for >= Duration::from_millis(300) && silent_for < Duration::from_millis(1400),
        "{silent_for:?}"
    );
    // After a request, the connection stays open while idle for the keep-alive timeout
    // (longer than the header read timeout) ...
    let mut idle = send(&t, "GET / HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert!(read_until(&mut idle, "\r\n\r\nok")
        .await
        .starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(900), idle.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "closed while idle after {:?}",
        idle_since.elapsed()
    );
    // ... and a new request on it is served.
    idle.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_until(&mut idle, "\r\n\r\nok")
        .await
        .starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    assert_eq!(read_all(&mut idle).await, "");
    let idle_for = idle_since.elapsed();
    // (The server's timer starts when it has written the response, a little before the
    // client has read it: the client sees slightly less than the full timeout.)
    assert!(idle_for >= Duration::from_millis(1400), "{idle_for:?}");
    // Half a request's headers after an idle spell: the header timeout again.
    let mut partial = send(&t, "GET / HTTP/1.1\r\nhost: a\r\n\r\n").await;
    read_until(&mut partial, "\r\n\r\nok").await;
    partial.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    read_all(&mut partial).await;
    let partial_for = started.elapsed();
    assert!(
        partial_for >= Duration::from_millis(250) && partial_for < Duration::from_millis(1400),
        "{partial_for:?}"
    );
    Probe::new(&t).wait_for(CONNECTIONS, 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_1_needs_exactly_one_host() {
    let t = start_with(APP, &[], config());
    for bad in [
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
    ] {
        let text = read_all(&mut send(&t, bad).await).await;
        assert!(text.starts_with("HTTP/1.1 400"), "{bad:?}: {text}");
    }
    let mut old = send(&t, "GET / HTTP/1.0\r\n\r\n").await;
    let text = read_all(&mut old).await;
    assert!(text.contains(" 200 ") && text.ends_with("ok"), "{text}");
    Probe::new(&t)
        .wait_for("luapool_http_rejected_total{kind=\"bad_request\"}", 2.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_values_keep_their_bytes() {
    let t = start_with(APP, &[], config());
    let r = reqwest::get(t.url("/query?a=%FF%FE&b=caf%C3%A9+x"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), "2,255,café x".as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_errors_are_counted_not_logged() {
    let t = start_with(APP, &[], config());
    let probe = Probe::new(&t);
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let r = client.get(t.url("/boom")).send().await.unwrap();
        assert_eq!(r.status(), 500);
    }
    // One line logged, 199 held back (summarised when the 10 s window ends).
    assert_eq!(probe.value("luapool_log_suppressed_total").await, 199.0);
    // Distinct errors: a worker logs at most 50 per window, counting the rest.
    for n in 0..100 {
        let r = client
            .get(t.url(&format!("/boom?n={n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
    }
    assert_eq!(
        probe.value("luapool_log_suppressed_total").await,
        199.0 + 51.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_response_is_dropped() {
    let mut c = config();
    c.keep_alive_timeout = Duration::from_millis(300);
    let t = start_with(APP, &[], c);
    let probe = Probe::new(&t);
    // 32 MiB cannot fit in the socket buffers: the write stalls until the keep-alive
    // timeout (counted from the handler's end) drops the connection.
    let _never_reads = send(&t, "GET /big HTTP/1.1\r\nhost: a\r\n\r\n").await;
    probe.wait_for(CONNECTIONS, 1.0).await;
    probe
        .wait_for("luapool_http_requests_total{status=\"200\"}", 1.0)
        .await;
    probe.wait_for(CONNECTIONS, 0.0).await;
    probe.settled().await;
    served_at_once(&t).await;
}

/// Memory bombs beside normal requests on one worker (issue 12, item 5; the core's
/// per-execution memory shares): each bomb gets its 500, every normal request its 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_fails_alone() {
    const BOMBS: &str = r#"
function handle(req)
  if req.path == "/bomb" then
    local t = {}
    while true do t[#t + 1] = string.rep("x", 1000) .. #t end
  end
  local n = 0
  for i = 1, 20 do
    local t = {} for j = 1, 200 do t[j] = string.rep(tostring(j), 20) .. i end
    n = n + #t
    sleep(0)
  end
  return tostring(n)
end
"#;
    let mut c = config();
    c.vm = c.vm.with_memory_limit(32 << 20);
    c.concurrency = 32;
    c.vm = c.vm.with_time_slice(Duration::from_millis(1));
    let t = start_with(BOMBS, &[], c);
    let client = reqwest::Client::new();
    let mut bombs = Vec::new();
    let mut normals = Vec::new();
    for _ in 0..6 {
        bombs.push(tokio::spawn(client.get(t.url("/bomb")).send()));
    }
    for _ in 0..16 {
        normals.push(tokio::spawn(client.get(t.url("/")).send()));
    }
    for b in bombs {
        assert_eq!(b.await.unwrap().unwrap().status(), 500);
    }
    for n in normals {
        let r = n.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "4000");
    }
    let r = client.get(t.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
