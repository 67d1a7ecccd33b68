//! Technical indicators over a series of closes: EMA, Bollinger bands, RSI and StochRSI. Pure functions, each
//! returning one value per input (`None` until the indicator has enough data), so the chart can line them up
//! with its candles by index and recompute them whole on every tick (a few thousand candles at most).
//!
//! Definitions follow the usual charting conventions: an EMA is seeded with the simple average of its first
//! `period` values; Bollinger bands use the population standard deviation; RSI uses Wilder's smoothing;
//! StochRSI is the stochastic of RSI with %K and %D smoothed by simple averages (TradingView's 14/14/3/3).

/// Exponential moving average with smoothing `2 / (period + 1)`.
pub(crate) fn ema(values: &[f64], period: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    if period == 0 || values.len() < period {
        return out;
    }
    let k = 2.0 / (period as f64 + 1.0);
    let mut prev = values[..period].iter().sum::<f64>() / period as f64;
    out[period - 1] = Some(prev);
    for (i, v) in values.iter().enumerate().skip(period) {
        prev = v * k + prev * (1.0 - k);
        out[i] = Some(prev);
    }
    out
}

/// Simple moving average over the defined values of `values`: `None` until `period` of them in a row exist.
fn sma(values: &[Option<f64>], period: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    if period == 0 {
        return out;
    }
    for i in (period - 1)..values.len() {
        let window = &values[i + 1 - period..=i];
        if window.iter().all(Option::is_some) {
            out[i] = Some(window.iter().flatten().sum::<f64>() / period as f64);
        }
    }
    out
}

/// One point of Bollinger bands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Band {
    pub(crate) upper: f64,
    pub(crate) middle: f64,
    pub(crate) lower: f64,
}

/// Bollinger bands: the `period` simple average, `width` population standard deviations either side.
pub(crate) fn bollinger(values: &[f64], period: usize, width: f64) -> Vec<Option<Band>> {
    let mut out = vec![None; values.len()];
    if period == 0 {
        return out;
    }
    for i in (period.saturating_sub(1))..values.len() {
        let window = &values[i + 1 - period..=i];
        let mean = window.iter().sum::<f64>() / period as f64;
        let var = window.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / period as f64;
        let sd = var.sqrt();
        out[i] = Some(Band { upper: mean + width * sd, middle: mean, lower: mean - width * sd });
    }
    out
}

/// Relative strength index with Wilder's smoothing; the first value is at index `period`.
pub(crate) fn rsi(values: &[f64], period: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    if period == 0 || values.len() <= period {
        return out;
    }
    let change = |i: usize| values[i] - values[i - 1];
    let (mut gain, mut loss) = (1..=period).fold((0.0, 0.0), |(g, l), i| {
        let c = change(i);
        (g + c.max(0.0), l + (-c).max(0.0))
    });
    gain /= period as f64;
    loss /= period as f64;
    let value = |gain: f64, loss: f64| {
        if loss == 0.0 {
            if gain == 0.0 {
                50.0
            } else {
                100.0
            }
        } else {
            100.0 - 100.0 / (1.0 + gain / loss)
        }
    };
    out[period] = Some(value(gain, loss));
    let n = period as f64;
    for (i, slot) in out.iter_mut().enumerate().skip(period + 1) {
        let c = change(i);
        gain = (gain * (n - 1.0) + c.max(0.0)) / n;
        loss = (loss * (n - 1.0) + (-c).max(0.0)) / n;
        *slot = Some(value(gain, loss));
    }
    out
}

/// One point of StochRSI, both lines in 0..=100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stoch {
    pub(crate) k: Option<f64>,
    pub(crate) d: Option<f64>,
}

/// StochRSI: where RSI(`rsi_period`) sits in its own range over `stoch_period`, as %K smoothed over `k` and %D
/// the average of %K over `d`. A flat RSI range reads 0.
pub(crate) fn stoch_rsi(values: &[f64], rsi_period: usize, stoch_period: usize, k: usize, d: usize) -> Vec<Stoch> {
    let r = rsi(values, rsi_period);
    let mut raw = vec![None; values.len()];
    if stoch_period > 0 {
        for i in (stoch_period - 1)..values.len() {
            let window = &r[i + 1 - stoch_period..=i];
            if window.iter().all(Option::is_some) {
                let (lo, hi) =
                    window.iter().flatten().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
                let now = r[i].unwrap_or(lo);
                raw[i] = Some(if hi > lo { 100.0 * (now - lo) / (hi - lo) } else { 0.0 });
            }
        }
    }
    let k_line = sma(&raw, k);
    let d_line = sma(&k_line, d);
    k_line.into_iter().zip(d_line).map(|(k, d)| Stoch { k, d }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closes of the worked RSI example in Wilder's method as StockCharts' ChartSchool tabulates it.
    const CLOSES: [f64; 33] = [
        44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826, 45.8931, 46.0328,
        45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439, 46.2122, 46.2521, 45.7137, 46.4515,
        45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314,
    ];
    /// Its RSI(14) column, from the 15th close on, to two decimals.
    const RSI14: [f64; 19] = [
        70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99, 41.46, 41.87, 45.46,
        37.30, 33.08, 37.77,
    ];

    fn round2(v: f64) -> f64 {
        (v * 100.0).round() / 100.0
    }

    #[test]
    fn rsi14_matches_the_textbook_table() {
        let r = rsi(&CLOSES, 14);
        assert!(r[..14].iter().all(Option::is_none));
        let got: Vec<f64> = r[14..].iter().map(|v| round2(v.expect("defined from index 14"))).collect();
        assert_eq!(got, RSI14);
    }

    #[test]
    fn rsi_of_a_one_way_series_is_pinned() {
        let up: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(rsi(&up, 14)[19], Some(100.0));
        let down: Vec<f64> = up.iter().rev().copied().collect();
        assert_eq!(rsi(&down, 14)[19], Some(0.0));
        assert_eq!(rsi(&[5.0; 20], 14)[19], Some(50.0));
        assert!(rsi(&up[..14], 14).iter().all(Option::is_none), "needs period + 1 closes");
    }

    #[test]
    fn ema_is_seeded_with_the_simple_average() {
        let e = ema(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3);
        assert_eq!(e[..2], [None, None]);
        // Seed (1+2+3)/3 = 2, then k = 0.5: (4+2)/2 = 3, (5+3)/2 = 4, (6+4)/2 = 5.
        assert_eq!(e[2..], [Some(2.0), Some(3.0), Some(4.0), Some(5.0)]);
        // On real closes: the seed, then one step of the recurrence.
        let e10 = ema(&CLOSES, 10);
        let first = CLOSES[..10].iter().sum::<f64>() / 10.0;
        assert!((e10[9].unwrap() - first).abs() < 1e-12);
        let next = CLOSES[10] * (2.0 / 11.0) + first * (9.0 / 11.0);
        assert!((e10[10].unwrap() - next).abs() < 1e-12);
        assert!(ema(&[1.0, 2.0], 3).iter().all(Option::is_none));
    }

    #[test]
    fn bollinger_bands_use_the_population_deviation() {
        let b = bollinger(&[1.0, 2.0, 3.0, 4.0, 5.0], 5, 2.0);
        let last = b[4].expect("a full window");
        assert_eq!(last.middle, 3.0);
        assert!((last.upper - (3.0 + 2.0 * 2f64.sqrt())).abs() < 1e-12);
        assert!((last.lower - (3.0 - 2.0 * 2f64.sqrt())).abs() < 1e-12);
        assert!(b[..4].iter().all(Option::is_none));
        let flat = bollinger(&[7.0; 25], 20, 2.0);
        assert_eq!(flat[24], Some(Band { upper: 7.0, middle: 7.0, lower: 7.0 }));
    }

    #[test]
    fn stoch_rsi_spans_its_range_and_smooths() {
        // RSI(2) of this zig-zag swings; a stoch period of 3 puts each RSI in its recent range.
        let closes = [10.0, 11.0, 10.5, 12.0, 11.0, 13.0, 12.0, 14.0, 13.5, 13.0, 12.5, 12.0];
        let r = rsi(&closes, 2);
        let s = stoch_rsi(&closes, 2, 3, 1, 1);
        for i in 4..closes.len() {
            let w: Vec<f64> = r[i - 2..=i].iter().map(|v| v.unwrap()).collect();
            let (lo, hi) = w.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
            let want = if hi > lo { 100.0 * (r[i].unwrap() - lo) / (hi - lo) } else { 0.0 };
            assert!((s[i].k.unwrap() - want).abs() < 1e-9, "index {i}");
            assert_eq!(s[i].k, s[i].d, "with d = 1 the lines coincide");
        }
        // Falling closes at the end: RSI at its low, so %K is 0.
        assert_eq!(s[11].k, Some(0.0));
        // The default 14/14/3/3 needs 14 + 13 + 2 + 2 closes before %D exists.
        let long: Vec<f64> = CLOSES.iter().chain(CLOSES.iter()).copied().collect();
        let s = stoch_rsi(&long, 14, 14, 3, 3);
        assert_eq!(s.iter().position(|p| p.k.is_some()), Some(29));
        assert_eq!(s.iter().position(|p| p.d.is_some()), Some(31));
        assert!(s.iter().flat_map(|p| [p.k, p.d]).flatten().all(|v| (0.0..=100.0).contains(&v)));
    }
}
