-- A module for examples/hello.lua: its locals are per-VM state.
local greetings = 0

local M = {}

function M.hello(name)
  greetings = greetings + 1
  return string.format("hello, %s! (greeting #%d)", name, greetings)
end

return M
