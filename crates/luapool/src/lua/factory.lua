-- factory.lua (LuaJIT): makes the main function of a wrapped chunk. LuaJIT has no
-- `_ENV`: the wrapped chunk returns a new closure of the script at each call, and main
-- sets the chunk's environment first (a closure takes its environment from the function
-- that creates it). Loaded by `engine/chunk.rs` (`main`).
--
-- The chunk's own environment goes back to an empty table once the closure is made, so
-- that a compiled chunk (kept in the VM's cache) does not keep an execution's globals
-- alive.
--
-- ...: setfenv
-- Returns: maker(chunk), which returns main(env, ...): the script run with globals env.
local setfenv = ...
local NONE = {}
return function(chunk)
  return function(env, ...)
    setfenv(chunk, env)
    local f = chunk()
    setfenv(chunk, NONE)
    return f(...)
  end
end
