//! Structured error values: `error({code = 42})` reaches the host as a [`Value`] beside
//! the error's text.
//!
//! The execution's message handler (`interrupt.rs`, which only VMs with limits run)
//! stores a table error object and its text (`__tostring`, run there under the
//! execution's limits) in two registry slots; when the host turns the execution's
//! failure into an [`Error`], it takes them back, keeps the value if the error's message
//! is still that text (a `__close` handler may have replaced the error while the stack
//! unwound), and clears both slots: no value outlives the error it belongs to.

use std::ffi::CStr;

use mlua::Lua;

use crate::error::Error;
use crate::value::Value;

/// The registry slot of the last table error object (`false` when empty).
pub(crate) const VALUE_KEY: &CStr = c"luapool.error_value";
/// The registry slot of its text.
pub(crate) const TEXT_KEY: &CStr = c"luapool.error_text";

/// Creates the two slots (so that the message handler never allocates to set them).
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    for key in [VALUE_KEY, TEXT_KEY] {
        lua.set_named_registry_value(&key.to_string_lossy(), false)?;
    }
    Ok(())
}

/// Attaches the table error object the message handler kept to `err`, if it is the
/// error it was kept for; empties the slots either way.
pub(crate) fn attach(lua: &Lua, err: Error) -> Error {
    let value_key = VALUE_KEY.to_string_lossy();
    let Ok(mlua::Value::Table(table)) = lua.named_registry_value::<mlua::Value>(&value_key) else {
        return err;
    };
    let text_key = TEXT_KEY.to_string_lossy();
    let text = lua.named_registry_value::<mlua::LuaString>(&text_key).ok();
    let _ = lua.set_named_registry_value(&value_key, false);
    let _ = lua.set_named_registry_value(&text_key, false);
    match err {
        Error::Runtime {
            message,
            traceback,
            value: None,
        } if text.is_some_and(|t| *t.as_bytes() == *message.as_bytes()) => {
            // Bounded like every copy out of the VM; a value too big to copy is left out.
            let value = Value::from_lua_bounded(&mlua::Value::Table(table), lua);
            Error::Runtime {
                message,
                traceback,
                value: value.ok().map(Box::new),
            }
        }
        other => other,
    }
}
