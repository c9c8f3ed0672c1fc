//! [`ServerConfig`]: plain-data configuration of the HTTP server, from flags or a
//! `luapool.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

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
/// assert_eq!(config.memory_limit, Some(64 << 20));
/// assert_eq!(config.shared_dicts["cache"], 1000);
/// assert_eq!(config.max_body_size, ServerConfig::default().max_body_size);
/// # Ok::<(), luapool_http::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Worker threads, each with its own runtime and VM. Default: the number of cores.
    pub workers: usize,
    /// Requests a worker runs at once (each as a coroutine on its VM). Default: `1024`.
    pub concurrency: usize,
    /// Requests a worker lets wait when all its slots are busy; past this it answers
    /// `503 Service Unavailable` with `Retry-After`. Default: `1024`.
    pub max_queued: usize,
    /// Wall-clock time a request's handler may take, awaits included; past it the
    /// request gets `504 Gateway Timeout`. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// CPU time a request's handler may spend running Lua; past it `504`. Default: none
    /// (the request timeout still stops a runaway handler).
    #[serde(with = "humantime_serde")]
    pub cpu_limit: Option<Duration>,
    /// Time slice of a request's handler: a handler that has run this long without
    /// awaiting is suspended and resumed after the other requests ready on its worker,
    /// so one long handler does not stall the short ones (`"0s"` turns slicing off).
    /// Default: `2ms`.
    #[serde(with = "humantime_serde")]
    pub time_slice: Option<Duration>,
    /// Memory scripts may allocate in one worker's VM (`"64MiB"` or a number of bytes);
    /// a request that exceeds it gets `500` and the VM is rebuilt. Default: none.
    #[serde(deserialize_with = "luapool::bytes::deserialize")]
    pub memory_limit: Option<usize>,
    /// Largest request body accepted (`"1MiB"` or bytes); larger ones get `413`.
    /// Default: `1MiB`.
    #[serde(deserialize_with = "deserialize_size")]
    pub max_body_size: usize,
    /// Time a client has to send a request's complete headers: counted from the
    /// connection's accept for its first request, and from the first byte of each later
    /// request on a keep-alive connection; then the connection is closed. Default: `10s`.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's complete body, counted from the end of its
    /// headers; then `408 Request Timeout` and the connection is closed. The body is
    /// read before the request takes a handler slot, so a slow body never holds one.
    /// Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// How long a keep-alive connection may stay idle between requests (from the end of
    /// one request to the first byte of the next; on HTTP/2, while no stream is open)
    /// before it is closed. Default: `75s`.
    #[serde(with = "humantime_serde")]
    pub keep_alive_timeout: Duration,
    /// How long a graceful shutdown waits for in-flight requests. Default: `30s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Shared dictionaries (`shared.NAME` in handlers) and their capacities in entries.
    /// Default: none.
    pub shared_dicts: BTreeMap<String, usize>,
    /// Directories `require` searches for modules, before the app's own directory.
    /// Default: empty (only the app's directory).
    pub module_paths: Vec<PathBuf>,
    /// Address of the admin listener (`/metrics`, `/healthz`). Default: none (off).
    pub admin: Option<SocketAddr>,
    /// Log every request (target `luapool::access`). Default: `false`.
    pub access_log: bool,
    /// Development mode: error responses carry the Lua error and traceback. Never use it
    /// in production. Default: `false`.
    pub dev: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            concurrency: 1024,
            max_queued: 1024,
            request_timeout: Duration::from_secs(30),
            cpu_limit: None,
            time_slice: Some(luapool::DEFAULT_TIME_SLICE),
            memory_limit: None,
            max_body_size: 1 << 20,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(75),
            shutdown_timeout: Duration::from_secs(30),
            shared_dicts: BTreeMap::new(),
            module_paths: Vec::new(),
            admin: None,
            access_log: false,
            dev: false,
        }
    }
}

impl ServerConfig {
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
        let config: ServerConfig = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            file_error(match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        config.validate().map_err(|e| file_error(e.to_string()))?;
        Ok(config)
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
        let durations = [
            ("request_timeout", self.request_timeout),
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
        for (name, capacity) in &self.shared_dicts {
            let ok = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(Error::Config {
                    message: format!("shared dictionary name '{name}' is not a Lua identifier"),
                });
            }
            if *capacity == 0 {
                return Err(Error::Config {
                    message: format!("shared dictionary '{name}' needs a capacity of at least 1"),
                });
            }
        }
        Ok(())
    }
}

/// A size: a number of bytes or a string like `"1MiB"`, required (not optional).
fn deserialize_size<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<usize, D::Error> {
    luapool::bytes::deserialize(d)?
        .ok_or_else(|| serde::de::Error::custom("a size is required here"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ServerConfig::default().validate().unwrap();
        assert_eq!(
            ServerConfig::from_toml("").unwrap(),
            ServerConfig::default()
        );
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
    fn sizes_and_durations_parse() {
        let c = ServerConfig::from_toml(
            "max_body_size = \"2MiB\"\nkeep_alive_timeout = \"5s\"\ncpu_limit = \"50ms\"\nbody_read_timeout = \"2s\"",
        )
        .unwrap();
        assert_eq!(c.body_read_timeout, Duration::from_secs(2));
        assert_eq!(c.max_body_size, 2 << 20);
        assert_eq!(c.keep_alive_timeout, Duration::from_secs(5));
        assert_eq!(c.cpu_limit, Some(Duration::from_millis(50)));
    }
}
