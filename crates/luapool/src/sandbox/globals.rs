//! The metatable of sandboxed executions' global tables.
//!
//! An execution's globals are a table of its own that reads through to the sandbox's
//! *base* (the allowed standard functions and libraries, the host's functions). Reading
//! through a metatable's `__index` means that assigning to a base name and then `nil`
//! (`print = 5; print = nil`) would bring the base's value back at the next read. So
//! the metatable also has a `__newindex`: the first assignment to a base name gives that
//! one environment a metatable of its own, whose *shadow* table holds the base names the
//! execution assigned (a removed one as a marker), read before the base. Other
//! environments, and environments that never assign a base name, keep the shared
//! metatable, whose `__index` is the base table itself (the fast path of every global
//! read). What this does not hide: `rawget(_G, name)` and `pairs(_G)` do not see the
//! shadow. The `__newindex` is written in Lua: `src/lua/globals.lua`.

use mlua::{Function, Lua, Table};

use crate::lua_helpers::{self, Helper};

/// Every name the base may provide on first use (see `SandboxData::open_lazy`): a
/// superset is harmless (an assignment to such a name just takes the shadow's path).
const LAZY_NAMES: &[&str] = &[
    "print",
    "require",
    "load",
    "collectgarbage",
    "rawset",
    "setmetatable",
    "tostring",
    "string",
    "table",
    "math",
    "utf8",
    "coroutine",
    "bit",
    "os",
    "debug",
    "sleep",
    "json",
    "log",
    "time",
];

/// Makes assignments to base names through `env_mt` (`{ __index = base, __metatable =
/// false }`) behave as in Lua (see the module docs).
pub(crate) fn install(lua: &Lua, env_mt: &Table, base: &Table) -> mlua::Result<()> {
    let globals = lua.globals();
    // Sets a metatable even where `__metatable` protects the old one (the script's own
    // `setmetatable` cannot replace an environment's metatable).
    let set_metatable = lua.create_function(|_, (t, mt): (Table, Table)| {
        super::refuse_while_closing()?;
        t.set_metatable(Some(mt))?;
        Ok(())
    })?;
    let lazy = lua.create_table_with_capacity(0, LAZY_NAMES.len())?;
    for name in LAZY_NAMES {
        lazy.raw_set(*name, true)?;
    }
    let newindex: Function = lua_helpers::load(lua, Helper::Globals)?.call((
        base.clone(),
        lazy,
        set_metatable,
        globals.raw_get::<Function>("rawget")?,
        globals.raw_get::<Function>("rawset")?,
    ))?;
    env_mt.raw_set("__newindex", newindex)
}
