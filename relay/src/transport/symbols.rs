//! `GET /api/symbols?q=&provider=&class=&limit=`: search as you type over the providers' instrument catalogs
//! ([`crate::catalog`]), answered from memory. Each result carries the symbol to subscribe to get it: the bare
//! ticker when the relay's routes send it to that provider anyway, else `provider:TICKER`.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use hamster_shared::api::{InstrumentClass, SymbolMatch, SymbolsResponse};
use hamster_shared::ErrorCode;
use serde::Deserialize;

use crate::catalog::search::search;
use crate::error::HttpError;
use crate::state::AppState;

/// Results when the request names no `limit`, and the most it may ask for.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 50;
/// Longer queries cannot name an instrument.
const MAX_QUERY: usize = 64;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/symbols", get(symbols))
}

#[derive(Debug, Deserialize)]
struct SymbolsQuery {
    #[serde(default)]
    q: String,
    provider: Option<String>,
    class: Option<String>,
    limit: Option<usize>,
}

async fn symbols(
    State(app): State<AppState>,
    Query(query): Query<SymbolsQuery>,
) -> Result<Json<SymbolsResponse>, HttpError> {
    if query.q.chars().count() > MAX_QUERY {
        return Err(HttpError::bad_request(ErrorCode::BadMessage, format!("q is longer than {MAX_QUERY} characters")));
    }
    let class = match query.class.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => Some(InstrumentClass::parse(text).ok_or_else(|| {
            HttpError::bad_request(
                ErrorCode::BadMessage,
                format!("class {text:?} is not equity, crypto, forex or channel"),
            )
        })?),
    };
    let mut catalogs = app.upstream.catalogs();
    if let Some(provider) = query.provider.as_deref().filter(|p| !p.is_empty()) {
        if !app.upstream.names().contains(&provider) {
            return Err(HttpError::bad_request(
                ErrorCode::UnknownProvider,
                format!("no provider named {provider:?} is configured here"),
            ));
        }
        catalogs.retain(|(name, _)| *name == provider);
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let results = search(&catalogs, &query.q, class, limit)
        .into_iter()
        .map(|hit| SymbolMatch {
            symbol: app.upstream.symbol_for(hit.provider, &hit.instrument.ticker),
            ticker: hit.instrument.ticker.clone(),
            name: hit.instrument.name.clone(),
            class: hit.instrument.class,
            provider: hit.provider.to_owned(),
        })
        .collect();
    Ok(Json(SymbolsResponse { results }))
}
