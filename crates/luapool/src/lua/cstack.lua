-- cstack.lua (LuaJIT): wrappers of engine functions where LuaJIT would break a sandbox
-- guarantee: recursion through C functions fails with "C stack overflow" (the wrapper asks
-- check_stack first), and the table functions that write raw refuse sealed tables. Also
-- the host-function wrapper, which applies the failure protocol of `sandbox/wrap.rs`.
-- See `engine/luajit.rs`, which loads it.
--
-- ...: check_stack (true while enough of the thread's stack is left), error, type, select,
--   coroutine.create, coroutine.resume, string.gsub, string.format, table.sort,
--   table.insert, table.remove, table.move, sealed (weak-keyed set: sealed proxy -> its
--   name), FAIL (the failure marker of host functions), NO_MESSAGE (the error message of
--   a failure without one)
-- Returns: a sequence { host, resume, wrap, gsub, format, sort, insert, remove, move },
--   host(f) wrapping a host function, the others the checked library functions.
-- The engine's functions keep their own names, so that their argument errors read as in
-- Lua ("bad argument #1 to 'insert'"); the wrappers are the checked_*.
local check_stack, error, type, select, create, resume, gsub, format,
  sort, insert, remove, move, sealed, FAIL, NO_MESSAGE = ...
-- argument errors are raised here, at the line of the caller, as LuaJIT's own functions
-- raise them
local function checked_resume(co, ...)
  if type(co) ~= "thread" then error("bad argument #1 to 'resume' (coroutine expected)", 2) end
  if not check_stack() then return false, "C stack overflow" end
  return resume(co, ...)
end
-- as LuaJIT's wrap: a string error gets the position of the caller (`unwrap` is called in
-- tail position: level 2 is the wrapper's caller), other values pass unchanged
local function unwrap(ok, ...)
  if ok then return ... end
  local err = ...
  if type(err) == "string" then error(err, 2) end
  error(err, 0)
end
local function checked_wrap(...)
  local f = ...
  if type(f) ~= "function" then
    local got = select('#', ...) == 0 and "no value" or type(f)
    error("bad argument #1 to 'wrap' (function expected, got " .. got .. ")", 2)
  end
  local co = create(f)
  return function(...) return unwrap(checked_resume(co, ...)) end
end
local function overflow() error("C stack overflow", 3) end
local function checked_gsub(...)
  if not check_stack() then overflow() end
  return gsub(...)
end
local function checked_format(...)
  if not check_stack() then overflow() end
  return format(...)
end
-- the table functions that write raw refuse sealed tables
local function refuse(t, what)
  error("attempt to modify read-only table '" .. sealed[t] .. "' with table." .. what, 3)
end
local function checked_sort(t, ...)
  if not check_stack() then overflow() end
  if sealed[t] then refuse(t, "sort") end
  return sort(t, ...)
end
local function checked_insert(t, ...)
  if sealed[t] then refuse(t, "insert") end
  return insert(t, ...)
end
local function checked_remove(t, ...)
  if sealed[t] then refuse(t, "remove") end
  return remove(t, ...)
end
local function checked_move(a1, f, e, t, a2)
  if sealed[a2 or a1] then refuse(a2 or a1, "move") end
  return move(a1, f, e, t, a2)
end
-- host functions: the failure protocol of `wrap.rs`
local function check(...)
  local first = ...
  if first ~= FAIL then return ... end
  local message = select(2, ...)
  if type(message) ~= "string" then message = NO_MESSAGE end
  -- `check` runs in the wrapper's frame (a tail call): level 2 is the wrapper's caller
  error(message, 2)
end
local function host(f)
  return function(...)
    if not check_stack() then overflow() end
    return check(f(...))
  end
end
return { host, checked_resume, checked_wrap, checked_gsub, checked_format, checked_sort,
  checked_insert, checked_remove, checked_move }
