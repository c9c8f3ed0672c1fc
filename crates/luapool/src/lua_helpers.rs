//! luapool's own Lua helpers: small Lua programs, one per file under `src/lua/`, that the
//! sandbox, the limits and the VMs load into their states. Each file starts with a
//! comment saying what it is, the parameters its chunk takes (`...`) and what it returns.
//!
//! A helper is compiled once per process (by a throwaway state; the bytecode is kept in
//! one process-wide cache) and loaded into each state as bytecode, which is cheaper than
//! parsing the source again. Every helper's chunk is named `=luapool`, so its frames read
//! `luapool:` in error positions and tracebacks (which luapool filters on that prefix).

use std::sync::OnceLock;

use mlua::chunk::ChunkMode;
use mlua::{ErrorContext, Function, Lua};

use crate::engine::EngineHelper;

/// The chunk name of every helper.
const CHUNK_NAME: &str = "=luapool";

/// One of luapool's Lua helpers (one file under `src/lua/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Helper {
    /// `shim.lua`: running a chunk in a fresh environment, compiling under limits (see
    /// `sandbox/shim.rs`).
    Shim,
    /// `guards.lua`: the limits' guarded `pcall`, `xpcall`, `coroutine` functions and the
    /// prologue of every execution.
    Guards,
    /// `close_guard.lua`: Lua 5.5's `coroutine.close` refusing an execution's coroutine.
    CloseGuard,
    /// `bounded.lua`: library functions whose loops the limits bound (see
    /// `sandbox/bounded.rs`).
    Bounded,
    /// `main_thread.lua`: executions as the main chunk (see `sandbox/main_thread.rs`).
    MainThread,
    /// `globals.lua`: the `__newindex` of executions' globals (see `sandbox/globals.rs`).
    Globals,
    /// `traceback.lua`: a trusted state's `debug.traceback` without the guards' frames.
    Traceback,
    /// A helper whose source depends on the engine (see `engine/helpers.rs`).
    Engine(EngineHelper),
}

impl Helper {
    /// Every helper of this build's engine.
    #[cfg(test)]
    fn all() -> Vec<Helper> {
        let common = [
            Helper::Shim,
            Helper::Guards,
            Helper::CloseGuard,
            Helper::Bounded,
            Helper::MainThread,
            Helper::Globals,
            Helper::Traceback,
        ];
        let engine = EngineHelper::ALL.iter().map(|&h| Helper::Engine(h));
        common.into_iter().chain(engine).collect()
    }

    /// Number of variants, whatever the engine (the size of the bytecode cache).
    const COUNT: usize = 7 + EngineHelper::COUNT;

    /// The file under `src/lua/` holding the helper's source.
    pub(crate) fn file(self) -> &'static str {
        match self {
            Helper::Shim => "shim.lua",
            Helper::Guards => "guards.lua",
            Helper::CloseGuard => "close_guard.lua",
            Helper::Bounded => "bounded.lua",
            Helper::MainThread => "main_thread.lua",
            Helper::Globals => "globals.lua",
            Helper::Traceback => "traceback.lua",
            Helper::Engine(h) => h.file_and_source().0,
        }
    }

    /// The helper's Lua source.
    pub(crate) fn source(self) -> &'static str {
        match self {
            Helper::Shim => include_str!("lua/shim.lua"),
            Helper::Guards => include_str!("lua/guards.lua"),
            Helper::CloseGuard => include_str!("lua/close_guard.lua"),
            Helper::Bounded => include_str!("lua/bounded.lua"),
            Helper::MainThread => include_str!("lua/main_thread.lua"),
            Helper::Globals => include_str!("lua/globals.lua"),
            Helper::Traceback => include_str!("lua/traceback.lua"),
            Helper::Engine(h) => h.file_and_source().1,
        }
    }

    /// The helper's slot in the bytecode cache.
    fn index(self) -> usize {
        match self {
            Helper::Shim => 0,
            Helper::Guards => 1,
            Helper::CloseGuard => 2,
            Helper::Bounded => 3,
            Helper::MainThread => 4,
            Helper::Globals => 5,
            Helper::Traceback => 6,
            Helper::Engine(h) => 7 + h.index(),
        }
    }
}

/// Loads `helper` into `lua`: its main chunk, which the caller calls with the helper's
/// parameters (see the top of its file). Compiled on first use in the process.
pub(crate) fn load(lua: &Lua, helper: Helper) -> mlua::Result<Function> {
    lua.load(bytecode(helper)?)
        .set_name(CHUNK_NAME)
        .set_mode(ChunkMode::Binary)
        .into_function()
}

/// The compiled helper, from the process-wide cache.
fn bytecode(helper: Helper) -> mlua::Result<&'static [u8]> {
    static CACHE: [OnceLock<Vec<u8>>; Helper::COUNT] = [const { OnceLock::new() }; Helper::COUNT];
    let cell = &CACHE[helper.index()];
    if let Some(b) = cell.get() {
        return Ok(b);
    }
    let lua = Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::new())?;
    let f = lua
        .load(helper.source())
        .set_name(CHUNK_NAME)
        .into_function()
        .map_err(|e| e.context(format!("luapool's Lua helper src/lua/{}", helper.file())))?;
    Ok(cell.get_or_init(|| f.dump(false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every helper of the build's engine compiles, and loads (as bytecode) into a fresh
    /// state: a syntax error in a `.lua` file fails here, naming the file.
    #[test]
    fn every_helper_compiles_and_loads() {
        for helper in Helper::all() {
            let lua = Lua::new();
            if let Err(e) = load(&lua, helper) {
                panic!("src/lua/{}: {e}", helper.file());
            }
        }
    }

    /// Every file under `src/lua/` is one helper's (none left over), and each parses on
    /// this build's engine (the other engines' files too).
    #[test]
    fn every_file_is_a_helper_and_parses() -> std::io::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lua");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            files.push(entry?.file_name().to_string_lossy().into_owned());
        }
        files.sort();
        let mut known: Vec<String> = Helper::all()
            .into_iter()
            .map(|h| h.file())
            .chain(EngineHelper::OTHER_ENGINES.iter().copied())
            .map(String::from)
            .collect();
        known.sort();
        assert_eq!(files, known);
        let lua = Lua::new();
        for file in &files {
            let source = std::fs::read_to_string(dir.join(file))?;
            if let Err(e) = lua.load(&source).set_name(file).into_function() {
                panic!("src/lua/{file}: {e}");
            }
        }
        Ok(())
    }

    #[test]
    fn indexes_are_distinct_and_in_range() {
        let mut seen = [false; Helper::COUNT];
        for helper in Helper::all() {
            assert!(!seen[helper.index()], "{helper:?}");
            seen[helper.index()] = true;
        }
    }
}
