//! The sandbox's `load`: text chunks only, with the caller's environment by default.

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::{host_function, SandboxData};

/// How far up the stack `load` looks for the caller's `_ENV`.
const MAX_STACK_SEARCH: usize = 64;

/// Creates the sandboxed `load(chunk [, chunkname [, mode [, env]]])`.
///
/// Binary chunks are refused whatever `mode` says. Without an `env` argument the chunk
/// gets the environment of the Lua function that called `load` (its `_ENV` upvalue), so a
/// chunk loaded during an execution sees that execution's globals and nothing else.
pub(crate) fn load_function(lua: &Lua) -> mlua::Result<Function> {
    host_function(lua, |lua, args: MultiValue| {
        let mut args = args.into_iter();
        let chunk = args.next().unwrap_or(Value::Nil);
        let chunkname = args.next().unwrap_or(Value::Nil);
        let mode = args.next().unwrap_or(Value::Nil);
        let env = args.next();

        let source: Vec<u8> = match chunk {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Function(reader) => read_all(&reader)?,
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
        if source.first() == Some(&0x1b) {
            return fail(
                lua,
                "attempt to load a binary chunk: binary chunks are not allowed in the sandbox",
            );
        }
        let name = match chunkname {
            Value::String(s) => s.to_str()?.to_string(),
            _ => String::from_utf8_lossy(&source).into_owned(),
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
        match lua
            .load(source)
            .set_name(name)
            .set_mode(ChunkMode::Text)
            .set_environment(env)
            .into_function()
        {
            Ok(f) => Ok(MultiValue::from_iter([Value::Function(f)])),
            Err(mlua::Error::SyntaxError { message, .. }) => fail(lua, &message),
            Err(e) => Err(e),
        }
    })
}

/// `nil, message`: how `load` reports a chunk it will not load.
fn fail(lua: &Lua, message: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Nil,
        Value::String(lua.create_string(message)?),
    ]))
}

/// Concatenates the pieces returned by a `load` reader function.
fn read_all(reader: &Function) -> mlua::Result<Vec<u8>> {
    let mut source = Vec::new();
    loop {
        match reader.call::<Value>(())? {
            Value::String(s) if !s.as_bytes().is_empty() => source.extend_from_slice(&s.as_bytes()),
            Value::Nil | Value::String(_) => return Ok(source),
            other => {
                return Err(mlua::Error::runtime(format!(
                    "reader function must return a string, got {}",
                    other.type_name()
                )))
            }
        }
    }
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
