//! The execution API: results, typed evaluation, calls, errors, the chunk cache, output.

use luapool::{Error, Isolation, Script, Value, Vm, VmConfig};

use crate::{assert_contains, ok, s, vm, Buf, JIT, LUA55};

#[test]
fn exec_returns_all_results_as_values() {
    let vm = vm();
    assert_eq!(
        ok(&vm, "return 1, 'two', 3.5, true, nil, false"),
        vec![
            Value::Integer(1),
            s("two"),
            Value::Number(3.5),
            Value::Boolean(true),
            Value::Nil,
            Value::Boolean(false)
        ]
    );
    assert_eq!(ok(&vm, "local x = 1"), Vec::<Value>::new());
}

#[test]
fn eval_converts_to_rust_types() {
    let vm = vm();
    let (n, text): (i64, String) = vm
        .eval(&Script::new("pair.lua", "return 6 * 7, 'answer'"))
        .unwrap();
    assert_eq!((n, text.as_str()), (42, "answer"));
    let v: Option<i64> = vm.eval(&Script::new("nil.lua", "return nil")).unwrap();
    assert_eq!(v, None);
    let list: Vec<i64> = vm
        .eval(&Script::new("list.lua", "return {1, 2, 3}"))
        .unwrap();
    assert_eq!(list, vec![1, 2, 3]);
}

#[test]
fn eval_with_a_wrong_type_is_a_conversion_error() {
    let vm = vm();
    let err = vm
        .eval::<i64>(&Script::new("s.lua", "return 'not a number'"))
        .unwrap_err();
    assert!(matches!(err, Error::Conversion { .. }), "{err:?}");
}

#[test]
fn calling_a_missing_function_is_function_not_found() {
    let vm = vm();
    assert!(matches!(
        vm.call::<()>("missing", ()),
        Err(Error::FunctionNotFound { ref name }) if name == "missing"
    ));
    // A global that is not a function is not a function either.
    assert!(matches!(
        vm.call::<()>("string", ()),
        Err(Error::FunctionNotFound { ref name }) if name == "string"
    ));
    let app = Script::new("app.lua", "function handle() return 1 end");
    assert!(matches!(
        vm.call_in::<()>(&app, "handel", ()),
        Err(Error::FunctionNotFound { ref name }) if name == "handel"
    ));
    assert_eq!(vm.call_in::<i64>(&app, "handle", ()).unwrap(), 1);
}

#[test]
fn call_passes_arguments_and_returns_results() {
    let vm = vm();
    let app = Script::new(
        "app.lua",
        "function handle(a, b, ...) return a .. b, select('#', ...) end",
    );
    let (joined, rest): (String, i64) = vm.call_in(&app, "handle", ("x", "y", 1, 2)).unwrap();
    assert_eq!((joined.as_str(), rest), ("xy", 2));
    assert_eq!(vm.call::<String>("tostring", 12).unwrap(), "12");
}

#[test]
fn syntax_errors_name_chunk_and_line() {
    let vm = vm();
    let err = vm
        .exec(&Script::new(
            "bad.lua",
            "local a = 1\nlocal b = 2\nx = = 3\n",
        ))
        .unwrap_err();
    match err {
        Error::Syntax {
            chunk,
            line,
            message,
        } => {
            assert_eq!(chunk, "bad.lua");
            assert_eq!(line, Some(3));
            assert_contains(&message, "unexpected symbol");
            assert!(!message.starts_with("bad.lua"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert_eq!(vm.cached_chunks(), 0);
}

#[test]
fn syntax_error_at_end_of_script_keeps_its_line() {
    let vm = vm();
    let err = vm
        .exec(&Script::new("open.lua", "if true then\n  x = 1\n"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Syntax { ref chunk, line: Some(3), .. } if chunk == "open.lua"),
        "{err:?}"
    );
    // A stray `end` must not close the wrapper luapool puts around a chunk.
    let err = vm.exec(&Script::new("end.lua", "x = 1\nend")).unwrap_err();
    assert!(
        matches!(err, Error::Syntax { line: Some(2), .. }),
        "{err:?}"
    );
}

#[test]
fn compile_reports_syntax_errors_and_caches() {
    let vm = vm();
    assert!(matches!(
        vm.compile(&Script::new("c.lua", "return +")),
        Err(Error::Syntax { line: Some(1), .. })
    ));
    let script = Script::new("c.lua", "return 1");
    vm.compile(&script).unwrap();
    assert_eq!(vm.cached_chunks(), 1);
    assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(1)]);
    assert_eq!(vm.cached_chunks(), 1);
}

#[test]
fn runtime_errors_carry_location_and_traceback() {
    let vm = vm();
    let err = vm
        .exec(&Script::new(
            "boom.lua",
            "local function f()\n  error('kaboom')\nend\nf()",
        ))
        .unwrap_err();
    match &err {
        Error::Runtime {
            message, traceback, ..
        } => {
            assert_eq!(message, "boom.lua:2: kaboom");
            let tb = traceback.as_deref().expect("a traceback");
            assert_contains(tb, "stack traceback");
            assert_contains(tb, "boom.lua:2:");
            assert_contains(tb, "boom.lua:4:");
            assert!(!tb.contains("luapool:"), "helper frames leak: {tb}");
            assert_eq!(err.traceback(), Some(tb));
        }
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

#[test]
fn operation_errors_are_runtime_errors_with_location() {
    let vm = vm();
    let err = vm
        .exec(&Script::new("op.lua", "local t = nil\nreturn t.x"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Runtime { ref message, .. }
            if message.starts_with("op.lua:2:") && message.contains("attempt to index")
                && message.contains("nil value")),
        "{err:?}"
    );
}

#[test]
fn same_script_compiles_once() {
    let vm = vm();
    let script = Script::new("same.lua", "return 1");
    vm.exec(&script).unwrap();
    vm.exec(&script).unwrap();
    assert_eq!(vm.cached_chunks(), 1);
    // An equal script built separately hits the cache too.
    vm.exec(&Script::new("same.lua", "return 1")).unwrap();
    assert_eq!(vm.cached_chunks(), 1);
}

#[test]
fn different_source_under_the_same_name_is_cached_separately() {
    let vm = vm();
    assert_eq!(
        vm.exec(&Script::new("s.lua", "return 1")).unwrap(),
        vec![Value::Integer(1)]
    );
    assert_eq!(
        vm.exec(&Script::new("s.lua", "return 2")).unwrap(),
        vec![Value::Integer(2)]
    );
    assert_eq!(vm.cached_chunks(), 2);
}

#[test]
fn same_source_under_different_names_is_cached_separately() {
    // The cache is "keyed by name and source" (Script docs, VmConfig::chunk_cache_capacity).
    let vm = vm();
    vm.exec(&Script::new("a.lua", "return 1")).unwrap();
    vm.exec(&Script::new("b.lua", "return 1")).unwrap();
    assert_eq!(vm.cached_chunks(), 2);
}

#[test]
fn same_source_under_different_names_reports_each_name() {
    let vm = vm();
    for name in ["a.lua", "b.lua", "a.lua"] {
        let err = vm.exec(&Script::new(name, "error('x')")).unwrap_err();
        assert!(
            matches!(err, Error::Runtime { ref message, .. } if message.starts_with(&format!("{name}:1:"))),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn cache_capacity_is_respected() {
    let vm = Vm::new(VmConfig::default().with_chunk_cache_capacity(2)).unwrap();
    for i in 0..5 {
        let script = Script::new(format!("s{i}.lua"), format!("return {i}"));
        assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(i)]);
    }
    assert_eq!(vm.cached_chunks(), 2);
}

#[test]
fn zero_cache_capacity_still_runs_scripts() {
    let vm = Vm::new(VmConfig::default().with_chunk_cache_capacity(0)).unwrap();
    let script = Script::new("z.lua", "return 7");
    assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(7)]);
    assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(7)]);
    assert_eq!(vm.cached_chunks(), 0);
}

#[test]
fn shebang_line_is_ignored_and_lines_stay_right() {
    let vm = vm();
    let script = Script::new("sb.lua", "#!/usr/bin/env luapool\nlocal x = 1\nreturn x");
    assert_eq!(vm.exec(&script).unwrap(), vec![Value::Integer(1)]);
    let err = vm
        .exec(&Script::new(
            "sb.lua",
            "#!/usr/bin/env luapool\nlocal x = 1\nerror('third')",
        ))
        .unwrap_err();
    assert!(
        matches!(err, Error::Runtime { ref message, .. } if message == "sb.lua:3: third"),
        "{err:?}"
    );
    let err = vm
        .exec(&Script::new("sb2.lua", "#!/bin/lua\nx = = 1"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Syntax { line: Some(2), .. }),
        "{err:?}"
    );
}

#[test]
fn comment_on_the_last_line_does_not_break_the_chunk() {
    let vm = vm();
    assert_eq!(ok(&vm, "return 1 -- the end"), vec![Value::Integer(1)]);
    assert_eq!(ok(&vm, "x = 2\nreturn x -- done"), vec![Value::Integer(2)]);
}

#[test]
fn print_goes_to_the_output_writer() {
    let vm = vm();
    let buf = Buf::default();
    vm.set_output(buf.clone());
    ok(&vm, "print('a', 1, nil, true) print() print('x\\0y')");
    assert_eq!(&*buf.0.borrow(), b"a\t1\tnil\ttrue\n\nx\0y\n");
}

#[test]
fn print_formats_values_like_tostring() {
    let vm = vm();
    let buf = Buf::default();
    vm.set_output(buf.clone());
    let source = "local t = setmetatable({}, { __tostring = function() return 'T!' end })
                  local v = { 1.0, 0.1 + 0.2, 2^63, -0.0, 1/0, 1e100, 3, t }
                  local parts = {}
                  for i = 1, #v do parts[i] = tostring(v[i]) end
                  print((table.unpack or unpack)(v))
                  return table.concat(parts, '\\t')";
    let expected = ok(&vm, source)[0].as_str().unwrap().to_string();
    // LuaJIT has no integer subtype and prints 1.0 as "1", -0.0 as "-0"; Lua 5.5 prints
    // floats with as many digits as it takes to read them back exactly.
    let engine = if JIT {
        "1\t0.3\t9.2233720368548e+18\t-0\tinf\t1e+100\t3\tT!"
    } else if LUA55 {
        "1.0\t0.30000000000000004\t9.2233720368547758e+18\t-0.0\tinf\t1e+100\t3\tT!"
    } else {
        "1.0\t0.3\t9.2233720368548e+18\t-0.0\tinf\t1e+100\t3\tT!"
    };
    assert_eq!(expected, engine);
    assert_eq!(buf.text(), format!("{expected}\n"));
}

#[test]
fn print_output_of_fresh_vm_goes_to_the_same_writer() {
    let vm = Vm::new(VmConfig::default().with_isolation(luapool::Isolation::FreshVm)).unwrap();
    let buf = Buf::default();
    vm.set_output(buf.clone());
    ok(&vm, "print('one')");
    ok(&vm, "print('two')");
    assert_eq!(buf.text(), "one\ntwo\n");
}

#[test]
fn chunk_varargs_are_empty() {
    let vm = vm();
    assert_eq!(
        ok(&vm, "return select('#', ...), ..."),
        vec![Value::Integer(0)]
    );
    assert_eq!(
        vm.exec_with_args(
            &Script::new("args.lua", "return select('#', ...), ..."),
            (1, "b")
        )
        .unwrap(),
        vec![Value::Integer(2), Value::Integer(1), s("b")]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn async_variants_match_the_sync_ones() {
    let vm = vm();
    assert_eq!(
        vm.exec_async(&Script::new("a.lua", "return 1, 'x'"))
            .await
            .unwrap(),
        vec![Value::Integer(1), s("x")]
    );
    let (a, b): (i64, String) = vm
        .eval_async(&Script::new("b.lua", "return 2, 'y'"))
        .await
        .unwrap();
    assert_eq!((a, b.as_str()), (2, "y"));
    assert_eq!(vm.call_async::<String>("tostring", 3).await.unwrap(), "3");
    let app = Script::new("app.lua", "function handle(x) return x * 2 end");
    assert_eq!(
        vm.call_in_async::<i64>(&app, "handle", 21).await.unwrap(),
        42
    );
    assert!(matches!(
        vm.call_async::<()>("nope", ()).await,
        Err(Error::FunctionNotFound { .. })
    ));
    let err = vm
        .exec_async(&Script::new("e.lua", "\nerror('async boom')"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Runtime { ref message, .. } if message == "e.lua:2: async boom"),
        "{err:?}"
    );
}

#[test]
fn error_with_a_non_string_value_is_a_runtime_error() {
    let vm = vm();
    let err = vm
        .exec(&Script::new("tbl.lua", "error({ code = 42 })"))
        .unwrap_err();
    assert!(matches!(err, Error::Runtime { .. }), "{err:?}");
}

#[test]
fn script_from_a_missing_file_is_an_io_error() {
    let err = Script::from_file("/definitely/not/here.lua").unwrap_err();
    assert!(
        matches!(err, Error::Io { ref path, .. } if path == "/definitely/not/here.lua"),
        "{err:?}"
    );
}

#[test]
fn script_from_file_is_named_by_its_path() {
    let dir = crate::module_dir(&[("job.lua", "return 1\n")]);
    let path = dir.path().join("job.lua");
    let script = Script::from_file(&path).unwrap();
    assert_eq!(script.name(), path.display().to_string());
    assert_eq!(vm().exec(&script).unwrap(), vec![Value::Integer(1)]);
}

#[test]
fn script_names_with_colons_and_digits_keep_the_right_line() {
    // Script names like `tenant:7:handler` are plausible; the line must still be the
    // script's, not the digits inside its name.
    let vm = vm();
    let err = vm
        .exec(&Script::new("tenant:7:handler", "local a = 1\n\nx = = 1"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Syntax { ref chunk, line: Some(3), .. } if chunk == "tenant:7:handler"),
        "{err:?}"
    );
    let err = vm
        .exec(&Script::new("C:\\jobs\\a.lua", "local a = 1\nx = = 1"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Syntax { line: Some(2), .. }),
        "{err:?}"
    );
}

#[test]
fn long_script_names_keep_the_right_line() {
    // Lua shortens names past 59 bytes to `...` and their tail.
    let vm = vm();
    let name = format!("{}:9:{}", "tenants/".repeat(10), "handler.lua");
    let err = vm
        .exec(&Script::new(name.clone(), "local a = 1\n\n\nx = = 1"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Syntax { ref chunk, line: Some(4), .. } if *chunk == name),
        "{err:?}"
    );
}

#[test]
fn print_honours_name_metafield() {
    let vm = vm();
    let buf = Buf::default();
    vm.set_output(buf.clone());
    ok(
        &vm,
        "print(setmetatable({}, { __name = 'Point' }), 2^53, 1e15, -1.5)",
    );
    let text = buf.text();
    // `__name` is Lua 5.3+; LuaJIT prints the table's address.
    assert!(
        text.starts_with(if JIT { "table: " } else { "Point: " }),
        "{text}"
    );
    let numbers = if LUA55 {
        "\t9007199254740992.0\t1e+15\t-1.5\n"
    } else {
        "\t9.007199254741e+15\t1e+15\t-1.5\n"
    };
    assert!(text.ends_with(numbers), "{text}");
}

#[test]
fn stack_overflows_are_runtime_errors_and_the_vm_survives() {
    let vm = vm();
    for source in [
        "local function f() return 1 + f() end return f()",
        "local function f() pcall(f) error('deep') end f()",
        "local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end return t.x",
        "local function f(s) return load('return ...')(f(s)) end return f('x')",
    ] {
        let result = crate::run(&vm, source);
        assert!(
            matches!(result, Err(Error::Runtime { ref message, .. }) if message.contains("stack overflow") || message.contains("deep")),
            "{source}: {result:?}"
        );
        assert_eq!(ok(&vm, "return string.upper('ok')"), vec![s("OK")]);
    }
}

#[test]
fn fresh_vm_supports_call_and_call_in() {
    let vm = Vm::new(VmConfig::default().with_isolation(luapool::Isolation::FreshVm)).unwrap();
    vm.register("twice", |x: i64| Ok(x * 2)).unwrap();
    assert_eq!(vm.call::<i64>("twice", 21).unwrap(), 42);
    let app = Script::new(
        "app.lua",
        "n = (n or 0) + 1 function handle(x) return twice(x) + n end",
    );
    assert_eq!(vm.call_in::<i64>(&app, "handle", 1).unwrap(), 3);
    assert_eq!(vm.call_in::<i64>(&app, "handle", 1).unwrap(), 3);
    assert!(matches!(
        vm.call::<()>("handle", ()),
        Err(Error::FunctionNotFound { .. })
    ));
}

#[test]
fn reset_keeps_compiled_scripts_but_not_the_globals_they_saw() {
    let vm = Vm::new(VmConfig::default().with_isolation(Isolation::Shared)).unwrap();
    let count = Script::new("count.lua", "n = (n or 0) + 1 return n");
    let handler = Script::new("h.lua", "m = (m or 0) + 1 function get() return m, n end");
    assert_eq!(vm.exec(&count).unwrap(), vec![Value::Integer(1)]);
    assert_eq!(vm.exec(&count).unwrap(), vec![Value::Integer(2)]);
    let got: (i64, i64) = vm.call_in(&handler, "get", ()).unwrap();
    assert_eq!(got, (1, 2));
    vm.reset().unwrap();
    // Both scripts stay compiled, and run against the new, empty globals.
    assert_eq!(vm.cached_chunks(), 2);
    assert_eq!(vm.exec(&count).unwrap(), vec![Value::Integer(1)]);
    let got: (i64, i64) = vm.call_in(&handler, "get", ()).unwrap();
    assert_eq!(got, (1, 1));
    vm.reset().unwrap();
    let got: (i64, Option<i64>) = vm.call_in(&handler, "get", ()).unwrap();
    assert_eq!(got, (1, None));
    assert_eq!(vm.cached_chunks(), 2);
}
