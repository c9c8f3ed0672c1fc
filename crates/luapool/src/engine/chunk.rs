//! How a script runs with the globals of one execution: `_ENV` as a parameter on Lua 5.4
//! and 5.5, `setfenv` on LuaJIT.
//!
//! A script is compiled once per state, wrapped so that the compiled chunk gives the
//! script's *main* function, `main(env, ...)`, which runs the script with globals `env`
//! and arguments `...`. On Lua 5.4 and 5.5 that is the script's body as a function whose
//! first parameter is `_ENV`: an execution is one call, with no closure made per
//! execution. The prefix stays on the script's first line so line numbers do not move.

use mlua::{Function, Lua};

/// Source put before a script: `_ENV` is the main function's first parameter.
#[cfg(not(feature = "luajit"))]
const WRAP_PREFIX: &[u8] = b"return function(_ENV, ...) ";
/// On LuaJIT (no `_ENV`) the wrapped chunk returns a new closure of the script at each
/// call, and `main` sets the chunk's environment first: a closure takes its environment
/// from the function that creates it (see `src/lua/factory.lua`).
#[cfg(feature = "luajit")]
const WRAP_PREFIX: &[u8] = b"return function(...) ";
/// Closes the function opened by [`WRAP_PREFIX`], on a line of its own so that a comment
/// on the script's last line cannot swallow it.
const WRAP_SUFFIX: &[u8] = b"\nend";

/// `source` wrapped so that its compiled chunk, passed to [`main`], gives the script's
/// main function.
pub(crate) fn wrap(source: &[u8]) -> Vec<u8> {
    let mut wrapped = Vec::with_capacity(WRAP_PREFIX.len() + source.len() + WRAP_SUFFIX.len());
    wrapped.extend_from_slice(WRAP_PREFIX);
    wrapped.extend_from_slice(source);
    wrapped.extend_from_slice(WRAP_SUFFIX);
    wrapped
}

/// The main function `main(env, ...)` of a chunk compiled from [`wrap`]'s output: what
/// the chunk returns (it runs no script code).
#[cfg(not(feature = "luajit"))]
pub(crate) fn main(_lua: &Lua, chunk: Function) -> mlua::Result<Function> {
    chunk.call(())
}

/// The main function of a wrapped chunk on LuaJIT: sets the chunk's environment, then
/// runs it to get the script's closure, and calls that.
#[cfg(feature = "luajit")]
pub(crate) fn main(lua: &Lua, chunk: Function) -> mlua::Result<Function> {
    use crate::lua_helpers::Helper;
    const MAKER: &str = "luapool.factory";
    let maker = match lua.named_registry_value::<Option<Function>>(MAKER)? {
        Some(maker) => maker,
        None => {
            let setfenv: Function = lua.globals().raw_get("setfenv")?;
            let helper = Helper::Engine(super::EngineHelper::Factory);
            let maker: Function = crate::lua_helpers::load(lua, helper)?.call(setfenv)?;
            lua.set_named_registry_value(MAKER, &maker)?;
            maker
        }
    };
    maker.call(chunk)
}
