//! Fuzzing Finnhub's parser ([`FhWire::on_text`]), alone and in sessions that interleave frames with
//! subscribes, unsubscribes and reconnects, checking the wire's own bookkeeping after every step. See
//! [`crate::providers::fuzz`] for the strategies and the quote checks.

use proptest::prelude::*;

use super::*;
use crate::providers::fuzz::{self, check_events, quotes, Op};

/// The documented frames (`shared/reference/upstream-protocols.md` §4.4).
const SAMPLES: &[&str] = &[
    r#"{"type":"trade","data":[{"s":"BINANCE:BTCUSDT","p":7296.89,"t":1575526691134,"v":0.011467}]}"#,
    r#"{"data":[{"c":["1","8","24","12"],"p":122.1,"s":"TSLA","t":1672348887195,"v":1},{"c":["1","24","12"],"p":129.58,"s":"AAPL","t":1672348887666,"v":1}],"type":"trade"}"#,
    r#"{"data":[{"p":7296.89,"s":"OANDA:EUR_USD","t":1575526691134,"v":0}],"type":"trade"}"#,
    r#"{"type":"ping"}"#,
    r#"{"msg":"Subscribing to too many symbols","type":"error"}"#,
    r#"{"msg":"Invalid symbol","type":"error"}"#,
    r#"{"type":"news","data":[]}"#,
];

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    finnhub: FinnhubArgs,
}

/// A wire with the default flags (the documented mapping and limits).
fn wire(reply_pong: bool) -> FhWire {
    let args = <Cli as clap::Parser>::try_parse_from(["relay"]).expect("defaults parse").finnhub;
    FhWire {
        ws_url: "ws://127.0.0.1:1".into(),
        key: Secret::new("k"),
        map: SymbolMap::from_args(&args).expect("default mapping"),
        reply_pong,
        auth_statuses: args.auth_statuses,
        min_send_interval: Duration::ZERO,
        by_wire: HashMap::new(),
        sent: Vec::new(),
        admitted: Arc::default(),
    }
}

/// A wire streaming every symbol the samples name.
fn subscribed() -> FhWire {
    let mut w = wire(true);
    w.subscribe(&["BTC/USD".into(), "BTC/USDT".into(), "TSLA".into(), "AAPL".into(), "EUR/USD".into()]);
    w
}

fn instruments() -> impl Strategy<Value = Vec<String>> {
    let one = prop_oneof![
        6 => prop::sample::select(vec!["BTC/USD", "BTC/USDT", "TSLA", "AAPL", "EUR/USD", "MSFT"]).prop_map(str::to_owned),
        1 => ".{0,8}",
    ];
    prop::collection::vec(one, 0..4)
}

/// `sent` (blamed for limit errors, newest last) lists each subscribed Finnhub symbol exactly once.
fn check_bookkeeping(w: &FhWire) -> Result<(), TestCaseError> {
    let mut sent = w.sent.clone();
    sent.sort();
    let mut subscribed: Vec<String> = w.by_wire.keys().cloned().collect();
    subscribed.sort();
    prop_assert_eq!(sent, subscribed);
    prop_assert!(w.by_wire.values().all(|fed| !fed.is_empty()));
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_finnhub_arbitrary_text(text in fuzz::arbitrary_text()) {
        check_events(NAME, &subscribed().on_text(&text))?;
    }

    #[test]
    fn fuzz_finnhub_arbitrary_json(doc in fuzz::arbitrary_json()) {
        check_events(NAME, &subscribed().on_text(&doc.text()))?;
    }

    #[test]
    fn fuzz_finnhub_mutated_samples(text in fuzz::mutated(SAMPLES)) {
        let mut w = subscribed();
        check_events(NAME, &w.on_text(&text))?;
        check_bookkeeping(&w)?;
    }

    /// Quotes only for instruments subscribed when the frame came, and the bookkeeping stays consistent.
    #[test]
    fn fuzz_finnhub_sessions(ops in prop::collection::vec(fuzz::op(instruments, SAMPLES), 1..40)) {
        let mut w = wire(false);
        for op in ops {
            match op {
                Op::Open => {
                    w.on_open();
                }
                Op::Subscribe(list) => {
                    w.subscribe(&list);
                }
                Op::Unsubscribe(list) => {
                    w.unsubscribe(&list);
                }
                Op::Frame(text) => {
                    let held: Vec<Symbol> =
                        w.by_wire.values().flatten().filter_map(|i| Symbol::parse(i).ok()).collect();
                    let events = w.on_text(&text);
                    check_events(NAME, &events)?;
                    for q in quotes(&events) {
                        prop_assert!(held.contains(&q.symbol), "quote for {} which is not subscribed", q.symbol);
                    }
                }
            }
            check_bookkeeping(&w)?;
        }
    }
}
