//! Twelve Data's parsers against the documented frames and bodies.

use hamster_shared::ErrorCode;

use super::rest_fallback::parse_prices;
use super::wire::{action, TdWire};
use crate::providers::stream::{Wire, WireEvent};
use crate::secret::Secret;

fn wire() -> TdWire {
    TdWire { ws_url: "ws://127.0.0.1:1/v1/quotes/price".into(), key: Secret::new("k&y") }
}

#[test]
fn parses_documented_price_events() {
    let events = wire().on_text(
        r#"{"event":"price","symbol":"XAU/USD","currency":"USD","currency_base":"Gold Spot","currency_quote":"US Dollar","type":"Physical Currency","timestamp":1647950462,"price":1925.18,"bid":1925.05,"ask":1925.32}"#,
    );
    let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(q[0].symbol.as_str(), "XAU/USD");
    assert_eq!(
        (q[0].price, q[0].ts, q[0].bid, q[0].ask),
        (1925.18, 1_647_950_462_000, Some(1925.05), Some(1925.32))
    );
    assert_eq!(q[0].change, None, "Twelve Data WS gives no reference price");
    let events = wire().on_text(
        r#"{"event":"price","symbol":"AAPL","currency":"USD","exchange":"NASDAQ","type":"Common Stock","timestamp":1592249566,"price":342.0157,"day_volume":27631112}"#,
    );
    let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(q[0].volume, Some(27_631_112.0));
}

#[test]
fn subscribe_status_fails_become_rejections() {
    let events = wire().on_text(
        r#"{"event":"subscribe-status","status":"warning","success":[{"symbol":"AMZN","exchange":"NASDAQ"}],"fails":[{"symbol":"1211","message":"You are not authorized to access XHKG data."}]}"#,
    );
    assert_eq!(
        events,
        [WireEvent::Rejected {
            instrument: "1211".into(),
            code: ErrorCode::ProviderRejected,
            message: "You are not authorized to access XHKG data.".into()
        }]
    );
    for text in [
        r#"{"event":"subscribe-status","status":"ok","success":[],"fails":null}"#,
        r#"{"event":"subscribe-status","status":"ok","success":[]}"#,
    ] {
        assert!(wire().on_text(text).is_empty(), "{text}");
    }
    let events = wire().on_text(r#"{"event":"subscribe-status","status":"error","fails":[{"symbol":"GBP/USD"}]}"#);
    assert!(matches!(&events[0], WireEvent::Rejected { instrument, .. } if instrument == "GBP/USD"));
}

#[test]
fn odd_frames_do_not_panic() {
    for text in [
        "",
        "null",
        "[]",
        "{}",
        r#"{"event":"price"}"#,
        r#"{"event":"price","symbol":"<>","price":1,"timestamp":1}"#,
    ] {
        let _ = wire().on_text(text);
    }
    assert!(matches!(wire().on_text(r#"{"event":"heartbeat","status":"ok"}"#)[0], WireEvent::Info(_)));
}

#[test]
fn key_goes_in_the_query_url_encoded() {
    let r = wire().request().unwrap();
    assert_eq!(r.uri().query(), Some("apikey=k%26y"));
    assert_eq!(
        action("subscribe", &["AAPL".into(), "EUR/USD".into()]),
        r#"{"action":"subscribe","params":{"symbols":"AAPL,EUR/USD"}}"#
    );
}

#[test]
fn rest_bodies() {
    let one = serde_json::json!({"price": "200.99001"});
    assert_eq!(parse_prices(&one, &["AAPL".into()], 5).unwrap()[0].price, 200.99001);
    let many = serde_json::json!({"AAPL": {"price": "189.30"}, "MSFT": {"code": 404, "status": "error"}});
    let q = parse_prices(&many, &["AAPL".into(), "MSFT".into()], 5).unwrap();
    assert_eq!(q.len(), 1);
    let err = serde_json::json!({"code": 429, "message": "You have run out of API credits for the current minute.", "status": "error"});
    assert!(parse_prices(&err, &["AAPL".into()], 5).unwrap_err().contains("429"));
}
