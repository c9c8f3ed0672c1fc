//! # luapool: sandboxed, isolated Lua VMs for Rust services
//!
//! luapool runs Lua (vendored through [`mlua`]: Lua 5.4 by default, Lua 5.5 or LuaJIT 2.1
//! with the `lua55` or `luajit` feature, one engine per build, named by [`ENGINE`]) on VMs
//! that are safe to hand to other people's scripts:
//!
//! - **Sandboxed by default.** A [`Vm`] is built from an allow-list of the standard library
//!   (no `io`, no `os.execute`, no binary chunks, no `debug` but `debug.traceback`), and
//!   its library tables are read-only. See [`sandbox`](crate#the-sandbox).
//! - **Isolated.** With the default [`Isolation::PerExecution`], every execution gets fresh
//!   globals over a sealed base, even when many executions interleave on one VM as
//!   coroutines. State that should persist lives in modules loaded with `require`.
//! - **Host functions, sync and async.** [`Vm::register`] and [`Vm::register_async`] expose
//!   Rust functions; an async one makes the calling coroutine yield while the future runs.
//! - **Values that cross threads.** [`Value`] is a `Send` copy of Lua data, convertible to
//!   and from `serde_json::Value`.
//! - **Shared dictionaries.** [`SharedDicts`] are key/value stores (LRU, with expiry)
//!   shared by every VM of the process, which scripts use as `shared.<name>:get(key)`,
//!   like OpenResty's `lua_shared_dict`; see [`Vm::register_shared_dicts`].
//!
//! ```
//! use luapool::{Script, Value, Vm, VmConfig};
//!
//! let vm = Vm::new(VmConfig::default())?;
//! vm.register("greet", |name: String| Ok(format!("hello, {name}")))?;
//!
//! let script = Script::new("hello.lua", r#"
//!     count = (count or 0) + 1          -- a global: fresh in every execution
//!     return greet("lua"), count
//! "#);
//! assert_eq!(vm.exec(&script)?, vec![Value::from("hello, lua"), Value::Integer(1)]);
//! assert_eq!(vm.exec(&script)?, vec![Value::from("hello, lua"), Value::Integer(1)]);
//! # Ok::<(), luapool::Error>(())
//! ```
//!
//! ## The sandbox
//!
//! | scripts get | scripts do not get |
//! |---|---|
//! | base functions, `load` (text only), `collectgarbage("count")`, `print` (to the host's writer), `require` (host modules and configured directories) | `dofile`, `loadfile`, binary chunks, other `collectgarbage` options |
//! | `string` (no `dump`), `table`, `math`, `utf8`, `coroutine` | `string.dump` |
//! | `os.time/clock/date/difftime`, `debug.traceback` | the rest of `os`, `io`, `package`, `debug` |
//! | `sleep`, `json`, `log`, `time` (the host library) | |
//! | `codec` (base64, hex, URL encoding) and `crypto` (`sha256`, `hmac_sha256`, `random_bytes`), also host library | |
//! | `shared` (when the host registers [`SharedDicts`]) | |
//!
//! [`VmConfig::trusted`] makes a VM the `lua` interpreter (its own globals, the full standard
//! library, Lua's `require`) for scripts the operator owns, limits included.
//!
//! ## Limits
//!
//! Every limit but the host-copy bound is off by default and set on [`VmConfig`]:
//!
//! | limit | set with | error |
//! |---|---|---|
//! | memory, per execution, counted from the VM's size once the sandbox is built (executions interleaved on a VM may together hold 1.5×) | [`VmConfig::memory_limit`] | [`Error::MemoryLimit`] |
//! | CPU time per execution (running, not awaiting) | [`VmConfig::cpu_limit`] | [`Error::CpuLimit`] |
//! | instructions per execution (deterministic, but about 2x slower) | [`VmConfig::instruction_limit`] | [`Error::InstructionLimit`] |
//! | wall-clock time per execution, awaits included (cancels the pending host call) | [`VmConfig::timeout`] | [`Error::Timeout`] |
//! | bytes one call copies out of the VM (results, `json.encode`, `print`, `log`): what the VM may still allocate, or [`CopyBudget::DEFAULT_LIMIT`] | [`VmConfig::memory_limit`] | [`Error::CopyLimit`] (a Lua error inside host functions) |
//!
//! No hook is set while an execution is within its CPU and wall-clock budget, so a
//! CPU-bound script runs as fast as with no limit; a watchdog thread interrupts the
//! thread when the budget runs out. A tripped limit is sticky: `pcall`, `xpcall` and
//! coroutines cannot swallow it, and it covers the coroutines the script creates. A
//! single long call into C (pattern matching on a huge subject, `table.sort` of a huge
//! table) cannot be interrupted: the error comes when it returns, and
//! [`WorkerPoolConfig::stuck_after`] replaces a worker stuck in one. [`Vm::poisoned`]
//! says when a limit may have left state half-updated, so that pools discard the VM; a
//! thread that runs work on one VM of its own keeps it in a [`LiveVm`], which rebuilds
//! it then (the worker pool's workers and the HTTP server's do).
//!
//! ```
//! use std::time::Duration;
//! use luapool::{Error, Script, Vm, VmConfig};
//!
//! let vm = Vm::new(VmConfig::default().with_cpu_limit(Duration::from_millis(20)))?;
//! let spin = Script::new("spin.lua", "pcall(function() while true do end end) return 1");
//! assert!(matches!(vm.exec(&spin), Err(Error::CpuLimit { .. })));
//! assert_eq!(vm.poisoned(), None); // per-execution globals, no modules: nothing half-done
//! assert_eq!(vm.eval::<i64>(&Script::new("ok.lua", "return 2"))?, 2);
//! # Ok::<(), luapool::Error>(())
//! ```
//!
//! `docs/limits.md` in the repository has the details and the known gaps.
//!
//! ## Features
//!
//! Exactly one engine feature must be enabled (the build fails otherwise):
//!
//! - **`lua54`** (default): Lua 5.4, vendored.
//! - **`lua55`**: Lua 5.5, vendored: `default-features = false, features = ["lua55"]`.
//! - **`luajit`**: LuaJIT 2.1, vendored. Build it with
//!   `TARGET_CFLAGS=-DLUAJIT_ENABLE_CHECKHOOK` (the workspace's `.cargo/config.toml`
//!   does) so that CPU limits can stop JIT-compiled loops.
//!
//! The documentation on docs.rs is built with `lua54`.

#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's examples, compiled and run as doctests (`cargo test -p luapool --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Compile-fail checks of the public types' `Send` and `Sync`.
#[cfg(doctest)]
mod compile_fail;

mod checkout;
mod config;
mod context;
mod copy_budget;
mod engine;
mod error;
mod exec_options;
mod host;
mod hostlib;
mod limits;
mod live_vm;
mod log_line;
mod lua_helpers;
mod sandbox;
mod script;
mod shared_dict;
#[doc(hidden)]
pub mod string_table;
mod value;
mod vm;
mod worker_pool;

pub use checkout::{
    CheckoutPool, CheckoutPoolBuilder, CheckoutPoolConfig, CheckoutPoolStatus, VmGuard,
};
pub use config::{Isolation, VmConfig};
pub use context::Context;
pub use copy_budget::CopyBudget;
pub use engine::ENGINE;
pub use error::{Error, Result};
pub use exec_options::ExecOptions;
pub use host::{HostError, HostResult, Module};
pub use hostlib::json_decode;
pub use limits::LimitKind;
pub use live_vm::{Healed, LiveVm};
pub use log_line::LogOutput;
pub use script::Script;
pub use shared_dict::{
    DictErrorKind, DictNumber, DictValue, SharedDict, SharedDictConfig, SharedDicts,
};
pub use value::{Serde, Value};
pub use vm::{ExecFuture, Execution, Poison, Vm};
pub use worker_pool::{
    HistogramSnapshot, Job, JobArgs, JobFuture, ShutdownSummary, WorkerPool, WorkerPoolBuilder,
    WorkerPoolConfig, WorkerPoolStatus,
};

/// Size parsing (`"64MiB"`) for luapool's own crates (the server's config, the CLI's
/// flags); not part of the API.
#[doc(hidden)]
pub use config::bytes;
/// Duration parsing (`"500ms"`, `2`) for luapool's own crates; not part of the API.
#[doc(hidden)]
pub use config::duration;

/// The mlua crate luapool is built on.
///
/// luapool's signatures use mlua's conversion traits (`FromLuaMulti` and `IntoLuaMulti`
/// for host-function arguments and typed results) and its types (`Lua`, `Table`) for
/// host code written against the state, so luapool re-exports the mlua it is built
/// with: use `luapool::mlua` rather than a separate mlua dependency, and the two always
/// match. The price, stated here as the crate's policy: moving to a new mlua 0.x is a
/// breaking luapool release.
pub use mlua;
