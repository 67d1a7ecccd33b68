//! Binance's instrument list: `GET /api/v3/exchangeInfo` (`docs/providers/binance.md`, Catalog), every spot pair
//! with status `TRADING`, looked up by the same lower-case symbol the streams use (`BTC/USD` → `btcusdt`).

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use hamster_shared::api::InstrumentClass;
use serde::Deserialize;

use super::symbols::wire_symbol;
use crate::catalog::{CatalogSource, Instrument};

/// Binance changes its pairs rarely; the call weighs 20 of the 6,000 a minute an address may spend.
const REFRESH: Duration = Duration::from_secs(6 * 3600);
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
struct ExchangeInfo {
    symbols: Vec<Pair>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pair {
    symbol: String,
    #[serde(default)]
    status: String,
    base_asset: String,
    quote_asset: String,
}

/// Pairs that trade, as catalog entries.
fn instruments(info: ExchangeInfo) -> Vec<Instrument> {
    info.symbols
        .into_iter()
        .filter(|p| p.status == "TRADING")
        .map(|p| Instrument {
            ticker: format!("{}/{}", p.base_asset, p.quote_asset),
            key: p.symbol.to_ascii_lowercase(),
            name: format!("{} / {}", p.base_asset, p.quote_asset),
            class: InstrumentClass::Crypto,
        })
        .collect()
}

pub(super) fn source(rest_url: &str, usd_quote: &str) -> CatalogSource {
    let url = format!("{}/api/v3/exchangeInfo", rest_url.trim_end_matches('/'));
    let usd_quote = usd_quote.to_owned();
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
    CatalogSource {
        load: Arc::new(move || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let response = http.get(&url).send().await.map_err(|e| format!("exchangeInfo: {e}"))?;
                let status = response.status();
                if !status.is_success() {
                    return Err(format!("exchangeInfo answered {status}"));
                }
                let info: ExchangeInfo = response.json().await.map_err(|e| format!("exchangeInfo: {e}"))?;
                Ok(instruments(info))
            }
            .boxed()
        }),
        key_of: Arc::new(move |instrument: &str| wire_symbol(instrument, &usd_quote)),
        covers: None,
        validates: true,
        refresh: REFRESH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trading_pairs_become_instruments_keyed_like_streams() {
        let info: ExchangeInfo = serde_json::from_str(
            r#"{"timezone":"UTC","serverTime":1565246363776,"rateLimits":[],"exchangeFilters":[],"symbols":[
                {"symbol":"ETHBTC","status":"TRADING","baseAsset":"ETH","baseAssetPrecision":8,"quoteAsset":"BTC",
                 "quotePrecision":8,"orderTypes":["LIMIT"],"filters":[],"permissions":["SPOT"]},
                {"symbol":"LUNAUSDT","status":"BREAK","baseAsset":"LUNA","quoteAsset":"USDT"}]}"#,
        )
        .unwrap();
        let list = instruments(info);
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].ticker.as_str(), list[0].key.as_str()), ("ETH/BTC", "ethbtc"));
        let source = source("http://127.0.0.1:9", "USDT");
        assert_eq!((source.key_of)("BTC/USD").as_deref(), Some("btcusdt"));
        assert_eq!((source.key_of)("BRK.B"), None);
    }
}
