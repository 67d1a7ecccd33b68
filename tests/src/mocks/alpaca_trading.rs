//! Alpaca Trading API mock (`docs/providers/alpaca-broker.md`): the REST endpoints the relay calls
//! (`/v2/orders`, `/v2/orders/{id}`, `/v2/positions`, `/v2/account`) behind the `APCA-API-KEY-ID` /
//! `APCA-API-SECRET-KEY` headers, and the `trade_updates` stream: no greeting, `auth` (or the older
//! `authenticate`) answered on the `authorization` stream, `listen` answered with the full set, then one
//! `{"stream":"trade_updates","data":{…}}` per binary frame (paper's framing).
//!
//! Its market is a price per symbol the test sets: market orders fill at once at that price, limit orders wait
//! until the test fills them ([`AlpacaTradingMock::fill`]). Decimals are strings and unset order fields are
//! `null`, as Alpaca writes them. One stream per account: a second connection gets HTTP 429 on the upgrade.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::mock::{Incoming, MockConn, MockServer};

/// The mock's state and switches.
pub struct TradingState {
    pub key: Mutex<String>,
    pub secret: Mutex<String>,
    /// The price market orders fill at, per symbol (100.0 when unset).
    pub prices: Mutex<BTreeMap<String, f64>>,
    pub cash: Mutex<f64>,
    /// Newest last.
    orders: Mutex<Vec<Value>>,
    /// Symbol → (qty, average entry price).
    positions: Mutex<BTreeMap<String, (f64, f64)>>,
    events: broadcast::Sender<String>,
    /// Send events as text frames instead of binary ones.
    pub text_frames: AtomicBool,
    /// Auth requests received on the stream, and how many succeeded.
    pub auths: AtomicUsize,
    pub auths_ok: AtomicUsize,
    /// `listen` requests received.
    pub listens: AtomicUsize,
    /// Stream sessions open now (one per account is allowed).
    sessions: AtomicUsize,
    /// Every REST call, as `METHOD /path?query`.
    pub calls: Mutex<Vec<String>>,
    /// Every REST request's key-id header, to check the relay sends the configured one.
    pub seen_keys: Mutex<Vec<String>>,
    next_id: AtomicUsize,
}

/// A running mock.
pub struct AlpacaTradingMock {
    pub rest_url: String,
    pub stream: MockServer,
    pub state: Arc<TradingState>,
}

fn dec(v: f64) -> Value {
    Value::String(format!("{v}"))
}

/// A decimal sent as a string or a number.
fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // Civil-from-days (Howard Hinnant), so the mock needs no date crate.
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

fn error(status: u16, code: Option<i64>, message: &str) -> Response {
    let body = match code {
        Some(code) => json!({"code": code, "message": message}),
        None => json!({"message": message}),
    };
    (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), Json(body)).into_response()
}

impl TradingState {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let key = get("apca-api-key-id");
        self.seen_keys.lock().unwrap().push(key.clone());
        key == *self.key.lock().unwrap() && get("apca-api-secret-key") == *self.secret.lock().unwrap()
    }

    fn price(&self, symbol: &str) -> f64 {
        self.prices.lock().unwrap().get(symbol).copied().unwrap_or(100.0)
    }

    fn emit(&self, event: &str, order: &Value, extra: Value) {
        let mut data = json!({"event": event, "order": order, "timestamp": now_rfc3339()});
        if let (Some(d), Value::Object(extra)) = (data.as_object_mut(), extra) {
            d.extend(extra);
        }
        let _ = self.events.send(json!({"stream": "trade_updates", "data": data}).to_string());
    }

    /// Fills open order `index` at `price`, updating cash and the position, and emits `fill`.
    fn fill_at(&self, index: usize, price: f64) {
        let mut orders = self.orders.lock().unwrap();
        let Some(order) = orders.get_mut(index) else { return };
        let qty = num(order.get("qty")).unwrap_or(0.0);
        let symbol = order["symbol"].as_str().unwrap_or_default().to_owned();
        let sign = if order["side"] == "sell" { -1.0 } else { 1.0 };
        let position_qty = {
            let mut positions = self.positions.lock().unwrap();
            let (held, avg) = positions.get(&symbol).copied().unwrap_or((0.0, 0.0));
            let now = held + sign * qty;
            let avg = if sign > 0.0 && now != 0.0 { (held * avg + qty * price) / now } else { avg };
            if now.abs() < 1e-12 {
                positions.remove(&symbol);
            } else {
                positions.insert(symbol.clone(), (now, avg));
            }
            now
        };
        *self.cash.lock().unwrap() -= sign * qty * price;
        let ts = now_rfc3339();
        order["status"] = json!("filled");
        order["filled_qty"] = dec(qty);
        order["filled_avg_price"] = dec(price);
        order["filled_at"] = json!(ts);
        order["updated_at"] = json!(ts);
        let snapshot = order.clone();
        drop(orders);
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.emit(
            "fill",
            &snapshot,
            json!({"execution_id": format!("exec-{n}"), "price": dec(price), "qty": dec(qty),
                   "position_qty": dec(position_qty)}),
        );
    }
}

impl AlpacaTradingMock {
    /// Starts a mock that accepts exactly `key` and `secret`, with `cash` in the account.
    pub async fn start(key: &str, secret: &str, cash: f64) -> AlpacaTradingMock {
        let state = Arc::new(TradingState {
            key: Mutex::new(key.to_owned()),
            secret: Mutex::new(secret.to_owned()),
            prices: Mutex::new(BTreeMap::new()),
            cash: Mutex::new(cash),
            orders: Mutex::new(Vec::new()),
            positions: Mutex::new(BTreeMap::new()),
            events: broadcast::channel(1024).0,
            text_frames: AtomicBool::new(false),
            auths: AtomicUsize::new(0),
            auths_ok: AtomicUsize::new(0),
            listens: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
            calls: Mutex::new(Vec::new()),
            seen_keys: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(1),
        });
        let (gate_state, serve_state) = (state.clone(), state.clone());
        let stream = MockServer::start_gated(
            move |_, _| {
                (gate_state.sessions.load(Ordering::SeqCst) > 0).then(|| (429, "connection limit exceeded".to_owned()))
            },
            move |conn| serve(conn, serve_state.clone()),
        )
        .await;
        let rest = Router::new()
            .route("/v2/orders", get(list_orders).post(place))
            .route("/v2/orders/{id}", get(one_order).delete(cancel).patch(replace))
            .route("/v2/positions", get(positions))
            .route("/v2/account", get(account))
            .with_state(state.clone());
        let rest_url = crate::mock::serve_rest(rest).await;
        AlpacaTradingMock { rest_url, stream, state }
    }

    /// The stream URL to give the relay.
    pub fn stream_url(&self) -> String {
        self.stream.ws_url("/stream")
    }

    /// The relay flags that make this mock its broker (positions and account polled every second).
    pub fn relay_args(&self) -> Vec<String> {
        ["--broker", "alpaca", "--alpaca-trading-url", &self.rest_url]
            .into_iter()
            .map(str::to_owned)
            .chain(["--alpaca-trading-stream-url".to_owned(), self.stream_url()])
            .chain(["--alpaca-poll-ms", "1000"].map(str::to_owned))
            .collect()
    }

    /// Fills the open order `id` at `price` (as the market would), emitting its `fill` event.
    pub fn fill(&self, id: &str, price: f64) {
        let index = self.state.orders.lock().unwrap().iter().position(|o| o["id"] == id);
        if let Some(index) = index {
            self.state.fill_at(index, price);
        }
    }

    /// The mock's view of order `id`.
    pub fn order(&self, id: &str) -> Option<Value> {
        self.state.orders.lock().unwrap().iter().find(|o| o["id"] == id).cloned()
    }

    /// REST calls whose `METHOD /path` starts with `prefix`.
    pub fn calls(&self, prefix: &str) -> usize {
        self.state.calls.lock().unwrap().iter().filter(|c| c.starts_with(prefix)).count()
    }
}

fn log(state: &TradingState, what: String) {
    state.calls.lock().unwrap().push(what);
}

async fn place(State(s): State<Arc<TradingState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    log(&s, "POST /v2/orders".into());
    if !s.authorized(&headers) {
        return error(401, None, "unauthorized");
    }
    let qty = num(body.get("qty"));
    if qty.is_some() == num(body.get("notional")).is_some() {
        return error(400, Some(40010001), "qty or notional is required, not both");
    }
    let Some(symbol) = body.get("symbol").and_then(Value::as_str).map(str::to_owned) else {
        return error(422, Some(40010001), "symbol is required");
    };
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("market").to_owned();
    let limit = num(body.get("limit_price"));
    if kind == "limit" && limit.is_none() {
        return error(422, Some(40010001), "limit_price is required");
    }
    let side = body.get("side").and_then(Value::as_str).unwrap_or("buy").to_owned();
    let qty = qty.unwrap_or_else(|| num(body.get("notional")).unwrap_or(0.0) / s.price(&symbol));
    let cost = qty * limit.unwrap_or_else(|| s.price(&symbol));
    if side == "buy" && cost > *s.cash.lock().unwrap() {
        let bp = *s.cash.lock().unwrap();
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"buying_power": dec(bp), "code": 40310000, "cost_basis": dec(cost),
                        "message": "insufficient buying power"})),
        )
            .into_response();
    }
    let n = s.next_id.fetch_add(1, Ordering::SeqCst);
    let ts = now_rfc3339();
    let order = json!({
        "id": format!("{n:08x}-0000-4000-8000-000000000000"),
        "client_order_id": body.get("client_order_id").cloned().unwrap_or(Value::Null),
        "created_at": ts, "updated_at": ts, "submitted_at": ts, "filled_at": null, "expired_at": null,
        "canceled_at": null, "failed_at": null, "replaced_at": null, "replaced_by": null, "replaces": null,
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "symbol": symbol, "asset_class": "us_equity",
        "notional": null, "qty": dec(qty), "filled_qty": "0", "filled_avg_price": null,
        "order_class": body.get("order_class").cloned().unwrap_or(json!("")), "order_type": kind, "type": kind,
        "side": side, "time_in_force": body.get("time_in_force").cloned().unwrap_or(json!("day")),
        "limit_price": limit.map(dec), "stop_price": num(body.get("stop_price")).map(dec), "status": "accepted",
        "extended_hours": false, "legs": null, "trail_percent": null, "trail_price": null, "hwm": null
    });
    let index = {
        let mut orders = s.orders.lock().unwrap();
        orders.push(order.clone());
        orders.len() - 1
    };
    let mut new = order.clone();
    new["status"] = json!("new");
    s.orders.lock().unwrap()[index]["status"] = json!("new");
    s.emit("new", &new, json!({}));
    if kind == "market" {
        let price = s.price(&symbol);
        s.fill_at(index, price);
    }
    Json(order).into_response()
}

async fn list_orders(
    State(s): State<Arc<TradingState>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    log(&s, format!("GET /v2/orders?status={}", q.get("status").map_or("", String::as_str)));
    if !s.authorized(&headers) {
        return error(401, None, "unauthorized");
    }
    let open = |o: &Value| matches!(o["status"].as_str(), Some("new" | "accepted" | "partially_filled" | "held"));
    let orders: Vec<Value> = s
        .orders
        .lock()
        .unwrap()
        .iter()
        .rev()
        .filter(|o| match q.get("status").map(String::as_str) {
            Some("all") => true,
            Some("closed") => !open(o),
            _ => open(o),
        })
        .cloned()
        .collect();
    Json(orders).into_response()
}

async fn one_order(State(s): State<Arc<TradingState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    log(&s, format!("GET /v2/orders/{id}"));
    if !s.authorized(&headers) {
        return error(401, None, "unauthorized");
    }
    match s.orders.lock().unwrap().iter().find(|o| o["id"] == id.as_str()) {
        Some(o) => Json(o.clone()).into_response(),
        None => error(404, Some(40410000), "order not found"),
    }
}

async fn cancel(State(s): State<Arc<TradingState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    log(&s, format!("DELETE /v2/orders/{id}"));
    if !s.authorized(&headers) {
        return error(401, None, "unauthorized");
    }
    let canceled = {
        let mut orders = s.orders.lock().unwrap();
        let Some(o) = orders.iter_mut().find(|o| o["id"] == id.as_str()) else {
            return error(404, Some(40410000), "order not found");
        };
        if !matches!(o["status"].as_str(), Some("new" | "accepted" | "partially_filled" | "held")) {
            return error(422, Some(42210000), "order is not cancelable");
        }
        let ts = now_rfc3339();
        o["status"] = json!("canceled");
        o["canceled_at"] = json!(ts);
        o["updated_at"] = json!(ts);
        o.clone()
    };
    s.emit("canceled", &canceled, json!({}));
    StatusCode::NO_CONTENT.into_response()
}

async fn replace(
    State(s): State<Arc<TradingState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    log(&s, format!("PATCH /v2/orders/{id}"));
    if !s.authorized(&headers) {
        return error(401, None, "unauthorized");
    }
    let n = s.next_id.fetch_add(1, Ordering::SeqCst);
    let (old, new) = {
        let mut orders = s.orders.lock().unwrap();
        let Some(o) = orders.iter_mut().find(|o| o["id"] == id.as_str()) else {
            return error(404, Some(40410000), "order not found");
        };
        let mut new = o.clone();
        new["id"] = json!(format!("{n:08x}-0000-4000-8000-000000000000"));
        new["replaces"] = json!(id);
        new["status"] = json!("new");
        for field in ["qty", "limit_price", "stop_price"] {
            if let Some(v) = num(body.get(field)) {
                new[field] = dec(v);
            }
        }
        o["status"] = json!("replaced");
        o["replaced_by"] = new["id"].clone();
        let old = o.clone();
        orders.push(new.clone());
        (old, new)
    };
    s.emit("replaced", &old, json!({}));
    s.emit("new", &new, json!({}));
    Json(new).into_response()
}

async fn positions(State(s): State<Arc<TradingState>>, headers: HeaderMap) -> Response {
    log(&s, "GET /v2/positions".into());
    if !s.authorized(&headers) {
        return error(401, None, "unauthorized");
    }
    let list: Vec<Value> = s
        .positions
        .lock()
        .unwrap()
        .iter()
        .map(|(symbol, (qty, avg))| {
            let price = s.price(symbol);
            json!({"asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "symbol": symbol, "exchange": "NASDAQ",
                   "asset_class": "us_equity", "qty": dec(*qty), "qty_available": dec(*qty),
                   "avg_entry_price": dec(*avg), "side": if *qty >= 0.0 { "long" } else { "short" },
                   "market_value": dec(qty * price), "cost_basis": dec(qty * avg),
                   "unrealized_pl": dec(qty * (price - avg)), "unrealized_intraday_pl": dec(qty * (price - avg)),
                   "current_price": dec(price), "lastday_price": dec(*avg)})
        })
        .collect();
    Json(list).into_response()
}

async fn account(State(s): State<Arc<TradingState>>, headers: HeaderMap) -> Response {
    log(&s, "GET /v2/account".into());
    if !s.authorized(&headers) {
        return error(401, None, "unauthorized");
    }
    let cash = *s.cash.lock().unwrap();
    let long: f64 = s.positions.lock().unwrap().iter().map(|(sym, (q, _))| q * s.price(sym)).sum();
    Json(json!({"id": "904837e3-3b76-47ec-b432-046db621571b", "account_number": "PA3SSSSSSSSS",
                "status": "ACTIVE", "currency": "USD", "cash": dec(cash), "buying_power": dec(cash),
                "equity": dec(cash + long), "last_equity": dec(cash + long), "long_market_value": dec(long),
                "multiplier": "1", "shorting_enabled": false}))
    .into_response()
}

/// One stream connection.
async fn serve(mut conn: MockConn, s: Arc<TradingState>) {
    s.sessions.fetch_add(1, Ordering::SeqCst);
    session(&mut conn, &s).await;
    s.sessions.fetch_sub(1, Ordering::SeqCst);
}

async fn session(conn: &mut MockConn, s: &TradingState) {
    let Incoming::Text(auth) = conn.recv().await else { return };
    s.auths.fetch_add(1, Ordering::SeqCst);
    let auth: Value = serde_json::from_str(&auth).unwrap_or_default();
    let (key, secret) = match auth["action"].as_str() {
        Some("auth") => (auth["key"].as_str(), auth["secret"].as_str()),
        Some("authenticate") => (auth["data"]["key_id"].as_str(), auth["data"]["secret_key"].as_str()),
        _ => (None, None),
    };
    let ok = key == Some(s.key.lock().unwrap().as_str()) && secret == Some(s.secret.lock().unwrap().as_str());
    if !ok {
        let reply = json!({"stream": "authorization", "data": {"action": "authenticate",
            "message": "access key verification failed", "status": "unauthorized"}});
        conn.send_binary(reply.to_string()).await;
        return;
    }
    s.auths_ok.fetch_add(1, Ordering::SeqCst);
    let reply = json!({"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}});
    conn.send_binary(reply.to_string()).await;
    let mut events = s.events.subscribe();
    let mut listening = false;
    loop {
        tokio::select! {
            incoming = conn.recv() => match incoming {
                Incoming::Text(text) => {
                    let msg: Value = serde_json::from_str(&text).unwrap_or_default();
                    if msg["action"] == "listen" {
                        s.listens.fetch_add(1, Ordering::SeqCst);
                        let streams = msg["data"]["streams"].clone();
                        listening = streams.as_array().is_some_and(|a| a.iter().any(|v| v == "trade_updates"));
                        let set = if listening { json!(["trade_updates"]) } else { json!([]) };
                        conn.send_binary(json!({"stream": "listening", "data": {"streams": set}}).to_string()).await;
                    }
                }
                Incoming::Gone | Incoming::Cut => return,
            },
            event = events.recv() => match event {
                Ok(event) if listening => {
                    let sent = if s.text_frames.load(Ordering::SeqCst) {
                        conn.send(event).await
                    } else {
                        conn.send_binary(event).await
                    };
                    if !sent {
                        return;
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
