//! Each failure has its own status, and the server keeps serving.

use std::time::Duration;

use crate::{client, get, start, start_with, test_config};

#[tokio::test]
async fn a_lua_error_is_500_with_a_generic_body() {
    let t = start("function handle(req)\n  error('secret detail')\nend");
    let (status, body) = get(&t.url("/")).await;
    assert_eq!(status, 500);
    assert!(!body.contains("secret"), "{body}");
}

#[tokio::test]
async fn dev_mode_puts_the_error_and_traceback_in_the_body() {
    let mut c = test_config();
    c.dev = true;
    let t = start_with(
        "function handle(req)\n  error('secret detail')\nend",
        &[],
        c,
    );
    let (status, body) = get(&t.url("/")).await;
    assert_eq!(status, 500);
    assert!(body.contains("app.lua:2: secret detail"), "{body}");
    assert!(body.contains("stack traceback"), "{body}");
}

#[tokio::test]
async fn a_bad_reply_is_500() {
    let mut c = test_config();
    c.dev = true;
    let t = start_with("function handle(req) return { status = 99 } end", &[], c);
    let (status, body) = get(&t.url("/")).await;
    assert_eq!(status, 500);
    assert!(
        body.contains("status must be an integer from 100 to 599"),
        "{body}"
    );
}

#[tokio::test]
async fn the_request_timeout_is_504_and_cancels_the_handler() {
    let mut c = test_config();
    c.vm = c.vm.with_timeout(Duration::from_millis(200));
    let t = start_with(
        "function handle(req) if req.path == '/slow' then sleep(60) end return 'fast' end",
        &[],
        c,
    );
    assert_eq!(get(&t.url("/slow")).await.0, 504);
    assert_eq!(get(&t.url("/")).await, (200, "fast".to_string()));
    t.wait_for_metric("luapool_limit_exceeded_total{kind=\"timeout\"} 1")
        .await;
}

#[tokio::test]
async fn a_runaway_loop_is_stopped_by_the_cpu_limit() {
    let mut c = test_config();
    c.vm = c.vm.with_cpu_limit(Duration::from_millis(50));
    let t = start_with(
        "function handle(req) if req.path == '/spin' then while true do end end return 'ok' end",
        &[],
        c,
    );
    assert_eq!(get(&t.url("/spin")).await.0, 504);
    assert_eq!(get(&t.url("/")).await, (200, "ok".to_string()));
    t.wait_for_metric("luapool_limit_exceeded_total{kind=\"cpu\"} 1")
        .await;
}

#[tokio::test]
async fn the_memory_limit_is_500_and_the_vm_is_rebuilt() {
    let mut c = test_config();
    c.vm = c.vm.with_memory_limit(8 << 20);
    let t = start_with(
        r#"local counter = require("counter")
           function handle(req)
             if req.path == "/bomb" then local t = {} while true do t[#t + 1] = {} end end
             return tostring(counter.next())
           end"#,
        &[(
            "counter.lua",
            "local n = 0\nreturn { next = function() n = n + 1; return n end }",
        )],
        c,
    );
    assert_eq!(get(&t.url("/")).await, (200, "1".to_string()));
    assert_eq!(get(&t.url("/")).await, (200, "2".to_string()));
    assert_eq!(get(&t.url("/bomb")).await.0, 500);
    // A new VM: module state starts over.
    assert_eq!(get(&t.url("/")).await, (200, "1".to_string()));
    t.wait_for_metric("luapool_vm_rebuilt_total{kind=\"poisoned\"} 1")
        .await;
    t.wait_for_metric("luapool_limit_exceeded_total{kind=\"memory\"} 1")
        .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let mut c = test_config();
    c.max_body_size = 1024;
    let t = start_with(
        "function handle(req) return tostring(#req.body) end",
        &[],
        c,
    );
    let small = client()
        .post(t.url("/"))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    assert_eq!(small.text().await.unwrap(), "1024");
    let big = client()
        .post(t.url("/"))
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    // Without a content-length (chunked), the limit holds too.
    let stream =
        futures_util::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 512])));
    let chunked = client()
        .post(t.url("/"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
}

#[tokio::test]
async fn overload_is_503_with_retry_after() {
    let mut c = test_config();
    c.concurrency = 1;
    c.max_queued = 0;
    let t = start_with(
        "function handle(req) if req.path == '/hold' then sleep(0.5) end return 'ok' end",
        &[],
        c,
    );
    let hold = tokio::spawn(client().get(t.url("/hold")).send());
    t.wait_for_metric("luapool_http_requests_in_flight{worker=\"0\"} 1")
        .await;
    let r = client().get(t.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(hold.await.unwrap().unwrap().status(), 200);
    assert_eq!(get(&t.url("/")).await, (200, "ok".to_string()));
}

#[tokio::test]
async fn a_malformed_request_is_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = start("function handle(req) return 'ok' end");
    let mut s = tokio::net::TcpStream::connect(t.server().local_addr())
        .await
        .unwrap();
    s.write_all(b"GARBAGE\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
}
