//! `timer.after`, `timer.every`, `timer.cancel`, `timer.pending` and `init_worker()`.

use std::time::{Duration, Instant};

use luapool_http::ServerConfig;

use crate::{get, start_with, test_config, TestServer};

/// One worker with a shared dictionary `d`.
fn config() -> ServerConfig {
    let mut c = test_config();
    c.shared_dicts.insert("d".to_string(), 100);
    c
}

/// GETs `path` until its body satisfies `done` (10 s at most); the last body.
async fn poll(t: &TestServer, path: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(&t.url(path)).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} still says {body:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_runs_the_function_with_its_arguments_and_its_creators_globals() {
    let app = r#"
        function handle(req)
          if req.path == "/start" then
            mine = req.query.v
            local t, err = timer.after(0.01, function(a, b)
              shared.d:incr("n", a + b, 0)
              shared.d:set("seen", mine)
            end, 2, 3)
            return type(t) .. " " .. tostring(err)
          end
          return tostring(shared.d:get("n")) .. " " .. tostring(shared.d:get("seen"))
        end"#;
    let t = start_with(app, &[], config());
    assert_eq!(
        get(&t.url("/start?v=first")).await,
        (200, "string nil".into())
    );
    assert_eq!(poll(&t, "/", |b| b != "nil nil").await, "5 first");
    // The timer is gone once it ran.
    t.wait_for_metric("luapool_timers_pending{worker=\"0\"} 0")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_started_by_init_worker_repeats_until_cancelled() {
    let app = r#"
        function init_worker()
          shared.d:set("token", timer.every(0.002, function()
            shared.d:incr("ticks", 1, 0)
          end))
        end
        function handle(req)
          if req.path == "/cancel" then
            return tostring(timer.cancel(shared.d:get("token"))) .. " " .. timer.pending()
          end
          return tostring(shared.d:get("ticks") or 0)
        end"#;
    let t = start_with(app, &[], config());
    poll(&t, "/", |b| b.parse::<u32>().unwrap() >= 3).await;
    assert_eq!(get(&t.url("/cancel")).await, (200, "true 0".into()));
    // A second cancel finds nothing, and an unknown token cancels nothing.
    assert_eq!(get(&t.url("/cancel")).await, (200, "false 0".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_timer_is_stopped_by_the_cpu_limit_and_the_worker_serves_on() {
    let app = r#"
        function handle(req)
          if req.path == "/spin" then
            timer.after(0, function() while true do end end)
            return "started"
          end
          return "ok"
        end"#;
    let mut c = config();
    c.vm.cpu_limit = Some(Duration::from_millis(50));
    let t = start_with(app, &[], c);
    assert_eq!(get(&t.url("/spin")).await, (200, "started".into()));
    t.wait_for_metric("luapool_limit_exceeded_total{kind=\"cpu\"} 1")
        .await;
    assert_eq!(get(&t.url("/")).await, (200, "ok".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holds_at_most_max_timers_and_bad_arguments_are_errors() {
    let app = r#"
        function handle(req)
          if req.path == "/bad" then
            local ok1, e1 = pcall(timer.after, "soon", print)
            local ok2, e2 = pcall(timer.every, 0, print)
            local ok3, e3 = pcall(timer.after, 1, "print")
            return table.concat({ e1, e2, e3 }, "\n")
          end
          local out = {}
          for i = 1, 3 do
            local t, err = timer.after(60, print)
            out[i] = t and "ok" or err
          end
          return table.concat(out, ",") .. " " .. timer.pending()
        end"#;
    let mut c = config();
    c.max_timers = 2;
    let t = start_with(app, &[], c);
    assert_eq!(
        get(&t.url("/")).await,
        (200, "ok,ok,too many pending timers 2".into())
    );
    let (_, bad) = get(&t.url("/bad")).await;
    let lines: Vec<&str> = bad.lines().collect();
    assert!(
        lines[0]
            .contains("bad argument #1 to 'timer.after' (number of seconds expected, got string)"),
        "{bad}"
    );
    assert!(lines[1].contains("at least 0.001 s"), "{bad}");
    assert!(
        lines[2].contains("bad argument #2 to 'timer.after' (function expected, got string)"),
        "{bad}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_cancels_the_old_apps_timers_and_runs_the_new_init_worker() {
    let v1 = r#"
        function init_worker() timer.every(60, print) end
        function handle(req) return "v1 " .. timer.pending() end"#;
    let v2 = r#"
        function init_worker() timer.after(60, print) timer.after(60, print) end
        function handle(req) return "v2 " .. timer.pending() end"#;
    let t = start_with(v1, &[], config());
    poll(&t, "/", |b| b == "v1 1").await;
    std::fs::write(t.app_path(), v2).unwrap();
    t.server().reload().unwrap();
    // The old VM's timer is cancelled; the new init_worker's two are pending.
    poll(&t, "/", |b| b == "v2 2").await;
}
