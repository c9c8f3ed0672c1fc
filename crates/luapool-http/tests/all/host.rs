//! The host library in handlers: `http.request`, `time`, and the admin listener.

use crate::{body_of, get, get_owned, start, start_with, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_request_calls_another_server() {
    let backend = start(
        r#"function handle(req)
             return { status = 202, headers = { ["x-backend"] = "yes" }, body = req.method .. " " .. req.body }
           end"#,
    );
    let front = start(&format!(
        r#"local json = require("json")
           function handle(req)
             local r, err = http.request{{ method = "POST", url = "{}/x", body = "ping", headers = {{ ["x-a"] = "1" }} }}
             if not r then return 502, err end
             local down, derr = http.request{{ url = "http://127.0.0.1:1/", timeout = 2 }}
             return json.encode({{ status = r.status, body = r.body, backend = r.headers["x-backend"], down = tostring(down), derr = derr }})
           end"#,
        backend.base
    ));
    let (status, body) = get(&front.url("/")).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], 202);
    assert_eq!(v["body"], "POST ping");
    assert_eq!(v["backend"], "yes");
    assert_eq!(v["down"], "nil");
    assert!(v["derr"].as_str().unwrap().contains("connect"), "{v}");
}

#[tokio::test]
async fn http_request_with_bad_arguments_is_a_lua_error() {
    let mut c = test_config();
    c.dev = true;
    let t = start_with(
        "function handle(req) return http.request{ method = 'GET' } end",
        &[],
        c,
    );
    let (status, body) = get(&t.url("/")).await;
    assert_eq!(status, 500);
    assert!(body.contains("`url` is required"), "{body}");
}

#[tokio::test]
async fn admin_serves_metrics_and_health() {
    let mut c = test_config();
    c.admin = Some("127.0.0.1:0".parse().unwrap());
    let t = start_with("function handle(req) return 'x' end", &[], c);
    assert_eq!(get(&t.url("/")).await.0, 200);
    let admin = format!("http://{}", t.server().admin_addr().unwrap());
    assert_eq!(
        get(&format!("{admin}/healthz")).await,
        (200, "ok\n".to_string())
    );
    let (status, text) = get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    for needle in [
        "luapool_http_requests_total{status=\"200\"} 1",
        "luapool_http_request_duration_seconds_count{worker=\"0\"} 1",
        "luapool_vm_memory_bytes{worker=\"0\"}",
        "luapool_workers 1",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
    assert_eq!(get(&format!("{admin}/nope")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_dicts_are_shared_by_all_workers() {
    let mut c = test_config();
    c.workers = 2;
    c.shared_dicts.insert("hits".to_string(), 100);
    let t = start_with(
        r#"function handle(req)
             if req.path == "/set" then shared.hits:set("k", req.query.v) return "set" end
             if req.path == "/incr" then return tostring(shared.hits:incr("n", 1, 0)) end
             return tostring(shared.hits:get("k"))
           end"#,
        &[],
        c,
    );
    assert_eq!(get(&t.url("/set?v=hello")).await, (200, "set".to_string()));
    // Fresh connections land on either worker; all of them see the value.
    for _ in 0..10 {
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        assert_eq!(body_of(&fresh, &t.url("/")).await, "hello");
    }
    let incrs: Vec<_> = (0..50)
        .map(|_| tokio::spawn(get_owned(t.url("/incr"))))
        .collect();
    let mut seen = Vec::new();
    for task in incrs {
        seen.push(task.await.unwrap().1.parse::<i64>().unwrap());
    }
    seen.sort();
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
}

#[tokio::test]
async fn time_is_available_in_handlers() {
    let t = start("function handle(req) return string.format('%d %s', math.floor(time.now()), tostring(time.monotonic() >= 0)) end");
    let (status, body) = get(&t.url("/")).await;
    assert_eq!(status, 200);
    let (now, mono) = body.split_once(' ').unwrap();
    let now: u64 = now.parse().unwrap();
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(real) <= 2, "{now} vs {real}");
    assert_eq!(mono, "true");
}
