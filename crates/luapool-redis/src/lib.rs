//! # luapool-redis: Redis for luapool's scripts
//!
//! State that many luapool processes share (rate-limit counters, sessions, caches,
//! locks) cannot live in one process's shared dictionaries. This crate gives scripts on
//! [`luapool`] VMs a Redis client, and dictionaries stored in Redis with the API of
//! the in-process ones:
//!
//! - the `redis` module ([`register`], [`Redis::module`]): `redis.call("INCR", key)` (or
//!   `redis.incr(key)`, for two dozen common commands),
//!   `redis.pipeline(commands [, { atomic = true }])` (a transaction when atomic),
//!   `redis.eval(script, keys, args)` (`EVALSHA`, then `EVAL` the first time), and
//!   `redis.subscribe(channels, timeout [, { max = n, pattern = true }])`;
//! - shared dictionaries backed by Redis ([`Redis::dict`]): `shared.NAME:get(key)` and
//!   the other methods of [`luapool::SharedDicts`], with `incr` and `add` atomic across
//!   processes.
//!
//! Replies are converted as Redis's own Lua scripting converts them: integer → integer,
//! bulk string → string, array → array, nil → `false`, status → `{ ok = "OK" }`, error
//! (inside an array) → `{ err = "..." }`. A command that gets an error reply, or no reply
//! (Redis down, a timeout, no free connection), returns `nil, message`; bad arguments
//! are Lua errors.
//!
//! ```no_run
//! use luapool::{Script, Vm, VmConfig};
//! use luapool_redis::{Redis, RedisConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let redis = Redis::new(RedisConfig::new("redis://127.0.0.1:6379/0"))?;
//! let vm = Vm::new(VmConfig::default())?;
//! luapool_redis::register(&vm, &redis)?;
//! let n: i64 = vm.eval_async(&Script::new("t", "return redis.call('INCR', 'hits')")).await?;
//! assert!(n >= 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! One [`Redis`] per process, shared by every VM it is registered on: at most
//! `pool_size` calls in flight, each on a connection of its own, connections kept idle
//! per runtime (so that a reply is read on the thread that waits for it). The functions are async: the
//! script waits, its thread does not, so scripts must run as async executions (the
//! `_async` calls of [`luapool::Vm`], or a worker pool's jobs) on a tokio runtime with
//! time enabled. What a call copies out of the VM is charged to its
//! [`luapool::CopyBudget`], and a reply is converted only if it fits in what the VM may
//! still allocate (at most [`MAX_REPLY_BYTES`]).

#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's examples, compiled (not run: they need a server) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod config;
mod dict;
mod module;
mod pool;
mod reply;

pub use config::RedisConfig;
pub use dict::RedisDictConfig;
pub use pool::{PoolStatus, Redis};
pub use reply::MAX_REPLY_BYTES;

/// The errors of building a pool or checking the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value that cannot be used.
    #[error("{message}")]
    Config {
        /// What is wrong, naming the key.
        message: String,
    },
    /// The pool's IO thread could not start.
    #[error("cannot start the redis IO thread: {message}")]
    Runtime {
        /// The reason.
        message: String,
    },
    /// The server did not answer.
    #[error("redis is unavailable: {message}")]
    Unavailable {
        /// The reason.
        message: String,
    },
    /// A dictionary could not be added.
    #[error(transparent)]
    Luapool(#[from] luapool::Error),
}

/// Adds the `redis` module ([`Redis::module`]) to `vm`.
///
/// # Errors
/// As [`luapool::Vm::register_module`].
pub fn register(vm: &luapool::Vm, redis: &Redis) -> luapool::Result<()> {
    vm.register_module(redis.module())
}
