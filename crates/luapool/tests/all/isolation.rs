//! Isolation modes: what one execution can and cannot see of another.

use std::cell::Cell;
use std::rc::Rc;

use luapool::{Error, Isolation, Script, Value, Vm, VmConfig};

use crate::{module_dir, ok, s, vm};

/// `name.lua`: a module whose top-level state counts calls, and which writes a global at
/// its top level.
const COUNTER: &str = r#"
leaked_from_module = "module"
local n = 0
local M = {}
function M.inc() n = n + 1 return n end
function M.leaked() return leaked_from_module end
function M.peek_exec_global() return exec_global end
return M
"#;

fn vm_with(isolation: Isolation, dir: &tempfile::TempDir) -> Vm {
    Vm::new(
        VmConfig::default()
            .with_isolation(isolation)
            .with_module_path(dir.path()),
    )
    .unwrap()
}

/// A VM with an async `rendezvous()` host function: each caller yields until two
/// executions are suspended in it at once, then both return true (false if the other
/// never arrives, i.e. the executions did not interleave).
fn rendezvous_vm(config: VmConfig) -> Vm {
    let vm = Vm::new(config).unwrap();
    let arrived = Rc::new(Cell::new(0u32));
    vm.register_async("rendezvous", move |()| {
        let arrived = arrived.clone();
        async move {
            arrived.set(arrived.get() + 1);
            for _ in 0..1000 {
                if arrived.get() >= 2 {
                    return Ok(true);
                }
                tokio::task::yield_now().await;
            }
            Ok(false)
        }
    })
    .unwrap();
    vm
}

#[test]
fn per_execution_is_the_default() {
    assert_eq!(vm().config().isolation, Isolation::PerExecution);
}

#[test]
fn per_execution_globals_do_not_persist() {
    let vm = vm();
    assert_eq!(
        ok(&vm, "x = 41 x = x + 1 return x"),
        vec![Value::Integer(42)]
    );
    assert_eq!(ok(&vm, "return x"), vec![Value::Nil]);
    // The same Script (a cached chunk) gets a fresh environment every run too.
    let script = Script::new("count.lua", "count = (count or 0) + 1 return count");
    for _ in 0..3 {
        assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(1)]);
    }
}

#[test]
fn per_execution_underscore_g_writes_do_not_persist() {
    let vm = vm();
    ok(&vm, "_G.x = 1 _G['y'] = 2 rawset(_G, 'z', 3)");
    assert_eq!(ok(&vm, "return x, y, z, _G.x"), vec![Value::Nil; 4]);
}

#[test]
fn per_execution_global_functions_do_not_persist() {
    let vm = vm();
    ok(&vm, "function helper() return 1 end");
    assert_eq!(ok(&vm, "return helper"), vec![Value::Nil]);
    assert!(matches!(
        vm.call::<i64>("helper", ()),
        Err(Error::FunctionNotFound { ref name }) if name == "helper"
    ));
}

#[test]
fn loaded_chunks_write_the_callers_globals() {
    let vm = vm();
    assert_eq!(
        ok(&vm, r#"load("y = 5")() return y, _G.y"#),
        vec![Value::Integer(5), Value::Integer(5)]
    );
    assert_eq!(ok(&vm, "return y"), vec![Value::Nil]);
    // Also when `load` is called from a nested function and the chunk reads globals.
    assert_eq!(
        ok(
            &vm,
            r#"local secret = "s" mine = "m"
               local function go() return load("z = 1 return mine")() end
               return go(), z"#
        ),
        vec![s("m"), Value::Integer(1)]
    );
    assert_eq!(ok(&vm, "return z, mine"), vec![Value::Nil; 2]);
}

#[test]
fn loaded_chunk_globals_inside_a_coroutine_stay_in_the_execution() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            r#"local co = coroutine.wrap(function() load("w = 9")() coroutine.yield(w) end)
               return co(), w"#
        ),
        vec![Value::Integer(9), Value::Integer(9)]
    );
    assert_eq!(ok(&vm, "return w"), vec![Value::Nil]);
}

#[tokio::test(flavor = "current_thread")]
async fn loaded_chunks_write_the_callers_globals_in_async_executions() {
    let vm = vm();
    let script = Script::new("a.lua", r#"load("y = 5")() return y"#);
    assert_eq!(
        vm.exec_async(&script).await.unwrap(),
        vec![Value::Integer(5)]
    );
    assert_eq!(
        vm.exec_async(&Script::new("b.lua", "return y"))
            .await
            .unwrap(),
        vec![Value::Nil]
    );
}

#[test]
fn module_top_level_globals_do_not_appear_in_executions() {
    let dir = module_dir(&[("counter.lua", COUNTER)]);
    let vm = vm_with(Isolation::PerExecution, &dir);
    assert_eq!(
        ok(
            &vm,
            "local m = require('counter') return leaked_from_module, m.leaked()"
        ),
        vec![Value::Nil, s("module")]
    );
    // And an execution's globals do not appear in the module.
    assert_eq!(
        ok(
            &vm,
            "exec_global = 1 return require('counter').peek_exec_global()"
        ),
        vec![Value::Nil]
    );
    assert_eq!(ok(&vm, "return leaked_from_module"), vec![Value::Nil]);
}

#[test]
fn per_execution_module_state_persists() {
    let dir = module_dir(&[("counter.lua", COUNTER)]);
    let vm = vm_with(Isolation::PerExecution, &dir);
    let script = Script::new("inc.lua", "return require('counter').inc()");
    let counts: Vec<Value> = (0..3)
        .map(|_| vm.exec(&script).unwrap()[0].clone())
        .collect();
    assert_eq!(
        counts,
        vec![Value::Integer(1), Value::Integer(2), Value::Integer(3)]
    );
    assert_eq!(
        ok(&vm, "return require('counter') == require('counter')"),
        vec![Value::Boolean(true)]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn interleaved_async_executions_see_only_their_own_globals() {
    let vm = rendezvous_vm(VmConfig::default());
    let a = Script::new(
        "a.lua",
        "mine = 'a' _G.tag = 'A' local met = rendezvous() return met, mine, tag, other",
    );
    let b = Script::new(
        "b.lua",
        "other = 'b' _G.tag = 'B' local met = rendezvous() return met, mine, tag, other",
    );
    let (ra, rb) = tokio::join!(vm.exec_async(&a), vm.exec_async(&b));
    assert_eq!(
        ra.unwrap(),
        vec![Value::Boolean(true), s("a"), s("A"), Value::Nil]
    );
    assert_eq!(
        rb.unwrap(),
        vec![Value::Boolean(true), Value::Nil, s("B"), s("b")]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn interleaved_runs_of_the_same_script_are_isolated() {
    let vm = rendezvous_vm(VmConfig::default());
    let script = Script::new(
        "same.lua",
        "local id = ... n = (n or 0) + 1 who = id local met = rendezvous() return met, n, who",
    );
    let (ra, rb) = tokio::join!(
        vm.exec_with_args_async(&script, "first"),
        vm.exec_with_args_async(&script, "second")
    );
    assert_eq!(
        ra.unwrap(),
        vec![Value::Boolean(true), Value::Integer(1), s("first")]
    );
    assert_eq!(
        rb.unwrap(),
        vec![Value::Boolean(true), Value::Integer(1), s("second")]
    );
}

#[test]
fn call_in_gives_a_fresh_environment_each_call() {
    let vm = vm();
    let app = Script::new(
        "app.lua",
        "n = 0\nfunction handle(x) n = n + x return n, seen end\nfunction mark() seen = true end",
    );
    let first: (i64, Option<bool>) = vm.call_in(&app, "handle", 5).unwrap();
    vm.call_in::<()>(&app, "mark", ()).unwrap();
    let second: (i64, Option<bool>) = vm.call_in(&app, "handle", 5).unwrap();
    assert_eq!(first, (5, None));
    assert_eq!(second, (5, None));
}

#[test]
fn shared_globals_persist() {
    let vm = Vm::new(VmConfig::default().with_isolation(Isolation::Shared)).unwrap();
    let script = Script::new("counter.lua", "counter = (counter or 0) + 1 return counter");
    for expected in 1..=3 {
        assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(expected)]);
    }
    assert_eq!(
        ok(&vm, "return counter, _G.counter"),
        vec![Value::Integer(3); 2]
    );
}

#[test]
fn shared_call_runs_a_function_defined_by_an_earlier_execution() {
    let vm = Vm::new(VmConfig::default().with_isolation(Isolation::Shared)).unwrap();
    ok(
        &vm,
        "total = 10 function add(x) total = total + x return total end",
    );
    assert_eq!(vm.call::<i64>("add", 5).unwrap(), 15);
    assert_eq!(vm.call::<i64>("add", 1).unwrap(), 16);
    assert_eq!(ok(&vm, "return total"), vec![Value::Integer(16)]);
    assert!(matches!(
        vm.call::<()>("nope", ()),
        Err(Error::FunctionNotFound { ref name }) if name == "nope"
    ));
}

#[test]
fn shared_globals_still_cannot_modify_the_library() {
    let vm = Vm::new(VmConfig::default().with_isolation(Isolation::Shared)).unwrap();
    ok(&vm, "string = false");
    // The shared environment shadows the library, but the library itself is intact.
    assert_eq!(ok(&vm, "return string"), vec![Value::Boolean(false)]);
    assert_eq!(
        ok(&vm, "return ('a'):upper(), string"),
        vec![s("A"), Value::Boolean(false)]
    );
    vm.reset().unwrap();
    assert_eq!(ok(&vm, "return string.upper('b')"), vec![s("B")]);
}

#[test]
fn fresh_vm_globals_do_not_persist() {
    let vm = Vm::new(VmConfig::default().with_isolation(Isolation::FreshVm)).unwrap();
    assert_eq!(ok(&vm, "x = 1 return x"), vec![Value::Integer(1)]);
    assert_eq!(ok(&vm, "return x"), vec![Value::Nil]);
}

#[test]
fn fresh_vm_module_state_is_fresh_each_time() {
    let dir = module_dir(&[("counter.lua", COUNTER)]);
    let vm = vm_with(Isolation::FreshVm, &dir);
    let script = Script::new("inc.lua", "return require('counter').inc()");
    for _ in 0..3 {
        assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(1)]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn fresh_vm_async_executions_interleave_in_isolation() {
    let vm = rendezvous_vm(VmConfig::default().with_isolation(Isolation::FreshVm));
    let a = Script::new("a.lua", "x = 'a' local met = rendezvous() return met, x");
    let b = Script::new("b.lua", "local met = rendezvous() return met, x");
    let (ra, rb) = tokio::join!(vm.exec_async(&a), vm.exec_async(&b));
    assert_eq!(ra.unwrap(), vec![Value::Boolean(true), s("a")]);
    assert_eq!(rb.unwrap(), vec![Value::Boolean(true), Value::Nil]);
}

#[test]
fn shared_reset_forgets_globals_but_keeps_modules() {
    let dir = module_dir(&[("counter.lua", COUNTER)]);
    let vm = vm_with(Isolation::Shared, &dir);
    ok(&vm, "x = 1 require('counter').inc()");
    vm.reset().unwrap();
    assert_eq!(
        ok(&vm, "return x, require('counter').inc()"),
        vec![Value::Nil, Value::Integer(2)]
    );
}
