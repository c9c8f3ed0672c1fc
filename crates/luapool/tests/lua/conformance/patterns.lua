-- Conformance: Lua patterns (find, match, gmatch, gsub).
local JIT = _VERSION == "Lua 5.1"

local checks = require("lib.check")
local eq, fails, all = checks.eq, checks.fails, checks.all
-- All results of a call, joined with "|" (nil shown as "nil").

-- find returns start, end, captures
eq(all(string.find("hello world", "(o)(r)")), "8|9|o|r", "find with captures")
eq(all(string.find("hello", "l+")), "3|4", "find with quantifier")
eq(all(string.find("a.c", "%.")), "2|2", "find escaped dot")
eq(all(string.find("a.c", ".", 1, true)), "2|2", "find plain=true")
eq(all(string.find("a(b", "(", 1, true)), "2|2", "find plain=true with a magic character")
eq(all(string.find("x^y", "^", 1, true)), "2|2", "find plain=true with ^")
eq(string.find("abc", "^b"), nil, "find anchored at start fails")
eq(all(string.find("abc", "^b", 2)), "2|2", "find ^ anchors at init")

-- match: captures, position captures, anchors
eq(all(string.match("2024-01-15", "(%d+)-(%d+)-(%d+)")), "2024|01|15", "match three captures")
eq(all(string.match("hello", "()ll()")), "3|5", "position captures")
eq(math.type and math.type(string.match("hello", "()")) or type(string.match("hello", "()")),
  JIT and "number" or "integer", "position capture is an integer")
eq(string.match("hello", "ell"), "ell", "match without captures returns the whole match")
eq(string.match("abc", "^b"), nil, "^ anchor")
eq(string.match("abc", "c$"), "c", "$ anchor")
eq(string.match("a$c", "a$c"), "a$c", "$ in the middle is literal")
eq(string.match("  trim  ", "^%s*(.-)%s*$"), "trim", "trim idiom")
eq(string.match("hello hello", "(h%a+) %1"), "hello", "back reference %1")
eq(string.match("key = val", "(%w+)%s*=%s*(%w+)"), "key", "match with %s*")
eq(string.match("[test]", "%[(.*)%]"), "test", "escaped brackets")
eq(string.match("x = 10", "[%w_]+%s*=%s*(%d+)"), "10", "class in a set")
eq(string.match("hello", "[^aeiou]+"), "h", "negated set")
eq(string.match("0x1F", "0[xX](%x+)"), "1F", "%x hex digits")
eq(string.match("a-b", "[a%-]+"), "a-", "escaped - in a set")
eq(string.match("abc123", "%a+"), "abc", "%a")
eq(string.match("abc123", "%d+"), "123", "%d")
eq(string.match("ab,cd", "%p"), ",", "%p")
eq(string.match("aB", "%u"), "B", "%u")
eq(string.match("Ab", "%l"), "b", "%l")
eq(string.match("a\tb", "%c"), "\t", "%c")
eq(string.match("abc", "%W"), nil, "%W on letters")
eq(string.match("a b", "%S+$"), "b", "%S")
eq(string.match("a\0b", "a%zb") or string.match("a\0b", "a\0b"), "a\0b", "NUL in a pattern")
eq(string.match("xyz", "[x-y]+"), "xy", "range in a set")
eq(string.match("abc", ".", -1), "c", "match with negative init")

-- quantifiers
eq(string.match("aaa", "a-"), "", "lazy - matches empty")
eq(string.match("aaa", "a-$"), "aaa", "lazy - anchored")
eq(string.match("aaab", "a*"), "aaa", "greedy *")
eq(string.match("b", "a?b"), "b", "optional ?")
eq(string.match("<a><b>", "<(.-)>"), "a", "lazy capture")
eq(string.match("<a><b>", "<(.*)>"), "a><b", "greedy capture")

-- %b and %f
eq(string.match("f(a(b)c)d", "%b()"), "(a(b)c)", "%b() balanced")
eq(string.match("x[1[2]]y", "%b[]"), "[1[2]]", "%b[] balanced")
eq(string.match("((", "%b()"), nil, "%b() unbalanced")
eq(all(string.gsub("THE (quick) fox", "%f[%a]%a+", "W")), "W (W) W|3", "%f frontier words")
eq(all(string.find("THE (quick) fox", "%f[%l]%a+")), "6|10", "%f frontier lower case")
eq(all(string.gsub("hello", "%f[%w]", "^")), "^hello|1", "%f at the start")
eq(all(string.gsub("hello", "%f[%W]", "$")), "hello$|1", "%f at the end")

-- gmatch
local words = {}
for w in string.gmatch("one two  three", "%a+") do words[#words + 1] = w end
eq(table.concat(words, ","), "one,two,three", "gmatch words")
local pairs_seen = {}
for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do pairs_seen[#pairs_seen + 1] = k .. v end
eq(table.concat(pairs_seen, ";"), "a1;b2", "gmatch with two captures")
local positions = {}
for p in string.gmatch("abc", "()") do positions[#positions + 1] = p end
eq(table.concat(positions, ","), "1,2,3,4", "gmatch empty position captures")
local count = 0
for _ in string.gmatch("", "x") do count = count + 1 end
eq(count, 0, "gmatch without match")
eq(type(string.gmatch("abc", ".")), "function", "gmatch returns an iterator")

-- gsub: string replacement
eq(all(string.gsub("hello world", "o", "0")), "hell0 w0rld|2", "gsub string")
eq(all(string.gsub("hello world", "(%w+)", "<%1>")), "<hello> <world>|2", "gsub %1")
eq(all(string.gsub("hello world", "%w+", "%0 %0", 1)), "hello hello world|1", "gsub %0 with limit")
eq(all(string.gsub("abc", "b", "%%")), "a%c|1", "gsub %% in replacement")
eq(all(string.gsub("abc", "", "-")), "-a-b-c-|4", "gsub empty pattern")
eq(all(string.gsub("abc", "x", "y")), "abc|0", "gsub without match")
eq(all(string.gsub("hello", "(l)(l)", "%2%1")), "hello|1", "gsub swapped captures")
eq(all(string.gsub("abc", "%w", "%0%0", 0)), "abc|0", "gsub with limit 0")
-- gsub: table replacement
eq(all(string.gsub("$name is $age", "%$(%w+)", { name = "Bob", age = 42 })), "Bob is 42|2",
  "gsub table")
eq(all(string.gsub("$name is $x", "%$(%w+)", { name = "Bob" })), "Bob is $x|2",
  "gsub table keeps unknown keys")
eq(all(string.gsub("a b", "%w", { a = false })), "a b|2", "gsub table false keeps the match")
-- gsub: function replacement
eq(all(string.gsub("abc", "%w", function(ch)
  if ch == "b" then return false end
  return ch:upper()
end)), "AbC|3", "gsub function (false keeps the match)")
eq(all(string.gsub("hello", "l+", function() end)), "hello|1", "gsub function returning nothing")
eq(all(string.gsub("x=1,y=2", "(%w)=(%w)", function(k, v) return v .. k end)), "1x,2y|2",
  "gsub function with two captures")
eq(all(string.gsub("abc", "()", function(p) return p end)), "1a2b3c4|4",
  "gsub function with position capture")
eq(all(string.gsub("3 4", "%d", function(d) return d * 2 end)), "6 8|2",
  "gsub function returning a number")

-- errors
fails("malformed pattern", "pattern ending with %", string.gsub, "abc", "%", "x")
fails("invalid capture index", "replacement %2 without capture", string.gsub, "abc", "a", "%2")
fails("invalid replacement value (a table)", "gsub table value is a table",
  string.gsub, "abc", "a", { a = {} })
fails("malformed pattern (missing ']')", "unclosed set", string.find, "abc", "[a")
fails(JIT and "unbalanced pattern" or "missing arguments to '%b'", "%b without arguments", string.find, "abc", "%b")
if JIT then
  eq(all(string.gsub("abc", "b", "%x")), "axc|1", "gsub %x is a literal x on LuaJIT")
else
  fails("invalid use of '%' in replacement string", "gsub %x in replacement",
    string.gsub, "abc", "b", "%x")
end

print("ok " .. checks.count())
