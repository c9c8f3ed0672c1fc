//! A few helpers written in Lua (`src/lua/shim.lua`), loaded into every VM: running a
//! chunk in a fresh environment without extra crossings between Rust and Lua. (Host
//! function failures are turned into Lua string errors by the C wrapper of `wrap.rs`.)
//!
//! Like every Lua helper, compiled once per process (see `lua_helpers.rs`).

use mlua::{Function, Lua, Table, Value};

use crate::lua_helpers::{self, Helper};

/// What a host function returns, as its first value, to have its caller raise an error.
/// A `static`, so that its address is one and the same everywhere.
static FAIL: &str = "__luapool_fail";

/// The address behind [`fail_marker`].
pub(crate) fn fail_pointer() -> *mut std::ffi::c_void {
    FAIL.as_ptr() as *mut std::ffi::c_void
}

/// The marker value: a light userdata (the address of a static) no script can forge.
pub(crate) fn fail_marker() -> Value {
    Value::LightUserData(mlua::LightUserData(fail_pointer()))
}

/// What `load` says of a binary chunk.
pub(crate) const BINARY: &str =
    "attempt to load a binary chunk: binary chunks are not allowed in the sandbox";

/// Whether the compiler reads the source piece by piece from a Lua function (Lua 5.4,
/// 5.5). Not on LuaJIT: a limit raised by the hook inside its compiler's reader leaves
/// LuaJIT's hook machinery off for the rest of the state's life (no later limit would
/// fire), so there a reader function is drained in Lua first and the source compiled
/// in one call, which limits cannot interrupt.
const PIECEWISE: bool = cfg!(not(feature = "luajit"));

/// The engine's `table.concat` for LuaJIT's `compile` (from the engine's own `table`
/// library, not the sandbox's wrapped one); not needed elsewhere.
fn table_concat(lua: &Lua) -> mlua::Result<Value> {
    if PIECEWISE {
        return Ok(Value::Nil);
    }
    lua.load_std_libs(mlua::StdLib::TABLE)?;
    let table: Table = lua.globals().raw_get("table")?;
    table.raw_get("concat")
}

/// Bytes of source the compiler gets at a time (see [`Shim::compile`]).
pub(crate) const PIECE: i64 = 1024;

/// The compiled helpers of one VM.
///
/// The "caller" helpers return the failure marker alone when the chunk defines no
/// function of the requested name.
pub(crate) struct Shim {
    /// `runner(main, fresh)`: a function `(...)` running a script's `main(env, ...)` in
    /// a fresh environment (made by `fresh()` if given, else over the sandbox's base).
    pub(crate) runner: Function,
    /// `caller(main, fresh)`: a function `(name, ...)` running `main` in a fresh
    /// environment (as `runner` makes it), then calling its global `name`.
    pub(crate) caller: Function,
    /// `shared_caller(env, main)`: a function `(name, ...)` running `main(env)`, then
    /// calling the global `name` of `env`.
    pub(crate) shared_caller: Function,
    /// `bind(main, env)`: a function `(...)` running `main(env, ...)`.
    pub(crate) bind: Function,
    /// `ignore_env(chunk)`: a `main(env, ...)` that runs `chunk(...)`, for chunks compiled
    /// with the state's own globals.
    pub(crate) ignore_env: Function,
    /// `compile(chunk, name, env, nil_env)`: the engine's `load(chunk, name, "t", env)`
    /// of a string or a reader function (a `nil` env means none, unless `nil_env` says it
    /// is the chunk's `_ENV`); the compiler reads [`PIECE`] bytes at a time from a
    /// Lua function, so a long compilation is stopped by the execution's limits like any
    /// Lua code, and the source it holds is in Lua memory (counted by the memory limit).
    pub(crate) compile: Function,
}

impl Shim {
    pub(crate) fn load(lua: &Lua, env_mt: &Table) -> mlua::Result<Shim> {
        let globals = lua.globals();
        let string: Table = globals.raw_get("string")?;
        let (runner, caller, shared_caller, bind, ignore_env, compile) = lua_helpers::load(
            lua,
            Helper::Shim,
        )?
        .call::<(Function, Function, Function, Function, Function, Function)>((
            globals.raw_get::<Function>("setmetatable")?,
            globals.raw_get::<Function>("type")?,
            env_mt.clone(),
            fail_marker(),
            globals.raw_get::<Function>("load")?,
            string.raw_get::<Function>("sub")?,
            PIECE,
            globals.raw_get::<Function>("error")?,
            BINARY,
            PIECEWISE,
            table_concat(lua)?,
            globals.raw_get::<Function>("pcall")?,
        ))?;
        Ok(Shim {
            runner,
            caller,
            shared_caller,
            bind,
            ignore_env,
            compile,
        })
    }
}

/// A table whose keys are weak (`__mode = "k"`): a set of objects that does not keep
/// them alive.
pub(crate) fn weak_keyed_table(lua: &Lua) -> mlua::Result<Table> {
    let set = lua.create_table()?;
    let mode = lua.create_table_with_capacity(0, 1)?;
    mode.raw_set("__mode", "k")?;
    set.set_metatable(Some(mode))?;
    Ok(set)
}
