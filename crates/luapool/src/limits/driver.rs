//! The metering driver: runs one execution's call under its limits and says which limit,
//! if any, stopped it.
//!
//! An execution runs in *stretches*: a sync execution in one, an async one in one per
//! poll of its coroutine. Around each stretch the driver
//! 1. starts the [`Meter`]'s stretch (CPU and wall-clock deadlines for the watchdog,
//!    instruction budget, time slice) and opens the execution's [`MemoryShare`];
//! 2. runs the stretch (calls the function, or polls the coroutine once);
//! 3. closes the memory share and ends the meter's stretch, which accounts the CPU time
//!    and tells whether the time slice ran out.
//!
//! An async execution also has, between its stretches:
//! - its wall-clock timeout while it awaits: past it, the coroutine is dropped (which
//!   cancels the host future it awaits) rather than resumed only to be interrupted;
//! - its time slice: an execution that yielded because its slice ran out is held back
//!   until the runtime has been around its loop once ([`AfterDriver`]), so that the
//!   thread's other tasks run;
//! - its release: however it ends, its coroutine is dropped in a stretch in which a
//!   limit has already tripped (see [`Call`]).
//!
//! When the call is over, its results are converted (by the caller's `convert`, outside
//! any stretch) and [`Meter::finish`] replaces them with the limit error if a limit
//! stopped the execution.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use mlua::ffi::lua_State;
use mlua::Lua;

use super::slice::AfterDriver;
use super::{LimitKind, MemoryShare, Meter};
use crate::context::{Carried, Context};
use crate::error::Result;

/// Runs one execution under its limits: its [`Meter`] and, under a memory limit, its
/// share of the VM's memory; with what it carries for its host functions (its
/// [`Context`], its id) installed while it runs.
pub(crate) struct Driver {
    meter: Meter,
    memory: Option<MemoryShare>,
    carried: Option<Carried>,
}

/// What a [`Driver`] returns: the execution's converted result (the limit error if a
/// limit stopped it), and that limit.
pub(crate) type Driven<R> = (Result<R>, Option<LimitKind>);

impl Driver {
    /// A driver for an execution metered by `meter` (which may already have metered its
    /// compilation), with `memory` its share of the VM's memory and `carried` what its
    /// host functions read.
    pub(crate) fn new(
        meter: Meter,
        memory: Option<MemoryShare>,
        carried: Option<Carried>,
    ) -> Driver {
        Driver {
            meter,
            memory,
            carried,
        }
    }

    /// Runs a sync execution: `call` in one stretch on `lua`, then `convert` its results.
    pub(crate) fn run<T, R>(
        mut self,
        lua: &Lua,
        call: impl FnOnce() -> mlua::Result<T>,
        convert: impl FnOnce(mlua::Result<T>) -> Result<R>,
    ) -> Driven<R> {
        let (results, _sliced) = Context::scope(self.carried.as_ref(), true, || {
            stretch(&mut self.meter, &mut self.memory, lua, lua.state(), call)
        });
        self.meter.finish(convert(results))
    }

    /// Starts an async execution: `call` (the execution's coroutine) is polled in
    /// stretches on `lua` by the returned [`Driving`] until it is done or its wall-clock
    /// timeout passes. A plain struct rather than an `async fn`, so that an execution's
    /// future holds each piece of its state once (an `async fn` keeps its arguments
    /// beside what it moves them into, and every such copy is copied again whenever the
    /// future moves).
    pub(crate) fn drive<F>(self, lua: &Lua, call: F) -> Driving<F> {
        let Driver {
            mut meter,
            memory,
            carried,
        } = self;
        meter.allow_yield();
        let deadline = meter
            .wall_left()
            .map(|left| tokio::time::Instant::now() + left);
        Driving {
            call: Call {
                call: Some(call),
                meter,
                main: lua.state(),
            },
            memory,
            carried,
            held: None,
            deadline,
            sleep: None,
        }
    }
}

/// An async execution under its limits (see [`Driver::drive`]): its owner polls it
/// with [`poll_call`](Driving::poll_call) until that is ready, then ends it with
/// [`finish`](Driving::finish). Dropping it releases the coroutine (see [`Call`]).
pub(crate) struct Driving<F> {
    call: Call<F>,
    memory: Option<MemoryShare>,
    carried: Option<Carried>,
    /// Set while the execution waits out the rest of its thread's tasks after its time
    /// slice ran out.
    held: Option<AfterDriver>,
    /// When the execution is given up if it is still awaiting (its wall-clock timeout).
    deadline: Option<tokio::time::Instant>,
    /// The timer for `deadline`, registered only once the execution awaits: most
    /// executions finish in their first poll, and a tokio timer per execution would cost
    /// them for nothing (while running, the watchdog enforces the deadline).
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<F, T> Driving<F>
where
    F: Future<Output = mlua::Result<T>> + Unpin,
{
    /// Polls the execution once, in one stretch on `lua`. Ready with its results when it
    /// is over, or with `None` when its wall-clock timeout passed while it awaited.
    pub(crate) fn poll_call(
        &mut self,
        lua: &Lua,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<mlua::Result<T>>> {
        if let Poll::Ready(out) = self.poll_stretch(lua, cx) {
            return Poll::Ready(out);
        }
        let Some(at) = self.deadline else {
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Ends the execution once [`poll_call`](Driving::poll_call) is ready with
    /// `results`: releases its coroutine, then `convert`s the results (the limit error
    /// instead if a limit stopped the execution).
    pub(crate) fn finish<R>(
        &mut self,
        results: Option<mlua::Result<T>>,
        convert: impl FnOnce(mlua::Result<T>) -> Result<R>,
    ) -> Driven<R> {
        self.call.release(matches!(results, Some(Ok(_))));
        match results {
            Some(results) => self.call.meter.finish(convert(results)),
            // Timed out while awaiting: stopped where it awaited, not interrupted.
            None => (Err(self.call.meter.timed_out()), None),
        }
    }

    /// Polls the call once, in one stretch. Ready with `None` once the call is released
    /// or its wall-clock time is up.
    fn poll_stretch(
        &mut self,
        lua: &Lua,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<mlua::Result<T>>> {
        let Call { call, meter, main } = &mut self.call;
        let Some(call) = call.as_mut() else {
            return Poll::Ready(None);
        };
        if meter.wall_left() == Some(Duration::ZERO) {
            // Out of time while awaiting: drop the call (which cancels the pending host
            // future) rather than resume it only to interrupt it.
            return Poll::Ready(None);
        }
        let mut released = false;
        if let Some(wait) = self.held.as_mut() {
            if Pin::new(wait).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.held = None;
            released = true;
        }
        let memory = &mut self.memory;
        let (poll, sliced) = Context::scope(self.carried.as_ref(), false, || {
            stretch(meter, memory, lua, *main, || Pin::new(call).poll(cx))
        });
        if poll.is_pending() {
            if sliced {
                // Hold the execution back until the runtime has been around its loop.
                let mut wait = AfterDriver::new();
                if Pin::new(&mut wait).poll(cx).is_pending() {
                    self.held = Some(wait);
                }
            } else if released {
                // While held, a wake-up meant for a host future the execution awaits
                // may have come and gone; poll once more so that the execution looks at
                // that future again instead of waiting for a wake-up that was already
                // delivered.
                cx.waker().wake_by_ref();
            }
        }
        poll.map(Some)
    }
}

/// Runs `f` in one stretch of the execution metered by `meter` on `lua` (whose main
/// state is `main`). Returns what `f` returned, and whether the time slice ran out
/// (the execution yielded and wants to run again after the thread's other tasks).
fn stretch<T>(
    meter: &mut Meter,
    memory: &mut Option<MemoryShare>,
    lua: &Lua,
    main: *mut lua_State,
    f: impl FnOnce() -> T,
) -> (T, bool) {
    let stretch = meter.enter(main);
    if let Some(m) = memory.as_mut() {
        m.open(lua);
    }
    let out = f();
    if let Some(m) = memory.as_mut() {
        m.close(lua);
    }
    let sliced = meter.leave(stretch);
    (out, sliced)
}

/// An async execution's call (its coroutine) and its meter.
///
/// However the execution ends (it returns, fails, times out, or its caller drops it),
/// the call is released inside a stretch in which the execution's limit has already
/// tripped: releasing it may run Lua code (mlua resumes a coroutine dropped while it
/// awaited so that it unwinds, and Lua then closes its pending to-be-closed variables),
/// and that code must stop at its first instruction instead of running unmetered.
struct Call<F> {
    call: Option<F>,
    meter: Meter,
    /// The VM's main state, on which the stretches run.
    main: *mut lua_State,
}

impl<F> Call<F> {
    /// Releases the call (see the type's docs). A call that returned cleanly has
    /// nothing left to run, nor has one that never ran (an [`ExecFuture`] dropped
    /// before its first poll: its coroutine was never resumed): either is dropped as is.
    ///
    /// [`ExecFuture`]: crate::ExecFuture
    fn release(&mut self, clean: bool) {
        let call = self.call.take();
        if clean || !self.meter.has_run() {
            drop(call);
        } else {
            self.meter.release(self.main, move || drop(call));
        }
    }
}

impl<F> Drop for Call<F> {
    fn drop(&mut self) {
        // The caller dropped the execution while it was suspended, or before it ran.
        if self.call.is_some() {
            self.release(false);
        }
    }
}
