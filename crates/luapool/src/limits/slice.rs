//! What an execution yielded for its time slice waits on before it runs again.
//!
//! mlua wakes a coroutine that yields from a hook at once, so the runtime would poll
//! it again straight away; tokio polls for I/O and timers only every few dozen task
//! polls, so the short tasks a slice is meant to let through (a new request on a
//! connection, a timer that fired) would wait behind many slices. [`AfterDriver`]
//! holds the execution back until the runtime has been around its loop once: tokio
//! delivers a `yield_now` wake-up only after it has polled its drivers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Resolves once a `tokio::task::yield_now` wake-up has come through (at once outside a
/// tokio runtime, where `yield_now` wakes immediately).
pub(crate) struct AfterDriver {
    flag: Arc<Flag>,
    yielder: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

struct Flag {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl AfterDriver {
    pub(crate) fn new() -> AfterDriver {
        AfterDriver {
            flag: Arc::new(Flag {
                fired: AtomicBool::new(false),
                waker: Mutex::new(None),
            }),
            yielder: Some(Box::pin(tokio::task::yield_now())),
        }
    }
}

impl Future for AfterDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.flag.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.flag.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        if let Some(mut yielder) = self.yielder.take() {
            let waker = Waker::from(Arc::clone(&self.flag));
            let _ = yielder.as_mut().poll(&mut Context::from_waker(&waker));
        }
        if self.flag.fired.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn waits_for_the_runtime_to_come_around() {
        // A task that keeps waking itself runs many times before a yield_now wake-up
        // comes through; AfterDriver resolves only after that.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let spins = Rc::new(Cell::new(0u32));
            let done = Rc::new(Cell::new(false));
            let spinner = {
                let (spins, done) = (spins.clone(), done.clone());
                tokio::task::spawn_local(std::future::poll_fn(move |cx| {
                    if done.get() {
                        return Poll::Ready(());
                    }
                    spins.set(spins.get() + 1);
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }))
            };
            AfterDriver::new().await;
            done.set(true);
            spinner.await.unwrap();
            assert!(spins.get() > 1, "resolved after {} spins", spins.get());
        });
    }
}
