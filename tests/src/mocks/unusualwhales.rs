//! Unusual Whales mock (`docs/providers/unusualwhales.md`): `/socket?token=` checked at the upgrade (a wrong token gets HTTP 401 with the
//! observed body; the status is a switch), no greeting, `{"channel":C,"msg_type":"join"}` answered with
//! `[C,{"response":{},"status":"ok"}]`, `leave` likewise (UNVERIFIED ack, switchable), and `[C, payload]` data
//! frames every tick for each joined channel in the documented sample shapes (`price:T` with a string `close`,
//! `flow-alerts`, `gex:T`, `news`, `option_trades[:T]`). Channels it is told to refuse get a join failure in one
//! of two plausible shapes (the real one is UNVERIFIED). Protocol pings are answered by tungstenite (unless the
//! mock is `frozen`, a half-dead peer).
//!
//! The token is checked by the [`MockServer`] gate, before the upgrade; a bad one gets HTTP 401 (configurable)
//! with the body Unusual Whales is observed to send.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::http::HeaderMap;

use crate::mock::{query_param, Incoming, MockConn, MockServer};

/// How a refused join is answered (the real shape is UNVERIFIED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinFailure {
    /// `[C,{"response":{"reason":…},"status":"error"}]`, the Phoenix reply shape the ack suggests.
    Reply,
    /// `[C,{"status":"error","message":…}]`.
    Flat,
}

/// Switches and observations.
pub struct UwState {
    /// The token the upgrade must carry.
    pub token: String,
    /// Status for an upgrade with a wrong or missing token (observed: 401).
    pub bad_token_status: AtomicU16,
    /// Channels whose join fails.
    pub refuse: Mutex<HashSet<String>>,
    pub join_failure: Mutex<JoinFailure>,
    /// Acknowledge `leave` like `join` (UNVERIFIED upstream).
    pub leave_ack: AtomicBool,
    /// Stop sending data (replies and pongs still flow): a quiet market.
    pub silent: AtomicBool,
    /// Stop touching the socket at all, so not even pings are answered: a half-dead connection.
    pub frozen: AtomicBool,
    /// Joined channels per open connection (by connection number).
    pub joined: Mutex<Vec<(usize, BTreeSet<String>)>>,
    /// Tokens and User-Agents of upgrades that reached the protocol (good tokens only).
    pub tokens_seen: Mutex<Vec<String>>,
    pub user_agents: Mutex<Vec<String>>,
    /// Upgrade attempts at the front, refused ones included.
    /// Upgrades refused for their token.
    pub refused_tokens: AtomicUsize,
    next_conn: AtomicUsize,
}

/// A running Unusual Whales mock.
pub struct UnusualWhalesMock {
    /// The protocol server; its gate checks the token.
    pub ws: MockServer,
    pub state: Arc<UwState>,
}

const TICK: Duration = Duration::from_millis(50);

impl UnusualWhalesMock {
    /// Starts the mock accepting `token`.
    pub async fn start(token: &str) -> UnusualWhalesMock {
        let state = Arc::new(UwState {
            token: token.to_owned(),
            bad_token_status: AtomicU16::new(401),
            refuse: Mutex::default(),
            join_failure: Mutex::new(JoinFailure::Reply),
            leave_ack: AtomicBool::new(true),
            silent: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            joined: Mutex::default(),
            tokens_seen: Mutex::default(),
            user_agents: Mutex::default(),
            refused_tokens: AtomicUsize::new(0),
            next_conn: AtomicUsize::new(0),
        });
        let (s, g) = (state.clone(), state.clone());
        let gate = move |path: &str, _: &HeaderMap| {
            if query_param(path, "token").as_deref() == Some(g.token.as_str()) {
                return None;
            }
            g.refused_tokens.fetch_add(1, Ordering::SeqCst);
            let body = "Contact support@unusualwhales.com for more information".to_owned();
            Some((g.bad_token_status.load(Ordering::SeqCst), body))
        };
        let ws = MockServer::start_gated(gate, move |conn| serve(conn, s.clone())).await;
        UnusualWhalesMock { ws, state }
    }

    /// The streaming URL to give the relay (`--uw-ws-url`); the relay adds `?token=`.
    pub fn ws_url(&self) -> String {
        self.ws.ws_url("/socket")
    }

    /// Upgrade attempts so far, refused ones included.
    pub fn attempts(&self) -> usize {
        self.ws.attempts()
    }

    /// Union of channels joined on all open connections.
    pub fn joined(&self) -> BTreeSet<String> {
        self.state.joined.lock().map(|j| j.iter().flat_map(|(_, set)| set.clone()).collect()).unwrap_or_default()
    }

    /// Channels joined on the newest open connection.
    pub fn joined_on_latest(&self) -> BTreeSet<String> {
        self.state
            .joined
            .lock()
            .map(|j| j.iter().max_by_key(|(id, _)| *id).map(|(_, set)| set.clone()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// How many `msg_type` (`join`/`leave`) frames named `channel`.
    pub fn requests(&self, msg_type: &str, channel: &str) -> usize {
        self.ws
            .received()
            .iter()
            .filter_map(|f| serde_json::from_str::<Value>(f).ok())
            .filter(|v| v["msg_type"] == msg_type && v["channel"] == channel)
            .count()
    }

    /// Makes joins of `channel` fail.
    pub fn refuse(&self, channel: &str) {
        self.state.refuse.lock().map(|mut r| r.insert(channel.to_owned())).ok();
    }

    pub fn set_join_failure(&self, shape: JoinFailure) {
        self.state.join_failure.lock().map(|mut j| *j = shape).ok();
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A uuid-shaped id carrying the connection and sequence numbers, so tests can tell whose data they got.
fn id(conn: usize, n: u64) -> String {
    format!("00000000-0000-4000-8000-{:06}{:06}", conn % 1_000_000, n % 1_000_000)
}

/// One data payload for `channel`, in the reference's documented shape.
fn payload(channel: &str, conn: usize, n: u64) -> Option<Value> {
    let ms = now_ms();
    let (family, ticker) = channel.split_once(':').map_or((channel, ""), |(f, t)| (f, t));
    Some(match family {
        "price" => {
            json!({"close": format!("{:.2}", 562.0 + (n % 100) as f64 / 100.0), "time": ms, "vol": 6_015_555 + n})
        }
        "flow-alerts" => json!({
            "rule_id": "5ce5ec11-087c-4c00-b164-08106b015856", "rule_name": "RepeatedHitsDescendingFill",
            "ticker": "DIA", "option_chain": "DIA241018C00415000", "underlying_price": 415.981, "volume": 106,
            "total_size": 50, "total_premium": 36466, "total_ask_side_prem": 36466, "total_bid_side_prem": 0,
            "start_time": ms - 100, "end_time": ms, "url": "", "price": 7.3, "has_multileg": false,
            "has_sweep": false, "has_floor": false, "open_interest": 575, "all_opening_trades": false,
            "id": id(conn, n), "has_singleleg": true, "volume_oi_ratio": 0,
            "trade_ids": ["417f0cd6-09ae-4d43-8542-38557bb713aa", "4af4c646-4b21-4a27-8326-db7b0698d3d8"],
            "trade_count": 7, "expiry_count": 1, "executed_at": ms, "ask_vol": 52, "bid_vol": 49,
            "no_side_vol": 0, "mid_vol": 5, "multi_vol": 0, "stock_multi_vol": 0,
            "upstream_condition_details": ["auto", "slan"], "exchanges": ["XCBO", "MPRL"], "bid": "7.15", "ask": "7.3"
        }),
        "gex" => json!({
            "ticker": ticker, "timestamp": ms, "gamma_per_one_percent_move_oi": "-262444980.31",
            "delta_per_one_percent_move_oi": "", "charm_per_one_percent_move_oi": "-1677926539943.05",
            "vanna_per_one_percent_move_oi": "2842602508.57", "price": "562.86",
            "gamma_per_one_percent_move_vol": "-934307209.58", "delta_per_one_percent_move_vol": "",
            "charm_per_one_percent_move_vol": "-556207588704.10", "vanna_per_one_percent_move_vol": "128814703.59",
            "gamma_per_one_percent_move_dir": "-9372185.61", "charm_per_one_percent_move_dir": "-2055997560.50",
            "vanna_per_one_percent_move_dir": "-6220855.09"
        }),
        "news" => json!({
            "headline": format!("US Energy Secretary foresees many more LNG export deals signed ({n})"),
            "timestamp": "2025-06-11T21:40:56Z", "source": "social-media", "tickers": [], "is_trump_ts": false
        }),
        "option_trades" => json!({
            "id": id(conn, n), "underlying_symbol": if ticker.is_empty() { "UVIX" } else { ticker },
            "executed_at": ms, "nbbo_bid": "0.01", "nbbo_ask": "0.09", "size": 1, "price": "0.01",
            "option_symbol": "UVIX240920C00025000", "created_at": ms, "report_flags": [],
            "tags": ["bid_side", "bearish", "etf"], "expiry": "2024-09-20", "option_type": "call",
            "open_interest": 410, "strike": "25.0000000000", "premium": "1.00", "volume": 105,
            "underlying_price": "4.9261", "trade_code": "slan", "exchange": "XCBO"
        }),
        _ => return None,
    })
}

async fn serve(mut conn: MockConn, state: Arc<UwState>) {
    let id = state.next_conn.fetch_add(1, Ordering::SeqCst);
    state.tokens_seen.lock().map(|mut t| t.push(conn.query("token").unwrap_or_default())).ok();
    let ua = conn.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    state.user_agents.lock().map(|mut u| u.push(ua)).ok();
    state.joined.lock().map(|mut j| j.push((id, BTreeSet::new()))).ok();
    let with_set = |state: &UwState, f: &mut dyn FnMut(&mut BTreeSet<String>)| {
        if let Ok(mut all) = state.joined.lock() {
            if let Some((_, s)) = all.iter_mut().find(|(i, _)| *i == id) {
                f(s);
            }
        }
    };
    let mut n = 0u64;
    let mut tick = tokio::time::interval(TICK);
    let mut cut = conn.cut_signal();
    'conn: loop {
        if state.frozen.load(Ordering::SeqCst) {
            // Neither read nor write: tungstenite answers pings only while the socket is read.
            tokio::select! {
                _ = cut.recv() => break,
                _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
            }
        }
        let incoming = tokio::select! {
            _ = tick.tick() => {
                if state.silent.load(Ordering::SeqCst) {
                    continue;
                }
                let mut channels = BTreeSet::new();
                with_set(&state, &mut |s| channels = s.clone());
                for channel in channels {
                    n += 1;
                    let Some(data) = payload(&channel, id, n) else { continue };
                    if !conn.send(json!([channel, data]).to_string()).await {
                        break 'conn;
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
        let Some(channel) = msg["channel"].as_str().map(str::to_owned) else { continue };
        let ok = json!([channel, {"response": {}, "status": "ok"}]);
        let reply = match msg["msg_type"].as_str() {
            Some("join") if state.refuse.lock().map(|r| r.contains(&channel)).unwrap_or(false) => {
                let reason = format!("not entitled to {channel}");
                match state.join_failure.lock().map(|j| *j).unwrap_or(JoinFailure::Reply) {
                    JoinFailure::Reply => json!([channel, {"response": {"reason": reason}, "status": "error"}]),
                    JoinFailure::Flat => json!([channel, {"status": "error", "message": reason}]),
                }
            }
            Some("join") => {
                with_set(&state, &mut |s| {
                    s.insert(channel.clone());
                });
                ok
            }
            Some("leave") => {
                with_set(&state, &mut |s| {
                    s.remove(&channel);
                });
                if !state.leave_ack.load(Ordering::SeqCst) {
                    continue;
                }
                ok
            }
            _ => continue,
        };
        if !conn.send(reply.to_string()).await {
            break;
        }
    }
    state.joined.lock().map(|mut j| j.retain(|(i, _)| *i != id)).ok();
}
