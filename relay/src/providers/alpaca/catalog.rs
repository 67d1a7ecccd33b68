//! Alpaca's instrument list: `GET /v2/assets?status=active&asset_class=us_equity` on the Trading API
//! (`docs/providers/alpaca.md`, Catalog), the tradable US stocks and ETFs with their names, looked up by ticker.
//!
//! Assets live on the trading host, and paper and live keys each work on one host only, so the paper host is
//! asked first and the live host when the paper host refuses the key. The keys travel in the
//! `APCA-API-KEY-ID`/`APCA-API-SECRET-KEY` headers, marked sensitive.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use hamster_shared::api::InstrumentClass;
use serde::Deserialize;

use super::symbols::check_symbol;
use super::Feed;
use crate::catalog::{CatalogSource, Instrument};
use crate::secret::Secret;

/// New listings appear daily; twice a day is plenty and costs 2 of the 200 requests a minute.
const REFRESH: Duration = Duration::from_secs(12 * 3600);
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
struct Asset {
    symbol: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    tradable: Option<bool>,
}

fn instruments(assets: Vec<Asset>) -> Vec<Instrument> {
    assets
        .into_iter()
        .filter(|a| a.status.as_deref().is_none_or(|s| s == "active") && a.tradable != Some(false))
        .map(|a| Instrument {
            key: a.symbol.clone(),
            name: a.name.unwrap_or_default(),
            ticker: a.symbol,
            class: InstrumentClass::Equity,
        })
        .collect()
}

/// The catalog source; `None` for the test feed, whose one symbol (`FAKEPACA`) is no listed asset.
pub(super) fn source(hosts: Vec<String>, key: &Secret, secret: &Secret, feed: Feed) -> Option<CatalogSource> {
    if feed == Feed::Test {
        return None;
    }
    let http = super::keyed_client(key, secret, TIMEOUT)?;
    let hosts = Arc::new(hosts);
    Some(CatalogSource {
        load: Arc::new(move || {
            let (http, hosts) = (http.clone(), hosts.clone());
            async move {
                let mut last = String::from("no assets host configured");
                for host in hosts.iter() {
                    let url = format!("{}/v2/assets", host.trim_end_matches('/'));
                    let query = [("status", "active"), ("asset_class", "us_equity")];
                    let response = match http.get(&url).query(&query).send().await {
                        Ok(r) => r,
                        Err(e) => {
                            last = format!("assets: {e}");
                            continue;
                        }
                    };
                    let status = response.status();
                    if status.is_success() {
                        let assets: Vec<Asset> = response.json().await.map_err(|e| format!("assets: {e}"))?;
                        return Ok(instruments(assets));
                    }
                    last = format!("assets answered {status}");
                    // Another host only helps when this one refused the key (paper keys on live, or the reverse).
                    if !matches!(status.as_u16(), 401 | 403) {
                        break;
                    }
                }
                Err(last)
            }
            .boxed()
        }),
        key_of: Arc::new(move |instrument: &str| check_symbol(instrument, feed).ok().map(|()| instrument.to_owned())),
        covers: None,
        validates: true,
        refresh: REFRESH,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_tradable_assets_become_instruments() {
        let assets: Vec<Asset> = serde_json::from_str(
            r#"[{"id":"b0b6dd9d-8b9b-48a9-ba46-b9d54906e415","class":"us_equity","exchange":"NASDAQ","symbol":"AAPL",
                 "name":"Apple Inc. Common Stock","status":"active","tradable":true,"marginable":true,
                 "shortable":true,"easy_to_borrow":true,"fractionable":true},
                {"symbol":"OLD","status":"inactive","tradable":false},
                {"symbol":"NOTRADE","status":"active","tradable":false}]"#,
        )
        .unwrap();
        let list = instruments(assets);
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].ticker.as_str(), list[0].name.as_str()), ("AAPL", "Apple Inc. Common Stock"));
        let key = Secret::new("PKKEY12345");
        assert!(source(vec![], &key, &key, Feed::Test).is_none());
        let s = source(vec![], &key, &key, Feed::Iex).unwrap();
        assert_eq!((s.key_of)("BRK.B").as_deref(), Some("BRK.B"));
        assert_eq!((s.key_of)("BTC/USD"), None);
    }
}
