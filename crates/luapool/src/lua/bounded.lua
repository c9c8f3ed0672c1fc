-- bounded.lua: library functions rewritten so that no long C loop escapes an execution's
-- limits: `setmetatable` refusing `__gc`, `string.rep`, `table.insert`, `table.remove`,
-- `table.move`, `table.concat`, `table.sort` processing tables with a metatable in chunks,
-- and LuaJIT's `tostring` as a Lua function. See `sandbox/bounded.rs`, which loads it.
--
-- ...: CHUNK (elements processed by one call of an engine table function), type, error,
--   select, rawget, getmetatable, tonumber, pcall, string.find
-- Returns: a table of makers, each taking the engine's function(s) and returning the
--   bounded one(s): setmetatable(setmetatable), tostring(tostring), rep(rep),
--   table(insert, remove, move, concat, sort) (returning the five in that order).
local CHUNK, type, error, select, rawget, getmetatable, tonumber, pcall, find = ...
local makers = {}
-- `return pass(f(...))` calls f in a non-tail call (so its errors name it) and returns
-- all its results, however many
local function pass(...) return ... end
local MAXINT = 0x7fffffffffffffff

-- The wrappers call the engine's functions through trampolines (call_*) under pcall: a
-- trampoline calls its function from a Lua frame under the function's own name, so that
-- the function's errors name it ("bad argument #1 to 'insert'") and carry the
-- trampoline's position ("luapool:12:"), which `rethrow` replaces with the caller's, as
-- the engine's function called directly would. Other errors (a comparator's, a
-- metamethod's) pass unchanged.
local function rethrow(ok, ...)
  if ok then return ... end
  local e = ...
  if type(e) == "string" then
    local _, stop = find(e, "^luapool:%d+: ")
    if stop then error(e:sub(stop + 1), 2) end
  end
  error(e, 0)
end

-- Numeric arguments as the engine's functions read them (strings are converted).
local function num(v)
  if type(v) == "string" then return tonumber(v) or v end
  return v
end

local function integer(v)
  return type(v) == "number" and v % 1 == 0 and v >= -MAXINT and v <= MAXINT
end

-- plain(t, mt): the C fast path (sandbox/bounded.rs, set_plain_metatable): true once it
-- set mt on a table without a metatable (mt nil or a table without __gc), else false
function makers.setmetatable(setmetatable, plain)
  local function call_setmetatable(t, mt) return pass(setmetatable(t, mt)) end
  return function(t, mt)
    -- the common case (a table without a metatable, `mt` nil or without `__gc`) in C
    if plain(t, mt) then return t end
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
      error("bad argument #2 to 'setmetatable' (__gc metamethods are not allowed in the sandbox)", 2)
    end
    return rethrow(pcall(call_setmetatable, t, mt))
  end
end

function makers.tostring(tostring)
  return function(...) return tostring(...) end
end

function makers.rep(rep)
  local function call_rep(...) return pass(rep(...)) end
  return function(s, n, sep)
    -- Lua loops n times even when every piece is empty
    n = num(n)
    if s == "" and (sep == nil or sep == "") and integer(n) and n > CHUNK then
      return ""
    end
    return rethrow(pcall(call_rep, s, n, sep))
  end
end

-- Moves n elements the way table.move does, a chunk at a time.
local function chunked_move(move, a1, f, n, t, a2, backward)
  if backward then
    local i = n
    while i > 0 do
      local m = i < CHUNK and i or CHUNK
      i = i - m
      move(a1, f + i, f + i + m - 1, t + i, a2)
    end
  else
    local i = 0
    while i < n do
      local m = n - i < CHUNK and n - i or CHUNK
      move(a1, f + i, f + i + m - 1, t + i, a2)
      i = i + m
    end
  end
end

-- The length of t as the table functions see it (luaL_len).
local function length(t)
  local n = #t
  if not integer(n) then error("object length is not an integer", 3) end
  return n
end

function makers.table(insert, remove, move, concat, sort)
  local function call_insert(...) return pass(insert(...)) end
  local function call_remove(...) return pass(remove(...)) end
  local function call_move(...) return pass(move(...)) end
  local function call_concat(...) return pass(concat(...)) end
  local function call_sort(...) return pass(sort(...)) end
  local function bounded_move(a1, f, e, t, a2)
    f, e, t = num(f), num(e), num(t)
    if not (integer(f) and integer(e) and integer(t)) or e - f < CHUNK then
      return rethrow(pcall(call_move, a1, f, e, t, a2))
    end
    -- moves nothing: the engine's checks of the tables
    local ok, err = pcall(call_move, a1, 1, 0, 1, a2)
    if not ok then return rethrow(ok, err) end
    if not (f > 0 or e < MAXINT + f) then
      error("bad argument #3 to 'move' (too many elements to move)", 2)
    end
    local n = e - f + 1
    if t > MAXINT - n + 1 then
      error("bad argument #4 to 'move' (destination wrap around)", 2)
    end
    local same = a2 == nil or a2 == a1
    chunked_move(move, a1, f, n, t, a2, same and t <= e and t > f)
    if a2 == nil then return a1 end
    return a2
  end

  local function bounded_insert(...)
    local t, pos, v = ...
    local n = select("#", ...)
    if type(t) == "table" and getmetatable(t) == nil then
      -- a plain table: appending, or inserting within its length, cannot fail (no pcall)
      if n == 2 then return insert(t, pos) end
      if n == 3 and integer(pos) and pos >= 1 and pos <= #t + 1 then return insert(t, pos, v) end
    end
    if n ~= 3 or type(t) ~= "table" or getmetatable(t) == nil then
      return rethrow(pcall(call_insert, ...))
    end
    local e = length(t) + 1
    pos = num(pos)
    if not integer(pos) then return rethrow(pcall(call_insert, t, pos, v)) end -- Lua's argument error
    if pos < 1 or pos > e then
      error("bad argument #2 to 'insert' (position out of bounds)", 2)
    end
    if e > pos then chunked_move(move, t, pos, e - pos, pos + 1, nil, true) end
    t[pos] = v
  end

  local function bounded_remove(t, ...)
    if type(t) == "table" and getmetatable(t) == nil and select("#", ...) == 0 then
      -- removing the last element of a plain table cannot fail (no pcall)
      return remove(t)
    end
    if type(t) ~= "table" or getmetatable(t) == nil then return rethrow(pcall(call_remove, t, ...)) end
    local size = length(t)
    local pos = num((...))
    if pos == nil then pos = size end
    if not integer(pos) then return rethrow(pcall(call_remove, t, ...)) end -- Lua's argument error
    if pos ~= size and (pos < 1 or pos > size + 1) then
      error("bad argument #2 to 'remove' (position out of bounds)", 2)
    end
    local removed = t[pos]
    if pos < size then
      chunked_move(move, t, pos + 1, size - pos, pos, nil, false)
      pos = size
    end
    t[pos] = nil
    return removed
  end

  local function bounded_concat(t, sep, i, j)
    if type(t) ~= "table" or getmetatable(t) == nil then
      return rethrow(pcall(call_concat, t, sep, i, j))
    end
    if j == nil then j = length(t) end
    if i == nil then i = 1 end
    i, j = num(i), num(j)
    if not (integer(i) and integer(j)) or j - i < CHUNK then
      return rethrow(pcall(call_concat, t, sep, i, j))
    end
    local pieces, n = {}, 0
    while i <= j do
      local last = j - i < CHUNK and j or i + CHUNK - 1
      n = n + 1
      pieces[n] = concat(t, sep, i, last)
      i = last + 1
    end
    return concat(pieces, sep)
  end

  local function bounded_sort(t, comp)
    if type(t) ~= "table" or getmetatable(t) == nil then return rethrow(pcall(call_sort, t, comp)) end
    local n = length(t)
    if n < CHUNK then return rethrow(pcall(call_sort, t, comp)) end
    local copy = {}
    for i = 1, n do copy[i] = t[i] end
    local ok, err = pcall(call_sort, copy, comp)
    if not ok then return rethrow(ok, err) end
    for i = 1, n do t[i] = copy[i] end
  end

  return bounded_insert, bounded_remove, bounded_move, bounded_concat, bounded_sort
end

return makers
