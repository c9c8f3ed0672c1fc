-- luapool handler app with luapool.router: ten routes, built at the top level (so on
-- every request), as docs/handlers.md recommends. bench/callgrind-http.sh compares
-- `/users/42` here with `/` of bench/app.lua (the plain handler):
--   APP=bench/router.lua bench/callgrind-http.sh /users/42
-- bench/http.sh serves it on /users/42 beside OpenResty's `location ~ ^/users/(\d+)$`.
local router = require("luapool.router")
local app = router.new()

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

function handle(req)
    return app:dispatch(req)
end
