//! Binance's past of a pair: `GET /api/v3/klines?symbol=BTCUSDT&interval=1m` (`docs/providers/binance.md`,
//! History), no key. At most 1,000 candles per request, so a day is two requests, newest page first; each weighs
//! 2 of the 6,000 a minute an address may spend. Rows are arrays with prices as strings; a 429 or 418 carries
//! `Retry-After` in seconds.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use hamster_shared::api::Candle;
use reqwest::StatusCode;
use serde_json::Value;

use super::symbols::wire_symbol;
use crate::providers::backfill::{Backfill, FetchPast, PastError};

/// Most candles Binance returns per request.
const PAGE: usize = 1_000;
const TIMEOUT: Duration = Duration::from_secs(20);
/// Between two requests: at 4 a second the history uses at most 480 of the 6,000 weight a minute.
const GAP: Duration = Duration::from_millis(250);
const MINUTE_MS: i64 = 60_000;

/// A backfill of `minutes` per pair from the REST base `rest_url`; `None` when `minutes` is 0.
pub(super) fn backfill(rest_url: &str, usd_quote: &str, minutes: usize) -> Option<Backfill> {
    if minutes == 0 {
        return None;
    }
    let url = format!("{}/api/v3/klines", rest_url.trim_end_matches('/'));
    let usd_quote = usd_quote.to_owned();
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
    let fetch: FetchPast = Arc::new(move |instrument: String, minutes: usize| {
        let (http, url, usd_quote) = (http.clone(), url.clone(), usd_quote.clone());
        async move {
            let symbol = wire_symbol(&instrument, &usd_quote)
                .ok_or_else(|| PastError::Failed(format!("{instrument} is not a Binance pair")))?
                .to_ascii_uppercase();
            let mut candles: Vec<Candle> = Vec::new();
            let mut end: Option<i64> = None;
            while candles.len() < minutes {
                let limit = (minutes - candles.len()).min(PAGE);
                let page = page(&http, &url, &symbol, limit, end).await?;
                let Some(first) = page.first() else { break };
                end = Some(first.start - 1);
                let short = page.len() < limit;
                candles.splice(0..0, page);
                if short {
                    break;
                }
            }
            Ok(candles)
        }
        .boxed()
    });
    Some(Backfill { fetch, minutes, gap: GAP })
}

/// One request: `limit` candles ending at `end` (the newest when `None`), oldest first.
async fn page(
    http: &reqwest::Client,
    url: &str,
    symbol: &str,
    limit: usize,
    end: Option<i64>,
) -> Result<Vec<Candle>, PastError> {
    let mut query = vec![("symbol", symbol.to_owned()), ("interval", "1m".to_owned()), ("limit", limit.to_string())];
    if let Some(end) = end {
        query.push(("endTime", end.to_string()));
    }
    let response = http.get(url).query(&query).send().await.map_err(|e| PastError::Failed(format!("klines: {e}")))?;
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 418 {
        let wait = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(60);
        return Err(PastError::RetryAfter(Duration::from_secs(wait)));
    }
    let body: Value = response.json().await.map_err(|e| PastError::Failed(format!("klines: {e}")))?;
    if !status.is_success() {
        // `{"code": -1121, "msg": "Invalid symbol."}`
        let msg = body.get("msg").and_then(Value::as_str).unwrap_or("no reason given");
        return Err(PastError::Failed(format!("klines answered {status}: {msg}")));
    }
    rows(&body).map_err(PastError::Failed)
}

/// Candles from kline rows `[openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume", trades,
/// …]`, oldest first. A row that does not read is an error: a changed format should be noticed, not half-drawn.
fn rows(body: &Value) -> Result<Vec<Candle>, String> {
    let rows = body.as_array().ok_or("klines: not an array")?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let field = |i: usize| row.get(i).ok_or_else(|| format!("klines: a row without field {i}: {row}"));
        let price = |i: usize| -> Result<f64, String> {
            let v = field(i)?;
            let n = match v {
                Value::String(s) => s.parse::<f64>().ok(),
                other => other.as_f64(),
            };
            n.filter(|n| n.is_finite()).ok_or_else(|| format!("klines: field {i} is not a number: {v}"))
        };
        let start = field(0)?.as_i64().ok_or("klines: open time is not a whole number")?;
        if start.rem_euclid(MINUTE_MS) != 0 {
            return Err(format!("klines: open time {start} is not on a minute"));
        }
        out.push(Candle {
            start,
            open: price(1)?,
            high: price(2)?,
            low: price(3)?,
            close: price(4)?,
            volume: price(5)?,
            ticks: field(8)?.as_u64().map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        });
    }
    out.sort_by_key(|c| c.start);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_kline_rows_as_documented() {
        let body = json!([
            [1499040000000_i64, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815",
             1499644799999_i64, "2434.19055334", 308, "1756.87402397", "28.46694368", "0"]
        ]);
        let c = rows(&body).unwrap();
        assert_eq!(
            c,
            [Candle {
                start: 1499040000000,
                open: 0.0163479,
                high: 0.8,
                low: 0.015758,
                close: 0.015771,
                ticks: 308,
                volume: 148976.11427815
            }]
        );
    }

    #[test]
    fn refuses_rows_that_do_not_read() {
        for bad in [
            json!({"code": -1121}),
            json!([[1499040000000_i64, "x", "1", "1", "1", "1", 0, "0", 1]]),
            json!([[1499040000001_i64, "1", "1", "1", "1", "1", 0, "0", 1]]),
            json!([[1499040000000_i64, "1", "1"]]),
        ] {
            assert!(rows(&bad).is_err(), "{bad}");
        }
    }
}
