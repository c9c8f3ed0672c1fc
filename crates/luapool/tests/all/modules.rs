//! `require`: Lua modules from the configured directories, host and built-in modules.

use luapool::{Isolation, Module, Value, Vm, VmConfig};

use crate::{assert_contains, module_dir, ok, runtime_error, s, vm, write_files};

fn vm_with_modules(dirs: &[&tempfile::TempDir]) -> Vm {
    let mut config = VmConfig::default();
    for dir in dirs {
        config = config.with_module_path(dir.path());
    }
    Vm::new(config).unwrap()
}

#[test]
fn requires_dotted_names_and_init_files() {
    let dir = module_dir(&[
        ("a/b.lua", "return { name = 'a.b' }"),
        ("pkg/init.lua", "return { name = 'pkg' }"),
        ("with-dash.lua", "return 'dash'"),
    ]);
    let vm = vm_with_modules(&[&dir]);
    assert_eq!(
        ok(
            &vm,
            "return require('a.b').name, require('pkg').name, require('with-dash')"
        ),
        vec![s("a.b"), s("pkg"), s("dash")]
    );
}

#[test]
fn module_gets_its_name_and_path_as_varargs() {
    let dir = module_dir(&[(
        "m.lua",
        "local name, path = ... return { name = name, path = path }",
    )]);
    let vm = vm_with_modules(&[&dir]);
    let values = ok(&vm, "local m = require('m') return m.name, m.path");
    assert_eq!(values[0], s("m"));
    assert_eq!(
        values[1].as_str().unwrap(),
        dir.path().join("m.lua").display().to_string()
    );
}

#[test]
fn first_directory_wins() {
    let first = module_dir(&[("m.lua", "return 'first'")]);
    let second = module_dir(&[("m.lua", "return 'second'"), ("only2.lua", "return 2")]);
    let vm = vm_with_modules(&[&first, &second]);
    assert_eq!(
        ok(&vm, "return require('m'), require('only2')"),
        vec![s("first"), Value::Integer(2)]
    );
}

#[test]
fn require_loads_once_per_vm() {
    let dir = module_dir(&[("once.lua", "loads = (loads or 0) + 1 return { t = {} }")]);
    let vm = vm_with_modules(&[&dir]);
    assert_eq!(
        ok(
            &vm,
            "return require('once') == require('once'), require('once').t == require('once').t"
        ),
        vec![Value::Boolean(true); 2]
    );
    // Changing the file does not reload it.
    write_files(dir.path(), &[("once.lua", "return 'changed'")]);
    assert_eq!(ok(&vm, "return type(require('once'))"), vec![s("table")]);
}

#[test]
fn module_returning_nothing_requires_as_true() {
    let dir = module_dir(&[("side.lua", "local x = 1")]);
    let vm = vm_with_modules(&[&dir]);
    assert_eq!(
        ok(&vm, "return require('side')"),
        vec![Value::Boolean(true)]
    );
}

#[test]
fn missing_module_lists_what_was_tried() {
    let dir = module_dir(&[]);
    let vm = vm_with_modules(&[&dir]);
    let message = runtime_error(&vm, "local m = require('nope.deep') return m");
    assert!(message.starts_with("t.lua:1:"), "{message}");
    assert_contains(&message, "module 'nope.deep' not found");
    assert_contains(
        &message,
        &dir.path().join("nope/deep.lua").display().to_string(),
    );
    assert_contains(
        &message,
        &dir.path().join("nope/deep/init.lua").display().to_string(),
    );
    let message = runtime_error(&vm_with_modules(&[]), "return require('x')");
    assert_contains(&message, "no module directories are configured");
}

#[test]
fn require_loops_are_reported() {
    let dir = module_dir(&[
        ("ping.lua", "return { other = require('pong') }"),
        ("pong.lua", "return { other = require('ping') }"),
    ]);
    let vm = vm_with_modules(&[&dir]);
    let message = runtime_error(&vm, "return require('ping')");
    assert_contains(&message, "loop or previous error loading module 'ping'");
}

#[test]
fn failing_module_is_retried_on_the_next_require() {
    let dir = module_dir(&[("flaky.lua", "error('not yet')")]);
    let vm = vm_with_modules(&[&dir]);
    assert_contains(&runtime_error(&vm, "return require('flaky')"), "not yet");
    write_files(dir.path(), &[("flaky.lua", "return 'fixed'")]);
    assert_eq!(ok(&vm, "return require('flaky')"), vec![s("fixed")]);
}

#[test]
fn module_syntax_error_names_the_module_file() {
    let dir = module_dir(&[("broken.lua", "local x = = 1")]);
    let vm = vm_with_modules(&[&dir]);
    let result = crate::run(&vm, "return require('broken')");
    let err = result.unwrap_err();
    assert_contains(&err.to_string(), "broken.lua:1:");
}

#[test]
fn modules_are_sandboxed_too() {
    let dir = module_dir(&[(
        "evil.lua",
        "return { io = io, execute = os.execute, dump = string.dump, package = package,
                  patched = pcall(function() string.upper = nil end) }",
    )]);
    let vm = vm_with_modules(&[&dir]);
    assert_eq!(
        ok(
            &vm,
            "local e = require('evil') return e.io, e.execute, e.dump, e.package, e.patched, ('a'):upper()"
        ),
        vec![
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Boolean(false),
            s("A")
        ]
    );
}

#[test]
fn modules_can_require_other_modules() {
    let dir = module_dir(&[
        (
            "util.lua",
            "return { double = function(x) return x * 2 end }",
        ),
        (
            "app.lua",
            "local util = require('util') local json = require('json')
             return { run = function(x) return json.encode({ util.double(x) }) end }",
        ),
    ]);
    let vm = vm_with_modules(&[&dir]);
    assert_eq!(ok(&vm, "return require('app').run(21)"), vec![s("[42]")]);
}

#[test]
fn builtin_and_host_modules_are_require_targets() {
    let vm = vm();
    vm.register_module(Module::new("geo").function("one", |()| Ok(1)))
        .unwrap();
    assert_eq!(
        ok(
            &vm,
            "return require('string') == string, require('json') == json, require('math') == math,
                    require('table') == table, require('geo') == geo, require('geo').one()"
        ),
        vec![
            Value::Boolean(true),
            Value::Boolean(true),
            Value::Boolean(true),
            Value::Boolean(true),
            Value::Boolean(true),
            Value::Integer(1)
        ]
    );
}

#[test]
fn host_library_can_be_disabled() {
    let vm = Vm::new(VmConfig::default().with_host_library(false)).unwrap();
    assert_eq!(ok(&vm, "return json, sleep, log"), vec![Value::Nil; 3]);
    assert_contains(&runtime_error(&vm, "return require('json')"), "not found");
}

#[test]
fn a_module_file_cannot_shadow_a_builtin() {
    let dir = module_dir(&[(
        "string.lua",
        "return { upper = function() return 'fake' end }",
    )]);
    let vm = vm_with_modules(&[&dir]);
    assert_eq!(ok(&vm, "return require('string').upper('a')"), vec![s("A")]);
}

#[test]
fn module_state_is_per_vm() {
    let dir = module_dir(&[(
        "c.lua",
        "local n = 0 return { inc = function() n = n + 1 return n end }",
    )]);
    let a = vm_with_modules(&[&dir]);
    let b = vm_with_modules(&[&dir]);
    let inc = "return require('c').inc()";
    assert_eq!(ok(&a, inc), vec![Value::Integer(1)]);
    assert_eq!(ok(&a, inc), vec![Value::Integer(2)]);
    assert_eq!(ok(&b, inc), vec![Value::Integer(1)]);
}

#[test]
fn shared_mode_module_state_persists_too() {
    let dir = module_dir(&[(
        "c.lua",
        "local n = 0 return { inc = function() n = n + 1 return n end }",
    )]);
    let vm = Vm::new(
        VmConfig::default()
            .with_isolation(Isolation::Shared)
            .with_module_path(dir.path()),
    )
    .unwrap();
    ok(&vm, "require('c').inc()");
    assert_eq!(
        ok(&vm, "return require('c').inc()"),
        vec![Value::Integer(2)]
    );
}
