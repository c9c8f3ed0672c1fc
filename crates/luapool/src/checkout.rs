//! The checkout pool: VMs held on one thread (a `LocalSet`, a GUI or game loop).
//!
//! The user-facing guide (when to use it rather than the worker pool, the lifecycle of a
//! VM, the GC policy, cancellation) is on [`CheckoutPool`], because this module is not
//! public: its items are re-exported at the crate root.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{oneshot, Notify};

use crate::config::VmConfig;
use crate::error::{Error, Result};
use crate::host::Module;
use crate::vm::Vm;

/// Bytes a VM may grow by, since the pool last ran a garbage-collection step on it,
/// before the next return runs one; see the [module docs](CheckoutPool#lifecycle-of-a-vm).
pub(crate) const GC_GROWTH: usize = 256 << 10;

/// Without `max_memory`, a VM's memory is looked at every this many returns (reading it
/// costs a quarter of a checkout).
const MEMORY_CHECK_EVERY: u64 = 8;

/// Configuration of a [`CheckoutPool`]: plain data, `Default`, deserializable.
///
/// ```
/// use std::time::Duration;
/// use luapool::CheckoutPoolConfig;
///
/// let config: CheckoutPoolConfig = serde_json::from_str(
///    r#"{ "max_size": 8, "wait_timeout": "100ms", "max_memory": "32MiB" }"#,
/// ).unwrap();
/// assert_eq!(config.max_size, 8);
/// assert_eq!(config.wait_timeout, Some(Duration::from_millis(100)));
/// assert_eq!(config.max_memory, Some(32 << 20));
/// assert_eq!(config.prewarm, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CheckoutPoolConfig {
    /// Configuration of each VM (isolation, limits, modules). Default:
    /// `VmConfig::default()`.
    pub vm: VmConfig,
    /// Most VMs the pool holds, checked out or idle. Default: `16`.
    pub max_size: usize,
    /// VMs created when the pool is built, at most `max_size`. Default: `0` (all lazily).
    pub prewarm: usize,
    /// How long [`CheckoutPool::get`] waits for a VM when all are checked out before
    /// failing with [`Error::WaitTimeout`], e.g. `"100ms"` in config files; `None` waits
    /// as long as it takes. Default: none.
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub wait_timeout: Option<Duration>,
    /// Checkouts after which a VM is retired (dropped on return, and its slot freed for a
    /// fresh one). Default: none.
    pub max_uses: Option<u64>,
    /// Bytes of [`Vm::used_memory`] above which a returned VM is retired (a number, or a
    /// string like `"32MiB"` in config files). Default: none.
    #[serde(deserialize_with = "crate::config::bytes::deserialize")]
    pub max_memory: Option<usize>,
}

impl Default for CheckoutPoolConfig {
    fn default() -> Self {
        CheckoutPoolConfig {
            vm: VmConfig::default(),
            max_size: 16,
            prewarm: 0,
            wait_timeout: None,
            max_uses: None,
            max_memory: None,
        }
    }
}

impl CheckoutPoolConfig {
    /// Sets the configuration of each VM.
    pub fn with_vm(mut self, vm: VmConfig) -> Self {
        self.vm = vm;
        self
    }

    /// Sets the most VMs the pool holds.
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets how many VMs are created when the pool is built.
    pub fn with_prewarm(mut self, prewarm: usize) -> Self {
        self.prewarm = prewarm;
        self
    }

    /// Sets (or, with `None`, clears) how long `get` waits for a VM.
    pub fn with_wait_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.wait_timeout = timeout.into();
        self
    }

    /// Sets (or clears) the checkouts after which a VM is retired.
    pub fn with_max_uses(mut self, uses: impl Into<Option<u64>>) -> Self {
        self.max_uses = uses.into();
        self
    }

    /// Sets (or clears) the memory above which a returned VM is retired.
    pub fn with_max_memory(mut self, bytes: impl Into<Option<usize>>) -> Self {
        self.max_memory = bytes.into();
        self
    }
}

/// A snapshot of a [`CheckoutPool`]'s state and counters.
///
/// `size == idle + in_use` at all times.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckoutPoolStatus {
    /// The configured most VMs.
    pub max_size: usize,
    /// VMs the pool holds now, idle or checked out (including a slot reserved for a VM
    /// being created).
    pub size: usize,
    /// VMs ready to be checked out.
    pub idle: usize,
    /// VMs checked out, or handed to a waiting `get` that has not resumed yet.
    pub in_use: usize,
    /// Callers waiting for a VM.
    pub waiting: usize,
    /// VMs created over the pool's life.
    pub created: u64,
    /// VMs dropped on return because of `max_uses` or `max_memory`.
    pub retired: u64,
    /// VMs dropped on return because they were poisoned, their reset failed, or
    /// [`VmGuard::discard`] was called.
    pub discarded: u64,
}

/// A VM with the pool's bookkeeping. Boxed so checkouts move a pointer, not the VM.
struct Slot {
    vm: Vm,
    /// Checkouts so far.
    uses: u64,
    /// `used_memory` after the last GC step the pool ran.
    memory_after_gc: usize,
}

/// Runs incremental GC steps until a cycle finishes; returns the memory used then.
fn full_collection(vm: &Vm) -> Result<usize> {
    // A cycle that started before this call finishes first; the second one sees all
    // garbage made before the call. The bound only guards against a pathological heap.
    let mut cycles = 0;
    for _ in 0..1_000_000 {
        if vm.gc_step()? {
            cycles += 1;
            if cycles == 2 {
                break;
            }
        }
    }
    Ok(vm.used_memory())
}

/// What a returning guard or a cancelled waiter gives back. `None` is a slot without a
/// VM: the VM was dropped, or a waiter got the right to create one and did not.
type Handoff = Option<Box<Slot>>;

struct WaitEntry {
    id: u64,
    tx: oneshot::Sender<Handoff>,
}

#[derive(Default)]
struct State {
    // Boxed: a checkout, a return and a hand-off move a pointer, not the VM.
    #[allow(clippy::vec_box)]
    idle: Vec<Box<Slot>>,
    waiters: VecDeque<WaitEntry>,
    size: usize,
    in_use: usize,
    next_waiter: u64,
    created: u64,
    retired: u64,
    discarded: u64,
}

type Init = Box<dyn Fn(&Vm) -> Result<()>>;

struct Inner {
    config: CheckoutPoolConfig,
    modules: Vec<Module>,
    init: Option<Init>,
    closed: Cell<bool>,
    state: RefCell<State>,
    /// Notified when the last VM of a closed pool is dropped.
    drained: Notify,
}

/// What [`Inner::checkout`] found.
enum Checkout {
    Ready(Box<Slot>),
    /// A slot is reserved for the caller (counted in `size` and `in_use`): create a VM.
    Create,
    Wait(Waiter),
}

/// What to do with a returned VM.
enum Fate {
    Keep,
    Retire,
    Discard,
}

impl Inner {
    /// The hot path of a checkout: an idle VM, if there is one and the pool is open.
    #[inline]
    fn pop_idle(&self) -> Option<Box<Slot>> {
        if self.closed.get() {
            return None;
        }
        let mut st = self.state.borrow_mut();
        let slot = st.idle.pop()?;
        st.in_use += 1;
        Some(slot)
    }

    fn checkout(self: &Rc<Self>, wait: bool) -> Result<Checkout> {
        if self.closed.get() {
            return Err(Error::Closed);
        }
        let mut st = self.state.borrow_mut();
        if let Some(slot) = st.idle.pop() {
            st.in_use += 1;
            return Ok(Checkout::Ready(slot));
        }
        if st.size < self.config.max_size {
            st.size += 1;
            st.in_use += 1;
            return Ok(Checkout::Create);
        }
        if !wait {
            return Err(Error::Busy {
                what: format!("all {} VMs are checked out", self.config.max_size),
            });
        }
        let (tx, rx) = oneshot::channel();
        let id = st.next_waiter;
        st.next_waiter += 1;
        st.waiters.push_back(WaitEntry { id, tx });
        Ok(Checkout::Wait(Waiter {
            pool: Rc::clone(self),
            id,
            rx,
            finished: false,
        }))
    }

    /// Builds a VM for a reserved slot; frees the slot if that fails (or panics).
    fn create(self: &Rc<Self>) -> Result<VmGuard> {
        struct Reservation<'a>(Option<&'a Inner>);
        impl Drop for Reservation<'_> {
            fn drop(&mut self) {
                if let Some(pool) = self.0 {
                    pool.give_back(None);
                }
            }
        }
        let mut reservation = Reservation(Some(self));
        let slot = self.new_slot()?;
        reservation.0 = None;
        self.state.borrow_mut().created += 1;
        Ok(VmGuard::new(Rc::clone(self), slot))
    }

    fn new_slot(&self) -> Result<Box<Slot>> {
        let vm = Vm::new(self.config.vm.clone())?;
        for module in &self.modules {
            vm.register_module(module.clone())?;
        }
        if let Some(init) = &self.init {
            init(&vm)?;
        }
        let memory_after_gc = vm.used_memory();
        Ok(Box::new(Slot {
            vm,
            uses: 0,
            memory_after_gc,
        }))
    }

    /// Resets a returned VM and decides whether it goes back.
    #[inline]
    fn recycle(&self, slot: &mut Slot) -> Fate {
        let vm = &slot.vm;
        if vm.poisoned().is_some() || vm.reset().is_err() {
            return Fate::Discard;
        }
        if self.config.max_uses.is_some_and(|max| slot.uses >= max) {
            return Fate::Retire;
        }
        if self.config.max_memory.is_none() && !slot.uses.is_multiple_of(MEMORY_CHECK_EVERY) {
            return Fate::Keep;
        }
        self.check_memory(slot)
    }

    /// The memory part of [`recycle`](Inner::recycle): a GC step after growth, and the
    /// `max_memory` check.
    #[cold]
    #[inline(never)]
    fn check_memory(&self, slot: &mut Slot) -> Fate {
        let vm = &slot.vm;
        let mut used = vm.used_memory();
        if used < slot.memory_after_gc {
            // Lua's own collector freed memory since: grow from the lower mark.
            slot.memory_after_gc = used;
        } else if used - slot.memory_after_gc >= GC_GROWTH {
            if vm.gc_step().is_err() {
                return Fate::Discard;
            }
            used = vm.used_memory();
            slot.memory_after_gc = used;
        }
        match self.config.max_memory {
            Some(max) if used > max => {
                // Garbage does not count: only memory a full collection cannot free.
                match full_collection(vm) {
                    Ok(after) if after <= max => {
                        slot.memory_after_gc = after;
                        Fate::Keep
                    }
                    Ok(_) => Fate::Retire,
                    Err(_) => Fate::Discard,
                }
            }
            _ => Fate::Keep,
        }
    }

    /// Takes back a checked-out slot: with its VM (`Some`, already recycled) or without.
    fn give_back(&self, handoff: Handoff) {
        let dropped = self.give_back_inner(handoff);
        drop(dropped); // outside the borrow: dropping a Lua state runs finalizers
    }

    fn give_back_inner(&self, mut handoff: Handoff) -> Handoff {
        let mut st = self.state.borrow_mut();
        st.in_use -= 1;
        if !self.closed.get() {
            if handoff.is_none() {
                // A free slot: the oldest waiter may create a VM in it.
            } else if st.waiters.is_empty() {
                st.idle.extend(handoff);
                return None;
            }
            while let Some(waiter) = st.waiters.pop_front() {
                match waiter.tx.send(handoff) {
                    Ok(()) => {
                        st.in_use += 1;
                        return None;
                    }
                    Err(back) => handoff = back,
                }
            }
            if handoff.is_some() {
                st.idle.extend(handoff);
                return None;
            }
        }
        st.size -= 1;
        if self.closed.get() && st.size == 0 {
            self.drained.notify_waiters();
        }
        handoff
    }

    fn check_in(&self, mut slot: Box<Slot>, fate: Option<Fate>) {
        if self.closed.get() {
            return self.give_back(Some(slot));
        }
        let fate = fate.unwrap_or_else(|| self.recycle(&mut slot));
        match fate {
            Fate::Keep => self.give_back(Some(slot)),
            Fate::Retire | Fate::Discard => {
                {
                    let mut st = self.state.borrow_mut();
                    match fate {
                        Fate::Retire => st.retired += 1,
                        _ => st.discarded += 1,
                    }
                }
                drop(slot);
                self.give_back(None);
            }
        }
    }
}

/// A `get` waiting in the queue. Dropping it before it got its VM leaves the queue, or
/// gives back what the pool handed to it.
struct Waiter {
    pool: Rc<Inner>,
    id: u64,
    rx: oneshot::Receiver<Handoff>,
    finished: bool,
}

impl Waiter {
    async fn wait(&mut self) -> Result<Handoff> {
        let handoff = (&mut self.rx).await;
        self.finished = true;
        handoff.map_err(|_| Error::Closed)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let entry = {
            let mut st = self.pool.state.borrow_mut();
            let position = st.waiters.iter().position(|w| w.id == self.id);
            position.and_then(|p| st.waiters.remove(p))
        };
        if entry.is_some() {
            return;
        }
        // Not in the queue any more: the pool handed us a VM or a slot, or was closed.
        self.rx.close();
        if let Ok(handoff) = self.rx.try_recv() {
            self.pool.give_back(handoff);
        }
    }
}

/// A pool of [`Vm`]s checked out and used on one thread.
///
/// A `CheckoutPool` lends [`Vm`]s to code running on the pool's own thread. You
/// [`get`](CheckoutPool::get) a [`VmGuard`], use the VM through it as long as you like
/// (several calls, async host functions, your own state in between), and the VM goes
/// back to the pool when the guard is dropped. The pool is `!Send` because VMs are: it
/// lives on one thread, typically a current-thread runtime or a
/// [`LocalSet`](tokio::task::LocalSet), and clones of it are cheap handles to the same
/// VMs.
///
/// ```
/// use luapool::{CheckoutPoolConfig, CheckoutPool, Script};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let pool = CheckoutPool::builder(CheckoutPoolConfig::default().with_max_size(4))
///     .init(|vm| vm.register("double", |n: i64| Ok(n * 2)))
///     .build()?;
/// let vm = pool.get().await?;
/// let n: i64 = vm.eval(&Script::new("job.lua", "return double(21)"))?;
/// assert_eq!(n, 42);
/// drop(vm); // back to the pool, ready for the next `get`
/// assert_eq!(pool.status().idle, 1);
/// # Ok::<(), luapool::Error>(())
/// # }).unwrap();
/// ```
///
/// ## Checkout pool or worker pool?
///
/// | | [`CheckoutPool`] | [`WorkerPool`](crate::WorkerPool) |
/// |---|---|---|
/// | where the VMs run | on your thread | on the pool's threads, one per VM |
/// | what you hand over | nothing: you hold the VM | a [`Job`](crate::Job) (script, function, [`Value`](crate::Value)s) |
/// | handle | `!Send`, `Clone` | `Send + Sync`, `Clone` |
/// | cost of one use | about 15 ns (`get` and return of an idle VM) | a cross-thread round trip (microseconds) |
/// | parallelism | one core | one core per worker |
/// | use it for | one thread that runs many short scripts and wants to keep Lua values, register per-use host functions, or interleave Lua with its own work | services on a multi-thread runtime, CPU-heavy scripts, isolation of a stuck VM |
///
/// ## Lifecycle of a VM
///
/// - **Created** lazily by [`get`](CheckoutPool::get) when no VM is idle and the pool
///   has fewer than [`max_size`](CheckoutPoolConfig::max_size) VMs, or up front
///   ([`prewarm`](CheckoutPoolConfig::prewarm)). The builder's *init recipe* runs on each new
///   VM.
/// - **Checked out** by one caller at a time. When every VM is checked out, callers wait
///   in FIFO order, up to [`wait_timeout`](CheckoutPoolConfig::wait_timeout).
/// - **Returned** when its [`VmGuard`] drops: the VM is [`reset`](Vm::reset) (a no-op in
///   the default [`Isolation::PerExecution`](crate::Isolation::PerExecution) mode, where
///   executions never see each other's globals), and handed straight to the oldest
///   waiter or put back as idle. Idle VMs are reused most-recently-returned first, so a
///   lightly loaded pool keeps using the same warm VMs.
/// - **Discarded** on return if it is [poisoned](Vm::poisoned) or its reset failed, and
///   **retired** after [`max_uses`](CheckoutPoolConfig::max_uses) checkouts or above
///   [`max_memory`](CheckoutPoolConfig::max_memory). Either frees its slot, so the next
///   caller gets a fresh VM.
///
/// Garbage collection: Lua collects incrementally as scripts allocate, so the pool does
/// not run the collector on every return: one incremental step ([`Vm::gc_step`]) costs
/// about a microsecond even on an idle VM, a hundred times the rest of a checkout. A
/// return runs one step only when the VM has grown by 256 KiB since the last
/// step (or since Lua's own collector last brought it lower), which makes the extra work
/// proportional to what scripts keep. The pool looks at the memory every eighth return
/// of a VM, since even reading it costs a third of a checkout. With
/// [`max_memory`](CheckoutPoolConfig::max_memory) set, it looks on every return, and a VM
/// above the limit is fully collected before it is judged, so garbage alone never retires
/// a VM.
///
/// ## Cancellation
///
/// A `get` future may be dropped at any point (a `select!`, a timeout, an aborted task):
/// it leaves the wait queue, and a VM the pool had already handed to it goes back to the
/// pool (or to the next waiter).
#[derive(Clone)]
pub struct CheckoutPool {
    inner: Rc<Inner>,
}

/// Builds a [`CheckoutPool`]; see [`CheckoutPool::builder`].
pub struct CheckoutPoolBuilder {
    config: CheckoutPoolConfig,
    modules: Vec<Module>,
    init: Option<Init>,
}

impl CheckoutPoolBuilder {
    /// Registers `module` on every VM of the pool (before the init recipe runs).
    pub fn module(mut self, module: Module) -> Self {
        self.modules.push(module);
        self
    }

    /// Sets the init recipe, run on every new VM before it is first checked out: register
    /// host functions and modules, set globals, compile scripts. A recipe error fails the
    /// `get` (or [`build`](CheckoutPoolBuilder::build), when prewarming) that created the
    /// VM.
    ///
    /// ```
    /// use luapool::{CheckoutPoolConfig, CheckoutPool, Value, Vm};
    ///
    /// let pool = CheckoutPool::builder(CheckoutPoolConfig::default().with_prewarm(1))
    ///     .init(|vm: &Vm| vm.set_global("REGION", Value::from("eu")))
    ///     .build()?;
    /// assert_eq!(pool.status().created, 1);
    /// # Ok::<(), luapool::Error>(())
    /// ```
    pub fn init(mut self, recipe: impl Fn(&Vm) -> Result<()> + 'static) -> Self {
        self.init = Some(Box::new(recipe));
        self
    }

    /// Builds the pool and creates the [`prewarm`](CheckoutPoolConfig::prewarm) VMs.
    ///
    /// # Errors
    /// [`Error::Config`] if `max_size` is 0 or `prewarm` exceeds it; the error of
    /// [`Vm::new`] or of the recipe if a prewarmed VM cannot be built.
    pub fn build(self) -> Result<CheckoutPool> {
        let config = self.config;
        if config.max_size == 0 {
            return Err(Error::Config {
                message: "a checkout pool needs a max_size of at least 1".to_string(),
            });
        }
        if config.prewarm > config.max_size {
            return Err(Error::Config {
                message: format!(
                    "prewarm ({}) exceeds max_size ({})",
                    config.prewarm, config.max_size
                ),
            });
        }
        let prewarm = config.prewarm;
        let inner = Inner {
            state: RefCell::new(State {
                idle: Vec::with_capacity(config.max_size),
                ..State::default()
            }),
            config,
            modules: self.modules,
            init: self.init,
            closed: Cell::new(false),
            drained: Notify::new(),
        };
        let mut idle = Vec::with_capacity(inner.config.max_size);
        for _ in 0..prewarm {
            idle.push(inner.new_slot()?);
        }
        {
            let mut st = inner.state.borrow_mut();
            st.size = idle.len();
            st.created = idle.len() as u64;
            st.idle = idle;
        }
        Ok(CheckoutPool {
            inner: Rc::new(inner),
        })
    }
}

impl fmt::Debug for CheckoutPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckoutPoolBuilder")
            .field("config", &self.config)
            .field("modules", &self.modules)
            .field("init", &self.init.is_some())
            .finish()
    }
}

impl CheckoutPool {
    /// A pool with `config` and no init recipe; see [`builder`](CheckoutPool::builder) to
    /// give one.
    ///
    /// ```
    /// use luapool::{CheckoutPoolConfig, CheckoutPool};
    ///
    /// let pool = CheckoutPool::new(CheckoutPoolConfig::default().with_max_size(2))?;
    /// assert_eq!(pool.status().max_size, 2);
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`CheckoutPoolBuilder::build`].
    pub fn new(config: CheckoutPoolConfig) -> Result<CheckoutPool> {
        CheckoutPool::builder(config).build()
    }

    /// A builder with `config` and no init recipe.
    pub fn builder(config: CheckoutPoolConfig) -> CheckoutPoolBuilder {
        CheckoutPoolBuilder {
            config,
            modules: Vec::new(),
            init: None,
        }
    }

    /// The configuration the pool was built from.
    pub fn config(&self) -> &CheckoutPoolConfig {
        &self.inner.config
    }

    /// Checks out a VM: an idle one, else a new one if the pool has fewer than
    /// `max_size`, else the next one returned (callers are served in FIFO order), waiting
    /// at most [`wait_timeout`](CheckoutPoolConfig::wait_timeout).
    ///
    /// Cancel-safe: dropping the future leaves the queue, and gives back a VM it was
    /// handed but had not returned yet.
    ///
    /// ```
    /// use luapool::{CheckoutPoolConfig, CheckoutPool, Script, Value};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let pool = CheckoutPool::new(CheckoutPoolConfig::default())?;
    /// let vm = pool.get().await?;
    /// assert_eq!(vm.exec(&Script::new("one.lua", "return 1"))?, vec![Value::Integer(1)]);
    /// # Ok::<(), luapool::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::WaitTimeout`] after waiting `wait_timeout`; [`Error::Closed`] if the pool
    /// is closed, before or while waiting; the error of [`Vm::new`] or of the init recipe
    /// if a new VM cannot be built.
    pub async fn get(&self) -> Result<VmGuard> {
        match self.idle_guard() {
            Some(vm) => Ok(vm),
            // Boxed: the slow path's future (a queue entry and a timer) is ten times the
            // size of the fast path's, and every future awaiting `get` would carry it.
            None => Box::pin(self.checkout(self.inner.config.wait_timeout)).await,
        }
    }

    /// Like [`get`](CheckoutPool::get), waiting at most `timeout` instead of the configured
    /// `wait_timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use luapool::{CheckoutPoolConfig, CheckoutPool, Error};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let pool = CheckoutPool::new(CheckoutPoolConfig::default().with_max_size(1))?;
    /// let held = pool.get().await?;
    /// let err = pool.get_timeout(Duration::from_millis(5)).await.unwrap_err();
    /// assert!(matches!(err, Error::WaitTimeout { .. }));
    /// drop(held);
    /// # Ok::<(), luapool::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`get`](CheckoutPool::get), with [`Error::WaitTimeout`] after `timeout`.
    pub async fn get_timeout(&self, timeout: Duration) -> Result<VmGuard> {
        match self.idle_guard() {
            Some(vm) => Ok(vm),
            None => Box::pin(self.checkout(Some(timeout))).await,
        }
    }

    /// The hot path of every checkout.
    #[inline]
    fn idle_guard(&self) -> Option<VmGuard> {
        let slot = self.inner.pop_idle()?;
        Some(VmGuard::new(Rc::clone(&self.inner), slot))
    }

    /// The slow path: create a VM, or wait for one.
    async fn checkout(&self, timeout: Option<Duration>) -> Result<VmGuard> {
        let mut waiter = match self.inner.checkout(true)? {
            Checkout::Ready(slot) => return Ok(VmGuard::new(Rc::clone(&self.inner), slot)),
            Checkout::Create => return self.inner.create(),
            Checkout::Wait(waiter) => waiter,
        };
        let handoff = match timeout {
            None => waiter.wait().await?,
            Some(limit) => tokio::time::timeout(limit, waiter.wait())
                .await
                .map_err(|_| Error::WaitTimeout { waited: limit })??,
        };
        if self.inner.closed.get() {
            self.inner.give_back(handoff);
            return Err(Error::Closed);
        }
        match handoff {
            Some(slot) => Ok(VmGuard::new(Rc::clone(&self.inner), slot)),
            None => self.inner.create(),
        }
    }

    /// Checks out a VM without waiting: an idle one, or a new one if the pool has fewer
    /// than `max_size`.
    ///
    /// ```
    /// use luapool::{CheckoutPoolConfig, CheckoutPool, Error};
    ///
    /// let pool = CheckoutPool::new(CheckoutPoolConfig::default().with_max_size(1))?;
    /// let vm = pool.try_get()?;
    /// assert!(matches!(pool.try_get(), Err(Error::Busy { .. })));
    /// drop(vm);
    /// assert!(pool.try_get().is_ok());
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Busy`] if all `max_size` VMs are checked out; [`Error::Closed`] if the pool
    /// is closed; the error of [`Vm::new`] or of the init recipe if a new VM cannot be
    /// built.
    #[inline]
    pub fn try_get(&self) -> Result<VmGuard> {
        match self.idle_guard() {
            Some(vm) => Ok(vm),
            None => self.try_create(),
        }
    }

    fn try_create(&self) -> Result<VmGuard> {
        match self.inner.checkout(false)? {
            Checkout::Ready(slot) => Ok(VmGuard::new(Rc::clone(&self.inner), slot)),
            Checkout::Create => self.inner.create(),
            // `checkout(false)` never queues; a waiter dropped here just leaves the queue.
            Checkout::Wait(_) => Err(Error::Busy {
                what: format!("all {} VMs are checked out", self.inner.config.max_size),
            }),
        }
    }

    /// A snapshot of the pool's state and counters.
    ///
    /// ```
    /// use luapool::{CheckoutPoolConfig, CheckoutPool};
    ///
    /// let pool = CheckoutPool::new(CheckoutPoolConfig::default().with_prewarm(2))?;
    /// let vm = pool.try_get()?;
    /// let status = pool.status();
    /// assert_eq!((status.size, status.idle, status.in_use), (2, 1, 1));
    /// # drop(vm);
    /// # Ok::<(), luapool::Error>(())
    /// ```
    pub fn status(&self) -> CheckoutPoolStatus {
        let st = self.inner.state.borrow();
        CheckoutPoolStatus {
            max_size: self.inner.config.max_size,
            size: st.size,
            idle: st.idle.len(),
            in_use: st.in_use,
            waiting: st.waiters.len(),
            created: st.created,
            retired: st.retired,
            discarded: st.discarded,
        }
    }

    /// Whether [`close`](CheckoutPool::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the pool: new `get`s fail with [`Error::Closed`], so do waiting ones, idle
    /// VMs are dropped; then waits until every checked-out VM has been returned (and
    /// dropped). Calling it again waits again.
    ///
    /// ```
    /// use luapool::{CheckoutPoolConfig, CheckoutPool, Error};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let pool = CheckoutPool::new(CheckoutPoolConfig::default())?;
    /// let vm = pool.get().await?;
    /// tokio::join!(pool.close(), async move { drop(vm) });
    /// assert_eq!(pool.status().size, 0);
    /// assert!(matches!(pool.get().await, Err(Error::Closed)));
    /// # Ok::<(), luapool::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn close(&self) {
        self.inner.closed.set(true);
        let (idle, waiters) = {
            let mut st = self.inner.state.borrow_mut();
            let idle = std::mem::take(&mut st.idle);
            st.size -= idle.len();
            (idle, std::mem::take(&mut st.waiters))
        };
        drop(waiters); // wakes them with `Closed`
        drop(idle);
        loop {
            let drained = self.inner.drained.notified();
            if self.inner.state.borrow().size == 0 {
                return;
            }
            drained.await;
        }
    }
}

impl fmt::Debug for CheckoutPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckoutPool")
            .field("config", &self.inner.config)
            .field("status", &self.status())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A [`Vm`] checked out of a [`CheckoutPool`]; derefs to the VM and gives it back when
/// dropped (reset, or discarded if poisoned; see the [module docs](CheckoutPool#lifecycle-of-a-vm)).
pub struct VmGuard {
    pool: Rc<Inner>,
    /// `Some` until dropped or discarded.
    slot: Option<Box<Slot>>,
}

impl VmGuard {
    fn new(pool: Rc<Inner>, mut slot: Box<Slot>) -> VmGuard {
        slot.uses += 1;
        VmGuard {
            pool,
            slot: Some(slot),
        }
    }

    /// How many times this VM has been checked out, this time included. An associated
    /// function (`VmGuard::uses(&vm)`), so that it never shadows a method of [`Vm`].
    pub fn uses(this: &VmGuard) -> u64 {
        this.slot.as_ref().map_or(0, |s| s.uses)
    }

    /// Drops the VM instead of giving it back (counted in
    /// [`CheckoutPoolStatus::discarded`]); its slot is freed for a fresh VM. For a VM whose
    /// state you no longer trust.
    ///
    /// ```
    /// use luapool::{CheckoutPoolConfig, CheckoutPool, VmGuard};
    ///
    /// let pool = CheckoutPool::new(CheckoutPoolConfig::default())?;
    /// VmGuard::discard(pool.try_get()?);
    /// assert_eq!((pool.status().size, pool.status().discarded), (0, 1));
    /// # Ok::<(), luapool::Error>(())
    /// ```
    pub fn discard(mut this: VmGuard) {
        if let Some(slot) = this.slot.take() {
            this.pool.check_in(slot, Some(Fate::Discard));
        }
    }
}

impl Deref for VmGuard {
    type Target = Vm;

    fn deref(&self) -> &Vm {
        match &self.slot {
            Some(slot) => &slot.vm,
            None => unreachable!("a VmGuard holds its VM until it is dropped"),
        }
    }
}

impl Drop for VmGuard {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.pool.check_in(slot, None);
        }
    }
}

impl fmt::Debug for VmGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmGuard")
            .field("uses", &VmGuard::uses(self))
            .finish_non_exhaustive()
    }
}
