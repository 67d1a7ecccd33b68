//! Finnhub's instrument lists (`docs/providers/finnhub.md`, Catalog): `GET /stock/symbol?exchange=US`, and the
//! forex and crypto symbols of the exchanges the relay maps pairs to (`/forex/symbol?exchange=oanda`,
//! `/crypto/symbol?exchange=binance` with the default flags). Looked up by Finnhub's own symbol, which the
//! adapter's mapping produces (`EUR/USD` → `OANDA:EUR_USD`). The key goes in the `X-Finnhub-Token` header, not
//! in the URL.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use hamster_shared::api::InstrumentClass;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;

use super::symbols::SymbolMap;
use crate::catalog::{CatalogSource, Instrument};
use crate::secret::Secret;

/// Three calls a day of the 60 a minute the free plan allows.
const REFRESH: Duration = Duration::from_secs(24 * 3600);
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    symbol: String,
    #[serde(default)]
    display_symbol: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

fn instruments(listed: Vec<Listed>, class: InstrumentClass) -> Vec<Instrument> {
    listed
        .into_iter()
        .filter(|l| !l.symbol.is_empty())
        .map(|l| Instrument {
            ticker: l.display_symbol.filter(|d| !d.is_empty()).unwrap_or_else(|| l.symbol.clone()),
            key: l.symbol,
            name: l.description.unwrap_or_default(),
            class,
        })
        .collect()
}

pub(super) fn source(
    rest_url: &str,
    key: &Secret,
    map: SymbolMap,
    crypto_exchange: &str,
    forex_exchange: &str,
) -> Option<CatalogSource> {
    let mut headers = HeaderMap::new();
    let mut token = HeaderValue::from_str(key.expose()).ok()?;
    token.set_sensitive(true);
    headers.insert("X-Finnhub-Token", token);
    let http = reqwest::Client::builder().default_headers(headers).timeout(TIMEOUT).build().ok()?;
    let base = rest_url.trim_end_matches('/').to_owned();
    let mut lists = vec![(format!("{base}/stock/symbol?exchange=US"), InstrumentClass::Equity)];
    for (kind, exchange, class) in
        [("forex", forex_exchange, InstrumentClass::Forex), ("crypto", crypto_exchange, InstrumentClass::Crypto)]
    {
        if !exchange.trim().is_empty() {
            let exchange = exchange.trim().to_ascii_lowercase();
            lists.push((format!("{base}/{kind}/symbol?exchange={exchange}"), class));
        }
    }
    let lists = Arc::new(lists);
    let map = Arc::new(map);
    Some(CatalogSource {
        load: Arc::new(move || {
            let (http, lists) = (http.clone(), lists.clone());
            async move {
                let mut all = Vec::new();
                for (url, class) in lists.iter() {
                    let path = url.rsplit_once("/api/v1").map_or(url.as_str(), |(_, p)| p);
                    let response = http.get(url).send().await.map_err(|e| format!("{path}: {e}"))?;
                    let status = response.status();
                    if !status.is_success() {
                        return Err(format!("{path} answered {status}"));
                    }
                    let listed: Vec<Listed> = response.json().await.map_err(|e| format!("{path}: {e}"))?;
                    all.extend(instruments(listed, *class));
                }
                Ok(all)
            }
            .boxed()
        }),
        key_of: Arc::new(move |instrument: &str| Some(map.to_wire(instrument))),
        covers: None,
        validates: true,
        refresh: REFRESH,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_lists_become_instruments_keyed_by_finnhub_symbol() {
        let stocks: Vec<Listed> = serde_json::from_str(
            r#"[{"currency":"USD","description":"APPLE INC","displaySymbol":"AAPL","figi":"BBG000B9XRY4",
                 "mic":"XNAS","symbol":"AAPL","type":"Common Stock"}]"#,
        )
        .unwrap();
        let forex: Vec<Listed> = serde_json::from_str(
            r#"[{"description":"Oanda EUR/USD","displaySymbol":"EUR/USD","symbol":"OANDA:EUR_USD"}]"#,
        )
        .unwrap();
        let s = instruments(stocks, InstrumentClass::Equity);
        let f = instruments(forex, InstrumentClass::Forex);
        assert_eq!((s[0].ticker.as_str(), s[0].key.as_str(), s[0].name.as_str()), ("AAPL", "AAPL", "APPLE INC"));
        assert_eq!((f[0].ticker.as_str(), f[0].key.as_str()), ("EUR/USD", "OANDA:EUR_USD"));
    }
}
