//! What a handler returns, turned into an HTTP response.
//!
//! `handle` may return a body string (status 200, `text/plain; charset=utf-8`),
//! `status, body`, or a table `{ status = 200, headers = { ... }, body = "..." }` whose
//! header values are strings or arrays of strings. In the table, `body` may also be an
//! array of strings (sent one chunk each, never joined), or `file = "path"` replaces
//! `body`: a file under the app's directory, read as it is sent (its content type
//! guessed from its extension unless `headers` set one). Anything else is a bad reply:
//! the client gets `500` and the log says what was wrong.
//!
//! A `1xx`, `204` or `304` reply has no body: one the handler gives is dropped, and no
//! default content type is added.
//!
//! Body and headers are copied out of the VM within one [`CopyBudget`] (what the VM may
//! still allocate): a reply that would copy more fails with [`luapool::Error::CopyLimit`] (`500`).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use luapool::mlua::{self, FromLuaMulti, Lua, MultiValue, Table, Value};
use luapool::CopyBudget;

/// The content type of replies that do not set one.
pub(crate) const DEFAULT_CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("text/plain; charset=utf-8");

/// Host memory charged per chunk of a chunked body, beyond its bytes (so that a
/// million empty chunks cannot make the host allocate without limit).
const CHUNK_OVERHEAD: usize = 64;

/// A handler's reply, checked.
pub(crate) enum Reply {
    /// A well-formed reply.
    Ok {
        status: StatusCode,
        headers: HeaderMap,
        body: ReplyBody,
    },
    /// The handler returned something that is not a reply; the text says what.
    Invalid(String),
}

impl FromLuaMulti for Reply {
    fn from_lua_multi(values: MultiValue, lua: &Lua) -> mlua::Result<Self> {
        match parse(values, &mut CopyBudget::for_lua(lua)) {
            Ok(reply) => Ok(reply),
            Err(Bad::Reply(why)) => Ok(Reply::Invalid(why)),
            Err(Bad::Copy(e)) => Err(mlua::Error::external(e)),
        }
    }
}

/// The body of a reply.
pub(crate) enum ReplyBody {
    /// One string.
    Bytes(Bytes),
    /// An array of strings, sent one chunk each.
    Chunks(Vec<Bytes>),
    /// `file = "path"`: the path as the handler gave it (relative to the app's
    /// directory; checked when it is served).
    File(String),
}

/// Why a handler's values are not a reply.
enum Bad {
    /// Not the shape of a reply; the text says what.
    Reply(String),
    /// Copying it out of the VM would pass the copy limit.
    Copy(luapool::Error),
}

impl From<String> for Bad {
    fn from(why: String) -> Self {
        Bad::Reply(why)
    }
}

impl From<luapool::Error> for Bad {
    fn from(e: luapool::Error) -> Self {
        Bad::Copy(e)
    }
}

fn parse(values: MultiValue, budget: &mut CopyBudget) -> Result<Reply, Bad> {
    let mut values = values.into_iter();
    let first = values.next().unwrap_or(Value::Nil);
    let second = values.next().unwrap_or(Value::Nil);
    match (first, second) {
        (Value::String(body), Value::Nil) => Ok(plain(StatusCode::OK, budget.copy(&body.as_bytes())?)),
        (status @ (Value::Integer(_) | Value::Number(_)), body) => {
            let status = status_code(&status)?;
            let body = match body {
                Value::Nil => Vec::new(),
                Value::String(s) => budget.copy(&s.as_bytes())?,
                other => {
                    return Err(Bad::Reply(format!(
                        "the body (second value) must be a string, got {}",
                        other.type_name()
                    )))
                }
            };
            Ok(plain(status, body))
        }
        (Value::Table(t), Value::Nil) => table_reply(&t, budget),
        (Value::String(first), second) => Err(Bad::Reply(match first.to_str() {
            Ok(text) if text.trim().parse::<u16>().is_ok() => format!(
                "handle returned the status as a string ('{}'); the status is a number: `return {}, body`",
                text.trim(),
                text.trim()
            ),
            _ => format!(
                "handle returned a string and then a {}; return a body string alone, `status, body` (the status a number) or a table {{ status, headers, body }}",
                second.type_name()
            ),
        })),
        (Value::Nil, _) => Err(Bad::Reply("handle returned nothing; return a body string, `status, body` or a table { status, headers, body }".to_string())),
        (first, _) => Err(Bad::Reply(format!(
            "handle returned a {}; return a body string, `status, body` or a table {{ status, headers, body }}",
            first.type_name()
        ))),
    }
}

fn plain(status: StatusCode, body: Vec<u8>) -> Reply {
    if bodiless(status) {
        return Reply::Ok {
            status,
            headers: HeaderMap::new(),
            body: ReplyBody::Bytes(Bytes::new()),
        };
    }
    let mut headers = HeaderMap::with_capacity(1);
    headers.insert(CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
    Reply::Ok {
        status,
        headers,
        body: ReplyBody::Bytes(Bytes::from(body)),
    }
}

/// True for the statuses whose responses have no body (RFC 9110 6.4.1): `1xx`, `204`
/// and `304`.
fn bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

fn status_code(value: &Value) -> Result<StatusCode, String> {
    let code = match *value {
        Value::Integer(i) => Some(i),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e6 => Some(n as i64),
        _ => None,
    };
    code.and_then(|c| u16::try_from(c).ok())
        .filter(|c| (100..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| {
            format!(
                "status must be an integer from 100 to 599, got {}",
                display(value)
            )
        })
}

fn table_reply(t: &Table, budget: &mut CopyBudget) -> Result<Reply, Bad> {
    let get = |key: &str| {
        t.raw_get::<Value>(key)
            .map_err(|e| format!("cannot read `{key}` of the reply: {e}"))
    };
    let status = match get("status")? {
        Value::Nil => StatusCode::OK,
        v => status_code(&v)?,
    };
    let body = match (get("body")?, get("file")?) {
        (Value::Nil, Value::Nil) => ReplyBody::Bytes(Bytes::new()),
        (Value::String(s), Value::Nil) => {
            ReplyBody::Bytes(Bytes::from(budget.copy(&s.as_bytes())?))
        }
        (Value::Table(chunks), Value::Nil) => ReplyBody::Chunks(chunk_list(&chunks, budget)?),
        (Value::Nil, Value::String(path)) => {
            let path = path.as_bytes();
            budget.charge(path.len())?;
            match std::str::from_utf8(&path) {
                Ok(path) => ReplyBody::File(path.to_string()),
                Err(_) => return Err(Bad::Reply("`file` must be a UTF-8 path".to_string())),
            }
        }
        (Value::Nil, other) => {
            return Err(Bad::Reply(format!(
                "`file` must be a path string, got {}",
                other.type_name()
            )))
        }
        (_, Value::String(_)) => {
            return Err(Bad::Reply(
                "a reply has `body` or `file`, not both".to_string(),
            ))
        }
        (other, _) => {
            return Err(Bad::Reply(format!(
                "`body` must be a string or an array of strings, got {}",
                other.type_name()
            )))
        }
    };
    let mut headers = header_map(get("headers")?, budget)?;
    if bodiless(status) {
        return Ok(Reply::Ok {
            status,
            headers,
            body: ReplyBody::Bytes(Bytes::new()),
        });
    }
    // A file's type is guessed from its name when it is served.
    if !headers.contains_key(CONTENT_TYPE) && !matches!(body, ReplyBody::File(_)) {
        headers.insert(CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
    }
    Ok(Reply::Ok {
        status,
        headers,
        body,
    })
}

/// A reply's `headers` (`nil` or a table), copied within `budget`.
fn header_map(value: Value, budget: &mut CopyBudget) -> Result<HeaderMap, Bad> {
    let mut headers = HeaderMap::new();
    match value {
        Value::Nil => {}
        Value::Table(h) => {
            for pair in h.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| format!("cannot read `headers`: {e}"))?;
                add_header(&mut headers, &k, v, budget)?;
            }
        }
        other => {
            return Err(Bad::Reply(format!(
                "`headers` must be a table, got {}",
                other.type_name()
            )))
        }
    }
    Ok(headers)
}

/// The head of a streamed response (`stream.start(status, headers)`): `status` a number
/// (`nil` is `200`), `headers` as in a reply table (a default content type if none).
/// `Err` says what is wrong.
pub(crate) fn stream_head(
    status: Value,
    headers: Value,
    budget: &mut CopyBudget,
) -> Result<(StatusCode, HeaderMap), String> {
    let status = match status {
        Value::Nil => StatusCode::OK,
        v => status_code(&v)?,
    };
    if bodiless(status) {
        return Err(format!("status {} has no body to stream", status.as_u16()));
    }
    let mut headers = header_map(headers, budget).map_err(|e| match e {
        Bad::Reply(why) => why,
        Bad::Copy(e) => e.to_string(),
    })?;
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
    }
    Ok((status, headers))
}

/// The strings of a chunked `body`, copied within `budget`.
fn chunk_list(chunks: &Table, budget: &mut CopyBudget) -> Result<Vec<Bytes>, Bad> {
    let mut list = Vec::new();
    for (i, chunk) in chunks.sequence_values::<Value>().enumerate() {
        let chunk = chunk.map_err(|e| format!("cannot read `body`: {e}"))?;
        let Value::String(s) = chunk else {
            return Err(Bad::Reply(format!(
                "`body[{}]` must be a string, got {}",
                i + 1,
                chunk.type_name()
            )));
        };
        budget.charge(CHUNK_OVERHEAD)?;
        list.push(Bytes::from(budget.copy(&s.as_bytes())?));
    }
    Ok(list)
}

fn add_header(
    headers: &mut HeaderMap,
    name: &Value,
    value: Value,
    budget: &mut CopyBudget,
) -> Result<(), Bad> {
    let Value::String(name_str) = name else {
        return Err(Bad::Reply(format!(
            "header names must be strings, got {}",
            name.type_name()
        )));
    };
    let name_bytes = name_str.as_bytes();
    budget.charge(name_bytes.len())?;
    let header = HeaderName::from_bytes(&name_bytes).map_err(|_| {
        format!(
            "'{}' is not a valid header name",
            String::from_utf8_lossy(&name_bytes)
        )
    })?;
    // The server frames the body itself.
    if header == CONTENT_LENGTH || header == TRANSFER_ENCODING {
        return Ok(());
    }
    let mut one = |v: &Value| -> Result<HeaderValue, Bad> {
        let bytes = match v {
            Value::String(s) => budget.copy(&s.as_bytes())?,
            Value::Integer(i) => i.to_string().into_bytes(),
            Value::Number(n) => n.to_string().into_bytes(),
            other => {
                return Err(Bad::Reply(format!(
                    "header '{header}' must be a string or an array of strings, got {}",
                    other.type_name()
                )))
            }
        };
        HeaderValue::from_maybe_shared(Bytes::from(bytes)).map_err(|_| {
            Bad::Reply(format!(
                "header '{header}' has an invalid value (control characters?)"
            ))
        })
    };
    match value {
        Value::Table(list) => {
            for item in list.sequence_values::<Value>() {
                let item = item.map_err(|e| format!("cannot read header '{header}': {e}"))?;
                headers.append(header.clone(), one(&item)?);
            }
        }
        v => {
            let value = one(&v)?;
            headers.append(header.clone(), value);
        }
    }
    Ok(())
}

fn display(value: &Value) -> String {
    match value {
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.to_string_lossy()),
        other => other.type_name().to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn reply(lua: &Lua, code: &str) -> Reply {
        let values: MultiValue = lua.load(code).eval().unwrap();
        Reply::from_lua_multi(values, lua).unwrap()
    }

    fn ok(lua: &Lua, code: &str) -> (StatusCode, HeaderMap, Bytes) {
        match reply(lua, code) {
            Reply::Ok {
                status,
                headers,
                body,
            } => match body {
                ReplyBody::Bytes(body) => (status, headers, body),
                ReplyBody::Chunks(chunks) => (status, headers, Bytes::from(chunks.concat())),
                ReplyBody::File(path) => (status, headers, Bytes::from(format!("file:{path}"))),
            },
            Reply::Invalid(why) => panic!("{code}: {why}"),
        }
    }

    #[test]
    fn chunks_and_files() {
        let lua = Lua::new();
        let (status, headers, body) = ok(&lua, "return { body = { 'a', 'bc', '' } }");
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"abc"[..]));
        assert_eq!(headers[CONTENT_TYPE], DEFAULT_CONTENT_TYPE);
        let (_, headers, body) = ok(&lua, "return { file = 'x/y.txt' }");
        assert_eq!(&body[..], b"file:x/y.txt");
        assert!(!headers.contains_key(CONTENT_TYPE), "guessed when served");
        assert!(
            invalid(&lua, "return { body = { 'a', 1 } }").contains("`body[2]` must be a string")
        );
        assert!(invalid(&lua, "return { body = 'a', file = 'b' }").contains("not both"));
        assert!(invalid(&lua, "return { file = 3 }").contains("`file` must be a path string"));
    }

    fn invalid(lua: &Lua, code: &str) -> String {
        match reply(lua, code) {
            Reply::Ok { .. } => panic!("{code}: accepted"),
            Reply::Invalid(why) => why,
        }
    }

    #[test]
    fn the_three_reply_shapes() {
        let lua = Lua::new();
        let (s, h, b) = ok(&lua, "return 'hi'");
        assert_eq!((s, &b[..]), (StatusCode::OK, &b"hi"[..]));
        assert_eq!(h[CONTENT_TYPE], DEFAULT_CONTENT_TYPE);
        let (s, _, b) = ok(&lua, "return 404, 'nope'");
        assert_eq!((s, &b[..]), (StatusCode::NOT_FOUND, &b"nope"[..]));
        let (s, h, b) = ok(
            &lua,
            "return { status = 201, headers = { ['content-type'] = 'application/json', ['set-cookie'] = { 'a=1', 'b=2' }, ['x-n'] = 5 }, body = '{}' }",
        );
        assert_eq!((s, &b[..]), (StatusCode::CREATED, &b"{}"[..]));
        assert_eq!(h[CONTENT_TYPE], "application/json");
        let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(h["x-n"], "5");
        let (s, _, b) = ok(&lua, "return {}");
        assert_eq!((s, b.len()), (StatusCode::OK, 0));
    }

    #[test]
    fn bodiless_statuses_drop_the_body_and_the_default_content_type() {
        let lua = Lua::new();
        for code in [
            "return 204, 'x'",
            "return 304",
            "return { status = 204, body = 'x' }",
            "return { status = 304, headers = { etag = '\"a\"' } }",
            "return 103",
        ] {
            let (_, h, b) = ok(&lua, code);
            assert!(b.is_empty(), "{code}");
            assert!(!h.contains_key(CONTENT_TYPE), "{code}");
        }
        let (_, h, _) = ok(&lua, "return { status = 304, headers = { etag = 'e' } }");
        assert_eq!(h["etag"], "e");
    }

    #[test]
    fn bad_replies_say_what_is_wrong() {
        let lua = Lua::new();
        assert!(invalid(&lua, "return nil").contains("returned nothing"));
        assert!(invalid(&lua, "return 700, 'x'").contains("100 to 599"));
        assert!(invalid(&lua, "return { status = 'ok' }").contains("status"));
        assert!(invalid(&lua, "return { body = 12 }").contains("`body` must be a string"));
        assert!(invalid(&lua, "return { headers = { ['bad name'] = 'x' } }").contains("bad name"));
        assert!(invalid(&lua, "return { headers = { a = 'x\\ny' } }").contains("invalid value"));
        assert!(invalid(&lua, "return true").contains("boolean"));
        assert!(invalid(&lua, "return 200, {}").contains("second value"));
        assert!(invalid(&lua, "return '200', 'ok'").contains("`return 200, body`"));
        assert!(invalid(&lua, "return 'ok', 200").contains("the status a number"));
    }

    #[test]
    fn body_and_headers_share_one_copy_budget() {
        // A fresh state for each case, so that no garbage of the last one counts.
        let limited = || {
            let lua = Lua::new();
            lua.set_memory_limit(lua.used_memory() + (4 << 20)).unwrap();
            lua
        };
        let lua = limited();
        let source =
            "local s = string.rep('x', 1500000) return { body = s, headers = { a = s, b = s } }";
        let values: MultiValue = lua.load(source).eval().unwrap();
        let err = Reply::from_lua_multi(values, &lua).err().unwrap();
        assert!(
            err.to_string().contains("host copy limit exceeded"),
            "{err}"
        );
        let lua = limited();
        let list =
            "local s = string.rep('x', 1000000) return { headers = { a = { s, s, s, s, s } } }";
        let values: MultiValue = lua.load(list).eval().unwrap();
        assert!(Reply::from_lua_multi(values, &lua).is_err());
        let lua = limited();
        let (_, h, b) = ok(
            &lua,
            "local s = string.rep('x', 1000000) return { body = s, headers = { a = s } }",
        );
        assert_eq!((b.len(), h["a"].len()), (1_000_000, 1_000_000));
    }
}
