//! The worker's VM, kept in a [`luapool::LiveVm`] with the app it was built for: each
//! request runs on the VM current when it started; a VM a handler poisoned is rebuilt
//! for the same app once the request ends (if no reload replaced it meanwhile); a
//! reload builds a VM for the new app at once, and keeps the old app if that fails. A new
//! VM cancels the timers of the old one and runs the app's `init_worker()`.

use std::rc::Rc;
use std::sync::Arc;

use luapool::{Healed, Vm};
use tracing::{debug, error, warn};

use super::Worker;
use crate::app::App;
use crate::metrics::Metrics;

impl Worker {
    /// Replaces `used` with a new VM for the same app if a handler poisoned it and it is
    /// still current.
    pub(super) fn heal(&self, used: &Rc<Vm>) {
        self.heal_then(used, true);
    }

    /// [`heal`](Worker::heal), then runs `init_worker()` on the new VM if `init`
    /// (not after `init_worker()` itself poisoned the VM, which would loop).
    pub(super) fn heal_then(&self, used: &Rc<Vm>, init: bool) {
        let healed = self.live.heal(used, |app| {
            let vm = self.shared.host.build_vm(app)?;
            Ok::<_, crate::Error>((vm, Arc::clone(app)))
        });
        match healed {
            None => {}
            Some(Healed::Rebuilt(poison)) => {
                if init {
                    self.new_vm();
                } else {
                    self.cancel_timers();
                }
                let why = format!("{poison:?}");
                if self.may_log(format_args!("rebuilt the poisoned VM ({why})")) {
                    warn!(
                        worker = self.index,
                        "rebuilt the VM after it was poisoned ({why})"
                    );
                }
                Metrics::count(&self.shared.metrics.vm_rebuilt, "poisoned");
            }
            Some(Healed::Failed(_, e)) => {
                error!(worker = self.index, "cannot rebuild the poisoned VM: {e}");
            }
        }
    }

    /// Switches to a new app on a new VM; requests in flight finish on the old one.
    pub(super) fn reload(&self, app: Arc<App>) {
        let reloaded = self
            .live
            .replace(|_| Ok::<_, crate::Error>((self.shared.host.build_vm(&app)?, app)));
        match reloaded {
            Ok(()) => {
                self.new_vm();
                Metrics::count(&self.shared.metrics.vm_rebuilt, "reload");
                debug!(worker = self.index, "reloaded the app");
            }
            Err(e) => error!(
                worker = self.index,
                "reload failed, keeping the old app: {e}"
            ),
        }
    }

    /// What follows a new VM: the old one's timers are cancelled, and the app's
    /// `init_worker()` runs on the new one.
    fn new_vm(&self) {
        self.cancel_timers();
        if let Some(me) = self.me() {
            me.init_worker();
        }
    }
}
