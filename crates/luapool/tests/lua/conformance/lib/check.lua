-- Helpers shared by the conformance scripts: counted checks whose failures name what
-- broke, at the line of the script that called them (error level 2).
-- Usage: local checks = require("lib.check"); ...; print("ok " .. checks.count())
local M = {}
local n = 0

--- The number of checks made so far.
function M.count() return n end

--- Counts `k` checks made by hand (default 1).
function M.add(k) n = n + (k or 1) end

--- A value for a failure message: strings quoted, others with their (sub)type.
function M.show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v) .. " (" .. (math.type and math.type(v) or type(v)) .. ")"
end

function M.check(cond, what)
  n = n + 1
  if not cond then error("check failed: " .. what, 2) end
end

function M.eq(got, want, what)
  n = n + 1
  if got ~= want then
    error(what .. ": expected " .. M.show(want) .. ", got " .. M.show(got), 2)
  end
end

--- Checks that `f(...)` raises an error containing `needle`.
function M.fails(needle, what, f, ...)
  n = n + 1
  local ok, err = pcall(f, ...)
  if ok then error(what .. ": expected an error, got none", 2) end
  if not string.find(tostring(err), needle, 1, true) then
    error(what .. ": error " .. M.show(err) .. " does not contain " .. M.show(needle), 2)
  end
end

--- All of `...` as one string, `tostring` of each joined by "|".
function M.all(...)
  local out = {}
  for k = 1, select("#", ...) do out[k] = tostring((select(k, ...))) end
  return table.concat(out, "|")
end

return M
