//! One instrument's simulated price: a geometric Brownian motion with a spread, a day volume and a day open.

use hamster_shared::api::Candle;
use hamster_shared::{AssetClass, Quote, Symbol};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::NAME;

/// One instrument's random walk.
#[derive(Debug)]
pub(super) struct Walk {
    symbol: Option<Symbol>,
    ticker: String,
    class: AssetClass,
    price: f64,
    open: f64,
    /// Volatility per tick (σ·√dt with compressed time).
    sigma: f64,
    /// Relative half-spread.
    half_spread: f64,
    volume: f64,
    lot: f64,
}

impl Walk {
    /// A walk of `ticker` starting near `base`.
    pub(super) fn new(ticker: &str, base: f64, rng: &mut StdRng) -> Walk {
        let class = AssetClass::of(ticker);
        // Start within ±0.5% of the seed so restarts do not all begin at the same print.
        let open = base * (1.0 + rng.random_range(-0.005..0.005));
        let (sigma, half_spread, lot) = match class {
            AssetClass::Crypto => (0.0006, 0.00005, 0.01),
            AssetClass::Equity => (0.0004, 0.0001, 100.0),
            AssetClass::Forex => (0.00008, 0.00001, 100_000.0),
        };
        Walk {
            symbol: Symbol::parse(ticker).ok(),
            ticker: ticker.to_owned(),
            class,
            price: open,
            open,
            sigma,
            half_spread,
            volume: 0.0,
            lot,
        }
    }

    pub(super) fn step(&mut self, rng: &mut StdRng, ts: i64) -> Option<Quote> {
        let z: f64 = StandardNormal.sample(rng);
        self.price *= (-0.5 * self.sigma * self.sigma + self.sigma * z).exp();
        // Rounded to a thousandth of a lot so fractional crypto volumes do not vanish.
        self.volume =
            ((self.volume + rng.random_range(1.0..20.0) * self.lot) * 1000.0 / self.lot).round() * self.lot / 1000.0;
        let decimals = self.class.decimals(&self.ticker, self.price);
        let round = |x: f64| {
            let f = 10f64.powi(decimals as i32);
            (x * f).round() / f
        };
        let price = round(self.price);
        let half = (self.price * self.half_spread).max(10f64.powi(-(decimals as i32)));
        let change = price - self.open;
        Some(Quote { seq: None, recv: None,
            symbol: self.symbol.clone()?,
            price,
            ts,
            provider: NAME.to_owned(),
            bid: Some(round(self.price - half)),
            ask: Some(round(self.price + half)),
            volume: Some(self.volume),
            change: Some(round(change)),
            change_pct: Some(((change / self.open) * 1e6).round() / 1e4),
        })
    }
}

/// How strongly a reconstructed past is pulled back to the walk's level, per minute: a half-life of half an hour,
/// so a day's chart wanders a few per cent (crypto at the default rate: about 4 % standard deviation) instead of
/// drifting as far as an unchecked walk over 1,440 minutes would (about 35 %).
const PAST_REVERSION_PER_MIN: f64 = std::f64::consts::LN_2 / 30.0;

impl Walk {
    /// One-minute candles of the `minutes` before the minute of `now_ms`, oldest first, ending at today's price:
    /// the same volatility as the live walk at `ticks_per_min` ticks a minute, walked backwards from the current
    /// price with a pull towards it, so the chart a user opens has a plausible past that joins the live candles.
    pub(super) fn past(&self, rng: &mut StdRng, now_ms: i64, minutes: usize, ticks_per_min: f64) -> Vec<Candle> {
        const MINUTE_MS: i64 = 60_000;
        let this_minute = now_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let sigma = self.sigma * ticks_per_min.max(1.0).sqrt();
        let decimals = self.class.decimals(&self.ticker, self.price) as i32;
        let round = |x: f64| {
            let f = 10f64.powi(decimals);
            (x * f).round() / f
        };
        let ticks = ticks_per_min.round().clamp(1.0, u32::MAX as f64) as u32;
        // `x` is the log price relative to the current one; each step goes one minute further back.
        let mut x = 0.0f64;
        let mut out = Vec::with_capacity(minutes);
        for back in 1..=minutes as i64 {
            let close = self.price * x.exp();
            let z: f64 = StandardNormal.sample(rng);
            x = x * (1.0 - PAST_REVERSION_PER_MIN) + sigma * z;
            let open = self.price * x.exp();
            // Extremes a fraction of a minute's volatility beyond the open/close range.
            let up: f64 = StandardNormal.sample(rng);
            let down: f64 = StandardNormal.sample(rng);
            let high = open.max(close) * (1.0 + 0.5 * sigma * up.abs());
            let low = open.min(close) * (1.0 - 0.5 * sigma * down.abs()).max(0.5);
            let volume = (ticks as f64 * rng.random_range(1.0..20.0) * self.lot * 1000.0 / self.lot).round() * self.lot
                / 1000.0;
            out.push(Candle {
                start: this_minute - back * MINUTE_MS,
                open: round(open),
                high: round(high),
                low: round(low),
                close: round(close),
                ticks,
                volume,
            });
        }
        out.reverse();
        out
    }

    /// The latest unrounded price (what event generators quote the underlying at).
    pub(super) fn price(&self) -> f64 {
        self.price
    }

    pub(super) fn class(&self) -> AssetClass {
        self.class
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn walks_stay_positive_and_rounded() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut eur = Walk::new("EUR/USD", 1.085, &mut rng);
        let mut btc = Walk::new("BTC/USD", 67_000.0, &mut rng);
        for _ in 0..10_000 {
            let q = eur.step(&mut rng, 1).unwrap();
            assert!(q.price > 0.0);
            assert_eq!((q.price * 1e5).round() / 1e5, q.price);
            assert!(q.bid.unwrap() < q.ask.unwrap());
            let q = btc.step(&mut rng, 1).unwrap();
            assert_eq!((q.price * 100.0).round() / 100.0, q.price);
        }
        assert!((eur.price / 1.085 - 1.0).abs() < 0.2, "forex stays near its seed: {}", eur.price);
    }

    #[test]
    fn the_reconstructed_past_is_a_day_of_minutes_ending_at_the_price() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut btc = Walk::new("BTC/USD", 67_000.0, &mut rng);
        btc.step(&mut rng, 0);
        let now = 1_700_000_040_000 + 12_345;
        let past = btc.past(&mut rng, now, 1440, 240.0);
        assert_eq!(past.len(), 1440);
        assert_eq!(past.last().unwrap().start, 1_700_000_040_000 - 60_000, "ends with the minute before now's");
        assert_eq!(past[0].start, 1_700_000_040_000 - 1440 * 60_000);
        assert!(past.windows(2).all(|w| w[1].start - w[0].start == 60_000 && w[1].open == w[0].close));
        let last_close = past.last().unwrap().close;
        assert!((last_close / btc.price() - 1.0).abs() < 1e-6, "joins the live price: {last_close}");
        for c in &past {
            assert!(c.low <= c.open.min(c.close) && c.high >= c.open.max(c.close) && c.low > 0.0, "{c:?}");
            assert!(c.volume > 0.0 && c.ticks == 240);
        }
        let (lo, hi) = past.iter().fold((f64::MAX, 0f64), |(lo, hi), c| (lo.min(c.low), hi.max(c.high)));
        assert!(hi / lo < 1.5, "a day's range stays plausible: {lo}..{hi}");
    }

    #[test]
    fn change_is_relative_to_the_day_open() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut w = Walk::new("AAPL", 190.0, &mut rng);
        let q = w.step(&mut rng, 1).unwrap();
        let expected = (q.price - w.open) / w.open * 100.0;
        assert!((q.change_pct.unwrap() - expected).abs() < 0.01);
    }
}
