//! Jobs: what a worker runs, and the envelope that carries a job to a worker and its
//! result back.

use std::any::Any;
use std::future::Future;
use std::time::{Duration, Instant};

use mlua::Variadic;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::exec_options::ExecOptions;
use crate::script::Script;
use crate::value::Value;
use crate::vm::Vm;

/// One unit of work for a [`WorkerPool`](crate::WorkerPool): what to run, its
/// arguments, and its own [`ExecOptions`] (limits within the pool's, a
/// [`Context`](crate::Context) for host functions). Arguments are converted to
/// [`Value`]s when the job is made, so jobs cross threads.
///
/// ```
/// use std::time::Duration;
/// use luapool::{Job, Script};
///
/// #[derive(serde::Serialize)]
/// struct Order { total: f64 }
///
/// let rules = Script::new("rules.lua", "function decide(o, limit) return o.total < limit end");
/// let job = Job::call_in(rules, "decide", (Order { total: 12.0 }, 100))
///     .with_timeout(Duration::from_millis(50))
///     .with_context("tenant-42");
/// # let _ = job;
/// ```
#[derive(Debug, Clone)]
pub struct Job {
    target: Target,
    args: Vec<Value>,
    /// Why the arguments could not be converted, if they could not (reported by
    /// `submit`).
    invalid: Option<Box<Error>>,
    /// The job's own options, if it has some.
    options: Option<Box<ExecOptions>>,
}

/// What a job runs.
#[derive(Debug, Clone)]
enum Target {
    /// A chunk, with the arguments as `...`.
    Exec(Script),
    /// A global function of the worker's VM (registered by the init recipe or a module,
    /// or in `Isolation::Shared` mode defined by the init script or an earlier job).
    Call(String),
    /// A chunk, then a global function it defines, in one execution (see
    /// [`Vm::call_in`]).
    CallIn(Script, String),
}

/// The arguments of a [`Job`]: `()`, a `Vec<Value>`, a [`Value`], or a tuple of up to
/// eight serde-serializable values (each one Lua argument; a struct arrives as a table).
pub trait JobArgs {
    /// The arguments as values.
    ///
    /// # Errors
    /// [`Error::Conversion`] if one cannot be serialized.
    fn into_values(self) -> Result<Vec<Value>>;
}

impl JobArgs for () {
    fn into_values(self) -> Result<Vec<Value>> {
        Ok(Vec::new())
    }
}

impl JobArgs for Vec<Value> {
    fn into_values(self) -> Result<Vec<Value>> {
        Ok(self)
    }
}

impl JobArgs for Value {
    fn into_values(self) -> Result<Vec<Value>> {
        Ok(vec![self])
    }
}

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: Serialize),+> JobArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_values(self) -> Result<Vec<Value>> {
                let ($($name,)+) = self;
                Ok(vec![$(Value::from_serialize(&$name)?),+])
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);
tuple_args!(A, B, C, D, E, F, G);
tuple_args!(A, B, C, D, E, F, G, H);

impl Job {
    fn new(target: Target, args: impl JobArgs) -> Job {
        Job {
            target,
            args: Vec::new(),
            invalid: None,
            options: None,
        }
        .with_args(args)
    }

    /// A job running `script` with no arguments (see [`with_args`](Job::with_args)).
    pub fn exec(script: Script) -> Job {
        Job::new(Target::Exec(script), ())
    }

    /// A job calling the global function `function` with `args`.
    pub fn call(function: impl Into<String>, args: impl JobArgs) -> Job {
        Job::new(Target::Call(function.into()), args)
    }

    /// A job running `script`, then calling the function `function` it defines with
    /// `args`.
    pub fn call_in(script: Script, function: impl Into<String>, args: impl JobArgs) -> Job {
        Job::new(Target::CallIn(script, function.into()), args)
    }

    /// Replaces the job's arguments (for [`exec`](Job::exec), the chunk's `...`).
    pub fn with_args(mut self, args: impl JobArgs) -> Job {
        match args.into_values() {
            Ok(args) => {
                self.args = args;
                self.invalid = None;
            }
            Err(e) => self.invalid = Some(Box::new(e)),
        }
        self
    }

    /// Replaces the job's options, including any set before with the `with_*` methods
    /// below (call it first).
    pub fn with_options(mut self, options: ExecOptions) -> Job {
        self.options = Some(Box::new(options));
        self
    }

    fn options_mut(&mut self) -> &mut ExecOptions {
        self.options.get_or_insert_with(Box::default)
    }

    /// Sets the job's wall-clock timeout (within the pool's; see [`ExecOptions`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Job {
        self.options_mut().timeout = Some(timeout);
        self
    }

    /// Sets the job's CPU-time limit (within the pool's).
    pub fn with_cpu_limit(mut self, limit: Duration) -> Job {
        self.options_mut().cpu_limit = Some(limit);
        self
    }

    /// Sets the job's instruction budget (within the pool's).
    pub fn with_instruction_limit(mut self, budget: u64) -> Job {
        self.options_mut().instruction_limit = Some(budget);
        self
    }

    /// Attaches `data` as the job's [`Context`](crate::Context).
    pub fn with_context<T: Any + Send + Sync>(mut self, data: T) -> Job {
        self.options_mut().context = Some(crate::Context::new(data));
        self
    }

    /// Attaches `data`, shared, as the job's [`Context`](crate::Context) (see
    /// [`Context::from_arc`](crate::Context::from_arc)).
    pub fn with_context_arc<T: Any + Send + Sync>(mut self, data: std::sync::Arc<T>) -> Job {
        self.options_mut().context = Some(crate::Context::from_arc(data));
        self
    }

    /// Sets the job's id (see [`ExecOptions::id`]): its `log` lines carry it.
    pub fn with_id(mut self, id: impl Into<std::sync::Arc<str>>) -> Job {
        self.options_mut().id = Some(id.into());
        self
    }

    /// The error the job's arguments could not be converted with, if one.
    pub(crate) fn invalid(&self) -> Option<&Error> {
        self.invalid.as_deref()
    }

    /// Runs the job on `vm` (its arguments move into Lua, with no copy kept).
    ///
    /// The job is taken apart before the future is made, so that the future holds its
    /// parts once (an `async fn` would keep `self` beside what it moves out of it).
    pub(crate) fn run(self, vm: &Vm) -> impl Future<Output = Result<Vec<Value>>> + '_ {
        let Job {
            target,
            args,
            invalid,
            options,
        } = self;
        async move {
            if let Some(e) = invalid {
                return Err(*e);
            }
            let args = Variadic::from(args);
            let Some(options) = options else {
                let values: Variadic<Value> = match &target {
                    Target::Exec(script) => return vm.exec_with_args_async(script, args).await,
                    Target::Call(function) => vm.call_async(function, args).await?,
                    Target::CallIn(script, function) => {
                        vm.call_in_async(script, function, args).await?
                    }
                };
                return Ok(values.into());
            };
            let run = vm.with_options(&options);
            let values: Variadic<Value> = match &target {
                Target::Exec(script) => return run.exec_async(script, args).await,
                Target::Call(function) => run.call_async(function, args).await?,
                Target::CallIn(script, function) => {
                    run.call_in_async(script, function, args).await?
                }
            };
            Ok(values.into())
        }
    }
}

/// Where a job's result goes.
pub(crate) type Reply = oneshot::Sender<Result<Vec<Value>>>;

/// A job on its way to a worker.
pub(crate) struct Envelope {
    pub(crate) job: Job,
    pub(crate) reply: Reply,
    pub(crate) enqueued: Instant,
}
