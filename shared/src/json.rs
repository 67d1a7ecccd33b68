//! Reading a [`ServerMessage`] from one JSON text frame without serde's buffering, for the dashboard.
//!
//! `ServerMessage` is internally tagged (`"type"` beside the fields), which serde's derive reads by first copying
//! the whole message into a generic tree (its private `Content`) and then reading the variant from that tree.
//! That costs a tree per frame, and in the dashboard's wasm a second copy of every field type's deserializer (one
//! reading JSON for the REST bodies, one reading the tree). [`ServerMessage::from_json`] reads the text once,
//! straight into [`Fields`]: every key any message has (the `type` among them), each `None` until it is seen,
//! and then builds the variant the `type` names from the fields it needs: the same messages, the same wire
//! format, no tree. One struct for every kind keeps the dashboard's wasm small: a struct of its own per kind cost
//! one more copy of serde's struct reader each. The derived `Deserialize` stays for every other reader (the
//! relay's tests, MessagePack, `serde_json::Value`).
//!
//! A field is `Some` whenever its key is present, `null` included, and then read as the variant's own field type
//! (`Option` where that is one), so a `null` is read as exactly as the derive would. A key of another kind is
//! still type-checked (no message kind gives a shared key another type, except `code`, read as text and then as
//! the kind's code). Building each variant with every field named makes a field added to the enum fail to compile
//! here until it is added, and a test reads every kind of message both ways.

use serde::de::{Deserializer, Error as _, IntoDeserializer};
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
        let f: Fields = serde_json::from_str(text)?;
        let kind = need(f.kind, "type")?;
        let message = match kind.as_str() {
            "hello" => ServerMessage::Hello {
                protocol: need(f.protocol, "protocol")?,
                server: need(f.server, "server")?,
                heartbeat_ms: need(f.heartbeat_ms, "heartbeat_ms")?,
                providers: need(f.providers, "providers")?,
                epoch: f.epoch.unwrap_or_default(),
                features: f.features.unwrap_or_default(),
            },
            "subscribed" => ServerMessage::Subscribed {
                id: f.id.flatten(),
                symbols: need(f.symbols, "symbols")?,
                rejected: f.rejected.unwrap_or_default(),
                continuity: f.continuity.unwrap_or_default(),
            },
            "unsubscribed" => ServerMessage::Unsubscribed { id: f.id.flatten(), symbols: need(f.symbols, "symbols")? },
            "snapshot" => ServerMessage::Snapshot { quotes: need(f.quotes, "quotes")? },
            "quotes" => ServerMessage::Quotes { quotes: need(f.quotes, "quotes")? },
            "recovered" => ServerMessage::Recovered { quotes: need(f.quotes, "quotes")? },
            "status" => ServerMessage::Status {
                provider: need(f.provider, "provider")?,
                state: need(f.state, "state")?,
                detail: f.detail.flatten(),
                since: need(f.since, "since")?,
            },
            "error" => ServerMessage::Error {
                id: f.id.flatten(),
                code: ErrorCode::deserialize(need(f.code, "code")?.as_str().into_deserializer())?,
                message: need(f.message, "message")?,
            },
            "event" => ServerMessage::Event {
                channel: need(f.channel, "channel")?,
                payload: need(f.payload, "payload")?,
                ts: need(need(f.ts, "ts")?, "ts")?,
                seq: f.seq.flatten(),
            },
            "no_data" => {
                ServerMessage::NoData { symbols: need(f.symbols, "symbols")?, after_ms: need(f.after_ms, "after_ms")? }
            }
            "pong" => ServerMessage::Pong { id: f.id.flatten(), ts: f.ts.flatten() },
            "replay_state" => ServerMessage::ReplayState {
                id: f.id.flatten(),
                phase: need(f.phase, "phase")?,
                from: need(f.from, "from")?,
                to: need(f.to, "to")?,
                position: need(f.position, "position")?,
                speed: need(f.speed, "speed")?,
                played: need(f.played, "played")?,
            },
            "order" => ServerMessage::Order { id: f.id.flatten(), order: need(f.order, "order")? },
            // The reject's fields are flattened into the message: read beside the id.
            "order_rejected" => ServerMessage::OrderRejected {
                id: f.id.flatten(),
                reject: OrderReject {
                    code: OrderRejectCode::deserialize(need(f.code, "code")?.as_str().into_deserializer())?,
                    message: need(f.message, "message")?,
                },
            },
            "positions" => ServerMessage::Positions { positions: need(f.positions, "positions")? },
            "account" => ServerMessage::Account { account: need(f.account, "account")? },
            other => {
                return Err(serde_json::Error::custom(format_args!("unknown message type `{other}`")));
            }
        };
        Ok(message)
    }
}

/// A field the message's kind requires.
fn need<T>(value: Option<T>, name: &'static str) -> Result<T, serde_json::Error> {
    value.ok_or_else(|| serde_json::Error::missing_field(name))
}

/// A present key's value as `T`, `null` included (which `Option<T>` alone would read as an absent key).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Every key of every message kind: `Some` once seen. Fields that are `Option`s in the message are
/// `Option<Option<_>>` here (`Some(None)` for a `null`).
#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "type", default, deserialize_with = "present")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Option<RequestId>>,
    #[serde(default, deserialize_with = "present")]
    protocol: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    server: Option<String>,
    #[serde(default, deserialize_with = "present")]
    heartbeat_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    providers: Option<Vec<ProviderInfo>>,
    #[serde(default, deserialize_with = "present")]
    epoch: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    features: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    symbols: Option<Vec<Symbol>>,
    #[serde(default, deserialize_with = "present")]
    rejected: Option<Vec<Rejection>>,
    #[serde(default, deserialize_with = "present")]
    continuity: Option<Vec<Continuity>>,
    #[serde(default, deserialize_with = "present")]
    quotes: Option<Vec<Quote>>,
    #[serde(default, deserialize_with = "present")]
    provider: Option<String>,
    #[serde(default, deserialize_with = "present")]
    state: Option<ProviderState>,
    #[serde(default, deserialize_with = "present")]
    detail: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    since: Option<i64>,
    /// `error`'s [`ErrorCode`] or `order_rejected`'s [`OrderRejectCode`], read once the kind is known.
    #[serde(default, deserialize_with = "present")]
    code: Option<String>,
    #[serde(default, deserialize_with = "present")]
    message: Option<String>,
    #[serde(default, deserialize_with = "present")]
    channel: Option<Symbol>,
    #[serde(default, deserialize_with = "present")]
    payload: Option<serde_json::Value>,
    /// Required in `event`, optional in `pong`.
    #[serde(default, deserialize_with = "present")]
    ts: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    seq: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    after_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    phase: Option<ReplayPhase>,
    #[serde(default, deserialize_with = "present")]
    from: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    to: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    position: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    speed: Option<f64>,
    #[serde(default, deserialize_with = "present")]
    played: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    order: Option<Box<Order>>,
    #[serde(default, deserialize_with = "present")]
    positions: Option<Vec<Position>>,
    #[serde(default, deserialize_with = "present")]
    account: Option<Account>,
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
