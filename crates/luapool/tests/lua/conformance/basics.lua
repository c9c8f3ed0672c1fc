-- Conformance: the base functions (type, tostring, next, pairs, ipairs, raw access, select,
-- assert, print) and basic values. Errors, pcall and xpcall are in errors.lua, load in
-- load.lua, tonumber in numbers.lua, metatables in metatables.lua.
local JIT = _VERSION == "Lua 5.1"
local V55 = _VERSION == "Lua 5.5"

local checks = require("lib.check")
local check, eq, fails = checks.check, checks.eq, checks.fails

-- type
eq(type(nil), "nil", "type(nil)")
eq(type(true), "boolean", "type(true)")
eq(type(1), "number", "type(1)")
eq(type(1.5), "number", "type(1.5)")
eq(type("s"), "string", "type('s')")
eq(type({}), "table", "type({})")
eq(type(print), "function", "type(print)")
eq(type(function() end), "function", "type of a Lua function")
eq(type(coroutine.create(function() end)), "thread", "type of a coroutine")
eq(type(type), "function", "type(type)")
fails("value expected", "type()", type)

-- tostring
eq(tostring(nil), "nil", "tostring(nil)")
eq(tostring(true), "true", "tostring(true)")
eq(tostring(false), "false", "tostring(false)")
eq(tostring("s"), "s", "tostring of a string")
eq(tostring(42), "42", "tostring(42)")
check(tostring({}):find("^table: ") ~= nil, "tostring of a table")
check(tostring(print):find("^function: ") ~= nil, "tostring of a function")
check(tostring(coroutine.create(print)):find("^thread: ") ~= nil, "tostring of a thread")
local t1, t2 = {}, {}
check(tostring(t1) ~= tostring(t2), "different tables print differently")
eq(tostring(t1), tostring(t1), "tostring is stable")
fails("value expected", "tostring()", tostring)

-- truthiness and logic operators
check(not nil and not false, "nil and false are false")
check(0 and "" and {}, "0, '' and {} are true")
eq(nil or "default", "default", "or gives the second value")
eq(false and error("not evaluated"), false, "and short-circuits")
eq(1 and 2, 2, "and gives the second value")
eq(nil and 1, nil, "and gives the first false value")
eq(not 0, false, "not 0")

-- equality
check(1 == 1.0, "1 == 1.0")
check("a" == "a", "strings compare by value")
check({} ~= {}, "tables compare by identity")
check(print == print, "functions compare by identity")
check(nil ~= false, "nil ~= false")
check("1" ~= 1, "no coercion in ==")

-- rawequal, rawget, rawset, rawlen
check(rawequal(1, 1.0), "rawequal(1, 1.0)")
check(rawequal("a", "a"), "rawequal of equal strings")
check(not rawequal({}, {}), "rawequal of two tables")
check(rawequal(t1, t1), "rawequal of one table")
fails("value expected", "rawequal with one argument", rawequal, 1)
local base = { a = 1 }
local derived = setmetatable({}, { __index = base })
eq(rawget(derived, "a"), nil, "rawget ignores __index")
eq(rawget(base, "a"), 1, "rawget reads fields")
eq(rawget({ 10, 20 }, 2), 20, "rawget with an integer key")
fails("table expected, got string", "rawget on a string", rawget, "s", 1)
local rt = {}
local ok, err
eq(rawset(rt, "k", "v"), rt, "rawset returns the table")
eq(rt.k, "v", "rawset stores the value")
rawset(rt, "k", nil)
eq(rt.k, nil, "rawset with nil removes the field")
ok, err = pcall(rawset, "s", 1, 2)
check(not ok, "rawset on a string fails")
check(err:find("bad argument #1 to ", 1, true) and err:find("(table expected, got string)", 1, true),
  "rawset on a string: " .. err)
ok, err = pcall(rawset, {}, nil, 1)
check(not ok and err:find("index is nil", 1, true), "rawset with a nil key: " .. tostring(err))
eq(err:match("table index is nil$") ~= nil, true, "rawset nil key message has no traceback")
if not JIT then
  eq(rawlen({ 1, 2, 3 }), 3, "rawlen of a table")
  eq(rawlen("abcd"), 4, "rawlen of a string")
  eq(rawlen(setmetatable({ 1 }, { __len = function() return 10 end })), 1, "rawlen ignores __len")
  fails("table or string expected", "rawlen of a number", rawlen, 5)
end

-- next, pairs, ipairs
-- Lua 5.5's pairs also returns the closing value (nil) of the generic for
eq(select("#", pairs({})), V55 and 4 or 3, "number of values pairs returns")
check(select(1, pairs({})) == next, "pairs returns next")
eq(select("#", ipairs({})), 3, "ipairs returns three values")
eq(select(3, ipairs({})), 0, "ipairs starts at 0")
eq(next({}), nil, "next of an empty table")
local single = { x = 1 }
local k, v = next(single)
check(k == "x" and v == 1, "next returns the key and the value")
eq(next(single, "x"), nil, "next after the last key")
fails("table expected", "next without a table", next)
fails("bad argument #1", "pairs without a table", pairs)
fails("bad argument #1", "ipairs without a table", ipairs)
local visited = {}
local mixed = { 1, 2, 3, a = "x", b = "y" }
for key, val in pairs(mixed) do visited[tostring(key)] = val end
check(visited["1"] == 1 and visited["3"] == 3 and visited.a == "x" and visited.b == "y",
  "pairs visits array and hash parts")
local count = 0
for _ in next, mixed do count = count + 1 end
eq(count, 5, "generic for with next directly")
local seq = {}
for i, val in ipairs({ "a", "b", "c" }) do seq[#seq + 1] = i .. val end
eq(table.concat(seq), "1a2b3c", "ipairs in order")
local virtual = setmetatable({}, { __index = function(_, i) if i <= 3 then return i * 10 end end })
local vn = 0
for _ in ipairs(virtual) do vn = vn + 1 end
-- Lua 5.3+ ipairs respects __index; LuaJIT (5.1 rules) reads raw
eq(vn, JIT and 0 or 3, "ipairs and __index")

-- assert
eq(assert(1), 1, "assert returns its value")
fails("assertion failed!", "assert(false)", assert, false)

-- print
eq(type(print), "function", "print exists")
print("basics.lua: print with several values:", 1, nil, true, 2.5)

print("ok " .. checks.count())
