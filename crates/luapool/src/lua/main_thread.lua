-- main_thread.lua: executions run as Lua's main chunk would (see
-- `sandbox/main_thread.rs`, which loads it).
--
-- ...: coroutine.running, coroutine.isyieldable (nil where the engine has none), tops (the
--   weak-keyed set of executions' coroutines)
-- Returns: mark(f) (f, recording the coroutine that runs it as an execution's), and
--   LuaJIT's main-thread isyieldable() (nil without the engine's isyieldable).
local running, isyieldable, tops = ...
-- mark(f): f, recording the coroutine that runs it as an execution's
local function mark(f)
  return function(...)
    local co = running() -- nil on LuaJIT's main thread
    if co then tops[co] = true end
    return f(...)
  end
end
-- LuaJIT's isyieldable (no argument): the C API has no lua_isyieldable there
local main_isyieldable = isyieldable and function()
  if tops[running()] then return false end
  return isyieldable()
end
return mark, main_isyieldable
