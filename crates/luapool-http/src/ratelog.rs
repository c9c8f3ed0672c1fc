//! [`RateLimit`]: keeps a flood of identical log lines down to one line per message
//! and window, plus a count of the repeats.
//!
//! A worker asks [`RateLimit::admit`] before it formats and logs a line. The first
//! line with a given text in a window is logged; identical ones after it are only
//! counted (a hash of the text, no allocation), and so are distinct ones past
//! `max_distinct` per window. [`RateLimit::roll`] closes a window that has passed and
//! returns what was held back, for the caller to log as "... and N more like this".

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{DefaultHasher, Hasher};
use std::time::{Duration, Instant};

/// Longest excerpt of a message kept to name it in a repeat summary.
const EXCERPT: usize = 160;

/// One worker's rate limit of one kind of log line. Not `Sync`: each worker has its own.
pub(crate) struct RateLimit {
    window: Duration,
    max_distinct: usize,
    state: RefCell<Window>,
}

struct Window {
    started: Instant,
    /// Messages logged in this window, by hash: their excerpt and repeats held back.
    seen: HashMap<u64, Seen>,
    /// Distinct messages held back because `max_distinct` were already logged.
    overflow: u64,
}

struct Seen {
    excerpt: Box<str>,
    repeats: u64,
}

/// What a closed window held back.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    /// Each message that was repeated: its excerpt (first line, shortened) and how many
    /// repeats were not logged.
    pub(crate) repeats: Vec<(Box<str>, u64)>,
    /// Lines not logged because the window already had its quota of distinct ones.
    pub(crate) overflow: u64,
}

impl RateLimit {
    /// A limit logging each distinct message once per `window`, and at most
    /// `max_distinct` distinct ones per window.
    pub(crate) fn new(window: Duration, max_distinct: usize) -> RateLimit {
        RateLimit {
            window,
            max_distinct,
            state: RefCell::new(Window {
                started: Instant::now(),
                seen: HashMap::new(),
                overflow: 0,
            }),
        }
    }

    /// The window's length, for the summary lines.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// Whether the line `message` (formatted lazily, only hashed here) should be logged
    /// now; if not, it is counted (until [`RateLimit::roll`] closes the window, which
    /// the owner calls every window).
    pub(crate) fn admit(&self, message: impl fmt::Display) -> bool {
        let mut hasher = HashWriter(DefaultHasher::new());
        // Writing into a hasher cannot fail.
        let _ = fmt::write(&mut hasher, format_args!("{message}"));
        let key = hasher.0.finish();
        let mut state = self.state.borrow_mut();
        let over_quota = state.seen.len() >= self.max_distinct;
        match state.seen.get_mut(&key) {
            Some(seen) => {
                seen.repeats += 1;
                false
            }
            None if over_quota => {
                state.overflow += 1;
                false
            }
            None => {
                let excerpt = excerpt(&message.to_string());
                state.seen.insert(
                    key,
                    Seen {
                        excerpt,
                        repeats: 0,
                    },
                );
                true
            }
        }
    }

    /// Closes the window if it is over at `now` and returns what it held back (`None`
    /// if the window is still open or held nothing back).
    pub(crate) fn roll(&self, now: Instant) -> Option<Held> {
        let mut state = self.state.borrow_mut();
        if now < state.started + self.window {
            return None;
        }
        state.started = now;
        let overflow = std::mem::take(&mut state.overflow);
        let repeats: Vec<_> = state
            .seen
            .drain()
            .filter(|(_, s)| s.repeats > 0)
            .map(|(_, s)| (s.excerpt, s.repeats))
            .collect();
        (overflow > 0 || !repeats.is_empty()).then_some(Held { repeats, overflow })
    }
}

/// The first line of `message`, at most [`EXCERPT`] bytes (cut at a character boundary).
fn excerpt(message: &str) -> Box<str> {
    let line = message.lines().next().unwrap_or("");
    let mut end = line.len().min(EXCERPT);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Box::from(&line[..end])
}

/// Feeds formatted text straight into a hasher, so hashing a message allocates nothing.
struct HashWriter(DefaultHasher);

impl fmt::Write for HashWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_and_summarised_once_the_window_passes() {
        let limit = RateLimit::new(Duration::from_secs(10), 100);
        let start = Instant::now();
        assert!(limit.admit("boom\ntraceback"));
        for _ in 0..1234 {
            assert!(!limit.admit("boom\ntraceback"));
        }
        assert!(limit.admit("other"));
        assert_eq!(limit.roll(start), None, "the window is still open");
        let held = limit.roll(start + Duration::from_secs(11)).unwrap();
        assert_eq!(held.repeats, vec![(Box::from("boom"), 1234)]);
        assert_eq!(held.overflow, 0);
        // A new window logs the message again.
        assert!(limit.admit("boom\ntraceback"));
    }

    #[test]
    fn distinct_lines_past_the_quota_are_counted() {
        let limit = RateLimit::new(Duration::from_secs(10), 3);
        let admitted = (0..10).filter(|i| limit.admit(format!("e{i}"))).count();
        assert_eq!(admitted, 3);
        let held = limit
            .roll(Instant::now() + Duration::from_secs(10))
            .unwrap();
        assert_eq!(held.overflow, 7);
    }

    #[test]
    fn excerpts_are_short_and_cut_at_characters() {
        let long = "é".repeat(200);
        let e = excerpt(&long);
        assert!(e.len() <= EXCERPT && e.chars().all(|c| c == 'é'));
    }
}
