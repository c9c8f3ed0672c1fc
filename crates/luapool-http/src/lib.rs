//! # luapool-http: an HTTP server whose request handlers are Lua
//!
//! Built on [`luapool`]'s sandboxed VMs and hyper. An app is a Lua file that defines a
//! global function `handle(req)`:
//!
//! ```lua
//! local json = require("json")
//! function handle(req)
//!   -- req.method, req.path, req.query, req.headers, req.body, req.remote_addr, req.id
//!   -- req.raw_path, req.raw_query, req.cookies; req:query_all(k), req:header_all(k), req:form(), req:json()
//!   return { status = 200, headers = { ["content-type"] = "application/json" },
//!            body = json.encode({ path = req.path }) }
//! end
//! ```
//!
//! [`Server::start`] serves it on N workers. Each worker is an OS thread with a
//! current-thread tokio runtime that accepts connections, serves them with hyper and
//! runs their handlers on its own VM, so a request never crosses threads. Each request
//! runs as its own coroutine with its own globals; per-worker state lives in modules.
//!
//! | handler outcome | status |
//! |---|---|
//! | a reply | the reply's |
//! | a Lua error, a bad reply, the memory limit | `500` (the VM is rebuilt after a memory-limit hit) |
//! | the request timeout or the CPU limit | `504` |
//! | every slot of the worker busy and its queue full | `503` with `Retry-After` |
//! | a body over `max_body_size` | `413` |
//! | a body not received within `body_read_timeout` | `408` |
//! | an HTTP/1.1 request without `Host`, or with two | `400` |
//!
//! The host library of handlers adds to luapool's (`sleep`, `json`, `log`, `time`):
//! `http.request{...}` (an async client, from the `luapool-http-client` crate, see
//! [`register_host_library`]) and `shared.NAME` (dictionaries shared by all workers,
//! see [`ServerConfig::shared_dicts`]).
//!
//! Inside, a worker's modules each do one job (start-up, connections, admission, the
//! request, the reply, the VM); a worker keeps its VM in a [`luapool::LiveVm`], as the
//! core crate's worker pool does.

#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod app;
mod body;
mod compress;
mod config;
mod error;
mod intake;
mod lua_modules;
mod metrics;
mod ratelog;
mod request;
mod response;
mod server;
mod static_cache;
mod static_files;
mod status;
mod timeouts;
mod tls;
mod worker;

pub use config::{parse_listen, DictBackend, ServerConfig, SharedDictSpec};
pub use error::{Error, Result};
pub use server::{Server, ServerShutdownSummary};
pub use status::status_for;
pub use tls::TlsConfig;

/// Adds the server's host library that needs no server to a [`luapool::Vm`]: the `http`
/// module (`http.request{ method, url, headers, body, timeout }`), which lives in the
/// `luapool-http-client` crate ([`luapool_http_client::register`]): a program that
/// wants the client without the server (as `luapool run` does) depends on that crate;
/// and the modules written in Lua that `require` gives handlers: `luapool.router`
/// (routes and middleware) and `luapool.response` (redirects, cookies).
///
/// ```
/// let vm = luapool::Vm::new(luapool::VmConfig::default())?;
/// luapool_http::register_host_library(&vm)?;
/// let t: String = vm.eval(&luapool::Script::new("t", "return type(http.request)"))?;
/// assert_eq!(t, "function");
/// # Ok::<(), luapool::Error>(())
/// ```
///
/// # Errors
/// As [`luapool::Vm::register_module`].
pub fn register_host_library(vm: &luapool::Vm) -> luapool::Result<()> {
    luapool_http_client::register(vm)?;
    lua_modules::register(vm)
}
