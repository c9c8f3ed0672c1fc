-- Conformance: the table library (every function the sandbox keeps) and table basics.
local JIT = _VERSION == "Lua 5.1"
local V55 = _VERSION == "Lua 5.5"

local checks = require("lib.check")
local check, eq, fails = checks.check, checks.eq, checks.fails
local function list(t, n)
  local out = {}
  for k = 1, n or #t do out[k] = tostring(t[k]) end
  return table.concat(out, ",")
end
local unpack = table.unpack or unpack

-- constructors and length
local t = { 10, 20, 30, x = 1, [5] = 50 }
eq(t[1], 10, "array part")
eq(t.x, 1, "hash part")
eq(t[5], 50, "explicit key")
eq(#{ 1, 2, 3 }, 3, "length of a sequence")
eq(#{}, 0, "length of an empty table")
eq(#{ n = 1 }, 0, "length ignores string keys")
local nested = { { 1 }, { 2, { 3 } } }
eq(nested[2][2][1], 3, "nested constructors")
local k1, k2 = {}, {}
local bykey = { [k1] = "a", [k2] = "b", [1.5] = "f", [true] = "t" }
check(bykey[k1] == "a" and bykey[k2] == "b", "tables as keys")
check(bykey[1.5] == "f" and bykey[true] == "t", "float and boolean keys")
local norm = {}
norm[1.0] = "one"
eq(norm[1], "one", "key 1.0 is the same as 1")
eq(norm[2 / 2], "one", "computed float key normalised")
fails("index is nil", "nil key assignment", function() local z = {} z[nil] = 1 end)
fails("NaN", "NaN key assignment", function() local z = {} z[0 / 0] = 1 end)
eq(({})[nil], nil, "reading a nil key is allowed")

-- insert
local a = { 1, 2, 3 }
table.insert(a, 4)
eq(list(a), "1,2,3,4", "insert at the end")
table.insert(a, 1, 0)
eq(list(a), "0,1,2,3,4", "insert at the front")
table.insert(a, 3, 1.5)
eq(list(a), "0,1,1.5,2,3,4", "insert in the middle")
table.insert(a, #a + 1, 5)
eq(list(a), "0,1,1.5,2,3,4,5", "insert at #t+1")
fails("wrong number of arguments to 'insert'", "insert with 4 arguments", table.insert, {}, 1, 2, 3)
fails("table expected, got nil", "insert into nil", table.insert, nil, 1)
if JIT then
  -- LuaJIT (5.1 rules) accepts any position.
  local b = { 1, 2, 3 }
  check(pcall(table.insert, b, 5, 9), "insert past #t+1 is accepted by LuaJIT")
  eq(b[5], 9, "insert past #t+1 stores the value on LuaJIT")
else
  fails("position out of bounds", "insert past #t+1", table.insert, { 1, 2, 3 }, 5, 9)
  fails("position out of bounds", "insert at 0", table.insert, { 1, 2, 3 }, 0, 9)
end

-- remove
local r = { "a", "b", "c", "d" }
eq(table.remove(r), "d", "remove the last element")
eq(list(r), "a,b,c", "after removing the last element")
eq(table.remove(r, 1), "a", "remove the first element")
eq(list(r), "b,c", "after removing the first element")
eq(table.remove(r, 2), "c", "remove at a position")
eq(#r, 1, "length after removals")
local e = {}
eq(table.remove(e), nil, "remove from an empty table")
-- On LuaJIT remove on an empty table returns no value at all; Lua 5.4/5.5 return nil.
eq(select("#", table.remove({})), JIT and 0 or 1, "number of results of remove on an empty table")
local u = { 1, 2, 3 }
eq(table.remove(u, #u + 1), nil, "remove at #t+1")
eq(#u, 3, "remove at #t+1 changes nothing")
if not JIT then
  fails("position out of bounds", "remove far past the end", table.remove, { 1, 2, 3 }, 7)
end

-- concat
eq(table.concat({ 1, 2.5, "x" }, "-"), "1-2.5-x", "concat numbers and strings")
eq(table.concat({ "a", "b", "c" }), "abc", "concat without separator")
eq(table.concat({}, ","), "", "concat of an empty table")
eq(table.concat({ 1, 2, 3 }, ",", 2, 3), "2,3", "concat a range")
eq(table.concat({ 1, 2, 3 }, ",", 3, 2), "", "concat an empty range")
fails("invalid value (table) at index 2 in table for 'concat'", "concat with a table",
  table.concat, { 1, {}, 3 })
fails("invalid value (nil) at index 3 in table for 'concat'", "concat past the end",
  table.concat, { 1, 2 }, ",", 1, 3)

-- sort
local s = { 5, 2, 8, 1, 9, 3 }
table.sort(s)
eq(list(s), "1,2,3,5,8,9", "sort numbers")
table.sort(s, function(x, y) return x > y end)
eq(list(s), "9,8,5,3,2,1", "sort with a comparator")
local names = { "bob", "alice", "Carol", "dave" }
table.sort(names)
eq(table.concat(names, ","), "Carol,alice,bob,dave", "sort strings by bytes")
local recs = { { n = "b", v = 2 }, { n = "a", v = 1 }, { n = "c", v = 3 } }
table.sort(recs, function(x, y) return x.v < y.v end)
eq(recs[1].n .. recs[2].n .. recs[3].n, "abc", "sort records by field")
local one = { 1 }
table.sort(one)
eq(one[1], 1, "sort a single element")
table.sort({})
checks.add() -- sorting an empty table does not fail
fails("attempt to compare", "sort mixed types", table.sort, { 3, "a", 2 })
fails("function expected, got number", "sort with a non-function comparator", table.sort, { 1, 2 }, 5)
local big = {}
for k = 1, 200 do big[k] = (k * 37) % 200 end
table.sort(big)
local sorted = true
for k = 2, 200 do if big[k - 1] > big[k] then sorted = false end end
check(sorted, "sort 200 elements")

-- unpack and pack
eq(list({ unpack({ 1, 2, 3 }) }), "1,2,3", "unpack a sequence")
eq(list({ unpack({ 1, 2, 3 }, 2) }), "2,3", "unpack from an index")
eq(list({ unpack({ 1, 2, 3 }, 2, 3) }), "2,3", "unpack a range")
eq(select("#", unpack({}, 1, 3)), 3, "unpack a range of nils")
eq(select("#", unpack({})), 0, "unpack an empty table")
if JIT then
  eq(type(_G.unpack), "function", "LuaJIT has the global unpack")
  eq(table.unpack, nil, "no table.unpack on LuaJIT")
  eq(table.pack, nil, "no table.pack on LuaJIT")
else
  eq(_G.unpack, nil, "no global unpack on Lua 5.4/5.5")
  local p = table.pack(1, nil, 3)
  eq(p.n, 3, "table.pack sets n")
  check(p[1] == 1 and p[2] == nil and p[3] == 3, "table.pack keeps nils")
  eq(table.pack().n, 0, "table.pack without arguments")
  eq(select("#", table.unpack(p, 1, p.n)), 3, "unpack with n")
end

-- move (all three engines)
local m = table.move({ 1, 2, 3 }, 1, 3, 2)
eq(list(m, 4), "1,1,2,3", "move within a table (overlapping)")
local d = table.move({ 1, 2, 3 }, 1, 3, 1, {})
eq(list(d), "1,2,3", "move into another table")
local d2 = table.move({ 1, 2, 3 }, 2, 3, 1, { 9, 9, 9 })
eq(list(d2), "2,3,9", "move a range into another table")
eq(#table.move({}, 1, 0, 1, { 7 }), 1, "move an empty range returns the destination")

-- engine-specific extras
if JIT then
  eq(table.maxn({ 1, 2, [10] = 3 }), 10, "table.maxn (LuaJIT)")
  eq(table.getn({ 1, 2 }), 2, "table.getn (LuaJIT)")
  local seen = {}
  table.foreachi({ "a", "b" }, function(k, v) seen[#seen + 1] = k .. v end)
  eq(table.concat(seen, ","), "1a,2b", "table.foreachi (LuaJIT)")
  eq(table.foreach({ x = 1 }, function(k, v) return k .. v end), "x1", "table.foreach (LuaJIT)")
end
if V55 then
  local c = table.create(10, 5)
  eq(type(c), "table", "table.create returns a table (5.5)")
  eq(#c, 0, "table.create returns an empty table (5.5)")
  eq(next(c), nil, "table.create has no keys (5.5)")
end

-- next, pairs, ipairs
eq(next({}), nil, "next on an empty table")
local k, v = next({ 7 })
check(k == 1 and v == 7, "next returns the first pair")
fails("invalid key to 'next'", "next with an unknown key", next, {}, "nokey")
local sum, cnt = 0, 0
for _, val in pairs({ a = 1, b = 2, c = 3, 4 }) do sum = sum + val; cnt = cnt + 1 end
check(sum == 10 and cnt == 4, "pairs visits every pair")
local seq = {}
for i, val in ipairs({ 1, 2, nil, 4 }) do seq[#seq + 1] = i .. "=" .. val end
eq(table.concat(seq, ","), "1=1,2=2", "ipairs stops at the first nil")
-- clearing fields during traversal is allowed
local clr = { a = 1, b = 2, c = 3 }
for key in pairs(clr) do clr[key] = nil end
eq(next(clr), nil, "clearing during pairs")

print("ok " .. checks.count())
