-- luapool.response: helpers that build replies and header values for `luapool serve`
-- handlers (docs/handlers.md, "Responses"). `require("luapool.response")` returns this
-- table. Holds no state.

local type, error, pairs, tostring, floor = type, error, pairs, tostring, math.floor
local find, format, lower = string.find, string.format, string.lower
local date = os.date

local M = {}

local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

--- redirect(url, status?): a reply that redirects to `url` (302 unless `status` is one of
--- 301, 302, 303, 307, 308).
function M.redirect(url, status)
  if type(url) ~= "string" or url == "" or find(url, "%c") then
    error("redirect: the url must be a non-empty string without control characters", 2)
  end
  if status == nil then
    status = 302
  elseif not REDIRECT[status] then
    error("redirect: the status must be 301, 302, 303, 307 or 308, got " .. tostring(status), 2)
  end
  return { status = status, headers = { location = url }, body = "" }
end

local SAME_SITE = { strict = "Strict", lax = "Lax", none = "None" }

-- an RFC 9110 token (a cookie name)
local function is_token(s)
  return s ~= "" and not find(s, "[^%w!#$%%&'*+%-%.^_`|~]")
end

-- RFC 6265 cookie-octets: visible ASCII but space, '"', ',', ';' and '\'
local function is_cookie_value(s)
  return not find(s, "[^!#-+%-%./0-9:<-Z%[%]%^_`a-z{|}~]")
end

local function attribute(opts, key)
  local v = opts[key]
  if v == nil then return nil end
  if type(v) ~= "string" or find(v, "[%c;]") then
    error(format("cookie: %s must be a string without ';' or control characters", key), 3)
  end
  return v
end

local KNOWN = { path = true, domain = true, max_age = true, expires = true,
                http_only = true, secure = true, same_site = true }

--- cookie(name, value, opts?): a `Set-Cookie` header value. opts: path, domain,
--- max_age (seconds), expires (a time in seconds since the epoch, or an HTTP date
--- string), http_only, secure, same_site ("Strict", "Lax" or "None").
function M.cookie(name, value, opts)
  if type(name) ~= "string" or not is_token(name) then
    error("cookie: the name must be a token (letters, digits, !#$%&'*+-.^_`|~)", 2)
  end
  if type(value) == "number" then value = tostring(value) end
  if type(value) ~= "string" or not is_cookie_value(value) then
    error("cookie: the value may not hold spaces, '\"', ',', ';', '\\' or control characters (encode it first)", 2)
  end
  local out = { name .. "=" .. value }
  if opts == nil then return out[1] end
  if type(opts) ~= "table" then
    error("cookie: the options must be a table, got " .. type(opts), 2)
  end
  for k in pairs(opts) do
    if not KNOWN[k] then
      error("cookie: unknown option '" .. tostring(k) ..
        "' (path, domain, max_age, expires, http_only, secure, same_site)", 2)
    end
  end
  local path = attribute(opts, "path")
  if path then out[#out + 1] = "Path=" .. path end
  local domain = attribute(opts, "domain")
  if domain then out[#out + 1] = "Domain=" .. domain end
  local max_age = opts.max_age
  if max_age ~= nil then
    if type(max_age) ~= "number" or max_age ~= floor(max_age) then
      error("cookie: max_age must be a whole number of seconds", 2)
    end
    out[#out + 1] = format("Max-Age=%d", max_age)
  end
  local expires = opts.expires
  if type(expires) == "number" then
    out[#out + 1] = "Expires=" .. date("!%a, %d %b %Y %H:%M:%S GMT", floor(expires))
  elseif expires ~= nil then
    out[#out + 1] = "Expires=" .. attribute(opts, "expires")
  end
  if opts.http_only then out[#out + 1] = "HttpOnly" end
  if opts.secure then out[#out + 1] = "Secure" end
  local same_site = opts.same_site
  if same_site ~= nil then
    local canonical = type(same_site) == "string" and SAME_SITE[lower(same_site)]
    if not canonical then
      error("cookie: same_site must be \"Strict\", \"Lax\" or \"None\"", 2)
    end
    out[#out + 1] = "SameSite=" .. canonical
  end
  return table.concat(out, "; ")
end

return M
