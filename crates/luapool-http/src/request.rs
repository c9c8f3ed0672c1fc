//! The `req` table a handler receives, built straight from hyper's request.
//!
//! The table is built by a small Lua function compiled once per VM: the Rust side pushes
//! the request's strings onto the Lua stack in one call and Lua's own table
//! constructors do the rest, which costs a fraction of building it field by field
//! through the C API. Requests with header values that are not UTF-8 (rare; they would
//! need a copy to be pushed that way) take the field-by-field path.

use std::borrow::Cow;
use std::rc::Rc;

use bytes::Bytes;
use luapool::mlua::{self, Function, IntoLua, Lua, Table, Variadic};

/// One request as the handler sees it: `req.method`, `req.path`, `req.query`,
/// `req.headers`, `req.body`, `req.remote_addr`, `req.id`.
pub(crate) struct LuaRequest {
    pub(crate) parts: http::request::Parts,
    pub(crate) body: Bytes,
    /// The peer's address, formatted once per connection.
    pub(crate) remote: Rc<str>,
    pub(crate) id: String,
}

/// Builds `req` from `method, path, body, remote_addr, id, header_count, ...` where
/// `...` is the header names and values, then the query's keys and values. A key seen
/// twice becomes an array of its values, in order.
const BUILDER: &str = r#"
local type = type
local function add(t, k, v)
  local old = t[k]
  if old == nil then t[k] = v
  elseif type(old) == "table" then old[#old + 1] = v
  else t[k] = { old, v } end
end
return function(method, path, body, remote, id, nh, ...)
  local a, headers, query = { ... }, {}, {}
  for i = 1, 2 * nh, 2 do add(headers, a[i], a[i + 1]) end
  for i = 2 * nh + 1, #a, 2 do add(query, a[i], a[i + 1]) end
  return { method = method, path = path, query = query, headers = headers,
           body = body, remote_addr = remote, id = id }
end
"#;

/// The builder function of one Lua state, kept in its app data.
struct Builder(Function);

fn builder(lua: &Lua) -> mlua::Result<Function> {
    if let Some(b) = lua.app_data_ref::<Builder>() {
        return Ok(b.0.clone());
    }
    let f: Function = lua.load(BUILDER).set_name("=luapool-http").call(())?;
    lua.set_app_data(Builder(f.clone()));
    Ok(f)
}

impl IntoLua for LuaRequest {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        let header_count = self.parts.headers.len();
        let query: Vec<(Cow<'_, str>, Cow<'_, str>)> = self
            .parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).collect())
            .unwrap_or_default();
        let mut strings: Vec<&str> = Vec::with_capacity(2 * (header_count + query.len()));
        for (name, value) in &self.parts.headers {
            match value.to_str() {
                Ok(v) => strings.extend([name.as_str(), v]),
                Err(_) => return self.into_lua_slow(lua),
            }
        }
        for (k, v) in &query {
            strings.extend([k.as_ref(), v.as_ref()]);
        }
        let body = lua.create_string(&self.body)?;
        builder(lua)?.call((
            self.parts.method.as_str(),
            self.parts.uri.path(),
            body,
            &*self.remote,
            self.id.as_str(),
            header_count,
            Variadic::from(strings),
        ))
    }
}

impl LuaRequest {
    /// The same table built field by field, for header values that are not UTF-8.
    fn into_lua_slow(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        let t = lua.create_table_with_capacity(0, 7)?;
        t.raw_set("method", self.parts.method.as_str())?;
        t.raw_set("path", self.parts.uri.path())?;
        let query = lua.create_table()?;
        if let Some(q) = self.parts.uri.query() {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                append(lua, &query, k.as_bytes(), v.as_bytes())?;
            }
        }
        t.raw_set("query", query)?;
        let headers = lua.create_table_with_capacity(0, self.parts.headers.keys_len())?;
        for (name, value) in &self.parts.headers {
            // hyper gives header names in lower case.
            append(lua, &headers, name.as_str().as_bytes(), value.as_bytes())?;
        }
        t.raw_set("headers", headers)?;
        t.raw_set("body", lua.create_string(&self.body)?)?;
        t.raw_set("remote_addr", &*self.remote)?;
        t.raw_set("id", self.id)?;
        Ok(mlua::Value::Table(t))
    }
}

/// Sets `t[key] = value`; a key seen before becomes an array of its values, in order.
fn append(lua: &Lua, t: &Table, key: &[u8], value: &[u8]) -> mlua::Result<()> {
    let key = lua.create_string(key)?;
    let value = lua.create_string(value)?;
    match t.raw_get::<mlua::Value>(&key)? {
        mlua::Value::Nil => t.raw_set(key, value),
        mlua::Value::Table(list) => list.raw_push(value),
        first => t.raw_set(
            key,
            lua.create_sequence_from([first, mlua::Value::String(value)])?,
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &[u8])]) -> LuaRequest {
        let mut b = http::Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        LuaRequest {
            parts,
            body: Bytes::from_static(b"\x00body"),
            remote: Rc::from("127.0.0.1:9"),
            id: "id-1".to_string(),
        }
    }

    const DUMP: &str = r#"local r = ...
        local function s(t) local keys = {} for k in pairs(t) do keys[#keys + 1] = k end
          table.sort(keys)
          local out = {} for _, k in ipairs(keys) do
            local v = t[k]
            out[#out + 1] = k .. "=" .. (type(v) == "table" and "[" .. table.concat(v, ",") .. "]" or v)
          end return table.concat(out, " ") end
        return table.concat({ r.method, r.path, s(r.query), s(r.headers), #r.body, r.remote_addr, r.id }, "|")"#;

    #[test]
    fn fast_and_slow_paths_build_the_same_table() {
        let lua = Lua::new();
        let dump: Function = lua.load(DUMP).into_function().unwrap();
        let headers: &[(&str, &[u8])] = &[("x-a", b"1"), ("x-b", b"2"), ("x-a", b"3")];
        let fast = request("/p?q=1&r=%20x&q=2", headers);
        let slow = request("/p?q=1&r=%20x&q=2", headers);
        let want = "POST|/p|q=[1,2] r= x|x-a=[1,3] x-b=2|5|127.0.0.1:9|id-1";
        let a: String = dump.call(fast.into_lua(&lua).unwrap()).unwrap();
        let b: String = dump.call(slow.into_lua_slow(&lua).unwrap()).unwrap();
        assert_eq!((a.as_str(), b.as_str()), (want, want));
    }

    #[test]
    fn non_utf8_header_values_keep_their_bytes() {
        let lua = Lua::new();
        let req = request("/", &[("x-bin", b"\xff\xfe")]);
        let t = req.into_lua(&lua).unwrap();
        let f: Function = lua
            .load("local r = ... return #r.headers['x-bin'], r.headers['x-bin']:byte(1)")
            .into_function()
            .unwrap();
        let (len, first): (i64, i64) = f.call(t).unwrap();
        assert_eq!((len, first), (2, 255));
    }
}
