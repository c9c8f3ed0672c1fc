//! Limits: each runaway script ends with its specific error, within the grace, and the VM
//! is reused (or reported poisoned) afterwards.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
// The serialising lock is held across awaits on purpose: each async test owns its
// current-thread runtime, so nothing else waits for the lock on that thread.
#![allow(clippy::await_holding_lock)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use luapool::{Error, Isolation, Poison, Script, Value, Vm, VmConfig};

const CPU: Duration = Duration::from_millis(200);

/// Limit tests measure how fast a script is stopped: run them one at a time so that they
/// do not compete for the two cores.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The grace past a limit: the limit itself or 150 ms, whichever is larger. The limit
/// is enforced by a watchdog thread (or a timer) that must itself get a core: on the
/// 2-core CI machine running other test binaries' builds it has been seen to act 94 ms
/// late on a 300 ms timeout. Every other limit in these tests is 5 s or absent, so an
/// execution that this limit failed to stop still fails the assertion.
fn grace(limit: Duration) -> Duration {
    limit.max(Duration::from_millis(150))
}

fn cpu_vm() -> Vm {
    Vm::new(VmConfig::default().with_cpu_limit(CPU)).unwrap()
}

fn run(vm: &Vm, source: &str) -> (luapool::Result<Vec<Value>>, Duration) {
    let start = Instant::now();
    let result = vm.exec(&Script::new("runaway.lua", source));
    (result, start.elapsed())
}

fn assert_cpu_stop(source: &str) {
    let _serial = serial();
    let vm = cpu_vm();
    let (result, elapsed) = run(&vm, source);
    assert!(
        matches!(result, Err(Error::CpuLimit { limit }) if limit == CPU),
        "{source}: {result:?}"
    );
    assert!(elapsed >= CPU, "{source}: stopped early, after {elapsed:?}");
    assert!(
        elapsed <= CPU + grace(CPU),
        "{source}: stopped after {elapsed:?}"
    );
    // No module, per-execution globals: nothing can be half-updated, the VM is reused.
    assert_eq!(vm.poisoned(), None);
    assert_eq!(run(&vm, "return 1 + 1").0.unwrap(), vec![Value::Integer(2)]);
}

#[test]
fn infinite_loop() {
    assert_cpu_stop("while true do end");
}

#[test]
fn infinite_loop_under_pcall() {
    assert_cpu_stop("local ok = pcall(function() while true do end end) return 'escaped', ok");
}

#[test]
fn pcall_retry_loop() {
    assert_cpu_stop("while true do pcall(function() while true do end end) end");
}

#[test]
fn xpcall_with_handler_cannot_swallow() {
    assert_cpu_stop(
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
    );
}

#[test]
fn coroutine_that_never_yields() {
    assert_cpu_stop(
        "local co = coroutine.create(function() while true do end end) return coroutine.resume(co)",
    );
}

#[test]
fn wrapped_coroutine_that_never_yields() {
    assert_cpu_stop("local f = coroutine.wrap(function() while true do end end) return pcall(f)");
}

#[test]
fn coroutine_created_before_the_limit_trips() {
    assert_cpu_stop(
        "local co = coroutine.create(function() while true do coroutine.yield() end end)
         while true do coroutine.resume(co) end",
    );
}

#[test]
fn deep_recursion_is_a_runtime_error() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let (result, _) = run(
        &vm,
        "local function f(n) return f(n + 1) + 1 end return f(1)",
    );
    match result {
        Err(Error::Runtime { message, .. }) => {
            assert!(message.contains("stack overflow"), "{message}")
        }
        other => panic!("expected a stack overflow, got {other:?}"),
    }
}

#[test]
fn deep_recursion_under_a_memory_limit() {
    let vm = Vm::new(VmConfig::default().with_memory_limit(4 << 20)).unwrap();
    let (result, _) = run(
        &vm,
        "local function f(n) return f(n + 1) + 1 end return f(1)",
    );
    assert!(
        matches!(
            result,
            Err(Error::MemoryLimit { .. }) | Err(Error::Runtime { .. })
        ),
        "{result:?}"
    );
}

#[test]
fn coroutine_recursion_ends() {
    let _serial = serial();
    let vm = cpu_vm();
    let (result, elapsed) = run(
        &vm,
        "local depth = 0
         local function r() depth = depth + 1 local co = coroutine.create(r) coroutine.resume(co) end
         r() return depth",
    );
    // Lua stops nesting coroutines ("C stack overflow"); each level's resume returns false.
    let depth = result.unwrap()[0].as_integer().unwrap();
    assert!(depth > 10, "{depth}");
    assert!(elapsed < CPU);
}

fn mem_vm() -> Vm {
    Vm::new(VmConfig::default().with_memory_limit(2 << 20)).unwrap()
}

fn assert_memory_stop(source: &str) {
    let vm = mem_vm();
    let (result, _) = run(&vm, source);
    assert!(
        matches!(result, Err(Error::MemoryLimit { limit: Some(l) }) if l == 2 << 20),
        "{source}: {result:?}"
    );
    // Nothing outlives the execution (per-execution globals, no module): after a memory
    // error the VM is consistent and not poisoned.
    assert_eq!(vm.poisoned(), None);
    assert_eq!(
        run(&vm, "return 'still works'").0.unwrap(),
        vec![Value::from("still works")]
    );
}

#[test]
fn string_rep_bomb() {
    assert_memory_stop("return #string.rep('x', 64 * 1024 * 1024)");
}

#[test]
fn concatenation_bomb() {
    assert_memory_stop("local s = 'x' while true do s = s .. s end");
}

#[test]
fn table_growth_bomb() {
    assert_memory_stop("local t = {} while true do t[#t + 1] = {} end");
}

#[test]
fn memory_error_caught_by_pcall_then_retried() {
    assert_memory_stop(
        "for i = 1, 1000 do pcall(function() local t = {} while true do t[#t + 1] = {} end end) end
         return 'escaped'",
    );
}

#[test]
fn memory_error_caught_by_coroutine_resume() {
    assert_memory_stop(
        "local co = coroutine.create(function() return string.rep('x', 64 * 1024 * 1024) end)
         local ok = coroutine.resume(co)
         return 'escaped', ok",
    );
}

#[test]
fn host_function_result_over_the_memory_limit() {
    let vm = mem_vm();
    vm.register("big", |()| Ok("x".repeat(8 << 20))).unwrap();
    let (result, _) = run(&vm, "local s = big() return #s");
    if cfg!(feature = "lua55") {
        // Known gap, documented in docs/limits.md: on Lua 5.5 mlua hands a host
        // function's owned string to Lua as an external string, which the VM's allocator
        // never sees, so the limit does not count it.
        assert_eq!(result.unwrap(), vec![Value::Integer(8 << 20)]);
    } else {
        assert!(
            matches!(result, Err(Error::MemoryLimit { .. })),
            "{result:?}"
        );
    }
    assert_eq!(run(&vm, "return 1").0.unwrap(), vec![Value::Integer(1)]);
}

#[test]
fn instruction_budget() {
    let vm = Vm::new(VmConfig::default().with_instruction_limit(100_000)).unwrap();
    let (result, _) = run(&vm, "local n = 0 while true do n = n + 1 end");
    assert!(
        matches!(result, Err(Error::InstructionLimit { budget: 100_000 })),
        "{result:?}"
    );
    let (result, _) = run(
        &vm,
        "local ok = pcall(function() while true do end end) return ok",
    );
    assert!(
        matches!(result, Err(Error::InstructionLimit { .. })),
        "{result:?}"
    );
    // A script within the budget runs, twice with the same result (each execution gets
    // the whole budget).
    for _ in 0..2 {
        let (result, _) = run(&vm, "local n = 0 for i = 1, 1000 do n = n + i end return n");
        assert_eq!(result.unwrap(), vec![Value::Integer(500_500)]);
    }
}

/// Sets a flag when dropped: tells that a pending host future was cancelled.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn timeout_cancels_a_host_call_that_never_completes() {
    let _serial = serial();
    let limit = Duration::from_millis(100);
    let vm = Vm::new(VmConfig::default().with_timeout(limit)).unwrap();
    let dropped = Rc::new(Cell::new(false));
    let flag = dropped.clone();
    vm.register_async("never", move |()| {
        let guard = DropFlag(flag.clone());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(())
        }
    })
    .unwrap();
    let start = Instant::now();
    let result = vm.exec_async(&Script::new("wait.lua", "never()")).await;
    let elapsed = start.elapsed();
    assert!(
        matches!(result, Err(Error::Timeout { limit: l }) if l == limit),
        "{result:?}"
    );
    assert!(
        elapsed >= limit && elapsed <= limit + grace(limit),
        "{elapsed:?}"
    );
    assert!(dropped.get(), "the pending host future was not cancelled");
    let ok = vm
        .exec_async(&Script::new("ok.lua", "return 'next'"))
        .await
        .unwrap();
    assert_eq!(ok, vec![Value::from("next")]);
}

#[tokio::test(flavor = "current_thread")]
async fn timeout_stops_a_running_script() {
    let _serial = serial();
    let limit = Duration::from_millis(100);
    let vm = Vm::new(VmConfig::default().with_timeout(limit)).unwrap();
    let start = Instant::now();
    let result = vm
        .exec_async(&Script::new("spin.lua", "sleep(0.01) while true do end"))
        .await;
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    assert!(
        start.elapsed() <= limit + grace(limit),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn cpu_limit_does_not_count_awaiting() {
    let _serial = serial();
    let vm = Vm::new(VmConfig::default().with_cpu_limit(Duration::from_millis(50))).unwrap();
    // 200 ms asleep, almost no CPU: within a 50 ms CPU limit.
    let result = vm
        .exec_async(&Script::new(
            "nap.lua",
            "for i = 1, 4 do sleep(0.05) end return 'rested'",
        ))
        .await;
    assert_eq!(result.unwrap(), vec![Value::from("rested")]);
}

#[test]
fn interrupted_shared_state_poisons() {
    let _serial = serial();
    let vm = Vm::new(
        VmConfig::default()
            .with_isolation(Isolation::Shared)
            .with_cpu_limit(Duration::from_millis(20)),
    )
    .unwrap();
    let (result, _) = run(&vm, "counter = 0 while true do counter = counter + 1 end");
    assert!(matches!(result, Err(Error::CpuLimit { .. })), "{result:?}");
    assert_eq!(vm.poisoned(), Some(Poison::Interrupted));
}

#[test]
fn interrupted_with_modules_loaded_poisons() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.lua"), "return { n = 0 }").unwrap();
    let vm = Vm::new(
        VmConfig::default()
            .with_module_path(dir.path())
            .with_cpu_limit(Duration::from_millis(20)),
    )
    .unwrap();
    let (result, _) = run(
        &vm,
        "local s = require('state') while true do s.n = s.n + 1 end",
    );
    assert!(matches!(result, Err(Error::CpuLimit { .. })), "{result:?}");
    assert_eq!(vm.poisoned(), Some(Poison::Interrupted));
}

#[test]
fn host_panic_is_an_error_and_poisons() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    vm.register("boom", |()| -> luapool::HostResult<()> { panic!("kaboom") })
        .unwrap();
    let (result, _) = run(&vm, "boom()");
    match result {
        Err(Error::Runtime { message, .. }) => assert!(message.contains("kaboom"), "{message}"),
        other => panic!("expected a runtime error, got {other:?}"),
    }
    assert_eq!(vm.poisoned(), Some(Poison::HostPanic));
}

#[test]
fn limits_do_not_leak_into_the_next_execution() {
    let _serial = serial();
    let vm = cpu_vm();
    let (result, _) = run(&vm, "while true do end");
    assert!(matches!(result, Err(Error::CpuLimit { .. })));
    // A coroutine stored nowhere, a fresh execution: runs its full course.
    let (result, _) = run(
        &vm,
        "local co = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
         return co() + co() + co()",
    );
    assert_eq!(result.unwrap(), vec![Value::Integer(6)]);
}

#[tokio::test(flavor = "current_thread")]
async fn an_execution_dropped_before_its_first_poll_never_runs() {
    // The typed async methods plan the execution when called (`ExecFuture`); dropping
    // the future before it is polled must run nothing and leave no hook behind.
    let vm = Vm::new(
        VmConfig::default()
            .with_cpu_limit(Duration::from_secs(5))
            .with_instruction_limit(10_000_000),
    )
    .unwrap();
    let ran = Rc::new(Cell::new(0));
    let seen = Rc::clone(&ran);
    vm.register("mark", move |()| {
        seen.set(seen.get() + 1);
        Ok(())
    })
    .unwrap();
    let never = vm.eval_async::<()>(&Script::new("never.lua", "mark()"));
    drop(never);
    assert_eq!(ran.get(), 0, "a dropped, never polled execution ran");
    // The next executions run whole, sync and async.
    let source = "local s = 0 for i = 1, 100000 do s = s + i end mark() return s";
    let sum: i64 = vm.eval(&Script::new("sum.lua", source)).unwrap();
    assert_eq!(sum, 5_000_050_000);
    let sum: i64 = vm
        .eval_async(&Script::new("sum.lua", source))
        .await
        .unwrap();
    assert_eq!(sum, 5_000_050_000);
    assert_eq!(ran.get(), 2);
}
