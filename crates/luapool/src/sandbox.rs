//! Building a sandboxed Lua state from an allow-list.
//!
//! A sandboxed state starts from the engine with only `string`, `table`, `math`, `utf8`,
//! `coroutine` and `os` opened (never `io`, `package` or `debug`), then builds a *base*
//! table holding what scripts may see:
//!
//! | name | what the sandbox keeps |
//! |---|---|
//! | base functions | `assert error getmetatable ipairs next pairs pcall rawequal rawget rawlen select setmetatable tonumber tostring type xpcall _VERSION` |
//! | replaced | `print` (to the host's writer), `load` (text only, caller's environment), `collectgarbage` (`"count"` only), `rawset` (refuses sealed tables), `require` (host modules) |
//! | `string` | everything but `string.dump` |
//! | `table`, `math`, `utf8`, `coroutine` | everything (the RNG is seeded per VM from OS entropy) |
//! | `os` | `time`, `clock`, `date`, `difftime` |
//! | `debug` | `traceback` |
//!
//! Every library table is *sealed* (a read-only proxy, see [`seal`]); the string
//! metatable's `__metatable` is a sealed view, so `getmetatable("")` does not expose it.
//! Executions see the base through an environment table whose metatable
//! (`__index = base`, `__metatable = false`) they can neither read nor replace.

mod load;
mod require;
pub(crate) mod seal;

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, Value};

use crate::config::VmConfig;
use crate::engine;

/// Base-library functions a sandboxed script keeps as they are.
const SAFE_BASE: &[&str] = &[
    "assert",
    "error",
    "getmetatable",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "rawequal",
    "rawget",
    "rawlen",
    "select",
    "setmetatable",
    "tonumber",
    "tostring",
    "type",
    "xpcall",
    "_VERSION",
];

/// Libraries kept whole (after removing `string.dump`).
const SAFE_LIBS: &[&str] = &["string", "table", "math", "utf8", "coroutine"];

/// `os` functions the sandbox keeps.
const SAFE_OS: &[&str] = &["time", "clock", "date", "difftime"];

/// Libraries a trusted VM has on top of the sandbox's.
const TRUSTED_LIBS: &[&str] = &["io", "os", "package", "debug"];

/// Where `print` writes: shared by every state a [`Vm`](crate::Vm) builds.
pub(crate) type Output = Rc<RefCell<Box<dyn Write>>>;

/// Per-state data the sandbox functions need, kept in the Lua state's app data.
pub(crate) struct SandboxData {
    /// Metatable of every environment: `{ __index = base, __metatable = false }`.
    pub(crate) env_mt: Table,
    /// Modules `require` returns without loading anything (`json`, host modules, ...).
    pub(crate) builtins: Table,
    /// Lua modules loaded by `require` on this VM.
    pub(crate) loaded: Table,
    pub(crate) module_paths: Vec<PathBuf>,
    pub(crate) output: Output,
}

impl SandboxData {
    /// The sandbox data of `lua` (cheap: clones a few references).
    pub(crate) fn get(lua: &Lua) -> mlua::Result<SandboxData> {
        let data = lua
            .app_data_ref::<SandboxData>()
            .ok_or_else(|| mlua::Error::runtime("luapool sandbox data missing"))?;
        Ok(SandboxData {
            env_mt: data.env_mt.clone(),
            builtins: data.builtins.clone(),
            loaded: data.loaded.clone(),
            module_paths: data.module_paths.clone(),
            output: data.output.clone(),
        })
    }

    /// A fresh environment over the sealed base, with `_G` pointing at itself.
    pub(crate) fn new_env(&self, lua: &Lua) -> mlua::Result<Table> {
        new_env(lua, &self.env_mt)
    }
}

/// A fresh environment table over the sealed base, with `_G` pointing at itself.
pub(crate) fn new_env(lua: &Lua, env_mt: &Table) -> mlua::Result<Table> {
    let env = lua.create_table_with_capacity(0, 1)?;
    env.raw_set("_G", &env)?;
    env.set_metatable(Some(env_mt.clone()))?;
    Ok(env)
}

/// Installs a table of functions as a sealed module: a global and a `require` target.
pub(crate) fn install_module(sandbox: &Sandbox, name: &str, module: Table) -> mlua::Result<()> {
    let sealed = seal::seal(&sandbox.lua, module, name, &sandbox.reject)?;
    sandbox.base.raw_set(name, &sealed)?;
    sandbox.builtins.raw_set(name, sealed)
}

/// A freshly built sandboxed (or trusted) Lua state.
pub(crate) struct Sandbox {
    pub(crate) lua: Lua,
    /// What environments read through: library proxies and global functions.
    pub(crate) base: Table,
    /// Metatable of every environment.
    pub(crate) env_mt: Table,
    /// Registered module tables by name (also reachable with `require`).
    pub(crate) builtins: Table,
    /// `__newindex` of sealed tables.
    pub(crate) reject: Function,
}

/// Builds the Lua state described by `config`.
pub(crate) fn build(config: &VmConfig, output: Output) -> mlua::Result<Sandbox> {
    let lua = if config.trusted {
        engine::open_trusted()
    } else {
        engine::open_sandboxed()?
    };
    let globals = lua.globals();
    seed_random(&globals)?;

    let reject = seal::reject_function(&lua)?;
    let base = lua.create_table_with_capacity(0, 32)?;
    if config.trusted {
        for pair in globals.pairs::<Value, Value>() {
            let (k, v) = pair?;
            if !matches!(&v, Value::Table(_)) {
                base.raw_set(k, v)?;
            }
        }
        for name in TRUSTED_LIBS {
            let lib: Table = globals.raw_get(*name)?;
            base.raw_set(*name, seal::seal(&lua, lib, name, &reject)?)?;
        }
    } else {
        for name in SAFE_BASE {
            base.raw_set(*name, globals.raw_get::<Value>(*name)?)?;
        }
        base.raw_set("load", load::load_function(&lua)?)?;
        base.raw_set("collectgarbage", collectgarbage_function(&lua)?)?;
        base.raw_set("rawset", seal::rawset_function(&lua)?)?;

        let string: Table = globals.raw_get("string")?;
        string.raw_set("dump", Value::Nil)?;
        let os: Table = globals.raw_get("os")?;
        let safe_os = lua.create_table_with_capacity(0, SAFE_OS.len())?;
        for name in SAFE_OS {
            safe_os.raw_set(*name, os.raw_get::<Value>(*name)?)?;
        }
        base.raw_set("os", seal::seal(&lua, safe_os, "os", &reject)?)?;
        let debug = lua.create_table_with_capacity(0, 1)?;
        debug.raw_set("traceback", traceback_function(&lua)?)?;
        base.raw_set("debug", seal::seal(&lua, debug, "debug", &reject)?)?;
    }
    for name in SAFE_LIBS {
        let lib: Table = globals.raw_get(*name)?;
        base.raw_set(*name, seal::seal(&lua, lib, name, &reject)?)?;
    }
    base.raw_set("print", print_function(&lua)?)?;
    base.raw_set("require", require::require_function(&lua)?)?;
    seal_string_metatable(&lua, &base, &reject)?;

    let env_mt = lua.create_table_with_capacity(0, 2)?;
    env_mt.raw_set("__index", &base)?;
    env_mt.raw_set("__metatable", false)?;

    let builtins = lua.create_table()?;
    for name in SAFE_LIBS.iter().chain(["os", "debug"].iter()) {
        builtins.raw_set(*name, base.raw_get::<Value>(*name)?)?;
    }
    if config.trusted {
        for name in TRUSTED_LIBS {
            builtins.raw_set(*name, base.raw_get::<Value>(*name)?)?;
        }
    }
    lua.set_app_data(SandboxData {
        env_mt: env_mt.clone(),
        builtins: builtins.clone(),
        loaded: lua.create_table()?,
        module_paths: config.module_paths.clone(),
        output,
    });
    Ok(Sandbox {
        lua,
        base,
        env_mt,
        builtins,
        reject,
    })
}

/// Seeds `math.random` from OS entropy, so VMs do not share a sequence.
fn seed_random(globals: &Table) -> mlua::Result<()> {
    let mut seed = [0u8; 16];
    if getrandom::fill(&mut seed).is_err() {
        // No entropy source: keep Lua's own time-and-address seed.
        return Ok(());
    }
    let (a, b) = seed.split_at(8);
    let a = i64::from_le_bytes(a.try_into().unwrap_or_default());
    let b = i64::from_le_bytes(b.try_into().unwrap_or_default());
    let math: Table = globals.raw_get("math")?;
    let randomseed: Function = math.raw_get("randomseed")?;
    randomseed.call::<()>((a, b))
}

/// Makes `getmetatable("")` return a sealed view instead of the shared string metatable.
fn seal_string_metatable(lua: &Lua, base: &Table, reject: &Function) -> mlua::Result<()> {
    let Some(string_mt) = lua.type_metatable::<mlua::LuaString>() else {
        return Ok(());
    };
    let view = lua.create_table_with_capacity(0, 1)?;
    view.raw_set("__index", base.raw_get::<Value>("string")?)?;
    string_mt.raw_set(
        "__metatable",
        seal::seal(lua, view, "string metatable", reject)?,
    )
}

/// `print(...)`: `tostring` of each argument, tab-separated, to the host's writer.
fn print_function(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, args: MultiValue| {
        let mut line = Vec::new();
        for (i, v) in args.iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            match v {
                Value::String(s) => line.extend_from_slice(&s.as_bytes()),
                other => line.extend_from_slice(other.to_string()?.as_bytes()),
            }
        }
        line.push(b'\n');
        let output = lua
            .app_data_ref::<SandboxData>()
            .map(|d| d.output.clone())
            .ok_or_else(|| mlua::Error::runtime("luapool sandbox data missing"))?;
        let mut out = output.borrow_mut();
        out.write_all(&line)
            .and_then(|_| out.flush())
            .map_err(|e| mlua::Error::runtime(format!("print: {e}")))
    })
}

/// `collectgarbage("count")`, the only option a sandboxed script may use.
fn collectgarbage_function(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, opt: Option<mlua::LuaString>| {
        let opt = opt
            .map(|s| s.to_string_lossy())
            .unwrap_or_else(|| "collect".to_string());
        if opt == "count" {
            Ok(lua.used_memory() as f64 / 1024.0)
        } else {
            Err(mlua::Error::runtime(format!(
                "collectgarbage: option '{opt}' is not allowed in the sandbox (only 'count')"
            )))
        }
    })
}

/// `debug.traceback([msg [, level]])` on the calling coroutine.
fn traceback_function(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, (msg, level): (Value, Option<usize>)| {
        let text = match &msg {
            Value::Nil => None,
            Value::String(s) => Some(s.to_string_lossy()),
            Value::Integer(_) | Value::Number(_) => Some(msg.to_string()?),
            // Lua returns non-string messages untouched.
            _ => return Ok(msg),
        };
        Ok(Value::String(
            lua.traceback(text.as_deref(), level.unwrap_or(1))?,
        ))
    })
}
