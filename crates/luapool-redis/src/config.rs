//! [`RedisConfig`]: where Redis is and how the pool behaves, e.g. the `[redis]` table of
//! `luapool.toml`.

use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// Configuration of the connection pool: plain data, `Default`, deserializable (the
/// `[redis]` table of `luapool.toml`). Every key is optional; durations are seconds or
/// strings such as `"500ms"`.
///
/// ```
/// use std::time::Duration;
/// use luapool_redis::RedisConfig;
///
/// let config: RedisConfig = serde_json::from_str(
///     r#"{ "url": "redis://10.0.0.5:6379/1", "pool_size": 32, "command_timeout": "250ms" }"#,
/// ).unwrap();
/// assert_eq!(config.pool_size, 32);
/// assert_eq!(config.command_timeout, Duration::from_millis(250));
/// assert_eq!(config.connect_timeout, RedisConfig::default().connect_timeout);
/// config.validate()?;
/// # Ok::<(), luapool_redis::Error>(())
/// ```
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server: `redis://[[user]:password@]host[:port][/db]`, `rediss://...` for TLS
    /// (rustls, the web PKI roots), or `unix:///path/to/socket`. Default:
    /// `redis://127.0.0.1:6379/0`.
    pub url: String,
    /// Most commands in flight at once in the process (each command, pipeline, script
    /// or subscription has a connection to itself while it runs). Connections are kept
    /// idle per runtime (a server worker): each keeps at most as many as it used at
    /// once. Default: `16`.
    pub pool_size: usize,
    /// Longest a new connection may take to open (TCP, TLS, `AUTH`, `SELECT`). Default:
    /// `1s`.
    #[serde(deserialize_with = "luapool::duration::deserialize_required")]
    pub connect_timeout: Duration,
    /// Longest one command (or pipeline, or `redis.eval`) may take once it has a
    /// connection; then the script gets `nil, "timed out ..."` and the connection is
    /// closed. Default: `1s`.
    #[serde(deserialize_with = "luapool::duration::deserialize_required")]
    pub command_timeout: Duration,
    /// Longest a command waits for a free connection when all `pool_size` are busy;
    /// then the script gets `nil, "no free connection ..."`. Default: `1s`.
    #[serde(deserialize_with = "luapool::duration::deserialize_required")]
    pub pool_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".to_string(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            pool_timeout: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    /// The URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("pool_timeout", &self.pool_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// A configuration for the server at `url`, with the default pool settings.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            ..RedisConfig::default()
        }
    }

    /// Sets the most commands in flight at once.
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// Sets the longest a new connection may take to open.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the longest one command may take.
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets the longest a command waits for a free connection.
    pub fn with_pool_timeout(mut self, timeout: Duration) -> Self {
        self.pool_timeout = timeout;
        self
    }

    /// The URL with its password (if any) replaced by `***`, for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// Checks values that parse but make no sense: a URL the client does not take, a
    /// pool of 0 connections (or more than 4096), a zero timeout.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<(), Error> {
        redis::Client::open(self.url.as_str()).map_err(|e| Error::Config {
            message: format!("[redis] url '{}': {e}", self.redacted_url()),
        })?;
        if self.pool_size == 0 || self.pool_size > 4096 {
            return Err(Error::Config {
                message: format!(
                    "[redis] pool_size must be between 1 and 4096, got {}",
                    self.pool_size
                ),
            });
        }
        for (key, value) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
            ("pool_timeout", self.pool_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::Config {
                    message: format!("[redis] {key} must be longer than zero"),
                });
            }
        }
        Ok(())
    }
}

/// `url` with the password of its user-info part replaced by `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    let user = match userinfo.find(':') {
        Some(colon) => &userinfo[..colon],
        None => "",
    };
    format!("{}{user}:***{}", &url[..scheme_end], &rest[at..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("rediss://u:pw@h/0"), "rediss://u:***@h/0");
        assert_eq!(redact("redis://h:1/0"), "redis://h:1/0");
        let c = RedisConfig::new("redis://:secret@h:1/0");
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(RedisConfig::new("http://x").validate().is_err());
        assert!(RedisConfig::default().with_pool_size(0).validate().is_err());
        assert!(RedisConfig::default()
            .with_command_timeout(Duration::ZERO)
            .validate()
            .is_err());
        RedisConfig::new("rediss://example.com:6380/2")
            .validate()
            .unwrap();
    }
}
