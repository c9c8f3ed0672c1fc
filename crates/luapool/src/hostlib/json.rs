//! `json.encode`, `json.decode`, `json.null`, `json.array`.

mod decode;
mod encode;

use mlua::{Lua, Table, Value as LuaValue};

use crate::copy_budget::CopyBudget;
use crate::sandbox::host_function;
use crate::value::{ArrayMarker, Value};

/// Decodes JSON `text` into a Lua value on `lua` exactly as scripts' `json.decode`
/// does (`null` is `json.null`, an empty array carries the array marker), for hosts
/// that parse script-facing data (the HTTP server's `req:json()`).
///
/// ```
/// let lua = luapool::mlua::Lua::new();
/// let v = luapool::json_decode(&lua, br#"{"a": [1, 2]}"#)?;
/// let f = lua.load("return (...).a[2]").into_function()?;
/// assert_eq!(f.call::<i64>(v)?, 2);
/// assert!(luapool::json_decode(&lua, b"{").is_err());
/// # Ok::<(), luapool::mlua::Error>(())
/// ```
///
/// # Errors
/// A runtime error `json.decode: MESSAGE` for text that is not JSON; a memory error if
/// the value does not fit the state's memory limit.
pub fn json_decode(lua: &Lua, text: &[u8]) -> mlua::Result<LuaValue> {
    decode::decode(lua, text)
}

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 4)?;
    t.raw_set("null", LuaValue::NULL)?;
    t.raw_set(
        "encode",
        host_function(lua, |lua, v: LuaValue| {
            // One budget for the copy of the value and the text.
            let mut budget = CopyBudget::for_lua(lua);
            let text = Value::from_lua_within(&v, lua, &mut budget)
                .and_then(|value| encode::encode(&value, &mut budget))
                .map_err(|e| mlua::Error::runtime(format!("json.encode: {e}")))?;
            lua.create_string(text)
        })?,
    )?;
    t.raw_set(
        "decode",
        host_function(lua, |lua, s: mlua::LuaString| {
            decode::decode(lua, &s.as_bytes())
        })?,
    )?;
    t.raw_set(
        "array",
        host_function(lua, |lua, t: Table| {
            if t.raw_len() == 0 {
                ArrayMarker::mark(lua, &t)?;
            }
            Ok(t)
        })?,
    )?;
    Ok(t)
}
