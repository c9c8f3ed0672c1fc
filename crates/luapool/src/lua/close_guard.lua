-- close_guard.lua (Lua 5.5): `coroutine.close` of the real library, refusing to close an
-- execution's own coroutine (Lua 5.5 lets a coroutine close itself, which would end the
-- execution as if it had returned; closing another execution's would end that one). The
-- script's own coroutines close (themselves too) as in Lua 5.5. Loaded by `sandbox.rs`
-- (`guard_close`).
--
-- ...: the engine's coroutine.close, coroutine.running, error, type, select; tops (the
--   weak-keyed set of executions' coroutines)
-- Returns: the guarded close(co).
local close, running, error, type, select, tops = ...
return function(...)
  local co = ...
  local n = select('#', ...)
  if n == 0 then co = running() end -- the running coroutine by default
  if type(co) ~= "thread" then
    error("bad argument #1 to 'close' (thread expected, got "
      .. (n == 0 and "no value" or type(co)) .. ")", 2)
  end
  local current, main = running()
  if co == current and (main or tops[co]) then error("cannot close main thread", 2) end
  if tops[co] then error("cannot close a normal coroutine", 2) end
  return close(co)
end
