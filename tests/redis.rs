//! Two `luapool serve` instances against one `redis-server` (started here on a free
//! loopback port; installed when missing): counters, `add` and TTLs of a Redis-backed
//! `shared` dictionary stay consistent across them under concurrent load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../crates/luapool-redis/tests/support/redis_server.rs"]
mod redis_server;
#[path = "support/serve.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use support::Serve;

const APP: &str = r#"
local d = shared.counters
function handle(req)
  local q = req.query
  if req.path == "/incr" then
    local n, err = d:incr("hits", 1, 0)
    if not n then return { status = 503, body = err } end
    return tostring(n)
  elseif req.path == "/add" then
    local ok, err = d:add(q.k, q.who, tonumber(q.ttl))
    if ok then return "won" end
    if err == "exists" then return "lost" end
    return { status = 503, body = err }
  elseif req.path == "/set" then
    assert(d:set(q.k, q.v, tonumber(q.ttl)))
    return "ok"
  elseif req.path == "/get" then
    local v, err = d:get(q.k)
    if err then return { status = 503, body = err } end
    return tostring(v)
  elseif req.path == "/pttl" then
    return tostring(redis.call("PTTL", "luapool:counters:" .. q.k))
  elseif req.path == "/block" then
    return tostring(redis.call("BLPOP", "never", 20))
  elseif req.path == "/limit" then
    -- A fixed-window rate limiter: INCR + EXPIRE.
    local r = redis.pipeline({ {"INCR", "rl:" .. q.who}, {"EXPIRE", "rl:" .. q.who, 60} })
    if not r then return { status = 503 } end
    return r[1] <= 5 and "allowed" or { status = 429, body = "limited" }
  end
  return { status = 404 }
end
"#;

/// Two workers serving `app` with `config`.
fn serve(app: &std::path::Path, config: &std::path::Path) -> Serve {
    let mut command = Serve::command();
    command
        .args(["--workers", "2", "--config"])
        .arg(config)
        .arg(app)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null());
    Serve::spawn(command)
}

/// `APP` and a `luapool.toml` of `config` in a temporary directory: the directory, the
/// app's path and the configuration's.
fn app_with_config(config: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.lua");
    std::fs::write(&app, APP).unwrap();
    let path = dir.path().join("luapool.toml");
    std::fs::write(&path, config).unwrap();
    (dir, app, path)
}

fn get(client: &reqwest::blocking::Client, url: &str) -> (u16, String) {
    let r = client.get(url).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn two_instances_share_counters_adds_and_ttls_through_redis() {
    let server = RedisServer::start();
    let (_dir, app, config) = app_with_config(&format!(
        "[redis]\nurl = \"{}\"\npool_size = 8\ncommand_timeout = \"10s\"\npool_timeout = \"10s\"\n\n\
         [shared.counters]\nbackend = \"redis\"\n",
        server.url()
    ));
    let a = serve(&app, &config);
    let b = serve(&app, &config);
    let bases = [a.base.clone(), b.base.clone()];

    // Counters: 8 clients × 25 increments, alternating between the instances: every
    // value from 1 to 200 is returned exactly once.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let bases = bases.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                (0..25)
                    .map(|i| {
                        let (status, body) = get(&client, &format!("{}/incr", bases[(t + i) % 2]));
                        assert_eq!(status, 200, "{body}");
                        body.parse::<i64>().unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<_>>());

    // add: of 8 racing clients on both instances, exactly one wins each key.
    for round in 0..5 {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let url = format!("{}/add?k=race{round}&who={t}&ttl=60", bases[t % 2]);
                std::thread::spawn(move || get(&reqwest::blocking::Client::new(), &url))
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let won = results
            .iter()
            .filter(|(s, b)| *s == 200 && b == "won")
            .count();
        let lost = results
            .iter()
            .filter(|(s, b)| *s == 200 && b == "lost")
            .count();
        assert_eq!((won, lost), (1, 7), "{results:?}");
        // Both instances see the winner.
        let (_, va) = get(
            &reqwest::blocking::Client::new(),
            &format!("{}/get?k=race{round}", bases[0]),
        );
        let (_, vb) = get(
            &reqwest::blocking::Client::new(),
            &format!("{}/get?k=race{round}", bases[1]),
        );
        assert_eq!(va, vb);
    }

    // TTLs: set on one instance, seen (and expiring) on the other.
    let client = reqwest::blocking::Client::new();
    assert_eq!(
        get(&client, &format!("{}/set?k=s&v=x&ttl=100", bases[0])).1,
        "ok"
    );
    let pttl: i64 = get(&client, &format!("{}/pttl?k=s", bases[1]))
        .1
        .parse()
        .unwrap();
    assert!(pttl > 0 && pttl <= 100_000, "{pttl}");
    assert_eq!(get(&client, &format!("{}/get?k=s", bases[1])).1, "x");
    assert_eq!(
        get(&client, &format!("{}/set?k=short&v=y&ttl=0.05", bases[1])).1,
        "ok"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&client, &format!("{}/get?k=short", bases[0])).1 != "nil" {
        assert!(Instant::now() < deadline, "the entry never expired");
        std::thread::sleep(Duration::from_millis(10));
    }

    // The rate limiter of bench/redis.sh: the 6th request of a client is limited,
    // whichever instance it reaches.
    let statuses: Vec<u16> = (0..7)
        .map(|i| get(&client, &format!("{}/limit?who=c1", bases[i % 2])).0)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
}

#[test]
fn serve_starts_with_redis_down_and_recovers() {
    let mut server = RedisServer::start();
    let (_dir, app, config) = app_with_config(&format!(
        "[redis]\nurl = \"{}\"\nconnect_timeout = \"200ms\"\n\n[shared.counters]\nbackend = \"redis\"\n",
        server.url()
    ));
    server.kill();
    let serve = serve(&app, &config);
    let client = reqwest::blocking::Client::new();
    let (status, body) = get(&client, &format!("{}/incr", serve.base));
    assert_eq!(status, 503);
    assert!(body.contains("cannot connect"), "{body}");
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(&client, &format!("{}/incr", serve.base));
        if status == 200 {
            assert_eq!(body, "1");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never recovered: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_request_timeout_cuts_a_slow_redis_call_and_frees_its_connection() {
    let server = RedisServer::start();
    // One connection, a command timeout longer than the request's: the request's own
    // deadline ends the wait, and the connection must come back to the pool.
    let (_dir, app, config) = app_with_config(&format!(
        "request_timeout = \"300ms\"\n[redis]\nurl = \"{}\"\npool_size = 1\ncommand_timeout = \"30s\"\n\n\
         [shared.counters]\nbackend = \"redis\"\n",
        server.url()
    ));
    let serve = serve(&app, &config);
    let client = reqwest::blocking::Client::new();
    for _ in 0..3 {
        assert_eq!(get(&client, &format!("{}/block", serve.base)).0, 504);
        let (status, body) = get(&client, &format!("{}/incr", serve.base));
        assert_eq!(status, 200, "{body}");
    }
}

#[test]
fn luapool_run_gets_the_redis_module_with_the_flag() {
    let server = RedisServer::start();
    let output = Command::new(env!("CARGO_BIN_EXE_luapool"))
        .args(["run", "--redis", &server.url(), "-e"])
        .arg("redis.call('SET', 'k', 41) return redis.call('INCR', 'k'), redis.call('GET', 'nope')")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "42\tfalse\n");
    let output = Command::new(env!("CARGO_BIN_EXE_luapool"))
        .args(["run", "-e", "return type(redis)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "nil\n");
}
