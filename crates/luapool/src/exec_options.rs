//! [`ExecOptions`]: what one execution carries beyond its script and arguments — limits
//! tighter than its VM's, and the [`Context`] its host functions read.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::context::{Carried, Context};
use crate::error::{Error, Result};
use crate::limits::Limits;

/// Settings of one execution (on a [`Vm`](crate::Vm) with
/// [`Vm::with_options`](crate::Vm::with_options), or of one pool job with
/// [`Job::with_options`](crate::Job::with_options)): limits within the VM's, and a
/// [`Context`] for its host functions.
///
/// A limit here can only tighten the VM's: the execution gets the smaller of the two. A
/// VM configured with no limit at all (no memory, CPU, instruction or wall-clock limit
/// and no time slice) has none of the machinery that enforces them, so asking one of its
/// executions for a limit fails with [`Error::Config`]; give such VMs a ceiling in their
/// [`VmConfig`](crate::VmConfig) (a worker pool's VMs always qualify: they have a time
/// slice).
///
/// ```
/// use std::time::Duration;
/// use luapool::{Error, ExecOptions, Script, Vm, VmConfig};
///
/// let vm = Vm::new(VmConfig::default().with_cpu_limit(Duration::from_secs(10)))?;
/// let spin = Script::new("spin.lua", "while true do end");
/// let tight = ExecOptions::new().with_cpu_limit(Duration::from_millis(20));
/// let err = vm.with_options(&tight).exec(&spin, ()).unwrap_err();
/// assert!(matches!(err, Error::CpuLimit { limit } if limit == Duration::from_millis(20)));
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ExecOptions {
    /// Wall-clock timeout of the execution, awaits included.
    pub timeout: Option<Duration>,
    /// CPU time the execution may spend running.
    pub cpu_limit: Option<Duration>,
    /// Lua instructions the execution may run (counted in steps of 1000).
    pub instruction_limit: Option<u64>,
    /// Data the execution's host functions read with [`Context::get`].
    pub context: Option<Context>,
    /// The execution's id (a request id, a job id): the `log` lines of the execution
    /// carry it as their `id` field, the HTTP client module sends it as `x-request-id`,
    /// and host functions read it with [`Context::id`].
    pub id: Option<Arc<str>>,
}

impl ExecOptions {
    /// Options that change nothing: the VM's limits, no context.
    pub fn new() -> ExecOptions {
        ExecOptions::default()
    }

    /// Sets the wall-clock timeout (the VM's, if smaller, still applies).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the CPU-time limit (the VM's, if smaller, still applies).
    pub fn with_cpu_limit(mut self, limit: Duration) -> Self {
        self.cpu_limit = Some(limit);
        self
    }

    /// Sets the instruction budget (the VM's, if smaller, still applies).
    pub fn with_instruction_limit(mut self, budget: u64) -> Self {
        self.instruction_limit = Some(budget);
        self
    }

    /// Attaches `data` as the execution's [`Context`].
    pub fn with_context<T: Any + Send + Sync>(mut self, data: T) -> Self {
        self.context = Some(Context::new(data));
        self
    }

    /// Attaches `data`, shared, as the execution's [`Context`] (see
    /// [`Context::from_arc`]).
    pub fn with_context_arc<T: Any + Send + Sync>(mut self, data: Arc<T>) -> Self {
        self.context = Some(Context::from_arc(data));
        self
    }

    /// Sets the execution's id (see [`ExecOptions::id`]).
    pub fn with_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// What the execution carries for its host functions, if anything.
    pub(crate) fn carried(&self) -> Option<Carried> {
        if self.context.is_none() && self.id.is_none() {
            return None;
        }
        Some(Carried {
            context: self.context.clone(),
            id: self.id.clone(),
        })
    }

    /// True if the options set a limit.
    fn has_limits(&self) -> bool {
        self.timeout.is_some() || self.cpu_limit.is_some() || self.instruction_limit.is_some()
    }

    /// The limits of an execution with these options on a VM whose limits are `vm`.
    pub(crate) fn narrow(&self, vm: Limits) -> Result<Limits> {
        if !self.has_limits() {
            return Ok(vm);
        }
        if !vm.any() {
            return Err(Error::Config {
                message: "a per-execution limit needs a VM configured with limits (any of \
                          memory_limit, cpu_limit, instruction_limit, timeout or time_slice)"
                    .into(),
            });
        }
        if self.timeout.is_some() || self.cpu_limit.is_some() {
            crate::engine::check_interruptible();
        }
        Ok(Limits {
            timeout: smaller(vm.timeout, self.timeout),
            cpu: smaller(vm.cpu, self.cpu_limit),
            instructions: smaller(vm.instructions, self.instruction_limit),
            ..vm
        })
    }
}

/// The smaller of two optional limits (`None` is no limit).
fn smaller<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_only_tighten() {
        let vm = Limits {
            cpu: Some(Duration::from_millis(10)),
            ..Limits::default()
        };
        let opts = ExecOptions::new()
            .with_cpu_limit(Duration::from_secs(1))
            .with_timeout(Duration::from_millis(5));
        let l = opts.narrow(vm).unwrap_or_default();
        assert_eq!(l.cpu, Some(Duration::from_millis(10)));
        assert_eq!(l.timeout, Some(Duration::from_millis(5)));
        assert!(opts.narrow(Limits::default()).is_err());
        assert!(ExecOptions::new().narrow(Limits::default()).is_ok());
    }
}
