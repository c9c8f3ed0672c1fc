//! Executions run as Lua's main chunk would.
//!
//! An async execution runs in a coroutine of its own (that is how it can wait for async
//! host functions), but to the script it is the main thread, as in the `lua` interpreter:
//! at its top level `coroutine.running()` reports it as the main thread,
//! `coroutine.isyieldable()` is false, and `coroutine.yield()` raises Lua's "attempt to
//! yield from outside a coroutine". Each execution's coroutine is recorded in a weak
//! table (`tops`) when it starts, by the entry every execution goes through (or by the
//! limits' prologue, see `limits::GUARDS`, which shares the table); the `coroutine`
//! library scripts see consults it.
//!
//! Async host functions still yield: mlua's async wrapper keeps the engine's own `yield`,
//! which it takes from the Lua state's real globals when the host function is created
//! (see [`with_real_coroutine`]).

use std::sync::OnceLock;

use mlua::{Function, Lua, Table, Value};

use super::shim::load_helper;

const MAIN_THREAD: &str = r#"
local running, isyieldable, yield, error, select, tops, OUTSIDE, JIT = ...
-- mark(f): f, recording the coroutine that runs it as an execution's
local function mark(f)
  return function(...)
    local co = running() -- nil on LuaJIT's main thread
    if co then tops[co] = true end
    return f(...)
  end
end
local main_running
if JIT then
  main_running = function()
    local co = running()
    if tops[co] then return nil end -- LuaJIT's main thread has no coroutine object
    return co
  end
else
  main_running = function()
    local co, main = running()
    if tops[co] then return co, true end
    return co, main
  end
end
local main_isyieldable = isyieldable and function(...)
  if select('#', ...) == 0 then
    if tops[running()] then return false end
    return isyieldable()
  end
  if tops[(...)] then return false end
  return isyieldable(...)
end
local function main_yield(...)
  if tops[running()] then error(OUTSIDE, 0) end
  return yield(...)
end
return mark, main_running, main_isyieldable, main_yield
"#;

/// The helpers that make an execution look like the main chunk.
pub(crate) struct MainThread {
    /// `mark(f)`: `f`, recording its coroutine as an execution's (for executions without
    /// limits; the limits' prologue records it otherwise).
    pub(crate) mark: Function,
    running: Function,
    /// `nil` where the engine has no `coroutine.isyieldable`.
    isyieldable: Value,
    r#yield: Function,
}

impl MainThread {
    /// Loads the helpers; `tops` is the weak-keyed set of executions' coroutines.
    pub(crate) fn load(lua: &Lua, tops: &Table) -> mlua::Result<MainThread> {
        static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
        let globals = lua.globals();
        let coroutine: Table = globals.raw_get("coroutine")?;
        let (mark, running, isyieldable, r#yield) = load_helper(lua, &BYTECODE, MAIN_THREAD)?
            .call::<(Function, Function, Value, Function)>((
                coroutine.raw_get::<Function>("running")?,
                coroutine.raw_get::<Value>("isyieldable")?,
                coroutine.raw_get::<Function>("yield")?,
                globals.raw_get::<Function>("error")?,
                globals.raw_get::<Function>("select")?,
                tops.clone(),
                outside_message(),
                cfg!(feature = "luajit"),
            ))?;
        Ok(MainThread {
            mark,
            running,
            isyieldable,
            r#yield,
        })
    }

    /// Puts the main-thread versions of `running`, `isyieldable` and `yield` into a
    /// `coroutine` library table.
    pub(crate) fn patch(&self, coroutine: &Table) -> mlua::Result<()> {
        coroutine.raw_set("running", &self.running)?;
        if !self.isyieldable.is_nil() {
            coroutine.raw_set("isyieldable", &self.isyieldable)?;
        }
        coroutine.raw_set("yield", &self.r#yield)
    }
}

/// What the engine says when the main thread yields, asked of the engine itself once per
/// process: a throwaway state's host calls `yield` from no coroutine. (Not this state's:
/// the helpers may be loaded from inside an execution, whose coroutine's message differs.)
fn outside_message() -> &'static str {
    static MESSAGE: OnceLock<String> = OnceLock::new();
    MESSAGE.get_or_init(|| {
        let fallback = "attempt to yield from outside a coroutine".to_string();
        let lua = Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::new());
        let Ok(lua) = lua else {
            return fallback;
        };
        let yield_fn = crate::engine::open_coroutine(&lua)
            .and_then(|()| lua.globals().raw_get::<Table>("coroutine"))
            .and_then(|co| co.raw_get::<Function>("yield"));
        let message = match yield_fn.map(|f| f.call::<()>(())) {
            Ok(Err(mlua::Error::RuntimeError(message))) => message,
            _ => return fallback,
        };
        // mlua appends a traceback to an error raised in a call from Rust.
        match message.split_once("\nstack traceback:") {
            Some((message, _)) => message.to_string(),
            None => message,
        }
    })
}

/// Runs `f` (which creates async host functions) with the Lua state's global `coroutine`
/// set to the engine's own library: mlua takes `coroutine.yield` from there when it
/// creates an async function, and the wrapped `yield` scripts see would refuse its
/// yields at an execution's top level. Only trusted states, whose real globals are the
/// scripts' globals, have anything to swap.
pub(crate) fn with_real_coroutine<T>(
    lua: &Lua,
    f: impl FnOnce() -> mlua::Result<T>,
) -> mlua::Result<T> {
    let real = match super::SandboxData::get(lua) {
        Ok(data) => data.real_coroutine.clone(),
        Err(_) => None,
    };
    let Some(real) = real else {
        return f();
    };
    let globals = lua.globals();
    let seen: Value = globals.raw_get("coroutine")?;
    globals.raw_set("coroutine", real)?;
    let result = f();
    globals.raw_set("coroutine", seen)?;
    result
}
