//! Limits on what one execution may use: memory, CPU time, instructions, wall-clock time.
//!
//! | limit | config | error | how it is enforced |
//! |---|---|---|---|
//! | memory | [`VmConfig::memory_limit`] | [`Error::MemoryLimit`] | the VM's allocator refuses an allocation that would take the running execution past the limit (see [`MemoryShare`]; counted from the VM's size after the sandbox is built) |
//! | CPU time | [`VmConfig::cpu_limit`] | [`Error::CpuLimit`] | time spent running the execution's Lua and host calls, not awaiting; a watchdog thread interrupts the worker thread when it runs out |
//! | instructions | [`VmConfig::instruction_limit`] | [`Error::InstructionLimit`] | a count hook, every 1000 instructions (deterministic, but puts Lua on its slow path) |
//! | wall-clock | [`VmConfig::timeout`] | [`Error::Timeout`] | the execution is dropped when it awaits past the deadline (which cancels the pending host future), and interrupted like the CPU limit when it runs past it |
//!
//! No hook is set while an execution is within its CPU and wall-clock budget, so a
//! CPU-bound script pays nothing for these limits. When a limit trips, a hook is armed
//! on the running coroutine (see `interrupt.rs`, the crate's only `unsafe` code besides
//! the sandbox's host-function wrapper) and raises the limit error at every instruction
//! until the execution has unwound: `pcall`, `xpcall`, `coroutine.resume` and
//! `coroutine.wrap` cannot swallow it. A memory
//! error caught by those functions is made sticky the same way. Coroutines the script
//! creates are covered: the sandbox's `coroutine.resume` tells the interrupt which
//! coroutine is running.
//!
//! Every other path that runs script code is kept under the limits too (see the Lua
//! guards, `src/lua/guards.lua`, [`Meter::release`] and the sandbox's `bounded.rs`):
//! `xpcall` message handlers, error objects' `__tostring`, `__close` handlers, code a
//! dropped execution runs while it unwinds, compilation. What cannot be interrupted: a
//! single long call into C that the sandbox does not bound (pattern matching on a huge
//! subject, `table.sort` of a huge plain table without a Lua comparator); it runs to its
//! end, and the limit error is raised at the next Lua instruction after it. See
//! `docs/limits.md`.
//!
//! Where: [`LimitKind`] (`kind.rs`) is the one list of the limits, with what differs by
//! kind; the [`Driver`] (`driver.rs`) runs an execution's call under its [`Meter`] and
//! [`MemoryShare`]; `interrupt.rs` and `watchdog.rs` stop a running script; `slice.rs`
//! holds back an execution that used up its time slice.
//!
//! [`VmConfig::memory_limit`]: crate::VmConfig::memory_limit
//! [`VmConfig::cpu_limit`]: crate::VmConfig::cpu_limit
//! [`VmConfig::instruction_limit`]: crate::VmConfig::instruction_limit
//! [`VmConfig::timeout`]: crate::VmConfig::timeout
//! [`Error::MemoryLimit`]: crate::Error::MemoryLimit
//! [`Error::CpuLimit`]: crate::Error::CpuLimit
//! [`Error::InstructionLimit`]: crate::Error::InstructionLimit
//! [`Error::Timeout`]: crate::Error::Timeout

mod driver;
pub(crate) mod error_value;
mod interrupt;
mod kind;
#[cfg(not(feature = "luajit"))]
mod protected;
mod slice;
mod watchdog;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mlua::ffi::lua_State;

use crate::config::VmConfig;
use crate::error::Error;
use interrupt::{ARMED, BUDGET, CURRENT, SLICED, STRETCH, TOP, TRIPPED, YIELD};

pub(crate) use driver::{Driver, Driving};
pub use kind::LimitKind;

pub(crate) use interrupt::{c_functions, trip_memory_soon};
#[cfg(not(feature = "luajit"))]
pub(crate) use protected::protected_calls;

/// The limits of one VM's executions, taken from its configuration.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    pub(crate) memory: Option<usize>,
    pub(crate) cpu: Option<Duration>,
    pub(crate) instructions: Option<u64>,
    pub(crate) timeout: Option<Duration>,
    /// Not a limit: async executions yield to their thread's other tasks after running
    /// this long at a stretch.
    pub(crate) slice: Option<Duration>,
    /// A time slice was configured: executions are metered even where the engine cannot
    /// slice them (LuaJIT), so that a VM meant to be sliced (a pool's) has the limits'
    /// machinery for per-execution limits and structured errors on every engine.
    pub(crate) sliced_config: bool,
}

impl Limits {
    pub(crate) fn from_config(config: &VmConfig) -> Limits {
        let slice = config
            .time_slice
            .filter(|s| !s.is_zero() && crate::engine::SLICES);
        if let Some(s) = slice {
            watchdog::note_slice(s);
        }
        if config.cpu_limit.is_some() || config.timeout.is_some() {
            crate::engine::check_interruptible();
        }
        Limits {
            memory: config.memory_limit,
            cpu: config.cpu_limit,
            instructions: config.instruction_limit,
            timeout: config.timeout,
            slice,
            sliced_config: config.time_slice.is_some_and(|s| !s.is_zero()),
        }
    }

    /// True if executions must be metered at all.
    pub(crate) fn any(&self) -> bool {
        self.memory.is_some()
            || self.cpu.is_some()
            || self.instructions.is_some()
            || self.timeout.is_some()
            || self.slice.is_some()
            || self.sliced_config
    }
}

/// How much more than [`VmConfig::memory_limit`] a VM's Lua state may hold while
/// several executions interleave on it, as a fraction of the limit (`limit / 2`): the
/// room the others keep when one of them holds its whole limit.
pub(crate) const MEMORY_HEADROOM_DIVISOR: usize = 2;

/// The most a VM's Lua state may hold above its size once built: the memory limit plus
/// the headroom of interleaved executions.
pub(crate) fn memory_cap(limit: usize) -> usize {
    limit.saturating_add(limit / MEMORY_HEADROOM_DIVISOR)
}

/// One execution's share of its VM's memory.
///
/// `memory_limit` bounds what one execution holds, not what all the executions
/// interleaved on a VM hold together:
/// - each stretch of an execution may allocate up to the limit minus what the execution
///   already holds (its net allocations over its earlier stretches), so an execution
///   that overruns is the one that fails;
/// - the VM as a whole may hold up to [`memory_cap`] (the limit plus half of it); past
///   the limit itself, one stretch may grow the VM by at most
///   `limit / SMALL_SHARE_DIVISOR`, and not at all if one stretch of the execution ever
///   grew it by half that: a normal execution allocates little between two yields, a
///   memory bomb a lot, so when executions together fill the VM the bombs fail and the
///   others go on in the headroom.
///
/// The attribution is by stretch: memory freed during an execution's stretch (its own,
/// or garbage of others that the collector frees then) counts for that execution.
#[derive(Debug, Default)]
pub(crate) struct MemoryShare {
    limit: usize,
    /// The VM's usage at which it is over the limit (absolute).
    soft: usize,
    /// The VM's cap (absolute, as `Lua::set_memory_limit` takes it).
    cap: usize,
    /// Net bytes the execution allocated in its earlier stretches.
    held: usize,
    /// The VM's usage when the current stretch started.
    start: usize,
    /// The most the VM grew in one stretch of the execution.
    max_growth: usize,
}

/// Past its limit, one stretch may grow a VM by at most `limit / SMALL_SHARE_DIVISOR`.
pub(crate) const SMALL_SHARE_DIVISOR: usize = 8;

impl MemoryShare {
    /// A share of `limit` bytes on a VM whose absolute cap is `cap`.
    pub(crate) fn new(limit: usize, cap: usize) -> MemoryShare {
        let soft = cap.saturating_sub(limit / MEMORY_HEADROOM_DIVISOR);
        MemoryShare {
            limit,
            soft,
            cap,
            held: 0,
            start: 0,
            max_growth: 0,
        }
    }

    /// Starts a stretch: the VM may grow by what the execution has left.
    pub(crate) fn open(&mut self, lua: &mlua::Lua) {
        self.start = lua.used_memory();
        let own = self
            .start
            .saturating_add(self.limit.saturating_sub(self.held));
        // Past the VM's limit, a stretch may grow it by a small step only, and not at all
        // for an execution that grew it by half a step or more in one stretch: a normal
        // execution allocates little between two yields, a bomb a lot.
        let step = self.limit / SMALL_SHARE_DIVISOR;
        let vm = if self.start >= self.soft && self.max_growth >= step / 2 {
            self.start
        } else {
            self.soft.max(self.start.saturating_add(step)).min(self.cap)
        };
        let _ = lua.set_memory_limit(own.min(vm));
    }

    /// Ends a stretch: accounts what it allocated, gives the VM its cap back.
    pub(crate) fn close(&mut self, lua: &mlua::Lua) {
        let used = lua.used_memory();
        self.held = self.held.saturating_add(used).saturating_sub(self.start);
        self.max_growth = self.max_growth.max(used.saturating_sub(self.start));
        let _ = lua.set_memory_limit(self.cap);
    }
}

/// Meters one execution across the stretches in which it runs (one per poll for an async
/// execution, one for a sync execution).
pub(crate) struct Meter {
    limits: Limits,
    started: Instant,
    cpu_used: Duration,
    /// The limit that stopped the execution, once one has.
    tripped: Option<LimitKind>,
    budget: i64,
    /// The execution's coroutine, learnt from the first stretch.
    thread: *mut lua_State,
    armed: Vec<*mut lua_State>,
    /// The execution may be yielded (it is polled by an async caller), so time slices
    /// apply.
    yieldable: bool,
}

/// Thread-local state of an enclosing execution, restored by [`Meter::leave`].
pub(crate) struct Stretch {
    current: *mut lua_State,
    tripped: u8,
    budget: i64,
    stretch: u64,
    armed: *mut lua_State,
    yield_pending: bool,
    sliced: bool,
    top: *mut lua_State,
    entered: Instant,
}

fn next_stretch() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Meter {
    pub(crate) fn new(limits: Limits) -> Meter {
        Meter {
            limits,
            started: Instant::now(),
            cpu_used: Duration::ZERO,
            tripped: None,
            budget: limits
                .instructions
                .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX - 1)),
            thread: std::ptr::null_mut(),
            armed: Vec::new(),
            yieldable: false,
        }
    }

    /// Marks the execution as polled by an async caller, which a time slice may yield.
    pub(crate) fn allow_yield(&mut self) {
        self.yieldable = true;
    }

    /// Starts a stretch of running on `state` (the main state for sync executions; for
    /// async ones, the coroutine is learnt from the execution's prologue).
    pub(crate) fn enter(&mut self, state: *mut lua_State) -> Stretch {
        let l = if self.thread.is_null() {
            state
        } else {
            self.thread
        };
        let stretch = next_stretch();
        let saved = Stretch {
            current: CURRENT.with(|c| c.swap(l, Ordering::AcqRel)),
            tripped: TRIPPED.with(|t| t.swap(interrupt::code(self.tripped), Ordering::AcqRel)),
            budget: BUDGET.with(|b| b.swap(self.budget, Ordering::AcqRel)),
            stretch: STRETCH.with(|s| s.swap(stretch, Ordering::AcqRel)),
            armed: ARMED.with(|a| a.swap(std::ptr::null_mut(), Ordering::AcqRel)),
            yield_pending: YIELD.with(|y| y.swap(false, Ordering::AcqRel)),
            sliced: SLICED.with(|s| s.swap(false, Ordering::AcqRel)),
            top: TOP.with(|t| t.swap(self.thread, Ordering::AcqRel)),
            entered: Instant::now(),
        };
        if self.tripped.is_some() {
            interrupt::arm(l, 1);
            self.armed.push(l);
            return saved;
        }
        if self.limits.instructions.is_some() {
            let step = self.budget.clamp(1, interrupt::BUDGET_STEP);
            interrupt::arm(l, i32::try_from(step).unwrap_or(1000));
            self.armed.push(l);
        }
        let now = watchdog::now_ns();
        let cpu = self.limits.cpu.map(|limit| {
            let left = limit.saturating_sub(self.cpu_used);
            (now.saturating_add(nanos(left)), LimitKind::Cpu)
        });
        let wall = self.limits.timeout.map(|limit| {
            (
                now.saturating_add(nanos(limit.saturating_sub(self.started.elapsed()))),
                LimitKind::Timeout,
            )
        });
        let deadline = match (cpu, wall) {
            (Some(c), Some(w)) => Some(if w.0 < c.0 { w } else { c }),
            (c, w) => c.or(w),
        };
        if let Some((at, kind)) = deadline {
            if at <= now {
                TRIPPED.with(|t| t.store(kind as u8, Ordering::Release));
                interrupt::arm(l, 1);
                self.armed.push(l);
                return saved;
            }
            watchdog::set_deadline(at, kind, stretch);
        }
        if let (true, Some(slice)) = (self.yieldable, self.limits.slice) {
            watchdog::set_slice(now.saturating_add(nanos(slice)), stretch);
        }
        saved
    }

    /// Ends a stretch: accounts its time and restores the enclosing state. True if the
    /// stretch ended because its time slice ran out (the execution yielded and wants to
    /// run again after the other tasks of the thread).
    pub(crate) fn leave(&mut self, saved: Stretch) -> bool {
        watchdog::clear();
        let sliced = SLICED.with(|s| s.swap(saved.sliced, Ordering::AcqRel));
        self.cpu_used += saved.entered.elapsed();
        self.tripped =
            LimitKind::from_code(TRIPPED.with(|t| t.swap(saved.tripped, Ordering::AcqRel)));
        self.budget = BUDGET.with(|b| b.swap(saved.budget, Ordering::AcqRel));
        let current = CURRENT.with(|c| c.swap(saved.current, Ordering::AcqRel));
        // A slice that ran out while the stretch could not yield does not carry over:
        // the next stretch gets a fresh one.
        YIELD.with(|y| y.store(saved.yield_pending, Ordering::Release));
        let top = TOP.with(|t| t.swap(saved.top, Ordering::AcqRel));
        if self.thread.is_null() {
            // The coroutine the prologue announced; the running one if there was none.
            self.thread = if top.is_null() { current } else { top };
        }
        STRETCH.with(|s| s.store(saved.stretch, Ordering::Release));
        let armed = ARMED.with(|a| a.swap(saved.armed, Ordering::AcqRel));
        if !armed.is_null() {
            self.armed.push(armed);
        }
        sliced
    }

    /// Ends the execution: removes the hooks it armed and, if a limit stopped it,
    /// replaces its result with that limit's error. Returns the result and the limit
    /// that stopped the execution, if one did.
    ///
    /// A memory error is the memory limit whatever way it reached the host: the
    /// allocator's own error, or, under a memory limit, a plain runtime error (raised
    /// again by a script's function, or turned into "error in error handling" when the
    /// message handler itself found no memory).
    pub(crate) fn finish<T>(
        &mut self,
        result: Result<T, Error>,
    ) -> (Result<T, Error>, Option<LimitKind>) {
        for l in self.armed.drain(..) {
            interrupt::disarm(l);
        }
        let stopped = self.tripped.or_else(|| match &result {
            Err(Error::MemoryLimit { .. }) => Some(LimitKind::Memory),
            Err(Error::Runtime { message, .. })
                if self.limits.memory.is_some()
                    && (message.ends_with("not enough memory")
                        || message.ends_with("error in error handling")) =>
            {
                Some(LimitKind::Memory)
            }
            _ => None,
        });
        match stopped {
            Some(kind) => (Err(kind.error(&self.limits)), Some(kind)),
            None => (result, None),
        }
    }

    /// Runs `f` in a stretch on the main state `main` that is not the execution's own
    /// code (compiling the script, releasing its coroutine): it is metered, but the
    /// execution's coroutine is not learnt from it.
    pub(crate) fn aside<T>(&mut self, main: *mut lua_State, f: impl FnOnce() -> T) -> T {
        let thread = self.thread;
        let stretch = self.enter(main);
        let result = f();
        self.leave(stretch);
        self.thread = thread;
        result
    }

    /// True once the execution has run a stretch (its coroutine was resumed).
    pub(crate) fn has_run(&self) -> bool {
        !self.thread.is_null()
    }

    /// True once a limit has stopped the execution.
    pub(crate) fn tripped(&self) -> bool {
        self.tripped.is_some()
    }

    /// Runs `release` (which releases the execution's coroutine) in a stretch in which
    /// the execution has already tripped a limit, so that any script code it runs stops
    /// after a grace of a few instructions (`RELEASE_GRACE`, for mlua's own code); then
    /// removes every hook the execution armed. The trip
    /// the execution had before is kept for [`finish`](Meter::finish).
    pub(crate) fn release(&mut self, main: *mut lua_State, release: impl FnOnce()) {
        let before = self.tripped;
        if before.is_none() {
            self.tripped = Some(LimitKind::Timeout);
        }
        let thread = if self.thread.is_null() {
            main
        } else {
            self.thread
        };
        self.aside(main, || {
            // A few instructions of grace: mlua's own Lua code must get a released
            // coroutine back to its pending host future (which it then drops) before
            // the hook stops everything.
            interrupt::arm(thread, interrupt::RELEASE_GRACE);
            release();
        });
        self.tripped = before;
        for l in self.armed.drain(..) {
            interrupt::disarm(l);
        }
    }

    /// Time left before the wall-clock timeout, if there is one.
    pub(crate) fn wall_left(&self) -> Option<Duration> {
        self.limits
            .timeout
            .map(|t| t.saturating_sub(self.started.elapsed()))
    }

    /// Ends an execution dropped because it awaited past its timeout: removes the hooks
    /// it armed and returns the timeout error. Its script was not stopped at an
    /// arbitrary instruction but where it awaited, so this is not an interruption (see
    /// [`Driver`]).
    pub(crate) fn timed_out(&mut self) -> Error {
        for l in self.armed.drain(..) {
            interrupt::disarm(l);
        }
        LimitKind::Timeout.error(&self.limits)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
