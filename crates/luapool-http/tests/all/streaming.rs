//! `stream.start` / `stream.write`: a response sent while its handler runs.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::{client, get, start_with, test_config, TestServer};

const APP: &str = r#"
    function handle(req)
      local p = req.path
      if p == "/small" then
        stream.start(201, { ["content-type"] = "text/csv", ["x-a"] = "1" })
        for _, part in ipairs({ "a,", "b\n", "c" }) do assert(stream.write(part)) end
        return "ignored"
      elseif p == "/big" then
        stream.start()
        local mib = string.rep("x", 1024 * 1024)
        for i = 1, tonumber(req.query.n) do assert(stream.write(mib)) end
        return
      elseif p == "/forever" then
        stream.start()
        local piece = string.rep("y", 65536)
        while true do
          local ok, err = stream.write(piece)
          if not ok then shared.d:set("gone", err) return end
        end
      elseif p == "/twice" then
        stream.start()
        local ok, err = pcall(stream.start)
        stream.write(err)
        return
      elseif p == "/unstarted" then
        local ok, err = pcall(stream.write, "x")
        return err
      elseif p == "/fail" then
        stream.start()
        stream.write("partial")
        error("broken after the head")
      elseif p == "/timer" then
        timer.after(0, function()
          local ok, err = pcall(stream.start)
          shared.d:set("timer", err)
        end)
        return "ok"
      elseif p == "/spin" then
        stream.start()
        stream.write("a")
        while true do end
      end
      return tostring(shared.d:get(req.query.key))
    end"#;

fn serve() -> TestServer {
    let mut c = test_config();
    c.shared_dicts.insert("d".to_string(), 10);
    // One slot: a stream that kept its slot after it ended would block every later request.
    c.concurrency = 1;
    c.vm.cpu_limit = Some(Duration::from_millis(200));
    start_with(APP, &[], c)
}

async fn poll_key(t: &TestServer, key: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(&t.url(&format!("/?key={key}"))).await;
        if body != "nil" {
            return body;
        }
        assert!(Instant::now() < deadline, "{key} never set");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_has_the_handlers_head_and_its_chunks() {
    let t = serve();
    let r = client().get(t.url("/small")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "text/csv");
    assert_eq!(r.headers()["x-a"], "1");
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    assert_eq!(r.text().await.unwrap(), "a,b\nc");
    // The slot came back: the next request is served.
    assert_eq!(get(&t.url("/?key=none")).await, (200, "nil".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_stream_arrives_whole() {
    let t = serve();
    let r = client().get(t.url("/big?n=24")).send().await.unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), 24 << 20);
    assert!(body.iter().all(|&b| b == b'x'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_makes_write_return_closed() {
    let t = serve();
    let r = client().get(t.url("/forever")).send().await.unwrap();
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    assert_eq!(poll_key(&t, "gone").await, "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misuse_is_an_error_that_says_so() {
    let t = serve();
    let (_, twice) = get(&t.url("/twice")).await;
    assert!(
        twice.contains("the response has started already"),
        "{twice}"
    );
    let (_, unstarted) = get(&t.url("/unstarted")).await;
    assert!(unstarted.contains("call stream.start first"), "{unstarted}");
    assert_eq!(get(&t.url("/timer")).await, (200, "ok".into()));
    let from_timer = poll_key(&t, "timer").await;
    assert!(
        from_timer.contains("only a request's handler can stream"),
        "{from_timer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_fails_or_spins_while_streaming_cuts_the_response_off() {
    let t = serve();
    for path in ["/fail", "/spin"] {
        let r = client().get(t.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.bytes().await.is_err(),
            "{path}: the body should be cut off"
        );
    }
    // The CPU limit stopped the spinning handler, and its slot came back.
    t.wait_for_metric("luapool_limit_exceeded_total{kind=\"cpu\"} 1")
        .await;
    assert_eq!(get(&t.url("/?key=none")).await, (200, "nil".into()));
}
