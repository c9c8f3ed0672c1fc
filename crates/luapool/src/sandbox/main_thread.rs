//! Executions run as Lua's main chunk would.
//!
//! An async execution runs in a coroutine of its own (that is how it can wait for async
//! host functions), but to the script it is the main thread, as in the `lua` interpreter:
//! at its top level `coroutine.running()` reports it as the main thread,
//! `coroutine.isyieldable()` is false, and `coroutine.yield()` raises Lua's "attempt to
//! yield from outside a coroutine". Each execution's coroutine is recorded in a weak
//! table (`tops`) when it starts, by the entry every execution goes through (or by the
//! limits' prologue, see `src/lua/guards.lua`, which shares the table); the `coroutine`
//! library scripts see consults it.
//!
//! Async host functions still yield: mlua's async wrapper keeps the engine's own `yield`,
//! which it takes from the Lua state's real globals when the host function is created
//! (see [`with_real_coroutine`]).

use std::sync::OnceLock;

use mlua::{Function, Lua, Table, Value};

use crate::lua_helpers::{self, Helper};

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
        let globals = lua.globals();
        let coroutine: Table = globals.raw_get("coroutine")?;
        let real_isyieldable: Value = coroutine.raw_get("isyieldable")?;
        let (mark, lua_isyieldable) =
            lua_helpers::load(lua, Helper::MainThread)?.call::<(Function, Value)>((
                coroutine.raw_get::<Function>("running")?,
                real_isyieldable.clone(),
                tops.clone(),
            ))?;
        let isyieldable = match (real_isyieldable, crate::engine::LUAJIT) {
            (Value::Nil, _) => Value::Nil,
            (_, true) => lua_isyieldable,
            (_, false) => Value::Function(c_functions::isyieldable(lua, tops)?),
        };
        Ok(MainThread {
            mark,
            running: c_functions::running(lua, tops)?,
            isyieldable,
            r#yield: c_functions::yield_function(lua, tops, outside_message())?,
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

/// `coroutine.running`, `isyieldable` and `yield` as C functions, like the engine's own:
/// Lua functions in their place would show in debug hooks (call and line events), in
/// tracebacks of a suspended coroutine and in `debug.getinfo`. Each has the `tops` table
/// as upvalue 1.
mod c_functions {
    use std::ffi::c_int;

    use mlua::ffi::{self, lua_State};
    use mlua::{Function, Lua, Table};

    /// True if the thread at `index` is an execution's coroutine.
    ///
    /// # Safety
    /// Must run in a C function whose upvalue 1 is the `tops` table, with one free stack
    /// slot.
    unsafe fn is_top(l: *mut lua_State, index: c_int) -> bool {
        // SAFETY: see the function's contract; the pushed value is popped before return.
        unsafe {
            let index = ffi::lua_absindex(l, index);
            ffi::lua_pushvalue(l, index);
            ffi::lua_rawget(l, ffi::lua_upvalueindex(1));
            let top = ffi::lua_toboolean(l, -1) != 0;
            ffi::lua_pop(l, 1);
            top
        }
    }

    /// Makes a C closure of `f` with `upvalues` (pushed in order).
    fn closure(
        lua: &Lua,
        upvalues: impl mlua::IntoLuaMulti,
        count: c_int,
        f: ffi::lua_CFunction,
    ) -> mlua::Result<Function> {
        // SAFETY: `exec_raw` runs the closure in protected mode with the `count` upvalues
        // alone on the stack; `lua_pushcclosure` pops them and pushes the closure, the one
        // value left, which becomes the result. Each `f` follows the lua_CFunction protocol.
        unsafe { lua.exec_raw(upvalues, |l| ffi::lua_pushcclosure(l, f, count)) }
    }

    /// `coroutine.running()`.
    pub(super) fn running(lua: &Lua, tops: &Table) -> mlua::Result<Function> {
        closure(lua, tops, 1, main_running)
    }

    /// `coroutine.isyieldable([co])` (Lua 5.4 and 5.5; on LuaJIT, whose C API cannot tell,
    /// the Lua version of `src/lua/main_thread.lua` is used).
    pub(super) fn isyieldable(lua: &Lua, tops: &Table) -> mlua::Result<Function> {
        closure(lua, tops, 1, main_isyieldable)
    }

    /// `coroutine.yield(...)`; `outside` is the engine's message for a yield outside a
    /// coroutine.
    pub(super) fn yield_function(lua: &Lua, tops: &Table, outside: &str) -> mlua::Result<Function> {
        closure(lua, (tops, outside), 2, main_yield)
    }

    /// Lua's `coroutine.running`, reporting an execution's coroutine as the main thread
    /// (on LuaJIT, where the main thread has no coroutine object, as `nil`).
    unsafe extern "C-unwind" fn main_running(l: *mut lua_State) -> c_int {
        // SAFETY: Lua calls this with a valid state; the pushes use two of the
        // LUA_MINSTACK slots every C function gets (`is_top` one more, popped).
        unsafe {
            let main = ffi::lua_pushthread(l) == 1 || is_top(l, -1);
            if crate::engine::LUAJIT {
                if main {
                    ffi::lua_pop(l, 1);
                    ffi::lua_pushnil(l);
                }
                return 1;
            }
            ffi::lua_pushboolean(l, c_int::from(main));
            2
        }
    }

    /// Lua's `coroutine.isyieldable([co])`, false for an execution's coroutine.
    unsafe extern "C-unwind" fn main_isyieldable(l: *mut lua_State) -> c_int {
        // SAFETY: Lua calls this with a valid state and its arguments; `lua_tothread`
        // returns null for a non-thread; `luaL_argerror` raises (nothing here needs
        // dropping). The pushes fit in the LUA_MINSTACK slots.
        unsafe {
            let co = if ffi::lua_isnone(l, 1) != 0 {
                ffi::lua_pushthread(l);
                l
            } else {
                let co = ffi::lua_tothread(l, 1);
                if co.is_null() {
                    let message = ffi::lua_pushfstring(
                        l,
                        c"coroutine expected, got %s".as_ptr(),
                        ffi::luaL_typename(l, 1),
                    );
                    return ffi::luaL_argerror(l, 1, message);
                }
                ffi::lua_pushvalue(l, 1);
                co
            };
            let yieldable = !is_top(l, -1) && crate::engine::is_yieldable(co);
            ffi::lua_pushboolean(l, c_int::from(yieldable));
            1
        }
    }

    /// Lua's `coroutine.yield(...)`, raising the engine's "outside a coroutine" message
    /// in an execution's coroutine.
    unsafe extern "C-unwind" fn main_yield(l: *mut lua_State) -> c_int {
        // SAFETY: Lua calls this with a valid state; `lua_error` and `lua_yield` do not
        // return normally, and this frame holds nothing that needs dropping. The pushes
        // fit in the LUA_MINSTACK slots (checked: the arguments may fill them).
        unsafe {
            if ffi::lua_checkstack(l, 2) == 0 {
                return ffi::luaL_error(l, c"stack overflow".as_ptr());
            }
            ffi::lua_pushthread(l);
            let top = is_top(l, -1);
            ffi::lua_pop(l, 1);
            if top {
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
                ffi::lua_error(l)
            } else {
                ffi::lua_yield(l, ffi::lua_gettop(l))
            }
        }
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
