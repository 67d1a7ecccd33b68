//! The Alpaca objects as its documentation prints them, read into the protocol's types.

use hamster_shared::broker::{OrderClass, OrderStatus, OrderType, Side, TimeInForce};

use super::wire::{hub_symbol, millis, Envelope, TradeUpdate, WireAccount, WireOrder, WirePosition};
use hamster_shared::broker::Position;

/// The documentation's crypto fill event, verbatim.
const DOC_FILL: &str = r#"{"stream":"trade_updates","data":{"event":"fill","execution_id":"2f63ea93-423d-4169-b3f6-3fdafc10c418",
"order":{"asset_class":"crypto","asset_id":"1cf35270-99ee-44e2-a77f-6fab902c7f80","cancel_requested_at":null,"canceled_at":null,
"client_order_id":"4642fd68-d59a-47d7-a9ac-e22f536828d1","created_at":"2022-04-19T13:45:04.981350886-04:00","expired_at":null,
"extended_hours":false,"failed_at":null,"filled_at":"2022-04-19T17:45:05.024916716Z","filled_avg_price":"105.8988475",
"filled_qty":"1790.86","hwm":null,"id":"a5be8f5e-fdfa-41f5-a644-7a74fe947a8f","legs":null,"limit_price":null,"notional":null,
"order_class":"","order_type":"market","qty":"1790.86","replaced_at":null,"replaced_by":null,"replaces":null,"side":"sell",
"status":"filled","stop_price":null,"submitted_at":"2022-04-19T13:45:04.980944666-04:00","symbol":"SOLUSD","time_in_force":"gtc",
"trail_percent":null,"trail_price":null,"type":"market","updated_at":"2022-04-19T13:45:05.027690731-04:00"},
"position_qty":"0","price":"105.8988475","qty":"1790.86","timestamp":"2022-04-19T17:45:05.024916716Z"}}"#;

#[test]
fn the_documented_fill_event_becomes_an_order_and_a_fill() {
    let envelope: Envelope = serde_json::from_str(DOC_FILL).unwrap();
    assert_eq!(envelope.stream, "trade_updates");
    let update: TradeUpdate = serde_json::from_value(envelope.data).unwrap();
    let fill = update.fill(1, 0).unwrap();
    assert_eq!((fill.symbol.as_str(), fill.side, fill.qty, fill.price), ("SOL/USD", Side::Sell, 1790.86, 105.8988475));
    assert_eq!(fill.ts, millis(Some("2022-04-19T17:45:05.024916716Z")).unwrap());
    let orders = update.order.into_orders(0);
    assert_eq!(orders.len(), 1);
    let o = &orders[0];
    assert_eq!(
        (o.status, o.order_type, o.order_class, o.time_in_force),
        (OrderStatus::Filled, OrderType::Market, OrderClass::Simple, TimeInForce::Gtc)
    );
    assert_eq!(o.filled_qty, 1790.86);
    // -04:00 offsets are honoured: 13:45:04.981 at -4 h is 17:45:04.981 UTC.
    assert_eq!(o.created_at, millis(Some("2022-04-19T17:45:04.981Z")).unwrap());
}

#[test]
fn decimals_come_as_strings_numbers_or_null_and_unknown_statuses_stay_open() {
    let o: WireOrder = serde_json::from_str(
        r#"{"id":"x","symbol":"AAPL","qty":3,"filled_qty":"1.5","limit_price":null,"status":"pending_new",
            "side":"buy","type":"limit","time_in_force":"fok","order_class":"oto","legs":[
            {"id":"y","symbol":"AAPL","qty":"3","status":"held","side":"sell","type":"stop","stop_price":"90"}]}"#,
    )
    .unwrap();
    let orders = o.into_orders(7);
    assert_eq!(orders.len(), 2);
    assert_eq!((orders[0].qty, orders[0].filled_qty, orders[0].limit_price), (Some(3.0), 1.5, None));
    assert_eq!((orders[0].status, orders[0].time_in_force), (OrderStatus::Accepted, TimeInForce::Ioc));
    assert_eq!(orders[0].order_class, OrderClass::Bracket);
    assert_eq!((orders[0].created_at, orders[0].updated_at), (7, 7));
    assert_eq!(orders[1].parent_id.as_deref(), Some("x"));
    assert_eq!((orders[1].status, orders[1].stop_price), (OrderStatus::Held, Some(90.0)));
}

#[test]
fn positions_and_accounts_read_the_documented_shapes_and_tolerate_missing_fields() {
    let short: WirePosition = serde_json::from_str(
        r#"{"asset_id":"d704f4fd-c735-44f8-a7fa-7a50fef08fe4","symbol":"XLK","exchange":"ARCA","asset_class":"us_equity",
        "qty":"-24","qty_available": "-24","avg_entry_price":"82.69","side":"short","market_value":"-2011.44",
        "cost_basis":"-1984.56","unrealized_pl":"-26.88","unrealized_plpc":"-0.0135445640343451",
        "unrealized_intraday_pl":"-26.88","unrealized_intraday_plpc":"-0.0135445640343451","current_price":"83.81",
        "lastday_price":"88.91","change_today":"-0.0573613766730402"}"#,
    )
    .unwrap();
    let p = Position::from(short);
    assert_eq!((p.qty, p.market_value, p.unrealized_pl, p.day_pl), (-24.0, -2011.44, -26.88, -26.88));
    // The 2026 schema dropped fields; nothing but what is there is needed.
    let a: WireAccount = serde_json::from_str(r#"{"cash":"-23140.2","buying_power":"262113.632"}"#).unwrap();
    let a = a.to_account("local");
    assert_eq!((a.id.as_str(), a.cash, a.buying_power, a.equity), ("local", -23140.2, 262113.632, -23140.2));
}

#[test]
fn crypto_pairs_get_the_hubs_slash() {
    assert_eq!(hub_symbol("BTCUSD", Some("crypto")), "BTC/USD");
    assert_eq!(hub_symbol("ETH/USD", Some("crypto")), "ETH/USD");
    assert_eq!(hub_symbol("USDTUSD", Some("crypto")), "USDT/USD");
    assert_eq!(hub_symbol("AAPL", Some("us_equity")), "AAPL");
}

#[test]
fn order_bodies_use_alpacas_fields_with_decimal_strings() {
    let request: hamster_shared::broker::OrderRequest = serde_json::from_str(
        r#"{"symbol":"AAPL","qty":5,"side":"buy","type":"limit","limit_price":150.25,"order_class":"bracket",
            "take_profit":{"limit_price":160},"stop_loss":{"stop_price":140}}"#,
    )
    .unwrap();
    let body = super::wire::order_body(&request, "cid-1");
    assert_eq!(body["qty"], "5");
    assert_eq!(body["limit_price"], "150.25");
    assert_eq!(body["type"], "limit");
    assert_eq!(body["time_in_force"], "day");
    assert_eq!(body["take_profit"]["limit_price"], "160");
    assert_eq!(body["stop_loss"]["stop_price"], "140");
    assert!(body["stop_loss"].get("limit_price").is_none());
    assert_eq!(body["client_order_id"], "cid-1");
}

#[test]
fn a_late_rest_answer_does_not_undo_a_fill_the_stream_reported() {
    let order = |status: &str, filled: &str, updated: &str| -> hamster_shared::broker::Order {
        let o: WireOrder = serde_json::from_value(serde_json::json!({"id": "a", "symbol": "AAPL", "qty": "10",
            "filled_qty": filled, "status": status, "side": "buy", "type": "market",
            "created_at": "2026-12-05T10:00:00Z", "updated_at": updated}))
        .unwrap();
        o.into_orders(0).remove(0)
    };
    let mut cache = super::Cache::default();
    assert!(cache.put(order("new", "0", "2026-12-05T10:00:00Z")));
    assert!(cache.put(order("filled", "10", "2026-12-05T10:00:00.050Z")));
    // POST's answer, written before the fill, arrives last.
    assert!(!cache.put(order("accepted", "0", "2026-12-05T10:00:00Z")));
    assert_eq!(cache.orders["a"].status, OrderStatus::Filled);
    // Same timestamp: no step back either.
    assert!(!cache.put(order("accepted", "0", "2026-12-05T10:00:00.050Z")));
    assert_eq!(cache.orders["a"].status, OrderStatus::Filled);
}
