//! The `req` table a handler receives, built straight from hyper's request.
//!
//! The table is built by one C-API sequence in one call into Lua
//! ([`luapool::string_table`]), which costs about a third of the Lua constructor it
//! replaced.
//!
//! Every string keeps the request's bytes: `raw_path`, `raw_query` and header values as
//! sent; `path`, query keys and values percent-decoded (in the query `+` is a space)
//! into whatever bytes they encode, valid UTF-8 or not. `headers`, `query` and
//! `cookies` hold the first value of a repeated key. When a header repeats, the table
//! of all values goes into a weak-keyed table of the VM, keyed by `req`, out of the
//! handler's sight, where `req:header_all` finds it: a request without repeats pays
//! nothing for it.
//!
//! The methods (`query_all`, `header_all`, `form`, `json`) live in one metatable per VM
//! ([`Methods`]), made on the first request: no closure per request. Its `__index` also
//! makes `query` and `cookies` on first read (then kept as raw fields): building them
//! for every request cost 7.8% more instructions per request on `/` (callgrind: 41,962
//! with them eager, 39,583 lazy, 38,911 before `raw_path`, `raw_query`, `cookies` and
//! the metatable came).

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use luapool::mlua::{self, IntoLua, Lua, LuaString, MultiValue, Table, Value as LuaValue};
use luapool::string_table::{string_table_with, Field};
use luapool::CopyBudget;

/// Most parts a `multipart/form-data` body may have for `req:form()`.
const MAX_FORM_PARTS: usize = 1000;

/// Longest field name `req:form()` accepts, in bytes.
const MAX_FIELD_NAME: usize = 1024;

/// One request as the handler sees it: `req.method`, `req.path`, `req.raw_path`,
/// `req.raw_query`, `req.query`, `req.headers`, `req.cookies`, `req.body`,
/// `req.remote_addr`, `req.id`, and the shared methods.
pub(crate) struct LuaRequest {
    pub(crate) parts: http::request::Parts,
    pub(crate) body: Bytes,
    /// The peer's address, formatted once per connection.
    pub(crate) remote: Rc<str>,
    pub(crate) id: Arc<str>,
}

impl IntoLua for LuaRequest {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        let raw_path = self.parts.uri.path().as_bytes();
        let path: Cow<'_, [u8]> = percent_encoding::percent_decode(raw_path).into();
        let raw_query = self.parts.uri.query().unwrap_or("");
        // hyper gives header names in lower case, the values of a name together.
        let headers: Vec<(&[u8], &[u8])> = self
            .parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
            .collect();
        let repeated_headers = self.parts.headers.len() != self.parts.headers.keys_len();
        let methods = Methods::get(lua)?;
        let all: &[(&std::ffi::CStr, Field<'_>)] = &[(c"headers", Field::Multimap(&headers))];
        // Eight fields, which fit the eight slots of the smallest hash part above four
        // (`query` and `cookies` are made on first read: see `Methods`).
        let table = string_table_with(
            lua,
            &[
                (
                    c"method",
                    Field::Bytes(self.parts.method.as_str().as_bytes()),
                ),
                (c"path", Field::Bytes(&path)),
                (c"raw_path", Field::Bytes(raw_path)),
                (c"raw_query", Field::Bytes(raw_query.as_bytes())),
                (c"headers", Field::First(&headers)),
                (c"body", Field::Bytes(&self.body)),
                (c"remote_addr", Field::Bytes(self.remote.as_bytes())),
                (c"id", Field::Bytes(self.id.as_bytes())),
            ],
            &methods.metatable,
            repeated_headers.then_some((&methods.all_values, all)),
        )?;
        Ok(mlua::Value::Table(table))
    }
}

/// The name-value pairs of one `Cookie` header value (`a=1; b="2"`): names and values
/// trimmed, surrounding double quotes removed from values; a pair without `=` or with an
/// empty name is skipped.
fn cookie_pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';').filter_map(|pair| {
        let i = pair.iter().position(|&b| b == b'=')?;
        let name = pair[..i].trim_ascii();
        let mut value = pair[i + 1..].trim_ascii();
        if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
            value = &value[1..value.len() - 1];
        }
        (!name.is_empty()).then_some((name, value))
    })
}

/// A query key and value, decoded.
type QueryPair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// The key-value pairs of a query string (or an `application/x-www-form-urlencoded`
/// body), decoded as HTML forms are (`+` is a space, `%XX` the byte XX) into bytes:
/// invalid UTF-8 stays as it was sent. A pair without `=` has an empty value; empty
/// pairs are skipped.
fn query_pairs(query: &[u8]) -> impl Iterator<Item = QueryPair<'_>> {
    query
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

/// What every `req` of a VM shares, kept in the VM's app data: the metatable whose
/// `__index` is the table of methods, and the weak-keyed table of all the values of
/// repeated query keys and headers (`all_values[req] = { query = ..., headers = ... }`),
/// which the metatable also holds (as `all_values`, out of scripts' reach: the
/// metatable is hidden) for the methods to find.
pub(crate) struct Methods {
    metatable: Table,
    all_values: Table,
}

/// The VM's [`Methods`], or new ones when the VM's app data could not take them.
enum MethodsRef<'a> {
    Kept(mlua::AppDataRef<'a, Methods>),
    New(Methods),
}

impl std::ops::Deref for MethodsRef<'_> {
    type Target = Methods;

    fn deref(&self) -> &Methods {
        match self {
            MethodsRef::Kept(kept) => kept,
            MethodsRef::New(new) => new,
        }
    }
}

impl Methods {
    /// The VM's methods, made on first use.
    fn get(lua: &Lua) -> mlua::Result<MethodsRef<'_>> {
        if let Some(methods) = lua.app_data_ref::<Methods>() {
            return Ok(MethodsRef::Kept(methods));
        }
        // The app data container is borrowed (it is not, where requests are built: this
        // is not expected): these methods serve this request alone.
        if let Err(methods) = lua.try_set_app_data(Methods::new(lua)?) {
            return Ok(MethodsRef::New(methods));
        }
        match lua.app_data_ref::<Methods>() {
            Some(methods) => Ok(MethodsRef::Kept(methods)),
            None => Ok(MethodsRef::New(Methods::new(lua)?)),
        }
    }

    /// The methods table, the `__index` function and the weak-keyed store, made once.
    fn new(lua: &Lua) -> mlua::Result<Methods> {
        let methods = lua.create_table_with_capacity(0, 4)?;
        methods.raw_set(
            "query_all",
            lua.create_function(|lua, (req, name): (Table, LuaString)| {
                query_all(lua, &req, &name)
            })?,
        )?;
        methods.raw_set(
            "header_all",
            lua.create_function(|lua, (req, name): (Table, LuaString)| {
                let name = lower_case(lua, name)?;
                header_all(lua, &req, &name)
            })?,
        )?;
        methods.raw_set(
            "form",
            lua.create_function(|lua, req: Table| returned(lua, form(lua, &req)?))?,
        )?;
        methods.raw_set(
            "json",
            lua.create_function(|lua, req: Table| returned(lua, json(lua, &req)?))?,
        )?;
        let query = lua.create_function(|lua, req: Table| query(lua, &req))?;
        let cookies = lua.create_function(|lua, req: Table| cookies(lua, &req))?;
        let rawset = lua.globals().raw_get::<mlua::Function>("rawset")?;
        let index: mlua::Function = lua
            .load(INDEX)
            .set_name("=req")
            .into_function()?
            .call((methods, query, cookies, rawset))?;
        let metatable = lua.create_table_with_capacity(0, 3)?;
        metatable.raw_set("__index", index)?;
        metatable.raw_set("__metatable", false)?;
        let weak = lua.create_table_with_capacity(0, 1)?;
        weak.raw_set("__mode", "k")?;
        let all_values = lua.create_table()?;
        all_values.set_metatable(Some(weak))?;
        metatable.raw_set("all_values", &all_values)?;
        Ok(Methods {
            metatable,
            all_values,
        })
    }
}

/// The `__index` of `req`: a method, or `query` and `cookies`, made on first read and
/// then kept as fields.
const INDEX: &str = r#"
local methods, query, cookies, rawset = ...
return function(req, key)
  local method = methods[key]
  if method ~= nil then return method end
  local make = key == "query" and query or key == "cookies" and cookies
  if make then
    local value = make(req)
    rawset(req, key, value)
    return value
  end
  return nil
end
"#;

/// `req.query`: `req.raw_query` decoded, the first value of a repeated key.
fn query(lua: &Lua, req: &Table) -> mlua::Result<Table> {
    let raw: LuaString = match req.raw_get::<LuaValue>("raw_query")? {
        LuaValue::String(s) => s,
        _ => return lua.create_table(),
    };
    let raw = raw.as_bytes();
    // The decoded keys and values, at most the query's size.
    charge(lua, "req.query", raw.len())?;
    let t = lua.create_table()?;
    for (k, v) in query_pairs(&raw) {
        let k = lua.create_string(&*k)?;
        if t.raw_get::<LuaValue>(&k)?.is_nil() {
            t.raw_set(k, lua.create_string(&*v)?)?;
        }
    }
    Ok(t)
}

/// `req:query_all(name)`: every value of `name` in `req.raw_query`, decoded, in order.
fn query_all(lua: &Lua, req: &Table, name: &LuaString) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let raw: LuaString = match req.raw_get::<LuaValue>("raw_query")? {
        LuaValue::String(s) => s,
        _ => return Ok(t),
    };
    let raw = raw.as_bytes();
    charge(lua, "req:query_all", raw.len())?;
    let name = name.as_bytes();
    let mut n = 0;
    for (k, v) in query_pairs(&raw) {
        if *k == *name {
            n += 1;
            t.raw_set(n, lua.create_string(&*v)?)?;
        }
    }
    Ok(t)
}

/// `req.cookies`: the `Cookie` header's (or headers') pairs, the first of a name winning.
fn cookies(lua: &Lua, req: &Table) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let values = header_all(lua, req, &lua.create_string("cookie")?)?;
    for value in values.sequence_values::<LuaValue>() {
        let LuaValue::String(value) = value? else {
            continue;
        };
        for (name, v) in cookie_pairs(&value.as_bytes()) {
            let name = lua.create_string(name)?;
            if t.raw_get::<LuaValue>(&name)?.is_nil() {
                t.raw_set(name, lua.create_string(v)?)?;
            }
        }
    }
    Ok(t)
}

/// Charges `bytes` to the call's copy budget, naming `function` in the error.
fn charge(lua: &Lua, function: &str, bytes: usize) -> mlua::Result<()> {
    CopyBudget::for_lua(lua)
        .charge(bytes)
        .map_err(|e| mlua::Error::runtime(format!("{function}: {e}")))
}

/// `name` in lower case (header names are), charged to the call's copy budget when it
/// must be copied.
fn lower_case(lua: &Lua, name: LuaString) -> mlua::Result<LuaString> {
    let bytes = name.as_bytes();
    if !bytes.iter().any(u8::is_ascii_uppercase) {
        return Ok(name.clone());
    }
    CopyBudget::for_lua(lua)
        .charge(bytes.len())
        .map_err(|e| mlua::Error::runtime(format!("req:header_all: {e}")))?;
    lua.create_string(bytes.to_ascii_lowercase())
}

/// `req:header_all(name)`: a new array of every value of header `name`, in order (empty
/// when there is none).
fn header_all(lua: &Lua, req: &Table, name: &LuaString) -> mlua::Result<Table> {
    let field = "headers";
    let store = match req.metatable() {
        Some(metatable) => metatable.raw_get::<Option<Table>>("all_values")?,
        None => None,
    };
    let repeated = match store {
        Some(store) => match store.raw_get::<Option<Table>>(req)? {
            Some(all) => all.raw_get::<Option<Table>>(field)?,
            None => None,
        },
        None => None,
    };
    let value = match repeated {
        Some(all) => all.raw_get::<LuaValue>(name)?,
        None => match req.raw_get::<LuaValue>(field)? {
            LuaValue::Table(first) => first.raw_get::<LuaValue>(name)?,
            _ => LuaValue::Nil,
        },
    };
    match value {
        LuaValue::Table(values) => {
            let copy = lua.create_table_with_capacity(values.raw_len(), 0)?;
            for i in 1..=values.raw_len() {
                copy.raw_set(i, values.raw_get::<LuaValue>(i)?)?;
            }
            Ok(copy)
        }
        LuaValue::Nil => lua.create_table(),
        one => lua.create_sequence_from([one]),
    }
}

/// A method's results: the value, or `nil, message`.
fn returned(lua: &Lua, result: Result<LuaValue, String>) -> mlua::Result<MultiValue> {
    Ok(match result {
        Ok(value) => MultiValue::from_iter([value]),
        Err(message) => {
            MultiValue::from_iter([LuaValue::Nil, LuaValue::String(lua.create_string(message)?)])
        }
    })
}

/// `req:json()`: the body decoded as `json.decode` does, or the message of why not. The
/// outer error is Lua's (out of memory).
fn json(lua: &Lua, req: &Table) -> mlua::Result<Result<LuaValue, String>> {
    let body: LuaString = match req.raw_get::<LuaValue>("body")? {
        LuaValue::String(s) => s,
        _ => return Ok(Err("req:json: no body".to_string())),
    };
    let decoded = luapool::json_decode(lua, &body.as_bytes());
    match decoded {
        Ok(value) => Ok(Ok(value)),
        Err(mlua::Error::RuntimeError(message)) => {
            let message = message.strip_prefix("json.decode: ").unwrap_or(&message);
            Ok(Err(format!("req:json: {message}")))
        }
        Err(e) => Err(e),
    }
}

/// `req:form()`: the body as a form (`application/x-www-form-urlencoded` or
/// `multipart/form-data`, by the `content-type` header): a table of field name to value,
/// the first of a repeated name winning; or the message of why not. The outer error is
/// Lua's (out of memory).
fn form(lua: &Lua, req: &Table) -> mlua::Result<Result<LuaValue, String>> {
    let fail = |message: String| Ok(Err(format!("req:form: {message}")));
    let content_type: Option<LuaString> = match req.raw_get::<LuaValue>("headers")? {
        LuaValue::Table(headers) => match headers.raw_get::<LuaValue>("content-type")? {
            LuaValue::String(s) => Some(s),
            _ => None,
        },
        _ => None,
    };
    let Some(content_type) = content_type else {
        return fail("no content-type".to_string());
    };
    let content_type = content_type.to_string_lossy();
    let body: LuaString = match req.raw_get::<LuaValue>("body")? {
        LuaValue::String(s) => s,
        _ => lua.create_string("")?,
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => {
            let body = body.as_bytes();
            // The decoded keys and values, at most the body's size.
            if let Err(e) = CopyBudget::for_lua(lua).charge(body.len()) {
                return fail(e.to_string());
            }
            let t = lua.create_table()?;
            for (k, v) in query_pairs(&body) {
                if k.len() > MAX_FIELD_NAME {
                    return fail(format!("a field name is over {MAX_FIELD_NAME} bytes"));
                }
                let k = lua.create_string(&*k)?;
                if t.raw_get::<LuaValue>(&k)?.is_nil() {
                    t.raw_set(k, lua.create_string(&*v)?)?;
                }
            }
            Ok(Ok(LuaValue::Table(t)))
        }
        "multipart/form-data" => match multipart(lua, &content_type, &body)? {
            Ok(t) => Ok(Ok(LuaValue::Table(t))),
            Err(message) => fail(message),
        },
        _ => fail(format!("content-type {content_type:?} is not a form")),
    }
}

/// A `multipart/form-data` body as a table: a field is a string, a file (a part with a
/// filename) `{ filename =, content_type =, data = }`. The outer error is Lua's (out of
/// memory), the inner one a bad body.
fn multipart(
    lua: &Lua,
    content_type: &str,
    body: &LuaString,
) -> mlua::Result<Result<Table, String>> {
    use futures_util::FutureExt;

    let boundary = match multer::parse_boundary(content_type) {
        Ok(boundary) => boundary,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let body = body.as_bytes();
    // The body's copy, and the parts multer may copy out of it.
    if let Err(e) = CopyBudget::for_lua(lua).charge(body.len().saturating_mul(2)) {
        return Ok(Err(e.to_string()));
    }
    let copy = Bytes::copy_from_slice(&body);
    drop(body);
    let stream = futures_util::stream::once(std::future::ready(Ok::<
        Bytes,
        std::convert::Infallible,
    >(copy)));
    let mut parts = multer::Multipart::new(stream, boundary);
    let parse = async {
        let t = lua.create_table()?;
        let mut count = 0;
        loop {
            let field = match parts.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => return Ok(Err(e.to_string())),
            };
            count += 1;
            if count > MAX_FORM_PARTS {
                return Ok(Err(format!("more than {MAX_FORM_PARTS} parts")));
            }
            let Some(name) = field.name().map(str::to_owned) else {
                return Ok(Err("a part has no name".to_string()));
            };
            if name.len() > MAX_FIELD_NAME {
                return Ok(Err(format!("a field name is over {MAX_FIELD_NAME} bytes")));
            }
            let file = field
                .file_name()
                .map(|f| (f.to_owned(), field.content_type().map(|m| m.to_string())));
            let data = match field.bytes().await {
                Ok(data) => data,
                Err(e) => return Ok(Err(e.to_string())),
            };
            if t.raw_get::<LuaValue>(name.as_str())?.is_nil() {
                let value = match file {
                    None => LuaValue::String(lua.create_string(&data)?),
                    Some((filename, content_type)) => {
                        let f = lua.create_table_with_capacity(0, 3)?;
                        f.raw_set("filename", filename)?;
                        f.raw_set("content_type", content_type)?;
                        f.raw_set("data", lua.create_string(&data)?)?;
                        LuaValue::Table(f)
                    }
                };
                t.raw_set(name, value)?;
            }
        }
        Ok(Ok(t))
    };
    // The whole body is one ready chunk: parsing never waits.
    parse
        .now_or_never()
        .unwrap_or_else(|| Ok(Err("the multipart parser stalled".to_string())))
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
            id: Arc::from("id-1"),
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
    fn every_field_is_built_and_repeated_keys_keep_their_first_value() {
        let lua = Lua::new();
        let dump: Function = lua.load(DUMP).into_function().unwrap();
        let headers: &[(&str, &[u8])] = &[("x-a", b"1"), ("x-b", b"2"), ("x-a", b"3")];
        let req = request("/p?q=1&r=%20x&q=2&q=3", headers);
        let want = "POST|/p|q=1 r= x|x-a=1 x-b=2|5|127.0.0.1:9|id-1";
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
        let pairs: Vec<_> = query_pairs(b"a=%FF%FE&b=x+y%2B&&c&d=%zz")
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
    fn all_values_of_repeated_keys_and_the_raw_fields() {
        let lua = Lua::new();
        let f: Function = lua
            .load(
                "local r = ... return table.concat(r:query_all('q'), ','), #r:query_all('none'),
                   table.concat(r:header_all('X-A'), ','), table.concat(r:header_all('x-b'), ','),
                   r.path, r.raw_path, r.raw_query, r.cookies.a, r.cookies.b, r.cookies.c,
                   getmetatable(r), table.concat(r:query_all('r'), ',')",
            )
            .into_function()
            .unwrap();
        let headers: &[(&str, &[u8])] = &[
            ("x-a", b"1"),
            ("x-b", b"2"),
            ("x-a", b"3"),
            ("cookie", b"a=1; b=\"two\"; a=3"),
            ("cookie", b"c = x=y ;;d"),
        ];
        let req = request("/a%20b/%FF?q=1&r=%20x&q=2&q=3", headers);
        let got: (
            String,
            i64,
            String,
            String,
            LuaString,
            String,
            String,
            String,
            String,
            String,
            bool,
            String,
        ) = f.call(req.into_lua(&lua).unwrap()).unwrap();
        assert_eq!(got.0, "1,2,3");
        assert_eq!(got.1, 0);
        assert_eq!((got.2.as_str(), got.3.as_str()), ("1,3", "2"));
        assert_eq!(&*got.4.as_bytes(), b"/a b/\xff");
        assert_eq!(
            (got.5.as_str(), got.6.as_str()),
            ("/a%20b/%FF", "q=1&r=%20x&q=2&q=3")
        );
        assert_eq!(
            (got.7.as_str(), got.8.as_str(), got.9.as_str()),
            ("1", "two", "x=y")
        );
        assert!(!got.10);
        assert_eq!(got.11, " x");
        // Without repeats nothing is kept aside, and the methods still answer.
        let f: Function = lua
            .load("local r = ... return #r:query_all('a'), r:query_all('a')[1], #r:header_all('x'), r.raw_query")
            .into_function()
            .unwrap();
        let got: (i64, String, i64, String) = f
            .call(request("/?a=1", &[]).into_lua(&lua).unwrap())
            .unwrap();
        assert_eq!(got, (1, "1".to_string(), 0, "a=1".to_string()));
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
