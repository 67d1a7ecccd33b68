//! Property tests of the two encodings of every message: each `ServerMessage` and `ClientMessage` variant,
//! generated with arbitrary field values (optional fields present or absent, flattened rejects, tagged enums,
//! untagged ids, arbitrary JSON payloads), reads back equal from its JSON and from its MessagePack
//! (`rmp_serde` maps with field names, as the relay writes them for clients that ask for MessagePack).
//!
//! Numbers: JSON carries the short decimals providers send (serde_json's default parser is exact for those);
//! MessagePack carries any finite `f64` bit for bit, which a property of its own checks. Non-finite numbers are
//! never sent (the protocol has no `null` for them). Cases: `PROPTEST_CASES` (256 by default).

use std::collections::{BTreeMap, HashSet};

use hamster_shared::broker::{
    Account, Order, OrderClass, OrderReject, OrderRejectCode, OrderRequest, OrderStatus, OrderType, Position,
    ReplaceRequest, Side, StopLoss, TakeProfit, TimeInForce,
};
use hamster_shared::{
    ClientMessage, Continuity, ErrorCode, ProviderInfo, ProviderState, Quote, Rejection, ReplayAction, ReplayPhase,
    RequestId, Resume, ServerMessage, Symbol,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;

/// A price or size as providers send them: up to 13 significant digits, up to 6 decimals, either sign.
fn num() -> impl Strategy<Value = f64> {
    (-(1i64 << 40)..(1i64 << 40), 0i32..7).prop_map(|(m, d)| m as f64 / 10f64.powi(d))
}

fn opt<T: std::fmt::Debug + Clone + 'static>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Option<T>> {
    prop::option::of(s).boxed()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z_ ]{0,12}"]
}

fn symbol() -> impl Strategy<Value = Symbol> {
    prop_oneof!["[A-Z][A-Z0-9]{0,5}", "[A-Z]{3}/[A-Z]{3}", "[a-z]{2,8}:[A-Z][A-Z0-9.]{0,4}[A-Z]", "[A-Z]{2,4}=F"]
        .prop_map(|s| Symbol::parse(&s).expect("the patterns are valid symbols"))
}

fn request_id() -> BoxedStrategy<Option<RequestId>> {
    opt(prop_oneof![any::<u64>().prop_map(RequestId::Num), text().prop_map(RequestId::Str)])
}

fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(all)
}

const ERROR_CODES: &[ErrorCode] = &[
    ErrorCode::BadJson,
    ErrorCode::UnknownType,
    ErrorCode::BadMessage,
    ErrorCode::InvalidSymbol,
    ErrorCode::UnknownProvider,
    ErrorCode::TooManySymbols,
    ErrorCode::ProviderRejected,
    ErrorCode::UnknownSymbol,
    ErrorCode::RateLimited,
    ErrorCode::MessageTooLarge,
    ErrorCode::UnsupportedFrame,
    ErrorCode::BadMsgpack,
    ErrorCode::Unauthorized,
    ErrorCode::Forbidden,
    ErrorCode::TooManyConnections,
    ErrorCode::Unavailable,
    ErrorCode::NotFound,
    ErrorCode::Unknown,
];
const REJECT_CODES: &[OrderRejectCode] = &[
    OrderRejectCode::InsufficientBuyingPower,
    OrderRejectCode::InsufficientQty,
    OrderRejectCode::UnknownSymbol,
    OrderRejectCode::InvalidQty,
    OrderRejectCode::LimitPriceMissing,
    OrderRejectCode::StopPriceMissing,
    OrderRejectCode::TrailMissing,
    OrderRejectCode::InvalidOrder,
    OrderRejectCode::NotFound,
    OrderRejectCode::NotCancelable,
    OrderRejectCode::Unavailable,
    OrderRejectCode::Unauthorized,
    OrderRejectCode::Forbidden,
];
const STATUSES: &[OrderStatus] = &[
    OrderStatus::Accepted,
    OrderStatus::Held,
    OrderStatus::PartiallyFilled,
    OrderStatus::Filled,
    OrderStatus::Canceled,
    OrderStatus::Expired,
    OrderStatus::Rejected,
    OrderStatus::Replaced,
];
const TYPES: &[OrderType] =
    &[OrderType::Market, OrderType::Limit, OrderType::Stop, OrderType::StopLimit, OrderType::TrailingStop];
const TIFS: &[TimeInForce] = &[TimeInForce::Day, TimeInForce::Gtc, TimeInForce::Ioc];
const CLASSES: &[OrderClass] = &[OrderClass::Simple, OrderClass::Oco, OrderClass::Bracket];
const SIDES: &[Side] = &[Side::Buy, Side::Sell];
const ACTIONS: &[ReplayAction] =
    &[ReplayAction::Pause, ReplayAction::Resume, ReplayAction::Speed, ReplayAction::Seek, ReplayAction::Stop];
const PHASES: &[ReplayPhase] = &[ReplayPhase::Playing, ReplayPhase::Paused, ReplayPhase::Ended, ReplayPhase::Stopped];

/// Any JSON a provider might put in an event's payload (numbers as providers write them).
fn payload() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        num().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn quote() -> impl Strategy<Value = Quote> {
    (
        (symbol(), num(), any::<i64>(), text()),
        (opt(num()), opt(num()), opt(num()), opt(num()), opt(num())),
        (opt(any::<i64>()), opt(any::<u64>())),
    )
        .prop_map(|((symbol, price, ts, provider), (bid, ask, volume, change, change_pct), (recv, seq))| Quote {
            symbol,
            price,
            ts,
            provider,
            bid,
            ask,
            volume,
            change,
            change_pct,
            recv,
            seq,
        })
}

fn quotes() -> impl Strategy<Value = Vec<Quote>> {
    prop::collection::vec(quote(), 0..5)
}

fn order() -> impl Strategy<Value = Order> {
    (
        (text(), opt(text()), text(), opt(num()), opt(num()), num(), opt(num())),
        (pick(SIDES), pick(TYPES), pick(TIFS), pick(CLASSES)),
        (opt(num()), opt(num()), opt(num()), opt(num()), opt(num()), opt(text())),
        (pick(STATUSES), opt((pick(REJECT_CODES), text())), any::<bool>(), any::<i64>(), any::<i64>()),
    )
        .prop_map(|(a, b, c, d)| Order {
            id: a.0,
            client_order_id: a.1,
            symbol: a.2,
            qty: a.3,
            notional: a.4,
            filled_qty: a.5,
            filled_avg_price: a.6,
            side: b.0,
            order_type: b.1,
            time_in_force: b.2,
            order_class: b.3,
            limit_price: c.0,
            stop_price: c.1,
            trail_price: c.2,
            trail_percent: c.3,
            hwm: c.4,
            parent_id: c.5,
            status: d.0,
            reject: d.1.map(|(code, message)| OrderReject { code, message }),
            triggered: d.2,
            created_at: d.3,
            updated_at: d.4,
        })
}

fn order_request() -> impl Strategy<Value = OrderRequest> {
    (
        (text(), opt(num()), opt(num()), pick(SIDES), pick(TYPES), pick(TIFS)),
        (opt(num()), opt(num()), opt(num()), opt(num()), pick(CLASSES)),
        (opt(num()), opt((num(), opt(num()))), opt(text())),
    )
        .prop_map(|(a, b, c)| OrderRequest {
            symbol: a.0,
            qty: a.1,
            notional: a.2,
            side: a.3,
            order_type: a.4,
            time_in_force: a.5,
            limit_price: b.0,
            stop_price: b.1,
            trail_price: b.2,
            trail_percent: b.3,
            order_class: b.4,
            take_profit: c.0.map(|limit_price| TakeProfit { limit_price }),
            stop_loss: c.1.map(|(stop_price, limit_price)| StopLoss { stop_price, limit_price }),
            client_order_id: c.2,
        })
}

fn replace_request() -> impl Strategy<Value = ReplaceRequest> {
    (opt(num()), opt(num()), opt(num()), opt(num()), opt(pick(TIFS)), opt(text())).prop_map(|r| ReplaceRequest {
        qty: r.0,
        limit_price: r.1,
        stop_price: r.2,
        trail: r.3,
        time_in_force: r.4,
        client_order_id: r.5,
    })
}

fn provider_info() -> impl Strategy<Value = ProviderInfo> {
    (text(), pick(&ProviderState::ALL), opt(text()), any::<i64>())
        .prop_map(|(name, state, detail, since)| ProviderInfo { name, state, detail, since })
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let symbols = || prop::collection::vec(symbol(), 0..4);
    let rejection = (text(), pick(ERROR_CODES), text(), prop::collection::vec(text(), 0..3))
        .prop_map(|(symbol, code, message, suggestions)| Rejection { symbol, code, message, suggestions });
    let continuity = (symbol(), any::<u64>(), any::<bool>(), opt(any::<u64>()))
        .prop_map(|(symbol, recovered, gap, missed)| Continuity { symbol, recovered, gap, missed });
    prop_oneof![
        (
            any::<u32>(),
            text(),
            any::<u64>(),
            prop::collection::vec(provider_info(), 0..3),
            any::<u64>(),
            prop::collection::vec(text(), 0..4)
        )
            .prop_map(|(protocol, server, heartbeat_ms, providers, epoch, features)| ServerMessage::Hello {
                protocol,
                server,
                heartbeat_ms,
                providers,
                epoch,
                features
            }),
        (request_id(), symbols(), prop::collection::vec(rejection, 0..3), prop::collection::vec(continuity, 0..3))
            .prop_map(|(id, symbols, rejected, continuity)| ServerMessage::Subscribed {
                id,
                symbols,
                rejected,
                continuity
            }),
        (request_id(), symbols()).prop_map(|(id, symbols)| ServerMessage::Unsubscribed { id, symbols }),
        quotes().prop_map(|quotes| ServerMessage::Snapshot { quotes }),
        quotes().prop_map(|quotes| ServerMessage::Quotes { quotes }),
        quotes().prop_map(|quotes| ServerMessage::Recovered { quotes }),
        (text(), pick(&ProviderState::ALL), opt(text()), any::<i64>())
            .prop_map(|(provider, state, detail, since)| ServerMessage::Status { provider, state, detail, since }),
        (request_id(), pick(ERROR_CODES), text()).prop_map(|(id, code, message)| ServerMessage::Error {
            id,
            code,
            message
        }),
        (symbol(), payload(), any::<i64>(), opt(any::<u64>()))
            .prop_map(|(channel, payload, ts, seq)| ServerMessage::Event { channel, payload, ts, seq }),
        (request_id(), opt(any::<i64>())).prop_map(|(id, ts)| ServerMessage::Pong { id, ts }),
        (prop::collection::vec(symbol(), 1..4), any::<u64>())
            .prop_map(|(symbols, after_ms)| ServerMessage::NoData { symbols, after_ms }),
        (request_id(), pick(PHASES), any::<i64>(), any::<i64>(), any::<i64>(), num(), any::<u64>()).prop_map(
            |(id, phase, from, to, position, speed, played)| ServerMessage::ReplayState {
                id,
                phase,
                from,
                to,
                position,
                speed,
                played
            }
        ),
        (request_id(), order()).prop_map(|(id, order)| ServerMessage::Order { id, order: Box::new(order) }),
        (request_id(), pick(REJECT_CODES), text())
            .prop_map(|(id, code, message)| ServerMessage::OrderRejected { id, reject: OrderReject { code, message } }),
        prop::collection::vec(
            (text(), num(), num(), num(), num(), num(), num(), num(), num()).prop_map(|p| Position {
                symbol: p.0,
                qty: p.1,
                avg_entry_price: p.2,
                cost_basis: p.3,
                current_price: p.4,
                market_value: p.5,
                unrealized_pl: p.6,
                realized_pl: p.7,
                day_pl: p.8,
            }),
            0..3
        )
        .prop_map(|positions| ServerMessage::Positions { positions }),
        (text(), num(), num(), num(), num(), num(), num()).prop_map(|a| ServerMessage::Account {
            account: Account {
                id: a.0,
                cash: a.1,
                equity: a.2,
                long_market_value: a.3,
                buying_power: a.4,
                realized_pl: a.5,
                day_pl: a.6,
            }
        }),
    ]
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    let raw_symbols = || prop::collection::vec(prop_oneof![symbol().prop_map(|s| s.to_string()), text()], 0..4);
    let resume = (any::<u64>(), prop::collection::btree_map(text(), any::<u64>(), 0..4))
        .prop_map(|(epoch, seqs): (u64, BTreeMap<String, u64>)| Resume { epoch, seqs });
    prop_oneof![
        (request_id(), raw_symbols(), opt(resume), opt(num()))
            .prop_map(|(id, symbols, resume, max_hz)| ClientMessage::Subscribe { id, symbols, resume, max_hz }),
        (request_id(), raw_symbols()).prop_map(|(id, symbols)| ClientMessage::Unsubscribe { id, symbols }),
        request_id().prop_map(|id| ClientMessage::Ping { id }),
        (request_id(), any::<i64>(), any::<i64>(), raw_symbols(), num())
            .prop_map(|(id, from, to, symbols, speed)| ClientMessage::Replay { id, from, to, symbols, speed }),
        (request_id(), pick(ACTIONS), opt(num()), opt(any::<i64>()))
            .prop_map(|(id, action, speed, to)| ClientMessage::ReplayControl { id, action, speed, to }),
        (request_id(), order_request())
            .prop_map(|(id, order)| ClientMessage::PlaceOrder { id, order: Box::new(order) }),
        (request_id(), text()).prop_map(|(id, order_id)| ClientMessage::CancelOrder { id, order_id }),
        (request_id(), text(), replace_request()).prop_map(|(id, order_id, change)| ClientMessage::ReplaceOrder {
            id,
            order_id,
            change
        }),
        request_id().prop_map(|id| ClientMessage::SubscribeAccount { id }),
        request_id().prop_map(|id| ClientMessage::UnsubscribeAccount { id }),
        request_id().prop_map(|id| ClientMessage::ResetAccount { id }),
    ]
}

/// Every server `type`; the match has no wildcard, so a new variant fails to compile until it is listed here
/// (and then fails [`the_strategies_reach_every_variant`] until `server_message` generates it).
fn server_kind(m: &ServerMessage) -> &'static str {
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
        | ServerMessage::Account { .. } => m.kind(),
    }
}
const SERVER_KINDS: usize = 16;

#[test]
fn the_strategies_reach_every_variant() {
    let mut runner = TestRunner::deterministic();
    let (mut server, mut client) = (HashSet::new(), HashSet::new());
    for _ in 0..2000 {
        server.insert(server_kind(&server_message().new_tree(&mut runner).expect("a value").current()));
        client.insert(client_message().new_tree(&mut runner).expect("a value").current().kind());
    }
    assert_eq!(server.len(), SERVER_KINDS, "{server:?}");
    assert_eq!(client.len(), ClientMessage::KINDS.len(), "{client:?}");
}

proptest! {
    #[test]
    fn fuzz_every_server_message_round_trips_through_json_and_msgpack(m in server_message()) {
        let json = m.to_json();
        let back: ServerMessage = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&back, &m, "JSON {}", json);
        // The dashboard's reader, with `type` first as the relay writes it and elsewhere (a tree's sorted keys).
        let read = ServerMessage::from_json(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&read, &m, "from_json of {}", json);
        let sorted = serde_json::from_str::<Value>(&json).map_err(|e| TestCaseError::fail(e.to_string()))?.to_string();
        let read = ServerMessage::from_json(&sorted).map_err(|e| TestCaseError::fail(format!("{e}: {sorted}")))?;
        prop_assert_eq!(&read, &m, "from_json of {}", sorted);
        let packed = m.to_msgpack().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = ServerMessage::from_msgpack(&packed).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&back, &m, "MessagePack of {}", json);
        // The field names survive: the same tree as the JSON, so any MessagePack library reads it the same way.
        let tree: Value = rmp_serde::from_slice(&packed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(tree, serde_json::from_str::<Value>(&json).map_err(|e| TestCaseError::fail(e.to_string()))?);
    }

    #[test]
    fn fuzz_every_client_message_round_trips_through_json_and_msgpack(m in client_message()) {
        let json = serde_json::to_string(&m).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = ClientMessage::parse(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&back, &m, "JSON {}", json);
        let packed = m.to_msgpack().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = ClientMessage::parse_msgpack(&packed).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&back, &m, "MessagePack of {}", json);
    }

    #[test]
    fn fuzz_msgpack_keeps_every_finite_price_bit_for_bit(
        price in prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        q in quote(),
    ) {
        let m = ServerMessage::Quotes { quotes: vec![Quote { price, bid: Some(-price), ..q }] };
        let packed = m.to_msgpack().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = ServerMessage::from_msgpack(&packed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ServerMessage::Quotes { quotes } = back else { return Err(TestCaseError::fail("not quotes")) };
        prop_assert_eq!(quotes[0].price.to_bits(), price.to_bits());
        prop_assert_eq!(quotes[0].bid.map(f64::to_bits), Some((-price).to_bits()));
    }

    #[test]
    fn fuzz_client_msgpack_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = ClientMessage::parse_msgpack(&bytes) {
            prop_assert!(matches!(e.code, ErrorCode::BadMsgpack | ErrorCode::UnknownType | ErrorCode::BadMessage));
            prop_assert!(!e.message.is_empty());
        }
    }
}
