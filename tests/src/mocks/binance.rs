//! Binance spot market-stream mock (`docs/providers/binance.md`): no auth; `/ws` with live `SUBSCRIBE`/`UNSUBSCRIBE`/
//! `LIST_SUBSCRIPTIONS` answered `{"result":…,"id":N}`; nested `{"error":{"code":…,"msg":…},"id":…}` replies
//! for malformed requests (bad JSON, missing `method`, non-integer id, unknown method, invalid or refused streams);
//! once it lists pairs (`list_pairs`), a SUBSCRIBE naming any stream of a pair it does not list is refused as a
//! whole with one error for the request id, the valid streams in it included;
//! `24hrTicker`/`24hrMiniTicker` payloads with string prices and an ms event time on a timer for each subscribed
//! stream; ping frames; a `serverShutdown` event on command; `/ws/<stream>` and `/stream?streams=` (combined,
//! wrapped payloads) too.
//!
//! It also watches the client the way Binance does: more than 5 frames from a client within one second is a
//! violation, recorded for the test to assert on and (like Binance) answered by closing with 1008.
//!
//! Two transports share this one protocol handler: [`BinanceMock`] runs on the generic [`MockServer`] (cuts,
//! refused upgrades, attempt counts), which hands handlers text frames only; [`PingProbe`] runs on a bare
//! tokio-tungstenite listener so it also sees pong frames, to check that pings are answered with their payload
//! (and that pongs count towards the 5 msg/s, as they do at Binance).

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::mock::{Incoming, MockConn, MockServer};

/// Binance's limit on messages a client sends, per second, per connection (pings, pongs and JSON alike).
pub const MAX_CLIENT_MESSAGES_PER_S: usize = 5;

/// A control request a client sent, as parsed by the mock.
#[derive(Debug, Clone)]
pub struct ControlRequest {
    /// Which connection (0, 1, … in accept order).
    pub conn: usize,
    pub method: String,
    pub params: Vec<String>,
    pub id: Value,
    /// When the mock received it.
    pub at: Instant,
}

/// Switches and observations.
pub struct BnState {
    /// Streams whose SUBSCRIBE is answered with Binance's `invalid stream` error.
    pub refuse: Mutex<HashSet<String>>,
    /// Stop sending tickers (pings continue, as on a quiet but healthy connection).
    pub silent: AtomicBool,
    /// Close a client that exceeds 5 msg/s with 1008, as Binance does (the violation is recorded either way).
    pub enforce_rate: AtomicBool,
    tick: Duration,
    ping_every: Duration,
    conns: Mutex<Vec<(usize, BTreeSet<String>)>>,
    max_streams_seen: AtomicUsize,
    requests: Mutex<Vec<ControlRequest>>,
    violation: Mutex<Option<String>>,
    pings_sent: Mutex<Vec<Vec<u8>>>,
    pongs: Mutex<Vec<Vec<u8>>>,
    shutdown: broadcast::Sender<()>,
    next_conn: AtomicUsize,
    next_ping: AtomicU64,
    /// The pairs `GET /api/v3/exchangeInfo` lists (base, quote, status); `None` answers it with a 503, as a
    /// Binance that cannot be reached for reference data would (symbols then pass unchecked).
    pub catalog: Mutex<Option<Vec<(String, String, String)>>>,
    /// How many times the relay asked for the exchange info.
    pub catalog_requests: AtomicUsize,
    /// SUBSCRIBE requests refused as a whole (they are not in [`BnState::requests`]).
    pub refused_requests: AtomicUsize,
    /// The query strings of `GET /api/v3/klines`, in order.
    pub klines_requests: Mutex<Vec<String>>,
    /// How many of the next klines requests are answered 429 with `Retry-After: 1`.
    pub klines_throttle: AtomicUsize,
}

impl BnState {
    fn new(tick: Duration, ping_every: Duration) -> BnState {
        BnState {
            refuse: Mutex::default(),
            silent: AtomicBool::new(false),
            enforce_rate: AtomicBool::new(true),
            tick,
            ping_every,
            conns: Mutex::default(),
            max_streams_seen: AtomicUsize::new(0),
            requests: Mutex::default(),
            violation: Mutex::default(),
            pings_sent: Mutex::default(),
            pongs: Mutex::default(),
            shutdown: broadcast::channel(4).0,
            next_conn: AtomicUsize::new(0),
            next_ping: AtomicU64::new(0),
            catalog: Mutex::new(None),
            catalog_requests: AtomicUsize::new(0),
            refused_requests: AtomicUsize::new(0),
            klines_requests: Mutex::default(),
            klines_throttle: AtomicUsize::new(0),
        }
    }

    /// Lists `pairs` (`BASE/QUOTE`, all `TRADING`) in the exchange info from now on.
    pub fn list_pairs(&self, pairs: &[&str]) {
        let pairs = pairs
            .iter()
            .filter_map(|p| p.split_once('/'))
            .map(|(b, q)| (b.to_owned(), q.to_owned(), "TRADING".to_owned()))
            .collect();
        self.catalog.lock().map(|mut c| *c = Some(pairs)).ok();
    }

    /// Whether `stream`'s pair exists here: any pair until pairs are listed, then only the listed ones.
    fn lists(&self, stream: &str) -> bool {
        let symbol = stream.split('@').next().unwrap_or("");
        let Ok(catalog) = self.catalog.lock() else { return true };
        catalog.as_ref().is_none_or(|pairs| {
            pairs.iter().any(|(base, quote, status)| {
                status == "TRADING" && format!("{base}{quote}").eq_ignore_ascii_case(symbol)
            })
        })
    }

    /// Union of streams subscribed on all open connections.
    pub fn subscribed(&self) -> BTreeSet<String> {
        self.conns.lock().map(|c| c.iter().flat_map(|(_, set)| set.clone()).collect()).unwrap_or_default()
    }

    /// Most streams one connection ever had at once.
    pub fn max_streams_seen(&self) -> usize {
        self.max_streams_seen.load(Ordering::SeqCst)
    }

    /// Every well-formed control request, in order.
    pub fn requests(&self) -> Vec<ControlRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many SUBSCRIBE requests named `stream`.
    pub fn subscribe_requests_for(&self, stream: &str) -> usize {
        self.requests().iter().filter(|r| r.method == "SUBSCRIBE" && r.params.iter().any(|p| p == stream)).count()
    }

    /// Why a client went over 5 msg/s, if one ever did.
    pub fn rate_violation(&self) -> Option<String> {
        self.violation.lock().ok().and_then(|v| v.clone())
    }

    /// Ping payloads sent and pong payloads received (pongs are only visible to [`PingProbe`]).
    pub fn pings_and_pongs(&self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let pings = self.pings_sent.lock().map(|p| p.clone()).unwrap_or_default();
        let pongs = self.pongs.lock().map(|p| p.clone()).unwrap_or_default();
        (pings, pongs)
    }

    /// Sends `{"e":"serverShutdown","E":…}` on every open connection (which stays open: leaving is the client's
    /// job, as it would be during Binance's notice period).
    pub fn server_shutdown(&self) {
        let _ = self.shutdown.send(());
    }

    pub fn refuse(&self, stream: &str) {
        self.refuse.lock().map(|mut r| r.insert(stream.to_owned())).ok();
    }

    fn with_conn<T>(&self, id: usize, f: impl FnOnce(&mut BTreeSet<String>) -> T) -> Option<T> {
        let mut conns = self.conns.lock().ok()?;
        let (_, set) = conns.iter_mut().find(|(i, _)| *i == id)?;
        let out = f(set);
        self.max_streams_seen.fetch_max(set.len(), Ordering::SeqCst);
        Some(out)
    }
}

/// A running Binance mock on the generic [`MockServer`], with the REST reference endpoint beside it.
pub struct BinanceMock {
    pub ws: MockServer,
    pub state: Arc<BnState>,
    /// `http://127.0.0.1:PORT`, serving `/api/v3/exchangeInfo` and `/api/v3/klines` (`--binance-rest-url`).
    pub rest_url: String,
}

/// `GET /api/v3/exchangeInfo` in Binance's shape (fields the relay does not read trimmed to a few).
async fn exchange_info(axum::extract::State(state): axum::extract::State<Arc<BnState>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    state.catalog_requests.fetch_add(1, Ordering::SeqCst);
    let pairs = state.catalog.lock().ok().and_then(|c| c.clone());
    let Some(pairs) = pairs else {
        let body = json!({"code": -1001, "msg": "Internal error; unable to process your request. Please try again."});
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    };
    let symbols: Vec<Value> = pairs
        .iter()
        .map(|(base, quote, status)| {
            json!({"symbol": format!("{base}{quote}"), "status": status, "baseAsset": base, "baseAssetPrecision": 8,
                   "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                   "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": true, "ocoAllowed": true,
                   "isSpotTradingAllowed": true, "isMarginTradingAllowed": false, "filters": [],
                   "permissions": ["SPOT"]})
        })
        .collect();
    axum::Json(json!({"timezone": "UTC", "serverTime": 1_565_246_363_776_u64, "rateLimits": [],
                      "exchangeFilters": [], "symbols": symbols}))
    .into_response()
}

/// The close the mock's klines give the minute starting at `start` (ms): a saw-tooth around 100, so a test can tell
/// a backfilled candle from a live one and check each value.
pub fn kline_close(start: i64) -> f64 {
    100.0 + ((start / 60_000) % 50) as f64
}

/// `GET /api/v3/klines?symbol=&interval=1m&limit=&endTime=` in Binance's shape: `limit` one-minute rows ending with
/// the minute of `endTime` (now without it), oldest first; 400 `-1121` for a pair that is not listed, 429 with
/// `Retry-After` while [`BnState::klines_throttle`] lasts.
async fn klines(
    axum::extract::State(state): axum::extract::State<Arc<BnState>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let query = query.unwrap_or_default();
    state.klines_requests.lock().map(|mut r| r.push(query.clone())).ok();
    if state.klines_throttle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        let body = json!({"code": -1003, "msg": "Too many requests; current limit of IP is 6000 request weight per 1 MINUTE."});
        return (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], axum::Json(body)).into_response();
    }
    let param = |name: &str| {
        query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_owned())
    };
    let symbol = param("symbol").unwrap_or_default();
    if param("interval").as_deref() != Some("1m") || !state.lists(&symbol.to_ascii_lowercase()) {
        let body = json!({"code": -1121, "msg": "Invalid symbol."});
        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let limit = param("limit").and_then(|l| l.parse::<i64>().ok()).unwrap_or(500).clamp(1, 1000);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let end = param("endTime").and_then(|e| e.parse::<i64>().ok()).unwrap_or(now);
    let last = end.div_euclid(60_000) * 60_000;
    let rows: Vec<Value> = (0..limit)
        .rev()
        .map(|back| {
            let start = last - back * 60_000;
            let close = kline_close(start);
            let open = kline_close(start - 60_000);
            let s = |v: f64| format!("{v:.8}");
            json!([
                start,
                s(open),
                s(open.max(close) + 0.5),
                s(open.min(close) - 0.5),
                s(close),
                s(12.5),
                start + 59_999,
                s(1250.0),
                42,
                s(6.0),
                s(600.0),
                "0"
            ])
        })
        .collect();
    axum::Json(Value::Array(rows)).into_response()
}

/// Ticker cadence (Binance: 1000 ms; faster here so tests are quick).
pub const TICK: Duration = Duration::from_millis(100);
/// Ping cadence (Binance: 20 s).
pub const PING_EVERY: Duration = Duration::from_millis(500);

impl BinanceMock {
    pub async fn start() -> BinanceMock {
        let state = Arc::new(BnState::new(TICK, PING_EVERY));
        let s = state.clone();
        let ws = MockServer::start(move |conn| {
            let path = conn.path.clone();
            serve(Transport::Mock(conn), path, s.clone())
        })
        .await;
        let rest = axum::Router::new()
            .route("/api/v3/exchangeInfo", axum::routing::get(exchange_info))
            .route("/api/v3/klines", axum::routing::get(klines))
            .with_state(state.clone());
        let rest_url = crate::mock::serve_rest(rest).await;
        BinanceMock { ws, state, rest_url }
    }

    /// The bare `/ws` endpoint the relay connects to.
    pub fn ws_url(&self) -> String {
        self.ws.ws_url("/ws")
    }
}

impl std::ops::Deref for BinanceMock {
    type Target = BnState;
    fn deref(&self) -> &BnState {
        &self.state
    }
}

/// A Binance mock on a bare listener that sees pong frames: pings every `ping_every` with a distinct payload each.
pub struct PingProbe {
    pub state: Arc<BnState>,
    port: u16,
    accept: tokio::task::JoinHandle<()>,
}

impl PingProbe {
    pub async fn start(ping_every: Duration) -> PingProbe {
        let state = Arc::new(BnState::new(TICK, ping_every));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind ping probe");
        let port = listener.local_addr().expect("probe addr").port();
        let s = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        serve(Transport::Raw(ws), "/ws".into(), s).await;
                    }
                });
            }
        });
        PingProbe { state, port, accept }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }
}

impl Drop for PingProbe {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The connection a handler talks over.
enum Transport {
    Mock(MockConn),
    Raw(WebSocketStream<TcpStream>),
}

enum Got {
    Text(String),
    Pong(Vec<u8>),
    /// Closed, broken, or cut by the test.
    Gone,
}

impl Transport {
    async fn recv(&mut self) -> Got {
        match self {
            Transport::Mock(conn) => match conn.recv().await {
                Incoming::Text(text) => Got::Text(text),
                Incoming::Gone | Incoming::Cut => Got::Gone,
            },
            Transport::Raw(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => return Got::Text(text.to_string()),
                    Some(Ok(Message::Pong(payload))) => return Got::Pong(payload.to_vec()),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Got::Gone,
                    Some(Ok(_)) => continue,
                }
            },
        }
    }

    async fn send(&mut self, text: String) -> bool {
        match self {
            Transport::Mock(conn) => conn.send(text).await,
            Transport::Raw(ws) => ws.send(Message::text(text)).await.is_ok(),
        }
    }

    /// Sends a ping; the payload it carried, if sent.
    async fn ping(&mut self, n: u64) -> Option<Vec<u8>> {
        match self {
            // The generic server only takes static payloads (and cannot see the pong anyway).
            Transport::Mock(conn) => conn.ping(b"binance-mock-ping").await.then(|| b"binance-mock-ping".to_vec()),
            Transport::Raw(ws) => {
                let payload = format!("probe-{n}").into_bytes();
                ws.send(Message::Ping(payload.clone().into())).await.ok().map(|_| payload)
            }
        }
    }

    async fn close(self, code: u16, reason: &str) {
        match self {
            Transport::Mock(conn) => conn.close(code, reason).await,
            Transport::Raw(mut ws) => {
                let frame = CloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() };
                let _ = ws.close(Some(frame)).await;
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Streams named in the upgrade path: `/ws/<s>` or `/stream?streams=<s1>/<s2>`; and whether payloads are wrapped.
fn streams_in_path(path: &str) -> (Vec<String>, bool) {
    if let Some(stream) = path.strip_prefix("/ws/") {
        let stream = stream.split('?').next().unwrap_or("");
        return (vec![stream.to_owned()], false);
    }
    if let Some(rest) = path.strip_prefix("/stream") {
        let streams = rest
            .split_once("streams=")
            .map(|(_, s)| s.split('&').next().unwrap_or("").split('/').filter(|s| !s.is_empty()).map(str::to_owned))
            .map(Iterator::collect)
            .unwrap_or_default();
        return (streams, true);
    }
    (Vec::new(), false)
}

/// What Binance accepts as a stream name here: a lower-case symbol and a known stream type.
fn valid_stream(stream: &str) -> bool {
    let Some((symbol, kind)) = stream.split_once('@') else { return false };
    !symbol.is_empty()
        && symbol.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && matches!(kind, "ticker" | "miniTicker" | "trade" | "aggTrade" | "bookTicker")
}

/// A payload for `stream` (`None` for kinds the mock does not stream). Prices are strings, as on the wire; the
/// 24 h open is 100, so `p` = price − 100 and `P` = the same in percent.
fn payload(stream: &str, n: u64) -> Option<Value> {
    let (symbol, kind) = stream.split_once('@')?;
    let symbol = symbol.to_ascii_uppercase();
    let price = 100.0 + (n % 100) as f64 / 100.0;
    let open = 100.0;
    let s = |v: f64| format!("{v:.8}");
    let e = now_ms();
    Some(match kind {
        "ticker" => json!({
            "e": "24hrTicker", "E": e, "s": symbol, "p": s(price - open),
            "P": format!("{:.3}", (price - open) / open * 100.0), "w": s(price), "x": s(open), "c": s(price),
            "Q": "0.01000000", "b": s(price - 0.01), "B": "1.50000000", "a": s(price + 0.01), "A": "2.00000000",
            "o": s(open), "h": s(101.0), "l": s(99.0), "v": s(1000.0 + n as f64), "q": s(100_000.0),
            "O": e - 86_400_000, "C": e, "F": 0, "L": n, "n": n + 1
        }),
        "miniTicker" => json!({
            "e": "24hrMiniTicker", "E": e, "s": symbol, "c": s(price), "o": s(open), "h": s(101.0), "l": s(99.0),
            "v": s(1000.0 + n as f64), "q": s(100_000.0)
        }),
        _ => return None,
    })
}

fn error(code: i64, msg: &str, id: Value) -> Value {
    json!({"error": {"code": code, "msg": msg}, "id": id})
}

/// The reply to one client frame, per Binance's documented answers and observed error shapes.
fn control(state: &BnState, conn: usize, text: &str, combined: &mut bool) -> Value {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return error(3, "Invalid JSON: expected value at line 1 column 1", Value::Null);
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    if !(id.is_null() || id.is_u64()) {
        return error(2, "Invalid request: request ID must be an unsigned integer", Value::Null);
    }
    let Some(method) = v.get("method").and_then(Value::as_str) else {
        return error(2, "Invalid request: missing field `method`", Value::Null);
    };
    let params: Vec<Value> = v.get("params").and_then(Value::as_array).cloned().unwrap_or_default();
    let record = |params: Vec<String>| {
        let request = ControlRequest { conn, method: method.to_owned(), params, id: id.clone(), at: Instant::now() };
        state.requests.lock().map(|mut r| r.push(request)).ok();
    };
    match method {
        "SUBSCRIBE" | "UNSUBSCRIBE" => {
            let streams: Option<Vec<String>> =
                params.iter().map(|p| p.as_str().filter(|s| valid_stream(s)).map(str::to_owned)).collect();
            let Some(streams) = streams.filter(|s| !s.is_empty()) else {
                return error(2, "Invalid request: invalid stream", id);
            };
            // One refused or unlisted stream fails the whole request, and the error does not say which.
            let refused = state.refuse.lock().map(|r| streams.iter().any(|s| r.contains(s))).unwrap_or(false)
                || streams.iter().any(|s| !state.lists(s));
            if method == "SUBSCRIBE" && refused {
                state.refused_requests.fetch_add(1, Ordering::SeqCst);
                return error(2, "Invalid request: invalid stream", id);
            }
            record(streams.clone());
            state.with_conn(conn, |set| {
                if method == "SUBSCRIBE" {
                    set.extend(streams);
                } else {
                    set.retain(|s| !streams.contains(s));
                }
            });
            json!({"result": null, "id": id})
        }
        "LIST_SUBSCRIPTIONS" => {
            record(Vec::new());
            let list: Vec<String> = state.with_conn(conn, |set| set.iter().cloned().collect()).unwrap_or_default();
            json!({"result": list, "id": id})
        }
        "SET_PROPERTY" => match (params.first().and_then(Value::as_str), params.get(1)) {
            (Some("combined"), Some(Value::Bool(b))) => {
                *combined = *b;
                json!({"result": null, "id": id})
            }
            (Some("combined"), _) => error(1, "Invalid value type: expected Boolean", id),
            _ => error(0, "Unknown property", id),
        },
        "GET_PROPERTY" => match params.first().and_then(Value::as_str) {
            Some("combined") => json!({"result": *combined, "id": id}),
            _ => error(0, "Unknown property", id),
        },
        other => error(
            2,
            &format!(
                "Invalid request: unknown variant {other}, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, \
                 `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 28"
            ),
            Value::Null,
        ),
    }
}

/// Counts a client frame against the 5-per-second limit; `true` if this one broke it.
fn over_limit(state: &BnState, conn: usize, window: &mut VecDeque<Instant>, what: &str) -> bool {
    let now = Instant::now();
    window.push_back(now);
    while window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
        window.pop_front();
    }
    if window.len() <= MAX_CLIENT_MESSAGES_PER_S {
        return false;
    }
    if let Ok(mut v) = state.violation.lock() {
        v.get_or_insert_with(|| format!("connection {conn}: {} frames within 1 s (the last a {what})", window.len()));
    }
    true
}

fn wrap(stream: &str, data: Value, combined: bool) -> String {
    if combined {
        json!({"stream": stream, "data": data}).to_string()
    } else {
        data.to_string()
    }
}

async fn serve(mut conn: Transport, path: String, state: Arc<BnState>) {
    let id = state.next_conn.fetch_add(1, Ordering::SeqCst);
    let (initial, mut combined) = streams_in_path(&path);
    state.conns.lock().map(|mut c| c.push((id, BTreeSet::new()))).ok();
    state.with_conn(id, |set| set.extend(initial));
    let mut shutdown = state.shutdown.subscribe();
    let mut tick = tokio::time::interval(state.tick);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + state.ping_every, state.ping_every);
    let mut window = VecDeque::new();
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if state.silent.load(Ordering::SeqCst) {
                    continue;
                }
                let streams = state.with_conn(id, |set| set.clone()).unwrap_or_default();
                for stream in streams {
                    n += 1;
                    let Some(data) = payload(&stream, n) else { continue };
                    if !conn.send(wrap(&stream, data, combined)).await {
                        break;
                    }
                }
            }
            _ = ping.tick() => {
                let k = state.next_ping.fetch_add(1, Ordering::SeqCst);
                // Recorded before it is sent, so the pong can never be seen first.
                if let Transport::Raw(_) = conn {
                    state.pings_sent.lock().map(|mut p| p.push(format!("probe-{k}").into_bytes())).ok();
                }
                if conn.ping(k).await.is_none() {
                    break;
                }
            }
            signal = shutdown.recv() => {
                if signal.is_ok() || matches!(signal, Err(broadcast::error::RecvError::Lagged(_))) {
                    let event = json!({"e": "serverShutdown", "E": now_ms()});
                    if !conn.send(wrap("!serverShutdown", event, combined)).await {
                        break;
                    }
                }
            }
            got = conn.recv() => {
                let (text, what) = match got {
                    Got::Text(text) => (Some(text), "text frame"),
                    Got::Pong(payload) => {
                        state.pongs.lock().map(|mut p| p.push(payload)).ok();
                        (None, "pong")
                    }
                    Got::Gone => break,
                };
                if over_limit(&state, id, &mut window, what) && state.enforce_rate.load(Ordering::SeqCst) {
                    conn.close(1008, "Too many requests").await;
                    break;
                }
                if let Some(text) = text {
                    let reply = control(&state, id, &text, &mut combined);
                    if !conn.send(reply.to_string()).await {
                        break;
                    }
                }
            }
        }
    }
    state.conns.lock().map(|mut c| c.retain(|(i, _)| *i != id)).ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(state: &BnState, text: &str) -> String {
        control(state, 0, text, &mut false).to_string()
    }

    #[test]
    fn answers_like_binance() {
        let state = BnState::new(TICK, PING_EVERY);
        state.conns.lock().unwrap().push((0, BTreeSet::new()));
        assert_eq!(
            reply(&state, r#"{"method":"SUBSCRIBE","params":["btcusdt@ticker"],"id":1}"#),
            r#"{"id":1,"result":null}"#
        );
        assert_eq!(
            reply(&state, r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#),
            r#"{"id":3,"result":["btcusdt@ticker"]}"#
        );
        assert_eq!(
            reply(&state, r#"{"method":"SUBSCRIBE","params":["BTCUSDT@ticker"],"id":2}"#),
            r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}"#
        );
        assert!(reply(&state, "nope").contains(r#""code":3"#));
        assert!(reply(&state, r#"{"params":[],"id":4}"#).contains("missing field `method`"));
        assert!(reply(&state, r#"{"method":"SUBSCRIBE","params":["btcusdt@ticker"],"id":"a-b"}"#).contains("unsigned"));
        assert!(reply(&state, r#"{"method":"PING","id":5}"#).contains("unknown variant"));
        assert_eq!(
            reply(&state, r#"{"method":"UNSUBSCRIBE","params":["btcusdt@ticker"],"id":6}"#),
            r#"{"id":6,"result":null}"#
        );
        assert!(state.subscribed().is_empty());
        assert_eq!(state.subscribe_requests_for("btcusdt@ticker"), 1);
    }

    #[test]
    fn an_unlisted_pair_fails_its_whole_request() {
        let state = BnState::new(TICK, PING_EVERY);
        state.conns.lock().unwrap().push((0, BTreeSet::new()));
        state.list_pairs(&["BTC/USDT", "ETH/USDT"]);
        assert_eq!(
            reply(&state, r#"{"method":"SUBSCRIBE","params":["btcusdt@ticker","nopeusdt@ticker"],"id":1}"#),
            r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}"#
        );
        assert!(state.subscribed().is_empty(), "nothing of a refused request is subscribed");
        assert_eq!(
            reply(&state, r#"{"method":"SUBSCRIBE","params":["btcusdt@ticker","ethusdt@miniTicker"],"id":2}"#),
            r#"{"id":2,"result":null}"#
        );
    }

    #[test]
    fn payloads_carry_string_prices() {
        let t = payload("btcusdt@ticker", 7).unwrap();
        assert_eq!(t["s"], "BTCUSDT");
        assert_eq!(t["c"], "100.07000000");
        assert_eq!(t["P"], "0.070");
        assert!(t["E"].is_i64());
        assert_eq!(payload("btcusdt@miniTicker", 1).unwrap()["e"], "24hrMiniTicker");
        assert_eq!(streams_in_path("/ws/btcusdt@ticker"), (vec!["btcusdt@ticker".to_owned()], false));
        assert_eq!(
            streams_in_path("/stream?streams=btcusdt@ticker/ethusdt@ticker"),
            (vec!["btcusdt@ticker".to_owned(), "ethusdt@ticker".to_owned()], true)
        );
    }

    #[test]
    fn six_frames_in_a_second_break_the_limit() {
        let state = BnState::new(TICK, PING_EVERY);
        let mut window = VecDeque::new();
        for _ in 0..MAX_CLIENT_MESSAGES_PER_S {
            assert!(!over_limit(&state, 0, &mut window, "text frame"));
        }
        assert!(over_limit(&state, 0, &mut window, "pong"));
        assert!(state.rate_violation().unwrap().contains("6 frames"));
    }
}
