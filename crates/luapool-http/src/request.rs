//! The `req` table a handler receives, built straight from hyper's request.

use std::rc::Rc;

use bytes::Bytes;
use luapool::mlua::{self, IntoLua, Lua, Table};

/// One request as the handler sees it: `req.method`, `req.path`, `req.query`,
/// `req.headers`, `req.body`, `req.remote_addr`, `req.id`.
pub(crate) struct LuaRequest {
    pub(crate) parts: http::request::Parts,
    pub(crate) body: Bytes,
    /// The peer's address, formatted once per connection.
    pub(crate) remote: Rc<str>,
    pub(crate) id: String,
}

impl IntoLua for LuaRequest {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
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
