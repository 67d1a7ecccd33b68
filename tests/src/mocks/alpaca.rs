//! Alpaca Market Data v2 stocks mock (`docs/providers/alpaca.md`), JSON mode: greets with `[{"T":"success","msg":"connected"}]`,
//! wants `{"action":"auth",…}` within the auth timeout (else 404 and close), checks the credentials (402), allows
//! one authenticated session per account (406 for the next, or for the next N on command), answers every
//! `subscribe`/`unsubscribe` with the full `subscription` set (405 and an unchanged set beyond the symbol limit;
//! 400 "invalid syntax" and an unchanged set for a subscribe naming a symbol it treats as malformed),
//! and streams a batched array of trades (`T:"t"`) and quotes (`T:"q"`) for the subscribed symbols every tick,
//! with RFC 3339 nanosecond timestamps. Every server frame is an array with `T` as each element's first key.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

use crate::mock::{Incoming, MockConn, MockServer};

/// Quote sides the mock always streams, apart from the trade prices (100.00‥100.49) so tests can tell them apart.
pub const BID: f64 = 99.5;
pub const ASK: f64 = 100.75;

/// Switches and observations of the mock.
pub struct AlpacaState {
    /// The credentials that authenticate.
    pub key: Mutex<String>,
    pub secret: Mutex<String>,
    /// Skip the `connected` greeting (a client that waits for it then never authenticates).
    pub no_greeting: AtomicBool,
    /// Authenticate within this long or get 404 and a close.
    pub auth_timeout_ms: AtomicU64,
    /// Authenticated sessions allowed at once (Alpaca: 1 per endpoint and account); 0 = no limit.
    pub max_sessions: AtomicUsize,
    /// The next N authentications get 406 "connection limit exceeded" whatever the session count.
    pub refuse_sessions: AtomicUsize,
    /// Most symbols (trades ∪ quotes) one session may subscribe; 0 = no limit. Beyond it: 405, set unchanged.
    pub symbol_limit: AtomicUsize,
    /// Close the socket after 402/404/406 (likely, but UNVERIFIED for the real server).
    pub close_on_error: AtomicBool,
    /// Symbols this mock cannot parse: a subscribe naming any of them gets 400 "invalid syntax" and changes
    /// nothing, the other symbols in it included (Alpaca does not say which symbol it objects to).
    pub malformed: Mutex<BTreeSet<String>>,
    /// Stream quotes only (no trades).
    pub no_trades: AtomicBool,
    /// Send nothing at all, not even acknowledgements: a silent, half-dead upstream.
    pub silent: AtomicBool,
    /// Auth messages received, and how many succeeded.
    pub auths: AtomicUsize,
    pub auths_ok: AtomicUsize,
    /// Millisecond timestamps (as the relay should read them) of the data sent, per symbol, latest last.
    pub sent_ms: Mutex<VecDeque<(String, i64)>>,
    /// The `Content-Type` of each upgrade request (`application/msgpack` would ask for binary frames, which this
    /// mock does not speak).
    pub content_types: Mutex<Vec<String>>,
    sessions: AtomicUsize,
    subscribed: Mutex<Vec<(usize, Subs)>>,
    next_conn: AtomicUsize,
    /// What `GET /v2/assets` lists (symbol, name), all active and tradable; `None` answers it with a 503, so
    /// symbols pass unchecked.
    pub assets: Mutex<Option<Vec<(String, String)>>>,
    /// `(symbol, query string)` of each `GET /v2/stocks/{symbol}/bars`, in order.
    pub bars_requests: Mutex<Vec<(String, String)>>,
    /// How many of the next bars requests are answered 429 (with `X-RateLimit-Reset` one second ahead).
    pub bars_throttle: AtomicUsize,
}

#[derive(Debug, Clone, Default)]
struct Subs {
    trades: BTreeSet<String>,
    quotes: BTreeSet<String>,
}

impl Subs {
    fn symbols(&self) -> BTreeSet<String> {
        self.trades.union(&self.quotes).cloned().collect()
    }
}

impl AlpacaState {
    fn new(key: &str, secret: &str) -> AlpacaState {
        AlpacaState {
            key: Mutex::new(key.to_owned()),
            secret: Mutex::new(secret.to_owned()),
            no_greeting: AtomicBool::new(false),
            auth_timeout_ms: AtomicU64::new(10_000),
            max_sessions: AtomicUsize::new(1),
            refuse_sessions: AtomicUsize::new(0),
            symbol_limit: AtomicUsize::new(0),
            close_on_error: AtomicBool::new(true),
            malformed: Mutex::new(BTreeSet::new()),
            no_trades: AtomicBool::new(false),
            silent: AtomicBool::new(false),
            auths: AtomicUsize::new(0),
            auths_ok: AtomicUsize::new(0),
            sent_ms: Mutex::new(VecDeque::new()),
            content_types: Mutex::new(Vec::new()),
            sessions: AtomicUsize::new(0),
            subscribed: Mutex::new(Vec::new()),
            next_conn: AtomicUsize::new(0),
            assets: Mutex::new(None),
            bars_requests: Mutex::new(Vec::new()),
            bars_throttle: AtomicUsize::new(0),
        }
    }
}

/// The close the mock's bars give the minute starting at `start` (ms): a saw-tooth around 200, so a test can check
/// each backfilled candle.
pub fn bar_close(start: i64) -> f64 {
    200.0 + ((start / 60_000) % 40) as f64 / 4.0
}

/// Minutes of the hour (UTC) the mock's market trades: bars exist only for these, as a stock has none for minutes
/// without trades.
pub fn bar_minute_trades(start: i64) -> bool {
    (start / 60_000) % 60 < 45
}

/// `GET /v2/stocks/{symbol}/bars?timeframe=1Min&start=&limit=&feed=` in Alpaca's shape behind the key headers: one
/// bar per trading minute from `start` to now, in pages of `limit` linked by `next_page_token`; 429 while
/// [`AlpacaState::bars_throttle`] lasts; 400 for a symbol not in the asset list (when there is one).
async fn bars(
    axum::extract::State(state): axum::extract::State<Arc<AlpacaState>>,
    axum::extract::Path(symbol): axum::extract::Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let query = query.unwrap_or_default();
    state.bars_requests.lock().map(|mut r| r.push((symbol.clone(), query.clone()))).ok();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let key_ok = state.key.lock().map(|k| *k == header("apca-api-key-id")).unwrap_or(false);
    let secret_ok = state.secret.lock().map(|s| *s == header("apca-api-secret-key")).unwrap_or(false);
    if !(key_ok && secret_ok) {
        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "unauthorized."}))).into_response();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    if state.bars_throttle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        let reset = (now / 1000 + 1).to_string();
        return (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [
                ("x-ratelimit-limit", "200".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset),
            ],
            axum::Json(json!({"message": "too many requests."})),
        )
            .into_response();
    }
    let listed = state.assets.lock().ok().and_then(|a| a.clone()).is_none_or(|a| a.iter().any(|(s, _)| *s == symbol));
    let param = |name: &str| {
        query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_owned())
    };
    if !listed || param("timeframe").as_deref() != Some("1Min") {
        let body = json!({"code": 42210000, "message": format!("invalid symbol: {symbol}")});
        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let decoded = |v: String| v.replace("%3A", ":").replace("%3a", ":");
    let Some(start) = param("start")
        .map(decoded)
        .and_then(|s| time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok())
    else {
        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(json!({"message": "invalid start"}))).into_response();
    };
    let start = (start.unix_timestamp() * 1000).div_euclid(60_000) * 60_000;
    let from = param("page_token").and_then(|t| t.parse::<i64>().ok()).unwrap_or(start);
    let limit = param("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(1000).clamp(1, 10_000);
    let minutes: Vec<i64> =
        (0..).map(|m| from + m * 60_000).take_while(|t| *t <= now).filter(|t| bar_minute_trades(*t)).collect();
    let page = &minutes[..minutes.len().min(limit)];
    let next = minutes.get(limit).map(|t| t.to_string());
    let bars: Vec<Value> = page
        .iter()
        .map(|&t| {
            let at = time::OffsetDateTime::from_unix_timestamp(t / 1000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let stamp = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:00Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute()
            );
            let (open, close) = (bar_close(t - 60_000), bar_close(t));
            json!({"t": stamp, "o": open, "h": open.max(close) + 0.25, "l": open.min(close) - 0.25, "c": close,
                   "v": 1500, "n": 17, "vw": (open + close) / 2.0})
        })
        .collect();
    axum::Json(json!({"bars": bars, "symbol": symbol, "next_page_token": next})).into_response()
}

/// A running Alpaca mock, with the Trading API's asset list beside the stream.
pub struct AlpacaMock {
    pub ws: MockServer,
    pub state: Arc<AlpacaState>,
    /// `http://127.0.0.1:PORT`, serving `/v2/assets` (`--alpaca-assets-url`) and `/v2/stocks/{symbol}/bars`
    /// (`--alpaca-data-url`) behind the key headers.
    pub rest_url: String,
}

/// `GET /v2/assets` in Alpaca's shape, refusing a wrong key pair with 401 as the Trading API does.
async fn assets(
    axum::extract::State(state): axum::extract::State<Arc<AlpacaState>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let key_ok = state.key.lock().map(|k| *k == header("apca-api-key-id")).unwrap_or(false);
    let secret_ok = state.secret.lock().map(|s| *s == header("apca-api-secret-key")).unwrap_or(false);
    if !(key_ok && secret_ok) {
        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "unauthorized."}))).into_response();
    }
    let Some(list) = state.assets.lock().ok().and_then(|a| a.clone()) else {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"message": "service unavailable"})))
            .into_response();
    };
    let body: Vec<Value> = list
        .iter()
        .map(|(symbol, name)| {
            json!({"id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "class": "us_equity", "exchange": "NASDAQ",
                   "symbol": symbol, "name": name, "status": "active", "tradable": true, "marginable": true,
                   "shortable": true, "easy_to_borrow": true, "fractionable": true})
        })
        .collect();
    axum::Json(body).into_response()
}

const TICK: Duration = Duration::from_millis(50);
/// How many sent timestamps are remembered.
const SENT_MEMORY: usize = 2000;

impl AlpacaMock {
    /// Starts a mock that accepts exactly `key` and `secret`.
    pub async fn start(key: &str, secret: &str) -> AlpacaMock {
        let state = Arc::new(AlpacaState::new(key, secret));
        let s = state.clone();
        let ws = MockServer::start(move |conn| serve(conn, s.clone())).await;
        let rest = axum::Router::new()
            .route("/v2/assets", axum::routing::get(assets))
            .route("/v2/stocks/{symbol}/bars", axum::routing::get(bars))
            .with_state(state.clone());
        let rest_url = crate::mock::serve_rest(rest).await;
        AlpacaMock { ws, state, rest_url }
    }

    /// The stream URL to give the relay (`--alpaca-ws-url`).
    pub fn ws_url(&self) -> String {
        self.ws.ws_url("/v2/iex")
    }

    /// Union of symbols subscribed (trades or quotes) on all open connections.
    pub fn subscribed(&self) -> BTreeSet<String> {
        self.state
            .subscribed
            .lock()
            .map(|s| s.iter().flat_map(|(_, subs)| subs.symbols()).collect())
            .unwrap_or_default()
    }

    /// Every text frame the relay sent, parsed.
    pub fn frames(&self) -> Vec<Value> {
        self.ws.received().iter().filter_map(|f| serde_json::from_str(f).ok()).collect()
    }

    /// How many `subscribe` frames named `symbol` (in trades or quotes).
    pub fn subscribe_requests_for(&self, symbol: &str) -> usize {
        self.frames().iter().filter(|v| v["action"] == "subscribe" && names(v, symbol)).count()
    }

    /// How many `unsubscribe` frames named `symbol`.
    pub fn unsubscribe_requests_for(&self, symbol: &str) -> usize {
        self.frames().iter().filter(|v| v["action"] == "unsubscribe" && names(v, symbol)).count()
    }

    /// Whether the mock ever sent data for `symbol` stamped `ms` (as milliseconds).
    pub fn sent_at(&self, symbol: &str, ms: i64) -> bool {
        self.state.sent_ms.lock().map(|s| s.iter().any(|(sym, t)| sym == symbol && *t == ms)).unwrap_or(false)
    }
}

fn names(frame: &Value, symbol: &str) -> bool {
    ["trades", "quotes"].iter().any(|ch| frame[ch].as_array().is_some_and(|l| l.iter().any(|s| s == symbol)))
}

/// A stock trade, keys in the documented order (`T` first).
#[derive(Serialize)]
struct Trade<'a> {
    #[serde(rename = "T")]
    kind: &'static str,
    i: u64,
    #[serde(rename = "S")]
    symbol: &'a str,
    x: &'static str,
    p: f64,
    s: u32,
    t: &'a str,
    c: [&'static str; 1],
    z: &'static str,
}

/// A stock quote, keys in the documented order.
#[derive(Serialize)]
struct Quote<'a> {
    #[serde(rename = "T")]
    kind: &'static str,
    #[serde(rename = "S")]
    symbol: &'a str,
    bx: &'static str,
    bp: f64,
    bs: u32,
    ax: &'static str,
    ap: f64,
    #[serde(rename = "as")]
    ask_size: u32,
    t: &'a str,
    c: [&'static str; 1],
    z: &'static str,
}

/// The full-set acknowledgement, keys in the documented order. Corrections and cancel errors follow trades, as
/// Alpaca subscribes them automatically.
#[derive(Serialize)]
struct Subscription<'a> {
    #[serde(rename = "T")]
    kind: &'static str,
    trades: &'a BTreeSet<String>,
    quotes: &'a BTreeSet<String>,
    bars: [&'static str; 0],
    #[serde(rename = "updatedBars")]
    updated_bars: [&'static str; 0],
    #[serde(rename = "dailyBars")]
    daily_bars: [&'static str; 0],
    statuses: [&'static str; 0],
    lulds: [&'static str; 0],
    corrections: &'a BTreeSet<String>,
    #[serde(rename = "cancelErrors")]
    cancel_errors: &'a BTreeSet<String>,
}

fn control(value: Value) -> String {
    // `T` sorts before every lower-case key, so serde_json's ordered maps put it first here.
    Value::Array(vec![value]).to_string()
}

fn error(code: u16, msg: &str) -> String {
    control(json!({"T": "error", "code": code, "msg": msg}))
}

/// Now as RFC 3339 with nanoseconds (`2024-07-24T07:56:53.639713735Z`) and as the milliseconds it stands for.
fn now_rfc3339() -> (String, i64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(now.as_secs()).unwrap_or(0);
    // Never a round millisecond, so a parser that drops the fraction or rounds is caught.
    let nanos = now.subsec_millis() * 1_000_000 + 123_456;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let text = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z", rem / 3600, rem % 3600 / 60, rem % 60);
    (text, secs * 1000 + i64::from(nanos / 1_000_000))
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// One tick's batch: a quote and a trade for every subscribed symbol.
fn data(state: &AlpacaState, subs: &Subs, n: &mut u64) -> Option<String> {
    let (t, ms) = now_rfc3339();
    let mut items = Vec::new();
    for symbol in &subs.quotes {
        let q = Quote {
            kind: "q",
            symbol,
            bx: "V",
            bp: BID,
            bs: 1,
            ax: "V",
            ap: ASK,
            ask_size: 2,
            t: &t,
            c: ["R"],
            z: "C",
        };
        items.push(serde_json::to_string(&q).ok()?);
    }
    if !state.no_trades.load(Ordering::SeqCst) {
        for symbol in &subs.trades {
            *n += 1;
            let p = 100.0 + (*n % 50) as f64 / 100.0;
            let trade = Trade { kind: "t", i: *n, symbol, x: "V", p, s: 100, t: &t, c: ["@"], z: "C" };
            items.push(serde_json::to_string(&trade).ok()?);
        }
    }
    if items.is_empty() {
        return None;
    }
    if let Ok(mut sent) = state.sent_ms.lock() {
        for symbol in subs.symbols() {
            sent.push_back((symbol, ms));
        }
        while sent.len() > SENT_MEMORY {
            sent.pop_front();
        }
    }
    // Structs keep their field order, so each message reads as documented: `T` first.
    Some(format!("[{}]", items.join(",")))
}

fn list(msg: &Value, channel: &str) -> Vec<String> {
    msg[channel]
        .as_array()
        .map(|l| l.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn serve(mut conn: MockConn, state: Arc<AlpacaState>) {
    let id = state.next_conn.fetch_add(1, Ordering::SeqCst);
    let content_type = conn.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    state.content_types.lock().map(|mut c| c.push(content_type)).ok();
    state.subscribed.lock().map(|mut s| s.push((id, Subs::default()))).ok();
    let with_subs = |f: &mut dyn FnMut(&mut Subs)| {
        if let Ok(mut all) = state.subscribed.lock() {
            if let Some((_, s)) = all.iter_mut().find(|(i, _)| *i == id) {
                f(s);
            }
        }
    };
    if !state.no_greeting.load(Ordering::SeqCst) {
        conn.send(control(json!({"T": "success", "msg": "connected"}))).await;
    }
    let auth_deadline =
        tokio::time::Instant::now() + Duration::from_millis(state.auth_timeout_ms.load(Ordering::SeqCst));
    let mut authed = false;
    let mut n = 0u64;
    let mut tick = tokio::time::interval(TICK);
    loop {
        let incoming = tokio::select! {
            _ = tokio::time::sleep_until(auth_deadline), if !authed => {
                conn.send(error(404, "auth timeout")).await;
                break;
            }
            _ = tick.tick() => {
                if !authed || state.silent.load(Ordering::SeqCst) {
                    continue;
                }
                let mut subs = Subs::default();
                with_subs(&mut |s| subs = s.clone());
                if let Some(batch) = data(&state, &subs, &mut n) {
                    if !conn.send(batch).await {
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
        if state.silent.load(Ordering::SeqCst) {
            continue;
        }
        let msg = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        let (reply, fatal) = match msg["action"].as_str() {
            Some("auth") => {
                state.auths.fetch_add(1, Ordering::SeqCst);
                let valid = |m: &Mutex<String>, field: &str| m.lock().is_ok_and(|v| msg[field] == v.as_str());
                if authed {
                    (error(403, "already authenticated"), false)
                } else if !valid(&state.key, "key") || !valid(&state.secret, "secret") {
                    (error(402, "auth failed"), true)
                } else if state
                    .refuse_sessions
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                    || {
                        let max = state.max_sessions.load(Ordering::SeqCst);
                        max > 0 && state.sessions.load(Ordering::SeqCst) >= max
                    }
                {
                    (error(406, "connection limit exceeded"), true)
                } else {
                    authed = true;
                    state.sessions.fetch_add(1, Ordering::SeqCst);
                    state.auths_ok.fetch_add(1, Ordering::SeqCst);
                    (control(json!({"T": "success", "msg": "authenticated"})), false)
                }
            }
            Some(action @ ("subscribe" | "unsubscribe")) if authed => {
                let (trades, quotes) = (list(&msg, "trades"), list(&msg, "quotes"));
                let malformed = state
                    .malformed
                    .lock()
                    .map(|m| trades.iter().chain(&quotes).any(|s| m.contains(s)))
                    .unwrap_or(false);
                let mut current = Subs::default();
                with_subs(&mut |s| current = s.clone());
                let mut next = current.clone();
                if action == "subscribe" {
                    next.trades.extend(trades);
                    next.quotes.extend(quotes);
                } else {
                    next.trades.retain(|s| !trades.contains(s));
                    next.quotes.retain(|s| !quotes.contains(s));
                }
                let limit = state.symbol_limit.load(Ordering::SeqCst);
                if action == "subscribe" && malformed {
                    (error(400, "invalid syntax"), false)
                } else if limit > 0 && next.symbols().len() > limit && next.symbols().len() > current.symbols().len() {
                    (error(405, "symbol limit exceeded"), false)
                } else {
                    with_subs(&mut |s| *s = next.clone());
                    let ack = Subscription {
                        kind: "subscription",
                        trades: &next.trades,
                        quotes: &next.quotes,
                        bars: [],
                        updated_bars: [],
                        daily_bars: [],
                        statuses: [],
                        lulds: [],
                        corrections: &next.trades,
                        cancel_errors: &next.trades,
                    };
                    (serde_json::to_string(&[ack]).unwrap_or_default(), false)
                }
            }
            Some("subscribe" | "unsubscribe") => (error(401, "not authenticated"), false),
            _ => (error(400, "invalid syntax"), false),
        };
        if !conn.send(reply).await {
            break;
        }
        if fatal && state.close_on_error.load(Ordering::SeqCst) {
            break;
        }
    }
    if authed {
        state.sessions.fetch_sub(1, Ordering::SeqCst);
    }
    state.subscribed.lock().map(|mut s| s.retain(|(i, _)| *i != id)).ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_with_nanoseconds() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_928), (2024, 7, 24));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let (text, ms) = now_rfc3339();
        assert_eq!(text.len(), "2024-07-24T07:56:53.639713735Z".len(), "{text}");
        assert!(text.ends_with("123456Z") && ms > 1_600_000_000_000, "{text} {ms}");
    }

    #[test]
    fn data_messages_put_t_first() {
        let state = AlpacaState::new("k", "s");
        let subs = Subs { trades: ["AAPL".to_owned()].into(), quotes: ["AAPL".to_owned()].into() };
        let batch = data(&state, &subs, &mut 0).unwrap();
        assert!(batch.starts_with(r#"[{"T":"q","S":"AAPL","#), "{batch}");
        assert!(batch.contains(r#"},{"T":"t","i":1,"S":"AAPL","x":"V","p":100.01,"#), "{batch}");
        let parsed: Value = serde_json::from_str(&batch).unwrap();
        assert_eq!(parsed[1]["p"], 100.01);
        assert_eq!(parsed[0]["as"], 2);
    }
}
