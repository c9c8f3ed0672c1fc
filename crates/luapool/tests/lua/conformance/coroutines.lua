-- Conformance: the coroutine library (every function the sandbox keeps).
-- Scripts may run as the main thread or inside a coroutine (async executions), so nothing
-- here depends on what coroutine.running() says at the top level.
local JIT = _VERSION == "Lua 5.1"
local V55 = _VERSION == "Lua 5.5"

-- "^<chunk>:%d+: ": the position prefix of errors raised in this file. The chunk name is
-- whatever the file was run as (a relative or absolute path, maybe shortened by Lua), so
-- it is read from an error rather than written here.
local CHUNK = select(2, pcall(function() error("@") end)):match("^(.*):%d+: @$")
local POS = "^" .. CHUNK:gsub("%p", "%%%0") .. ":%d+: "

local checks = require("lib.check")
local check, eq, all = checks.check, checks.eq, checks.all
local THREAD_EXPECTED = JIT and "coroutine expected" or "thread expected"

-- create, resume, yield: values in and out
local co = coroutine.create(function(a, b)
  local c = coroutine.yield(a + b)
  local d, e = coroutine.yield(c * 2)
  return d + e
end)
eq(type(co), "thread", "create returns a thread")
eq(coroutine.status(co), "suspended", "a new coroutine is suspended")
eq(all(coroutine.resume(co, 1, 2)), "true|3", "first resume passes arguments")
eq(all(coroutine.resume(co, 10)), "true|20", "resume passes values to yield")
eq(all(coroutine.resume(co, 3, 4)), "true|7", "return values end the coroutine")
eq(coroutine.status(co), "dead", "a finished coroutine is dead")
eq(all(coroutine.resume(co)), "false|cannot resume dead coroutine", "resuming a dead coroutine")
eq(select("#", coroutine.resume(coroutine.create(function() coroutine.yield(1, nil, nil) end))), 4,
  "yield keeps trailing nils")
eq(select("#", coroutine.resume(coroutine.create(function() end))), 1, "empty return")

-- status: running and normal
local outer
outer = coroutine.create(function()
  eq(coroutine.status(outer), "running", "status of the running coroutine")
  local inner = coroutine.create(function() return coroutine.status(outer) end)
  return coroutine.resume(inner)
end)
eq(all(coroutine.resume(outer)), "true|true|normal", "status of a coroutine that resumed another")

-- running and isyieldable inside a coroutine
local inside = coroutine.create(function()
  local r, ismain = coroutine.running()
  eq(type(r), "thread", "running returns a thread inside a coroutine")
  if not JIT then eq(ismain, false, "running's second result inside a coroutine") end
  check(coroutine.isyieldable(), "isyieldable inside a coroutine")
  return r
end)
local _, who = coroutine.resume(inside)
check(who == inside, "running returns the coroutine itself")
check(type(coroutine.running()) == "thread" or coroutine.running() == nil,
  "running at the top level is a thread (or nil on LuaJIT's main thread)")
eq(type(coroutine.isyieldable()), "boolean", "isyieldable returns a boolean")
local self_resume = coroutine.create(function() return coroutine.resume(coroutine.running()) end)
eq(all(coroutine.resume(self_resume)), JIT and "true|false|cannot resume running coroutine"
  or "true|false|cannot resume non-suspended coroutine", "resuming the running coroutine")

-- errors inside coroutines
local co2 = coroutine.create(function() error("boom") end)
local ok, err = coroutine.resume(co2)
check(not ok, "resume reports an error")
check(err:find(POS .. "boom$"), "error message with position: " .. tostring(err))
eq(coroutine.status(co2), "dead", "a coroutine that failed is dead")
local tag = {}
local co3 = coroutine.create(function() error(tag) end)
ok, err = coroutine.resume(co3)
check(not ok and err == tag, "error values pass through resume unchanged")
ok, err = coroutine.resume(coroutine.create(function() local x = nil; return x.y end))
check(not ok and err:find("attempt to index", 1, true), "runtime error inside a coroutine")

-- wrap
local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
eq(gen(), 1, "wrap yields 1")
eq(gen(), 2, "wrap yields 2")
eq(gen(), 3, "wrap yields 3")
local function range(n)
  return coroutine.wrap(function() for i = 1, n do coroutine.yield(i) end end)
end
local sum = 0
for v in range(5) do sum = sum + v end
eq(sum, 15, "wrap as a for-loop iterator")
local w = coroutine.wrap(function() error("wboom") end)
ok, err = pcall(w)
check(not ok and err:find(POS:sub(2) .. "wboom$"), "wrap propagates string errors: " .. tostring(err))
local wt = coroutine.wrap(function() error(tag) end)
ok, err = pcall(wt)
check(not ok and err == tag, "wrap propagates table errors unchanged")
local wdead = coroutine.wrap(function() return 1 end)
wdead()
ok, err = pcall(function() local x = wdead() return x end)
check(not ok, "calling a dead wrap fails")
check(not ok and err:find(POS .. "cannot resume dead coroutine$"),
  "dead wrap error names the caller's line: " .. tostring(err))
ok, err = pcall(function() local x = w() return x end)
check(not ok and err:find("cannot resume dead coroutine", 1, true), "a failed wrap is dead")

-- bad arguments
ok, err = pcall(coroutine.status, 5)
check(not ok and err:find(THREAD_EXPECTED, 1, true), "status of a number: " .. tostring(err))
ok, err = pcall(function() local x = coroutine.resume(5) return x end)
check(not ok and err:find(THREAD_EXPECTED, 1, true), "resume of a number: " .. tostring(err))
check(err:find(POS .. "bad argument #1 to 'resume'"), "resume of a number names the caller and 'resume': " .. err)
ok, err = pcall(function() local x = coroutine.wrap(1) return x end)
check(not ok and err:find("function expected", 1, true), "wrap of a number: " .. tostring(err))
eq((err:gsub(POS, "")), "bad argument #1 to 'wrap' (function expected, got number)", "wrap of a number")
check(err:find(POS), "wrap of a number names the caller's line: " .. err)
ok, err = pcall(function() local x = coroutine.wrap() return x end)
eq((err:gsub(POS, "")), "bad argument #1 to 'wrap' (function expected, got no value)", "wrap()")
ok, err = pcall(coroutine.create, 1)
check(not ok and err:find("function expected", 1, true), "create of a number")

-- yield across pcall, xpcall, metamethods and iterators (Lua 5.2+ and LuaJIT)
local across = coroutine.create(function()
  local ok1, v1 = pcall(coroutine.yield, "from pcall")
  local ok2, v2 = xpcall(function() return coroutine.yield("from xpcall") end, debug.traceback)
  return ok1, v1, ok2, v2
end)
eq(all(coroutine.resume(across)), "true|from pcall", "yield inside pcall")
eq(all(coroutine.resume(across, "a")), "true|from xpcall", "yield inside xpcall")
eq(all(coroutine.resume(across, "b")), "true|true|a|true|b", "pcall and xpcall resume and return")
local meta = coroutine.create(function()
  local t = setmetatable({}, {
    __add = function() return coroutine.yield("add") end,
    __index = function(_, k) return coroutine.yield(k) end,
    __concat = function() return coroutine.yield("cat") end,
  })
  return t + 1, t.key, t .. "x"
end)
eq(all(coroutine.resume(meta)), "true|add", "yield in __add")
eq(all(coroutine.resume(meta, 1)), "true|key", "yield in __index")
eq(all(coroutine.resume(meta, 2)), "true|cat", "yield in __concat")
eq(all(coroutine.resume(meta, 3)), "true|1|2|3", "metamethods resume with the values")
local iter = coroutine.create(function()
  local seen = {}
  for k in function(_, i)
    i = (i or 0) + 1
    if i > 2 then return nil end
    coroutine.yield(i)
    return i
  end do seen[#seen + 1] = k end
  return #seen
end)
eq(all(coroutine.resume(iter)), "true|1", "yield in a generic-for iterator (1)")
eq(all(coroutine.resume(iter)), "true|2", "yield in a generic-for iterator (2)")
eq(all(coroutine.resume(iter)), "true|2", "generic-for iterator finishes")
local deep
deep = function(n) if n == 0 then return coroutine.yield("bottom") end return deep(n - 1) end
local cd = coroutine.create(function() return deep(100) end)
eq(all(coroutine.resume(cd)), "true|bottom", "yield from deep recursion")
eq(all(coroutine.resume(cd, "up")), "true|up", "resume deep recursion")
local sorter = coroutine.create(function()
  table.sort({ 3, 2, 1 }, function(a, b) coroutine.yield() return a < b end)
end)
ok, err = coroutine.resume(sorter)
check(not ok and err:find("attempt to yield across", 1, true), "no yield across table.sort: " .. tostring(err))
local gs = coroutine.create(function()
  return ("abc"):gsub(".", function(ch) return coroutine.yield(ch) end)
end)
ok, err = coroutine.resume(gs)
check(not ok and err:find("attempt to yield across", 1, true), "no yield across gsub: " .. tostring(err))

-- producer / consumer
local function producer()
  return coroutine.create(function()
    for _, v in ipairs({ "a", "b", "c" }) do coroutine.yield(v) end
  end)
end
local p, got = producer(), {}
while true do
  local alive, v = coroutine.resume(p)
  if not alive or v == nil then break end
  got[#got + 1] = v
end
eq(table.concat(got), "abc", "producer/consumer")

-- close (Lua 5.4/5.5)
if JIT then
  eq(coroutine.close, nil, "no coroutine.close on LuaJIT")
else
  local c8 = coroutine.create(function() coroutine.yield() end)
  coroutine.resume(c8)
  eq(all(coroutine.close(c8)), "true", "close a suspended coroutine")
  eq(coroutine.status(c8), "dead", "a closed coroutine is dead")
  local c9 = coroutine.create(function() error("e9") end)
  coroutine.resume(c9)
  ok, err = coroutine.close(c9)
  check(ok == false and err:find("e9", 1, true), "close a failed coroutine returns its error")
  eq(all(coroutine.close(coroutine.create(print))), "true", "close a new coroutine")
  -- Closing the running coroutine: an error on 5.4; Lua 5.5 ends the coroutine at once
  -- (as if it returned).
  local after = false
  local selfclose = coroutine.create(function()
    local r1, r2 = pcall(coroutine.close, coroutine.running())
    after = true
    return r1, r2
  end)
  local resumed = all(coroutine.resume(selfclose))
  if V55 then
    eq(resumed, "true", "5.5: a coroutine that closes itself ends as if it returned")
    eq(after, false, "5.5: a coroutine that closes itself ends at once")
  else
    eq(resumed, "true|false|cannot close a running coroutine", "closing the running coroutine fails")
    eq(after, true, "the coroutine goes on after the failed close")
  end
  eq(coroutine.status(selfclose), "dead", "the self-closing coroutine is dead")
  -- close() without an argument: 5.5 closes the running coroutine; 5.4 wants one
  local noarg = coroutine.wrap(function()
    local r1, r2 = pcall(function() local x = coroutine.close() return x end)
    return "went on", r1, r2
  end)
  local went, nok, nerr = noarg()
  if V55 then
    eq(went, nil, "5.5: close() ends the running coroutine")
  else
    check(went == "went on" and not nok
      and nerr:find(POS .. "bad argument #1 to 'close' %(thread expected, got no value%)$"),
      "5.4: close() wants a coroutine: " .. tostring(nerr))
  end
  -- 5.5: a coroutine may close itself from its own __close handler
  if V55 then
    local inner
    local sc = coroutine.create(load([[
      local get = ...
      local x <close> = setmetatable({}, { __close = function() coroutine.close(get()) end })
      coroutine.yield("open")
    ]]))
    coroutine.resume(sc, function() return inner end)
    inner = sc
    eq(all(coroutine.close(sc)), "true", "5.5: closing a coroutine whose __close closes it")
    eq(coroutine.status(sc), "dead", "5.5: closed from its __close handler")
  end
  ok, err = pcall(function() local x = coroutine.close(5) return x end)
  check(not ok and err:find(POS .. "bad argument #1 to 'close' %(thread expected, got number%)$"),
    "close of a number names the caller and 'close': " .. tostring(err))
  -- close runs pending to-be-closed variables (syntax LuaJIT cannot parse)
  local log = {}
  local c10 = coroutine.create(load([[
    local log = ...
    local x <close> = setmetatable({}, { __close = function() log[#log + 1] = "closed" end })
    coroutine.yield("open")
  ]]))
  eq(all(coroutine.resume(c10, log)), "true|open", "coroutine with a <close> variable")
  eq(#log, 0, "not closed while suspended")
  coroutine.close(c10)
  eq(log[1], "closed", "coroutine.close runs __close")
end

print("ok " .. checks.count())

-- An async execution runs in a coroutine of luapool's; on Lua 5.5 closing it
-- (coroutine.close(coroutine.running()) at the top level) would end the whole execution
-- and report success. The sandbox refuses (fixed; this once was a LUAPOOL-BUG).
if V55 then
  local closed, cerr = pcall(coroutine.close, coroutine.running())
  assert(not closed, "closing the execution's own coroutine must fail: " .. tostring(cerr))
  closed, cerr = pcall(function() local x = coroutine.close() return x end)
  assert(not closed and cerr:find(POS .. "cannot close "),
    "close() at the top level must fail at the caller's line: " .. tostring(cerr))
end
