//! Protocol messages (version 2). Every frame is one JSON object tagged by `"type"`, or the same object in
//! MessagePack on a WebSocket that negotiated [`MSGPACK_SUBPROTOCOL`].
//!
//! Client → relay: [`ClientMessage`]. Relay → client: [`ServerMessage`]. Optional fields are omitted when
//! absent (never sent as `null`), numbers are JSON numbers, and times are milliseconds since the Unix epoch.
//! Symbols inside client commands stay raw strings here so that one bad symbol in a list is rejected on its own
//! (with a [`Rejection`]) instead of failing the whole command.

use serde::{Deserialize, Serialize};

use crate::broker::{Account, Order, OrderReject, OrderRequest, Position, ReplaceRequest};
use crate::symbol::Symbol;

/// Sent in `hello.protocol`. Bumped when an existing message changes shape or a new capability set arrives.
/// Version 2 added continuity (`seq`, `epoch`, `resume`, `recovered`, `continuity`) and `max_hz`; every one of
/// those is optional on the wire, so a version 1 client keeps working unchanged.
pub const PROTOCOL_VERSION: u32 = 2;

/// What `hello.features` lists: the optional capabilities this relay speaks.
pub const FEATURES: [&str; 3] = ["resume", "max_hz", "msgpack"];

/// The WebSocket subprotocol (`Sec-WebSocket-Protocol`) that switches a connection to MessagePack: the relay
/// then sends every message as a binary frame holding the same message MessagePack-encoded (maps with field
/// names), and also reads binary frames in MessagePack. JSON text frames remain the default, and keep being read
/// from every client.
pub const MSGPACK_SUBPROTOCOL: &str = "hamster.msgpack";

/// Echo of the client's optional `id`, so replies can be matched to commands. Numbers and strings are both
/// accepted and echoed back exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RequestId {
    Num(u64),
    Str(String),
}

/// Reads what `#[serde(untagged)]` read (a non-negative integer, else text: a string, or bytes that are UTF-8),
/// with its error for anything else, but straight from the value: the derive copies it into serde's private
/// buffer first, whose code was a few KB of the dashboard's wasm for this one type.
impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RequestId, D::Error> {
        d.deserialize_any(RequestIdVisitor)
    }
}

struct RequestIdVisitor;

fn unmatched<E: serde::de::Error>() -> E {
    E::custom("data did not match any variant of untagged enum RequestId")
}

impl<'de> serde::de::Visitor<'de> for RequestIdVisitor {
    type Value = RequestId;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a non-negative integer or a string")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RequestId, E> {
        Ok(RequestId::Num(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RequestId, E> {
        u64::try_from(v).map(RequestId::Num).map_err(|_| unmatched())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RequestId, E> {
        Ok(RequestId::Str(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RequestId, E> {
        Ok(RequestId::Str(v))
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<RequestId, E> {
        std::str::from_utf8(v).map(|s| RequestId::Str(s.to_owned())).map_err(|_| unmatched())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<RequestId, E> {
        String::from_utf8(v).map(RequestId::Str).map_err(|_| unmatched())
    }

    // Everything else is no variant, with the untagged derive's message.
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<RequestId, E> {
        Err(unmatched())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<RequestId, E> {
        Err(unmatched())
    }

    fn visit_char<E: serde::de::Error>(self, _: char) -> Result<RequestId, E> {
        Err(unmatched())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<RequestId, E> {
        Err(unmatched())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<RequestId, E> {
        Err(unmatched())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, _: D) -> Result<RequestId, D::Error> {
        Err(unmatched())
    }

    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, _: D) -> Result<RequestId, D::Error> {
        Err(unmatched())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<RequestId, A::Error> {
        Err(unmatched())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<RequestId, A::Error> {
        Err(unmatched())
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, _: A) -> Result<RequestId, A::Error> {
        Err(unmatched())
    }
}

/// A command from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Start receiving quotes for `symbols`. Answered by `subscribed`, then (for resumed symbols) a `recovered`
    /// batch and recovered `event`s, then a `snapshot` of cached values for the rest.
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        symbols: Vec<String>,
        /// The last update this client saw of some of `symbols`: the relay sends what it missed since.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
        /// At most this many updates per second per symbol of this request (the latest value always arrives
        /// within one interval); absent means every update. Subscribing again changes it without touching the
        /// upstream subscription.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_hz: Option<f64>,
    },
    /// Stop receiving quotes for `symbols`. Answered by `unsubscribed`.
    Unsubscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        symbols: Vec<String>,
    },
    /// Application-level liveness check (browsers cannot see WebSocket ping frames). Answered by `pong`.
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Plays a recorded range back to this connection only, replacing any replay it has running. Replayed quotes
    /// and events carry `replay:`-prefixed symbols, so they never mix with live data. Answered by `replay_state`.
    Replay {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Receive-time range to play, ms since the epoch, `from` inclusive, `to` exclusive.
        from: i64,
        to: i64,
        /// Recorded symbols and channels to play (as recorded, e.g. `AAPL`, `FLOW-ALERTS`).
        symbols: Vec<String>,
        /// Playback speed: 1, 2, 5, 10, 50 … times real time; 0 plays as fast as the connection reads.
        #[serde(default = "default_speed")]
        speed: f64,
    },
    /// Controls this connection's replay. Answered by `replay_state`.
    ReplayControl {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        action: ReplayAction,
        /// New speed, with `action: "speed"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speed: Option<f64>,
        /// Where to continue from (receive time, ms), with `action: "seek"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<i64>,
    },
    /// Places an order on the caller's account (Alpaca's field names). Answered by `order` (and later `order`s
    /// for every status change, to `subscribe_account`ers), or `order_rejected`.
    PlaceOrder {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        order: Box<OrderRequest>,
    },
    /// Cancels a working order. Answered by `order` (status `canceled`) or `order_rejected`.
    CancelOrder {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        order_id: String,
    },
    /// Replaces a working order with a changed copy. Answered by `order` (the new one) or `order_rejected`.
    ReplaceOrder {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        order_id: String,
        change: ReplaceRequest,
    },
    /// Starts the caller's account stream: `account` and `positions` at once, then `order` on every status
    /// change, and `account`/`positions` on every change and marked to market at most once a second.
    SubscribeAccount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Stops the account stream.
    UnsubscribeAccount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Starts the caller's account over: open orders cancelled, positions closed without a trade, cash back to
    /// the starting amount (the ledger of fills is append-only and keeps the earlier ones). Answered by `account`,
    /// or `order_rejected` when the broker cannot do it (a real broker's account cannot be reset).
    ResetAccount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
}

/// How deeply a MessagePack command may nest: serde_json's limit for JSON commands.
#[cfg(feature = "msgpack")]
const MAX_NESTING: usize = 128;

fn default_speed() -> f64 {
    1.0
}

/// Where a client stopped: the relay's `epoch` (from `hello`) and, per symbol as the client subscribes it, the
/// `seq` of the last quote or event it received.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    pub epoch: u64,
    pub seqs: std::collections::BTreeMap<String, u64>,
}

/// How a resumed symbol was brought up to date, listed in `subscribed.continuity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct Continuity {
    pub symbol: Symbol,
    /// Updates sent again (in a `recovered` batch for quotes, as `event`s for channels), in order.
    pub recovered: u64,
    /// The relay no longer holds everything the client missed: it gets the latest value in the `snapshot`
    /// instead, and `missed` says how many updates it skipped when the relay can count them (same epoch).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gap: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
}

crate::json::map_deserialize!(Continuity, required { symbol "symbol": Symbol, recovered "recovered": u64 } optional { gap "gap": bool, missed "missed": Option<u64> });

/// What a `replay_control` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayAction {
    Pause,
    Resume,
    Speed,
    Seek,
    Stop,
}

/// Where a replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum ReplayPhase {
    Playing,
    Paused,
    /// Everything in the range was played.
    Ended,
    Stopped,
}

crate::json::names_deserialize!(ReplayPhase { Playing = "playing", Paused = "paused", Ended = "ended", Stopped = "stopped" });

/// Why a client frame could not be understood, with the `error` reply it deserves.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
    /// The command's `id`, when it could still be read, so the error can be matched to it.
    pub id: Option<RequestId>,
}

impl ClientMessage {
    /// Every `"type"` a client may send, as serde spells it (a test ties the two together).
    pub const KINDS: [&'static str; 11] = [
        "subscribe",
        "unsubscribe",
        "ping",
        "replay",
        "replay_control",
        "place_order",
        "cancel_order",
        "replace_order",
        "subscribe_account",
        "unsubscribe_account",
        "reset_account",
    ];

    /// The `"type"` tag of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::Replay { .. } => "replay",
            ClientMessage::ReplayControl { .. } => "replay_control",
            ClientMessage::PlaceOrder { .. } => "place_order",
            ClientMessage::CancelOrder { .. } => "cancel_order",
            ClientMessage::ReplaceOrder { .. } => "replace_order",
            ClientMessage::SubscribeAccount { .. } => "subscribe_account",
            ClientMessage::UnsubscribeAccount { .. } => "unsubscribe_account",
            ClientMessage::ResetAccount { .. } => "reset_account",
        }
    }

    /// Parses one text frame, telling malformed JSON, an unknown or missing `type`, and a known type with bad
    /// fields apart, each with its own [`ErrorCode`].
    pub fn parse(text: &str) -> Result<ClientMessage, ParseError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError {
            code: ErrorCode::BadJson,
            message: format!("not valid JSON: {e}"),
            id: None,
        })?;
        ClientMessage::from_value(value)
    }

    #[cfg(feature = "msgpack")]
    /// Parses one binary frame of a connection that negotiated [`MSGPACK_SUBPROTOCOL`]: the same map, with the
    /// same field names and the same error codes as [`ClientMessage::parse`], except that input which is not
    /// MessagePack (or holds what JSON cannot, such as binary strings or non-string keys) is `bad_msgpack`.
    pub fn parse_msgpack(bytes: &[u8]) -> Result<ClientMessage, ParseError> {
        let bad = |message: String| ParseError { code: ErrorCode::BadMsgpack, message, id: None };
        let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
        // The nesting serde_json allows: rmp-serde's own default (1024) overflows a small stack first.
        de.set_max_depth(MAX_NESTING);
        let value = serde_json::Value::deserialize(&mut de)
            .map_err(|e| bad(format!("not valid MessagePack for this protocol: {e}")))?;
        if de.position() != bytes.len() as u64 {
            return Err(bad(format!("{} bytes after the message", bytes.len() as u64 - de.position())));
        }
        ClientMessage::from_value(value)
    }

    #[cfg(feature = "msgpack")]
    /// Encodes a command as MessagePack (a map with field names, like its JSON).
    pub fn to_msgpack(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    /// Reads a command already decoded into a tree, telling an unknown or missing `type` from bad fields.
    fn from_value(value: serde_json::Value) -> Result<ClientMessage, ParseError> {
        let id = value.get("id").and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok());
        let kind = match value.get("type") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            Some(_) | None => {
                return Err(ParseError {
                    code: ErrorCode::UnknownType,
                    message: "message must be a JSON object with a string \"type\"".into(),
                    id,
                })
            }
        };
        if !ClientMessage::KINDS.contains(&kind.as_str()) {
            return Err(ParseError {
                code: ErrorCode::UnknownType,
                message: format!("unknown message type {kind:?}; expected one of {}", ClientMessage::KINDS.join(", ")),
                id,
            });
        }
        serde_json::from_value(value).map_err(|e| ParseError {
            code: ErrorCode::BadMessage,
            message: format!("invalid {kind} message: {e}"),
            id,
        })
    }
}

/// A message from the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First frame on every connection.
    Hello {
        protocol: u32,
        /// Relay name and version, e.g. `hamster-relay/0.1.0`.
        server: String,
        /// The relay pings at this interval; a client that hears nothing (not even a `pong` to its own `ping`)
        /// for about twice this long should treat the connection as dead.
        heartbeat_ms: u64,
        providers: Vec<ProviderInfo>,
        /// Changes whenever the relay's sequence numbers restart (a relay restart): a `resume` from another epoch
        /// cannot be recovered and is answered with a gap.
        #[serde(default)]
        epoch: u64,
        /// Optional capabilities, e.g. `resume`, `max_hz`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        features: Vec<String>,
    },
    /// Reply to `subscribe`: the canonical symbols now subscribed and those refused, each with a reason.
    Subscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        symbols: Vec<Symbol>,
        #[serde(default)]
        rejected: Vec<Rejection>,
        /// One entry per symbol the client asked to `resume`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        continuity: Vec<Continuity>,
    },
    /// Reply to `unsubscribe`: the canonical symbols no longer subscribed.
    Unsubscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        symbols: Vec<Symbol>,
    },
    /// Cached last values, sent right after `subscribed` for the symbols that have one.
    Snapshot { quotes: Vec<Quote> },
    /// Live updates, batched. With a slow connection only the latest quote per symbol is kept (conflation).
    Quotes { quotes: Vec<Quote> },
    /// Quotes a resuming client missed, in sequence order, sent after `subscribed` and before anything newer.
    Recovered { quotes: Vec<Quote> },
    /// An upstream provider's state changed. Also sent for every provider right after `hello`.
    Status {
        provider: String,
        state: ProviderState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// When the provider entered this state (ms since epoch).
        since: i64,
    },
    /// A command failed. The connection stays usable unless the code says otherwise.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
    },
    /// A non-price message on a channel the client subscribed to like a symbol (e.g. `uw:FLOW-ALERTS`, an
    /// options-flow alert feed). `payload` is the provider's message as JSON; events are never conflated.
    Event {
        /// The canonical channel as subscribed.
        channel: Symbol,
        payload: serde_json::Value,
        /// Event time (ms since epoch): the provider's when it gives one, else when the relay received it.
        ts: i64,
        /// Position in this channel's sequence within the relay's epoch (see `Quote::seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Symbols the relay subscribed upstream that have produced nothing for `after_ms`: the provider accepted
    /// them but sends no data (an instrument it does not actually carry, a closed market, a plan that excludes
    /// it). Informational: the subscription stays, and the first update that arrives ends it.
    NoData { symbols: Vec<Symbol>, after_ms: u64 },
    /// Reply to `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// The relay's clock when it answered (ms since epoch): with the ping's send and the pong's arrival
        /// times, a client estimates its clock offset from the relay (the NTP formula).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<i64>,
    },
    /// This connection's replay: sent in answer to `replay`/`replay_control`, about once a second while playing,
    /// and when it ends.
    ReplayState {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        phase: ReplayPhase,
        from: i64,
        to: i64,
        /// The receive time of what was played last (ms).
        position: i64,
        speed: f64,
        /// Quotes and events played so far.
        played: u64,
    },
    /// An order of the caller's account: the answer to an order command (with its `id`), and every status
    /// change on the account stream.
    Order {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        order: Box<Order>,
    },
    /// An order command refused, with the broker's code (`insufficient_buying_power`, `unknown_symbol`, …).
    OrderRejected {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(flatten)]
        reject: OrderReject,
    },
    /// The account stream's positions, marked to market.
    Positions { positions: Vec<Position> },
    /// The account stream's cash, equity and buying power, marked to market.
    Account { account: Account },
}

/// One provider as listed in `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct ProviderInfo {
    pub name: String,
    pub state: ProviderState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub since: i64,
}

crate::json::map_deserialize!(ProviderInfo, required { name "name": String, state "state": ProviderState, since "since": i64 } optional { detail "detail": Option<String> });

/// The state of an upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum ProviderState {
    /// Connected and streaming.
    Live,
    /// First connection attempt in progress.
    Connecting,
    /// Lost the connection and trying again; cached values are still served.
    Reconnecting,
    /// Serving, but impaired (e.g. a REST fallback instead of the stream).
    Degraded,
    /// Not serving (e.g. authentication failed, or not configured).
    Down,
}

crate::json::names_deserialize!(ProviderState { Live = "live", Connecting = "connecting", Reconnecting = "reconnecting", Degraded = "degraded", Down = "down" });

impl ProviderState {
    /// Every state, in order of health.
    pub const ALL: [ProviderState; 5] = [
        ProviderState::Live,
        ProviderState::Degraded,
        ProviderState::Connecting,
        ProviderState::Reconnecting,
        ProviderState::Down,
    ];

    /// The wire spelling, e.g. `reconnecting`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderState::Live => "live",
            ProviderState::Connecting => "connecting",
            ProviderState::Reconnecting => "reconnecting",
            ProviderState::Degraded => "degraded",
            ProviderState::Down => "down",
        }
    }
}

/// A symbol a `subscribe` could not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct Rejection {
    /// The symbol as the client sent it (it may not be valid, so it is not canonicalised).
    pub symbol: String,
    pub code: ErrorCode,
    pub message: String,
    /// For `unknown_symbol`: the provider's instruments closest to what was typed, best first (symbols to send
    /// as they are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
}

crate::json::map_deserialize!(Rejection, required { symbol "symbol": String, code "code": ErrorCode, message "message": String } optional { suggestions "suggestions": Vec<String> });

/// Stable machine-readable error codes. Clients match on these; the message is for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    BadJson,
    /// The frame has no `type`, or one the relay does not know.
    UnknownType,
    /// The `type` is known but its fields are wrong (missing, wrong type, unknown field).
    BadMessage,
    /// A symbol breaks the symbol rules.
    InvalidSymbol,
    /// A `provider:` prefix names no configured provider.
    UnknownProvider,
    /// Too many symbols in one command, or this connection would exceed its symbol limit.
    TooManySymbols,
    /// The upstream provider refused the symbol (unknown instrument, plan limit, …).
    ProviderRejected,
    /// The provider's catalog has no such instrument (refused before anything was sent upstream).
    UnknownSymbol,
    /// Too many commands too fast.
    RateLimited,
    /// A frame was larger than the relay accepts.
    MessageTooLarge,
    /// Binary frames are not part of the protocol (unless MessagePack was negotiated).
    UnsupportedFrame,
    /// A binary frame on a MessagePack connection is not MessagePack, or holds what the protocol cannot (binary
    /// strings, non-string map keys).
    BadMsgpack,
    /// Missing or invalid credentials.
    Unauthorized,
    /// The page's origin is not allowed to connect (REST/handshake only).
    Forbidden,
    /// This address already holds as many connections as the relay allows (REST/handshake only).
    TooManyConnections,
    /// The relay is shutting down or overloaded.
    Unavailable,
    /// No such endpoint or resource (REST only).
    NotFound,
    /// A code this build does not know (sent by a newer relay).
    #[serde(other)]
    Unknown,
}

crate::json::names_deserialize!(ErrorCode { BadJson = "bad_json", UnknownType = "unknown_type", BadMessage = "bad_message", InvalidSymbol = "invalid_symbol", UnknownProvider = "unknown_provider", TooManySymbols = "too_many_symbols", ProviderRejected = "provider_rejected", UnknownSymbol = "unknown_symbol", RateLimited = "rate_limited", MessageTooLarge = "message_too_large", UnsupportedFrame = "unsupported_frame", BadMsgpack = "bad_msgpack", Unauthorized = "unauthorized", Forbidden = "forbidden", TooManyConnections = "too_many_connections", Unavailable = "unavailable", NotFound = "not_found", Unknown = "unknown" } other: Unknown);

impl ErrorCode {
    /// The wire spelling, e.g. `bad_json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::InvalidSymbol => "invalid_symbol",
            ErrorCode::UnknownProvider => "unknown_provider",
            ErrorCode::TooManySymbols => "too_many_symbols",
            ErrorCode::ProviderRejected => "provider_rejected",
            ErrorCode::UnknownSymbol => "unknown_symbol",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::UnsupportedFrame => "unsupported_frame",
            ErrorCode::BadMsgpack => "bad_msgpack",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// The latest price of one symbol, normalised across providers. Fields a provider did not give are absent;
/// `change`/`change_pct` are present only when computed from a known reference (day open or previous close).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Deserialize))]
pub struct Quote {
    /// The canonical symbol as subscribed (with its `provider:` prefix if the client used one).
    pub symbol: Symbol,
    pub price: f64,
    /// The provider's event time, ms since the Unix epoch.
    pub ts: i64,
    /// Which provider produced it, e.g. `sim`, `binance`.
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_pct: Option<f64>,
    /// When the relay received it from the provider, ms since the Unix epoch on the relay's clock: `recv - ts`
    /// is the provider→relay hop, and a client that knows its offset from the relay's clock gets relay→client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv: Option<i64>,
    /// Position in this symbol's sequence of updates within the relay's epoch (`hello.epoch`), counting from 1:
    /// consecutive quotes of a symbol differ by one, so a client sees any gap, and a `resume` names where it
    /// stopped. Absent on values that did not pass through the relay's live stream (replays, REST fallbacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

crate::json::map_deserialize!(Quote, required { symbol "symbol": Symbol, price "price": f64, ts "ts": i64, provider "provider": String } optional { bid "bid": Option<f64>, ask "ask": Option<f64>, volume "volume": Option<f64>, change "change": Option<f64>, change_pct "change_pct": Option<f64>, recv "recv": Option<i64>, seq "seq": Option<u64> });

impl Quote {
    /// A quote with only its price, time and provider; every optional field empty.
    pub fn new(symbol: Symbol, price: f64, ts: i64, provider: impl Into<String>) -> Quote {
        Quote {
            symbol,
            price,
            ts,
            provider: provider.into(),
            bid: None,
            ask: None,
            volume: None,
            change: None,
            change_pct: None,
            recv: None,
            seq: None,
        }
    }
}

impl ServerMessage {
    /// The `"type"` tag of this message, as serde spells it; also the SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Hello { .. } => "hello",
            ServerMessage::Subscribed { .. } => "subscribed",
            ServerMessage::NoData { .. } => "no_data",
            ServerMessage::Unsubscribed { .. } => "unsubscribed",
            ServerMessage::Snapshot { .. } => "snapshot",
            ServerMessage::Quotes { .. } => "quotes",
            ServerMessage::Recovered { .. } => "recovered",
            ServerMessage::Status { .. } => "status",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Event { .. } => "event",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::ReplayState { .. } => "replay_state",
            ServerMessage::Order { .. } => "order",
            ServerMessage::OrderRejected { .. } => "order_rejected",
            ServerMessage::Positions { .. } => "positions",
            ServerMessage::Account { .. } => "account",
        }
    }

    #[cfg(feature = "msgpack")]
    /// Serialises to one MessagePack frame for a connection that negotiated [`MSGPACK_SUBPROTOCOL`]: maps with
    /// field names, so the tagged enums, omitted optional fields and flattened structs read back as in JSON.
    pub fn to_msgpack(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    #[cfg(feature = "msgpack")]
    /// Reads one MessagePack frame.
    pub fn from_msgpack(bytes: &[u8]) -> Result<ServerMessage, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }

    /// Serialises to the JSON text of one frame.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string and every number is finite or
        // rejected before it gets here. Fall back to a valid error frame rather than panic regardless.
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"unavailable","message":"serialisation failed"}"#.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    /// The derive `RequestId` had, to compare with.
    mod derived {
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(untagged)]
        pub(super) enum RequestId {
            Num(u64),
            Str(String),
        }
    }

    #[test]
    fn request_ids_read_as_the_untagged_derive_reads_them() {
        // Equal values, or errors with equal messages (from text, serde_json adds where in the text the
        // value was for ours, which reads while parsing; the relay reads ids from a parsed tree).
        let same = |d: Result<derived::RequestId, String>, ours: Result<RequestId, String>, exact: bool| match (d, ours)
        {
            (Ok(derived::RequestId::Num(a)), Ok(RequestId::Num(b))) => a == b,
            (Ok(derived::RequestId::Str(a)), Ok(RequestId::Str(b))) => a == b,
            (Err(a), Err(b)) => !exact || a == b,
            _ => false,
        };
        for text in [
            "0",
            "7",
            "18446744073709551615",
            "-1",
            "1.5",
            "1e3",
            r#""a1""#,
            r#""""#,
            r#""\u00e9""#,
            "true",
            "null",
            "[]",
            "[1]",
            "{}",
            r#"{"Num":1}"#,
        ] {
            let d = serde_json::from_str::<derived::RequestId>(text).map_err(|e| e.to_string());
            let ours = serde_json::from_str::<RequestId>(text).map_err(|e| e.to_string());
            assert!(same(d.clone(), ours.clone(), false), "from text: {text}: {d:?} {ours:?}");
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let d = serde_json::from_value::<derived::RequestId>(value.clone()).map_err(|e| e.to_string());
            let ours = serde_json::from_value::<RequestId>(value).map_err(|e| e.to_string());
            assert!(same(d.clone(), ours.clone(), true), "from a value: {text}: {d:?} {ours:?}");
            // Inside an internally tagged message, read from serde's buffer (a `null` id is no id).
            let ping = format!(r#"{{"type":"ping","id":{text}}}"#);
            let d = serde_json::from_str::<serde_json::Value>(&ping)
                .ok()
                .and_then(|v| v.get("id").cloned())
                .map(|v| v.is_null() || serde_json::from_value::<derived::RequestId>(v).is_ok());
            assert_eq!(d, Some(ClientMessage::parse(&ping).is_ok()), "in a ping: {ping}");
        }
    }

    #[test]
    fn client_messages_round_trip() {
        let msgs = [
            ClientMessage::Subscribe {
                max_hz: None,
                resume: None,
                id: Some(RequestId::Num(1)),
                symbols: vec!["AAPL".into()],
            },
            ClientMessage::Subscribe {
                id: None,
                symbols: vec!["AAPL".into()],
                resume: Some(Resume { epoch: 9, seqs: [("AAPL".to_owned(), 41)].into() }),
                max_hz: Some(2.0),
            },
            ClientMessage::Unsubscribe { id: Some(RequestId::Str("x".into())), symbols: vec![] },
            ClientMessage::Ping { id: None },
        ];
        for m in msgs {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(ClientMessage::parse(&text).unwrap(), m, "{text}");
        }
    }

    #[test]
    fn client_message_wire_shape() {
        let m = ClientMessage::parse(r#"{"type":"subscribe","id":7,"symbols":["BTC/USD","AAPL"]}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Subscribe {
                max_hz: None,
                resume: None,
                id: Some(RequestId::Num(7)),
                symbols: vec!["BTC/USD".into(), "AAPL".into()]
            }
        );
        assert_eq!(ClientMessage::parse(r#"{"type":"ping"}"#).unwrap(), ClientMessage::Ping { id: None });
    }

    #[test]
    fn parse_errors_have_distinct_codes() {
        let code = |t: &str| ClientMessage::parse(t).unwrap_err().code;
        assert_eq!(code("{nope"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"symbols":[]}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"subscribe"}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"subscribe","symbols":"AAPL"}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"ping","extra":1}"#), ErrorCode::BadMessage);
        let err = ClientMessage::parse(r#"{"type":"subscribe","id":"a1"}"#).unwrap_err();
        assert_eq!(err.id, Some(RequestId::Str("a1".into())));
    }

    /// The `"type"` tag serde writes for a message.
    fn tag(value: &impl Serialize) -> String {
        serde_json::to_value(value).unwrap()["type"].as_str().unwrap().to_owned()
    }

    #[test]
    fn client_kinds_are_serdes_tags() {
        let msgs = [
            ClientMessage::Subscribe { max_hz: None, resume: None, id: None, symbols: vec![] },
            ClientMessage::Unsubscribe { id: None, symbols: vec![] },
            ClientMessage::Ping { id: None },
            ClientMessage::Replay { id: None, from: 1, to: 2, symbols: vec![], speed: 1.0 },
            ClientMessage::ReplayControl { id: None, action: ReplayAction::Pause, speed: None, to: None },
            ClientMessage::PlaceOrder {
                id: None,
                order: serde_json::from_str(r#"{"symbol":"AAPL","qty":1,"side":"buy","type":"market"}"#).unwrap(),
            },
            ClientMessage::CancelOrder { id: None, order_id: "o1".into() },
            ClientMessage::ReplaceOrder { id: None, order_id: "o1".into(), change: ReplaceRequest::default() },
            ClientMessage::SubscribeAccount { id: None },
            ClientMessage::UnsubscribeAccount { id: None },
            ClientMessage::ResetAccount { id: None },
        ];
        assert_eq!(msgs.len(), ClientMessage::KINDS.len());
        for (m, kind) in msgs.iter().zip(ClientMessage::KINDS) {
            assert_eq!(tag(m), m.kind());
            assert_eq!(m.kind(), kind);
        }
    }

    #[test]
    fn server_kinds_and_states_are_serdes_spelling() {
        for m in sample_server_messages() {
            assert_eq!(tag(&m), m.kind(), "{m:?}");
        }
        for state in ProviderState::ALL {
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.as_str()));
        }
    }

    #[test]
    fn server_messages_round_trip() {
        for m in sample_server_messages() {
            let text = m.to_json();
            let back: ServerMessage = serde_json::from_str(&text).unwrap();
            assert_eq!(back, m, "{text}");
        }
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn server_messages_round_trip_through_msgpack() {
        for m in sample_server_messages() {
            let bytes = m.to_msgpack().unwrap();
            assert_eq!(ServerMessage::from_msgpack(&bytes).unwrap(), m);
        }
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn malformed_msgpack_is_a_typed_error() {
        let code = |b: &[u8]| ClientMessage::parse_msgpack(b).unwrap_err().code;
        assert_eq!(code(b""), ErrorCode::BadMsgpack);
        assert_eq!(code(&[0xc1]), ErrorCode::BadMsgpack, "a reserved byte");
        assert_eq!(code(&[0x81, 0x01, 0x02]), ErrorCode::BadMsgpack, "a non-string key");
        assert_eq!(code(&[0xc4, 0x01, 0x00]), ErrorCode::BadMsgpack, "a binary string");
        assert_eq!(code(&[0xdd, 0xff, 0xff, 0xff, 0xff]), ErrorCode::BadMsgpack, "an array longer than the input");
        assert_eq!(code(&[0x91; 100_000]), ErrorCode::BadMsgpack, "nested past the depth limit");
        assert_eq!(code(&[0x90]), ErrorCode::UnknownType, "an array, as in JSON");
        assert_eq!(code(&[0x80, 0x80]), ErrorCode::BadMsgpack, "trailing bytes");
        let ping = ClientMessage::Ping { id: Some(RequestId::Str("p".into())) };
        assert_eq!(ClientMessage::parse_msgpack(&ping.to_msgpack().unwrap()).unwrap(), ping);
    }

    /// One message of every kind.
    fn sample_server_messages() -> Vec<ServerMessage> {
        let quote = Quote {
            seq: None,
            recv: None,
            symbol: sym("BTC/USD"),
            price: 67000.5,
            ts: 1_700_000_000_000,
            provider: "sim".into(),
            bid: Some(67000.0),
            ask: Some(67001.0),
            volume: None,
            change: Some(12.5),
            change_pct: Some(0.0187),
        };
        let msgs = vec![
            ServerMessage::Hello {
                epoch: 1_767_225_600_000,
                features: FEATURES.iter().map(|f| f.to_string()).collect(),
                protocol: PROTOCOL_VERSION,
                server: "hamster-relay/0.1.0".into(),
                heartbeat_ms: 15_000,
                providers: vec![ProviderInfo {
                    name: "sim".into(),
                    state: ProviderState::Live,
                    detail: None,
                    since: 1,
                }],
            },
            ServerMessage::Subscribed {
                continuity: vec![
                    Continuity { symbol: sym("AAPL"), recovered: 3, gap: false, missed: None },
                    Continuity { symbol: sym("MSFT"), recovered: 0, gap: true, missed: Some(700) },
                ],
                id: Some(RequestId::Num(1)),
                symbols: vec![sym("AAPL")],
                rejected: vec![
                    Rejection {
                        symbol: "bad sym".into(),
                        code: ErrorCode::InvalidSymbol,
                        message: "no".into(),
                        suggestions: Vec::new(),
                    },
                    Rejection {
                        symbol: "BTC/USDX".into(),
                        code: ErrorCode::UnknownSymbol,
                        message: "binance has no instrument BTC/USDX; did you mean BTC/USDT?".into(),
                        suggestions: vec!["BTC/USDT".into()],
                    },
                ],
            },
            ServerMessage::Unsubscribed { id: None, symbols: vec![sym("AAPL")] },
            ServerMessage::Snapshot { quotes: vec![quote.clone()] },
            ServerMessage::Quotes { quotes: vec![quote.clone()] },
            ServerMessage::Recovered { quotes: vec![Quote { seq: Some(42), ..quote }] },
            ServerMessage::Status {
                provider: "sim".into(),
                state: ProviderState::Reconnecting,
                detail: Some("connection reset".into()),
                since: 5,
            },
            ServerMessage::Error { id: None, code: ErrorCode::RateLimited, message: "slow down".into() },
            ServerMessage::Pong { id: Some(RequestId::Num(3)), ts: Some(1_767_225_600_000) },
            ServerMessage::NoData { symbols: vec![sym("binance:NOPE/USD")], after_ms: 30_000 },
            ServerMessage::Event {
                seq: Some(12),
                channel: sym("uw:flow-alerts"),
                payload: serde_json::json!({"ticker": "AAPL", "total_premium": "1200000"}),
                ts: 7,
            },
            ServerMessage::ReplayState {
                id: Some(RequestId::Num(4)),
                phase: ReplayPhase::Playing,
                from: 1,
                to: 9,
                position: 3,
                speed: 10.0,
                played: 42,
            },
            ServerMessage::Order {
                id: Some(RequestId::Num(5)),
                order: serde_json::from_value(serde_json::json!({
                    "id": "o1", "symbol": "AAPL", "qty": 1.0, "filled_qty": 0.0, "side": "buy", "type": "limit",
                    "time_in_force": "gtc", "order_class": "simple", "limit_price": 10.0, "status": "accepted",
                    "triggered": false, "created_at": 1, "updated_at": 1
                }))
                .unwrap(),
            },
            ServerMessage::OrderRejected {
                id: None,
                reject: OrderReject {
                    code: crate::broker::OrderRejectCode::InsufficientBuyingPower,
                    message: "no".into(),
                },
            },
            ServerMessage::Positions {
                positions: vec![Position {
                    symbol: "AAPL".into(),
                    qty: 2.0,
                    avg_entry_price: 10.0,
                    cost_basis: 20.0,
                    current_price: 11.0,
                    market_value: 22.0,
                    unrealized_pl: 2.0,
                    realized_pl: 0.0,
                    day_pl: 2.0,
                }],
            },
            ServerMessage::Account {
                account: Account {
                    id: "local".into(),
                    cash: 1.0,
                    equity: 23.0,
                    long_market_value: 22.0,
                    buying_power: 1.0,
                    realized_pl: 0.0,
                    day_pl: 2.0,
                },
            },
        ];
        // A new variant must be added above: this match has no wildcard.
        for m in &msgs {
            match m {
                ServerMessage::Hello { .. }
                | ServerMessage::Subscribed { .. }
                | ServerMessage::NoData { .. }
                | ServerMessage::Unsubscribed { .. }
                | ServerMessage::Snapshot { .. }
                | ServerMessage::Quotes { .. }
                | ServerMessage::Recovered { .. }
                | ServerMessage::Status { .. }
                | ServerMessage::Error { .. }
                | ServerMessage::Event { .. }
                | ServerMessage::Pong { .. }
                | ServerMessage::ReplayState { .. }
                | ServerMessage::Order { .. }
                | ServerMessage::OrderRejected { .. }
                | ServerMessage::Positions { .. }
                | ServerMessage::Account { .. } => {}
            }
        }
        msgs
    }

    #[test]
    fn optional_fields_are_omitted_not_null() {
        let q = Quote {
            seq: None,
            recv: None,
            symbol: sym("AAPL"),
            price: 1.0,
            ts: 2,
            provider: "sim".into(),
            bid: None,
            ask: None,
            volume: None,
            change: None,
            change_pct: None,
        };
        assert_eq!(serde_json::to_string(&q).unwrap(), r#"{"symbol":"AAPL","price":1.0,"ts":2,"provider":"sim"}"#);
        assert_eq!(ServerMessage::Pong { id: None, ts: None }.to_json(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn error_codes_spell_as_on_the_wire() {
        for code in [ErrorCode::BadJson, ErrorCode::TooManySymbols, ErrorCode::UnknownProvider] {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{}\"", code.as_str()));
        }
        let unknown: ErrorCode = serde_json::from_str("\"from_the_future\"").unwrap();
        assert_eq!(unknown, ErrorCode::Unknown);
    }
}
