//! Fuzzing Finnhub's parser ([`FhWire::on_text`]), alone and in sessions that interleave frames with
//! subscribes, unsubscribes and reconnects, checking the wire's own bookkeeping after every step. See
//! [`crate::providers::testing::fuzz`] for the strategies and the quote checks.

use proptest::prelude::*;

use hamster_shared::Symbol;

use super::symbols::SymbolMap;
use super::wire::FhWire;
use super::{FinnhubArgs, NAME};
use crate::providers::stream::Wire;
use crate::providers::testing::fuzz::{self, check_events, quotes, Op};
use crate::providers::testing::Driven;
use crate::secret::Secret;

/// The documented frames (`docs/providers/finnhub.md`, What is supported).
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
    let mut args = <Cli as clap::Parser>::try_parse_from(["relay"]).expect("defaults parse").finnhub;
    args.ws_url = "ws://127.0.0.1:1".into();
    args.reply_pong = reply_pong;
    args.min_send_interval_ms = 0;
    let map = SymbolMap::from_args(&args).expect("default mapping");
    FhWire::new(&args, Secret::new("k"), map)
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
        let mut d = Driven::new(wire(false));
        d.wire.max_symbols = 3;
        for op in ops {
            match op {
                Op::Open => {
                    d.open();
                }
                Op::Subscribe(list) => {
                    d.subscribe_owned(list);
                }
                Op::Unsubscribe(list) => {
                    d.unsubscribe_owned(list);
                }
                Op::Frame(text) => {
                    let held: Vec<Symbol> =
                        d.wire.by_wire.values().flatten().filter_map(|i| Symbol::parse(i).ok()).collect();
                    let events = d.on_text(&text);
                    check_events(NAME, &events)?;
                    for q in quotes(&events) {
                        prop_assert!(held.contains(&q.symbol), "quote for {} which is not subscribed", q.symbol);
                    }
                }
            }
            check_bookkeeping(&d.wire)?;
            prop_assert!(d.desired.upstream_len() <= 3, "over the symbol limit");
            for instrument in d.wire.by_wire.values().flatten() {
                prop_assert!(d.desired.contains(instrument), "{} streams but was never admitted", instrument);
            }
        }
    }
}
