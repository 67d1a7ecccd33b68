//! Ranking instruments against what a trader typed: the ticker typed exactly first, then tickers that start with
//! it, then names with a word that starts with it, then tickers and names that merely contain it. Slashes do not
//! matter (`btcusd` finds `BTC/USD`), nor does case. Within a rank, shorter tickers come first (`BTC/USD` before
//! `BTC/USDT` for `btc`), then the provider order of the relay's configuration, then the alphabet.
//!
//! The same ranking, with a fuzzy tail, proposes the "did you mean" of an `unknown_symbol`.

use std::sync::Arc;

use hamster_shared::api::InstrumentClass;

use super::{Catalog, Instrument};

/// How well an instrument matches a query; lower is better, `None` is no match.
fn rank(query: &str, compact_query: &str, folded: &(String, String, String)) -> Option<u8> {
    let (compact, upper, name) = folded;
    if *upper == query || *compact == compact_query {
        return Some(0);
    }
    if upper.starts_with(query) || compact.starts_with(compact_query) {
        return Some(1);
    }
    let lower = query.to_ascii_lowercase();
    if name.split(|c: char| !c.is_alphanumeric()).any(|word| word.starts_with(&lower)) {
        return Some(2);
    }
    if upper.contains(query) || compact.contains(compact_query) {
        return Some(3);
    }
    if name.contains(&lower) {
        return Some(4);
    }
    None
}

/// One search hit.
#[derive(Debug)]
pub(crate) struct Hit<'a> {
    pub(crate) provider: &'static str,
    pub(crate) instrument: &'a Instrument,
}

/// The best `limit` matches for `query` across `catalogs` (in the relay's provider order).
pub(crate) fn search<'a>(
    catalogs: &'a [(&'static str, Arc<Catalog>)],
    query: &str,
    class: Option<InstrumentClass>,
    limit: usize,
) -> Vec<Hit<'a>> {
    let query = query.trim().to_ascii_uppercase();
    if query.is_empty() || limit == 0 {
        return Vec::new();
    }
    let compact = query.replace('/', "");
    let mut hits: Vec<(u8, usize, usize, &'a str, Hit<'a>)> = Vec::new();
    for (order, (provider, catalog)) in catalogs.iter().enumerate() {
        for (instrument, folded) in catalog.instruments.iter().zip(&catalog.folded) {
            if class.is_some_and(|c| c != instrument.class) {
                continue;
            }
            if let Some(r) = rank(&query, &compact, folded) {
                hits.push((r, instrument.ticker.len(), order, &instrument.ticker, Hit { provider, instrument }));
            }
        }
    }
    // Only the best `limit` need ordering.
    let by = |a: &(u8, usize, usize, &str, Hit), b: &(u8, usize, usize, &str, Hit)| {
        (a.0, a.1, a.2, a.3).cmp(&(b.0, b.1, b.2, b.3))
    };
    if hits.len() > limit {
        hits.select_nth_unstable_by(limit - 1, by);
        hits.truncate(limit);
    }
    hits.sort_by(by);
    hits.into_iter().map(|h| h.4).collect()
}

/// Tickers of one catalog closest to `instrument`, best first: ranked matches, then look-alikes (a typo, a
/// missing letter) by Jaro-Winkler similarity.
pub(crate) fn closest(catalog: &Catalog, instrument: &str, n: usize) -> Vec<String> {
    let query = instrument.trim().to_ascii_uppercase();
    let compact = query.replace('/', "");
    let mut scored: Vec<(u8, i64, &str)> = Vec::new();
    for (instrument, folded) in catalog.instruments.iter().zip(&catalog.folded) {
        // Names are matched only by prefix here: a suggestion for a ticker should look like that ticker.
        let ranked = rank(&query, &compact, folded).filter(|r| *r <= 1);
        let similarity = strsim::jaro_winkler(&compact, &folded.0);
        if ranked.is_some() || similarity >= 0.85 {
            // Rank first, then similarity (as an integer so it sorts), then length.
            let sim = -(similarity * 1000.0) as i64;
            scored.push((ranked.unwrap_or(5), sim, &instrument.ticker));
        }
    }
    scored.sort_by(|a, b| (a.0, a.1, a.2.len(), a.2).cmp(&(b.0, b.1, b.2.len(), b.2)));
    let mut out: Vec<String> = Vec::with_capacity(n);
    for (_, _, ticker) in scored {
        if !out.iter().any(|t| t == ticker) {
            out.push(ticker.to_owned());
        }
        if out.len() == n {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(items: &[(&str, &str, InstrumentClass)]) -> Arc<Catalog> {
        let instruments = items
            .iter()
            .map(|(t, n, c)| Instrument { ticker: (*t).into(), key: t.replace('/', ""), name: (*n).into(), class: *c })
            .collect();
        Arc::new(Catalog::new(instruments, 0))
    }

    fn tickers(hits: &[Hit]) -> Vec<String> {
        hits.iter().map(|h| format!("{}:{}", h.provider, h.instrument.ticker)).collect()
    }

    #[test]
    fn btc_finds_btc_usd_first_and_names_and_substrings_after() {
        use InstrumentClass::*;
        let sim = catalog(&[
            ("BTC/USD", "Bitcoin", Crypto),
            ("ETH/BTC", "Ether in Bitcoin", Crypto),
            ("AAPL", "Apple Inc.", Equity),
        ]);
        let binance = catalog(&[("BTC/USDT", "Bitcoin / TetherUS", Crypto), ("WBTC/BTC", "Wrapped Bitcoin", Crypto)]);
        let all = [("sim", sim), ("binance", binance)];
        let hits = search(&all, "btc", None, 10);
        assert_eq!(tickers(&hits)[..2], ["sim:BTC/USD", "binance:BTC/USDT"]);
        assert!(tickers(&hits).contains(&"sim:ETH/BTC".to_owned()));
        assert_eq!(tickers(&search(&all, "btcusdt", None, 10))[0], "binance:BTC/USDT");
        assert_eq!(tickers(&search(&all, "apple", None, 10)), ["sim:AAPL"]);
        assert_eq!(tickers(&search(&all, "btc", Some(Equity), 10)), Vec::<String>::new());
        assert_eq!(search(&all, "btc", None, 1).len(), 1);
        assert!(search(&all, "  ", None, 10).is_empty());
    }

    #[test]
    fn suggestions_catch_prefixes_and_typos() {
        use InstrumentClass::*;
        let binance = catalog(&[
            ("BTC/USDT", "", Crypto),
            ("ETH/USDT", "", Crypto),
            ("BTC/EUR", "", Crypto),
            ("DOGE/USDT", "", Crypto),
        ]);
        assert_eq!(closest(&binance, "BTC/USD", 2)[0], "BTC/USDT");
        assert_eq!(closest(&binance, "ETH/USTD", 1), ["ETH/USDT"]);
        assert!(closest(&binance, "ZZZZZZ", 3).is_empty());
    }
}
