//! REST over the embedded store: `GET /api/recordings` (the store's health and where recorded data exists, for a
//! replay timeline) and `GET /api/export` (ticks, candles or events as CSV or NDJSON, streamed in constant memory:
//! a blocking reader encodes one page at a time into a small channel that the response body drains).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hamster_shared::api::{RecordedRange, RecordingsResponse, StoreInfo};
use hamster_shared::symbol::split_list;
use hamster_shared::{ErrorCode, Symbol};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::commands::TooManySymbols;
use crate::error::HttpError;
use crate::export::{self, ExportSpec, Format};
use crate::state::AppState;
use crate::store::{read, Store};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/recordings", get(recordings)).route("/api/export", get(export_handler))
}

/// The store's health, for `/api/status` and `/api/recordings`.
pub(crate) fn store_info(app: &AppState) -> Option<StoreInfo> {
    let status = app.store.as_ref()?.status();
    Some(StoreInfo {
        recording: !app.config.store.no_record,
        recorded_total: status.recorded,
        dropped_total: status.dropped,
        degraded: status.degraded,
        bytes: status.used_bytes,
    })
}

fn store(app: &AppState) -> Result<&std::sync::Arc<Store>, HttpError> {
    app.store.as_ref().ok_or_else(|| {
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, "this relay has no embedded store")
    })
}

async fn recordings(State(app): State<AppState>) -> Result<Json<RecordingsResponse>, HttpError> {
    let store = store(&app)?.clone();
    let info = store_info(&app)
        .ok_or_else(|| HttpError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, "no store"))?;
    let coverage = tokio::task::spawn_blocking(move || store.read(read::coverage))
        .await
        .map_err(|_| internal("the store reader stopped"))?
        .map_err(|e| internal(&e.to_string()))?;
    let recorded = coverage
        .into_iter()
        .filter_map(|c| Some(RecordedRange { symbol: Symbol::parse(&c.symbol).ok()?, first: c.first, last: c.last }))
        .collect();
    Ok(Json(RecordingsResponse { store: info, recorded }))
}

/// `?symbols=A,B&from=&to=&kind=ticks|candles|events&format=csv|ndjson&tf=5m`
#[derive(Debug, Deserialize)]
struct ExportQuery {
    symbols: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    kind: Option<String>,
    format: Option<String>,
    tf: Option<String>,
}

async fn export_handler(State(app): State<AppState>, Query(q): Query<ExportQuery>) -> Result<Response, HttpError> {
    let store = store(&app)?.clone();
    let raw: Vec<String> = q.symbols.as_deref().map(|l| split_list(l).map(str::to_owned).collect()).unwrap_or_default();
    TooManySymbols::check(&raw)?;
    let mut symbols = Vec::with_capacity(raw.len());
    for text in &raw {
        let symbol = Symbol::parse(text)
            .map_err(|e| HttpError::bad_request(ErrorCode::InvalidSymbol, format!("{text:?}: {e}")))?;
        symbols.push(symbol.as_str().to_owned());
    }
    let spec = ExportSpec::parse(q.kind.as_deref(), q.format.as_deref(), q.tf.as_deref(), symbols, q.from, q.to)
        .map_err(|m| HttpError::bad_request(ErrorCode::BadMessage, m))?;
    let content_type = match spec.format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Ndjson => "application/x-ndjson",
    };
    // A few pages in flight at most: the reader waits for the client, so memory stays flat for any range.
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(4);
    tokio::task::spawn_blocking(move || {
        let result = export::export(&store, &spec, |page| tx.blocking_send(Ok(Bytes::from(page))).is_ok());
        if let Err(e) = result {
            tracing::warn!(error = %e, "export stopped");
        }
    });
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(ReceiverStream::new(rx))).into_response())
}

fn internal(message: &str) -> HttpError {
    HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Unavailable, message.to_owned())
}
