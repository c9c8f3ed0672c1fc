//! `json.encode`, `json.decode`, `json.null`, `json.array`.

mod encode;

use mlua::{Lua, Table, Value as LuaValue};

use crate::copy_budget::CopyBudget;
use crate::sandbox::host_function;
use crate::value::{ArrayMarker, Value};

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
            let json: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| mlua::Error::runtime(format!("json.decode: {e}")))?;
            to_lua(lua, json)
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

/// JSON to Lua: `null` becomes `json.null` (so object keys and array slots survive),
/// empty arrays carry the array marker.
fn to_lua(lua: &Lua, json: serde_json::Value) -> mlua::Result<LuaValue> {
    Ok(match json {
        serde_json::Value::Null => LuaValue::NULL,
        serde_json::Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            if items.is_empty() {
                ArrayMarker::mark(lua, &t)?;
            }
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(t)
        }
        serde_json::Value::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, v) in map {
                t.raw_set(k, to_lua(lua, v)?)?;
            }
            LuaValue::Table(t)
        }
        other => mlua::IntoLua::into_lua(Value::from(other), lua)?,
    })
}
