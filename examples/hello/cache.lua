-- A module: loaded once per worker VM, so its locals are per-worker state.
local M = {}
local hits = {}

function M.hit(key)
  hits[key] = (hits[key] or 0) + 1
  return hits[key]
end

return M
