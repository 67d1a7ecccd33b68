//! Latency by hop, free of clock skew between the browser and the relay.
//!
//! The relay stamps each quote with its receive time (`recv`, relay clock) next to the provider's event time
//! (`ts`), and answers each ping with its own time. A ping's id is its send time `t1`; the pong arrives at `t4`
//! carrying the relay's `ts`, so the browser's clock is behind the relay's by `offset = ts - (t1 + t4) / 2`, to
//! within half the round trip (the NTP formula with the relay's receive and send times taken as one). The sample
//! with the shortest round trip of the last few is the one trusted. Then, for each live quote arriving at `t`:
//!
//! * provider→relay = `recv - ts` (both stamps of one quote; skew between the provider's and the relay's clocks
//!   remains, which no client can remove);
//! * relay→browser = `t + offset - recv`.
//!
//! Fed from the tap that sees every frame as it arrives (not per rendered frame); read by the latency figure in
//! the header. One estimator per page, in a thread-local.

use std::cell::RefCell;
use std::collections::VecDeque;

use hamster_shared::{Quote, RequestId, ServerMessage};

/// Round-trip samples kept for the offset.
const OFFSET_SAMPLES: usize = 8;
/// Latency samples kept per hop.
const WINDOW: usize = 512;

/// Percentiles of one hop, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) samples: usize,
}

/// What the header shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatencyView {
    pub(crate) provider_relay: Option<Percentiles>,
    pub(crate) relay_browser: Option<Percentiles>,
    /// The best round trip to the relay, ms.
    pub(crate) rtt: Option<f64>,
}

/// The estimator. Times are ms since the epoch on the clock named.
#[derive(Debug, Default, Clone)]
pub(crate) struct Latency {
    /// (round trip, offset) of recent pings.
    pings: VecDeque<(f64, f64)>,
    provider_relay: VecDeque<f64>,
    relay_browser: VecDeque<f64>,
}

fn push(window: &mut VecDeque<f64>, v: f64, cap: usize) {
    if window.len() == cap {
        window.pop_front();
    }
    window.push_back(v);
}

fn percentiles(window: &VecDeque<f64>) -> Option<Percentiles> {
    if window.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = window.iter().copied().collect();
    crate::sort::sort_by(&mut v, f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some(Percentiles { p50: at(0.5), p99: at(0.99), samples: v.len() })
}

impl Latency {
    /// A pong for the ping sent at `sent` (browser clock), answered at `relay_ts`, arrived at `now`.
    pub(crate) fn on_pong(&mut self, sent: i64, relay_ts: i64, now: i64) {
        let rtt = (now - sent) as f64;
        if rtt < 0.0 {
            return;
        }
        let offset = relay_ts as f64 - (sent + now) as f64 / 2.0;
        if self.pings.len() == OFFSET_SAMPLES {
            self.pings.pop_front();
        }
        self.pings.push_back((rtt, offset));
    }

    /// The relay's clock minus the browser's, from the ping with the shortest round trip.
    pub(crate) fn offset(&self) -> Option<f64> {
        self.best().map(|(_, o)| o)
    }

    fn best(&self) -> Option<(f64, f64)> {
        self.pings.iter().copied().min_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// A live quote that arrived at `now` (browser clock).
    pub(crate) fn on_quote(&mut self, q: &Quote, now: i64) {
        let Some(recv) = q.recv else { return };
        push(&mut self.provider_relay, (recv - q.ts) as f64, WINDOW);
        if let Some(offset) = self.offset() {
            // Never below zero: a negative figure would only be the offset's error showing.
            push(&mut self.relay_browser, (now as f64 + offset - recv as f64).max(0.0), WINDOW);
        }
    }

    pub(crate) fn view(&self) -> LatencyView {
        LatencyView {
            provider_relay: percentiles(&self.provider_relay),
            relay_browser: percentiles(&self.relay_browser),
            rtt: self.best().map(|(r, _)| r),
        }
    }
}

thread_local! {
    static LATENCY: RefCell<Latency> = RefCell::new(Latency::default());
}

/// Feeds one frame from the relay, as it arrives at `now`. Snapshots are cached values, not live: skipped.
pub(crate) fn observe(msg: &ServerMessage, now: i64) {
    LATENCY.with(|l| {
        let mut l = l.borrow_mut();
        match msg {
            ServerMessage::Quotes { quotes } => quotes.iter().for_each(|q| l.on_quote(q, now)),
            ServerMessage::Pong { id: Some(RequestId::Num(sent)), ts: Some(ts) } => {
                if let Ok(sent) = i64::try_from(*sent) {
                    l.on_pong(sent, *ts, now);
                }
            }
            _ => {}
        }
    });
}

/// The current figures.
pub(crate) fn view() -> LatencyView {
    LATENCY.with(|l| l.borrow().view())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hamster_shared::Symbol;

    fn quote(ts: i64, recv: Option<i64>) -> Quote {
        Quote {
            seq: None,
            symbol: Symbol::parse("AAPL").unwrap(),
            price: 1.0,
            ts,
            provider: "sim".into(),
            bid: None,
            ask: None,
            volume: None,
            change: None,
            change_pct: None,
            recv,
        }
    }

    #[test]
    fn the_offset_comes_from_the_shortest_round_trip() {
        let mut l = Latency::default();
        // The browser's clock is 5 s behind the relay's. A slow ping (asymmetric 80 ms out, 0 back) is off by 40 ms;
        // the fast one (1 ms each way) is off by nothing.
        l.on_pong(1_000, 1_000 + 5_000 + 80, 1_080);
        assert_eq!(l.offset(), Some(5_040.0));
        l.on_pong(2_000, 2_000 + 5_000 + 1, 2_002);
        assert_eq!(l.offset(), Some(5_000.0));
        l.on_pong(3_000, 3_000 + 5_000 + 200, 3_300);
        assert_eq!(l.offset(), Some(5_000.0), "a slower ping does not replace a faster one");
        assert_eq!(l.view().rtt, Some(2.0));
        l.on_pong(5_000, 0, 4_000); // arrived before it was sent: ignored
        assert_eq!(l.view().rtt, Some(2.0));
    }

    #[test]
    fn hops_are_measured_separately_and_skew_free() {
        let mut l = Latency::default();
        // Provider event at relay time 10_000, received 30 ms later; the browser gets it 12 ms after that, while
        // its own clock reads 5 s less than the relay's.
        l.on_quote(&quote(10_000, Some(10_030)), 5_042);
        let v = l.view();
        assert_eq!(v.provider_relay.map(|p| p.p50), Some(30.0));
        assert_eq!(v.relay_browser, None, "no offset yet, no relay→browser figure");
        l.on_pong(4_990, 9_995, 5_000);
        assert_eq!(l.offset(), Some(5_000.0));
        l.on_quote(&quote(10_000, Some(10_030)), 5_042);
        assert_eq!(l.view().relay_browser.map(|p| p.p50), Some(12.0));
        l.on_quote(&quote(10_000, None), 9_999); // a quote without a relay stamp says nothing
        assert_eq!(l.view().provider_relay.map(|p| p.samples), Some(2));
    }

    #[test]
    fn percentiles_over_a_bounded_window() {
        let mut w = VecDeque::new();
        for i in 1..=1_000 {
            push(&mut w, f64::from(i), WINDOW);
        }
        assert_eq!(w.len(), WINDOW);
        let p = percentiles(&w).unwrap();
        assert_eq!((p.p50, p.p99, p.samples), (745.0, 995.0, WINDOW));
        assert_eq!(percentiles(&VecDeque::new()), None);
    }
}
