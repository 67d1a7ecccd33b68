//! Which instruments Alpaca's stock feeds can serve: US stock tickers as Alpaca spells them
//! (`docs/providers/alpaca.md`, Symbols).

use hamster_shared::AssetClass;

use super::Feed;

/// Why `instrument` cannot be a stock on Alpaca's stock feed, if it cannot.
pub(super) fn check_symbol(instrument: &str, feed: Feed) -> Result<(), String> {
    let feed = feed.label();
    match AssetClass::of(instrument) {
        AssetClass::Crypto => Err(format!(
            "{instrument} looks like a crypto pair, but alpaca streams US stocks only (feed {feed}); subscribe to it \
             through a crypto provider, e.g. binance:{instrument}"
        )),
        AssetClass::Forex => Err(format!(
            "{instrument} looks like a currency pair, but alpaca streams US stocks only (feed {feed}); use a forex \
             provider, e.g. twelvedata:{instrument}"
        )),
        AssetClass::Equity => {
            let mut chars = instrument.chars();
            let shaped = chars.next().is_some_and(|c| c.is_ascii_uppercase())
                && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.');
            if shaped {
                Ok(())
            } else {
                Err(format!(
                    "{instrument} is not a US stock ticker as Alpaca spells it (letters, digits and '.', e.g. AAPL, \
                     BRK.B)"
                ))
            }
        }
    }
}

