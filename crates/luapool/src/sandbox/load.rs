//! The sandbox's `load`: text chunks only, with the caller's environment by default.

use mlua::ffi;
use mlua::{Function, Lua, LuaString, MultiValue, Table, Value};

use super::{host_function, SandboxData};

/// How far up the stack `load` looks for the caller's `_ENV`.
const MAX_STACK_SEARCH: usize = 64;

/// Creates the sandboxed `load(chunk [, chunkname [, mode [, env]]])`.
///
/// It takes its arguments as Lua's `load` does: a string chunk (a number is converted to
/// one), or a reader function whose chunk is named `=(load)` by default; any string as
/// chunk name; any value as `env`, an explicit `nil` included (Lua 5.4, 5.5: the chunk's
/// `_ENV` is that value; LuaJIT, like its own `load`, ignores an `env` that is not a
/// table). Binary chunks are refused whatever `mode` says. Without an `env` argument the
/// chunk gets the environment of the Lua function that called `load` (its `_ENV`
/// upvalue), so a chunk loaded during an execution sees that execution's globals and
/// nothing else. A chunk that does not compile, a reader that raises or returns a
/// non-string: `nil` and a message, as in Lua.
///
/// The engine compiles the chunk (through the shim's `compile`): the source stays in
/// Lua memory, where the memory limit counts it, whether it is a string or the pieces a
/// reader function returns, and the compiler reads it from a Lua function, where the
/// execution's CPU limit and timeout can stop it.
pub(crate) fn load_function(lua: &Lua) -> mlua::Result<Function> {
    host_function(lua, |lua, args: MultiValue| {
        let present = args.len();
        let mut args = args.into_iter();
        let chunk = args.next().unwrap_or(Value::Nil);
        let chunkname = args.next().unwrap_or(Value::Nil);
        let mode = args.next().unwrap_or(Value::Nil);
        let env = args.next();

        // Checked in Lua's order: the mode, the chunk name, the chunk.
        let mode = optional_string(lua, 3, mode)?;
        let (chunk, default_name) = match lua.coerce_string(chunk.clone())? {
            Some(s) => (Value::String(s.clone()), s),
            None => (chunk, lua.create_string("=(load)")?),
        };
        let name = optional_string(lua, 2, chunkname)?.unwrap_or(default_name);
        match &chunk {
            Value::String(s) if s.as_bytes().first() == Some(&0x1b) => {
                return fail(lua, super::shim::BINARY)
            }
            Value::String(_) | Value::Function(_) => {}
            other => {
                let got = if present == 0 {
                    "no value"
                } else {
                    type_name(other)
                };
                return Err(argument_error(1, "function", got));
            }
        }
        if let Some(mode) = mode.filter(|m| !m.as_bytes().contains(&b't')) {
            return wrong_mode(lua, &mode);
        }
        let (env, nil_env) = chunk_env(lua, env)?;
        let data = SandboxData::get(lua)?;
        let loaded: MultiValue = data
            .shim(lua)?
            .compile
            .call((chunk, name, env, nil_env))
            .map_err(|e| match e {
                // The call's own message handler found no stack left for the traceback
                // of a stack overflow.
                mlua::Error::RuntimeError(m) if m.contains("error in error handling") => {
                    mlua::Error::runtime("stack overflow")
                }
                other => other,
            })?;
        // The engine's `load` reports a memory error as `nil, message`: the limit holds
        // anyway.
        if let (Some(Value::Nil), Some(Value::String(m))) = (loaded.front(), loaded.get(1)) {
            if m.as_bytes().starts_with(b"not enough memory") {
                crate::limits::trip_memory_soon();
            }
        }
        Ok(loaded)
    })
}

/// An optional string argument of `load` (Lua's `luaL_optstring`): `None` for `nil`, a
/// number converted to a string, an argument error for any other value.
fn optional_string(lua: &Lua, n: u8, value: Value) -> mlua::Result<Option<LuaString>> {
    if value.is_nil() {
        return Ok(None);
    }
    let got = type_name(&value);
    match lua.coerce_string(value)? {
        Some(s) => Ok(Some(s)),
        None => Err(argument_error(n, "string", got)),
    }
}

/// The environment the chunk gets, and whether it is an explicit `nil`: the `env`
/// argument when there is one, else the caller's.
fn chunk_env(lua: &Lua, env: Option<Value>) -> mlua::Result<(Value, bool)> {
    match env {
        None => Ok((Value::Table(caller_env(lua)?), false)),
        // LuaJIT's `load` ignores an environment that is not a table.
        Some(other) if crate::engine::LUAJIT && !other.is_table() => {
            Ok((Value::Table(caller_env(lua)?), false))
        }
        Some(Value::Nil) => Ok((Value::Nil, true)),
        Some(env) => Ok((env, false)),
    }
}

/// Lua's argument error of `load`.
fn argument_error(n: u8, expected: &str, got: &str) -> mlua::Error {
    mlua::Error::runtime(format!(
        "bad argument #{n} to 'load' ({expected} expected, got {got})"
    ))
}

/// The type name Lua's messages use for `value` ("number" for integers and floats).
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) | Value::Number(_) => "number",
        Value::LightUserData(_) => "light userdata",
        other => other.type_name(),
    }
}

/// Lua's `nil, message` for a text chunk that `mode` does not allow. The message is made
/// by the engine's `string.format`, in Lua memory: `mode` is script data of any size.
fn wrong_mode(lua: &Lua, mode: &LuaString) -> mlua::Result<MultiValue> {
    let string: Table = lua.globals().raw_get("string")?;
    let format: Function = string.raw_get("format")?;
    let message: LuaString = format.call(("attempt to load a text chunk (mode is '%s')", mode))?;
    Ok(MultiValue::from_iter([Value::Nil, Value::String(message)]))
}

/// `nil, message`: how `load` reports a chunk it will not load.
fn fail(lua: &Lua, message: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Nil,
        Value::String(lua.create_string(message)?),
    ]))
}

/// The `_ENV` of the nearest Lua function on the caller's stack, or a fresh environment
/// over the sealed base when there is none.
fn caller_env(lua: &Lua) -> mlua::Result<Table> {
    for level in 1..MAX_STACK_SEARCH {
        // luapool's own Lua helpers (the host-function wrapper on LuaJIT) are skipped:
        // their environment is the state's real globals.
        let frame = lua.inspect_stack(level, |d| {
            (
                d.function(),
                d.source().source.as_deref() == Some("=luapool"),
            )
        });
        match frame {
            Some((_, true)) => continue,
            Some((f, false)) => {
                if let Some(env) = f.environment().or_else(|| env_parameter(lua, level)) {
                    return Ok(env);
                }
            }
            None => break,
        }
    }
    let data = SandboxData::get(lua)?;
    data.new_env(lua)
}

/// Registry slot through which [`env_parameter`] hands a stack value to mlua.
const ENV_SLOT: &std::ffi::CStr = c"luapool.load.env";

/// The table in local 1 of the function at `level` of the running coroutine's stack when
/// that local is `_ENV`: a script's main function takes its globals that way (see
/// `engine::chunk`), where other functions have an `_ENV` upvalue.
fn env_parameter(lua: &Lua, level: usize) -> Option<Table> {
    let level = std::ffi::c_int::try_from(level).ok()?;
    let slot = ENV_SLOT.to_str().ok()?;
    // The slot holds `false` between uses, so that its key stays in the registry and
    // `lua_setfield` below neither allocates nor raises.
    lua.set_named_registry_value(slot, false).ok()?;
    let l = lua.state();
    // SAFETY: `l` is the running coroutine (the one `inspect_stack` just read at the same
    // level). `lua_getstack` fills `ar` for a valid level; `lua_getlocal` pushes the
    // local's value only when it returns a name, and the room for it is checked first;
    // `lua_setfield` pops it into the registry's existing slot (see above), leaving the
    // stack as it was.
    let found = unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(l, level, &mut ar) == 0 || ffi::lua_checkstack(l, 1) == 0 {
            return None;
        }
        let name = ffi::lua_getlocal(l, &ar, 1);
        if name.is_null() {
            return None;
        }
        let is_env = std::ffi::CStr::from_ptr(name).to_bytes() == b"_ENV"
            && ffi::lua_type(l, -1) == ffi::LUA_TTABLE;
        if is_env {
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, ENV_SLOT.as_ptr());
        } else {
            ffi::lua_pop(l, 1);
        }
        is_env
    };
    let env = match found {
        true => lua.named_registry_value::<Value>(slot).ok(),
        false => None,
    };
    let _ = lua.set_named_registry_value(slot, false);
    match env {
        Some(Value::Table(env)) => Some(env),
        _ => None,
    }
}
