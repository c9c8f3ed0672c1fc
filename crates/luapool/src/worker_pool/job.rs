//! Jobs: what a worker runs, and the envelope that carries a job to a worker and its
//! result back.

use std::time::Instant;

use mlua::Variadic;
use tokio::sync::oneshot;

use crate::error::Result;
use crate::script::Script;
use crate::value::Value;
use crate::vm::Vm;

/// One unit of work for a [`WorkerPool`](crate::WorkerPool). Arguments and results are
/// [`Value`]s, so jobs cross threads.
///
/// ```
/// use luapool::{Job, Script, Value};
///
/// let job = Job::call_in(
///     Script::new("app.lua", "function handle(n) return n * 2 end"),
///     "handle",
///     vec![Value::Integer(21)],
/// );
/// # let _ = job;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Job {
    /// Run a chunk, passing `args` as `...`.
    Exec {
        /// The chunk.
        script: Script,
        /// Its arguments.
        args: Vec<Value>,
    },
    /// Call a global function of the worker's VM (registered by the init recipe, or in
    /// `Isolation::Shared` mode defined by the init script or an earlier job).
    Call {
        /// The function's name.
        function: String,
        /// Its arguments.
        args: Vec<Value>,
    },
    /// Run a chunk, then call a global function it defines, in one execution (see
    /// [`Vm::call_in`]).
    CallIn {
        /// The chunk defining the function.
        script: Script,
        /// The function's name.
        function: String,
        /// Its arguments.
        args: Vec<Value>,
    },
}

impl Job {
    /// A job running `script` with no arguments.
    pub fn exec(script: Script) -> Job {
        Job::Exec {
            script,
            args: Vec::new(),
        }
    }

    /// A job calling the global function `function`.
    pub fn call(function: impl Into<String>, args: Vec<Value>) -> Job {
        Job::Call {
            function: function.into(),
            args,
        }
    }

    /// A job running `script`, then calling the function `function` it defines.
    pub fn call_in(script: Script, function: impl Into<String>, args: Vec<Value>) -> Job {
        Job::CallIn {
            script,
            function: function.into(),
            args,
        }
    }

    /// Runs the job on `vm` (its arguments move into Lua, with no copy kept).
    pub(crate) async fn run(self, vm: &Vm) -> Result<Vec<Value>> {
        let values: Variadic<Value> = match self {
            Job::Exec { script, args } => {
                return vm.exec_with_args_async(&script, Variadic::from(args)).await
            }
            Job::Call { function, args } => vm.call_async(&function, Variadic::from(args)).await?,
            Job::CallIn {
                script,
                function,
                args,
            } => {
                vm.call_in_async(&script, &function, Variadic::from(args))
                    .await?
            }
        };
        Ok(values.into())
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
