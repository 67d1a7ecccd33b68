//! JSON bodies of the relay's REST endpoints (`/api/*`). Like [`crate::protocol`], these are wire types: the
//! relay serialises them and the dashboard reads them.

use serde::{Deserialize, Serialize};

use crate::protocol::{ErrorCode, ProviderState, Quote};
use crate::symbol::Symbol;

/// Body of every non-2xx response: the same codes as the WebSocket `error` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

/// `GET /api/quotes?symbols=A,B`: cached last values. Asking for a symbol also keeps it subscribed upstream
/// for a while (a lease), so polling clients get fresh values even when no socket subscribes to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotesResponse {
    pub quotes: Vec<Quote>,
    /// Valid symbols with no value yet (just subscribed upstream; poll again).
    #[serde(default)]
    pub pending: Vec<Symbol>,
}

/// One recorded tick in `/api/history`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub ts: i64,
    pub price: f64,
}

/// A one-minute OHLC candle built from ticks. `start` is the minute's first millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    pub start: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Number of ticks that went into the candle.
    pub ticks: u32,
}

/// `GET /api/history/{symbol}`: recent ticks (oldest first) and one-minute candles (oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryResponse {
    pub symbol: Symbol,
    pub ticks: Vec<Tick>,
    pub candles: Vec<Candle>,
}

/// One provider in `/api/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderStatus {
    pub name: String,
    pub state: ProviderState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub since: i64,
    /// Instruments this relay currently has subscribed on the provider's upstream connection.
    pub subscriptions: usize,
}

/// `GET /api/status`: what the relay is doing right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub server: String,
    pub protocol: u32,
    pub uptime_s: u64,
    pub providers: Vec<ProviderStatus>,
    /// Connected clients (WebSocket and SSE).
    pub clients: usize,
    /// Symbols with at least one subscriber (client or REST lease).
    pub topics: usize,
    /// Sum of `providers[].subscriptions`.
    pub upstream_subscriptions: usize,
    /// Quotes received from providers per second (last second).
    pub messages_in_per_s: f64,
    /// Quotes delivered to clients per second (last second).
    pub messages_out_per_s: f64,
    pub messages_in_total: u64,
    pub messages_out_total: u64,
    /// Quote updates replaced by a newer one before a slow client could take them.
    pub conflated_total: u64,
    /// The embedded store, when the relay has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreInfo>,
}

/// The embedded store's health in `/api/status` and `/api/recordings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreInfo {
    /// Whether ticks and events are being recorded (off with `--no-record`).
    pub recording: bool,
    /// Records written since the relay started.
    pub recorded_total: u64,
    /// Records dropped because the disk could not keep up or was full (live delivery is unaffected).
    pub dropped_total: u64,
    /// Why recording is impaired, while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// Bytes the database uses.
    pub bytes: u64,
}

/// Where recorded data exists for one symbol or channel (receive times, ms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRange {
    pub symbol: Symbol,
    pub first: i64,
    pub last: i64,
}

/// `GET /api/recordings`: what can be replayed or exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingsResponse {
    pub store: StoreInfo,
    pub recorded: Vec<RecordedRange>,
}

/// One connected client in `GET /api/clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientStatus {
    pub id: u64,
    /// `ws` or `sse`.
    pub transport: String,
    pub symbols: usize,
    /// Quotes delivered to this client.
    pub delivered: u64,
    /// Quote updates this client missed because a newer one replaced them (it was reading too slowly).
    pub conflated: u64,
    /// Frames waiting in this client's bounded queue.
    pub queued_frames: usize,
    pub connected_ms: i64,
}

/// `GET /api/clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientsResponse {
    pub clients: Vec<ClientStatus>,
}
