//! One Lua state with its sandbox, its chunk cache and its shared globals.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mlua::{Function, Lua, Table};

use crate::engine;
use crate::error::{classify, Result};
use crate::limits::{LimitKind, Limits, MemoryShare, Meter};
use crate::sandbox::{self, Output, Sandbox, SandboxData, Shim};
use crate::script::Script;
use crate::vm::cache::ChunkCache;
use crate::vm::Registration;
use crate::{Poison, VmConfig};

/// A compiled script.
pub(crate) struct Compiled {
    /// `main(env, ...)` runs the script with globals `env` (see `engine::chunk`).
    pub(crate) main: Function,
    /// Trusted states with shared globals: the script compiled as Lua's main chunk of
    /// the state's globals (and `main` ignores its `env`).
    plain: Option<Function>,
    /// The entry points of this script, each made on first use (those bound to the
    /// shared globals are forgotten with them, see [`State::reset_shared`]).
    /// Indexed by [`Entry::slot`].
    entries: [RefCell<Option<Function>>; 8],
}

/// The ways a compiled script is entered; see [`State::entry`].
#[derive(Clone, Copy)]
pub(crate) enum Entry {
    /// `(...)`: the chunk in a fresh environment.
    Fresh = 0,
    /// `(name, ...)`: the chunk in a fresh environment, then its global `name`.
    FreshThenCall = 1,
    /// `(...)`: the chunk in the shared globals.
    Shared = 2,
    /// `(name, ...)`: the chunk in the shared globals, then its global `name`.
    SharedThenCall = 3,
}

impl Entry {
    /// The index of this entry in [`Compiled::entries`]: sync executions' entries
    /// first, then async ones' (see [`State::entry`]).
    fn slot(self, on_coroutine: bool) -> usize {
        self as usize + 4 * usize::from(on_coroutine)
    }
}

pub(crate) struct State {
    pub(crate) sandbox: Sandbox,
    /// A trusted state with shared globals: scripts are compiled as they are (main
    /// chunks of the state's own globals), as the `lua` interpreter runs them.
    plain: bool,
    /// Trusted states with shared globals: the globals as the host set them up, which
    /// [`reset_shared`](State::reset_shared) restores.
    pristine: Option<Table>,
    /// The globals of `Isolation::Shared` mode.
    shared_env: RefCell<Table>,
    cache: RefCell<ChunkCache<Compiled>>,
    poison: Cell<Option<Poison>>,
    /// The absolute memory cap of the Lua state, when it has a memory limit.
    memory_cap: Option<usize>,
}

impl State {
    pub(crate) fn build(
        config: &VmConfig,
        limits: &Limits,
        output: Output,
        registrations: &[Registration],
    ) -> Result<State> {
        let sandbox = sandbox::build(config, limits, output).map_err(|e| classify(e, None))?;
        for reg in registrations {
            reg.apply(&sandbox)?;
        }
        let trusted = sandbox.data.trusted;
        let plain = trusted && config.isolation == crate::Isolation::Shared;
        let shared_env = if trusted {
            sandbox.data.base.clone()
        } else {
            sandbox
                .data
                .new_env(&sandbox.lua)
                .map_err(|e| classify(e, None))?
        };
        let pristine = if plain {
            Some(sandbox::shallow_copy(&sandbox.lua, &shared_env).map_err(|e| classify(e, None))?)
        } else {
            None
        };
        let mut memory_cap = None;
        if let Some(limit) = limits.memory {
            // Counted from here, so that the sandbox itself does not eat the budget.
            let lua = &sandbox.lua;
            let cap = lua
                .used_memory()
                .saturating_add(crate::limits::memory_cap(limit));
            lua.set_memory_limit(cap).map_err(|e| classify(e, None))?;
            memory_cap = Some(cap);
        }
        Ok(State {
            sandbox,
            plain,
            pristine,
            shared_env: RefCell::new(shared_env),
            cache: RefCell::new(ChunkCache::new(config.chunk_cache_capacity)),
            poison: Cell::new(None),
            memory_cap,
        })
    }

    pub(crate) fn lua(&self) -> &Lua {
        &self.sandbox.lua
    }

    pub(crate) fn data(&self) -> &SandboxData {
        &self.sandbox.data
    }

    pub(crate) fn shim(&self) -> Result<&Shim> {
        self.data().shim(self.lua()).map_err(|e| classify(e, None))
    }

    /// The compiled `script`, from the cache or freshly compiled. With a `meter`, the
    /// compilation is part of the execution it meters: its limits stop a long one.
    pub(crate) fn compiled(
        &self,
        script: &Script,
        meter: Option<&mut Meter>,
    ) -> Result<Rc<Compiled>> {
        if let Some(c) = self.cache.borrow_mut().get(script) {
            return Ok(c);
        }
        let plain = self.plain;
        let compiled = match meter {
            None => compile(self.lua(), self.shim()?, script, plain)?,
            Some(meter) => {
                let shim = self.shim()?;
                let result = meter.aside(self.lua().state(), || {
                    compile(self.lua(), shim, script, plain)
                });
                if meter.tripped() {
                    // The limit error replaces whatever the compiler reported.
                    let (result, stopped) = meter.finish(result);
                    self.note(stopped, false);
                    result?
                } else {
                    result?
                }
            }
        };
        let (main, plain) = compiled;
        let compiled = Rc::new(Compiled {
            main,
            plain,
            entries: Default::default(),
        });
        self.cache.borrow_mut().insert(script, Rc::clone(&compiled));
        Ok(compiled)
    }

    /// The function that enters `compiled` the way `entry` says, made once per script,
    /// for a sync execution or (`on_coroutine`) an async one, which runs on a coroutine
    /// of its own (see [`guarded`](State::guarded)).
    pub(crate) fn entry(
        &self,
        compiled: &Compiled,
        entry: Entry,
        on_coroutine: bool,
    ) -> Result<Function> {
        let cell = &compiled.entries[entry.slot(on_coroutine)];
        if let Some(f) = &*cell.borrow() {
            return Ok(f.clone());
        }
        let err = |e| classify(e, None);
        let shim = self.shim()?;
        // Trusted states make per-execution globals their own way.
        let fresh = match self.data().trusted {
            true => Some(self.data().fresh_env(self.lua()).map_err(err)?.clone()),
            false => None,
        };
        let f: Function = match entry {
            Entry::Fresh => shim.runner.call((&compiled.main, fresh)).map_err(err)?,
            Entry::FreshThenCall => shim.caller.call((&compiled.main, fresh)).map_err(err)?,
            Entry::Shared => match &compiled.plain {
                Some(chunk) => chunk.clone(),
                None => shim
                    .bind
                    .call((&compiled.main, self.shared_env()))
                    .map_err(err)?,
            },
            Entry::SharedThenCall => shim
                .shared_caller
                .call((self.shared_env(), &compiled.main))
                .map_err(err)?,
        };
        let f = self.guarded(f, on_coroutine)?;
        *cell.borrow_mut() = Some(f.clone());
        Ok(f)
    }

    /// `f` as the entry of an execution: preceded by the limits' prologue when the VM
    /// has limits; else, for an execution `on_coroutine` (an async one), recording its
    /// coroutine (see the sandbox's `main_thread.rs`). A sync execution runs on the
    /// state's main thread, which already looks like Lua's main thread.
    pub(crate) fn guarded(&self, f: Function, on_coroutine: bool) -> Result<Function> {
        self.data()
            .entry(self.lua(), f, on_coroutine)
            .map_err(|e| classify(e, None))
    }

    /// A share of this state's memory for one execution, when it has a memory limit.
    pub(crate) fn memory_share(&self, limit: Option<usize>) -> Option<MemoryShare> {
        Some(MemoryShare::new(limit?, self.memory_cap?))
    }

    /// Why this state should not be used again, if it should not.
    pub(crate) fn poison(&self) -> Option<Poison> {
        if self.data().host_panicked.get() {
            return Some(Poison::HostPanic);
        }
        self.poison.get()
    }

    /// Records that the limit `stopped`, if any, stopped an execution.
    pub(crate) fn note(&self, stopped: Option<LimitKind>, shared_globals: bool) {
        let Some(kind) = stopped else {
            return;
        };
        if kind == LimitKind::Memory {
            // Lua 5.4 collects garbage before it reports an allocation failure; LuaJIT
            // does not, so the failed execution's garbage would make the next one fail
            // too. A full collection now frees it on every engine.
            let _ = self.lua().gc_collect();
        }
        // Lua's state is consistent after a memory error, and what a script stopped at an
        // arbitrary instruction was updating goes with its execution: only state that
        // outlives the execution (modules, shared globals) can be half-built or
        // half-updated.
        if !(shared_globals || self.has_modules()) {
            return;
        }
        if self.poison.get().is_none() {
            self.poison.set(Some(Poison::after(kind)));
        }
    }

    fn has_modules(&self) -> bool {
        // A trusted script can change the libraries, which outlive it.
        if self.data().trusted {
            return true;
        }
        self.data()
            .loaded
            .pairs::<mlua::Value, mlua::Value>()
            .next()
            .is_some()
    }

    /// The globals of `Isolation::Shared` mode.
    pub(crate) fn shared_env(&self) -> Table {
        self.shared_env.borrow().clone()
    }

    /// Forgets the shared globals (and the entry points bound to them; the compiled
    /// scripts stay cached). A trusted state's globals are put back as the host set
    /// them up.
    pub(crate) fn reset_shared(&self) -> Result<()> {
        if let Some(pristine) = &self.pristine {
            return restore_table(&self.shared_env(), pristine).map_err(|e| classify(e, None));
        }
        let env = self
            .data()
            .new_env(self.lua())
            .map_err(|e| classify(e, None))?;
        *self.shared_env.borrow_mut() = env;
        // The compiled scripts stay; their entries bound to the old globals go (they
        // would keep those globals alive).
        for compiled in self.cache.borrow().values() {
            for entry in [Entry::Shared, Entry::SharedThenCall] {
                for on_coroutine in [false, true] {
                    compiled.entries[entry.slot(on_coroutine)].take();
                }
            }
        }
        Ok(())
    }

    /// Records what the host just registered under `name` as part of the globals
    /// [`reset_shared`](State::reset_shared) restores.
    pub(crate) fn registered(&self, name: &str) -> Result<()> {
        if let Some(pristine) = &self.pristine {
            let value: mlua::Value = self
                .shared_env()
                .raw_get(name)
                .map_err(|e| classify(e, None))?;
            pristine
                .raw_set(name, value)
                .map_err(|e| classify(e, None))?;
        }
        Ok(())
    }

    /// Number of compiled chunks in the cache.
    pub(crate) fn cached_chunks(&self) -> usize {
        self.cache.borrow().len()
    }
}

/// Makes `table` hold exactly what `saved` holds (raw accesses).
fn restore_table(table: &Table, saved: &Table) -> mlua::Result<()> {
    let keys: Vec<mlua::Value> = table
        .pairs::<mlua::Value, mlua::Value>()
        .map(|pair| pair.map(|(k, _)| k))
        .collect::<mlua::Result<_>>()?;
    for k in keys {
        table.raw_set(k, mlua::Value::Nil)?;
    }
    for pair in saved.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair?;
        table.raw_set(k, v)?;
    }
    Ok(())
}

/// Compiles `script` (as text) into its main function, through the shim's `compile` (so
/// that the execution's limits can stop a long compilation). A `plain` script is also
/// returned as the compiled chunk itself, bound to the state's globals.
///
/// The script is first compiled as it is, so that syntax errors are exactly Lua's, with the
/// script's own line numbers; then wrapped (see `engine::chunk`).
fn compile(
    lua: &Lua,
    shim: &Shim,
    script: &Script,
    plain: bool,
) -> Result<(Function, Option<Function>)> {
    let load = |source: &[u8]| -> Result<Function> {
        let classified = |e| classify(e, None);
        let source = lua.create_string(source).map_err(classified)?;
        let (f, message): (Option<Function>, Option<String>) = shim
            .compile
            .call((source, script.chunk_name(), mlua::Value::Nil))
            .map_err(classified)?;
        f.ok_or_else(|| {
            let message = message.unwrap_or_else(|| "cannot compile".to_string());
            classify(
                mlua::Error::SyntaxError {
                    message,
                    incomplete_input: false,
                },
                Some(script.name()),
            )
        })
    };
    let chunk = load(script.source())?;
    if plain {
        let main = shim
            .ignore_env
            .call(&chunk)
            .map_err(|e| classify(e, None))?;
        return Ok((main, Some(chunk)));
    }
    let chunk = load(&engine::chunk::wrap(script.source()))?;
    let main = engine::chunk::main(lua, chunk).map_err(|e| classify(e, None))?;
    Ok((main, None))
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("used_memory", &self.lua().used_memory())
            .finish()
    }
}
