//! Typed data through serde: [`Value::from_serialize`], [`Value::deserialize`], and
//! [`Serde`], which carries any serde type in and out of a VM as one Lua value.

use mlua::{FromLua, IntoLua, Lua};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Value;
use crate::error::{Error, Result};

impl Value {
    /// Converts any serializable Rust value (through its JSON data model: structs and
    /// maps become [`Value::Map`], sequences [`Value::Array`], `None` and `()`
    /// [`Value::Nil`]).
    ///
    /// ```
    /// #[derive(serde::Serialize)]
    /// struct Order { id: u32, items: Vec<&'static str> }
    ///
    /// let v = luapool::Value::from_serialize(&Order { id: 7, items: vec!["tea"] })?;
    /// assert_eq!(v.get("id"), Some(&luapool::Value::Integer(7)));
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Conversion`] if the value cannot be serialized (e.g. a map with non-string
    /// keys).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
        serde_json::to_value(value)
            .map(Value::from)
            .map_err(|e| Error::conversion(format!("cannot serialize the value: {e}")))
    }

    /// Converts to any deserializable Rust type (through the JSON data model: strings
    /// must be UTF-8; an integer-valued float does not become an integer).
    ///
    /// ```
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Verdict { allow: bool, reason: String }
    ///
    /// let v = luapool::Value::from(serde_json::json!({ "allow": false, "reason": "quota" }));
    /// let verdict: Verdict = v.deserialize()?;
    /// assert_eq!(verdict, Verdict { allow: false, reason: "quota".into() });
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Conversion`] naming what did not match.
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T> {
        let json = serde_json::Value::try_from(self)?;
        serde_json::from_value(json).map_err(|e| Error::conversion(e.to_string()))
    }

    /// Converts an execution's results to `T`: no result is `nil`, one result is itself,
    /// several are a sequence (a tuple or a `Vec`).
    pub(crate) fn deserialize_results<T: DeserializeOwned>(mut results: Vec<Value>) -> Result<T> {
        let value = match results.len() {
            0 => Value::Nil,
            1 => results.pop().unwrap_or_default(),
            _ => Value::Array(results),
        };
        value.deserialize()
    }
}

/// Any serde type as one Lua value, for [`Vm`](crate::Vm)'s typed calls and host
/// functions: `Serde<T>` converts into Lua when `T: Serialize` and from Lua when
/// `T: DeserializeOwned`, going through [`Value`] (so the copy out of the VM is bounded
/// like every other, and no metamethod runs).
///
/// ```
/// use luapool::{Script, Serde, Vm, VmConfig};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize)]
/// struct Order { total: f64, country: String }
/// #[derive(Deserialize, Debug, PartialEq)]
/// struct Verdict { allow: bool, fee: f64 }
///
/// let vm = Vm::new(VmConfig::default())?;
/// vm.register("tax_rate", |Serde(country): Serde<String>| {
///     Ok(if country == "FR" { 0.2 } else { 0.0 })
/// })?;
/// let rules = Script::new("rules.lua", r#"
///     function decide(order)
///         return { allow = order.total < 1000, fee = order.total * tax_rate(order.country) }
///     end
/// "#);
/// let order = Order { total: 50.0, country: "FR".into() };
/// let Serde(verdict): Serde<Verdict> = vm.call_in(&rules, "decide", Serde(order))?;
/// assert_eq!(verdict, Verdict { allow: true, fee: 10.0 });
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Serde<T>(pub T);

impl<T: Serialize> IntoLua for Serde<T> {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        Value::from_serialize(&self.0)
            .map_err(mlua::Error::external)?
            .into_lua(lua)
    }
}

impl<T: DeserializeOwned> FromLua for Serde<T> {
    fn from_lua(value: mlua::Value, lua: &Lua) -> mlua::Result<Self> {
        Value::from_lua_bounded(&value, lua)
            .and_then(Value::deserialize)
            .map(Serde)
            .map_err(mlua::Error::external)
    }
}
