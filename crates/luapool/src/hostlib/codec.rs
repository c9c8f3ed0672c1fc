//! `codec.base64_encode/base64_decode`, `codec.hex_encode/hex_decode`,
//! `codec.url_encode/url_decode`, `codec.form_decode`: byte strings in, byte strings out.
//!
//! Each function borrows its argument's bytes (no copy) and charges the buffer it fills
//! on the host side to the call's [`CopyBudget`]; the result is created in Lua, under
//! the VM's memory limit.

use base64::Engine as _;
use mlua::{Lua, LuaString, MultiValue, Table, Value as LuaValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use super::{charge, string_arg};
use crate::sandbox::host_function;

/// What `codec.url_encode` escapes: every byte but the unreserved characters of RFC 3986
/// (`A-Z a-z 0-9 - . _ ~`), as JavaScript's `encodeURIComponent` does (which also keeps
/// `!*'()`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A decoder's result: the bytes as a Lua string, or `nil, "FUNCTION: invalid input"`.
fn decoded<E: std::fmt::Display>(
    lua: &Lua,
    function: &str,
    result: Result<Vec<u8>, E>,
) -> mlua::Result<MultiValue> {
    Ok(match result {
        Ok(bytes) => MultiValue::from_iter([LuaValue::String(lua.create_string(bytes)?)]),
        Err(e) => MultiValue::from_iter([
            LuaValue::Nil,
            LuaValue::String(lua.create_string(format!("{function}: invalid input ({e})"))?),
        ]),
    })
}

pub(super) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 7)?;
    t.raw_set(
        "base64_encode",
        host_function(lua, |lua, v: LuaValue| {
            const NAME: &str = "codec.base64_encode";
            let s = string_arg(lua, 1, NAME, v)?;
            let bytes = s.as_bytes();
            charge(lua, NAME, bytes.len().div_ceil(3).saturating_mul(4))?;
            lua.create_string(base64::engine::general_purpose::STANDARD.encode(&*bytes))
        })?,
    )?;
    t.raw_set(
        "base64_decode",
        host_function(lua, |lua, v: LuaValue| {
            const NAME: &str = "codec.base64_decode";
            let s = string_arg(lua, 1, NAME, v)?;
            let bytes = s.as_bytes();
            charge(lua, NAME, bytes.len() / 4 * 3 + 3)?;
            decoded(
                lua,
                NAME,
                base64::engine::general_purpose::STANDARD.decode(&*bytes),
            )
        })?,
    )?;
    t.raw_set(
        "hex_encode",
        host_function(lua, |lua, v: LuaValue| {
            const NAME: &str = "codec.hex_encode";
            let s = string_arg(lua, 1, NAME, v)?;
            let bytes = s.as_bytes();
            charge(lua, NAME, bytes.len().saturating_mul(2))?;
            lua.create_string(hex::encode(&*bytes))
        })?,
    )?;
    t.raw_set(
        "hex_decode",
        host_function(lua, |lua, v: LuaValue| {
            const NAME: &str = "codec.hex_decode";
            let s = string_arg(lua, 1, NAME, v)?;
            let bytes = s.as_bytes();
            charge(lua, NAME, bytes.len() / 2)?;
            decoded(lua, NAME, hex::decode(&*bytes))
        })?,
    )?;
    t.raw_set(
        "url_encode",
        host_function(lua, |lua, v: LuaValue| {
            const NAME: &str = "codec.url_encode";
            let s = string_arg(lua, 1, NAME, v)?;
            let bytes = s.as_bytes();
            charge(lua, NAME, bytes.len().saturating_mul(3))?;
            let encoded: String = percent_encoding::percent_encode(&bytes, COMPONENT).collect();
            lua.create_string(encoded)
        })?,
    )?;
    t.raw_set(
        "url_decode",
        host_function(lua, |lua, v: LuaValue| {
            const NAME: &str = "codec.url_decode";
            url_decode(lua, NAME, string_arg(lua, 1, NAME, v)?, false)
        })?,
    )?;
    t.raw_set(
        "form_decode",
        host_function(lua, |lua, v: LuaValue| {
            const NAME: &str = "codec.form_decode";
            url_decode(lua, NAME, string_arg(lua, 1, NAME, v)?, true)
        })?,
    )?;
    Ok(t)
}

/// `%XX` to the byte XX (a malformed escape stays as it is), and `+` to a space when
/// `plus_is_space` (HTML forms' encoding).
fn url_decode(
    lua: &Lua,
    function: &str,
    s: LuaString,
    plus_is_space: bool,
) -> mlua::Result<LuaString> {
    let bytes = s.as_bytes();
    let escaped = bytes.contains(&b'%') || (plus_is_space && bytes.contains(&b'+'));
    if !escaped {
        return Ok(s.clone());
    }
    // The decoded bytes, and the spaced copy first when there is one.
    charge(
        lua,
        function,
        bytes.len() * (1 + usize::from(plus_is_space)),
    )?;
    let decoded: Vec<u8> = if plus_is_space {
        let spaced: Vec<u8> = bytes
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&spaced).collect()
    } else {
        percent_encoding::percent_decode(&bytes).collect()
    };
    lua.create_string(decoded)
}
