//! The host library, installed in every VM unless [`VmConfig::host_library`] is off:
//! `sleep`, `json`, `log` and `time`. It is opened on first use, so VMs that never touch it do not
//! pay for it.
//!
//! | name | what it does |
//! |---|---|
//! | `sleep(seconds)` | async: the calling coroutine waits, the thread does not |
//! | `json.encode(v)` / `json.decode(s)` | JSON text ⇄ Lua values; `json.null` stands for `null`, `json.array(t)` marks an empty table as `[]`; encoding copies within the call's [`CopyBudget`](crate::CopyBudget) |
//! | `log.debug/info/warn/error(...)` | a `tracing` event with target `luapool::script`, on one line (control characters escaped) |
//! | `time.now()` | wall-clock seconds since the Unix epoch, as a float (sub-millisecond precision) |
//! | `time.monotonic()` | seconds from a monotonic clock (shared by every VM of the process), as a float: for measuring durations |
//!
//! [`VmConfig::host_library`]: crate::VmConfig::host_library

mod json;
mod log;
mod sleep;
mod time;

use mlua::Lua;

use crate::sandbox::SandboxData;

/// True if `name` is a global of the host library.
pub(crate) fn provides(name: &str) -> bool {
    matches!(name, "sleep" | "json" | "log" | "time")
}

/// Installs the host library into a sandbox.
pub(crate) fn install(lua: &Lua, data: &SandboxData) -> mlua::Result<()> {
    let sleep = data.wrap_host(lua, sleep::sleep_function(lua)?)?;
    data.base.raw_set("sleep", sleep)?;
    let json = json::module(lua)?;
    wrap_all(lua, data, &json)?;
    data.install_module(lua, "json", json)?;
    let log = log::module(lua)?;
    wrap_all(lua, data, &log)?;
    data.install_module(lua, "log", log)?;
    let time = time::module(lua)?;
    wrap_all(lua, data, &time)?;
    data.install_module(lua, "time", time)?;
    Ok(())
}

/// Wraps every function of a module table with [`SandboxData::wrap_host`].
fn wrap_all(lua: &Lua, data: &SandboxData, module: &mlua::Table) -> mlua::Result<()> {
    let functions: Vec<(String, mlua::Function)> = module
        .pairs::<String, mlua::Value>()
        .filter_map(|pair| match pair {
            Ok((k, mlua::Value::Function(f))) => Some(Ok((k, f))),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<mlua::Result<_>>()?;
    for (name, f) in functions {
        module.raw_set(name, data.wrap_host(lua, f)?)?;
    }
    Ok(())
}
