-- luapool serve examples/hello/app.lua
-- A small app: routes, JSON, a per-worker module cache, and an async sleep.
local json = require("json")
local cache = require("cache") -- examples/hello/cache.lua: loaded once per worker

local routes = {}

routes["/"] = function(req)
  return "Hello, World!"
end

routes["/json"] = function(req)
  return {
    status = 200,
    headers = { ["content-type"] = "application/json" },
    body = json.encode({ path = req.path, query = req.query, id = req.id }),
  }
end

routes["/echo"] = function(req)
  if req.method ~= "POST" then
    return 405, "POST only\n"
  end
  return { headers = { ["content-type"] = "application/octet-stream" }, body = req.body }
end

routes["/sleep"] = function(req)
  sleep(tonumber(req.query.s) or 0.1) -- the worker serves other requests meanwhile
  return "slept\n"
end

routes["/hits"] = function(req)
  -- Per-worker state lives in modules; globals are fresh for every request.
  -- `last_path` was set by the previous request on this worker, but a global written
  -- by one request is never seen by another: this is always nil.
  return json.encode({ worker_hits = cache.hit(req.path), last_path = last_path or json.null })
end

function handle(req)
  local route = routes[req.path]
  if not route then
    return 404, "not found: " .. req.path .. "\n"
  end
  local reply, body = route(req)
  last_path = req.path -- a global: visible to the rest of this request only
  return reply, body
end
