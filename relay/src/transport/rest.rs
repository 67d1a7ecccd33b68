//! Plain HTTP endpoints: cached quotes, history, status, health and metrics.
//!
//! REST is how the dashboard keeps prices fresh while its socket is down, so `GET /api/quotes` takes a short
//! lease on the symbols it names: they stay subscribed upstream while someone polls, even with no socket open.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use hamster_shared::api::{ClientsResponse, ProviderStatus, QuotesResponse, StatusResponse};
use hamster_shared::symbol::split_list;
use hamster_shared::{ErrorCode, ProviderState, Symbol, PROTOCOL_VERSION};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::HttpError;
use crate::session;

/// `?symbols=A,B`
#[derive(Debug, Deserialize)]
pub struct SymbolsQuery {
    pub symbols: Option<String>,
}

/// Parses `?symbols=` strictly: any invalid or unroutable symbol fails the request with 400 and its reason.
pub fn parse_symbols(app: &AppState, list: &str) -> Result<Vec<Symbol>, HttpError> {
    let raw: Vec<String> = split_list(list).map(str::to_owned).collect();
    if raw.len() > hamster_shared::MAX_SYMBOLS_PER_REQUEST {
        let (code, message) = session::too_many(raw.len());
        return Err(HttpError::bad_request(code, message));
    }
    let (symbols, rejected) = session::resolve(&app.upstream, &raw);
    if let Some(r) = rejected.into_iter().next() {
        return Err(HttpError::bad_request(r.code, format!("{:?}: {}", r.symbol, r.message)));
    }
    if symbols.is_empty() {
        return Err(HttpError::bad_request(ErrorCode::InvalidSymbol, "no symbols given; use ?symbols=AAPL,BTC/USD"));
    }
    Ok(symbols)
}

/// `GET /api/quotes?symbols=A,B` — cached quotes (all of them without `symbols`).
pub async fn quotes(
    State(app): State<AppState>,
    Query(q): Query<SymbolsQuery>,
) -> Result<Json<QuotesResponse>, HttpError> {
    let Some(list) = q.symbols else {
        return Ok(Json(QuotesResponse { quotes: app.hub.all_quotes(), pending: Vec::new() }));
    };
    let symbols = parse_symbols(&app, &list)?;
    app.hub
        .lease(&symbols)
        .map_err(|e| HttpError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManySymbols, e.to_string()))?;
    let (quotes, pending) = app.hub.quotes(&symbols);
    Ok(Json(QuotesResponse { quotes, pending }))
}

/// `GET /api/history/{symbol}` — the symbol may contain `/` raw or percent-encoded.
pub async fn history(State(app): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, HttpError> {
    let decoded = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy();
    let symbol = Symbol::parse(&decoded)
        .map_err(|e| HttpError::bad_request(ErrorCode::InvalidSymbol, format!("{decoded:?}: {e}")))?;
    app.upstream.route(&symbol).map_err(|e| HttpError::bad_request(e.code, e.message))?;
    Ok(Json(app.hub.history(&symbol)))
}

/// `GET /api/status`.
pub async fn status(State(app): State<AppState>) -> Json<StatusResponse> {
    let known = app.hub.providers();
    let providers: Vec<ProviderStatus> = app
        .upstream
        .subscriptions()
        .into_iter()
        .map(|(name, subscriptions)| {
            let info = known.iter().find(|p| p.name == name);
            ProviderStatus {
                name: name.to_owned(),
                state: info.map_or(ProviderState::Connecting, |p| p.state),
                detail: info.and_then(|p| p.detail.clone()),
                since: info.map_or(0, |p| p.since),
                subscriptions,
            }
        })
        .collect();
    let (clients, topics) = app.hub.counts();
    let m = &app.metrics;
    let (messages_in_per_s, messages_out_per_s) = m.rates();
    Json(StatusResponse {
        server: super::server_name(),
        protocol: PROTOCOL_VERSION,
        uptime_s: m.uptime().as_secs(),
        upstream_subscriptions: providers.iter().map(|p| p.subscriptions).sum(),
        providers,
        clients,
        topics,
        messages_in_per_s,
        messages_out_per_s,
        messages_in_total: m.quotes_in.get(),
        messages_out_total: m.quotes_out.get(),
        conflated_total: m.conflated.get(),
    })
}

/// `GET /api/clients` — per-client counters.
pub async fn clients(State(app): State<AppState>) -> Json<ClientsResponse> {
    Json(ClientsResponse { clients: app.hub.clients() })
}

/// `GET /healthz` — the process is up and serving.
pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /metrics` — Prometheus text exposition.
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.encode())
}

/// Any other `/api/*` path.
pub async fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such endpoint; see docs/protocol.md")
}
