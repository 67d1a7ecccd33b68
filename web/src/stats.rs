//! Rolling statistics shown in the stats panel: update rate and quote-to-render lag. Pure and bounded: the
//! windows keep a fixed number of samples however long the page stays open.

use std::collections::VecDeque;

/// Lag samples kept for the average and p95.
const LAG_SAMPLES: usize = 512;
/// Seconds the update rate is averaged over.
const RATE_WINDOW_S: i64 = 5;

/// The last [`LAG_SAMPLES`] lags (ms from a quote's `ts` to the frame that rendered it).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LagWindow {
    samples: VecDeque<f64>,
}

impl LagWindow {
    /// Records one lag. Negative lags (the provider's clock is ahead of ours) count as 0 so that clock skew does
    /// not make the average look better than instant.
    pub(crate) fn record(&mut self, lag_ms: f64) {
        if !lag_ms.is_finite() {
            return;
        }
        if self.samples.len() == LAG_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(lag_ms.max(0.0));
    }

    /// Samples held. Only the tests need to count them; the panel shows the average and p95.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    pub(crate) fn average(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        Some(self.samples.iter().sum::<f64>() / self.samples.len() as f64)
    }

    /// 95th percentile by the nearest-rank method.
    pub(crate) fn p95(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        crate::sort::sort_by(&mut sorted, f64::total_cmp);
        let rank = (0.95 * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.saturating_sub(1)).copied()
    }
}

/// Counts events per wall-clock second for the last [`RATE_WINDOW_S`] seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RateCounter {
    /// (second, count), oldest first, at most one entry per second.
    buckets: VecDeque<(i64, u64)>,
    first_second: Option<i64>,
}

impl RateCounter {
    pub(crate) fn record(&mut self, now_ms: i64, count: u64) {
        if count == 0 {
            return;
        }
        let second = now_ms.div_euclid(1000);
        self.first_second.get_or_insert(second);
        match self.buckets.back_mut() {
            Some((s, n)) if *s == second => *n += count,
            _ => self.buckets.push_back((second, count)),
        }
        self.prune(second);
    }

    /// Keeps the current second and the [`RATE_WINDOW_S`] completed ones before it: `per_second` divides by
    /// that many, so dropping one of them too early would read the rate low.
    fn prune(&mut self, second: i64) {
        while self.buckets.front().is_some_and(|(s, _)| *s < second - RATE_WINDOW_S) {
            self.buckets.pop_front();
        }
    }

    /// Events per second over the completed seconds of the window (the current second is still filling up,
    /// so counting it would make the rate dip every second).
    pub(crate) fn per_second(&self, now_ms: i64) -> f64 {
        let now_s = now_ms.div_euclid(1000);
        let Some(first) = self.first_second else {
            return 0.0;
        };
        let from = (now_s - RATE_WINDOW_S).max(first);
        let span = now_s - from;
        if span <= 0 {
            return 0.0;
        }
        let total: u64 = self.buckets.iter().filter(|(s, _)| *s >= from && *s < now_s).map(|(_, n)| n).sum();
        total as f64 / span as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn lag_average_and_p95() {
        let mut w = LagWindow::default();
        assert_eq!(w.average(), None);
        assert_eq!(w.p95(), None);
        for lag in 1..=100 {
            w.record(lag as f64);
        }
        assert_eq!(w.average(), Some(50.5));
        assert_eq!(w.p95(), Some(95.0));
        w.record(-20.0);
        assert_eq!(w.len(), 101);
        w.record(f64::NAN);
        assert_eq!(w.len(), 101, "NaN is ignored");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn lag_window_is_bounded() {
        let mut w = LagWindow::default();
        for _ in 0..LAG_SAMPLES * 3 {
            w.record(1000.0);
        }
        for _ in 0..LAG_SAMPLES {
            w.record(10.0);
        }
        assert_eq!(w.len(), LAG_SAMPLES);
        assert_eq!(w.average(), Some(10.0), "old samples were evicted");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rate_counts_completed_seconds() {
        let mut r = RateCounter::default();
        assert_eq!(r.per_second(10_000), 0.0);
        // 10 per second for seconds 10..=19.
        for s in 10..20 {
            r.record(s * 1000 + 500, 10);
        }
        assert_eq!(r.per_second(20_100), 10.0);
        // The window slides: five seconds later with nothing new, the rate drops to zero.
        assert_eq!(r.per_second(26_000), 0.0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_steady_rate_reads_right_while_the_current_second_fills() {
        let mut r = RateCounter::default();
        // 10 per second for seconds 10..=30, the last one still filling up when read.
        for s in 10..=30 {
            r.record(s * 1000 + 500, 10);
        }
        assert_eq!(r.per_second(30_700), 10.0, "not four seconds' counts over five");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rate_just_after_start_uses_elapsed_span() {
        let mut r = RateCounter::default();
        r.record(1_000, 30);
        r.record(1_900, 30);
        assert_eq!(r.per_second(1_999), 0.0, "first second not complete yet");
        assert_eq!(r.per_second(2_000), 60.0);
    }
}
