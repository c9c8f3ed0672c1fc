//! `log.debug/info/warn/error(...)`: script messages as `tracing` events, one line each
//! (control characters escaped), with the execution's id as their `id` field when it
//! has one.

use mlua::{Lua, MultiValue, Table};

use crate::context::Context;
use crate::copy_budget::{self, CopyBudget};
use crate::log_line::escape;
use crate::sandbox::{host_function, SandboxData};

/// Joins the arguments like `print` does (each formatted by Lua's `tostring`), within the
/// call's [`CopyBudget`], escaped into one line (see [`escape`]).
fn message(lua: &Lua, args: &MultiValue) -> mlua::Result<String> {
    let data = SandboxData::get(lua)?;
    let mut budget = CopyBudget::for_lua(lua);
    let mut out = Vec::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        data.push_tostring(&mut out, v, &mut budget)
            .map_err(|e| copy_budget::name_call("log", e))?;
    }
    // The escaped line may be longer: charge the difference too.
    let line = escape(&out);
    budget
        .charge(line.len().saturating_sub(out.len()))
        .map_err(|e| copy_budget::name_call("log", mlua::Error::external(e)))?;
    Ok(line)
}

/// Emits one script message at `$level`, with the execution's id (see
/// [`Context::id`]) as the `id` field when it has one.
macro_rules! emit {
    ($level:ident, $lua:expr, $args:expr) => {{
        let line = message($lua, $args)?;
        match Context::id() {
            Some(id) => tracing::$level!(target: "luapool::script", id = %id, "{line}"),
            None => tracing::$level!(target: "luapool::script", "{line}"),
        }
        Ok(())
    }};
}

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 4)?;
    t.raw_set(
        "debug",
        host_function(lua, |lua, args: MultiValue| emit!(debug, lua, &args))?,
    )?;
    t.raw_set(
        "info",
        host_function(lua, |lua, args: MultiValue| emit!(info, lua, &args))?,
    )?;
    t.raw_set(
        "warn",
        host_function(lua, |lua, args: MultiValue| emit!(warn, lua, &args))?,
    )?;
    t.raw_set(
        "error",
        host_function(lua, |lua, args: MultiValue| emit!(error, lua, &args))?,
    )?;
    Ok(t)
}
