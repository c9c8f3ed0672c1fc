//! [`Value`]: a `Send` value for moving arguments and results between threads and VMs.

use mlua::{FromLua, IntoLua, Lua};

use crate::copy_budget::{self, CopyBudget};
use crate::error::Error;

mod serde;
mod table;

pub use self::serde::Serde;

/// Deepest nesting of tables converted from Lua; deeper (or cyclic) tables are an error.
pub(crate) const MAX_DEPTH: usize = 100;
/// Most table entries (all levels together) converted from one Lua value.
pub(crate) const MAX_ITEMS: usize = 1 << 20;

/// A plain Lua value that owns its data and is `Send`: what crosses from one VM or thread
/// to another.
///
/// Tables become [`Value::Array`] when their keys are exactly `1..=n` (or they carry the
/// JSON array marker), [`Value::Map`] otherwise. Converting from Lua never runs a script's
/// metamethods, and stops with an error past [`Value::MAX_DEPTH`] levels or [`Value::MAX_ITEMS`] entries
/// (so cycles are errors too), or with [`Error::CopyLimit`] past its
/// [`CopyBudget`] (the bytes of every string copy, a string referenced twice counting
/// twice, and of the entries). Functions, coroutines and userdata cannot be converted;
/// `json.null` becomes [`Value::Nil`].
///
/// ```
/// use luapool::Value;
///
/// let v = Value::from(serde_json::json!({ "a": [1, 2.5, "x"] }));
/// assert_eq!(v.get("a"), Some(&Value::Array(vec![
///     Value::Integer(1), Value::Number(2.5), Value::from("x"),
/// ])));
/// ```
#[derive(Clone, PartialEq, Default)]
pub enum Value {
    /// `nil`
    #[default]
    Nil,
    /// A boolean.
    Boolean(bool),
    /// A Lua integer.
    Integer(i64),
    /// A Lua float.
    Number(f64),
    /// A Lua string: bytes, not necessarily UTF-8.
    String(Vec<u8>),
    /// A sequence (table with keys `1..=n`).
    Array(Vec<Value>),
    /// Any other table, as key/value pairs in no particular order.
    Map(Vec<(Value, Value)>),
}

impl std::fmt::Debug for Value {
    /// Strings print as text (lossy UTF-8), the rest as usual.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Nil => f.write_str("Nil"),
            Value::Boolean(b) => f.debug_tuple("Boolean").field(b).finish(),
            Value::Integer(i) => f.debug_tuple("Integer").field(i).finish(),
            Value::Number(n) => f.debug_tuple("Number").field(n).finish(),
            Value::String(s) => f
                .debug_tuple("String")
                .field(&String::from_utf8_lossy(s))
                .finish(),
            Value::Array(items) => f.debug_tuple("Array").field(items).finish(),
            Value::Map(pairs) => f.debug_tuple("Map").field(pairs).finish(),
        }
    }
}

impl Value {
    /// Deepest nesting of tables converted from Lua; deeper (or cyclic) tables are an
    /// error.
    pub const MAX_DEPTH: usize = MAX_DEPTH;
    /// Most table entries (all levels together) converted from one Lua value.
    pub const MAX_ITEMS: usize = MAX_ITEMS;

    /// Looks up a string key in a [`Value::Map`]; `None` for other variants.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s == key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string as UTF-8 text, if this is a string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => std::str::from_utf8(s).ok(),
            _ => None,
        }
    }

    /// The integer, if this is an integer (or a float with an exact integer value).
    pub fn as_integer(&self) -> Option<i64> {
        match *self {
            Value::Integer(i) => Some(i),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => Some(n as i64),
            _ => None,
        }
    }

    /// The number as a float, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Integer(i) => Some(i as f64),
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// True for [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Converts a Lua value without running metamethods, within [`Value::MAX_DEPTH`] and
    /// [`Value::MAX_ITEMS`], charging its host copy to the budget of the current call (see
    /// [`CopyBudget`]).
    pub(crate) fn from_lua_bounded(value: &mlua::Value, lua: &Lua) -> Result<Value, Error> {
        // Scalars copy nothing: no budget to look up.
        if let Some(v) = scalar(value) {
            return Ok(v);
        }
        copy_budget::with_budget(lua, |budget| Value::from_lua_within(value, lua, budget))
    }

    /// Converts a Lua value like [`FromLua`] does, charging the bytes it copies (strings,
    /// entries) to `budget`: for host functions that convert several values in one call.
    ///
    /// ```
    /// use luapool::{CopyBudget, Error, Value};
    /// use luapool::mlua::Lua;
    ///
    /// let lua = Lua::new();
    /// let s = luapool::mlua::Value::String(lua.create_string("abcdef")?);
    /// let mut budget = CopyBudget::new(10);
    /// assert_eq!(Value::from_lua_within(&s, &lua, &mut budget)?, Value::from("abcdef"));
    /// assert!(matches!(
    ///     Value::from_lua_within(&s, &lua, &mut budget),
    ///     Err(Error::CopyLimit { limit: 10 })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Conversion`] as for [`FromLua`], [`Error::CopyLimit`] when the budget runs
    /// out.
    pub fn from_lua_within(
        value: &mlua::Value,
        lua: &Lua,
        budget: &mut CopyBudget,
    ) -> Result<Value, Error> {
        let array_mt = lua.app_data_ref::<ArrayMarker>().map(|m| m.0.clone());
        let mut limits = Bounds {
            lua,
            items: MAX_ITEMS,
            bytes: budget,
            array_mt: array_mt.as_ref(),
        };
        convert(value, 0, &mut limits)
    }
}

/// What one conversion may still use.
struct Bounds<'a> {
    /// The state the value belongs to.
    lua: &'a Lua,
    /// Table entries left (of [`Value::MAX_ITEMS`]).
    items: usize,
    /// Host bytes left.
    bytes: &'a mut CopyBudget,
    /// The array marker of the VM, if it has made one.
    array_mt: Option<&'a mlua::Table>,
}

/// The metatable that marks an empty Lua table as an array rather than a map (kept in the
/// VM's app data; set by `json.decode`, `json.array` and on an empty [`Value::Array`]
/// converted into Lua).
pub(crate) struct ArrayMarker(pub(crate) mlua::Table);

impl ArrayMarker {
    /// The marker of `lua`, created on first need (scripts cannot read or replace it:
    /// its `__metatable` is `false`).
    pub(crate) fn get_or_create(lua: &Lua) -> mlua::Result<mlua::Table> {
        if let Some(marker) = lua.app_data_ref::<ArrayMarker>() {
            return Ok(marker.0.clone());
        }
        let marker = lua.create_table_with_capacity(0, 1)?;
        marker.raw_set("__metatable", false)?;
        lua.set_app_data(ArrayMarker(marker.clone()));
        Ok(marker)
    }

    /// Marks the empty table `t` as an array. A table that already has a metatable (a
    /// script's, or a sealed library proxy's) is refused: host code never replaces the
    /// metatable of a table it was given.
    pub(crate) fn mark(lua: &Lua, t: &mlua::Table) -> mlua::Result<()> {
        let marker = ArrayMarker::get_or_create(lua)?;
        match t.metatable() {
            None => t.set_metatable(Some(marker)),
            Some(mt) if mt == marker => Ok(()),
            Some(_) => Err(mlua::Error::runtime(
                "cannot mark a table that has a metatable as a JSON array",
            )),
        }
    }
}

/// The value of a Lua scalar (which copies nothing); `None` for anything else.
fn scalar(value: &mlua::Value) -> Option<Value> {
    Some(match value {
        mlua::Value::Nil => Value::Nil,
        mlua::Value::Boolean(b) => Value::Boolean(*b),
        mlua::Value::Integer(i) => Value::Integer(*i),
        mlua::Value::Number(n) => Value::Number(*n),
        mlua::Value::LightUserData(p) if p.0.is_null() => Value::Nil,
        _ => return None,
    })
}

fn convert(value: &mlua::Value, depth: usize, bounds: &mut Bounds<'_>) -> Result<Value, Error> {
    if let Some(v) = scalar(value) {
        return Ok(v);
    }
    Ok(match value {
        mlua::Value::String(s) => Value::String(bounds.bytes.copy(&s.as_bytes())?),
        mlua::Value::Table(t) => return table::convert(bounds.lua, t, depth, bounds),
        other => {
            return Err(Error::conversion(format!(
                "a Lua {} cannot be converted to a luapool::Value",
                other.type_name()
            )))
        }
    })
}

impl FromLua for Value {
    fn from_lua(value: mlua::Value, lua: &Lua) -> mlua::Result<Self> {
        Value::from_lua_bounded(&value, lua).map_err(mlua::Error::external)
    }
}

impl IntoLua for Value {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        Ok(match self {
            Value::Nil => mlua::Value::Nil,
            Value::Boolean(b) => mlua::Value::Boolean(b),
            Value::Integer(i) => mlua::Value::Integer(i),
            Value::Number(n) => mlua::Value::Number(n),
            Value::String(s) => mlua::Value::String(lua.create_string(s)?),
            Value::Array(items) => {
                let t = lua.create_table_with_capacity(items.len(), 0)?;
                for (i, v) in items.into_iter().enumerate() {
                    t.raw_set(i + 1, v)?;
                }
                if t.raw_len() == 0 {
                    ArrayMarker::mark(lua, &t)?;
                }
                mlua::Value::Table(t)
            }
            Value::Map(pairs) => {
                let t = lua.create_table_with_capacity(0, pairs.len())?;
                for (k, v) in pairs {
                    if k.is_nil() {
                        return Err(mlua::Error::runtime("a luapool::Value map has a nil key"));
                    }
                    t.raw_set(k, v)?;
                }
                mlua::Value::Table(t)
            }
        })
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into_bytes())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Boolean(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s.into_bytes()),
            serde_json::Value::Array(items) => {
                Value::Array(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => Value::Map(
                map.into_iter()
                    .map(|(k, v)| (Value::String(k.into_bytes()), Value::from(v)))
                    .collect(),
            ),
        }
    }
}

impl TryFrom<Value> for serde_json::Value {
    type Error = Error;

    /// Converts to JSON. Strings must be UTF-8, map keys strings or numbers, numbers
    /// finite; `nil` becomes `null`.
    fn try_from(value: Value) -> Result<Self, Error> {
        Ok(match value {
            Value::Nil => serde_json::Value::Null,
            Value::Boolean(b) => serde_json::Value::Bool(b),
            Value::Integer(i) => serde_json::Value::from(i),
            Value::Number(n) => serde_json::Number::from_f64(n)
                .map(serde_json::Value::Number)
                .ok_or_else(|| Error::conversion(format!("number {n} has no JSON form")))?,
            Value::String(s) => serde_json::Value::String(
                String::from_utf8(s).map_err(|_| Error::conversion("string is not valid UTF-8"))?,
            ),
            Value::Array(items) => serde_json::Value::Array(
                items
                    .into_iter()
                    .map(serde_json::Value::try_from)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(pairs) => {
                let mut map = serde_json::Map::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let key = match k {
                        Value::String(s) => String::from_utf8(s)
                            .map_err(|_| Error::conversion("map key is not valid UTF-8"))?,
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => n.to_string(),
                        Value::Boolean(b) => b.to_string(),
                        _ => return Err(Error::conversion("map key cannot be a JSON object key")),
                    };
                    map.insert(key, serde_json::Value::try_from(v)?);
                }
                serde_json::Value::Object(map)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let json = serde_json::json!({"a": [1, 2, {"b": null}], "c": "d", "e": 1.5});
        let v = Value::from(json.clone());
        assert_eq!(serde_json::Value::try_from(v).ok(), Some(json));
    }

    #[test]
    fn non_utf8_string_is_not_json() {
        let v = Value::String(vec![0xff]);
        assert!(matches!(
            serde_json::Value::try_from(v),
            Err(Error::Conversion { .. })
        ));
    }

    #[test]
    fn value_is_send() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Value>();
    }
}
