//! Plain-data configuration of a [`Vm`](crate::Vm).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// How executions on one VM are kept apart.
///
/// ```
/// use luapool::Isolation;
/// assert_eq!(Isolation::default(), Isolation::PerExecution);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Each execution gets fresh globals over a shared, sealed base. Globals written by one
    /// execution are never visible to another, even when executions interleave as
    /// coroutines. Modules loaded with `require` stay per VM.
    #[default]
    PerExecution,
    /// Globals persist in the VM from one execution to the next (a per-VM counter works).
    Shared,
    /// Every execution runs on a brand-new VM: complete isolation at the cost of creating
    /// a VM (and loading modules) each time.
    FreshVm,
}

/// Configuration of a [`Vm`](crate::Vm): plain data, `Default`, and deserializable from
/// a config file.
///
/// ```
/// use luapool::{Isolation, VmConfig};
///
/// let config: VmConfig = serde_json::from_str(
///     r#"{ "isolation": "shared", "memory_limit": "64MiB", "cpu_limit": "50ms" }"#,
/// ).unwrap();
/// assert_eq!(config.isolation, Isolation::Shared);
/// assert_eq!(config.memory_limit, Some(64 << 20));
/// assert_eq!(config.cpu_limit, Some(std::time::Duration::from_millis(50)));
/// assert!(!config.trusted);
/// ```
// The one home of every VM setting. Adding one: a field here (its doc says its default and
// its config-file form), its value in `Default`, its `with_*` setter below, one flag in
// the CLI's `VmFlags` (`src/cli.rs`), and its rows in docs/configuration.md and
// docs/cli.md. The server's `ServerConfig` embeds this struct (its keys are
// `luapool.toml` keys), and so do the pools' configurations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct VmConfig {
    /// How executions are isolated from each other. Default: `PerExecution`.
    pub isolation: Isolation,
    /// Run scripts the operator owns as the `lua` interpreter would: the Lua state's own
    /// globals and full standard library (`io`, `os`, `package`, `debug`, binary `load`,
    /// Lua's `require`), with luapool's limits and host functions added. With
    /// [`Isolation::PerExecution`] each execution gets a fresh copy of the globals; with
    /// [`Isolation::Shared`] the VM is one `lua` process. A trusted script can reach
    /// anything through `debug`: not a security boundary. Default: `false`. See
    /// `docs/sandbox.md`.
    pub trusted: bool,
    /// Directories searched, in order, by `require("a.b")` for `a/b.lua` and
    /// `a/b/init.lua`. Default: empty (only built-in and host-registered modules).
    pub module_paths: Vec<PathBuf>,
    /// Install the host library: `sleep`, `json`, `log` and `time`. Default: `true`.
    pub host_library: bool,
    /// How many compiled chunks a VM keeps, keyed by name and source. Default: `256`.
    pub chunk_cache_capacity: usize,
    /// Most bytes one execution may hold in the VM, on top of what the sandbox itself
    /// uses (a number, or a string like `"64MiB"` in config files). Exceeding it fails
    /// that execution with [`Error::MemoryLimit`](crate::Error::MemoryLimit) (and poisons
    /// the VM if state outlives executions); executions interleaved on the VM may
    /// together hold 1.5 times it (see `docs/limits.md`). Default: none.
    #[serde(deserialize_with = "crate::config::bytes::deserialize")]
    pub memory_limit: Option<usize>,
    /// Most CPU time one execution may spend running (not awaiting), e.g. `"50ms"` in
    /// config files. Default: none.
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub cpu_limit: Option<Duration>,
    /// Most Lua instructions one execution may run, counted in steps of 1000; makes the
    /// interpreter run about 2x slower, so prefer `cpu_limit` unless you need determinism.
    /// Default: none.
    pub instruction_limit: Option<u64>,
    /// Most wall-clock time one execution may take, awaits included, e.g. `"2s"`. An
    /// execution that awaits past it is dropped, cancelling the pending host call.
    /// Also accepted as `request_timeout`, its name in the server's `luapool.toml`.
    /// Default: none.
    #[serde(
        deserialize_with = "crate::config::duration::deserialize",
        alias = "request_timeout"
    )]
    pub timeout: Option<Duration>,
    /// Time slice of async executions, e.g. `"2ms"`: an execution that has run this
    /// long without awaiting is suspended at its next instruction and resumed after the
    /// other tasks ready on its thread, so that one long script does not hold up the
    /// short ones interleaved with it. Time suspended does not count towards
    /// `cpu_limit`. Sync executions are never sliced. Default: none (off).
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub time_slice: Option<Duration>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            isolation: Isolation::PerExecution,
            trusted: false,
            module_paths: Vec::new(),
            host_library: true,
            chunk_cache_capacity: 256,
            memory_limit: None,
            cpu_limit: None,
            instruction_limit: None,
            timeout: None,
            time_slice: None,
        }
    }
}

/// The construction style of every configuration in luapool (`VmConfig`,
/// `WorkerPoolConfig`, `CheckoutPoolConfig`, the server's `ServerConfig`): public fields, a
/// `Default`, and one consuming `with_*` setter per field. Setters of optional settings
/// take `impl Into<Option<T>>`, so that they set a value (`with_cpu_limit(d)`) or clear
/// it (`with_cpu_limit(None)`).
///
/// ```
/// use std::time::Duration;
/// use luapool::VmConfig;
///
/// let config = VmConfig::default().with_cpu_limit(Duration::from_millis(50));
/// assert_eq!(config.cpu_limit, Some(Duration::from_millis(50)));
/// assert_eq!(config.with_cpu_limit(None).cpu_limit, None);
/// ```
impl VmConfig {
    /// Sets the isolation mode.
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Sets trusted mode.
    pub fn with_trusted(mut self, trusted: bool) -> Self {
        self.trusted = trusted;
        self
    }

    /// Adds a directory to the end of the module search path.
    pub fn with_module_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.module_paths.push(dir.into());
        self
    }

    /// Replaces the module search path.
    pub fn with_module_paths<P: Into<PathBuf>>(
        mut self,
        dirs: impl IntoIterator<Item = P>,
    ) -> Self {
        self.module_paths = dirs.into_iter().map(Into::into).collect();
        self
    }

    /// Enables or disables the host library (`sleep`, `json`, `log`, `time`).
    pub fn with_host_library(mut self, enabled: bool) -> Self {
        self.host_library = enabled;
        self
    }

    /// Sets how many compiled chunks a VM keeps.
    pub fn with_chunk_cache_capacity(mut self, capacity: usize) -> Self {
        self.chunk_cache_capacity = capacity;
        self
    }

    /// Sets (or, with `None`, clears) the memory limit in bytes.
    pub fn with_memory_limit(mut self, bytes: impl Into<Option<usize>>) -> Self {
        self.memory_limit = bytes.into();
        self
    }

    /// Sets (or clears) the CPU time limit of each execution.
    pub fn with_cpu_limit(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.cpu_limit = limit.into();
        self
    }

    /// Sets (or clears) the instruction budget of each execution.
    pub fn with_instruction_limit(mut self, budget: impl Into<Option<u64>>) -> Self {
        self.instruction_limit = budget.into();
        self
    }

    /// Sets (or clears) the wall-clock timeout of each execution.
    pub fn with_timeout(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.timeout = limit.into();
        self
    }

    /// Sets (or clears) the time slice of async executions (see
    /// [`VmConfig::time_slice`]).
    pub fn with_time_slice(mut self, slice: impl Into<Option<Duration>>) -> Self {
        self.time_slice = slice.into();
        self
    }
}

/// Byte sizes written as numbers or as strings with a unit (`"64MiB"`, `"512k"`).
pub mod bytes {
    use serde::{Deserialize, Deserializer};

    /// Parses `64MiB`, `64M`, `512KiB`, `1GiB`, `1000` (bytes). Units are powers of 1024.
    ///
    /// ```
    /// assert_eq!(luapool::bytes::parse("64MiB"), Ok(64 << 20));
    /// assert_eq!(luapool::bytes::parse("512k"), Ok(512 << 10));
    /// assert!(luapool::bytes::parse("lots").is_err());
    /// ```
    ///
    /// # Errors
    /// A message naming what could not be parsed.
    pub fn parse(text: &str) -> Result<usize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '_'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: usize = number
            .replace('_', "")
            .parse()
            .map_err(|_| format!("'{text}' is not a size (try 64MiB)"))?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            _ => {
                return Err(format!(
                    "'{text}' has an unknown unit (use KiB, MiB or GiB)"
                ))
            }
        };
        number
            .checked_mul(1usize << shift)
            .ok_or_else(|| format!("'{text}' is too large"))
    }

    /// Deserializes an optional size written as a number of bytes or as a string for
    /// [`parse`], for `#[serde(deserialize_with = "luapool::bytes::deserialize")]`.
    ///
    /// # Errors
    /// The deserializer's error, with the message of [`parse`] for bad strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Size {
            Number(usize),
            Text(String),
        }
        match Option::<Size>::deserialize(d)? {
            None => Ok(None),
            Some(Size::Number(n)) => Ok(Some(n)),
            Some(Size::Text(t)) => parse(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// Durations as luapool reads them everywhere (flags, `luapool.toml`, JSON): a plain
/// number of seconds (`2`, `0.5`) or a unit string (`500ms`, `2s`, `1m 30s`). Not part
/// of the API: for luapool's own crates.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Parses `500ms`, `2s`, `1m 30s`, or a plain number of seconds (`2`, `0.25`).
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(luapool::duration::parse("500ms"), Ok(Duration::from_millis(500)));
    /// assert_eq!(luapool::duration::parse("2"), Ok(Duration::from_secs(2)));
    /// assert_eq!(luapool::duration::parse("0.25"), Ok(Duration::from_millis(250)));
    /// assert!(luapool::duration::parse("soon").is_err());
    /// ```
    ///
    /// # Errors
    /// A message naming what could not be parsed.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        if let Ok(secs) = text.parse::<f64>() {
            return seconds(secs).ok_or_else(|| {
                format!("'{text}' is not a duration (a number of seconds must be 0 or more)")
            });
        }
        humantime::parse_duration(text).map_err(|_| {
            format!("'{text}' is not a duration (try 500ms, 2s or a number of seconds)")
        })
    }

    fn seconds(secs: f64) -> Option<Duration> {
        (0.0..1e12)
            .contains(&secs)
            .then(|| Duration::from_secs_f64(secs))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(f64),
        Text(String),
    }

    impl Written {
        fn duration<E: serde::de::Error>(self) -> Result<Duration, E> {
            match self {
                Written::Number(n) => seconds(n).ok_or_else(|| {
                    E::custom(format!("{n} is not a duration (seconds must be 0 or more)"))
                }),
                Written::Text(t) => parse(&t).map_err(E::custom),
            }
        }
    }

    /// Deserializes an optional duration written as seconds or as a string for
    /// [`parse`], for `#[serde(deserialize_with = "luapool::duration::deserialize")]`.
    ///
    /// # Errors
    /// The deserializer's error, with the message of [`parse`] for bad input.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<Written>::deserialize(d)?
            .map(Written::duration)
            .transpose()
    }

    /// [`deserialize`] for a required duration.
    ///
    /// # Errors
    /// As [`deserialize`].
    pub fn deserialize_required<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Written::deserialize(d)?.duration()
    }
}
