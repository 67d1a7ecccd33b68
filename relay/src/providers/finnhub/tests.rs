//! Finnhub's wire against the documented frames, its symbol mapping, and its admission rules.

use std::time::Duration;

use clap::Parser;
use hamster_shared::{ErrorCode, Quote};

use super::symbols::SymbolMap;
use super::wire::FhWire;
use super::{stale_after, FinnhubArgs};
use crate::providers::stream::{Wire, WireEvent};
use crate::providers::testing::Driven;
use crate::secret::Secret;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    finnhub: FinnhubArgs,
}

fn args(extra: &[&str]) -> FinnhubArgs {
    let mut argv = vec!["relay"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().finnhub
}

fn wire_with(extra: &[&str]) -> FhWire {
    let mut a = args(extra);
    a.ws_url = "ws://127.0.0.1:1".into();
    a.min_send_interval_ms = 0;
    FhWire::new(&a, Secret::new("k&y"), SymbolMap::from_args(&a).unwrap())
}

fn wire() -> FhWire {
    wire_with(&[])
}

fn quotes(events: &[WireEvent]) -> Vec<Quote> {
    events
        .iter()
        .filter_map(|e| match e {
            WireEvent::Quotes(q) => Some(q.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn defaults_parse_and_are_documented_values() {
    let a = args(&[]);
    assert_eq!(a.ws_url, "wss://ws.finnhub.io");
    assert_eq!(a.max_symbols, 50);
    assert_eq!(a.auth_statuses, [401, 403]);
    assert!(!a.reply_pong);
    assert_eq!(a.stale_ms, None);
    let a = args(&["--finnhub-reply-pong", "--finnhub-auth-statuses", "401", "--finnhub-max-symbols", "250"]);
    assert!(a.reply_pong);
    assert_eq!((a.auth_statuses.as_slice(), a.max_symbols), (&[401][..], 250));
}

#[test]
fn maps_canonical_instruments_to_finnhub_symbols() {
    let map = SymbolMap::from_args(&args(&[])).unwrap();
    assert_eq!(map.to_wire("AAPL"), "AAPL");
    assert_eq!(map.to_wire("BRK.B"), "BRK.B");
    assert_eq!(map.to_wire("BTC/USD"), "BINANCE:BTCUSDT");
    assert_eq!(map.to_wire("BTC/USDT"), "BINANCE:BTCUSDT");
    assert_eq!(map.to_wire("ETH/BTC"), "BINANCE:ETHBTC");
    assert_eq!(map.to_wire("EUR/USD"), "OANDA:EUR_USD");
    assert_eq!(map.to_wire("USD/JPY"), "OANDA:USD_JPY");

    let map = SymbolMap::from_args(&args(&[
        "--finnhub-crypto-exchange",
        "COINBASE",
        "--finnhub-crypto-separator",
        "-",
        "--finnhub-crypto-usd-quote",
        "",
        "--finnhub-forex-exchange",
        "FXCM",
        "--finnhub-forex-separator",
        "/",
        "--finnhub-symbol-map",
        "xau/usd=OANDA:XAU_USD, ETH/EUR = KRAKEN:XETHZEUR,SPX=IC MARKETS:1",
    ]))
    .unwrap();
    assert_eq!(map.to_wire("BTC/USD"), "COINBASE:BTC-USD");
    assert_eq!(map.to_wire("EUR/USD"), "FXCM:EUR/USD");
    assert_eq!(map.to_wire("XAU/USD"), "OANDA:XAU_USD");
    assert_eq!(map.to_wire("ETH/EUR"), "KRAKEN:XETHZEUR");
    assert_eq!(map.to_wire("SPX"), "IC MARKETS:1");

    let map = SymbolMap::from_args(&args(&["--finnhub-crypto-exchange", ""])).unwrap();
    assert_eq!(map.to_wire("BTC/USD"), "BTCUSDT");

    for bad in ["XAU/USD", "XAU/USD=", "<>=X", "=OANDA:X"] {
        let err = SymbolMap::from_args(&args(&["--finnhub-symbol-map", bad])).unwrap_err();
        assert!(err.contains("--finnhub-symbol-map"), "{bad}: {err}");
    }
}

#[test]
fn one_frame_per_symbol_in_the_documented_shape() {
    let mut w = wire();
    assert_eq!(
        w.subscribe(&strings(&["AAPL", "BTC/USD", "EUR/USD"])),
        [
            r#"{"type":"subscribe","symbol":"AAPL"}"#,
            r#"{"type":"subscribe","symbol":"BINANCE:BTCUSDT"}"#,
            r#"{"type":"subscribe","symbol":"OANDA:EUR_USD"}"#
        ]
    );
    assert_eq!(w.unsubscribe(&strings(&["AAPL"])), [r#"{"type":"unsubscribe","symbol":"AAPL"}"#]);
    assert!(w.unsubscribe(&strings(&["AAPL", "MSFT"])).is_empty(), "nothing subscribed, nothing sent");
    assert_eq!(FhWire::frame("subscribe", r#"IC "X":1"#), r#"{"type":"subscribe","symbol":"IC \"X\":1"}"#);
}

#[test]
fn instruments_sharing_a_finnhub_symbol_share_one_subscription() {
    let mut w = wire();
    assert_eq!(w.subscribe(&strings(&["BTC/USD"])).len(), 1);
    assert!(w.subscribe(&strings(&["BTC/USDT"])).is_empty());
    let events = w
        .on_text(r#"{"data":[{"p":7296.89,"s":"BINANCE:BTCUSDT","t":1575526691134,"v":0.011467}],"type":"trade"}"#);
    let q = quotes(&events);
    let names: Vec<&str> = q.iter().map(|q| q.symbol.as_str()).collect();
    assert_eq!(names, ["BTC/USD", "BTC/USDT"]);
    assert!(w.unsubscribe(&strings(&["BTC/USD"])).is_empty(), "BTC/USDT still needs it");
    assert_eq!(w.unsubscribe(&strings(&["BTC/USDT"])).len(), 1);
}

#[test]
fn parses_documented_trade_frames() {
    let mut w = wire();
    w.subscribe(&strings(&["BTC/USD", "TSLA", "AAPL"]));
    // The docs sample (pretty key order) and a real capture (alphabetical, with conditions).
    let q = quotes(&w.on_text(
        r#"{"type":"trade","data":[{"s":"BINANCE:BTCUSDT","p":7296.89,"t":1575526691134,"v":0.011467}]}"#,
    ));
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].symbol.as_str(), q[0].price, q[0].ts), ("BTC/USD", 7296.89, 1_575_526_691_134));
    assert_eq!(q[0].provider, "finnhub");
    assert_eq!((q[0].volume, q[0].bid, q[0].ask, q[0].change), (None, None, None, None), "trade size is no volume");
    let q = quotes(&w.on_text(
        r#"{"data":[{"c":["1","8","24","12"],"p":122.1,"s":"TSLA","t":1672348887195,"v":1},{"c":["1","24","12"],"p":129.58,"s":"AAPL","t":1672348887666,"v":1}],"type":"trade"}"#,
    ));
    let got: Vec<(&str, f64, i64)> = q.iter().map(|q| (q.symbol.as_str(), q.price, q.ts)).collect();
    assert_eq!(got, [("TSLA", 122.1, 1_672_348_887_195), ("AAPL", 129.58, 1_672_348_887_666)]);
}

#[test]
fn latest_trade_per_symbol_wins_within_a_batch() {
    let mut w = wire();
    w.subscribe(&strings(&["AAPL", "MSFT"]));
    let q = quotes(&w.on_text(
        r#"{"data":[{"p":3,"s":"AAPL","t":1700000000003,"v":1},{"p":1,"s":"AAPL","t":1700000000001,"v":1},{"p":10,"s":"MSFT","t":1700000000005,"v":0},{"p":11,"s":"MSFT","t":1700000000005,"v":2},{"p":9,"s":"NOTSUB","t":1700000000009,"v":2}],"type":"trade"}"#,
    ));
    let got: Vec<(&str, f64)> = q.iter().map(|q| (q.symbol.as_str(), q.price)).collect();
    assert_eq!(got, [("AAPL", 3.0), ("MSFT", 11.0)], "highest t, later on a tie; unsubscribed dropped");
}

#[test]
fn pings_are_answered_only_when_configured() {
    assert!(wire().on_text(r#"{"type":"ping"}"#).is_empty());
    assert_eq!(
        wire_with(&["--finnhub-reply-pong"]).on_text(r#"{"type":"ping"}"#),
        [WireEvent::Reply(r#"{"type":"pong"}"#.into())]
    );
}

#[test]
fn too_many_symbols_rejects_the_latest_subscribes() {
    let mut w = wire();
    w.subscribe(&strings(&["AAPL", "MSFT", "BTC/USD"]));
    let error = r#"{"msg":"Subscribing to too many symbols","type":"error"}"#;
    let events = w.on_text(error);
    assert_eq!(
        events,
        [WireEvent::Rejected {
            instrument: "BTC/USD".into(),
            code: ErrorCode::ProviderRejected,
            message: "Finnhub refused BINANCE:BTCUSDT: Subscribing to too many symbols (the plan's symbol limit)"
                .into()
        }]
    );
    assert!(matches!(&w.on_text(error)[0], WireEvent::Rejected { instrument, .. } if instrument == "MSFT"));
    // No longer subscribed: no trades for it, no unsubscribe for it.
    assert!(quotes(&w.on_text(r#"{"data":[{"p":1,"s":"MSFT","t":1,"v":1}],"type":"trade"}"#)).is_empty());
    assert!(w.unsubscribe(&strings(&["MSFT"])).is_empty());
    // Unrelated errors reject nothing.
    assert!(matches!(w.on_text(r#"{"msg":"Something else","type":"error"}"#).as_slice(), [WireEvent::Info(_)]));
    assert!(matches!(&w.on_text(error)[0], WireEvent::Rejected { instrument, .. } if instrument == "AAPL"));
    assert!(matches!(w.on_text(error).as_slice(), [WireEvent::Info(_)]), "nothing left to blame");
}

#[test]
fn a_new_connection_starts_empty() {
    let mut w = wire();
    assert_eq!(w.subscribe(&strings(&["AAPL"])).len(), 1);
    assert!(w.subscribe(&strings(&["AAPL"])).is_empty());
    assert!(w.on_open().is_empty());
    assert_eq!(w.subscribe(&strings(&["AAPL"])).len(), 1, "resubscribed on the new connection");
}

#[test]
fn odd_frames_do_not_panic() {
    let mut w = wire();
    w.subscribe(&strings(&["AAPL"]));
    for text in [
        "",
        "null",
        "[]",
        "{}",
        "42",
        r#"{"type":7}"#,
        r#"{"type":"trade"}"#,
        r#"{"type":"trade","data":null}"#,
        r#"{"type":"trade","data":{}}"#,
        r#"{"type":"trade","data":[1,null,"x",[],{}]}"#,
        r#"{"type":"trade","data":[{"s":"AAPL","p":"1.5","t":1}]}"#,
        r#"{"type":"trade","data":[{"s":"AAPL","p":1e400,"t":1}]}"#,
        r#"{"type":"trade","data":[{"s":"AAPL","p":1,"t":-5}]}"#,
        r#"{"type":"trade","data":[{"s":"AAPL","p":1,"t":1e300}]}"#,
        r#"{"type":"error"}"#,
        r#"{"type":"error","msg":null}"#,
        r#"{"type":"news","data":[]}"#,
        r#"{"type":"ping","extra":true}"#,
    ] {
        let _ = w.on_text(text);
    }
    let events = w.on_text(r#"{"type":"trade","data":[{"s":"AAPL"},{"s":"AAPL","p":2.5,"t":1700000000000}]}"#);
    assert_eq!(quotes(&events).len(), 1, "one bad trade does not cost the batch: {events:?}");
}

#[test]
fn token_goes_in_the_query_url_encoded() {
    let r = wire().request().unwrap();
    assert_eq!(r.uri().query(), Some("token=k%26y"));
    assert_eq!(r.uri().host(), Some("127.0.0.1"));
    assert!(wire().is_auth_failure(401) && !wire().is_auth_failure(503));
    assert!(wire_with(&["--finnhub-auth-statuses", "400,401"]).is_auth_failure(400));
}

#[test]
fn stale_default_allows_for_finnhub_pings() {
    let s = |ms| Duration::from_millis(ms);
    assert_eq!(stale_after(None, s(30_000)), s(150_000));
    assert_eq!(stale_after(None, s(600_000)), s(600_000));
    assert_eq!(stale_after(Some(700), s(30_000)), s(700));
    assert_eq!(stale_after(Some(0), s(30_000)), s(100));
}

fn driven(max: &str) -> Driven<FhWire> {
    Driven::new(wire_with(&["--finnhub-max-symbols", max]))
}

#[test]
fn the_symbol_limit_refuses_the_excess_before_anything_is_sent() {
    let mut d = driven("2");
    let (frames, refused) = d.subscribe(&["AAPL", "BTC/USD", "BTC/USDT", "MSFT"]);
    assert_eq!(frames.len(), 2, "AAPL and one BINANCE:BTCUSDT shared by two instruments: {frames:?}");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, "MSFT");
    assert!(refused[0].1.message.contains("at most 2 symbols"), "{}", refused[0].1.message);
    // Resubscribing an admitted one is fine; unsubscribing a refused one sends nothing upstream.
    assert_eq!(d.subscribe(&["AAPL"]), (Vec::new(), Vec::new()));
    assert!(d.unsubscribe(&["MSFT"]).is_empty());
    // Freeing a slot makes room.
    assert_eq!(d.unsubscribe(&["AAPL", "MSFT"]).len(), 1);
    let (frames, refused) = d.subscribe(&["MSFT", "TSLA"]);
    assert_eq!((frames.len(), refused.len()), (1, 1));
    // A symbol Finnhub refuses after all gives its slot back.
    let events = d.on_text(r#"{"msg":"Subscribing to too many symbols","type":"error"}"#);
    assert!(matches!(&events[0], WireEvent::Rejected { instrument, .. } if instrument == "MSFT"), "{events:?}");
    assert_eq!(d.subscribe(&["TSLA"]).0.len(), 1);
    // 0: no limit of our own.
    let mut d = driven("0");
    let many: Vec<String> = (0..300).map(|i| format!("S{i}")).collect();
    assert!(d.subscribe_owned(many).1.is_empty());
}
