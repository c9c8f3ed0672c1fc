//! The embedder's API on one VM: per-execution options (limits within the VM's, a
//! context for host functions), serde-typed arguments and results, structured error
//! values.

use std::time::Duration;

use luapool::{Context, Error, ExecOptions, Script, Serde, Value, Vm, VmConfig};
use serde::{Deserialize, Serialize};

/// A VM with limits (so per-execution limits and structured errors apply).
fn limited() -> Vm {
    Vm::new(VmConfig::default().with_timeout(Duration::from_secs(30))).expect("vm")
}

#[derive(Debug, PartialEq)]
struct Tenant(&'static str);

fn register_whoami(vm: &Vm) {
    vm.register("whoami", |()| {
        Ok(Context::get::<Tenant>().map(|t| t.0.to_string()))
    })
    .expect("register");
}

#[test]
fn host_functions_read_the_execution_context() {
    for vm in [limited(), Vm::new(VmConfig::default()).expect("vm")] {
        register_whoami(&vm);
        let script = Script::new("who.lua", "return whoami()");
        let acme = ExecOptions::new().with_context(Tenant("acme"));
        let who: Option<String> = vm.with_options(&acme).eval(&script, ()).expect("eval");
        assert_eq!(who.as_deref(), Some("acme"));
        // Not left behind for the next execution, nor visible outside one.
        let who: Option<String> = vm.eval(&script).expect("eval");
        assert_eq!(who, None);
        assert!(Context::get::<Tenant>().is_none());
        // A context of another type is not this one.
        let other = ExecOptions::new().with_context(42u32);
        let who: Option<String> = vm.with_options(&other).eval(&script, ()).expect("eval");
        assert_eq!(who, None);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn interleaved_executions_see_their_own_context() {
    for vm in [limited(), Vm::new(VmConfig::default()).expect("vm")] {
        register_whoami(&vm);
        vm.register_async("pause", |()| async {
            tokio::task::yield_now().await;
            Ok(())
        })
        .expect("register");
        let script = Script::new(
            "who.lua",
            "local a = whoami(); pause(); local b = whoami(); pause(); return a, b, whoami()",
        );
        let (a, b) = (
            ExecOptions::new().with_context(Tenant("a")),
            ExecOptions::new().with_context(Tenant("b")),
        );
        let (ra, rb) = tokio::join!(
            vm.with_options(&a)
                .eval_async::<(String, String, String)>(&script, ()),
            vm.with_options(&b)
                .eval_async::<(String, String, String)>(&script, ()),
        );
        assert_eq!(ra.expect("a"), ("a".into(), "a".into(), "a".into()));
        assert_eq!(rb.expect("b"), ("b".into(), "b".into(), "b".into()));
    }
}

#[test]
fn a_nested_execution_does_not_see_the_outer_context() {
    let vm = limited();
    let inner = std::rc::Rc::new(Vm::new(VmConfig::default()).expect("inner vm"));
    register_whoami(&inner);
    let nested = std::rc::Rc::clone(&inner);
    vm.register("nested", move |()| {
        let seen: Option<String> = nested
            .eval(&Script::new("inner.lua", "return whoami()"))
            .map_err(luapool::HostError::new)?;
        Ok((seen, Context::get::<Tenant>().map(|t| t.0)))
    })
    .expect("register");
    let opts = ExecOptions::new().with_context(Tenant("outer"));
    let (inner_saw, outer_after): (Option<String>, Option<String>) = vm
        .with_options(&opts)
        .eval(&Script::new("outer.lua", "return nested()"), ())
        .expect("eval");
    assert_eq!(inner_saw, None);
    assert_eq!(outer_after.as_deref(), Some("outer"));
}

#[test]
fn per_execution_limits_tighten_the_vm_limits() {
    let vm = Vm::new(
        VmConfig::default()
            .with_cpu_limit(Duration::from_secs(20))
            .with_instruction_limit(1_000_000_000),
    )
    .expect("vm");
    let small = Vm::new(VmConfig::default().with_instruction_limit(100_000)).expect("vm");
    let spin = Script::new("spin.lua", "while true do end");
    let cpu = ExecOptions::new().with_cpu_limit(Duration::from_millis(20));
    let err = vm.with_options(&cpu).exec(&spin, ()).unwrap_err();
    assert!(
        matches!(err, Error::CpuLimit { limit } if limit == Duration::from_millis(20)),
        "{err:?}"
    );
    let steps = ExecOptions::new().with_instruction_limit(10_000);
    let err = vm.with_options(&steps).exec(&spin, ()).unwrap_err();
    assert!(
        matches!(err, Error::InstructionLimit { budget: 10_000 }),
        "{err:?}"
    );
    // A looser limit does not loosen the VM's.
    let loose = ExecOptions::new().with_instruction_limit(u64::MAX);
    let err = small
        .with_options(&loose)
        .exec(&Script::new("n.lua", "for i = 1, 1e12 do end"), ())
        .unwrap_err();
    assert!(
        matches!(err, Error::InstructionLimit { budget: 100_000 }),
        "{err:?}"
    );
    // The VM is fine afterwards, and an execution without options has the VM's limits.
    assert_eq!(
        vm.eval::<i64>(&Script::new("ok.lua", "return 1")).ok(),
        Some(1)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_per_execution_timeout_cancels_an_await() {
    let vm = limited();
    vm.register_async("slow", |()| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(())
    })
    .expect("register");
    let opts = ExecOptions::new().with_timeout(Duration::from_millis(30));
    let err = vm
        .with_options(&opts)
        .exec_async(&Script::new("slow.lua", "slow()"), ())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { limit } if limit == Duration::from_millis(30)),
        "{err:?}"
    );
}

#[test]
fn per_execution_limits_need_a_vm_with_limits() {
    let vm = Vm::new(VmConfig::default()).expect("vm");
    let opts = ExecOptions::new().with_cpu_limit(Duration::from_millis(5));
    let err = vm
        .with_options(&opts)
        .exec(&Script::new("x.lua", "return 1"), ())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { message } if message.contains("per-execution limit")),
        "{err:?}"
    );
}

#[derive(Serialize)]
struct Order {
    total: f64,
    items: Vec<String>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Verdict {
    allow: bool,
    count: i64,
    note: Option<String>,
}

#[test]
fn serde_types_go_in_and_come_out() {
    let vm = Vm::new(VmConfig::default()).expect("vm");
    let rules = Script::new(
        "rules.lua",
        "function decide(o) return { allow = o.total < 100, count = #o.items } end",
    );
    let order = Order {
        total: 12.5,
        items: vec!["tea".into(), "cake".into()],
    };
    let Serde(verdict): Serde<Verdict> =
        vm.call_in(&rules, "decide", Serde(order)).expect("call_in");
    assert_eq!(
        verdict,
        Verdict {
            allow: true,
            count: 2,
            note: None
        }
    );
    // A result that does not fit says what did not match.
    let err = vm
        .eval::<Serde<Verdict>>(&Script::new("bad.lua", "return { allow = 'yes' }"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conversion { message } if message.contains("invalid type")),
        "{err:?}"
    );
}

#[test]
fn table_errors_reach_the_host_as_values() {
    let vm = limited();
    let err = vm
        .exec(&Script::new(
            "e.lua",
            "error({ code = 42, tags = { 'a', 'b' } })",
        ))
        .unwrap_err();
    let value = err.value().expect("a structured value");
    assert_eq!(value.get("code"), Some(&Value::Integer(42)));
    assert_eq!(
        value.get("tags"),
        Some(&Value::Array(vec![Value::from("a"), Value::from("b")]))
    );
    assert!(err.to_string().starts_with("table: "), "{err}");
    assert!(err.traceback().is_some());

    // `__tostring` gives the message; the value keeps the fields.
    let err = vm
        .exec(&Script::new(
            "t.lua",
            "error(setmetatable({ code = 7 }, { __tostring = function(e) return 'E' .. e.code end }))",
        ))
        .unwrap_err();
    assert_eq!(err.to_string(), "E7");
    assert_eq!(
        err.value().and_then(|v| v.get("code")),
        Some(&Value::Integer(7))
    );

    // A string error has no value, and a table caught by pcall in an earlier execution
    // does not reach this one.
    vm.exec(&Script::new("p.lua", "pcall(error, { secret = 1 })"))
        .expect("pcall");
    let err = vm
        .exec(&Script::new("s.lua", "error('plain')"))
        .unwrap_err();
    assert!(err.value().is_none(), "{err:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_table_error_stays_with_its_execution() {
    let vm = limited();
    vm.register_async("pause", |()| async {
        tokio::task::yield_now().await;
        Ok(())
    })
    .expect("register");
    let a = Script::new("a.lua", "pause() error({ who = 'a' })");
    let b = Script::new("b.lua", "pause() error('b failed')");
    let (ra, rb) = tokio::join!(vm.exec_async(&a), vm.exec_async(&b));
    let (ea, eb) = (ra.unwrap_err(), rb.unwrap_err());
    assert_eq!(
        ea.value().and_then(|v| v.get("who")),
        Some(&Value::from("a")),
        "{ea:?}"
    );
    assert_eq!(
        ea.value().and_then(|v| v.get("who")),
        Some(&Value::from("a"))
    );
    assert!(eb.value().is_none(), "{eb:?}");
}

#[test]
fn a_replaced_error_does_not_carry_the_first_value() {
    if cfg!(feature = "luajit") {
        return; // no to-be-closed variables
    }
    let vm = limited();
    let err = vm
        .exec(&Script::new(
            "c.lua",
            "local x <close> = setmetatable({}, { __close = function() error('from close', 0) end })\n\
             error({ first = true })",
        ))
        .unwrap_err();
    assert!(err.to_string().contains("from close"), "{err}");
    assert!(err.value().is_none(), "{err:?}");
}

#[test]
fn an_async_host_function_called_from_a_sync_execution_says_so() {
    let vm = Vm::new(VmConfig::default()).expect("vm");
    vm.register_async("fetch", |()| async {
        tokio::task::yield_now().await;
        Ok(1)
    })
    .expect("register");
    let err = vm
        .exec(&Script::new("f.lua", "local v = fetch()\nreturn v"))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exec_async"), "{text}");
    assert!(text.starts_with("f.lua:1:"), "{text}");
}

#[test]
fn host_functions_read_the_execution_id() {
    for vm in [limited(), Vm::new(VmConfig::default()).expect("vm")] {
        vm.register("my_id", |()| Ok(Context::id().map(|id| id.to_string())))
            .expect("register");
        let script = Script::new("id.lua", "return my_id()");
        let opts = ExecOptions::new().with_id("req-7");
        let id: Option<String> = vm.with_options(&opts).eval(&script, ()).expect("eval");
        assert_eq!(id.as_deref(), Some("req-7"));
        assert_eq!(vm.eval::<Option<String>>(&script).expect("eval"), None);
    }
}

#[test]
fn a_kept_function_runs_as_an_execution_with_the_vms_limits() {
    use luapool::mlua::Function;
    let vm = Vm::new(VmConfig::default().with_instruction_limit(100_000)).unwrap();
    let kept: Function = vm
        .eval(&Script::new(
            "keep",
            "local n = 40 return function(x) if x == 0 then while true do end end return n + x end",
        ))
        .unwrap();
    assert_eq!(vm.call_function::<i64>(&kept, 2).unwrap(), 42);
    // The kept function gets a budget of its own, and the VM's limit holds.
    let err = vm.call_function::<i64>(&kept, 0).unwrap_err();
    assert!(matches!(err, Error::InstructionLimit { .. }), "{err:?}");
    // A function of another VM's state is refused, not pushed onto this one.
    let other = Vm::new(VmConfig::default()).unwrap();
    let err = other.call_function::<i64>(&kept, 2).unwrap_err();
    assert!(matches!(err, Error::ForeignFunction), "{err:?}");
    // With options: a tighter limit of its own.
    let opts = ExecOptions::new().with_instruction_limit(1_000);
    let err = vm
        .with_options(&opts)
        .call_function::<i64>(&kept, 0)
        .unwrap_err();
    assert!(matches!(err, Error::InstructionLimit { .. }), "{err:?}");
}
