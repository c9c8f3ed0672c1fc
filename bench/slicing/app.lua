-- luapool app for bench/slicing.sh: a light endpoint and a CPU-heavy one.
function handle(req)
  if req.path == "/heavy" then
    local n = tonumber(req.query.n) or 10000000
    local s = 0
    for i = 1, n do s = s + i % 7 end
    return tostring(s)
  end
  return "Hello, World!"
end
