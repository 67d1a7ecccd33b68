//! Fuzzing Twelve Data's parsers: the WebSocket frames ([`TdWire::on_text`]) and the REST `/price` fallback
//! bodies ([`parse_prices`]). See [`crate::providers::testing::fuzz`] for the strategies and the quote checks.

use proptest::prelude::*;

use hamster_shared::Symbol;

use super::rest_fallback::parse_prices;
use super::wire::TdWire;
use super::NAME;
use crate::providers::stream::Wire;
use crate::providers::testing::fuzz::{self, check_events, check_quote};
use crate::secret::Secret;

/// The documented frames (`docs/providers/twelvedata.md`, What is supported), compact as on the wire.
const SAMPLES: &[&str] = &[
    r#"{"event":"price","symbol":"AAPL","currency":"USD","exchange":"NASDAQ","type":"Common Stock","timestamp":1592249566,"price":342.0157,"day_volume":27631112}"#,
    r#"{"event":"price","symbol":"XAU/USD","currency":"USD","currency_base":"Gold Spot","currency_quote":"US Dollar","type":"Physical Currency","timestamp":1647950462,"price":1925.18,"bid":1925.05,"ask":1925.32}"#,
    r#"{"event":"price","symbol":"BTC/USD","currency_base":"Bitcoin","currency_quote":"US Dollar","exchange":"Binance","type":"Digital Currency","timestamp":1600595462,"price":10964.8,"day_volume":38279}"#,
    r#"{"event":"subscribe-status","status":"ok","success":[{"symbol":"AAPL","exchange":"NASDAQ","country":"United States","type":"Common Stock"},{"symbol":"EUR/USD","exchange":"FOREX","country":"","type":"Physical Currency"}],"fails":[]}"#,
    r#"{"event":"subscribe-status","status":"ok","success":[{"symbol":"AAPL","exchange":"NASDAQ","country":"United States","type":"Common Stock"}],"fails":null}"#,
    r#"{"event":"subscribe-status","status":"warning","success":[{"symbol":"AMZN","exchange":"NASDAQ"},{"symbol":"XAG/USD"}],"fails":[{"symbol":"1211","message":"You are not authorized to access XHKG data."},{"symbol":"HG1","message":"You are not authorized to access XFRA data."}]}"#,
    r#"{"event":"subscribe-status","status":"error","fails":[{"symbol":"GBP/USD"}]}"#,
    r#"{"event":"subscribe-status","status":"error","messages":["Cant parse message"]}"#,
    r#"{"event":"unsubscribe-status","status":"error","messages":["Symbol not found"]}"#,
    r#"{"event":"reset-status","status":"error","messages":["Reset failed"]}"#,
    r#"{"event":"heartbeat","status":"ok"}"#,
    r#"{"event":"error","code":401,"message":"apikey is invalid","status":"error"}"#,
];

/// REST `/price` bodies (`docs/providers/twelvedata.md`, REST fallback): one symbol, a batch, a batch with a failing symbol, and error bodies.
const REST_SAMPLES: &[&str] = &[
    r#"{"price": "200.99001"}"#,
    r#"{"AAPL": {"price": "189.30"}, "MSFT": {"price": "415.50"}}"#,
    r#"{"AAPL": {"price": "189.30"}, "MSFT": {"code": 404, "message": "**symbol** not found", "status": "error"}}"#,
    r#"{"code": 429, "message": "You have run out of API credits for the current minute.", "status": "error"}"#,
    r#"{"code": 401, "message": "**apikey** parameter is incorrect or not specified.", "status": "error"}"#,
];

fn wire() -> TdWire {
    TdWire { ws_url: "ws://127.0.0.1:1/v1/quotes/price".into(), key: Secret::new("k") }
}

/// Instruments the REST fallback may ask for: the samples' keys, and names that collide with body fields.
fn rest_symbols() -> impl Strategy<Value = Vec<String>> {
    let one = prop_oneof![
        4 => prop::sample::select(vec!["AAPL", "MSFT", "EUR/USD", "price", "code", "status", ""]).prop_map(str::to_owned),
        1 => ".{0,8}",
    ];
    prop::collection::vec(one, 0..4)
}

proptest! {
    #[test]
    fn fuzz_twelvedata_arbitrary_text(text in fuzz::arbitrary_text()) {
        check_events(NAME, &wire().on_text(&text))?;
    }

    #[test]
    fn fuzz_twelvedata_arbitrary_json(doc in fuzz::arbitrary_json()) {
        check_events(NAME, &wire().on_text(&doc.text()))?;
    }

    #[test]
    fn fuzz_twelvedata_mutated_samples(text in fuzz::mutated(SAMPLES)) {
        check_events(NAME, &wire().on_text(&text))?;
    }

    /// Whatever the body, quotes are only for requested symbols and carry the response time.
    #[test]
    fn fuzz_twelvedata_rest_bodies(
        body in prop_oneof![3 => fuzz::mutated(REST_SAMPLES), 1 => fuzz::arbitrary_json().prop_map(|j| j.text())],
        symbols in rest_symbols(),
    ) {
        // reqwest hands over only bodies that are JSON.
        let Ok(body) = serde_json::from_str::<serde_json::Value>(&body) else { return Ok(()) };
        if let Ok(quotes) = parse_prices(&body, &symbols, 5) {
            for q in &quotes {
                check_quote(NAME, q)?;
                prop_assert_eq!(q.ts, 5);
                prop_assert!(symbols.iter().any(|s| Symbol::parse(s).ok().as_ref() == Some(&q.symbol)), "{:?}", q);
            }
        }
    }
}
