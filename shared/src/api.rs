//! JSON bodies of the relay's REST endpoints (`/api/*`). Like [`crate::protocol`], these are wire types: the
//! relay serialises them and the dashboard reads them.

use serde::{Deserialize, Serialize};

use crate::protocol::{ErrorCode, ProviderState, Quote};
use crate::symbol::Symbol;

/// Body of every non-2xx response: the same codes as the WebSocket `error` message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

crate::json::map_deserialize!(ApiError, required { code "code": ErrorCode, message "message": String } optional {});

/// `GET /api/quotes?symbols=A,B`: cached last values. Asking for a symbol also keeps it subscribed upstream
/// for a while (a lease), so polling clients get fresh values even when no socket subscribes to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct QuotesResponse {
    pub quotes: Vec<Quote>,
    /// Valid symbols with no value yet (just subscribed upstream; poll again).
    #[serde(default)]
    pub pending: Vec<Symbol>,
}

crate::json::map_deserialize!(QuotesResponse, required { quotes "quotes": Vec<Quote> } optional { pending "pending": Vec<Symbol> });

/// One recorded tick in `/api/history`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct Tick {
    pub ts: i64,
    pub price: f64,
}

crate::json::map_deserialize!(Tick, required { ts "ts": i64, price "price": f64 } optional {});

/// An OHLC candle built from ticks. `start` is the first millisecond of its period (a minute unless the response
/// says another [`Timeframe`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct Candle {
    pub start: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Number of ticks that went into the candle.
    pub ticks: u32,
    /// Quantity traded inside the candle, where the provider reports volume (0 otherwise).
    #[serde(default)]
    pub volume: f64,
}

crate::json::map_deserialize!(Candle, required { start "start": i64, open "open": f64, high "high": f64, low "low": f64, close "close": f64, ticks "ticks": u32 } optional { volume "volume": f64 });

/// The period of the candles in `GET /api/history/{symbol}?tf=`. Periods are aligned to the Unix epoch (UTC), so
/// a day runs from 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Timeframe {
    #[default]
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "1d", alias = "1D")]
    D1,
}

impl Timeframe {
    /// Every timeframe, shortest first.
    pub const ALL: [Timeframe; 5] = [Timeframe::M1, Timeframe::M5, Timeframe::M15, Timeframe::H1, Timeframe::D1];

    /// Its length in milliseconds.
    pub fn ms(self) -> i64 {
        const MINUTE: i64 = 60_000;
        match self {
            Timeframe::M1 => MINUTE,
            Timeframe::M5 => 5 * MINUTE,
            Timeframe::M15 => 15 * MINUTE,
            Timeframe::H1 => 60 * MINUTE,
            Timeframe::D1 => 24 * 60 * MINUTE,
        }
    }

    /// The wire name: `1m`, `5m`, `15m`, `1h`, `1d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Timeframe::M1 => "1m",
            Timeframe::M5 => "5m",
            Timeframe::M15 => "15m",
            Timeframe::H1 => "1h",
            Timeframe::D1 => "1d",
        }
    }

    /// Reads a wire name (`1D` is accepted for a day; minutes are lower-case only, `1M` would read as a month).
    pub fn parse(text: &str) -> Option<Timeframe> {
        match text {
            "1D" => Some(Timeframe::D1),
            _ => Timeframe::ALL.into_iter().find(|tf| tf.as_str() == text),
        }
    }

    /// The first millisecond of the period that holds `ts_ms`.
    pub fn bucket(self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.ms()).saturating_mul(self.ms())
    }
}

impl std::fmt::Display for Timeframe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /api/history/{symbol}?tf=&from=&to=&limit=`: recent ticks (oldest first) and candles of `tf` (oldest
/// first).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct HistoryResponse {
    pub symbol: Symbol,
    pub ticks: Vec<Tick>,
    pub candles: Vec<Candle>,
    /// The period of `candles`.
    #[serde(default)]
    pub tf: Timeframe,
}

crate::json::map_deserialize!(HistoryResponse, required { symbol "symbol": Symbol, ticks "ticks": Vec<Tick>, candles "candles": Vec<Candle> } optional { tf "tf": Timeframe });

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
    /// What the relay knows of the provider's instruments, when the provider has a catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogInfo>,
}

/// One provider's instrument catalog in `/api/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogInfo {
    /// Instruments known.
    pub instruments: usize,
    /// Whether subscribes are checked against it (an unknown symbol refused with `unknown_symbol`); the simulator's
    /// catalog is for search only, as it quotes any well-formed ticker.
    pub validates: bool,
    /// When it was last loaded (ms since epoch); absent until the first load succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<i64>,
    /// Why the last load failed, while it does: symbols then pass unchecked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The kind of instrument a search result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum InstrumentClass {
    Equity,
    Crypto,
    Forex,
    /// A non-price event channel (options flow, news).
    Channel,
}

crate::json::names_deserialize!(InstrumentClass { Equity = "equity", Crypto = "crypto", Forex = "forex", Channel = "channel" });

impl InstrumentClass {
    pub fn as_str(self) -> &'static str {
        match self {
            InstrumentClass::Equity => "equity",
            InstrumentClass::Crypto => "crypto",
            InstrumentClass::Forex => "forex",
            InstrumentClass::Channel => "channel",
        }
    }

    pub fn parse(text: &str) -> Option<InstrumentClass> {
        [InstrumentClass::Equity, InstrumentClass::Crypto, InstrumentClass::Forex, InstrumentClass::Channel]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// One instrument found by `GET /api/symbols`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct SymbolMatch {
    /// What to subscribe to get it: the bare ticker when the relay's routes send it to this provider anyway,
    /// else `provider:TICKER`.
    pub symbol: String,
    pub ticker: String,
    pub name: String,
    pub class: InstrumentClass,
    pub provider: String,
}

crate::json::map_deserialize!(SymbolMatch, required { symbol "symbol": String, ticker "ticker": String, name "name": String, class "class": InstrumentClass, provider "provider": String } optional {});

/// `GET /api/symbols?q=`: instruments matching the query, best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct SymbolsResponse {
    pub results: Vec<SymbolMatch>,
}

crate::json::map_deserialize!(SymbolsResponse, required { results "results": Vec<SymbolMatch> } optional {});

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
    /// Where orders go, and whether that backend is reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerStatus>,
    /// Subscribed symbols whose provider has sent nothing for `NO_DATA_AFTER_SECS` (see the `no_data` message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_data: Vec<String>,
    /// Cluster mode (`REDIS_URL`): this node, the others, and who owns each provider's upstream connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

/// A relay node's view of its cluster in `/api/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This node's id.
    pub node: String,
    /// Whether this node's last Redis call succeeded. While it is down the node serves what it has cached.
    pub redis_up: bool,
    /// Nodes that said they were alive within the last 10 s, this one included.
    pub nodes: Vec<String>,
    pub providers: Vec<ClusterProviderStatus>,
    /// Reports this node published as an owner, received from other owners, and dropped as coming from a fenced
    /// ex-owner; catch-ups from the last values (after a gap, a new owner or a new subscription).
    pub published_total: u64,
    pub received_total: u64,
    pub stale_dropped_total: u64,
    pub catch_ups_total: u64,
}

/// Who holds one provider's upstream connection, as this node last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterProviderStatus {
    pub provider: String,
    /// The node holding the lease, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The owner's fencing token: it only ever increases, so a higher one means a later owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    /// Whether this node is the owner.
    pub this_node: bool,
    /// Time left on the lease when last seen, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_left_ms: Option<i64>,
    /// Instruments wanted by the live nodes (the union of their interest).
    pub interest: usize,
    /// On the owner: instruments subscribed upstream (the union, plus those lingering before unsubscribe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<usize>,
}

/// The trading backend in `/api/status`: the built-in paper broker, or a real broker and its connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct BrokerStatus {
    /// `paper` or the real broker's name (`alpaca`).
    pub name: String,
    /// Whether orders go to a market with real money (Alpaca's live endpoint).
    pub live_money: bool,
    /// `live` when orders can be placed and order updates arrive; `down` with a reason when the broker refused
    /// our credentials.
    pub state: ProviderState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the broker entered this state (ms since epoch).
    pub since: i64,
}

crate::json::map_deserialize!(BrokerStatus, required { name "name": String, live_money "live_money": bool, state "state": ProviderState, since "since": i64 } optional { detail "detail": Option<String> });

/// The embedded store's health in `/api/status` and `/api/recordings`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
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

crate::json::map_deserialize!(StoreInfo, required { recording "recording": bool, recorded_total "recorded_total": u64, dropped_total "dropped_total": u64, bytes "bytes": u64 } optional { degraded "degraded": Option<String> });

/// Where recorded data exists for one symbol or channel (receive times, ms).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct RecordedRange {
    pub symbol: Symbol,
    pub first: i64,
    pub last: i64,
}

crate::json::map_deserialize!(RecordedRange, required { symbol "symbol": Symbol, first "first": i64, last "last": i64 } optional {});

/// `GET /api/recordings`: what can be replayed or exported.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct RecordingsResponse {
    pub store: StoreInfo,
    pub recorded: Vec<RecordedRange>,
}

crate::json::map_deserialize!(RecordingsResponse, required { store "store": StoreInfo, recorded "recorded": Vec<RecordedRange> } optional {});

/// One connected client in `GET /api/clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientStatus {
    pub id: u64,
    /// `ws`, `ws+msgpack` (a WebSocket that negotiated MessagePack) or `sse`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeframes_round_trip_their_wire_names() {
        for tf in Timeframe::ALL {
            assert_eq!(Timeframe::parse(tf.as_str()), Some(tf));
            assert_eq!(serde_json::to_string(&tf).unwrap(), format!("\"{tf}\""));
        }
        assert_eq!(Timeframe::parse("1D"), Some(Timeframe::D1));
        assert_eq!(Timeframe::parse("1M"), None);
        assert_eq!(Timeframe::parse("2m"), None);
    }

    #[test]
    fn buckets_align_to_the_epoch_in_utc() {
        let t = 1_700_000_123_456; // 2023-11-14T22:15:23.456Z
        assert_eq!(Timeframe::M1.bucket(t), 1_700_000_100_000);
        assert_eq!(Timeframe::M15.bucket(t), 1_700_000_100_000);
        assert_eq!(Timeframe::H1.bucket(t), 1_699_999_200_000);
        assert_eq!(Timeframe::D1.bucket(t), 1_699_920_000_000);
        assert_eq!(Timeframe::H1.bucket(-1), -3_600_000);
        assert_eq!(Timeframe::D1.bucket(i64::MIN), i64::MIN, "saturates, never panics");
    }

    #[test]
    fn old_history_bodies_still_read() {
        let body =
            r#"{"symbol":"AAPL","ticks":[],"candles":[{"start":0,"open":1,"high":2,"low":0.5,"close":1.5,"ticks":3}]}"#;
        let h: HistoryResponse = serde_json::from_str(body).unwrap();
        assert_eq!((h.tf, h.candles[0].volume), (Timeframe::M1, 0.0));
    }
}
