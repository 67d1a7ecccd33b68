//! Finnhub mock (`docs/providers/finnhub.md`): `?token=` checked before the upgrade (a bad or missing token gets HTTP 401, or
//! the status set in [`FhState::bad_token_status`]); no greeting and no acknowledgements; one
//! `{"type":"subscribe","symbol":..}` / `unsubscribe` per symbol; a `trade` batch every tick for the subscribed
//! symbols (two trades per symbol, the older first, `t` in Unix ms, `v` a trade size, `c` conditions as strings);
//! `{"type":"ping"}` periodically; `{"msg":"Subscribing to too many symbols","type":"error"}` for a subscribe past
//! its symbol limit; optionally Finnhub's one-connection-per-key rule (a second connection drops both). Frames are
//! compact JSON with keys in alphabetical order, as Finnhub sends them.
//!
//! The token is checked by the [`MockServer`] gate, before the upgrade, like Finnhub's front end does.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::http::HeaderMap;

use crate::mock::{query_param, Incoming, MockConn, MockServer};

/// The symbol-limit error, byte for byte as observed.
pub const TOO_MANY: &str = r#"{"msg":"Subscribing to too many symbols","type":"error"}"#;

/// Switches and observations.
pub struct FhState {
    /// The token the mock accepts.
    pub token: Mutex<String>,
    /// HTTP status for a bad or missing token (Finnhub answers 401, per a user report).
    pub bad_token_status: AtomicU16,
    /// Symbols one connection may hold; a subscribe past it gets [`TOO_MANY`].
    pub max_symbols: AtomicUsize,
    /// Interval of `{"type":"ping"}`, in ms (Finnhub: about once a minute; short here so tests need not wait).
    pub ping_every_ms: AtomicU64,
    /// Send nothing at all (no trades, no pings): a silent, half-dead upstream.
    pub silent: AtomicBool,
    /// Send pings but no trades (an idle market).
    pub no_trades: AtomicBool,
    /// Enforce one connection per token: a second one drops both.
    pub one_connection_per_token: AtomicBool,
    /// Subscribed symbols per open connection (by connection number), in subscribe order.
    pub subscribed: Mutex<Vec<(usize, Vec<String>)>>,
    /// Symbols refused with [`TOO_MANY`], in order.
    pub refused: Mutex<Vec<String>>,
    /// Open connections: number, token, and how to drop it.
    conns: Mutex<Vec<(usize, String, Arc<Notify>)>>,
    next_conn: AtomicUsize,
    /// What the symbol lists answer (see [`Lists`]).
    pub lists: Mutex<Lists>,
}

/// A running Finnhub mock.
pub struct FinnhubMock {
    /// The WebSocket side.
    pub ws: MockServer,
    pub state: Arc<FhState>,
    /// `http://127.0.0.1:PORT/api/v1`, serving the symbol lists behind `X-Finnhub-Token` (`--finnhub-rest-url`).
    pub rest_url: String,
}

/// The symbol lists `/stock/symbol`, `/forex/symbol` and `/crypto/symbol` answer, as (symbol, displaySymbol,
/// description); `None` answers them with a 503.
pub type Lists = Option<(Vec<(String, String, String)>, Vec<(String, String, String)>, Vec<(String, String, String)>)>;

/// One of Finnhub's symbol lists, in its documented shape.
async fn symbol_list(
    axum::extract::State((state, kind)): axum::extract::State<(Arc<FhState>, usize)>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let token = headers.get("x-finnhub-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if state.token.lock().map(|t| *t != token).unwrap_or(true) {
        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "Invalid API key"}))).into_response();
    }
    let Some(lists) = state.lists.lock().ok().and_then(|l| l.clone()) else {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "").into_response();
    };
    let list = [&lists.0, &lists.1, &lists.2][kind];
    let body: Vec<Value> = list
        .iter()
        .map(|(symbol, display, description)| {
            let mut item = json!({"description": description, "displaySymbol": display, "symbol": symbol});
            if kind == 0 {
                item["currency"] = json!("USD");
                item["mic"] = json!("XNAS");
                item["type"] = json!("Common Stock");
            }
            item
        })
        .collect();
    axum::Json(body).into_response()
}

const TICK: Duration = Duration::from_millis(50);

impl FinnhubMock {
    /// Starts a mock that accepts `token`.
    pub async fn start(token: &str) -> FinnhubMock {
        let state = Arc::new(FhState {
            token: Mutex::new(token.to_owned()),
            bad_token_status: AtomicU16::new(401),
            max_symbols: AtomicUsize::new(50),
            ping_every_ms: AtomicU64::new(1000),
            silent: AtomicBool::new(false),
            no_trades: AtomicBool::new(false),
            one_connection_per_token: AtomicBool::new(false),
            subscribed: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            next_conn: AtomicUsize::new(0),
            lists: Mutex::new(None),
        });
        let (s, g) = (state.clone(), state.clone());
        let gate = move |path: &str, _: &HeaderMap| {
            let expected = g.token.lock().map(|t| t.clone()).unwrap_or_default();
            (query_param(path, "token").as_deref() != Some(expected.as_str()))
                .then(|| (g.bad_token_status.load(Ordering::SeqCst), String::new()))
        };
        let ws = MockServer::start_gated(gate, move |conn| serve(conn, s.clone())).await;
        let rest = axum::Router::new()
            .route("/api/v1/stock/symbol", axum::routing::get(symbol_list).with_state((state.clone(), 0)))
            .route("/api/v1/forex/symbol", axum::routing::get(symbol_list).with_state((state.clone(), 1)))
            .route("/api/v1/crypto/symbol", axum::routing::get(symbol_list).with_state((state.clone(), 2)));
        let rest_url = format!("{}/api/v1", crate::mock::serve_rest(rest).await);
        FinnhubMock { ws, state, rest_url }
    }

    /// The streaming URL to give the relay (it adds `?token=`), like `wss://ws.finnhub.io`.
    pub fn ws_url(&self) -> String {
        self.ws.ws_url("")
    }

    /// Upgrade attempts, refused ones included.
    pub fn attempts(&self) -> usize {
        self.ws.attempts()
    }

    /// Union of symbols subscribed on all open connections.
    pub fn subscribed(&self) -> BTreeSet<String> {
        self.state.subscribed.lock().map(|s| s.iter().flat_map(|(_, l)| l.clone()).collect()).unwrap_or_default()
    }

    /// How many frames of `kind` (`subscribe`, `unsubscribe`) named `symbol`, over all connections.
    pub fn requests_for(&self, kind: &str, symbol: &str) -> usize {
        self.ws
            .received()
            .iter()
            .filter_map(|f| serde_json::from_str::<Value>(f).ok())
            .filter(|v| v["type"] == kind && v["symbol"] == symbol)
            .count()
    }

    /// Symbols refused for the symbol limit so far.
    pub fn refused(&self) -> Vec<String> {
        self.state.refused.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn set_max_symbols(&self, max: usize) {
        self.state.max_symbols.store(max, Ordering::SeqCst);
    }

    pub fn set_ping_every(&self, every: Duration) {
        self.state.ping_every_ms.store(every.as_millis() as u64, Ordering::SeqCst);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One batch: per symbol an older trade at a low price, then the latest one at 100 or more.
fn trade_batch(symbols: &[String], n: u64) -> String {
    let t = now_ms();
    let data: Vec<Value> = symbols
        .iter()
        .flat_map(|s| {
            let price = 100.0 + (n % 100) as f64 / 100.0;
            [json!({"c":["1","12"],"p":1.5,"s":s,"t":t - 40,"v":3}), json!({"c":["1"],"p":price,"s":s,"t":t,"v":100})]
        })
        .collect();
    json!({"data": data, "type": "trade"}).to_string()
}

async fn serve(mut conn: MockConn, state: Arc<FhState>) {
    let id = state.next_conn.fetch_add(1, Ordering::SeqCst);
    let token = conn.query("token").unwrap_or_default();
    let kill = Arc::new(Notify::new());
    let rival = {
        let Ok(mut conns) = state.conns.lock() else { return };
        let rivals: Vec<_> = conns.iter().filter(|(_, t, _)| *t == token).map(|(_, _, k)| k.clone()).collect();
        if state.one_connection_per_token.load(Ordering::SeqCst) && !rivals.is_empty() {
            // "A second connection dropped both" (`docs/providers/finnhub.md`, Limits): this one is dropped without a word.
            rivals.iter().for_each(|k| k.notify_one());
            true
        } else {
            conns.push((id, token, kill.clone()));
            false
        }
    };
    if rival {
        return;
    }
    state.subscribed.lock().map(|mut s| s.push((id, Vec::new()))).ok();
    let with_set = |f: &mut dyn FnMut(&mut Vec<String>)| {
        if let Ok(mut all) = state.subscribed.lock() {
            if let Some((_, s)) = all.iter_mut().find(|(i, _)| *i == id) {
                f(s);
            }
        }
    };
    let ping_every = Duration::from_millis(state.ping_every_ms.load(Ordering::SeqCst).max(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut tick = tokio::time::interval(TICK);
    let mut n = 0u64;
    loop {
        let incoming = tokio::select! {
            _ = kill.notified() => break,
            _ = tick.tick() => {
                if state.silent.load(Ordering::SeqCst) || state.no_trades.load(Ordering::SeqCst) {
                    continue;
                }
                let mut symbols = Vec::new();
                with_set(&mut |s| symbols = s.clone());
                n += 1;
                if !symbols.is_empty() && !conn.send(trade_batch(&symbols, n)).await {
                    break;
                }
                continue;
            }
            _ = ping.tick() => {
                if !state.silent.load(Ordering::SeqCst) && !conn.send(r#"{"type":"ping"}"#).await {
                    break;
                }
                continue;
            }
            incoming = conn.recv() => incoming,
        };
        let text = match incoming {
            Incoming::Text(t) => t,
            Incoming::Gone | Incoming::Cut => break,
        };
        // No acknowledgements: Finnhub answers nothing but the limit error.
        let Ok(msg) = serde_json::from_str::<Value>(&text) else { continue };
        let Some(symbol) = msg["symbol"].as_str().map(str::to_owned) else { continue };
        match msg["type"].as_str() {
            Some("subscribe") => {
                let max = state.max_symbols.load(Ordering::SeqCst);
                let mut refused = false;
                with_set(&mut |s| {
                    if !s.contains(&symbol) {
                        if s.len() >= max {
                            refused = true;
                        } else {
                            s.push(symbol.clone());
                        }
                    }
                });
                if refused {
                    state.refused.lock().map(|mut r| r.push(symbol)).ok();
                    if !conn.send(TOO_MANY).await {
                        break;
                    }
                }
            }
            Some("unsubscribe") => with_set(&mut |s| s.retain(|x| *x != symbol)),
            _ => {}
        }
    }
    state.subscribed.lock().map(|mut s| s.retain(|(i, _)| *i != id)).ok();
    state.conns.lock().map(|mut c| c.retain(|(i, _, _)| *i != id)).ok();
}
