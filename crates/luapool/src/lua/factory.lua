-- factory.lua (LuaJIT): makes the factory of a wrapped chunk. LuaJIT has no `_ENV`: the
-- wrapped chunk returns a new closure of the script at each call, and the factory sets
-- the chunk's environment first (a closure takes its environment from the function that
-- creates it). Loaded by `engine/chunk.rs` (`factory`).
--
-- ...: setfenv
-- Returns: maker(chunk), which returns factory(env): the script's main function bound to
--   env.
local setfenv = ...
return function(chunk)
  return function(env) setfenv(chunk, env) return chunk() end
end
