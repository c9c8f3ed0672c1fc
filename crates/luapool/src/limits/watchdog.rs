//! The watchdog thread: notices when a running execution passes its deadline and
//! interrupts the worker thread running it.
//!
//! Each worker thread registers a [`Watch`] once. Starting to run Lua costs two atomic
//! stores (deadline and stretch); the watchdog wakes every [`TICK`] while some thread has
//! a deadline and sleeps otherwise.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::interrupt;

/// How often the watchdog checks deadlines while any is set: the grace past a limit.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// A worker thread as the watchdog sees it.
pub(crate) struct Watch {
    /// Deadline of the running stretch in nanoseconds since [`epoch`]; 0 when not running.
    deadline: AtomicU64,
    /// What the deadline is for ([`interrupt::Trip`]).
    trip: AtomicU8,
    /// The running stretch.
    stretch: AtomicU64,
    request: interrupt::Request,
    thread: libc::pthread_t,
}

struct Watchdog {
    watches: Mutex<Vec<Arc<Watch>>>,
    idle: AtomicBool,
    thread: Thread,
}

/// Nanoseconds since the first use of the limits in this process.
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        interrupt::install_handler();
        let handle = std::thread::Builder::new()
            .name("luapool-watchdog".to_string())
            .spawn(run)
            .map(|h| h.thread().clone())
            .unwrap_or_else(|_| std::thread::current());
        Watchdog {
            watches: Mutex::new(Vec::new()),
            idle: AtomicBool::new(false),
            thread: handle,
        }
    })
}

fn run() {
    // Wait until the static is initialised (the spawning thread holds its init lock).
    let dog = watchdog();
    loop {
        let now = now_ns();
        let mut active = false;
        {
            let watches = dog.watches.lock().unwrap_or_else(|p| p.into_inner());
            for w in watches.iter() {
                let deadline = w.deadline.load(Ordering::Acquire);
                if deadline == 0 {
                    continue;
                }
                active = true;
                if now >= deadline
                    && w.deadline
                        .compare_exchange(deadline, 0, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    interrupt::request(
                        w.thread,
                        &w.request,
                        w.stretch.load(Ordering::Acquire),
                        w.trip.load(Ordering::Acquire),
                    );
                }
            }
        }
        if active {
            std::thread::sleep(TICK);
        } else {
            dog.idle.store(true, Ordering::Release);
            // Re-check after announcing idleness, so a deadline set meanwhile is not missed.
            let any = dog
                .watches
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|w| w.deadline.load(Ordering::Acquire) != 0);
            if !any {
                std::thread::park_timeout(Duration::from_millis(100));
            }
            dog.idle.store(false, Ordering::Release);
        }
    }
}

/// Registration of the current thread; unregisters when the thread ends.
struct Registration(Arc<Watch>);

impl Drop for Registration {
    fn drop(&mut self) {
        interrupt::listen(std::ptr::null());
        let mut watches = watchdog().watches.lock().unwrap_or_else(|p| p.into_inner());
        watches.retain(|w| !Arc::ptr_eq(w, &self.0));
    }
}

thread_local! {
    static REGISTRATION: Registration = {
        let watch = Arc::new(Watch {
            deadline: AtomicU64::new(0),
            trip: AtomicU8::new(0),
            stretch: AtomicU64::new(0),
            request: interrupt::Request::new(),
            thread: interrupt::current_thread(),
        });
        interrupt::listen(&watch.request);
        watchdog()
            .watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&watch));
        Registration(watch)
    };
}

/// Asks the watchdog to interrupt this thread at `deadline_ns` (see [`now_ns`]) for
/// `trip`, unless [`clear`] is called first.
pub(crate) fn set_deadline(deadline_ns: u64, trip: interrupt::Trip, stretch: u64) {
    REGISTRATION.with(|r| {
        r.0.trip.store(trip as u8, Ordering::Release);
        r.0.stretch.store(stretch, Ordering::Release);
        r.0.deadline.store(deadline_ns.max(1), Ordering::Release);
    });
    let dog = watchdog();
    if dog.idle.load(Ordering::Acquire) {
        dog.thread.unpark();
    }
}

/// Cancels this thread's deadline.
pub(crate) fn clear() {
    let _ = REGISTRATION.try_with(|r| r.0.deadline.store(0, Ordering::Release));
}
