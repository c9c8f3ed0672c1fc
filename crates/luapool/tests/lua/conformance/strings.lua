-- Conformance: the string library (every function the sandbox keeps) and string values.
local JIT = _VERSION == "Lua 5.1"

local checks = require("lib.check")
local check, eq, fails = checks.check, checks.eq, checks.fails
-- f(...) must fail with a message containing `needle` (plain text).

-- string.len and #
eq(string.len("hello"), 5, "string.len")
eq(string.len(""), 0, "string.len of empty string")
eq(#"a\0b", 3, "# counts embedded zeros")
eq(("abc"):len(), 3, "method call s:len()")

-- upper, lower, reverse
eq(string.upper("Hello, World 1"), "HELLO, WORLD 1", "string.upper")
eq(string.lower("Hello, World 1"), "hello, world 1", "string.lower")
eq(string.reverse("abc"), "cba", "string.reverse")
eq(string.reverse(""), "", "string.reverse of empty string")

-- rep
eq(string.rep("ab", 3), "ababab", "string.rep")
eq(("x"):rep(3, ","), "x,x,x", "string.rep with separator")
eq(("x"):rep(1, ","), "x", "string.rep once with separator")
eq(("x"):rep(0), "", "string.rep 0 times")
eq(("x"):rep(-1), "", "string.rep negative count")
fails("bad argument #1", "string.rep without arguments", string.rep)

-- sub
local s = "hello"
eq(s:sub(2), "ello", "sub from 2")
eq(s:sub(-3), "llo", "sub negative start")
eq(s:sub(2, 3), "el", "sub range")
eq(s:sub(2, 100), "ello", "sub end past length")
eq(s:sub(0), "hello", "sub from 0")
eq(s:sub(4, 2), "", "sub empty range")
eq(s:sub(-100, 2), "he", "sub start before beginning")
eq(s:sub(-2, -1), "lo", "sub negative range")

-- byte and char
eq(string.byte("A"), 65, "string.byte default index")
local a, b, c = string.byte("ABC", 1, -1)
check(a == 65 and b == 66 and c == 67, "string.byte range returns every byte")
eq(select("#", string.byte("abc", 1, 3)), 3, "string.byte range count")
eq(string.byte("abc", -1), 99, "string.byte negative index")
eq(string.byte("ABC", 10), nil, "string.byte past the end")
eq(select("#", string.byte("", 1)), 0, "string.byte of empty string returns nothing")
eq(string.char(72, 105), "Hi", "string.char")
eq(string.char(), "", "string.char without arguments")
eq(string.char(0, 255):byte(2), 255, "string.char 0 and 255")
fails(JIT and "invalid value" or "value out of range", "string.char(256)", string.char, 256)

-- escapes and long strings
eq("\x41\65\u{48}", "AAH", "hex, decimal and \\u{} escapes")
eq(#"\u{7FF}", 2, "\\u{7FF} is two bytes")
eq(#"\u{10FFFF}", 4, "\\u{10FFFF} is four bytes")
eq("a\z
      b", "ab", "\\z skips whitespace")
eq([[
line]], "line", "long string drops the first newline")
eq([==[a]]b]==], "a]]b", "long string with level")
eq("\"\'\\\n\t", '"\'\\\n\t', "quote and control escapes")

-- comparison and concatenation
check("abc" < "abd", "string < compares bytes")
check("Z" < "a", "upper case sorts before lower case")
check("" < "a", "empty string is smallest")
check(not ("abc" < "ab"), "prefix sorts first")
check("a" <= "a" and "b" >= "a", "<= and >= on strings")
eq("a" .. "b" .. "c", "abc", "concatenation")
eq(1 .. "", "1", "integer concatenation")
eq(1.5 .. "", "1.5", "float concatenation")
eq(1.0 .. "", JIT and "1" or "1.0", "concatenation of 1.0")
eq(-0.0 .. "", JIT and "-0" or "-0.0", "concatenation of -0.0")
fails("attempt to concatenate", "concatenating a table", function() return "a" .. {} end)
fails("attempt to concatenate", "concatenating nil", function() return "a" .. nil end)
fails("attempt to compare", "comparing string with number", function() return "a" < 1 end)

-- find (patterns are in patterns.lua)
local i, j = string.find("hello world", "o", 6)
check(i == 8 and j == 8, "find with init")
i, j = string.find("hello", "l", -2)
check(i == 4 and j == 4, "find with negative init")
eq(string.find("hello", "xyz"), nil, "find without match")
i, j = string.find("a.b", ".", 1, true)
check(i == 2 and j == 2, "find plain dot")
i, j = string.find("a+b", "+", 1, true)
check(i == 2 and j == 2, "find plain plus")
i, j = string.find("hello", "", 6)
check(i == 6 and j == 5, "find empty pattern at end")
-- Past the end plus one: Lua 5.4/5.5 give nil, LuaJIT (5.1 rules) clamps and finds.
eq(string.find("hello", "", 10), JIT and 6 or nil, "find empty pattern past the end")

-- match, gmatch, gsub (basics; more in patterns.lua)
eq(string.match("key=value", "(%w+)=(%w+)"), "key", "match first capture")
eq(select(2, string.match("key=value", "(%w+)=(%w+)")), "value", "match second capture")
local words = {}
for w in string.gmatch("one two  three", "%a+") do words[#words + 1] = w end
eq(table.concat(words, ","), "one,two,three", "gmatch words")
local r, n = string.gsub("hello world", "o", "0")
check(r == "hell0 w0rld" and n == 2, "gsub replaces and counts")

-- format
eq(string.format("%5.2f", 3.14159), " 3.14", "format %5.2f")
eq(string.format("%.3f", 2 / 3), "0.667", "format %.3f")
eq(string.format("%.0f", 1.5), "2", "format %.0f rounds")
eq(string.format("%d", 42), "42", "format %d")
eq(string.format("%i", 42), "42", "format %i")
eq(string.format("%-5d|%05d|%+d", 3, 42, 7), "3    |00042|+7", "format flags")
eq(string.format("%x %X %o", 255, 255, 8), "ff FF 10", "format %x %X %o")
eq(string.format("%#x", 255), "0xff", "format %#x")
eq(string.format("%e", 12345.678), "1.234568e+04", "format %e")
eq(string.format("%g %g %g", 0.1, 1e20, 100), "0.1 1e+20 100", "format %g")
eq(string.format("%.14g", 0.1), "0.1", "format %.14g")
eq(string.format("%.17g", 0.1), "0.10000000000000001", "format %.17g")
eq(string.format("%a", 1.0), "0x1p+0", "format %a")
eq(string.format("%c%c%c", 76, 117, 97), "Lua", "format %c")
eq(string.format("%%"), "%", "format %%")
eq(string.format("%s %s %s", nil, true, 12), "nil true 12", "format %s of non-strings")
eq(string.format("%s", 1.0), JIT and "1" or "1.0", "format %s of 1.0")
eq(string.format("%5s|%-5s|", "ab", "ab"), "   ab|ab   |", "format %s width")
eq(string.format("%10.3s|", "abcdef"), "       abc|", "format %s precision")
eq(string.format("%s", setmetatable({}, { __tostring = function() return "OBJ" end })), "OBJ",
  "format %s uses __tostring")
eq(string.format("%g", math.huge), "inf", "format %g of huge")
eq(string.format("%g", -math.huge), "-inf", "format %g of -huge")
eq(#string.format("%099d", 1), 99, "format width 99")
eq(string.format("%q", 'a\nb\0c"\\\r\t'), '"a\\\nb\\0c\\"\\\\\\13\\9"', "format %q of a string")
eq(string.format("%q", "\1"), '"\\1"', "format %q of a control character")
if JIT then
  -- LuaJIT's %q quotes numbers as strings; %d truncates floats.
  eq(string.format("%q", 1), '"1"', "format %q of an integer (LuaJIT)")
  eq(string.format("%q", 1 / 3), '"0.33333333333333"', "format %q of a float (LuaJIT)")
  eq(string.format("%d", 3.5), "3", "format %d truncates (LuaJIT)")
  fails("invalid option '%100'", "format width 100 (LuaJIT)", string.format, "%100d", 1)
  fails("invalid option '%y'", "format %y (LuaJIT)", string.format, "%y", 1)
else
  eq(string.format("%q", 255), "255", "format %q of an integer")
  eq(string.format("%q", 1 / 3), "0x1.5555555555555p-2", "format %q of a float is hex")
  eq(string.format("%q", math.huge), "1e9999", "format %q of huge")
  eq(string.format("%q", math.mininteger), "0x8000000000000000", "format %q of mininteger")
  eq(string.format("%d", 3.0), "3", "format %d of an integral float")
  fails("number has no integer representation", "format %d of 3.5", string.format, "%d", 3.5)
  fails("invalid conversion", "format width 100", string.format, "%100d", 1)
  fails("invalid conversion '%y'", "format %y", string.format, "%y", 1)
  fails("specifier '%q' cannot have modifiers", "format %-10q", string.format, "%-10q", "a")
end
eq(string.format("%d", "10"), "10", "format %d coerces a numeric string")
fails("number expected, got string", "format %d of a non-numeric string", string.format, "%d", "x")
fails("bad argument #2", "format with a missing argument", string.format, "%d")

-- pack, packsize, unpack (Lua 5.3+)
if JIT then
  eq(string.pack, nil, "no string.pack on LuaJIT")
  eq(string.unpack, nil, "no string.unpack on LuaJIT")
  eq(string.packsize, nil, "no string.packsize on LuaJIT")
else
  eq(string.pack("<i4", 1), "\1\0\0\0", "pack little-endian int32")
  eq(string.pack(">I2", 258), "\1\2", "pack big-endian uint16")
  eq(string.pack("z", "ab"), "ab\0", "pack zero-terminated string")
  eq(string.pack("s1", "ab"), "\2ab", "pack length-prefixed string")
  eq(string.packsize("i4i8"), 12, "packsize without alignment (the default)")
  eq(string.packsize("<i4i2"), 6, "packsize of i4 i2")
  eq(string.packsize("!8i1i8"), 16, "packsize with explicit alignment")
  local x, y, nextpos = string.unpack("<i4>I2", "\1\0\0\0\1\2")
  check(x == 1 and y == 258 and nextpos == 7, "unpack two values and next position")
  local str, pos = string.unpack("z", "hi\0rest")
  check(str == "hi" and pos == 4, "unpack zero-terminated string")
  local d = string.unpack("<d", string.pack("<d", 1.5))
  eq(d, 1.5, "pack/unpack double round trip")
  check(math.type(string.unpack("<i8", string.pack("<i8", math.maxinteger))) == "integer",
    "unpack i8 gives an integer")
  eq(string.unpack("<i8", string.pack("<i8", math.mininteger)), math.mininteger,
    "pack/unpack mininteger")
  fails("overflow", "pack i1 out of range", string.pack, "i1", 200)
  fails("data string too short", "unpack past the end", string.unpack, "<i4", "\1\2")
end

-- string.dump is removed by the sandbox, also through the string metatable; trusted (where
-- `io` exists), it is there
if io == nil then
  eq(string.dump, nil, "string.dump is nil")
  eq(("").dump, nil, "(''):dump is nil")
else
  eq(type(string.dump), "function", "string.dump is a function (trusted)")
  eq(("").dump, string.dump, "(''):dump is string.dump (trusted)")
end

-- methods through the (hidden) string metatable
eq(("%d-%d"):format(1, 2), "1-2", "method call s:format")
eq(("abc"):upper(), "ABC", "method call s:upper")
local t = "abc"
eq(t:byte(-1), 99, "method call on a variable")

print("ok " .. checks.count())
