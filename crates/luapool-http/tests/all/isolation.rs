//! Globals are per request, module state is per worker.

#[cfg(not(feature = "luajit"))]
use crate::get_owned;
use crate::{body_of, client, get, start, start_with, test_config};

#[tokio::test]
async fn a_global_written_by_one_request_is_not_seen_by_the_next() {
    let t = start(
        "function handle(req) local before = counter; counter = (counter or 0) + 1; return tostring(before) .. ' ' .. counter end",
    );
    for _ in 0..5 {
        assert_eq!(get(&t.url("/")).await, (200, "nil 1".to_string()));
    }
}

#[tokio::test]
async fn interleaved_requests_on_one_worker_do_not_share_globals() {
    // Request A sets a global, then sleeps; B runs on the same worker meanwhile and
    // must not see it; A must still see its own value after waking.
    let t = start(
        r#"function handle(req)
             if req.path == "/a" then
               mine = "a"
               sleep(0.3)
               return "a saw " .. tostring(mine)
             end
             return "b saw " .. tostring(mine)
           end"#,
    );
    let c = client();
    let a = tokio::spawn({
        let c = c.clone();
        let url = t.url("/a");
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    });
    t.wait_for_metric("luapool_http_requests_in_flight{worker=\"0\"} 1")
        .await;
    assert_eq!(body_of(&c, &t.url("/b")).await, "b saw nil");
    assert_eq!(a.await.unwrap(), "a saw a");
}

#[tokio::test]
async fn module_state_is_per_worker() {
    let t = start_with(
        r#"local counter = require("counter")
           function handle(req) return tostring(counter.next()) end"#,
        &[(
            "counter.lua",
            "local n = 0\nreturn { next = function() n = n + 1; return n end }",
        )],
        test_config(),
    );
    for expected in 1..=3 {
        assert_eq!(get(&t.url("/")).await, (200, expected.to_string()));
    }
}

#[tokio::test]
async fn the_sandbox_holds_in_handlers() {
    let t = start(
        r#"function handle(req)
             return tostring(io) .. " " .. tostring(os.execute) .. " " .. tostring(pcall(function() string.upper = nil end))
           end"#,
    );
    assert_eq!(get(&t.url("/")).await, (200, "nil nil false".to_string()));
}

// LuaJIT builds do not slice executions (see `luapool::limits`).
#[cfg(not(feature = "luajit"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_handler_does_not_stall_the_light_ones_on_its_worker() {
    // One worker. The heavy handler computes until told to stop; the light requests
    // (and the one that stops it) can only be answered if the heavy one is time-sliced.
    let mut c = test_config();
    c.shared_dicts.insert("ctl".to_string(), 10);
    let t = start_with(
        r#"function handle(req)
             if req.path == "/heavy" then
               secret = "heavy"
               local n = 0
               while not shared.ctl:get("stop") do
                 for i = 1, 1000 do n = n + 1 end
               end
               return "heavy done " .. secret
             elseif req.path == "/stop" then
               shared.ctl:set("stop", true)
               return "stopped"
             end
             return "light " .. tostring(secret)
           end"#,
        &[],
        c,
    );
    let heavy = tokio::spawn(get_owned(t.url("/heavy")));
    t.wait_for_metric("luapool_http_requests_in_flight{worker=\"0\"} 1")
        .await;
    for _ in 0..10 {
        assert_eq!(get(&t.url("/")).await, (200, "light nil".to_string()));
    }
    assert!(!heavy.is_finished());
    assert_eq!(get(&t.url("/stop")).await, (200, "stopped".to_string()));
    assert_eq!(heavy.await.unwrap(), (200, "heavy done heavy".to_string()));
}
