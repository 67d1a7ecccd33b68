//! What the simulator can quote and at which starting prices: a universe of well-known instruments with names and
//! asset classes, plus exchange-rate tables so any pair of known currencies or coins gets a plausible cross rate
//! (`USD/JPY` near 150, `ETH/BTC` near 0.05). Unknown equity tickers get a stable price derived from the name (any
//! ticker could be a listed stock); a pair naming a currency or coin the simulator does not know is refused rather
//! than quoted at an invented level.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use hamster_shared::api::InstrumentClass;

use crate::catalog::Instrument;

/// A listed share of the simulated universe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Listing {
    pub(crate) symbol: &'static str,
    pub(crate) name: &'static str,
    /// Typical price level the walk starts near.
    pub(crate) price: f64,
}

const fn stock(symbol: &'static str, name: &'static str, price: f64) -> Listing {
    Listing { symbol, name, price }
}

/// Equities and ETFs the simulator quotes near realistic levels.
pub(crate) const STOCKS: &[Listing] = &[
    stock("AAPL", "Apple Inc.", 190.0),
    stock("MSFT", "Microsoft Corporation", 420.0),
    stock("NVDA", "NVIDIA Corporation", 120.0),
    stock("AMZN", "Amazon.com, Inc.", 185.0),
    stock("GOOGL", "Alphabet Inc. Class A", 170.0),
    stock("GOOG", "Alphabet Inc. Class C", 172.0),
    stock("META", "Meta Platforms, Inc.", 500.0),
    stock("TSLA", "Tesla, Inc.", 240.0),
    stock("AMD", "Advanced Micro Devices, Inc.", 160.0),
    stock("NFLX", "Netflix, Inc.", 650.0),
    stock("INTC", "Intel Corporation", 31.0),
    stock("AVGO", "Broadcom Inc.", 165.0),
    stock("ORCL", "Oracle Corporation", 140.0),
    stock("CRM", "Salesforce, Inc.", 270.0),
    stock("ADBE", "Adobe Inc.", 520.0),
    stock("JPM", "JPMorgan Chase & Co.", 205.0),
    stock("BAC", "Bank of America Corporation", 39.0),
    stock("GS", "The Goldman Sachs Group, Inc.", 470.0),
    stock("V", "Visa Inc.", 275.0),
    stock("MA", "Mastercard Incorporated", 460.0),
    stock("BRK.B", "Berkshire Hathaway Inc. Class B", 410.0),
    stock("JNJ", "Johnson & Johnson", 155.0),
    stock("UNH", "UnitedHealth Group Incorporated", 520.0),
    stock("XOM", "Exxon Mobil Corporation", 115.0),
    stock("CVX", "Chevron Corporation", 155.0),
    stock("WMT", "Walmart Inc.", 68.0),
    stock("KO", "The Coca-Cola Company", 63.0),
    stock("PEP", "PepsiCo, Inc.", 170.0),
    stock("DIS", "The Walt Disney Company", 100.0),
    stock("BA", "The Boeing Company", 180.0),
    stock("PLTR", "Palantir Technologies Inc.", 25.0),
    stock("COIN", "Coinbase Global, Inc.", 230.0),
    stock("SPY", "SPDR S&P 500 ETF Trust", 520.0),
    stock("QQQ", "Invesco QQQ Trust", 445.0),
    stock("IWM", "iShares Russell 2000 ETF", 205.0),
    stock("DIA", "SPDR Dow Jones Industrial Average ETF", 390.0),
    stock("GLD", "SPDR Gold Shares", 215.0),
    stock("TLT", "iShares 20+ Year Treasury Bond ETF", 92.0),
    stock("VIX", "CBOE Volatility Index", 14.0),
];

/// US dollars per unit of each currency the shared symbol rules call fiat.
const FIAT_USD: &[(&str, &str, f64)] = &[
    ("USD", "US Dollar", 1.0),
    ("EUR", "Euro", 1.085),
    ("GBP", "British Pound", 1.27),
    ("JPY", "Japanese Yen", 0.0066),
    ("CHF", "Swiss Franc", 1.12),
    ("CAD", "Canadian Dollar", 0.73),
    ("AUD", "Australian Dollar", 0.66),
    ("NZD", "New Zealand Dollar", 0.61),
    ("SEK", "Swedish Krona", 0.095),
    ("NOK", "Norwegian Krone", 0.093),
    ("DKK", "Danish Krone", 0.145),
    ("PLN", "Polish Zloty", 0.25),
    ("CZK", "Czech Koruna", 0.043),
    ("HUF", "Hungarian Forint", 0.0027),
    ("TRY", "Turkish Lira", 0.031),
    ("ZAR", "South African Rand", 0.054),
    ("MXN", "Mexican Peso", 0.058),
    ("BRL", "Brazilian Real", 0.19),
    ("CNH", "Chinese Yuan (offshore)", 0.138),
    ("CNY", "Chinese Yuan", 0.138),
    ("HKD", "Hong Kong Dollar", 0.128),
    ("SGD", "Singapore Dollar", 0.74),
    ("INR", "Indian Rupee", 0.012),
    ("KRW", "South Korean Won", 0.00073),
    ("ILS", "Israeli New Shekel", 0.27),
];

/// US dollars per coin, stablecoins included so `BTC/USDT` and `ETH/BTC` cross naturally.
const COIN_USD: &[(&str, &str, f64)] = &[
    ("BTC", "Bitcoin", 67_000.0),
    ("ETH", "Ethereum", 3_500.0),
    ("SOL", "Solana", 150.0),
    ("BNB", "BNB", 580.0),
    ("XRP", "XRP", 0.52),
    ("ADA", "Cardano", 0.45),
    ("DOGE", "Dogecoin", 0.15),
    ("AVAX", "Avalanche", 35.0),
    ("DOT", "Polkadot", 7.0),
    ("LINK", "Chainlink", 14.0),
    ("MATIC", "Polygon", 0.7),
    ("LTC", "Litecoin", 80.0),
    ("BCH", "Bitcoin Cash", 450.0),
    ("TRX", "TRON", 0.12),
    ("ATOM", "Cosmos", 8.5),
    ("UNI", "Uniswap", 9.0),
    ("XLM", "Stellar", 0.11),
    ("NEAR", "NEAR Protocol", 6.0),
    ("APT", "Aptos", 9.0),
    ("ARB", "Arbitrum", 1.0),
    ("OP", "Optimism", 2.2),
    ("SHIB", "Shiba Inu", 0.000_022),
    ("PEPE", "Pepe", 0.000_011),
    ("USDT", "Tether", 1.0),
    ("USDC", "USD Coin", 1.0),
];

/// Forex pairs quoted against the dollar the market's way round (`USD/JPY`, not `JPY/USD`).
const USD_BASE: &[&str] = &["JPY", "CHF", "CAD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "TRY", "ZAR", "MXN", "BRL",
    "CNH", "CNY", "HKD", "SGD", "INR", "KRW", "ILS"];

/// The instruments the simulator lists for search: every listed share, each currency against the dollar the
/// usual way round, each coin against USD and USDT, and the event channels. It quotes more than this (any
/// ticker, any pair of known codes), so the list is for finding symbols, not for refusing them.
pub(crate) fn catalog(channels: &[&str]) -> Vec<Instrument> {
    let item = |ticker: String, name: String, class| Instrument { key: ticker.clone(), ticker, name, class };
    let mut out: Vec<Instrument> =
        STOCKS.iter().map(|l| item(l.symbol.to_owned(), l.name.to_owned(), InstrumentClass::Equity)).collect();
    for (code, name, _) in FIAT_USD.iter().filter(|(c, _, _)| *c != "USD") {
        let (pair, title) = if USD_BASE.contains(code) {
            (format!("USD/{code}"), format!("US Dollar / {name}"))
        } else {
            (format!("{code}/USD"), format!("{name} / US Dollar"))
        };
        out.push(item(pair, title, InstrumentClass::Forex));
    }
    for (code, name, _) in COIN_USD.iter().filter(|(c, _, _)| !matches!(*c, "USDT" | "USDC")) {
        out.push(item(format!("{code}/USD"), format!("{name} / US Dollar"), InstrumentClass::Crypto));
        out.push(item(format!("{code}/USDT"), format!("{name} / Tether"), InstrumentClass::Crypto));
    }
    out.extend(channels.iter().map(|c| item((*c).to_owned(), format!("Simulated {c} events"), InstrumentClass::Channel)));
    out
}

fn usd_value(code: &str) -> Option<f64> {
    FIAT_USD.iter().chain(COIN_USD).find(|(c, _, _)| *c == code).map(|(_, _, usd)| *usd)
}

/// The price level a walk of `ticker` starts near, or why the simulator will not quote it.
pub(crate) fn start_price(ticker: &str) -> Result<f64, String> {
    if let Some(listing) = STOCKS.iter().find(|l| l.symbol == ticker) {
        return Ok(listing.price);
    }
    match ticker.split_once('/') {
        Some((base, quote)) => {
            let unknown = [base, quote].into_iter().find(|code| usd_value(code).is_none());
            if let Some(code) = unknown {
                return Err(format!(
                    "the simulator has no price level for {code:?}; it quotes pairs of the major currencies and \
                     coins (e.g. EUR/USD, USD/JPY, BTC/USD, ETH/BTC, SOL/USDT)"
                ));
            }
            let (base, quote) = (usd_value(base).unwrap_or(1.0), usd_value(quote).unwrap_or(1.0));
            Ok(base / quote)
        }
        None => Ok(derived_price(ticker)),
    }
}

/// A stable, plausible share price for a ticker the universe does not list.
fn derived_price(ticker: &str) -> f64 {
    let mut h = DefaultHasher::new();
    ticker.hash(&mut h);
    let unit = (h.finish() % 10_000) as f64 / 10_000.0;
    // Log-uniform between $10 and $500: most listed shares trade there.
    10.0 * 50f64.powf(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crosses_are_plausible() {
        let near = |ticker: &str, level: f64| {
            let p = start_price(ticker).unwrap();
            assert!((p / level - 1.0).abs() < 0.05, "{ticker}: {p} is not near {level}");
        };
        near("USD/JPY", 151.5);
        near("EUR/USD", 1.085);
        near("EUR/JPY", 164.4);
        near("BTC/USDT", 67_000.0);
        near("ETH/BTC", 0.052);
        near("META", 500.0);
        near("USD/CHF", 0.893);
    }

    #[test]
    fn unknown_codes_are_refused_and_unknown_stocks_are_stable() {
        assert!(start_price("FOO/USD").unwrap_err().contains("\"FOO\""));
        assert!(start_price("BTC/XYZ").is_err());
        let p = start_price("ZZZQ").unwrap();
        assert_eq!(p, start_price("ZZZQ").unwrap());
        assert!((10.0..=500.0).contains(&p), "{p}");
    }
}
