-- shim.lua: running a compiled chunk in a fresh environment, and compiling text chunks
-- under the execution's limits, without extra crossings between Rust and Lua. Loaded into
-- every VM by `sandbox/shim.rs` (`Shim::load`).
--
-- ...: setmetatable, type, env_mt (the metatable of executions' environments), FAIL (the
--   failure marker of host functions), load, string.sub, PIECE (bytes the compiler gets
--   at a time), error, BINARY (the message refusing a binary chunk), PIECEWISE (false on
--   LuaJIT: a reader function is drained in Lua, then compiled in one call), concat (the
--   engine's table.concat on LuaJIT; nil elsewhere), pcall (the state's, as the helper
--   is loaded: a trusted script may change the global later)
-- Returns: runner, caller, shared_caller, bind, ignore_env, compile (described where each
-- is made, below). A script's `main(env, ...)` runs it with globals `env` (see
-- `engine/chunk.rs`).
-- The "caller" helpers return FAIL alone when the chunk defines no function of the
-- requested name.
local setmetatable, type, env_mt, FAIL, load, sub, PIECE, error, BINARY, PIECEWISE, concat,
  pcall = ...
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
  main(env)
  local f = env[name]
  if type(f) ~= "function" then return FAIL end
  return f(...)
end
return
  -- runner(main, fresh): runs the chunk in a fresh environment at each call (made by
  -- `fresh()` when given: a trusted state's)
  function(main, fresh)
    if fresh then
      return function(...) return main(fresh(), ...) end
    end
    return function(...)
      -- `_G = false` sizes the table for one key up front: cheaper than growing it
      local env = setmetatable({ _G = false }, env_mt)
      env._G = env
      return main(env, ...)
    end
  end,
  -- caller(main, fresh): (name, ...) runs the chunk in a fresh environment, then its
  -- global
  function(main, fresh)
    if fresh then
      return function(name, ...)
        return call_global(fresh(), main, name, ...)
      end
    end
    return function(name, ...)
      local env = setmetatable({ _G = false }, env_mt)
      env._G = env
      return call_global(env, main, name, ...)
    end
  end,
  -- shared_caller(env, main): (name, ...) runs `main(env)`, then the global `name` of
  -- `env`
  function(env, main)
    return function(name, ...) return call_global(env, main, name, ...) end
  end,
  -- bind(main, env): (...) runs the chunk with globals `env`
  function(main, env)
    return function(...) return main(env, ...) end
  end,
  -- ignore_env(chunk): main(env, ...) of a chunk compiled with the state's own globals
  function(chunk)
    return function(_, ...) return chunk(...) end
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
