-- traceback.lua: `debug.traceback` of a trusted state with limits: the engine's, without
-- the frames of luapool's Lua guards (`pcall`, `xpcall`, the execution's prologue; see
-- guards.lua), which the script would otherwise see where Lua shows C functions. Loaded
-- by `sandbox/trusted.rs`. Its frames, like every helper's, are named `luapool:`.
--
-- ...: the engine's debug.traceback, type, select, string.gsub, string.sub, error,
--   tonumber
-- Returns: the replacement traceback(...), with the arguments of debug.traceback.
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
