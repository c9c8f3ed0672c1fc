//! `time.now()`, `time.monotonic()`.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mlua::{Lua, Table};

use crate::sandbox::host_function;

/// Where `time.monotonic()` counts from: the first time any VM of the process asks.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Wall-clock seconds since the Unix epoch (negative before it).
fn now() -> f64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    origin();
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set("now", host_function(lua, |_, ()| Ok(now()))?)?;
    t.raw_set(
        "monotonic",
        host_function(lua, |_, ()| Ok(origin().elapsed().as_secs_f64()))?,
    )?;
    Ok(t)
}
