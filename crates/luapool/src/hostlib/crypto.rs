//! `crypto.sha256`, `crypto.sha256_hex`, `crypto.hmac_sha256`, `crypto.random_bytes`.
//!
//! The hashes read their arguments' bytes in place (no copy); results are created in
//! Lua. `random_bytes` fills a host buffer of at most [`MAX_RANDOM_BYTES`], charged to
//! the call's [`CopyBudget`](crate::CopyBudget).

use hmac::{Hmac, Mac};
use mlua::{Lua, Table, Value as LuaValue};
use sha2::{Digest, Sha256};

use super::{charge, string_arg};
use crate::sandbox::{bad_argument, host_function};

/// Most bytes one `crypto.random_bytes` call returns (1 MiB).
pub(crate) const MAX_RANDOM_BYTES: usize = 1 << 20;

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 4)?;
    t.raw_set(
        "sha256",
        host_function(lua, |lua, v: LuaValue| {
            let s = string_arg(lua, 1, "crypto.sha256", v)?;
            let digest = Sha256::digest(&*s.as_bytes());
            lua.create_string(digest.as_slice())
        })?,
    )?;
    t.raw_set(
        "sha256_hex",
        host_function(lua, |lua, v: LuaValue| {
            let s = string_arg(lua, 1, "crypto.sha256_hex", v)?;
            let digest = Sha256::digest(&*s.as_bytes());
            lua.create_string(hex::encode(digest))
        })?,
    )?;
    t.raw_set(
        "hmac_sha256",
        host_function(lua, |lua, (key, message): (LuaValue, LuaValue)| {
            const NAME: &str = "crypto.hmac_sha256";
            let key = string_arg(lua, 1, NAME, key)?;
            let message = string_arg(lua, 2, NAME, message)?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&key.as_bytes())
                .map_err(|e| mlua::Error::runtime(format!("{NAME}: {e}")))?;
            mac.update(&message.as_bytes());
            lua.create_string(mac.finalize().into_bytes().as_slice())
        })?,
    )?;
    t.raw_set(
        "random_bytes",
        host_function(lua, |lua, v: LuaValue| {
            const NAME: &str = "crypto.random_bytes";
            let n = match v {
                LuaValue::Integer(n) => usize::try_from(n).ok(),
                LuaValue::Number(n) if n.fract() == 0.0 && n >= 0.0 => {
                    // An integral float (LuaJIT has no integers) in range converts exactly.
                    (n <= MAX_RANDOM_BYTES as f64).then_some(n as usize)
                }
                LuaValue::Number(_) => None,
                ref other => {
                    return Err(bad_argument(1, NAME, "number", other));
                }
            };
            let n = n.filter(|&n| n <= MAX_RANDOM_BYTES).ok_or_else(|| {
                mlua::Error::runtime(format!(
                    "{NAME}: n must be an integer from 0 to {MAX_RANDOM_BYTES}"
                ))
            })?;
            charge(lua, NAME, n)?;
            let mut buf = vec![0u8; n];
            getrandom::fill(&mut buf)
                .map_err(|e| mlua::Error::runtime(format!("{NAME}: no OS randomness: {e}")))?;
            lua.create_string(buf)
        })?,
    )?;
    Ok(t)
}
