//! Building a table of byte strings in one protected call through Lua's C API.
//!
//! A host that hands every execution a table built from its own data (the HTTP server's
//! `req`: method, path, body, headers, query) pays for it on every call. Built with
//! mlua's safe API, each field costs a crossing into Lua; built by a Lua constructor,
//! the strings cross as arguments and the constructor runs as bytecode. Built here, the
//! whole table is made by one C-API sequence inside one protected call: about a third of
//! the instructions of the Lua constructor it replaced (measured with callgrind on the
//! server's `req`: 13,200 instructions per request before, see `docs/performance.md`).

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Table};

/// The value of one field of a table built by [`string_table`].
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    /// A string (any bytes).
    Bytes(&'a [u8]),
    /// A table of the key-value pairs; a key given twice or more holds an array of its
    /// values, in order (as a query string or HTTP headers may repeat a key).
    Multimap(&'a [(&'a [u8], &'a [u8])]),
    /// A table of the key-value pairs where the first value of a repeated key wins:
    /// every value is a string.
    First(&'a [(&'a [u8], &'a [u8])]),
}

/// A new table holding `fields` (each name once), made in one call into Lua.
///
/// ```
/// use luapool::mlua::Lua;
/// use luapool::string_table::{string_table, Field};
///
/// let lua = Lua::new();
/// let pairs: &[(&[u8], &[u8])] = &[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")];
/// let t = string_table(&lua, &[(c"path", Field::Bytes(b"/x")), (c"query", Field::Multimap(pairs))])?;
/// let f = lua.load("local t = ... return t.path, t.query.a[2], t.query.b").into_function()?;
/// let (path, a2, b): (String, String, String) = f.call(t)?;
/// assert_eq!((path.as_str(), a2.as_str(), b.as_str()), ("/x", "3", "2"));
/// # Ok::<(), luapool::mlua::Error>(())
/// ```
///
/// # Errors
/// A memory error if the state cannot allocate the table or its strings.
pub fn string_table(lua: &Lua, fields: &[(&CStr, Field<'_>)]) -> mlua::Result<Table> {
    // SAFETY: `exec_raw` runs the closure in protected mode on a stack it restores
    // afterwards; the closure leaves exactly one value, the table, which becomes the
    // result. A memory error raised by the API calls inside unwinds through the closure,
    // which holds only borrowed data (nothing to drop). See `push_fields` for the stack.
    unsafe { lua.exec_raw((), |l| push_fields(l, fields)) }
}

/// [`string_table`] with `metatable` set on the new table and, when `hidden` is
/// `Some((store, fields))`, a second table of `fields` stored as `store[table]` (with
/// `rawset`: `store` is typically a weak-keyed table of data kept out of the table's
/// sight), in the same one call into Lua.
///
/// ```
/// use luapool::mlua::Lua;
/// use luapool::string_table::{string_table_with, Field};
///
/// let lua = Lua::new();
/// let mt = lua.create_table()?;
/// mt.raw_set("__index", lua.load("{ hello = function(self) return 'hi ' .. self.name end }").eval::<luapool::mlua::Table>()?)?;
/// let store = lua.create_table()?;
/// let pairs: &[(&[u8], &[u8])] = &[(b"a", b"1"), (b"a", b"2")];
/// let t = string_table_with(&lua, &[(c"name", Field::Bytes(b"x")), (c"q", Field::First(pairs))], &mt,
///                           Some((&store, &[(c"q", Field::Multimap(pairs))])))?;
/// let f = lua.load("local t, store = ... return t:hello(), t.q.a, store[t].q.a[2]").into_function()?;
/// let (hi, a, a2): (String, String, String) = f.call((t, store))?;
/// assert_eq!((hi.as_str(), a.as_str(), a2.as_str()), ("hi x", "1", "2"));
/// # Ok::<(), luapool::mlua::Error>(())
/// ```
///
/// # Errors
/// As [`string_table`].
pub fn string_table_with(
    lua: &Lua,
    fields: &[(&CStr, Field<'_>)],
    metatable: &Table,
    hidden: Option<(&Table, &[(&CStr, Field<'_>)])>,
) -> mlua::Result<Table> {
    let (store, hidden) = match hidden {
        Some((store, hidden)) => (Some(store), hidden),
        None => (None, &[][..]),
    };
    // SAFETY: as in `string_table`. On entry the stack holds the metatable (1) and the
    // store or nil (2); `push_fields` pushes the table (3); `lua_setmetatable` pops the
    // metatable copy pushed just before it; with a store, the hidden table (4) and its
    // key (5) are pushed in the order `lua_rawset` pops them (key, then value), on a
    // table made by the host. `lua_replace` moves the table to 1 and `lua_settop`
    // leaves it alone on the stack, the one result.
    unsafe {
        lua.exec_raw((metatable, store), |l| {
            push_fields(l, fields);
            ffi::lua_pushvalue(l, 1);
            ffi::lua_setmetatable(l, 3);
            if ffi::lua_type(l, 2) == ffi::LUA_TTABLE {
                push_fields(l, hidden);
                ffi::lua_pushvalue(l, 3);
                ffi::lua_insert(l, -2);
                ffi::lua_rawset(l, 2);
            }
            ffi::lua_replace(l, 1);
            ffi::lua_settop(l, 1);
        })
    }
}

/// Pushes the table of `fields` onto `l`'s stack.
///
/// # Safety
/// `l` must be a Lua state in protected mode (errors may be raised).
unsafe fn push_fields(l: *mut lua_State, fields: &[(&CStr, Field<'_>)]) {
    // SAFETY: the stack holds at most 5 values more than on entry (table, key, old value,
    // new array or value, value), which `luaL_checkstack` makes room for or raises.
    // Every index used is relative to the top or an absolute index of a value pushed
    // here; `lua_rawset`/`lua_rawseti` write tables made here, which have no metatable.
    unsafe {
        ffi::luaL_checkstack(l, 6, std::ptr::null());
        ffi::lua_createtable(l, 0, c_int::try_from(fields.len()).unwrap_or(0));
        let table = ffi::lua_gettop(l);
        for (name, field) in fields {
            match field {
                Field::Bytes(bytes) => push_bytes(l, bytes),
                Field::Multimap(pairs) => {
                    ffi::lua_createtable(l, 0, c_int::try_from(pairs.len()).unwrap_or(0));
                    let map = ffi::lua_gettop(l);
                    for (key, value) in *pairs {
                        append(l, map, key, value);
                    }
                }
                Field::First(pairs) => {
                    ffi::lua_createtable(l, 0, c_int::try_from(pairs.len()).unwrap_or(0));
                    let map = ffi::lua_gettop(l);
                    for (key, value) in *pairs {
                        set_first(l, map, key, value);
                    }
                }
            }
            ffi::lua_setfield(l, table, name.as_ptr());
        }
    }
}

/// Pushes `bytes` as a Lua string.
///
/// # Safety
/// As [`push_fields`], with room for one more value.
unsafe fn push_bytes(l: *mut lua_State, bytes: &[u8]) {
    // SAFETY: see the function's contract; `lua_pushlstring` copies the bytes.
    unsafe { ffi::lua_pushlstring(l, bytes.as_ptr().cast(), bytes.len()) };
}

/// `map[key] = value` unless `map` has `key` already.
///
/// # Safety
/// As [`append`].
unsafe fn set_first(l: *mut lua_State, map: c_int, key: &[u8], value: &[u8]) {
    // SAFETY: see the function's contract; the function leaves the stack as it found it.
    unsafe {
        push_bytes(l, key); // key
        ffi::lua_pushvalue(l, -1); // key key
        if ffi::lua_rawget(l, map) == ffi::LUA_TNIL {
            ffi::lua_pop(l, 1); // key
            push_bytes(l, value); // key value
            ffi::lua_rawset(l, map);
        } else {
            ffi::lua_pop(l, 2);
        }
    }
}

/// `map[key] = value`, or, for a key already there, an array of its values.
///
/// # Safety
/// As [`push_fields`]; `map` is the absolute index of a table without a metatable, and the
/// stack has room for four more values.
unsafe fn append(l: *mut lua_State, map: c_int, key: &[u8], value: &[u8]) {
    // SAFETY: see the function's contract. Stack effects are noted per line; the function
    // leaves the stack as it found it.
    unsafe {
        push_bytes(l, key); // key
        ffi::lua_pushvalue(l, -1); // key key
        match ffi::lua_rawget(l, map) {
            // key nil
            ffi::LUA_TNIL => {
                ffi::lua_pop(l, 1); // key
                push_bytes(l, value); // key value
                ffi::lua_rawset(l, map);
            }
            // key array
            ffi::LUA_TTABLE => {
                let n = ffi::lua_rawlen(l, -1);
                push_bytes(l, value); // key array value
                ffi::lua_rawseti(l, -2, ffi::lua_Integer::try_from(n).unwrap_or(0) + 1);
                ffi::lua_pop(l, 2);
            }
            // key first
            _ => {
                ffi::lua_createtable(l, 2, 0); // key first array
                ffi::lua_insert(l, -2); // key array first
                ffi::lua_rawseti(l, -2, 1); // key array
                push_bytes(l, value); // key array value
                ffi::lua_rawseti(l, -2, 2); // key array
                ffi::lua_rawset(l, map);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_become_arrays_in_order_and_bytes_are_kept() {
        let lua = Lua::new();
        let pairs: &[(&[u8], &[u8])] = &[
            (b"a", b"1"),
            (b"b", b"\xff\x00"),
            (b"a", b"2"),
            (b"a", b"3"),
        ];
        let t = string_table(
            &lua,
            &[
                (c"s", Field::Bytes(b"x\x00y")),
                (c"m", Field::Multimap(pairs)),
            ],
        )
        .unwrap();
        let f = lua
            .load(
                "local t = ... return #t.s, table.concat(t.m.a, ','), #t.m.b, t.m.b:byte(1), \
                 getmetatable(t), getmetatable(t.m)",
            )
            .into_function()
            .unwrap();
        let got: (i64, String, i64, i64, Option<Table>, Option<Table>) = f.call(t).unwrap();
        assert_eq!((got.0, got.1.as_str(), got.2, got.3), (3, "1,2,3", 2, 255));
        assert!(got.4.is_none() && got.5.is_none());
    }

    #[test]
    fn a_memory_error_is_reported_not_raised() {
        let lua = Lua::new();
        lua.set_memory_limit(lua.used_memory() + 1024).unwrap();
        let big = vec![b'x'; 1 << 20];
        let err = string_table(&lua, &[(c"big", Field::Bytes(&big))]).unwrap_err();
        assert!(matches!(err, mlua::Error::MemoryError(_)), "{err:?}");
        lua.set_memory_limit(0).unwrap();
        assert!(string_table(&lua, &[(c"small", Field::Bytes(b"ok"))]).is_ok());
    }
}
