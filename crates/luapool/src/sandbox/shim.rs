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

/// What `load` says of a binary chunk.
pub(crate) const BINARY: &str =
    "attempt to load a binary chunk: binary chunks are not allowed in the sandbox";

/// Whether the compiler reads the source piece by piece from a Lua function (Lua 5.4,
/// 5.5). Not on LuaJIT: a limit raised by the hook inside its compiler's reader leaves
/// LuaJIT's hook machinery off for the rest of the state's life (no later limit would
/// fire), so there a reader function is drained in Lua first and the source compiled
/// in one call, which limits cannot interrupt.
const PIECEWISE: bool = cfg!(not(feature = "luajit"));

/// The engine's `table.concat` for LuaJIT's `compile` (from the engine's own `table`
/// library, not the sandbox's wrapped one); not needed elsewhere.
fn table_concat(lua: &Lua) -> mlua::Result<Value> {
    if PIECEWISE {
        return Ok(Value::Nil);
    }
    lua.load_std_libs(mlua::StdLib::TABLE)?;
    let table: Table = lua.globals().raw_get("table")?;
    table.raw_get("concat")
}

/// Bytes of source the compiler gets at a time (see [`Shim::compile`]).
pub(crate) const PIECE: i64 = 1024;

const SHIM: &str = r#"
local setmetatable, type, env_mt, FAIL, load, sub, PIECE, error, BINARY, PIECEWISE, concat = ...
-- LuaJIT: the whole source of a reader function, read in Lua
local function drain(reader)
  local parts, n = {}, 0
  while true do
    local piece = reader()
    if piece == nil or piece == "" then return concat(parts) end
    if type(piece) == "number" then piece = concat({ piece }) end -- as LuaJIT's reader does
    if type(piece) ~= "string" then error("reader function must return a string", 0) end
    n = n + 1
    parts[n] = piece
  end
end
local function loaded(ok, ...)
  if ok then return ... end
  return nil, (...)
end
local function call_global(env, main, name, ...)
  main()
  local f = env[name]
  if type(f) ~= "function" then return FAIL end
  return f(...)
end
return
  -- runner(factory, fresh): runs the chunk in a fresh environment at each call (made by
  -- `fresh()` when given: a trusted state's)
  function(factory, fresh)
    if fresh then
      return function(...) return factory(fresh())(...) end
    end
    return function(...)
      -- `_G = false` sizes the table for one key up front: cheaper than growing it
      local env = setmetatable({ _G = false }, env_mt)
      env._G = env
      return factory(env)(...)
    end
  end,
  -- caller(factory, fresh): (name, ...) runs the chunk in a fresh environment, then its
  -- global
  function(factory, fresh)
    if fresh then
      return function(name, ...)
        local env = fresh()
        return call_global(env, factory(env), name, ...)
      end
    end
    return function(name, ...)
      local env = setmetatable({ _G = false }, env_mt)
      env._G = env
      return call_global(env, factory(env), name, ...)
    end
  end,
  -- shared_caller(env, main): (name, ...) runs `main`, then the global `name` of `env`
  function(env, main)
    return function(name, ...) return call_global(env, main, name, ...) end
  end,
  -- compile(chunk, name, env, nil_env): the engine's `load` of a text chunk (a string or a
  -- reader function), fed PIECE bytes at a time by a Lua reader so that the limit hook
  -- fires while the compiler works; a nil `env` means none unless `nil_env` (then the
  -- chunk's _ENV is nil)
  function(chunk, name, env, nil_env)
    local reader = chunk
    if type(chunk) == "function" then
      local first = true
      reader = function()
        local piece = chunk()
        if first and type(piece) == "string" and piece ~= "" then
          first = false
          if sub(piece, 1, 1) == "\27" then error(BINARY, 0) end
        end
        return piece
      end
      if not PIECEWISE then
        -- LuaJIT: the reader runs here, not inside the compiler, and the pieces are
        -- joined in Lua memory (see `PIECEWISE`)
        local ok, source = pcall(drain, reader)
        if not ok then return nil, source end
        reader = source
      end
    elseif type(chunk) == "string" and PIECEWISE then
      local i = 1
      reader = function()
        local piece = sub(chunk, i, i + PIECE - 1)
        i = i + PIECE
        return piece
      end
    end
    -- under pcall: the compiler runs with the message handler of its caller, which must
    -- not see the errors of the reader (a limit, raised in it)
    if env == nil and not nil_env then return loaded(pcall(load, reader, name, "t")) end
    return loaded(pcall(load, reader, name, "t", env))
  end
"#;

/// The compiled helpers of one VM.
///
/// The "caller" helpers return the failure marker alone when the chunk defines no
/// function of the requested name.
pub(crate) struct Shim {
    /// `runner(factory, fresh)`: a function `(...)` running the chunk in a fresh
    /// environment (made by `fresh()` if given, else over the sandbox's base).
    pub(crate) runner: Function,
    /// `caller(factory, fresh)`: a function `(name, ...)` running the chunk in a fresh
    /// environment (as `runner` makes it), then calling its global `name`.
    pub(crate) caller: Function,
    /// `shared_caller(env, main)`: a function `(name, ...)` running `main`, then calling
    /// the global `name` of `env`.
    pub(crate) shared_caller: Function,
    /// `compile(chunk, name, env, nil_env)`: the engine's `load(chunk, name, "t", env)`
    /// of a string or a reader function (a `nil` env means none, unless `nil_env` says it
    /// is the chunk's `_ENV`); the compiler reads [`PIECE`] bytes at a time from a
    /// Lua function, so a long compilation is stopped by the execution's limits like any
    /// Lua code, and the source it holds is in Lua memory (counted by the memory limit).
    pub(crate) compile: Function,
}

impl Shim {
    pub(crate) fn load(lua: &Lua, env_mt: &Table) -> mlua::Result<Shim> {
        let globals = lua.globals();
        static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
        let string: Table = globals.raw_get("string")?;
        let (runner, caller, shared_caller, compile) =
            load_helper(lua, &BYTECODE, SHIM)?.call::<(Function, Function, Function, Function)>(
                (
                    globals.raw_get::<Function>("setmetatable")?,
                    globals.raw_get::<Function>("type")?,
                    env_mt.clone(),
                    fail_marker(),
                    globals.raw_get::<Function>("load")?,
                    string.raw_get::<Function>("sub")?,
                    PIECE,
                    globals.raw_get::<Function>("error")?,
                    BINARY,
                    PIECEWISE,
                    table_concat(lua)?,
                ),
            )?;
        Ok(Shim {
            runner,
            caller,
            shared_caller,
            compile,
        })
    }
}

/// A table whose keys are weak (`__mode = "k"`): a set of objects that does not keep
/// them alive.
pub(crate) fn weak_keyed_table(lua: &Lua) -> mlua::Result<Table> {
    let set = lua.create_table()?;
    let mode = lua.create_table_with_capacity(0, 1)?;
    mode.raw_set("__mode", "k")?;
    set.set_metatable(Some(mode))?;
    Ok(set)
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
