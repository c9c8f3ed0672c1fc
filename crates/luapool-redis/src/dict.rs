//! Shared dictionaries stored in Redis: `shared.NAME` with the methods of the
//! in-process ones, as async host functions.
//!
//! Each entry is one Redis string under `prefix .. key`. Values keep their Lua type:
//! integers and floats are stored as their decimal text (so that `INCRBY` and
//! `INCRBYFLOAT` work on them), strings with an `s` in front, booleans as `b1` / `b0`.
//! A value written by another client without the tag reads back as a number if it
//! looks like one, else as the string it is. A time to live becomes the key's expiry
//! (`PX`); `incr` keeps the expiry, as the in-process dictionaries do.

use std::sync::Arc;
use std::time::Duration;

use luapool::mlua::{self, FromLuaMulti, Lua, MultiValue, Variadic};
use luapool::{CopyBudget, HostError, HostResult, Module, SharedDicts, Value};
use serde::Deserialize;

use crate::module::{run_script, Script};
use crate::pool::{Failure, Inner};
use crate::{Error, Redis};

/// Longest key accepted from scripts, in bytes (as the in-process dictionaries).
const MAX_KEY_LEN: usize = 65535;
/// How many keys `d:keys()` returns without a `max`.
const DEFAULT_MAX_KEYS: usize = 1024;
/// Largest value of a dictionary whose configuration gives no limit (1 MiB).
const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;

/// `incr` in one round trip, atomic: `{0}` not found, `{2}` not a number, `{1, text}`
/// the new integer, `{1, text, "f"}` the new float.
const INCR: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then
  if ARGV[2] == '' then return {0} end
  v = ARGV[2]
  redis.call('SET', KEYS[1], v)
end
local int = '^%-?%d+$'
if string.match(v, int) and string.match(ARGV[1], int) then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  return {1, redis.call('GET', KEYS[1])}
end
if tonumber(v) == nil then return {2} end
return {1, redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]), 'f'}
"#;

/// Configuration of one dictionary stored in Redis (`[shared.NAME]` with
/// `backend = "redis"` in `luapool.toml`).
///
/// ```
/// let config = luapool_redis::RedisDictConfig::new("sessions").with_prefix("app:s:");
/// assert_eq!(config.key_prefix(), "app:s:");
/// assert_eq!(luapool_redis::RedisDictConfig::new("sessions").key_prefix(), "luapool:sessions:");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisDictConfig {
    /// The dictionary's name: scripts reach it as `shared.<name>`.
    pub name: String,
    /// What every key is stored under: `prefix .. key`. Default: `luapool:<name>:`.
    /// Instances that share a dictionary must use the same prefix (and server and
    /// database); dictionaries must not share one.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Largest value accepted, in bytes; larger ones get `false, "too large"`. Default:
    /// 1 MiB.
    #[serde(default, deserialize_with = "luapool::bytes::deserialize")]
    pub max_value_bytes: Option<usize>,
}

impl RedisDictConfig {
    /// A dictionary called `name` with the default prefix and limit.
    pub fn new(name: impl Into<String>) -> Self {
        RedisDictConfig {
            name: name.into(),
            prefix: None,
            max_value_bytes: None,
        }
    }

    /// Sets the key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sets the largest value accepted.
    pub fn with_max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = Some(bytes);
        self
    }

    /// The prefix in force: the configured one, or `luapool:<name>:`.
    pub fn key_prefix(&self) -> String {
        self.prefix
            .clone()
            .unwrap_or_else(|| format!("luapool:{}:", self.name))
    }
}

/// One argument of a method, copied out of the VM.
enum Arg {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Vec<u8>),
    /// A string longer than the dictionary takes: not copied.
    TooLong,
    Other(&'static str),
}

/// The arguments after `self` (which must be a table: a colon call); strings longer
/// than `max_value` are [`Arg::TooLong`], not copied.
fn read_args(values: MultiValue, lua: &Lua, what: &str, max_value: usize) -> HostResult<Vec<Arg>> {
    let mut budget = CopyBudget::for_lua(lua);
    let mut values = values.into_iter();
    match values.next() {
        Some(mlua::Value::Table(_)) => {}
        _ => {
            return Err(HostError::new(format!(
                "{what}: call it with a colon ({what}(...))"
            )))
        }
    }
    values
        .map(|v| {
            Ok(match v {
                mlua::Value::Nil => Arg::Nil,
                mlua::Value::Boolean(b) => Arg::Bool(b),
                mlua::Value::Integer(i) => Arg::Int(i),
                mlua::Value::Number(n) => Arg::Num(n),
                mlua::Value::String(s) => {
                    let bytes = s.as_bytes();
                    if bytes.len() > max_value.max(MAX_KEY_LEN) {
                        Arg::TooLong
                    } else {
                        Arg::Str(
                            budget
                                .copy(&bytes)
                                .map_err(|e| HostError::new(format!("{what}: {e}")))?,
                        )
                    }
                }
                other => Arg::Other(other.type_name()),
            })
        })
        .collect()
}

/// What each method knows.
struct Dict {
    inner: Arc<Inner>,
    prefix: Vec<u8>,
    max_value_bytes: usize,
    label: String,
    incr: Script,
}

impl Dict {
    fn fail(&self, method: &str, message: impl std::fmt::Display) -> HostError {
        HostError::new(format!("{}:{method}: {message}", self.label))
    }

    /// The Redis key of a script's key: a non-empty UTF-8 string of at most
    /// [`MAX_KEY_LEN`] bytes, or a number.
    fn key(&self, method: &str, arg: Option<&Arg>) -> HostResult<Vec<u8>> {
        let text = match arg {
            Some(Arg::Str(s)) => {
                std::str::from_utf8(s).map_err(|_| self.fail(method, "key must be valid UTF-8"))?;
                s.clone()
            }
            Some(Arg::Int(i)) => i.to_string().into_bytes(),
            Some(Arg::Num(n)) => lua_number(*n).into_bytes(),
            Some(Arg::TooLong) => {
                return Err(self.fail(method, format!("key is longer than {MAX_KEY_LEN} bytes")))
            }
            other => {
                return Err(self.fail(
                    method,
                    format!("key must be a string, got {}", type_name(other)),
                ))
            }
        };
        if text.is_empty() {
            return Err(self.fail(method, "key must not be empty"));
        }
        if text.len() > MAX_KEY_LEN {
            return Err(self.fail(method, format!("key is longer than {MAX_KEY_LEN} bytes")));
        }
        let mut key = self.prefix.clone();
        key.extend_from_slice(&text);
        Ok(key)
    }

    /// A time to live: `nil` or `0` for none.
    fn ttl(&self, method: &str, arg: Option<&Arg>) -> HostResult<Option<Duration>> {
        let seconds = match arg {
            None | Some(Arg::Nil) => return Ok(None),
            Some(Arg::Int(i)) => *i as f64,
            Some(Arg::Num(n)) => *n,
            other => {
                return Err(self.fail(
                    method,
                    format!("ttl must be a number of seconds, got {}", type_name(other)),
                ))
            }
        };
        if seconds == 0.0 {
            return Ok(None);
        }
        Duration::try_from_secs_f64(seconds).map(Some).map_err(|_| {
            self.fail(
                method,
                format!("ttl must be a non-negative number of seconds, got {seconds}"),
            )
        })
    }

    /// The stored form of a value, or `None` if it is too large.
    fn encode(&self, method: &str, arg: Option<&Arg>) -> HostResult<Option<Vec<u8>>> {
        Ok(Some(match arg {
            Some(Arg::Str(s)) if s.len() > self.max_value_bytes => return Ok(None),
            Some(Arg::TooLong) => return Ok(None),
            Some(Arg::Str(s)) => {
                let mut v = Vec::with_capacity(s.len() + 1);
                v.push(b's');
                v.extend_from_slice(s);
                v
            }
            Some(Arg::Int(i)) => i.to_string().into_bytes(),
            Some(Arg::Num(n)) => float_text(*n).into_bytes(),
            Some(Arg::Bool(b)) => {
                if *b {
                    b"b1".to_vec()
                } else {
                    b"b0".to_vec()
                }
            }
            other => {
                return Err(self.fail(
                    method,
                    format!(
                        "value must be a string, number or boolean, got {}",
                        type_name(other)
                    ),
                ))
            }
        }))
    }

    /// `SET key value [NX] [PX ms]`: whether it was stored.
    async fn store(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        ttl: Option<Duration>,
        nx: bool,
    ) -> Result<bool, String> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if nx {
            cmd.arg("NX");
        }
        if let Some(ttl) = ttl {
            cmd.arg("PX")
                .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        match self.inner.query(&cmd).await.map_err(|Failure(m)| m)? {
            redis::Value::Nil => Ok(false),
            redis::Value::ServerError(e) => Err(crate::reply::server_error_text(&e)),
            _ => Ok(true),
        }
    }
}

fn type_name(arg: Option<&Arg>) -> &'static str {
    match arg {
        None | Some(Arg::Nil) => "nil",
        Some(Arg::Bool(_)) => "boolean",
        Some(Arg::Int(_) | Arg::Num(_)) => "number",
        Some(Arg::Str(_) | Arg::TooLong) => "string",
        Some(Arg::Other(name)) => name,
    }
}

/// A float as Lua's `tostring` writes it (near enough: `2.0`, `0.5`).
fn lua_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e16 {
        format!("{n:.1}")
    } else {
        format!("{n}")
    }
}

/// A float as stored: reads back as a float (`2.0`, not `2`).
fn float_text(n: f64) -> String {
    if n.is_finite() {
        lua_number(n)
    } else {
        format!("{n}")
    }
}

/// A stored value as the script gets it.
fn decode(bytes: Vec<u8>) -> Value {
    match bytes.first() {
        Some(b's') => Value::String(bytes[1..].to_vec()),
        Some(b'b') if bytes == b"b1" => Value::Boolean(true),
        Some(b'b') if bytes == b"b0" => Value::Boolean(false),
        _ => number(&bytes).unwrap_or(Value::String(bytes)),
    }
}

/// Decimal text as an integer or a float.
fn number(bytes: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::Integer(i));
    }
    let digit_first =
        text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.' || c == '+');
    match text.parse::<f64>() {
        Ok(n) if digit_first || !n.is_finite() => Some(Value::Number(n)),
        _ => None,
    }
}

/// Results: values, or `nil`/`false` and a message.
fn reply(values: impl IntoIterator<Item = Value>) -> Variadic<Value> {
    Variadic::from_iter(values)
}

fn failed(first: Value, message: String) -> Variadic<Value> {
    reply([first, Value::String(message.into_bytes())])
}

/// A method's arguments, read with its label and the dictionary's value limit.
struct MethodArgs<const M: usize>(HostResult<Vec<Arg>>, usize);

/// The methods' names, indexed by the const parameter of [`MethodArgs`].
const METHODS: [&str; 6] = ["get", "set", "add", "incr", "delete", "keys"];

impl<const M: usize> FromLuaMulti for MethodArgs<M> {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        // The value limit is checked again per dictionary; here only strings larger
        // than any dictionary takes are left uncopied.
        Ok(MethodArgs(
            read_args(values, lua, METHODS[M], MAX_VALUE_CAP),
            crate::reply::reply_limit(lua),
        ))
    }
}

/// Strings longer than this are never copied (no dictionary takes larger values).
const MAX_VALUE_CAP: usize = 512 << 20;

impl Redis {
    /// A dictionary stored in Redis, as a module for
    /// [`SharedDicts::with_backend`](luapool::SharedDicts::with_backend): scripts reach
    /// it as `shared.<name>`, with the methods of the in-process dictionaries (all async):
    ///
    /// | call | result |
    /// |---|---|
    /// | `d:get(key)` | the value, or `nil` if missing or expired; `nil, message` if Redis fails |
    /// | `d:set(key, value [, ttl])` | `true`, or `false, "too large"`, or `false, message`; a `nil` value deletes the key |
    /// | `d:add(key, value [, ttl])` | `true`, or `false, "exists"` (atomic across processes: `SET NX`) |
    /// | `d:incr(key, n [, init])` | the new number, or `nil, "not found"` / `nil, "not a number"` (atomic: one server-side script) |
    /// | `d:delete(key)` | nothing, or `nil, message` |
    /// | `d:keys([max])` | an array of up to `max` keys (default 1024, `0` for all), in no particular order |
    ///
    /// # Errors
    /// [`Error::Config`] for an empty name.
    pub fn dict(&self, config: &RedisDictConfig) -> Result<Module, Error> {
        if config.name.is_empty() {
            return Err(Error::Config {
                message: "a shared dict needs a name".to_string(),
            });
        }
        let dict = Arc::new(Dict {
            inner: Arc::clone(&self.inner),
            prefix: config.key_prefix().into_bytes(),
            max_value_bytes: config
                .max_value_bytes
                .unwrap_or(DEFAULT_MAX_VALUE_BYTES)
                .min(MAX_VALUE_CAP),
            label: format!("shared.{}", config.name),
            incr: Script::new(INCR.to_string()),
        });
        let d = Arc::clone(&dict);
        let module = Module::new(config.name.clone()).async_function(
            "get",
            move |MethodArgs::<0>(args, _)| {
                let d = Arc::clone(&d);
                async move {
                    let args = args.map_err(|e| d.fail("get", e))?;
                    let key = d.key("get", args.first())?;
                    let mut cmd = redis::cmd("GET");
                    cmd.arg(key);
                    Ok(match d.inner.query(&cmd).await {
                        Ok(redis::Value::BulkString(b)) => reply([decode(b)]),
                        Ok(redis::Value::Nil) => reply([Value::Nil]),
                        Ok(redis::Value::ServerError(e)) => {
                            failed(Value::Nil, crate::reply::server_error_text(&e))
                        }
                        Ok(_) => failed(Value::Nil, "an unexpected reply".to_string()),
                        Err(Failure(m)) => failed(Value::Nil, m),
                    })
                }
            },
        );
        let d = Arc::clone(&dict);
        let module = module.async_function("set", move |MethodArgs::<1>(args, _)| {
            let d = Arc::clone(&d);
            async move {
                let args = args.map_err(|e| d.fail("set", e))?;
                let key = d.key("set", args.first())?;
                let ttl = d.ttl("set", args.get(2))?;
                if matches!(args.get(1), None | Some(Arg::Nil)) {
                    let mut cmd = redis::cmd("DEL");
                    cmd.arg(key);
                    return Ok(match d.inner.query(&cmd).await {
                        Ok(redis::Value::ServerError(e)) => {
                            failed(Value::Boolean(false), crate::reply::server_error_text(&e))
                        }
                        Ok(_) => reply([Value::Boolean(true)]),
                        Err(Failure(m)) => failed(Value::Boolean(false), m),
                    });
                }
                let Some(value) = d.encode("set", args.get(1))? else {
                    return Ok(failed(Value::Boolean(false), "too large".to_string()));
                };
                Ok(match d.store(key, value, ttl, false).await {
                    Ok(_) => reply([Value::Boolean(true)]),
                    Err(m) => failed(Value::Boolean(false), m),
                })
            }
        });
        let d = Arc::clone(&dict);
        let module = module.async_function("add", move |MethodArgs::<2>(args, _)| {
            let d = Arc::clone(&d);
            async move {
                let args = args.map_err(|e| d.fail("add", e))?;
                let key = d.key("add", args.first())?;
                let Some(value) = d.encode("add", args.get(1))? else {
                    return Ok(failed(Value::Boolean(false), "too large".to_string()));
                };
                let ttl = d.ttl("add", args.get(2))?;
                Ok(match d.store(key, value, ttl, true).await {
                    Ok(true) => reply([Value::Boolean(true)]),
                    Ok(false) => failed(Value::Boolean(false), "exists".to_string()),
                    Err(m) => failed(Value::Boolean(false), m),
                })
            }
        });
        let d = Arc::clone(&dict);
        let module = module.async_function("incr", move |MethodArgs::<3>(args, _)| {
            let d = Arc::clone(&d);
            async move {
                let args = args.map_err(|e| d.fail("incr", e))?;
                let key = d.key("incr", args.first())?;
                let num_arg = |arg: Option<&Arg>, name: &str| -> HostResult<Vec<u8>> {
                    match arg {
                        Some(Arg::Int(i)) => Ok(i.to_string().into_bytes()),
                        Some(Arg::Num(n)) => Ok(float_text(*n).into_bytes()),
                        other => Err(d.fail(
                            "incr",
                            format!("{name} must be a number, got {}", type_name(other)),
                        )),
                    }
                };
                let by = num_arg(args.get(1), "n")?;
                let init = match args.get(2) {
                    None | Some(Arg::Nil) => Vec::new(),
                    other => num_arg(other, "init")?,
                };
                let reply_value = run_script(&d.inner, &d.incr, &[key], &[by, init]).await;
                Ok(match reply_value {
                    Ok(redis::Value::Array(items)) => match items.as_slice() {
                        [redis::Value::Int(1), redis::Value::BulkString(text)] => {
                            reply([number(text).unwrap_or(Value::Nil)])
                        }
                        [redis::Value::Int(1), redis::Value::BulkString(text), _] => {
                            let n = std::str::from_utf8(text)
                                .ok()
                                .and_then(|t| t.parse::<f64>().ok());
                            reply([n.map_or(Value::Nil, Value::Number)])
                        }
                        [redis::Value::Int(0)] => failed(Value::Nil, "not found".to_string()),
                        _ => failed(Value::Nil, "not a number".to_string()),
                    },
                    Ok(redis::Value::ServerError(e)) => {
                        let text = crate::reply::server_error_text(&e);
                        // A float that would overflow, or an integer past i64.
                        failed(Value::Nil, text)
                    }
                    Ok(_) => failed(Value::Nil, "an unexpected reply".to_string()),
                    Err(Failure(m)) => failed(Value::Nil, m),
                })
            }
        });
        let d = Arc::clone(&dict);
        let module = module.async_function("delete", move |MethodArgs::<4>(args, _)| {
            let d = Arc::clone(&d);
            async move {
                let args = args.map_err(|e| d.fail("delete", e))?;
                let key = d.key("delete", args.first())?;
                let mut cmd = redis::cmd("DEL");
                cmd.arg(key);
                Ok(match d.inner.query(&cmd).await {
                    Ok(redis::Value::ServerError(e)) => {
                        failed(Value::Nil, crate::reply::server_error_text(&e))
                    }
                    Ok(_) => reply([]),
                    Err(Failure(m)) => failed(Value::Nil, m),
                })
            }
        });
        let d = Arc::clone(&dict);
        let module = module.async_function("keys", move |MethodArgs::<5>(args, limit)| {
            let d = Arc::clone(&d);
            async move {
                let args = args.map_err(|e| d.fail("keys", e))?;
                let max = match args.first() {
                    None | Some(Arg::Nil) => DEFAULT_MAX_KEYS,
                    Some(Arg::Int(0)) => usize::MAX,
                    Some(Arg::Int(n)) if *n > 0 => usize::try_from(*n).unwrap_or(usize::MAX),
                    Some(Arg::Num(n)) if n.fract() == 0.0 && *n >= 0.0 => {
                        if *n == 0.0 {
                            usize::MAX
                        } else {
                            *n as usize
                        }
                    }
                    _ => return Err(d.fail("keys", "max must be a non-negative integer")),
                };
                Ok(match scan(&d, max, limit).await {
                    Ok(keys) => reply([keys]),
                    Err(m) => failed(Value::Nil, m),
                })
            }
        });
        Ok(module)
    }

    /// `dicts` with the dictionaries of `configs` added, stored in Redis (see
    /// [`Redis::dict`]).
    ///
    /// ```
    /// use luapool_redis::{Redis, RedisConfig, RedisDictConfig};
    ///
    /// let redis = Redis::new(RedisConfig::default())?;
    /// let dicts = luapool::SharedDicts::new([("local", 100)])?;
    /// let dicts = redis.add_dicts(dicts, &[RedisDictConfig::new("sessions")])?;
    /// assert_eq!(dicts.backend_names().collect::<Vec<_>>(), ["sessions"]);
    /// # Ok::<(), luapool_redis::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for an empty name, [`Error::Luapool`] for a name taken already.
    pub fn add_dicts(
        &self,
        dicts: SharedDicts,
        configs: &[RedisDictConfig],
    ) -> Result<SharedDicts, Error> {
        let mut dicts = dicts;
        for config in configs {
            dicts = dicts.with_backend(self.dict(config)?)?;
        }
        Ok(dicts)
    }
}

/// Up to `max` keys of the dictionary (`SCAN` with the prefix), without the prefix,
/// within `limit` bytes.
async fn scan(d: &Dict, max: usize, limit: usize) -> Result<Value, String> {
    let mut pattern = Vec::with_capacity(d.prefix.len() + 1);
    for &b in &d.prefix {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(b);
    }
    pattern.push(b'*');
    let mut keys = Vec::new();
    let mut cursor = b"0".to_vec();
    let mut size = 0usize;
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(&cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000);
        let reply = d.inner.query(&cmd).await.map_err(|Failure(m)| m)?;
        let (next, batch) = match reply {
            redis::Value::Array(mut parts) if parts.len() == 2 => {
                let batch = parts.pop();
                let next = parts.pop();
                match (next, batch) {
                    (Some(redis::Value::BulkString(next)), Some(redis::Value::Array(batch))) => {
                        (next, batch)
                    }
                    _ => return Err("an unexpected SCAN reply".to_string()),
                }
            }
            redis::Value::ServerError(e) => return Err(crate::reply::server_error_text(&e)),
            _ => return Err("an unexpected SCAN reply".to_string()),
        };
        for key in batch {
            if keys.len() >= max {
                break;
            }
            if let redis::Value::BulkString(key) = key {
                if let Some(rest) = key.strip_prefix(d.prefix.as_slice()) {
                    size += rest.len() + 16;
                    if size > limit {
                        return Err(format!("the keys are larger than {limit} bytes"));
                    }
                    keys.push(Value::String(rest.to_vec()));
                }
            }
        }
        if keys.len() >= max || next == b"0" {
            break;
        }
        cursor = next;
    }
    Ok(Value::Array(keys))
}
