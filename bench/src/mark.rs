//! How a tick is marked so that a client can tell how long it spent getting there, and which ticks count.
//!
//! The generator and the clients live in one process, so they share one monotonic clock: [`now_ns`], nanoseconds
//! since the first call. Every tick carries two exact integers in fields the relay passes through untouched:
//!
//! * `price` = the symbol's **sequence number** (1, 2, 3, … per symbol and upstream connection), so a client
//!   sees every skipped update (a gap: the relay conflated or dropped it);
//! * `bid` = the **send instant** in nanoseconds on that clock, taken just before the frame is written upstream.
//!
//! Both are integers below 10^15 (a mark reaches that after 11 days), which survive the trip exactly: the relay
//! parses the upstream integer into an `f64` (exact below 2^53) and re-serialises it with `serde_json` as
//! `123.0`; the bench parses that back with `serde_json`, whose default (not `float_roundtrip`) parser is exact
//! for these because `1230` is an integer below 2^53 divided once by 10. (A 16-digit value can come back one
//! off, so [`exact_u64`] refuses anything larger.) Node's `JSON.parse`/`JSON.stringify` are exact for them too.
//! Latency is then `receive instant − bid`: the relay's time plus the two loopback hops and the bench's own
//! scheduling delay, an upper bound on what the relay adds.
//!
//! A [`Window`] says which ticks a measurement counts: those whose send instant lies inside it. Counting by send
//! time rather than by arrival time means a backlog that drains after the window still counts against the
//! window that produced it, and the generator and the clients agree exactly on what was in it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the bench started (the first call), on the monotonic clock.
pub fn now_ns() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Integers below this come back exactly from every step of the pipeline (see the module docs).
pub const MAX_EXACT: u64 = 1_000_000_000_000_000;

/// Reads an exact non-negative integer back from a JSON number, or `None` if it is not one.
pub fn exact_u64(value: f64) -> Option<u64> {
    (value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < MAX_EXACT as f64).then_some(value as u64)
}

/// The span of send instants a measurement counts, `[start, end)`. Empty until opened.
#[derive(Debug)]
pub struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Window { start: AtomicU64::new(u64::MAX), end: AtomicU64::new(u64::MAX) }
    }
}

impl Window {
    /// Counts ticks sent from `at` on.
    pub fn open(&self, at: u64) {
        self.end.store(u64::MAX, Ordering::SeqCst);
        self.start.store(at, Ordering::SeqCst);
    }

    /// Stops counting ticks sent from `at` on.
    pub fn close(&self, at: u64) {
        self.end.store(at, Ordering::SeqCst);
    }

    /// Empties the window (between scenarios).
    pub fn reset(&self) {
        self.start.store(u64::MAX, Ordering::SeqCst);
        self.end.store(u64::MAX, Ordering::SeqCst);
    }

    /// Whether a tick sent at `mark` counts.
    pub fn contains(&self, mark: u64) -> bool {
        mark >= self.start.load(Ordering::Relaxed) && mark < self.end.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_the_relays_f64_round_trip() {
        // What the relay does: parse the upstream number into f64, serialise it with serde_json, parse again.
        for mark in [0u64, 1, 999_999_999, 86_400 * 1_000_000_000, 123_456_789_012_345, MAX_EXACT - 1] {
            let upstream = format!("{mark}");
            let parsed: f64 = serde_json::from_str(&upstream).unwrap();
            let reserialised = serde_json::to_string(&parsed).unwrap();
            let back: f64 = serde_json::from_str(&reserialised).unwrap();
            assert_eq!(exact_u64(back), Some(mark), "{upstream} -> {reserialised}");
        }
        assert_eq!(exact_u64(MAX_EXACT as f64), None);
        assert_eq!(exact_u64(1.5), None);
        assert_eq!(exact_u64(-1.0), None);
        assert_eq!(exact_u64(f64::NAN), None);
    }

    #[test]
    fn window_counts_by_send_instant() {
        let w = Window::default();
        assert!(!w.contains(5));
        w.open(10);
        assert!(!w.contains(9) && w.contains(10) && w.contains(1 << 40));
        w.close(20);
        assert!(w.contains(19) && !w.contains(20));
        w.reset();
        assert!(!w.contains(15));
    }
}
