//! The one module that names the Lua engine.
//!
//! luapool builds against exactly one engine, chosen with a cargo feature. Everything
//! engine-specific lives here so the rest of the crate stays engine-neutral:
//! - which standard libraries exist and how a state is opened (this file);
//! - how a script is bound to an environment, `_ENV` or `setfenv` ([`chunk`]);
//! - which Lua helpers differ by engine ([`helpers`]);
//! - how a host function is wrapped: a C function with a continuation on Lua 5.4 and
//!   5.5 (`host_call.rs`), a Lua one on LuaJIT;
//! - LuaJIT's own guards, where it would break a sandbox guarantee that Lua 5.4 and 5.5
//!   keep by themselves (`luajit.rs`).
//!
//! Elsewhere, a few modules exist only for some engines (the C `pcall` guards need
//! continuations, which LuaJIT lacks); they are declared with a `cfg` next to their
//! use, and the rest of the crate asks the constants and functions here.

use mlua::{Function, Lua, LuaOptions, StdLib, Table};

pub(crate) mod chunk;
mod helpers;
#[cfg(not(feature = "luajit"))]
mod host_call;
#[cfg(feature = "luajit")]
mod luajit;

pub(crate) use helpers::EngineHelper;

#[cfg(not(any(feature = "lua54", feature = "lua55", feature = "luajit")))]
compile_error!(
    "luapool needs an engine: enable one of the features `lua54` (the default), `lua55`, `luajit`"
);

#[cfg(any(
    all(feature = "lua54", feature = "lua55"),
    all(feature = "lua54", feature = "luajit"),
    all(feature = "lua55", feature = "luajit"),
))]
compile_error!(
    "luapool builds against exactly one engine: enable only one of `lua54`, `lua55`, `luajit` \
     (with `lua55` or `luajit`, also pass `--no-default-features`)"
);

/// Human-readable name of the engine this build of luapool runs: `"Lua 5.4"`,
/// `"Lua 5.5"` or `"LuaJIT 2.1"`.
///
/// ```
/// assert!(luapool::ENGINE.starts_with("Lua"));
/// ```
#[cfg(feature = "lua54")]
pub const ENGINE: &str = "Lua 5.4";
/// Human-readable name of the engine this build of luapool runs.
#[cfg(all(feature = "lua55", not(feature = "lua54")))]
pub const ENGINE: &str = "Lua 5.5";
/// Human-readable name of the engine this build of luapool runs.
#[cfg(all(feature = "luajit", not(any(feature = "lua54", feature = "lua55"))))]
pub const ENGINE: &str = "LuaJIT 2.1";

/// Time slicing (see `limits`) yields an execution from a count hook. mlua recognises a
/// hook yield on Lua 5.4 and 5.5; on LuaJIT it would take it for the script's own yield,
/// so there executions are never sliced.
pub(crate) const SLICES: bool = cfg!(not(feature = "luajit"));

/// True on LuaJIT: no integers, no `_ENV`, no continuations, a `coroutine` library that
/// is part of the base library. Code that compiles on every engine branches on it.
pub(crate) const LUAJIT: bool = cfg!(feature = "luajit");

/// Whether the engine has a separate integer subtype (Lua 5.4 and 5.5): there an mlua
/// `Value::Integer` is printed as an integer; on LuaJIT it is an integral float, which
/// Lua prints as `1e+15`.
pub(crate) const INTEGERS: bool = !LUAJIT;

/// Whether `coroutine.close` lets a coroutine close itself (Lua 5.5), which the sandbox
/// must refuse for an execution's own coroutine (see `sandbox::guard_close`).
pub(crate) const SELF_CLOSE: bool = cfg!(feature = "lua55");

/// Whether a sandboxed script's `tostring` is a Lua function around the engine's (made by
/// `src/lua/bounded.lua`): on LuaJIT, where a C function calling a script's `__tostring`
/// would put the call out of the C stack checks' sight (see `luajit.rs`).
pub(crate) const LUA_TOSTRING: bool = LUAJIT;

/// Base functions of this engine a sandboxed script keeps besides the common ones
/// (`sandbox::SAFE_BASE`): LuaJIT has `unpack` where Lua 5.4 has `table.unpack`.
#[cfg(feature = "luajit")]
pub(crate) const EXTRA_SAFE_BASE: &[&str] = &["unpack"];
/// Base functions of this engine a sandboxed script keeps besides the common ones.
#[cfg(not(feature = "luajit"))]
pub(crate) const EXTRA_SAFE_BASE: &[&str] = &[];

/// Opens the Lua state for a sandboxed VM: the base library and `string` (whose
/// metatable every string value needs). The sandbox opens the other libraries it allows
/// on first use, see [`sandbox_library`].
pub(crate) fn open_sandboxed() -> mlua::Result<Lua> {
    Lua::new_with(sandbox_libs(), options())
}

/// Libraries opened with every sandboxed state. On LuaJIT that includes `jit`: opening
/// it is what turns the JIT compiler on (without it LuaJIT only interprets). Scripts
/// never see it: the sandbox builds what they see from an allow-list.
#[cfg(feature = "luajit")]
fn sandbox_libs() -> StdLib {
    StdLib::STRING | StdLib::JIT
}
/// Libraries opened with every sandboxed state.
#[cfg(not(feature = "luajit"))]
fn sandbox_libs() -> StdLib {
    StdLib::STRING
}

/// Coroutines kept for reuse by async executions. Without a pool mlua creates (and the
/// GC later frees) one Lua thread per async execution; with it a finished execution's
/// thread is reset and reused (about 2,500 fewer instructions per HTTP request).
const THREAD_POOL: usize = 64;

fn options() -> LuaOptions {
    LuaOptions::new().thread_pool_size(THREAD_POOL)
}

/// The engine library behind a global name a sandboxed script may use, opened lazily.
/// (On LuaJIT `coroutine` belongs to the base library and is always open.)
pub(crate) fn sandbox_library(name: &str) -> Option<StdLib> {
    Some(match name {
        "table" => StdLib::TABLE,
        "math" => StdLib::MATH,
        #[cfg(not(feature = "luajit"))]
        "utf8" => StdLib::UTF8,
        #[cfg(not(feature = "luajit"))]
        "coroutine" => StdLib::COROUTINE,
        #[cfg(feature = "luajit")]
        "coroutine" => StdLib::NONE,
        #[cfg(feature = "luajit")]
        "bit" => StdLib::BIT,
        "os" => StdLib::OS,
        _ => return None,
    })
}

/// Opens one library on an existing state; it appears in the state's real globals.
pub(crate) fn open_library(lua: &Lua, lib: StdLib) -> mlua::Result<()> {
    if lib == StdLib::NONE {
        return Ok(());
    }
    lua.load_std_libs(lib)
}

/// Opens the `coroutine` library (part of the base library on LuaJIT), unless the state
/// already has it: opening it again would make a new table in the state's globals.
pub(crate) fn open_coroutine(lua: &Lua) -> mlua::Result<()> {
    if lua
        .globals()
        .raw_get::<mlua::Value>("coroutine")?
        .is_table()
    {
        return Ok(());
    }
    match sandbox_library("coroutine") {
        Some(lib) => open_library(lua, lib),
        None => Ok(()),
    }
}

/// Installs this engine's own guards into a new state's libraries, before any library
/// table is copied or sealed: on LuaJIT the C stack checks and the sealed-table
/// refusals (see `luajit.rs`); nothing on Lua 5.4 and 5.5.
pub(crate) fn install_guards(lua: &Lua) -> mlua::Result<()> {
    #[cfg(feature = "luajit")]
    return luajit::install(lua, crate::sandbox::wrap::NO_MESSAGE);
    #[cfg(not(feature = "luajit"))]
    {
        let _ = lua;
        Ok(())
    }
}

/// Records `proxy`, a sealed library table named `name`, for the engine's guards (on
/// LuaJIT the raw-writing table functions refuse it; nothing to do elsewhere).
pub(crate) fn note_sealed(lua: &Lua, proxy: &Table, name: &str) -> mlua::Result<()> {
    #[cfg(feature = "luajit")]
    return luajit::note_sealed(lua, proxy, name);
    #[cfg(not(feature = "luajit"))]
    {
        let _ = (lua, proxy, name);
        Ok(())
    }
}

/// Wraps host function `f` (which follows the sandbox's failure protocol, see
/// `sandbox/wrap.rs`): a C function with a continuation on Lua 5.4 and 5.5, a Lua
/// function that also checks the C stack on LuaJIT.
pub(crate) fn wrap_host(lua: &Lua, f: Function) -> mlua::Result<Function> {
    #[cfg(feature = "luajit")]
    return luajit::wrap(lua, f);
    #[cfg(not(feature = "luajit"))]
    host_call::wrap(lua, f)
}

/// Wraps the sandbox's `require` (a host function) with a fast path for the names found
/// in `caches` (the built-in modules, then the loaded ones), which returns them without
/// calling it: a C function on Lua 5.4 and 5.5 (`host_call.rs`), Lua in front of the
/// wrapper on LuaJIT (a tail call, so that the wrapper's errors still name the caller's
/// line).
pub(crate) fn wrap_require(lua: &Lua, f: Function, caches: [Table; 2]) -> mlua::Result<Function> {
    #[cfg(feature = "luajit")]
    {
        let slow = luajit::wrap(lua, f)?;
        let [builtins, loaded] = caches;
        let make: Function = lua
            .load(
                "local builtins, loaded, slow, type = ...\n\
                 return function(name, ...)\n\
                   if type(name) == 'string' then\n\
                     local v = builtins[name]\n\
                     if v ~= nil then return v end\n\
                     v = loaded[name]\n\
                     if v ~= nil and type(v) ~= 'userdata' then return v end\n\
                   end\n\
                   return slow(name, ...)\n\
                 end",
            )
            .set_name("=require")
            .set_environment(lua.create_table()?)
            .into_function()?;
        let type_fn: Function = lua.globals().raw_get("type")?;
        make.call((builtins, loaded, slow, type_fn))
    }
    #[cfg(not(feature = "luajit"))]
    host_call::wrap_cached(lua, f, caches)
}

/// The sandbox's `pcall` and `xpcall` under the limits' guards: on Lua 5.4 and 5.5 the C
/// versions (`limits/protected.rs`), which take the engine's functions' place on the call
/// stack (error levels); on LuaJIT, which has no continuations, the Lua ones given in
/// `in_lua`. `handler_for` is the guards' message-handler maker.
pub(crate) fn protected_calls(
    lua: &Lua,
    in_lua: [Function; 2],
    handler_for: Function,
) -> mlua::Result<[Function; 2]> {
    #[cfg(not(feature = "luajit"))]
    {
        let _ = in_lua;
        crate::limits::protected_calls(lua, handler_for)
    }
    #[cfg(feature = "luajit")]
    {
        let _ = (lua, handler_for);
        Ok(in_lua)
    }
}

/// Whether coroutine `l` may yield (`lua_isyieldable`). Always false on LuaJIT, whose
/// C API lacks the question; executions are never time-sliced there (see [`SLICES`]).
///
/// # Safety
/// `l` must be a valid Lua thread.
pub(crate) unsafe fn is_yieldable(l: *mut mlua::ffi::lua_State) -> bool {
    #[cfg(not(feature = "luajit"))]
    {
        // SAFETY: see the function's contract.
        unsafe { mlua::ffi::lua_isyieldable(l) != 0 }
    }
    #[cfg(feature = "luajit")]
    {
        let _ = l;
        false
    }
}

/// Opens the Lua state for a trusted VM: the full standard library, `debug` included
/// (and LuaJIT's `bit` and `jit`, but not `ffi`).
pub(crate) fn open_trusted() -> Lua {
    // SAFETY: `unsafe_new_with` is unsafe only because the `debug` library lets a script
    // break mlua's invariants (e.g. `debug.setmetatable` on mlua's userdata). Trusted mode
    // exists precisely for scripts the operator owns and vouches for; the sandboxed mode
    // never takes this path.
    unsafe { Lua::unsafe_new_with(StdLib::ALL_SAFE | StdLib::DEBUG, options()) }
}

/// LuaJIT: makes sure, once per process and in the background, that CPU limits stop
/// JIT-compiled loops, which needs LuaJIT built with `LUAJIT_ENABLE_CHECKHOOK` (this
/// workspace's `.cargo/config.toml` does it; a crate depending on luapool from elsewhere
/// must set `TARGET_CFLAGS` itself). Logs an error when they do not. Called when a VM
/// with a CPU limit or a timeout is configured; does nothing on Lua 5.4 and 5.5.
pub(crate) fn check_interruptible() {
    #[cfg(feature = "luajit")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("luapool-probe".into())
                .spawn(|| {
                    if !compiled_loops_stop() {
                        tracing::error!(
                            "this LuaJIT was built without LUAJIT_ENABLE_CHECKHOOK: CPU limits \
                             and timeouts cannot stop JIT-compiled loops; build with \
                             TARGET_CFLAGS=-DLUAJIT_ENABLE_CHECKHOOK (see docs/engines.md)"
                        );
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the LuaJIT hook probe");
            }
        });
    }
}

/// LuaJIT: whether a 10 ms CPU limit stops a compiled loop of about a second within
/// half a second.
#[cfg(feature = "luajit")]
pub(crate) fn compiled_loops_stop() -> bool {
    use std::time::{Duration, Instant};
    let config = crate::VmConfig::default().with_cpu_limit(Duration::from_millis(10));
    let Ok(vm) = crate::Vm::new(config) else {
        return false;
    };
    let script = crate::Script::new(
        "probe.lua",
        "local x = 0 for i = 1, 3e9 do x = x + i end return x",
    );
    let started = Instant::now();
    let stopped = matches!(vm.exec(&script), Err(crate::Error::CpuLimit { .. }));
    stopped && started.elapsed() < Duration::from_millis(500)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(feature = "luajit")]
    #[test]
    fn cpu_limits_stop_jit_compiled_loops() {
        assert!(compiled_loops_stop());
    }

    #[cfg(feature = "luajit")]
    #[test]
    fn the_jit_compiler_is_on_in_sandboxed_states() {
        let lua = open_sandboxed().unwrap();
        let jit: mlua::Table = lua.globals().get("jit").unwrap();
        let status: mlua::Function = jit.get("status").unwrap();
        assert!(status.call::<bool>(()).unwrap());
    }

    #[test]
    fn trusted_states_never_get_ffi() {
        let lua = open_trusted();
        assert!(lua.globals().get::<mlua::Value>("ffi").unwrap().is_nil());
    }
}
