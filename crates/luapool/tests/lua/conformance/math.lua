-- Conformance: the math library (every function the sandbox keeps).
local JIT = _VERSION == "Lua 5.1"

local checks = require("lib.check")
local show, check, eq, fails = checks.show, checks.check, checks.eq, checks.fails
local function mtype(v) return math.type and math.type(v) or type(v) end
-- Equal value and, on Lua 5.4/5.5, the same subtype ("integer" or "float").
local function same(got, want, what)
  checks.add()
  if got ~= want or mtype(got) ~= mtype(want) then
    error(what .. ": expected " .. show(want) .. ", got " .. show(got), 2)
  end
end
local function close(got, want, what)
  checks.add()
  if type(got) ~= "number" or math.abs(got - want) > 1e-12 then
    error(what .. ": expected about " .. show(want) .. ", got " .. show(got), 2)
  end
end
local function isnan(x) return x ~= x end
-- Integer-valued results are integers on 5.4/5.5, plain numbers on LuaJIT.
local I = function(x) return x end
local F = function(x) return x + 0.0 end

-- constants
close(math.pi, 3.141592653589793, "math.pi")
check(math.huge > 1e308 and math.huge == math.huge * 2, "math.huge is infinite")
check(-math.huge < -1e308, "-math.huge")

-- abs, floor, ceil
same(math.abs(-3), I(3), "abs of an integer")
same(math.abs(-3.5), 3.5, "abs of a float")
same(math.abs(-0.0), F(0), "abs of -0.0")
same(math.floor(3.7), I(3), "floor")
same(math.floor(-3.5), I(-4), "floor of a negative")
same(math.floor(5), I(5), "floor of an integer")
same(math.ceil(3.2), I(4), "ceil")
same(math.ceil(-3.5), I(-3), "ceil of a negative")
same(math.floor(1e100), 1e100, "floor of a float too big for an integer stays a float")
if JIT then
  eq(1 / math.floor(-0.0), -math.huge, "floor(-0.0) keeps the sign on LuaJIT")
else
  same(math.floor(-0.0), 0, "floor(-0.0) is the integer 0")
end
fails("number expected, got string", "floor of a non-numeric string", math.floor, "x")
same(math.floor("3.7"), I(3), "floor coerces a numeric string")

-- fmod, modf
same(math.fmod(7, 3), I(1), "fmod")
same(math.fmod(-7, 3), I(-1), "fmod takes the sign of the dividend")
same(math.fmod(7, -3), I(1), "fmod with a negative divisor")
same(math.fmod(7.5, 2), 1.5, "fmod of floats")
check(isnan(math.fmod(1, 0.0)), "fmod by 0.0 is NaN")
if JIT then
  check(isnan(math.fmod(1, 0)), "fmod by 0 is NaN on LuaJIT")
else
  fails("(zero)", "integer fmod by zero", math.fmod, 1, 0)
end
local ip, fp = math.modf(3.7)
same(ip, I(3), "modf integral part (an integer when it fits)")
close(fp, 0.7, "modf fractional part")
ip, fp = math.modf(-3.7)
same(ip, I(-3), "modf of a negative")
close(fp, -0.7, "modf fractional part of a negative")
ip, fp = math.modf(math.huge)
check(ip == math.huge and fp == 0, "modf of huge")
ip, fp = math.modf(5)
check(ip == 5 and fp == 0, "modf of an integer")
same(fp, F(0), "modf fractional part of an integer is 0.0")

-- max, min
same(math.max(1, 2.5, 2), 2.5, "max")
same(math.min(3, 1.0, 2), 1.0, "min keeps the float")
same(math.max(4), I(4), "max of one")
same(math.min(-1, -5), I(-5), "min of negatives")
fails(JIT and "number expected, got no value" or "value expected", "max without arguments", math.max)

-- sqrt, exp, log
same(math.sqrt(16), F(4), "sqrt")
check(isnan(math.sqrt(-1)), "sqrt(-1) is NaN")
same(math.exp(0), F(1), "exp(0)")
close(math.exp(1), 2.718281828459045, "exp(1)")
same(math.log(1), F(0), "log(1)")
close(math.log(8, 2), 3, "log base 2")
close(math.log(100, 10), 2, "log base 10")
close(math.log(27, 3), 3, "log base 3")
eq(math.log(0), -math.huge, "log(0)")

-- trigonometry
same(math.sin(0), F(0), "sin(0)")
same(math.cos(0), F(1), "cos(0)")
same(math.tan(0), F(0), "tan(0)")
close(math.asin(1), math.pi / 2, "asin(1)")
same(math.acos(1), F(0), "acos(1)")
close(math.atan(1), math.pi / 4, "atan(1)")
if JIT then
  -- LuaJIT's atan takes one argument; atan2 is separate.
  close(math.atan(0, -1), 0, "atan ignores a second argument on LuaJIT")
else
  close(math.atan(1, 1), math.pi / 4, "atan(y, x)")
  close(math.atan(0, -1), math.pi, "atan(0, -1)")
end
close(math.deg(math.pi), 180, "deg")
close(math.rad(180), math.pi, "rad")

-- functions that depend on the engine (5.1 legacy, or Lua 5.4's compatibility build)
if JIT then
  for _, name in ipairs({ "atan2", "cosh", "sinh", "tanh", "pow", "log10", "frexp", "ldexp" }) do
    check(type(math[name]) == "function", "LuaJIT has math." .. name)
  end
end
if math.atan2 then close(math.atan2(1, 1), math.pi / 4, "atan2") end
if math.cosh then same(math.cosh(0), F(1), "cosh") end
if math.sinh then same(math.sinh(0), F(0), "sinh") end
if math.tanh then same(math.tanh(0), F(0), "tanh") end
if math.pow then same(math.pow(2, 10), F(1024), "pow") end
if math.log10 then close(math.log10(1000), 3, "log10") end
if math.frexp then
  local m, e = math.frexp(8)
  check(m == 0.5 and e == 4, "frexp(8)")
end
if math.ldexp then same(math.ldexp(0.5, 4), F(8), "ldexp") end

-- integers (5.3+)
if JIT then
  for _, name in ipairs({ "tointeger", "type", "ult", "maxinteger", "mininteger" }) do
    eq(math[name], nil, "no math." .. name .. " on LuaJIT")
  end
else
  eq(math.maxinteger, 9223372036854775807, "maxinteger")
  eq(math.mininteger, -9223372036854775807 - 1, "mininteger")
  same(math.abs(math.mininteger), math.mininteger, "abs(mininteger) wraps around")
  same(math.tointeger(3.0), 3, "tointeger of an integral float")
  eq(math.tointeger(3.5), nil, "tointeger of a fraction")
  eq(math.tointeger(2 ^ 63), nil, "tointeger out of range")
  eq(math.type(1), "integer", "math.type integer")
  eq(math.type(1.0), "float", "math.type float")
  eq(math.type("1"), nil, "math.type of a string")
  check(math.ult(1, -1), "ult treats -1 as the largest unsigned")
  check(not math.ult(-1, 1), "ult(-1, 1)")
end

-- random (seeded per VM; only ranges and reproducibility are checked)
for _ = 1, 100 do
  local x = math.random()
  if not (x >= 0 and x < 1) then error("random() out of [0, 1): " .. x) end
  local d = math.random(6)
  if not (d >= 1 and d <= 6 and d == math.floor(d)) then error("random(6) out of range: " .. d) end
  local r = math.random(-3, 3)
  if not (r >= -3 and r <= 3) then error("random(-3, 3) out of range: " .. r) end
end
checks.add(3)
eq(math.random(3, 3), 3, "random(m, m)")
eq(math.random(1), 1, "random(1)")
if not JIT then
  eq(math.type(math.random(10)), "integer", "random(n) is an integer")
  eq(math.type(math.random()), "float", "random() is a float")
  eq(math.type(math.random(0)), "integer", "random(0) is a random integer")
  fails("interval is empty", "random(2, 1)", math.random, 2, 1)
  fails("wrong number of arguments", "random with 3 arguments", math.random, 1, 2, 3)
end
local r1 = math.randomseed(42)
if not JIT then eq(r1, 42, "randomseed returns the seed (5.4.4+)") end
local seq = { math.random(1000), math.random(1000), math.random() }
math.randomseed(42)
check(seq[1] == math.random(1000) and seq[2] == math.random(1000) and seq[3] == math.random(),
  "the same seed gives the same sequence")

print("ok " .. checks.count())
