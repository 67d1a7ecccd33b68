//! `GET /api/history/{symbol}?tf=&from=&to=&limit=`: recent ticks and candles of any [`Timeframe`], aggregated on
//! the relay.
//!
//! The hub holds a day of one-minute candles per symbol in memory; when the relay has an embedded store, the
//! periods older than the oldest minute in memory come from the store's candles, so a chart can reach back as far
//! as the recording does. The newest periods always come from memory: the store's writer commits in batches and
//! lags the live feed.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use hamster_shared::api::{Candle, HistoryResponse, Timeframe};
use hamster_shared::ErrorCode;
use serde::Deserialize;

use crate::commands;
use crate::error::HttpError;
use crate::state::AppState;
use crate::store::read;

/// Candles returned when the request names no `limit`.
const DEFAULT_LIMIT: usize = 1_000;
/// Most candles one request may ask for.
const MAX_LIMIT: usize = 5_000;

/// The query, read as text so that a malformed value gets the relay's JSON error rather than axum's plain one.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryQuery {
    tf: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

/// What a valid query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    tf: Timeframe,
    from: i64,
    to: i64,
    limit: usize,
}

fn bad(message: String) -> HttpError {
    HttpError::bad_request(ErrorCode::BadMessage, message)
}

fn number<T: std::str::FromStr>(name: &str, text: Option<&str>) -> Result<Option<T>, HttpError> {
    text.map(|t| t.parse::<T>().map_err(|_| bad(format!("`{name}` must be a whole number, not {t:?}")))).transpose()
}

impl HistoryQuery {
    fn range(&self) -> Result<Range, HttpError> {
        let tf = match self.tf.as_deref() {
            None => Timeframe::M1,
            Some(t) => {
                Timeframe::parse(t).ok_or_else(|| bad(format!("unknown timeframe {t:?}; use 1m, 5m, 15m, 1h or 1d")))?
            }
        };
        let from = number::<i64>("from", self.from.as_deref())?.unwrap_or(0);
        let to = number::<i64>("to", self.to.as_deref())?.unwrap_or(i64::MAX);
        if from < 0 {
            return Err(bad(format!("`from` ({from}) must not be before 1970")));
        }
        if from >= to {
            return Err(bad(format!("`from` ({from}) must be before `to` ({to})")));
        }
        let limit = number::<usize>("limit", self.limit.as_deref())?.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(bad(format!("`limit` must be between 1 and {MAX_LIMIT}")));
        }
        Ok(Range { tf, from, to, limit })
    }
}

/// The handler. The symbol may contain `/` raw or percent-encoded.
pub(crate) async fn history(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryResponse>, HttpError> {
    let decoded = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy();
    let symbol = commands::parse(&decoded)?;
    app.upstream.route(&symbol)?;
    let range = q.range()?;
    let (mut response, oldest_minute) = app.hub.history(&symbol, range.tf, range.from, range.to);
    let cutoff = first_whole_period(range.tf, oldest_minute).unwrap_or(range.to);
    if let (Some(store), true) = (app.store.clone(), range.from < cutoff) {
        let (name, tf, from, limit) = (symbol.as_str().to_owned(), range.tf, range.from, range.limit);
        let older = tokio::task::spawn_blocking(move || {
            store.read(|conn| read::candles(conn, &name, tf.ms(), from, cutoff, limit))
        })
        .await;
        match older {
            Ok(Ok(older)) => {
                let older = older.into_iter().map(|c| Candle {
                    start: c.start,
                    open: c.open,
                    high: c.high,
                    low: c.low,
                    close: c.close,
                    ticks: u32::try_from(c.ticks).unwrap_or(u32::MAX),
                    volume: c.volume,
                });
                response.candles = merge(older.collect(), std::mem::take(&mut response.candles), cutoff);
            }
            // Memory still answers: a chart with a shorter past beats no chart.
            Ok(Err(e)) => tracing::warn!(symbol = %symbol, error = %e, "stored candles unreadable"),
            Err(_) => {
                return Err(HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Unavailable,
                    "the store reader stopped",
                ))
            }
        }
    }
    keep_newest(&mut response.candles, range.limit);
    Ok(Json(response))
}

/// The start of the first period of `tf` that memory holds whole, given its oldest minute.
fn first_whole_period(tf: Timeframe, oldest_minute: Option<i64>) -> Option<i64> {
    let oldest = oldest_minute?;
    let start = tf.bucket(oldest);
    Some(if start == oldest { start } else { start + tf.ms() })
}

/// Stored candles before `cutoff`, then the ones from memory from it on. Memory's one partial period before
/// `cutoff` is kept only where the store has nothing for it (a relay without recording of that symbol).
fn merge(older: Vec<Candle>, recent: Vec<Candle>, cutoff: i64) -> Vec<Candle> {
    let mut out = older;
    for c in recent {
        if c.start >= cutoff || out.binary_search_by_key(&c.start, |o| o.start).is_err() {
            out.push(c);
        }
    }
    out.sort_by_key(|c| c.start);
    out
}

fn keep_newest(candles: &mut Vec<Candle>, limit: usize) {
    if candles.len() > limit {
        candles.drain(..candles.len() - limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H0: i64 = 1_699_999_200_000; // an hour boundary

    fn candle(start: i64, close: f64) -> Candle {
        Candle { start, open: close, high: close, low: close, close, ticks: 1, volume: 0.0 }
    }

    fn query(tf: Option<&str>, from: Option<&str>, to: Option<&str>, limit: Option<&str>) -> HistoryQuery {
        let s = |v: Option<&str>| v.map(str::to_owned);
        HistoryQuery { tf: s(tf), from: s(from), to: s(to), limit: s(limit) }
    }

    #[test]
    fn reads_ranges_and_refuses_bad_ones_with_a_reason() {
        let r = query(Some("15m"), Some("10"), Some("20"), Some("7")).range().unwrap();
        assert_eq!(r, Range { tf: Timeframe::M15, from: 10, to: 20, limit: 7 });
        let r = HistoryQuery::default().range().unwrap();
        assert_eq!((r.tf, r.from, r.to, r.limit), (Timeframe::M1, 0, i64::MAX, DEFAULT_LIMIT));
        for (q, needle) in [
            (query(Some("2m"), None, None, None), "unknown timeframe"),
            (query(None, Some("yesterday"), None, None), "`from` must be a whole number"),
            (query(None, Some("5"), Some("5"), None), "must be before"),
            (query(None, Some("-9223372036854775808"), None, None), "before 1970"),
            (query(None, None, None, Some("0")), "`limit` must be between"),
            (query(None, None, None, Some("5001")), "`limit` must be between"),
        ] {
            let e = q.range().unwrap_err();
            assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, ErrorCode::BadMessage));
            assert!(e.message.contains(needle), "{} lacks {needle}", e.message);
        }
    }

    #[test]
    fn memory_answers_from_its_first_whole_period() {
        assert_eq!(first_whole_period(Timeframe::H1, None), None);
        assert_eq!(first_whole_period(Timeframe::H1, Some(H0)), Some(H0));
        assert_eq!(first_whole_period(Timeframe::H1, Some(H0 + 60_000)), Some(H0 + 3_600_000));
        assert_eq!(first_whole_period(Timeframe::M1, Some(H0 + 60_000)), Some(H0 + 60_000));
    }

    #[test]
    fn stored_periods_precede_memory_and_replace_its_partial_one() {
        let hour = 3_600_000;
        let cutoff = H0 + hour;
        // The store has the first two hours; memory holds a partial first hour and the live second one.
        let older = vec![candle(H0 - hour, 1.0), candle(H0, 2.0)];
        let recent = vec![candle(H0, 9.0), candle(H0 + hour, 3.0)];
        let merged = merge(older, recent, cutoff);
        let closes: Vec<_> = merged.iter().map(|c| c.close).collect();
        assert_eq!(closes, [1.0, 2.0, 3.0]);
        // Without stored data for that hour, memory's partial hour is better than a gap.
        let merged = merge(vec![candle(H0 - hour, 1.0)], vec![candle(H0, 9.0), candle(H0 + hour, 3.0)], cutoff);
        let closes: Vec<_> = merged.iter().map(|c| c.close).collect();
        assert_eq!(closes, [1.0, 9.0, 3.0]);
        let mut all = merged;
        keep_newest(&mut all, 2);
        assert_eq!(all[0].close, 9.0);
    }
}
