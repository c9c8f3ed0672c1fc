//! The only `unsafe` code of the limits: arming a Lua hook on the thread that runs a
//! script, from a signal handler on that same thread.
//!
//! Why: any count hook puts Lua 5.4's interpreter on its slow path (about 2x on a tight
//! loop), so a script within its budget runs with no hook at all. When its budget runs
//! out, the watchdog thread sends [`SIGNAL`] to the worker thread; the handler, running on
//! that thread like the `lua` interpreter's own Ctrl-C handler, calls `lua_sethook` (which
//! the Lua manual documents as safe to call asynchronously) on the coroutine running at
//! that moment. The hook then raises the limit error at the next instruction, and keeps
//! raising it until the execution has unwound, so `pcall` cannot swallow it.
//!
//! State shared with the signal handler lives in constant-initialised thread-locals made
//! of atomics, so the handler neither allocates nor takes locks.

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::Once;

use mlua::ffi::{self, lua_Debug, lua_State};

use super::LimitKind;

/// The signal the watchdog sends: `SIGURG` is ignored by default, so a stray one is
/// harmless.
pub(crate) const SIGNAL: c_int = libc::SIGURG;

/// What [`TRIPPED`] holds while no limit has stopped the running execution; otherwise it
/// holds the [`LimitKind`] that did, as `kind as u8`.
pub(crate) const NOT_TRIPPED: u8 = 0;

/// What the watchdog asks of a thread whose execution used up its time slice: not a
/// limit, the execution should yield to the other tasks of its thread (see [`YIELD`]).
/// Travels in a [`Request`], never stored in [`TRIPPED`]; distinct from every
/// `LimitKind` code.
pub(crate) const SLICE: u8 = u8::MAX;

/// `kind` as [`TRIPPED`] holds it.
pub(crate) fn code(kind: Option<LimitKind>) -> u8 {
    kind.map_or(NOT_TRIPPED, |k| k as u8)
}

/// The limit [`TRIPPED`] holds, if any.
pub(crate) fn tripped_kind() -> Option<LimitKind> {
    LimitKind::from_code(TRIPPED.with(|t| t.load(Ordering::Acquire)))
}

/// Instructions a released coroutine may run before the hook stops it (see
/// `Meter::release`): enough for mlua's async machinery to drop the pending host future.
pub(crate) const RELEASE_GRACE: c_int = 256;

/// Instructions between two calls of the hook while an instruction budget is counted.
pub(crate) const BUDGET_STEP: i64 = 1000;

thread_local! {
    /// The coroutine running Lua on this thread (null between executions).
    pub(crate) static CURRENT: AtomicPtr<lua_State> = const { AtomicPtr::new(std::ptr::null_mut()) };
    /// Why the running execution was stopped, if it was.
    pub(crate) static TRIPPED: AtomicU8 = const { AtomicU8::new(0) };
    /// Identifies the current stretch of running (one poll); a signal meant for an
    /// earlier stretch is ignored.
    pub(crate) static STRETCH: AtomicU64 = const { AtomicU64::new(0) };
    /// Where the watchdog writes which stretch of this thread it wants stopped.
    static REQUEST: Cell<*const Request> = const { Cell::new(std::ptr::null()) };
    /// Instructions left in the running execution's budget (`i64::MAX`: no budget).
    pub(crate) static BUDGET: AtomicI64 = const { AtomicI64::new(i64::MAX) };
    /// The coroutine the signal handler armed, to disarm it when the execution ends.
    pub(crate) static ARMED: AtomicPtr<lua_State> = const { AtomicPtr::new(std::ptr::null_mut()) };
    /// Set when the running execution's time slice is used up: the hook yields its
    /// coroutine at the next instruction where that is possible.
    pub(crate) static YIELD: AtomicBool = const { AtomicBool::new(false) };
    /// The running execution's own coroutine (the one its async caller resumes); only
    /// this one may be yielded for a time slice, a coroutine of the script's own would
    /// hand the yield to the script.
    pub(crate) static TOP: AtomicPtr<lua_State> = const { AtomicPtr::new(std::ptr::null_mut()) };
    /// Set by the hook when it yields the execution for its time slice; read (and
    /// cleared) when the stretch ends.
    pub(crate) static SLICED: AtomicBool = const { AtomicBool::new(false) };
}

/// Instructions between two tries of a pending slice yield that could not happen yet
/// (inside a script's coroutine, or under a C call that cannot be yielded across).
const YIELD_RETRY: c_int = 100;

/// Installs the signal handler once per process.
pub(crate) fn install_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `sigaction` with a zeroed struct, a valid handler address and an empty
        // mask is the documented way to install a handler; SA_RESTART keeps system calls
        // the worker was in (epoll) from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(SIGNAL, &action, std::ptr::null_mut());
        }
    });
}

/// What the watchdog asks of one worker thread: stop stretch `stretch` for `trip` (a
/// [`LimitKind`] code, or [`SLICE`]).
pub(crate) struct Request {
    stretch: AtomicU64,
    trip: AtomicU8,
}

impl Request {
    pub(crate) fn new() -> Self {
        Request {
            stretch: AtomicU64::new(u64::MAX),
            trip: AtomicU8::new(0),
        }
    }
}

/// Tells the signal handler of the calling thread where its requests arrive. `request`
/// must outlive the thread (the watchdog keeps it in an `Arc` until the thread ends).
pub(crate) fn listen(request: *const Request) {
    REQUEST.with(|r| r.set(request));
}

/// Asks `thread` to stop its running stretch `stretch` for `trip` (called by the
/// watchdog, holding its registry lock).
pub(crate) fn request(thread: libc::pthread_t, request: &Request, stretch: u64, trip: u8) {
    request.trip.store(trip, Ordering::Release);
    request.stretch.store(stretch, Ordering::Release);
    // SAFETY: `thread` was obtained from `pthread_self` by a thread that unregisters it
    // (under the watchdog's lock, which the caller holds) before it exits, so it names a
    // live thread.
    unsafe {
        libc::pthread_kill(thread, SIGNAL);
    }
}

/// The calling thread's id, for [`request`].
pub(crate) fn current_thread() -> libc::pthread_t {
    // SAFETY: `pthread_self` has no preconditions.
    unsafe { libc::pthread_self() }
}

/// The signal handler: if the stretch the watchdog wants stopped is still running, record
/// why and arm the hook on the running coroutine.
extern "C" fn on_signal(_sig: c_int) {
    let _ = STRETCH.try_with(|stretch| {
        let request = REQUEST.with(|r| r.get());
        if request.is_null() {
            return;
        }
        // SAFETY: set by `listen` to a `Request` the watchdog keeps alive for as long as
        // this thread is registered.
        let request = unsafe { &*request };
        if request.stretch.load(Ordering::Acquire) != stretch.load(Ordering::Acquire) {
            return;
        }
        let trip = request.trip.load(Ordering::Acquire);
        if trip == SLICE {
            YIELD.with(|y| y.store(true, Ordering::Release));
        } else {
            TRIPPED.with(|t| t.store(trip, Ordering::Release));
        }
        let l = CURRENT.with(|c| c.load(Ordering::Acquire));
        if !l.is_null() {
            arm_sticky(l);
        }
    });
}

/// Arms the limit hook on `l`, called every `count` instructions.
pub(crate) fn arm(l: *mut lua_State, count: c_int) {
    // SAFETY: `l` is a live coroutine of the VM running on this thread (it is only taken
    // from CURRENT/ARMED, which are cleared when an execution ends, or from an mlua
    // `Thread` held by the caller), and `lua_sethook` is async-signal-safe per the manual.
    unsafe {
        ffi::lua_sethook(l, Some(limit_hook), ffi::LUA_MASKCOUNT, count);
    }
}

/// Arms the hook on `l` at every instruction and records `l` for the execution to
/// disarm when it ends: what a tripped limit does to the coroutine it must stop.
fn arm_sticky(l: *mut lua_State) {
    arm(l, 1);
    ARMED.with(|a| a.store(l, Ordering::Release));
}

/// True once a limit has stopped the running execution.
fn is_tripped() -> bool {
    TRIPPED.with(|t| t.load(Ordering::Acquire)) != NOT_TRIPPED
}

/// Removes any hook from `l`.
pub(crate) fn disarm(l: *mut lua_State) {
    if l.is_null() {
        return;
    }
    // SAFETY: as for `arm`.
    unsafe {
        ffi::lua_sethook(l, None, 0, 0);
    }
}

/// Raises the message of the limit `kind` as a Lua error on `l`. Never returns.
///
/// # Safety
/// Must be called from a hook or C function running on `l`, with no Rust value that needs
/// dropping alive in the calling frames (`lua_error` longjmps over them).
unsafe fn raise(l: *mut lua_State, kind: LimitKind) -> ! {
    let msg = kind.lua_message();
    ffi::lua_pushlstring(l, msg.as_ptr().cast(), msg.len());
    ffi::lua_error(l)
}

/// The hook: raises the trip of the running execution; yields it when its time slice is
/// used up; counts the instruction budget; removes itself when it is left over from an
/// execution that has ended.
unsafe extern "C-unwind" fn limit_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    if let Some(kind) = tripped_kind() {
        // From now on at every instruction (the hook may have been armed with a grace).
        arm(l, 1);
        // SAFETY: called by Lua as a hook on `l`; this frame holds nothing to drop.
        unsafe { raise(l, kind) }
    }
    if YIELD.with(|y| y.load(Ordering::Acquire)) {
        let top = TOP.with(|t| t.load(Ordering::Acquire));
        // SAFETY: `l` is the state Lua called the hook for.
        // SAFETY: `l` is the state Lua called the hook for.
        if l == top && unsafe { crate::engine::is_yieldable(l) } {
            YIELD.with(|y| y.store(false, Ordering::Release));
            SLICED.with(|y| y.store(true, Ordering::Release));
            // The hook stays armed (count 1): mlua recognises a yield from a hook by it,
            // and on resumption the hook finds nothing to do and removes itself.
            // SAFETY: a count hook may yield with no values when `lua_isyieldable` says
            // so (Lua 5.4 manual, `lua_sethook`); this call is the hook's last action and
            // the frame holds nothing to drop.
            unsafe { ffi::lua_yield(l, 0) };
            return;
        }
        // Not here, not now: try again shortly (the sandbox's `coroutine.resume` arms
        // the execution's coroutine again when a script coroutine hands back to it).
        // SAFETY: as for `arm`.
        unsafe {
            ffi::lua_sethook(l, Some(limit_hook), ffi::LUA_MASKCOUNT, YIELD_RETRY);
        }
        return;
    }
    let left = BUDGET.with(|b| b.load(Ordering::Relaxed));
    if left == i64::MAX {
        disarm(l);
        return;
    }
    // SAFETY: `l` is the state Lua called the hook for.
    let step = i64::from(unsafe { ffi::lua_gethookcount(l) });
    let left = left - step;
    BUDGET.with(|b| b.store(left, Ordering::Relaxed));
    if left < 0 {
        TRIPPED.with(|t| t.store(LimitKind::Instructions as u8, Ordering::Release));
        arm_sticky(l);
        // SAFETY: as above.
        unsafe { raise(l, LimitKind::Instructions) }
    }
}

/// `set_current(co)`: records the coroutine about to run (called by the sandbox's
/// `coroutine.resume` before and after resuming), so the signal handler arms the right
/// one.
pub(crate) unsafe extern "C-unwind" fn set_current(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this C function with a valid state; `lua_tothread` returns null
    // for a non-thread argument.
    let co = unsafe { ffi::lua_tothread(l, 1) };
    note_current(co);
    0
}

/// `announce()`: the first step of an execution's prologue, in one call: records the
/// running coroutine in `tops` (upvalue 1: no execution may resume or close another's),
/// then as [`set_current`] does. Nothing on LuaJIT's main thread (a sync execution),
/// whose `coroutine.running()` is `nil`.
pub(crate) unsafe extern "C-unwind" fn announce(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this C function with a valid state and LUA_MINSTACK free slots,
    // of which two are used (the thread and `true`); its upvalue 1 is the `tops` table
    // (see `c_functions`). `lua_rawset` may raise a memory error, which unwinds through
    // this frame: it holds nothing that needs dropping.
    unsafe {
        let main = ffi::lua_pushthread(l) == 1;
        if main && crate::engine::LUAJIT {
            ffi::lua_pop(l, 1);
            return 0;
        }
        ffi::lua_pushboolean(l, 1);
        ffi::lua_rawset(l, ffi::lua_upvalueindex(1));
    }
    note_current(l);
    0
}

/// Records `co` (when not null) as the coroutine about to run in the running execution.
fn note_current(co: *mut lua_State) {
    if !co.is_null() && !CURRENT.with(|c| c.load(Ordering::Acquire)).is_null() {
        CURRENT.with(|c| c.store(co, Ordering::Release));
        // The first coroutine an execution announces (from its prologue) is its own.
        TOP.with(|t| {
            let _ = t.compare_exchange(
                std::ptr::null_mut(),
                co,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        });
        // A limit that tripped, or a slice that ran out, just before the switch must
        // follow the running coroutine.
        if is_tripped() || YIELD.with(|y| y.load(Ordering::Acquire)) {
            arm_sticky(co);
        }
    }
}

/// `trip_memory()`: a script caught a memory error; make it stick like the other limits.
pub(crate) unsafe extern "C-unwind" fn trip_memory(l: *mut lua_State) -> c_int {
    TRIPPED.with(|t| t.store(LimitKind::Memory as u8, Ordering::Release));
    arm_sticky(l);
    // SAFETY: called by Lua as a C function on `l`; this frame holds nothing to drop.
    unsafe { raise(l, LimitKind::Memory) }
}

/// A host function saw the running execution run out of memory (a compilation that
/// `load` reports as `nil, "not enough memory"`, a host copy over the budget): the
/// memory limit trips, and the hook raises it at the execution's next instruction,
/// however the script handles the host function's answer. Nothing happens outside a
/// metered execution.
pub(crate) fn trip_memory_soon() {
    let l = CURRENT.with(|c| c.load(Ordering::Acquire));
    if l.is_null() {
        return;
    }
    let _ = TRIPPED.with(|t| {
        t.compare_exchange(
            NOT_TRIPPED,
            LimitKind::Memory as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
    });
    arm_sticky(l);
}

/// Lua's message for an allocation failure.
pub(crate) const MEMORY_ERROR: &[u8] = b"not enough memory";

/// `tripped()`: true once a limit has stopped the running execution (the guards then skip
/// script code that Lua would run with hooks disabled, such as an `xpcall` message
/// handler called from inside the limit hook).
pub(crate) unsafe extern "C-unwind" fn tripped(l: *mut lua_State) -> c_int {
    let tripped = is_tripped();
    // SAFETY: Lua calls this C function with a valid state; pushing one value fits in the
    // LUA_MINSTACK slots every C function gets.
    unsafe { ffi::lua_pushboolean(l, c_int::from(tripped)) };
    1
}

/// `handler(e)`: the message handler of every execution (its prologue runs it under
/// `xpcall`). A table's `__tostring` is called here, inside the execution and under its
/// limits, not later by the host, and the table is kept for the host's
/// [`Error::Runtime`](crate::Error::Runtime) (see `error_value.rs`); a string gets the
/// traceback of where it was raised.
/// Once a limit has tripped, or when no stack is left (a stack overflow), the error
/// object is returned as it is: nothing that could run long or fail runs then. Written
/// in C so that it needs no Lua call frame of its own.
pub(crate) unsafe extern "C-unwind" fn message_handler(l: *mut lua_State) -> c_int {
    if is_tripped() {
        return 1;
    }
    // SAFETY: Lua calls a message handler with the error object as its one argument.
    // Each push below is preceded by a `lua_checkstack` that guarantees the room it
    // needs (LUA_TRACEBACK_STACK for `luaL_traceback`, as mlua's own handler does).
    // `luaL_tolstring` may call a `__tostring` metamethod, which may raise: this frame
    // holds nothing that needs dropping.
    unsafe {
        if ffi::lua_checkstack(l, 2) == 0 {
            return 1;
        }
        if ffi::lua_type(l, 1) == ffi::LUA_TTABLE {
            // Kept for the host (see `error_value.rs`): the table, then its text. Both
            // registry keys exist already, so setting them allocates nothing.
            ffi::lua_pushvalue(l, 1);
            ffi::lua_setfield(
                l,
                ffi::LUA_REGISTRYINDEX,
                super::error_value::VALUE_KEY.as_ptr(),
            );
            ffi::luaL_tolstring(l, 1, std::ptr::null_mut());
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setfield(
                l,
                ffi::LUA_REGISTRYINDEX,
                super::error_value::TEXT_KEY.as_ptr(),
            );
            ffi::lua_replace(l, 1);
        }
        if ffi::lua_type(l, 1) != ffi::LUA_TSTRING
            || ffi::lua_checkstack(l, ffi::LUA_TRACEBACK_STACK) == 0
        {
            return 1;
        }
        let mut len = 0;
        let msg = ffi::lua_tolstring(l, 1, &mut len);
        // A memory error a script function raised again (with `error`) stays recognisable
        // as one: the prologue trips the memory limit on it.
        if std::slice::from_raw_parts(msg.cast::<u8>(), len) == MEMORY_ERROR {
            return 1;
        }
        ffi::luaL_traceback(l, l, msg, 1);
        1
    }
}

/// The C functions the guards (`src/lua/guards.lua`) call: `set_current`, `trip_memory`,
/// `tripped`, `message_handler`, and `announce` (with `tops`, the executions'
/// coroutines, as its upvalue).
pub(crate) fn c_functions(
    lua: &mlua::Lua,
    tops: &mlua::Table,
) -> mlua::Result<[mlua::Function; 5]> {
    // SAFETY: the five functions follow the lua_CFunction protocol: they read their
    // arguments with the Lua API and either return a result count or raise an error.
    // `exec_raw` runs its closure in protected mode with `tops` alone on the stack;
    // `lua_pushcclosure` pops it and pushes the closure, the one value left, which
    // becomes the result.
    unsafe {
        let announce: mlua::Function = lua.exec_raw(tops, |l| {
            ffi::lua_pushcclosure(l, announce, 1);
        })?;
        Ok([
            lua.create_c_function(set_current)?,
            lua.create_c_function(trip_memory)?,
            lua.create_c_function(tripped)?,
            lua.create_c_function(message_handler)?,
            announce,
        ])
    }
}
