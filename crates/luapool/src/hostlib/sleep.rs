//! `sleep(seconds)`.

use std::time::Duration;

use mlua::{Function, Lua, MultiValue};

use crate::sandbox::host_result;

/// Longest sleep accepted (a day): longer ones are almost surely unit mistakes.
const MAX_SLEEP_SECS: f64 = 86_400.0;

pub(super) fn sleep_function(lua: &Lua) -> mlua::Result<Function> {
    // mlua's async wrapper must get the engine's own `yield` (see `with_real_coroutine`).
    crate::sandbox::with_real_coroutine(lua, || {
        lua.create_async_function(|lua, args: MultiValue| async move {
            let result = async {
                crate::sandbox::refuse_while_closing()?;
                let seconds: f64 = mlua::FromLuaMulti::from_lua_multi(args, &lua)?;
                if !(0.0..=MAX_SLEEP_SECS).contains(&seconds) {
                    return Err(mlua::Error::runtime(format!(
                        "sleep: seconds must be between 0 and {MAX_SLEEP_SECS}, got {seconds}"
                    )));
                }
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(mlua::Error::runtime(
                        "sleep: needs an async execution on a tokio runtime",
                    ));
                }
                tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                Ok(())
            }
            .await;
            host_result(&lua, result)
        })
    })
}
