//! Alpaca's past of a stock: `GET /v2/stocks/{symbol}/bars?timeframe=1Min&start=…` on the Market Data API
//! (`docs/providers/alpaca.md`, History), with the same key headers as the stream. Bars are objects
//! `{"t": RFC 3339, "o", "h", "l", "c", "v", "n", "vw"}`, oldest first; a page holds up to 10,000 and names the next
//! in `next_page_token`. Minutes without trades have no bar, so a day of a US stock is mostly its sessions.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use hamster_shared::api::Candle;
use reqwest::StatusCode;
use serde::Deserialize;

use super::Feed;
use crate::clock::now_ms;
use crate::providers::backfill::{Backfill, FetchPast, PastError};
use crate::providers::rfc3339_ms;
use crate::secret::Secret;

const TIMEOUT: Duration = Duration::from_secs(20);
/// Between two requests: Alpaca's free plan allows 200 a minute, shared with everything else on the key.
const GAP: Duration = Duration::from_millis(500);
/// Most bars per page (Alpaca's maximum).
const PAGE: usize = 10_000;
/// Pages followed per symbol: a day of minutes fits in one.
const MAX_PAGES: usize = 3;
const MINUTE_MS: i64 = 60_000;
/// SIP data newer than this needs a paid plan; the delayed feed asks only for older bars.
const SIP_DELAY_MS: i64 = 16 * MINUTE_MS;

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    bars: Option<Vec<Bar>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Bar {
    t: String,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    #[serde(default)]
    v: f64,
    #[serde(default)]
    n: u64,
}

/// The historical `feed` parameter for a stream feed, and how far back from now the newest bar may be; `None`
/// for the test feed, whose symbol has no history.
fn feed_param(feed: Feed) -> Option<(&'static str, i64)> {
    match feed {
        Feed::Iex => Some(("iex", 0)),
        Feed::Sip => Some(("sip", 0)),
        Feed::DelayedSip => Some(("sip", SIP_DELAY_MS)),
        Feed::Boats => Some(("boats", 0)),
        Feed::Overnight => Some(("overnight", 0)),
        Feed::Test => None,
    }
}

/// `ms` as the RFC 3339 UTC text Alpaca's `start` and `end` take (`2021-02-22T15:51:00Z`).
fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A backfill of `minutes` per stock from the Market Data API at `data_url`; `None` when `minutes` is 0 or the feed
/// has no history.
pub(super) fn backfill(data_url: &str, key: &Secret, secret: &Secret, feed: Feed, minutes: usize) -> Option<Backfill> {
    let (feed, delay_ms) = feed_param(feed)?;
    if minutes == 0 {
        return None;
    }
    let http = super::keyed_client(key, secret, TIMEOUT)?;
    let base = data_url.trim_end_matches('/').to_owned();
    let fetch: FetchPast = Arc::new(move |instrument: String, minutes: usize| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            // Admitted tickers are letters, digits and '.' (`symbols::check_symbol`): safe in a path as they are.
            let url = format!("{base}/v2/stocks/{instrument}/bars");
            let end = now_ms() - delay_ms;
            let start = (end.div_euclid(MINUTE_MS) - minutes as i64) * MINUTE_MS;
            let mut query = vec![
                ("timeframe", "1Min".to_owned()),
                ("start", rfc3339(start)),
                ("limit", PAGE.to_string()),
                ("feed", feed.to_owned()),
                ("adjustment", "raw".to_owned()),
            ];
            if delay_ms > 0 {
                query.push(("end", rfc3339(end)));
            }
            let mut candles = Vec::new();
            for _ in 0..MAX_PAGES {
                let page = page(&http, &url, &query).await?;
                candles.extend(page.bars.unwrap_or_default().iter().filter_map(candle));
                match page.next_page_token {
                    Some(token) if !token.is_empty() => {
                        query.retain(|(k, _)| *k != "page_token");
                        query.push(("page_token", token));
                    }
                    _ => break,
                }
            }
            candles.sort_by_key(|c| c.start);
            Ok(candles)
        }
        .boxed()
    });
    Some(Backfill { fetch, minutes, gap: GAP })
}

async fn page(http: &reqwest::Client, url: &str, query: &[(&str, String)]) -> Result<Page, PastError> {
    let response = http.get(url).query(query).send().await.map_err(|e| PastError::Failed(format!("bars: {e}")))?;
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        // Alpaca names the end of the window in `X-RateLimit-Reset` (Unix seconds).
        let reset = response
            .headers()
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|at| (at * 1000 - now_ms()).clamp(1_000, 60_000));
        return Err(PastError::RetryAfter(Duration::from_millis(reset.unwrap_or(60_000) as u64)));
    }
    if !status.is_success() {
        // `{"message": "invalid symbol: …"}` or `{"code": …, "message": …}`.
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body.get("message").and_then(serde_json::Value::as_str).unwrap_or("no reason given");
        return Err(PastError::Failed(format!("bars answered {status}: {message}")));
    }
    response.json::<Page>().await.map_err(|e| PastError::Failed(format!("bars: {e}")))
}

/// A bar as a one-minute candle; `None` for one whose time does not read or falls off the minute.
fn candle(bar: &Bar) -> Option<Candle> {
    let start = rfc3339_ms(&bar.t)?;
    (start.rem_euclid(MINUTE_MS) == 0).then_some(Candle {
        start,
        open: bar.o,
        high: bar.h,
        low: bar.l,
        close: bar.c,
        volume: bar.v,
        ticks: u32::try_from(bar.n).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bars_as_documented() {
        let page: Page = serde_json::from_str(
            r#"{"bars":[{"t":"2021-02-01T16:01:00Z","o":133.32,"h":133.74,"l":133.31,"c":133.5,"v":9876,"n":48,
                "vw":133.5}],"symbol":"AAPL","next_page_token":null}"#,
        )
        .unwrap();
        let bars = page.bars.unwrap();
        assert_eq!(
            candle(&bars[0]),
            Some(Candle {
                start: 1_612_195_260_000,
                open: 133.32,
                high: 133.74,
                low: 133.31,
                close: 133.5,
                ticks: 48,
                volume: 9876.0
            })
        );
        assert_eq!(page.next_page_token, None);
        let empty: Page = serde_json::from_str(r#"{"bars":null,"symbol":"AAPL","next_page_token":null}"#).unwrap();
        assert!(empty.bars.is_none());
    }

    #[test]
    fn times_are_written_as_utc_rfc3339() {
        assert_eq!(rfc3339(1_612_195_260_000), "2021-02-01T16:01:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(&rfc3339(1_700_000_040_000)), Some(1_700_000_040_000));
    }

    #[test]
    fn the_test_feed_has_no_history_and_the_delayed_one_asks_for_old_bars_only() {
        assert_eq!(feed_param(Feed::Test), None);
        assert_eq!(feed_param(Feed::DelayedSip), Some(("sip", SIP_DELAY_MS)));
        assert_eq!(feed_param(Feed::Iex), Some(("iex", 0)));
    }
}
