//! [`Vm`]: one sandboxed Lua VM, owned by one thread.

mod cache;
mod execution;
mod state;

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};

use mlua::{
    function::AsyncCallFuture, FromLuaMulti, Function, IntoLua, IntoLuaMulti, MultiValue, Table,
    Variadic,
};

use crate::config::{Isolation, VmConfig};
use crate::context::{Carried, Context, WithContext};
use crate::error::{classify, Error, Result};
use crate::exec_options::ExecOptions;
use crate::host::{async_maker, sync_maker, HostResult, Maker, Module};
use crate::limits::{Driver, Driving, LimitKind, Limits, Meter};
use crate::sandbox::{fail_marker, seal, Output, Sandbox};
use crate::script::Script;
use crate::shared_dict::{self, SharedDicts};
use crate::value::Value;
pub use execution::Execution;
use state::{Entry, State};

/// A sandboxed Lua VM.
///
/// A `Vm` is `!Send`: it lives on the thread that created it. Concurrency comes from
/// several VMs, or from several async executions interleaved on one VM as coroutines (on a
/// current-thread runtime or a `LocalSet`).
///
/// Executions come in three shapes, each with a sync and an async variant:
/// - [`exec`](Vm::exec): run a chunk, get all its results as [`Value`]s;
/// - [`eval`](Vm::eval): run a chunk, get its results as a typed Rust value;
/// - [`call`](Vm::call) and [`call_in`](Vm::call_in): call a global function.
///
/// How executions are kept apart is set by [`VmConfig::isolation`].
///
/// ```
/// use luapool::{Script, Vm, VmConfig};
///
/// let vm = Vm::new(VmConfig::default())?;
/// vm.register("add", |(a, b): (i64, i64)| Ok(a + b))?;
/// let sum: i64 = vm.eval(&Script::new("sum.lua", "return add(40, 2)"))?;
/// assert_eq!(sum, 42);
/// # Ok::<(), luapool::Error>(())
/// ```
pub struct Vm {
    config: VmConfig,
    state: Rc<State>,
    /// Host functions and modules, replayed on every state an `Isolation::FreshVm` VM
    /// builds.
    registrations: RefCell<Vec<Registration>>,
    /// The last state built for `Isolation::FreshVm`, kept alive until the next
    /// execution so that Lua references in its results stay valid.
    fresh: RefCell<Option<Rc<State>>>,
    output: Output,
    limits: Limits,
}

/// A host function, module or global as registered, so that it can be installed again.
pub(crate) enum Registration {
    Global(String, Maker),
    Module(String, Vec<(String, Maker)>),
    Value(String, Value),
    SharedDicts(SharedDicts),
    /// A built-in module written in Lua: its name and its source.
    LuaModule(String, Script),
}

impl Registration {
    /// The global it sets.
    fn name(&self) -> &str {
        match self {
            Registration::Global(name, _)
            | Registration::Module(name, _)
            | Registration::Value(name, _)
            | Registration::LuaModule(name, _) => name,
            Registration::SharedDicts(_) => "shared",
        }
    }

    fn apply(&self, sandbox: &Sandbox) -> Result<()> {
        let (lua, data) = (&sandbox.lua, &sandbox.data);
        let res = match self {
            Registration::Global(name, maker) => maker(lua)
                .and_then(|f| data.wrap_host(lua, f))
                .and_then(|f| data.base.raw_set(name.as_str(), f)),
            Registration::Module(name, functions) => (|| {
                let table = lua.create_table_with_capacity(0, functions.len())?;
                for (fname, maker) in functions {
                    table.raw_set(fname.as_str(), data.wrap_host(lua, maker(lua)?)?)?;
                }
                data.install_module(lua, name, table).map(|_| ())
            })(),
            Registration::Value(name, value) => value
                .clone()
                .into_lua(lua)
                // A trusted VM's globals are plain tables, as in Lua.
                .and_then(|v| match data.trusted {
                    true => Ok(v),
                    false => seal_deep(sandbox, v, name),
                })
                .and_then(|v| data.base.raw_set(name.as_str(), v)),
            Registration::SharedDicts(dicts) => shared_dict::install(lua, data, dicts),
            Registration::LuaModule(name, script) => (|| {
                let env = data.new_env(lua)?;
                let chunk = lua
                    .load(script.source())
                    .set_name(script.chunk_name())
                    .set_mode(mlua::chunk::ChunkMode::Text)
                    .set_environment(env)
                    .into_function()?;
                // The engine's own `setmetatable` (the sandbox's checks for `__gc` cost
                // about 2,000 instructions a call): the module is host code.
                let setmetatable: mlua::Function = lua.globals().raw_get("setmetatable")?;
                let mlua::Value::Table(table) =
                    chunk.call::<mlua::Value>((name.as_str(), setmetatable))?
                else {
                    return Err(mlua::Error::runtime(format!(
                        "the Lua module '{name}' did not return a table"
                    )));
                };
                data.install_builtin(lua, name, table).map(|_| ())
            })(),
        };
        res.map_err(|e| classify(e, None))
    }
}

/// Seals a table and every table inside it, so a host-provided global is read-only.
fn seal_deep(sandbox: &Sandbox, value: mlua::Value, name: &str) -> mlua::Result<mlua::Value> {
    let mlua::Value::Table(t) = value else {
        return Ok(value);
    };
    let nested: Vec<(mlua::Value, mlua::Value)> = t
        .pairs::<mlua::Value, mlua::Value>()
        .filter(|p| matches!(p, Ok((_, mlua::Value::Table(_)))))
        .collect::<mlua::Result<_>>()?;
    for (k, v) in nested {
        t.raw_set(k, seal_deep(sandbox, v, name)?)?;
    }
    let sealed = seal::seal(&sandbox.lua, t, name, sandbox.data.reject(&sandbox.lua)?)?;
    Ok(mlua::Value::Table(sealed))
}

/// What an execution does: a chunk, or a chunk then one of its global functions, or a
/// global function of the VM. `'s` is the lifetime of what is read only while the
/// execution is planned, `'n` that of the global function's name, kept to report it
/// missing.
enum Target<'s, 'n> {
    Chunk(&'s Script),
    ChunkThenCall(&'s Script, &'n str),
    Global(&'n str),
    Function(&'s Function),
}

/// Why a [`Vm`] should not run anything more; see [`Vm::poisoned`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Poison {
    /// An execution hit the memory limit while state outlives executions (modules
    /// loaded with `require`, or [`Isolation::Shared`] globals). Lua's state is
    /// consistent after a memory error, but whatever the script was building there may
    /// be half-built.
    MemoryLimit,
    /// A CPU, instruction or wall-clock limit stopped a script at an arbitrary instruction
    /// while state outlives executions (modules loaded with `require`, or
    /// [`Isolation::Shared`] globals), which may be half-updated.
    Interrupted,
    /// A host function panicked (the panic was caught and reported as an error).
    HostPanic,
}

impl Poison {
    /// The poison of a VM whose state outlives executions after the limit `kind` stopped
    /// one.
    pub(crate) fn after(kind: LimitKind) -> Poison {
        match kind {
            LimitKind::Memory => Poison::MemoryLimit,
            _ => Poison::Interrupted,
        }
    }
}

/// An execution ready to start: one call of `func` with `args` on `state`.
struct Plan<'a> {
    state: Rc<State>,
    func: Function,
    args: MultiValue,
    /// The global function called, to report it missing.
    calls: Option<&'a str>,
    /// Runs the execution under the VM's limits, when it has any.
    driver: Option<Driver>,
    /// What the execution carries for its host functions, when it has no driver (which
    /// installs it otherwise).
    carried: Option<Carried>,
    shared_globals: bool,
}

impl<'a> Plan<'a> {
    /// Runs the execution (under the limits' [`Driver`] when the VM has limits), records
    /// the limit that stopped it, if one did, and converts its results.
    fn run<R: FromLuaMulti>(self) -> Result<R> {
        let Plan {
            state,
            func,
            args,
            calls,
            driver,
            carried,
            shared_globals,
        } = self;
        let convert = |results: mlua::Result<MultiValue>| convert_results(&state, calls, results);
        let Some(driver) = driver else {
            return convert(Context::scope(carried.as_ref(), true, || func.call(args)));
        };
        let (result, stopped) = driver.run(state.lua(), || func.call(args), convert);
        state.note(stopped, shared_globals);
        result
    }

    /// Async variant of [`run`](Plan::run): the execution runs as a coroutine, which may
    /// await host futures.
    fn run_async<R: FromLuaMulti>(self) -> Running<'a, R> {
        let Plan {
            state,
            func,
            args,
            calls,
            driver,
            carried,
            shared_globals,
        } = self;
        let call = func.call_async::<MultiValue>(args);
        let run = match driver {
            Some(driver) => Run::Driven(driver.drive(state.lua(), call)),
            None => Run::Plain(WithContext {
                future: call,
                carried,
            }),
        };
        Running {
            state,
            calls,
            shared_globals,
            run,
            results: PhantomData,
        }
    }
}

/// The future of an async execution started by one of the `*_async` methods of [`Vm`]
/// and [`Execution`] that return a typed result (`eval_async`, `call_async`, ...).
///
/// The execution is planned when the method is called: its script is compiled (or
/// fetched from the VM's cache) and its arguments are moved into Lua then. It runs when
/// the future is polled, as a coroutine that may await async host functions. Dropping
/// the future before it is done stops the execution: a suspended host call is
/// cancelled, and Lua code that runs while the coroutine unwinds stops at once; an
/// execution whose future is dropped before its first poll never runs.
///
/// It does not borrow the [`Vm`] (it keeps the VM's Lua state alive by itself), only
/// the name of the global function it calls (`'n`), to report it missing.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// use luapool::{ExecFuture, Script, Vm, VmConfig};
///
/// let vm = Vm::new(VmConfig::default())?;
/// let future: ExecFuture<'static, i64> = vm.eval_async(&Script::new("x", "return 6 * 7"));
/// assert_eq!(future.await?, 42);
/// # Ok::<(), luapool::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct ExecFuture<'n, R>(Launch<'n, R>);

impl<'n, R: FromLuaMulti> ExecFuture<'n, R> {
    /// The future of an execution as planned: `planned`'s error, or the execution run
    /// by [`Plan::run_async`].
    fn new(planned: Result<Plan<'n>>) -> ExecFuture<'n, R> {
        ExecFuture(match planned {
            Ok(plan) => Launch::Running(plan.run_async()),
            Err(e) => Launch::Failed(Some(e)),
        })
    }
}

impl<R: FromLuaMulti> Future for ExecFuture<'_, R> {
    type Output = Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<R>> {
        match &mut self.get_mut().0 {
            Launch::Running(running) => Pin::new(running).poll(cx),
            Launch::Failed(error) => match error.take() {
                Some(e) => Poll::Ready(Err(e)),
                // Polled again after it returned its error.
                None => Poll::Pending,
            },
        }
    }
}

impl<R> std::fmt::Debug for ExecFuture<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.0 {
            Launch::Failed(_) => "failed",
            Launch::Running(_) => "running",
        };
        f.debug_tuple("ExecFuture").field(&state).finish()
    }
}

/// An [`ExecFuture`]'s state: its planning's error, or the execution running.
// Not boxed: the running variant is the common one, and a box would cost an allocation
// per execution.
#[allow(clippy::large_enum_variant)]
enum Launch<'n, R> {
    /// Planning failed (`None` once the error was returned).
    Failed(Option<Error>),
    Running(Running<'n, R>),
}

/// An async execution in progress: the future of [`Plan::run_async`]. A plain struct
/// rather than an `async fn`, so that it holds each piece of the execution's state once
/// (every job's and request's future embeds it, and is moved and boxed whole).
struct Running<'a, R> {
    state: Rc<State>,
    /// The global function called, to report it missing.
    calls: Option<&'a str>,
    shared_globals: bool,
    run: Run,
    results: PhantomData<fn() -> R>,
}

/// How a [`Running`] execution runs.
// Not boxed: the driven variant is the common one (every VM with a limit or a time
// slice), and a box would cost an allocation per execution.
#[allow(clippy::large_enum_variant)]
enum Run {
    /// Under the limits' driver.
    Driven(Driving<AsyncCallFuture<MultiValue>>),
    /// Without limits: the coroutine, polled with what the execution carries installed.
    Plain(WithContext<AsyncCallFuture<MultiValue>>),
}

impl<R: FromLuaMulti> Future for Running<'_, R> {
    type Output = Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<R>> {
        let this = self.get_mut();
        let (state, calls) = (&this.state, this.calls);
        let convert = |results: mlua::Result<MultiValue>| convert_results(state, calls, results);
        match &mut this.run {
            Run::Plain(call) => Pin::new(call).poll(cx).map(convert),
            Run::Driven(driving) => {
                let Poll::Ready(results) = driving.poll_call(state.lua(), cx) else {
                    return Poll::Pending;
                };
                let (result, stopped) = driving.finish(results, convert);
                state.note(stopped, this.shared_globals);
                Poll::Ready(result)
            }
        }
    }
}

/// Converts an execution's results, turning the failure marker into
/// [`Error::FunctionNotFound`] (when it `calls` a global function).
fn convert_results<R: FromLuaMulti>(
    state: &State,
    calls: Option<&str>,
    results: mlua::Result<MultiValue>,
) -> Result<R> {
    let lua = state.lua();
    let results = results.map_err(|e| {
        let data = state.data();
        let mut err = classify(e, None);
        if data.guards.is_some() {
            err = crate::limits::error_value::attach(lua, err);
        }
        if !data.trusted {
            err = crate::sandbox::hint::explain(err);
        }
        err
    })?;
    if let (Some(name), Some(first)) = (calls, results.front()) {
        if *first == fail_marker() {
            return Err(Error::FunctionNotFound {
                name: name.to_string(),
            });
        }
    }
    // One budget for all the results: many results sharing one huge string are
    // bounded together.
    crate::copy_budget::scope_for(lua, results, |results| R::from_lua_multi(results, lua))
        .map_err(|e| classify(e, None))
}

impl Vm {
    /// Builds a VM from its configuration.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration, [`Error::Engine`] if the Lua state
    /// cannot be created.
    pub fn new(config: VmConfig) -> Result<Vm> {
        let output: Output = Rc::new(RefCell::new(None));
        let limits = Limits::from_config(&config);
        let state = Rc::new(State::build(&config, &limits, output.clone(), &[])?);
        Ok(Vm {
            state,
            registrations: RefCell::new(Vec::new()),
            fresh: RefCell::new(None),
            output,
            limits,
            config,
        })
    }

    /// The configuration this VM was built from.
    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// Sends what scripts `print` to `writer` instead of standard output.
    ///
    /// ```
    /// use std::{cell::RefCell, io::Write, rc::Rc};
    /// use luapool::{Script, Vm, VmConfig};
    ///
    /// #[derive(Clone, Default)]
    /// struct Buf(Rc<RefCell<Vec<u8>>>);
    /// impl Write for Buf {
    ///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.borrow_mut().write(b) }
    ///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
    /// }
    ///
    /// let vm = Vm::new(VmConfig::default())?;
    /// let buf = Buf::default();
    /// vm.set_output(buf.clone());
    /// vm.exec(&Script::new("p", "print('hi', 1, nil)"))?;
    /// assert_eq!(&*buf.0.borrow(), b"hi\t1\tnil\n");
    /// # Ok::<(), luapool::Error>(())
    /// ```
    pub fn set_output(&self, writer: impl Write + 'static) {
        *self.output.borrow_mut() = Some(Box::new(writer));
        // A trusted VM's `print` is the engine's until now (see `VmConfig::trusted`).
        let lua = self.state.lua();
        if let Err(e) = self.state.data().use_host_print(lua) {
            tracing::warn!("cannot send a trusted VM's print to the host's writer: {e}");
        }
    }

    /// Why this VM should be discarded, if it should: after a memory limit or another
    /// limit stopped a script while state outlives executions (modules loaded with
    /// `require`, or [`Isolation::Shared`] globals), or after a host function panicked.
    /// A pool rebuilds a poisoned VM; nothing stops you from using it, but module state
    /// may be half-updated.
    ///
    /// ```
    /// use luapool::{Error, Isolation, Poison, Script, Vm, VmConfig};
    ///
    /// let config = VmConfig::default()
    ///     .with_memory_limit(1 << 20)
    ///     .with_isolation(Isolation::Shared);
    /// let vm = Vm::new(config)?;
    /// let err = vm.exec(&Script::new("bomb", "local t = {} while true do t[#t + 1] = {} end"));
    /// assert!(matches!(err, Err(Error::MemoryLimit { .. })));
    /// assert_eq!(vm.poisoned(), Some(Poison::MemoryLimit));
    /// # Ok::<(), luapool::Error>(())
    /// ```
    pub fn poisoned(&self) -> Option<Poison> {
        self.state.poison()
    }

    /// Puts the VM back in a clean state between uses, according to its isolation mode:
    /// with [`Isolation::Shared`] the shared globals are forgotten (modules stay loaded);
    /// with [`Isolation::PerExecution`] there is nothing to reset, executions never see
    /// each other's globals; with [`Isolation::FreshVm`] the last execution's VM is
    /// dropped.
    ///
    /// ```
    /// use luapool::{Isolation, Script, Value, Vm, VmConfig};
    ///
    /// let vm = Vm::new(VmConfig::default().with_isolation(Isolation::Shared))?;
    /// vm.exec(&Script::new("set", "x = 1"))?;
    /// vm.reset()?;
    /// assert_eq!(vm.exec(&Script::new("get", "return x"))?, vec![Value::Nil]);
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::MemoryLimit`] if the VM is out of memory.
    pub fn reset(&self) -> Result<()> {
        match self.config.isolation {
            Isolation::Shared => self.state.reset_shared(),
            Isolation::PerExecution => Ok(()),
            Isolation::FreshVm => {
                self.fresh.borrow_mut().take();
                Ok(())
            }
        }
    }

    /// Runs one incremental step of the garbage collector; returns true if it finished
    /// a cycle.
    ///
    /// # Errors
    /// [`Error::Engine`] if the collector fails (a `__gc` metamethod raised an error).
    pub fn gc_step(&self) -> Result<bool> {
        self.state.lua().gc_step().map_err(|e| classify(e, None))
    }

    /// Bytes of memory the VM's Lua state uses now.
    pub fn used_memory(&self) -> usize {
        self.state.lua().used_memory()
    }

    /// Number of compiled chunks this VM has cached.
    pub fn cached_chunks(&self) -> usize {
        self.state.cached_chunks()
    }

    /// Registers a synchronous host function as a global visible to every execution.
    ///
    /// # Errors
    /// [`Error::Config`] if `name` is not a valid Lua identifier.
    pub fn register<A, R, F>(&self, name: &str, f: F) -> Result<()>
    where
        A: FromLuaMulti + 'static,
        R: IntoLuaMulti + 'static,
        F: Fn(A) -> HostResult<R> + 'static,
    {
        check_identifier(name)?;
        self.install(Registration::Global(name.to_string(), sync_maker(f)))
    }

    /// Registers an async host function as a global. The calling script just sees a call
    /// that returns later: its coroutine yields while the future runs, and the thread is
    /// free for other executions. Only async executions (`*_async`) can call it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use luapool::{Script, Vm, VmConfig};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let vm = Vm::new(VmConfig::default())?;
    /// vm.register_async("fetch", |key: String| async move {
    ///     tokio::time::sleep(Duration::from_millis(1)).await;
    ///     Ok(format!("value of {key}"))
    /// })?;
    /// let v: String = vm.eval_async(&Script::new("f", "return fetch('a')")).await?;
    /// assert_eq!(v, "value of a");
    /// # Ok::<(), luapool::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] if `name` is not a valid Lua identifier.
    pub fn register_async<A, R, F, Fut>(&self, name: &str, f: F) -> Result<()>
    where
        A: FromLuaMulti + 'static,
        R: IntoLuaMulti + 'static,
        F: Fn(A) -> Fut + 'static,
        Fut: Future<Output = HostResult<R>> + 'static,
    {
        check_identifier(name)?;
        self.install(Registration::Global(name.to_string(), async_maker(f)))
    }

    /// Registers a [`Module`]: a read-only table of host functions, visible as a global and
    /// returned by `require(name)`.
    ///
    /// # Errors
    /// [`Error::Config`] if a name is not a valid Lua identifier.
    pub fn register_module(&self, module: Module) -> Result<()> {
        check_identifier(&module.name)?;
        for (name, _) in &module.functions {
            check_identifier(name)?;
        }
        let makers = module.makers();
        self.install(Registration::Module(module.name, makers))
    }

    /// Registers a built-in module written in Lua: `script` runs once on this VM's state
    /// (once per state with [`Isolation::FreshVm`]), in an environment of its own, and the
    /// table it returns is what `require(name)` gives every execution. The table is
    /// read-only to scripts, like the other built-in modules; it is not a global. The
    /// module's locals live as long as the VM: keep request data out of them. The script
    /// gets two arguments (`...`): `name`, and the engine's own `setmetatable`, which
    /// does not refuse `__gc` as the sandbox's does and is cheaper: keep it from scripts.
    ///
    /// `name` is one or more Lua identifiers joined by dots (`"luapool.router"`).
    ///
    /// ```
    /// use luapool::{Script, Vm, VmConfig};
    ///
    /// let vm = Vm::new(VmConfig::default())?;
    /// let source = "local M = {} function M.twice(x) return 2 * x end return M";
    /// vm.register_lua_module("util.math", &Script::new("util/math.lua", source))?;
    /// let n: i64 = vm.eval(&Script::new("t", "return require('util.math').twice(21)"))?;
    /// assert_eq!(n, 42);
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] if `name` is not dotted identifiers; [`Error::Syntax`] or
    /// [`Error::Runtime`] if the script does not compile, fails or returns no table.
    pub fn register_lua_module(&self, name: &str, script: &Script) -> Result<()> {
        for part in name.split('.') {
            check_identifier(part)?;
        }
        self.install(Registration::LuaModule(name.to_string(), script.clone()))
    }

    /// Makes `value` a read-only global visible to every execution (tables are sealed,
    /// nested ones too). In a trusted VM (see [`VmConfig::trusted`]) a table is a plain
    /// table, as Lua's own globals are there.
    ///
    /// ```
    /// use luapool::{Script, Value, Vm, VmConfig};
    ///
    /// let vm = Vm::new(VmConfig::default())?;
    /// vm.set_global("VERSION", Value::from("1.2"))?;
    /// assert_eq!(vm.eval::<String>(&Script::new("v", "return VERSION"))?, "1.2");
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] if `name` is not a valid Lua identifier.
    pub fn set_global(&self, name: &str, value: Value) -> Result<()> {
        check_identifier(name)?;
        self.install(Registration::Value(name.to_string(), value))
    }

    /// Makes `dicts` visible to every execution as the read-only global table `shared`
    /// (also `require("shared")`), one object per dictionary: `shared.cache:get(key)`.
    /// Every VM the same [`SharedDicts`] (or a clone) is registered on sees the same
    /// entries. Registering again replaces the `shared` table. See [`SharedDicts`] for
    /// the methods scripts call.
    ///
    /// ```
    /// use luapool::{Script, SharedDicts, Value, Vm, VmConfig};
    ///
    /// let dicts = SharedDicts::new([("hits", 100)])?;
    /// let vm = Vm::new(VmConfig::default())?;
    /// vm.register_shared_dicts(&dicts)?;
    /// let script = Script::new("count.lua", "return shared.hits:incr('/', 1, 0)");
    /// assert_eq!(vm.exec(&script)?, vec![Value::Integer(1)]);
    /// assert_eq!(vm.exec(&script)?, vec![Value::Integer(2)]);
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::MemoryLimit`] or [`Error::Engine`] if the Lua objects cannot be created.
    pub fn register_shared_dicts(&self, dicts: &SharedDicts) -> Result<()> {
        self.install(Registration::SharedDicts(dicts.clone()))
    }

    fn install(&self, registration: Registration) -> Result<()> {
        registration.apply(&self.state.sandbox)?;
        self.state.registered(registration.name())?;
        self.registrations.borrow_mut().push(registration);
        Ok(())
    }

    /// Compiles `script` without running it (and caches it).
    ///
    /// # Errors
    /// [`Error::Syntax`] naming the script and line.
    pub fn compile(&self, script: &Script) -> Result<()> {
        self.state.compiled(script, None).map(|_| ())
    }

    /// Runs a chunk and returns all its results as [`Value`]s.
    ///
    /// # Errors
    /// [`Error::Syntax`], [`Error::Runtime`], [`Error::Conversion`] if a result cannot be
    /// converted, and the limit errors.
    pub fn exec(&self, script: &Script) -> Result<Vec<Value>> {
        self.exec_with_args(script, ())
    }

    /// Async variant of [`exec`](Vm::exec): the chunk may call async host functions.
    ///
    /// # Errors
    /// As [`exec`](Vm::exec).
    pub async fn exec_async(&self, script: &Script) -> Result<Vec<Value>> {
        self.exec_with_args_async(script, ()).await
    }

    /// Like [`exec`](Vm::exec), passing `args` to the chunk as `...`.
    ///
    /// ```
    /// use luapool::{Script, Value, Vm, VmConfig};
    ///
    /// let vm = Vm::new(VmConfig::default())?;
    /// let sum = vm.exec_with_args(&Script::new("s", "local a, b = ...; return a + b"), (1, 2))?;
    /// assert_eq!(sum, vec![Value::Integer(3)]);
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`exec`](Vm::exec).
    pub fn exec_with_args(&self, script: &Script, args: impl IntoLuaMulti) -> Result<Vec<Value>> {
        let values: Variadic<Value> = self.plan(Target::Chunk(script), args, false)?.run()?;
        Ok(values.into())
    }

    /// Async variant of [`exec_with_args`](Vm::exec_with_args).
    ///
    /// # Errors
    /// As [`exec`](Vm::exec).
    pub async fn exec_with_args_async(
        &self,
        script: &Script,
        args: impl IntoLuaMulti,
    ) -> Result<Vec<Value>> {
        let values: Variadic<Value> =
            ExecFuture::new(self.plan(Target::Chunk(script), args, true)).await?;
        Ok(values.into())
    }

    /// Like [`eval`](Vm::eval), passing `args` to the chunk as `...`.
    ///
    /// # Errors
    /// As [`exec`](Vm::exec).
    pub fn eval_with_args<R: FromLuaMulti>(
        &self,
        script: &Script,
        args: impl IntoLuaMulti,
    ) -> Result<R> {
        self.plan(Target::Chunk(script), args, false)?.run()
    }

    /// Async variant of [`eval`](Vm::eval), passing `args` to the chunk as `...`.
    ///
    /// # Errors
    /// As [`exec`](Vm::exec).
    pub fn eval_with_args_async<R: FromLuaMulti>(
        &self,
        script: &Script,
        args: impl IntoLuaMulti,
    ) -> ExecFuture<'static, R> {
        ExecFuture::new(self.plan(Target::Chunk(script), args, true))
    }

    /// Runs a chunk and converts its results to `R`.
    ///
    /// With [`Isolation::FreshVm`], Lua references in `R` (tables, functions) stay valid
    /// only until the next execution; prefer owned types and [`Value`].
    ///
    /// # Errors
    /// As [`exec`](Vm::exec).
    pub fn eval<R: FromLuaMulti>(&self, script: &Script) -> Result<R> {
        self.plan(Target::Chunk(script), (), false)?.run()
    }

    /// Async variant of [`eval`](Vm::eval).
    ///
    /// # Errors
    /// As [`exec`](Vm::exec).
    pub fn eval_async<R: FromLuaMulti>(&self, script: &Script) -> ExecFuture<'static, R> {
        ExecFuture::new(self.plan(Target::Chunk(script), (), true))
    }

    /// Calls the global function `name`: in [`Isolation::Shared`] mode one defined by an
    /// earlier execution or registered by the host; otherwise one registered by the host
    /// (scripts' globals do not outlive their execution; see [`call_in`](Vm::call_in)).
    ///
    /// # Errors
    /// [`Error::FunctionNotFound`] if there is no such function, then as
    /// [`exec`](Vm::exec).
    pub fn call<R: FromLuaMulti>(&self, name: &str, args: impl IntoLuaMulti) -> Result<R> {
        self.plan(Target::Global(name), args, false)?.run()
    }

    /// Async variant of [`call`](Vm::call).
    ///
    /// # Errors
    /// As [`call`](Vm::call).
    pub fn call_async<'n, R: FromLuaMulti>(
        &self,
        name: &'n str,
        args: impl IntoLuaMulti,
    ) -> ExecFuture<'n, R> {
        ExecFuture::new(self.plan(Target::Global(name), args, true))
    }

    /// Runs `script`, then calls the global function `name` it defined, both in one
    /// execution (so with [`Isolation::PerExecution`] they share that execution's fresh
    /// globals). This is how a handler script is served: the script defines `handle`,
    /// each request calls it.
    ///
    /// ```
    /// use luapool::{Script, Vm, VmConfig};
    ///
    /// let vm = Vm::new(VmConfig::default())?;
    /// let app = Script::new("app.lua", "n = 0\nfunction handle(x) n = n + x; return n end");
    /// let a: i64 = vm.call_in(&app, "handle", 5)?;
    /// let b: i64 = vm.call_in(&app, "handle", 5)?;
    /// assert_eq!((a, b), (5, 5)); // globals are per execution
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`call`](Vm::call).
    pub fn call_in<R: FromLuaMulti>(
        &self,
        script: &Script,
        name: &str,
        args: impl IntoLuaMulti,
    ) -> Result<R> {
        self.plan(Target::ChunkThenCall(script, name), args, false)?
            .run()
    }

    /// Async variant of [`call_in`](Vm::call_in).
    ///
    /// # Errors
    /// As [`call`](Vm::call).
    pub fn call_in_async<'n, R: FromLuaMulti>(
        &self,
        script: &Script,
        name: &'n str,
        args: impl IntoLuaMulti,
    ) -> ExecFuture<'n, R> {
        ExecFuture::new(self.plan(Target::ChunkThenCall(script, name), args, true))
    }

    /// Calls a Lua function value that an earlier execution on this VM handed to the
    /// host (a callback kept by a host function, say), as an execution of its own: with
    /// the VM's limits, on a coroutine of its own. The function keeps the globals it was
    /// made with (its `_ENV`).
    ///
    /// ```
    /// use luapool::{mlua::Function, Script, Vm, VmConfig};
    ///
    /// let vm = Vm::new(VmConfig::default())?;
    /// let f: Function = vm.eval(&Script::new("f", "local n = 40 return function(x) return n + x end"))?;
    /// let n: i64 = vm.call_function(&f, 2)?;
    /// assert_eq!(n, 42);
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ForeignFunction`] if `func` belongs to another Lua state (another VM, or
    /// a state this VM replaced since: [`Isolation::FreshVm`], a rebuild), then as
    /// [`exec`](Vm::exec).
    pub fn call_function<R: FromLuaMulti>(
        &self,
        func: &Function,
        args: impl IntoLuaMulti,
    ) -> Result<R> {
        self.plan(Target::Function(func), args, false)?.run()
    }

    /// Async variant of [`call_function`](Vm::call_function).
    ///
    /// # Errors
    /// As [`call_function`](Vm::call_function).
    pub fn call_function_async<R: FromLuaMulti>(
        &self,
        func: &Function,
        args: impl IntoLuaMulti,
    ) -> ExecFuture<'static, R> {
        ExecFuture::new(self.plan(Target::Function(func), args, true))
    }

    /// The state an execution runs on: the VM's own, or a new one for `FreshVm`.
    fn execution_state(&self) -> Result<Rc<State>> {
        if self.config.isolation != Isolation::FreshVm {
            return Ok(self.state.clone());
        }
        let state = Rc::new(State::build(
            &self.config,
            &self.limits,
            self.output.clone(),
            &self.registrations.borrow(),
        )?);
        *self.fresh.borrow_mut() = Some(state.clone());
        Ok(state)
    }

    /// Prepares one execution: compiles (or fetches) the script and picks the call that
    /// runs it in the environment the isolation mode asks for, for a sync execution or
    /// an async one (`on_coroutine`).
    fn plan<'n>(
        &self,
        target: Target<'_, 'n>,
        args: impl IntoLuaMulti,
        on_coroutine: bool,
    ) -> Result<Plan<'n>> {
        self.plan_with(target, args, on_coroutine, None)
    }

    /// [`plan`](Vm::plan) for an execution with its own `options`.
    fn plan_with<'n>(
        &self,
        target: Target<'_, 'n>,
        args: impl IntoLuaMulti,
        on_coroutine: bool,
        options: Option<&ExecOptions>,
    ) -> Result<Plan<'n>> {
        let limits = match options {
            Some(options) => options.narrow(self.limits)?,
            None => self.limits,
        };
        let carried = options.and_then(ExecOptions::carried);
        let state = self.execution_state()?;
        let lua = state.lua();
        let mut args = args.into_lua_multi(lua).map_err(|e| classify(e, None))?;
        let shared = self.config.isolation == Isolation::Shared;
        let mut meter = limits.any().then(|| Meter::new(limits));
        let (func, calls) = match target {
            Target::Chunk(script) => {
                let entry = if shared { Entry::Shared } else { Entry::Fresh };
                let compiled = state.compiled(script, meter.as_mut())?;
                (state.entry(&compiled, entry, on_coroutine)?, None)
            }
            Target::ChunkThenCall(script, name) => {
                let entry = if shared {
                    Entry::SharedThenCall
                } else {
                    Entry::FreshThenCall
                };
                let compiled = state.compiled(script, meter.as_mut())?;
                let func = state.entry(&compiled, entry, on_coroutine)?;
                let name_value = lua.create_string(name).map_err(|e| classify(e, None))?;
                args.push_front(mlua::Value::String(name_value));
                (func, Some(name))
            }
            Target::Global(name) => {
                let scope = if shared {
                    state.shared_env()
                } else {
                    state.data().base.clone()
                };
                (
                    state.guarded(env_function(&scope, name)?, on_coroutine)?,
                    None,
                )
            }
            Target::Function(func) => {
                // A function of another Lua state (one this VM replaced) cannot be
                // pushed onto this one.
                if func.weak_lua() != &lua.weak() {
                    return Err(Error::ForeignFunction);
                }
                (state.guarded(func.clone(), on_coroutine)?, None)
            }
        };
        let (driver, carried) = match meter {
            Some(meter) => {
                let memory = state.memory_share(limits.memory);
                (Some(Driver::new(meter, memory, carried)), None)
            }
            None => (None, carried),
        };
        Ok(Plan {
            state,
            func,
            args,
            calls,
            driver,
            carried,
            shared_globals: shared,
        })
    }
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("config", &self.config)
            .field("state", &self.state)
            .finish()
    }
}

/// Looks up a function in an environment (through its metatable, so the base counts).
fn env_function(env: &Table, name: &str) -> Result<Function> {
    match env
        .get::<mlua::Value>(name)
        .map_err(|e| classify(e, None))?
    {
        mlua::Value::Function(f) => Ok(f),
        _ => Err(Error::FunctionNotFound {
            name: name.to_string(),
        }),
    }
}

/// Host names must be plain identifiers: they become global names and table keys.
fn check_identifier(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Config {
            message: format!(
                "'{name}' is not a valid Lua identifier for a host function or module"
            ),
        })
    }
}
