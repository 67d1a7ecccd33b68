//! Twelve Data's reference lists, for search (`docs/providers/twelvedata.md`, Catalog): `GET /stocks` (US
//! listings), `GET /forex_pairs` and `GET /cryptocurrencies`. Twelve Data names the symbols it refuses itself, and
//! it serves far more than these lists (every other country's stocks), so the list finds symbols but refuses
//! none. The key goes in the `Authorization: apikey …` header.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use hamster_shared::api::InstrumentClass;
use serde::Deserialize;

use crate::catalog::{CatalogSource, Instrument};
use crate::secret::Secret;

/// Three requests a day.
const REFRESH: Duration = Duration::from_secs(24 * 3600);
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct Listing {
    #[serde(default)]
    data: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    symbol: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    currency_base: Option<String>,
    #[serde(default)]
    currency_quote: Option<String>,
}

/// One list's entries; a stock listed on several exchanges appears once.
fn instruments(listing: Listing, class: InstrumentClass, seen: &mut HashSet<String>) -> Vec<Instrument> {
    listing
        .data
        .into_iter()
        .filter(|e| !e.symbol.is_empty() && seen.insert(e.symbol.clone()))
        .map(|e| {
            let name = match (e.name, e.currency_base, e.currency_quote) {
                (Some(name), _, _) => name,
                (None, Some(base), Some(quote)) => format!("{base} / {quote}"),
                _ => String::new(),
            };
            Instrument { ticker: e.symbol.clone(), key: e.symbol, name, class }
        })
        .collect()
}

pub(super) fn source(rest_url: &str, key: &Secret) -> Option<CatalogSource> {
    let http = super::keyed_client(key, TIMEOUT)?;
    let base = rest_url.trim_end_matches('/').to_owned();
    let lists = Arc::new([
        (format!("{base}/stocks?country=United%20States"), InstrumentClass::Equity),
        (format!("{base}/forex_pairs"), InstrumentClass::Forex),
        (format!("{base}/cryptocurrencies"), InstrumentClass::Crypto),
    ]);
    Some(CatalogSource {
        load: Arc::new(move || {
            let (http, lists) = (http.clone(), lists.clone());
            async move {
                let (mut all, mut seen) = (Vec::new(), HashSet::new());
                for (url, class) in lists.iter() {
                    let path = url.rsplit('/').next().unwrap_or_default();
                    let response = http.get(url).send().await.map_err(|e| format!("/{path}: {e}"))?;
                    let status = response.status();
                    if !status.is_success() {
                        return Err(format!("/{path} answered {status}"));
                    }
                    let listing: Listing = response.json().await.map_err(|e| format!("/{path}: {e}"))?;
                    all.extend(instruments(listing, *class, &mut seen));
                }
                Ok(all)
            }
            .boxed()
        }),
        key_of: Arc::new(|instrument: &str| Some(instrument.to_owned())),
        covers: None,
        validates: false,
        refresh: REFRESH,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_lists_become_instruments_once_each() {
        let stocks: Listing = serde_json::from_str(
            r#"{"data":[{"symbol":"AAPL","name":"Apple Inc","currency":"USD","exchange":"NASDAQ","mic_code":"XNGS",
                "country":"United States","type":"Common Stock"},
                {"symbol":"AAPL","name":"Apple Inc","currency":"USD","exchange":"BATS","country":"United States"}],
                "status":"ok"}"#,
        )
        .unwrap();
        let forex: Listing = serde_json::from_str(
            r#"{"data":[{"symbol":"EUR/USD","currency_group":"Major","currency_base":"Euro",
                "currency_quote":"US Dollar"}],"status":"ok"}"#,
        )
        .unwrap();
        let mut seen = HashSet::new();
        let s = instruments(stocks, InstrumentClass::Equity, &mut seen);
        let f = instruments(forex, InstrumentClass::Forex, &mut seen);
        assert_eq!(s.len(), 1);
        assert_eq!((f[0].ticker.as_str(), f[0].name.as_str()), ("EUR/USD", "Euro / US Dollar"));
    }
}
