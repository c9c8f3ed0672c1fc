//! One Lua state with its sandbox, its chunk cache and its shared globals.

use std::cell::RefCell;

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, Table};

use crate::error::{classify, Error, Result};
use crate::sandbox::{self, Output, Sandbox};
use crate::script::Script;
use crate::vm::cache::ChunkCache;
use crate::vm::Registration;
use crate::{hostlib, VmConfig};

/// Source put before a script so that compiling it once yields a factory: calling the
/// factory with an environment returns a new closure of the script bound to that
/// environment. Kept on the script's first line so line numbers do not move.
const WRAP_PREFIX: &[u8] = b"local _ENV = ...; return function(...) ";
/// Closes the function opened by [`WRAP_PREFIX`], on a line of its own so that a comment
/// on the script's last line cannot swallow it.
const WRAP_SUFFIX: &[u8] = b"\nend";

pub(crate) struct State {
    pub(crate) sandbox: Sandbox,
    /// The globals of `Isolation::Shared` mode.
    pub(crate) shared_env: Table,
    cache: RefCell<ChunkCache>,
}

impl State {
    pub(crate) fn build(
        config: &VmConfig,
        output: Output,
        registrations: &[Registration],
    ) -> Result<State> {
        let sandbox = sandbox::build(config, output).map_err(|e| classify(e, None))?;
        if config.host_library {
            hostlib::install(&sandbox).map_err(|e| classify(e, None))?;
        }
        for reg in registrations {
            reg.apply(&sandbox)?;
        }
        let shared_env =
            sandbox::new_env(&sandbox.lua, &sandbox.env_mt).map_err(|e| classify(e, None))?;
        Ok(State {
            sandbox,
            shared_env,
            cache: RefCell::new(ChunkCache::new(config.chunk_cache_capacity)),
        })
    }

    pub(crate) fn lua(&self) -> &Lua {
        &self.sandbox.lua
    }

    /// A fresh environment over the sealed base.
    pub(crate) fn new_env(&self) -> Result<Table> {
        sandbox::new_env(self.lua(), &self.sandbox.env_mt).map_err(|e| classify(e, None))
    }

    /// The compiled factory of `script`, from the cache or freshly compiled.
    pub(crate) fn factory(&self, script: &Script) -> Result<Function> {
        if let Some(f) = self.cache.borrow_mut().get(script) {
            return Ok(f);
        }
        let factory = compile(self.lua(), script)?;
        self.cache.borrow_mut().insert(script, factory.clone());
        Ok(factory)
    }

    /// Number of compiled chunks in the cache.
    pub(crate) fn cached_chunks(&self) -> usize {
        self.cache.borrow().len()
    }
}

/// Compiles `script` (as text) into its factory.
///
/// The script is first compiled as it is, so that syntax errors are exactly Lua's, with the
/// script's own line numbers; then wrapped (see [`WRAP_PREFIX`]).
fn compile(lua: &Lua, script: &Script) -> Result<Function> {
    let syntax = |e| classify(e, Some(script.name()));
    lua.load(script.source())
        .set_name(script.chunk_name())
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(syntax)?;
    let source = script.source();
    let mut wrapped = Vec::with_capacity(WRAP_PREFIX.len() + source.len() + WRAP_SUFFIX.len());
    wrapped.extend_from_slice(WRAP_PREFIX);
    wrapped.extend_from_slice(source);
    wrapped.extend_from_slice(WRAP_SUFFIX);
    lua.load(wrapped)
        .set_name(script.chunk_name())
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(syntax)
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("used_memory", &self.lua().used_memory())
            .finish()
    }
}

/// Maps an mlua error raised while running (not compiling) a script.
pub(crate) fn run_error(e: mlua::Error) -> Error {
    classify(e, None)
}
