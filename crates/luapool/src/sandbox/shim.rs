//! A few helpers written in Lua, loaded into every VM: running a chunk in a fresh
//! environment without extra crossings between Rust and Lua. (Host function failures are
//! turned into Lua string errors by the C wrapper of `wrap.rs`.)
//!
//! The helpers are compiled once per process; each VM loads the bytecode, which is cheaper
//! than parsing the source again.

use std::sync::OnceLock;

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, Table, Value};

/// What a host function returns, as its first value, to have its caller raise an error.
/// A `static`, so that its address is one and the same everywhere.
static FAIL: &str = "__luapool_fail";

/// The address behind [`fail_marker`].
pub(crate) fn fail_pointer() -> *mut std::ffi::c_void {
    FAIL.as_ptr() as *mut std::ffi::c_void
}

/// The marker value: a light userdata (the address of a static) no script can forge.
pub(crate) fn fail_marker() -> Value {
    Value::LightUserData(mlua::LightUserData(fail_pointer()))
}

const SHIM: &str = r#"
local setmetatable, type, env_mt, FAIL = ...
local function call_global(env, main, name, ...)
  main()
  local f = env[name]
  if type(f) ~= "function" then return FAIL end
  return f(...)
end
return
  -- runner(factory): runs the chunk in a fresh environment at each call
  function(factory)
    return function(...)
      -- `_G = false` sizes the table for one key up front: cheaper than growing it
      local env = setmetatable({ _G = false }, env_mt)
      env._G = env
      return factory(env)(...)
    end
  end,
  -- caller(factory): (name, ...) runs the chunk in a fresh environment, then its global
  function(factory)
    return function(name, ...)
      local env = setmetatable({ _G = false }, env_mt)
      env._G = env
      return call_global(env, factory(env), name, ...)
    end
  end,
  -- shared_caller(env, main): (name, ...) runs `main`, then the global `name` of `env`
  function(env, main)
    return function(name, ...) return call_global(env, main, name, ...) end
  end
"#;

/// The compiled helpers of one VM.
///
/// The "caller" helpers return the failure marker alone when the chunk defines no
/// function of the requested name.
pub(crate) struct Shim {
    /// `runner(factory)`: a function `(...)` running the chunk in a fresh environment.
    pub(crate) runner: Function,
    /// `caller(factory)`: a function `(name, ...)` running the chunk in a fresh
    /// environment, then calling its global `name`.
    pub(crate) caller: Function,
    /// `shared_caller(env, main)`: a function `(name, ...)` running `main`, then calling
    /// the global `name` of `env`.
    pub(crate) shared_caller: Function,
}

impl Shim {
    pub(crate) fn load(lua: &Lua, env_mt: &Table) -> mlua::Result<Shim> {
        let globals = lua.globals();
        static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
        let (runner, caller, shared_caller) =
            load_helper(lua, &BYTECODE, SHIM)?.call::<(Function, Function, Function)>((
                globals.raw_get::<Function>("setmetatable")?,
                globals.raw_get::<Function>("type")?,
                env_mt.clone(),
                fail_marker(),
            ))?;
        Ok(Shim {
            runner,
            caller,
            shared_caller,
        })
    }
}

/// Loads one of luapool's own Lua helpers: compiled once per process (by a throwaway
/// state, kept in `cell`), loaded into each VM as bytecode.
pub(crate) fn load_helper(
    lua: &Lua,
    cell: &'static OnceLock<Vec<u8>>,
    source: &str,
) -> mlua::Result<Function> {
    lua.load(precompiled(cell, source)?)
        .set_name("=luapool")
        .set_mode(ChunkMode::Binary)
        .into_function()
}

fn precompiled(cell: &'static OnceLock<Vec<u8>>, source: &str) -> mlua::Result<&'static [u8]> {
    if let Some(b) = cell.get() {
        return Ok(b);
    }
    let lua = Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::new())?;
    let f = lua.load(source).set_name("=luapool").into_function()?;
    Ok(cell.get_or_init(|| f.dump(false)))
}
