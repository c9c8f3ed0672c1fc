//! `json.encode`: a [`Value`] written straight to JSON text, every output byte charged to
//! the call's [`CopyBudget`] (no intermediate `serde_json::Value`).

use std::io::Write;

use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::copy_budget::CopyBudget;
use crate::error::Error;
use crate::value::Value;

/// Encodes `value` as JSON, with the rules of `TryFrom<Value> for serde_json::Value`:
/// strings must be UTF-8, numbers finite, map keys strings, numbers or booleans; map keys
/// come out sorted.
pub(super) fn encode(value: &Value, budget: &mut CopyBudget) -> Result<Vec<u8>, Error> {
    let mut out = Charged {
        out: Vec::new(),
        budget,
        exceeded: None,
    };
    // serde_json writes a token at a time: buffered, the budget is charged per chunk
    // (the text never grows past the budget; the chunk buffer is a fixed extra).
    let mut buffered = std::io::BufWriter::with_capacity(CHUNK, &mut out);
    let written = serde_json::to_writer(&mut buffered, &Json(value))
        .and_then(|()| buffered.flush().map_err(serde_json::Error::io));
    drop(buffered);
    match written {
        Ok(()) => Ok(out.out),
        Err(e) => Err(out.exceeded.take().unwrap_or_else(|| Error::Conversion {
            message: e.to_string(),
        })),
    }
}

/// Bytes of JSON text charged to the budget at a time.
const CHUNK: usize = 1024;

/// A writer into a buffer that charges every byte to a budget.
struct Charged<'a> {
    out: Vec<u8>,
    budget: &'a mut CopyBudget,
    /// The budget's error, once it ran out.
    exceeded: Option<Error>,
}

impl Write for Charged<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.budget.extend(&mut self.out, buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                let message = e.to_string();
                self.exceeded = Some(e);
                Err(std::io::Error::other(message))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A [`Value`] seen as JSON.
struct Json<'a>(&'a Value);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Nil => s.serialize_unit(),
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::Integer(i) => s.serialize_i64(*i),
            Value::Number(n) if n.is_finite() => s.serialize_f64(*n),
            Value::Number(n) => Err(S::Error::custom(format!("number {n} has no JSON form"))),
            Value::String(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => s.serialize_str(text),
                Err(_) => Err(S::Error::custom("string is not valid UTF-8")),
            },
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Json(item))?;
                }
                seq.end()
            }
            Value::Map(pairs) => {
                let mut entries = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    entries.push((key(k).map_err(S::Error::custom)?, v));
                }
                // Sorted, and the last of equal keys wins, as in a `serde_json::Map`.
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut map = s.serialize_map(None)?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if entries.get(i + 1).is_some_and(|next| next.0 == *k) {
                        continue;
                    }
                    map.serialize_entry(k.as_ref(), &Json(v))?;
                }
                map.end()
            }
        }
    }
}

/// A map key as JSON object key text.
fn key(k: &Value) -> Result<std::borrow::Cow<'_, str>, &'static str> {
    Ok(match k {
        Value::String(s) => std::borrow::Cow::Borrowed(
            std::str::from_utf8(s).map_err(|_| "map key is not valid UTF-8")?,
        ),
        Value::Integer(i) => i.to_string().into(),
        Value::Number(n) => n.to_string().into(),
        Value::Boolean(b) => b.to_string().into(),
        _ => return Err("map key cannot be a JSON object key"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(v: &Value) -> String {
        String::from_utf8(encode(v, &mut CopyBudget::new(1 << 20)).unwrap()).unwrap()
    }

    #[test]
    fn matches_serde_json_value() {
        let json = serde_json::json!({"b": [1, 2.5, 2.0, {"x": null}], "a": "é\n", "c": true});
        let v = Value::from(json.clone());
        assert_eq!(text(&v), serde_json::to_string(&json).unwrap());
        let dup = Value::Map(vec![
            (Value::Integer(1), Value::from("int")),
            (Value::from("1"), Value::from("str")),
        ]);
        let expected = serde_json::to_string(&serde_json::Value::try_from(dup.clone()).unwrap());
        assert_eq!(text(&dup), expected.unwrap());
    }

    #[test]
    fn output_is_charged() {
        let v = Value::from("x".repeat(100));
        assert!(matches!(
            encode(&v, &mut CopyBudget::new(50)),
            Err(Error::CopyLimit { limit: 50 })
        ));
        assert!(matches!(
            encode(&Value::Number(f64::NAN), &mut CopyBudget::new(50)),
            Err(Error::Conversion { .. })
        ));
    }
}
