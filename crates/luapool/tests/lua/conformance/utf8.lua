-- Conformance: the utf8 library (Lua 5.3+; absent on LuaJIT).
local JIT = _VERSION == "Lua 5.1"
local V55 = _VERSION == "Lua 5.5"

local checks = require("lib.check")
local eq, fails, all = checks.eq, checks.fails, checks.all

if JIT then
  eq(utf8, nil, "no utf8 library on LuaJIT")
  -- the \u{} escape still works in string literals
  eq("\u{E9}", "\195\169", "\\u{} escape on LuaJIT")
  print("ok " .. checks.count())
  return
end

-- char
eq(utf8.char(72, 228, 8364, 128512), "H\xC3\xA4\xE2\x82\xAC\xF0\x9F\x98\x80", "utf8.char")
eq(#utf8.char(128512), 4, "a 4-byte character")
eq(utf8.char(), "", "utf8.char without arguments")
eq(utf8.char(0x7FFFFFFF), "\xFD\xBF\xBF\xBF\xBF\xBF", "utf8.char of the largest value (6 bytes)")
fails("value out of range", "utf8.char(-1)", utf8.char, -1)

-- charpattern
eq(utf8.charpattern, "[\0-\x7F\xC2-\xFD][\x80-\xBF]*", "utf8.charpattern")
local chars = {}
for ch in string.gmatch("a\u{E9}\u{20AC}", utf8.charpattern) do chars[#chars + 1] = ch end
eq(table.concat(chars, "|"), "a|\u{E9}|\u{20AC}", "gmatch with charpattern")

-- codepoint
eq(all(utf8.codepoint("h\u{E4}\u{E9}", 1, -1)), "104|228|233", "codepoint of a range")
eq(utf8.codepoint("\u{20AC}"), 8364, "codepoint of the first character")
eq(utf8.codepoint("\u{10FFFF}"), 0x10FFFF, "codepoint of U+10FFFF")
eq(select("#", utf8.codepoint("abc", 2, 1)), 0, "codepoint of an empty range")
fails("invalid UTF-8 code", "codepoint of an invalid byte", utf8.codepoint, "\xff")
fails("invalid UTF-8 code", "codepoint above U+10FFFF (strict)", utf8.codepoint, "\xF4\x90\x80\x80")
eq(utf8.codepoint("\xF4\x90\x80\x80", 1, 1, true), 0x110000, "codepoint above U+10FFFF (lax)")
fails("out of bounds", "codepoint past the end", utf8.codepoint, "abc", 4)

-- len
eq(utf8.len("h\u{E4}\u{E9}\u{20AC}"), 4, "utf8.len")
eq(utf8.len(""), 0, "utf8.len of the empty string")
eq(utf8.len("abc", 2), 2, "utf8.len from a position")
eq(utf8.len("h\u{E4}\u{E9}", -2), 1, "utf8.len from a negative position")
eq(all(utf8.len("a\xffb")), "nil|2", "utf8.len of invalid text returns nil and the position")
eq(all(utf8.len("\xed\xa0\x80")), "nil|1", "surrogates are invalid")
eq(all(utf8.len("\xFD\xBF\xBF\xBF\xBF\xBF")), "nil|1", "5-6 byte sequences are invalid in strict mode")
eq(utf8.len("\xFD\xBF\xBF\xBF\xBF\xBF", 1, -1, true), 1, "lax mode accepts them")
fails("initial position out of bounds", "utf8.len past the end", utf8.len, "abc", 5)

-- codes
local seen = {}
for p, c in utf8.codes("a\u{E9}\u{20AC}") do seen[#seen + 1] = p .. ":" .. c end
eq(table.concat(seen, " "), "1:97 2:233 4:8364", "utf8.codes positions and code points")
local count = 0
for _ in utf8.codes("") do count = count + 1 end
eq(count, 0, "utf8.codes of the empty string")
fails("invalid UTF-8 code", "utf8.codes of invalid text",
  function() for _ in utf8.codes("a\xffb") do end end)

-- offset
local s = "a\u{E9}\u{20AC}x" -- bytes: a(1) é(2-3) €(4-6) x(7)
eq(utf8.offset(s, 3), 4, "offset of the 3rd character")
eq(utf8.offset(s, -1), 7, "offset of the last character")
eq(utf8.offset(s, 0, 3), 2, "offset 0 finds the start of the character at a byte")
eq(utf8.offset(s, 5), 8, "offset one past the last character")
eq(utf8.offset(s, 6), nil, "offset past the end")
fails("initial position is a continuation byte", "offset from a continuation byte",
  utf8.offset, "a\u{E9}", 1, 3)
if V55 then
  -- Lua 5.5 also returns where the character ends
  eq(all(utf8.offset(s, 3)), "4|6", "5.5: offset returns the start and the end")
  eq(all(utf8.offset(s, -1)), "7|7", "5.5: offset of the last character")
else
  eq(select("#", utf8.offset(s, 3)), 1, "5.4: offset returns one value")
end

-- the library is sealed in the sandbox; trusted (where `io` exists), it is writable
if io == nil then
  fails("read-only", "assigning into utf8", function() utf8.len = nil end)
else
  local len = utf8.len
  utf8.len = nil
  eq(utf8.len, nil, "assigning into utf8 (trusted)")
  utf8.len = len
end

print("ok " .. checks.count())
