//! # luapool: sandboxed, isolated Lua VMs for Rust services
//!
//! luapool runs Lua 5.4 (vendored through [`mlua`]) on VMs that are safe to hand to
//! other people's scripts:
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
//! | `shared` (when the host registers [`SharedDicts`]) | |
//!
//! [`VmConfig::trusted`] opens the full standard library for scripts the operator owns.

#![doc(test(attr(deny(warnings))))]

mod checkout;
mod config;
mod engine;
mod error;
mod host;
mod hostlib;
mod limits;
mod sandbox;
mod script;
mod shared_dict;
mod value;
mod vm;
mod worker_pool;

pub use checkout::*;
pub use config::{bytes, Isolation, VmConfig};
pub use engine::ENGINE;
pub use error::{Error, Result};
pub use host::{HostError, HostResult, Module};
pub use script::Script;
pub use shared_dict::{
    DictErrorKind, DictNumber, DictValue, SharedDict, SharedDictConfig, SharedDicts,
};
pub use value::{Value, MAX_DEPTH, MAX_ITEMS};
pub use vm::{Poison, Vm};
pub use worker_pool::*;

/// The mlua crate luapool is built on, for host functions that need its types.
pub use mlua;
