-- Conformance: error values, levels, pcall/xpcall, assert, runtime error messages and
-- debug.traceback (the only debug function the sandbox keeps).
local JIT = _VERSION == "Lua 5.1"
local V55 = _VERSION == "Lua 5.5"

-- "^<chunk>:%d+: ": the position prefix of errors raised in this file. The chunk name is
-- whatever the file was run as (a relative or absolute path, maybe shortened by Lua), so
-- it is read from an error rather than written here.
local CHUNK = select(2, pcall(function() error("@") end)):match("^(.*):%d+: @$")
local POS = "^" .. CHUNK:gsub("%p", "%%%0") .. ":%d+: "

local checks = require("lib.check")
local check, eq = checks.check, checks.eq
-- The error value of f(...), which must fail.
local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  if ok then error("expected an error, got none", 2) end
  return e
end
-- The "file:line:" prefix of a string error.
local function where(m) return (tostring(m):match("^(.-:%d+:) ")) end

-- string errors get "file:line:"
local e = err_of(function() error("boom") end)
check(e:find(POS .. "boom$"), "error(msg) adds the position: " .. e)
e = err_of(function() error("boom", 1) end)
check(e:find(POS .. "boom$"), "error level 1 is the function calling error: " .. e)
e = err_of(function() error("no position", 0) end)
eq(e, "no position", "error level 0 adds nothing")
-- Level 2 and 3 name the line of the caller: compared with an error raised on that same line.
local function lvl2() error("two", 2) end
local function lvl2_caller(go) if go then lvl2() else error("ref") end return 1 end
e = err_of(lvl2_caller, true)
check(e:find(POS .. "two$"), "error level 2 message: " .. e)
eq(where(e), where(err_of(lvl2_caller, false)), "error level 2 names the caller's line")
local function lvl3() error("three", 3) end
local function mid() lvl3(); return 1 end
local function top(go) if go then mid() else error("ref") end return 1 end
e = err_of(top, true)
eq(where(e), where(err_of(top, false)), "error level 3 names the caller's caller")
check(where(e) ~= where(err_of(mid)), "levels 2 and 3 differ")
-- Levels that reach past the protected function name the caller of pcall/xpcall (with
-- limits, the guarded versions take pcall's place on the stack).
-- LUAPOOL-BUG (LuaJIT with limits only): there the guarded pcall/xpcall are Lua functions
-- (a C function cannot be yielded across on LuaJIT, and a tail call would drop the
-- guard's memory-limit check), so such a level names the guard ("luapool:N: x").
local GUARD_FRAME = JIT and select(2, pcall(error, "x", 2)):find("^luapool:") ~= nil
if not GUARD_FRAME then
  e = err_of(error, "x", 2)
  check(e:find(POS .. "x$"), "pcall(error, msg, 2) names the caller of pcall: " .. e)
  local function raise3() error("three", 3) end
  local lvl2, lvl3 = select(2, pcall(error, "ref", 2)), select(2, pcall(raise3))
  check(lvl2:find(POS .. "ref$"), "pcall(error, msg, 2) at the top level: " .. lvl2)
  eq(where(lvl3), where(lvl2), "level 3 from a pcall'd function names the caller of pcall")
  local xok, xe = xpcall(error, function(m) return m end, "y", 2)
  check(not xok and xe:find(POS .. "y$"), "xpcall(error, h, msg, 2) names the caller of xpcall: " .. tostring(xe))
  local function tail_pcall() return pcall(raise3) end
  e = select(2, tail_pcall())
  check(e:find(POS .. "three$"), "level 3 through a tail-called pcall: " .. e)
end

-- non-string errors pass through unchanged
local tag = { code = 7 }
check(err_of(error, tag) == tag, "table error is the same table")
check(err_of(function() error(tag, 2) end) == tag, "a level does not change a table")
if JIT then
  -- LuaJIT (5.1 rules) treats a number like a string message: converted, position added
  eq(err_of(error, 42), "42", "LuaJIT: number error becomes a string")
  check(err_of(function() error(42) end):find(POS .. "42$"),
    "LuaJIT: number error from a Lua function gets a position")
  eq(err_of(function() error(42, 0) end), 42, "LuaJIT: number error with level 0 is unchanged")
else
  eq(err_of(error, 42), 42, "number error is unchanged")
  eq(err_of(function() error(42) end), 42, "number error from a Lua function has no position")
  eq(math.type(err_of(error, 42)), "integer", "number error keeps its subtype")
end
eq(err_of(error, true), true, "boolean error")
local fn_err = function() end
check(err_of(error, fn_err) == fn_err, "function error")
if V55 then
  -- Lua 5.5 replaces a nil error value by a message
  eq(err_of(error, nil), "<no error object>", "5.5: error(nil)")
  eq(err_of(error), "<no error object>", "5.5: error()")
else
  eq(err_of(error, nil), nil, "error(nil) gives nil")
  eq(select("#", pcall(error)), 2, "pcall(error) returns false and nil")
end

-- tostring of error values
local obj = setmetatable({}, { __tostring = function() return "custom error" end })
eq(tostring(err_of(error, obj)), "custom error", "tostring of an error object with __tostring")
eq(tostring(err_of(error, 3.5, 0)), "3.5", "tostring of a number error")

-- pcall
eq(table.concat({ tostring(pcall(function(a, b) return a + b, "x" end, 1, 2)) }), "true",
  "pcall returns true first")
local ok, v1, v2 = pcall(function(a, b) return a + b, "x" end, 1, 2)
check(ok == true and v1 == 3 and v2 == "x", "pcall passes arguments and returns every result")
eq(select("#", pcall(function() return nil, nil end)), 3, "pcall keeps trailing nils")
ok, e = pcall(pcall, error, "inner")
check(ok == true and e == false, "nested pcall catches the inner error")
ok, e = pcall(function()
  local ok2, e2 = pcall(error, "deep", 0)
  error("outer:" .. e2, 0)
end)
eq(e, "outer:deep", "error raised after catching one")
local okp, ep = pcall(pcall)
-- (with limits, the guarded pcall once returned false instead of raising; fixed)
check(not okp and ep:find("bad argument #1 to", 1, true) and ep:find("value expected", 1, true),
  "pcall without a function: " .. tostring(ep))
ok, e = pcall(nil)
check(ok == false and e:find("attempt to call a nil value", 1, true), "pcall(nil) fails: " .. tostring(e))

-- xpcall
local handled
ok, e = xpcall(function() error("x") end, function(m) handled = m; return "handled: " .. m end)
check(ok == false and e:find("^handled: " .. POS:sub(2) .. "x$"), "xpcall handler result: " .. tostring(e))
check(handled:find(POS .. "x$"), "handler receives the original message")
ok, v1 = xpcall(function(a, b) return a + b end, debug.traceback, 1, 2)
check(ok and v1 == 3, "xpcall passes extra arguments (5.2+ and LuaJIT)")
ok, e = xpcall(function() error({ code = 7 }) end, function(t) return type(t) == "table" and t.code end)
check(ok == false and e == 7, "xpcall handler receives a table error")
ok, e = xpcall(function() error("x") end, function() error("in handler") end)
check(ok == false and type(e) == "string", "an error in the handler: " .. tostring(e))
ok, e = xpcall(function() local x = nil; return x.y end, debug.traceback)
check(not ok and e:find("attempt to index", 1, true) and e:find("stack traceback:", 1, true),
  "xpcall with debug.traceback: " .. tostring(e))
ok, e = pcall(xpcall, function() end)
check(not ok and e:find("bad argument #2", 1, true), "xpcall without a handler: " .. tostring(e))
if JIT then
  -- LuaJIT names a function called from pcall '?'
  check(e:find("bad argument #2 to '?' (function expected, got no value)", 1, true),
    "xpcall bad argument message: " .. e)
else
  eq(e, "bad argument #2 to 'xpcall' (function expected, got no value)", "xpcall bad argument message")
end
if not GUARD_FRAME then
  ok, e = pcall(function() local r = xpcall(print, 5) return r end)
  check(not ok and e:find(POS .. "bad argument #2 to 'xpcall' %(function expected, got number%)$"),
    "xpcall with a number handler names the caller: " .. tostring(e))
end

-- assert
eq(err_of(assert, false), "assertion failed!", "assert(false)")
eq(err_of(assert, nil, "msg"), "msg", "assert message has no position")
check(err_of(assert, false, tag) == tag, "assert with a table message")
eq(table.concat({ assert(1, 2, 3) }, ","), "1,2,3", "assert returns all its arguments")
check(err_of(assert):find("bad argument #1", 1, true), "assert() without arguments")
eq(assert("x"), "x", "assert returns a true value")

-- runtime error messages
local function rt(f)
  local m = err_of(f)
  check(m:find(POS), "runtime error has a position: " .. m)
  return (m:gsub(POS, ""))
end
eq(rt(function() local x; x.y = 1 end),
  JIT and "attempt to index local 'x' (a nil value)" or "attempt to index a nil value (local 'x')",
  "index a nil local")
eq(rt(function() undefined_function_xyz() end),
  JIT and "attempt to call global 'undefined_function_xyz' (a nil value)"
  or "attempt to call a nil value (global 'undefined_function_xyz')", "call an undefined global")
eq(rt(function() local t = {} t.a.b = 1 end),
  JIT and "attempt to index field 'a' (a nil value)" or "attempt to index a nil value (field 'a')",
  "index a nil field")
eq(rt(function() local t = {} return t.x + 1 end),
  JIT and "attempt to perform arithmetic on field 'x' (a nil value)"
  or "attempt to perform arithmetic on a nil value (field 'x')", "arithmetic on nil")
eq(rt(function() return 1 < nil end), "attempt to compare number with nil", "compare with nil")
eq(rt(function() return {} < {} end), "attempt to compare two table values", "compare two tables")
eq(rt(function() local s; return "a" .. s end),
  JIT and "attempt to concatenate local 's' (a nil value)"
  or "attempt to concatenate a nil value (local 's')", "concatenate nil")
eq(rt(function() local t = {} t:nomethod() end),
  JIT and "attempt to call method 'nomethod' (a nil value)"
  or "attempt to call a nil value (method 'nomethod')", "call a missing method")
eq(rt(function() return #nil end), "attempt to get length of a nil value", "length of nil")
eq(rt(function() return -{} end), "attempt to perform arithmetic on a table value", "negate a table")
eq(rt(function() local n = 5; n() end),
  JIT and "attempt to call local 'n' (a number value)" or "attempt to call a number value (local 'n')",
  "call a number")
-- errors in metamethods keep their own position
local bad = setmetatable({}, { __index = function() error("from __index") end })
check(err_of(function() return bad.x end):find(POS .. "from __index$"),
  "error raised in __index")
-- stack overflow is a catchable error (a function with a large frame overflows quickly)
local names = {}
for i = 1, 200 do names[i] = "v" .. i end
local inf = load("local inf inf = function() local " .. table.concat(names, ", ")
  .. " return 1 + inf() end return inf")()
e = err_of(inf)
check(e:find("stack overflow", 1, true), "stack overflow: " .. e)
-- after all this the interpreter still works
eq(pcall(function() return "fine" end), true, "pcall works after a stack overflow")

-- debug.traceback
eq(type(debug), "table", "debug exists")
if io == nil then eq(debug.getinfo, nil, "only traceback in debug (sandboxed)") else eq(type(debug.getinfo), "function", "the whole debug library (trusted)") end
local tb = debug.traceback()
check(type(tb) == "string" and tb:find("^stack traceback:"), "traceback() starts with 'stack traceback:'")
tb = debug.traceback("msg")
check(tb:find("^msg\nstack traceback:\n"), "traceback(msg) starts with the message")
check(tb:find(CHUNK .. ":", 1, true), "traceback names this file")
check(not tb:find("\tluapool:", 1, true), "traceback hides luapool's helper frames")
local function inner() local s = debug.traceback("tb", 1) return s end
local function outer() local s = inner() return s end
tb = outer()
check(tb:find("^tb\nstack traceback:\n\t" .. POS:sub(2) .. "in "), "traceback level 1 starts at the caller")
check(tb:find("'inner'", 1, true) and tb:find("'outer'", 1, true), "traceback names the functions: " .. tb)
tb = debug.traceback("lvl2", 2)
check(tb:find("^lvl2\nstack traceback:"), "traceback with level 2")
eq(debug.traceback(42):match("^[^\n]*"), "42", "traceback converts a number message")
check(debug.traceback(tag) == tag, "traceback returns a table message unchanged")
if JIT and io ~= nil then
  -- LuaJIT's own traceback returns any non-string message unchanged, nil too
  eq(debug.traceback(nil), nil, "traceback(nil) (LuaJIT, trusted)")
else
  check(debug.traceback(nil):find("^stack traceback:"), "traceback(nil)")
end
-- luapool's debug.traceback takes (message, level): the standard
-- debug.traceback(thread, message, level) form is refused with a clear message (the
-- sandbox cannot walk another coroutine's stack), and a bad level is Lua's argument error.
local co = coroutine.create(function() coroutine.yield() end)
coroutine.resume(co)
ok, tb = pcall(debug.traceback, co, "comsg")
if io == nil then
  check(not ok and tb:find("a coroutine argument is not supported", 1, true),
    "traceback(thread, msg) is refused (sandboxed): " .. tostring(tb))
else
  check(ok and tb:find("^comsg\nstack traceback:\n"), "traceback(thread, msg) (trusted): " .. tostring(tb))
end
ok, tb = pcall(debug.traceback, "m", "x")
-- (Lua 5.4/5.5 name it 'debug.traceback', as found in the loaded libraries; LuaJIT's own,
-- called by pcall, cannot tell its name: '?'; trusted with limits, luapool's traceback
-- (which hides the guards' frames) names the engine's 'traceback'.)
local TB_NAME = (JIT and io ~= nil) and "[%w%?]*" or "[%w.]*traceback"
check(not ok and tb:find("bad argument #2 to '" .. TB_NAME .. "' %(number expected, got string%)"),
  "traceback with a non-numeric level fails: " .. tostring(tb))
check(debug.traceback("m", -1):find("^m\nstack traceback:"), "traceback with a negative level")

print("ok " .. checks.count())
