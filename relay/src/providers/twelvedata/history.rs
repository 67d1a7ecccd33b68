//! Twelve Data's past of a symbol: `GET /time_series?symbol=AAPL&interval=1min&outputsize=…&timezone=UTC`
//! (`docs/providers/twelvedata.md`, History), the key in the `Authorization: apikey …` header. One credit per
//! request, taken from the same per-minute budget as the REST fallback, so requests are spaced a budget's share of
//! a minute apart. `values` rows carry `datetime` (`2021-09-16 15:59:00`, UTC as asked), prices as strings and,
//! for instruments that trade volume, `volume`. Errors come as `{"code", "message", "status": "error"}`, sometimes
//! with HTTP 200; a 429 ("run out of API credits for the current minute") waits for the next minute.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use hamster_shared::api::Candle;
use serde::Deserialize;

use crate::clock::now_ms;
use crate::providers::backfill::{Backfill, FetchPast, PastError};
use crate::providers::rfc3339_ms;
use crate::secret::Secret;

const TIMEOUT: Duration = Duration::from_secs(20);
/// Most rows Twelve Data returns per request.
const MAX_OUTPUT: usize = 5_000;
const MINUTE_MS: i64 = 60_000;

#[derive(Debug, Deserialize)]
struct Series {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    values: Vec<Row>,
}

#[derive(Debug, Deserialize)]
struct Row {
    datetime: String,
    open: String,
    high: String,
    low: String,
    close: String,
    #[serde(default)]
    volume: Option<String>,
}

/// A backfill of `minutes` per symbol from `rest_url`, spending at most `credits_per_min` a minute; `None` when
/// either is 0 (no credits: the relay must not call Twelve Data's REST API at all).
pub(super) fn backfill(rest_url: &str, key: &Secret, credits_per_min: u32, minutes: usize) -> Option<Backfill> {
    if credits_per_min == 0 || minutes == 0 {
        return None;
    }
    let http = super::keyed_client(key, TIMEOUT)?;
    let url = format!("{}/time_series", rest_url.trim_end_matches('/'));
    let fetch: FetchPast = Arc::new(move |instrument: String, minutes: usize| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let query = [
                ("symbol", instrument),
                ("interval", "1min".to_owned()),
                ("outputsize", minutes.min(MAX_OUTPUT).to_string()),
                ("timezone", "UTC".to_owned()),
                ("order", "asc".to_owned()),
            ];
            let response = http
                .get(&url)
                .query(&query)
                .send()
                .await
                .map_err(|e| PastError::Failed(format!("time_series: {}", e.without_url())))?;
            let status = response.status();
            let series: Series = response
                .json()
                .await
                .map_err(|e| PastError::Failed(format!("time_series answered {status}: {}", e.without_url())))?;
            candles(series)
        }
        .boxed()
    });
    let gap = Duration::from_secs_f64(60.0 / f64::from(credits_per_min)).max(Duration::from_millis(100));
    Some(Backfill { fetch, minutes, gap })
}

/// The candles of an answer, oldest first, or why there are none.
fn candles(series: Series) -> Result<Vec<Candle>, PastError> {
    if series.status.as_deref() == Some("error") {
        let message = series.message.unwrap_or_default();
        return Err(match series.code {
            // Credits come back at the next minute.
            Some(429) => PastError::RetryAfter(Duration::from_millis((MINUTE_MS - now_ms().rem_euclid(MINUTE_MS) + 1_000) as u64)),
            code => PastError::Failed(format!("Twelve Data error {}: {message}", code.unwrap_or(0))),
        });
    }
    let mut out = Vec::with_capacity(series.values.len());
    for row in &series.values {
        let start = utc_minute(&row.datetime).ok_or_else(|| format!("time_series: bad datetime {:?}", row.datetime));
        let num = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
        let (Some(open), Some(high), Some(low), Some(close)) = (num(&row.open), num(&row.high), num(&row.low), num(&row.close))
        else {
            return Err(PastError::Failed(format!("time_series: a row without prices: {row:?}")));
        };
        out.push(Candle {
            start: start.map_err(PastError::Failed)?,
            open,
            high,
            low,
            close,
            volume: row.volume.as_deref().and_then(num).unwrap_or(0.0),
            ticks: 0,
        });
    }
    out.sort_by_key(|c| c.start);
    Ok(out)
}

/// `2021-09-16 15:59:00` (UTC) in milliseconds, if it is on a minute.
fn utc_minute(text: &str) -> Option<i64> {
    let (date, clock) = text.split_once(' ')?;
    let ms = rfc3339_ms(&format!("{date}T{clock}Z"))?;
    (ms.rem_euclid(MINUTE_MS) == 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(json: &str) -> Series {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_rows_with_and_without_volume() {
        let s = series(
            r#"{"meta":{"symbol":"AAPL","interval":"1min","currency":"USD","exchange_timezone":"America/New_York",
                "exchange":"NASDAQ","mic_code":"XNAS","type":"Common Stock"},
               "values":[{"datetime":"2021-09-16 15:59:00","open":"148.73500","high":"148.86000","low":"148.73000",
                          "close":"148.85001","volume":"624277"},
                         {"datetime":"2021-09-16 15:58:00","open":"148.70000","high":"148.75000","low":"148.69000",
                          "close":"148.73500"}],
               "status":"ok"}"#,
        );
        let c = candles(s).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].start, c[0].close, c[0].volume), (1_631_807_880_000, 148.735, 0.0), "sorted, forex-like");
        assert_eq!((c[1].start, c[1].open, c[1].volume), (1_631_807_940_000, 148.735, 624_277.0));
    }

    #[test]
    fn errors_are_read_from_the_body_whatever_the_status() {
        let out = series(r#"{"code":429,"message":"You have run out of API credits for the current minute.","status":"error"}"#);
        assert!(matches!(candles(out), Err(PastError::RetryAfter(d)) if d <= Duration::from_secs(61)));
        let bad = series(r#"{"code":404,"message":"**symbol** or **figi** parameter is missing or invalid","status":"error"}"#);
        assert!(matches!(candles(bad), Err(PastError::Failed(m)) if m.contains("404")));
        let odd = series(r#"{"values":[{"datetime":"2021-09-16 15:59:30","open":"1","high":"1","low":"1","close":"1"}],"status":"ok"}"#);
        assert!(candles(odd).is_err(), "off the minute");
    }
}
