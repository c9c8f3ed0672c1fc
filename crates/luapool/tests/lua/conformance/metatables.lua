-- Conformance: metatables and metamethods.
local JIT = _VERSION == "Lua 5.1"

local checks = require("lib.check")
local check, eq, fails = checks.check, checks.eq, checks.fails

-- setmetatable / getmetatable
local mt = {}
local t = {}
check(setmetatable(t, mt) == t, "setmetatable returns its table")
check(getmetatable(t) == mt, "getmetatable returns the metatable")
eq(getmetatable({}), nil, "no metatable")
eq(getmetatable(1), nil, "numbers have no metatable")
setmetatable(t, nil)
eq(getmetatable(t), nil, "setmetatable(t, nil) removes it")
fails("nil or table expected", "setmetatable with a number", setmetatable, {}, 1)
local prot = setmetatable({}, { __metatable = "locked" })
eq(getmetatable(prot), "locked", "__metatable hides the metatable")
fails("cannot change a protected metatable", "setmetatable on a protected table", setmetatable, prot, {})

-- __index: table and function, chains
local base = { greet = function() return "hi" end, x = 1 }
local derived = setmetatable({ y = 2 }, { __index = base })
eq(derived.x, 1, "__index table")
eq(derived.y, 2, "own fields win over __index")
eq(derived.greet(), "hi", "method through __index")
eq(derived.z, nil, "missing in both")
eq(rawget(derived, "x"), nil, "rawget skips __index")
local calls = 0
local lazy = setmetatable({}, { __index = function(tbl, k) calls = calls + 1; return k .. "!" end })
eq(lazy.foo, "foo!", "__index function")
eq(lazy[1], "1!", "__index function with a number key")
eq(calls, 2, "__index function called once per access")
local c = setmetatable({}, { __index = setmetatable({}, { __index = setmetatable({}, { __index = { deep = "yes" } }) }) })
eq(c.deep, "yes", "__index chain")

-- classes
local Point = {}
Point.__index = Point
function Point.new(x, y) return setmetatable({ x = x, y = y }, Point) end
function Point:len2() return self.x * self.x + self.y * self.y end
Point.__add = function(a, b) return Point.new(a.x + b.x, a.y + b.y) end
Point.__eq = function(a, b) return a.x == b.x and a.y == b.y end
Point.__tostring = function(p) return "(" .. p.x .. "," .. p.y .. ")" end
local p = Point.new(3, 4)
eq(p:len2(), 25, "method call through a class")
eq(tostring(p + Point.new(1, 1)), "(4,5)", "__add and __tostring")
check(Point.new(1, 2) == Point.new(1, 2), "__eq")
check(Point.new(1, 2) ~= Point.new(2, 1), "__eq false gives ~=")
check(rawequal(p, p) and not rawequal(p, Point.new(3, 4)), "rawequal ignores __eq")

-- __newindex: function and table
local log = {}
local guarded = setmetatable({}, { __newindex = function(tbl, k, v) log[#log + 1] = k; rawset(tbl, k, v * 2) end })
guarded.a = 1
eq(guarded.a, 2, "__newindex function")
guarded.a = 5
eq(guarded.a, 5, "__newindex is not called for existing keys")
eq(#log, 1, "__newindex called once")
local store = {}
local proxy = setmetatable({}, { __newindex = store })
proxy.k = "v"
eq(rawget(proxy, "k"), nil, "__newindex table leaves the proxy empty")
eq(store.k, "v", "__newindex table receives the value")
local ro = setmetatable({}, { __newindex = function() error("read-only", 2) end })
fails("read-only", "__newindex raising an error", function() ro.x = 1 end)
rawset(ro, "x", 1)
eq(ro.x, 1, "rawset skips __newindex")

-- __call
local callable = setmetatable({}, { __call = function(self, a, b) return a + b, self end })
local sum, me = callable(2, 3)
check(sum == 5 and me == callable, "__call receives the table and the arguments")
eq(select("#", callable(1, 2)), 2, "__call returns every value")
fails("attempt to call", "calling a table without __call", function() local x = {} x() end)

-- arithmetic metamethods
local V = {}
V.__index = V
local function vec(n) return setmetatable({ n = n }, V) end
local function num(x) return type(x) == "table" and x.n or x end
V.__add = function(a, b) return vec(num(a) + num(b)) end
V.__sub = function(a, b) return vec(num(a) - num(b)) end
V.__mul = function(a, b) return vec(num(a) * num(b)) end
V.__div = function(a, b) return vec(num(a) / num(b)) end
V.__mod = function(a, b) return vec(num(a) % num(b)) end
V.__pow = function(a, b) return vec(num(a) ^ num(b)) end
V.__unm = function(a) return vec(-a.n) end
V.__concat = function(a, b) return "<" .. tostring(num(a)) .. "|" .. tostring(num(b)) .. ">" end
V.__lt = function(a, b) return num(a) < num(b) end
V.__le = function(a, b) return num(a) <= num(b) end
local a, b = vec(7), vec(2)
eq((a + b).n, 9, "__add")
eq((a - b).n, 5, "__sub")
eq((a * b).n, 14, "__mul")
eq((a / b).n, 3.5, "__div")
eq((a % b).n, 1, "__mod")
eq((a ^ b).n, 49, "__pow")
eq((-a).n, -7, "__unm")
eq((a + 1).n, 8, "__add with a number on the right")
eq((1 + a).n, 8, "__add with a number on the left")
eq(a .. b, "<7|2>", "__concat")
eq(a .. "s", "<7|s>", "__concat with a string on the right")
eq(1 .. a, "<1|7>", "__concat with a number on the left")
eq("x" .. a .. "y", "x<7|y>", "__concat is right associative")
check(b < a, "__lt")
check(not (a < b), "__lt false")
check(a > b, "__lt for >")
check(b <= a and a <= a, "__le")
check(a >= b, "__le for >=")
fails("attempt to perform arithmetic", "arithmetic without metamethods", function() return {} + {} end)
fails("attempt to compare", "comparison without metamethods", function() return {} < {} end)
fails("attempt to concatenate", "concat without metamethods", function() return {} .. "" end)
if not JIT then
  -- integer division through load: // does not parse on LuaJIT
  V.__idiv = function(x, y) return vec(math.floor(num(x) / num(y))) end
  local f = load("local a, b = ... return (a // b).n")
  eq(f(a, b), 3, "__idiv")
  local named = setmetatable({}, { __name = "MyType" })
  check(tostring(named):find("^MyType: ") ~= nil, "__name in tostring")
  fails("MyType", "__name in error messages", function() return named + 1 end)
end

-- __eq rules differ: 5.4/5.5 call the first operand's __eq whenever both are tables;
-- LuaJIT (5.1 rules) only when both tables have the same __eq.
local eqcalls = 0
local EQ = { __eq = function() eqcalls = eqcalls + 1; return true end }
local e1, e2 = setmetatable({}, EQ), setmetatable({}, EQ)
check(e1 == e2, "__eq between tables sharing the metamethod")
check(e1 == e1 and eqcalls == 1, "__eq is not called for the same table")
eq(e1 == {}, not JIT, "__eq with a plain table")
check(e1 ~= 1, "__eq is never called for a number")

-- __len
local lenmt = setmetatable({ 1, 2, 3 }, { __len = function() return 42 end })
if JIT then
  eq(#lenmt, 3, "LuaJIT ignores __len on tables")
else
  eq(#lenmt, 42, "__len")
  if rawlen then eq(rawlen(lenmt), 3, "rawlen skips __len") end
end
if not JIT then eq(rawlen("abc"), 3, "rawlen of a string") end

-- __tostring
eq(tostring(setmetatable({}, { __tostring = function() return "TS" end })), "TS", "__tostring")
check(tostring({}):find("^table: ") ~= nil, "default tostring of a table")
check(tostring(print):find("^function: ") ~= nil, "default tostring of a function")

-- __pairs (Lua 5.4/5.5; LuaJIT ignores it)
local pt = setmetatable({ real = 1 }, { __pairs = function(tbl)
  return function(_, k) if k == nil then return "virtual", 1 end end, tbl, nil
end })
local keys = {}
for k in pairs(pt) do keys[#keys + 1] = k end
eq(table.concat(keys, ","), JIT and "real" or "virtual", "__pairs")

-- __close and <const> (Lua 5.4/5.5; in load because LuaJIT cannot parse them)
if not JIT then
  local out = {}
  local f = assert(load([[
    local out = ...
    local function closer(name)
      return setmetatable({}, { __close = function(_, err) out[#out + 1] = name .. ":" .. tostring(err) end })
    end
    do
      local a <close> = closer("a")
      local b <close> = closer("b")
      local k <const> = 10
      out[#out + 1] = "body" .. k
    end
    local ok, err = pcall(function()
      local c <close> = closer("c")
      error("boom", 0)
    end)
    out[#out + 1] = tostring(ok) .. ":" .. err
    local function early()
      local d <close> = closer("d")
      return "returned"
    end
    local r = early()
    out[#out + 1] = r
    local n <close> = nil
    return out
  ]]))
  f(out)
  eq(table.concat(out, " "), "body10 b:nil a:nil c:boom false:boom d:nil returned",
    "__close runs in reverse order, with the error, on return")
  local bad, err = load("local x <const> = 1; x = 2")
  check(bad == nil and err:find("attempt to assign to const variable 'x'", 1, true),
    "assigning a <const> is a compile error")
  fails("variable 'x' got a non-closable value", "<close> of a table without __close",
    load("local x <close> = {}"))
end

print("ok " .. checks.count())
