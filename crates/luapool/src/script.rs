//! [`Script`]: Lua source with a name, cheap to clone and to send to another thread.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A Lua chunk: its name (used in error messages as `name:line:`) and its source text.
///
/// A `Script` is `Send + Sync` and cheap to clone, so it can be built once and run many
/// times, on many VMs. Each VM caches the compiled chunk by name and source, so running the
/// same script again does not recompile it.
///
/// ```
/// use luapool::Script;
///
/// let script = Script::new("add.lua", "return 1 + 2");
/// assert_eq!(script.name(), "add.lua");
/// ```
#[derive(Clone)]
pub struct Script {
    inner: Arc<ScriptInner>,
}

struct ScriptInner {
    name: String,
    /// Lua chunk name: `@name` so that Lua reports `name:line:`.
    chunk_name: String,
    source: Vec<u8>,
    hash: u64,
}

impl Script {
    /// Creates a script from a name and source text.
    pub fn new(name: impl Into<String>, source: impl Into<Vec<u8>>) -> Self {
        let name = name.into();
        let mut source = source.into();
        // Like `lua FILE`, ignore a first line starting with '#' (a shebang), keeping the
        // line numbers of the rest.
        if source.first() == Some(&b'#') {
            source.splice(0..0, *b"--");
        }
        // The hash covers the name too: the chunk cache keys by name and source, since the
        // name is compiled into the chunk (it is what error messages and tracebacks show).
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut hasher);
        source.hash(&mut hasher);
        let hash = hasher.finish();
        Script {
            inner: Arc::new(ScriptInner {
                chunk_name: format!("@{name}"),
                name,
                source,
                hash,
            }),
        }
    }

    /// Reads a script from a file; its name is the path as given.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let source = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source: source.into(),
        })?;
        Ok(Script::new(path.display().to_string(), source))
    }

    /// The script's name, as it appears in error messages.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The script's source text.
    pub fn source(&self) -> &[u8] {
        &self.inner.source
    }

    pub(crate) fn chunk_name(&self) -> &str {
        &self.inner.chunk_name
    }

    /// A hash of the name and the source.
    pub(crate) fn hash(&self) -> u64 {
        self.inner.hash
    }

    /// True if both scripts have the same name and source.
    pub(crate) fn same_as(&self, other: &Script) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.hash == other.inner.hash
                && self.inner.name == other.inner.name
                && self.inner.source == other.inner.source)
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("name", &self.inner.name)
            .field("len", &self.inner.source.len())
            .finish()
    }
}

impl From<&str> for Script {
    /// A script named `chunk` from source text.
    fn from(source: &str) -> Self {
        Script::new("chunk", source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_is_commented_out() {
        let s = Script::new("x", "#!/usr/bin/env luapool\nreturn 1");
        assert!(s.source().starts_with(b"--#!"));
    }

    #[test]
    fn same_as_compares_name_and_source() {
        let a = Script::new("a", "return 1");
        assert!(a.same_as(&Script::new("a", "return 1")));
        assert!(!a.same_as(&Script::new("b", "return 1")));
        assert!(!a.same_as(&Script::new("a", "return 2")));
    }
}
