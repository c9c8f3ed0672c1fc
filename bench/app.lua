-- luapool handler app for bench/http.sh: the same endpoints as the OpenResty
-- comparison config (shared/anchors/openresty/nginx.conf).
-- Run: target/release/luapool serve --listen 127.0.0.1:18081 --workers 1 bench/app.lua

-- /users/ID: the ten routes of bench/router.lua with luapool.router, built on each
-- request that takes this branch (luapool serve only: pool-front has no router).
local function routed(req)
    local app = require("luapool.router").new()
    app:get("/", function(req) return "Hello, World!" end)
    app:get("/health", function(req) return "ok" end)
    app:get("/users", function(req) return "users" end)
    app:post("/users", function(req) return 201, "created" end)
    app:get("/users/:id", function(req, params) return "user " .. params.id end)
    app:put("/users/:id", function(req, params) return "updated " .. params.id end)
    app:delete("/users/:id", function(req, params) return 204 end)
    app:get("/users/:id/posts/:post", function(req, params) return params.post end)
    app:get("/posts/:id", function(req, params) return "post " .. params.id end)
    app:get("/static/*path", function(req, params) return params.path end)
    return app:dispatch(req)
end

function handle(req)
    local path = req.path
    if path == "/" then
        return "Hello, World!"
    elseif path == "/echo" then
        if req.method ~= "POST" then
            return 405, "method not allowed"
        end
        return {
            status = 200,
            headers = { ["content-type"] = "application/octet-stream" },
            body = req.body or "",
        }
    elseif path == "/sleep" then
        sleep(1)
        return "slept"
    elseif path == "/json" then
        local t = {
            id = 12345, name = "widget", price = 19.99, in_stock = true,
            tags = { "a", "b", "c" }, owner = "alice", count = 42,
            ratio = 0.75, description = "a small json object",
            created = "2024-01-01T00:00:00Z",
        }
        return {
            status = 200,
            headers = { ["content-type"] = "application/json" },
            body = json.encode(t),
        }
    elseif path == "/json10k" then
        -- About 10 KiB of JSON, varied like real data (bench/callgrind-http.sh measures
        -- response compression on it: with and without Accept-Encoding).
        local items = {}
        for i = 1, 80 do
            items[i] = { id = i * 7919 % 10007, name = "widget " .. i, price = 19.99 + i,
                         in_stock = i % 3 == 0, tags = { "a", "b", "c" },
                         description = "a small json object number " .. i * i }
        end
        return {
            status = 200,
            headers = { ["content-type"] = "application/json" },
            body = json.encode({ items = items }),
        }
    elseif path == "/compute" then
        local s = 0
        for i = 1, 100000 do s = s + i % 7 end
        return tostring(s)
    elseif string.sub(path, 1, 7) == "/users/" then
        return routed(req)
    end
    return 404, "not found"
end
