//! `json.decode`: JSON text straight into Lua values, with no `serde_json::Value` in
//! between, so the host holds no copy of the document (only of one string or key at a
//! time) and every byte the result takes is Lua's, under the VM's memory limit.

use std::cell::RefCell;
use std::fmt;

use mlua::{Lua, Value as LuaValue};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

use crate::value::ArrayMarker;

/// Decodes `text`: `null` becomes `json.null` (so object keys and array slots survive),
/// empty arrays carry the array marker, integers that fit an `i64` are integers.
pub(super) fn decode(lua: &Lua, text: &[u8]) -> mlua::Result<LuaValue> {
    let failed = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(text);
    let result = Seed {
        lua,
        failed: &failed,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match (result, failed.into_inner()) {
        (Ok(value), _) => Ok(value),
        // A Lua error (out of memory) keeps its kind, so the memory limit sees it.
        (Err(_), Some(lua_error)) => Err(lua_error),
        (Err(e), None) => Err(mlua::Error::runtime(format!("json.decode: {e}"))),
    }
}

/// Builds one Lua value; remembers the first Lua error.
#[derive(Clone, Copy)]
struct Seed<'a> {
    lua: &'a Lua,
    failed: &'a RefCell<Option<mlua::Error>>,
}

impl Seed<'_> {
    /// `result`, with a Lua error kept aside and replaced by a serde error.
    fn lua<T, E: serde::de::Error>(&self, result: mlua::Result<T>) -> Result<T, E> {
        result.map_err(|e| {
            let message = e.to_string();
            self.failed.borrow_mut().get_or_insert(e);
            E::custom(message)
        })
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = LuaValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<LuaValue, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = LuaValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<LuaValue, E> {
        Ok(LuaValue::NULL)
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<LuaValue, E> {
        Ok(LuaValue::Boolean(b))
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<LuaValue, E> {
        Ok(LuaValue::Integer(i))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<LuaValue, E> {
        match i64::try_from(u) {
            Ok(i) => self.visit_i64(i),
            Err(_) => self.visit_f64(u as f64),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<LuaValue, E> {
        Ok(LuaValue::Number(n))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<LuaValue, E> {
        self.lua(self.lua.create_string(s).map(LuaValue::String))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LuaValue, A::Error> {
        let t = self.lua(self.lua.create_table())?;
        let mut n = 0;
        while let Some(item) = seq.next_element_seed(self)? {
            n += 1;
            self.lua(t.raw_set(n, item))?;
        }
        if n == 0 {
            self.lua(ArrayMarker::mark(self.lua, &t))?;
        }
        Ok(LuaValue::Table(t))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LuaValue, A::Error> {
        let t = self.lua(self.lua.create_table())?;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value = map.next_value_seed(self)?;
            let key = self.lua(self.lua.create_string(key.as_bytes()))?;
            self.lua(t.raw_set(key, value))?;
        }
        Ok(LuaValue::Table(t))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_the_serde_json_value_path() {
        let lua = Lua::new();
        let text =
            r#"{"a":[1,2.5,"x\n",null,true,[]],"b":{},"big":18446744073709551615,"a":"last"}"#;
        let v = decode(&lua, text.as_bytes()).unwrap();
        let t = v.as_table().unwrap();
        assert_eq!(t.raw_get::<String>("a").unwrap(), "last");
        assert_eq!(t.raw_get::<f64>("big").unwrap(), 18446744073709551615.0);
        let nested = decode(&lua, br#"[1,2.5,"x\n",null,true,[]]"#).unwrap();
        let nested = nested.as_table().unwrap();
        assert_eq!(nested.raw_len(), 6);
        assert_eq!(nested.raw_get::<LuaValue>(4).unwrap(), LuaValue::NULL);
        assert!(decode(&lua, b"[1,").is_err());
        assert!(decode(&lua, b"1 2").is_err());
    }

    #[test]
    fn a_memory_error_keeps_its_kind() {
        let lua = Lua::new();
        lua.set_memory_limit(lua.used_memory() + 100_000).unwrap();
        let text = format!("[{}]", vec!["\"0123456789abcdef\""; 100_000].join(","));
        assert!(matches!(
            decode(&lua, text.as_bytes()),
            Err(mlua::Error::MemoryError(_))
        ));
    }
}
