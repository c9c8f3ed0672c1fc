//! Replies to Lua values, as Redis's own Lua scripting converts them, within a byte
//! budget; command arguments from Lua values, charged to the caller's copy budget.

use luapool::mlua::{self, Lua};
use luapool::{CopyBudget, HostError, HostResult, Value};

/// Deepest reply converted (Redis's own replies nest a few levels).
pub(crate) const MAX_REPLY_DEPTH: usize = 32;
/// Largest reply converted, in bytes (strings, plus 16 bytes per value); the
/// calling VM's copy budget may lower it.
pub const MAX_REPLY_BYTES: usize = 64 << 20;
/// Bytes each value of a reply (or argument of a command) is counted for besides its
/// string.
const ITEM_OVERHEAD: usize = 16;

/// Converts a reply: integer → integer, bulk string → string, array → array, nil →
/// `false`, status → `{ ok = "..." }`, error → `{ err = "..." }` (RESP3 types: double →
/// number, boolean → boolean, map → table, verbatim and big number → string).
///
/// # Errors
/// A message when the reply is deeper than [`MAX_REPLY_DEPTH`] or larger than `limit`
/// bytes.
pub(crate) fn to_value(reply: redis::Value, limit: usize) -> Result<Value, String> {
    let mut left = limit;
    convert(reply, 0, &mut left, limit)
}

fn convert(
    reply: redis::Value,
    depth: usize,
    left: &mut usize,
    limit: usize,
) -> Result<Value, String> {
    if depth > MAX_REPLY_DEPTH {
        return Err(format!(
            "the reply is nested more than {MAX_REPLY_DEPTH} levels deep"
        ));
    }
    let size = ITEM_OVERHEAD
        + match &reply {
            redis::Value::BulkString(b) => b.len(),
            redis::Value::SimpleString(s) => s.len(),
            redis::Value::VerbatimString { text, .. } => text.len(),
            _ => 0,
        };
    if size > *left {
        return Err(format!("the reply is larger than {limit} bytes"));
    }
    *left -= size;
    let array = |items: Vec<redis::Value>, left: &mut usize| -> Result<Value, String> {
        let mut out = Vec::with_capacity(items.len().min(*left / ITEM_OVERHEAD));
        for item in items {
            out.push(convert(item, depth + 1, left, limit)?);
        }
        Ok(Value::Array(out))
    };
    Ok(match reply {
        redis::Value::Nil => Value::Boolean(false),
        redis::Value::Int(i) => Value::Integer(i),
        redis::Value::BulkString(b) => Value::String(b),
        redis::Value::Array(items) | redis::Value::Set(items) => array(items, left)?,
        redis::Value::Push { data, .. } => array(data, left)?,
        redis::Value::SimpleString(s) => status(s),
        redis::Value::Okay => status("OK".to_string()),
        redis::Value::Map(pairs) => {
            let mut out = Vec::with_capacity(pairs.len().min(*left / ITEM_OVERHEAD));
            for (k, v) in pairs {
                out.push((
                    convert(k, depth + 1, left, limit)?,
                    convert(v, depth + 1, left, limit)?,
                ));
            }
            Value::Map(out)
        }
        redis::Value::Attribute { data, .. } => convert(*data, depth, left, limit)?,
        redis::Value::Double(d) => Value::Number(d),
        redis::Value::Boolean(b) => Value::Boolean(b),
        redis::Value::VerbatimString { text, .. } => Value::String(text.into_bytes()),
        redis::Value::BigNumber(n) => Value::String(n),
        redis::Value::ServerError(e) => Value::Map(vec![(
            Value::from("err"),
            Value::from(server_error_text(&e).as_str()),
        )]),
        // The enum is non-exhaustive: a newer reply type.
        #[allow(unreachable_patterns)]
        _ => return Err("a reply of a type this client does not know".to_string()),
    })
}

/// `{ ok = text }`.
fn status(text: String) -> Value {
    Value::Map(vec![(Value::from("ok"), Value::String(text.into_bytes()))])
}

/// An error reply as Redis writes it: `ERR unknown command ...`, `WRONGTYPE ...`.
pub(crate) fn server_error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(detail) => format!("{} {detail}", e.code()),
        None => e.code().to_string(),
    }
}

/// A client error as the script sees it.
pub(crate) fn error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}

/// The bytes a script may receive in one reply: what its VM may still allocate, at
/// most [`MAX_REPLY_BYTES`].
pub(crate) fn reply_limit(lua: &Lua) -> usize {
    CopyBudget::for_lua(lua).left().min(MAX_REPLY_BYTES)
}

/// One argument of a command: a string, or a number written as Redis's Lua scripting
/// writes it (an integer as an integer, a float in the shortest form that reads back).
pub(crate) fn arg(value: &mlua::Value, budget: &mut CopyBudget, what: &str) -> HostResult<Vec<u8>> {
    let over = |e: luapool::Error| HostError::new(format!("{what}: {e}"));
    budget.charge(ITEM_OVERHEAD).map_err(over)?;
    match value {
        mlua::Value::String(s) => budget.copy(&s.as_bytes()).map_err(over),
        mlua::Value::Integer(i) => Ok(i.to_string().into_bytes()),
        mlua::Value::Number(n) => Ok(number_text(*n).into_bytes()),
        other => Err(HostError::new(format!(
            "{what}: command arguments must be strings or numbers, got {}",
            other.type_name()
        ))),
    }
}

/// A float as an argument: integral ones without a fraction (`2`), others in the
/// shortest form that reads back (`0.1`).
pub(crate) fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replies_convert_as_in_redis_lua() {
        let reply = redis::Value::Array(vec![
            redis::Value::Int(3),
            redis::Value::BulkString(b"x".to_vec()),
            redis::Value::Nil,
            redis::Value::Okay,
        ]);
        assert_eq!(
            to_value(reply, 1000).unwrap(),
            Value::Array(vec![
                Value::Integer(3),
                Value::from("x"),
                Value::Boolean(false),
                Value::Map(vec![(Value::from("ok"), Value::from("OK"))]),
            ])
        );
    }

    #[test]
    fn replies_are_bounded() {
        let big = redis::Value::BulkString(vec![b'a'; 2000]);
        assert!(to_value(big, 1000)
            .unwrap_err()
            .contains("larger than 1000"));
        let mut deep = redis::Value::Int(1);
        for _ in 0..40 {
            deep = redis::Value::Array(vec![deep]);
        }
        assert!(to_value(deep, 1 << 20).unwrap_err().contains("nested"));
        let many = redis::Value::Array(vec![redis::Value::Int(1); 1000]);
        assert!(to_value(many, 1000).is_err());
    }

    #[test]
    fn numbers_are_written_like_redis_lua() {
        assert_eq!(number_text(2.0), "2");
        assert_eq!(number_text(0.5), "0.5");
        assert_eq!(number_text(-1.25), "-1.25");
    }
}
