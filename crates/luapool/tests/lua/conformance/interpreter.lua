-- Conformance: the script is the interpreter's main chunk. Sandboxed and trusted alike, it
-- runs on the main thread: not yieldable, and coroutine.running() says so. Trusted (where
-- `io` exists), luapool is the `lua` program: load, loadfile and dofile bind chunks to the
-- script's globals, _G holds every standard global, the string metatable is visible, the
-- library tables are plain writable tables and require is Lua's own (package.preload,
-- package.path, package.loaded).
local JIT = _VERSION == "Lua 5.1"
local V54 = _VERSION == "Lua 5.4"
local TRUSTED = io ~= nil

local checks = require("lib.check")
local check, eq, fails, all = checks.check, checks.eq, checks.fails, checks.all

-- What a yield on the main thread raises: LuaJIT has one message for every thread that
-- cannot yield.
local YIELD_OUTSIDE = JIT and "attempt to yield across C-call boundary"
    or "attempt to yield from outside a coroutine"

------------------------------------------------------------------------------------------
-- The main chunk (sandboxed and trusted)
------------------------------------------------------------------------------------------

local main, ismain = coroutine.running()
if JIT then
  -- LuaJIT (Lua 5.1): running() on the main thread returns nil.
  eq(main, nil, "LuaJIT: coroutine.running() at the top level is nil")
else
  eq(type(main), "thread", "coroutine.running() at the top level is a thread")
  eq(ismain, true, "coroutine.running() at the top level: the main thread")
  eq(coroutine.status(main), "running", "the main thread is running")
  eq(all(coroutine.resume(main)), "false|cannot resume non-suspended coroutine",
    "the main thread cannot be resumed")
  eq(all(pcall(coroutine.close, main)),
    V54 and "false|cannot close a running coroutine" or "false|cannot close main thread",
    "the main thread cannot be closed")
end
eq(coroutine.isyieldable(), false, "coroutine.isyieldable() at the top level is false")
fails(YIELD_OUTSIDE, "coroutine.yield() at the top level", coroutine.yield)
fails(YIELD_OUTSIDE, "coroutine.yield(values) at the top level", coroutine.yield, 1, 2)
fails(YIELD_OUTSIDE, "a yield in a function called from the top level",
  function() local x = coroutine.yield("v") return x end)
eq(all(pcall(pcall, coroutine.yield)), "true|false|" .. YIELD_OUTSIDE,
  "a yield under nested pcalls at the top level")
-- the script goes on normally after those errors
eq(coroutine.isyieldable(), false, "still not yieldable after a refused yield")

-- inside a coroutine: its own thread, yieldable
local inner = coroutine.create(function()
  local co, im = coroutine.running()
  coroutine.yield(co, im, coroutine.isyieldable())
  return "done"
end)
local ok, co, im, yieldable = coroutine.resume(inner)
eq(ok, true, "a coroutine runs")
check(co == inner, "coroutine.running() inside a coroutine is that coroutine")
if not JIT then eq(im, false, "coroutine.running() inside a coroutine: not the main thread") end
eq(yieldable, true, "coroutine.isyieldable() inside a coroutine")
eq(all(coroutine.resume(inner)), "true|done", "the coroutine ends")
eq(coroutine.wrap(function() return coroutine.yield("w") end)(), "w", "wrap yields to the top level")
if not JIT then
  eq(select(2, coroutine.running()), true, "back on the main thread after a coroutine")
end

-- An async host function (luapool's sleep, when the host library is there) suspends the
-- execution without making the script yieldable.
if type(sleep) == "function" then sleep(0) end
eq(coroutine.isyieldable(), false, "not yieldable after an async host call")
if not JIT then eq(select(2, coroutine.running()), true, "main thread after an async host call") end

if not TRUSTED then
  print("ok " .. checks.count())
  return
end

------------------------------------------------------------------------------------------
-- Trusted: the main chunk of the `lua` program
------------------------------------------------------------------------------------------

local here = debug.getinfo(1, "S")
eq(here.what, "main", "the script is a main chunk")
check(here.source:sub(1, 1) == "@" and here.source:find("interpreter.lua", 1, true),
  "the script's chunk name is '@' and its file name: " .. here.source)
-- `lua` passes the script's arguments as `arg` and as `...` (luapool's harness sets no arg)
check(arg == nil or select("#", ...) == #arg, "the script's ... are its arguments")
check(arg == nil or tostring(arg[0]):find("interpreter.lua", 1, true), "arg[0] is the script")

------------------------------------------------------------------------------------------
-- A: load, loadfile and dofile bind chunks to the script's globals
------------------------------------------------------------------------------------------

CONFORMANCE_A = 1
eq(rawget(_G, "CONFORMANCE_A"), 1, "the script's globals are fields of _G")
eq(load("return CONFORMANCE_A")(), 1, "a loaded chunk reads the script's globals")
load("CONFORMANCE_B = 2")()
eq(CONFORMANCE_B, 2, "a loaded chunk writes the script's globals")
eq(load("return _G")(), _G, "a loaded chunk's _G is the script's _G")
if JIT then
  local f = setfenv(function() return load("return CONFORMANCE_A")() end, { load = load })
  eq(f(), 1, "LuaJIT: load ignores its caller's environment")
  eq(loadstring("return CONFORMANCE_A")(), 1, "LuaJIT: loadstring binds to the globals")
else
  eq(load("return _ENV")(), _G, "a loaded chunk's _ENV is _G")
  check(load("return _ENV == _G")(), "_ENV is _G")
  eq(load("local _ENV = { load = load } return load('return CONFORMANCE_A')()")(), 1,
    "load ignores its caller's _ENV: the chunk gets the globals")
end

local tmp = os.tmpname()
local file = assert(io.open(tmp, "w"))
file:write("CONFORMANCE_C = (CONFORMANCE_C or 0) + 1\nreturn CONFORMANCE_A, ...\n")
file:close()
eq(all(dofile(tmp)), "1", "dofile's chunk reads the script's globals")
eq(CONFORMANCE_C, 1, "dofile's chunk writes the script's globals")
eq(all(loadfile(tmp)("x")), "1|x", "loadfile's chunk reads the globals and takes arguments")
eq(CONFORMANCE_C, 2, "loadfile's chunk writes the script's globals")
if not JIT then
  local env = {}
  eq(all(loadfile(tmp, "t", env)()), "nil", "loadfile with an env reads that env")
  eq(env.CONFORMANCE_C, 1, "loadfile with an env writes that env")
  eq(CONFORMANCE_C, 2, "and not the globals")
end
os.remove(tmp)
CONFORMANCE_A, CONFORMANCE_B, CONFORMANCE_C = nil, nil, nil

------------------------------------------------------------------------------------------
-- B: _G holds every standard global
------------------------------------------------------------------------------------------

local standard = { "assert", "collectgarbage", "dofile", "error", "getmetatable", "ipairs",
  "load", "loadfile", "next", "pairs", "pcall", "print", "rawequal", "rawget", "rawset",
  "require", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall", "_G",
  "_VERSION", "coroutine", "debug", "io", "math", "os", "package", "string", "table" }
local extra = JIT
    and { "unpack", "loadstring", "getfenv", "setfenv", "module", "newproxy", "gcinfo", "bit", "jit" }
    or { "rawlen", "utf8", "warn" }
for _, name in ipairs(extra) do standard[#standard + 1] = name end
local listed = {}
for k in pairs(_G) do listed[k] = true end
local not_raw, not_listed = {}, {}
for _, name in ipairs(standard) do
  if rawget(_G, name) == nil then not_raw[#not_raw + 1] = name end
  if not listed[name] then not_listed[#not_listed + 1] = name end
end
eq(table.concat(not_raw, " "), "", "standard globals that rawget(_G, name) does not find")
eq(table.concat(not_listed, " "), "", "standard globals that pairs(_G) does not list")
check(rawget(_G, "_G") == _G, "_G._G is _G")
eq(getmetatable(_G), nil, "_G has no metatable")
local strict = {}
setmetatable(_G, strict)
eq(getmetatable(_G), strict, "a script can set _G's metatable (like strict.lua)")
setmetatable(_G, nil)
check(package.loaded._G == _G, "package.loaded._G is _G")
local libraries = { "coroutine", "debug", "io", "math", "os", "package", "string", "table" }
for _, name in ipairs(JIT and { "bit", "jit" } or { "utf8" }) do libraries[#libraries + 1] = name end
for _, name in ipairs(libraries) do
  check(package.loaded[name] == _G[name], "package.loaded." .. name .. " is the global " .. name)
  check(require(name) == _G[name], "require(" .. string.format("%q", name) .. ") is the library")
end

------------------------------------------------------------------------------------------
-- D: the string metatable
------------------------------------------------------------------------------------------

local smt = getmetatable("")
eq(type(smt), "table", "getmetatable('') is the string metatable")
check(smt and smt.__index == string, "the string metatable's __index is string")
check(getmetatable("other") == smt, "all strings share one metatable")
if not JIT then
  -- Lua 5.4+: arithmetic on strings goes through the string metatable
  eq(type(smt and smt.__add), "function", "the string metatable has __add")
end
function string.conformance_twice(s) return s .. s end
eq(("ab"):conformance_twice(), "abab", "a function added to string is a method of strings")
string.conformance_twice = nil

------------------------------------------------------------------------------------------
-- F: the library tables are plain, writable tables
------------------------------------------------------------------------------------------

for _, name in ipairs(libraries) do
  local lib = _G[name]
  eq(getmetatable(lib), nil, name .. " has no metatable")
  lib.conformance_probe = name
  eq(rawget(lib, "conformance_probe"), name, "assigning into " .. name)
  lib.conformance_probe = nil
end
local saved_path = package.path
package.path = "x"
eq(package.path, "x", "package.path can be assigned")
package.path = saved_path
local upper = string.upper
string.upper = function() return "replaced" end
eq(("a"):upper(), "replaced", "a replaced string function is what methods call")
string.upper = upper
eq(("a"):upper(), "A", "and can be put back")
local saved_print = print
print = nil
eq(rawget(_G, "print"), nil, "a standard global can be removed")
print = saved_print

------------------------------------------------------------------------------------------
-- H: require is Lua's own
------------------------------------------------------------------------------------------

eq(type(package.preload), "table", "package.preload")
eq(type(package.path), "string", "package.path")
eq(type(package.cpath), "string", "package.cpath")
eq(type(JIT and package.loaders or package.searchers), "table", "package's searchers")
check(package.loaded["lib.check"] == checks, "require stored lib.check in package.loaded")

package.preload["conformance.pre"] = function(...)
  return { n = select("#", ...), ... }
end
local m, data = require("conformance.pre")
eq(m[1], "conformance.pre", "a preload loader gets the module name")
if JIT then
  eq(m.n, 1, "LuaJIT: a preload loader gets only the name")
  eq(data, nil, "LuaJIT: require returns one value")
else
  eq(m[2], ":preload:", "a preload loader gets ':preload:'")
  eq(data, ":preload:", "require's second result is the loader data")
end
eq(package.loaded["conformance.pre"], m, "require stores the module in package.loaded")
check(require("conformance.pre") == m, "a second require returns the stored module")
package.loaded["conformance.pre"] = "replaced"
eq(require("conformance.pre"), "replaced", "require returns what package.loaded holds")
package.loaded["conformance.pre"] = nil
package.preload["conformance.pre"] = nil

local saved_cpath = package.cpath
local base = os.tmpname()
local modfile = base .. "_cfmod.lua"
file = assert(io.open(modfile, "w"))
file:write("return { name = ..., file = select(2, ...), n = select('#', ...) }\n")
file:close()
package.path = base .. "_?.lua"
package.cpath = ""
local mod = require("cfmod")
eq(mod.name, "cfmod", "a module found through package.path gets its name")
if JIT then
  eq(mod.n, 1, "LuaJIT: a file module gets only its name")
else
  eq(mod.file, modfile, "a file module gets its file name")
end
eq(package.searchpath("cfmod", package.path), modfile, "package.searchpath")
package.path = "/nonexistent-conformance/?.lua"
fails("no file '/nonexistent-conformance/cfmissing.lua'", "require searches package.path",
  require, "cfmissing")
check(require("cfmod") == mod, "a loaded module is not searched again")
package.loaded.cfmod = nil
package.path, package.cpath = saved_path, saved_cpath
os.remove(modfile)
os.remove(base)

------------------------------------------------------------------------------------------
-- print and io.write share one stdout, in program order (compared with the reference
-- interpreter's output by tests/reference.rs; the harness's VMs have no `arg`, and their
-- print goes elsewhere)
------------------------------------------------------------------------------------------

if arg ~= nil then
  io.write("order: 1 ")
  print(2)
  io.stdout:write("3 ")
  print(4)
  io.write("5\n")
end

print("ok " .. checks.count())
