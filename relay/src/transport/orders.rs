//! Trading over REST, with Alpaca's paths and field names: `GET /api/account` (and `POST /api/account/reset`,
//! the paper account started over), `GET /api/positions`,
//! `GET /api/orders?status=`, `POST /api/orders`, `PATCH /api/orders/{id}` (replace) and
//! `DELETE /api/orders/{id}` (cancel), and the ledger at `GET /api/fills`. Every request acts on the caller's own account: the identity comes from
//! its credential (the JWT `sub`, the static token's place in `AUTH_TOKENS`), or is the one local account when
//! client auth is off. Refusals are `{"code", "message"}` with the broker's codes.

use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use hamster_shared::broker::{OrderReject, OrderRejectCode, OrderRequest, OrderStatus, ReplaceRequest};
use serde::Deserialize;

use crate::broker::AccountId;
use crate::commands;
use crate::guard::auth::Identity;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/account", get(account))
        .route("/api/account/reset", axum::routing::post(reset))
        .route("/api/positions", get(positions))
        .route("/api/orders", get(orders).post(place))
        .route("/api/orders/{id}", patch(replace).delete(cancel))
        .route("/api/fills", get(fills))
}

/// A broker refusal as HTTP: the status says what kind, the body carries the broker's code.
struct Refused(OrderReject);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        use OrderRejectCode::*;
        let status = match self.0.code {
            InsufficientBuyingPower | InsufficientQty => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            NotCancelable => StatusCode::UNPROCESSABLE_ENTITY,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden => StatusCode::FORBIDDEN,
            UnknownSymbol | InvalidQty | LimitPriceMissing | StopPriceMissing | TrailMissing | InvalidOrder => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        };
        (status, Json(self.0)).into_response()
    }
}

fn refused(code: OrderRejectCode, message: impl Into<String>) -> Refused {
    Refused(OrderReject { code, message: message.into() })
}

/// The caller's account, for REST and the streams. The auth layer has already let the request in; this names
/// whose it is.
pub(crate) fn account_of(app: &AppState, parts: &Parts) -> Result<AccountId, OrderReject> {
    let no = |message: String| OrderReject { code: OrderRejectCode::Unauthorized, message };
    match app.guard.identify(parts) {
        Ok(Identity::Open) => Ok(AccountId::local()),
        Ok(Identity::Token(n)) => Ok(AccountId(format!("token-{n}"))),
        Ok(Identity::Subject(sub)) => Ok(AccountId(format!("sub:{sub}"))),
        Ok(Identity::Anonymous) => Err(no("this token has no `sub` claim, so it owns no account".into())),
        Err(e) => Err(no(e.to_string())),
    }
}

fn whose(app: &AppState, parts: &Parts) -> Result<AccountId, Refused> {
    account_of(app, parts).map_err(Refused)
}

/// The caller's account for a request that changes it: only from this relay's own site (or an allowed origin),
/// through a host name it serves.
fn whose_writing(app: &AppState, parts: &Parts, json_body: bool) -> Result<AccountId, Refused> {
    if let Err(e) = app.site.check(&parts.headers, json_body) {
        app.guard.refuse("site");
        return Err(refused(OrderRejectCode::Forbidden, e.to_string()));
    }
    whose(app, parts)
}

/// `GET /api/account`.
async fn account(State(app): State<AppState>, parts: Parts) -> Result<Response, Refused> {
    let who = whose(&app, &parts)?;
    Ok(Json(app.broker.account(&who).await).into_response())
}

/// `POST /api/account/reset`: the account started over, as `GET /api/account` then shows it.
async fn reset(State(app): State<AppState>, parts: Parts) -> Result<Response, Refused> {
    let who = whose_writing(&app, &parts, false)?;
    let account = app.broker.reset(&who).await.map_err(Refused)?;
    Ok(Json(account).into_response())
}

/// `GET /api/fills`: the ledger, newest first (the last 500).
async fn fills(State(app): State<AppState>, parts: Parts) -> Result<Response, Refused> {
    let who = whose(&app, &parts)?;
    Ok(Json(app.broker.fills(&who, 500).await).into_response())
}

/// `GET /api/positions`.
async fn positions(State(app): State<AppState>, parts: Parts) -> Result<Response, Refused> {
    let who = whose(&app, &parts)?;
    Ok(Json(app.broker.positions(&who).await).into_response())
}

#[derive(Debug, Deserialize)]
struct OrdersQuery {
    status: Option<String>,
}

/// `GET /api/orders?status=open|closed|all|<status>,…` (default `open`, as Alpaca).
async fn orders(State(app): State<AppState>, parts: Parts) -> Result<Response, Refused> {
    let who = whose(&app, &parts)?;
    let Query(q) = Query::<OrdersQuery>::try_from_uri(&parts.uri)
        .map_err(|e| refused(OrderRejectCode::InvalidOrder, e.body_text()))?;
    use OrderStatus::*;
    let statuses = match q.status.as_deref().unwrap_or("open") {
        "all" => None,
        "open" => Some(vec![Accepted, Held, PartiallyFilled]),
        "closed" => Some(vec![Filled, Canceled, Expired, Rejected, Replaced]),
        list => Some(
            list.split(',')
                .map(|s| {
                    OrderStatus::parse(s.trim()).ok_or_else(|| {
                        refused(OrderRejectCode::InvalidOrder, format!("unknown order status {:?}", s.trim()))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Json(app.broker.orders(&who, statuses).await).into_response())
}

/// `POST /api/orders` with an Alpaca-style body.
async fn place(State(app): State<AppState>, parts: Parts, body: axum::body::Bytes) -> Result<Response, Refused> {
    let who = whose_writing(&app, &parts, true)?;
    let request: OrderRequest = serde_json::from_slice(&body)
        .map_err(|e| refused(OrderRejectCode::InvalidOrder, format!("invalid order body: {e}")))?;
    // Only symbols a provider serves can ever fill; asking for one subscribes it, so its ticks reach the broker.
    let symbol = commands::parse(&request.symbol)
        .map_err(|r| refused(OrderRejectCode::UnknownSymbol, format!("{}: {}", request.symbol, r.message)))?;
    app.upstream.route(&symbol).map_err(|e| refused(OrderRejectCode::UnknownSymbol, e.message))?;
    if let Err(e) = app.hub.lease(std::slice::from_ref(&symbol)) {
        return Err(refused(OrderRejectCode::Unavailable, e.to_string()));
    }
    let order = app.broker.place(&who, request).await.map_err(Refused)?;
    Ok((StatusCode::OK, Json(order)).into_response())
}

/// `PATCH /api/orders/{id}`: replace.
async fn replace(
    State(app): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: axum::body::Bytes,
) -> Result<Response, Refused> {
    let who = whose_writing(&app, &parts, true)?;
    let change: ReplaceRequest = serde_json::from_slice(&body)
        .map_err(|e| refused(OrderRejectCode::InvalidOrder, format!("invalid replace body: {e}")))?;
    let order = app.broker.replace(&who, &id, change).await.map_err(Refused)?;
    Ok(Json(order).into_response())
}

/// `DELETE /api/orders/{id}`: cancel.
async fn cancel(State(app): State<AppState>, Path(id): Path<String>, parts: Parts) -> Result<Response, Refused> {
    let who = whose_writing(&app, &parts, false)?;
    let order = app.broker.cancel(&who, &id).await.map_err(Refused)?;
    Ok(Json(order).into_response())
}
