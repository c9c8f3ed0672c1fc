//! The `redis` module and the Redis-backed dictionaries against a real `redis-server`
//! (started by each test on a free loopback port; installed when missing, see
//! `support/redis_server.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::rc::Rc;
use std::time::{Duration, Instant};

use luapool::{Script, SharedDicts, Value, Vm, VmConfig};
use luapool_redis::{Redis, RedisConfig, RedisDictConfig};
use redis_server::RedisServer;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A VM with the `redis` module and a Redis-backed dictionary `shared.r` (and an
/// in-process one, `shared.l`).
fn vm(redis: &Redis, config: VmConfig) -> Vm {
    let vm = Vm::new(config).unwrap();
    luapool_redis::register(&vm, redis).unwrap();
    let dicts = redis
        .add_dicts(
            SharedDicts::new([("l", 100)]).unwrap(),
            &[RedisDictConfig::new("r").with_prefix("t:r:")],
        )
        .unwrap();
    vm.register_shared_dicts(&dicts).unwrap();
    vm
}

/// Runs `source` (which asserts what it checks) and expects it to return "ok".
async fn check(vm: &Vm, source: &str) {
    let got = vm.exec_async(&Script::new("t.lua", source)).await;
    match got {
        Ok(values) => assert_eq!(values, vec![Value::from("ok")], "{source}"),
        Err(e) => panic!("{e}\n{source}"),
    }
}

#[test]
fn commands_convert_replies_like_redis_lua() {
    let server = RedisServer::start();
    let redis = Redis::new(RedisConfig::new(server.url())).unwrap();
    let vm = vm(&redis, VmConfig::default());
    runtime().block_on(check(
        &vm,
        r#"
        local ok = redis.call("SET", "k", "v")
        assert(type(ok) == "table" and ok.ok == "OK", "status reply")
        assert(redis.call("GET", "k") == "v", "bulk reply")
        assert(redis.call("GET", "missing") == false, "nil reply is false")
        assert(redis.call("INCR", "n") == 1 and redis.call("INCRBY", "n", 41) == 42, "integers")
        assert(redis.call("incrbyfloat", "f", 1.5) == "1.5", "lower-case names, float args")
        redis.call("RPUSH", "list", "a", 2, "c")
        local l = redis.call("LRANGE", "list", 0, -1)
        assert(#l == 3 and l[1] == "a" and l[2] == "2" and l[3] == "c", "array reply")
        local v, err = redis.call("LPUSH", "k", "x")
        assert(v == nil and err:find("^WRONGTYPE"), "error reply: " .. tostring(err))
        local v, err = redis.call("NOSUCHCOMMAND")
        assert(v == nil and err:find("^ERR unknown command"), tostring(err))
        local ok, e = pcall(redis.call, "MULTI")
        assert(not ok and tostring(e):find("redis.pipeline"), "MULTI refused: " .. tostring(e))
        local ok, e = pcall(redis.call, "SET", "k", {})
        assert(not ok and tostring(e):find("strings or numbers"), tostring(e))
        assert(redis.call("PUBLISH", "nobody", "x") == 0)
        -- named methods
        assert(redis.set("m", 5).ok == "OK" and redis.incrby("m", 2) == 7 and redis.get("m") == "7")
        assert(redis.hset("h", "a", 1, "b", 2) == 2 and #redis.hgetall("h") == 4)
        assert(redis.del("m", "h") == 2 and redis.exists("m") == 0)
        local v, err = redis.incr("k")
        assert(v == nil and err:find("not an integer"), tostring(err))
        return "ok"
        "#,
    ));
}

#[test]
fn pipelines_transactions_and_scripts() {
    let server = RedisServer::start();
    let redis = Redis::new(RedisConfig::new(server.url())).unwrap();
    let vm = vm(&redis, VmConfig::default());
    runtime().block_on(check(
        &vm,
        r#"
        local r = redis.pipeline({ {"INCR", "a"}, {"EXPIRE", "a", 60}, {"GET", "a"}, {"LPUSH", "a", "x"}, {"TTL", "a"} })
        assert(#r == 5 and r[1] == 1 and r[2] == 1 and r[3] == "1", "replies in order")
        assert(type(r[4]) == "table" and r[4].err:find("^WRONGTYPE"), "an error inside is {err=}")
        assert(r[5] > 0 and r[5] <= 60, "ttl")

        local t = redis.pipeline({ {"INCR", "b"}, {"INCR", "b"}, {"GET", "b"} }, { atomic = true })
        assert(#t == 3 and t[1] == 1 and t[2] == 2 and t[3] == "2", "EXEC's replies")
        local t, err = redis.pipeline({ {"INCR", "b"}, {"SET"} }, { atomic = true })
        assert(t == nil and err:find("aborted"), "a command that does not queue: " .. tostring(err))
        assert(redis.call("GET", "b") == "2", "nothing of the aborted transaction ran")

        local src = "return {KEYS[1], ARGV[1], redis.call('INCRBY', KEYS[1], ARGV[1])}"
        local r = redis.eval(src, {"c"}, {5})
        assert(r[1] == "c" and r[2] == "5" and r[3] == 5, "first call (EVAL fallback)")
        local r = redis.eval(src, {"c"}, {5})
        assert(r[3] == 10, "second call (EVALSHA)")
        redis.call("SCRIPT", "FLUSH")
        assert(redis.eval(src, {"c"}, {1})[3] == 11, "after SCRIPT FLUSH")
        local v, err = redis.eval("return redis.call('NOPE')", {}, {})
        assert(v == nil and type(err) == "string", "a failing script is nil, err")
        assert(redis.eval("return {ok='fine'}").ok == "fine")
        return "ok"
        "#,
    ));
}

#[test]
fn subscribe_waits_for_messages_with_a_timeout() {
    let server = RedisServer::start();
    let redis = Redis::new(RedisConfig::new(server.url())).unwrap();
    let vm = vm(&redis, VmConfig::default());
    let port = server.port;
    // Publishes once the script's subscription is there (PUBSUB NUMSUB polled).
    let publisher = std::thread::spawn(move || {
        let server = RedisServerRef(port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !server
            .command(&["PUBSUB", "NUMSUB", "news"])
            .ends_with(":1\r\n")
        {
            assert!(Instant::now() < deadline, "the script never subscribed");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.command(&["PUBLISH", "news", "one"]);
        server.command(&["PUBLISH", "news", "two"]);
    });
    runtime().block_on(check(
        &vm,
        r#"
        local m, err = redis.subscribe("news", 30, { max = 2 })
        assert(m, err)
        assert(#m == 2 and m[1].channel == "news" and m[1].message == "one" and m[2].message == "two")
        local m, err = redis.subscribe({"quiet", "other"}, 0.05)
        assert(m == nil and err == "timed out", tostring(err))
        return "ok"
        "#,
    ));
    publisher.join().unwrap();
}

/// Raw commands to a server some other thread owns.
struct RedisServerRef(u16);

impl RedisServerRef {
    fn command(&self, args: &[&str]) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.0)).unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes()).unwrap();
        let mut buf = vec![0; 4096];
        let n = stream.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

#[test]
fn redis_dicts_keep_the_shared_dict_api() {
    let server = RedisServer::start();
    let redis = Redis::new(RedisConfig::new(server.url())).unwrap();
    let vm = vm(&redis, VmConfig::default());
    runtime().block_on(check(
        &vm,
        r#"
        local d = shared.r
        assert(d:set("s", "text") == true and d:get("s") == "text")
        assert(d:set("n", 42) and d:get("n") == 42)
        assert(math.type == nil or math.type(d:get("n")) == "integer", "LuaJIT has no math.type")
        assert(d:set("f", 2.5) and d:get("f") == 2.5)
        assert(d:set("f2", 2.0) and d:get("f2") == 2)
        assert(math.type == nil or math.type(d:get("f2")) == "float")
        assert(d:set("b", false) and d:get("b") == false and d:set("t", true) and d:get("t") == true)
        assert(d:set("num-like", "42") and d:get("num-like") == "42", "a string stays a string")
        assert(d:get("missing") == nil)
        assert(d:set(7, "seven") and d:get(7) == "seven" and d:get("7") == "seven", "number keys")
        assert(d:set("s", nil) and d:get("s") == nil, "a nil value deletes")

        local ok, err = d:add("n", 1)
        assert(ok == false and err == "exists")
        assert(d:add("new", 1, 60) == true)
        local ttl = redis.call("PTTL", "t:r:new")
        assert(ttl > 0 and ttl <= 60000, "add's ttl: " .. ttl)
        assert(d:set("n", 5, 100) and redis.call("PTTL", "t:r:n") > 0)
        assert(d:set("n", 5) and redis.call("PTTL", "t:r:n") == -1, "set without ttl clears it")

        local n, err = d:incr("nope", 1)
        assert(n == nil and err == "not found")
        assert(d:incr("c", 1, 0) == 1 and d:incr("c", 10) == 11 and d:incr("c", -2) == 9)
        assert(d:incr("f", 1) == 3.5, "float sum")
        local n, err = d:incr("b", 1)
        assert(n == nil and err == "not a number")
        assert(d:set("ttl", 1, 100) and d:incr("ttl", 1) == 2 and redis.call("PTTL", "t:r:ttl") > 0, "incr keeps the ttl")

        local big = string.rep("x", 1048576 + 1)
        local ok, err = d:set("big", big)
        assert(ok == false and err == "too large")
        local ok, e = pcall(d.get, d)
        assert(not ok and tostring(e):find("key must be a string"), tostring(e))
        local ok, e = pcall(d.get, "k")
        assert(not ok and tostring(e):find("colon"), tostring(e))
        local ok, e = pcall(d.set, d, "k", {})
        assert(not ok and tostring(e):find("value must be"), tostring(e))

        d:delete("n")
        assert(d:get("n") == nil)
        local keys = d:keys(0)
        table.sort(keys)
        assert(table.concat(keys, ",") == "7,b,c,f,f2,new,num-like,t,ttl", table.concat(keys, ","))
        assert(#d:keys(2) == 2)
        -- the in-process dictionary is still there
        assert(shared.l:incr("x", 1, 0) == 1)
        return "ok"
        "#,
    ));
    // Entries expire in Redis (polled: no sleeps as synchronization).
    runtime().block_on(async {
        check(
            &vm,
            r#"assert(shared.r:set("short", "v", 0.05)) return "ok""#,
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = vm
                .exec_async(&Script::new("g", "return shared.r:get('short')"))
                .await
                .unwrap();
            if v == vec![Value::Nil] {
                break;
            }
            assert!(Instant::now() < deadline, "the entry never expired");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

#[test]
fn a_server_down_at_start_or_restarted_fails_calls_then_recovers() {
    let mut server = RedisServer::start();
    let redis =
        Redis::new(RedisConfig::new(server.url()).with_connect_timeout(Duration::from_millis(500)))
            .unwrap();
    let vm = Rc::new(vm(&redis, VmConfig::default()));
    server.kill();
    // Down: degraded, not an error of the script.
    runtime().block_on(check(
        &vm,
        r#"
        local v, err = redis.call("PING")
        assert(v == nil and err:find("cannot connect"), tostring(err))
        local v, err = shared.r:get("k")
        assert(v == nil and err:find("cannot connect"), tostring(err))
        local ok, err = shared.r:set("k", 1)
        assert(ok == false and type(err) == "string")
        return "ok"
        "#,
    ));
    assert!(redis.ping_blocking().is_err());
    server.restart();
    assert!(redis.ping_blocking().is_ok());

    // Restarted under load: calls in flight get `nil, err` (never a Lua error), then
    // succeed again without a new pool.
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let (failures, successes) = local.block_on(&rt, async {
        let stop = Rc::new(std::cell::Cell::new(false));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (vm, stop) = (Rc::clone(&vm), Rc::clone(&stop));
            tasks.push(tokio::task::spawn_local(async move {
                let (mut failed, mut ok) = (0, 0);
                while !stop.get() {
                    let v = vm
                        .exec_async(&Script::new(
                            "load.lua",
                            "local n, err = redis.call('INCR', 'load') return n ~= nil, err",
                        ))
                        .await
                        .expect("a failing call is nil, err, not an error");
                    if v[0] == Value::Boolean(true) {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                    tokio::task::yield_now().await;
                }
                (failed, ok)
            }));
        }
        // Let them run, restart the server, and wait until calls succeed again.
        wait_for(&vm, "return redis.call('GET', 'load') ~= false and tonumber(redis.call('GET', 'load')) > 50").await;
        let server = tokio::task::spawn_blocking(move || {
            server.restart();
            server
        })
        .await
        .unwrap();
        wait_for(&vm, "return redis.call('GET', 'load') ~= false and tonumber(redis.call('GET', 'load')) > 50").await;
        stop.set(true);
        let mut totals = (0, 0);
        for t in tasks {
            let (f, o) = t.await.unwrap();
            totals.0 += f;
            totals.1 += o;
        }
        drop(server);
        totals
    });
    assert!(successes > 0, "{failures} failures, {successes} successes");
}

/// Polls `source` (returning a boolean) until it returns true; 20 s at most.
async fn wait_for(vm: &Vm, source: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = vm
            .exec_async(&Script::new("wait.lua", source))
            .await
            .unwrap();
        if v.first() == Some(&Value::Boolean(true)) {
            return;
        }
        assert!(Instant::now() < deadline, "never true: {source}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_slow_reply_times_out_and_a_full_pool_waits_bounded() {
    let server = RedisServer::start();
    let redis = Redis::new(
        RedisConfig::new(server.url())
            .with_pool_size(1)
            .with_command_timeout(Duration::from_millis(500))
            .with_pool_timeout(Duration::from_millis(100)),
    )
    .unwrap();
    let fast_vm = vm(&redis, VmConfig::default());
    let rt = runtime();
    // A reply that does not come in time (BLPOP on an empty list): timed out, and the
    // connection is closed (the next command gets a fresh one).
    rt.block_on(check(
        &fast_vm,
        r#"
        local v, err = redis.call("BLPOP", "empty", 5)
        assert(v == nil and err == "timed out after 500ms", tostring(err))
        assert(redis.call("PING").ok == "PONG")
        return "ok"
        "#,
    ));

    // The only connection busy: the next command waits pool_timeout, then fails.
    let slow_redis = Redis::new(
        RedisConfig::new(server.url())
            .with_pool_size(1)
            .with_command_timeout(Duration::from_secs(30))
            .with_pool_timeout(Duration::from_millis(100)),
    )
    .unwrap();
    let vm = Rc::new(self::vm(&slow_redis, VmConfig::default()));
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let holder = {
            let vm = Rc::clone(&vm);
            tokio::task::spawn_local(async move {
                vm.exec_async(&Script::new("hold.lua", "return redis.call('BLPOP', 'wake', 20)"))
                    .await
                    .unwrap()
            })
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while slow_redis.status().in_use == 0 {
            assert!(Instant::now() < deadline, "the holder never took the connection");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        check(
            &vm,
            r#"
            local v, err = redis.call("PING")
            assert(v == nil and err == "no free connection within 100ms (all 1 in use)", tostring(err))
            return "ok"
            "#,
        )
        .await;
        assert!(server.command(&["LPUSH", "wake", "up"]).unwrap().starts_with(':'));
        let woke = holder.await.unwrap();
        assert_eq!(
            woke,
            vec![Value::Array(vec![Value::from("wake"), Value::from("up")])]
        );
    });
    // DEBUG SLEEP: the whole server is slow (last: it stays blocked a while).
    rt.block_on(check(
        &fast_vm,
        r#"
        local v, err = redis.call("DEBUG", "SLEEP", "2")
        assert(v == nil and err == "timed out after 500ms", tostring(err))
        return "ok"
        "#,
    ));
}

#[test]
fn a_reply_larger_than_the_vm_may_hold_is_refused() {
    let server = RedisServer::start();
    let redis = Redis::new(RedisConfig::new(server.url())).unwrap();
    let vm = vm(&redis, VmConfig::default().with_memory_limit(8 << 20));
    runtime().block_on(check(
        &vm,
        r#"
        redis.call("SETRANGE", "big", 16 * 1024 * 1024, "x")
        local v, err = redis.call("GET", "big")
        assert(v == nil and err:find("the reply is larger than"), tostring(err))
        local v, err = redis.pipeline({ {"GET", "big"} })
        assert(v == nil and err:find("larger than"), tostring(err))
        assert(redis.call("STRLEN", "big") == 16 * 1024 * 1024 + 1)
        return "ok"
        "#,
    ));
}
