//! Globals of trusted executions.
//!
//! A trusted VM is the interpreter: its scripts' globals are the Lua state's own global
//! table, with every standard library as the engine made it (writable, `require` and
//! `package` as in Lua, the real string metatable). With [`Isolation::Shared`] every
//! execution uses that table, as one `lua` process would.
//!
//! With [`Isolation::PerExecution`] each execution gets a fresh table holding a copy of
//! the state's globals (so `pairs(_G)` and `rawget(_G, "print")` see every standard
//! global), with `_G` pointing at it, and `load`, `loadfile` and `dofile` (LuaJIT: also
//! `loadstring`) binding the chunks they load to it unless given another environment.
//! What the copy shares with the state: the library tables themselves (a trusted script
//! can change `string` for every later execution) and the modules `require` loads, which
//! run once per VM in the state's own globals, as `package.loaded` records them.
//!
//! [`Isolation::Shared`]: crate::Isolation::Shared
//! [`Isolation::PerExecution`]: crate::Isolation::PerExecution

use std::sync::OnceLock;

use mlua::{Function, Lua, Value};

use super::shim::load_helper;

#[cfg(not(feature = "luajit"))]
const FRESH: &str = r#"
local G, next, select, error, load, loadfile = ...
return function()
  local env = {}
  for k, v in next, G do env[k] = v end
  env._G = env
  local function env_loadfile(file, mode, ...)
    if select('#', ...) == 0 then return loadfile(file, mode, env) end
    return loadfile(file, mode, ...)
  end
  env.load = function(chunk, name, mode, ...)
    if select('#', ...) == 0 then return load(chunk, name, mode, env) end
    return load(chunk, name, mode, ...)
  end
  env.loadfile = env_loadfile
  env.dofile = function(file)
    local f, e = env_loadfile(file)
    if not f then error(e, 0) end
    return f()
  end
  return env
end
"#;

#[cfg(feature = "luajit")]
const FRESH: &str = r#"
local G, next, select, error, load, loadfile, loadstring, setfenv = ...
return function()
  local env = {}
  for k, v in next, G do env[k] = v end
  env._G = env
  local function bound(f, e)
    if f then setfenv(f, env) end
    return f, e
  end
  local function env_loadfile(...) return bound(loadfile(...)) end
  env.load = function(...) return bound(load(...)) end
  env.loadstring = function(...) return bound(loadstring(...)) end
  env.loadfile = env_loadfile
  env.dofile = function(file)
    local f, e = env_loadfile(file)
    if not f then error(e, 0) end
    return f()
  end
  return env
end
"#;

/// `debug.traceback` of a trusted state with limits: the engine's, without the frames of
/// luapool's Lua guards (`pcall`, `xpcall`, the execution's prologue; see
/// `limits::GUARDS`), which the script would otherwise see where Lua shows C functions.
const TRACEBACK: &str = r#"
local traceback, type, select, gsub, sub, error, tonumber = ...
return function(...)
  local tb
  if type((...)) == "thread" then
    tb = traceback(...)
  else
    local msg, level = ...
    local n = select('#', ...)
    -- one level more: this function's own frame
    if n < 2 then level = 1 end
    if type(level) == "number" then level = level + 1 end
    if n == 0 then
      -- no message: passing a nil one with a level would make LuaJIT return it
      tb = traceback("", level)
      if type(tb) == "string" then tb = sub(tb, 2) end
    else
      if type(level) ~= "number" and tonumber(level) == nil then
        -- Lua's argument error, raised at the caller's call (not this function's line)
        error("bad argument #2 to 'traceback' (number expected, got " .. type(level) .. ")", 2)
      end
      tb = traceback(msg, level)
    end
  end
  if type(tb) ~= "string" then return tb end
  return (gsub(tb, "\n\tluapool:[^\n]*", ""))
end
"#;

/// Replaces `debug.traceback` of a trusted state with limits (see [`TRACEBACK`]).
pub(crate) fn hide_guards_in_tracebacks(lua: &Lua) -> mlua::Result<()> {
    static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
    let g = lua.globals();
    let debug: mlua::Table = g.raw_get("debug")?;
    let string: mlua::Table = g.raw_get("string")?;
    let traceback: Function = load_helper(lua, &BYTECODE, TRACEBACK)?.call((
        debug.raw_get::<Function>("traceback")?,
        g.raw_get::<Function>("type")?,
        g.raw_get::<Function>("select")?,
        string.raw_get::<Function>("gsub")?,
        string.raw_get::<Function>("sub")?,
        g.raw_get::<Function>("error")?,
        g.raw_get::<Function>("tonumber")?,
    ))?;
    debug.raw_set("traceback", traceback)
}

/// `fresh()`: a new per-execution global table of a trusted state (see the module docs).
pub(crate) fn fresh_env_maker(lua: &Lua) -> mlua::Result<Function> {
    static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
    let g = lua.globals();
    let get = |name: &str| g.raw_get::<Value>(name);
    load_helper(lua, &BYTECODE, FRESH)?.call((
        g.clone(),
        get("next")?,
        get("select")?,
        get("error")?,
        get("load")?,
        get("loadfile")?,
        get("loadstring")?,
        get("setfenv")?,
    ))
}
