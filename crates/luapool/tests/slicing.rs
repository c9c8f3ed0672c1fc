//! Time slices: a long async execution yields to the short ones interleaved with it on
//! its thread. Every test asserts the order in which executions finish, never a time.
//!
//! LuaJIT builds do not slice (mlua cannot tell a hook's yield from the script's own
//! there): the slicing tests are Lua 5.4/5.5 only, and one test pins down that on LuaJIT a
//! configured slice changes nothing.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

#[cfg(not(feature = "luajit"))]
use luapool::Error;
use luapool::{Script, Value, Vm, VmConfig};

/// A loop long enough to outlast many 2 ms slices (tens of milliseconds).
const HEAVY: &str = "local s = 0 for i = 1, 3000000 do s = s + i % 7 end return s";

fn sliced() -> VmConfig {
    VmConfig::default().with_time_slice(Duration::from_millis(2))
}

/// Runs `heavy` and then `lights` light executions interleaved on one VM; returns the
/// order in which they finished ("heavy" or "light") and the heavy one's result.
fn race(
    config: VmConfig,
    heavy: &str,
    lights: usize,
) -> (Vec<&'static str>, luapool::Result<Vec<Value>>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let vm = Rc::new(Vm::new(config).unwrap());
        let order = Rc::new(RefCell::new(Vec::new()));
        let heavy_task = {
            let (vm, order, src) = (vm.clone(), order.clone(), heavy.to_string());
            tokio::task::spawn_local(async move {
                let r = vm.exec_async(&Script::new("heavy.lua", src)).await;
                order.borrow_mut().push("heavy");
                r
            })
        };
        // Let the heavy execution start first.
        tokio::task::yield_now().await;
        let light_tasks: Vec<_> = (0..lights)
            .map(|_| {
                let (vm, order) = (vm.clone(), order.clone());
                tokio::task::spawn_local(async move {
                    let r = vm
                        .exec_async(&Script::new("light.lua", "return tostring(secret)"))
                        .await
                        .unwrap();
                    assert_eq!(
                        r,
                        vec![Value::from("nil")],
                        "a light job saw the heavy one's global"
                    );
                    order.borrow_mut().push("light");
                })
            })
            .collect();
        for t in light_tasks {
            t.await.unwrap();
        }
        let result = heavy_task.await.unwrap();
        let order = order.borrow().clone();
        (order, result)
    })
}

#[cfg(not(feature = "luajit"))]
fn lights_first(order: &[&str]) -> bool {
    order.last() == Some(&"heavy")
}

#[cfg(feature = "luajit")]
#[test]
fn luajit_ignores_the_time_slice() {
    let (order, result) = race(sliced(), HEAVY, 5);
    assert_eq!(result.unwrap(), vec![Value::Integer(8999997)]);
    assert_eq!(order.first(), Some(&"heavy"), "{order:?}");
}

#[test]
fn without_slices_the_heavy_execution_finishes_first() {
    // The control: what the scheduler changes.
    let (order, result) = race(VmConfig::default(), HEAVY, 5);
    assert!(result.is_ok());
    assert_eq!(order.first(), Some(&"heavy"), "{order:?}");
}

#[cfg(not(feature = "luajit"))]
#[test]
fn light_executions_finish_while_the_heavy_one_runs() {
    let (order, result) = race(sliced(), HEAVY, 20);
    assert!(lights_first(&order), "{order:?}");
    assert_eq!(result.unwrap(), vec![Value::Integer(8999997)]);
}

#[cfg(not(feature = "luajit"))]
#[test]
fn a_heavy_execution_inside_pcall_is_sliced_and_resumes_correctly() {
    let src = format!(
        "secret = 'heavy' local ok, v = pcall(function() {HEAVY} end) return ok, v, secret"
    );
    let (order, result) = race(sliced(), &src, 10);
    assert!(lights_first(&order), "{order:?}");
    assert_eq!(
        result.unwrap(),
        vec![
            Value::Boolean(true),
            Value::Integer(8999997),
            Value::from("heavy")
        ]
    );
}

#[cfg(not(feature = "luajit"))]
#[test]
fn a_heavy_execution_between_coroutine_steps_resumes_correctly() {
    // The execution is suspended while its own coroutine is mid-way, and both carry on.
    let src = r#"
        secret = "heavy"
        local gen = coroutine.wrap(function() for i = 1, 30 do coroutine.yield(i) end end)
        local sum, s = 0, 0
        for step = 1, 30 do
          sum = sum + gen()
          for i = 1, 100000 do s = s + i % 7 end
        end
        return sum, s, secret"#;
    let (order, result) = race(sliced(), src, 10);
    assert!(lights_first(&order), "{order:?}");
    assert_eq!(
        result.unwrap(),
        vec![
            Value::Integer(465),
            Value::Integer(9000000),
            Value::from("heavy")
        ]
    );
}

#[cfg(not(feature = "luajit"))]
#[test]
fn async_host_calls_keep_working_in_a_sliced_execution() {
    let src = "local s = 0 for round = 1, 5 do sleep(0) for i = 1, 600000 do s = s + i % 7 end end return s";
    let (order, result) = race(sliced(), src, 10);
    assert!(lights_first(&order), "{order:?}");
    assert_eq!(result.unwrap(), vec![Value::Integer(8999985)]);
}

#[cfg(not(feature = "luajit"))]
#[test]
fn the_cpu_limit_still_stops_a_sliced_runaway() {
    let config = sliced().with_cpu_limit(Duration::from_millis(100));
    let (order, result) = race(config, "while true do end", 5);
    assert!(lights_first(&order), "{order:?}");
    assert!(matches!(result, Err(Error::CpuLimit { .. })), "{result:?}");
}

#[cfg(not(feature = "luajit"))]
#[test]
fn the_timeout_still_stops_a_sliced_runaway() {
    let config = sliced().with_timeout(Duration::from_millis(100));
    let (order, result) = race(
        config,
        "pcall(function() while true do end end) while true do end",
        5,
    );
    assert!(lights_first(&order), "{order:?}");
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
}

#[test]
fn sync_executions_are_not_sliced() {
    let vm = Vm::new(sliced()).unwrap();
    let out = vm.exec(&Script::new("heavy.lua", HEAVY)).unwrap();
    assert_eq!(out, vec![Value::Integer(8999997)]);
}
