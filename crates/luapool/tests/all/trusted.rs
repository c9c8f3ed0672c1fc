//! Trusted VMs behave like the `lua` interpreter: the state's own globals and
//! libraries, Lua's `load`, `dofile` and `require`; and executions, trusted or not,
//! look like Lua's main chunk.

use std::time::Duration;

use luapool::{Isolation, Script, Value, Vm, VmConfig};

use super::{module_dir, ok, run, s, Buf, JIT};

fn trusted(isolation: Isolation) -> Vm {
    Vm::new(
        VmConfig::default()
            .with_trusted(true)
            .with_isolation(isolation),
    )
    .unwrap()
}

fn both() -> [(Isolation, Vm); 2] {
    [Isolation::Shared, Isolation::PerExecution].map(|i| (i, trusted(i)))
}

#[test]
fn load_and_dofile_bind_to_the_scripts_globals() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.lua");
    std::fs::write(&file, "return x + 1").unwrap();
    let path = file.to_string_lossy().replace('\\', "/");
    for (isolation, vm) in both() {
        let source = format!(
            "x = 41
             local a = load('return x')()
             local b = dofile('{path}')
             local c = loadfile('{path}')()
             return a, b, c"
        );
        let want = [41, 42, 42].map(Value::Integer).to_vec();
        assert_eq!(ok(&vm, &source), want, "{isolation:?}");
    }
}

#[test]
fn g_holds_every_standard_global() {
    for (isolation, vm) in both() {
        let got = ok(
            &vm,
            "local n = 0
             for k in pairs(_G) do if k == 'print' or k == 'string' or k == 'io' then n = n + 1 end end
             return n, rawget(_G, 'print') == print, _G._G == _G",
        );
        let want = vec![
            Value::Integer(3),
            Value::Boolean(true),
            Value::Boolean(true),
        ];
        assert_eq!(got, want, "{isolation:?}");
    }
}

#[test]
fn libraries_and_the_string_metatable_are_lua_s_own() {
    for (isolation, vm) in both() {
        let got = ok(
            &vm,
            "package.path = 'nowhere/?.lua'
             string.shout = function(s) return s:upper() .. '!' end
             return getmetatable('').__index == string, ('hi'):shout(), package.path",
        );
        let want = vec![Value::Boolean(true), s("HI!"), s("nowhere/?.lua")];
        assert_eq!(got, want, "{isolation:?}");
    }
}

#[test]
fn require_honours_package_preload_path_and_loaded() {
    let dir = module_dir(&[("m.lua", "return { n = 7 }")]);
    let path = dir.path().to_string_lossy().replace('\\', "/");
    for (isolation, vm) in both() {
        let source = format!(
            "package.preload.pre = function(name) return 'preloaded ' .. name end
             package.loaded.fake = 'faked'
             package.path = '{path}/?.lua'
             return require('pre'), require('fake'), require('m').n, package.loaded.m == require('m')"
        );
        let want = vec![
            s("preloaded pre"),
            s("faked"),
            Value::Integer(7),
            Value::Boolean(true),
        ];
        assert_eq!(ok(&vm, &source), want, "{isolation:?}");
    }
}

#[test]
fn shared_globals_persist_and_reset_restores_them() {
    let vm = trusted(Isolation::Shared);
    ok(&vm, "x = 1; print = nil; string.extra = true");
    assert_eq!(
        ok(&vm, "return x, print"),
        vec![Value::Integer(1), Value::Nil]
    );
    vm.reset().unwrap();
    let got = ok(&vm, "return x, type(print)");
    assert_eq!(got, vec![Value::Nil, s("function")]);
}

#[test]
fn removing_a_global_does_not_break_compiling_later_scripts() {
    // luapool compiles scripts with its own Lua helper, which must not depend on the
    // state's globals a trusted script may change
    let vm = trusted(Isolation::Shared);
    ok(&vm, "pcall = nil; load = nil");
    assert_eq!(ok(&vm, "return 1 + 1"), vec![Value::Integer(2)]);
}

#[test]
fn reset_keeps_what_the_host_registered() {
    let vm = trusted(Isolation::Shared);
    vm.register("answer", |()| Ok(42)).unwrap();
    ok(&vm, "answer = nil");
    vm.reset().unwrap();
    assert_eq!(ok(&vm, "return answer()"), vec![Value::Integer(42)]);
}

#[test]
fn per_execution_globals_do_not_leak_but_see_the_standard_ones() {
    let vm = trusted(Isolation::PerExecution);
    ok(&vm, "x = 1; print = nil");
    assert_eq!(
        ok(&vm, "return x, type(print)"),
        vec![Value::Nil, s("function")]
    );
}

#[test]
fn print_goes_to_the_host_writer_once_it_has_one() {
    for (isolation, vm) in both() {
        let buf = Buf::default();
        vm.set_output(buf.clone());
        ok(&vm, "print('to the host', 1)");
        assert_eq!(buf.text(), "to the host\t1\n", "{isolation:?}");
    }
}

/// The top level of an execution, sync or async, trusted or not, with or without limits,
/// is the main thread to the script.
#[test]
fn executions_run_as_the_main_chunk() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = if JIT {
        "local top = coroutine.running() == nil
         local ok, err = pcall(coroutine.yield)
         local inner = coroutine.wrap(function() return coroutine.running() ~= nil end)()
         return top, ok, err, inner"
    } else {
        "local _, main = coroutine.running()
         local ok, err = pcall(coroutine.yield)
         local inner = coroutine.wrap(function()
           local _, m = coroutine.running()
           return not m and coroutine.isyieldable()
         end)()
         return main and not coroutine.isyieldable(), ok, err, inner"
    };
    let script = Script::new("main.lua", source);
    for trusted in [false, true] {
        for limited in [false, true] {
            let mut config = VmConfig::default().with_trusted(trusted);
            if limited {
                config = config.with_cpu_limit(Duration::from_secs(10));
            }
            let vm = Vm::new(config).unwrap();
            let message = vm.exec(&Script::new(
                "m",
                "return select(2, pcall(coroutine.yield))",
            ));
            let outside = message.unwrap()[0].clone();
            for result in [vm.exec(&script), runtime.block_on(vm.exec_async(&script))] {
                let got = result.unwrap();
                let label = format!("trusted {trusted}, limited {limited}");
                assert_eq!(got[0], Value::Boolean(true), "{label}");
                assert_eq!(got[1], Value::Boolean(false), "{label}");
                assert_eq!(got[2], outside, "{label}");
                assert_eq!(got[3], Value::Boolean(true), "{label}");
            }
        }
    }
}

/// Async host functions still yield at an execution's top level, trusted or not.
#[test]
fn async_host_functions_work_at_the_top_level() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for trusted in [false, true] {
        let vm = Vm::new(VmConfig::default().with_trusted(trusted)).unwrap();
        vm.register_async("later", |x: i64| async move {
            tokio::task::yield_now().await;
            Ok(x + 1)
        })
        .unwrap();
        let script = Script::new("a.lua", "sleep(0); return later(1)");
        let got = runtime.block_on(vm.exec_async(&script)).unwrap();
        assert_eq!(got, vec![Value::Integer(2)], "trusted {trusted}");
    }
}

/// In the sandbox too, assigning `nil` to a global removes it, standard ones included,
/// for that execution only.
#[test]
fn removing_a_sandbox_global_works_like_lua() {
    for isolation in [Isolation::PerExecution, Isolation::Shared] {
        let vm = Vm::new(VmConfig::default().with_isolation(isolation)).unwrap();
        let got = ok(
            &vm,
            "print = nil
             local gone = print == nil and rawget(_G, 'print') == nil
             print = 5
             local back = print
             print = nil
             string = nil
             return gone, back, print, string",
        );
        let want = vec![
            Value::Boolean(true),
            Value::Integer(5),
            Value::Nil,
            Value::Nil,
        ];
        assert_eq!(got, want, "{isolation:?}");
        if isolation == Isolation::PerExecution {
            let other = run(&vm, "return type(print), type(string)").unwrap();
            assert_eq!(other, vec![s("function"), s("table")]);
        }
    }
}

/// A trusted VM's globals are plain tables, those the host sets too (the CLI's `arg`).
#[test]
fn host_tables_are_plain_tables_in_a_trusted_vm() {
    for (isolation, vm) in both() {
        let arg = Value::Array(vec![s("a"), s("b")]);
        vm.set_global("arg", arg).unwrap();
        let got = ok(&vm, "arg[3] = 'c'; return #arg, getmetatable(arg)");
        assert_eq!(got, vec![Value::Integer(3), Value::Nil], "{isolation:?}");
    }
}
