//! LuaJIT only: wrappers of engine functions where LuaJIT would break a sandbox guarantee
//! that Lua 5.4 and 5.5 keep by themselves. Two of them, below: the C stack, and sealed
//! tables.
//!
//! **The C stack.** Recursion through C functions fails with "C stack overflow" instead of
//! overflowing the thread's stack.
//!
//! Lua 5.4 and 5.5 count nested C calls and raise "C stack overflow" past about 200.
//! LuaJIT counts only Lua stack slots, so a script that recurses through a C function
//! overflows the *thread's* stack and the process dies: `s:gsub(".", f)` where `f` calls
//! `gsub` again (each level holds an 8 KiB buffer on the C stack), nested coroutines (each
//! has its own Lua stack: ~100,000 levels fit), `table.sort` from a comparator, or `print`
//! of a value whose `__tostring` prints. Those functions are wrapped here: before calling
//! the real one, the wrapper asks [`check_stack`] how much of the thread's stack is left
//! and raises the error when less than [`RESERVE`] is. Measuring the stack rather than
//! counting calls keeps suspended executions (an async host call, a yielded coroutine)
//! from being counted: they hold no C stack while they wait.
//!
//! Wrapped: every host function (see `sandbox/wrap.rs`, which also applies the failure protocol
//! here), `coroutine.resume`, `coroutine.wrap`, `string.gsub`, `string.format` and
//! `table.sort`.
//!
//! **Sealed tables** (see `sandbox/seal.rs`). LuaJIT's `table.insert`, `table.remove`,
//! `table.move` and `table.sort` write with raw access, so they would store into a sealed
//! proxy itself, where every later execution would see the value. Their wrappers refuse sealed tables; [`note_sealed`] registers each proxy.
//!
//! The wrappers are written in Lua: `src/lua/cstack.lua`.

use std::cell::Cell;
use std::ffi::c_int;

use mlua::ffi::{self, lua_State};
use mlua::{Function, Lua, Table, Value};

use super::EngineHelper;
use crate::lua_helpers::{self, Helper};
use crate::sandbox::shim::fail_marker;

/// Stack that must be left when a wrapped function is entered: room for the deepest
/// stretch of C frames between two checks (a `gsub` level with its buffer, an mlua
/// callback, the engine's own error handling), with a wide margin.
pub(crate) const RESERVE: usize = 256 * 1024;

/// Registry key of `host(f)`, the host-function wrapper maker.
const HOST: &str = "luapool.luajit.host";
/// Registry key of the weak-keyed set of sealed proxies (proxy -> name).
const SEALED: &str = "luapool.sealed";

/// Replaces `coroutine.resume`, `coroutine.wrap`, `string.gsub`, `string.format`,
/// `table.sort` (stack-checked) and `table.insert`, `table.remove`, `table.move` (and
/// `table.sort`: refusing sealed tables) of the real libraries of `lua`, and keeps the
/// host-function wrapper maker for [`wrap`]. Must run before any library table is copied
/// or sealed.
pub(crate) fn install(lua: &Lua, no_message: &str) -> mlua::Result<()> {
    lua.load_std_libs(mlua::StdLib::TABLE)?;
    let globals = lua.globals();
    let coroutine: Table = globals.raw_get("coroutine")?;
    let string: Table = globals.raw_get("string")?;
    let table: Table = globals.raw_get("table")?;
    // SAFETY: `check_stack` follows the lua_CFunction protocol: it takes no arguments and
    // returns one boolean.
    let check = unsafe { lua.create_c_function(check_stack)? };
    let sealed = crate::sandbox::shim::weak_keyed_table(lua)?;
    let f = |t: &Table, name: &str| t.raw_get::<Function>(name);
    let wrappers = lua_helpers::load(lua, Helper::Engine(EngineHelper::CStack))?
        .call::<[Function; 9]>((
            check,
            f(&globals, "error")?,
            f(&globals, "type")?,
            f(&globals, "select")?,
            f(&coroutine, "create")?,
            f(&coroutine, "resume")?,
            f(&string, "gsub")?,
            f(&string, "format")?,
            f(&table, "sort")?,
            f(&table, "insert")?,
            f(&table, "remove")?,
            f(&table, "move")?,
            &sealed,
            fail_marker(),
            no_message,
        ))?;
    let [host, resume, wrap, gsub, format, sort, insert, remove, move_] = wrappers;
    coroutine.raw_set("resume", resume)?;
    coroutine.raw_set("wrap", wrap)?;
    string.raw_set("gsub", gsub)?;
    string.raw_set("format", format)?;
    table.raw_set("sort", sort)?;
    table.raw_set("insert", insert)?;
    table.raw_set("remove", remove)?;
    table.raw_set("move", move_)?;
    lua.set_named_registry_value(SEALED, sealed)?;
    lua.set_named_registry_value(HOST, host)
}

/// Registers `proxy`, a sealed table named `name`, so that the raw-writing table
/// functions refuse it.
pub(crate) fn note_sealed(lua: &Lua, proxy: &Table, name: &str) -> mlua::Result<()> {
    let sealed: Table = lua.named_registry_value(SEALED)?;
    sealed.raw_set(proxy, name)
}

/// Wraps host function `f`: stack-checked, and following the failure protocol.
pub(crate) fn wrap(lua: &Lua, f: Function) -> mlua::Result<Function> {
    match lua.named_registry_value::<Value>(HOST)? {
        Value::Function(host) => host.call(f),
        _ => Err(mlua::Error::runtime("luapool: C stack guard not installed")),
    }
}

thread_local! {
    /// Lowest usable address of this thread's stack (0: not looked up yet, 1: unknown).
    static STACK_LOW: Cell<usize> = const { Cell::new(0) };
}

/// `check_stack()`: true when more than [`RESERVE`] bytes of the thread's stack are left.
unsafe extern "C-unwind" fn check_stack(l: *mut lua_State) -> c_int {
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    let low = STACK_LOW.with(|c| {
        if c.get() == 0 {
            c.set(stack_low().unwrap_or(1));
        }
        c.get()
    });
    let ok = low == 1 || here > low.saturating_add(RESERVE);
    // SAFETY: Lua calls this C function with a valid state; pushing one value fits in the
    // LUA_MINSTACK slots every C function gets.
    unsafe { ffi::lua_pushboolean(l, c_int::from(ok)) };
    1
}

/// The lowest address of the calling thread's stack, from the C library.
#[cfg(target_os = "linux")]
fn stack_low() -> Option<usize> {
    // SAFETY: `pthread_getattr_np` fills a zeroed attribute object for the calling
    // thread, which is destroyed after `pthread_attr_getstack` read its stack bounds.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (rc == 0 && !addr.is_null()).then_some(addr as usize)
    }
}

/// Unknown elsewhere: the check passes.
#[cfg(not(target_os = "linux"))]
fn stack_low() -> Option<usize> {
    None
}
