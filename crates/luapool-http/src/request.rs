//! The `req` table a handler receives, built straight from hyper's request.
//!
//! The table is built by one C-API sequence in one call into Lua
//! ([`luapool::string_table`]), which costs about a third of the Lua constructor it
//! replaced.
//!
//! Every string keeps the request's bytes: `path` and header values as sent, query keys
//! and values percent-decoded (`+` is a space) into whatever bytes they encode, valid
//! UTF-8 or not. A header or query key seen twice becomes an array of its values, in
//! order.

use std::borrow::Cow;
use std::rc::Rc;

use bytes::Bytes;
use luapool::mlua::{self, IntoLua, Lua};
use luapool::string_table::{string_table, Field};

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
        let query: Vec<QueryPair<'_>> = self
            .parts
            .uri
            .query()
            .map(|q| query_pairs(q).collect())
            .unwrap_or_default();
        let query: Vec<(&[u8], &[u8])> = query.iter().map(|(k, v)| (&**k, &**v)).collect();
        // hyper gives header names in lower case.
        let headers: Vec<(&[u8], &[u8])> = self
            .parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
            .collect();
        let table = string_table(
            lua,
            &[
                (
                    c"method",
                    Field::Bytes(self.parts.method.as_str().as_bytes()),
                ),
                (c"path", Field::Bytes(self.parts.uri.path().as_bytes())),
                (c"query", Field::Multimap(&query)),
                (c"headers", Field::Multimap(&headers)),
                (c"body", Field::Bytes(&self.body)),
                (c"remote_addr", Field::Bytes(self.remote.as_bytes())),
                (c"id", Field::Bytes(self.id.as_bytes())),
            ],
        )?;
        Ok(mlua::Value::Table(table))
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use luapool::mlua::Function;

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
    fn every_field_is_built_and_repeated_keys_become_arrays() {
        let lua = Lua::new();
        let dump: Function = lua.load(DUMP).into_function().unwrap();
        let headers: &[(&str, &[u8])] = &[("x-a", b"1"), ("x-b", b"2"), ("x-a", b"3")];
        let req = request("/p?q=1&r=%20x&q=2&q=3", headers);
        let want = "POST|/p|q=[1,2,3] r= x|x-a=[1,3] x-b=2|5|127.0.0.1:9|id-1";
        let got: String = dump.call(req.into_lua(&lua).unwrap()).unwrap();
        assert_eq!(got, want);
        // No query: an empty table.
        let got: String = dump
            .call(request("/", &[]).into_lua(&lua).unwrap())
            .unwrap();
        assert_eq!(got, "POST|/|||5|127.0.0.1:9|id-1");
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
