//! Per-VM cache of compiled chunks, keyed by script name and source.

use std::collections::HashMap;

use mlua::Function;

use crate::script::Script;

/// A small least-recently-used cache of compiled chunk factories.
pub(crate) struct ChunkCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<u64, Entry>,
}

struct Entry {
    script: Script,
    factory: Function,
    last_used: u64,
}

impl ChunkCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ChunkCache {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    /// The cached factory of `script`, if it was compiled before.
    pub(crate) fn get(&mut self, script: &Script) -> Option<Function> {
        self.tick += 1;
        let entry = self.entries.get_mut(&script.hash())?;
        if !entry.script.same_as(script) {
            return None;
        }
        entry.last_used = self.tick;
        Some(entry.factory.clone())
    }

    /// Remembers the factory of `script`, evicting the least recently used entry if full.
    pub(crate) fn insert(&mut self, script: &Script, factory: Function) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&script.hash()) {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
            script.hash(),
            Entry {
                script: script.clone(),
                factory,
                last_used: self.tick,
            },
        );
    }

    /// Number of cached chunks.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
