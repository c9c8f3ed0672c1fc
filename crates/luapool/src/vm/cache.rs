//! Per-VM cache of compiled chunks, keyed by script name and source.

use std::collections::HashMap;
use std::rc::Rc;

use crate::script::Script;

/// A small least-recently-used cache.
pub(crate) struct ChunkCache<T> {
    capacity: usize,
    tick: u64,
    entries: HashMap<u64, Entry<T>>,
}

struct Entry<T> {
    script: Script,
    value: Rc<T>,
    last_used: u64,
}

impl<T> ChunkCache<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        ChunkCache {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    /// The cached value of `script`, if it was compiled before.
    pub(crate) fn get(&mut self, script: &Script) -> Option<Rc<T>> {
        self.tick += 1;
        let entry = self.entries.get_mut(&script.hash())?;
        if !entry.script.same_as(script) {
            return None;
        }
        entry.last_used = self.tick;
        Some(Rc::clone(&entry.value))
    }

    /// Remembers the value of `script`, evicting the least recently used entry if full.
    pub(crate) fn insert(&mut self, script: &Script, value: Rc<T>) {
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
                value,
                last_used: self.tick,
            },
        );
    }

    /// Every cached value.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Rc<T>> {
        self.entries.values().map(|e| &e.value)
    }

    /// Number of cached chunks.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_source_under_two_names_is_two_entries() {
        let mut cache = ChunkCache::new(4);
        let (a, b) = (Script::new("a", "return 1"), Script::new("b", "return 1"));
        cache.insert(&a, Rc::new(1));
        assert!(cache.get(&b).is_none());
        cache.insert(&b, Rc::new(2));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&a).as_deref(), Some(&1));
        assert_eq!(cache.get(&b).as_deref(), Some(&2));
    }

    #[test]
    fn evicts_least_recently_used() {
        let mut cache = ChunkCache::new(2);
        let (a, b, c) = (
            Script::new("a", "1"),
            Script::new("b", "2"),
            Script::new("c", "3"),
        );
        cache.insert(&a, Rc::new(1));
        cache.insert(&b, Rc::new(2));
        assert!(cache.get(&a).is_some());
        cache.insert(&c, Rc::new(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&b).is_none());
        assert!(cache.get(&a).is_some() && cache.get(&c).is_some());
    }
}
