//! [`LiveVm`]: the VM a worker thread starts new work on, rebuilt when poisoned and
//! replaced on reload, while work in flight finishes on the VM it started on.

use std::cell::RefCell;
use std::rc::Rc;

use crate::vm::{Poison, Vm};

/// The VM a worker thread starts new work on, and what it was built from (`S`, the
/// *source*): rebuilt when poisoned, replaced on reload, while work in flight finishes
/// on the VM it started on.
///
/// Both the [`WorkerPool`](crate::WorkerPool)'s workers and the HTTP server's workers
/// (`luapool-http`) keep their VM in one: the rules below are theirs.
///
/// - New work takes [`LiveVm::current`] (an `Rc<Vm>` and what that VM was built from,
///   the *source*: an app, the generation of an init recipe) and keeps it to the end,
///   so a reload or a rebuild never cuts a running execution short.
/// - When work ends on a poisoned VM (see [`Vm::poisoned`]), [`LiveVm::heal`] builds a
///   new one, but only if the poisoned VM is still the current one: of many executions
///   that end on the same poisoned VM, the first rebuilds it and the others find it
///   replaced already; one that ends on a VM a reload has replaced rebuilds nothing.
/// - [`LiveVm::replace`] (a reload) builds a VM from a new source and makes it
///   current; if that fails the current VM and source stay, and the caller decides
///   whether to try again later.
///
/// A `LiveVm` is `!Send`: it lives on its worker's thread, like its VMs.
///
/// ```
/// use luapool::{Healed, Isolation, LiveVm, Script, Vm, VmConfig};
///
/// let config = VmConfig::default()
///     .with_isolation(Isolation::Shared)
///     .with_memory_limit(2 << 20);
/// let build = |version: &u32| Vm::new(config.clone()).map(|vm| (vm, *version));
/// let live = LiveVm::new(Vm::new(config.clone())?, 1u32);
///
/// let (vm, version) = live.current();
/// assert_eq!(version, 1);
/// let bomb = Script::new("bomb", "local t = {} while true do t[#t + 1] = {} end");
/// assert!(vm.exec(&bomb).is_err());
/// // The first execution to end on the poisoned VM rebuilds it...
/// assert!(matches!(live.heal(&vm, build), Some(Healed::Rebuilt(_))));
/// // ... the others find it replaced already.
/// assert!(live.heal(&vm, build).is_none());
///
/// // A reload: a VM built from a new source.
/// live.replace(|_| build(&2))?;
/// assert_eq!(live.source(), 2);
/// # Ok::<(), luapool::Error>(())
/// ```
pub struct LiveVm<S> {
    current: RefCell<Current<S>>,
}

/// A VM and its source.
struct Current<S> {
    vm: Rc<Vm>,
    source: S,
}

/// What [`LiveVm::heal`] did with a poisoned VM that was still current.
#[derive(Debug)]
pub enum Healed<E> {
    /// A new VM replaced it; the poison is the old VM's.
    Rebuilt(Poison),
    /// Building a new VM failed with the error: the poisoned VM stays current (the
    /// next execution to end on it tries again).
    Failed(Poison, E),
}

impl<E> Healed<E> {
    /// The old VM's poison if a new VM replaced it, or the build's error.
    ///
    /// # Errors
    /// The build's error when the poisoned VM stays current.
    pub fn into_result(self) -> Result<Poison, E> {
        match self {
            Healed::Rebuilt(poison) => Ok(poison),
            Healed::Failed(_, e) => Err(e),
        }
    }
}

impl<S: Clone> LiveVm<S> {
    /// Starts with `vm`, built from `source`.
    pub fn new(vm: Vm, source: S) -> Self {
        LiveVm {
            current: RefCell::new(Current {
                vm: Rc::new(vm),
                source,
            }),
        }
    }

    /// The VM to start new work on, and what it was built from.
    pub fn current(&self) -> (Rc<Vm>, S) {
        let current = self.current.borrow();
        (Rc::clone(&current.vm), current.source.clone())
    }

    /// The VM to start new work on.
    pub fn vm(&self) -> Rc<Vm> {
        Rc::clone(&self.current.borrow().vm)
    }

    /// What the current VM was built from.
    pub fn source(&self) -> S {
        self.current.borrow().source.clone()
    }

    /// Called when work on `used` has ended: if `used` is poisoned and still the current
    /// VM, builds a new one with `build` (given the current source; it returns the VM
    /// and its source) and makes it current. `None` when there was nothing to do.
    pub fn heal<E>(
        &self,
        used: &Rc<Vm>,
        build: impl FnOnce(&S) -> Result<(Vm, S), E>,
    ) -> Option<Healed<E>> {
        let poison = used.poisoned()?;
        if !Rc::ptr_eq(used, &self.current.borrow().vm) {
            return None;
        }
        Some(match self.replace(build) {
            Ok(()) => Healed::Rebuilt(poison),
            Err(e) => Healed::Failed(poison, e),
        })
    }

    /// Builds a VM with `build` (given the current source; it returns the VM and its
    /// source, a new one on reload) and makes it current. Work in flight keeps the VM
    /// it started on.
    ///
    /// # Errors
    /// `build`'s error; the current VM and source stay.
    pub fn replace<E>(&self, build: impl FnOnce(&S) -> Result<(Vm, S), E>) -> Result<(), E> {
        let source = self.source();
        let (vm, source) = build(&source)?;
        *self.current.borrow_mut() = Current {
            vm: Rc::new(vm),
            source,
        };
        Ok(())
    }

    /// Records `source` as the current VM's source without building a VM: for a reload
    /// whose build failed and that must not be tried again.
    pub fn set_source(&self, source: S) {
        self.current.borrow_mut().source = source;
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for LiveVm<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current.borrow();
        f.debug_struct("LiveVm")
            .field("source", &current.source)
            .field("poisoned", &current.vm.poisoned())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Isolation, Script, VmConfig};

    fn config() -> VmConfig {
        VmConfig::default()
            .with_isolation(Isolation::Shared)
            .with_memory_limit(2 << 20)
    }

    fn build(version: &u32) -> crate::Result<(Vm, u32)> {
        Ok((Vm::new(config())?, *version))
    }

    fn poison(vm: &Vm) {
        let bomb = Script::new("bomb", "local t = {} while true do t[#t + 1] = {} end");
        assert!(vm.exec(&bomb).is_err());
        assert!(vm.poisoned().is_some());
    }

    #[test]
    fn a_healthy_vm_is_kept() -> crate::Result<()> {
        let live = LiveVm::new(Vm::new(config())?, 1);
        let vm = live.vm();
        assert!(live.heal(&vm, build).is_none());
        assert!(Rc::ptr_eq(&vm, &live.vm()));
        Ok(())
    }

    #[test]
    fn a_poisoned_vm_replaced_by_a_reload_is_not_rebuilt() -> crate::Result<()> {
        let live = LiveVm::new(Vm::new(config())?, 1);
        let old = live.vm();
        live.replace(|_| build(&2))?;
        let reloaded = live.vm();
        poison(&old);
        assert!(live.heal(&old, |_| build(&3)).is_none());
        assert!(Rc::ptr_eq(&reloaded, &live.vm()));
        assert_eq!(live.source(), 2);
        Ok(())
    }

    #[test]
    fn a_failed_build_keeps_the_current_vm_and_source() -> crate::Result<()> {
        let live = LiveVm::new(Vm::new(config())?, 1);
        let vm = live.vm();
        poison(&vm);
        let failed = live.heal(&vm, |_| Err::<(Vm, u32), _>("no"));
        assert!(matches!(
            failed,
            Some(Healed::Failed(Poison::MemoryLimit, "no"))
        ));
        assert!(Rc::ptr_eq(&vm, &live.vm()));
        assert_eq!(live.replace(|_| Err::<(Vm, u32), _>("no")), Err("no"));
        assert_eq!(live.source(), 1);
        // The next execution to end on it tries again.
        assert!(matches!(live.heal(&vm, build), Some(Healed::Rebuilt(_))));
        assert!(!Rc::ptr_eq(&vm, &live.vm()));
        Ok(())
    }
}
