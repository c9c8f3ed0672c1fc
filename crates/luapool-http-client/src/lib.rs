//! # luapool-http-client: `http.request` for luapool's scripts
//!
//! `http.request{ method, url, headers, body, timeout }`: an async HTTP client for Lua
//! scripts on [`luapool`] VMs, on reqwest with rustls (HTTP/1.1 and HTTP/2). The HTTP
//! server (`luapool-http`) gives it to its handlers and `luapool run` to its scripts;
//! an embedder adds it to its own VMs with [`register`], without the server.
//!
//! ```
//! let vm = luapool::Vm::new(luapool::VmConfig::default())?;
//! luapool_http_client::register(&vm)?;
//! let t: String = vm.eval(&luapool::Script::new("t", "return type(http.request)"))?;
//! assert_eq!(t, "function");
//! # Ok::<(), luapool::Error>(())
//! ```
//!
//! Returns `{ status = 200, headers = { ... }, body = "..." }`, or `nil, message` when
//! the request fails (connection refused, timeout, too large a response). Bad arguments
//! are Lua errors. Response header names are lower case; a repeated header is an array.
//! A request made by an execution that has an id (`luapool::ExecOptions::with_id`; the
//! server gives each request's its request id) carries it as `x-request-id`, unless the
//! script sets that header itself. The request is async: the script waits, its thread does not, so the VM must run on
//! a tokio runtime with IO and time enabled (the `_async` calls of [`luapool::Vm`]).
//!
//! What the request copies out of the VM (url, headers, body) is charged to one
//! [`CopyBudget`]; the response body is read up to the budget left (at most
//! [`MAX_RESPONSE_BYTES`]). There is no destination policy: scripts can reach any
//! address the host can, loopback included.

#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

use std::cell::OnceCell;
use std::time::Duration;

use luapool::mlua::{self, FromLuaMulti, Lua, MultiValue};
use luapool::{CopyBudget, HostError, HostResult, Module, Value};

/// Longest a request may take when the script gives no `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read; larger responses fail with `nil, message`.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

thread_local! {
    /// One client per thread: its connection pool lives on that thread's runtime.
    static CLIENT: OnceCell<reqwest::Client> = const { OnceCell::new() };
}

fn client() -> HostResult<reqwest::Client> {
    CLIENT.with(|cell| {
        if let Some(c) = cell.get() {
            return Ok(c.clone());
        }
        let c = reqwest::Client::builder()
            .user_agent(concat!("luapool/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HostError::new(format!("http.request: cannot build a client: {e}")))?;
        Ok(cell.get_or_init(|| c).clone())
    })
}

/// What a script asked for, read from its arguments before the request starts.
struct Spec {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
    /// Largest response body accepted.
    max_response: usize,
}

/// The argument of `http.request`, parsed where the VM is at hand (for its
/// [`CopyBudget`]).
struct Request(HostResult<Spec>);

impl FromLuaMulti for Request {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        let arg = values.into_iter().next().unwrap_or(mlua::Value::Nil);
        let mut budget = CopyBudget::for_lua(lua);
        let spec = parse(arg, &mut budget).map(|mut spec| {
            spec.max_response = budget.left().min(MAX_RESPONSE_BYTES);
            spec
        });
        Ok(Request(spec))
    }
}

/// Adds the `http` module (`http.request`) to `vm`.
///
/// # Errors
/// As [`luapool::Vm::register_module`].
pub fn register(vm: &luapool::Vm) -> luapool::Result<()> {
    vm.register_module(module())
}

/// The `http` module, for [`luapool::Vm::register_module`] (what [`register`] adds).
pub fn module() -> Module {
    Module::new("http").async_function("request", |Request(spec)| {
        // Read while the calling execution runs: its id travels as `x-request-id`.
        let id = luapool::Context::id();
        async move {
            let mut spec = spec?;
            if let Some(id) = id {
                if !spec
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case(REQUEST_ID))
                {
                    spec.headers
                        .push((REQUEST_ID.to_string(), id.as_bytes().to_vec()));
                }
            }
            Ok(match send(spec).await {
                Ok(reply) => (reply, None),
                Err(message) => (Value::Nil, Some(message)),
            })
        }
    })
}

/// The header that carries the calling execution's id (see `luapool::Context::id`),
/// unless the script sets it itself.
const REQUEST_ID: &str = "x-request-id";

fn parse(arg: mlua::Value, budget: &mut CopyBudget) -> HostResult<Spec> {
    let bad = |what: &str| HostError::new(format!("http.request: {what}"));
    let over = |e: luapool::Error| HostError::new(format!("http.request: {e}"));
    let t = match arg {
        mlua::Value::String(url) => {
            let url = url.to_str().map_err(|_| bad("the url must be UTF-8"))?;
            budget.charge(url.len()).map_err(over)?;
            return Ok(Spec {
                method: reqwest::Method::GET,
                url: url.to_string(),
                headers: Vec::new(),
                body: None,
                timeout: DEFAULT_TIMEOUT,
                max_response: MAX_RESPONSE_BYTES,
            });
        }
        mlua::Value::Table(t) => t,
        other => {
            return Err(bad(&format!(
                "expected a table {{ url = ..., method = ... }} or a url string, got {}",
                other.type_name()
            )))
        }
    };
    let mut text = |key: &str| -> HostResult<Option<String>> {
        match t.raw_get::<mlua::Value>(key).map_err(HostError::from)? {
            mlua::Value::Nil => Ok(None),
            mlua::Value::String(s) => {
                let s = s
                    .to_str()
                    .map_err(|_| bad(&format!("`{key}` must be UTF-8")))?;
                budget.charge(s.len()).map_err(over)?;
                Ok(Some(s.to_string()))
            }
            other => Err(bad(&format!(
                "`{key}` must be a string, got {}",
                other.type_name()
            ))),
        }
    };
    let url = text("url")?.ok_or_else(|| bad("`url` is required"))?;
    let method = match text("method")? {
        None => reqwest::Method::GET,
        Some(m) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| bad(&format!("'{m}' is not an HTTP method")))?,
    };
    let body = match t.raw_get::<mlua::Value>("body").map_err(HostError::from)? {
        mlua::Value::Nil => None,
        mlua::Value::String(s) => Some(budget.copy(&s.as_bytes()).map_err(over)?),
        other => {
            return Err(bad(&format!(
                "`body` must be a string, got {}",
                other.type_name()
            )))
        }
    };
    let timeout = match t
        .raw_get::<mlua::Value>("timeout")
        .map_err(HostError::from)?
    {
        mlua::Value::Nil => DEFAULT_TIMEOUT,
        mlua::Value::Integer(n) if n > 0 => Duration::from_secs(n as u64),
        mlua::Value::Number(n) if n > 0.0 && n < 1e9 => Duration::from_secs_f64(n),
        _ => return Err(bad("`timeout` must be a positive number of seconds")),
    };
    let mut headers = Vec::new();
    match t
        .raw_get::<mlua::Value>("headers")
        .map_err(HostError::from)?
    {
        mlua::Value::Nil => {}
        mlua::Value::Table(h) => {
            for pair in h.pairs::<mlua::Value, mlua::Value>() {
                let (k, v) = pair.map_err(HostError::from)?;
                match (k, v) {
                    (mlua::Value::String(k), mlua::Value::String(v)) => {
                        let k = k.to_str().map_err(|_| bad("header names must be UTF-8"))?;
                        budget.charge(k.len()).map_err(over)?;
                        headers.push((k.to_string(), budget.copy(&v.as_bytes()).map_err(over)?));
                    }
                    _ => return Err(bad("`headers` must map strings to strings")),
                }
            }
        }
        _ => return Err(bad("`headers` must be a table")),
    }
    Ok(Spec {
        method,
        url,
        headers,
        body,
        timeout,
        max_response: MAX_RESPONSE_BYTES,
    })
}

async fn send(spec: Spec) -> Result<Value, String> {
    let client = client().map_err(|e| e.to_string())?;
    let mut request = client.request(spec.method, &spec.url).timeout(spec.timeout);
    for (name, value) in spec.headers {
        request = request.header(name, value);
    }
    if let Some(body) = spec.body {
        request = request.body(body);
    }
    let mut response = request.send().await.map_err(describe)?;
    let status = i64::from(response.status().as_u16());
    let mut headers: Vec<(Value, Value)> = Vec::new();
    for (name, value) in response.headers() {
        let key = Value::from(name.as_str());
        let value = Value::String(value.as_bytes().to_vec());
        match headers.iter_mut().find(|(k, _)| *k == key) {
            Some((_, Value::Array(list))) => list.push(value),
            Some((_, first)) => *first = Value::Array(vec![std::mem::take(first), value]),
            None => headers.push((key, value)),
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > spec.max_response {
            return Err(format!(
                "the response body is larger than {} bytes",
                spec.max_response
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Value::Map(vec![
        (Value::from("status"), Value::Integer(status)),
        (Value::from("headers"), Value::Map(headers)),
        (Value::from("body"), Value::String(body)),
    ]))
}

/// A one-line description of a client error, with its cause.
fn describe(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
