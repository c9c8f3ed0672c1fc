//! What a handler returns, turned into an HTTP response.
//!
//! `handle` may return a body string (status 200, `text/plain; charset=utf-8`),
//! `status, body`, or a table `{ status = 200, headers = { ... }, body = "..." }` whose
//! header values are strings or arrays of strings. Anything else is a bad reply: the
//! client gets `500` and the log says what was wrong.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use luapool::mlua::{self, FromLuaMulti, Lua, MultiValue, Table, Value};

/// The content type of replies that do not set one.
pub(crate) const DEFAULT_CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("text/plain; charset=utf-8");

/// A handler's reply, checked.
pub(crate) enum Reply {
    /// A well-formed reply.
    Ok {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// The handler returned something that is not a reply; the text says what.
    Invalid(String),
}

impl FromLuaMulti for Reply {
    fn from_lua_multi(values: MultiValue, _lua: &Lua) -> mlua::Result<Self> {
        Ok(parse(values).unwrap_or_else(Reply::Invalid))
    }
}

fn parse(values: MultiValue) -> Result<Reply, String> {
    let mut values = values.into_iter();
    let first = values.next().unwrap_or(Value::Nil);
    let second = values.next().unwrap_or(Value::Nil);
    match (first, second) {
        (Value::String(body), Value::Nil) => Ok(plain(StatusCode::OK, body.as_bytes().to_vec())),
        (status @ (Value::Integer(_) | Value::Number(_)), body) => {
            let status = status_code(&status)?;
            let body = match body {
                Value::Nil => Vec::new(),
                Value::String(s) => s.as_bytes().to_vec(),
                other => {
                    return Err(format!(
                        "the body (second value) must be a string, got {}",
                        other.type_name()
                    ))
                }
            };
            Ok(plain(status, body))
        }
        (Value::Table(t), Value::Nil) => table_reply(&t),
        (Value::Nil, _) => Err("handle returned nothing; return a body string, `status, body` or a table { status, headers, body }".to_string()),
        (first, _) => Err(format!(
            "handle returned a {}; return a body string, `status, body` or a table {{ status, headers, body }}",
            first.type_name()
        )),
    }
}

fn plain(status: StatusCode, body: Vec<u8>) -> Reply {
    let mut headers = HeaderMap::with_capacity(1);
    headers.insert(CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
    Reply::Ok {
        status,
        headers,
        body: Bytes::from(body),
    }
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

fn table_reply(t: &Table) -> Result<Reply, String> {
    let get = |key: &str| {
        t.raw_get::<Value>(key)
            .map_err(|e| format!("cannot read `{key}` of the reply: {e}"))
    };
    let status = match get("status")? {
        Value::Nil => StatusCode::OK,
        v => status_code(&v)?,
    };
    let body = match get("body")? {
        Value::Nil => Bytes::new(),
        Value::String(s) => Bytes::from(s.as_bytes().to_vec()),
        other => {
            return Err(format!(
                "`body` must be a string, got {}",
                other.type_name()
            ))
        }
    };
    let mut headers = HeaderMap::new();
    match get("headers")? {
        Value::Nil => {}
        Value::Table(h) => {
            for pair in h.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| format!("cannot read `headers`: {e}"))?;
                add_header(&mut headers, &k, v)?;
            }
        }
        other => {
            return Err(format!(
                "`headers` must be a table, got {}",
                other.type_name()
            ))
        }
    }
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, DEFAULT_CONTENT_TYPE);
    }
    Ok(Reply::Ok {
        status,
        headers,
        body,
    })
}

fn add_header(headers: &mut HeaderMap, name: &Value, value: Value) -> Result<(), String> {
    let Value::String(name_str) = name else {
        return Err(format!(
            "header names must be strings, got {}",
            name.type_name()
        ));
    };
    let name_bytes = name_str.as_bytes();
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
    let one = |v: &Value| -> Result<HeaderValue, String> {
        let bytes = match v {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Integer(i) => i.to_string().into_bytes(),
            Value::Number(n) => n.to_string().into_bytes(),
            other => {
                return Err(format!(
                    "header '{header}' must be a string or an array of strings, got {}",
                    other.type_name()
                ))
            }
        };
        HeaderValue::from_bytes(&bytes)
            .map_err(|_| format!("header '{header}' has an invalid value (control characters?)"))
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
            } => (status, headers, body),
            Reply::Invalid(why) => panic!("{code}: {why}"),
        }
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
    }
}
