//! How canonical instruments are spelled as Finnhub symbols: exchange-prefixed crypto and forex pairs, explicit
//! overrides (`docs/providers/finnhub.md`, Symbols).

use std::collections::HashMap;

use hamster_shared::{AssetClass, Symbol};

use super::FinnhubArgs;

/// How canonical instruments are spelled on Finnhub's wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SymbolMap {
    crypto_exchange: String,
    crypto_usd_quote: String,
    crypto_separator: String,
    forex_exchange: String,
    forex_separator: String,
    /// Canonical ticker → Finnhub symbol, winning over the rules.
    overrides: HashMap<String, String>,
}

impl SymbolMap {
    /// Reads the mapping flags; a malformed `--finnhub-symbol-map` entry is an error naming it.
    pub(super) fn from_args(args: &FinnhubArgs) -> Result<SymbolMap, String> {
        let mut overrides = HashMap::new();
        for entry in args.symbol_map.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let bad = || {
                format!(
                    "bad --finnhub-symbol-map entry {entry:?}: expected CANONICAL=FINNHUB, e.g. XAU/USD=OANDA:XAU_USD"
                )
            };
            let (canonical, wire) = entry.split_once('=').ok_or_else(bad)?;
            let canonical = Symbol::parse(canonical).map_err(|_| bad())?;
            let wire = wire.trim();
            if wire.is_empty() {
                return Err(bad());
            }
            overrides.insert(canonical.ticker().to_owned(), wire.to_owned());
        }
        let trim = |s: &str| s.trim().to_owned();
        Ok(SymbolMap {
            crypto_exchange: trim(&args.crypto_exchange),
            crypto_usd_quote: trim(&args.crypto_usd_quote),
            crypto_separator: trim(&args.crypto_separator),
            forex_exchange: trim(&args.forex_exchange),
            forex_separator: trim(&args.forex_separator),
            overrides,
        })
    }

    /// The Finnhub symbol for a canonical instrument: `AAPL` → `AAPL`, `BTC/USD` → `BINANCE:BTCUSDT`,
    /// `EUR/USD` → `OANDA:EUR_USD` (with the default flags).
    pub(super) fn to_wire(&self, instrument: &str) -> String {
        if let Some(wire) = self.overrides.get(instrument) {
            return wire.clone();
        }
        let Some((base, quote)) = instrument.split_once('/') else { return instrument.to_owned() };
        let (exchange, separator, quote) = match AssetClass::of(instrument) {
            AssetClass::Forex => (&self.forex_exchange, &self.forex_separator, quote),
            AssetClass::Crypto | AssetClass::Equity => {
                let quote = if quote == "USD" && !self.crypto_usd_quote.is_empty() {
                    self.crypto_usd_quote.as_str()
                } else {
                    quote
                };
                (&self.crypto_exchange, &self.crypto_separator, quote)
            }
        };
        if exchange.is_empty() {
            format!("{base}{separator}{quote}")
        } else {
            format!("{exchange}:{base}{separator}{quote}")
        }
    }
}

