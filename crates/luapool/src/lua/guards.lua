-- guards.lua: the sandbox functions that keep an execution's limits on every path that
-- runs script code, make limits sticky and track the running coroutine: `pcall`,
-- `xpcall`, `coroutine.resume`, `coroutine.wrap`, `coroutine.close` and the prologue of
-- every execution. Loaded by `sandbox.rs` (`Guards::install`); see also `limits.rs`.
--
-- - A message handler (`xpcall`) runs where the error was raised; when the limit hook
--   raised it, Lua runs the handler with hooks disabled, where nothing could stop it. It
--   is not called once a limit has tripped (the execution's result is the limit error
--   whatever the handler returns).
-- - The prologue runs the execution under `xpcall`, so that an error object's
--   `__tostring` is called inside the execution (under its limits) rather than by the
--   host after the meter has gone, and so that the execution's to-be-closed variables
--   are closed while it is metered. It records the execution's coroutine in `tops`:
--   no execution may resume or close another's coroutine (or its own).
-- - `coroutine.close` tells the interrupt which coroutine runs its `__close` handlers. On
--   Lua 5.5 a script's coroutine may close itself (as in Lua); an execution's may not.
-- - On Lua 5.4 and 5.5 the sandbox's `pcall` and `xpcall` are the C functions of
--   `limits/protected.rs` (with this `handler_for`), which take the engine's place on the
--   call stack, so error levels read as in Lua; the Lua versions here are LuaJIT's, where
--   an error level past the protected function names the guard.
-- - Argument errors of the guards are raised at their caller's line, with Lua's messages.
--
-- ...: the engine's pcall, xpcall, coroutine.create, coroutine.resume, coroutine.running,
--   coroutine.close (or the 5.5 close guard's real close; nil on LuaJIT), error, type,
--   select; the C functions of `limits/interrupt.rs` set_current, trip_memory, tripped,
--   handler (the execution's message handler); tops (the weak-keyed set of executions'
--   coroutines, see `sandbox/main_thread.rs`); announce (the prologue's first step in one
--   C call: `tops[running()] = true; set_current(running())`)
-- Returns: guarded_pcall, guarded_xpcall, guarded_resume, wrap, guarded_close (nil
--   without the engine's close), prologue(f), handler_for(h).
-- The engine's functions keep their own names here, so that their argument errors read as
-- in Lua ("bad argument #2 to 'xpcall'"); the guarded versions are the guarded_*.
local pcall, xpcall, create, resume, running, close, error, type, select,
  set_current, trip_memory, tripped, handler, tops, announce = ...
local MEM = "not enough memory"
local JIT, V55 = _VERSION == "Lua 5.1", _VERSION == "Lua 5.5"
local function checked(ok, ...)
  if not ok and (...) == MEM then trip_memory() end
  return ok, ...
end
-- Lua's argument error, at the line of the guard's caller (`bad_argument` is called from
-- a guard, never in tail position); `nargs` tells a missing argument from a nil
local function bad_argument(n, name, expected, nargs, value)
  local got = nargs < n and "no value" or type(value)
  error("bad argument #" .. n .. " to '" .. name .. "' (" .. expected .. " expected, got "
    .. got .. ")", 3)
end
-- pcall and xpcall as Lua functions: LuaJIT only (Lua 5.4 and 5.5 use `protected.rs`)
local function guarded_pcall(...)
  if select('#', ...) == 0 then return pcall() end -- raises Lua's own 'value expected'
  return checked(pcall(...))
end
-- handler_for(h): the message handler xpcall runs for the script's handler h
local function handler_for(h)
  return function(m)
    if tripped() then return m end
    return h(m)
  end
end
local function guarded_xpcall(f, ...)
  local h = ...
  if type(h) ~= "function" then return xpcall(f, ...) end -- Lua's own argument error
  return checked(xpcall(f, handler_for(h), select(2, ...)))
end
local function restore(prev, ok, ...)
  set_current(prev)
  if not ok and (...) == MEM then trip_memory() end
  return ok, ...
end
local function guarded_resume(...)
  local co = ...
  if type(co) ~= "thread" then
    if JIT then error("bad argument #1 to 'resume' (coroutine expected)", 2) end
    bad_argument(1, "resume", "thread", select('#', ...), co)
  end
  -- an execution's own coroutine is its main thread: it cannot be resumed
  if tops[co] then return false, "cannot resume non-suspended coroutine" end
  local prev = running()
  set_current(co)
  return restore(prev, resume(...))
end
local function closed(prev, ok, ...)
  set_current(prev)
  if ok then return ... end
  error((...), 2)
end
-- `close` is the engine's: a coroutine of the script may close itself on Lua 5.5 (it ends
-- as if it returned); the coroutine of an execution may not (the execution would end as
-- a success), nor the execution's from another coroutine
local guarded_close = close and function(...)
  local co = ...
  if V55 and select('#', ...) == 0 then co = running() end -- 5.5: the running one
  if type(co) ~= "thread" then bad_argument(1, "close", "thread", select('#', ...), co) end
  if tops[co] then
    if co ~= running() then error("cannot close a normal coroutine", 2) end
    if V55 then error("cannot close main thread", 2) end
    error("cannot close a running coroutine", 2)
  end
  local prev = running()
  set_current(co)
  return closed(prev, pcall(close, co))
end
local function unwrap(co, ok, ...)
  if ok then return ... end
  local err = ...
  if close then
    -- the dead coroutine's __close handlers run on it: the interrupt must know
    local prev = running()
    set_current(co)
    close(co)
    set_current(prev)
  end
  if type(err) == "string" then error(err, 2) end
  error(err, 0)
end
local function wrap(...)
  local f = ...
  if type(f) ~= "function" then bad_argument(1, "wrap", "function", select('#', ...), f) end
  local co = create(f)
  return function(...) return unwrap(co, guarded_resume(co, ...)) end
end
local function finish(ok, ...)
  if ok then return ... end
  local e = ...
  if e == MEM then trip_memory() end
  error(e, 0)
end
local function prologue(f)
  return function(...)
    announce() -- tops[co] = true; set_current(co) (nothing on LuaJIT's main thread)
    return finish(xpcall(f, handler, ...))
  end
end
return guarded_pcall, guarded_xpcall, guarded_resume, wrap, guarded_close, prologue,
  handler_for
