-- Conformance: goto and labels (Lua 5.2+ and LuaJIT), break, and loop control.
local JIT = _VERSION == "Lua 5.1"

local checks = require("lib.check")
local show, check, eq = checks.show, checks.check, checks.eq
-- load(src) must fail to compile with a message containing `needle`.
local function nocompile(src, needle, what)
  checks.add()
  local f, err = load(src, "=src")
  if f then error(what .. ": compiled, expected an error", 2) end
  if not err:find(needle, 1, true) then
    error(what .. ": error " .. show(err) .. " does not contain " .. show(needle), 2)
  end
end

-- continue idiom
local odds = {}
for i = 1, 10 do
  if i % 2 == 0 then goto continue end
  odds[#odds + 1] = i
  ::continue::
end
eq(table.concat(odds, ","), "1,3,5,7,9", "goto continue in a numeric for")
local kept = {}
for _, w in ipairs({ "a", "", "b", "", "c" }) do
  if w == "" then goto next_word end
  kept[#kept + 1] = w
  ::next_word::
end
eq(table.concat(kept), "abc", "goto continue in a generic for")
local n, seen = 0, {}
while n < 5 do
  n = n + 1
  if n == 3 then goto skip end
  seen[#seen + 1] = n
  ::skip::
end
eq(table.concat(seen, ","), "1,2,4,5", "goto continue in a while loop")
local r, rs = 0, {}
repeat
  r = r + 1
  if r == 2 then goto cont end
  rs[#rs + 1] = r
  ::cont::
until r >= 4
eq(table.concat(rs, ","), "1,3,4", "goto continue in a repeat loop")

-- leaving nested loops
local found
for i = 1, 5 do
  for j = 1, 5 do
    if i * j == 12 then
      found = i .. "x" .. j
      goto done
    end
  end
end
::done::
eq(found, "3x4", "goto out of nested loops")
local pairs_found = 0
for i = 1, 3 do
  for j = 1, 3 do
    if j > i then goto next_i end
    pairs_found = pairs_found + 1
  end
  ::next_i::
end
eq(pairs_found, 6, "goto to the end of the outer loop body")

-- backward goto as a loop
local count = 0
::top::
count = count + 1
if count < 5 then goto top end
eq(count, 5, "backward goto loops")

-- each jump back creates fresh locals (closures see distinct variables)
local fns = {}
do
  local k = 1
  ::again::
  local v = k * 10
  fns[k] = function() return v end
  k = k + 1
  if k <= 3 then goto again end
end
eq(fns[1]() + fns[2]() + fns[3](), 60, "locals after a label are fresh on every jump")

-- goto in nested blocks and functions
local function classify(x)
  if x < 0 then goto negative end
  do return "non-negative" end
  ::negative::
  return "negative"
end
eq(classify(-1), "negative", "goto forward in a function")
eq(classify(1), "non-negative", "do return end before a label")

-- break
local b = 0
for i = 1, 100 do
  b = i
  if i == 7 then break end
end
eq(b, 7, "break leaves a for loop")
local w = 0
while true do
  w = w + 1
  if w >= 3 then break end
end
eq(w, 3, "break leaves while true")
local outer_iters = 0
for _ = 1, 3 do
  outer_iters = outer_iters + 1
  for _ = 1, 3 do break end
end
eq(outer_iters, 3, "break leaves only the inner loop")

-- compile errors
nocompile("do goto l; local a; ::l:: print(a) end", "jumps into the scope of",
  "goto into the scope of a local")
nocompile("::a:: ::a::", JIT and "duplicate label 'a'" or "label 'a' already defined",
  "duplicate label")
nocompile("goto nowhere", JIT and "undefined label 'nowhere'" or "no visible label 'nowhere'",
  "undefined label")
nocompile("do ::inner:: end goto inner", JIT and "undefined label 'inner'" or "no visible label 'inner'",
  "label in a nested block is not visible")
nocompile("local function f() goto out end ::out::",
  JIT and "undefined label 'out'" or "no visible label 'out'", "goto cannot leave a function")
nocompile("break", JIT and "no loop to break" or "break outside", "break outside a loop")
check(load("do goto l; local a; ::l:: end") ~= nil, "a label at the end of a block may follow locals")
check(load("for i = 1, 2 do goto continue; local x = i; ::continue:: end") ~= nil,
  "continue label at the end of a loop body")
check(load("local goto_ = 1 return goto_") ~= nil, "goto_ is a normal name")
-- goto is a reserved word on 5.4/5.5; LuaJIT still accepts it as a variable name
eq(load("local goto = 1") ~= nil, JIT, "goto as a variable name")

print("ok " .. checks.count())
