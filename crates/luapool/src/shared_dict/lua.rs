//! The Lua side of shared dictionaries: the sealed `shared` table and one sealed object
//! per dictionary, whose methods are host functions (so their errors name the script
//! line).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use mlua::{Lua, MultiValue, Table, Value};

use super::{DictErrorKind, DictNumber, DictValue, SharedDict, SharedDicts};
use crate::copy_budget::CopyBudget;
use crate::sandbox::{host_function, seal, SandboxData};
use crate::value::ArrayMarker;

/// Longest key accepted from scripts, in bytes (OpenResty's limit).
const MAX_KEY_LEN: usize = 65535;
/// How many keys `d:keys()` returns without a `max` (OpenResty's default).
const DEFAULT_MAX_KEYS: usize = 1024;

/// Installs `dicts` as the global and built-in module `shared`, replacing any earlier one.
pub(crate) fn install(lua: &Lua, data: &SandboxData, dicts: &SharedDicts) -> mlua::Result<()> {
    let table = lua.create_table_with_capacity(0, dicts.len())?;
    for dict in dicts.iter() {
        table.raw_set(dict.name(), dict_object(lua, data, dict)?)?;
    }
    for backend in dicts.backends() {
        let label = format!("shared.{}", backend.name);
        let methods = lua.create_table_with_capacity(0, backend.functions.len())?;
        for (name, make) in &backend.functions {
            methods.raw_set(name.as_str(), data.wrap_host(lua, make(lua)?)?)?;
        }
        let this = seal::seal(lua, methods, &label, data.reject(lua)?)?;
        table.raw_set(backend.name.as_str(), this)?;
    }
    // A dictionary that was not configured is an error that says how to configure it,
    // not a `nil` that fails later as "attempt to index a nil value".
    let missing = lua.create_table_with_capacity(0, 1)?;
    missing.raw_set(
        "__index",
        data.wrap_host(
            lua,
            host_function(lua, |_, (_, key): (Value, Value)| -> mlua::Result<()> {
                let name = match &key {
                    Value::String(s) => s.to_string_lossy(),
                    other => other.type_name().to_string(),
                };
                Err(mlua::Error::runtime(format!(
                    "shared dictionary '{name}' is not configured (luapool serve: \
                 --shared-dict {name}=CAPACITY or [shared_dicts] in luapool.toml; \
                 embedders: SharedDicts::new)"
                )))
            })?,
        )?,
    )?;
    table.set_metatable(Some(missing))?;
    data.install_module(lua, "shared", table)?;
    Ok(())
}

/// What every method of one dictionary object knows.
struct Method {
    dict: SharedDict,
    /// The object scripts call the method on (`self` of a colon call).
    this: Table,
    /// `shared.<name>:<method>`, for error messages.
    what: String,
}

/// A sealed object whose methods act on `dict`.
fn dict_object(lua: &Lua, data: &SandboxData, dict: &SharedDict) -> mlua::Result<Table> {
    let label = format!("shared.{}", dict.name());
    let methods = lua.create_table_with_capacity(0, 6)?;
    let this = seal::seal(lua, methods.clone(), &label, data.reject(lua)?)?;
    let method = |name: &str| {
        Rc::new(Method {
            dict: dict.clone(),
            this: this.clone(),
            what: format!("{label}:{name}"),
        })
    };
    let add_method = |name: &str, f: mlua::Function| -> mlua::Result<()> {
        methods.raw_set(name, data.wrap_host(lua, f)?)
    };

    let m = method("get");
    add_method(
        "get",
        host_function(lua, move |lua, args: MultiValue| {
            let mut args = m.args(args)?;
            let key = m.key(lua, args.next())?;
            match m.dict.get(&key) {
                Some(value) => to_lua(lua, value),
                None => Ok(Value::Nil),
            }
        })?,
    )?;

    let m = method("set");
    add_method(
        "set",
        host_function(lua, move |lua, args: MultiValue| {
            let mut args = m.args(args)?;
            let key = m.key(lua, args.next())?;
            let value = args.next().unwrap_or(Value::Nil);
            let ttl = m.ttl(args.next())?;
            if value.is_nil() {
                m.dict.delete(&key);
                return Ok(MultiValue::from_iter([Value::Boolean(true)]));
            }
            if m.too_large(&value) {
                return m.outcome(lua, Err(m.dict.error(&key, DictErrorKind::TooLarge)));
            }
            let stored = m.dict.set(&key, m.value(value)?, ttl);
            m.outcome(lua, stored.map(|()| true))
        })?,
    )?;

    let m = method("add");
    add_method(
        "add",
        host_function(lua, move |lua, args: MultiValue| {
            let mut args = m.args(args)?;
            let key = m.key(lua, args.next())?;
            let value = args.next().unwrap_or(Value::Nil);
            if m.too_large(&value) {
                return m.outcome(lua, Err(m.dict.error(&key, DictErrorKind::TooLarge)));
            }
            let value = m.value(value)?;
            let ttl = m.ttl(args.next())?;
            match m.dict.add(&key, value, ttl) {
                Ok(false) => Ok(MultiValue::from_iter([
                    Value::Boolean(false),
                    Value::String(lua.create_string("exists")?),
                ])),
                other => m.outcome(lua, other),
            }
        })?,
    )?;

    let m = method("incr");
    add_method(
        "incr",
        host_function(lua, move |lua, args: MultiValue| {
            let mut args = m.args(args)?;
            let key = m.key(lua, args.next())?;
            let by = m.number(args.next(), "n")?;
            let init = match args.next() {
                None | Some(Value::Nil) => None,
                other => Some(m.number(other, "init")?),
            };
            match m.dict.incr(&key, by, init) {
                Ok(sum) => Ok(MultiValue::from_iter([to_lua(lua, sum.into())?])),
                Err(crate::Error::SharedDict { reason, .. }) => Ok(MultiValue::from_iter([
                    Value::Nil,
                    Value::String(lua.create_string(reason.to_string())?),
                ])),
                Err(e) => Err(mlua::Error::runtime(e.to_string())),
            }
        })?,
    )?;

    let m = method("delete");
    add_method(
        "delete",
        host_function(lua, move |lua, args: MultiValue| {
            let mut args = m.args(args)?;
            let key = m.key(lua, args.next())?;
            m.dict.delete(&key);
            Ok(())
        })?,
    )?;

    let m = method("keys");
    add_method(
        "keys",
        host_function(lua, move |lua, args: MultiValue| {
            let mut args = m.args(args)?;
            let max = match args.next() {
                None | Some(Value::Nil) => DEFAULT_MAX_KEYS,
                Some(value) => {
                    let n = match value {
                        Value::Integer(n) => Some(n),
                        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e18 => Some(n as i64),
                        _ => None,
                    };
                    match n {
                        Some(0) => usize::MAX,
                        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
                        _ => {
                            return Err(m.fail(format!(
                                "max must be a non-negative integer, got {}",
                                match value {
                                    Value::Integer(_) | Value::Number(_) => lua_text(lua, &value)?,
                                    other => other.type_name().to_string(),
                                }
                            )))
                        }
                    }
                }
            };
            let keys = m.dict.keys(max);
            let t = lua.create_table_with_capacity(keys.len(), 0)?;
            for (i, key) in keys.into_iter().enumerate() {
                t.raw_set(i + 1, key)?;
            }
            if t.raw_len() == 0 {
                ArrayMarker::mark(lua, &t)?;
            }
            Ok(t)
        })?,
    )?;

    Ok(this)
}

impl Method {
    /// `true`, or `false, reason` when the dictionary refused the value (too large).
    fn outcome(&self, lua: &Lua, result: crate::Result<bool>) -> mlua::Result<MultiValue> {
        match result {
            Ok(done) => Ok(MultiValue::from_iter([Value::Boolean(done)])),
            Err(crate::Error::SharedDict { reason, .. }) => Ok(MultiValue::from_iter([
                Value::Boolean(false),
                Value::String(lua.create_string(reason.to_string())?),
            ])),
            Err(e) => Err(mlua::Error::runtime(e.to_string())),
        }
    }

    fn fail(&self, message: impl std::fmt::Display) -> mlua::Error {
        mlua::Error::runtime(format!("{}: {message}", self.what))
    }

    /// The arguments after `self`, once `self` is checked to be this dictionary's object.
    fn args(&self, args: MultiValue) -> mlua::Result<std::vec::IntoIter<Value>> {
        let mut args = args.into_vec().into_iter();
        match args.next() {
            Some(Value::Table(t)) if t == self.this => Ok(args),
            _ => Err(self.fail(format!("call it with a colon ({}(...))", self.what))),
        }
    }

    /// A key: a non-empty string of at most [`MAX_KEY_LEN`] bytes of UTF-8, or a number
    /// (converted like `tostring` does).
    fn key(&self, lua: &Lua, key: Option<Value>) -> mlua::Result<String> {
        let key = match key.unwrap_or(Value::Nil) {
            Value::String(s) => match s.to_str() {
                Ok(s) => s.to_string(),
                Err(_) => return Err(self.fail("key must be valid UTF-8")),
            },
            number @ (Value::Integer(_) | Value::Number(_)) => lua_text(lua, &number)?,
            other => {
                return Err(self.fail(format!("key must be a string, got {}", other.type_name())))
            }
        };
        if key.is_empty() {
            return Err(self.fail("key must not be empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(self.fail(format!("key is longer than {MAX_KEY_LEN} bytes")));
        }
        Ok(key)
    }

    /// True for a string longer than the dictionary takes: refused before it is copied.
    fn too_large(&self, value: &Value) -> bool {
        matches!(value, Value::String(s) if s.as_bytes().len() > self.dict.max_value_bytes())
    }

    /// A value to store.
    fn value(&self, value: Value) -> mlua::Result<DictValue> {
        Ok(match value {
            Value::String(s) => DictValue::String(Arc::from(&s.as_bytes()[..])),
            Value::Integer(i) => DictValue::Integer(i),
            Value::Number(n) => DictValue::Number(n),
            Value::Boolean(b) => DictValue::Boolean(b),
            other => {
                return Err(self.fail(format!(
                    "value must be a string, number or boolean, got {}",
                    other.type_name()
                )))
            }
        })
    }

    /// A time to live in seconds: `nil` or `0` for none.
    fn ttl(&self, ttl: Option<Value>) -> mlua::Result<Option<Duration>> {
        let seconds = match ttl {
            None | Some(Value::Nil) => return Ok(None),
            Some(Value::Integer(i)) => i as f64,
            Some(Value::Number(n)) => n,
            Some(other) => {
                return Err(self.fail(format!(
                    "ttl must be a number of seconds, got {}",
                    other.type_name()
                )))
            }
        };
        if seconds == 0.0 {
            return Ok(None);
        }
        match Duration::try_from_secs_f64(seconds) {
            Ok(ttl) => Ok(Some(ttl)),
            Err(_) => Err(self.fail(format!(
                "ttl must be a non-negative number of seconds, got {seconds}"
            ))),
        }
    }

    /// A number argument of `incr`.
    fn number(&self, value: Option<Value>, name: &str) -> mlua::Result<DictNumber> {
        match value.unwrap_or(Value::Nil) {
            Value::Integer(i) => Ok(DictNumber::Integer(i)),
            Value::Number(n) => Ok(DictNumber::Number(n)),
            other => Err(self.fail(format!(
                "{name} must be a number, got {}",
                other.type_name()
            ))),
        }
    }
}

/// `value` as `tostring` shows it, for error messages.
fn lua_text(lua: &Lua, value: &Value) -> mlua::Result<String> {
    let mut text = Vec::new();
    SandboxData::get(lua)?.push_tostring(&mut text, value, &mut CopyBudget::for_lua(lua))?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

fn to_lua(lua: &Lua, value: DictValue) -> mlua::Result<Value> {
    Ok(match value {
        DictValue::String(s) => Value::String(lua.create_string(&*s)?),
        DictValue::Integer(i) => Value::Integer(i),
        DictValue::Number(n) => Value::Number(n),
        DictValue::Boolean(b) => Value::Boolean(b),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use crate::shared_dict::{Clock, SharedDictConfig, SharedDicts};
    use crate::{Script, Value, Vm, VmConfig};

    fn run(vm: &Vm, source: &str) -> Vec<Value> {
        vm.exec(&Script::new("t.lua", source)).unwrap()
    }

    #[test]
    fn scripts_see_entries_expire_on_the_dict_clock() {
        let clock = Clock::manual();
        let dicts =
            SharedDicts::with_clock(&[SharedDictConfig::new("c", 10)], clock.clone()).unwrap();
        let vm = Vm::new(VmConfig::default()).unwrap();
        vm.register_shared_dicts(&dicts).unwrap();
        run(
            &vm,
            "shared.c:set('k', 'v', 0.5) shared.c:add('a', 1, 2) shared.c:set('f', 0, 0)",
        );
        clock.advance(Duration::from_millis(499));
        assert_eq!(run(&vm, "return shared.c:get('k')"), vec![Value::from("v")]);
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            run(
                &vm,
                "return shared.c:get('k'), shared.c:add('k', 'again'), shared.c:get('a')"
            ),
            vec![Value::Nil, Value::Boolean(true), Value::Integer(1)]
        );
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            run(
                &vm,
                "local n, err = shared.c:incr('a', 1)
                 return shared.c:get('a'), n, err, table.concat(shared.c:keys(), ',')"
            ),
            vec![
                Value::Nil,
                Value::Nil,
                Value::from("not found"),
                Value::from("k,f")
            ]
        );
    }

    #[test]
    fn an_empty_key_list_is_an_array() {
        let dicts = SharedDicts::new([("c", 10)]).unwrap();
        let vm = Vm::new(VmConfig::default()).unwrap();
        vm.register_shared_dicts(&dicts).unwrap();
        assert_eq!(
            run(&vm, "return json.encode(shared.c:keys())"),
            vec![Value::from("[]")]
        );
    }
}
