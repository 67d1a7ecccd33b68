//! Short per-symbol history: a ring of recent ticks and a ring of one-minute OHLC candles.
//!
//! Both rings are fixed-size so a symbol's memory is bounded no matter how fast it ticks. Candles are keyed by
//! the provider's event time (`ts`), not arrival time, so a replayed or delayed feed still lands in the right
//! minute. A tick older than the newest candle's minute updates that earlier candle if it is still in the ring,
//! but never its open/close (those belong to the first and latest tick the relay saw for the minute).

use std::collections::VecDeque;

use hamster_shared::api::{Candle, Tick};

const MINUTE_MS: i64 = 60_000;

/// Bounded tick and candle history of one symbol.
#[derive(Debug)]
pub(crate) struct History {
    ticks: VecDeque<Tick>,
    candles: VecDeque<Candle>,
    max_ticks: usize,
    max_candles: usize,
}

impl History {
    pub(crate) fn new(max_ticks: usize, max_candles: usize) -> History {
        History {
            ticks: VecDeque::with_capacity(max_ticks.min(64)),
            candles: VecDeque::with_capacity(max_candles.min(16)),
            max_ticks,
            max_candles,
        }
    }

    /// Records one price at event time `ts` (ms since epoch).
    pub(crate) fn record(&mut self, ts: i64, price: f64) {
        if self.max_ticks > 0 {
            if self.ticks.len() == self.max_ticks {
                self.ticks.pop_front();
            }
            self.ticks.push_back(Tick { ts, price });
        }
        if self.max_candles > 0 {
            self.record_candle(ts, price);
        }
    }

    fn record_candle(&mut self, ts: i64, price: f64) {
        let start = ts.div_euclid(MINUTE_MS) * MINUTE_MS;
        match self.candles.back_mut() {
            Some(last) if last.start == start => {
                last.high = last.high.max(price);
                last.low = last.low.min(price);
                last.close = price;
                last.ticks += 1;
            }
            Some(last) if last.start > start => {
                // Late tick: widen its minute's range if that candle is still kept.
                if let Ok(i) = self.candles.binary_search_by_key(&start, |c| c.start) {
                    let c = &mut self.candles[i];
                    c.high = c.high.max(price);
                    c.low = c.low.min(price);
                    c.ticks += 1;
                }
            }
            _ => {
                if self.candles.len() == self.max_candles {
                    self.candles.pop_front();
                }
                self.candles.push_back(Candle { start, open: price, high: price, low: price, close: price, ticks: 1 });
            }
        }
    }

    /// Recent ticks, oldest first.
    pub(crate) fn ticks(&self) -> Vec<Tick> {
        self.ticks.iter().copied().collect()
    }

    /// One-minute candles, oldest first.
    pub(crate) fn candles(&self) -> Vec<Candle> {
        self.candles.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_040_000; // a minute boundary

    #[test]
    fn tick_ring_keeps_the_latest() {
        let mut h = History::new(3, 10);
        for i in 0..5 {
            h.record(T0 + i, i as f64);
        }
        let prices: Vec<_> = h.ticks().iter().map(|t| t.price).collect();
        assert_eq!(prices, [2.0, 3.0, 4.0]);
    }

    #[test]
    fn builds_minute_candles() {
        let mut h = History::new(0, 10);
        for (dt, p) in [(0, 10.0), (10_000, 12.0), (20_000, 9.0), (59_999, 11.0), (60_000, 11.5), (125_000, 13.0)] {
            h.record(T0 + dt, p);
        }
        let c = h.candles();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], Candle { start: T0, open: 10.0, high: 12.0, low: 9.0, close: 11.0, ticks: 4 });
        assert_eq!(c[1], Candle { start: T0 + 60_000, open: 11.5, high: 11.5, low: 11.5, close: 11.5, ticks: 1 });
        assert_eq!(c[2].start, T0 + 120_000);
        assert!(h.ticks().is_empty(), "tick ring disabled");
    }

    #[test]
    fn late_ticks_widen_their_minute_without_moving_close() {
        let mut h = History::new(0, 10);
        h.record(T0, 10.0);
        h.record(T0 + 60_000, 20.0);
        h.record(T0 + 30_000, 5.0); // late, belongs to the first minute
        let c = h.candles();
        assert_eq!(c[0], Candle { start: T0, open: 10.0, high: 10.0, low: 5.0, close: 10.0, ticks: 2 });
        assert_eq!(c[1].close, 20.0);
    }

    #[test]
    fn candle_ring_is_bounded() {
        let mut h = History::new(0, 2);
        for m in 0..5 {
            h.record(T0 + m * 60_000, m as f64);
        }
        let starts: Vec<_> = h.candles().iter().map(|c| c.start).collect();
        assert_eq!(starts, [T0 + 3 * 60_000, T0 + 4 * 60_000]);
    }
}
