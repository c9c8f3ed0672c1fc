//! Library functions rewritten so that no script code and no long loop escapes an
//! execution's limits.
//!
//! The limit hook fires only between Lua instructions. Two kinds of engine functions run
//! without any: a C loop whose length a script controls without allocating (the memory
//! limit cannot bound it), and script code that Lua runs outside any execution. The
//! sandbox replaces each such function with a Lua wrapper:
//!
//! | function | why | the sandbox's version |
//! |---|---|---|
//! | `setmetatable` | a `__gc` finalizer runs whenever the collector decides: in a later execution, between executions, at VM close, always with hooks disabled | refuses a metatable with a `__gc` field |
//! | `string.rep` | `string.rep("", 2^53)` loops 2^53 times and allocates nothing | an empty result is returned at once |
//! | `table.insert`, `table.remove`, `table.move`, `table.concat` | with a `__len` returning 2^53 (or a range that large) they loop in C; with C functions as `__index`/`__newindex` nothing in the loop dispatches an instruction | a table with a metatable (and any long `table.move`) is processed in chunks of [`CHUNK`] elements, so the hook fires between chunks |
//! | `table.sort` | same, on a table with a metatable | such a table is copied into a plain one in Lua (bounded by the memory limit), sorted, and written back |
//! | `tostring` (LuaJIT) | `__tostring = tostring` loops through fast-function tail calls without dispatching bytecode | a Lua function calling the engine's `tostring` |
//!
//! Plain tables (no metatable) keep the engine's functions: their length is the number of
//! elements they hold, which the memory limit bounds.
//!
//! The wrappers are written in Lua: `src/lua/bounded.lua`. `setmetatable`'s common case
//! (a table without a metatable gets one without `__gc`) is one C function,
//! [`set_plain_metatable`], in front of the Lua checks.

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};
use mlua::{Function, Lua, Table, Value};

use crate::lua_helpers::{self, Helper};

/// Elements processed by one call of an engine table function in a chunked operation.
pub(crate) const CHUNK: i64 = 4096;

/// The makers of the bounded functions of one state, loaded on first use.
pub(crate) struct Bounded {
    makers: Table,
}

impl Bounded {
    pub(crate) fn load(lua: &Lua) -> mlua::Result<Bounded> {
        let globals = lua.globals();
        let makers: Table = lua_helpers::load(lua, Helper::Bounded)?.call((
            CHUNK,
            globals.raw_get::<Function>("type")?,
            globals.raw_get::<Function>("error")?,
            globals.raw_get::<Function>("select")?,
            globals.raw_get::<Function>("rawget")?,
            globals.raw_get::<Function>("getmetatable")?,
            globals.raw_get::<Function>("tonumber")?,
            globals.raw_get::<Function>("pcall")?,
            globals
                .raw_get::<Table>("string")?
                .raw_get::<Function>("find")?,
        ))?;
        Ok(Bounded { makers })
    }

    fn make(&self, name: &str, real: impl mlua::IntoLuaMulti) -> mlua::Result<Function> {
        self.makers.raw_get::<Function>(name)?.call(real)
    }

    /// `setmetatable` refusing `__gc`.
    pub(crate) fn setmetatable(&self, lua: &Lua) -> mlua::Result<Function> {
        let real: Function = lua.globals().raw_get("setmetatable")?;
        // SAFETY: `set_plain_metatable` follows the lua_CFunction protocol (see there).
        let plain = unsafe { lua.create_c_function(set_plain_metatable)? };
        self.make("setmetatable", (real, plain))
    }

    /// `tostring` as a Lua function (where the engine needs it, see
    /// `engine::LUA_TOSTRING`).
    pub(crate) fn tostring(&self, lua: &Lua) -> mlua::Result<Function> {
        let real: Function = lua.globals().raw_get("tostring")?;
        self.make("tostring", real)
    }

    /// Replaces `rep` in the real `string` table (which string methods also reach).
    pub(crate) fn patch_string(&self, string: &Table) -> mlua::Result<()> {
        let rep = self.make("rep", string.raw_get::<Function>("rep")?)?;
        string.raw_set("rep", rep)
    }

    /// Replaces the looping functions of the real `table` table.
    pub(crate) fn patch_table(&self, table: &Table) -> mlua::Result<()> {
        const NAMES: [&str; 5] = ["insert", "remove", "move", "concat", "sort"];
        let mut real = Vec::with_capacity(NAMES.len());
        for name in NAMES {
            real.push(table.raw_get::<Value>(name)?);
        }
        let maker: Function = self.makers.raw_get("table")?;
        let (insert, remove, move_, concat, sort): (
            Function,
            Function,
            Function,
            Function,
            Function,
        ) = maker.call(mlua::MultiValue::from_iter(real))?;
        for (name, f) in NAMES.into_iter().zip([insert, remove, move_, concat, sort]) {
            table.raw_set(name, f)?;
        }
        Ok(())
    }
}

/// `(t, mt)`: sets `mt` as the metatable of `t` and returns `true` when `t` is a table
/// without a metatable and `mt` is `nil` or a table without a `__gc` field (what the
/// engine's `setmetatable` does then, with nothing to check or refuse); else returns
/// `false` and changes nothing, and the sandbox's Lua version takes the call (with Lua's
/// error messages). One C call where the Lua checks cost five (about 2,000 instructions).
unsafe extern "C-unwind" fn set_plain_metatable(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua as a C function: the stack is `l`'s, with its arguments at
    // 1.. and LUA_MINSTACK free slots, of which at most two are used here (the existing
    // metatable, or the `__gc` key and its value). `lua_settop` pads missing arguments
    // with nil. Nothing here raises an error but `lua_rawget`'s and `lua_setmetatable`'s
    // allocation failures, which unwind through this frame as in the engine's own
    // `setmetatable`: it holds nothing that needs dropping.
    unsafe {
        ffi::lua_settop(l, 2);
        let plain = ffi::lua_type(l, 1) == ffi::LUA_TTABLE
            && ffi::lua_getmetatable(l, 1) == 0
            && match ffi::lua_type(l, 2) {
                ffi::LUA_TNIL => true,
                ffi::LUA_TTABLE => {
                    ffi::lua_pushstring(l, c"__gc".as_ptr());
                    ffi::lua_rawget(l, 2);
                    let gc = ffi::lua_type(l, -1) != ffi::LUA_TNIL;
                    ffi::lua_pop(l, 1);
                    !gc
                }
                _ => false,
            };
        if plain {
            ffi::lua_setmetatable(l, 1);
        }
        ffi::lua_settop(l, 0);
        ffi::lua_pushboolean(l, c_int::from(plain));
        1
    }
}
