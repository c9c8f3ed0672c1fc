-- factory.lua (LuaJIT): makes the main function of a wrapped chunk. LuaJIT has no
-- `_ENV`: the wrapped chunk returns a new closure of the script at each call, and main
-- sets the chunk's environment first (a closure takes its environment from the function
-- that creates it). Loaded by `engine/chunk.rs` (`main`).
--
-- ...: setfenv
-- Returns: maker(chunk), which returns main(env, ...): the script run with globals env.
local setfenv = ...
return function(chunk)
  return function(env, ...) setfenv(chunk, env) return chunk()(...) end
end
