//! The error type of the crate and the one place that classifies mlua's errors.

use std::sync::Arc;
use std::time::Duration;

use crate::shared_dict::DictErrorKind;
use crate::value::Value;

/// A specialized [`Result`](std::result::Result) for luapool operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or running a [`Vm`](crate::Vm).
///
/// Each variant says what happened; messages are lower-case, without a trailing period.
/// The type is `Send + Sync + 'static`, so it crosses threads and fits in `Box<dyn Error>`,
/// and `Clone` (a shared source is in an [`Arc`]). [`limit_kind`](Error::limit_kind)
/// says which limit a limit error is about.
///
/// ```
/// use luapool::{Error, Vm, VmConfig};
///
/// let vm = Vm::new(VmConfig::default())?;
/// let err = vm.exec(&luapool::Script::new("bad.lua", "x = = 1")).unwrap_err();
/// assert!(matches!(err, Error::Syntax { ref chunk, line: Some(1), .. } if chunk == "bad.lua"));
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The script does not compile.
    #[error("{chunk}:{}: {message}", line.map_or_else(|| "?".to_string(), |l| l.to_string()))]
    Syntax {
        /// Name of the chunk (the script's file name or given name).
        chunk: String,
        /// Line of the error, when Lua reported one.
        line: Option<u32>,
        /// Lua's message, without the `chunk:line:` prefix.
        message: String,
    },
    /// The script raised an error while running (`error(...)`, a failed operation, or an
    /// error returned by a host function).
    #[error("{message}")]
    Runtime {
        /// The error message; for errors raised in Lua it starts with `chunk:line:`. For
        /// a table raised as the error, its `__tostring`, or `table: 0x…`.
        message: String,
        /// The Lua stack traceback at the point of the error, when available.
        traceback: Option<String>,
        /// The table the script raised as the error (`error({code = 42})`), converted;
        /// see [`Error::value`].
        value: Option<Box<Value>>,
    },
    /// The VM's memory limit was exceeded.
    #[error("memory limit exceeded{}", limit.map(|l| format!(" (limit {l} bytes)")).unwrap_or_default())]
    MemoryLimit {
        /// The configured limit in bytes, when known.
        limit: Option<usize>,
    },
    /// A host function, or the conversion of an execution's results, would copy more
    /// bytes out of the VM than one call may (what the VM may still allocate under its
    /// memory limit, or [`CopyBudget::DEFAULT_LIMIT`](crate::CopyBudget::DEFAULT_LIMIT) without one);
    /// see [`CopyBudget`](crate::CopyBudget). Nothing was copied past the limit.
    #[error("host copy limit exceeded (limit {limit} bytes)")]
    CopyLimit {
        /// The bytes one call may copy.
        limit: usize,
    },
    /// The execution used more CPU time than its limit.
    #[error("cpu time limit exceeded (limit {limit:?})")]
    CpuLimit {
        /// The configured limit.
        limit: Duration,
    },
    /// The execution ran more instructions than its budget.
    #[error("instruction limit exceeded (budget {budget})")]
    InstructionLimit {
        /// The configured budget.
        budget: u64,
    },
    /// The execution did not finish within its wall-clock timeout.
    #[error("execution timed out after {limit:?}")]
    Timeout {
        /// The configured timeout.
        limit: Duration,
    },
    /// A value could not be converted between Lua and Rust.
    #[error("conversion error: {message}")]
    Conversion {
        /// What could not be converted and why.
        message: String,
    },
    /// A global function that was called does not exist.
    #[error("global function '{name}' is not defined")]
    FunctionNotFound {
        /// Name of the missing function.
        name: String,
    },
    /// A Lua function given to [`Vm::call_function`](crate::Vm::call_function) belongs to
    /// another Lua state: another VM's, or one the VM replaced since the function was
    /// made.
    #[error(
        "the function belongs to another Lua state (another VM, or one this VM has replaced since)"
    )]
    ForeignFunction,
    /// A script file could not be read.
    #[error("cannot read '{path}': {source}")]
    Io {
        /// The path that was read.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// A pool has no free VM or worker and its queue is full (`try_` calls, or a full
    /// queue).
    #[error("pool is busy: {what}")]
    Busy {
        /// What was exhausted, e.g. "all 4 VMs are checked out".
        what: String,
    },
    /// The pool has been closed; it accepts no more work.
    #[error("pool is closed")]
    Closed,
    /// Waiting for a pool (a free VM or a queue slot) took longer than allowed. Distinct
    /// from [`Error::Timeout`], which is about running a script.
    #[error("timed out after {waited:?} waiting for the pool")]
    WaitTimeout {
        /// How long the caller waited.
        waited: Duration,
    },
    /// The worker running a job was lost (its thread died or was replaced because it was
    /// stuck); the job did not complete.
    #[error("worker lost: {reason}")]
    WorkerLost {
        /// What happened to the worker.
        reason: String,
    },
    /// A [`SharedDict`](crate::SharedDict) operation could not be done.
    #[error("shared dict '{dict}': {reason} (key '{key}')")]
    SharedDict {
        /// The dictionary's name.
        dict: String,
        /// The key the operation was about.
        key: String,
        /// What went wrong.
        reason: DictErrorKind,
    },
    /// Any other error reported by the Lua engine.
    #[error("lua engine error: {message}")]
    Engine {
        /// The engine's message.
        message: String,
    },
}

impl Error {
    /// The Lua traceback attached to a runtime error, if any.
    pub fn traceback(&self) -> Option<&str> {
        match self {
            Error::Runtime { traceback, .. } => traceback.as_deref(),
            _ => None,
        }
    }

    /// The table a script raised as its error, converted to a [`Value`]: structured
    /// errors (`error({code = 42, retry = true})`) keep their fields beside the message
    /// and traceback.
    ///
    /// Kept on VMs with limits (any limit, or a time slice: every VM of a
    /// [`WorkerPool`](crate::WorkerPool) and of the HTTP server), whose executions run
    /// under luapool's own message handler; elsewhere, and for a table too large to copy
    /// (see [`CopyBudget`](crate::CopyBudget)), it is `None`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use luapool::{Script, Value, Vm, VmConfig};
    ///
    /// let vm = Vm::new(VmConfig::default().with_timeout(Duration::from_secs(5)))?;
    /// let err = vm.exec(&Script::new("e.lua", "error({ code = 42 })")).unwrap_err();
    /// assert_eq!(err.value().and_then(|v| v.get("code")), Some(&Value::Integer(42)));
    /// # Ok::<(), luapool::Error>(())
    /// ```
    pub fn value(&self) -> Option<&Value> {
        match self {
            Error::Runtime { value, .. } => value.as_deref(),
            _ => None,
        }
    }

    /// The table a script raised as its error (see [`value`](Error::value)), converted
    /// to `T` through serde: `None` when there is none, `Some(Err(..))` when it does not
    /// fit `T`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use luapool::{Script, Vm, VmConfig};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Refusal { code: u16 }
    ///
    /// let vm = Vm::new(VmConfig::default().with_timeout(Duration::from_secs(5)))?;
    /// let err = vm.exec(&Script::new("e.lua", "error({ code = 429 })")).unwrap_err();
    /// let refusal: Refusal = err.value_as().expect("a table error")?;
    /// assert_eq!(refusal.code, 429);
    /// # Ok::<(), luapool::Error>(())
    /// ```
    pub fn value_as<T: serde::de::DeserializeOwned>(&self) -> Option<Result<T>> {
        self.value().map(|v| v.clone().deserialize())
    }

    pub(crate) fn conversion(message: impl Into<String>) -> Self {
        Error::Conversion {
            message: message.into(),
        }
    }
}

/// Splits a message of the form `chunk:line: text` into its parts.
fn split_location(msg: &str) -> Option<(&str, u32, &str)> {
    // The chunk name may itself contain ':' (Windows paths, `[string "a:b"]`), so scan for
    // the first ":<digits>:" that is followed by a space.
    let bytes = msg.as_bytes();
    let mut i = 0;
    while let Some(pos) = msg[i..].find(':') {
        let start = i + pos;
        let digits_end = bytes[start + 1..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map(|p| start + 1 + p);
        if let Some(end) = digits_end {
            if end > start + 1 && bytes[end] == b':' {
                if let Ok(line) = msg[start + 1..end].parse() {
                    let rest = msg[end + 1..].strip_prefix(' ').unwrap_or(&msg[end + 1..]);
                    return Some((&msg[..start], line, rest));
                }
            }
        }
        i = start + 1;
    }
    None
}

/// Longest chunk name Lua shows whole in messages (`LUA_IDSIZE` is 60, counting the `@` of
/// the chunk name and the final NUL).
const SHOWN_NAME_MAX: usize = 59;
/// How many trailing bytes of a longer name Lua shows, after `...`.
const SHOWN_NAME_TAIL: usize = 56;

/// Splits `name:line: text`, a message about the chunk `name`, into line and text.
///
/// The known name is stripped rather than searched for, so names holding `:<digits>:`
/// (`tenant:7:handler`) or drive letters (`C:\jobs\a.lua`) do not fool it. Lua shortens
/// long names to `...` and their tail, which is matched too.
fn strip_chunk_location<'m>(msg: &'m str, name: &str) -> Option<(u32, &'m str)> {
    let name = name.as_bytes();
    let bytes = msg.as_bytes();
    let rest_at = if name.len() <= SHOWN_NAME_MAX {
        bytes.starts_with(name).then_some(name.len())?
    } else {
        let tail = &name[name.len() - SHOWN_NAME_TAIL..];
        (bytes.starts_with(b"...") && bytes[3..].starts_with(tail))
            .then_some(3 + SHOWN_NAME_TAIL)?
    };
    let rest = msg.get(rest_at..)?.strip_prefix(':')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let line = rest.get(..digits)?.parse().ok()?;
    let text = rest.get(digits..)?.strip_prefix(':')?;
    Some((line, text.strip_prefix(' ').unwrap_or(text)))
}

/// Splits mlua's "message\nstack traceback:\n..." into message and traceback.
fn split_traceback(msg: &str) -> (String, Option<String>) {
    match msg.find("\nstack traceback:") {
        Some(pos) => (
            msg[..pos].to_string(),
            Some(clean_traceback(&msg[pos + 1..])),
        ),
        None if msg.starts_with("stack traceback:") => (String::new(), Some(clean_traceback(msg))),
        None => (msg.to_string(), None),
    }
}

/// Drops the frames of luapool's own Lua helpers (chunk `luapool`) and the anonymous C
/// frames of the error machinery, which say nothing about the script.
fn clean_traceback(tb: &str) -> String {
    // The execution's prologue appends the traceback taken where the error was raised;
    // mlua appends another, from where the error left the execution: keep the first, and
    // not its last frames, which are the prologue's own `xpcall`.
    let first = match tb.match_indices("\nstack traceback:").next() {
        Some((pos, _)) if tb.starts_with("stack traceback:") => &tb[..pos],
        _ => tb,
    };
    let mut frames: Vec<&str> = first
        .lines()
        .filter(|line| {
            let frame = line.trim_start();
            !(frame.starts_with("luapool:") || frame == "[C]: in ?")
        })
        .collect();
    while let Some(last) = frames.last().map(|l| l.trim_start()) {
        if last == "[C]: in function 'xpcall'" || last == "(...tail calls...)" {
            frames.pop();
        } else {
            break;
        }
    }
    frames.join("\n")
}

/// Finds the first Lua frame (`chunk:line:`) in a traceback, skipping `[C]` frames.
fn first_lua_location(traceback: &str) -> Option<&str> {
    traceback.lines().skip(1).map(str::trim).find_map(|line| {
        if line.starts_with("[C]") || line.starts_with("(...") {
            return None;
        }
        let (chunk, l, _) = split_location(line)?;
        let end = chunk.len() + 1 + l.to_string().len();
        Some(&line[..end])
    })
}

/// Converts an mlua error into a luapool error. The only place that inspects mlua errors.
///
/// `chunk` names the script whose compilation failed (for syntax errors).
pub(crate) fn classify(err: mlua::Error, chunk: Option<&str>) -> Error {
    match err {
        mlua::Error::SyntaxError { message, .. } => match chunk
            .and_then(|c| strip_chunk_location(&message, c))
            .or_else(|| split_location(&message).map(|(_, line, text)| (line, text)))
        {
            Some((line, text)) => Error::Syntax {
                chunk: chunk.map_or_else(|| "?".to_string(), str::to_string),
                line: Some(line),
                message: text.to_string(),
            },
            None => Error::Syntax {
                chunk: chunk.map_or_else(|| "?".to_string(), str::to_string),
                line: None,
                message,
            },
        },
        mlua::Error::RuntimeError(msg) => {
            let (message, traceback) = split_traceback(&msg);
            Error::Runtime {
                message,
                traceback,
                value: None,
            }
        }
        mlua::Error::MemoryError(_) => Error::MemoryLimit { limit: None },
        mlua::Error::CallbackError { traceback, cause } => {
            let inner = classify((*cause).clone(), chunk);
            match inner {
                Error::Runtime {
                    message,
                    traceback: inner_tb,
                    value,
                } => {
                    // An error raised by a host function has no position: take the first
                    // Lua frame of the traceback so the message names file and line.
                    let message = match first_lua_location(&traceback) {
                        Some(loc) if split_location(&message).is_none() => {
                            format!("{loc}: {message}")
                        }
                        _ => message,
                    };
                    Error::Runtime {
                        message,
                        traceback: inner_tb.or(Some(traceback)),
                        value,
                    }
                }
                other => other,
            }
        }
        mlua::Error::ExternalError(e) => match e.downcast_ref::<Error>() {
            Some(inner) => inner.clone(),
            None => Error::Runtime {
                message: e.to_string(),
                traceback: None,
                value: None,
            },
        },
        mlua::Error::WithContext { context, cause } => match classify((*cause).clone(), chunk) {
            Error::Runtime {
                message,
                traceback,
                value,
            } => Error::Runtime {
                message: format!("{context}: {message}"),
                traceback,
                value,
            },
            other => other,
        },
        mlua::Error::FromLuaConversionError { .. } => Error::Conversion {
            message: err.to_string(),
        },
        mlua::Error::BadArgument { .. } => Error::Runtime {
            message: err.to_string(),
            traceback: None,
            value: None,
        },
        other => Error::Engine {
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static_clone() {
        fn check<T: Send + Sync + 'static + Clone + std::error::Error>() {}
        check::<Error>();
    }

    #[test]
    fn splits_location() {
        assert_eq!(
            split_location("a.lua:12: boom"),
            Some(("a.lua", 12, "boom"))
        );
        assert_eq!(
            split_location("C:\\x\\a.lua:3: oops: 4"),
            Some(("C:\\x\\a.lua", 3, "oops: 4"))
        );
        assert_eq!(split_location("no location"), None);
    }

    #[test]
    fn strips_the_known_chunk_name() {
        assert_eq!(
            strip_chunk_location("tenant:7:handler:3: unexpected symbol", "tenant:7:handler"),
            Some((3, "unexpected symbol"))
        );
        assert_eq!(
            strip_chunk_location("C:\\jobs\\a.lua:2: oops: 4", "C:\\jobs\\a.lua"),
            Some((2, "oops: 4"))
        );
        assert_eq!(strip_chunk_location("other.lua:2: x", "a.lua"), None);
        let long = format!("{}:9:{}", "d/".repeat(30), "x.lua");
        let shown = format!("...{}:4: boom", &long[long.len() - SHOWN_NAME_TAIL..]);
        assert_eq!(strip_chunk_location(&shown, &long), Some((4, "boom")));
    }

    #[test]
    fn cleans_helper_frames() {
        let tb = "stack traceback:\n\t[C]: in ?\n\t[C]: in function 'error'\n\tluapool:4: in function <luapool:3>\n\tt.lua:1: in main chunk";
        assert_eq!(
            clean_traceback(tb),
            "stack traceback:\n\t[C]: in function 'error'\n\tt.lua:1: in main chunk"
        );
    }

    #[test]
    fn finds_first_lua_frame() {
        let tb = "stack traceback:\n\t[C]: in function 'hf'\n\tt.lua:2: in main chunk";
        assert_eq!(first_lua_location(tb), Some("t.lua:2"));
    }
}
