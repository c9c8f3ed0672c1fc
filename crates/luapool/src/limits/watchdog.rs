//! The watchdog thread: notices when a running execution passes its deadline and
//! interrupts the worker thread running it.
//!
//! Each worker thread registers a [`Watch`] once. Starting to run Lua costs a few atomic
//! stores and loads (deadline, stretch, the watchdog's next wake-up); the watchdog sleeps
//! until the earliest deadline of any thread, so it wakes only when a limit may have been
//! passed, not for every execution. A thread wakes the watchdog only when it sets a
//! deadline earlier than the watchdog's next wake-up.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::{interrupt, LimitKind};

/// Lateness allowed past a deadline: the watchdog sleeps this much beyond the earliest
/// deadline, so that deadlines close together are handled in one wake-up.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Longest the watchdog sleeps when no thread has a deadline.
const IDLE_SLEEP: Duration = Duration::from_secs(1);

/// The shortest time slice any VM of the process uses, in nanoseconds (0: none): the
/// watchdog never sleeps longer, so that slices end on time without waking it.
static SLICE_NS: AtomicU64 = AtomicU64::new(0);

/// When the last time slice started ends (see [`now_ns`]); for a second after it the
/// watchdog wakes every slice, then it goes back to sleeping long.
static LAST_SLICE: AtomicU64 = AtomicU64::new(0);

/// How long the watchdog keeps waking every slice after the last slice started.
const SLICE_ACTIVITY: Duration = Duration::from_secs(1);

/// Records that executions of this process use time slices of `slice`.
pub(crate) fn note_slice(slice: Duration) {
    let ns = nanos(slice).max(1);
    let _ = SLICE_NS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
        (old == 0 || ns < old).then_some(ns)
    });
}

/// A worker thread as the watchdog sees it.
pub(crate) struct Watch {
    /// Deadline of the running stretch in nanoseconds (see [`now_ns`]); 0 when not running.
    deadline: AtomicU64,
    /// What the deadline is for (a [`LimitKind`] code).
    trip: AtomicU8,
    /// The running stretch.
    stretch: AtomicU64,
    /// End of the running stretch's time slice (see [`now_ns`]); 0 when it has none.
    /// Soft: the watchdog may notice it up to one slice late, and never needs waking
    /// for it.
    slice_deadline: AtomicU64,
    request: interrupt::Request,
    thread: libc::pthread_t,
}

struct Watchdog {
    watches: Mutex<Vec<Arc<Watch>>>,
    /// When the watchdog will next look at the deadlines (see [`now_ns`]); 0 while it is
    /// looking.
    next_wake: AtomicU64,
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
            next_wake: AtomicU64::new(0),
            thread: handle,
        }
    })
}

/// Interrupts every thread past its deadline; returns the earliest deadline still ahead.
fn check(dog: &Watchdog, now: u64) -> Option<u64> {
    let watches = dog.watches.lock().unwrap_or_else(|p| p.into_inner());
    let mut earliest: Option<u64> = None;
    for w in watches.iter() {
        let slice = w.slice_deadline.load(Ordering::Acquire);
        if slice != 0 {
            if now >= slice {
                if w.slice_deadline
                    .compare_exchange(slice, 0, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                    && !passed(w.deadline.load(Ordering::Acquire), now)
                {
                    interrupt::request(
                        w.thread,
                        &w.request,
                        w.stretch.load(Ordering::Acquire),
                        interrupt::SLICE,
                    );
                }
            } else {
                earliest = Some(earliest.map_or(slice, |e| e.min(slice)));
            }
        }
        let deadline = w.deadline.load(Ordering::SeqCst);
        if deadline == 0 {
            continue;
        }
        if now >= deadline {
            if w.deadline
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
        } else {
            earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
        }
    }
    earliest
}

fn run() {
    // Wait until the static is initialised (the spawning thread holds its init lock).
    let dog = watchdog();
    let tick = nanos(TICK);
    loop {
        dog.next_wake.store(0, Ordering::SeqCst);
        let now = now_ns();
        let earliest = check(dog, now);
        let slice = SLICE_NS.load(Ordering::Acquire);
        let recent = now
            < LAST_SLICE
                .load(Ordering::Relaxed)
                .saturating_add(nanos(SLICE_ACTIVITY));
        let longest = if slice != 0 && recent {
            slice
        } else {
            nanos(IDLE_SLEEP)
        };
        let mut wake = earliest
            .map_or(now + longest, |e| e + tick)
            .min(now + longest);
        dog.next_wake.store(wake, Ordering::SeqCst);
        // A thread that stored its deadline before reading `next_wake == 0` is seen here.
        if let Some(e) = check(dog, now_ns()) {
            wake = wake.min(e + tick);
            dog.next_wake.store(wake, Ordering::SeqCst);
        }
        let now = now_ns();
        if wake > now {
            std::thread::park_timeout(Duration::from_nanos(wake - now));
        }
    }
}

/// True if `deadline` is set and `now` is past it.
fn passed(deadline: u64, now: u64) -> bool {
    deadline != 0 && now >= deadline
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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
            slice_deadline: AtomicU64::new(0),
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
/// the limit `kind`, unless [`clear`] is called first.
pub(crate) fn set_deadline(deadline_ns: u64, kind: LimitKind, stretch: u64) {
    REGISTRATION.with(|r| {
        r.0.trip.store(kind as u8, Ordering::Release);
        r.0.stretch.store(stretch, Ordering::Release);
        r.0.deadline.store(deadline_ns.max(1), Ordering::SeqCst);
    });
    let dog = watchdog();
    // Wake the watchdog only if it would sleep past this deadline; while it is looking
    // (`next_wake == 0`) it sees the deadline on its second pass.
    let next_wake = dog.next_wake.load(Ordering::SeqCst);
    if next_wake != 0 && deadline_ns.max(1) < next_wake {
        dog.thread.unpark();
    }
}

/// Asks the watchdog to make this thread's running stretch yield at `deadline_ns` (a
/// soft deadline: noticed within one slice; the watchdog is not woken for it).
/// `stretch` must be the stretch of [`set_deadline`], or the stretch has no hard
/// deadline.
pub(crate) fn set_slice(deadline_ns: u64, stretch: u64) {
    REGISTRATION.with(|r| {
        r.0.stretch.store(stretch, Ordering::Release);
        r.0.slice_deadline
            .store(deadline_ns.max(1), Ordering::SeqCst);
    });
    LAST_SLICE.store(deadline_ns, Ordering::Relaxed);
    // Wake the watchdog only if it is in its long sleep (it would notice the slice far
    // too late); while slices keep starting it wakes every slice on its own.
    let dog = watchdog();
    let next_wake = dog.next_wake.load(Ordering::SeqCst);
    let slack = SLICE_NS.load(Ordering::Relaxed).max(nanos(TICK));
    if next_wake != 0 && deadline_ns.saturating_add(slack) < next_wake {
        dog.thread.unpark();
    }
}

/// Cancels this thread's deadlines.
pub(crate) fn clear() {
    let _ = REGISTRATION.try_with(|r| {
        r.0.deadline.store(0, Ordering::Release);
        r.0.slice_deadline.store(0, Ordering::Release);
    });
}
