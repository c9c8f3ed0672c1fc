//! `log.debug/info/warn/error(...)`: script messages as `tracing` events.

use mlua::{Lua, MultiValue, Table, Value};

use crate::sandbox::host_function;

/// Joins the arguments like `print` does.
fn message(args: &MultiValue) -> mlua::Result<String> {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match v {
            Value::String(s) => out.push_str(&s.to_string_lossy()),
            other => out.push_str(&other.to_string()?),
        }
    }
    Ok(out)
}

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 4)?;
    t.raw_set(
        "debug",
        host_function(lua, |_, args: MultiValue| {
            tracing::debug!(target: "luapool::script", "{}", message(&args)?);
            Ok(())
        })?,
    )?;
    t.raw_set(
        "info",
        host_function(lua, |_, args: MultiValue| {
            tracing::info!(target: "luapool::script", "{}", message(&args)?);
            Ok(())
        })?,
    )?;
    t.raw_set(
        "warn",
        host_function(lua, |_, args: MultiValue| {
            tracing::warn!(target: "luapool::script", "{}", message(&args)?);
            Ok(())
        })?,
    )?;
    t.raw_set(
        "error",
        host_function(lua, |_, args: MultiValue| {
            tracing::error!(target: "luapool::script", "{}", message(&args)?);
            Ok(())
        })?,
    )?;
    Ok(t)
}
