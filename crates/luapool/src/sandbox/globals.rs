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
//! shadow. The `__newindex` is a C function for its common case, a new global that is
//! not a base name (one per script-defined global per execution: `function handle`
//! of every request's handler script), which it stores with `rawset`; a base name goes
//! to the Lua version, `src/lua/globals.lua`.

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};
use mlua::{Function, Lua, Table};

use crate::lua_helpers::{self, Helper};

/// Every name the base may provide on first use (see `SandboxData::open_lazy`; the test
/// `every_provided_global_can_be_assigned_nil` fails for a name missing here): a
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
    "codec",
    "crypto",
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
    let newindex: Function = lua_helpers::load(lua, Helper::Globals)?.call((
        base.clone(),
        lazy_table(lua)?,
        set_metatable,
        globals.raw_get::<Function>("rawget")?,
        globals.raw_get::<Function>("rawset")?,
    ))?;
    // SAFETY: `exec_raw` runs the closure in protected mode with the three upvalues
    // alone on the stack; `lua_pushcclosure` pops them and pushes the closure, the one
    // value left, which becomes the result. `newindex` follows the lua_CFunction
    // protocol (see there).
    let fast: Function = unsafe {
        lua.exec_raw((base.clone(), lazy_table(lua)?, newindex), |l| {
            ffi::lua_pushcclosure(l, newindex_fast, 3)
        })?
    };
    env_mt.raw_set("__newindex", fast)
}

/// The set of [`LAZY_NAMES`].
fn lazy_table(lua: &Lua) -> mlua::Result<Table> {
    let lazy = lua.create_table_with_capacity(0, LAZY_NAMES.len())?;
    for name in LAZY_NAMES {
        lazy.raw_set(*name, true)?;
    }
    Ok(lazy)
}

/// `__newindex(env, k, v)`: `rawset(env, k, v)` when `k` is not a base name (upvalue 1
/// is the base, 2 the lazy names), else the Lua version (upvalue 3) with the same
/// arguments.
unsafe extern "C-unwind" fn newindex_fast(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls a `__newindex` metamethod with three arguments (the table, the
    // key, the value). Each push is preceded by the room check it needs (beyond the
    // LUA_MINSTACK slots every C function gets, two are used here at most).
    // `lua_rawset` may raise (a memory error, a NaN key), as Lua's own `rawset` does;
    // `lua_call` may raise what the Lua version raises; this frame holds nothing that
    // needs dropping.
    unsafe {
        ffi::lua_settop(l, 3);
        let of_base = |upvalue: c_int| {
            ffi::lua_pushvalue(l, 2);
            ffi::lua_rawget(l, ffi::lua_upvalueindex(upvalue));
            let found = ffi::lua_type(l, -1) != ffi::LUA_TNIL;
            ffi::lua_pop(l, 1);
            found
        };
        if of_base(1) || of_base(2) {
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(3));
            ffi::lua_insert(l, 1);
            ffi::lua_call(l, 3, 0);
            return 0;
        }
        ffi::lua_rawset(l, 1);
        0
    }
}
