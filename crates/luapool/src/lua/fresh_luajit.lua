-- fresh_luajit.lua (LuaJIT): makes the per-execution global table of a trusted state with
-- `Isolation::PerExecution`, as fresh.lua does elsewhere: a copy of the state's globals,
-- with `_G` pointing at it, and `load`, `loadstring`, `loadfile` and `dofile` setting the
-- environment of the chunks they load to it. See `sandbox/trusted.rs`, which loads it.
--
-- ...: G (the state's globals), next, select (unused here), error, load, loadfile,
--   loadstring, setfenv
-- Returns: fresh(), which returns a new global table.
local G, next, _, error, load, loadfile, loadstring, setfenv = ...
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
