//! The chart's candles of one symbol and timeframe: seeded from the relay's history, then moved by live ticks.
//! A tick inside the last period moves its close (and widens its range); a tick in a later period opens a new
//! candle. Ticks older than the newest one applied, and exact repeats of it, are dropped here, so out-of-order or
//! duplicate ticks never reach the chart. Volume arrives as the provider's running day total and is turned into
//! what traded inside each candle, as the relay does.

use hamster_shared::api::{Candle, Timeframe};

/// What one tick did to the series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Applied {
    /// The last candle changed.
    Moved,
    /// A new candle was opened.
    Opened,
    /// Out of order or a repeat: nothing changed.
    Dropped,
}

/// Candles oldest first, plus what is needed to apply the next tick.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) tf: Timeframe,
    pub(crate) candles: Vec<Candle>,
    /// Event time and price of the newest tick applied.
    last_tick: Option<(i64, f64)>,
    day_volume: Option<f64>,
    /// Most candles kept; the oldest go first.
    cap: usize,
}

impl Series {
    /// A series seeded from history (oldest first). Ticks before the end of the last seeded candle's period are
    /// already counted in it, but a tick inside that period may still be newer; the seed's start is what is known.
    pub(crate) fn new(tf: Timeframe, mut candles: Vec<Candle>, cap: usize) -> Series {
        crate::sort::sort_by_key(&mut candles, |c| c.start);
        candles.dedup_by_key(|c| c.start);
        if candles.len() > cap {
            candles.drain(..candles.len() - cap);
        }
        let last_tick = candles.last().map(|c| (c.start, c.close));
        Series { tf, candles, last_tick, day_volume: None, cap }
    }

    /// Applies one tick at event time `ts` (ms) with the provider's running day volume, if any.
    pub(crate) fn apply(&mut self, ts: i64, price: f64, day_volume: Option<f64>) -> Applied {
        if !price.is_finite() {
            return Applied::Dropped;
        }
        match self.last_tick {
            Some((last_ts, _)) if ts < last_ts => return Applied::Dropped,
            Some((last_ts, last_price)) if ts == last_ts && price == last_price => return Applied::Dropped,
            _ => {}
        }
        self.last_tick = Some((ts, price));
        let traded = match (day_volume, self.day_volume) {
            (Some(v), Some(prev)) if v >= prev => v - prev,
            (Some(v), Some(_)) => v,
            _ => 0.0,
        };
        if day_volume.is_some() {
            self.day_volume = day_volume;
        }
        let start = self.tf.bucket(ts);
        match self.candles.last_mut() {
            Some(last) if last.start == start => {
                last.high = last.high.max(price);
                last.low = last.low.min(price);
                last.close = price;
                last.ticks = last.ticks.saturating_add(1);
                last.volume += traded;
                Applied::Moved
            }
            _ => {
                if self.candles.len() == self.cap {
                    self.candles.remove(0);
                }
                self.candles.push(Candle {
                    start,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    ticks: 1,
                    volume: traded,
                });
                Applied::Opened
            }
        }
    }

    /// The candle that starts at `start`, for the crosshair readout.
    pub(crate) fn at(&self, start: i64) -> Option<&Candle> {
        self.candles.binary_search_by_key(&start, |c| c.start).ok().map(|i| &self.candles[i])
    }

    pub(crate) fn closes(&self) -> Vec<f64> {
        self.candles.iter().map(|c| c.close).collect()
    }

    /// Whether any candle has volume (the provider reports it).
    pub(crate) fn has_volume(&self) -> bool {
        self.candles.iter().any(|c| c.volume > 0.0) || self.day_volume.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H0: i64 = 1_699_999_200_000; // an hour boundary

    fn seed(start: i64, close: f64) -> Candle {
        Candle { start, open: close, high: close, low: close, close, ticks: 1, volume: 0.0 }
    }

    #[test]
    fn ticks_move_the_last_candle_and_open_new_ones_on_the_boundary() {
        let mut s = Series::new(Timeframe::M5, vec![seed(H0, 10.0)], 100);
        assert_eq!(s.apply(H0 + 60_000, 12.0, None), Applied::Moved);
        assert_eq!(s.apply(H0 + 120_000, 9.0, None), Applied::Moved);
        let c = s.candles[0];
        assert_eq!((c.open, c.high, c.low, c.close, c.ticks), (10.0, 12.0, 9.0, 9.0, 3));
        assert_eq!(s.apply(H0 + 300_000, 11.0, None), Applied::Opened, "5 minutes in: a new candle");
        assert_eq!(s.candles.len(), 2);
        assert_eq!(
            s.candles[1],
            Candle { start: H0 + 300_000, open: 11.0, high: 11.0, low: 11.0, close: 11.0, ticks: 1, volume: 0.0 }
        );
        assert_eq!(s.at(H0 + 300_000).map(|c| c.close), Some(11.0));
    }

    #[test]
    fn late_and_repeated_ticks_never_reach_the_chart() {
        let mut s = Series::new(Timeframe::M1, vec![], 100);
        assert_eq!(s.apply(H0 + 5_000, 10.0, None), Applied::Opened);
        assert_eq!(s.apply(H0 + 5_000, 10.0, None), Applied::Dropped, "a repeat");
        assert_eq!(s.apply(H0 + 4_000, 99.0, None), Applied::Dropped, "older than the newest");
        assert_eq!(s.apply(H0 + 5_000, 10.5, None), Applied::Moved, "same time, new price");
        assert_eq!(s.apply(H0 + 6_000, f64::NAN, None), Applied::Dropped);
        assert_eq!((s.candles[0].close, s.candles[0].high, s.candles[0].ticks), (10.5, 10.5, 2));
        // A seeded series drops ticks from before its last candle began.
        let mut s = Series::new(Timeframe::M1, vec![seed(H0, 10.0)], 100);
        assert_eq!(s.apply(H0 - 1, 5.0, None), Applied::Dropped);
    }

    #[test]
    fn running_day_volume_becomes_volume_per_candle() {
        let mut s = Series::new(Timeframe::M1, vec![], 100);
        s.apply(H0, 1.0, Some(500.0));
        s.apply(H0 + 1_000, 1.0, Some(520.0));
        s.apply(H0 + 60_000, 1.0, Some(530.0));
        s.apply(H0 + 61_000, 1.0, Some(3.0)); // a new trading day
        let v: Vec<f64> = s.candles.iter().map(|c| c.volume).collect();
        assert_eq!(v, [20.0, 13.0]);
        assert!(s.has_volume());
    }

    #[test]
    fn the_series_is_bounded_and_seeds_are_sorted() {
        let mut s = Series::new(Timeframe::M1, vec![seed(H0 + 60_000, 2.0), seed(H0, 1.0)], 2);
        assert_eq!(s.closes(), [1.0, 2.0]);
        s.apply(H0 + 120_000, 3.0, None);
        assert_eq!(s.closes(), [2.0, 3.0]);
    }
}
