//! Symbols: the one definition of what a valid instrument name is, used by the relay to reject bad input and by
//! the dashboard to validate what a user types before it is ever sent.
//!
//! A symbol is a ticker such as `AAPL`, `BTC/USD`, `EUR/USD` or `BRK.B`, optionally prefixed with a provider
//! name that picks the upstream explicitly: `binance:BTC/USD`, `sim:AAPL`. The canonical spelling has the ticker
//! upper-cased and the provider lower-cased, so `btc/usd` and `BTC/USD` are the same subscription.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted symbol, provider prefix included.
pub const MAX_SYMBOL_LEN: usize = 32;
/// Longest accepted provider prefix (the part before `:`).
pub const MAX_PROVIDER_LEN: usize = 16;
/// Most symbols one `subscribe`/`unsubscribe` command (or one REST/SSE query) may name.
pub const MAX_SYMBOLS_PER_REQUEST: usize = 100;

/// Why a string is not a valid symbol. The `Display` text is shown to users as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("symbol is empty")]
    Empty,
    #[error("symbol is longer than {MAX_SYMBOL_LEN} characters")]
    TooLong,
    #[error("symbol contains '{0}'; allowed are letters, digits and . / - _ ^ = !")]
    BadChar(char),
    #[error("symbol must start and end with a letter or digit")]
    BadEdge,
    #[error("provider prefix must be 1-{MAX_PROVIDER_LEN} letters, digits or '-'")]
    BadProvider,
}

/// A validated, canonical symbol. Construct it with [`Symbol::parse`]; it can't hold an invalid value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Symbol(String);

impl Symbol {
    /// Validates `raw` and returns its canonical form (trimmed, ticker upper-case, provider lower-case).
    pub fn parse(raw: &str) -> Result<Symbol, SymbolError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(SymbolError::Empty);
        }
        if raw.chars().count() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong);
        }
        let (provider, ticker) = match raw.split_once(':') {
            Some((p, t)) => (Some(p), t),
            None => (None, raw),
        };
        let mut canonical = String::with_capacity(raw.len());
        if let Some(p) = provider {
            let valid = !p.is_empty()
                && p.len() <= MAX_PROVIDER_LEN
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                return Err(SymbolError::BadProvider);
            }
            canonical.push_str(&p.to_ascii_lowercase());
            canonical.push(':');
        }
        if ticker.is_empty() {
            return Err(SymbolError::Empty);
        }
        if let Some(bad) = ticker.chars().find(|c| !is_ticker_char(*c)) {
            return Err(SymbolError::BadChar(bad));
        }
        let first_last = [ticker.chars().next(), ticker.chars().last()];
        if first_last.iter().any(|c| !c.is_some_and(|c| c.is_ascii_alphanumeric())) {
            return Err(SymbolError::BadEdge);
        }
        canonical.push_str(&ticker.to_ascii_uppercase());
        Ok(Symbol(canonical))
    }

    /// The canonical text, e.g. `BTC/USD` or `binance:BTC/USD`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The explicit provider prefix, if the symbol has one.
    pub fn provider(&self) -> Option<&str> {
        self.0.split_once(':').map(|(p, _)| p)
    }

    /// The ticker without any provider prefix.
    pub fn ticker(&self) -> &str {
        self.0.split_once(':').map_or(&self.0, |(_, t)| t)
    }

    /// The broad asset class the ticker's shape suggests. Providers and the dashboard use it for sensible
    /// defaults (decimals, routing); it is a heuristic, not a reference-data lookup.
    pub fn asset_class(&self) -> AssetClass {
        AssetClass::of(self.ticker())
    }
}

/// The broad kind of instrument, guessed from a ticker's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetClass {
    /// A pair of two fiat currencies, e.g. `EUR/USD`.
    Forex,
    /// Any other pair, e.g. `BTC/USD`, `ETH/USDT`.
    Crypto,
    /// Everything else: stocks, ETFs, indices.
    Equity,
}

/// ISO 4217 codes common enough in FX feeds to tell a forex pair from a crypto pair.
const FIAT: &[&str] = &[
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "TRY", "ZAR",
    "MXN", "BRL", "CNH", "CNY", "HKD", "SGD", "INR", "KRW", "ILS",
];

impl AssetClass {
    /// Classifies a ticker (without provider prefix).
    pub fn of(ticker: &str) -> AssetClass {
        match ticker.split_once('/') {
            Some((base, quote)) if FIAT.contains(&base) && FIAT.contains(&quote) => AssetClass::Forex,
            Some(_) => AssetClass::Crypto,
            None => AssetClass::Equity,
        }
    }

    /// Decimals a price of this class is usually shown with, given its magnitude.
    pub fn decimals(self, ticker: &str, price: f64) -> u32 {
        match self {
            AssetClass::Forex if ticker.contains("JPY") => 3,
            AssetClass::Forex => 5,
            AssetClass::Crypto if price >= 1000.0 => 2,
            AssetClass::Crypto if price >= 1.0 => 4,
            AssetClass::Crypto => 6,
            AssetClass::Equity if price >= 1.0 => 2,
            AssetClass::Equity => 4,
        }
    }
}

fn is_ticker_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_' | '^' | '=' | '!')
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Symbol::parse(s)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Symbol::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Splits a comma-separated list (as in `?symbols=A,B`), skipping empty items. Each item is validated
/// separately by the caller so one bad symbol does not hide the others.
pub fn split_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_case_and_whitespace() {
        assert_eq!(Symbol::parse(" btc/usd ").unwrap().as_str(), "BTC/USD");
        assert_eq!(Symbol::parse("Binance:btc/usdt").unwrap().as_str(), "binance:BTC/USDT");
        assert_eq!(Symbol::parse("brk.b").unwrap().as_str(), "BRK.B");
    }

    #[test]
    fn splits_provider_and_ticker() {
        let s = Symbol::parse("sim:AAPL").unwrap();
        assert_eq!(s.provider(), Some("sim"));
        assert_eq!(s.ticker(), "AAPL");
        let s = Symbol::parse("AAPL").unwrap();
        assert_eq!(s.provider(), None);
        assert_eq!(s.ticker(), "AAPL");
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert_eq!(Symbol::parse("  "), Err(SymbolError::Empty));
        assert_eq!(Symbol::parse("A".repeat(33).as_str()), Err(SymbolError::TooLong));
        assert_eq!(Symbol::parse("AA PL"), Err(SymbolError::BadChar(' ')));
        assert_eq!(Symbol::parse("<script>"), Err(SymbolError::BadChar('<')));
        assert_eq!(Symbol::parse("/USD"), Err(SymbolError::BadEdge));
        assert_eq!(Symbol::parse(":AAPL"), Err(SymbolError::BadProvider));
        assert_eq!(Symbol::parse("a:b:c"), Err(SymbolError::BadChar(':')));
        assert_eq!(Symbol::parse("sim:"), Err(SymbolError::Empty));
        assert_eq!(Symbol::parse("ÄAPL"), Err(SymbolError::BadChar('Ä')));
    }

    #[test]
    fn deserialising_validates() {
        let ok: Symbol = serde_json::from_str("\"eur/usd\"").unwrap();
        assert_eq!(ok.as_str(), "EUR/USD");
        assert!(serde_json::from_str::<Symbol>("\"bad symbol\"").is_err());
    }

    #[test]
    fn classifies_assets() {
        assert_eq!(AssetClass::of("EUR/USD"), AssetClass::Forex);
        assert_eq!(AssetClass::of("BTC/USD"), AssetClass::Crypto);
        assert_eq!(AssetClass::of("AAPL"), AssetClass::Equity);
        assert_eq!(AssetClass::Forex.decimals("USD/JPY", 150.0), 3);
        assert_eq!(AssetClass::Forex.decimals("EUR/USD", 1.08), 5);
    }

    #[test]
    fn splits_lists() {
        let items: Vec<_> = split_list("AAPL, ,BTC/USD,").collect();
        assert_eq!(items, ["AAPL", "BTC/USD"]);
    }
}
