//! Shared dictionaries (`shared.<name>`) and the `time` module.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use luapool::{
    DictErrorKind, DictNumber, DictValue, Error, Isolation, Script, SharedDicts, Value, Vm,
    VmConfig,
};

use crate::{assert_contains, assert_location, lua, ok, runtime_error, s};

fn dicts() -> SharedDicts {
    SharedDicts::new([("cache", 100), ("small", 3)]).unwrap()
}

fn vm_with(dicts: &SharedDicts) -> Vm {
    let vm = crate::vm();
    vm.register_shared_dicts(dicts).unwrap();
    vm
}

#[test]
fn two_vms_on_two_threads_see_each_others_writes() {
    let dicts = dicts();
    let writer = {
        let dicts = dicts.clone();
        std::thread::spawn(move || {
            let vm = vm_with(&dicts);
            ok(
                &vm,
                "shared.cache:set('from', 'thread') shared.cache:set('n', 41) shared.cache:set('f', 0.5) shared.cache:set('b', false)",
            );
        })
    };
    writer.join().unwrap();
    let vm = vm_with(&dicts);
    assert_eq!(
        ok(
            &vm,
            "local c = shared.cache return c:get('from'), c:get('n'), c:get('f'), c:get('b'), c:get('nothing')"
        ),
        vec![
            s("thread"),
            Value::Integer(41),
            Value::Number(0.5),
            Value::Boolean(false),
            Value::Nil
        ]
    );
    ok(&vm, "shared.cache:set('back', 'main')");
    let reader = {
        let dicts = dicts.clone();
        std::thread::spawn(move || {
            let vm = vm_with(&dicts);
            ok(&vm, "return shared.cache:get('back')")
        })
    };
    assert_eq!(reader.join().unwrap(), vec![s("main")]);
}

#[test]
fn concurrent_incr_from_many_threads_loses_nothing() {
    let dicts = dicts();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let dicts = dicts.clone();
            std::thread::spawn(move || {
                let vm = vm_with(&dicts);
                ok(
                    &vm,
                    "for _ = 1, 250 do assert(shared.cache:incr('hits', 1, 0)) end",
                );
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let cache = dicts.get("cache").unwrap();
    assert_eq!(cache.get("hits"), Some(DictValue::Integer(1000)));
}

#[test]
fn host_and_scripts_share_entries() {
    let dicts = dicts();
    let vm = vm_with(&dicts);
    let cache = dicts.get("cache").unwrap();
    cache.set("greeting", "hi", None).unwrap();
    cache.set("bytes", vec![0xff, 0x00], None).unwrap();
    assert_eq!(
        ok(
            &vm,
            "shared.cache:set('lua', 'set by lua') return shared.cache:get('greeting'), #shared.cache:get('bytes')"
        ),
        vec![s("hi"), Value::Integer(2)]
    );
    assert_eq!(cache.get("lua").unwrap().as_str(), Some("set by lua"));
    assert_eq!(
        Value::from(cache.get("lua").unwrap()),
        Value::from("set by lua")
    );
}

#[test]
fn shared_is_a_global_and_a_module_and_unknown_dicts_are_errors() {
    let vm = vm_with(&dicts());
    assert_eq!(
        ok(
            &vm,
            "return require('shared') == shared, type(shared.cache), type(shared.cache.get)"
        ),
        vec![Value::Boolean(true), s("table"), s("function")]
    );
    let err = vm
        .exec(&Script::new("nope.lua", "\nreturn shared.nope:get('k')"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("nope.lua:2: shared dictionary 'nope' is not configured")
            && err.contains("--shared-dict nope=CAPACITY"),
        "{err}"
    );
    // Without registration there is no `shared`.
    assert_eq!(ok(&crate::vm(), "return shared"), vec![Value::Nil]);
}

#[test]
fn full_dict_evicts_the_least_recently_used_entry() {
    let vm = vm_with(&dicts());
    assert_eq!(
        ok(
            &vm,
            "local d = shared.small
             d:set('a', 1) d:set('b', 2) d:set('c', 3)
             d:get('a')            -- a is now the most recently used; b the least
             d:set('d', 4)         -- evicts b
             local keys = d:keys()
             return d:get('b'), d:get('a'), d:get('c'), d:get('d'), table.concat(keys, ',')"
        ),
        vec![
            Value::Nil,
            Value::Integer(1),
            Value::Integer(3),
            Value::Integer(4),
            s("d,a,c")
        ]
    );
    assert_eq!(
        ok(
            &vm,
            "return table.concat(shared.small:keys(2), ','), #shared.small:keys(0)"
        ),
        vec![s("d,c"), Value::Integer(3)]
    );
}

#[test]
fn add_and_incr_follow_openresty() {
    let vm = vm_with(&dicts());
    assert_eq!(
        ok(
            &vm,
            "local d = shared.cache
             local a1 = d:add('k', 'first')
             local a2, err = d:add('k', 'second')
             return a1, a2, err, d:get('k')"
        ),
        vec![
            Value::Boolean(true),
            Value::Boolean(false),
            s("exists"),
            s("first")
        ]
    );
    assert_eq!(
        ok(
            &vm,
            &lua("local d = shared.cache
             local n0, e0 = d:incr('n', 1)
             local n1 = d:incr('n', 1, 10)
             local n2 = d:incr('n', 5)
             local n3 = d:incr('n', 0.5)
             local n4, e4 = d:incr('k', 1)
             return n0, e0, n1, n2, n3, n4, e4, math.type(n2)")
        ),
        vec![
            Value::Nil,
            s("not found"),
            Value::Integer(11),
            Value::Integer(16),
            Value::Number(16.5),
            Value::Nil,
            s("not a number"),
            s("integer")
        ]
    );
    assert_eq!(
        ok(
            &vm,
            "local d = shared.cache
             d:set('gone', 1) d:delete('gone') d:set('nil', 1) d:set('nil', nil)
             d:delete('never-there')
             return d:get('gone'), d:get('nil'), d:set(42, 'number key'), d:get('42'), d:get(42)"
        ),
        vec![
            Value::Nil,
            Value::Nil,
            Value::Boolean(true),
            s("number key"),
            s("number key")
        ]
    );
    // The Rust side reports incr failures as typed errors.
    let dicts = dicts();
    let cache = dicts.get("cache").unwrap();
    assert!(matches!(
        cache.incr("missing", 1, None),
        Err(Error::SharedDict {
            reason: DictErrorKind::NotFound,
            ..
        })
    ));
    assert_eq!(
        cache.incr("c", 2, Some(DictNumber::Integer(1))).unwrap(),
        DictNumber::Integer(3)
    );
}

#[test]
fn ttl_zero_or_nil_never_expires_and_bad_ttls_are_errors() {
    // Expiry itself is tested on an injected clock in the crate's unit tests.
    let vm = vm_with(&dicts());
    assert_eq!(
        ok(
            &vm,
            "local d = shared.cache
             d:set('a', 1, 0) d:set('b', 2, nil) d:set('c', 3, 3600) d:add('e', 4, 0.25)
             return d:get('a'), d:get('b'), d:get('c'), d:get('e')"
        ),
        vec![
            Value::Integer(1),
            Value::Integer(2),
            Value::Integer(3),
            Value::Integer(4)
        ]
    );
    for (source, needle) in [
        (
            "shared.cache:set('k', 1, -1)",
            "shared.cache:set: ttl must be a non-negative number of seconds",
        ),
        (
            "shared.cache:set('k', 1, 0/0)",
            "ttl must be a non-negative number",
        ),
        (
            "shared.cache:add('k', 1, 'soon')",
            "shared.cache:add: ttl must be a number of seconds, got string",
        ),
    ] {
        let message = runtime_error(&vm, source);
        assert!(message.starts_with("t.lua:1:"), "{source}: {message}");
        assert_contains(&message, needle);
    }
}

#[test]
fn bad_values_keys_and_calls_are_clear_errors_at_the_script_line() {
    let vm = vm_with(&dicts());
    for (source, needle) in [
        (
            "local x = 1\nshared.cache:set('k', {})",
            "shared.cache:set: value must be a string, number or boolean, got table",
        ),
        (
            "local x = 1\nreturn shared.cache:set('k', print)",
            "shared.cache:set: value must be a string, number or boolean, got function",
        ),
        (
            "local x = 1\nshared.cache:add('k', nil)",
            "shared.cache:add: value must be a string, number or boolean, got nil",
        ),
        (
            "local x = 1\nshared.cache:get({})",
            "shared.cache:get: key must be a string, got table",
        ),
        ("local x = 1\nshared.cache:get('')", "key must not be empty"),
        (
            "local x = 1\nshared.cache:get(string.rep('k', 70000))",
            "key is longer than 65535 bytes",
        ),
        (
            "local x = 1\nshared.cache.get('k')",
            "shared.cache:get: call it with a colon (shared.cache:get(...))",
        ),
        (
            "local x = 1\nshared.cache.set(shared.small, 'k', 1)",
            "call it with a colon",
        ),
        (
            "local x = 1\nshared.cache:incr('n', 'one')",
            "shared.cache:incr: n must be a number, got string",
        ),
        (
            "local x = 1\nshared.cache:keys(-1)",
            "shared.cache:keys: max must be a non-negative integer",
        ),
    ] {
        let message = runtime_error(&vm, source);
        assert_location(&message, "t.lua:2:", source);
        assert_contains(&message, needle);
    }
    // pcall gets the message as a string.
    assert_eq!(
        ok(
            &vm,
            "local ok, err = pcall(shared.cache.set, shared.cache, 'k', {}) return ok, type(err)"
        ),
        vec![Value::Boolean(false), s("string")]
    );
}

#[test]
fn shared_tables_are_tamper_proof() {
    let dicts = dicts();
    let vm = vm_with(&dicts);
    ok(&vm, "shared.cache:set('keep', 'me')");
    for (source, needle) in [
        ("shared.cache = 1", "read-only"),
        ("shared.other = {}", "read-only"),
        ("rawset(shared, 'cache', 1)", "read-only"),
        (
            "shared.cache.get = function() return 'forged' end",
            "read-only",
        ),
        ("rawset(shared.cache, 'get', print)", "read-only"),
        ("setmetatable(shared.cache, {})", "protected metatable"),
        ("setmetatable(shared, {})", "protected metatable"),
        ("require('shared').cache = 1", "read-only"),
    ] {
        let message = runtime_error(&vm, source);
        assert_contains(&message, needle);
    }
    assert_eq!(
        ok(
            &vm,
            "return getmetatable(shared), getmetatable(shared.cache), next(shared), next(shared.cache)"
        ),
        vec![
            Value::Boolean(false),
            Value::Boolean(false),
            Value::Nil,
            Value::Nil
        ]
    );
    // A global of the same name only shadows `shared` within its own execution.
    assert_eq!(
        ok(&vm, "shared = { cache = 'mine' } return shared.cache"),
        vec![s("mine")]
    );
    assert_eq!(
        ok(
            &vm,
            "return shared.cache:get('keep'), type(shared.cache.get)"
        ),
        vec![s("me"), s("function")]
    );
}

#[test]
fn per_execution_isolation_is_unaffected() {
    let vm = vm_with(&dicts());
    let script = Script::new(
        "count.lua",
        "count = (count or 0) + 1 return count, shared.cache:incr('runs', 1, 0)",
    );
    assert_eq!(
        vm.exec(&script).unwrap(),
        vec![Value::Integer(1), Value::Integer(1)]
    );
    assert_eq!(
        vm.exec(&script).unwrap(),
        vec![Value::Integer(1), Value::Integer(2)]
    );
}

#[test]
fn fresh_vm_isolation_replays_the_registration() {
    let dicts = dicts();
    let vm = Vm::new(VmConfig::default().with_isolation(Isolation::FreshVm)).unwrap();
    vm.register_shared_dicts(&dicts).unwrap();
    let script = Script::new("fresh.lua", "return shared.cache:incr('runs', 1, 0)");
    assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(1)]);
    assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(2)]);
    let shared = Vm::new(VmConfig::default().with_isolation(Isolation::Shared)).unwrap();
    shared.register_shared_dicts(&dicts).unwrap();
    assert_eq!(shared.exec(&script).unwrap(), vec![Value::Integer(3)]);
}

#[test]
fn time_now_is_the_wall_clock() {
    let vm = crate::vm();
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let now = match ok(&vm, "return time.now()")[0] {
        Value::Number(n) => n,
        ref other => panic!("{other:?}"),
    };
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(
        before.as_secs_f64() - 0.001 <= now && now <= after.as_secs_f64() + 0.001,
        "{before:?} {now} {after:?}"
    );
    assert!(now.fract() != 0.0 || now > 1e9, "{now}");
    assert_eq!(
        ok(
            &vm,
            &lua("return require('time') == time, math.type(time.monotonic())")
        ),
        vec![Value::Boolean(true), s("float")]
    );
}

#[test]
fn time_monotonic_never_goes_back() {
    let vm = crate::vm();
    assert_eq!(
        ok(
            &vm,
            "local last = time.monotonic()
             for _ = 1, 10000 do
               local t = time.monotonic()
               if t < last then return false, last, t end
               last = t
             end
             return last >= 0"
        ),
        vec![Value::Boolean(true)]
    );
    // Readings from two VMs share one clock.
    let other = crate::vm();
    let a = ok(&vm, "return time.monotonic()")[0].as_f64().unwrap();
    let b = ok(&other, "return time.monotonic()")[0].as_f64().unwrap();
    assert!(b >= a, "{a} {b}");
    assert!(Duration::from_secs_f64(b - a) < Duration::from_secs(60));
}

#[test]
fn time_is_tamper_proof_and_part_of_the_host_library() {
    let vm = crate::vm();
    assert_contains(&runtime_error(&vm, "time.now = nil"), "read-only");
    let bare = Vm::new(VmConfig::default().with_host_library(false)).unwrap();
    assert_eq!(ok(&bare, "return time"), vec![Value::Nil]);
}

/// Issue 12: a request under a 64 MiB limit could leave ~1 GB in a dictionary.
#[test]
fn a_dictionary_keeps_within_its_byte_capacity() {
    let config = luapool::SharedDictConfig::new("cache", 100_000)
        .with_max_bytes(4 << 20)
        .with_max_value_bytes(1 << 20);
    let dicts = SharedDicts::from_config(&[config]).unwrap();
    let cache = dicts.get("cache").unwrap();
    let vm = Vm::new(VmConfig::default().with_memory_limit(64 << 20)).unwrap();
    vm.register_shared_dicts(&dicts).unwrap();
    // Like the issue's request: 1000 values of 1 MiB (each within the value limit).
    let stored = ok(
        &vm,
        "local s = string.rep('x', 1024 * 1024 - 200) local n = 0
         for i = 1, 1000 do if shared.cache:set('k' .. i, s) then n = n + 1 end end
         return n, shared.cache:get('k1') == nil, shared.cache:get('k1000') == s",
    );
    assert_eq!(
        stored,
        vec![
            Value::Integer(1000),
            Value::Boolean(true),
            Value::Boolean(true)
        ]
    );
    assert!(cache.used_bytes() <= 4 << 20, "{}", cache.used_bytes());
    assert_eq!(cache.len(), 4);
    assert_eq!(
        cache.keys(usize::MAX),
        vec!["k1000", "k999", "k998", "k997"]
    );
}

#[test]
fn a_value_over_the_limit_is_refused_with_too_large() {
    let dicts = SharedDicts::from_config(&[luapool::SharedDictConfig::new("c", 10)
        .with_max_bytes(1 << 20)
        .with_max_value_bytes(1000)])
    .unwrap();
    let vm = vm_with(&dicts);
    let got = ok(
        &vm,
        "local big = string.rep('x', 1001)
         local a, b = shared.c:set('k', big)
         local c, d = shared.c:add('k', big)
         shared.c:set('n', string.rep('y', 1000))
         return a, b, c, d, shared.c:get('k'), #shared.c:get('n')",
    );
    assert_eq!(
        got,
        vec![
            Value::Boolean(false),
            s("too large"),
            Value::Boolean(false),
            s("too large"),
            Value::Nil,
            Value::Integer(1000)
        ]
    );
    // The host API says the same; the entry already there stays.
    let c = dicts.get("c").unwrap();
    let err = c.set("n", vec![0u8; 1001], None).unwrap_err();
    assert!(matches!(
        err,
        Error::SharedDict {
            reason: DictErrorKind::TooLarge,
            ..
        }
    ));
    assert_eq!(err.to_string(), "shared dict 'c': too large (key 'n')");
    assert_eq!(
        c.get("n").and_then(|v| v.as_bytes().map(<[u8]>::len)),
        Some(1000)
    );
    assert!(matches!(
        c.add("m", vec![0u8; 1001], None),
        Err(Error::SharedDict {
            reason: DictErrorKind::TooLarge,
            ..
        })
    ));
}

#[test]
fn the_default_limits_apply_to_dictionaries_built_from_capacities() {
    let dicts = SharedDicts::new([("c", 10)]).unwrap();
    let c = dicts.get("c").unwrap();
    assert_eq!(c.max_bytes(), luapool::SharedDictConfig::DEFAULT_MAX_BYTES);
    assert_eq!(
        c.max_value_bytes(),
        luapool::SharedDictConfig::DEFAULT_MAX_VALUE_BYTES
    );
    let vm = vm_with(&dicts);
    let got = ok(
        &vm,
        "return shared.c:set('big', string.rep('x', 2 * 1024 * 1024))",
    );
    assert_eq!(got, vec![Value::Boolean(false), s("too large")]);
    assert_eq!(c.used_bytes(), 0);
}

#[test]
fn replacing_and_deleting_entries_keeps_the_byte_count_exact() {
    let dicts = SharedDicts::new([("c", 10)]).unwrap();
    let c = dicts.get("c").unwrap();
    let entry = |key: &str, len: usize| key.len() + len + luapool::SharedDictConfig::ENTRY_OVERHEAD;
    c.set("a", vec![0u8; 100], None).unwrap();
    c.set("b", 7, None).unwrap();
    assert_eq!(c.used_bytes(), entry("a", 100) + entry("b", 8));
    c.set("a", vec![0u8; 10], None).unwrap();
    assert_eq!(c.used_bytes(), entry("a", 10) + entry("b", 8));
    c.incr("b", 1, None).unwrap();
    c.incr("n", 1, Some(DictNumber::Integer(0))).unwrap();
    assert_eq!(
        c.used_bytes(),
        entry("a", 10) + entry("b", 8) + entry("n", 8)
    );
    c.delete("a");
    c.delete("b");
    c.delete("n");
    assert_eq!(c.used_bytes(), 0);
}

#[test]
fn byte_limits_are_read_from_config_files_and_checked() {
    let configs: Vec<luapool::SharedDictConfig> = serde_json::from_str(
        r#"[{ "name": "a", "capacity": 5, "max_bytes": "1MiB", "max_value_bytes": 4096 },
            { "name": "b", "capacity": 5, "max_bytes": 2000 }]"#,
    )
    .unwrap();
    let dicts = SharedDicts::from_config(&configs).unwrap();
    let a = dicts.get("a").unwrap();
    assert_eq!((a.max_bytes(), a.max_value_bytes()), (1 << 20, 4096));
    // A value limit larger than the byte capacity is capped by it.
    assert_eq!(dicts.get("b").unwrap().max_value_bytes(), 2000);
    let zero = luapool::SharedDictConfig::new("z", 1).with_max_bytes(0);
    assert!(matches!(
        SharedDicts::from_config(&[zero]),
        Err(Error::Config { ref message }) if message.contains("byte limits")
    ));
}
