//! The `req` table a handler receives, built straight from hyper's request.
//!
//! The table is built by a small Lua function compiled once per VM: the Rust side pushes
//! the request's strings onto the Lua stack in one call and Lua's own table
//! constructors do the rest, which costs a fraction of building it field by field
//! through the C API. Requests with header values or query parts that are not UTF-8
//! (rare; they would need a copy to be pushed that way) take the field-by-field path.
//!
//! Every string keeps the request's bytes: `path` and header values as sent, query keys
//! and values percent-decoded (`+` is a space) into whatever bytes they encode, valid
//! UTF-8 or not.

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
        let query: Vec<QueryPair<'_>> = self
            .parts
            .uri
            .query()
            .map(|q| query_pairs(q).collect())
            .unwrap_or_default();
        let mut strings: Vec<&str> = Vec::with_capacity(2 * (header_count + query.len()));
        for (name, value) in &self.parts.headers {
            match value.to_str() {
                Ok(v) => strings.extend([name.as_str(), v]),
                Err(_) => return self.into_lua_slow(lua),
            }
        }
        for (k, v) in &query {
            match (std::str::from_utf8(k), std::str::from_utf8(v)) {
                (Ok(k), Ok(v)) => strings.extend([k, v]),
                _ => return self.into_lua_slow(lua),
            }
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
            for (k, v) in query_pairs(q) {
                append(lua, &query, &k, &v)?;
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

/// A query key and value, decoded.
type QueryPair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// The key-value pairs of a query string, decoded as HTML forms are (`+` is a space,
/// `%XX` the byte XX) into bytes: invalid UTF-8 stays as it was sent. A pair without `=`
/// has an empty value; empty pairs are skipped.
fn query_pairs(query: &str) -> impl Iterator<Item = QueryPair<'_>> {
    query
        .as_bytes()
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&pair[..i]), decode(&pair[i + 1..])),
            None => (decode(pair), Cow::Borrowed(&[][..])),
        })
}

/// One query component: `+` to space, then percent-decoded.
fn decode(part: &[u8]) -> Cow<'_, [u8]> {
    if part.contains(&b'+') {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        Cow::Owned(percent_encoding::percent_decode(&spaced).collect())
    } else {
        percent_encoding::percent_decode(part).into()
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
    fn query_parts_keep_their_bytes() {
        let pairs: Vec<_> = query_pairs("a=%FF%FE&b=x+y%2B&&c&d=%zz")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"a".to_vec(), vec![0xff, 0xfe]),
            (b"b".to_vec(), b"x y+".to_vec()),
            (b"c".to_vec(), vec![]),
            (b"d".to_vec(), b"%zz".to_vec()),
        ];
        assert_eq!(pairs, want);
        let lua = Lua::new();
        let f: Function = lua
            .load("local r = ... return #r.query.a, r.query.a:byte(1), r.query.b")
            .into_function()
            .unwrap();
        let t = request("/?a=%FF%FE&b=%41", &[]).into_lua(&lua).unwrap();
        let got: (i64, i64, String) = f.call(t).unwrap();
        assert_eq!(got, (2, 255, "A".to_string()));
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
