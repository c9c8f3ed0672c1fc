//! Host copies of script data (issue 11, 16): `json.encode`, `print`, `log.*` and the
//! conversion of results copy every reference of a string; each call is bounded by the
//! VM's memory limit (or `DEFAULT_COPY_LIMIT`) and fails with a clear error, and log
//! lines cannot be forged.

use std::sync::{Arc, Mutex};

use luapool::{CopyBudget, Error, LogOutput, Script, Value, Vm, VmConfig};

const DEFAULT_COPY_LIMIT: usize = CopyBudget::DEFAULT_LIMIT;

use crate::{assert_contains, assert_location, ok, run, runtime_error, Buf};

/// The issue's limits: `--memory-limit 64MiB`.
fn limited() -> Vm {
    Vm::new(VmConfig::default().with_memory_limit(64 << 20)).unwrap()
}

/// A table `t` holding `n` references to one string `s` of `bytes` bytes.
fn refs(bytes: u64, n: u32) -> String {
    format!("local s = string.rep('x', {bytes}) local t = {{}} for i = 1, {n} do t[i] = s end")
}

/// The VM still works after the error (the process survived, the VM is usable).
fn still_works(vm: &Vm) {
    assert_eq!(ok(vm, "return 1 + 1"), vec![Value::Integer(2)]);
}

#[test]
fn the_issue_repro_fails_with_a_copy_limit_error() {
    let vm = limited();
    let source = format!("{}\nreturn json.encode(t)", refs(30_000_000, 1000));
    let message = runtime_error(&vm, &source);
    assert_location(&message, "t.lua:2:", &source);
    assert_contains(&message, "json.encode: host copy limit exceeded (limit ");
    still_works(&vm);
}

#[test]
fn scripts_can_catch_the_copy_limit_error() {
    let vm = limited();
    let source = format!(
        "{} local ok, err = pcall(json.encode, t) return ok, err, #json.encode({{ s }})",
        refs(10_000_000, 1000)
    );
    let got = ok(&vm, &source);
    assert_eq!(got[0], Value::Boolean(false));
    assert_contains(
        got[1].as_str().unwrap(),
        "json.encode: host copy limit exceeded",
    );
    // One copy (and its JSON text) fits within the limit.
    assert_eq!(got[2], Value::Integer(10_000_004));
}

#[test]
fn nested_tables_and_keys_count_every_reference() {
    let vm = limited();
    let nested = format!(
        "{} return json.encode({{ a = {{ b = {{ c = t }} }} }})",
        refs(10_000_000, 100)
    );
    assert_contains(&runtime_error(&vm, &nested), "host copy limit exceeded");
    let keys = "local s = string.rep('k', 10000000) local t = {}
                for i = 1, 100 do t[i] = { [s] = true } end return json.encode(t)";
    assert_contains(&runtime_error(&vm, keys), "host copy limit exceeded");
    still_works(&vm);
}

#[test]
fn many_small_strings_shared_through_a_subtable_count_every_time() {
    // 1000 distinct 1 KB strings (1 MB in Lua), the row referenced 100 times: 100 MB.
    let vm = limited();
    let source = "local row = {} for i = 1, 1000 do row[i] = string.rep(string.char(65 + i % 26), 1000) .. i end
                  local t = {} for i = 1, 100 do t[i] = row end";
    let encode = format!("{source} return json.encode(t)");
    assert_contains(&runtime_error(&vm, &encode), "host copy limit exceeded");
    let results = format!("{source} return t");
    assert!(matches!(run(&vm, &results), Err(Error::CopyLimit { .. })));
    let fits = format!("{source} return #json.encode({{ row, row }})");
    assert_eq!(
        ok(&vm, &fits)[0].as_integer().map(|n| n > 2_000_000),
        Some(true)
    );
}

#[test]
fn table_entries_are_charged_as_well_as_strings() {
    let lua = luapool::mlua::Lua::new();
    let t: luapool::mlua::Value = lua.load("return { 1, 2, 3 }").eval().unwrap();
    let entry = std::mem::size_of::<Value>();
    let mut tight = CopyBudget::new(3 * entry - 1);
    assert!(matches!(
        Value::from_lua_within(&t, &lua, &mut tight),
        Err(Error::CopyLimit { .. })
    ));
    let mut enough = CopyBudget::new(3 * entry);
    assert!(Value::from_lua_within(&t, &lua, &mut enough).is_ok());
    assert_eq!(enough.left(), 0);
}

#[test]
fn results_are_bounded_by_the_memory_limit() {
    let vm = limited();
    let err = run(&vm, &format!("{} return t", refs(30_000_000, 1000))).unwrap_err();
    assert!(
        matches!(err, Error::CopyLimit { limit } if limit < 100 << 20),
        "{err:?}"
    );
    assert_contains(&err.to_string(), "host copy limit exceeded");
    // A big result that is not repeated still converts.
    let one = ok(&vm, "return string.rep('y', 30000000)");
    assert_eq!(one[0].as_str().map(str::len), Some(30_000_000));
    still_works(&vm);
}

#[test]
fn without_a_memory_limit_the_default_copy_limit_applies() {
    let vm = crate::vm();
    let mib = 1 << 20;
    let n = DEFAULT_COPY_LIMIT / mib + 1;
    let err = run(&vm, &format!("{} return t", refs(mib as u64, n as u32))).unwrap_err();
    assert!(
        matches!(err, Error::CopyLimit { limit } if limit == DEFAULT_COPY_LIMIT),
        "{err:?}"
    );
    let source = format!("{} return #json.encode(t)", refs(mib as u64, n as u32));
    assert_contains(
        &runtime_error(&vm, &source),
        "json.encode: host copy limit exceeded",
    );
}

#[test]
fn print_is_bounded_and_writes_nothing_when_over() {
    let vm = limited();
    let out = Buf::default();
    vm.set_output(out.clone());
    let source = "local s = string.rep('x', 30000000) print(s, s, s)";
    assert_contains(
        &runtime_error(&vm, source),
        "t.lua:1: print: host copy limit exceeded",
    );
    let tostring = "local s = string.rep('x', 30000000)
                    local o = setmetatable({}, { __tostring = function() return s end })
                    print(o, o, o)";
    assert_contains(
        &runtime_error(&vm, tostring),
        "print: host copy limit exceeded",
    );
    assert_eq!(out.text(), "");
    // Within the limit print writes raw bytes, newlines included (it is the script's
    // stdout).
    ok(&vm, "print('a\\nb', 1)");
    assert_eq!(out.text(), "a\nb\t1\n");
}

/// Log events recorded by a subscriber: (target, message).
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<(String, String)>>>);

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        let target = event.metadata().target().to_string();
        self.0.lock().unwrap().push((target, message));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Events {
    /// Runs `source` on `vm` with this subscriber; the events it logged.
    fn capture(
        &self,
        vm: &Vm,
        source: &str,
    ) -> (luapool::Result<Vec<Value>>, Vec<(String, String)>) {
        let result = tracing::subscriber::with_default(self.clone(), || {
            vm.exec(&Script::new("t.lua", source))
        });
        (result, std::mem::take(&mut *self.0.lock().unwrap()))
    }
}

#[test]
fn log_is_bounded() {
    let vm = limited();
    let events = Events::default();
    let source = "local s = string.rep('x', 30000000) log.info(s, s, s)";
    let (result, logged) = events.capture(&vm, source);
    match result {
        Err(Error::Runtime { message, .. }) => {
            assert_contains(&message, "t.lua:1: log: host copy limit exceeded")
        }
        other => panic!("{other:?}"),
    }
    assert!(logged.is_empty(), "{logged:?}");
}

#[test]
fn log_lines_cannot_be_forged() {
    let vm = crate::vm();
    let events = Events::default();
    let source = r#"log.warn("user=bob\n2026-01-01T00:00:00Z  INFO admin logged in\r\27[2K", "\t", "\226\128\168")"#;
    let (result, logged) = events.capture(&vm, source);
    result.unwrap();
    assert_eq!(
        logged,
        vec![(
            "luapool::script".to_string(),
            "user=bob\\n2026-01-01T00:00:00Z  INFO admin logged in\\r\\x1b[2K\t\t\t\\u{2028}"
                .to_string()
        )]
    );
}

#[test]
fn print_to_a_log_is_one_escaped_event() {
    let vm = crate::vm();
    vm.set_output(LogOutput);
    let events = Events::default();
    let (result, logged) = events.capture(&vm, r#"print("a\nfake line", 2) print("b")"#);
    result.unwrap();
    assert_eq!(
        logged,
        vec![
            (
                "luapool::script::print".to_string(),
                "a\\nfake line\t2".to_string()
            ),
            ("luapool::script::print".to_string(), "b".to_string()),
        ]
    );
}

#[test]
fn a_copy_counts_as_if_the_execution_had_allocated_it() {
    // 48 MB held under 64 MiB: printing 24 MB of it would take more than is left. (LuaJIT
    // keeps string.rep's and `..`'s buffers until they are collected, so what a script
    // holds there is not known to the byte.)
    if crate::JIT {
        return;
    }
    let vm = limited();
    let out = Buf::default();
    vm.set_output(out.clone());
    let build = "local a, b = string.rep('x', 12000000), string.rep('y', 12000000)
                 local c = a .. b";
    let source = format!("{build}\nprint(c)");
    assert_contains(
        &runtime_error(&vm, &source),
        "print: host copy limit exceeded",
    );
    assert_eq!(out.text(), "");
    // Results are converted after the execution, within what the VM may hold.
    let got = ok(&limited(), &format!("{build}\nreturn c"));
    assert_eq!(got[0].as_str().map(str::len), Some(24_000_000));
    // A VM at its limit can still log a short line.
    ok(&vm, "print('still here')");
    assert_eq!(out.text(), "still here\n");
}
