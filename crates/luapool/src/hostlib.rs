//! The host library installed in every VM unless [`VmConfig::host_library`] is off:
//! `sleep`, `json` and `log`.
//!
//! | name | what it does |
//! |---|---|
//! | `sleep(seconds)` | async: the calling coroutine waits, the thread does not |
//! | `json.encode(v)` / `json.decode(s)` | JSON text ⇄ Lua values; `json.null` stands for `null`, `json.array(t)` marks an empty table as `[]` |
//! | `log.debug/info/warn/error(...)` | a `tracing` event with target `luapool::script` |
//!
//! [`VmConfig::host_library`]: crate::VmConfig::host_library

mod json;
mod log;
mod sleep;

use crate::sandbox::{install_module, Sandbox};

/// Installs the host library into a freshly built sandbox.
pub(crate) fn install(sandbox: &Sandbox) -> mlua::Result<()> {
    let lua = &sandbox.lua;
    sandbox.base.raw_set("sleep", sleep::sleep_function(lua)?)?;
    install_module(sandbox, "json", json::module(lua)?)?;
    install_module(sandbox, "log", log::module(lua)?)?;
    Ok(())
}
