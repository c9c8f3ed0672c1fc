//! Integration tests of the core crate: the sandbox, isolation, host functions, the
//! execution API, values, `require`, shared dictionaries and `time`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)]

mod codec;
mod conformance;
mod embedding;
mod exec;
mod host;
mod host_copies;
mod isolation;
mod modules;
mod readme;
mod sandbox;
mod shared_dict;
mod trusted;
mod value;

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;

use luapool::{Error, Script, Value, Vm, VmConfig};

/// True when the tests run on LuaJIT (`--features luajit`), whose messages and number
/// type differ from Lua 5.4's and 5.5's.
pub(crate) const JIT: bool = cfg!(feature = "luajit");

/// True when the tests run on Lua 5.5, which formats floats with round-trip precision.
pub(crate) const LUA55: bool = cfg!(feature = "lua55");

/// The engine's wording of "attempt to OP a nil value (KIND 'NAME')".
pub(crate) fn nil_error(op: &str, kind: &str, name: &str) -> String {
    if JIT {
        format!("attempt to {op} {kind} '{name}' (a nil value)")
    } else {
        format!("attempt to {op} a nil value ({kind} '{name}')")
    }
}

/// `source` made to run on LuaJIT too: `_ENV` spelled `_G`, and `math.type` (Lua 5.3+)
/// replaced by a function that tells integral numbers from others.
pub(crate) fn lua(source: &str) -> String {
    if JIT {
        source.replace("_ENV", "_G").replace(
            "math.type(",
            "(function(x) return x == math.floor(x) and 'integer' or 'float' end)(",
        )
    } else {
        source.to_string()
    }
}

/// Asserts that `message` starts with `location` (`"t.lua:2:"`). On LuaJIT a host
/// function failing in tail position (`return f()`) cannot name its caller's line: the
/// tail call replaced the caller's frame. There the message may start without it.
pub(crate) fn assert_location(message: &str, location: &str, source: &str) {
    let tail_call = source
        .lines()
        .any(|l| l.trim_start().starts_with("return "));
    if JIT && tail_call && !message.contains(".lua:") {
        return;
    }
    assert!(message.starts_with(location), "{source}: {message}");
}

/// A float as the engine returns it: LuaJIT has no integer subtype, so mlua hands back
/// integral numbers as integers there.
pub(crate) fn float(x: f64) -> Value {
    if JIT && x.fract() == 0.0 {
        Value::Integer(x as i64)
    } else {
        Value::Number(x)
    }
}

/// A sandboxed VM with the default configuration.
pub(crate) fn vm() -> Vm {
    Vm::new(VmConfig::default()).unwrap()
}

/// Runs `source` as a script named `t.lua`.
pub(crate) fn run(vm: &Vm, source: &str) -> luapool::Result<Vec<Value>> {
    vm.exec(&Script::new("t.lua", source))
}

/// Runs `source` and returns its results, failing the test on an error.
pub(crate) fn ok(vm: &Vm, source: &str) -> Vec<Value> {
    match run(vm, source) {
        Ok(values) => values,
        Err(e) => panic!("script failed: {e}\n--- script:\n{source}"),
    }
}

/// Runs `source`, expects an [`Error::Runtime`] and returns its message.
pub(crate) fn runtime_error(vm: &Vm, source: &str) -> String {
    match run(vm, source) {
        Err(Error::Runtime { message, .. }) => message,
        other => panic!("expected a runtime error from\n{source}\ngot {other:?}"),
    }
}

/// Asserts that `haystack` contains `needle`, showing both otherwise.
#[track_caller]
pub(crate) fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in {haystack:?}"
    );
}

/// A `Value` string.
pub(crate) fn s(text: &str) -> Value {
    Value::from(text)
}

/// A writer whose bytes can be read back (for `print`).
#[derive(Clone, Default)]
pub(crate) struct Buf(pub(crate) Rc<RefCell<Vec<u8>>>);

impl Buf {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A temporary directory of Lua modules: `files` are (relative path, source) pairs.
pub(crate) fn module_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    dir
}

pub(crate) fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, source) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source).unwrap();
    }
}

#[test]
fn error_is_send_sync_static_and_value_is_send() {
    fn error_bounds<T: Send + Sync + 'static + std::error::Error>() {}
    fn send<T: Send + 'static>() {}
    error_bounds::<Error>();
    send::<Value>();
    send::<Script>();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::Closed);
    assert_eq!(boxed.to_string(), "pool is closed");
}
