//! Timers: `timer.after(delay, fn, ...)` and `timer.every(interval, fn, ...)` in
//! handlers, and the app's `init_worker()` hook; a worker's background work, like
//! OpenResty's `ngx.timer.at`/`every` and `init_worker_by_lua`.
//!
//! A timer's function runs on the worker's VM as an execution of its own: with the VM's
//! limits (`request_timeout`, `cpu_limit`, memory), its own id (`log` lines), and the
//! globals of the execution that created it (its closure). A worker holds at most
//! `max_timers` of them; they are cancelled when the worker's VM is replaced (a reload,
//! or a rebuild after a handler poisoned it), when their VM is gone, and at shutdown.
//! `init_worker()`, if the app defines it, runs whenever a worker gets a new VM: that is
//! where an app starts its `timer.every` work.
//!
//! The Lua functions are a [`Module`] shared by every worker; each finds its worker
//! through a thread-local set when the worker starts (outside a worker, such as the
//! app check at startup, `timer.after` returns `nil, "timers run only in a server worker"`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use luapool::mlua::{Function, MultiValue, Value};
use luapool::{ExecOptions, HostError, HostResult, Module};
use tokio::task::AbortHandle;
use tracing::error;

use super::Worker;
use crate::metrics::Metrics;

/// The shortest interval of `timer.every` (a shorter one would be a busy loop).
const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// The longest delay or interval (about a year), so that a script's huge number does
/// not overflow the clock.
const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 3600);

thread_local! {
    /// The worker of this thread, for the `timer` functions.
    static WORKER: RefCell<Weak<Worker>> = const { RefCell::new(Weak::new()) };
}

/// A worker's pending timers.
pub(super) struct Timers {
    /// Token → the task of the timer, to cancel it.
    pending: RefCell<HashMap<String, AbortHandle>>,
    max: usize,
    /// Tokens are a counter hashed with a random key: unique, and not guessable by
    /// another request (which could otherwise cancel this one's timers).
    next: Cell<u64>,
    keys: std::collections::hash_map::RandomState,
}

impl Timers {
    /// No timers yet; at most `max` at once.
    pub(super) fn new(max: usize) -> Timers {
        Timers {
            pending: RefCell::new(HashMap::new()),
            max,
            next: Cell::new(0),
            keys: std::collections::hash_map::RandomState::new(),
        }
    }

    /// A new token no pending timer has.
    fn token(&self) -> String {
        loop {
            let n = self.next.get();
            self.next.set(n.wrapping_add(1));
            let token = format!("timer-{:016x}", self.keys.hash_one(n));
            if !self.pending.borrow().contains_key(&token) {
                return token;
            }
        }
    }
}

/// The `timer` module of handlers.
pub(crate) fn module() -> Module {
    Module::new("timer")
        .function("after", |args: MultiValue| start(args, "after", false))
        .function("every", |args: MultiValue| start(args, "every", true))
        .function("cancel", |token: Value| {
            let Value::String(token) = token else {
                return Ok(false);
            };
            let token = token.to_string_lossy();
            Ok(with_worker(|w| w.cancel_timer(&token)).unwrap_or(false))
        })
        .function("pending", |()| {
            Ok(with_worker(|w| w.timers.pending.borrow().len()).unwrap_or(0))
        })
}

/// `timer.after` / `timer.every`: the token, or `nil, why`.
fn start(
    args: MultiValue,
    name: &str,
    repeat: bool,
) -> HostResult<(Option<String>, Option<&'static str>)> {
    let mut args = args.into_iter();
    let delay = delay(args.next(), name, repeat)?;
    let func = match args.next() {
        Some(Value::Function(f)) => f,
        other => {
            return Err(HostError::new(format!(
                "bad argument #2 to 'timer.{name}' (function expected, got {})",
                other.as_ref().map_or("no value", Value::type_name)
            )))
        }
    };
    let rest: MultiValue = args.collect();
    let started = with_worker(|w| w.start_timer(delay, repeat, func, rest));
    match started {
        None => Ok((None, Some("timers run only in a server worker"))),
        Some(Ok(token)) => Ok((Some(token), None)),
        Some(Err(why)) => Ok((None, Some(why))),
    }
}

/// The delay (or interval) argument, in seconds.
fn delay(value: Option<Value>, name: &str, repeat: bool) -> HostResult<Duration> {
    let secs = match value {
        Some(Value::Integer(i)) => i as f64,
        Some(Value::Number(n)) => n,
        other => {
            return Err(HostError::new(format!(
                "bad argument #1 to 'timer.{name}' (number of seconds expected, got {})",
                other.as_ref().map_or("no value", Value::type_name)
            )))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(HostError::new(format!(
            "bad argument #1 to 'timer.{name}' (seconds must be a finite number >= 0, got {secs})"
        )));
    }
    let delay = Duration::from_secs_f64(secs.min(MAX_DELAY.as_secs_f64()));
    if repeat && delay < MIN_INTERVAL {
        return Err(HostError::new(format!(
            "bad argument #1 to 'timer.{name}' (the interval must be at least 0.001 s, got {secs})"
        )));
    }
    Ok(delay)
}

/// Runs `f` with this thread's worker, if it has one.
fn with_worker<T>(f: impl FnOnce(&Rc<Worker>) -> T) -> Option<T> {
    let worker = WORKER.with(|w| w.borrow().upgrade())?;
    Some(f(&worker))
}

impl Worker {
    /// Makes this worker the one the `timer` functions of its thread use.
    pub(super) fn install_timers(self: &Rc<Self>) {
        WORKER.with(|w| *w.borrow_mut() = Rc::downgrade(self));
    }

    /// This worker as an `Rc`, from the thread-local.
    pub(super) fn me(&self) -> Option<Rc<Worker>> {
        WORKER
            .with(|w| w.borrow().upgrade())
            .filter(|w| std::ptr::eq(Rc::as_ptr(w), self))
    }

    /// Starts a timer: `func(args...)` after `delay`, then every `delay` if `repeat`.
    fn start_timer(
        self: &Rc<Self>,
        delay: Duration,
        repeat: bool,
        func: Function,
        args: MultiValue,
    ) -> Result<String, &'static str> {
        if *self.shutdown.borrow() {
            return Err("the worker is shutting down");
        }
        if self.timers.pending.borrow().len() >= self.timers.max {
            return Err("too many pending timers");
        }
        let token = self.timers.token();
        let task = Rc::clone(self).run_timer(token.clone(), delay, repeat, func, args);
        let handle = tokio::task::spawn_local(task).abort_handle();
        self.timers
            .pending
            .borrow_mut()
            .insert(token.clone(), handle);
        self.metrics.timers.inc();
        Ok(token)
    }

    /// Cancels the timer `token`; true if it was pending.
    fn cancel_timer(&self, token: &str) -> bool {
        let Some(handle) = self.timers.pending.borrow_mut().remove(token) else {
            return false;
        };
        handle.abort();
        self.metrics.timers.dec();
        true
    }

    /// Cancels every pending timer (the VM they belong to is being replaced, or the
    /// worker is stopping).
    pub(super) fn cancel_timers(&self) {
        let pending = std::mem::take(&mut *self.timers.pending.borrow_mut());
        for handle in pending.into_values() {
            handle.abort();
            self.metrics.timers.dec();
        }
    }

    /// A timer's task: waits, runs the function, and for `every` waits again.
    async fn run_timer(
        self: Rc<Self>,
        token: String,
        delay: Duration,
        repeat: bool,
        func: Function,
        args: MultiValue,
    ) {
        let options = ExecOptions::new().with_id(Arc::from(format!("{}{token}", self.id_prefix)));
        loop {
            tokio::time::sleep(delay).await;
            let (vm, _app) = self.live.current();
            let result = vm
                .with_options(&options)
                .call_function_async::<()>(&func, args.clone())
                .await;
            match result {
                Ok(()) => {}
                // Made on a VM that has been replaced since: it ends with its VM.
                Err(luapool::Error::ForeignFunction) => break,
                Err(e) => self.log_background_error("timer", &token, &e),
            }
            self.heal(&vm);
            if !repeat {
                break;
            }
        }
        if self.timers.pending.borrow_mut().remove(&token).is_some() {
            self.metrics.timers.dec();
        }
    }

    /// Runs the app's `init_worker()`, if it defines one, on the worker's current VM
    /// (in a task of its own). Called whenever the worker gets a new VM.
    pub(super) fn init_worker(self: &Rc<Self>) {
        let worker = Rc::clone(self);
        tokio::task::spawn_local(async move {
            let (vm, app) = worker.live.current();
            let id = format!("{}init", worker.id_prefix);
            let options = ExecOptions::new().with_id(Arc::from(id.as_str()));
            let result = vm
                .with_options(&options)
                .call_in_async::<()>(&app.script, "init_worker", ())
                .await;
            match result {
                Ok(()) | Err(luapool::Error::FunctionNotFound { .. }) => {}
                Err(e) => worker.log_background_error("init_worker", &id, &e),
            }
            worker.heal_then(&vm, false);
        });
    }

    /// Logs (under the error rate limit) and counts an error of background work.
    pub(super) fn log_background_error(&self, what: &str, id: &str, e: &luapool::Error) {
        if let Some(kind) = e.limit_kind() {
            Metrics::count(&self.shared.metrics.limits, kind.as_str());
        }
        let detail = super::reply::Detail(e);
        if self.may_log(format_args!("{what}: {detail}")) {
            error!(target: "luapool::handler", id, worker = self.index, "{what} failed: {detail}");
        }
    }
}
