-- Conformance: load. Sandboxed, luapool's replacement: text chunks only; without an env
-- argument the chunk gets the environment of the function that calls load. Trusted (where
-- `io` exists), Lua's own load: binary chunks too, and the global environment.
local JIT = _VERSION == "Lua 5.1"
local SANDBOX = io == nil

local checks = require("lib.check")
local check, eq, all = checks.check, checks.eq, checks.all
local EOF_TOKEN = JIT and "'<eof>'" or "<eof>"

-- basics
local f = load("return 1 + 1")
eq(type(f), "function", "load returns a function")
eq(f(), 2, "calling the chunk runs it")
eq(all(load("return 1, nil, 3")()), "1|nil|3", "a chunk returns several values")
eq(all(load("return ...")(1, 2)), "1|2", "a chunk is variadic")
eq(select("#", load("")()), 0, "an empty chunk returns nothing")
eq(load("local a, b = ... return a .. b")("x", "y"), "xy", "chunk arguments")
check(load("return 1") ~= load("return 1"), "each load makes a new function")
local counter = load("local n = 0 return function() n = n + 1 return n end")()
counter()
eq(counter(), 2, "a chunk can return closures")
local outer_local = "invisible" -- luacheck: ignore
eq(load("return outer_local")(), nil, "a chunk does not see the caller's locals")

-- chunk names in messages
local g, err = load("x = ")
check(g == nil, "a syntax error returns nil")
eq(err, '[string "x = "]:1: unexpected symbol near ' .. EOF_TOKEN, "syntax error message")
_, err = load("x = ", "=plain")
eq(err, "plain:1: unexpected symbol near " .. EOF_TOKEN, "'=name' chunk name")
_, err = load("x = ", "@file.lua")
eq(err, "file.lua:1: unexpected symbol near " .. EOF_TOKEN, "'@name' chunk name")
_, err = load("local a = 1\nlocal b =")
eq(err, '[string "local a = 1..."]:2: unexpected symbol near ' .. EOF_TOKEN,
  "a multi-line source is shortened to its first line")
_, err = load(string.rep("x", 100) .. " = ")
check(err:find('^%[string "x+%.%.%."%]:1:'), "a long source is shortened: " .. err)
local ok, rt = pcall(load("error('rt')", "=mychunk"))
check(not ok and rt == "mychunk:1: rt", "runtime errors name the chunk: " .. tostring(rt))
ok, rt = pcall(load("local t = nil\n\nreturn t.x", "=multi"))
check(not ok and rt:find("^multi:3: "), "runtime errors give the chunk's line: " .. tostring(rt))
_, err = load("return 1 +* 2", "=op")
check(err:find("^op:1: unexpected symbol near '%*'"), "unexpected symbol: " .. tostring(err))
_, err = load("for", "=kw")
check(err:find("^kw:1: "), "keyword without a body: " .. tostring(err))
_, err = load("x = 'unfinished", "=str")
check(err:find("unfinished string", 1, true), "unfinished string: " .. tostring(err))
_, err = load("x = [[unfinished", "=long")
check(err:find("unfinished long string", 1, true), "unfinished long string: " .. tostring(err))
g, err = load("#!shebang\nreturn 1")
if JIT then
  eq(g and g(), 1, "LuaJIT skips a first line starting with #")
else
  check(g == nil and err:find("unexpected symbol near '#'", 1, true), "load does not skip a # line")
end

-- reader functions
local parts = { "return ", "4", "2" }
local i = 0
f = load(function() i = i + 1; return parts[i] end)
eq(f(), 42, "a reader function's pieces are concatenated")
i = 0
f = load(function() i = i + 1; if i == 1 then return "return 'a'" end; return "" end)
eq(f(), "a", "an empty piece ends the chunk")
g, err = load(function() return {} end)
-- (Lua's own load prefixes the caller's position; the sandbox's does not, see
-- docs/sandbox.md)
check(g == nil and type(err) == "string" and err:find("^[^\n]*reader function must return a string"),
  "a bad reader result: load returns nil and a message: " .. tostring(err))
g, err = load(function() error("reader failed", 0) end)
-- (trusted with limits, the execution's message handler, like lua.c's, adds a traceback:
-- the engine's load compiles under the caller's handler)
check(g == nil and (err == "reader failed" or (not SANDBOX and err:find("^reader failed\nstack traceback:"))),
  "a raising reader: load returns nil and its error: " .. tostring(err))
local reader_tag = {}
g, err = load(function() error(reader_tag) end)
check(g == nil and (err == reader_tag or (not SANDBOX and type(err) == "string")),
  "a reader's error value comes back unchanged (trusted with limits: as the handler made it)")
i = 0
g, err = load(function() i = i + 1; if i == 1 then return "x =" end end)
eq(err, "(load):1: unexpected symbol near " .. EOF_TOKEN, "a reader chunk's syntax error names (load)")
i = 0
f = load(function() i = i + 1; if i == 1 then return "error('x')" end end)
ok, err = pcall(f)
eq(err, "(load):1: x", "default chunk name of a reader chunk")
i = 0
f = load(function() i = i + 1; if i == 1 then return "error('x')" end end, "=named")
ok, err = pcall(f)
eq(err, "named:1: x", "a reader chunk with a name")
i = 0
f = load(function() i = i + 1; if i == 1 then return "return " elseif i == 2 then return 42 end end)
eq(f(), 42, "a reader may return numbers (converted to strings)")

-- chunk names are any string, numbers converted
eq(load("return 1", "a\0b")(), 1, "a chunk name with a NUL byte")
_, err = load("x =", "a\0b")
eq(err, '[string "a"]:1: unexpected symbol near ' .. EOF_TOKEN, "the name is cut at the NUL in messages")
_, err = load("x =", 42)
eq(err, '[string "42"]:1: unexpected symbol near ' .. EOF_TOKEN, "a number chunk name")

-- environments
LOAD_GLOBAL = "from caller"
eq(load("return LOAD_GLOBAL")(), "from caller", "the chunk sees the caller's globals")
load("LOAD_WRITTEN = 1")()
eq(LOAD_WRITTEN, 1, "the chunk writes the caller's globals")
load("function LOAD_FN() return 'defined' end")()
eq(LOAD_FN(), "defined", "a chunk can define global functions")
local env = { x = 5 }
eq(load("return x", "=env", "t", env)(), 5, "an explicit env")
load("y = x * 2", "=env", "t", env)()
eq(env.y, 10, "globals of a chunk with an env go into it")
eq(LOAD_GLOBAL and rawget(_G, "y"), nil, "and not into _G")
local shared = {}
load("counter = 1", "=a", "t", shared)()
load("counter = counter + 1", "=b", "t", shared)()
eq(shared.counter, 2, "two chunks can share an env")
eq(load("return type", "=empty", "t", {})(), nil, "an empty env sees no base functions")
local chained = setmetatable({}, { __index = _G })
eq(load("return type(1)", "=chained", "t", chained)(), "number", "an env chained to _G")
-- Sandboxed, without an env argument, load uses the *caller's* environment, also when the
-- caller is itself a chunk loaded with an env; Lua's own load uses the global environment.
local nested = load("return load('return x')()", "=nested", "t", { x = "inner env", load = load })
if SANDBOX then
  eq(nested(), "inner env", "load inside a chunk with an env uses that env (sandboxed)")
else
  eq(nested(), nil, "load inside a chunk with an env uses the global environment (trusted)")
end
local function from_function() return load("return LOAD_GLOBAL")() end
eq(from_function(), "from caller", "load called from a function uses its env")

-- modes
eq(load("return 1", "=m", "t")(), 1, "mode 't'")
eq(load("return 1", "=m", "bt")(), 1, "mode 'bt' loads text")
-- (LuaJIT's own load, in trusted VMs, has one message for a wrong mode)
local function wrong_mode(mode)
  if JIT and not SANDBOX then return "attempt to load chunk with wrong mode" end
  return "attempt to load a text chunk (mode is '" .. mode .. "')"
end
f, err = load("return 1", "=m", "b")
eq(err, wrong_mode("b"), "mode 'b' refuses a text chunk")
check(f == nil, "mode 'b': no function")
_, err = load("return 1", "=m", "x")
eq(err, wrong_mode("x"), "a mode without 't'")
_, err = load("return 1", "=m", 5)
eq(err, wrong_mode("5"), "a number mode is converted")
f, err = load("\27Lua\84\0\25\147\r\n\26\n")
if SANDBOX then
  check(f == nil and err:find("attempt to load a binary chunk", 1, true), "binary signature refused: " .. tostring(err))
  check(err:find("binary chunks are not allowed", 1, true), "the sandbox says why: " .. err)
else
  -- A truncated binary chunk: Lua's loader rejects it (the message varies by engine).
  check(f == nil and type(err) == "string", "truncated binary chunk refused: " .. tostring(err))
  local dumped = load(string.dump(function(a) return a * 2 end))
  eq(dumped and dumped(21), 42, "a string.dump'ed function loads back (trusted)")
end

-- bad arguments (LuaJIT's own load, in trusted VMs, called by pcall, cannot tell its
-- name: '?')
local LOAD = (JIT and not SANDBOX) and "?" or "load"
ok, err = pcall(load, nil)
check(not ok and err:find(("bad argument #1 to '" .. LOAD .. "' (function expected, got nil)"), 1, true),
  "load(nil): " .. tostring(err))
ok, err = pcall(load)
check(not ok and err:find(("bad argument #1 to '" .. LOAD .. "' (function expected, got no value)"), 1, true),
  "load(): " .. tostring(err))
ok, err = pcall(load, {})
check(not ok and err:find(("bad argument #1 to '" .. LOAD .. "' (function expected, got table)"), 1, true),
  "load({}): " .. tostring(err))
ok, err = pcall(load, "return 1", {})
check(not ok and err:find(("bad argument #2 to '" .. LOAD .. "' (string expected, got table)"), 1, true),
  "load with a table chunk name: " .. tostring(err))
ok, err = pcall(load, "return 1", "=x", {})
check(not ok and err:find(("bad argument #3 to '" .. LOAD .. "' (string expected, got table)"), 1, true),
  "load with a table mode: " .. tostring(err))
-- a number chunk is converted to a string like any string argument
g, err = load(5)
check(g == nil, "load(5) compiles the text '5'")
eq(err, [=[[string "5"]:1: unexpected symbol near '5']=], "load(5)'s syntax error")
eq(load(12)  == nil and "nil" or "function", "nil", "load(12) does not compile")
-- any value is an env (LuaJIT's load ignores one that is not a table)
if JIT then
  LOAD_ENV_SEEN = "caller"
  eq(load("return LOAD_ENV_SEEN", "=x", "t", 5)(), "caller", "LuaJIT: a non-table env is ignored")
  eq(load("return LOAD_ENV_SEEN", "=x", "t", nil)(), "caller", "LuaJIT: a nil env is ignored")
else
  local numenv = load("return 1", "=x", "t", 5)
  eq(numenv(), 1, "a number env: the chunk runs while it reads no global")
  ok, err = pcall(load("return x", "=x", "t", 5))
  eq(err, "x:1: attempt to index a number value (upvalue '_ENV')", "a number env is the chunk's _ENV")
  eq(load("return x", "=x", "t", "str")(), nil, "a string env: globals are looked up in string")
  ok, err = pcall(load("return x", nil, nil, nil))
  eq(err, [=[[string "return x"]:1: attempt to index a nil value (upvalue '_ENV')]=],
    "an explicit nil env is the chunk's _ENV")
  eq(load("return ...", nil, nil, nil)(7), 7, "a chunk with a nil env runs")
end

-- deep nesting of loads
local src = "return 1"
for _ = 1, 20 do src = "return load(" .. string.format("%q", src) .. ")()" end
eq(load(src)(), 1, "20 nested loads")

print("ok " .. checks.count())
