//! The host library, installed in every VM unless [`VmConfig::host_library`] is off:
//! `sleep`, `json`, `log`, `time`, `codec` and `crypto`. It is opened on first use, so VMs that never touch it do not
//! pay for it.
//!
//! | name | what it does |
//! |---|---|
//! | `sleep(seconds)` | async: the calling coroutine waits, the thread does not |
//! | `json.encode(v)` / `json.decode(s)` | JSON text ⇄ Lua values; `json.null` stands for `null`, `json.array(t)` marks an empty table as `[]`; encoding copies within the call's [`CopyBudget`](crate::CopyBudget) |
//! | `log.debug/info/warn/error(...)` | a `tracing` event with target `luapool::script`, on one line (control characters escaped) |
//! | `time.now()` | wall-clock seconds since the Unix epoch, as a float (sub-millisecond precision) |
//! | `time.monotonic()` | seconds from a monotonic clock (shared by every VM of the process), as a float: for measuring durations |
//! | `codec.base64_encode/base64_decode(s)`, `codec.hex_encode/hex_decode(s)` | byte strings to text and back; a decoder returns `nil, message` for bad input |
//! | `codec.url_encode(s)`, `codec.url_decode(s)`, `codec.form_decode(s)` | percent-encoding of a URL component (all but `A-Z a-z 0-9 - . _ ~`); decoding keeps `+` (`form_decode` makes it a space) and malformed escapes |
//! | `crypto.sha256(s)`, `crypto.sha256_hex(s)`, `crypto.hmac_sha256(key, msg)` | digests, raw bytes (32) or lower-case hex |
//! | `crypto.random_bytes(n)` | `n` bytes (at most 1 MiB) from the operating system's random source |
//!
//! [`VmConfig::host_library`]: crate::VmConfig::host_library

mod codec;
mod crypto;
mod json;
mod log;
mod sleep;
mod time;

use mlua::{Lua, LuaString, Value as LuaValue};

use crate::copy_budget::{self, CopyBudget};
use crate::sandbox::{bad_argument, SandboxData};

pub use json::json_decode;

/// True if `name` is a global of the host library.
pub(crate) fn provides(name: &str) -> bool {
    matches!(name, "sleep" | "json" | "log" | "time" | "codec" | "crypto")
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
    let codec = codec::module(lua)?;
    wrap_all(lua, data, &codec)?;
    data.install_module(lua, "codec", codec)?;
    let crypto = crypto::module(lua)?;
    wrap_all(lua, data, &crypto)?;
    data.install_module(lua, "crypto", crypto)?;
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

/// Argument `n` of `function` as a string (a number is converted as Lua's string
/// functions do); Lua's argument error for anything else.
fn string_arg(lua: &Lua, n: u8, function: &str, v: LuaValue) -> mlua::Result<LuaString> {
    match v {
        LuaValue::String(s) => Ok(s),
        LuaValue::Integer(_) | LuaValue::Number(_) => match lua.coerce_string(v.clone())? {
            Some(s) => Ok(s),
            None => Err(bad_argument(n, function, "string", &v)),
        },
        other => Err(bad_argument(n, function, "string", &other)),
    }
}

/// Charges `bytes` of host buffer to the call's [`CopyBudget`], naming `function` in the
/// error.
fn charge(lua: &Lua, function: &str, bytes: usize) -> mlua::Result<()> {
    CopyBudget::for_lua(lua)
        .charge(bytes)
        .map_err(|e| copy_budget::name_call(function, mlua::Error::external(e)))
}
