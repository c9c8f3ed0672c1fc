//! The host-function wrapper of Lua 5.4 and 5.5: a C function that calls the host
//! function with a continuation (so async host functions may yield through it) and
//! applies the failure protocol (see `sandbox/wrap.rs`).

use std::ffi::c_int;

use mlua::ffi::{self, lua_KContext, lua_State};
use mlua::{Function, Lua, Table};

use crate::sandbox::shim::fail_pointer;
use crate::sandbox::wrap::NO_MESSAGE;

/// Wraps `f` (a host function following the failure protocol).
pub(crate) fn wrap(lua: &Lua, f: Function) -> mlua::Result<Function> {
    // SAFETY: `exec_raw` runs the closure in protected mode with `f` alone on the stack;
    // `lua_pushcclosure` pops it as the upvalue and pushes the wrapper, which is the one
    // value left and converted to the result. `host_wrapper` follows the lua_CFunction
    // protocol (see there).
    unsafe { lua.exec_raw(f, |l| ffi::lua_pushcclosure(l, host_wrapper, 1)) }
}

/// Wraps `require`'s host function `f` like [`wrap`], with a fast path in front: a name
/// found in one of `caches` (the built-in modules, then the modules loaded so far) is
/// returned from there without calling `f`. A `require` at the top of a handler runs on
/// every request; through `f` it costs about 5,000 instructions, through the fast path
/// about 150 (callgrind).
pub(crate) fn wrap_cached(lua: &Lua, f: Function, caches: [Table; 2]) -> mlua::Result<Function> {
    let [builtins, loaded] = caches;
    // SAFETY: `exec_raw` runs the closure in protected mode with `f` and the two tables on
    // the stack; `lua_pushcclosure` pops them as upvalues 1 to 3 and pushes the wrapper,
    // the one value left and converted to the result. `cached_wrapper` follows the
    // lua_CFunction protocol (see there).
    unsafe {
        lua.exec_raw((f, builtins, loaded), |l| {
            ffi::lua_pushcclosure(l, cached_wrapper, 3)
        })
    }
}

/// [`host_wrapper`] behind a lookup of its first argument, a string, in upvalues 2 and 3
/// (tables): the first value found that is not nil nor a light userdata (`require`'s
/// marker of a module being loaded) is the result.
unsafe extern "C-unwind" fn cached_wrapper(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this C function with a valid state and a frame holding the
    // arguments; at most one value is pushed at a time, within the LUA_MINSTACK slots
    // every C function gets; `lua_rawget` raises nothing (no metamethods). On a miss the
    // frame is as it was, and `host_wrapper` runs in it with upvalue 1, the host function.
    unsafe {
        if ffi::lua_type(l, 1) == ffi::LUA_TSTRING {
            for cache in [2, 3] {
                ffi::lua_pushvalue(l, 1);
                let found = ffi::lua_rawget(l, ffi::lua_upvalueindex(cache));
                if found != ffi::LUA_TNIL && found != ffi::LUA_TLIGHTUSERDATA {
                    return 1;
                }
                ffi::lua_pop(l, 1);
            }
        }
        host_wrapper(l)
    }
}

/// The wrapper: calls upvalue 1 with all arguments, returns its results or raises its
/// failure.
unsafe extern "C-unwind" fn host_wrapper(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this C function with a valid state and a frame holding the
    // arguments; pushing one value fits in the LUA_MINSTACK slots every C function gets.
    // `lua_callk` may raise or yield: this frame holds nothing that needs dropping, and
    // after a yield Lua resumes in `host_wrapper_k`.
    unsafe {
        let nargs = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_rotate(l, 1, 1);
        ffi::lua_callk(l, nargs, ffi::LUA_MULTRET, 0, Some(host_wrapper_k));
        finish(l)
    }
}

/// Continuation of [`host_wrapper`] after the host function yielded (an async one).
unsafe extern "C-unwind" fn host_wrapper_k(
    l: *mut lua_State,
    _status: c_int,
    _ctx: lua_KContext,
) -> c_int {
    // SAFETY: Lua calls the continuation with the wrapper's frame holding the results.
    unsafe { finish(l) }
}

/// Returns the results on the stack, or raises the failure they report.
///
/// # Safety
/// Must run in the frame of [`host_wrapper`], with the host function's results on the
/// stack and nothing to drop in the calling frames (`lua_error` longjmps over them).
unsafe fn finish(l: *mut lua_State) -> c_int {
    // SAFETY: see the function's contract. After `lua_settop(l, 2)` the frame holds two
    // values, well within the LUA_MINSTACK slots it has, so pushing one more is fine.
    unsafe {
        let nresults = ffi::lua_gettop(l);
        let failed = nresults >= 1
            && ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA
            && ffi::lua_touserdata(l, 1) == fail_pointer();
        if !failed {
            return nresults;
        }
        ffi::lua_settop(l, 2);
        if ffi::lua_type(l, 2) != ffi::LUA_TSTRING {
            ffi::lua_pop(l, 1);
            ffi::lua_pushlstring(l, NO_MESSAGE.as_ptr().cast(), NO_MESSAGE.len());
        }
        // Level 1: the function that called the wrapper; "" when it is not a Lua function.
        ffi::luaL_where(l, 1);
        ffi::lua_rotate(l, 2, 1);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}
