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
//! (`Option` where that is one), so a `null` is read exactly as the derive reads it. A key of another kind is
//! still type-checked (no message kind gives a shared key another type, except `code`, read as text and then as
//! the kind's code). Building each variant with every field named makes a field added to the enum fail to compile
//! here until it is added, and a test reads every kind of message both ways.
//!
//! Also the dashboard's smaller readers of what the relay writes, in the wasm only: [`names_deserialize`] for
//! enums of unit variants (a name matched against a table) and [`map_deserialize`] for structs (read from an
//! object, never an array). serde's derive reads each such type from several shapes the page never gets, about
//! a kilobyte of wasm per type; native builds, the relay among them, keep the derive, so nothing changes on its
//! side. Tests on the host read the same texts with both and compare the results.

use serde::de::{Deserializer, Error as _, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
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

/// Every key of every message kind: `Some` once seen (`null` included). Fields that are `Option`s in the message
/// are `Option<Option<_>>` here (`Some(None)` for a `null`).
#[derive(Default)]
struct Fields {
    kind: Option<String>,
    id: Option<Option<RequestId>>,
    protocol: Option<u32>,
    server: Option<String>,
    heartbeat_ms: Option<u64>,
    providers: Option<Vec<ProviderInfo>>,
    epoch: Option<u64>,
    features: Option<Vec<String>>,
    symbols: Option<Vec<Symbol>>,
    rejected: Option<Vec<Rejection>>,
    continuity: Option<Vec<Continuity>>,
    quotes: Option<Vec<Quote>>,
    provider: Option<String>,
    state: Option<ProviderState>,
    detail: Option<Option<String>>,
    since: Option<i64>,
    /// `error`'s [`ErrorCode`] or `order_rejected`'s [`OrderRejectCode`], read once the kind is known.
    code: Option<String>,
    message: Option<String>,
    channel: Option<Symbol>,
    payload: Option<serde_json::Value>,
    /// Required in `event`, optional in `pong`.
    ts: Option<Option<i64>>,
    seq: Option<Option<u64>>,
    after_ms: Option<u64>,
    phase: Option<ReplayPhase>,
    from: Option<i64>,
    to: Option<i64>,
    position: Option<i64>,
    speed: Option<f64>,
    played: Option<u64>,
    order: Option<Box<Order>>,
    positions: Option<Vec<Position>>,
    account: Option<Account>,
}

/// Read by hand rather than derived: a message is a JSON object, and the derive would add a second reader for
/// the struct written as an array (and one more for its keys as bytes and as numbers) that no relay sends.
impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Fields;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a message object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut f = Fields::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "type" => set(&mut f.kind, &mut map, "type")?,
                        "id" => set(&mut f.id, &mut map, "id")?,
                        "protocol" => set(&mut f.protocol, &mut map, "protocol")?,
                        "server" => set(&mut f.server, &mut map, "server")?,
                        "heartbeat_ms" => set(&mut f.heartbeat_ms, &mut map, "heartbeat_ms")?,
                        "providers" => set(&mut f.providers, &mut map, "providers")?,
                        "epoch" => set(&mut f.epoch, &mut map, "epoch")?,
                        "features" => set(&mut f.features, &mut map, "features")?,
                        "symbols" => set(&mut f.symbols, &mut map, "symbols")?,
                        "rejected" => set(&mut f.rejected, &mut map, "rejected")?,
                        "continuity" => set(&mut f.continuity, &mut map, "continuity")?,
                        "quotes" => set(&mut f.quotes, &mut map, "quotes")?,
                        "provider" => set(&mut f.provider, &mut map, "provider")?,
                        "state" => set(&mut f.state, &mut map, "state")?,
                        "detail" => set(&mut f.detail, &mut map, "detail")?,
                        "since" => set(&mut f.since, &mut map, "since")?,
                        "code" => set(&mut f.code, &mut map, "code")?,
                        "message" => set(&mut f.message, &mut map, "message")?,
                        "channel" => set(&mut f.channel, &mut map, "channel")?,
                        "payload" => set(&mut f.payload, &mut map, "payload")?,
                        "ts" => set(&mut f.ts, &mut map, "ts")?,
                        "seq" => set(&mut f.seq, &mut map, "seq")?,
                        "after_ms" => set(&mut f.after_ms, &mut map, "after_ms")?,
                        "phase" => set(&mut f.phase, &mut map, "phase")?,
                        "from" => set(&mut f.from, &mut map, "from")?,
                        "to" => set(&mut f.to, &mut map, "to")?,
                        "position" => set(&mut f.position, &mut map, "position")?,
                        "speed" => set(&mut f.speed, &mut map, "speed")?,
                        "played" => set(&mut f.played, &mut map, "played")?,
                        "order" => set(&mut f.order, &mut map, "order")?,
                        "positions" => set(&mut f.positions, &mut map, "positions")?,
                        "account" => set(&mut f.account, &mut map, "account")?,
                        // A key of no message (a newer relay's, say) is skipped, as the derive does.
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(f)
            }
        }
        d.deserialize_map(Keys)
    }
}

/// Reads the value of the key `name` into its slot: a key given twice is an error, as the derive makes it.
pub(crate) fn set<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<T>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(A::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// Which of `names` a unit variant written as its name is: its index, or `None` for a name not listed when the
/// enum has a catch-all variant (`other`). Used by [`names_deserialize`], in the dashboard's wasm only.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn variant_index<'de, D: Deserializer<'de>>(
    d: D,
    names: &'static [&'static str],
    other: bool,
) -> Result<Option<usize>, D::Error> {
    struct Names {
        names: &'static [&'static str],
        other: bool,
    }
    impl Visitor<'_> for Names {
        type Value = Option<usize>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a variant name")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
            match self.names.iter().position(|n| *n == v) {
                Some(i) => Ok(Some(i)),
                None if self.other => Ok(None),
                None => Err(E::unknown_variant(v, self.names)),
            }
        }
    }
    d.deserialize_str(Names { names, other })
}

/// `Deserialize` for an enum of unit variants, each written as its name, in the dashboard's wasm; the relay (and
/// every native build) keeps serde's derive. The derive reads such an enum with three matchers of its names (as
/// text, bytes and variant numbers) and an enum reader, about a kilobyte of wasm per enum; the page reads only
/// JSON, where a unit variant is its name. The same names are read to the same variants (a test compares the
/// table with the derive on the host); what no relay writes (the `{"name": null}` form, a number) is refused.
/// Listing a variant twice or leaving one out fails to compile.
macro_rules! names_deserialize {
    ($ty:ident { $($variant:ident = $name:literal),+ $(,)? } $(other: $other:ident)?) => {
        impl $ty {
            /// Every variant with its name on the wire.
            #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
            pub(crate) const NAMED: &'static [(&'static str, $ty)] = &[$(($name, $ty::$variant)),+];
        }

        const _: fn($ty) = |v| match v {
            $($ty::$variant => {}),+
        };

        #[cfg(target_arch = "wasm32")]
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                const NAMES: &[&str] = &[$($name),+];
                let other = $crate::json::names_deserialize!(@has $($other)?);
                let found = $crate::json::variant_index(d, NAMES, other)?.and_then(|i| $ty::NAMED.get(i));
                $crate::json::names_deserialize!(@found found, $ty $(, $other)?)
            }
        }
    };
    (@has $other:ident) => { true };
    (@has) => { false };
    (@found $found:ident, $ty:ident, $other:ident) => { Ok($found.map_or($ty::$other, |(_, v)| *v)) };
    (@found $found:ident, $ty:ident) => {
        $found.map(|(_, v)| *v).ok_or_else(|| <D::Error as serde::de::Error>::custom("unknown variant"))
    };
}
pub(crate) use names_deserialize;

/// A key of a struct's JSON object as the name it matches in `keys` (`None` for a key of no field), read without
/// copying it.
pub(crate) struct KeyName(pub(crate) &'static [&'static str]);

impl<'de> serde::de::DeserializeSeed<'de> for KeyName {
    type Value = Option<&'static str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<&'static str>, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeyName {
    type Value = Option<&'static str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<&'static str>, E> {
        Ok(self.0.iter().find(|k| **k == v).copied())
    }
}

/// `Deserialize` for a struct the relay writes as a JSON object, in the dashboard's wasm; native builds (the
/// relay) keep serde's derive. The derive also reads the struct from an array and its keys as bytes and as
/// numbers, readers the page never needs. `required { field "key": Type }` must be present, `optional` ones
/// take their default when absent (the derive's `#[serde(default)]`, and `Option` fields); a key given twice
/// is an error and an unknown key is skipped, as with the derive. `read_object` is the reader on every target,
/// so the host's tests compare it with the derive.
macro_rules! map_deserialize {
    ($ty:ident, required { $($req:ident $rkey:literal: $rt:ty),* $(,)? } optional { $($opt:ident $okey:literal: $ot:ty),* $(,)? }) => {
        impl $ty {
            /// Reads this struct from a map (see `map_deserialize!`).
            #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
            pub(crate) fn read_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct Keys;
                impl<'de> serde::de::Visitor<'de> for Keys {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($ty)))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        const KEYS: &[&str] = &[$($rkey,)* $($okey,)*];
                        $(let mut $req: Option<$rt> = None;)*
                        $(let mut $opt: Option<$ot> = None;)*
                        while let Some(key) = map.next_key_seed($crate::json::KeyName(KEYS))? {
                            match key {
                                $(Some($rkey) => $crate::json::set(&mut $req, &mut map, $rkey)?,)*
                                $(Some($okey) => $crate::json::set(&mut $opt, &mut map, $okey)?,)*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok($ty {
                            $($req: $req.ok_or_else(|| <A::Error as serde::de::Error>::missing_field($rkey))?,)*
                            $($opt: $opt.unwrap_or_default(),)*
                        })
                    }
                }
                d.deserialize_map(Keys)
            }
        }

        #[cfg(target_arch = "wasm32")]
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                $ty::read_object(d)
            }
        }
    };
}
pub(crate) use map_deserialize;

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
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"type":"from_the_future"}"#,
            r#"{"type":"quotes"}"#,
            r#"{"type":"pong""#,
            r#"{"type":"pong","id":1,"id":2}"#,
            r#"{"type":"event","channel":"X","payload":1,"ts":null}"#,
            r#"{"type":"subscribed","symbols":[],"rejected":null}"#,
        ] {
            assert!(ServerMessage::from_json(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<ServerMessage>(bad).is_err(), "serde's reader agrees: {bad}");
        }
    }

    /// The wasm's readers of unit enums ([`names_deserialize`]) read every name as the derive does, and write it
    /// back the same; an unknown name is the same error (or the catch-all variant where there is one).
    #[test]
    fn the_name_tables_agree_with_the_derive() {
        use crate::api::InstrumentClass;
        use crate::broker::{OrderClass, OrderStatus, OrderType, Side, TimeInForce};
        use serde::de::DeserializeOwned;
        use serde::Serialize;

        fn agrees<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
            named: &[(&'static str, T)],
            other: bool,
        ) {
            let names: Vec<&'static str> = named.iter().map(|(n, _)| *n).collect();
            let names: &'static [&'static str] = Box::leak(names.into_boxed_slice());
            for (i, (name, variant)) in named.iter().enumerate() {
                let text = format!("\"{name}\"");
                assert_eq!(&serde_json::from_str::<T>(&text).expect("the derive reads it"), variant, "{name}");
                assert_eq!(serde_json::to_string(variant).expect("writes"), text);
                let mut de = serde_json::Deserializer::from_str(&text);
                assert_eq!(variant_index(&mut de, names, other).expect("reads"), Some(i), "{name}");
            }
            let mut de = serde_json::Deserializer::from_str("\"no_such_name\"");
            match (variant_index(&mut de, names, other), serde_json::from_str::<T>("\"no_such_name\"")) {
                (Ok(None), Ok(_)) => assert!(other, "a catch-all only where the derive has one"),
                (Err(e), Err(derived)) => assert_eq!(e.to_string(), derived.to_string()),
                (mine, derived) => panic!("disagree: {mine:?} / {derived:?}"),
            }
        }
        agrees(Side::NAMED, false);
        agrees(OrderType::NAMED, false);
        agrees(TimeInForce::NAMED, false);
        agrees(OrderClass::NAMED, false);
        agrees(OrderStatus::NAMED, false);
        agrees(OrderRejectCode::NAMED, false);
        agrees(ReplayPhase::NAMED, false);
        agrees(ProviderState::NAMED, false);
        agrees(ErrorCode::NAMED, true);
        agrees(InstrumentClass::NAMED, false);
    }

    /// The wasm's readers of the relay's structs ([`map_deserialize`]) read what the derive reads from an object,
    /// to the same value or the same error.
    #[test]
    fn the_map_readers_agree_with_the_derive() {
        use crate::api::QuotesResponse;
        use crate::broker::{Account, Fill, Order, Position};
        use serde::de::DeserializeOwned;

        type De = serde_json::Deserializer<serde_json::de::StrRead<'static>>;
        fn agrees<T: DeserializeOwned + PartialEq + std::fmt::Debug>(
            read: impl Fn(&mut De) -> Result<T, serde_json::Error>,
            texts: &[&'static str],
        ) {
            for text in texts {
                let mut de = serde_json::Deserializer::from_str(text);
                let mine = read(&mut de).and_then(|v| de.end().map(|()| v));
                match (mine, serde_json::from_str::<T>(text)) {
                    (Ok(mine), Ok(derived)) => assert_eq!(mine, derived, "{text}"),
                    (Err(mine), Err(derived)) => assert_eq!(mine.to_string(), derived.to_string(), "{text}"),
                    (mine, derived) => panic!("disagree on {text}: {mine:?} / {derived:?}"),
                }
            }
        }
        let quotes = [
            r#"{"symbol":"AAPL","price":1.5,"ts":2,"provider":"sim"}"#,
            r#"{"symbol":"BTC/USD","price":1.5,"ts":2,"provider":"sim","bid":1,"ask":2,"volume":3,"change":-1,
                "change_pct":0.5,"recv":4,"seq":5,"extra":{"skipped":[1]}}"#,
            r#"{"symbol":"AAPL","price":1.5,"ts":2,"provider":"sim","bid":null,"seq":null}"#,
            r#"{"pri\u0063e":1.5,"symbol":"AAPL","ts":2,"provider":"sim"}"#,
            r#"{"symbol":"AAPL","ts":2,"provider":"sim"}"#,
            r#"{"symbol":"AAPL","price":1.5,"price":1.6,"ts":2,"provider":"sim"}"#,
            r#"{"symbol":"AAPL","price":"1.5","ts":2,"provider":"sim"}"#,
            r#"{"symbol":"not a symbol","price":1.5,"ts":2,"provider":"sim"}"#,
            r#"{"symbol":"AAPL","price":1.5,"ts":2,"provider":"sim","seq":-1}"#,
            "null",
            "{}",
        ];
        agrees(|de: &mut De| Quote::read_object(de), &quotes);
        agrees(
            |de: &mut De| QuotesResponse::read_object(de),
            &[
                r#"{"quotes":[{"symbol":"AAPL","price":1.5,"ts":2,"provider":"sim"}],"pending":["MSFT"]}"#,
                r#"{"quotes":[]}"#,
                r#"{"pending":[]}"#,
                r#"{"quotes":[],"pending":null}"#,
            ],
        );
        agrees(
            |de: &mut De| ProviderInfo::read_object(de),
            &[
                r#"{"name":"sim","state":"live","since":1}"#,
                r#"{"name":"sim","state":"down","detail":"no key","since":1}"#,
                r#"{"name":"sim","state":"asleep","since":1}"#,
                r#"{"name":"sim","since":1}"#,
            ],
        );
        agrees(
            |de: &mut De| Rejection::read_object(de),
            &[
                r#"{"symbol":"X","code":"unknown_symbol","message":"m","suggestions":["Y"]}"#,
                r#"{"symbol":"X","code":"from_the_future","message":"m"}"#,
                r#"{"symbol":"X","code":"unknown_symbol"}"#,
            ],
        );
        agrees(
            |de: &mut De| Continuity::read_object(de),
            &[
                r#"{"symbol":"AAPL","recovered":3}"#,
                r#"{"symbol":"AAPL","recovered":3,"gap":true,"missed":null}"#,
                r#"{"symbol":"AAPL","recovered":3,"gap":true,"missed":7}"#,
                r#"{"symbol":"AAPL","gap":true}"#,
            ],
        );
        agrees(
            |de: &mut De| Position::read_object(de),
            &[
                r#"{"symbol":"AAPL","qty":1,"avg_entry_price":2,"cost_basis":2,"current_price":3,"market_value":3,
                    "unrealized_pl":1,"realized_pl":0}"#,
                r#"{"symbol":"AAPL","qty":1,"avg_entry_price":2,"cost_basis":2,"current_price":3,"market_value":3,
                    "unrealized_pl":1,"realized_pl":0,"day_pl":0.5}"#,
                r#"{"symbol":"AAPL","qty":1}"#,
            ],
        );
        agrees(
            |de: &mut De| Account::read_object(de),
            &[
                r#"{"id":"a","cash":1,"equity":2,"long_market_value":1,"buying_power":1,"realized_pl":0,"day_pl":1}"#,
                r#"{"id":"a","cash":1,"equity":2,"long_market_value":1,"buying_power":1,"realized_pl":0}"#,
                r#"{"id":"a","cash":1,"equity":2,"long_market_value":1,"buying_power":1,"day_pl":null}"#,
            ],
        );
        agrees(
            |de: &mut De| Fill::read_object(de),
            &[
                r#"{"id":1,"order_id":"o","symbol":"AAPL","side":"buy","qty":1,"price":2,"commission":0,"ts":3}"#,
                r#"{"id":1,"order_id":"o","symbol":"AAPL","side":"hold","qty":1,"price":2,"commission":0,"ts":3}"#,
            ],
        );
        agrees(
            |de: &mut De| Order::read_object(de),
            &[
                r#"{"id":"o1","symbol":"AAPL","qty":1.0,"filled_qty":0.0,"side":"buy","type":"limit",
                    "time_in_force":"gtc","order_class":"simple","limit_price":10.0,"status":"accepted",
                    "triggered":false,"created_at":1,"updated_at":1}"#,
                r#"{"id":"o2","client_order_id":"c","symbol":"AAPL","notional":5.0,"filled_qty":1.0,
                    "filled_avg_price":5.0,"side":"sell","type":"trailing_stop","time_in_force":"day",
                    "order_class":"bracket","stop_price":4.0,"trail_price":1.0,"trail_percent":null,"hwm":6.0,
                    "parent_id":"o1","status":"rejected","reject":{"code":"invalid_qty","message":"m"},
                    "triggered":true,"created_at":1,"updated_at":2}"#,
                r#"{"id":"o1","symbol":"AAPL","filled_qty":0.0,"side":"buy","order_type":"limit",
                    "time_in_force":"gtc","order_class":"simple","status":"accepted","created_at":1,"updated_at":1}"#,
                r#"{"id":"o1","symbol":"AAPL","filled_qty":0.0,"side":"buy","type":"limit","type":"market",
                    "time_in_force":"gtc","order_class":"simple","status":"accepted","created_at":1,"updated_at":1}"#,
            ],
        );
        use crate::api::{ApiError, BrokerStatus, HistoryResponse, RecordingsResponse, SymbolsResponse};
        use crate::broker::OrderReject;
        agrees(
            |de: &mut De| ApiError::read_object(de),
            &[r#"{"code":"not_found","message":"m"}"#, r#"{"code":"not_found"}"#, r#"{"code":1,"message":"m"}"#],
        );
        agrees(
            |de: &mut De| HistoryResponse::read_object(de),
            &[
                r#"{"symbol":"AAPL","ticks":[{"ts":1,"price":2}],"candles":[]}"#,
                r#"{"symbol":"AAPL","ticks":[],"candles":[{"start":1,"open":1,"high":2,"low":0.5,"close":1.5,
                    "ticks":3,"volume":4}],"tf":"1D"}"#,
                r#"{"symbol":"AAPL","ticks":[],"candles":[{"start":1,"open":1,"high":2,"low":0.5,"close":1.5,
                    "ticks":3}],"tf":"1h"}"#,
                r#"{"symbol":"AAPL","ticks":[{"ts":1}],"candles":[]}"#,
                r#"{"symbol":"AAPL","ticks":[]}"#,
            ],
        );
        agrees(
            |de: &mut De| SymbolsResponse::read_object(de),
            &[
                r#"{"results":[{"symbol":"AAPL","ticker":"AAPL","name":"Apple","class":"equity","provider":"sim"}]}"#,
                r#"{"results":[{"symbol":"AAPL","ticker":"AAPL","name":"Apple","class":"bond","provider":"sim"}]}"#,
            ],
        );
        agrees(
            |de: &mut De| BrokerStatus::read_object(de),
            &[
                r#"{"name":"paper","live_money":false,"state":"live","since":7}"#,
                r#"{"name":"paper","live_money":false,"state":"down","detail":"d","since":7}"#,
                r#"{"name":"paper"}"#,
            ],
        );
        agrees(
            |de: &mut De| RecordingsResponse::read_object(de),
            &[
                r#"{"store":{"recording":true,"recorded_total":1,"dropped_total":0,"bytes":4096},
                    "recorded":[{"symbol":"AAPL","first":1,"last":2}]}"#,
                r#"{"store":{"recording":false,"recorded_total":1,"dropped_total":0,"degraded":"disk","bytes":1},
                    "recorded":[]}"#,
                r#"{"store":{"recording":true},"recorded":[]}"#,
            ],
        );
        agrees(
            |de: &mut De| OrderReject::read_object(de),
            &[r#"{"code":"invalid_qty","message":"m"}"#, r#"{"message":"m"}"#],
        );
        // What no relay writes: a struct as an array. The derive takes it; these readers refuse it.
        let mut de = serde_json::Deserializer::from_str(r#"["AAPL",1.5,2,"sim"]"#);
        assert!(Quote::read_object(&mut de).is_err());
    }
}
