//! Converting a Lua table to a [`Value`] through Lua's C API.
//!
//! Walking a table with mlua's safe API (`Table::pairs`) makes every key and value an
//! mlua handle (a reference slot, a crossing into Lua, a drop), about 2,000 instructions
//! per entry: converting the 10-field object of `bench/app.lua`'s `/json` took 27,000
//! instructions per request. Here the whole value is walked by one C-API sequence inside
//! one protected call, reading keys and values straight off the Lua stack.
//!
//! Each table is walked twice: once to count its entries (against [`Value::MAX_ITEMS`]) and to
//! tell an array from a map, then to convert them: as `mlua::Table::pairs` did, entries
//! come in `next` order and a table is an array when its keys are exactly `1..=#t` (or it
//! is empty and carries the VM's array marker).

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};
use mlua::Lua;

use super::{Bounds, Value, MAX_DEPTH, MAX_ITEMS};
use crate::error::Error;

/// Converts `table`, `depth` levels down the value being converted.
pub(super) fn convert(
    lua: &Lua,
    table: &mlua::Table,
    depth: usize,
    bounds: &mut Bounds<'_>,
) -> Result<Value, Error> {
    let mut out = None;
    // SAFETY: `exec_raw` runs the closure in protected mode with the table at index 1
    // and the array marker (or nil) at index 2, and restores the stack afterwards. See
    // `value_at` for what the walk does; it raises no Lua error (`lua_next` raises only
    // for a key removed during the walk, and no Lua code runs during it), so the Rust
    // values it builds are never unwound over.
    let ran = unsafe {
        lua.exec_raw::<()>((table, bounds.array_mt.cloned()), |l| {
            out = Some(value_at(l, 1, depth, bounds));
        })
    };
    match (ran, out) {
        (_, Some(result)) => result,
        (Err(e), None) => Err(Error::conversion(e.to_string())),
        (Ok(()), None) => Err(Error::conversion("the table was not walked")),
    }
}

/// Index of the array marker (or nil) in the protected call's frame.
const MARKER: c_int = 2;

/// The value at absolute stack index `idx` of `l`.
///
/// # Safety
/// `l` is the frame of [`convert`]'s protected call; `idx` is a valid absolute index.
unsafe fn value_at(
    l: *mut lua_State,
    idx: c_int,
    depth: usize,
    bounds: &mut Bounds<'_>,
) -> Result<Value, Error> {
    // SAFETY: see the function's contract; `lua_tolstring` is called on a string only,
    // which it returns without converting (so a key under `lua_next` stays as it is).
    unsafe {
        Ok(match ffi::lua_type(l, idx) {
            ffi::LUA_TNIL => Value::Nil,
            ffi::LUA_TBOOLEAN => Value::Boolean(ffi::lua_toboolean(l, idx) != 0),
            ffi::LUA_TNUMBER if ffi::lua_isinteger(l, idx) != 0 => {
                Value::Integer(ffi::lua_tointeger(l, idx))
            }
            ffi::LUA_TNUMBER => Value::Number(ffi::lua_tonumber(l, idx)),
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(l, idx, &mut len);
                Value::String(
                    bounds
                        .bytes
                        .copy(std::slice::from_raw_parts(p.cast(), len))?,
                )
            }
            ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, idx).is_null() => Value::Nil,
            ffi::LUA_TTABLE => table_at(l, idx, depth, bounds)?,
            other => {
                return Err(Error::conversion(format!(
                    "a Lua {} cannot be converted to a luapool::Value",
                    type_name(other)
                )))
            }
        })
    }
}

/// The table at absolute stack index `idx` of `l`.
///
/// # Safety
/// As [`value_at`], for a table.
unsafe fn table_at(
    l: *mut lua_State,
    idx: c_int,
    depth: usize,
    bounds: &mut Bounds<'_>,
) -> Result<Value, Error> {
    if depth >= MAX_DEPTH {
        return Err(Error::conversion(format!(
            "table nested deeper than {MAX_DEPTH} levels (or cyclic)"
        )));
    }
    // SAFETY: see the function's contract. The walk keeps at most three values of its
    // own on the stack (a metatable, or a key and a value), room `lua_checkstack`
    // provides (it does not raise); each step pops what it pushed before it returns.
    unsafe {
        if ffi::lua_checkstack(l, 3) == 0 {
            return Err(Error::conversion(
                "table nested too deeply for the Lua stack",
            ));
        }
        let marked_array = ffi::lua_getmetatable(l, idx) != 0 && {
            let marked = ffi::lua_rawequal(l, -1, MARKER) != 0;
            ffi::lua_pop(l, 1);
            marked
        };
        let len = ffi::lua_rawlen(l, idx);
        let (count, sequence_keys) = count_entries(l, idx, len, bounds)?;
        if (len > 0 || marked_array) && count == len && sequence_keys {
            array_at(l, idx, len, depth, bounds)
        } else {
            map_at(l, idx, count, depth, bounds)
        }
    }
}

/// The first walk of a table: counts its entries against the items left, and says
/// whether its keys are exactly `1..=len`.
///
/// # Safety
/// As [`table_at`], with room for two more values on the stack.
unsafe fn count_entries(
    l: *mut lua_State,
    idx: c_int,
    len: usize,
    bounds: &mut Bounds<'_>,
) -> Result<(usize, bool), Error> {
    let mut count = 0usize;
    let mut sequence_keys = true;
    // SAFETY: see the function's contract; each step leaves the key for `lua_next`.
    unsafe {
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            ffi::lua_pop(l, 1);
            if bounds.items == 0 {
                ffi::lua_pop(l, 1);
                return Err(Error::conversion(format!(
                    "value has more than {MAX_ITEMS} table entries"
                )));
            }
            bounds.items -= 1;
            count += 1;
            sequence_keys = sequence_keys
                && ffi::lua_isinteger(l, -1) != 0
                && usize::try_from(ffi::lua_tointeger(l, -1)).is_ok_and(|i| i >= 1 && i <= len);
        }
    }
    Ok((count, sequence_keys))
}

/// The table at `idx` as an array of its `len` items.
///
/// # Safety
/// As [`table_at`], with room for one more value on the stack.
unsafe fn array_at(
    l: *mut lua_State,
    idx: c_int,
    len: usize,
    depth: usize,
    bounds: &mut Bounds<'_>,
) -> Result<Value, Error> {
    bounds
        .bytes
        .charge(len.saturating_mul(std::mem::size_of::<Value>()))?;
    let mut items = Vec::with_capacity(len);
    for i in 1..=len {
        // SAFETY: see the function's contract; the item is popped before the next.
        let item = unsafe {
            ffi::lua_rawgeti(l, idx, ffi::lua_Integer::try_from(i).unwrap_or(0));
            let item = value_at(l, ffi::lua_gettop(l), depth + 1, bounds);
            ffi::lua_pop(l, 1);
            item
        };
        items.push(item?);
    }
    Ok(Value::Array(items))
}

/// The table at `idx` as a map of its `count` entries, in `next` order.
///
/// # Safety
/// As [`table_at`], with room for two more values on the stack.
unsafe fn map_at(
    l: *mut lua_State,
    idx: c_int,
    count: usize,
    depth: usize,
    bounds: &mut Bounds<'_>,
) -> Result<Value, Error> {
    bounds
        .bytes
        .charge(count.saturating_mul(std::mem::size_of::<(Value, Value)>()))?;
    let mut pairs = Vec::with_capacity(count);
    // SAFETY: see the function's contract; each step leaves the key for `lua_next`,
    // and a failed step pops its key too.
    unsafe {
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            let top = ffi::lua_gettop(l);
            let pair = entry(l, top - 1, top, depth, bounds);
            ffi::lua_pop(l, 1);
            match pair {
                Ok(pair) => pairs.push(pair),
                Err(e) => {
                    ffi::lua_pop(l, 1);
                    return Err(e);
                }
            }
        }
    }
    Ok(Value::Map(pairs))
}

/// The key and value at stack indexes `key` and `value` of a map's entry.
///
/// # Safety
/// As [`value_at`].
unsafe fn entry(
    l: *mut lua_State,
    key: c_int,
    value: c_int,
    depth: usize,
    bounds: &mut Bounds<'_>,
) -> Result<(Value, Value), Error> {
    // SAFETY: see the function's contract.
    unsafe {
        let k = value_at(l, key, depth + 1, bounds)?;
        if matches!(k, Value::Array(_) | Value::Map(_)) {
            return Err(Error::conversion(
                "tables as table keys cannot be converted",
            ));
        }
        Ok((k, value_at(l, value, depth + 1, bounds)?))
    }
}

/// mlua's name of a Lua type that has no `Value`.
fn type_name(t: c_int) -> &'static str {
    match t {
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TTHREAD => "thread",
        ffi::LUA_TLIGHTUSERDATA => "lightuserdata",
        _ => "userdata",
    }
}
