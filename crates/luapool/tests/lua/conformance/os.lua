-- Conformance: the os functions the sandbox keeps (time, clock, date, difftime).
-- Nothing depends on the local time zone or on how fast the machine is.
local JIT = _VERSION == "Lua 5.1"

local checks = require("lib.check")
local check, eq, fails = checks.check, checks.eq, checks.fails

-- only four functions in the sandbox; the whole library when trusted (where `io` exists)
for _, name in ipairs({ "execute", "exit", "getenv", "remove", "rename", "tmpname", "setlocale" }) do
  if io == nil then
    eq(os[name], nil, "os." .. name .. " is not in the sandbox")
  else
    eq(type(os[name]), "function", "os." .. name .. " is a function (trusted)")
  end
end
for _, name in ipairs({ "time", "clock", "date", "difftime" }) do
  eq(type(os[name]), "function", "os." .. name .. " is a function")
end

-- time
local now = os.time()
check(type(now) == "number" and now > 1.6e9, "os.time() is a plausible epoch time")
if not JIT then eq(math.type(now), "integer", "os.time() is an integer") end
local t = os.time({ year = 2020, month = 6, day = 15, hour = 12, min = 30, sec = 15 })
local back = os.date("*t", t)
check(back.year == 2020 and back.month == 6 and back.day == 15 and back.hour == 12
  and back.min == 30 and back.sec == 15, "os.time and os.date('*t') round-trip")
eq(os.time(os.date("*t", now)), now, "os.time(os.date('*t', t)) == t")
eq(os.time({ year = 2020, month = 13, day = 1, hour = 12 }),
  os.time({ year = 2021, month = 1, day = 1, hour = 12 }), "os.time normalises month 13")
eq(os.time({ year = 2021, month = 3, day = 0, hour = 12 }),
  os.time({ year = 2021, month = 2, day = 28, hour = 12 }), "os.time normalises day 0")
eq(os.time({ year = 2020, month = 1, day = 2, hour = 12 }) - os.time({ year = 2020, month = 1, day = 1, hour = 12 }),
  86400, "one day apart")
fails("field 'day' missing in date table", "os.time without a day", os.time, { year = 2020, month = 1 })

-- date in UTC
eq(os.date("!%Y-%m-%d %H:%M:%S", 0), "1970-01-01 00:00:00", "os.date('!...', 0)")
eq(os.date("!%Y-%m-%dT%H:%M:%SZ", 1700000000), "2023-11-14T22:13:20Z", "os.date of 1700000000")
eq(os.date("!%A %B %j", 0), "Thursday January 001", "weekday, month and day-of-year names")
eq(os.date("!%a %b %d %y", 86400 * 365), "Fri Jan 01 71", "abbreviated names")
eq(os.date("!%H%%", 3600), "01%", "%% in a date format")
local u = os.date("!*t", 86400)
check(u.year == 1970 and u.month == 1 and u.day == 2 and u.hour == 0 and u.min == 0 and u.sec == 0,
  "os.date('!*t') fields")
eq(u.wday, 6, "wday (1 is Sunday): 1970-01-02 was a Friday")
eq(u.yday, 2, "yday")
eq(u.isdst, false, "isdst in UTC")
local lt = os.date("*t")
eq(type(lt.isdst), "boolean", "local isdst is a boolean")
check(lt.year >= 2024, "local year is plausible")
eq(type(os.date()), "string", "os.date() without arguments")
check(#os.date("%c", 0) > 0, "os.date('%c')")
eq(os.date("!%Y", 2 ^ 31), "2038", "a date after 2038")
if not JIT then
  fails("invalid conversion specifier", "os.date with an invalid conversion", os.date, "%Ez")
end

-- clock
local c1 = os.clock()
check(type(c1) == "number" and c1 >= 0, "os.clock() is a non-negative number")
local x = 0
for i = 1, 10000 do x = x + i end
local c2 = os.clock()
check(c2 >= c1, "os.clock() does not go backwards")

-- difftime
eq(os.difftime(10, 5), 5, "os.difftime")
eq(os.difftime(5, 10), -5, "os.difftime negative")
if not JIT then eq(math.type(os.difftime(10, 5)), "float", "os.difftime returns a float") end
eq(os.difftime(t + 60, t), 60, "difftime of two os.time values")

-- the os table is sealed in the sandbox; trusted (where `io` exists), it is writable
if io == nil then
  fails("read-only", "assigning into os", function() os.exit = function() end end)
else
  local exit = os.exit
  os.exit = nil
  eq(os.exit, nil, "assigning into os (trusted)")
  os.exit = exit
end

print("ok " .. checks.count())
