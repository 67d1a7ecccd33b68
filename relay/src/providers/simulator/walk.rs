//! One instrument's simulated price: a geometric Brownian motion with a spread, a day volume and a day open.

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

impl Walk {
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
    fn change_is_relative_to_the_day_open() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut w = Walk::new("AAPL", 190.0, &mut rng);
        let q = w.step(&mut rng, 1).unwrap();
        let expected = (q.price - w.open) / w.open * 100.0;
        assert!((q.change_pct.unwrap() - expected).abs() < 0.01);
    }
}
