//! How canonical instruments are spelled as Binance spot symbols (`docs/providers/binance.md`, Symbols).

/// The Binance symbol (lower case, as stream names need) for a canonical instrument: `BTC/USD` → `btcusdt`
/// (`usd_quote` replaces a `USD` quote), `ETH/BTC` → `ethbtc`, `BTCUSDT` → `btcusdt`. `None` if it cannot be a
/// Binance spot symbol (anything but letters and digits around one `/`).
pub(super) fn wire_symbol(instrument: &str, usd_quote: &str) -> Option<String> {
    let alnum = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    let symbol = match instrument.split_once('/') {
        Some((base, quote)) if alnum(base) && alnum(quote) => {
            let quote = if quote.eq_ignore_ascii_case("USD") && alnum(usd_quote) { usd_quote } else { quote };
            format!("{base}{quote}")
        }
        Some(_) => return None,
        None if alnum(instrument) && instrument.len() >= 2 => instrument.to_owned(),
        None => return None,
    };
    Some(symbol.to_ascii_lowercase())
}

