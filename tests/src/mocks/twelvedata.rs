//! Twelve Data mock (`docs/providers/twelvedata.md`): `?apikey=` auth, no greeting, `subscribe`/`unsubscribe` with comma-separated
//! symbols answered by `subscribe-status`/`unsubscribe-status` (`fails[]` for symbols it is told to refuse),
//! `price` events with Unix-seconds timestamps every tick for each subscribed symbol, `heartbeat` replies, and a
//! REST `/price` endpoint (single and batch bodies, error bodies with HTTP 200 as observed in the wild) and
//! `/time_series` of one-minute rows for charts' past.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::mock::{Incoming, MockConn, MockServer};

/// Switches and observations shared by the WS and REST halves.
#[derive(Default)]
pub struct TdState {
    /// Symbols `subscribe` puts in `fails[]` (with this message).
    pub refuse: Mutex<HashSet<String>>,
    /// Stop sending anything (prices and heartbeat replies): a silent, half-dead upstream.
    pub silent: AtomicBool,
    /// Stop sending prices only (replies still come): for tests about control traffic at scale.
    pub prices_off: AtomicBool,
    /// Subscribed symbols per open connection (by connection number).
    pub subscribed: Mutex<Vec<(usize, BTreeSet<String>)>>,
    /// REST `/price` requests served, and whether to answer them with the out-of-credits error.
    pub rest_requests: AtomicUsize,
    pub rest_out_of_credits: AtomicBool,
    /// Answer REST with the documented bad-key error (what a key the stream refuses gets here too).
    pub rest_bad_key: AtomicBool,
    pub rest_last_symbols: Mutex<String>,
    pub rest_last_key: Mutex<String>,
    /// The `Authorization` header of the last reference-list request.
    pub reference_auth: Mutex<String>,
    /// `(query string, Authorization header)` of each `/time_series` request, in order.
    pub series_requests: Mutex<Vec<(String, String)>>,
    next_conn: AtomicUsize,
}

/// The close the mock's `/time_series` gives the minute starting at `start` (ms).
pub fn series_close(start: i64) -> f64 {
    50.0 + ((start / 60_000) % 30) as f64 / 10.0
}

/// `GET /time_series?symbol=&interval=1min&outputsize=&timezone=UTC&order=asc` in Twelve Data's shape: `outputsize`
/// one-minute rows ending with the current minute, UTC datetimes, prices as strings, volume for stocks only.
async fn time_series(
    State(state): State<Arc<TdState>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> Json<Value> {
    let query = query.unwrap_or_default();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    state.series_requests.lock().map(|mut r| r.push((query.clone(), auth))).ok();
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.replace("%2F", "/"))
    };
    let symbol = param("symbol").unwrap_or_default();
    if param("interval").as_deref() != Some("1min") || param("timezone").as_deref() != Some("UTC") {
        return Json(
            json!({"code":400,"message":"**interval** or **timezone** not as this mock serves","status":"error"}),
        );
    }
    let size = param("outputsize").and_then(|n| n.parse::<i64>().ok()).unwrap_or(30).clamp(1, 5000);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let last = now / 60_000 * 60_000;
    let stock = !symbol.contains('/');
    let values: Vec<Value> = (0..size)
        .rev()
        .map(|back| {
            let start = last - back * 60_000;
            let secs = start / 1000;
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let date = civil(days);
            let (open, close) = (series_close(start - 60_000), series_close(start));
            let mut row = json!({"datetime": format!("{date} {:02}:{:02}:00", rem / 3600, rem % 3600 / 60),
                "open": format!("{open:.5}"), "high": format!("{:.5}", open.max(close) + 0.05),
                "low": format!("{:.5}", open.min(close) - 0.05), "close": format!("{close:.5}")});
            if stock {
                row["volume"] = json!("3300");
            }
            row
        })
        .collect();
    Json(json!({"meta": {"symbol": symbol, "interval": "1min", "currency": "USD", "exchange_timezone": "UTC",
                         "type": if stock { "Common Stock" } else { "Physical Currency" }},
                "values": values, "status": "ok"}))
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A running Twelve Data mock.
pub struct TwelveDataMock {
    pub ws: MockServer,
    pub rest_url: String,
    pub state: Arc<TdState>,
}

const TICK: Duration = Duration::from_millis(50);

impl TwelveDataMock {
    pub async fn start() -> TwelveDataMock {
        let state = Arc::new(TdState::default());
        let s = state.clone();
        let ws = MockServer::start(move |conn| serve(conn, s.clone())).await;
        let rest = Router::new()
            .route("/price", get(price))
            .route("/time_series", get(time_series))
            .route("/stocks", get(reference_stocks))
            .route("/forex_pairs", get(reference_forex))
            .route("/cryptocurrencies", get(reference_crypto))
            .with_state(state.clone());
        let rest_url = crate::mock::serve_rest(rest).await;
        TwelveDataMock { ws, rest_url, state }
    }

    /// The streaming URL to give the relay.
    pub fn ws_url(&self) -> String {
        self.ws.ws_url("/v1/quotes/price")
    }

    /// The relay flags that make this mock its Twelve Data upstream, stream and REST (the key goes in the
    /// environment, `TWELVE_DATA_API_KEY`).
    pub fn relay_args(&self) -> Vec<String> {
        vec![
            "--providers".to_owned(),
            "twelvedata".to_owned(),
            "--twelvedata-ws-url".to_owned(),
            self.ws_url(),
            "--twelvedata-rest-url".to_owned(),
            self.rest_url.clone(),
        ]
    }

    /// Union of symbols subscribed on all open connections.
    pub fn subscribed(&self) -> BTreeSet<String> {
        self.state.subscribed.lock().map(|s| s.iter().flat_map(|(_, set)| set.clone()).collect()).unwrap_or_default()
    }

    /// How many `subscribe` frames named `symbol`.
    pub fn subscribe_requests_for(&self, symbol: &str) -> usize {
        self.ws
            .received()
            .iter()
            .filter_map(|f| serde_json::from_str::<Value>(f).ok())
            .filter(|v| v["action"] == "subscribe")
            .filter(|v| v["params"]["symbols"].as_str().unwrap_or("").split(',').any(|s| s == symbol))
            .count()
    }

    pub fn refuse(&self, symbol: &str) {
        self.state.refuse.lock().map(|mut r| r.insert(symbol.to_owned())).ok();
    }
}

fn price_event(symbol: &str, n: u64) -> Value {
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let price = 100.0 + (n % 100) as f64 / 100.0;
    if symbol.contains('/') {
        json!({"event":"price","symbol":symbol,"currency_base":"Euro","currency_quote":"US Dollar",
               "type":"Physical Currency","timestamp":ts,"price":price,"bid":price - 0.01,"ask":price + 0.01})
    } else {
        json!({"event":"price","symbol":symbol,"currency":"USD","exchange":"NASDAQ","type":"Common Stock",
               "timestamp":ts,"price":price,"day_volume":1000 + n})
    }
}

async fn serve(mut conn: MockConn, state: Arc<TdState>) {
    let id = state.next_conn.fetch_add(1, Ordering::SeqCst);
    state.subscribed.lock().map(|mut s| s.push((id, BTreeSet::new()))).ok();
    let set = |state: &TdState, f: &mut dyn FnMut(&mut BTreeSet<String>)| {
        if let Ok(mut all) = state.subscribed.lock() {
            if let Some((_, s)) = all.iter_mut().find(|(i, _)| *i == id) {
                f(s);
            }
        }
    };
    let mut n = 0u64;
    let mut tick = tokio::time::interval(TICK);
    loop {
        let incoming = tokio::select! {
            _ = tick.tick() => {
                if state.silent.load(Ordering::SeqCst) || state.prices_off.load(Ordering::SeqCst) {
                    continue;
                }
                let mut symbols = BTreeSet::new();
                set(&state, &mut |s| symbols = s.clone());
                for symbol in symbols {
                    n += 1;
                    if !conn.send(price_event(&symbol, n).to_string()).await {
                        break;
                    }
                }
                continue;
            }
            incoming = conn.recv() => incoming,
        };
        let text = match incoming {
            Incoming::Text(t) => t,
            Incoming::Gone | Incoming::Cut => break,
        };
        let Ok(msg) = serde_json::from_str::<Value>(&text) else { continue };
        let symbols: Vec<String> = msg["params"]["symbols"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let reply = match msg["action"].as_str() {
            Some("subscribe") => {
                let refuse = state.refuse.lock().map(|r| r.clone()).unwrap_or_default();
                let (fails, ok): (Vec<_>, Vec<_>) = symbols.into_iter().partition(|s| refuse.contains(s));
                set(&state, &mut |s| s.extend(ok.iter().cloned()));
                let status = if fails.is_empty() {
                    "ok"
                } else if ok.is_empty() {
                    "error"
                } else {
                    "warning"
                };
                json!({"event":"subscribe-status","status":status,
                       "success": ok.iter().map(|s| json!({"symbol":s,"exchange":"NASDAQ"})).collect::<Vec<_>>(),
                       "fails": fails.iter().map(|s| json!({"symbol":s,"message":format!("{s} is not available on your plan")})).collect::<Vec<_>>()})
            }
            Some("unsubscribe") => {
                set(&state, &mut |s| s.retain(|x| !symbols.contains(x)));
                json!({"event":"unsubscribe-status","status":"ok","success":symbols,"fails":[]})
            }
            Some("heartbeat") if !state.silent.load(Ordering::SeqCst) => json!({"event":"heartbeat","status":"ok"}),
            _ => continue,
        };
        if !conn.send(reply.to_string()).await {
            break;
        }
    }
    state.subscribed.lock().map(|mut s| s.retain(|(i, _)| *i != id)).ok();
}

fn note_auth(state: &TdState, headers: &axum::http::HeaderMap) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    state.reference_auth.lock().map(|mut a| *a = auth).ok();
}

/// `GET /stocks` (a small US list in the documented shape; AAPL on two exchanges, as the real list has it).
async fn reference_stocks(State(state): State<Arc<TdState>>, headers: axum::http::HeaderMap) -> Json<Value> {
    note_auth(&state, &headers);
    let stock = |symbol: &str, name: &str, exchange: &str| {
        json!({"symbol": symbol, "name": name, "currency": "USD", "exchange": exchange, "mic_code": "XNGS",
               "country": "United States", "type": "Common Stock"})
    };
    Json(json!({"data": [stock("AAPL", "Apple Inc", "NASDAQ"), stock("AAPL", "Apple Inc", "BATS"),
                         stock("IBM", "International Business Machines Corp", "NYSE")], "status": "ok"}))
}

/// `GET /forex_pairs`.
async fn reference_forex(State(state): State<Arc<TdState>>, headers: axum::http::HeaderMap) -> Json<Value> {
    note_auth(&state, &headers);
    Json(json!({"data": [{"symbol": "EUR/USD", "currency_group": "Major", "currency_base": "Euro",
                          "currency_quote": "US Dollar"}], "status": "ok"}))
}

/// `GET /cryptocurrencies`.
async fn reference_crypto(State(state): State<Arc<TdState>>, headers: axum::http::HeaderMap) -> Json<Value> {
    note_auth(&state, &headers);
    Json(json!({"data": [{"symbol": "BTC/USD", "available_exchanges": ["Binance", "Coinbase Pro"],
                          "currency_base": "Bitcoin", "currency_quote": "US Dollar"}], "status": "ok"}))
}

async fn price(
    State(state): State<Arc<TdState>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    state.rest_requests.fetch_add(1, Ordering::SeqCst);
    let symbols = q.get("symbol").cloned().unwrap_or_default();
    state.rest_last_symbols.lock().map(|mut s| *s = symbols.clone()).ok();
    state.rest_last_key.lock().map(|mut k| *k = q.get("apikey").cloned().unwrap_or_default()).ok();
    if state.rest_bad_key.load(Ordering::SeqCst) {
        return Json(
            json!({"code":401,"message":"**apikey** parameter is incorrect or not specified.","status":"error"}),
        );
    }
    if state.rest_out_of_credits.load(Ordering::SeqCst) {
        // Observed in the wild with HTTP 200.
        return Json(
            json!({"code":429,"message":"You have run out of API credits for the current minute.","status":"error"}),
        );
    }
    let list: Vec<&str> = symbols.split(',').filter(|s| !s.is_empty()).collect();
    match list.as_slice() {
        [one] => Json(json!({"price": format!("{:.5}", 200.0 + one.len() as f64)})),
        many => Json(Value::Object(
            many.iter().map(|s| (s.to_string(), json!({"price": format!("{:.5}", 200.0 + s.len() as f64)}))).collect(),
        )),
    }
}
