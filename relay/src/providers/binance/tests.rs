//! Binance's wire against the documented frames, and its admission rules.

use std::time::Duration;

use clap::Parser;
use hamster_shared::{ErrorCode, Quote};

use super::symbols::wire_symbol;
use super::wire::BnWire;
use super::{BinanceArgs, TickerStream};
use crate::providers::stream::{Wire, WireEvent};
use crate::providers::testing::Driven;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    binance: BinanceArgs,
}

fn args(extra: &[&str]) -> BinanceArgs {
    let mut argv = vec!["test", "--binance-ws-url", "ws://127.0.0.1:1/ws"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().binance
}

fn wire_with(extra: &[&str]) -> BnWire {
    let mut w = BnWire::new(&args(extra));
    w.on_open();
    w
}

fn wire() -> BnWire {
    wire_with(&[])
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The documented `@ticker` sample, compact as on the wire.
const TICKER: &str = concat!(
    r#"{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","#,
    r#""c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025","#,
    r#""l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}"#
);

fn quotes(events: &[WireEvent]) -> Vec<Quote> {
    events
        .iter()
        .flat_map(|e| match e {
            WireEvent::Quotes(q) => q.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn defaults_are_the_documented_limits() {
    let a = args(&[]);
    assert_eq!((a.stream, a.max_streams, a.min_send_interval_ms), (TickerStream::Ticker, 1024, 300));
    assert_eq!(a.max_connection_age_secs, 84_600, "23.5 h");
    assert_eq!(a.usd_quote, "USDT");
    let a = args(&["--binance-stream", "miniTicker", "--binance-max-connection-age-secs", "0"]);
    assert_eq!(a.stream, TickerStream::MiniTicker);
    let w = BnWire::new(&a);
    assert_eq!(w.max_age, None, "0 turns the proactive reconnect off");
    assert_eq!(w.min_send_interval(), Some(Duration::from_millis(300)));
    assert!(!w.is_auth_failure(401) && !w.is_auth_failure(403), "no key, so no credentials to refuse");
}

#[test]
fn maps_symbols() {
    let m = |s: &str| wire_symbol(s, "usdt");
    assert_eq!(m("BTC/USD").as_deref(), Some("btcusdt"));
    assert_eq!(m("BTC/USDT").as_deref(), Some("btcusdt"));
    assert_eq!(m("ETH/BTC").as_deref(), Some("ethbtc"));
    assert_eq!(m("BTCUSDT").as_deref(), Some("btcusdt"));
    assert_eq!(m("1000SATS/USD").as_deref(), Some("1000satsusdt"));
    assert_eq!(wire_symbol("BTC/USD", "usdc").as_deref(), Some("btcusdc"));
    for bad in ["BRK.B", "A/B/C", "/USD", "BTC/", "^GSPC", "X", "BTC-USD", "ÄÖ/USD"] {
        assert_eq!(m(bad), None, "{bad}");
    }
}

#[test]
fn subscribes_in_batches_with_integer_ids() {
    let mut w = wire_with(&["--binance-max-streams-per-request", "2"]);
    let frames = w.subscribe(&strings(&["BTC/USD", "ETH/USDT", "SOL/USD"]));
    assert_eq!(
        frames,
        [
            r#"{"method":"SUBSCRIBE","params":["btcusdt@ticker","ethusdt@ticker"],"id":1}"#,
            r#"{"method":"SUBSCRIBE","params":["solusdt@ticker"],"id":2}"#,
        ]
    );
    assert!(w.subscribe(&strings(&["BTC/USD"])).is_empty(), "already subscribed");
    assert_eq!(
        w.unsubscribe(&strings(&["ETH/USDT", "NOT/HELD"])),
        [r#"{"method":"UNSUBSCRIBE","params":["ethusdt@ticker"],"id":3}"#]
    );
    assert!(matches!(w.on_text(r#"{"result":null,"id":1}"#)[0], WireEvent::Info(_)));
    assert!(!w.pending.contains_key(&1), "ack clears the request");

    let mut mini = wire_with(&["--binance-stream", "miniTicker"]);
    assert_eq!(
        mini.subscribe(&strings(&["BTC/USD"])),
        [r#"{"method":"SUBSCRIBE","params":["btcusdt@miniTicker"],"id":1}"#]
    );
}

#[test]
fn two_spellings_share_one_stream() {
    let mut w = wire();
    assert_eq!(w.subscribe(&strings(&["BTC/USD"])).len(), 1);
    assert!(w.subscribe(&strings(&["BTC/USDT", "BTCUSDT"])).is_empty(), "same stream, no new SUBSCRIBE");
    let q = quotes(&w.on_text(&TICKER.replace("BNBBTC", "BTCUSDT")));
    let names: Vec<&str> = q.iter().map(|q| q.symbol.as_str()).collect();
    assert_eq!(names, ["BTC/USD", "BTC/USDT", "BTCUSDT"]);
    assert!(w.unsubscribe(&strings(&["BTC/USD", "BTCUSDT"])).is_empty(), "BTC/USDT still wants it");
    assert_eq!(w.unsubscribe(&strings(&["BTC/USDT"])).len(), 1, "the last one leaves upstream");
    assert!(quotes(&w.on_text(&TICKER.replace("BNBBTC", "BTCUSDT"))).is_empty(), "late ticks are dropped");
}

#[test]
fn parses_the_documented_ticker() {
    let mut w = wire();
    w.subscribe(&strings(&["BNB/BTC"]));
    let q = quotes(&w.on_text(TICKER));
    assert_eq!(q.len(), 1);
    let q = &q[0];
    assert_eq!((q.symbol.as_str(), q.provider.as_str(), q.ts), ("BNB/BTC", "binance", 1_672_515_782_136));
    assert_eq!((q.price, q.bid, q.ask, q.volume), (0.0025, Some(0.0024), Some(0.0026), Some(10000.0)));
    assert_eq!((q.change, q.change_pct), (Some(0.0015), Some(250.0)), "Binance's own 24 h change");

    // Combined-stream wrapper, and µs timestamps.
    let wrapped =
        format!(r#"{{"stream":"bnbbtc@ticker","data":{}}}"#, TICKER.replace("1672515782136", "1672515782136123"));
    let q = quotes(&w.on_text(&wrapped));
    assert_eq!(q[0].ts, 1_672_515_782_136);
}

#[test]
fn parses_the_documented_mini_ticker() {
    let mut w = wire_with(&["--binance-stream", "miniTicker"]);
    w.subscribe(&strings(&["BNB/BTC"]));
    let q = quotes(&w.on_text(
        r#"{"e": "24hrMiniTicker", "E": 1672515782136, "s": "BNBBTC", "c": "0.0025", "o": "0.0010", "h": "0.0025",
            "l": "0.0010", "v": "10000", "q": "18"}"#,
    ));
    let q = &q[0];
    assert_eq!((q.price, q.bid, q.ask, q.volume), (0.0025, None, None, Some(10000.0)), "no invented bid/ask");
    assert!((q.change.unwrap() - 0.0015).abs() < 1e-12);
    assert!((q.change_pct.unwrap() - 150.0).abs() < 1e-9, "from the 24 h open: {:?}", q.change_pct);
    // An array of payloads (the `!miniTicker@arr` shape) is read element by element.
    let arr = r#"[{"e":"24hrMiniTicker","E":1,"s":"BNBBTC","c":"2","o":"0","v":"1"}]"#;
    let q = quotes(&w.on_text(arr));
    assert_eq!((q[0].change, q[0].change_pct), (None, None), "no usable reference, no change");
}

#[test]
fn an_overflowing_change_is_left_out() {
    // Found by fuzz_binance_sessions: a tiny positive 24 h open made change % infinite, which went out as
    // `"change_pct":null`.
    let mut w = wire_with(&["--binance-stream", "miniTicker"]);
    w.subscribe(&strings(&["BNB/BTC"]));
    let q = quotes(
        &w.on_text(r#"{"e":"24hrMiniTicker","E":1,"s":"BNBBTC","c":"2","o":1.6548792761017726e-308,"v":"1"}"#),
    );
    assert_eq!((q[0].price, q[0].change, q[0].change_pct), (2.0, Some(2.0), None));
    let q = quotes(&w.on_text(r#"{"e":"24hrMiniTicker","E":1,"s":"BNBBTC","c":"-1.7e308","o":"1.7e308"}"#));
    assert_eq!((q[0].change, q[0].change_pct), (None, None));
}

#[test]
fn server_shutdown_means_reconnect() {
    for text in [
        r#"{"e": "serverShutdown", "E": 1770123456789}"#,
        r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#,
    ] {
        let events = wire().on_text(text);
        assert!(matches!(&events[..], [WireEvent::Reconnect { reason }] if reason.contains("serverShutdown")));
    }
}

#[test]
fn error_replies_refuse_the_request_they_answer() {
    let mut w = wire();
    w.subscribe(&strings(&["BTC/USD"]));
    w.subscribe(&strings(&["NOPE/USD", "NOPE/USDT"]));
    w.subscribe(&strings(&["ETH/USDT", "BAD/USDT"]));
    // One stream refused: both spellings it feeds, with the stream named in the message.
    let events = w.on_text(r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}"#);
    let [WireEvent::RequestRefused { instruments, code: ErrorCode::ProviderRejected, message }] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(instruments, &strings(&["NOPE/USD", "NOPE/USDT"]));
    assert!(message.contains("invalid stream") && message.contains("nopeusdt@ticker"), "{message}");
    // Two streams refused together: the driver is handed both instruments to find the culprit.
    let events = w.on_text(r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":3}"#);
    let [WireEvent::RequestRefused { instruments, message, .. }] = &events[..] else { panic!("{events:?}") };
    assert_eq!(instruments, &strings(&["ETH/USDT", "BAD/USDT"]));
    assert!(message.contains("SUBSCRIBE of 2 streams: Invalid request: invalid stream"), "{message}");
    assert!(w.unsubscribe(&strings(&["ETH/USDT"])).is_empty(), "forgotten, so nothing to unsubscribe");
    // The driver's retry subscribes it again under a new id.
    let frames = w.subscribe(&strings(&["ETH/USDT"]));
    assert_eq!(frames, [r#"{"method":"SUBSCRIBE","params":["ethusdt@ticker"],"id":4}"#]);
    assert!(w.unsubscribe(&strings(&["NOPE/USD"])).is_empty(), "forgotten, so nothing to unsubscribe");
    // Flat (docs table) and id-less forms are only logged; BTC/USD is untouched.
    for text in [
        r#"{"error":{"code":2,"msg":"Invalid request: missing field `method`"},"id":null}"#,
        r#"{"code": 2, "msg": "Invalid request: too many parameters"}"#,
        r#"{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}"#,
        r#"{"error":{"code":2,"msg":"x"},"id":99}"#,
    ] {
        assert!(matches!(&w.on_text(text)[..], [WireEvent::Info(_)]), "{text}");
    }
    assert_eq!(w.unsubscribe(&strings(&["BTC/USD"])).len(), 1);
}

#[test]
fn bad_spellings_and_the_stream_limit_are_refused_before_anything_is_sent() {
    let mut d = Driven::new(wire_with(&["--binance-max-streams", "2"]));
    let (frames, refused) = d.subscribe(&["A1/USD", "A2/USD", "A3/USD", "BTC/USDT", "BRK.B"]);
    assert_eq!(frames, [r#"{"method":"SUBSCRIBE","params":["a1usdt@ticker","a2usdt@ticker"],"id":1}"#]);
    let refused: Vec<(&str, &str)> = refused.iter().map(|(i, r)| (i.as_str(), r.message.as_str())).collect();
    assert_eq!(refused.iter().map(|(i, _)| *i).collect::<Vec<_>>(), ["A3/USD", "BTC/USDT", "BRK.B"]);
    assert!(refused[0].1.contains("2 streams") && refused[1].1.contains("2 streams"), "{refused:?}");
    assert!(refused[2].1.contains("BASE/QUOTE"), "{refused:?}");
    // Sharing an existing stream costs nothing, so it is still accepted at the limit.
    assert_eq!(d.subscribe(&["A1/USDT"]), (Vec::new(), Vec::new()));
    // Only refusals: nothing at all goes upstream (no request spent just to carry them).
    let (frames, refused) = d.subscribe(&["A4/USD"]);
    assert!(frames.is_empty() && refused.len() == 1, "{frames:?} {refused:?}");
    // Freed capacity is reusable; a new connection resubscribes everything admitted.
    assert_eq!(d.unsubscribe(&["A2/USD"]).len(), 1);
    assert_eq!(d.subscribe(&["A5/USD"]).0.len(), 1);
    let frames = d.open();
    assert!(d.wire.pending.len() == 1 && frames.len() == 1, "{frames:?}");
    assert!(frames[0].contains(r#""params":["a1usdt@ticker","a5usdt@ticker"]"#), "{frames:?}");
}

#[test]
fn old_connections_are_retired_before_the_cut() {
    let w = wire_with(&["--binance-max-connection-age-secs", "60"]);
    assert_eq!(w.max_connection_age(), Some(Duration::from_secs(60)));
}

#[test]
fn odd_frames_do_not_panic() {
    let mut w = wire();
    w.subscribe(&strings(&["BNB/BTC"]));
    for text in [
        "",
        "null",
        "42",
        "\"x\"",
        "[]",
        "[1,null,[]]",
        "{}",
        "{\"e\":1}",
        r#"{"e":"24hrTicker"}"#,
        r#"{"e":"24hrTicker","s":7,"c":"1","E":1}"#,
        r#"{"e":"24hrTicker","s":"BNBBTC","c":"NaN","E":1}"#,
        r#"{"e":"24hrTicker","s":"BNBBTC","c":"inf","E":1}"#,
        r#"{"e":"24hrTicker","s":"BNBBTC","c":"1","E":-5}"#,
        r#"{"e":"24hrTicker","s":"BNBBTC","c":"1","E":"soon"}"#,
        r#"{"e":"24hrTicker","s":"BNBBTC","c":[],"E":1,"b":{},"a":null,"v":"x","p":"","P":true}"#,
        r#"{"e":"24hrTicker","s":"BNBBTC","c":"1e400","E":1}"#,
        r#"{"e":"24hrMiniTicker","s":"BNBBTC","c":"1","o":"-0","E":9223372036854775807}"#,
        r#"{"stream":"x","data":null}"#,
        r#"{"stream":"x","data":[[[[]]]]}"#,
        r#"{"error":"boom","id":"abc"}"#,
        r#"{"error":{"code":"x","msg":5},"id":-1}"#,
        r#"{"code":null,"msg":"m"}"#,
        r#"{"result":[],"id":18446744073709551615}"#,
        r#"{"e":"aggTrade","E":1,"s":"BNBBTC","a":12345,"p":"0.001","q":"100"}"#,
        r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
    ] {
        for event in w.on_text(text) {
            if let WireEvent::Quotes(q) = event {
                assert!(q.iter().all(|q| q.price.is_finite() && q.ts > 0), "{text}: {q:?}");
            }
        }
    }
    // Deep nesting is refused by serde_json's recursion limit rather than overflowing the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(&w.on_text(&deep)[..], [WireEvent::Info(_)]));
}

#[test]
fn a_bad_url_is_reported_without_echoing_it() {
    let mut a = args(&[]);
    a.ws_url = "not a url".into();
    assert_eq!(BnWire::new(&a).request().unwrap_err(), "invalid --binance-ws-url");
    assert!(wire().request().is_ok());
}
