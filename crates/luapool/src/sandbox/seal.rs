//! Read-only proxies for tables shared by every execution on a VM.
//!
//! A sealed table is an empty proxy whose metatable reads from the real table, rejects
//! writes through `__newindex`, and hides itself behind `__metatable = false`. The
//! sandbox's `rawset` refuses sealed proxies, so no execution can change what another one
//! sees.

use mlua::{Function, Lua, Table, Value};

use super::{bad_argument, host_function};

/// Key in a proxy's metatable holding the sealed table's name. Scripts cannot reach the
/// metatable, so they cannot see or forge it.
const SEALED_KEY: &str = "__luapool_sealed";

/// Returns a read-only proxy over `real`, named `name` in error messages.
pub(crate) fn seal(lua: &Lua, real: Table, name: &str, reject: &Function) -> mlua::Result<Table> {
    let mt = lua.create_table_with_capacity(0, 4)?;
    mt.raw_set("__index", real)?;
    mt.raw_set("__newindex", reject)?;
    mt.raw_set("__metatable", false)?;
    mt.raw_set(SEALED_KEY, name)?;
    let proxy = lua.create_table()?;
    proxy.set_metatable(Some(mt))?;
    crate::engine::note_sealed(lua, &proxy, name)?;
    Ok(proxy)
}

/// The name of the sealed table `t`, if it is one.
pub(crate) fn sealed_name(t: &Table) -> Option<String> {
    let mt = t.metatable()?;
    mt.raw_get::<Option<String>>(SEALED_KEY).ok().flatten()
}

/// The `__newindex` handler shared by all proxies of one VM (to be wrapped with the shim).
pub(crate) fn reject_function(lua: &Lua) -> mlua::Result<Function> {
    host_function(
        lua,
        |_, (t, key, _v): (Table, Value, Value)| -> mlua::Result<()> {
            let name = sealed_name(&t).unwrap_or_else(|| "?".to_string());
            Err(mlua::Error::runtime(format!(
                "attempt to modify read-only table '{name}' (key '{}')",
                key.to_string()
                    .unwrap_or_else(|_| key.type_name().to_string())
            )))
        },
    )
}

/// `rawset` for the sandbox: like Lua's, but refuses sealed tables.
pub(crate) fn rawset_function(lua: &Lua) -> mlua::Result<Function> {
    host_function(lua, |_, (t, key, value): (Value, Value, Value)| {
        let Value::Table(t) = t else {
            return Err(bad_argument(1, "rawset", "table", &t));
        };
        // Lua's own messages, without the traceback of an error raised inside `raw_set`.
        match &key {
            Value::Nil => return Err(mlua::Error::runtime("table index is nil")),
            Value::Number(n) if n.is_nan() => {
                return Err(mlua::Error::runtime("table index is NaN"))
            }
            _ => {}
        }
        if let Some(name) = sealed_name(&t) {
            return Err(mlua::Error::runtime(format!(
                "attempt to modify read-only table '{name}' with rawset"
            )));
        }
        t.raw_set(key, value)?;
        Ok(t)
    })
}
