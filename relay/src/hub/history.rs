//! Short per-symbol history: a ring of recent ticks and a ring of one-minute OHLC candles, and [`aggregate`],
//! which rolls one-minute candles up into any longer [`Timeframe`] for `/api/history?tf=`.
//!
//! Both rings are fixed-size so a symbol's memory is bounded no matter how fast it ticks. Candles are keyed by
//! the provider's event time (`ts`), not arrival time, so a replayed or delayed feed still lands in the right
//! minute. A tick older than the newest candle's minute updates that earlier candle if it is still in the ring,
//! but never its open/close (those belong to the first and latest tick the relay saw for the minute).
//!
//! A provider may also hand over candles from before the relay was listening ([`History::backfill`]): they fill
//! the ring in front of the first observed minute and never replace one. They are kept apart in
//! [`History::oldest_minute`], which names the first minute seen live, so a store that recorded that period still
//! answers for it.

use std::collections::VecDeque;

use hamster_shared::api::{Candle, Tick, Timeframe};

const MINUTE_MS: i64 = 60_000;

/// Bounded tick and candle history of one symbol.
#[derive(Debug)]
pub(crate) struct History {
    ticks: VecDeque<Tick>,
    candles: VecDeque<Candle>,
    max_ticks: usize,
    max_candles: usize,
    /// The last running day volume seen: providers report volume as a running total for the day, and a candle
    /// wants what traded inside it.
    day_volume: Option<f64>,
    /// The first minute recorded from live ticks: what came before it was backfilled.
    observed_from: Option<i64>,
}

impl History {
    pub(crate) fn new(max_ticks: usize, max_candles: usize) -> History {
        History {
            ticks: VecDeque::with_capacity(max_ticks.min(64)),
            candles: VecDeque::with_capacity(max_candles.min(16)),
            max_ticks,
            max_candles,
            day_volume: None,
            observed_from: None,
        }
    }

    /// Records one price at event time `ts` (ms since epoch), with the provider's running day volume if it gives
    /// one.
    pub(crate) fn record(&mut self, ts: i64, price: f64, day_volume: Option<f64>) {
        let traded = match (day_volume, self.day_volume) {
            (Some(v), Some(prev)) if v >= prev => v - prev,
            // A smaller running volume means a new trading day began.
            (Some(v), Some(_)) => v,
            _ => 0.0,
        };
        if day_volume.is_some() {
            self.day_volume = day_volume;
        }
        if self.max_ticks > 0 {
            if self.ticks.len() == self.max_ticks {
                self.ticks.pop_front();
            }
            self.ticks.push_back(Tick { ts, price });
        }
        if self.max_candles > 0 {
            self.record_candle(ts, price, traded);
        }
    }

    fn record_candle(&mut self, ts: i64, price: f64, traded: f64) {
        let start = ts.div_euclid(MINUTE_MS) * MINUTE_MS;
        self.observed_from.get_or_insert(start);
        match self.candles.back_mut() {
            Some(last) if last.start == start => {
                last.high = last.high.max(price);
                last.low = last.low.min(price);
                last.close = price;
                last.ticks += 1;
                last.volume += traded;
            }
            Some(last) if last.start > start => {
                // Late tick: widen its minute's range if that candle is still kept.
                if let Ok(i) = self.candles.binary_search_by_key(&start, |c| c.start) {
                    let c = &mut self.candles[i];
                    c.high = c.high.max(price);
                    c.low = c.low.min(price);
                    c.ticks += 1;
                    c.volume += traded;
                }
            }
            _ => {
                if self.candles.len() == self.max_candles {
                    self.candles.pop_front();
                }
                self.candles.push_back(Candle {
                    start,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    ticks: 1,
                    volume: traded,
                });
            }
        }
    }

    /// Recent ticks, oldest first.
    pub(crate) fn ticks(&self) -> Vec<Tick> {
        self.ticks.iter().copied().collect()
    }

    /// Candles of `tf` starting in `[from, to)`, oldest first, aggregated from the one-minute ring. The first one
    /// may be partial when the ring no longer holds the start of its period.
    pub(crate) fn candles(&self, tf: Timeframe, from: i64, to: i64) -> Vec<Candle> {
        let from = tf.bucket(from);
        let first = self.candles.partition_point(|c| c.start < from);
        aggregate(self.candles.range(first..).take_while(|c| c.start < to), tf)
    }

    /// Places one-minute candles from before the relay was listening in front of the ring: only those older than
    /// every candle it holds, newest kept when they do not all fit. Unaligned starts are refused (they would
    /// break the ring's order), as are candles whose prices are not finite and positive.
    pub(crate) fn backfill(&mut self, mut candles: Vec<Candle>) -> usize {
        let before = self.candles.front().map_or(i64::MAX, |c| c.start);
        candles.retain(|c| {
            let prices = [c.open, c.high, c.low, c.close];
            c.start < before
                && c.start.rem_euclid(MINUTE_MS) == 0
                && prices.iter().all(|p| p.is_finite() && *p > 0.0)
                && c.volume.is_finite()
                && c.volume >= 0.0
        });
        candles.sort_by_key(|c| c.start);
        candles.dedup_by_key(|c| c.start);
        let room = self.max_candles.saturating_sub(self.candles.len());
        let skip = candles.len().saturating_sub(room);
        let added = candles.len() - skip;
        for c in candles.into_iter().skip(skip).rev() {
            self.candles.push_front(c);
        }
        added
    }

    /// The start of the oldest minute kept that was seen live, if any (backfilled minutes before it do not count:
    /// a recording of that period is better than a provider's reconstruction).
    pub(crate) fn oldest_minute(&self) -> Option<i64> {
        let front = self.candles.front().map(|c| c.start)?;
        Some(self.observed_from.map_or(front, |seen| seen.max(front)))
    }
}

/// Rolls candles (oldest first, each inside one period of `tf`) up into candles of `tf`: open of the first, close of
/// the last, extremes, volumes and tick counts summed.
pub(super) fn aggregate<'a>(candles: impl IntoIterator<Item = &'a Candle>, tf: Timeframe) -> Vec<Candle> {
    let mut out: Vec<Candle> = Vec::new();
    for c in candles {
        let start = tf.bucket(c.start);
        match out.last_mut() {
            Some(last) if last.start == start => {
                last.high = last.high.max(c.high);
                last.low = last.low.min(c.low);
                last.close = c.close;
                last.ticks = last.ticks.saturating_add(c.ticks);
                last.volume += c.volume;
            }
            _ => out.push(Candle { start, ..*c }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_040_000; // a minute boundary

    #[test]
    fn tick_ring_keeps_the_latest() {
        let mut h = History::new(3, 10);
        for i in 0..5 {
            h.record(T0 + i, i as f64, None);
        }
        let prices: Vec<_> = h.ticks().iter().map(|t| t.price).collect();
        assert_eq!(prices, [2.0, 3.0, 4.0]);
    }

    #[test]
    fn builds_minute_candles() {
        let mut h = History::new(0, 10);
        for (dt, p) in [(0, 10.0), (10_000, 12.0), (20_000, 9.0), (59_999, 11.0), (60_000, 11.5), (125_000, 13.0)] {
            h.record(T0 + dt, p, None);
        }
        let c = h.candles(Timeframe::M1, 0, i64::MAX);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], Candle { start: T0, open: 10.0, high: 12.0, low: 9.0, close: 11.0, ticks: 4, volume: 0.0 });
        assert_eq!(
            c[1],
            Candle { start: T0 + 60_000, open: 11.5, high: 11.5, low: 11.5, close: 11.5, ticks: 1, volume: 0.0 }
        );
        assert_eq!(c[2].start, T0 + 120_000);
        assert!(h.ticks().is_empty(), "tick ring disabled");
    }

    #[test]
    fn late_ticks_widen_their_minute_without_moving_close() {
        let mut h = History::new(0, 10);
        h.record(T0, 10.0, None);
        h.record(T0 + 60_000, 20.0, None);
        h.record(T0 + 30_000, 5.0, None); // late, belongs to the first minute
        let c = h.candles(Timeframe::M1, 0, i64::MAX);
        assert_eq!(c[0], Candle { start: T0, open: 10.0, high: 10.0, low: 5.0, close: 10.0, ticks: 2, volume: 0.0 });
        assert_eq!(c[1].close, 20.0);
    }

    #[test]
    fn candle_ring_is_bounded() {
        let mut h = History::new(0, 2);
        for m in 0..5 {
            h.record(T0 + m * 60_000, m as f64, None);
        }
        let starts: Vec<_> = h.candles(Timeframe::M1, 0, i64::MAX).iter().map(|c| c.start).collect();
        assert_eq!(starts, [T0 + 3 * 60_000, T0 + 4 * 60_000]);
    }

    fn minute(start: i64, close: f64) -> Candle {
        Candle { start, open: close, high: close, low: close, close, ticks: 4, volume: 1.0 }
    }

    #[test]
    fn backfill_goes_in_front_of_live_minutes_and_never_over_them() {
        let mut h = History::new(0, 5);
        h.record(T0 + 2 * 60_000 + 10, 50.0, None);
        let past = (0..4).map(|m| minute(T0 + (m - 1) * 60_000, (m + 1) as f64)).collect::<Vec<_>>();
        // Minutes -1, 0, 1 fit in front; minute 2 is live already and stays the live one.
        assert_eq!(h.backfill(past), 3);
        let c = h.candles(Timeframe::M1, 0, i64::MAX);
        let closes: Vec<_> = c.iter().map(|c| c.close).collect();
        assert_eq!(closes, [1.0, 2.0, 3.0, 50.0]);
        assert_eq!(h.oldest_minute(), Some(T0 + 2 * 60_000), "the first live minute, not the backfill's");
        // Full: only the newest that fit, still in front.
        assert_eq!(h.backfill(vec![minute(T0 - 3 * 60_000, 7.0), minute(T0 - 2 * 60_000, 8.0)]), 1);
        let starts: Vec<_> = h.candles(Timeframe::M1, 0, i64::MAX).iter().map(|c| (c.start - T0) / 60_000).collect();
        assert_eq!(starts, [-2, -1, 0, 1, 2]);
        // Live minutes keep pushing the backfill out as usual.
        h.record(T0 + 3 * 60_000, 51.0, None);
        assert_eq!(h.candles(Timeframe::M1, 0, i64::MAX)[0].start, T0 - 60_000);
    }

    #[test]
    fn backfill_refuses_what_would_corrupt_the_ring() {
        let mut h = History::new(0, 10);
        let bad = [
            Candle { start: T0 + 1, ..minute(T0, 1.0) },
            Candle { close: f64::NAN, ..minute(T0 + 60_000, 1.0) },
            Candle { low: -1.0, ..minute(T0 + 120_000, 1.0) },
            Candle { volume: f64::INFINITY, ..minute(T0 + 180_000, 1.0) },
        ];
        assert_eq!(h.backfill(bad.to_vec()), 0);
        assert_eq!(h.oldest_minute(), None);
        // Unordered and repeated input is sorted and deduplicated; with nothing live, it all counts as kept.
        let added = h.backfill(vec![minute(T0 + 60_000, 2.0), minute(T0, 1.0), minute(T0, 1.5)]);
        assert_eq!(added, 2);
        assert_eq!(h.oldest_minute(), Some(T0));
    }

    /// 2023-11-14T22:00:00Z: an hour boundary (and so a 5- and 15-minute one).
    const H0: i64 = 1_699_999_200_000;

    #[test]
    fn volume_is_what_traded_inside_each_minute() {
        let mut h = History::new(0, 10);
        h.record(H0, 10.0, Some(1_000.0)); // first sight: the day's total so far is not this minute's
        h.record(H0 + 1_000, 10.0, Some(1_250.0));
        h.record(H0 + 60_000, 11.0, Some(1_300.0));
        h.record(H0 + 61_000, 11.0, Some(40.0)); // the running total restarted: a new trading day
        let v: Vec<_> = h.candles(Timeframe::M1, 0, i64::MAX).iter().map(|c| c.volume).collect();
        assert_eq!(v, [250.0, 90.0]);
    }

    #[test]
    fn aggregates_minutes_into_longer_timeframes() {
        let mut h = History::new(0, 200);
        // One tick a minute for 70 minutes, price = minute index; 2 units traded each minute.
        for m in 0..70 {
            h.record(H0 + m * 60_000 + 5_000, m as f64, Some(100.0 + 2.0 * m as f64));
        }
        let five = h.candles(Timeframe::M5, 0, i64::MAX);
        assert_eq!(five.len(), 14);
        assert_eq!(
            five[1],
            Candle { start: H0 + 300_000, open: 5.0, high: 9.0, low: 5.0, close: 9.0, ticks: 5, volume: 10.0 }
        );
        let hours = h.candles(Timeframe::H1, 0, i64::MAX);
        assert_eq!(hours.len(), 2);
        assert_eq!((hours[0].start, hours[0].open, hours[0].close, hours[0].ticks), (H0, 0.0, 59.0, 60));
        assert_eq!((hours[0].high, hours[0].low, hours[0].volume), (59.0, 0.0, 118.0));
        assert_eq!((hours[1].start, hours[1].open, hours[1].close, hours[1].ticks), (H0 + 3_600_000, 60.0, 69.0, 10));
        let day = h.candles(Timeframe::D1, 0, i64::MAX);
        assert_eq!((day.len(), day[0].ticks, day[0].start), (1, 70, Timeframe::D1.bucket(H0)));
    }

    #[test]
    fn range_selects_whole_periods() {
        let mut h = History::new(0, 200);
        for m in 0..60 {
            h.record(H0 + m * 60_000, m as f64, None);
        }
        // `from` inside a period takes that whole period; `to` is exclusive.
        let c = h.candles(Timeframe::M15, H0 + 20 * 60_000, H0 + 45 * 60_000);
        let starts: Vec<_> = c.iter().map(|c| (c.start - H0) / 60_000).collect();
        assert_eq!(starts, [15, 30]);
        assert_eq!(c[0].ticks, 15);
        assert_eq!(h.oldest_minute(), Some(H0));
    }
}
