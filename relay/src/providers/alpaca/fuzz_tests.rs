//! Fuzzing Alpaca's parser ([`AlpacaWire::on_text`]), alone and in sessions that interleave frames with
//! subscribes, unsubscribes and reconnects. See [`crate::providers::testing::fuzz`] for the strategies and the quote
//! checks.

use proptest::prelude::*;

use std::time::Duration;

use hamster_shared::Symbol;

use super::wire::AlpacaWire;
use super::{Feed, NAME};
use crate::providers::stream::{Wire, WireEvent};
use crate::providers::testing::fuzz::{self, check_events, quotes, Op};
use crate::secret::Secret;

/// The documented frames (`docs/providers/alpaca.md`, What is supported; Limits), as arrays as on the wire.
const SAMPLES: &[&str] = &[
    r#"[{"T":"success","msg":"connected"}]"#,
    r#"[{"T":"success","msg":"authenticated"}]"#,
    r#"[{"T":"subscription","trades":["AAPL","AMD"],"quotes":["AAPL","AMD"],"bars":[],"updatedBars":[],"dailyBars":[],"statuses":[],"lulds":[],"corrections":["AAPL","AMD"],"cancelErrors":["AAPL","AMD"]}]"#,
    r#"[{"T":"t","i":96921,"S":"AMD","x":"D","p":87.67,"s":1,"t":"2021-02-22T15:51:46.208Z","c":["@","I"],"z":"C"}]"#,
    r#"[{"T":"q","S":"AMD","bx":"U","bp":87.66,"bs":1,"ax":"Q","ap":87.68,"as":4,"t":"2021-02-22T15:51:45.335689322Z","c":["R"],"z":"C"}]"#,
    r#"[{"T":"q","S":"AMD","bp":87.70,"ap":87.72,"t":"2021-02-22T15:51:47.000000001Z"},{"T":"t","S":"AAPL","p":126.55,"t":"2021-02-22T15:51:44.208Z"}]"#,
    r#"[{"T":"b","S":"SPY","o":388.985,"h":389.13,"l":388.975,"c":389.12,"v":49378,"t":"2021-02-22T19:15:00Z"}]"#,
    r#"[{"T":"s","S":"AAPL","sc":"H","sm":"Trading Halt","rc":"T12","rm":"Trading Halted; For information requested by NASDAQ","t":"2021-02-22T19:15:00Z","z":"C"}]"#,
    r#"[{"T":"error","code":402,"msg":"auth failed"}]"#,
    r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#,
    r#"[{"T":"error","code":406,"msg":"connection limit exceeded"}]"#,
    r#"[{"T":"error","code":409,"msg":"insufficient subscription"}]"#,
    r#"[{"T":"error","code":400,"msg":"invalid syntax"}]"#,
];

fn wire() -> AlpacaWire {
    let mut w = AlpacaWire::new(
        "ws://127.0.0.1:1/v2/iex".into(),
        Secret::new("key"),
        Secret::new("secret"),
        Feed::Iex,
        Some(Duration::from_secs(10)),
    );
    w.on_open();
    w
}

/// A wire that is authenticated and streams the samples' symbols.
fn live() -> AlpacaWire {
    let mut w = wire();
    w.on_text(SAMPLES[0]);
    w.on_text(SAMPLES[1]);
    w.subscribe(&["AAPL".into(), "AMD".into()]);
    w.on_text(SAMPLES[2]);
    w
}

fn instruments() -> impl Strategy<Value = Vec<String>> {
    let one = prop_oneof![
        6 => prop::sample::select(vec!["AAPL", "AMD", "TSLA", "MSFT", "SPY", "BRK.B"]).prop_map(str::to_owned),
        1 => ".{0,6}",
    ];
    prop::collection::vec(one, 0..4)
}

fn is_auth(event: &WireEvent) -> bool {
    matches!(event, WireEvent::Reply(frame) if frame.contains(r#""action":"auth""#))
}

proptest! {
    #[test]
    fn fuzz_alpaca_arbitrary_text(text in fuzz::arbitrary_text()) {
        check_events(NAME, &live().on_text(&text))?;
    }

    #[test]
    fn fuzz_alpaca_arbitrary_json(doc in fuzz::arbitrary_json()) {
        check_events(NAME, &live().on_text(&doc.text()))?;
    }

    #[test]
    fn fuzz_alpaca_mutated_samples(text in fuzz::mutated(SAMPLES)) {
        check_events(NAME, &live().on_text(&text))?;
    }

    /// Quotes only for instruments requested when the frame came; credentials sent at most once a connection.
    #[test]
    fn fuzz_alpaca_sessions(ops in prop::collection::vec(fuzz::op(instruments, SAMPLES), 1..40)) {
        let mut w = wire();
        let mut auths = 0;
        for op in ops {
            match op {
                Op::Open => {
                    w.on_open();
                    auths = 0;
                }
                Op::Subscribe(list) => {
                    w.subscribe(&list);
                }
                Op::Unsubscribe(list) => {
                    w.unsubscribe(&list);
                }
                Op::Frame(text) => {
                    let held: Vec<Symbol> = w.requested.iter().filter_map(|i| Symbol::parse(i).ok()).collect();
                    let events = w.on_text(&text);
                    check_events(NAME, &events)?;
                    for q in quotes(&events) {
                        prop_assert!(held.contains(&q.symbol), "quote for {} which is not requested", q.symbol);
                    }
                    auths += events.iter().filter(|e| is_auth(e)).count();
                    prop_assert!(auths <= 1, "authenticated twice on one connection");
                }
            }
        }
    }
}
