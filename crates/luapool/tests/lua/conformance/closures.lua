-- Conformance: closures, upvalues, scoping, recursion and tail calls.
local JIT = _VERSION == "Lua 5.1"
local V55 = _VERSION == "Lua 5.5"

local checks = require("lib.check")
local check, eq = checks.check, checks.eq

-- counters: each closure has its own upvalue
local function counter()
  local n = 0
  return function() n = n + 1; return n end
end
local c1, c2 = counter(), counter()
eq(c1(), 1, "first counter starts at 1")
eq(c1(), 2, "first counter increments")
eq(c2(), 1, "second counter is independent")

-- closures created together share their upvalue
local function pair()
  local v = 0
  local function get() return v end
  local function set(x) v = x end
  return get, set
end
local get, set = pair()
set(42)
eq(get(), 42, "getter sees the setter's write")
local get2 = pair()
eq(get2(), 0, "a new pair has its own upvalue")

-- an upvalue changed after the closure was made
local late = 1
local function read_late() return late end
late = 2
eq(read_late(), 2, "closures capture variables, not values")

-- loops create a fresh local per iteration
local fns = {}
for i = 1, 3 do fns[i] = function() return i end end
eq(fns[1]() + fns[2]() * 10 + fns[3]() * 100, 321, "numeric for: fresh i per iteration")
fns = {}
for _, v in ipairs({ "a", "b", "c" }) do fns[#fns + 1] = function() return v end end
eq(fns[1]() .. fns[2]() .. fns[3](), "abc", "generic for: fresh v per iteration")
fns = {}
local k = 1
while k <= 3 do
  local j = k
  fns[k] = function() return j end
  k = k + 1
end
eq(fns[1]() + fns[3](), 4, "while loop: fresh local per iteration")
fns = {}
local r = 0
repeat
  r = r + 1
  local captured = r * 2
  fns[r] = function() return captured end
until captured >= 6 -- the until expression sees the body's locals
eq(#fns, 3, "repeat-until sees locals of the body")
eq(fns[2](), 4, "repeat loop: fresh local per iteration")
-- assigning to a loop variable: allowed (without effect on the loop) up to 5.4, a compile
-- error on 5.5, whose for-loop variables are constants
local loopassign, lerr = load("local n = 0 for i = 1, 3 do i = i * 10 n = n + 1 end return n")
if V55 then
  check(loopassign == nil and lerr:find("attempt to assign to const variable 'i'", 1, true),
    "5.5: for-loop variables are constants")
else
  eq(loopassign(), 3, "assigning to the loop variable does not change the loop")
end

-- shared upvalue between closures made in the same iteration
local getters, setters = {}, {}
for i = 1, 2 do
  local x = i
  getters[i] = function() return x end
  setters[i] = function(v) x = v end
end
setters[1](100)
eq(getters[1](), 100, "closures of one iteration share x")
eq(getters[2](), 2, "closures of another iteration do not")

-- nested closures, three levels
local function level1(a)
  return function(b)
    return function(c) return a .. b .. c end
  end
end
eq(level1("x")("y")("z"), "xyz", "nested closures")
local function adder(x) return function(y) x = x + y; return x end end
local acc = adder(10)
acc(5)
eq(acc(1), 16, "closure accumulates into its upvalue")

-- shadowing and blocks
local s = "outer"
do
  local s = "inner" -- luacheck: ignore
  eq(s, "inner", "inner local shadows")
end
eq(s, "outer", "outer local after the block")
local function shadow(s) return s end -- luacheck: ignore
eq(shadow("param"), "param", "parameter shadows an upvalue")
local x1, x2, x3 = 1, 2
check(x1 == 1 and x2 == 2 and x3 == nil, "multiple assignment pads with nil")
local y1, y2 = 1, 2, 3
check(y1 == 1 and y2 == 2, "multiple assignment drops extras")
local sa, sb = 1, 2
sa, sb = sb, sa
check(sa == 2 and sb == 1, "swap by multiple assignment")

-- recursion
local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end
eq(fact(10), 3628800, "local function recursion")
local fib
fib = function(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
eq(fib(20), 6765, "recursion through an upvalue")
local function rec(n) if n == 0 then return 0 end return 1 + rec(n - 1) end
eq(rec(10000), 10000, "10000 levels of recursion")
local is_even, is_odd
function is_even(n) if n == 0 then return true end return is_odd(n - 1) end
function is_odd(n) if n == 0 then return false end return is_even(n - 1) end
check(is_even(10) and is_odd(7), "mutual recursion")

-- proper tail calls do not grow the stack
local function tail(n) if n == 0 then return "done" end return tail(n - 1) end
eq(tail(1000000), "done", "a million tail calls")

-- functions as values
local ops = { add = function(a, b) return a + b end, mul = function(a, b) return a * b end }
eq(ops.add(2, 3) + ops.mul(2, 3), 11, "functions in a table")
local function compose(f, g) return function(...) return f(g(...)) end end
eq(compose(function(v) return v * 2 end, function(v) return v + 1 end)(4), 10, "compose")
local function map(t, f) local out = {} for i, v in ipairs(t) do out[i] = f(v) end return out end
eq(table.concat(map({ 1, 2, 3 }, function(v) return v * v end), ","), "1,4,9", "map with a closure")
local total = 0
string.gsub("1 2 3", "%d", function(d) total = total + tonumber(d) end)
eq(total, 6, "closure as a gsub callback")
local obj = { n = 0 }
function obj:inc(by) self.n = self.n + (by or 1); return self end
obj:inc():inc(5)
eq(obj.n, 6, "method definitions and chained calls")
check(function() end ~= function() end or JIT, "two function expressions are different values")

-- globals are per execution and live in _ENV/_G
GLOBAL_CLOSURE_TEST = 1 -- luacheck: ignore
local function readg() return GLOBAL_CLOSURE_TEST end
GLOBAL_CLOSURE_TEST = 2
eq(readg(), 2, "globals are read at call time")
eq(_G.GLOBAL_CLOSURE_TEST, 2, "globals live in _G")
GLOBAL_CLOSURE_TEST = nil
-- Lua 5.5 global declarations (in load: other engines cannot parse them)
local decl = load("global GLOBAL_DECLARED = 5 return GLOBAL_DECLARED")
if V55 then
  eq(decl(), 5, "5.5: global declaration with a value")
  eq(_G.GLOBAL_DECLARED, 5, "5.5: a declared global lives in _G")
  local undeclared, uerr = load("global none; y = 1")
  check(undeclared == nil and uerr:find("variable 'y' not declared", 1, true),
    "5.5: after a global declaration, undeclared names are errors")
  local constg, cerr = load("global<const> Z = 1; Z = 2")
  check(constg == nil and cerr:find("attempt to assign to const variable 'Z'", 1, true),
    "5.5: global<const>")
  check(load("local global = 1 return global") ~= nil, "5.5: global is still usable as a name")
else
  eq(decl, nil, "global declarations do not parse before 5.5")
end

print("ok " .. checks.count())
