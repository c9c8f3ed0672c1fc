//! Globals of trusted executions.
//!
//! A trusted VM is the interpreter: its scripts' globals are the Lua state's own global
//! table, with every standard library as the engine made it (writable, `require` and
//! `package` as in Lua, the real string metatable). With [`Isolation::Shared`] every
//! execution uses that table, as one `lua` process would.
//!
//! With [`Isolation::PerExecution`] each execution gets a fresh table holding a copy of
//! the state's globals (so `pairs(_G)` and `rawget(_G, "print")` see every standard
//! global), with `_G` pointing at it, and `load`, `loadfile` and `dofile` (LuaJIT: also
//! `loadstring`) binding the chunks they load to it unless given another environment.
//! What the copy shares with the state: the library tables themselves (a trusted script
//! can change `string` for every later execution) and the modules `require` loads, which
//! run once per VM in the state's own globals, as `package.loaded` records them.
//!
//! [`Isolation::Shared`]: crate::Isolation::Shared
//! [`Isolation::PerExecution`]: crate::Isolation::PerExecution

use mlua::{Function, Lua, Value};

use crate::engine::EngineHelper;
use crate::lua_helpers::{self, Helper};

/// Replaces `debug.traceback` of a trusted state with limits with one that hides the
/// frames of luapool's Lua guards (`src/lua/traceback.lua`).
pub(crate) fn hide_guards_in_tracebacks(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    let debug: mlua::Table = g.raw_get("debug")?;
    let string: mlua::Table = g.raw_get("string")?;
    let traceback: Function = lua_helpers::load(lua, Helper::Traceback)?.call((
        debug.raw_get::<Function>("traceback")?,
        g.raw_get::<Function>("type")?,
        g.raw_get::<Function>("select")?,
        string.raw_get::<Function>("gsub")?,
        string.raw_get::<Function>("sub")?,
        g.raw_get::<Function>("error")?,
        g.raw_get::<Function>("tonumber")?,
    ))?;
    debug.raw_set("traceback", traceback)
}

/// `fresh()`: a new per-execution global table of a trusted state (see the module docs;
/// `src/lua/fresh.lua`, on LuaJIT `src/lua/fresh_luajit.lua`).
pub(crate) fn fresh_env_maker(lua: &Lua) -> mlua::Result<Function> {
    let g = lua.globals();
    let get = |name: &str| g.raw_get::<Value>(name);
    lua_helpers::load(lua, Helper::Engine(EngineHelper::Fresh))?.call((
        g.clone(),
        get("next")?,
        get("select")?,
        get("error")?,
        get("load")?,
        get("loadfile")?,
        get("loadstring")?,
        get("setfenv")?,
    ))
}
