//! Building a sandboxed Lua state from an allow-list.
//!
//! A sandboxed state starts from the engine with only the base library and `string`
//! opened (never `io`, `package` or `debug`), then builds a *base* table holding what
//! scripts may see:
//!
//! | name | what the sandbox keeps |
//! |---|---|
//! | base functions | `assert error getmetatable ipairs next pairs pcall rawequal rawget rawlen select tonumber tostring type xpcall _VERSION` |
//! | replaced | `print` (to the host's writer), `load` (text only, caller's environment, compiled under the execution's limits), `collectgarbage` (`"count"` only), `rawset` (refuses sealed tables), `require` (host modules), `setmetatable` (refuses `__gc`, see `bounded.rs`) |
//! | `string` | everything but `string.dump`; `rep` bounded |
//! | `table`, `math`, `utf8`, `coroutine` | everything (the RNG is seeded per VM from OS entropy); `table`'s looping functions bounded, see `bounded.rs`; `coroutine` sees each execution as the main thread, see `main_thread.rs` |
//! | `os` | `time`, `clock`, `date`, `difftime` |
//! | `debug` | `traceback` |
//!
//! Everything but the plain base functions is made on first use (the base's own
//! `__index`), which keeps creating a VM cheap. Every library table is *sealed* (a
//! read-only proxy, see [`seal`]); the string metatable's `__metatable` is `false`, so
//! `getmetatable("")` does not expose it (string methods still work). Executions see the
//! base through an environment table whose metatable (`__index = base`,
//! `__metatable = false`, and a `__newindex` for assignments to base names, see
//! `globals.rs`) they can neither read nor replace.
//!
//! A trusted state (see `trusted.rs`) is the interpreter instead: its base is the state's
//! own global table, with the engine's libraries as they are.

mod bounded;
mod globals;
pub(crate) mod hint;
mod load;
mod main_thread;
mod require;
pub(crate) mod seal;
pub(crate) mod shim;
mod trusted;
pub(crate) mod wrap;

use std::cell::{OnceCell, RefCell};
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;

use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Table, Value};

use crate::config::VmConfig;
use crate::copy_budget::{self, CopyBudget};
use crate::limits::{self, Limits};
use crate::lua_helpers::{self, Helper};
use crate::{engine, hostlib};
pub(crate) use main_thread::with_real_coroutine;
pub(crate) use shim::{fail_marker, Shim};

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
    "tonumber",
    "type",
    "xpcall",
    "_VERSION",
];

/// `os` functions the sandbox keeps.
const SAFE_OS: &[&str] = &["time", "clock", "date", "difftime"];

/// Where `print` writes, shared by every state a [`Vm`](crate::Vm) builds: the process's
/// standard output while `None`, else the host's writer.
pub(crate) type Output = Rc<RefCell<Option<Box<dyn Write>>>>;

/// A sandboxed (or trusted) Lua state and what its sandbox functions need.
pub(crate) struct Sandbox {
    pub(crate) lua: Lua,
    pub(crate) data: Rc<SandboxData>,
    /// Dropped last: ends the closing window that `Drop for Sandbox` opens.
    _closed: Closed,
}

thread_local! {
    /// Lua states being closed on this thread. Closing a state runs the finalizers its
    /// scripts left (trusted scripts may have them); mlua's handles no longer work then,
    /// so luapool's Rust functions refuse to run (see [`refuse_while_closing`]).
    static CLOSING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Host functions running on this thread, nested in one another.
    static HOST_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Host functions that may be nested in one another (each calling Lua, which calls the
/// next): about Lua 5.4's own limit of nested C calls. LuaJIT has no such limit, and an
/// error unwinding thousands of levels would be formatted again at each one.
const MAX_HOST_DEPTH: u32 = 200;

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The fields drop after this: `lua` (which closes the state) inside the window,
        // `_closed` (which ends it) last.
        CLOSING.with(|c| c.set(c.get().saturating_add(1)));
    }
}

/// Ends the closing window of a [`Sandbox`] when dropped.
struct Closed;

impl Drop for Closed {
    fn drop(&mut self) {
        CLOSING.with(|c| c.set(c.get().saturating_sub(1)));
    }
}

/// True while a Lua state is being closed on this thread.
pub(crate) fn closing() -> bool {
    CLOSING.with(|c| c.get()) > 0
}

/// The error every Rust function of luapool raises when a finalizer calls it while its
/// state is being closed.
pub(crate) fn refuse_while_closing() -> mlua::Result<()> {
    if closing() {
        return Err(mlua::Error::runtime("the Lua state is being closed"));
    }
    Ok(())
}

/// Counts one host function call for [`MAX_HOST_DEPTH`] while alive.
struct HostCall;

impl HostCall {
    fn enter() -> mlua::Result<HostCall> {
        let depth = HOST_DEPTH.with(|d| d.get());
        if depth >= MAX_HOST_DEPTH {
            return Err(mlua::Error::runtime(
                "C stack overflow (too many nested host function calls)",
            ));
        }
        HOST_DEPTH.with(|d| d.set(depth + 1));
        Ok(HostCall)
    }
}

impl Drop for HostCall {
    fn drop(&mut self) {
        HOST_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Per-state data of the sandbox, also kept in the Lua state's app data.
pub(crate) struct SandboxData {
    /// What environments read through: library proxies and global functions. In a
    /// trusted state, the state's own global table.
    pub(crate) base: Table,
    /// A trusted state: the interpreter's globals and libraries (see `trusted.rs`).
    pub(crate) trusted: bool,
    /// Metatable of every environment: `{ __index = base, __metatable = false }`.
    pub(crate) env_mt: Table,
    /// Modules `require` returns without loading a file (`json`, host modules, ...).
    pub(crate) builtins: Table,
    /// Lua modules loaded by `require` on this VM.
    pub(crate) loaded: Table,
    /// `__newindex` of sealed tables, made on first use.
    reject: OnceCell<Function>,
    pub(crate) module_paths: Vec<PathBuf>,
    pub(crate) output: Output,
    host_library: bool,
    /// The Lua helpers, loaded on first use.
    shim: OnceCell<Shim>,
    /// The makers of the bounded library functions, loaded on first use.
    bounded: OnceCell<bounded::Bounded>,
    /// The sandbox functions that make limits stick, when the VM has limits.
    pub(crate) guards: Option<Guards>,
    /// Set when a host function panicked.
    pub(crate) host_panicked: std::cell::Cell<bool>,
    /// The coroutines executions run in (weak keys), see `main_thread.rs`.
    tops: Table,
    /// The helpers that make executions look like the main chunk, loaded on first use.
    main_thread: OnceCell<main_thread::MainThread>,
    /// Trusted states: the engine's own `coroutine` library (scripts see a copy).
    real_coroutine: Option<Table>,
    /// Trusted states: `fresh()`, the maker of per-execution globals, made on first use.
    fresh_env: OnceCell<Function>,
    /// The engine's own `tostring` (`luaL_tolstring`), saved before any script runs, for
    /// `print` and `log`.
    tostring: Function,
}

/// Replacements of `pcall`, `xpcall`, `coroutine.resume`, `coroutine.wrap` and
/// `coroutine.close`, and the prologue of every execution, which keep the limits on every
/// path that runs script code (see `src/lua/guards.lua`).
pub(crate) struct Guards {
    resume: Function,
    wrap: Function,
    /// `nil` on LuaJIT, which has no `coroutine.close`.
    close: Value,
    /// `prologue(f)`: `f`, announcing the running coroutine first and running under the
    /// execution's limits to its very end.
    pub(crate) prologue: Function,
}

impl Guards {
    /// Loads the guards and installs `pcall` and `xpcall` into `base`. `tops` records
    /// the executions' coroutines (see `main_thread.rs`).
    fn install(lua: &Lua, base: &Table, tops: &Table) -> mlua::Result<Guards> {
        engine::open_coroutine(lua)?;
        let globals = lua.globals();
        let coroutine: Table = globals.raw_get("coroutine")?;
        // The engine's own (Lua 5.4 and 5.5 only; `nil` on LuaJIT): the guard decides
        // which coroutines may close themselves.
        let real_close = if lua.named_registry_value::<bool>(CLOSE_GUARDED)? {
            lua.named_registry_value::<Value>(REAL_CLOSE)?
        } else {
            coroutine.raw_get::<Value>("close")?
        };
        guard_close(lua)?;
        let [set_current, trip_memory, tripped, handler, announce] =
            limits::c_functions(lua, tops)?;
        let tops = tops.clone();
        let (lua_pcall, lua_xpcall, resume, wrap, close, prologue, handler_for) =
            lua_helpers::load(lua, Helper::Guards)?.call::<(
                Function,
                Function,
                Function,
                Function,
                Value,
                Function,
                Function,
            )>((
                globals.raw_get::<Function>("pcall")?,
                globals.raw_get::<Function>("xpcall")?,
                coroutine.raw_get::<Function>("create")?,
                coroutine.raw_get::<Function>("resume")?,
                coroutine.raw_get::<Function>("running")?,
                real_close,
                globals.raw_get::<Function>("error")?,
                globals.raw_get::<Function>("type")?,
                globals.raw_get::<Function>("select")?,
                set_current,
                trip_memory,
                tripped,
                handler,
                tops,
                announce,
            ))?;
        let [pcall, xpcall] = engine::protected_calls(lua, [lua_pcall, lua_xpcall], handler_for)?;
        base.raw_set("pcall", pcall)?;
        base.raw_set("xpcall", xpcall)?;
        Ok(Guards {
            resume,
            wrap,
            close,
            prologue,
        })
    }

    /// Puts the guarded `resume`, `wrap` and `close` into a copy of the `coroutine`
    /// library.
    fn patch(&self, copy: &Table) -> mlua::Result<()> {
        copy.raw_set("resume", &self.resume)?;
        copy.raw_set("wrap", &self.wrap)?;
        if !self.close.is_nil() {
            copy.raw_set("close", &self.close)?;
        }
        Ok(())
    }
}

impl SandboxData {
    /// The sandbox data of `lua`.
    pub(crate) fn get(lua: &Lua) -> mlua::Result<Rc<SandboxData>> {
        lua.app_data_ref::<Rc<SandboxData>>()
            .map(|d| Rc::clone(&d))
            .ok_or_else(|| mlua::Error::runtime("luapool sandbox data missing"))
    }

    /// A fresh environment over the sealed base, with `_G` pointing at itself.
    pub(crate) fn new_env(&self, lua: &Lua) -> mlua::Result<Table> {
        let env = lua.create_table_with_capacity(0, 1)?;
        env.raw_set("_G", &env)?;
        env.set_metatable(Some(self.env_mt.clone()))?;
        Ok(env)
    }

    /// The helpers that make executions look like the main chunk (see `main_thread.rs`).
    pub(crate) fn main_thread(&self, lua: &Lua) -> mlua::Result<&main_thread::MainThread> {
        if let Some(m) = self.main_thread.get() {
            return Ok(m);
        }
        engine::open_coroutine(lua)?;
        let m = main_thread::MainThread::load(lua, &self.tops)?;
        Ok(self.main_thread.get_or_init(|| m))
    }

    /// The `coroutine` library scripts see: a copy of the engine's, with the guarded
    /// functions when the VM has limits, and the main-thread view of `running`,
    /// `isyieldable` and `yield`.
    fn coroutine_library(&self, lua: &Lua, real: &Table) -> mlua::Result<Table> {
        let copy = shallow_copy(lua, real)?;
        if let Some(guards) = &self.guards {
            guards.patch(&copy)?;
        }
        self.main_thread(lua)?.patch(&copy)?;
        Ok(copy)
    }

    /// Trusted states with per-execution globals: `fresh()`, which makes an execution's
    /// global table (see `trusted.rs`).
    pub(crate) fn fresh_env(&self, lua: &Lua) -> mlua::Result<&Function> {
        if let Some(f) = self.fresh_env.get() {
            return Ok(f);
        }
        let f = trusted::fresh_env_maker(lua)?;
        Ok(self.fresh_env.get_or_init(|| f))
    }

    /// `f`, recording the coroutine that runs it as an execution's when it runs
    /// `on_coroutine` (see `main_thread.rs`); with limits the guards' prologue does that
    /// instead (and more).
    pub(crate) fn entry(
        &self,
        lua: &Lua,
        f: Function,
        on_coroutine: bool,
    ) -> mlua::Result<Function> {
        match &self.guards {
            Some(guards) => guards.prologue.call(f),
            None if on_coroutine => self.main_thread(lua)?.mark.call(f),
            None => Ok(f),
        }
    }

    /// Trusted states: makes `print` write to the host's writer (after
    /// [`Vm::set_output`](crate::Vm::set_output)) instead of being the engine's own,
    /// which writes to the process's standard output through C's buffered `stdout`
    /// (keeping its order with `io.write`).
    pub(crate) fn use_host_print(&self, lua: &Lua) -> mlua::Result<()> {
        if self.trusted {
            let print = self.wrap_host(lua, print_function(lua)?)?;
            self.base.raw_set("print", print)?;
        }
        Ok(())
    }

    /// The Lua helpers of this state, loaded on first use.
    pub(crate) fn shim(&self, lua: &Lua) -> mlua::Result<&Shim> {
        if let Some(shim) = self.shim.get() {
            return Ok(shim);
        }
        let shim = Shim::load(lua, &self.env_mt)?;
        Ok(self.shim.get_or_init(|| shim))
    }

    /// The makers of the bounded library functions of this state.
    fn bounded(&self, lua: &Lua) -> mlua::Result<&bounded::Bounded> {
        if let Some(b) = self.bounded.get() {
            return Ok(b);
        }
        let b = bounded::Bounded::load(lua)?;
        Ok(self.bounded.get_or_init(|| b))
    }

    /// The `__newindex` handler of sealed tables.
    pub(crate) fn reject(&self, lua: &Lua) -> mlua::Result<&Function> {
        if let Some(f) = self.reject.get() {
            return Ok(f);
        }
        let f = self.wrap_host(lua, seal::reject_function(lua)?)?;
        Ok(self.reject.get_or_init(|| f))
    }

    /// Seals `module` and makes it a global and a `require` target named `name`. In a
    /// trusted state the module stays writable, as Lua's libraries are, and goes into
    /// `package.loaded`.
    pub(crate) fn install_module(
        &self,
        lua: &Lua,
        name: &str,
        module: Table,
    ) -> mlua::Result<Table> {
        if self.trusted {
            self.base.raw_set(name, &module)?;
            self.builtins.raw_set(name, &module)?;
            let package: Table = self.base.raw_get("package")?;
            let loaded: Table = package.raw_get("loaded")?;
            loaded.raw_set(name, &module)?;
            return Ok(module);
        }
        let sealed = seal::seal(lua, module, name, self.reject(lua)?)?;
        self.base.raw_set(name, &sealed)?;
        self.builtins.raw_set(name, &sealed)?;
        Ok(sealed)
    }

    /// Seals `module` and makes it a `require` target named `name`, not a global. In a
    /// trusted state the module stays writable and goes into `package.loaded`.
    pub(crate) fn install_builtin(
        &self,
        lua: &Lua,
        name: &str,
        module: Table,
    ) -> mlua::Result<Table> {
        let module = if self.trusted {
            let package: Table = self.base.raw_get("package")?;
            let loaded: Table = package.raw_get("loaded")?;
            loaded.raw_set(name, &module)?;
            module
        } else {
            seal::seal(lua, module, name, self.reject(lua)?)?
        };
        self.builtins.raw_set(name, &module)?;
        Ok(module)
    }

    /// Wraps a host function so that its failures are raised as Lua string errors
    /// pointing at the caller's line (see [`host_result`]), also when it is called in tail
    /// position.
    pub(crate) fn wrap_host(&self, lua: &Lua, f: Function) -> mlua::Result<Function> {
        wrap::wrap(lua, f)
    }

    /// Appends `value` to `out` formatted exactly as Lua's `tostring` does (`1.0`, `0.3`,
    /// `__tostring` and `__name` honoured), charging the bytes to `budget` first.
    pub(crate) fn push_tostring(
        &self,
        out: &mut Vec<u8>,
        value: &Value,
        budget: &mut CopyBudget,
    ) -> mlua::Result<()> {
        let charged = |out: &mut Vec<u8>, budget: &mut CopyBudget, bytes: &[u8]| {
            budget.extend(out, bytes).map_err(mlua::Error::external)
        };
        match value {
            Value::String(s) => charged(out, budget, &s.as_bytes()),
            Value::Nil => charged(out, budget, b"nil"),
            Value::Boolean(b) => charged(out, budget, if *b { b"true" } else { b"false" }),
            Value::Integer(i) if engine::INTEGERS => charged(out, budget, i.to_string().as_bytes()),
            other => {
                let s: mlua::LuaString = self.tostring.call(other)?;
                charged(out, budget, &s.as_bytes())
            }
        }
    }

    /// Opens a lazily provided global (a sandbox function, a library or the host library)
    /// on first access; `nil` for any other name. `globals::LAZY_NAMES` must list every
    /// name this can provide.
    fn open_lazy(&self, lua: &Lua, name: &str) -> mlua::Result<Value> {
        if name == "require" {
            let caches = [self.builtins.clone(), self.loaded.clone()];
            let f = engine::wrap_require(lua, require::require_function(lua)?, caches)?;
            self.base.raw_set(name, &f)?;
            return Ok(Value::Function(f));
        }
        let function = match name {
            "print" => Some(print_function(lua)?),
            "load" => Some(load::load_function(lua)?),
            "collectgarbage" => Some(collectgarbage_function(lua)?),
            "rawset" => Some(seal::rawset_function(lua)?),
            _ => None,
        };
        if let Some(f) = function {
            let f = self.wrap_host(lua, f)?;
            self.base.raw_set(name, &f)?;
            return Ok(Value::Function(f));
        }
        let function = match name {
            "setmetatable" => Some(self.bounded(lua)?.setmetatable(lua)?),
            "tostring" if engine::LUA_TOSTRING => Some(self.bounded(lua)?.tostring(lua)?),
            "tostring" => Some(lua.globals().raw_get::<Function>("tostring")?),
            _ => None,
        };
        if let Some(f) = function {
            self.base.raw_set(name, &f)?;
            return Ok(Value::Function(f));
        }
        if name == "string" {
            let real: Table = lua.globals().raw_get("string")?;
            self.bounded(lua)?.patch_string(&real)?;
            return Ok(Value::Table(self.install_module(lua, name, real)?));
        }
        if let Some(lib) = engine::sandbox_library(name) {
            engine::open_library(lua, lib)?;
            if name == "coroutine" {
                guard_close(lua)?;
            }
            let globals = lua.globals();
            let real: Table = globals.raw_get(name)?;
            let table = match name {
                "os" => {
                    let safe = lua.create_table_with_capacity(0, SAFE_OS.len())?;
                    for f in SAFE_OS {
                        safe.raw_set(*f, real.raw_get::<Value>(*f)?)?;
                    }
                    safe
                }
                "math" => {
                    seed_random(&real)?;
                    real
                }
                "coroutine" => self.coroutine_library(lua, &real)?,
                "table" => {
                    self.bounded(lua)?.patch_table(&real)?;
                    real
                }
                _ => real,
            };
            return Ok(Value::Table(self.install_module(lua, name, table)?));
        }
        match name {
            "debug" => {
                let debug = lua.create_table_with_capacity(0, 1)?;
                debug.raw_set("traceback", self.wrap_host(lua, traceback_function(lua)?)?)?;
                Ok(Value::Table(self.install_module(lua, name, debug)?))
            }
            _ if self.host_library && hostlib::provides(name) => {
                hostlib::install(lua, self)?;
                self.base.raw_get(name)
            }
            _ => Ok(Value::Nil),
        }
    }

    /// The built-in module `name` (a library, the host library or a host module), opening
    /// it if it is provided lazily; `nil` if there is none.
    pub(crate) fn builtin(&self, lua: &Lua, name: &str) -> mlua::Result<Value> {
        let value: Value = self.builtins.raw_get(name)?;
        if !value.is_nil() {
            return Ok(value);
        }
        self.open_lazy(lua, name)?;
        self.builtins.raw_get(name)
    }
}

/// Creates a host function that follows the failure protocol of [`host_result`]; it still
/// needs [`SandboxData::wrap_host`] before scripts see it.
pub(crate) fn host_function<A, R, F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    A: mlua::FromLuaMulti,
    R: IntoLuaMulti,
    F: Fn(&Lua, A) -> mlua::Result<R> + 'static,
{
    lua.create_function(move |lua, args: MultiValue| {
        refuse_while_closing()?;
        let result = HostCall::enter().and_then(|_call| {
            let args = A::from_lua_multi(args, lua)?;
            f(lua, args)
        });
        host_result(lua, result)
    })
}

/// What a host function returns to its wrapper: its results, or the failure marker and a
/// message, which the wrapper raises as an error at the caller's line.
pub(crate) fn host_result(
    lua: &Lua,
    result: mlua::Result<impl IntoLuaMulti>,
) -> mlua::Result<MultiValue> {
    match result {
        Ok(values) => values.into_lua_multi(lua),
        Err(e) => {
            let message = error_message(e);
            Ok(MultiValue::from_iter([
                fail_marker(),
                Value::String(lua.create_string(message)?),
            ]))
        }
    }
}

/// Lua's argument error, `bad argument #N to 'FUNCTION' (EXPECTED expected, got GOT)`,
/// for the sandbox's own functions. `got` is the argument's type name; a `nil` is reported
/// as `no value` (a host function cannot tell a missing argument from a `nil`).
pub(crate) fn bad_argument(n: u8, function: &str, expected: &str, got: &Value) -> mlua::Error {
    let got = if got.is_nil() {
        "no value"
    } else {
        got.type_name()
    };
    mlua::Error::runtime(format!(
        "bad argument #{n} to '{function}' ({expected} expected, got {got})"
    ))
}

/// The message of a host function's error: a Lua error that passed through it (e.g. from
/// a `__tostring` that `print` called) keeps its own message, without mlua's traceback.
fn error_message(e: mlua::Error) -> String {
    match e {
        // mlua appends a traceback to a Lua error that crossed a Rust callback.
        mlua::Error::RuntimeError(m) => match m.split_once("\nstack traceback:") {
            Some((message, _)) => message.to_string(),
            None => m,
        },
        mlua::Error::CallbackError { cause, .. } => error_message((*cause).clone()),
        other => other.to_string(),
    }
}

/// Builds the Lua state described by `config`, with the limits' guards when `limits`
/// meters executions.
pub(crate) fn build(config: &VmConfig, limits: &Limits, output: Output) -> mlua::Result<Sandbox> {
    let lua = if config.trusted {
        engine::open_trusted()
    } else {
        engine::open_sandboxed()?
    };
    let globals = lua.globals();
    engine::install_guards(&lua)?;
    // A trusted state's scripts see its own globals; a sandboxed one's, a base of what
    // the allow-list keeps.
    let base = if config.trusted {
        globals.clone()
    } else {
        lua.create_table_with_capacity(0, 32)?
    };
    let env_mt = lua.create_table_with_capacity(0, 3)?;
    env_mt.raw_set("__index", &base)?;
    env_mt.raw_set("__metatable", false)?;
    if !config.trusted {
        for name in SAFE_BASE.iter().chain(engine::EXTRA_SAFE_BASE) {
            base.raw_set(*name, globals.raw_get::<Value>(*name)?)?;
        }
        globals::install(&lua, &env_mt, &base)?;
    }
    // The coroutines that run executions (weak keys: they are collected as usual).
    let tops = tops(&lua)?;
    let guards = if limits.any() {
        limits::error_value::install(&lua)?;
        Some(Guards::install(&lua, &base, &tops)?)
    } else {
        None
    };
    let real_coroutine = if config.trusted {
        guard_close(&lua)?;
        Some(globals.raw_get::<Table>("coroutine")?)
    } else {
        None
    };
    let data = Rc::new(SandboxData {
        base,
        trusted: config.trusted,
        env_mt,
        builtins: lua.create_table()?,
        loaded: lua.create_table()?,
        reject: OnceCell::new(),
        module_paths: config.module_paths.clone(),
        output,
        host_library: config.host_library,
        shim: OnceCell::new(),
        bounded: OnceCell::new(),
        guards,
        host_panicked: std::cell::Cell::new(false),
        tostring: globals.raw_get("tostring")?,
        tops,
        main_thread: OnceCell::new(),
        real_coroutine,
        fresh_env: OnceCell::new(),
    });
    lua.set_app_data(Rc::clone(&data));

    if config.trusted {
        open_interpreter(&lua, &data)?;
    } else {
        // The string metatable is reached by every string value: hide it before anything
        // runs.
        if let Some(string_mt) = lua.type_metatable::<mlua::LuaString>() {
            string_mt.raw_set("__metatable", false)?;
        }
        let string: Table = globals.raw_get("string")?;
        string.raw_set("dump", Value::Nil)?;
        data.base.set_metatable(Some(lazy_metatable(&lua)?))?;
    }
    Ok(Sandbox {
        lua,
        data,
        _closed: Closed,
    })
}

/// Completes a trusted state: the engine's globals and libraries as they are, except
/// `coroutine` (a copy with the guards and the main-thread view, also in
/// `package.loaded`), a seeded `math.random`, with limits a `debug.traceback` that hides
/// the guards, the configured module directories first
/// in `package.path`, `print` to the host's writer if it has one, and the host library.
fn open_interpreter(lua: &Lua, data: &SandboxData) -> mlua::Result<()> {
    let globals = lua.globals();
    let package: Table = globals.raw_get("package")?;
    let loaded: Table = package.raw_get("loaded")?;
    if let Some(real) = &data.real_coroutine {
        let coroutine = data.coroutine_library(lua, real)?;
        globals.raw_set("coroutine", &coroutine)?;
        loaded.raw_set("coroutine", &coroutine)?;
    }
    seed_random(&globals.raw_get::<Table>("math")?)?;
    if data.guards.is_some() {
        trusted::hide_guards_in_tracebacks(lua)?;
    }
    if !data.module_paths.is_empty() {
        let mut path = Vec::new();
        for dir in &data.module_paths {
            let dir = dir.to_string_lossy();
            path.extend_from_slice(format!("{dir}/?.lua;{dir}/?/init.lua;").as_bytes());
        }
        let old: mlua::LuaString = package.raw_get("path")?;
        path.extend_from_slice(&old.as_bytes());
        package.raw_set("path", lua.create_string(path)?)?;
    }
    if data.output.borrow().is_some() {
        data.use_host_print(lua)?;
    }
    if data.host_library {
        hostlib::install(lua, data)?;
    }
    Ok(())
}

/// The base's metatable: its `__index` opens lazily provided globals on first access.
fn lazy_metatable(lua: &Lua) -> mlua::Result<Table> {
    let mt = lua.create_table_with_capacity(0, 1)?;
    mt.raw_set(
        "__index",
        lua.create_function(|lua, (_base, key): (Table, Value)| match key {
            _ if closing() => Ok(Value::Nil),
            Value::String(name) => {
                let data = SandboxData::get(lua)?;
                data.open_lazy(lua, &name.to_str()?)
            }
            _ => Ok(Value::Nil),
        })?,
    )?;
    Ok(mt)
}

/// Registry key: set once [`guard_close`] has run on a state.
const CLOSE_GUARDED: &str = "luapool.close_guarded";
/// Registry key: the engine's own `coroutine.close`, kept by [`guard_close`].
const REAL_CLOSE: &str = "luapool.real_close";
/// Registry key: the set of [`tops`].
const TOPS: &str = "luapool.tops";

/// The coroutines that run executions, recorded by the guards' prologue (VMs with
/// limits) or by `main_thread.rs`'s `mark` (without limits): a weak-keyed set, one per
/// state.
fn tops(lua: &Lua) -> mlua::Result<Table> {
    if let Some(tops) = lua.named_registry_value::<Option<Table>>(TOPS)? {
        return Ok(tops);
    }
    let tops = shim::weak_keyed_table(lua)?;
    lua.set_named_registry_value(TOPS, &tops)?;
    Ok(tops)
}

/// Lua 5.5: replaces `coroutine.close` of the real library with one that refuses to close
/// an execution's own coroutine (recorded in [`tops`]): Lua 5.5 lets a coroutine close
/// itself, which for an execution's coroutine would end the execution as if it had
/// returned, and closing another execution's would end that one. The script's own
/// coroutines close (themselves too) as in Lua 5.5. (With limits, the sandbox's
/// `coroutine.close` is the guards' instead, which does the same and tells the interrupt
/// which coroutine runs the `__close` handlers.) Runs once per state; nothing to do on
/// Lua 5.4 (whose `close` refuses the running coroutine) and LuaJIT (which has no
/// `close`). The guard is written in Lua: `src/lua/close_guard.lua`.
fn guard_close(lua: &Lua) -> mlua::Result<()> {
    if !engine::SELF_CLOSE || lua.named_registry_value::<bool>(CLOSE_GUARDED)? {
        return Ok(());
    }
    let globals = lua.globals();
    let coroutine: Table = globals.raw_get("coroutine")?;
    if let Value::Function(close) = coroutine.raw_get("close")? {
        lua.set_named_registry_value(REAL_CLOSE, &close)?;
        let guarded: Function = lua_helpers::load(lua, Helper::CloseGuard)?.call((
            close,
            coroutine.raw_get::<Function>("running")?,
            globals.raw_get::<Function>("error")?,
            globals.raw_get::<Function>("type")?,
            globals.raw_get::<Function>("select")?,
            tops(lua)?,
        ))?;
        coroutine.raw_set("close", guarded)?;
    }
    lua.set_named_registry_value(CLOSE_GUARDED, true)
}

/// A new table holding `table`'s keys and values (raw accesses).
pub(crate) fn shallow_copy(lua: &Lua, table: &Table) -> mlua::Result<Table> {
    let copy = lua.create_table()?;
    for pair in table.pairs::<Value, Value>() {
        let (k, v) = pair?;
        copy.raw_set(k, v)?;
    }
    Ok(copy)
}

/// Seeds `math.random` from OS entropy, so VMs do not share a sequence.
fn seed_random(math: &Table) -> mlua::Result<()> {
    let mut seed = [0u8; 16];
    if getrandom::fill(&mut seed).is_err() {
        // No entropy source: keep Lua's own time-and-address seed.
        return Ok(());
    }
    let (a, b) = seed.split_at(8);
    let a = i64::from_le_bytes(a.try_into().unwrap_or_default());
    let b = i64::from_le_bytes(b.try_into().unwrap_or_default());
    let randomseed: Function = math.raw_get("randomseed")?;
    randomseed.call::<()>((a, b))
}

/// `print(...)`: `tostring` of each argument, tab-separated, to the host's writer, as
/// raw bytes. The line is a host copy, within the call's [`CopyBudget`].
fn print_function(lua: &Lua) -> mlua::Result<Function> {
    host_function(lua, |lua, args: MultiValue| {
        let data = SandboxData::get(lua)?;
        let mut budget = CopyBudget::for_lua(lua);
        let mut line = Vec::new();
        for (i, v) in args.iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            data.push_tostring(&mut line, v, &mut budget)
                .map_err(|e| copy_budget::name_call("print", e))?;
        }
        line.push(b'\n');
        let mut out = data.output.borrow_mut();
        let written = match out.as_mut() {
            Some(out) => out.write_all(&line).and_then(|_| out.flush()),
            None => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(&line).and_then(|_| stdout.flush())
            }
        };
        written.map_err(|e| mlua::Error::runtime(format!("print: {e}")))
    })
}

/// `collectgarbage("count")`, the only option a sandboxed script may use.
fn collectgarbage_function(lua: &Lua) -> mlua::Result<Function> {
    host_function(lua, |lua, opt: Option<mlua::LuaString>| {
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

/// `debug.traceback([msg [, level]])` on the calling coroutine. Level 1 (the default) is
/// the function that called `debug.traceback`; frames of luapool's Lua helpers are left
/// out.
fn traceback_function(lua: &Lua) -> mlua::Result<Function> {
    host_function(lua, |lua, (msg, level): (Value, Value)| {
        if let Value::Thread(_) = msg {
            return Err(mlua::Error::runtime(
                "debug.traceback: a coroutine argument is not supported in the sandbox",
            ));
        }
        let level = match level {
            Value::Nil => None,
            // Lua counts negative levels as 0.
            Value::Integer(n) => Some(usize::try_from(n).unwrap_or(0)),
            Value::Number(n) if n.fract() == 0.0 => Some(if n < 0.0 { 0 } else { n as usize }),
            other => return Err(bad_argument(2, "traceback", "number", &other)),
        };
        let text = match &msg {
            Value::Nil => None,
            Value::String(s) => Some(s.to_string_lossy()),
            Value::Integer(_) | Value::Number(_) => Some(msg.to_string()?),
            // Lua returns non-string messages untouched.
            _ => return Ok(msg),
        };
        // Level 1 of `lua.traceback` is the host wrapper (a C function that keeps its
        // caller's frame, even in tail position): skip it.
        let level = level.unwrap_or(1).saturating_add(1);
        let traceback = lua.traceback(text.as_deref(), level)?;
        let traceback = traceback.as_bytes();
        let mut out = Vec::with_capacity(traceback.len());
        let frames = traceback
            .split(|b| *b == b'\n')
            .filter(|line| !line.starts_with(b"\tluapool:"));
        for (i, line) in frames.enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(line);
        }
        Ok(Value::String(lua.create_string(out)?))
    })
}
