//! [`CopyBudget`]: the one bound on the bytes a host function copies out of a VM.
//!
//! A Lua string referenced a thousand times costs one string in Lua, but a thousand
//! copies once converted to a [`Value`](crate::Value), encoded as JSON, printed or logged.
//! Every such host copy goes through a `CopyBudget`, which allows one call (one
//! `json.encode`, one `print`, the results of one execution, one HTTP reply) to copy at most
//! what the VM may still allocate under its memory limit (at least [`CopyBudget::MIN`]),
//! or [`CopyBudget::DEFAULT_LIMIT`] when the VM has none, and fails with [`Error::CopyLimit`]
//! past it, before the bytes are allocated: the copies of a call count as if the
//! execution had allocated them.

use mlua::Lua;

use crate::error::Error;

/// Most bytes one call may copy out of a VM that has no memory limit (64 MiB).
pub(crate) const DEFAULT_COPY_LIMIT: usize = 64 << 20;

/// Bytes one call may always copy, even from a VM at its memory limit (64 KiB): enough
/// for a script out of memory to log why.
pub(crate) const MIN_COPY_BUDGET: usize = 64 << 10;

/// How many more bytes one host call may copy out of a VM.
///
/// Make one per call with [`CopyBudget::for_lua`] and charge every copy to it before
/// making it; the first charge past the limit fails.
///
/// ```
/// use luapool::{CopyBudget, Error};
///
/// let mut budget = CopyBudget::new(10);
/// assert!(budget.charge(6).is_ok());
/// assert!(matches!(budget.charge(6), Err(Error::CopyLimit { limit: 10 })));
/// assert_eq!(budget.left(), 0); // a failed charge spends what was left
/// ```
#[derive(Debug, Clone)]
pub struct CopyBudget {
    limit: usize,
    left: usize,
}

impl CopyBudget {
    /// Most bytes one call may copy out of a VM that has no memory limit (64 MiB).
    pub const DEFAULT_LIMIT: usize = DEFAULT_COPY_LIMIT;
    /// Bytes one call may always copy, even from a VM at its memory limit (64 KiB):
    /// enough for a script out of memory to log why.
    pub const MIN: usize = MIN_COPY_BUDGET;

    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> CopyBudget {
        CopyBudget { limit, left: limit }
    }

    /// The budget of one call on `lua`: the bytes it may still allocate under the memory
    /// limit in force (at least [`CopyBudget::MIN`]), or [`CopyBudget::DEFAULT_LIMIT`] if it has
    /// none.
    pub fn for_lua(lua: &Lua) -> CopyBudget {
        CopyBudget::new(match memory_limit(lua) {
            Some(limit) => limit.saturating_sub(lua.used_memory()).max(MIN_COPY_BUDGET),
            None => DEFAULT_COPY_LIMIT,
        })
    }

    /// Takes `bytes` from the budget.
    ///
    /// # Errors
    /// [`Error::CopyLimit`] if fewer than `bytes` are left (the budget is then spent, so
    /// later charges fail too).
    pub fn charge(&mut self, bytes: usize) -> Result<(), Error> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(Error::CopyLimit { limit: self.limit })
            }
        }
    }

    /// Appends `bytes` to `out` after charging them.
    ///
    /// # Errors
    /// As [`charge`](CopyBudget::charge); `out` is then left as it was.
    pub fn extend(&mut self, out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Error> {
        self.charge(bytes.len())?;
        out.extend_from_slice(bytes);
        Ok(())
    }

    /// A copy of `bytes`, charged.
    ///
    /// # Errors
    /// As [`charge`](CopyBudget::charge).
    pub fn copy(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        self.charge(bytes.len())?;
        Ok(bytes.to_vec())
    }

    /// The bytes the budget started with.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The bytes still allowed.
    pub fn left(&self) -> usize {
        self.left
    }
}

/// The memory limit mlua enforces on `lua`, if any. mlua has no getter: setting a limit
/// returns the previous one, which is put back at once (nothing runs in between).
fn memory_limit(lua: &Lua) -> Option<usize> {
    let limit = lua.set_memory_limit(0).ok()?;
    if limit == 0 {
        return None;
    }
    // Putting back a limit that was just read cannot fail.
    lua.set_memory_limit(limit).ok()?;
    Some(limit)
}

/// Names the host function in a copy-limit error (`print: host copy limit exceeded
/// ...`); other errors pass unchanged.
pub(crate) fn name_call(function: &str, e: mlua::Error) -> mlua::Error {
    match &e {
        mlua::Error::ExternalError(inner) => match inner.downcast_ref::<Error>() {
            Some(limit @ Error::CopyLimit { .. }) => {
                mlua::Error::runtime(format!("{function}: {limit}"))
            }
            _ => e,
        },
        _ => e,
    }
}

/// A budget shared by every conversion made while it is installed (see
/// [`CopyBudget::scope`]).
struct Shared(CopyBudget);

impl CopyBudget {
    /// Runs `f` with one budget of [`CopyBudget::for_lua`] for every
    /// [`Value`](crate::Value) converted from `lua` inside it (e.g. all the results of one
    /// execution), instead of one budget per value.
    ///
    /// ```
    /// use luapool::{CopyBudget, Value};
    /// use luapool::mlua::{FromLua, Lua};
    ///
    /// let lua = Lua::new();
    /// lua.set_memory_limit(lua.used_memory() + (4 << 20))?;
    /// let s = luapool::mlua::Value::String(lua.create_string("x".repeat(3 << 19))?);
    /// assert!(Value::from_lua(s.clone(), &lua).is_ok());
    /// let both = CopyBudget::scope(&lua, || {
    ///     Ok::<_, luapool::mlua::Error>((Value::from_lua(s.clone(), &lua)?, Value::from_lua(s.clone(), &lua)?))
    /// });
    /// assert!(both.is_err()); // 3 MiB out of a VM that may allocate 2.5 MiB more
    /// # Ok::<(), luapool::mlua::Error>(())
    /// ```
    pub fn scope<T>(lua: &Lua, f: impl FnOnce() -> T) -> T {
        let outer = lua.set_app_data(Shared(CopyBudget::for_lua(lua)));
        let result = f();
        match outer {
            Some(outer) => {
                lua.set_app_data(outer);
            }
            None => {
                lua.remove_app_data::<Shared>();
            }
        }
        result
    }
}

/// [`CopyBudget::scope`] for converting `values` with `f`, unless they cannot need it:
/// when they are scalars and strings whose bytes together fit one budget, each value's
/// own budget bounds the copy as well as a shared one would (and installing one costs
/// an allocation per execution).
pub(crate) fn scope_for<T>(
    lua: &Lua,
    values: mlua::MultiValue,
    f: impl FnOnce(mlua::MultiValue) -> T,
) -> T {
    let mut bytes = 0usize;
    for v in &values {
        match v {
            mlua::Value::String(s) => bytes = bytes.saturating_add(s.as_bytes().len()),
            mlua::Value::Nil
            | mlua::Value::Boolean(_)
            | mlua::Value::Integer(_)
            | mlua::Value::Number(_)
            | mlua::Value::LightUserData(_) => {}
            _ => return CopyBudget::scope(lua, || f(values)),
        }
    }
    if bytes == 0 || bytes <= CopyBudget::for_lua(lua).left() {
        return f(values);
    }
    CopyBudget::scope(lua, || f(values))
}

/// Runs `f` with the shared budget if one is installed, else with a fresh one.
pub(crate) fn with_budget<T>(lua: &Lua, f: impl FnOnce(&mut CopyBudget) -> T) -> T {
    if let Some(mut shared) = lua.app_data_mut::<Shared>() {
        return f(&mut shared.0);
    }
    f(&mut CopyBudget::for_lua(lua))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_memory_limit_without_changing_it() {
        let lua = Lua::new();
        assert_eq!(CopyBudget::for_lua(&lua).limit(), DEFAULT_COPY_LIMIT);
        lua.set_memory_limit(1 << 30).unwrap();
        let left = (1 << 30) - lua.used_memory();
        assert_eq!(CopyBudget::for_lua(&lua).limit(), left);
        assert_eq!(lua.set_memory_limit(0).unwrap(), 1 << 30);
        // At the limit, a small budget remains.
        lua.set_memory_limit(lua.used_memory()).unwrap();
        assert_eq!(CopyBudget::for_lua(&lua).limit(), MIN_COPY_BUDGET);
    }

    #[test]
    fn a_failed_charge_spends_the_budget() {
        let mut b = CopyBudget::new(8);
        let mut out = b"ab".to_vec();
        assert!(b.extend(&mut out, b"cdefghijk").is_err());
        assert_eq!(out, b"ab");
        assert!(b.charge(1).is_err());
        assert_eq!(b.copy(b"").unwrap(), b"");
    }

    #[test]
    fn a_shared_budget_spans_conversions_and_is_removed_after() {
        let lua = Lua::new();
        lua.set_memory_limit(lua.used_memory() + (1 << 20)).unwrap();
        let most = CopyBudget::for_lua(&lua).limit() - 50;
        let left = CopyBudget::scope(&lua, || {
            with_budget(&lua, |b| b.charge(most)).unwrap();
            assert!(with_budget(&lua, |b| b.charge(60)).is_err());
            with_budget(&lua, |b| b.left())
        });
        assert_eq!(left, 0);
        assert!(with_budget(&lua, |b| b.charge(most)).is_ok());
        assert!(with_budget(&lua, |b| b.charge(most)).is_ok());
    }
}
