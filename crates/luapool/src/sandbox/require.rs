//! The sandbox's `require`: built-in modules, and Lua modules read as text from the
//! configured directories, loaded once per VM into an environment of their own.

use std::path::PathBuf;

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, Value};

use super::{bad_argument, host_function, SandboxData};

/// Marks a module whose loading is in progress (to detect `require` loops).
const LOADING: &str = "__luapool_loading";

/// Creates the sandbox's `require(name)`.
pub(crate) fn require_function(lua: &Lua) -> mlua::Result<Function> {
    host_function(lua, |lua, name: Value| {
        let name = match &name {
            Value::String(s) => s.to_str()?.to_string(),
            Value::Integer(_) | Value::Number(_) => name.to_string()?,
            other => return Err(bad_argument(1, "require", "string", other)),
        };
        let data = SandboxData::get(lua)?;
        let builtin = data.builtin(lua, &name)?;
        if !builtin.is_nil() {
            return Ok(builtin);
        }
        let loaded: Value = data.loaded.raw_get(name.as_str())?;
        match loaded {
            Value::Nil => {}
            Value::LightUserData(_) => {
                return Err(mlua::Error::runtime(format!(
                    "loop or previous error loading module '{name}'"
                )))
            }
            other => return Ok(other),
        }
        let path = find_module(&data.module_paths, &name)?;
        let source = std::fs::read(&path).map_err(|e| {
            mlua::Error::runtime(format!(
                "cannot read module '{name}' from '{}': {e}",
                path.display()
            ))
        })?;
        let env = data.new_env(lua)?;
        let chunk = lua
            .load(source)
            .set_name(format!("@{}", path.display()))
            .set_mode(ChunkMode::Text)
            .set_environment(env)
            .into_function()?;
        data.loaded.raw_set(name.as_str(), loading_marker())?;
        let result = chunk.call::<Value>((name.as_str(), path.display().to_string()));
        match result {
            Ok(value) => {
                let value = if value.is_nil() {
                    Value::Boolean(true)
                } else {
                    value
                };
                data.loaded.raw_set(name.as_str(), &value)?;
                Ok(value)
            }
            Err(e) => {
                data.loaded.raw_set(name.as_str(), Value::Nil)?;
                Err(e)
            }
        }
    })
}

fn loading_marker() -> Value {
    // A light userdata no module can return: the address of a static.
    Value::LightUserData(mlua::LightUserData(
        LOADING.as_ptr() as *mut std::ffi::c_void
    ))
}

/// Resolves `a.b` to `DIR/a/b.lua` or `DIR/a/b/init.lua` in the first directory that has it.
fn find_module(paths: &[PathBuf], name: &str) -> mlua::Result<PathBuf> {
    let valid = !name.is_empty()
        && name.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if !valid {
        return Err(mlua::Error::runtime(format!(
            "invalid module name '{name}' (use letters, digits, '_', '-' and '.' between parts)"
        )));
    }
    let rel = name.replace('.', "/");
    let mut tried = String::new();
    for dir in paths {
        for candidate in [
            dir.join(format!("{rel}.lua")),
            dir.join(&rel).join("init.lua"),
        ] {
            if candidate.is_file() {
                return Ok(candidate);
            }
            tried.push_str(&format!("\n\tno file '{}'", candidate.display()));
        }
    }
    if paths.is_empty() {
        tried.push_str("\n\tno module directories are configured");
    }
    Err(mlua::Error::runtime(format!(
        "module '{name}' not found:{tried}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_path_tricks() {
        for bad in ["", "..", "a..b", "../x", "/etc/passwd", "a/b", "a\\b"] {
            assert!(find_module(&[PathBuf::from(".")], bad).is_err(), "{bad}");
        }
    }
}
