-- Conformance: bitwise operations. Lua 5.4/5.5 have 64-bit integer operators (inside load(),
-- because stock LuaJIT cannot parse them); LuaJIT has the 32-bit `bit` library.
local JIT = _VERSION == "Lua 5.1"

local checks = require("lib.check")
local check, eq, fails = checks.check, checks.eq, checks.fails
local function run(src)
  local f, err = load(src, "=src")
  if not f then error("load failed: " .. tostring(err), 2) end
  return f()
end

if JIT then
  check(type(bit) == "table", "bit library present on LuaJIT")
  eq(bit.tobit(0xffffffff), -1, "bit.tobit wraps to signed 32 bits")
  eq(bit.tobit(2 ^ 32 + 5), 5, "bit.tobit reduces modulo 2^32")
  eq(bit.tohex(255), "000000ff", "bit.tohex")
  eq(bit.tohex(255, 2), "ff", "bit.tohex with width")
  eq(bit.tohex(255, -2), "FF", "bit.tohex upper case")
  eq(bit.tohex(-1), "ffffffff", "bit.tohex(-1)")
  eq(bit.bnot(0), -1, "bit.bnot")
  eq(bit.band(0xff, 0x0f), 15, "bit.band")
  eq(bit.band(2 ^ 53 + 3, 0xff), 2, "bit.band of a big number")
  eq(bit.band("0x0f", 3), 3, "bit.band coerces a numeric string")
  eq(bit.bor(1, 2, 4), 7, "bit.bor with three arguments")
  eq(bit.bxor(5, 3), 6, "bit.bxor")
  eq(bit.lshift(1, 31), -2147483648, "bit.lshift into the sign bit")
  eq(bit.lshift(1, 32), 1, "bit.lshift count is taken modulo 32")
  eq(bit.rshift(-1, 28), 15, "bit.rshift is logical")
  eq(bit.arshift(-16, 2), -4, "bit.arshift is arithmetic")
  eq(bit.rol(0x12345678, 8), 0x34567812, "bit.rol")
  eq(bit.ror(0x12345678, 8), 0x78123456, "bit.ror")
  eq(bit.bswap(0x12345678), 0x78563412, "bit.bswap")
  fails("number expected", "bit.band of a non-number", bit.band, "x")
  if io == nil then
    fails("read-only", "bit is sealed", function() bit.band = nil end)
  else
    local band = bit.band
    bit.band = nil
    eq(bit.band, nil, "bit is writable (trusted)")
    bit.band = band
  end
  -- This LuaJIT build may also parse the 5.3 operators; when it does, they must follow
  -- the bit library's 32-bit rules. (Stock LuaJIT 2.1 refuses them.)
  if load("return 1 & 1") then
    eq(run("return 5 & 3"), bit.band(5, 3), "& like bit.band")
    eq(run("return 5 | 3"), bit.bor(5, 3), "| like bit.bor")
    eq(run("return 5 ~ 3"), bit.bxor(5, 3), "~ like bit.bxor")
    eq(run("return ~5"), bit.bnot(5), "unary ~ like bit.bnot")
    eq(run("return 1 << 40"), bit.lshift(1, 40), "<< like bit.lshift")
    eq(run("return -1 >> 28"), bit.rshift(-1, 28), ">> like bit.rshift")
  end
  check(load("return 7 // 2") == nil, "LuaJIT does not parse //")
else
  eq(bit, nil, "no bit library on Lua 5.4/5.5")
  local r = { run([[return 5 & 3, 5 | 3, 5 ~ 3, ~0, 1 << 62, 1 << 63, 1 << 64, -1 >> 1,
    1 << -1, 2^53 | 0, 8 >> 1, -8 >> 1, 0xF0 ~ 0xFF, 1 << 63 >> 63, 2 >> -1]]) }
  eq(r[1], 1, "5 & 3")
  eq(r[2], 7, "5 | 3")
  eq(r[3], 6, "5 ~ 3 (xor)")
  eq(r[4], -1, "~0")
  eq(r[5], 4611686018427387904, "1 << 62")
  eq(r[6], math.mininteger, "1 << 63 is mininteger")
  eq(r[7], 0, "1 << 64 is 0")
  eq(r[8], math.maxinteger, "-1 >> 1 is logical")
  eq(r[9], 0, "1 << -1 shifts right")
  eq(r[10], 9007199254740992, "integral float in |")
  eq(math.type(r[10]), "integer", "bitwise result is an integer")
  eq(r[11], 4, "8 >> 1")
  eq(r[12], 0x7FFFFFFFFFFFFFFC, "-8 >> 1 is logical")
  eq(r[13], 0x0F, "0xF0 ~ 0xFF")
  eq(r[14], 1, "1 << 63 >> 63")
  eq(r[15], 4, "2 >> -1 shifts left")
  eq(run("return 0xFF & 0x0F | 0x30"), 0x3F, "& binds tighter than |")
  eq(run("return 1 << 2 + 1"), 8, "+ binds tighter than <<")
  eq(run("return 5 & 3.0"), 1, "integral float operand")
  fails("number has no integer representation", "1.5 & 1", run, "return 1.5 & 1")
  fails("attempt to perform bitwise operation on a string value", "string operand",
    run, "local s = '3' return s & 1")
  fails("attempt to perform bitwise operation on a table value", "table operand",
    run, "return {} | 1")
  -- metamethods for bitwise operators
  local mt = {
    __band = function(_, _) return "band" end,
    __bor = function(_, _) return "bor" end,
    __bxor = function(_, _) return "bxor" end,
    __bnot = function(_) return "bnot" end,
    __shl = function(_, _) return "shl" end,
    __shr = function(_, _) return "shr" end,
  }
  local f = load("local o = ... return o & 1, 1 | o, o ~ o, ~o, o << 1, o >> 1")
  local a, b, c, d, e, g = f(setmetatable({}, mt))
  eq(table.concat({ a, b, c, d, e, g }, ","), "band,bor,bxor,bnot,shl,shr", "bitwise metamethods")
end

print("ok " .. checks.count())
