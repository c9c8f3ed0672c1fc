-- Conformance: variadic functions, select, multiple results and their adjustment.
local V55 = _VERSION == "Lua 5.5"

local checks = require("lib.check")
local check, eq, fails, all = checks.check, checks.eq, checks.fails, checks.all
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

-- select
eq(select("#"), 0, "select('#') without values")
eq(select("#", nil), 1, "select('#', nil)")
eq(select("#", 1, nil, 3), 3, "nils in the middle are counted")
eq(select("#", nil, nil), 2, "trailing nils are counted")
eq(all(select(2, "a", "b", "c")), "b|c", "select(n) returns from n on")
eq(all(select(-1, 1, 2, 3)), "3", "select(-1) is the last value")
eq(all(select(-2, 1, 2, 3)), "2|3", "select(-2)")
eq(select("#", select(5, 1, 2)), 0, "select past the end returns nothing")
fails("index out of range", "select(0)", select, 0, 1, 2)
fails("index out of range", "select(-4) of three values", select, -4, 1, 2, 3)
fails("number expected, got string", "select('x')", select, "x")

-- variadic functions
local function count(...) return select("#", ...) end
eq(count(), 0, "no arguments")
eq(count(nil, nil, nil), 3, "three nils")
eq(count(1, nil), 2, "trailing nil argument")
local function first_rest(a, ...) return a, select("#", ...) end
eq(all(first_rest(1, 2, 3)), "1|2", "fixed parameter and varargs")
local function pass(...) return ... end
eq(all(pass(1, nil, 3)), "1|nil|3", "varargs pass through with nils")
eq(select("#", pass(nil, nil)), 2, "passing trailing nils keeps them")
local function sum(...)
  local s = 0
  for i = 1, select("#", ...) do s = s + (select(i, ...) or 0) end
  return s
end
eq(sum(1, 2, nil, 4), 7, "iterate varargs with select")
local function tbl(...) return { ... } end
eq(#tbl(1, 2, 3), 3, "{...}")
local p = pack(1, nil, 3, nil)
eq(p.n, 4, "pack .n counts trailing nils")
check(p[1] == 1 and p[2] == nil and p[3] == 3, "pack keeps positions")
eq(pack().n, 0, "pack of nothing")
eq(all(unpack(p, 1, p.n)), "1|nil|3|nil", "unpack with .n restores the nils")
local function many(n) local t = {} for i = 1, n do t[i] = i end return unpack(t) end
eq(select("#", many(200)), 200, "200 results")
eq(sum(many(200)), 20100, "200 arguments")

-- adjustment of multiple results
local function three() return 1, 2, 3 end
eq(all(three()), "1|2|3", "all results")
eq(all((three())), "1", "parentheses truncate to one value")
eq(all(three(), 10), "1|10", "a call not in last position gives one value")
eq(all(10, three()), "10|1|2|3", "a call in last position gives every value")
local t = { three(), three() }
eq(#t, 4, "table constructor expands only the last call")
local t2 = { three(), (three()) }
eq(#t2, 2, "parenthesised last call in a constructor")
local a, b, c, d = three()
check(a == 1 and b == 2 and c == 3 and d == nil, "assignment pads with nil")
local e1, e2 = three(), 20
check(e1 == 1 and e2 == 20, "assignment truncates a non-last call")
local function none() end
eq(select("#", none()), 0, "a function without return gives no values")
eq(select("#", (none())), 1, "parenthesised empty call gives nil")
eq(all(string.find("hello", "l")), "3|3", "library function results")
eq(string.format("%s-%s-%s", three()), "1-2-3", "results as arguments")
local function ret_varargs(...) return "x", ... end
eq(all(ret_varargs(1, 2)), "x|1|2", "return with varargs last")
local function ret_mid(...) return ..., "end" end
eq(all(ret_mid(1, 2)), "1|end", "varargs not last are truncated")

-- varargs inside closures must be captured through a table
local function capture(...)
  local saved = pack(...)
  return function() return unpack(saved, 1, saved.n) end
end
eq(all(capture(1, nil, 3)()), "1|nil|3", "varargs captured in a table")

-- Lua 5.5 named vararg tables (function f(...t)); in load so other engines can parse this file
local named = load("local function f(...t) return t.n, t[1], t[3] end return f(1, nil, 3)")
if V55 then
  eq(all(named()), "3|1|3", "5.5: named vararg table with n")
else
  eq(named, nil, "named vararg tables do not parse before 5.5")
end
check(load("return ...") ~= nil, "a chunk is variadic")
eq(all(load("return ...")(1, 2)), "1|2", "chunk varargs")
eq(all(load("local a, b = ... return b, a")("x", "y")), "y|x", "chunk varargs into locals")

print("ok " .. checks.count())
