//! Liveness rules for one socket: when to ping, when silence means the connection is dead, and when a
//! connection has been up long enough to reset the backoff. Pure: times come in as arguments.

use crate::format::Fixed;

/// Without a `hello` within this long the attempt counts as failed.
const HELLO_TIMEOUT_MS: i64 = 10_000;
/// A connection live this long resets the backoff.
const STABLE_AFTER_MS: i64 = 10_000;

/// Tracks one socket's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Liveness {
    opened_ms: i64,
    heartbeat_ms: Option<u64>,
    live_since_ms: Option<i64>,
    last_rx_ms: i64,
    last_ping_ms: i64,
}

/// What to do on a periodic check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Fine,
    SendPing,
    /// Give up on this socket, with the reason for the log.
    Dead(String),
}

impl Liveness {
    pub(crate) fn new(opened_ms: i64) -> Liveness {
        Liveness { opened_ms, heartbeat_ms: None, live_since_ms: None, last_rx_ms: opened_ms, last_ping_ms: opened_ms }
    }

    /// Any frame proves the connection alive.
    pub(crate) fn on_frame(&mut self, now_ms: i64) {
        self.last_rx_ms = self.last_rx_ms.max(now_ms);
    }

    /// `hello` arrived: the connection is live and the relay told us its heartbeat.
    pub(crate) fn on_hello(&mut self, now_ms: i64, heartbeat_ms: u64) {
        self.on_frame(now_ms);
        self.heartbeat_ms = Some(heartbeat_ms.max(1_000));
        self.live_since_ms = Some(now_ms);
        self.last_ping_ms = now_ms;
    }

    pub(crate) fn on_ping_sent(&mut self, now_ms: i64) {
        self.last_ping_ms = now_ms;
    }

    pub(crate) fn is_live(&self) -> bool {
        self.live_since_ms.is_some()
    }

    /// Live for at least [`STABLE_AFTER_MS`].
    pub(crate) fn was_stable(&self, now_ms: i64) -> bool {
        self.live_since_ms.is_some_and(|t| now_ms - t >= STABLE_AFTER_MS)
    }

    /// Ping every half heartbeat; dead after two heartbeats of silence (a relay pings at its heartbeat and
    /// answers our pings, so silence that long means the path is gone even if TCP has not noticed).
    pub(crate) fn check(&self, now_ms: i64) -> Verdict {
        let Some(hb) = self.heartbeat_ms else {
            if now_ms - self.opened_ms > HELLO_TIMEOUT_MS {
                return Verdict::Dead(format!("no hello within {} s", HELLO_TIMEOUT_MS / 1000));
            }
            return Verdict::Fine;
        };
        let hb = i64::try_from(hb).unwrap_or(i64::MAX);
        let silent = now_ms - self.last_rx_ms;
        if silent > hb.saturating_mul(2) {
            return Verdict::Dead(format!("no frame for {} s (heartbeat {} ms)", Fixed(silent as f64 / 1000.0, 1), hb));
        }
        if now_ms - self.last_ping_ms >= hb / 2 {
            return Verdict::SendPing;
        }
        Verdict::Fine
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn hello_must_arrive_in_time() {
        let l = Liveness::new(0);
        assert_eq!(l.check(HELLO_TIMEOUT_MS), Verdict::Fine);
        assert!(matches!(l.check(HELLO_TIMEOUT_MS + 1), Verdict::Dead(_)));
        assert!(!l.is_live());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn pings_every_half_heartbeat_and_dies_after_two() {
        let mut l = Liveness::new(0);
        l.on_hello(100, 2_000);
        assert!(l.is_live());
        assert_eq!(l.check(1_000), Verdict::Fine);
        assert_eq!(l.check(1_100), Verdict::SendPing);
        l.on_ping_sent(1_100);
        assert_eq!(l.check(1_500), Verdict::Fine);
        // Frames keep it alive.
        l.on_frame(3_000);
        assert_eq!(l.check(4_000), Verdict::SendPing);
        l.on_ping_sent(4_000);
        assert_eq!(l.check(4_900), Verdict::Fine);
        // Two heartbeats after the last frame it is still alive (just due a ping); a millisecond later dead.
        assert_eq!(l.check(7_000), Verdict::SendPing);
        assert!(matches!(l.check(7_001), Verdict::Dead(_)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn tiny_heartbeats_are_clamped() {
        let mut l = Liveness::new(0);
        l.on_hello(0, 0);
        assert_eq!(l.check(400), Verdict::Fine, "no ping storm");
        assert_eq!(l.check(500), Verdict::SendPing);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn huge_heartbeats_do_not_overflow() {
        let mut l = Liveness::new(0);
        l.on_hello(0, u64::MAX);
        assert_eq!(l.check(i64::MAX / 4), Verdict::Fine);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn stability() {
        let mut l = Liveness::new(0);
        assert!(!l.was_stable(100_000));
        l.on_hello(1_000, 15_000);
        assert!(!l.was_stable(10_999));
        assert!(l.was_stable(11_000));
    }
}
