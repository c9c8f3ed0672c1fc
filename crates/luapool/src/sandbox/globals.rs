//! The metatable of sandboxed executions' global tables.
//!
//! An execution's globals are a table of its own that reads through to the sandbox's
//! *base* (the allowed standard functions and libraries, the host's functions). Reading
//! through a metatable's `__index` means that assigning `nil` to a base name (`print =
//! nil`) would not remove it: the next read would find it in the base again. So the
//! metatable also has a `__newindex`: assigning `nil` to a name the base has gives that
//! one environment a metatable of its own that remembers the removed names, and reads
//! of them give `nil` as in Lua. Other environments, and environments that never remove
//! a base name, keep the shared metatable, whose `__index` is the base table itself (the
//! fast path of every global read).

use std::sync::OnceLock;

use mlua::{Function, Lua, Table};

use super::shim::load_helper;

const GLOBALS: &str = r#"
local base, setmetatable_raw, rawset = ...
-- the metatable of one environment that removed base names
local function own_metatable(removed)
  return {
    __index = function(_, k)
      if removed[k] then return nil end
      return base[k]
    end,
    __newindex = function(env, k, v)
      if v == nil then
        if base[k] ~= nil then removed[k] = true end
        return
      end
      removed[k] = nil
      rawset(env, k, v)
    end,
    __metatable = false,
  }
end
-- the shared metatable's __newindex: a new global, or the removal of a base name
return function(env, k, v)
  if v == nil then
    if base[k] ~= nil then setmetatable_raw(env, own_metatable({ [k] = true })) end
    return
  end
  rawset(env, k, v)
end
"#;

/// Makes `env_mt` (`{ __index = base, __metatable = false }`) remove base names when
/// scripts assign `nil` to them (see the module docs).
pub(crate) fn install(lua: &Lua, env_mt: &Table, base: &Table) -> mlua::Result<()> {
    static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
    let globals = lua.globals();
    // Sets a metatable even where `__metatable` protects the old one (the script's own
    // `setmetatable` cannot replace an environment's metatable).
    let set_metatable = lua.create_function(|_, (t, mt): (Table, Table)| {
        super::refuse_while_closing()?;
        t.set_metatable(Some(mt))?;
        Ok(())
    })?;
    let newindex: Function = load_helper(lua, &BYTECODE, GLOBALS)?.call((
        base.clone(),
        set_metatable,
        globals.raw_get::<Function>("rawset")?,
    ))?;
    env_mt.raw_set("__newindex", newindex)
}
