-- bench/redis.sh, luapool side: a fixed-window rate limiter, INCR + EXPIRE per request
-- (one pipeline: one round trip), the key per client (header x-client).
local LIMIT = 1000000000

function handle(req)
  if req.path == "/plain" then
    return "allowed" -- the same reply without Redis: the HTTP + Lua baseline
  end
  local key = "rl:" .. (req.headers["x-client"] or "anon")
  local r, err = redis.pipeline({ { "INCR", key }, { "EXPIRE", key, 60 } })
  if not r then
    return { status = 503, body = err }
  end
  if r[1] > LIMIT then
    return { status = 429, body = "limited" }
  end
  return "allowed"
end
