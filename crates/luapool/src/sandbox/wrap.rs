//! The wrapper every host function gets before scripts see it (with `engine/luajit.rs` on
//! LuaJIT, the sandbox's only `unsafe` code besides the limits' interrupt).
//!
//! A host function reports a failure by returning the failure marker and a message (see
//! [`host_result`](super::host_result)); the wrapper raises the message as a Lua string
//! error prefixed with the caller's `chunk:line:`, like `error(message, 2)` or a C
//! function's `luaL_error`.
//!
//! Why a C function: a Lua wrapper called in tail position (`return explode()`) replaces
//! its caller's frame, and the caller's line is gone by the time the failure is known.
//! A tail-called C function runs on top of its caller's frame (Lua 5.4 keeps it), so the
//! line is still there, as it is for Lua's own C functions. The wrapper calls the host
//! function with a continuation, so async host functions may yield through it.
//!
//! LuaJIT has no continuations (a C function cannot be yielded across), so there the
//! wrapper is written in Lua (in `engine/luajit.rs`, which also guards the C stack against
//! recursion through host functions); a host failure in tail position then carries no
//! line, the tail call having replaced the caller's frame.

/// Message raised when a host function reports a failure without a string.
pub(crate) const NO_MESSAGE: &str = "host function failed";

/// Wraps `f` (a host function following the failure protocol) the way this engine can
/// (see `engine::wrap_host`).
pub(crate) fn wrap(lua: &mlua::Lua, f: mlua::Function) -> mlua::Result<mlua::Function> {
    crate::engine::wrap_host(lua, f)
}
