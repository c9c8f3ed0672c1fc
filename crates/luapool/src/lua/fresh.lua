-- fresh.lua (Lua 5.4, 5.5): makes the per-execution global table of a trusted state with
-- `Isolation::PerExecution`: a copy of the state's globals, with `_G` pointing at it and
-- `load`, `loadfile` and `dofile` binding the chunks they load to it unless given another
-- environment. See `sandbox/trusted.rs`, which loads it (fresh_luajit.lua on LuaJIT).
--
-- ...: G (the state's globals), next, select, error, load, loadfile (then loadstring and
--   setfenv, unused here)
-- Returns: fresh(), which returns a new global table.
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
