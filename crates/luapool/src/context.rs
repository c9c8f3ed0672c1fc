//! [`Context`]: per-execution data that host functions read.
//!
//! A host function is registered once per VM and called by every execution that runs
//! there, interleaved with others as coroutines. What it needs to know about the caller
//! (a tenant id, a request id, a per-job HTTP client or credentials) travels with the
//! execution: set it with [`ExecOptions::with_context`](crate::ExecOptions::with_context)
//! (or [`Job::with_context`](crate::Job::with_context) on a pool), and read it inside the
//! host function with [`Context::get`].
//!
//! The context is the running execution's only: it is installed on the thread for each
//! stretch the execution runs (each poll of an async one) and the one it replaced is put
//! back after, so two executions interleaved on one VM, or an execution started from
//! inside another's host function, never see each other's.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

/// Data attached to one execution, read by host functions with [`Context::get`].
///
/// Cloning is cheap (an [`Arc`]); the data is shared, not copied. Any `Send + Sync`
/// type works; a host function asks for the type it expects and gets `None` if the
/// execution carries none, or another type.
///
/// ```
/// use luapool::{Context, ExecOptions, Script, Vm, VmConfig};
///
/// struct Tenant { name: String }
///
/// let vm = Vm::new(VmConfig::default())?;
/// vm.register("whoami", |()| {
///     Ok(Context::get::<Tenant>().map_or("nobody".to_string(), |t| t.name.clone()))
/// })?;
/// let script = Script::new("who.lua", "return whoami()");
/// let acme = ExecOptions::new().with_context(Tenant { name: "acme".into() });
/// assert_eq!(vm.with_options(&acme).eval::<String>(&script, ())?, "acme");
/// assert_eq!(vm.eval::<String>(&script)?, "nobody");
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Clone)]
pub struct Context(Arc<dyn Any + Send + Sync>);

/// What an execution carries for its host functions: its [`Context`] and its id.
#[derive(Clone, Default)]
pub(crate) struct Carried {
    pub(crate) context: Option<Context>,
    pub(crate) id: Option<Arc<str>>,
}

thread_local! {
    /// What the execution running on this thread carries, if anything.
    static CARRIED: RefCell<Option<Carried>> = const { RefCell::new(None) };
    /// True while `CARRIED` is `Some`: the common case (nothing carried, nothing to
    /// hide) is one read of a `Cell`.
    static HAS_CARRIED: Cell<bool> = const { Cell::new(false) };
    /// True while a sync execution runs on this thread (on the VM's main thread, where
    /// nothing can yield).
    static SYNC: Cell<bool> = const { Cell::new(false) };
}

impl Context {
    /// A context holding `data`.
    pub fn new<T: Any + Send + Sync>(data: T) -> Context {
        Context(Arc::new(data))
    }

    /// A context sharing `data`, already in an [`Arc`] (e.g. one object for many jobs):
    /// [`Context::get::<T>`](Context::get) returns that same `Arc`.
    pub fn from_arc<T: Any + Send + Sync>(data: Arc<T>) -> Context {
        Context(data)
    }

    /// The running execution's context data of type `T`, if it has some. Call it from a
    /// host function (for an async one, before its future starts, and move the `Arc`
    /// into the future); elsewhere it is `None`.
    pub fn get<T: Any + Send + Sync>() -> Option<Arc<T>> {
        CARRIED.with(|c| {
            let c = c.borrow();
            let data = Arc::clone(&c.as_ref()?.context.as_ref()?.0);
            data.downcast::<T>().ok()
        })
    }

    /// The running execution's id (see [`ExecOptions::with_id`](crate::ExecOptions::with_id)),
    /// if it has one: `log` lines carry it as their `id` field and the HTTP client sends
    /// it as `x-request-id`.
    pub fn id() -> Option<Arc<str>> {
        CARRIED.with(|c| c.borrow().as_ref()?.id.clone())
    }

    /// Runs `f`, a stretch of a sync execution (`sync`) or of an async one, with
    /// `carried` installed for its host functions; then puts back what it replaced.
    pub(crate) fn scope<R>(carried: Option<&Carried>, sync: bool, f: impl FnOnce() -> R) -> R {
        let _sync = RestoreSync(SYNC.with(|s| s.replace(sync)));
        // Nothing to install and nothing to hide: the common case.
        if carried.is_none() && !HAS_CARRIED.with(Cell::get) {
            return f();
        }
        let saved = CARRIED.with(|c| c.replace(carried.cloned()));
        HAS_CARRIED.with(|h| h.set(carried.is_some()));
        let _restore = RestoreCarried(Some(saved));
        f()
    }

    /// True while a sync execution runs on this thread (and no async one inside it).
    pub(crate) fn in_sync_execution() -> bool {
        SYNC.with(Cell::get)
    }
}

/// Puts the saved sync flag back, also when the scope unwinds.
struct RestoreSync(bool);

impl Drop for RestoreSync {
    fn drop(&mut self) {
        SYNC.with(|s| s.set(self.0));
    }
}

/// Puts what the enclosing execution carried back, also when the scope unwinds.
struct RestoreCarried(Option<Option<Carried>>);

impl Drop for RestoreCarried {
    fn drop(&mut self) {
        if let Some(saved) = self.0.take() {
            HAS_CARRIED.with(|h| h.set(saved.is_some()));
            CARRIED.with(|c| *c.borrow_mut() = saved);
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Context(..)")
    }
}

/// An async execution's future, polled with what it carries installed (for executions
/// that run without a metering driver, which installs it itself).
pub(crate) struct WithContext<F> {
    pub(crate) future: F,
    pub(crate) carried: Option<Carried>,
}

impl<F: Future + Unpin> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        Context::scope(this.carried.as_ref(), false, || {
            Pin::new(&mut this.future).poll(cx)
        })
    }
}
