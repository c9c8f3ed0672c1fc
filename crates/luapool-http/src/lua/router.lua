-- luapool.router: routes and middleware for `luapool serve` handlers (docs/handlers.md,
-- "Routing"). Loaded once per worker VM; `require("luapool.router")` returns this table.
--
-- An app builds its router on every request (the app's top level runs per request), so
-- building must be cheap. The module keeps, per VM, a tree of the route lists apps have
-- built: a node is the list of routes registered so far (methods and path patterns,
-- strings only), its children the lists one route longer (node[method][pattern]).
-- Registering a route that the tree already knows is three table reads and two writes
-- (about 570 instructions with the call, callgrind); the dispatch table of a list (static
-- paths in a hash, the patterns of each method in the order they are tried) is built the
-- first time a list dispatches and kept in its node. The tree never holds a handler or
-- any request data: the handlers are kept in the request's own router object, at the
-- route's slot.
-- A node is complete before it is attached, so an execution stopped by a limit leaves
-- the tree consistent. At most MAX_NODES nodes are kept; past that, lists are built for
-- each request without being kept.

-- The host passes the engine's own setmetatable (the sandbox's checks for __gc cost
-- about 2,000 instructions per new()): only Meta, which has no __gc, is given to it.
local _, raw_setmetatable = ...
local type, error, tostring, tonumber, pairs = type, error, tostring, tonumber, pairs
local setmetatable = type(raw_setmetatable) == "function" and raw_setmetatable or setmetatable
local find, match, gsub, sub, char, upper, format =
  string.find, string.match, string.gsub, string.sub, string.char, string.upper, string.format
local sort, concat, insert = table.sort, table.concat, table.insert

local MAX_NODES = 4096

-- the method of a route that answers any method (not a valid method token)
local ANY = ""
-- A router object is an array: the id of its node at [NODE], its middleware list (or
-- false) at [MW], the handler of route i at [i + FIRST - 1]. Array slots are the VM's
-- fastest accesses, and new() makes them (false, not nil: storing into a false slot is
-- the VM's fast path) in one table without a hash part.
local NODE, MW, FIRST = 1, 2, 3
-- The kept nodes, by id. A router object holds its node's id, never the node: the object
-- is the script's, and the tree is shared by every execution of the VM (a node a script
-- could reach, it could change for the next requests). An id a script writes there
-- picks another route list for its own router, as registering those routes would.
local nodes = {}
-- The node of a router whose list is not kept (past MAX_NODES; its id is 0), out of the
-- script's reach too. Weak keys: an entry goes with its router.
local node_of = setmetatable({}, { __mode = "k" })

local root = { n = 0, id = 1 }
nodes[1] = root

-- compiled path patterns, by pattern string
local compiled = {}
local compiled_count = 0

local function hex(h) return char(tonumber(h, 16)) end
local function decode(s)
  if find(s, "%", 1, true) then return (gsub(s, "%%(%x%x)", hex)) end
  return s
end

-- Compiles a path pattern: { static = path } or { lp = Lua pattern, names = {...},
-- n = #names, kind = 1 (parameters) or 2 (wildcard tail) }.
local function compile(pattern, level)
  local spec = compiled[pattern]
  if spec then return spec end
  if type(pattern) ~= "string" or sub(pattern, 1, 1) ~= "/" then
    error("a route's path must be a string starting with '/', got " ..
      (type(pattern) == "string" and format("%q", pattern) or type(pattern)), level)
  end
  if find(pattern, "%c") then
    error(format("route path %q has control characters", pattern), level)
  end
  if not find(pattern, "/[:*]") then
    spec = { static = pattern }
  else
    local parts, names, seen = { "^" }, {}, {}
    local kind, count = 1, 0
    local segments, pos = {}, 2
    while true do
      local slash = find(pattern, "/", pos, true)
      if not slash then segments[#segments + 1] = sub(pattern, pos); break end
      segments[#segments + 1] = sub(pattern, pos, slash - 1)
      pos = slash + 1
    end
    for i = 1, #segments do
      local seg = segments[i]
      local lead = sub(seg, 1, 1)
      if lead == ":" or lead == "*" then
        local name = sub(seg, 2)
        if not find(name, "^[%a_][%w_]*$") then
          error(format("route path %q: '%s' needs a name (letters, digits, '_')", pattern, seg), level)
        end
        if seen[name] then
          error(format("route path %q: the parameter '%s' appears twice", pattern, name), level)
        end
        seen[name] = true
        count = count + 1
        names[count] = name
        if lead == "*" then
          if i ~= #segments then
            error(format("route path %q: a wildcard '*%s' must be the last segment", pattern, name), level)
          end
          parts[#parts + 1] = "/(.*)"
          kind = 2
        else
          parts[#parts + 1] = "/([^/]+)"
        end
      else
        parts[#parts + 1] = "/" .. gsub(seg, "%p", "%%%0")
      end
    end
    parts[#parts + 1] = "$"
    spec = { lp = concat(parts), names = names, n = count, kind = kind }
  end
  if compiled_count < MAX_NODES then
    compiled_count = compiled_count + 1
    compiled[pattern] = spec
  end
  return spec
end

local function check_method(method, level)
  if type(method) ~= "string" or not find(method, "^[%w!#$%%&'*+%-.^_`|~]+$") then
    error("a route's method must be a method name such as \"GET\", got " ..
      (type(method) == "string" and format("%q", method) or type(method)), level)
  end
end

-- The node after `parent` for one more route; `level` is the app's (add's caller's)
-- level from here.
local function child_of(parent, method, pattern, level)
  if method ~= ANY then check_method(method, level + 1) end
  if type(parent) ~= "table" or type(parent.n) ~= "number" then
    error("call a router's methods with a colon: app:get(path, handler)", level)
  end
  local n = parent.n + 1
  local node = { parent = parent, n = n, slot = n + FIRST - 1, method = method,
                 pattern = pattern, spec = compile(pattern, level + 1) }
  if #nodes <= MAX_NODES then
    -- Executions interleave on a VM (a time slice may suspend one between any two
    -- instructions), so the shared state changes only in steps no interleaving can
    -- spoil: the node is appended to `nodes` by one C call (`insert`), its id found
    -- from there (other executions may have appended after it, never over it), and it
    -- is attached to the tree last, complete (an execution stopped by a limit before
    -- that leaves an unused entry in `nodes`, nothing half-made). Two executions adding
    -- the same route at once each get a node; the tree keeps one.
    insert(nodes, node)
    local id = #nodes
    while nodes[id] ~= node do id = id - 1 end
    node.id = id
    -- the children of a node: node[method][pattern] (methods are upper case or ANY,
    -- never one of a node's own field names)
    local by_pattern = parent[method]
    if not by_pattern then by_pattern = {}; parent[method] = by_pattern end
    by_pattern[pattern] = node
  end
  return node
end

local Router = {}
local Meta = { __index = Router, __metatable = false }

-- The method that adds a route for `method` (inlined in each method: this runs for every
-- route of every request). Errors name the app's line (level 2). A handler that is not
-- a function is refused here when it is nil, else when its route is dispatched.
local function adder(method)
  return function(self, pattern, handler)
    local node = nodes[self[NODE]] or node_of[self]
    -- `not x` tests in the VM; `x == nil` calls a comparison function
    if not node or not handler then
      if not node then
        error("call a router's methods with a colon: app:get(path, handler)", 2)
      end
      if handler == nil then error("a route's handler must be a function, got nil", 2) end
    end
    local by_pattern = node[method]
    local child = by_pattern and by_pattern[pattern] or child_of(node, method, pattern, 3)
    self[child.slot] = handler
    local id = child.id
    if id then
      self[NODE] = id
    else
      self[NODE] = 0
      node_of[self] = child
    end
    return self
  end
end

--- router.new(): a new router, empty.
local M = {}
function M.new()
  -- [NODE] (the root's id), [MW], then room for 16 handlers: no resizes for up to 16
  -- routes
  return setmetatable({ 1, false,
    false, false, false, false, false, false, false, false,
    false, false, false, false, false, false, false, false }, Meta)
end

Router.get = adder("GET")
Router.post = adder("POST")
Router.put = adder("PUT")
Router.delete = adder("DELETE")
Router.patch = adder("PATCH")
Router.head = adder("HEAD")
Router.options = adder("OPTIONS")
Router.any = adder(ANY)
local by_name = {}
function Router:route(method, pattern, handler)
  check_method(method, 3)
  method = upper(method)
  local add = by_name[method]
  if not add then
    add = adder(method)
    if #by_name < 64 then by_name[#by_name + 1] = method; by_name[method] = add end
  end
  return add(self, pattern, handler)
end

function Router:use(middleware)
  if type(middleware) ~= "function" then
    error("a middleware must be a function, got " .. type(middleware), 2)
  end
  local mw = self[MW]
  if not mw then mw = {}; self[MW] = mw end
  mw[#mw + 1] = middleware
  return self
end

-- The dispatch table of a node's route list.
local function build(node)
  local chain = {}
  local at = node
  while at.n > 0 do chain[at.n] = at; at = at.parent end
  local static, dynamic = {}, {}
  for i = 1, node.n do
    local nd = chain[i]
    local spec = nd.spec
    local r = { i = i, slot = nd.slot, method = nd.method, lp = spec.lp, names = spec.names,
                name1 = spec.names and spec.names[1], n = spec.n,
                kind = spec.kind, pattern = nd.pattern }
    if spec.static then
      local list = static[spec.static]
      if not list then list = {}; static[spec.static] = list end
      list[#list + 1] = r
    else
      dynamic[#dynamic + 1] = r
    end
  end
  -- parameters before wildcards, then in the order registered
  sort(dynamic, function(a, b)
    if a.kind ~= b.kind then return a.kind < b.kind end
    return a.i < b.i
  end)
  -- the dynamic routes each method tries, in order: its own and those of `any`
  local by_method, default = {}, {}
  for k = 1, #dynamic do
    local m = dynamic[k].method
    if m ~= ANY then by_method[m] = true end
  end
  for m in pairs(by_method) do by_method[m] = {} end
  for k = 1, #dynamic do
    local r = dynamic[k]
    if r.method == ANY then
      default[#default + 1] = r
      for _, list in pairs(by_method) do list[#list + 1] = r end
    else
      local list = by_method[r.method]
      list[#list + 1] = r
    end
  end
  local t = { static = static, by_method = by_method, default = default, all = dynamic }
  node.t = t
  return t
end

-- The route for `method` on `path` and its parameters, or nil.
local function lookup(t, path, method)
  local list = t.static[path]
  if list then
    for k = 1, #list do
      local r = list[k]
      local m = r.method
      if m == method or m == ANY then return r, {} end
    end
  end
  local candidates = t.by_method[method] or t.default
  for k = 1, #candidates do
    local r = candidates[k]
    if r.n == 1 then
      local c = match(path, r.lp)
      if c then return r, { [r.names[1]] = decode(c) } end
    else
      local caps = { match(path, r.lp) }
      if caps[1] then
        local params, names = {}, r.names
        for j = 1, r.n do params[names[j]] = decode(caps[j]) end
        return r, params
      end
    end
  end
  return nil
end

-- 405 with the methods of the routes whose path matches, or 404.
local function miss(t, path)
  local allow, seen = {}, {}
  local function note(m)
    if not seen[m] then seen[m] = true; allow[#allow + 1] = m end
  end
  for _, r in pairs(t.static[path] or {}) do note(r.method) end
  for _, r in pairs(t.all) do
    if match(path, r.lp) then note(r.method) end
  end
  if #allow == 0 then
    return { status = 404, headers = {}, body = "not found" }
  end
  if seen.GET and not seen.HEAD then note("HEAD") end
  sort(allow)
  return { status = 405, headers = { allow = concat(allow, ", ") }, body = "method not allowed" }
end

local function route(self, req)
  local node = nodes[self[NODE]] or node_of[self]
  local t = node.t or build(node)
  -- Match the path as sent: `req.path` is decoded, and a decoded `%2F` would split a
  -- parameter in two. Parameters are decoded once matched.
  local path, method = req.raw_path or req.path, req.method
  local r, params = lookup(t, path, method)
  if not r and method == "HEAD" then r, params = lookup(t, path, "GET") end
  if r then
    local h = self[r.slot]
    if type(h) ~= "function" then
      error(format("the handler of route %s %s is a %s, not a function",
        r.method == ANY and "*" or r.method, r.pattern, type(h)), 2)
    end
    return h(req, params)
  end
  return miss(t, path)
end

-- A reply as a table { status, headers, body }, for middleware.
local function as_table(a, b)
  local kind = type(a)
  if kind == "table" then
    if a.headers == nil then a.headers = {} end
    return a
  elseif kind == "string" and b == nil then
    return { status = 200, headers = {}, body = a }
  elseif kind == "number" then
    return { status = a, headers = {}, body = b }
  elseif a == nil and stream and stream.started() then
    -- A streaming route: its response is on its way; middleware sees an empty reply
    -- (the server ignores what a streaming handler returns).
    return { status = 200, headers = {}, body = "" }
  end
  return a, b
end

local function run(self, mw, req, k)
  local f = mw[k]
  if f == nil then return as_table(route(self, req)) end
  return f(req, function() return run(self, mw, req, k + 1) end)
end

function Router:dispatch(req)
  if not req and req == nil then error("dispatch needs the request table, got nil", 2) end
  local mw = self[MW]
  if mw then return run(self, mw, req, 1) end
  -- The common cases inlined (a route without parameters, or with one, for the
  -- request's method): `route` and `lookup` do the same, and everything else.
  local node = nodes[self[NODE]] or node_of[self]
  local t = node.t or build(node)
  -- `encoded`: the path may have percent-encoded bytes (not when it is its own decoding)
  local path, raw, method = req.path, req.raw_path, req.method
  local encoded = true
  if raw then encoded = raw ~= path; path = raw end
  local list = t.static[path]
  if list then
    for k = 1, #list do
      local r = list[k]
      local m = r.method
      if m == method or m == ANY then
        local h = self[r.slot]
        if type(h) == "function" then return h(req, {}) end
        return route(self, req)
      end
    end
  end
  local candidates = t.by_method[method] or t.default
  for k = 1, #candidates do
    local r = candidates[k]
    if r.n ~= 1 then break end
    local c = match(path, r.lp)
    if c then
      local h = self[r.slot]
      if type(h) ~= "function" then break end
      if encoded and find(c, "%", 1, true) then c = gsub(c, "%%(%x%x)", hex) end
      return h(req, { [r.name1] = c })
    end
  end
  return route(self, req)
end

function Router:handler()
  return function(req) return self:dispatch(req) end
end

M.decode = decode
return M
