//! Lua 5.4 and 5.5: the guarded `pcall` and `xpcall`, written in C (as Rust `extern`
//! functions) so that they take the place of the engine's own on the call stack.
//!
//! A guard written in Lua sits between the script and the engine's `pcall`: every error
//! level that reaches past the protected function (`pcall(error, "x", 2)`, a function
//! raising at level 3) then names the guard (`luapool:8:`) instead of the script's line,
//! and Lua 5.4 keeps the guard's frame even when it calls `pcall` in tail position. These
//! are `pcall` and `xpcall` themselves, as the engine writes them (`luaB_pcall`,
//! `luaB_xpcall`: `lua_pcallk` with a continuation, so scripts may yield across them),
//! plus what the guards add (see `src/lua/guards.lua`): a memory error they catch trips the
//! memory limit, and `xpcall`'s message handler is the guarded one. LuaJIT keeps the
//! guards written in Lua (a C function there cannot be yielded across).

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_KContext, lua_State};
use mlua::{Function, Lua};

use super::interrupt::{trip_memory, MEMORY_ERROR};

/// Creates `pcall` and `xpcall`; `handler_for(h)` makes the message handler `xpcall`
/// runs for a script's handler `h`.
pub(crate) fn protected_calls(lua: &Lua, handler_for: Function) -> mlua::Result<[Function; 2]> {
    // SAFETY: `guarded_pcall` follows the lua_CFunction protocol (see there);
    // `exec_raw` runs the closure in protected mode with `handler_for` alone on the stack,
    // and `lua_pushcclosure` pops it as the upvalue of `guarded_xpcall` and pushes the
    // closure, the one value left and converted to the result.
    unsafe {
        Ok([
            lua.create_c_function(guarded_pcall)?,
            lua.exec_raw(handler_for, |l| ffi::lua_pushcclosure(l, guarded_xpcall, 1))?,
        ])
    }
}

/// `pcall(f, ...)`: Lua's `luaB_pcall`, then [`finish`].
unsafe extern "C-unwind" fn guarded_pcall(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this C function with a valid state and a frame holding the
    // arguments; one value is pushed (within LUA_MINSTACK). `lua_pcallk` may yield: Lua
    // then resumes in `finish`, and this frame holds nothing that needs dropping.
    unsafe {
        if ffi::lua_type(l, 1) == ffi::LUA_TNONE {
            return argument_error(l, 1, c"pcall", c"value expected");
        }
        ffi::lua_pushboolean(l, 1);
        ffi::lua_insert(l, 1);
        let status = ffi::lua_pcallk(
            l,
            ffi::lua_gettop(l) - 2,
            ffi::LUA_MULTRET,
            0,
            0,
            Some(finish),
        );
        finish(l, status, 0)
    }
}

/// `xpcall(f, h, ...)`: Lua's `luaB_xpcall` with the message handler `handler_for(h)`
/// (upvalue 1 makes it), then [`finish`].
unsafe extern "C-unwind" fn guarded_xpcall(l: *mut lua_State) -> c_int {
    // SAFETY: as for `guarded_pcall`; at most three values are pushed at a time (within
    // LUA_MINSTACK). `handler_for` is luapool's own Lua function: it only makes a
    // closure (which may raise a memory or limit error, as any allocation may).
    unsafe {
        let n = ffi::lua_gettop(l);
        if ffi::lua_type(l, 2) != ffi::LUA_TFUNCTION {
            return function_expected(l, 2);
        }
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(l, 2);
        ffi::lua_call(l, 1, 1);
        ffi::lua_replace(l, 2);
        ffi::lua_pushboolean(l, 1);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_rotate(l, 3, 2);
        let status = ffi::lua_pcallk(l, n - 2, ffi::LUA_MULTRET, 2, 2, Some(finish));
        finish(l, status, 2)
    }
}

/// Lua's `finishpcall`: `true` and the results, or `false` and the error; a memory error
/// trips the memory limit instead (raised again, and at every instruction after it).
unsafe extern "C-unwind" fn finish(l: *mut lua_State, status: c_int, extra: lua_KContext) -> c_int {
    // SAFETY: called from the frames above (or by Lua as their continuation) with the
    // error object on top after a failure; two values are pushed (within LUA_MINSTACK).
    unsafe {
        if status != ffi::LUA_OK && status != ffi::LUA_YIELD {
            if is_memory_error(l, -1) {
                trip_memory(l);
            }
            ffi::lua_pushboolean(l, 0);
            ffi::lua_pushvalue(l, -2);
            return 2;
        }
        ffi::lua_gettop(l) - c_int::try_from(extra).unwrap_or(0)
    }
}

/// Raises (never returns) `bad argument #ARG to 'NAME' (function expected, got TYPE)` as
/// `luaL_typeerror` does.
///
/// # Safety
/// Must run in a C function's frame on `l`, with nothing to drop in the calling frames.
unsafe fn function_expected(l: *mut lua_State, arg: c_int) -> c_int {
    // SAFETY: see the function's contract; `luaL_getmetafield` pushes at most one value.
    unsafe {
        let got = if ffi::luaL_getmetafield(l, arg, c"__name".as_ptr()) == ffi::LUA_TSTRING {
            ffi::lua_tostring(l, -1)
        } else if ffi::lua_type(l, arg) == ffi::LUA_TLIGHTUSERDATA {
            c"light userdata".as_ptr()
        } else {
            ffi::lua_typename(l, ffi::lua_type(l, arg))
        };
        ffi::lua_pushfstring(l, c"function expected, got %s".as_ptr(), got);
        let message = ffi::lua_tostring(l, -1);
        argument_error(l, arg, c"xpcall", CStr::from_ptr(message))
    }
}

/// Raises (never returns) Lua's `bad argument #ARG to 'NAME' (MESSAGE)` at the caller's line, as
/// `luaL_argerror` does; NAME is the name the caller used, or `default` (where Lua's
/// own function would be found among the loaded libraries).
///
/// # Safety
/// Must run in a C function's frame on `l`, with nothing to drop in the calling frames.
unsafe fn argument_error(l: *mut lua_State, arg: c_int, default: &CStr, message: &CStr) -> c_int {
    // SAFETY: see the function's contract; `ar` is filled by `lua_getstack` before
    // `lua_getinfo` reads it, and `luaL_error` raises (it never returns).
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        let mut name = default.as_ptr();
        if ffi::lua_getstack(l, 0, &mut ar) != 0
            && ffi::lua_getinfo(l, c"n".as_ptr(), &mut ar) != 0
            && !ar.name.is_null()
        {
            name = ar.name;
        }
        ffi::luaL_error(
            l,
            c"bad argument #%d to '%s' (%s)".as_ptr(),
            arg,
            name,
            message.as_ptr(),
        )
    }
}

/// True if the value at `index` of `l`'s stack is Lua's memory error message.
///
/// # Safety
/// `index` must be a valid index of `l`'s current frame.
unsafe fn is_memory_error(l: *mut lua_State, index: c_int) -> bool {
    // SAFETY: see the function's contract; `lua_tolstring` is only called on a string,
    // which it does not convert.
    unsafe {
        if ffi::lua_type(l, index) != ffi::LUA_TSTRING {
            return false;
        }
        let mut len = 0;
        let msg = ffi::lua_tolstring(l, index, &mut len);
        std::slice::from_raw_parts(msg.cast::<u8>(), len) == MEMORY_ERROR
    }
}
