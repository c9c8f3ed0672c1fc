//! The `redis` module scripts see: `redis.call`, `redis.pipeline`, `redis.eval`,
//! `redis.subscribe`.

use std::sync::Arc;
use std::time::Duration;

use luapool::mlua::{self, FromLuaMulti, Lua, MultiValue, Variadic};
use luapool::{CopyBudget, HostError, HostResult, Module, Value};

use crate::pool::{Failure, Inner};
use crate::reply::{self, arg};
use crate::Redis;

/// Commands `redis.call` refuses: they change the state of the connection, which the
/// next script to use it would inherit, or turn it into a subscriber.
const REFUSED: &[(&str, &str)] = &[
    ("MULTI", "use redis.pipeline(commands, { atomic = true })"),
    ("EXEC", "use redis.pipeline(commands, { atomic = true })"),
    ("DISCARD", "use redis.pipeline(commands, { atomic = true })"),
    (
        "WATCH",
        "connections are pooled; use redis.eval for check-and-set",
    ),
    (
        "UNWATCH",
        "connections are pooled; use redis.eval for check-and-set",
    ),
    ("SUBSCRIBE", "use redis.subscribe"),
    ("PSUBSCRIBE", "use redis.subscribe"),
    ("SSUBSCRIBE", "use redis.subscribe"),
    ("UNSUBSCRIBE", "use redis.subscribe"),
    ("PUNSUBSCRIBE", "use redis.subscribe"),
    ("SUNSUBSCRIBE", "use redis.subscribe"),
    ("MONITOR", "not available to scripts"),
    (
        "SELECT",
        "connections are pooled; set the database in [redis] url",
    ),
    (
        "AUTH",
        "connections are pooled; set the credentials in [redis] url",
    ),
    ("HELLO", "connections are pooled"),
    ("RESET", "connections are pooled"),
    ("QUIT", "connections are pooled"),
    ("CLIENT", "connections are pooled"),
];

/// Most messages `redis.subscribe` collects in one call.
const MAX_MESSAGES: usize = 10_000;

/// A command: its name and arguments, or why the script's arguments are not one.
fn command(
    values: impl IntoIterator<Item = mlua::Value>,
    budget: &mut CopyBudget,
    what: &str,
) -> HostResult<redis::Cmd> {
    let mut values = values.into_iter();
    let name = match values.next() {
        Some(mlua::Value::String(s)) => s.to_str().map(|s| s.to_string()).ok(),
        _ => None,
    }
    .ok_or_else(|| HostError::new(format!("{what}: the first argument must be a command name")))?;
    let upper = name.to_ascii_uppercase();
    if let Some((_, hint)) = REFUSED.iter().find(|(n, _)| *n == upper) {
        return Err(HostError::new(format!(
            "{what}: {upper} is not allowed here ({hint})"
        )));
    }
    budget
        .charge(name.len())
        .map_err(|e| HostError::new(format!("{what}: {e}")))?;
    let mut cmd = redis::cmd(&upper);
    for value in values {
        cmd.arg(arg(&value, budget, what)?);
    }
    Ok(cmd)
}

/// The commands scripts may also call by name, lower case: `redis.incr(key)` is
/// `redis.call("INCR", key)`.
pub(crate) const NAMED: [&str; 24] = [
    "get", "set", "del", "exists", "expire", "pexpire", "ttl", "pttl", "incr", "incrby", "decr",
    "decrby", "mget", "mset", "hget", "hset", "hdel", "hgetall", "hincrby", "lpush", "rpush",
    "lpop", "rpop", "publish",
];

/// What `redis.<name>(...)` copied out of the VM: `NAMED[I]` and the arguments.
struct Named<const I: usize>(HostResult<(redis::Cmd, usize)>);

impl<const I: usize> FromLuaMulti for Named<I> {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        let mut budget = CopyBudget::for_lua(lua);
        let what = format!("redis.{}", NAMED[I]);
        let name = mlua::Value::String(lua.create_string(NAMED[I])?);
        let cmd = command(std::iter::once(name).chain(values), &mut budget, &what);
        Ok(Named(cmd.map(|cmd| (cmd, reply::reply_limit(lua)))))
    }
}

/// Adds `redis.<NAMED[I]>` to `module`.
fn named<const I: usize>(module: Module, inner: &Arc<Inner>) -> Module {
    let inner = Arc::clone(inner);
    module.async_function(NAMED[I], move |Named::<I>(parsed)| {
        let inner = Arc::clone(&inner);
        async move {
            let (cmd, limit) = parsed?;
            Ok(outcome(top_level(inner.query(&cmd).await, limit)))
        }
    })
}

/// What `redis.call` copied out of the VM.
struct Call(HostResult<(redis::Cmd, usize)>);

impl FromLuaMulti for Call {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        let mut budget = CopyBudget::for_lua(lua);
        let cmd = command(values, &mut budget, "redis.call");
        Ok(Call(cmd.map(|cmd| (cmd, reply::reply_limit(lua)))))
    }
}

/// What `redis.pipeline` copied out of the VM.
struct Pipeline(HostResult<(redis::Pipeline, usize, bool, usize)>);

impl FromLuaMulti for Pipeline {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        const WHAT: &str = "redis.pipeline";
        let mut budget = CopyBudget::for_lua(lua);
        let parse = || -> HostResult<(redis::Pipeline, usize, bool, usize)> {
            let mut values = values.into_iter();
            let commands = match values.next() {
                Some(mlua::Value::Table(t)) => t,
                _ => {
                    return Err(HostError::new(format!(
                        "{WHAT}: expected an array of commands, {{ {{\"INCR\", \"k\"}}, ... }}"
                    )))
                }
            };
            let atomic = match options(values.next(), WHAT, "{ atomic = true }")? {
                Some(o) => bool_option(&o, "atomic", WHAT)?,
                None => false,
            };
            let mut pipe = redis::pipe();
            if atomic {
                pipe.atomic();
            }
            let len = commands.raw_len();
            if len == 0 {
                return Err(HostError::new(format!("{WHAT}: no commands")));
            }
            for i in 1..=len {
                let command_table = match commands
                    .raw_get::<mlua::Value>(i)
                    .map_err(HostError::from)?
                {
                    mlua::Value::Table(t) => t,
                    _ => {
                        return Err(HostError::new(format!(
                            "{WHAT}: command {i} must be an array {{\"NAME\", args...}}"
                        )))
                    }
                };
                let mut parts = Vec::new();
                for j in 1..=command_table.raw_len() {
                    parts.push(
                        command_table
                            .raw_get::<mlua::Value>(j)
                            .map_err(HostError::from)?,
                    );
                }
                pipe.add_command(command(parts, &mut budget, WHAT)?);
            }
            Ok((pipe, len, atomic, reply::reply_limit(lua)))
        };
        Ok(Pipeline(parse()))
    }
}

/// What `redis.eval` copied out of the VM: the script, its keys and arguments.
struct Eval(HostResult<EvalSpec>);

/// The script, its keys, its arguments, the reply's byte limit.
type EvalSpec = (Script, Vec<Vec<u8>>, Vec<Vec<u8>>, usize);

impl FromLuaMulti for Eval {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        const WHAT: &str = "redis.eval";
        let mut budget = CopyBudget::for_lua(lua);
        let parse = || -> HostResult<EvalSpec> {
            let mut values = values.into_iter();
            let source = match values.next() {
                Some(mlua::Value::String(s)) => budget
                    .copy(&s.as_bytes())
                    .map_err(|e| HostError::new(format!("{WHAT}: {e}")))?,
                _ => {
                    return Err(HostError::new(format!(
                        "{WHAT}: the first argument must be the script's source"
                    )))
                }
            };
            let source = String::from_utf8(source)
                .map_err(|_| HostError::new(format!("{WHAT}: the script must be UTF-8")))?;
            let mut list = |value: Option<mlua::Value>, name: &str| -> HostResult<Vec<Vec<u8>>> {
                match value {
                    None | Some(mlua::Value::Nil) => Ok(Vec::new()),
                    Some(mlua::Value::Table(t)) => {
                        let mut out = Vec::new();
                        for i in 1..=t.raw_len() {
                            out.push(arg(
                                &t.raw_get::<mlua::Value>(i).map_err(HostError::from)?,
                                &mut budget,
                                WHAT,
                            )?);
                        }
                        Ok(out)
                    }
                    Some(other) => Err(HostError::new(format!(
                        "{WHAT}: {name} must be an array, got {}",
                        other.type_name()
                    ))),
                }
            };
            let keys = list(values.next(), "keys")?;
            let args = list(values.next(), "args")?;
            Ok((Script::new(source), keys, args, reply::reply_limit(lua)))
        };
        Ok(Eval(parse()))
    }
}

/// What `redis.subscribe` copied out of the VM.
struct Subscribe(HostResult<SubscribeSpec>);

/// The channels, whether they are patterns, the wait, the most messages, the byte limit.
type SubscribeSpec = (Vec<Vec<u8>>, bool, Duration, usize, usize);

impl FromLuaMulti for Subscribe {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        const WHAT: &str = "redis.subscribe";
        let mut budget = CopyBudget::for_lua(lua);
        let parse = || -> HostResult<SubscribeSpec> {
            let mut values = values.into_iter();
            let channels = match values.next() {
                Some(s @ mlua::Value::String(_)) => vec![arg(&s, &mut budget, WHAT)?],
                Some(mlua::Value::Table(t)) => {
                    let mut out = Vec::new();
                    for i in 1..=t.raw_len() {
                        out.push(arg(
                            &t.raw_get::<mlua::Value>(i).map_err(HostError::from)?,
                            &mut budget,
                            WHAT,
                        )?);
                    }
                    out
                }
                _ => {
                    return Err(HostError::new(format!(
                        "{WHAT}: expected a channel or an array of channels"
                    )))
                }
            };
            if channels.is_empty() {
                return Err(HostError::new(format!("{WHAT}: no channels")));
            }
            let wait = match values.next() {
                Some(mlua::Value::Integer(n)) if n > 0 => Duration::from_secs(n as u64),
                Some(mlua::Value::Number(n)) if n > 0.0 && n < 1e9 => Duration::from_secs_f64(n),
                _ => {
                    return Err(HostError::new(format!(
                        "{WHAT}: the timeout must be a positive number of seconds"
                    )))
                }
            };
            let (mut max, mut patterns) = (1, false);
            if let Some(o) = options(values.next(), WHAT, "{ max = n, pattern = true }")? {
                match o.raw_get::<mlua::Value>("max").map_err(HostError::from)? {
                    mlua::Value::Nil => {}
                    mlua::Value::Integer(n) if n > 0 => max = (n as usize).min(MAX_MESSAGES),
                    _ => {
                        return Err(HostError::new(format!(
                            "{WHAT}: `max` must be a positive integer"
                        )))
                    }
                }
                patterns = bool_option(&o, "pattern", WHAT)?;
            }
            Ok((channels, patterns, wait, max, reply::reply_limit(lua)))
        };
        Ok(Subscribe(parse()))
    }
}

/// `value`, or `nil, message`.
/// A function's options argument: `None` when absent or nil, the table, or an error
/// naming the `expected` shape.
fn options(
    value: Option<mlua::Value>,
    what: &str,
    expected: &str,
) -> HostResult<Option<mlua::Table>> {
    match value {
        None | Some(mlua::Value::Nil) => Ok(None),
        Some(mlua::Value::Table(o)) => Ok(Some(o)),
        Some(_) => Err(HostError::new(format!(
            "{what}: the options must be a table {expected}"
        ))),
    }
}

/// The boolean option `key` of `options` (nil is false), or an error saying it must be a
/// boolean.
fn bool_option(options: &mlua::Table, key: &str, what: &str) -> HostResult<bool> {
    match options
        .raw_get::<mlua::Value>(key)
        .map_err(HostError::from)?
    {
        mlua::Value::Nil => Ok(false),
        mlua::Value::Boolean(b) => Ok(b),
        _ => Err(HostError::new(format!("{what}: `{key}` must be a boolean"))),
    }
}

fn outcome(result: Result<Value, String>) -> Variadic<Value> {
    match result {
        Ok(v) => Variadic::from_iter([v]),
        Err(message) => Variadic::from_iter([Value::Nil, Value::String(message.into_bytes())]),
    }
}

/// A top-level reply: an error reply is `nil, message`, the rest converted.
fn top_level(reply: Result<redis::Value, Failure>, limit: usize) -> Result<Value, String> {
    match reply {
        Ok(redis::Value::ServerError(e)) => Err(reply::server_error_text(&e)),
        Ok(value) => reply::to_value(value, limit),
        Err(Failure(message)) => Err(message),
    }
}

impl Redis {
    /// The `redis` module for [`luapool::Vm::register_module`] (what
    /// [`register`](crate::register) adds), or for a pool's
    /// [`WorkerPoolBuilder::module`](luapool::WorkerPoolBuilder::module). Its functions
    /// are async: scripts must run as async executions, on a tokio runtime with time
    /// enabled.
    pub fn module(&self) -> Module {
        let call = Arc::clone(&self.inner);
        let pipeline = Arc::clone(&self.inner);
        let eval = Arc::clone(&self.inner);
        let subscribe = Arc::clone(&self.inner);
        let module = Module::new("redis");
        let m = &self.inner;
        let module = named::<0>(module, m);
        let module = named::<1>(module, m);
        let module = named::<2>(module, m);
        let module = named::<3>(module, m);
        let module = named::<4>(module, m);
        let module = named::<5>(module, m);
        let module = named::<6>(module, m);
        let module = named::<7>(module, m);
        let module = named::<8>(module, m);
        let module = named::<9>(module, m);
        let module = named::<10>(module, m);
        let module = named::<11>(module, m);
        let module = named::<12>(module, m);
        let module = named::<13>(module, m);
        let module = named::<14>(module, m);
        let module = named::<15>(module, m);
        let module = named::<16>(module, m);
        let module = named::<17>(module, m);
        let module = named::<18>(module, m);
        let module = named::<19>(module, m);
        let module = named::<20>(module, m);
        let module = named::<21>(module, m);
        let module = named::<22>(module, m);
        let module = named::<23>(module, m);
        module
            .async_function("call", move |Call(parsed)| {
                let inner = Arc::clone(&call);
                async move {
                    let (cmd, limit) = parsed?;
                    Ok(outcome(top_level(inner.query(&cmd).await, limit)))
                }
            })
            .async_function("pipeline", move |Pipeline(parsed)| {
                let inner = Arc::clone(&pipeline);
                async move {
                    let (pipe, len, atomic, limit) = parsed?;
                    Ok(outcome(
                        run_pipeline(&inner, &pipe, len, atomic, limit).await,
                    ))
                }
            })
            .async_function("eval", move |Eval(parsed)| {
                let inner = Arc::clone(&eval);
                async move {
                    let (script, keys, args, limit) = parsed?;
                    Ok(outcome(top_level(
                        run_script(&inner, &script, &keys, &args).await,
                        limit,
                    )))
                }
            })
            .async_function("subscribe", move |Subscribe(parsed)| {
                let inner = Arc::clone(&subscribe);
                async move {
                    let (channels, patterns, wait, max, limit) = parsed?;
                    let messages = inner.subscribe(channels, patterns, wait, max).await;
                    Ok(outcome(match messages {
                        Ok(m) if m.is_empty() => Err("timed out".to_string()),
                        Ok(m) => {
                            let size: usize = m
                                .iter()
                                .map(|m| m.channel.len() + m.payload.len() + 64)
                                .sum();
                            if size > limit {
                                Err(format!("the messages are larger than {limit} bytes"))
                            } else {
                                Ok(Value::Array(
                                    m.into_iter()
                                        .map(|m| {
                                            let mut fields = vec![
                                                (Value::from("channel"), Value::String(m.channel)),
                                                (Value::from("message"), Value::String(m.payload)),
                                            ];
                                            if let Some(p) = m.pattern {
                                                fields.push((
                                                    Value::from("pattern"),
                                                    Value::String(p),
                                                ));
                                            }
                                            Value::Map(fields)
                                        })
                                        .collect(),
                                ))
                            }
                        }
                        Err(Failure(message)) => Err(message),
                    }))
                }
            })
    }
}

/// Runs a pipeline: an array of replies (error replies as `{ err = ... }`), or for a
/// transaction the replies of `EXEC`; a transaction that was refused (a command failed
/// to queue) is `nil, "EXECABORT ..."`.
async fn run_pipeline(
    inner: &Arc<Inner>,
    pipe: &redis::Pipeline,
    len: usize,
    atomic: bool,
    limit: usize,
) -> Result<Value, String> {
    let replies = inner
        .query_pipeline(pipe, len, atomic)
        .await
        .map_err(|Failure(m)| m)?;
    let reply = if atomic {
        match replies.into_iter().next() {
            Some(redis::Value::ServerError(e)) => return Err(reply::server_error_text(&e)),
            Some(redis::Value::Nil) | None => return Err("the transaction was aborted".to_string()),
            Some(exec) => exec,
        }
    } else {
        redis::Value::Array(replies)
    };
    reply::to_value(reply, limit)
}

/// `EVALSHA`, then `EVAL` if the server does not have the script yet.
pub(crate) async fn run_script(
    inner: &Arc<Inner>,
    script: &Script,
    keys: &[Vec<u8>],
    args: &[Vec<u8>],
) -> Result<redis::Value, Failure> {
    let invocation = |name: &str, first: &[u8]| {
        let mut cmd = redis::cmd(name);
        cmd.arg(first).arg(keys.len()).arg(keys).arg(args);
        cmd
    };
    let evalsha = invocation("EVALSHA", script.sha.as_bytes());
    let reply = inner.query(&evalsha).await?;
    match &reply {
        redis::Value::ServerError(e) if e.code() == "NOSCRIPT" => {
            inner
                .query(&invocation("EVAL", script.source.as_bytes()))
                .await
        }
        _ => Ok(reply),
    }
}

/// A server-side Lua script: its source and SHA-1 (what `EVALSHA` names it by).
pub(crate) struct Script {
    sha: String,
    source: String,
}

impl Script {
    pub(crate) fn new(source: String) -> Script {
        Script {
            sha: redis::Script::new(&source).get_hash().to_string(),
            source,
        }
    }
}
