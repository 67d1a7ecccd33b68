//! Reading a [`ServerMessage`] from one JSON text frame without serde's buffering, for the dashboard.
//!
//! `ServerMessage` is internally tagged (`"type"` beside the fields), which serde's derive reads by first copying
//! the whole message into a generic tree (its private `Content`) and then reading the variant from that tree.
//! That costs a tree per frame, and in the dashboard's wasm a second copy of every field type's deserializer (one
//! reading JSON for the REST bodies, one reading the tree). [`ServerMessage::from_json`] finds the `type` first
//! (the relay writes it as the first key; anywhere else costs a second pass over the text) and then reads the
//! text straight into that variant's fields: the same messages, the same wire format, no tree. The derived
//! `Deserialize` stays for every other reader (the relay's tests, MessagePack, `serde_json::Value`).
//!
//! Each `*Fields` struct below is one variant's fields with the variant's serde attributes; the `type` key in the
//! text is an unknown field to it, ignored. Building the variant with every field named makes a field added to
//! the enum fail to compile here until it is added, and a test reads every kind of message both ways.

use serde::Deserialize;

use crate::broker::{Account, Order, OrderReject, OrderRejectCode, Position};
use crate::protocol::{
    Continuity, ErrorCode, ProviderInfo, ProviderState, Quote, Rejection, ReplayPhase, RequestId, ServerMessage,
};
use crate::symbol::Symbol;

impl ServerMessage {
    /// Reads one JSON text frame: equal to `serde_json::from_str::<ServerMessage>(text)` for every message,
    /// without copying it into an intermediate tree first.
    pub fn from_json(text: &str) -> Result<ServerMessage, serde_json::Error> {
        let kind = match leading_type(text) {
            Some(kind) => std::borrow::Cow::Borrowed(kind),
            None => serde_json::from_str::<Tag>(text)?.kind,
        };
        let message = match kind.as_ref() {
            "hello" => {
                let f: HelloFields = serde_json::from_str(text)?;
                ServerMessage::Hello {
                    protocol: f.protocol,
                    server: f.server,
                    heartbeat_ms: f.heartbeat_ms,
                    providers: f.providers,
                    epoch: f.epoch,
                    features: f.features,
                }
            }
            "subscribed" => {
                let f: SubscribedFields = serde_json::from_str(text)?;
                ServerMessage::Subscribed {
                    id: f.id,
                    symbols: f.symbols,
                    rejected: f.rejected,
                    continuity: f.continuity,
                }
            }
            "unsubscribed" => {
                let f: SymbolsFields = serde_json::from_str(text)?;
                ServerMessage::Unsubscribed { id: f.id, symbols: f.symbols }
            }
            "snapshot" => ServerMessage::Snapshot { quotes: serde_json::from_str::<QuotesFields>(text)?.quotes },
            "quotes" => ServerMessage::Quotes { quotes: serde_json::from_str::<QuotesFields>(text)?.quotes },
            "recovered" => ServerMessage::Recovered { quotes: serde_json::from_str::<QuotesFields>(text)?.quotes },
            "status" => {
                let f: StatusFields = serde_json::from_str(text)?;
                ServerMessage::Status { provider: f.provider, state: f.state, detail: f.detail, since: f.since }
            }
            "error" => {
                let f: ErrorFields = serde_json::from_str(text)?;
                ServerMessage::Error { id: f.id, code: f.code, message: f.message }
            }
            "event" => {
                let f: EventFields = serde_json::from_str(text)?;
                ServerMessage::Event { channel: f.channel, payload: f.payload, ts: f.ts, seq: f.seq }
            }
            "no_data" => {
                let f: NoDataFields = serde_json::from_str(text)?;
                ServerMessage::NoData { symbols: f.symbols, after_ms: f.after_ms }
            }
            "pong" => {
                let f: PongFields = serde_json::from_str(text)?;
                ServerMessage::Pong { id: f.id, ts: f.ts }
            }
            "replay_state" => {
                let f: ReplayStateFields = serde_json::from_str(text)?;
                ServerMessage::ReplayState {
                    id: f.id,
                    phase: f.phase,
                    from: f.from,
                    to: f.to,
                    position: f.position,
                    speed: f.speed,
                    played: f.played,
                }
            }
            "order" => {
                let f: OrderFields = serde_json::from_str(text)?;
                ServerMessage::Order { id: f.id, order: f.order }
            }
            "order_rejected" => {
                // The reject's fields are flattened into the message: read them beside the id.
                let f: OrderRejectedFields = serde_json::from_str(text)?;
                ServerMessage::OrderRejected { id: f.id, reject: OrderReject { code: f.code, message: f.message } }
            }
            "positions" => {
                ServerMessage::Positions { positions: serde_json::from_str::<PositionsFields>(text)?.positions }
            }
            "account" => ServerMessage::Account { account: serde_json::from_str::<AccountFields>(text)?.account },
            other => {
                return Err(serde::de::Error::custom(format_args!("unknown message type `{other}`")));
            }
        };
        Ok(message)
    }
}

/// The `type` when it is the first key, as the relay writes it (`{"type":"quotes",…`).
fn leading_type(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    let kind = &rest[..rest.find('"')?];
    (!kind.contains('\\')).then_some(kind)
}

/// The `type`, wherever it is.
#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct HelloFields {
    protocol: u32,
    server: String,
    heartbeat_ms: u64,
    providers: Vec<ProviderInfo>,
    #[serde(default)]
    epoch: u64,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Deserialize)]
struct SubscribedFields {
    #[serde(default)]
    id: Option<RequestId>,
    symbols: Vec<Symbol>,
    #[serde(default)]
    rejected: Vec<Rejection>,
    #[serde(default)]
    continuity: Vec<Continuity>,
}

#[derive(Deserialize)]
struct SymbolsFields {
    #[serde(default)]
    id: Option<RequestId>,
    symbols: Vec<Symbol>,
}

#[derive(Deserialize)]
struct QuotesFields {
    quotes: Vec<Quote>,
}

#[derive(Deserialize)]
struct StatusFields {
    provider: String,
    state: ProviderState,
    #[serde(default)]
    detail: Option<String>,
    since: i64,
}

#[derive(Deserialize)]
struct ErrorFields {
    #[serde(default)]
    id: Option<RequestId>,
    code: ErrorCode,
    message: String,
}

#[derive(Deserialize)]
struct EventFields {
    channel: Symbol,
    payload: serde_json::Value,
    ts: i64,
    #[serde(default)]
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct NoDataFields {
    symbols: Vec<Symbol>,
    after_ms: u64,
}

#[derive(Deserialize)]
struct PongFields {
    #[serde(default)]
    id: Option<RequestId>,
    #[serde(default)]
    ts: Option<i64>,
}

#[derive(Deserialize)]
struct ReplayStateFields {
    #[serde(default)]
    id: Option<RequestId>,
    phase: ReplayPhase,
    from: i64,
    to: i64,
    position: i64,
    speed: f64,
    played: u64,
}

#[derive(Deserialize)]
struct OrderFields {
    #[serde(default)]
    id: Option<RequestId>,
    order: Box<Order>,
}

#[derive(Deserialize)]
struct OrderRejectedFields {
    #[serde(default)]
    id: Option<RequestId>,
    code: OrderRejectCode,
    message: String,
}

#[derive(Deserialize)]
struct PositionsFields {
    positions: Vec<Position>,
}

#[derive(Deserialize)]
struct AccountFields {
    account: Account,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_is_found_first_or_anywhere_and_a_bad_one_is_an_error_not_a_panic() {
        let pong = ServerMessage::Pong { id: Some(RequestId::Num(3)), ts: Some(9) };
        assert_eq!(ServerMessage::from_json(r#"{"type":"pong","id":3,"ts":9}"#).ok(), Some(pong.clone()));
        assert_eq!(ServerMessage::from_json(r#"{"id":3, "ts":9, "type" : "pong"}"#).ok(), Some(pong));
        let quotes = r#"{"ts":1,"type":"quotes","quotes":[{"symbol":"AAPL","price":1.5,"ts":2,"provider":"sim"}]}"#;
        let read = ServerMessage::from_json(quotes).expect("reads");
        assert_eq!(read, serde_json::from_str::<ServerMessage>(quotes).expect("serde reads it too"));
        for bad in ["", "[]", "{}", r#"{"type":"from_the_future"}"#, r#"{"type":"quotes"}"#, r#"{"type":"pong""#] {
            assert!(ServerMessage::from_json(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<ServerMessage>(bad).is_err(), "serde's reader agrees: {bad}");
        }
    }
}
