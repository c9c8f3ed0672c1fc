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
ok, err = pcall(load, function() return {} end)
-- LUAPOOL-BUG: a reader that returns a non-string (or raises) makes luapool's load raise an
-- error ("reader function must return a string, got table"; an error raised by the reader
-- comes back with a stack traceback inside the message), where Lua's load returns
-- nil, "reader function must return a string" (or nil, the reader's error).
if ok then
  local nf, msg = err, select(3, pcall(load, function() return {} end))
  check(nf == nil and tostring(msg):find("reader function must return a string", 1, true),
    "a bad reader result: load returns nil and a message")
else
  check(err:find("reader function must return a string", 1, true), "a bad reader result (luapool raises): " .. err)
end
i = 0
f = load(function() i = i + 1; if i == 1 then return "error('x')" end end)
ok, err = pcall(f)
-- LUAPOOL-BUG: chunks read from a reader function are named after their source text
-- ('[string "error(\'x\')"]') instead of Lua's default "=(load)".
check(not ok and (err == "(load):1: x" or err == [=[[string "error('x')"]:1: x]=]),
  "default chunk name of a reader chunk: " .. tostring(err))

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
f, err = load("return 1", "=m", "b")
if SANDBOX then
  check(f == nil and err:find("binary chunks are not allowed", 1, true), "mode 'b' refuses: " .. tostring(err))
else
  -- "attempt to load a text chunk (mode is 'b')"; LuaJIT: "attempt to load chunk with wrong mode"
  check(f == nil and err:find("attempt to load .*mode"), "mode 'b' refuses text: " .. tostring(err))
end
f, err = load("\27Lua\84\0\25\147\r\n\26\n")
if SANDBOX then
  check(f == nil and err:find("attempt to load a binary chunk", 1, true), "binary signature refused: " .. tostring(err))
else
  -- A truncated binary chunk: Lua's loader rejects it (the message varies by engine).
  check(f == nil and type(err) == "string", "truncated binary chunk refused: " .. tostring(err))
  local dumped = load(string.dump(function(a) return a * 2 end))
  eq(dumped and dumped(21), 42, "a string.dump'ed function loads back (trusted)")
end

-- bad arguments
ok, err = pcall(load, nil)
-- (LuaJIT's own load, called by pcall, cannot tell its name: "bad argument #1 to '?'")
local LOAD_NAME = (JIT and not SANDBOX) and "'?'" or "'load'"
check(not ok and err:find("bad argument #1 to " .. LOAD_NAME, 1, true), "load(nil): " .. tostring(err))
-- LUAPOOL-BUG: load(5) raises "bad argument #1 to 'load' (string expected, got integer)";
-- Lua converts a number chunk to a string like any string argument, so load(5) returns
-- nil and the syntax error '[string "5"]:1: unexpected symbol near '5''.
ok, err = pcall(load, 5)
if ok then
  local nf, msg = load(5)
  check(nf == nil and msg:find('[string "5"]:1:', 1, true), "load(5) compiles the text '5': " .. tostring(msg))
else
  check(err:find("bad argument #1 to 'load'", 1, true), "load(5) (luapool raises): " .. err)
end
-- Sandboxed, luapool accepts only a table (or nil) as env; Lua accepts any value.
-- LUAPOOL-BUG: the message names the type "integer" (mlua's name), where Lua's messages say
-- "number": "bad argument #4 to 'load' (table expected, got integer)".
ok, err = pcall(load, "return 1", "=x", "t", 5)
if SANDBOX then
  check(not ok and err:find("bad argument #4 to 'load' (table expected, got ", 1, true),
    "load with a non-table env: " .. tostring(err))
else
  check(ok and err() == 1, "load with a number env (trusted): " .. tostring(err))
end
ok, err = pcall(load, "return 1", "=x", "t", "str")
if SANDBOX then
  check(not ok and err:find("bad argument #4 to 'load' (table expected, got string)", 1, true),
    "load with a string env: " .. tostring(err))
else
  check(ok and err() == 1, "load with a string env (trusted): " .. tostring(err))
end

-- deep nesting of loads
local src = "return 1"
for _ = 1, 20 do src = "return load(" .. string.format("%q", src) .. ")()" end
eq(load(src)(), 1, "20 nested loads")

print("ok " .. checks.count())
