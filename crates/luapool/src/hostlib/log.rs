//! `log.debug/info/warn/error(...)`: script messages as `tracing` events.

use mlua::{Lua, MultiValue, Table};

use crate::sandbox::{host_function, SandboxData};

/// Joins the arguments like `print` does (each formatted by Lua's `tostring`).
fn message(lua: &Lua, args: &MultiValue) -> mlua::Result<String> {
    let data = SandboxData::get(lua)?;
    let mut out = Vec::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        data.push_tostring(&mut out, v)?;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 4)?;
    t.raw_set(
        "debug",
        host_function(lua, |lua, args: MultiValue| {
            tracing::debug!(target: "luapool::script", "{}", message(lua, &args)?);
            Ok(())
        })?,
    )?;
    t.raw_set(
        "info",
        host_function(lua, |lua, args: MultiValue| {
            tracing::info!(target: "luapool::script", "{}", message(lua, &args)?);
            Ok(())
        })?,
    )?;
    t.raw_set(
        "warn",
        host_function(lua, |lua, args: MultiValue| {
            tracing::warn!(target: "luapool::script", "{}", message(lua, &args)?);
            Ok(())
        })?,
    )?;
    t.raw_set(
        "error",
        host_function(lua, |lua, args: MultiValue| {
            tracing::error!(target: "luapool::script", "{}", message(lua, &args)?);
            Ok(())
        })?,
    )?;
    Ok(t)
}
