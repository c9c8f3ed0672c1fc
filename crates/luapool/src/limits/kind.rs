//! [`LimitKind`]: the one list of the limits an execution can hit, and everything that
//! differs by kind (the error, the message the interrupt raises in Lua, the name).

use crate::error::Error;
use crate::limits::Limits;

/// Which limit stopped an execution: see [`Error::limit_kind`].
///
/// ```
/// use luapool::{LimitKind, Script, Vm, VmConfig};
///
/// let vm = Vm::new(VmConfig::default().with_instruction_limit(10_000))?;
/// let err = vm.exec(&Script::new("spin", "while true do end")).unwrap_err();
/// assert_eq!(err.limit_kind(), Some(LimitKind::Instructions));
/// assert_eq!(LimitKind::Instructions.as_str(), "instructions");
/// assert!(LimitKind::Instructions.is_time());
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum LimitKind {
    /// [`VmConfig::memory_limit`](crate::VmConfig::memory_limit):
    /// [`Error::MemoryLimit`].
    Memory = 1,
    /// [`VmConfig::cpu_limit`](crate::VmConfig::cpu_limit): [`Error::CpuLimit`].
    Cpu = 2,
    /// [`VmConfig::instruction_limit`](crate::VmConfig::instruction_limit):
    /// [`Error::InstructionLimit`].
    Instructions = 3,
    /// [`VmConfig::timeout`](crate::VmConfig::timeout), the wall-clock time:
    /// [`Error::Timeout`].
    Timeout = 4,
}

impl LimitKind {
    /// Every kind, in the order of their codes (`ALL[i] as u8 == i + 1`).
    const ALL: [LimitKind; 4] = [
        LimitKind::Memory,
        LimitKind::Cpu,
        LimitKind::Instructions,
        LimitKind::Timeout,
    ];

    /// A short lower-case name: `memory`, `cpu`, `instructions`, `timeout` (the server's
    /// metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Memory => "memory",
            LimitKind::Cpu => "cpu",
            LimitKind::Instructions => "instructions",
            LimitKind::Timeout => "timeout",
        }
    }

    /// True for the limits on how long an execution runs (CPU time, instructions,
    /// wall-clock time), which stop the script at an arbitrary instruction; false for
    /// the memory limit, which fails an allocation.
    pub fn is_time(self) -> bool {
        self != LimitKind::Memory
    }

    /// The kind stored as `code` (`kind as u8`) in the interrupt's atomics; `None` for
    /// any other value.
    pub(crate) fn from_code(code: u8) -> Option<LimitKind> {
        let index = usize::from(code.checked_sub(1)?);
        LimitKind::ALL.get(index).copied()
    }

    /// The message the limit hook raises in Lua once this limit has tripped. A memory
    /// error reads as Lua's own (`not enough memory`), which the guards recognise.
    pub(crate) fn lua_message(self) -> &'static [u8] {
        match self {
            LimitKind::Memory => b"not enough memory (memory limit exceeded)",
            LimitKind::Cpu => b"cpu time limit exceeded",
            LimitKind::Instructions => b"instruction limit exceeded",
            LimitKind::Timeout => b"execution timed out",
        }
    }

    /// The error of an execution this limit stopped, with the limit as configured.
    pub(crate) fn error(self, limits: &Limits) -> Error {
        match self {
            LimitKind::Memory => Error::MemoryLimit {
                limit: limits.memory,
            },
            LimitKind::Cpu => Error::CpuLimit {
                limit: limits.cpu.unwrap_or_default(),
            },
            LimitKind::Instructions => Error::InstructionLimit {
                budget: limits.instructions.unwrap_or_default(),
            },
            LimitKind::Timeout => Error::Timeout {
                limit: limits.timeout.unwrap_or_default(),
            },
        }
    }
}

impl Error {
    /// The limit this error reports, if it is one of the limit errors
    /// ([`Error::MemoryLimit`], [`Error::CpuLimit`], [`Error::InstructionLimit`],
    /// [`Error::Timeout`]).
    ///
    /// ```
    /// use luapool::{Error, LimitKind};
    ///
    /// let err = Error::Timeout { limit: std::time::Duration::from_secs(1) };
    /// assert_eq!(err.limit_kind(), Some(LimitKind::Timeout));
    /// assert_eq!(Error::Closed.limit_kind(), None);
    /// ```
    pub fn limit_kind(&self) -> Option<LimitKind> {
        Some(match self {
            Error::MemoryLimit { .. } => LimitKind::Memory,
            Error::CpuLimit { .. } => LimitKind::Cpu,
            Error::InstructionLimit { .. } => LimitKind::Instructions,
            Error::Timeout { .. } => LimitKind::Timeout,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for kind in LimitKind::ALL {
            assert_eq!(LimitKind::from_code(kind as u8), Some(kind));
        }
        assert_eq!(LimitKind::from_code(0), None);
        assert_eq!(LimitKind::from_code(LimitKind::ALL.len() as u8 + 1), None);
    }

    #[test]
    fn errors_know_their_kind() {
        let limits = Limits::default();
        for kind in LimitKind::ALL {
            assert_eq!(kind.error(&limits).limit_kind(), Some(kind));
        }
    }
}
