//! Shared dictionaries: small key/value stores shared by every VM of the process, like
//! OpenResty's `lua_shared_dict`.
//!
//! Each VM owns its Lua state, so nothing a script builds is visible to another VM. A
//! [`SharedDict`] lives outside every Lua state: its entries are plain Rust values
//! ([`DictValue`]: strings, integers, floats, booleans) behind one mutex per dictionary,
//! held only to look up or store one entry. Install a set of them into a VM with
//! [`Vm::register_shared_dicts`](crate::Vm::register_shared_dicts); scripts reach them as
//! `shared.<name>` (see [`SharedDicts`]).
//!
//! - **Capacity** is counted in entries and in bytes ([`SharedDictConfig::max_bytes`]:
//!   keys, values and [`SharedDictConfig::ENTRY_OVERHEAD`] per entry). Storing an entry that does not fit
//!   evicts the least recently used entries until it does (a read counts as a use).
//! - **Value size**: a value larger than [`SharedDictConfig::max_value_bytes`] (or an
//!   entry larger than the whole byte capacity) is refused with
//!   [`DictErrorKind::TooLarge`]; nothing is evicted for it.
//! - **Expiry**: an entry stored with a time to live is invisible once it has expired and
//!   is purged lazily (when it is next touched, counted or listed, or evicted).

mod lua;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::value::Value;

pub(crate) use lua::install;

/// Configuration of one shared dictionary, e.g. a `[[shared_dict]]` table of a config
/// file.
///
/// ```
/// use luapool::{SharedDictConfig, SharedDicts};
///
/// let configs: Vec<SharedDictConfig> = serde_json::from_str(
///     r#"[{ "name": "cache", "capacity": 1000, "max_bytes": "16MiB", "max_value_bytes": "64KiB" }]"#,
/// ).unwrap();
/// let dicts = SharedDicts::from_config(&configs)?;
/// let cache = dicts.get("cache").expect("configured above");
/// assert_eq!((cache.capacity(), cache.max_bytes(), cache.max_value_bytes()), (1000, 16 << 20, 64 << 10));
///
/// let small = SharedDictConfig::new("small", 10).with_max_bytes(4096);
/// assert_eq!(small.max_value_bytes, None); // DEFAULT_MAX_VALUE_BYTES, at most max_bytes
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedDictConfig {
    /// The dictionary's name: scripts reach it as `shared.<name>` (or `shared["<name>"]`).
    pub name: String,
    /// Most entries the dictionary holds; at least 1.
    pub capacity: usize,
    /// Most bytes the entries take together (keys, values and [`SharedDictConfig::ENTRY_OVERHEAD`] each); at
    /// least 1. A number of bytes or a string such as `"64MiB"`; `None`:
    /// [`SharedDictConfig::DEFAULT_MAX_BYTES`].
    #[serde(default, deserialize_with = "crate::config::bytes::deserialize")]
    pub max_bytes: Option<usize>,
    /// Most bytes of one value (a string's length; 8 for a number); at least 1. `None`:
    /// [`SharedDictConfig::DEFAULT_MAX_VALUE_BYTES`], or `max_bytes` if that is smaller.
    #[serde(default, deserialize_with = "crate::config::bytes::deserialize")]
    pub max_value_bytes: Option<usize>,
}

/// Byte capacity of a dictionary whose configuration gives none (64 MiB).
pub(crate) const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// Largest value of a dictionary whose configuration gives no limit (1 MiB).
pub(crate) const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;
/// Bytes each entry is counted for besides its key and value: the map slot, the LRU
/// index, the `Arc`s.
pub(crate) const ENTRY_OVERHEAD: usize = 96;

impl SharedDictConfig {
    /// Byte capacity of a dictionary whose configuration gives none (64 MiB).
    pub const DEFAULT_MAX_BYTES: usize = DEFAULT_MAX_BYTES;
    /// Largest value of a dictionary whose configuration gives no limit (1 MiB).
    pub const DEFAULT_MAX_VALUE_BYTES: usize = DEFAULT_MAX_VALUE_BYTES;
    /// Bytes each entry is counted for besides its key and value: the map slot, the LRU
    /// index, the `Arc`s.
    pub const ENTRY_OVERHEAD: usize = ENTRY_OVERHEAD;

    /// A dictionary of `capacity` entries with the default byte limits.
    pub fn new(name: impl Into<String>, capacity: usize) -> Self {
        SharedDictConfig {
            name: name.into(),
            capacity,
            max_bytes: None,
            max_value_bytes: None,
        }
    }

    /// Sets the byte capacity.
    pub fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Sets the largest value.
    pub fn with_max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = Some(bytes);
        self
    }
}

/// The limits of one dictionary, resolved from its configuration.
#[derive(Debug, Clone, Copy)]
struct Limits {
    entries: usize,
    bytes: usize,
    value_bytes: usize,
}

/// A set of named [`SharedDict`]s, shared by every VM (and thread) it is registered on.
///
/// Cheap to clone (an `Arc` inside), `Send` and `Sync`: build it once, then register a
/// clone on each VM, typically in a worker pool's `init` recipe. Scripts see a read-only
/// global table `shared` (also `require("shared")`) holding one object per dictionary,
/// used with colon calls:
///
/// | call | result |
/// |---|---|
/// | `d:get(key)` | the value, or `nil` if missing or expired |
/// | `d:set(key, value [, ttl])` | `true`, or `false, "too large"`; a `nil` value deletes the key |
/// | `d:add(key, value [, ttl])` | `true`, or `false, "exists"` if the key is there, or `false, "too large"` |
/// | `d:incr(key, n [, init])` | the new number, or `nil, "not found"` / `nil, "not a number"` / `nil, "too large"` |
/// | `d:delete(key)` | nothing |
/// | `d:keys([max])` | an array of up to `max` keys (default 1024, `0` for all), most recently used first |
///
/// Keys are strings (numbers are converted like `tostring` does); values are strings,
/// numbers or booleans, at most [`SharedDict::max_value_bytes`] long; `ttl` is in seconds
/// (`0` or `nil`: no expiry).
///
/// ```
/// use luapool::{Script, SharedDicts, Value, Vm, VmConfig};
///
/// let dicts = SharedDicts::new([("cache", 1000)])?;
/// let (a, b) = (Vm::new(VmConfig::default())?, Vm::new(VmConfig::default())?);
/// a.register_shared_dicts(&dicts)?;
/// b.register_shared_dicts(&dicts)?;
///
/// a.exec(&Script::new("w.lua", "shared.cache:set('greeting', 'hello', 60)"))?;
/// let got = b.exec(&Script::new("r.lua", "return shared.cache:get('greeting')"))?;
/// assert_eq!(got, vec![Value::from("hello")]);
///
/// // The host sees the same entries.
/// let cache = dicts.get("cache").expect("configured above");
/// assert_eq!(cache.get("greeting"), Some("hello".into()));
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedDicts {
    dicts: Arc<BTreeMap<String, SharedDict>>,
    /// Dictionaries kept outside the process: their methods are a module's host
    /// functions (see [`SharedDicts::with_backend`]).
    backends: Arc<Vec<crate::host::Module>>,
}

impl SharedDicts {
    /// Builds the dictionaries from `(name, capacity)` pairs, with the default byte
    /// limits ([`SharedDictConfig::DEFAULT_MAX_BYTES`], [`SharedDictConfig::DEFAULT_MAX_VALUE_BYTES`]).
    ///
    /// # Errors
    /// [`Error::Config`] for an empty or repeated name, or a capacity of 0.
    pub fn new<I, N>(dicts: I) -> Result<SharedDicts>
    where
        I: IntoIterator<Item = (N, usize)>,
        N: Into<String>,
    {
        let configs: Vec<SharedDictConfig> = dicts
            .into_iter()
            .map(|(name, capacity)| SharedDictConfig::new(name, capacity))
            .collect();
        SharedDicts::from_config(&configs)
    }

    /// Builds the dictionaries from their configurations.
    ///
    /// # Errors
    /// As [`SharedDicts::new`], and for a byte limit of 0.
    pub fn from_config(configs: &[SharedDictConfig]) -> Result<SharedDicts> {
        SharedDicts::with_clock(configs, Clock::system())
    }

    pub(crate) fn with_clock(configs: &[SharedDictConfig], clock: Clock) -> Result<SharedDicts> {
        let mut map = BTreeMap::new();
        for config in configs {
            let name = config.name.clone();
            if name.is_empty() {
                return Err(config_error("a shared dict needs a name"));
            }
            if config.capacity == 0 {
                return Err(config_error(format!(
                    "shared dict '{name}' needs a capacity of at least 1"
                )));
            }
            if config.max_bytes == Some(0) || config.max_value_bytes == Some(0) {
                return Err(config_error(format!(
                    "shared dict '{name}' needs byte limits of at least 1"
                )));
            }
            if map.contains_key(&name) {
                return Err(config_error(format!(
                    "shared dict '{name}' is configured twice"
                )));
            }
            let bytes = config.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
            let limits = Limits {
                entries: config.capacity,
                bytes,
                value_bytes: config
                    .max_value_bytes
                    .unwrap_or(DEFAULT_MAX_VALUE_BYTES)
                    .min(bytes),
            };
            let dict = SharedDict::new(name.clone(), limits, clock.clone());
            map.insert(name, dict);
        }
        Ok(SharedDicts {
            dicts: Arc::new(map),
            backends: Arc::new(Vec::new()),
        })
    }

    /// Adds a dictionary kept outside the process (in Redis, say: `luapool-redis` makes
    /// them): scripts reach it as `shared.<name>`, `name` being the module's name, and its
    /// methods are the module's functions, called with a colon (the first argument is the
    /// dictionary's object, which the functions ignore). The methods should be those of
    /// the dictionaries kept here (`get`, `set`, `add`, `incr`, `delete`, `keys`), so
    /// that scripts need not know where a dictionary lives; they may be async.
    ///
    /// ```
    /// use luapool::{Module, Script, SharedDicts, Value, Vm, VmConfig};
    ///
    /// let remote = Module::new("remote").function("get", |(_this, key): (Value, String)| {
    ///     Ok(format!("value of {key}"))
    /// });
    /// let dicts = SharedDicts::new([("local", 10)])?.with_backend(remote)?;
    /// let vm = Vm::new(VmConfig::default())?;
    /// vm.register_shared_dicts(&dicts)?;
    /// let v: String = vm.eval(&Script::new("t", "return shared.remote:get('k')"))?;
    /// assert_eq!(v, "value of k");
    /// # Ok::<(), luapool::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] if a dictionary of that name exists already, or the name is
    /// empty.
    pub fn with_backend(mut self, methods: crate::host::Module) -> Result<SharedDicts> {
        let name = methods.name.clone();
        if name.is_empty() {
            return Err(config_error("a shared dict needs a name"));
        }
        if self.dicts.contains_key(&name) || self.backends.iter().any(|m| m.name == name) {
            return Err(config_error(format!(
                "shared dict '{name}' is configured twice"
            )));
        }
        Arc::make_mut(&mut self.backends).push(methods);
        Ok(self)
    }

    /// The names of the dictionaries kept outside the process (see
    /// [`SharedDicts::with_backend`]).
    pub fn backend_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.backends.iter().map(|m| m.name.as_str())
    }

    pub(crate) fn backends(&self) -> &[crate::host::Module] {
        &self.backends
    }

    /// The dictionary called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<SharedDict> {
        self.dicts.get(name).cloned()
    }

    /// The dictionaries kept in this process, by name.
    pub fn iter(&self) -> impl Iterator<Item = &SharedDict> + '_ {
        self.dicts.values()
    }

    /// Number of dictionaries (of either kind).
    pub fn len(&self) -> usize {
        self.dicts.len() + self.backends.len()
    }

    /// True if there are no dictionaries (of either kind).
    pub fn is_empty(&self) -> bool {
        self.dicts.is_empty() && self.backends.is_empty()
    }
}

impl std::fmt::Debug for SharedDicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.dicts.values())
            .entries(self.backends.iter())
            .finish()
    }
}

fn config_error(message: impl Into<String>) -> Error {
    Error::Config {
        message: message.into(),
    }
}

/// A value stored in a [`SharedDict`].
///
/// Strings are bytes (not necessarily UTF-8) behind an `Arc`, so reading one copies no
/// bytes while the dictionary is locked.
#[derive(Debug, Clone, PartialEq)]
pub enum DictValue {
    /// A string.
    String(Arc<[u8]>),
    /// An integer.
    Integer(i64),
    /// A float.
    Number(f64),
    /// A boolean.
    Boolean(bool),
}

impl DictValue {
    /// The bytes the value is counted for: a string's length, 8 for the others.
    pub fn size(&self) -> usize {
        match self {
            DictValue::String(s) => s.len(),
            _ => 8,
        }
    }

    /// The string's bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            DictValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The string as UTF-8 text, if this is a string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The number, if this is an integer or a float.
    pub fn as_number(&self) -> Option<DictNumber> {
        match *self {
            DictValue::Integer(i) => Some(DictNumber::Integer(i)),
            DictValue::Number(n) => Some(DictNumber::Number(n)),
            _ => None,
        }
    }
}

impl From<&str> for DictValue {
    fn from(s: &str) -> Self {
        DictValue::String(s.as_bytes().into())
    }
}

impl From<String> for DictValue {
    fn from(s: String) -> Self {
        DictValue::String(s.into_bytes().into())
    }
}

impl From<&[u8]> for DictValue {
    fn from(b: &[u8]) -> Self {
        DictValue::String(b.into())
    }
}

impl From<Vec<u8>> for DictValue {
    fn from(b: Vec<u8>) -> Self {
        DictValue::String(b.into())
    }
}

impl From<i64> for DictValue {
    fn from(i: i64) -> Self {
        DictValue::Integer(i)
    }
}

impl From<i32> for DictValue {
    fn from(i: i32) -> Self {
        DictValue::Integer(i.into())
    }
}

impl From<f64> for DictValue {
    fn from(n: f64) -> Self {
        DictValue::Number(n)
    }
}

impl From<bool> for DictValue {
    fn from(b: bool) -> Self {
        DictValue::Boolean(b)
    }
}

impl From<DictNumber> for DictValue {
    fn from(n: DictNumber) -> Self {
        match n {
            DictNumber::Integer(i) => DictValue::Integer(i),
            DictNumber::Number(n) => DictValue::Number(n),
        }
    }
}

impl From<DictValue> for Value {
    fn from(v: DictValue) -> Self {
        match v {
            DictValue::String(s) => Value::String(s.to_vec()),
            DictValue::Integer(i) => Value::Integer(i),
            DictValue::Number(n) => Value::Number(n),
            DictValue::Boolean(b) => Value::Boolean(b),
        }
    }
}

/// A number for [`SharedDict::incr`]: an integer or a float, added like Lua adds them
/// (integers wrap around; a float makes the sum a float).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DictNumber {
    /// An integer.
    Integer(i64),
    /// A float.
    Number(f64),
}

impl DictNumber {
    fn add(self, other: DictNumber) -> DictNumber {
        match (self, other) {
            (DictNumber::Integer(a), DictNumber::Integer(b)) => {
                DictNumber::Integer(a.wrapping_add(b))
            }
            (a, b) => DictNumber::Number(a.as_f64() + b.as_f64()),
        }
    }

    /// The number as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            DictNumber::Integer(i) => i as f64,
            DictNumber::Number(n) => n,
        }
    }
}

impl From<i64> for DictNumber {
    fn from(i: i64) -> Self {
        DictNumber::Integer(i)
    }
}

impl From<i32> for DictNumber {
    fn from(i: i32) -> Self {
        DictNumber::Integer(i.into())
    }
}

impl From<f64> for DictNumber {
    fn from(n: f64) -> Self {
        DictNumber::Number(n)
    }
}

/// Why a [`SharedDict`] operation failed; carried by [`Error::SharedDict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DictErrorKind {
    /// [`SharedDict::incr`] without an initial value on a missing (or expired) key.
    NotFound,
    /// [`SharedDict::incr`] on a key holding a string or a boolean.
    NotANumber,
    /// The value is larger than the dictionary's
    /// [`max_value_bytes`](SharedDictConfig::max_value_bytes), or the entry larger than
    /// its whole byte capacity.
    TooLarge,
}

impl std::fmt::Display for DictErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DictErrorKind::NotFound => "not found",
            DictErrorKind::NotANumber => "not a number",
            DictErrorKind::TooLarge => "too large",
        })
    }
}

/// Where a dictionary reads the time: the system's monotonic clock, or (in tests) a clock
/// that moves only when told to.
#[derive(Clone)]
pub(crate) struct Clock {
    origin: Instant,
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    fn system() -> Clock {
        Clock {
            origin: Instant::now(),
            manual: None,
        }
    }

    /// A clock standing still at 0 until `advance` is called on it (or a clone).
    #[cfg(test)]
    pub(crate) fn manual() -> Clock {
        Clock {
            origin: Instant::now(),
            manual: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Moves a manual clock forward.
    #[cfg(test)]
    pub(crate) fn advance(&self, by: Duration) {
        if let Some(nanos) = &self.manual {
            let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            nanos.fetch_add(by, Ordering::Relaxed);
        }
    }

    /// Time since the clock's origin.
    fn now(&self) -> Duration {
        match &self.manual {
            Some(nanos) => Duration::from_nanos(nanos.load(Ordering::Relaxed)),
            None => self.origin.elapsed(),
        }
    }
}

/// One shared dictionary: a bounded, least-recently-used map from string keys to
/// [`DictValue`]s with optional expiry. Cheap to clone (an `Arc` inside); every clone is
/// the same dictionary.
///
/// ```
/// use std::time::Duration;
/// use luapool::{DictNumber, DictValue, SharedDicts};
///
/// let dicts = SharedDicts::new([("hits", 2)])?;
/// let hits = dicts.get("hits").expect("configured above");
/// assert_eq!(hits.incr("/", 1, Some(DictNumber::Integer(0)))?, DictNumber::Integer(1));
/// assert!(hits.add("/about", 5, Some(Duration::from_secs(60)))?);
/// assert!(!hits.add("/about", 6, None)?);
/// assert_eq!(hits.get("/about"), Some(DictValue::Integer(5)));
/// hits.set("/new", true, None)?; // full: evicts "/", the least recently used
/// assert_eq!(hits.get("/"), None);
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedDict {
    inner: Arc<DictInner>,
}

struct DictInner {
    name: String,
    limits: Limits,
    clock: Clock,
    store: Mutex<Store>,
}

impl SharedDict {
    fn new(name: String, limits: Limits, clock: Clock) -> SharedDict {
        SharedDict {
            inner: Arc::new(DictInner {
                name,
                limits,
                clock,
                store: Mutex::new(Store::default()),
            }),
        }
    }

    /// The dictionary's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Most entries the dictionary holds.
    pub fn capacity(&self) -> usize {
        self.inner.limits.entries
    }

    /// Most bytes the entries take together (see [`SharedDictConfig::max_bytes`]).
    pub fn max_bytes(&self) -> usize {
        self.inner.limits.bytes
    }

    /// Largest value the dictionary takes, in bytes.
    pub fn max_value_bytes(&self) -> usize {
        self.inner.limits.value_bytes
    }

    /// Bytes the live and not yet purged entries are counted for.
    pub fn used_bytes(&self) -> usize {
        self.store().bytes
    }

    /// The store, locked. A panic while the lock was held cannot leave an entry
    /// half-written (every update is a single assignment), so a poisoned lock is used as is.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key`, or `None` if it is missing or expired. Counts as a use.
    pub fn get(&self, key: &str) -> Option<DictValue> {
        let now = self.inner.clock.now();
        let mut store = self.store();
        store.live(key, now).map(|slot| slot.value.clone())
    }

    /// Stores `value` under `key`, expiring after `ttl` (never if `None`), replacing any
    /// previous value. When the entry does not fit (in entries or bytes), the least
    /// recently used entries are evicted until it does.
    ///
    /// # Errors
    /// [`Error::SharedDict`] with [`DictErrorKind::TooLarge`] if the value is larger than
    /// [`max_value_bytes`](SharedDict::max_value_bytes) or the entry larger than
    /// [`max_bytes`](SharedDict::max_bytes); the dictionary is left unchanged.
    pub fn set(&self, key: &str, value: impl Into<DictValue>, ttl: Option<Duration>) -> Result<()> {
        let value = value.into();
        self.check_size(key, &value)?;
        let now = self.inner.clock.now();
        let expires = ttl.map(|t| now.saturating_add(t));
        self.store().put(key, value, expires, &self.inner.limits);
        Ok(())
    }

    /// Stores `value` under `key` only if the key is missing (or expired); returns whether
    /// it did.
    ///
    /// # Errors
    /// As [`SharedDict::set`].
    pub fn add(
        &self,
        key: &str,
        value: impl Into<DictValue>,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        let value = value.into();
        self.check_size(key, &value)?;
        let now = self.inner.clock.now();
        let mut store = self.store();
        if store.live(key, now).is_some() {
            return Ok(false);
        }
        let expires = ttl.map(|t| now.saturating_add(t));
        store.put(key, value, expires, &self.inner.limits);
        Ok(true)
    }

    /// Refuses a value larger than the dictionary takes.
    fn check_size(&self, key: &str, value: &DictValue) -> Result<()> {
        let limits = &self.inner.limits;
        if value.size() > limits.value_bytes || entry_size(key, value) > limits.bytes {
            return Err(self.error(key, DictErrorKind::TooLarge));
        }
        Ok(())
    }

    /// Adds `by` to the number under `key` and returns the sum. A missing (or expired) key
    /// is created as `init + by` (without expiry) when `init` is given. The entry keeps its
    /// expiry; the update counts as a use.
    ///
    /// # Errors
    /// [`Error::SharedDict`] with [`DictErrorKind::NotFound`] if the key is missing and
    /// there is no `init`, [`DictErrorKind::NotANumber`] if it holds a string or a
    /// boolean, [`DictErrorKind::TooLarge`] if a new entry does not fit at all.
    pub fn incr(
        &self,
        key: &str,
        by: impl Into<DictNumber>,
        init: Option<DictNumber>,
    ) -> Result<DictNumber> {
        let by = by.into();
        let now = self.inner.clock.now();
        let mut store = self.store();
        if let Some(slot) = store.live(key, now) {
            let current = slot
                .value
                .as_number()
                .ok_or_else(|| self.error(key, DictErrorKind::NotANumber))?;
            let sum = current.add(by);
            slot.value = sum.into();
            return Ok(sum);
        }
        let init = init.ok_or_else(|| self.error(key, DictErrorKind::NotFound))?;
        let sum = init.add(by);
        let value = sum.into();
        self.check_size(key, &value)?;
        store.put(key, value, None, &self.inner.limits);
        Ok(sum)
    }

    /// Removes `key`; returns whether it held a value that had not expired.
    pub fn delete(&self, key: &str) -> bool {
        let now = self.inner.clock.now();
        self.store()
            .remove(key)
            .is_some_and(|slot| !slot.expired(now))
    }

    /// Up to `max` keys of entries that have not expired, most recently used first
    /// (`usize::MAX` for all). Does not count as a use.
    pub fn keys(&self, max: usize) -> Vec<String> {
        let now = self.inner.clock.now();
        let keys: Vec<Arc<str>> = {
            let mut store = self.store();
            store.purge(now);
            store.order.values().rev().take(max).cloned().collect()
        };
        keys.iter().map(|k| k.to_string()).collect()
    }

    /// Number of entries that have not expired (purges the expired ones).
    pub fn len(&self) -> usize {
        let now = self.inner.clock.now();
        let mut store = self.store();
        store.purge(now);
        store.entries.len()
    }

    /// True if no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn error(&self, key: &str, reason: DictErrorKind) -> Error {
        Error::SharedDict {
            dict: self.inner.name.clone(),
            key: key.to_string(),
            reason,
        }
    }
}

impl std::fmt::Debug for SharedDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDict")
            .field("name", &self.inner.name)
            .field("capacity", &self.inner.limits.entries)
            .field("max_bytes", &self.inner.limits.bytes)
            .finish_non_exhaustive()
    }
}

/// The bytes an entry is counted for.
fn entry_size(key: &str, value: &DictValue) -> usize {
    key.len()
        .saturating_add(value.size())
        .saturating_add(ENTRY_OVERHEAD)
}

/// The entries of one dictionary and their order of use.
#[derive(Default)]
struct Store {
    entries: HashMap<Arc<str>, Slot>,
    /// Keys by last use (a tick of [`Store::tick`]), oldest first.
    order: BTreeMap<u64, Arc<str>>,
    tick: u64,
    /// What the entries are counted for together (see [`entry_size`]).
    bytes: usize,
}

struct Slot {
    value: DictValue,
    /// When the entry expires, on the dictionary's clock.
    expires: Option<Duration>,
    /// The tick of its last use: its key in [`Store::order`].
    used: u64,
}

impl Slot {
    fn expired(&self, now: Duration) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

impl Store {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The live entry of `key`, marked as just used; an expired one is removed.
    fn live(&mut self, key: &str, now: Duration) -> Option<&mut Slot> {
        if self.entries.get(key)?.expired(now) {
            self.remove(key);
            return None;
        }
        let tick = self.next_tick();
        let slot = self.entries.get_mut(key)?;
        if let Some(k) = self.order.remove(&slot.used) {
            self.order.insert(tick, k);
        }
        slot.used = tick;
        Some(slot)
    }

    /// Stores an entry, replacing the key's, then evicting the least recently used others
    /// while the entries or their bytes exceed `limits`. The caller has checked that the
    /// entry fits on its own.
    fn put(&mut self, key: &str, value: DictValue, expires: Option<Duration>, limits: &Limits) {
        let size = entry_size(key, &value);
        self.remove(key);
        let key: Arc<str> = Arc::from(key);
        while self.entries.len() >= limits.entries || self.bytes.saturating_add(size) > limits.bytes
        {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.entries.remove(&oldest) {
                self.bytes = self.bytes.saturating_sub(entry_size(&oldest, &slot.value));
            }
        }
        let tick = self.next_tick();
        self.order.insert(tick, Arc::clone(&key));
        self.bytes = self.bytes.saturating_add(size);
        self.entries.insert(
            key,
            Slot {
                value,
                expires,
                used: tick,
            },
        );
    }

    fn remove(&mut self, key: &str) -> Option<Slot> {
        let slot = self.entries.remove(key)?;
        self.order.remove(&slot.used);
        self.bytes = self.bytes.saturating_sub(entry_size(key, &slot.value));
        Some(slot)
    }

    /// Removes every expired entry.
    fn purge(&mut self, now: Duration) {
        let expired: Vec<Arc<str>> = self
            .entries
            .iter()
            .filter(|(_, slot)| slot.expired(now))
            .map(|(k, _)| Arc::clone(k))
            .collect();
        for key in expired {
            self.remove(&key);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dict(capacity: usize) -> (SharedDict, Clock) {
        let clock = Clock::manual();
        let dicts = SharedDicts::with_clock(&[SharedDictConfig::new("d", capacity)], clock.clone())
            .unwrap();
        (dicts.get("d").unwrap(), clock)
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn set_get_delete() {
        let (d, _) = dict(10);
        assert_eq!(d.get("a"), None);
        d.set("a", "x", None).unwrap();
        d.set("b", 2, None).unwrap();
        d.set("c", 2.5, None).unwrap();
        d.set("e", false, None).unwrap();
        assert_eq!(d.get("a"), Some(DictValue::from("x")));
        assert_eq!(d.get("b"), Some(DictValue::Integer(2)));
        assert_eq!(d.get("c"), Some(DictValue::Number(2.5)));
        assert_eq!(d.get("e"), Some(DictValue::Boolean(false)));
        d.set("a", "y", None).unwrap();
        assert_eq!(d.get("a").unwrap().as_str(), Some("y"));
        assert_eq!(d.len(), 4);
        assert!(d.delete("a"));
        assert!(!d.delete("a"));
        assert_eq!(d.get("a"), None);
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn entries_expire_on_the_clock() {
        let (d, clock) = dict(10);
        d.set("short", 1, Some(SEC)).unwrap();
        d.set("long", 2, Some(10 * SEC)).unwrap();
        d.set("forever", 3, None).unwrap();
        clock.advance(SEC - Duration::from_nanos(1));
        assert_eq!(d.get("short"), Some(DictValue::Integer(1)));
        clock.advance(Duration::from_nanos(1));
        assert_eq!(d.get("short"), None);
        assert_eq!(d.len(), 2);
        clock.advance(100 * SEC);
        assert_eq!(d.keys(usize::MAX), vec!["forever".to_string()]);
        assert_eq!(d.get("long"), None);
        assert_eq!(d.get("forever"), Some(DictValue::Integer(3)));
    }

    #[test]
    fn set_replaces_the_ttl() {
        let (d, clock) = dict(10);
        d.set("k", 1, Some(SEC)).unwrap();
        d.set("k", 2, None).unwrap();
        clock.advance(2 * SEC);
        assert_eq!(d.get("k"), Some(DictValue::Integer(2)));
        d.set("k", 3, Some(SEC)).unwrap();
        clock.advance(SEC);
        assert_eq!(d.get("k"), None);
    }

    #[test]
    fn add_only_adds_missing_or_expired_keys() {
        let (d, clock) = dict(10);
        assert!(d.add("k", 1, Some(SEC)).unwrap());
        assert!(!d.add("k", 2, None).unwrap());
        assert_eq!(d.get("k"), Some(DictValue::Integer(1)));
        clock.advance(SEC);
        assert!(d.add("k", 3, None).unwrap());
        assert_eq!(d.get("k"), Some(DictValue::Integer(3)));
    }

    #[test]
    fn incr_adds_like_lua() {
        let (d, clock) = dict(10);
        let err = d.incr("n", 1, None).unwrap_err();
        assert!(matches!(
            err,
            Error::SharedDict { reason: DictErrorKind::NotFound, ref key, ref dict } if key == "n" && dict == "d"
        ));
        assert_eq!(err.to_string(), "shared dict 'd': not found (key 'n')");
        assert_eq!(
            d.incr("n", 1, Some(DictNumber::Integer(10))).unwrap(),
            DictNumber::Integer(11)
        );
        assert_eq!(d.incr("n", 2, None).unwrap(), DictNumber::Integer(13));
        assert_eq!(d.incr("n", 0.5, None).unwrap(), DictNumber::Number(13.5));
        assert_eq!(d.get("n"), Some(DictValue::Number(13.5)));
        d.set("max", i64::MAX, None).unwrap();
        assert_eq!(
            d.incr("max", 1, None).unwrap(),
            DictNumber::Integer(i64::MIN)
        );
        d.set("s", "5", None).unwrap();
        assert!(matches!(
            d.incr("s", 1, Some(DictNumber::Integer(0))),
            Err(Error::SharedDict {
                reason: DictErrorKind::NotANumber,
                ..
            })
        ));
        // incr keeps the entry's expiry.
        d.set("t", 1, Some(SEC)).unwrap();
        assert_eq!(d.incr("t", 1, None).unwrap(), DictNumber::Integer(2));
        clock.advance(SEC);
        assert_eq!(d.get("t"), None);
        assert!(d.incr("t", 1, None).is_err());
    }

    #[test]
    fn full_dict_evicts_least_recently_used() {
        let (d, _) = dict(3);
        d.set("a", 1, None).unwrap();
        d.set("b", 2, None).unwrap();
        d.set("c", 3, None).unwrap();
        assert!(d.get("a").is_some()); // a is now the most recent; b the oldest
        d.set("d", 4, None).unwrap();
        assert_eq!(d.get("b"), None);
        assert_eq!(d.len(), 3);
        d.set("c", 30, None).unwrap(); // replacing is a use and evicts nothing
        d.set("e", 5, None).unwrap(); // evicts a
        assert_eq!(d.get("a"), None);
        assert_eq!(d.keys(usize::MAX), vec!["e", "c", "d"]);
        assert_eq!(d.keys(2), vec!["e", "c"]);
        assert!(d.add("f", 6, None).unwrap()); // add evicts too (d)
        assert_eq!(d.keys(usize::MAX), vec!["f", "e", "c"]);
        assert_eq!(
            d.incr("g", 1, Some(0.into())).unwrap(),
            DictNumber::Integer(1)
        );
        assert_eq!(d.keys(usize::MAX), vec!["g", "f", "e"]);
    }

    #[test]
    fn keys_and_len_do_not_count_as_use() {
        let (d, _) = dict(2);
        d.set("a", 1, None).unwrap();
        d.set("b", 2, None).unwrap();
        assert_eq!(d.keys(usize::MAX), vec!["b", "a"]);
        assert_eq!(d.len(), 2);
        d.set("c", 3, None).unwrap();
        assert_eq!(d.keys(usize::MAX), vec!["c", "b"]);
    }

    #[test]
    fn config_is_validated() {
        assert!(SharedDicts::new([("", 1)]).is_err());
        assert!(SharedDicts::new([("a", 0)]).is_err());
        assert!(matches!(
            SharedDicts::new([("a", 1), ("a", 2)]),
            Err(Error::Config { ref message }) if message.contains("twice")
        ));
        let dicts = SharedDicts::new([("b", 1), ("a", 2)]).unwrap();
        let names: Vec<&str> = dicts.iter().map(SharedDict::name).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert!(dicts.get("c").is_none());
        assert_eq!(dicts.len(), 2);
    }

    #[test]
    fn clones_share_entries_across_threads() {
        let dicts = SharedDicts::new([("d", 100)]).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let dicts = dicts.clone();
                std::thread::spawn(move || {
                    let d = dicts.get("d").unwrap();
                    for _ in 0..1000 {
                        d.incr("n", 1, Some(0.into())).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            dicts.get("d").unwrap().get("n"),
            Some(DictValue::Integer(4000))
        );
    }

    #[test]
    fn types_are_send_and_sync() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<SharedDicts>();
        check::<SharedDict>();
        check::<DictValue>();
    }
}
