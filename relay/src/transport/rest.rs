//! Plain HTTP endpoints: cached quotes, status, health and metrics (history has its own module, `history`).
//!
//! REST is how the dashboard keeps prices fresh while its socket is down, so `GET /api/quotes` takes a short
//! lease on the symbols it names: they stay subscribed upstream while someone polls, even with no socket open.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get, MethodRouter};
use axum::{Json, Router};
use hamster_shared::api::{ClientsResponse, ProviderStatus, QuotesResponse, StatusResponse};
use hamster_shared::{ErrorCode, ProviderState, PROTOCOL_VERSION};

use super::query::{parse_symbols, SymbolsQuery};
use crate::config::PublicEndpoint;
use crate::error::HttpError;
use crate::state::AppState;

/// The REST API under `/api`, and a JSON 404 for any other `/api/*` path (rather than the dashboard's page).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/quotes", get(quotes))
        .route("/api/history/{*symbol}", get(super::history::history))
        .route("/api/status", get(status))
        .route("/api/clients", get(clients))
        .route("/api/{*rest}", any(not_found))
}

/// The operational endpoints, each with the setting that may serve it without a token (`--public-endpoint`);
/// the caller decides which side of the auth layer each goes.
pub(crate) fn probes() -> [(PublicEndpoint, &'static str, MethodRouter<AppState>); 2] {
    [(PublicEndpoint::Healthz, "/healthz", get(health)), (PublicEndpoint::Metrics, "/metrics", get(metrics))]
}

/// `GET /api/quotes?symbols=A,B` — cached quotes (all of them without `symbols`).
async fn quotes(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<SymbolsQuery>,
) -> Result<Json<QuotesResponse>, HttpError> {
    let Some(list) = q.symbols else {
        return Ok(Json(QuotesResponse { quotes: app.hub.all_quotes(), pending: Vec::new() }));
    };
    let symbols = parse_symbols(&app.upstream, &list)?;
    app.guard.lease(&headers, peer.ip(), symbols.iter().map(|s| s.as_str()))?;
    app.hub.lease(&symbols)?;
    let (quotes, pending) = app.hub.quotes(&symbols);
    Ok(Json(QuotesResponse { quotes, pending }))
}

/// `GET /api/status`.
async fn status(State(app): State<AppState>) -> Json<StatusResponse> {
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
                catalog: app.upstream.catalog_info(name),
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
        store: super::recordings::store_info(&app),
        broker: Some(app.broker.status()),
        no_data: app.hub.no_data(),
        cluster: app.cluster.as_ref().map(|c| c.status()),
    })
}

/// `GET /api/clients` — per-client counters.
async fn clients(State(app): State<AppState>) -> Json<ClientsResponse> {
    Json(ClientsResponse { clients: app.hub.clients() })
}

/// `GET /healthz` — the process is up and serving.
async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /metrics` — Prometheus text exposition.
async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    if let Some(info) = super::recordings::store_info(&app) {
        app.metrics.observe_store(info.recorded_total, info.dropped_total, info.degraded.is_some(), info.bytes);
    }
    if let Some(cluster) = &app.cluster {
        app.metrics.observe_cluster(&cluster.status());
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.encode())
}

/// Any other `/api/*` path.
async fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such endpoint; see docs/protocol.md")
}
