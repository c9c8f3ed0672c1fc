//! The sandbox's `load`: text chunks only, with the caller's environment by default.

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::{host_function, SandboxData};

/// How far up the stack `load` looks for the caller's `_ENV`.
const MAX_STACK_SEARCH: usize = 64;

/// Creates the sandboxed `load(chunk [, chunkname [, mode [, env]]])`.
///
/// Binary chunks are refused whatever `mode` says. Without an `env` argument the chunk
/// gets the environment of the Lua function that called `load` (its `_ENV` upvalue), so a
/// chunk loaded during an execution sees that execution's globals and nothing else.
///
/// The engine compiles the chunk (through the shim's `compile`): the source stays in
/// Lua memory, where the memory limit counts it, whether it is a string or the pieces a
/// reader function returns, and the compiler reads it from a Lua function, where the
/// execution's CPU limit and timeout can stop it.
pub(crate) fn load_function(lua: &Lua) -> mlua::Result<Function> {
    host_function(lua, |lua, args: MultiValue| {
        let mut args = args.into_iter();
        let chunk = args.next().unwrap_or(Value::Nil);
        let chunkname = args.next().unwrap_or(Value::Nil);
        let mode = args.next().unwrap_or(Value::Nil);
        let env = args.next();

        let default_name = match &chunk {
            Value::String(s) => {
                if s.as_bytes().first() == Some(&0x1b) {
                    return fail(lua, super::shim::BINARY);
                }
                chunk.clone()
            }
            Value::Function(_) => Value::String(lua.create_string("=(load)")?),
            other => {
                return Err(mlua::Error::runtime(format!(
                    "bad argument #1 to 'load' (string expected, got {})",
                    other.type_name()
                )))
            }
        };
        if let Value::String(m) = &mode {
            if !m.as_bytes().contains(&b't') {
                return fail(lua, "attempt to load a text chunk (mode is 'b'): binary chunks are not allowed in the sandbox");
            }
        }
        let name = match chunkname {
            Value::String(_) => chunkname,
            _ => default_name,
        };
        let env: Table = match env {
            Some(Value::Table(t)) => t,
            Some(Value::Nil) => lua.create_table()?,
            Some(other) => {
                return Err(mlua::Error::runtime(format!(
                    "bad argument #4 to 'load' (table expected, got {})",
                    other.type_name()
                )))
            }
            None => caller_env(lua)?,
        };
        let data = SandboxData::get(lua)?;
        let loaded: MultiValue = data
            .shim(lua)?
            .compile
            .call((chunk, name, env))
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
                if let Some(env) = f.environment() {
                    return Ok(env);
                }
            }
            None => break,
        }
    }
    let data = SandboxData::get(lua)?;
    data.new_env(lua)
}
