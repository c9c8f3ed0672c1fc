-- The notes app that docs/handlers.md builds step by step: a JSON API with routes, a
-- login form and a session cookie, notes in a shared dictionary, a timer, a CSV export
-- streamed as it is written, and static files (luapool.toml's [static]).
local router = require("luapool.router")
local response = require("luapool.response")
local json = require("json")

-- Step 6: background work, once per worker (and again after a reload).
function init_worker()
  timer.every(60, function()
    shared.stats:set("alive_at", time.now())
  end)
end

local app = router.new()

-- Step 7: middleware around every request (errors included).
app:use(function(req, next)
  shared.stats:incr("requests", 1, 0)
  local res = next()
  res.headers["x-request-id"] = req.id
  return res
end)

-- Step 1: a plain reply.
app:get("/", function(req)
  return "Hello from the notes app"
end)

-- Step 3: a login form and a session cookie.
app:post("/login", function(req)
  local form, err = req:form()
  if not form then return 400, err end
  if form.user == nil or form.user == "" then return 400, "user is required" end
  local sid = codec.hex_encode(crypto.random_bytes(16))
  shared.notes:set("session:" .. sid, form.user, 3600)   -- expires in an hour
  return { status = 303, headers = {
    location = "/notes",
    ["set-cookie"] = response.cookie("sid", sid, { path = "/", http_only = true,
                                                   same_site = "Lax", max_age = 3600 }),
  } }
end)

local function user_of(req)
  local sid = req.cookies.sid
  return sid and shared.notes:get("session:" .. sid)
end

local function reply_json(status, value)
  return { status = status, headers = { ["content-type"] = "application/json" },
           body = json.encode(value) }
end

-- Step 2 and 4: a JSON API over a shared dictionary.
app:post("/notes", function(req)
  local user = user_of(req)
  if not user then return 401, "log in first" end
  local note, err = req:json()
  if type(note) ~= "table" or type(note.text) ~= "string" then
    return reply_json(400, { error = err or "a note is { \"text\": \"...\" }" })
  end
  local id = shared.notes:incr("next_id", 1, 0)
  shared.notes:set("note:" .. id, json.encode({ id = id, user = user, text = note.text }))
  return reply_json(201, { id = id })
end)

app:get("/notes/:id", function(req, params)
  local note = shared.notes:get("note:" .. params.id)
  if not note then return 404, "no such note" end
  return { headers = { ["content-type"] = "application/json" }, body = note }
end)

-- Step 5: stream a CSV export as it is written.
app:get("/export.csv", function(req)
  stream.start(200, { ["content-type"] = "text/csv" })
  stream.write("id,user,text\n")
  for id = 1, shared.notes:get("next_id") or 0 do
    local note = shared.notes:get("note:" .. id)
    if note then
      local n = json.decode(note)
      local ok = stream.write(string.format("%d,%s,%q\n", n.id, n.user, n.text))
      if not ok then return end   -- the client went away
    end
  end
end)

-- Step 8: errors.
app:get("/boom", function(req)
  error("something broke")   -- 500; the log names app.lua and the line
end)

app:get("/stats", function(req)
  return reply_json(200, { requests = shared.stats:get("requests"), timers = timer.pending() })
end)

handle = app:handler()
