//! [`ServerConfig`]: plain-data configuration of the HTTP server, from flags or a
//! `luapool.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use luapool::VmConfig;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::tls::TlsConfig;

/// Configuration of a [`Server`](crate::Server): plain data, `Default`, and
/// deserializable from TOML (`luapool.toml`). Every key is optional.
///
/// ```
/// use luapool_http::ServerConfig;
///
/// let config = ServerConfig::from_toml(r#"
///     listen = "127.0.0.1:9000"
///     workers = 2
///     request_timeout = "5s"
///     memory_limit = "64MiB"
///     [shared_dicts]
///     cache = 1000
/// "#)?;
/// assert_eq!(config.workers, 2);
/// assert_eq!(config.vm.memory_limit, Some(64 << 20));
/// assert_eq!(config.vm.timeout, Some(std::time::Duration::from_secs(5)));
/// assert_eq!(config.shared_dicts["cache"], 1000);
/// assert_eq!(config.max_body_size, ServerConfig::default().max_body_size);
/// # Ok::<(), luapool_http::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on: `"HOST:PORT"`, `":PORT"`, `"PORT"` or `"localhost:PORT"`
    /// (see [`parse_listen`]). Default: `127.0.0.1:8080`.
    #[serde(deserialize_with = "deserialize_listen")]
    pub listen: SocketAddr,
    /// Worker threads, each with its own runtime and VM. Default: the number of cores.
    pub workers: usize,
    /// Requests a worker runs at once (each as a coroutine on its VM). Default: `1024`.
    pub concurrency: usize,
    /// Requests a worker lets wait when all its slots are busy; past this it answers
    /// `503 Service Unavailable` with `Retry-After`. Default: `1024`.
    pub max_queued: usize,
    /// Timers (`timer.after`, `timer.every`) a worker holds at once; past this
    /// `timer.after` returns `nil, "too many pending timers"`. Default: `1024`.
    pub max_timers: usize,
    /// Largest request body accepted (`"1MiB"` or bytes); larger ones get `413`.
    /// Default: `1MiB`.
    #[serde(deserialize_with = "deserialize_size")]
    pub max_body_size: usize,
    /// Time a client has to send a request's complete headers: counted from the
    /// connection's accept for its first request, and from the first byte of each later
    /// request on a keep-alive connection; then the connection is closed. Default: `10s`.
    #[serde(deserialize_with = "luapool::duration::deserialize_required")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's complete body, counted from the end of its
    /// headers; then `408 Request Timeout` and the connection is closed. The body is
    /// read before the request takes a handler slot, so a slow body never holds one.
    /// Default: `30s`.
    #[serde(deserialize_with = "luapool::duration::deserialize_required")]
    pub body_read_timeout: Duration,
    /// How long a keep-alive connection may stay idle between requests (from the end of
    /// one request to the first byte of the next; on HTTP/2, while no stream is open)
    /// before it is closed. Default: `75s`.
    #[serde(deserialize_with = "luapool::duration::deserialize_required")]
    pub keep_alive_timeout: Duration,
    /// How long a graceful shutdown waits for in-flight requests. Default: `30s`.
    #[serde(deserialize_with = "luapool::duration::deserialize_required")]
    pub shutdown_timeout: Duration,
    /// Shared dictionaries (`shared.NAME` in handlers) and their capacities in entries.
    /// Default: none.
    pub shared_dicts: BTreeMap<String, usize>,
    /// Shared dictionaries with more settings, one table each (`[shared.NAME]`): kept
    /// in the process (`backend = "memory"`, the default, with `capacity` and optional
    /// `max_bytes`, `max_value_bytes`) or in Redis (`backend = "redis"`, with optional
    /// `prefix` and `max_value_bytes`; needs `[redis]`), so that every instance using
    /// the same Redis sees the same entries. A name is configured here or in
    /// `[shared_dicts]`, not both. Default: none.
    pub shared: BTreeMap<String, SharedDictSpec>,
    /// The Redis server and connection pool (`[redis]`: `url`, `pool_size`,
    /// `connect_timeout`, `command_timeout`, `pool_timeout`; see
    /// [`luapool_redis::RedisConfig`]). When set, handlers get the `redis` module and
    /// `[shared.NAME]` tables may use `backend = "redis"`. The server starts even when
    /// Redis is down (it logs a warning): commands return `nil, message` until it is
    /// back. Default: none.
    pub redis: Option<luapool_redis::RedisConfig>,
    /// Static files: URL prefix → directory (relative to the app's directory), served
    /// for `GET` and `HEAD` before any handler runs (`[static]` in `luapool.toml`:
    /// `"/assets" = "public"`). Default: none.
    #[serde(rename = "static")]
    pub static_dirs: BTreeMap<String, std::path::PathBuf>,
    /// Address of the admin listener (`/metrics`, `/healthz`). Default: none (off).
    pub admin: Option<SocketAddr>,
    /// Log every request (target `luapool::access`). Default: `false`.
    pub access_log: bool,
    /// Development mode: error responses carry the Lua error and traceback. Never use it
    /// in production. Default: `false`.
    pub dev: bool,
    /// Serve HTTPS with this certificate and key (`[tls]`: `cert`, `key`; relative paths
    /// in a configuration file are taken from the file's directory). HTTP/2 and
    /// HTTP/1.1 are chosen by ALPN; a reload (SIGHUP) reads the files again. Default:
    /// none (plain HTTP, with HTTP/2 cleartext).
    pub tls: Option<TlsConfig>,
    /// Compress responses (gzip, brotli or zstd, as the request's `Accept-Encoding`
    /// prefers) whose type is text, JSON, JavaScript, XML or SVG and whose body is at
    /// least `compression_min_size` bytes. Default: `false`.
    pub compression: bool,
    /// The smallest body compressed (`"1KiB"` or bytes). Default: `1KiB`.
    #[serde(deserialize_with = "deserialize_size")]
    pub compression_min_size: usize,
    /// The settings of each worker's VM, whose keys are keys of this file too
    /// (`cpu_limit = "50ms"`, not under a table): limits, time slice, module paths,
    /// isolation, trusted mode; see [`VmConfig`]. In a request: `timeout` (written
    /// `request_timeout`) is the wall-clock time a handler may take, awaits included,
    /// then `504 Gateway Timeout`; `cpu_limit` the CPU time it may spend running Lua,
    /// then `504`; `memory_limit` the memory scripts may allocate in the worker's VM,
    /// then `500` and the VM is rebuilt; `module_paths` are searched before the app's
    /// own directory. The server's defaults differ from [`VmConfig::default`] in two
    /// settings: `request_timeout` is `30s` (and required), and `time_slice` is
    /// [`luapool::WorkerPoolConfig::DEFAULT_TIME_SLICE`] (`"0s"` turns slicing off), so that one long
    /// handler does not stall the short ones on its worker. A VM setting left out of
    /// the file (or `None` when deserialized) gets the server's default.
    #[serde(flatten, deserialize_with = "deserialize_vm")]
    pub vm: VmConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            concurrency: 1024,
            max_queued: 1024,
            max_timers: 1024,
            max_body_size: 1 << 20,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(75),
            shutdown_timeout: Duration::from_secs(30),
            shared_dicts: BTreeMap::new(),
            shared: BTreeMap::new(),
            redis: None,
            static_dirs: BTreeMap::new(),
            admin: None,
            access_log: false,
            dev: false,
            tls: None,
            compression: false,
            compression_min_size: 1024,
            vm: with_server_defaults(VmConfig::default()),
        }
    }
}

impl ServerConfig {
    /// Sets the address to listen on.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// Sets the number of worker threads.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets how many requests a worker runs at once.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets how many requests a worker lets wait.
    pub fn with_max_queued(mut self, max_queued: usize) -> Self {
        self.max_queued = max_queued;
        self
    }

    /// Sets how many timers a worker holds at once.
    pub fn with_max_timers(mut self, max_timers: usize) -> Self {
        self.max_timers = max_timers;
        self
    }

    /// Sets the largest request body accepted, in bytes.
    pub fn with_max_body_size(mut self, max_body_size: usize) -> Self {
        self.max_body_size = max_body_size;
        self
    }

    /// Sets the time a client has to send a request's headers.
    pub fn with_header_read_timeout(mut self, header_read_timeout: Duration) -> Self {
        self.header_read_timeout = header_read_timeout;
        self
    }

    /// Sets the time a client has to send a request's body.
    pub fn with_body_read_timeout(mut self, body_read_timeout: Duration) -> Self {
        self.body_read_timeout = body_read_timeout;
        self
    }

    /// Sets how long a keep-alive connection may stay idle.
    pub fn with_keep_alive_timeout(mut self, keep_alive_timeout: Duration) -> Self {
        self.keep_alive_timeout = keep_alive_timeout;
        self
    }

    /// Sets how long a graceful shutdown waits.
    pub fn with_shutdown_timeout(mut self, shutdown_timeout: Duration) -> Self {
        self.shutdown_timeout = shutdown_timeout;
        self
    }

    /// Adds a shared dictionary `shared.NAME` holding up to `capacity` entries.
    pub fn with_shared_dict(mut self, name: impl Into<String>, capacity: usize) -> Self {
        self.shared_dicts.insert(name.into(), capacity);
        self
    }

    /// Serves the files of `dir` (relative to the app's directory) under the URL
    /// `prefix`, before any handler (see [`ServerConfig::static_dirs`]).
    pub fn with_static(
        mut self,
        prefix: impl Into<String>,
        dir: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.static_dirs.insert(prefix.into(), dir.into());
        self
    }

    /// Adds a shared dictionary `shared.NAME` configured by `spec`.
    pub fn with_shared(mut self, name: impl Into<String>, spec: SharedDictSpec) -> Self {
        self.shared.insert(name.into(), spec);
        self
    }

    /// Sets (or, with `None`, turns off) the Redis connection pool.
    pub fn with_redis(mut self, redis: impl Into<Option<luapool_redis::RedisConfig>>) -> Self {
        self.redis = redis.into();
        self
    }

    /// Sets (or, with `None`, turns off) the admin listener's address.
    pub fn with_admin(mut self, addr: impl Into<Option<SocketAddr>>) -> Self {
        self.admin = addr.into();
        self
    }

    /// Sets whether every request is logged.
    pub fn with_access_log(mut self, access_log: bool) -> Self {
        self.access_log = access_log;
        self
    }

    /// Sets development mode.
    pub fn with_dev(mut self, dev: bool) -> Self {
        self.dev = dev;
        self
    }

    /// Sets (or, with `None`, turns off) TLS.
    pub fn with_tls(mut self, tls: impl Into<Option<TlsConfig>>) -> Self {
        self.tls = tls.into();
        self
    }

    /// Sets whether responses are compressed.
    pub fn with_compression(mut self, compression: bool) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the smallest body compressed, in bytes.
    pub fn with_compression_min_size(mut self, min_size: usize) -> Self {
        self.compression_min_size = min_size;
        self
    }

    /// Sets the settings of each worker's VM (start from `config.vm` to keep the server's defaults).
    pub fn with_vm(mut self, vm: VmConfig) -> Self {
        self.vm = vm;
        self
    }

    /// Parses a `luapool.toml` text.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad key or value.
    pub fn from_toml(text: &str) -> Result<ServerConfig> {
        let config: ServerConfig = toml::from_str(text).map_err(|e| Error::Config {
            message: e.message().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a `luapool.toml` file.
    ///
    /// # Errors
    /// [`Error::ConfigFile`] if it cannot be read or parsed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<ServerConfig> {
        let path = path.as_ref();
        let file_error = |message: String| Error::ConfigFile {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let mut config: ServerConfig = toml::from_str(&text).map_err(|e| {
            file_error(match error_line(&text, &e) {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        config.validate().map_err(|e| file_error(e.to_string()))?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let tls = config.tls.take().map(|tls| tls.relative_to(dir));
        Ok(ServerConfig { tls, ..config })
    }

    /// Checks values that parse but make no sense (zero workers, say).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("workers", self.workers),
            ("concurrency", self.concurrency),
            ("max_body_size", self.max_body_size),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(Error::Config {
                    message: format!("`{key}` must be at least 1"),
                });
            }
        }
        if self.workers > 1024 {
            return Err(Error::Config {
                message: format!("`workers` must be at most 1024, got {}", self.workers),
            });
        }
        let Some(request_timeout) = self.vm.timeout else {
            return Err(Error::Config {
                message: "`request_timeout` must be set".to_string(),
            });
        };
        let durations = [
            ("request_timeout", request_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("keep_alive_timeout", self.keep_alive_timeout),
        ];
        for (key, value) in durations {
            if value.is_zero() {
                return Err(Error::Config {
                    message: format!("`{key}` must be longer than zero"),
                });
            }
        }
        let identifier = |name: &str| -> Result<()> {
            let ok = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if ok {
                Ok(())
            } else {
                Err(Error::Config {
                    message: format!("shared dictionary name '{name}' is not a Lua identifier"),
                })
            }
        };
        if let Some(redis) = &self.redis {
            redis.validate().map_err(|e| Error::Config {
                message: e.to_string(),
            })?;
        }
        for (name, spec) in &self.shared {
            identifier(name)?;
            if self.shared_dicts.contains_key(name) {
                return Err(Error::Config {
                    message: format!(
                        "shared dictionary '{name}' is configured twice ([shared_dicts] and [shared.{name}])"
                    ),
                });
            }
            spec.validate(name, self.redis.is_some())?;
        }
        for (name, capacity) in &self.shared_dicts {
            identifier(name)?;
            if *capacity == 0 {
                return Err(Error::Config {
                    message: format!("shared dictionary '{name}' needs a capacity of at least 1"),
                });
            }
        }
        Ok(())
    }
}

/// Where a shared dictionary keeps its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DictBackend {
    /// In the process: shared by its workers, lost when it exits (the default).
    #[default]
    Memory,
    /// In Redis (`[redis]`): shared by every instance using the same server.
    Redis,
}

/// One `[shared.NAME]` table: a shared dictionary and where it keeps its entries.
///
/// ```
/// use luapool_http::{DictBackend, ServerConfig};
///
/// let config = ServerConfig::from_toml(r#"
///     [redis]
///     url = "redis://127.0.0.1:6379/0"
///     [shared.sessions]
///     backend = "redis"
///     prefix = "app:sessions:"
///     [shared.cache]
///     capacity = 1000
///     max_bytes = "16MiB"
/// "#)?;
/// assert_eq!(config.shared["sessions"].backend, DictBackend::Redis);
/// assert_eq!(config.shared["cache"].backend, DictBackend::Memory);
/// # Ok::<(), luapool_http::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SharedDictSpec {
    /// Where the entries live. Default: [`DictBackend::Memory`].
    #[serde(default)]
    pub backend: DictBackend,
    /// Most entries (memory only; required there).
    #[serde(default)]
    pub capacity: Option<usize>,
    /// Most bytes of all entries (memory only; see [`luapool::SharedDictConfig`]).
    #[serde(default, deserialize_with = "luapool::bytes::deserialize")]
    pub max_bytes: Option<usize>,
    /// Largest value accepted, in bytes. Default: 1 MiB.
    #[serde(default, deserialize_with = "luapool::bytes::deserialize")]
    pub max_value_bytes: Option<usize>,
    /// What keys are stored under in Redis (Redis only). Default: `luapool:NAME:`.
    #[serde(default)]
    pub prefix: Option<String>,
}

impl SharedDictSpec {
    /// A dictionary in the process holding up to `capacity` entries.
    pub fn memory(capacity: usize) -> Self {
        SharedDictSpec {
            capacity: Some(capacity),
            ..SharedDictSpec::default()
        }
    }

    /// A dictionary in Redis, its keys under `prefix` (`None`: `luapool:NAME:`).
    pub fn redis(prefix: Option<String>) -> Self {
        SharedDictSpec {
            backend: DictBackend::Redis,
            prefix,
            ..SharedDictSpec::default()
        }
    }

    fn validate(&self, name: &str, have_redis: bool) -> Result<()> {
        let bad = |message: String| Err(Error::Config { message });
        match self.backend {
            DictBackend::Memory => {
                if self.prefix.is_some() {
                    return bad(format!(
                        "[shared.{name}]: `prefix` is for backend = \"redis\""
                    ));
                }
                match self.capacity {
                    Some(c) if c > 0 => {}
                    _ => return bad(format!("[shared.{name}] needs a capacity of at least 1")),
                }
            }
            DictBackend::Redis => {
                if !have_redis {
                    return bad(format!(
                        "[shared.{name}] has backend = \"redis\" but [redis] is not configured"
                    ));
                }
                if self.capacity.is_some() || self.max_bytes.is_some() {
                    return bad(format!(
                        "[shared.{name}]: `capacity` and `max_bytes` are for backend = \"memory\""
                    ));
                }
            }
        }
        if self.max_value_bytes == Some(0) || self.max_bytes == Some(0) {
            return bad(format!("[shared.{name}] needs byte limits of at least 1"));
        }
        Ok(())
    }
}

/// The line of `text` a parse error is about. toml places errors in the VM settings
/// (deserialized after the whole root table was read, since they are flattened) on the
/// root table; for those, the line of the first top-level key that fails on its own.
fn error_line(text: &str, e: &toml::de::Error) -> Option<usize> {
    let line_at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let span = e.span()?;
    if span.start > 0 {
        return Some(line_at(span.start));
    }
    let table: toml::Table = toml::from_str(text).ok()?;
    let fails = |key: &String, value: &toml::Value| {
        let alone = toml::Table::from_iter([(key.clone(), value.clone())]);
        toml::Value::Table(alone)
            .try_into::<ServerConfig>()
            .is_err()
    };
    let key_line = |key: &str| {
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let rest = line.trim_start();
            let named = rest
                .strip_prefix(key)
                .is_some_and(|after| after.trim_start().starts_with(['=', '.']))
                || rest
                    .strip_prefix('[')
                    .is_some_and(|r| r.trim_start().starts_with(key));
            if named {
                return Some(line_at(offset));
            }
            offset += line.len();
        }
        None
    };
    table
        .iter()
        .filter(|(key, value)| fails(key, value))
        .filter_map(|(key, _)| key_line(key))
        .min()
        .or(Some(1))
}

/// The request timeout a server has unless configured otherwise.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Gives the VM settings left unset the server's defaults: the request timeout and the
/// time slice.
fn with_server_defaults(vm: VmConfig) -> VmConfig {
    let timeout = vm.timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT);
    let slice = vm
        .time_slice
        .unwrap_or(luapool::WorkerPoolConfig::DEFAULT_TIME_SLICE);
    vm.with_timeout(timeout).with_time_slice(slice)
}

/// The VM settings of a `luapool.toml`, with the server's defaults for those left out.
fn deserialize_vm<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<VmConfig, D::Error> {
    VmConfig::deserialize(d).map(with_server_defaults)
}

/// A size: a number of bytes or a string like `"1MiB"`, required (not optional).
fn deserialize_size<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<usize, D::Error> {
    luapool::bytes::deserialize(d)?
        .ok_or_else(|| serde::de::Error::custom("a size is required here"))
}

/// Parses an address to listen on: `HOST:PORT`, `:PORT` or `PORT` (on 127.0.0.1),
/// `localhost:PORT`, `*:PORT` (every interface), as `--listen` and `listen` take it.
///
/// ```
/// assert_eq!(luapool_http::parse_listen(":9000").unwrap().to_string(), "127.0.0.1:9000");
/// ```
///
/// # Errors
/// A message naming the text and the forms accepted.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let bad =
        || format!("'{text}' is not an address to listen on (try 127.0.0.1:8080, :8080 or 8080)");
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, port),
        None => ("", text),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip: std::net::IpAddr = match host {
        "" | "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        "*" => std::net::Ipv4Addr::UNSPECIFIED.into(),
        host => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| bad())?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// Deserializes `listen` with [`parse_listen`].
fn deserialize_listen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    parse_listen(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn shared_tables_and_redis_are_checked() {
        let c = ServerConfig::from_toml(
            "[redis]\nurl = \"redis://10.0.0.1:6380/2\"\npool_size = 4\ncommand_timeout = \"250ms\"\n\
             [shared.s]\nbackend = \"redis\"\n[shared.m]\ncapacity = 5\n[shared_dicts]\nold = 3\n",
        )
        .unwrap();
        let redis = c.redis.as_ref().unwrap();
        assert_eq!(
            (redis.pool_size, redis.command_timeout),
            (4, Duration::from_millis(250))
        );
        assert_eq!(c.shared["s"], SharedDictSpec::redis(None));
        assert_eq!(c.shared["m"], SharedDictSpec::memory(5));
        assert_eq!(c.shared_dicts["old"], 3);
        for (text, message) in [
            (
                "[shared.s]\nbackend = \"redis\"\n",
                "[redis] is not configured",
            ),
            ("[shared.m]\nmax_bytes = 10\n", "capacity of at least 1"),
            (
                "[shared.m]\ncapacity = 1\nprefix = \"x\"\n",
                "`prefix` is for",
            ),
            (
                "[shared_dicts]\na = 1\n[shared.a]\ncapacity = 1\n",
                "configured twice",
            ),
            ("[redis]\npool_size = 0\n", "pool_size"),
            ("[redis]\nurl = \"http://x\"\n", "[redis] url"),
            ("[shared.m]\nbackend = \"disk\"\n", "unknown variant"),
        ] {
            let err = ServerConfig::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(message), "{text}: {err}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        ServerConfig::default().validate().unwrap();
        assert_eq!(
            ServerConfig::from_toml("").unwrap(),
            ServerConfig::default()
        );
    }

    #[test]
    fn durations_and_addresses_are_read_as_the_flags_read_them() {
        let c = ServerConfig::from_toml(
            "request_timeout = 2\ncpu_limit = \"500ms\"\nbody_read_timeout = 0.5\nlisten = \":9000\"",
        )
        .unwrap();
        assert_eq!(c.vm.timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.vm.cpu_limit, Some(Duration::from_millis(500)));
        assert_eq!(c.body_read_timeout, Duration::from_millis(500));
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 9000)));
        let c = ServerConfig::from_toml("listen = \"8081\"").unwrap();
        assert_eq!(c.listen.port(), 8081);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = ServerConfig::from_toml("wrokers = 2").unwrap_err();
        assert!(err.to_string().contains("wrokers"), "{err}");
        let err = ServerConfig::from_toml("workers = 0").unwrap_err();
        assert!(err.to_string().contains("workers"), "{err}");
        let err = ServerConfig::from_toml("request_timeout = \"soon\"").unwrap_err();
        assert!(
            err.to_string().contains("soon") || err.to_string().contains("time"),
            "{err}"
        );
        let err = ServerConfig::from_toml("[shared_dicts]\n\"a-b\" = 3").unwrap_err();
        assert!(err.to_string().contains("a-b"), "{err}");
    }

    #[test]
    fn file_errors_name_the_line_of_the_bad_key() {
        let dir = std::env::temp_dir().join(format!("luapool-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            (
                "workers = 2\ncpu_limit = \"50ms\"\nwrokers = 3\n",
                "line 3: unknown field `wrokers`",
            ),
            (
                "workers = 2\ncpu_limit = \"soon\"\n\n[shared_dicts]\na = 1\n",
                "line 2: ",
            ),
            ("workers = 2\n\nmax_body_size = \"lots\"\n", "line 3: "),
            (
                "cpu_limit = \"50ms\"\n[shared_dicts]\n\"a-b\" = 3\n",
                "shared dictionary name 'a-b'",
            ),
        ];
        for (i, (text, expected)) in cases.into_iter().enumerate() {
            let path = dir.join(format!("{i}.toml"));
            std::fs::write(&path, text).unwrap();
            let err = ServerConfig::from_file(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn vm_settings_are_top_level_keys_with_the_server_defaults() {
        let c = ServerConfig::from_toml("memory_limit = \"8MiB\"").unwrap();
        assert_eq!(c.vm.memory_limit, Some(8 << 20));
        assert_eq!(c.vm.timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            c.vm.time_slice,
            Some(luapool::WorkerPoolConfig::DEFAULT_TIME_SLICE)
        );
        let c = ServerConfig::from_toml(
            "request_timeout = \"5s\"\ntime_slice = \"0s\"\nmodule_paths = [\"lib\"]\ninstruction_limit = 1000\nisolation = \"shared\"",
        )
        .unwrap();
        assert_eq!(c.vm.timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.vm.time_slice, Some(Duration::ZERO));
        assert_eq!(c.vm.module_paths, vec![std::path::PathBuf::from("lib")]);
        assert_eq!(c.vm.instruction_limit, Some(1000));
        assert_eq!(c.vm.isolation, luapool::Isolation::Shared);
        let c = ServerConfig::from_toml("timeout = \"2s\"").unwrap();
        assert_eq!(c.vm.timeout, Some(Duration::from_secs(2)));
        assert!(ServerConfig::from_toml("request_timeout = \"0s\"").is_err());
        let mut c = ServerConfig::default();
        c.vm = c.vm.with_timeout(None);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("request_timeout"));
    }

    #[test]
    fn sizes_and_durations_parse() {
        let c = ServerConfig::from_toml(
            "max_body_size = \"2MiB\"\nkeep_alive_timeout = \"5s\"\ncpu_limit = \"50ms\"\nbody_read_timeout = \"2s\"",
        )
        .unwrap();
        assert_eq!(c.body_read_timeout, Duration::from_secs(2));
        assert_eq!(c.max_body_size, 2 << 20);
        assert_eq!(c.keep_alive_timeout, Duration::from_secs(5));
        assert_eq!(c.vm.cpu_limit, Some(Duration::from_millis(50)));
    }
}
