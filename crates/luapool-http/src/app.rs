//! The Lua app: the handler script, and the recipe that builds a worker's VM for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use luapool::{Isolation, Script, Vm, VmConfig};

use crate::config::ServerConfig;
use crate::error::{Error, Result};

/// A loaded app: `app.lua` and the directory its modules come from.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) path: PathBuf,
    pub(crate) script: Script,
}

impl App {
    /// Reads the app file.
    pub(crate) fn read(path: &Path) -> Result<App> {
        Ok(App {
            path: path.to_path_buf(),
            script: Script::from_file(path)?,
        })
    }

    /// The directory of the app file, where `require` looks for its modules.
    pub(crate) fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The configuration of a VM serving this app.
    /// The configured one, with the app's directory searched after the configured module
    /// paths.
    fn vm_config(&self, config: &ServerConfig) -> VmConfig {
        config.vm.clone().with_module_path(self.dir())
    }
}

/// What every worker VM gets besides the app: the host library the server adds.
#[derive(Clone)]
pub(crate) struct Host {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) dicts: luapool::SharedDicts,
    /// The process's Redis pool (`[redis]`), given to handlers as the `redis` module.
    pub(crate) redis: Option<luapool_redis::Redis>,
    /// The `[static]` directories, served before any handler.
    pub(crate) statics: crate::static_files::StaticFiles,
}

impl Host {
    /// Builds a worker's VM for `app`: sandboxed, per-request globals, the server's host
    /// library, and the app compiled.
    pub(crate) fn build_vm(&self, app: &App) -> Result<Vm> {
        self.build(app, app.vm_config(&self.config))
    }

    fn build(&self, app: &App, config: VmConfig) -> Result<Vm> {
        let vm = Vm::new(config)?;
        // The server's standard output is not the script's: `print` goes to the log, one
        // escaped event per call, so that a handler cannot forge log or output lines.
        vm.set_output(luapool::LogOutput);
        crate::register_host_library(&vm)?;
        vm.register_module(crate::worker::timer_module())?;
        vm.register_module(crate::worker::stream_module())?;
        vm.register_shared_dicts(&self.dicts)?;
        if let Some(redis) = &self.redis {
            luapool_redis::register(&vm, redis)?;
        }
        vm.compile(&app.script)?;
        Ok(vm)
    }

    /// Checks an app before serving it: it compiles, its top level runs without error
    /// (so a failing `require` is caught at startup), and it defines `handle`.
    pub(crate) fn check(&self, app: &App) -> Result<()> {
        // On a thread of its own, so that this works from inside a caller's runtime.
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.check_here(app))
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::Worker {
                        index: 0,
                        message: "the app check panicked".to_string(),
                    })
                })
        })
    }

    fn check_here(&self, app: &App) -> Result<()> {
        let config = app
            .vm_config(&self.config)
            .with_isolation(Isolation::Shared);
        let vm = self.build(app, config)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Worker {
                index: 0,
                message: format!("cannot start a runtime to check the app: {e}"),
            })?;
        runtime.block_on(vm.exec_async(&app.script))?;
        let kind: String = vm.eval(&Script::new("(check)", "return type(handle)"))?;
        if kind != "function" {
            return Err(Error::NoHandler {
                path: app.path.display().to_string(),
            });
        }
        Ok(())
    }
}
