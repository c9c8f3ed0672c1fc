//! Host functions: Rust functions that Lua scripts call.
//!
//! Register them on a [`Vm`](crate::Vm) one by one with [`Vm::register`](crate::Vm::register)
//! and [`Vm::register_async`](crate::Vm::register_async), or group them into a [`Module`]
//! that scripts reach as a global table and with `require`.
//!
//! Arguments and results are typed: anything mlua converts (numbers, strings, `bool`,
//! `Option`, tuples for several values, [`Value`](crate::Value) for structured data).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt;

use mlua::{FromLuaMulti, Function, IntoLuaMulti, Lua, MultiValue};

use crate::sandbox::{host_function, host_result, SandboxData};

/// The error a host function returns; the calling script sees it as a Lua error with
/// this message.
///
/// Any `std::error::Error` converts with `?`; [`HostError::new`] makes one from a message.
///
/// ```
/// use luapool::{HostError, HostResult};
///
/// fn parse(s: &str) -> HostResult<i64> {
///     let n: i64 = s.parse()?;
///     if n < 0 {
///         return Err(HostError::new("negative numbers are not allowed"));
///     }
///     Ok(n)
/// }
/// assert!(parse("-1").is_err());
/// ```
#[derive(Debug)]
pub struct HostError(Box<dyn std::error::Error + Send + Sync + 'static>);

/// The result type of host functions.
pub type HostResult<T> = Result<T, HostError>;

impl HostError {
    /// An error with the given message.
    pub fn new(message: impl std::fmt::Display) -> Self {
        HostError(message.to_string().into())
    }

    pub(crate) fn into_lua(self) -> mlua::Error {
        match self.0.downcast::<mlua::Error>() {
            Ok(e) => *e,
            Err(e) => mlua::Error::RuntimeError(e.to_string()),
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E> From<E> for HostError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(e: E) -> Self {
        HostError(Box::new(e))
    }
}

/// Creates the Lua function for a host function on a given Lua state (before
/// [`SandboxData::wrap_host`](crate::sandbox::SandboxData::wrap_host)). Kept so that a VM
/// can be rebuilt (e.g. `Isolation::FreshVm`) with the same host functions.
pub(crate) type Maker = Rc<dyn Fn(&Lua) -> mlua::Result<Function>>;

pub(crate) fn sync_maker<A, R, F>(f: F) -> Maker
where
    A: FromLuaMulti + 'static,
    R: IntoLuaMulti + 'static,
    F: Fn(A) -> HostResult<R> + 'static,
{
    Rc::new(sync_make(Arc::new(f)))
}

/// The maker of a sync host function: creates its Lua function on a state.
fn sync_make<A, R, F>(f: Arc<F>) -> impl Fn(&Lua) -> mlua::Result<Function>
where
    A: FromLuaMulti + 'static,
    R: IntoLuaMulti + 'static,
    F: Fn(A) -> HostResult<R> + 'static,
{
    move |lua: &Lua| {
        let f = Arc::clone(&f);
        host_function(lua, move |lua, args: A| {
            match std::panic::catch_unwind(AssertUnwindSafe(|| f(args))) {
                Ok(result) => result.map_err(HostError::into_lua),
                Err(panic) => Err(panicked(lua, panic)),
            }
        })
    }
}

pub(crate) fn async_maker<A, R, F, Fut>(f: F) -> Maker
where
    A: FromLuaMulti + 'static,
    R: IntoLuaMulti + 'static,
    F: Fn(A) -> Fut + 'static,
    Fut: Future<Output = HostResult<R>> + 'static,
{
    Rc::new(async_make(Arc::new(f)))
}

/// The maker of an async host function: creates its Lua function on a state.
fn async_make<A, R, F, Fut>(f: Arc<F>) -> impl Fn(&Lua) -> mlua::Result<Function>
where
    A: FromLuaMulti + 'static,
    R: IntoLuaMulti + 'static,
    F: Fn(A) -> Fut + 'static,
    Fut: Future<Output = HostResult<R>> + 'static,
{
    move |lua: &Lua| {
        let f = Arc::clone(&f);
        // mlua's async wrapper must get the engine's own `yield` (see
        // `with_real_coroutine`).
        crate::sandbox::with_real_coroutine(lua, || {
            lua.create_async_function(move |lua, args: MultiValue| {
                let fut = crate::sandbox::refuse_while_closing()
                    .and_then(|()| A::from_lua_multi(args, &lua))
                    .map(|args| f(args));
                async move {
                    let result = match fut {
                        Ok(fut) => {
                            let mut fut = std::pin::pin!(AssertUnwindSafe(fut).catch_unwind());
                            // Waiting needs a coroutine to yield: on the main thread (a
                            // sync execution) say so rather than let Lua fail the yield.
                            let outcome = std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
                                Poll::Pending if crate::context::Context::in_sync_execution() => {
                                    Poll::Ready(None)
                                }
                                other => other.map(Some),
                            })
                            .await;
                            match outcome {
                                Some(Ok(result)) => result.map_err(HostError::into_lua),
                                Some(Err(panic)) => Err(panicked(&lua, panic)),
                                None => Err(mlua::Error::runtime(SYNC_CALLER)),
                            }
                        }
                        Err(e) => Err(e),
                    };
                    host_result(&lua, result)
                }
            })
        })
    }
}

/// The error of an async host function that must wait, called by a sync execution.
const SYNC_CALLER: &str = "an async host function cannot wait inside a sync execution; run \
     the script with exec_async, eval_async, call_async or call_in_async (or as a pool job)";

/// Turns a caught panic into an error and marks the VM poisoned.
fn panicked(lua: &Lua, panic: Box<dyn std::any::Any + Send>) -> mlua::Error {
    if let Ok(data) = SandboxData::get(lua) {
        data.host_panicked.set(true);
    }
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    mlua::Error::runtime(format!("host function panicked: {message}"))
}

/// A named table of host functions, registered with
/// [`Vm::register_module`](crate::Vm::register_module).
///
/// Scripts see it as a global table of that name and get the same table from
/// `require(name)`. Like the standard library, the table is read-only to scripts.
///
/// A module is `Send + Sync` and cheap to clone: build it once and register it on every
/// VM, or hand it to a pool with [`WorkerPoolBuilder::module`](crate::WorkerPoolBuilder::module)
/// or [`CheckoutPoolBuilder::module`](crate::CheckoutPoolBuilder::module). Its functions
/// read their caller's [`Context`](crate::Context) to know which execution called them.
///
/// ```
/// use luapool::{Module, Script, Vm, VmConfig};
///
/// let vm = Vm::new(VmConfig::default())?;
/// let geo = Module::new("geo")
///     .function("dist", |(a, b): (f64, f64)| Ok((a - b).abs()));
/// vm.register_module(geo)?;
/// let d: f64 = vm.eval(&Script::new("t", "return require('geo').dist(1, 4)"))?;
/// assert_eq!(d, 3.0);
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Clone)]
pub struct Module {
    pub(crate) name: String,
    pub(crate) functions: Vec<(String, SharedMaker)>,
}

/// A [`Maker`] that can be shared by the VMs of every thread.
pub(crate) type SharedMaker = Arc<dyn Fn(&Lua) -> mlua::Result<Function> + Send + Sync>;

impl Module {
    /// An empty module named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Module {
            name: name.into(),
            functions: Vec::new(),
        }
    }

    /// Adds a synchronous function.
    pub fn function<A, R, F>(mut self, name: impl Into<String>, f: F) -> Self
    where
        A: FromLuaMulti + 'static,
        R: IntoLuaMulti + 'static,
        F: Fn(A) -> HostResult<R> + Send + Sync + 'static,
    {
        self.functions
            .push((name.into(), Arc::new(sync_make(Arc::new(f)))));
        self
    }

    /// Adds an async function: the calling coroutine yields while the future runs. The
    /// function is shared by every VM the module is registered on; its futures run on
    /// the VM's thread and need not be `Send`.
    pub fn async_function<A, R, F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        A: FromLuaMulti + 'static,
        R: IntoLuaMulti + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HostResult<R>> + 'static,
    {
        self.functions
            .push((name.into(), Arc::new(async_make(Arc::new(f)))));
        self
    }

    /// The makers of its functions, for one VM.
    pub(crate) fn makers(&self) -> Vec<(String, Maker)> {
        self.functions
            .iter()
            .map(|(name, make)| {
                let make = Arc::clone(make);
                let maker: Maker = Rc::new(move |lua: &Lua| make(lua));
                (name.clone(), maker)
            })
            .collect()
    }
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field(
                "functions",
                &self.functions.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}
