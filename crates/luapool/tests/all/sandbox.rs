//! Adversarial scripts: every way out of the sandbox must fail or be absent, and no
//! attempt may change what the next execution sees.

use luapool::{Error, Value, Vm, VmConfig};

use crate::{
    assert_contains, float, lua, module_dir, nil_error, ok, run, runtime_error, s, vm, JIT,
};

/// The standard library a *next* execution sees is intact.
#[track_caller]
fn assert_intact(vm: &Vm) {
    let values = ok(
        vm,
        r#"return string.upper("a"), ("b"):upper(), string.rep("x", 2), math.max(1, 2),
                  table.concat({ "p", "q" }), type(os.time), tostring(12), type(print),
                  rawget(_G, "x"), type(rawset), type(require)"#,
    );
    assert_eq!(
        values,
        vec![
            s("A"),
            s("B"),
            s("xx"),
            Value::Integer(2),
            s("pq"),
            s("function"),
            s("12"),
            s("function"),
            Value::Nil,
            s("function"),
            s("function"),
        ]
    );
}

/// Runs an escape attempt expected to raise an error containing `needle`, then checks
/// that the next execution still sees the intact standard library.
#[track_caller]
fn assert_refused(source: &str, needle: &str) {
    let vm = vm();
    let message = runtime_error(&vm, source);
    assert_contains(&message, needle);
    assert_intact(&vm);
}

#[test]
fn os_execute_is_absent() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "return os.execute, os.exit, os.getenv, os.remove, os.rename, os.tmpname, os.setlocale"
        ),
        vec![Value::Nil; 7]
    );
    assert_refused(
        "os.execute('touch /tmp/luapool-pwned')",
        &nil_error("call", "field", "execute"),
    );
    assert_refused(
        "os.getenv('HOME')",
        "if this is os.getenv: it is not available in the sandbox",
    );
    assert!(!std::path::Path::new("/tmp/luapool-pwned").exists());
}

#[test]
fn os_keeps_only_time_functions() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "return type(os.time()), type(os.clock()), type(os.date('%Y')), os.difftime(5, 2)"
        ),
        vec![s("number"), s("number"), s("string"), float(3.0)]
    );
}

#[test]
fn io_is_nil() {
    let vm = vm();
    assert_eq!(
        ok(&vm, &lua("return io, _G.io, _ENV.io")),
        vec![Value::Nil; 3]
    );
    assert_refused(
        "local f = io.open('/etc/passwd') return f:read('a')",
        &nil_error("index", "global", "io"),
    );
    assert_refused(
        "io.write('x')",
        "'io' is not available in the sandbox (see docs/sandbox.md)",
    );
}

#[test]
fn require_io_fails() {
    assert_refused("return require('io')", "module 'io' not found");
}

#[test]
fn require_package_and_debug_internals_fail_or_are_limited() {
    assert_refused("return require('package')", "module 'package' not found");
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "local d = require('debug') return d.getregistry, d.getinfo, type(d.traceback)"
        ),
        vec![Value::Nil, Value::Nil, s("function")]
    );
}

#[test]
fn require_os_returns_the_limited_os() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "local o = require('os') return o.execute, o.exit, o.getenv, type(o.time), o == os"
        ),
        vec![
            Value::Nil,
            Value::Nil,
            Value::Nil,
            s("function"),
            Value::Boolean(true)
        ]
    );
}

#[test]
fn require_rejects_path_tricks() {
    // A module outside the configured directory must not be reachable with `..`.
    let root = module_dir(&[
        ("secret.lua", "return 'secret'"),
        ("mods/ok.lua", "return 'ok'"),
    ]);
    let vm = Vm::new(VmConfig::default().with_module_path(root.path().join("mods"))).unwrap();
    assert_eq!(ok(&vm, "return require('ok')"), vec![s("ok")]);
    for bad in [
        "../secret",
        "..",
        "/etc/passwd",
        "mods/../secret",
        "a\\\\b",
        "",
    ] {
        let message = runtime_error(&vm, &format!("return require('{bad}')"));
        assert_contains(&message, "invalid module name");
    }
    let message = runtime_error(&vm, "return require('.secret')");
    assert_contains(&message, "invalid module name");
    assert_intact(&vm);
}

#[test]
fn load_refuses_binary_chunks() {
    let vm = vm();
    let values = ok(
        &vm,
        r#"return load(string.char(27) .. "LuaT\0\25\147\r\n\26\n\4\8\8")"#,
    );
    assert_eq!(values.len(), 2, "{values:?}");
    assert_eq!(values[0], Value::Nil);
    assert_contains(values[1].as_str().unwrap(), "binary chunks are not allowed");

    // Even when the caller asks for binary or either mode.
    let values = ok(&vm, r#"return load(string.char(27) .. "Lua", "x", "bt")"#);
    assert_eq!(values[0], Value::Nil);
    assert_contains(values[1].as_str().unwrap(), "binary");
}

#[test]
fn load_with_binary_mode_is_refused() {
    let vm = vm();
    let values = ok(&vm, r#"return load("\27Lua", "x", "b")"#);
    assert_eq!(values.len(), 2, "{values:?}");
    assert_eq!(values[0], Value::Nil);
    assert_contains(values[1].as_str().unwrap(), "binary chunks are not allowed");
    // A text chunk in mode "b": Lua's own refusal.
    let values = ok(&vm, r#"return load("return 1", "x", "b")"#);
    assert_eq!(values[0], Value::Nil);
    assert_eq!(values[1], s("attempt to load a text chunk (mode is 'b')"));
    // Text mode still works.
    assert_eq!(
        ok(&vm, r#"return load("return 1", "x", "t")()"#),
        vec![Value::Integer(1)]
    );
}

#[test]
fn load_reader_function_cannot_smuggle_a_binary_chunk() {
    let vm = vm();
    let values = ok(
        &vm,
        r#"local parts = { string.char(27), "LuaT" }
           local i = 0
           return load(function() i = i + 1 return parts[i] end)"#,
    );
    assert_eq!(values[0], Value::Nil);
    assert_contains(values[1].as_str().unwrap(), "binary");
}

#[test]
fn load_with_nil_env_is_lua_s() {
    let vm = vm();
    let source = r#"return load("return type(print)", "=x", "t", nil)()"#;
    if JIT {
        // LuaJIT's load ignores an env that is not a table: the caller's environment.
        assert_eq!(ok(&vm, source), vec![s("function")]);
    } else {
        // Lua 5.4, 5.5: the chunk's _ENV is nil.
        assert_contains(
            &runtime_error(&vm, source),
            "x:1: attempt to index a nil value (upvalue '_ENV')",
        );
    }
    assert_eq!(
        ok(&vm, r#"return load("return v", "x", "t", { v = 7 })()"#),
        vec![Value::Integer(7)]
    );
}

#[test]
fn string_dump_is_nil() {
    let vm = vm();
    assert_eq!(
        ok(&vm, r#"return string.dump, ("").dump, ("x").dump"#),
        vec![Value::Nil; 3]
    );
    assert_refused(
        "return string.dump(function() end)",
        &nil_error("call", "field", "dump"),
    );
}

#[test]
fn debug_has_only_traceback() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "return debug.getregistry, debug.getinfo, debug.sethook, debug.gethook, \
             debug.getlocal, debug.setlocal, debug.getupvalue, debug.setupvalue, \
             debug.upvaluejoin, debug.getmetatable, debug.setmetatable, debug.setuservalue"
        ),
        vec![Value::Nil; 12]
    );
    let values = ok(&vm, "local tb = debug.traceback('here') return tb");
    let text = values[0].as_str().unwrap();
    assert!(text.starts_with("here\nstack traceback:"), "{text}");
    assert_contains(text, "t.lua:1:");
}

#[test]
fn debug_traceback_starts_at_its_caller_without_helper_frames() {
    // As in Lua, level 1 (the default) is the function that called `debug.traceback`,
    // also when the call is in tail position (not on LuaJIT, where a tail call replaces
    // its caller's frame); luapool's own helpers are not shown.
    let vm = vm();
    let sources: &[&str] = if JIT {
        &["local tb = debug.traceback('here') return tb"]
    } else {
        &[
            "local tb = debug.traceback('here') return tb",
            "return debug.traceback('here')",
        ]
    };
    for source in sources {
        let values = ok(&vm, source);
        let text = values[0].as_str().unwrap();
        let first_frame = text.lines().nth(2).unwrap_or_default();
        assert!(
            first_frame.trim_start().starts_with("t.lua:1:"),
            "{source}: {text}"
        );
        assert!(!text.contains("luapool:"), "{source}: {text}");
    }
}

#[test]
fn debug_cannot_be_modified() {
    assert_refused("debug.getinfo = print", "read-only");
}

#[test]
fn string_metatable_is_hidden() {
    let vm = vm();
    // The module doc: "the string metatable's `__metatable` is `false`".
    assert_eq!(
        ok(&vm, "return getmetatable('')"),
        vec![Value::Boolean(false)]
    );
    assert_eq!(
        ok(&vm, "return getmetatable('') == getmetatable('abc')"),
        vec![Value::Boolean(true)]
    );
}

#[test]
fn patching_the_string_metatable_fails() {
    // What getmetatable("") returns is not the real metatable: writing through it fails.
    assert_refused(
        "getmetatable('').__index.upper = function() return 'pwned' end",
        "attempt to index a boolean value",
    );
    assert_refused(
        "getmetatable('').__index = { upper = function() return 'pwned' end }",
        "attempt to index a boolean value",
    );
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "local ok = pcall(function() getmetatable('').__index.upper = nil end)
             return ok, ('a'):upper()"
        ),
        vec![Value::Boolean(false), s("A")]
    );
}

#[test]
fn rawset_on_the_string_library_fails() {
    assert_refused(
        "rawset(string, 'upper', function() return 'pwned' end)",
        "read-only",
    );
    assert_refused("rawset(math, 'pi', 3)", "read-only");
    assert_refused("rawset(_G.table, 'insert', nil)", "read-only");
}

#[test]
fn assigning_into_a_library_fails() {
    assert_refused(
        "string.upper = nil",
        "attempt to modify read-only table 'string'",
    );
    assert_refused("string.pwn = function() end", "read-only");
    assert_refused("math.pi = 3", "read-only table 'math'");
    assert_refused("table.insert = print", "read-only table 'table'");
    assert_refused("os.time = print", "read-only table 'os'");
    assert_refused("coroutine.wrap = print", "read-only");
    if !JIT {
        assert_refused("utf8.char = print", "read-only");
    } else {
        assert_refused("bit.band = print", "read-only table 'bit'");
    }
    assert_refused("json.encode = print", "read-only");
}

#[test]
fn setmetatable_on_a_library_fails() {
    assert_refused("setmetatable(string, {})", "protected metatable");
    assert_refused(
        "setmetatable(math, { __index = print })",
        "protected metatable",
    );
}

#[test]
fn library_metatables_are_hidden() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "return getmetatable(string), getmetatable(math), getmetatable(_G), getmetatable(json)"
        ),
        vec![Value::Boolean(false); 4]
    );
}

#[test]
fn setmetatable_on_globals_fails() {
    assert_refused("setmetatable(_G, {})", "protected metatable");
    assert_refused(
        &lua("setmetatable(_ENV, { __index = function() end })"),
        "protected metatable",
    );
}

#[test]
fn collectgarbage_allows_only_count() {
    assert_refused("collectgarbage()", "not allowed in the sandbox");
    for option in [
        "collect",
        "stop",
        "restart",
        "step",
        "incremental",
        "generational",
    ] {
        assert_refused(
            &format!("collectgarbage('{option}')"),
            &format!("'{option}'"),
        );
    }
    let vm = vm();
    let values = ok(&vm, "return collectgarbage('count')");
    assert!(values[0].as_f64().unwrap() > 0.0, "{values:?}");
    if !JIT {
        let values = ok(&vm, "return math.type(collectgarbage('count'))");
        assert_eq!(values[0], s("float"));
    }
}

#[test]
fn file_loading_functions_are_nil() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            &lua("return dofile, loadfile, package, _G.package, _ENV.dofile, loadstring, module")
        ),
        vec![Value::Nil; 7]
    );
    assert_refused(
        "dofile('/etc/passwd')",
        &nil_error("call", "global", "dofile"),
    );
    assert_refused(
        "package.loaded.string = {}",
        &nil_error("index", "global", "package"),
    );
}

#[test]
fn underscore_g_is_the_execution_environment() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            &lua("_G.x = 1 _ENV.y = 2 return x, y, _G == _ENV, rawget(_G, 'x'), _G._G == _G")
        ),
        vec![
            Value::Integer(1),
            Value::Integer(2),
            Value::Boolean(true),
            Value::Integer(1),
            Value::Boolean(true),
        ]
    );
    assert_eq!(ok(&vm, "return x, y, _G.x"), vec![Value::Nil; 3]);
}

#[test]
fn globals_table_lists_only_the_executions_own_globals() {
    // The base is reached through a hidden metatable: `pairs(_G)` cannot enumerate (and
    // so cannot grab) the sandbox's internals.
    let vm = vm();
    let values = ok(
        &vm,
        "mine = true local n, keys = 0, {} for k in pairs(_G) do n = n + 1 keys[#keys + 1] = k end \
         table.sort(keys) return n, table.concat(keys, ',')",
    );
    assert_eq!(values, vec![Value::Integer(2), s("_G,mine")]);
}

#[test]
fn shadowing_a_library_only_affects_the_execution() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "string = { upper = function() return 'fake' end } math = false return string.upper('a'), math"
        ),
        vec![s("fake"), Value::Boolean(false)]
    );
    assert_intact(&vm);
}

#[test]
fn pcall_caught_escape_attempts_leave_the_library_intact_in_the_same_execution() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "local a = pcall(function() string.upper = nil end)
             local b = pcall(rawset, string, 'upper', nil)
             local c = pcall(setmetatable, string, {})
             return a, b, c, string.upper('a')"
        ),
        vec![
            Value::Boolean(false),
            Value::Boolean(false),
            Value::Boolean(false),
            s("A")
        ]
    );
}

#[test]
fn rawset_still_works_on_own_tables() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            "local t = setmetatable({}, { __newindex = function() error('no') end })
             rawset(t, 'k', 1) rawset(_G, 'g', 2) return t.k, g"
        ),
        vec![Value::Integer(1), Value::Integer(2)]
    );
}

#[test]
fn sandbox_errors_are_runtime_errors_not_engine_errors() {
    let vm = vm();
    assert!(matches!(
        run(&vm, "setmetatable(string, {})"),
        Err(Error::Runtime { ref message, .. }) if message.starts_with("t.lua:1:")
    ));
}

#[test]
fn recursion_through_c_functions_is_an_error_not_a_crash() {
    // Each script recurses through a C function until the C stack runs out. Lua 5.4 and
    // 5.5 count C calls; on LuaJIT luapool's stack guard stops them (engine/luajit.rs).
    // Test threads have 2 MiB stacks, the smallest a Rust or tokio thread gets.
    let vm = vm();
    for source in [
        "local function f(s) return (s:gsub('.', f)) end return pcall(f, 'ab')",
        "local function f() table.sort({3, 2, 1}, function(a, b) f() return a < b end) end
         return pcall(f)",
        "local t = setmetatable({}, {}) getmetatable(t).__tostring = function(x) return print(x) end
         return pcall(print, t)",
        "local t = setmetatable({}, {})
         getmetatable(t).__tostring = function(x) return string.format('%s', x) end
         return pcall(tostring, t)",
        "local function f() local co = coroutine.wrap(f) co() end return pcall(f)",
        "local function f() local co = coroutine.create(f) local ok, e = coroutine.resume(co)
           if not ok then error(e, 0) end end
         return pcall(f)",
    ] {
        let values = ok(&vm, source);
        assert_eq!(values.first(), Some(&Value::Boolean(false)), "{source}");
        let message = values[1].as_str().unwrap_or_default().to_string();
        assert_contains(&message, "stack overflow");
    }
    // The guard leaves nothing behind: the same VM still recurses normally.
    assert_eq!(
        ok(
            &vm,
            "return (('abc'):gsub('.', function(c) return c:upper() end))"
        ),
        vec![s("ABC")]
    );
}

#[test]
fn table_functions_cannot_write_into_sealed_tables() {
    // LuaJIT's table functions write raw, past the proxies' `__newindex`: the sandbox
    // wraps them there. On every engine the write fails and leaves nothing behind.
    let vm = vm();
    for source in [
        "table.insert(string, 'x')",
        "table.insert(os, 1, 'x')",
        "table.remove(math)",
    ] {
        let message = runtime_error(&vm, source);
        assert!(
            message.contains("read-only") || message.contains("protected"),
            "{source}: {message}"
        );
    }
    if JIT {
        let message = runtime_error(&vm, "table.move({1}, 1, 1, 1, string)");
        assert_contains(&message, "read-only table 'string'");
        let message = runtime_error(&vm, "table.sort(table)");
        assert_contains(&message, "read-only table 'table'");
    }
    assert_eq!(
        ok(&vm, "return rawget(string, 1), rawget(os, 1), #string"),
        vec![Value::Nil, Value::Nil, Value::Integer(0)]
    );
}

#[tokio::test]
async fn an_execution_cannot_close_its_own_coroutine() {
    // Lua 5.5 lets a coroutine close itself: for an execution's coroutine that would end
    // the execution as if it had returned. LuaJIT has no `coroutine.close`.
    if JIT {
        return;
    }
    let vm = vm();
    let script = luapool::Script::new(
        "close.lua",
        "coroutine.close(coroutine.running()) error('never reached')",
    );
    match vm.exec_async(&script).await {
        // 5.5: what Lua says of its main thread, the execution's counterpart.
        Err(Error::Runtime { message, .. }) if luapool::ENGINE == "Lua 5.5" => {
            assert_contains(&message, "close.lua:1: cannot close main thread")
        }
        Err(Error::Runtime { message, .. }) => {
            assert_contains(&message, "cannot close a running coroutine")
        }
        other => panic!("{other:?}"),
    }
}

/// Every global the sandbox provides, including those it opens on first use, can be
/// removed for one execution by assigning `nil`, as in Lua; the next execution sees it
/// again. (A name the base opens lazily must be known to the globals' `__newindex`,
/// `LAZY_NAMES`, or its value would come back after `x = 1; x = nil`.)
#[test]
fn every_provided_global_can_be_assigned_nil() {
    const NAMES: &[&str] = &[
        "assert",
        "collectgarbage",
        "error",
        "getmetatable",
        "ipairs",
        "load",
        "next",
        "pairs",
        "pcall",
        "print",
        "rawequal",
        "rawget",
        "rawlen",
        "rawset",
        "require",
        "select",
        "setmetatable",
        "tonumber",
        "tostring",
        "type",
        "unpack",
        "xpcall",
        "_VERSION",
        "string",
        "table",
        "math",
        "utf8",
        "coroutine",
        "bit",
        "os",
        "debug",
        "sleep",
        "json",
        "log",
        "time",
        "codec",
        "crypto",
        "http",
        "shared",
    ];
    for name in NAMES {
        // A new VM: the name has not been read yet, so a lazily provided one is still
        // unopened when it is assigned.
        let vm = Vm::new(VmConfig::default()).unwrap();
        let removed = ok(
            &vm,
            &format!("{name} = 1 {name} = nil return {name} == nil"),
        );
        assert_eq!(removed, vec![Value::Boolean(true)], "{name}");
        let untouched = Vm::new(VmConfig::default()).unwrap();
        let present = format!("return {name} ~= nil");
        assert_eq!(ok(&vm, &present), ok(&untouched, &present), "{name}");
    }
}
