//! The one module that names the Lua engine.
//!
//! luapool builds against exactly one engine, chosen with a cargo feature. Everything
//! engine-specific (which standard libraries exist, how a trusted VM is opened, the
//! engine's name) lives here so the rest of the crate stays engine-neutral.

use mlua::{Lua, LuaOptions, StdLib};

#[cfg(not(any(feature = "lua54")))]
compile_error!("luapool needs an engine: enable the `lua54` feature (the default)");

/// Human-readable name of the engine this build of luapool runs, e.g. `"Lua 5.4"`.
///
/// ```
/// assert!(luapool::ENGINE.starts_with("Lua"));
/// ```
#[cfg(feature = "lua54")]
pub const ENGINE: &str = "Lua 5.4";

/// Standard libraries opened for a sandboxed VM, before the sandbox trims them.
///
/// The base library is always opened by mlua; `io`, `package` and `debug` are never
/// opened here.
fn sandbox_libs() -> StdLib {
    StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE | StdLib::OS
}

/// Opens the Lua state for a sandboxed VM: only the libraries the sandbox draws from.
pub(crate) fn open_sandboxed() -> mlua::Result<Lua> {
    Lua::new_with(sandbox_libs(), LuaOptions::new())
}

/// Opens the Lua state for a trusted VM: the full standard library, `debug` included.
pub(crate) fn open_trusted() -> Lua {
    // SAFETY: `unsafe_new_with` is unsafe only because the `debug` library lets a script
    // break mlua's invariants (e.g. `debug.setmetatable` on mlua's userdata). Trusted mode
    // exists precisely for scripts the operator owns and vouches for; the sandboxed mode
    // never takes this path.
    unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::new()) }
}
