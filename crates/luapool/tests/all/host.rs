//! Host functions and modules: typed arguments, errors, async yields, registration.

use std::cell::RefCell;
use std::rc::Rc;

use luapool::{Error, HostError, Isolation, Module, Poison, Script, Value, Vm, VmConfig};

use crate::{assert_contains, assert_location, float, ok, run, runtime_error, s, vm};

#[test]
fn sync_host_functions_take_and_return_typed_values() {
    let vm = vm();
    vm.register("add", |(a, b): (i64, i64)| Ok(a + b)).unwrap();
    vm.register("greet", |name: Option<String>| {
        Ok(format!(
            "hello, {}",
            name.unwrap_or_else(|| "nobody".into())
        ))
    })
    .unwrap();
    vm.register("divmod", |(a, b): (i64, i64)| Ok((a / b, a % b)))
        .unwrap();
    vm.register("total", |v: Value| {
        let Value::Array(items) = v else {
            return Err(HostError::new("expected an array"));
        };
        Ok(items.iter().filter_map(Value::as_integer).sum::<i64>())
    })
    .unwrap();
    vm.register("make", |n: i64| {
        Ok(Value::Map(vec![
            (s("n"), Value::Integer(n)),
            (s("list"), Value::Array(vec![Value::Integer(n); 2])),
        ]))
    })
    .unwrap();
    assert_eq!(
        ok(
            &vm,
            "local q, r = divmod(17, 5) local m = make(3)
             return add(40, 2), greet('lua'), greet(), q, r, total({ 1, 2, 3 }), m.n, #m.list"
        ),
        vec![
            Value::Integer(42),
            s("hello, lua"),
            s("hello, nobody"),
            Value::Integer(3),
            Value::Integer(2),
            Value::Integer(6),
            Value::Integer(3),
            Value::Integer(2),
        ]
    );
}

#[test]
fn host_error_names_the_script_line() {
    let vm = vm();
    vm.register("explode", |()| -> luapool::HostResult<()> {
        Err(HostError::new("disk on fire"))
    })
    .unwrap();
    let err = vm
        .exec(&Script::new("host.lua", "local a = 1\nexplode()\nreturn a"))
        .unwrap_err();
    match err {
        Error::Runtime { message, .. } => {
            assert!(message.starts_with("host.lua:2:"), "{message}");
            assert_contains(&message, "disk on fire");
        }
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

#[test]
fn host_error_from_a_std_error_converts_with_question_mark() {
    let vm = vm();
    vm.register("parse", |text: String| Ok(text.parse::<i64>()?))
        .unwrap();
    assert_eq!(ok(&vm, "return parse('12')"), vec![Value::Integer(12)]);
    let message = runtime_error(&vm, "local n = parse('twelve') return n");
    assert!(message.starts_with("t.lua:1:"), "{message}");
    assert_contains(&message, "invalid digit");
}

#[test]
fn host_error_in_tail_position_still_names_the_script_line() {
    // `return f(...)` is the most common way to call a host function; as with Lua's own
    // C functions, the error must still point at the calling line.
    let vm = vm();
    vm.register("explode", |()| -> luapool::HostResult<()> {
        Err(HostError::new("disk on fire"))
    })
    .unwrap();
    vm.register("add", |(a, b): (i64, i64)| Ok(a + b)).unwrap();
    for (source, needle) in [
        ("local x = 1\nreturn explode()", "disk on fire"),
        ("local x = 1\nreturn add('x', 1)", "i64"),
        ("local x = 1\nreturn require('no.such.module')", "not found"),
        ("local x = 1\nreturn json.decode('{')", "json.decode"),
    ] {
        let err = vm.exec(&Script::new("tail.lua", source)).unwrap_err();
        match err {
            Error::Runtime { message, .. } => {
                assert_location(&message, "tail.lua:2:", source);
                assert_contains(&message, needle);
            }
            other => panic!("{source}: expected a runtime error, got {other:?}"),
        }
    }
}

#[test]
fn pcall_of_a_failing_host_function_returns_false_and_the_message() {
    let vm = vm();
    vm.register("explode", |()| -> luapool::HostResult<()> {
        Err(HostError::new("disk on fire"))
    })
    .unwrap();
    let values = ok(
        &vm,
        "local ok, e = pcall(explode) return ok, tostring(e), type(e)",
    );
    assert_eq!(values[0], Value::Boolean(false));
    assert_contains(values[1].as_str().unwrap(), "disk on fire");
    assert_eq!(values[2], s("string"));
    // And the VM keeps working.
    assert_eq!(ok(&vm, "return 1"), vec![Value::Integer(1)]);
}

#[test]
fn wrong_argument_types_are_runtime_errors() {
    let vm = vm();
    vm.register("add", |(a, b): (i64, i64)| Ok(a + b)).unwrap();
    let message = runtime_error(&vm, "local n = add('x', {}) return n");
    assert!(message.starts_with("t.lua:1:"), "{message}");
    assert_eq!(vm.poisoned(), None);
}

#[test]
fn a_panicking_host_function_is_an_error_and_poisons_the_vm() {
    let vm = vm();
    vm.register("boom", |()| -> luapool::HostResult<()> { panic!("kaboom") })
        .unwrap();
    let message = runtime_error(&vm, "boom()");
    assert_contains(&message, "host function panicked: kaboom");
    assert_eq!(vm.poisoned(), Some(Poison::HostPanic));
}

#[tokio::test(flavor = "current_thread")]
async fn async_host_functions_yield_without_blocking() {
    let vm = vm();
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let l = log.clone();
    vm.register_async("step", move |(who, n): (String, i64)| {
        let l = l.clone();
        async move {
            l.borrow_mut().push(format!("{who}{n}"));
            tokio::task::yield_now().await;
            Ok(n * 10)
        }
    })
    .unwrap();
    let a = Script::new("a.lua", "return step('a', 1) + step('a', 2)");
    let b = Script::new("b.lua", "return step('b', 1) + step('b', 2)");
    let (ra, rb) = tokio::join!(vm.exec_async(&a), vm.exec_async(&b));
    assert_eq!(ra.unwrap(), vec![Value::Integer(30)]);
    assert_eq!(rb.unwrap(), vec![Value::Integer(30)]);
    let log = log.borrow();
    assert_eq!(log.len(), 4, "{log:?}");
    // Both executions entered their first call before either made its second one: the
    // first execution's await did not block the thread.
    let mut first_two = log[..2].to_vec();
    first_two.sort();
    assert_eq!(
        first_two,
        vec!["a1".to_string(), "b1".to_string()],
        "{log:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn async_host_function_waits_for_a_oneshot() {
    let vm = vm();
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let rx = Rc::new(RefCell::new(Some(rx)));
    vm.register_async("wait", move |()| {
        let rx = rx.borrow_mut().take();
        async move {
            match rx {
                Some(rx) => Ok(rx.await.map_err(HostError::new)?),
                None => Err(HostError::new("already waited")),
            }
        }
    })
    .unwrap();
    let script = Script::new("w.lua", "local v = wait() return 'got ' .. v");
    let exec = vm.exec_async(&script);
    let send = async move {
        tokio::task::yield_now().await;
        tx.send("value".to_string()).unwrap();
    };
    let (result, ()) = tokio::join!(exec, send);
    assert_eq!(result.unwrap(), vec![s("got value")]);
    // The second call's error surfaces as a runtime error at the line of the call.
    let message = match vm.exec_async(&script).await {
        Err(Error::Runtime { message, .. }) => message,
        other => panic!("{other:?}"),
    };
    assert!(message.starts_with("w.lua:1:"), "{message}");
    assert_contains(&message, "already waited");
}

#[tokio::test(flavor = "current_thread")]
async fn async_host_error_after_a_yield_in_tail_position_names_the_script_line() {
    let vm = vm();
    vm.register_async("later", |fail: bool| async move {
        tokio::task::yield_now().await;
        if fail {
            return Err(HostError::new("too late"));
        }
        Ok(7)
    })
    .unwrap();
    let script = Script::new("late.lua", "local x = later(false)\nreturn later(x == 7)");
    let message = match vm.exec_async(&script).await {
        Err(Error::Runtime { message, .. }) => message,
        other => panic!("{other:?}"),
    };
    assert_location(&message, "late.lua:2:", "return later(x == 7)");
    assert_contains(&message, "too late");
    let script = Script::new("ok.lua", "return later(false)");
    assert_eq!(
        vm.exec_async(&script).await.unwrap(),
        vec![Value::Integer(7)]
    );
}

#[test]
fn async_host_function_from_sync_exec_is_a_runtime_error() {
    let vm = vm();
    vm.register_async("fetch", |()| async {
        tokio::task::yield_now().await;
        Ok(1)
    })
    .unwrap();
    let result = run(&vm, "return fetch()");
    assert!(matches!(result, Err(Error::Runtime { .. })), "{result:?}");
    // The VM is still usable.
    assert_eq!(ok(&vm, "return 2"), vec![Value::Integer(2)]);
}

#[test]
fn sleep_from_sync_exec_is_a_runtime_error() {
    let vm = vm();
    let result = run(&vm, "sleep(0)");
    assert!(matches!(result, Err(Error::Runtime { .. })), "{result:?}");
}

#[test]
fn invalid_names_are_config_errors() {
    let vm = vm();
    for name in ["", "1abc", "a.b", "a b", "a-b", "ä"] {
        let result = vm.register(name, |()| Ok(()));
        assert!(
            matches!(result, Err(Error::Config { .. })),
            "{name:?}: {result:?}"
        );
        let result = vm.register_async(name, |()| async { Ok(()) });
        assert!(matches!(result, Err(Error::Config { .. })), "{name:?}");
    }
    let result = vm.register_module(Module::new("ok").function("bad name", |()| Ok(())));
    assert!(matches!(result, Err(Error::Config { .. })), "{result:?}");
    let result = vm.register_module(Module::new("bad.mod"));
    assert!(matches!(result, Err(Error::Config { .. })), "{result:?}");
}

fn geo() -> Module {
    Module::new("geo")
        .function("dist", |(a, b): (f64, f64)| Ok((a - b).abs()))
        .async_function("slow_dist", |(a, b): (f64, f64)| async move {
            tokio::task::yield_now().await;
            Ok((a - b).abs())
        })
}

#[test]
fn modules_are_globals_and_require_targets() {
    let vm = vm();
    vm.register_module(geo()).unwrap();
    assert_eq!(
        ok(
            &vm,
            "return geo.dist(1, 4), require('geo').dist(2, 4), require('geo') == geo, type(geo.slow_dist)"
        ),
        vec![
            float(3.0),
            float(2.0),
            Value::Boolean(true),
            s("function")
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn module_async_functions_work_in_async_executions() {
    let vm = vm();
    vm.register_module(geo()).unwrap();
    let d: f64 = vm
        .eval_async(&Script::new("g.lua", "return geo.slow_dist(10, 4)"))
        .await
        .unwrap();
    assert_eq!(d, 6.0);
}

#[test]
fn modules_are_read_only() {
    let vm = vm();
    vm.register_module(geo()).unwrap();
    for source in [
        "geo.dist = nil",
        "geo.extra = 1",
        "require('geo').dist = print",
        "rawset(geo, 'dist', print)",
        "setmetatable(geo, {})",
    ] {
        let message = runtime_error(&vm, source);
        assert!(
            message.contains("read-only") || message.contains("protected metatable"),
            "{source}: {message}"
        );
    }
    assert_eq!(
        ok(&vm, "return geo.dist(0, 1), geo.extra"),
        vec![float(1.0), Value::Nil]
    );
}

#[test]
fn registered_functions_survive_in_fresh_vm_mode() {
    let vm = Vm::new(VmConfig::default().with_isolation(Isolation::FreshVm)).unwrap();
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    vm.register("bump", move |()| {
        *c.borrow_mut() += 1;
        Ok(*c.borrow())
    })
    .unwrap();
    vm.register_module(geo()).unwrap();
    vm.set_global("VERSION", Value::from("1.2")).unwrap();
    for expected in 1..=3 {
        assert_eq!(
            ok(
                &vm,
                "x = (x or 0) + 1 return bump(), geo.dist(0, 2), VERSION, x"
            ),
            vec![
                Value::Integer(expected),
                float(2.0),
                s("1.2"),
                Value::Integer(1)
            ]
        );
    }
    assert_eq!(*calls.borrow(), 3);
}

#[test]
fn set_global_tables_are_sealed_deeply() {
    let vm = vm();
    vm.set_global(
        "CONFIG",
        Value::from(serde_json::json!({ "name": "svc", "limits": { "max": 3 } })),
    )
    .unwrap();
    assert_eq!(
        ok(&vm, "return CONFIG.name, CONFIG.limits.max"),
        vec![s("svc"), Value::Integer(3)]
    );
    assert_contains(&runtime_error(&vm, "CONFIG.name = 'x'"), "read-only");
    assert_contains(&runtime_error(&vm, "CONFIG.limits.max = 99"), "read-only");
    assert_eq!(ok(&vm, "return CONFIG.limits.max"), vec![Value::Integer(3)]);
}

#[test]
fn host_functions_can_be_called_directly_with_call() {
    let vm = vm();
    vm.register("add", |(a, b): (i64, i64)| Ok(a + b)).unwrap();
    assert_eq!(vm.call::<i64>("add", (2, 3)).unwrap(), 5);
    let err = vm.call::<i64>("add", ("x", 3)).unwrap_err();
    assert!(matches!(err, Error::Runtime { .. }), "{err:?}");
}
