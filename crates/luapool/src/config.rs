//! Plain-data configuration of a [`Vm`](crate::Vm).

use std::path::PathBuf;

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
/// let config: VmConfig = serde_json::from_str(r#"{ "isolation": "shared" }"#).unwrap();
/// assert_eq!(config.isolation, Isolation::Shared);
/// assert!(!config.trusted);
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct VmConfig {
    /// How executions are isolated from each other. Default: `PerExecution`.
    pub isolation: Isolation,
    /// Open the full standard library (`io`, `os`, `package`, `debug`, binary `load`) for
    /// scripts the operator owns. Per-execution globals still apply, but a trusted script
    /// can reach anything through `debug`. Default: `false`.
    pub trusted: bool,
    /// Directories searched, in order, by `require("a.b")` for `a/b.lua` and
    /// `a/b/init.lua`. Default: empty (only built-in and host-registered modules).
    pub module_paths: Vec<PathBuf>,
    /// Install the host library: `sleep`, `json` and `log`. Default: `true`.
    pub host_library: bool,
    /// How many compiled chunks a VM keeps, keyed by name and source. Default: `256`.
    pub chunk_cache_capacity: usize,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            isolation: Isolation::PerExecution,
            trusted: false,
            module_paths: Vec::new(),
            host_library: true,
            chunk_cache_capacity: 256,
        }
    }
}

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

    /// Adds a directory to the module search path.
    pub fn with_module_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.module_paths.push(dir.into());
        self
    }

    /// Enables or disables the host library (`sleep`, `json`, `log`).
    pub fn with_host_library(mut self, enabled: bool) -> Self {
        self.host_library = enabled;
        self
    }
}
