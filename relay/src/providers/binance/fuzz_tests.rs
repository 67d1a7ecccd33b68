//! Fuzzing Binance's parser ([`BnWire::on_text`]), alone and in sessions that interleave frames with
//! subscribes, unsubscribes and reconnects, checking the wire's own bookkeeping after every step. See
//! [`crate::providers::testing::fuzz`] for the strategies and the quote checks.

use proptest::prelude::*;

use hamster_shared::Symbol;

use super::wire::{BnWire, MAX_PENDING};
use super::{BinanceArgs, TickerStream, NAME};
use crate::providers::stream::Wire;
use crate::providers::testing::fuzz::{self, check_events, quotes, Op};
use crate::providers::testing::Driven;

/// The documented frames (`docs/providers/binance.md`, What is supported), and replies to the first requests.
const SAMPLES: &[&str] = &[
    concat!(
        r#"{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","#,
        r#""c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025","#,
        r#""l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}"#
    ),
    r#"{"e":"24hrMiniTicker","E":1672515782136,"s":"BNBBTC","c":"0.0025","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18"}"#,
    r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1672515782136123,"s":"BTCUSDT","p":"-12.5","P":"-0.02","c":"67000.5","b":"67000.4","a":"67000.6","o":"67013.0","v":"1234.5"}}"#,
    r#"[{"e":"24hrMiniTicker","E":1,"s":"BNBBTC","c":"2","o":"0","v":"1"},{"e":"24hrMiniTicker","E":2,"s":"ETHBTC","c":"0.05","o":"0.04","v":"7"}]"#,
    r#"{"e":"serverShutdown","E":1770123456789}"#,
    r#"{"result":null,"id":1}"#,
    r#"{"result":["bnbbtc@ticker","btcusdt@ticker"],"id":2}"#,
    r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}"#,
    r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":3}"#,
    r#"{"code":2,"msg":"Invalid request: too many parameters"}"#,
    r#"{"e":"aggTrade","E":1,"s":"BNBBTC","a":12345,"p":"0.001","q":"100"}"#,
];

/// Instruments a session subscribes: several sharing one stream, one Binance cannot spell, anything.
fn instruments() -> impl Strategy<Value = Vec<String>> {
    let one = prop_oneof![
        6 => prop::sample::select(vec![
            "BNB/BTC", "BNBBTC", "BTC/USD", "BTC/USDT", "BTCUSDT", "ETH/BTC", "BRK.B", "X", "NOPE/USD",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,8}",
    ];
    prop::collection::vec(one, 0..5)
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    binance: BinanceArgs,
}

/// A wire with the default flags but for the stream limits, unpaced.
fn wire(stream: TickerStream, max_streams: usize, per_request: usize) -> BnWire {
    let mut args = <Cli as clap::Parser>::try_parse_from(["relay"]).expect("defaults parse").binance;
    args.stream = stream;
    args.max_streams = max_streams;
    args.max_streams_per_request = per_request;
    args.min_send_interval_ms = 0;
    let mut w = BnWire::new(&args);
    w.on_open();
    w
}

/// A wire that streams every instrument the samples name (all admissible).
fn subscribed() -> BnWire {
    let mut w = wire(TickerStream::Ticker, 1024, 200);
    w.subscribe(&["BNB/BTC".into(), "BTC/USD".into(), "BTCUSDT".into(), "ETH/BTC".into()]);
    w
}

/// The two maps describe the same subscriptions, within the stream limit.
fn check_bookkeeping(w: &BnWire) -> Result<(), TestCaseError> {
    prop_assert!(w.symbols.len() <= w.max_streams);
    prop_assert!(w.pending.len() <= MAX_PENDING);
    for (instrument, symbol) in &w.by_instrument {
        prop_assert!(w.symbols.get(symbol).is_some_and(|fed| fed.contains(instrument)), "{} → {}", instrument, symbol);
    }
    for (symbol, fed) in &w.symbols {
        prop_assert!(!fed.is_empty(), "stream {} feeds nobody", symbol);
        for instrument in fed {
            prop_assert_eq!(w.by_instrument.get(instrument), Some(symbol));
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_binance_arbitrary_text(text in fuzz::arbitrary_text()) {
        check_events(NAME, &subscribed().on_text(&text))?;
    }

    #[test]
    fn fuzz_binance_arbitrary_json(doc in fuzz::arbitrary_json()) {
        check_events(NAME, &subscribed().on_text(&doc.text()))?;
    }

    #[test]
    fn fuzz_binance_mutated_samples(text in fuzz::mutated(SAMPLES), mini in any::<bool>()) {
        let mut w = subscribed();
        if mini {
            w.stream = TickerStream::MiniTicker;
        }
        check_events(NAME, &w.on_text(&text))?;
        check_bookkeeping(&w)?;
    }

    /// Quotes only ever for instruments held when the frame came, and the bookkeeping stays consistent.
    #[test]
    fn fuzz_binance_sessions(
        max_streams in 1usize..6,
        per_request in 1usize..4,
        ops in prop::collection::vec(fuzz::op(instruments, SAMPLES), 1..40),
    ) {
        let mut d = Driven::new(wire(TickerStream::Ticker, max_streams, per_request));
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
                        d.wire.by_instrument.keys().filter_map(|i| Symbol::parse(i).ok()).collect();
                    let events = d.on_text(&text);
                    check_events(NAME, &events)?;
                    for q in quotes(&events) {
                        prop_assert!(held.contains(&q.symbol), "quote for {} which is not subscribed", q.symbol);
                    }
                }
            }
            check_bookkeeping(&d.wire)?;
            for instrument in d.wire.by_instrument.keys() {
                prop_assert!(d.desired.contains(instrument), "{} streams but was never admitted", instrument);
            }
        }
    }
}
