//! Alpaca's wire against the documented frames, its merge of trades and quotes, and its admission rules.

use std::time::Duration;

use hamster_shared::{ErrorCode, Quote};

use super::symbols::check_symbol;
use super::wire::{action, AlpacaWire, KEEPALIVE_FRAME};
use super::Feed;
use crate::providers::rfc3339_ms;
use crate::providers::stream::{Wire, WireEvent};
use crate::providers::testing::Driven;
use crate::secret::Secret;
use super::*;

const KEY: &str = "AKTESTKEY";
const SECRET: &str = "s3cr3t-canary";

fn wire() -> AlpacaWire {
    AlpacaWire::new(
        "ws://127.0.0.1:1/v2/iex".into(),
        Secret::new(KEY),
        Secret::new(SECRET),
        Feed::Iex,
        Some(Duration::from_secs(10)),
    )
}

/// A wire that is connected, authenticated and streams `symbols` (acknowledged).
fn live(symbols: &[&str]) -> AlpacaWire {
    let mut w = wire();
    w.on_open();
    w.on_text(r#"[{"T":"success","msg":"connected"}]"#);
    assert_eq!(w.on_text(r#"[{"T":"success","msg":"authenticated"}]"#), [WireEvent::Ready]);
    let list: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
    w.subscribe(&list);
    w.on_text(&ack(symbols));
    w
}

fn ack(symbols: &[&str]) -> String {
    let list = serde_json::to_string(symbols).unwrap();
    format!(
        r#"[{{"T":"subscription","trades":{list},"quotes":{list},"bars":[],"updatedBars":[],"dailyBars":[],"statuses":[],"lulds":[],"corrections":{list},"cancelErrors":{list}}}]"#
    )
}

fn quotes(events: &[WireEvent]) -> Vec<Quote> {
    events
        .iter()
        .filter_map(|e| if let WireEvent::Quotes(q) = e { Some(q.clone()) } else { None })
        .flatten()
        .collect()
}

#[test]
fn authenticates_after_the_greeting_then_is_ready() {
    let mut w = wire();
    assert!(w.on_open().is_empty(), "nothing before the greeting");
    let events = w.on_text(r#"[{"T":"success","msg":"connected"}]"#);
    assert_eq!(events, [WireEvent::Reply(format!(r#"{{"action":"auth","key":"{KEY}","secret":"{SECRET}"}}"#))]);
    assert!(w.on_text(r#"[{"T":"success","msg":"connected"}]"#).iter().all(|e| !matches!(e, WireEvent::Reply(_))));
    assert_eq!(w.on_text(r#"[{"T":"success","msg":"authenticated"}]"#), [WireEvent::Ready]);
    assert!(w.waits_for_ready());
    // A new connection authenticates again.
    w.on_open();
    assert!(matches!(w.on_text(r#"[{"T":"success","msg":"connected"}]"#)[0], WireEvent::Reply(_)));
}

#[test]
fn subscribe_frames_are_documented_deltas() {
    let mut w = live(&[]);
    assert_eq!(
        w.subscribe(&["AAPL".into(), "BRK.B".into()]),
        [r#"{"action":"subscribe","trades":["AAPL","BRK.B"],"quotes":["AAPL","BRK.B"]}"#]
    );
    assert_eq!(
        w.unsubscribe(&["AAPL".into(), "NEVER".into()]),
        [r#"{"action":"unsubscribe","trades":["AAPL"],"quotes":["AAPL"]}"#]
    );
    assert!(w.unsubscribe(&["NEVER".into()]).is_empty(), "nothing to release upstream");
    assert_eq!(w.keepalive().map(|(_, f)| f).as_deref(), Some(KEEPALIVE_FRAME));
}

#[test]
fn merges_trades_and_quotes_from_documented_frames() {
    let mut w = live(&["AAPL", "AMD"]);
    // A quote before any trade: no price is known yet, so nothing is emitted.
    let events = w.on_text(
        r#"[{"T": "q", "S": "AMD", "bx": "U", "bp": 87.66, "bs": 1, "ax": "Q", "ap": 87.68, "as": 4, "t": "2021-02-22T15:51:45.335689322Z", "c": ["R"], "z": "C"}]"#,
    );
    assert!(quotes(&events).is_empty(), "{events:?}");
    let events = w.on_text(
        r#"[{"T": "t", "i": 96921, "S": "AMD", "x": "D", "p": 87.67, "s": 1, "t": "2021-02-22T15:51:46.208Z", "c": ["@", "I"], "z": "C"}]"#,
    );
    let q = quotes(&events);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].symbol.as_str(), "AMD");
    assert_eq!((q[0].price, q[0].bid, q[0].ask, q[0].ts), (87.67, Some(87.66), Some(87.68), 1_614_009_106_208));
    assert_eq!(q[0].provider, "alpaca");
    assert_eq!((q[0].volume, q[0].change, q[0].change_pct), (None, None, None), "nothing invented");
    // A later quote carries the last trade price; a batch yields one quote per message.
    let events = w.on_text(
        r#"[{"T":"q","S":"AMD","bp":87.70,"ap":87.72,"t":"2021-02-22T15:51:47.000000001Z"},{"T":"t","S":"AAPL","p":126.55,"t":"2021-02-22T15:51:44.208Z"}]"#,
    );
    let q = quotes(&events);
    assert_eq!(q.len(), 2);
    assert_eq!((q[0].price, q[0].bid, q[0].ask, q[0].ts), (87.67, Some(87.70), Some(87.72), 1_614_009_107_000));
    assert_eq!((q[1].symbol.as_str(), q[1].price, q[1].bid), ("AAPL", 126.55, None));
}

#[test]
fn late_trades_and_empty_sides_do_not_mislead() {
    let mut w = live(&["AAPL"]);
    w.on_text(r#"[{"T":"t","S":"AAPL","p":100.5,"t":"2021-02-22T15:51:44.208Z"}]"#);
    let late = w.on_text(r#"[{"T":"t","S":"AAPL","p":99.0,"t":"2021-02-22T15:51:40Z"}]"#);
    assert!(quotes(&late).is_empty(), "an out-of-sequence trade does not replace the latest");
    let q = quotes(&w.on_text(r#"[{"T":"q","S":"AAPL","bp":0,"ap":100.6,"t":"2021-02-22T15:51:45Z"}]"#));
    assert_eq!((q[0].price, q[0].bid, q[0].ask), (100.5, None, Some(100.6)), "a 0 bid is no bid");
    // Data for an instrument we no longer stream (server-side buffering) is dropped.
    w.unsubscribe(&["AAPL".into()]);
    assert!(quotes(&w.on_text(r#"[{"T":"t","S":"AAPL","p":101,"t":"2021-02-22T15:52:00Z"}]"#)).is_empty());
}

#[test]
fn errors_map_to_the_right_reaction() {
    let mut w = live(&[]);
    let events = w.on_text(r#"[{"T":"error","code":402,"msg":"auth failed"}]"#);
    let [WireEvent::Fatal { reason }] = events.as_slice() else { panic!("{events:?}") };
    assert!(reason.contains("402") && reason.contains("APCA_API_KEY_ID"), "{reason}");
    assert!(!reason.contains(SECRET) && !reason.contains(KEY));
    let events = w.on_text(r#"[{"T":"error","code":406,"msg":"connection limit exceeded"}]"#);
    assert!(matches!(&events[..], [WireEvent::Reconnect { reason }] if reason.contains("406")), "{events:?}");
    let events = w.on_text(r#"[{"T":"error","code":404,"msg":"auth timeout"}]"#);
    assert!(matches!(&events[..], [WireEvent::Reconnect { reason }] if reason.contains("auth timeout")));
    let events = w.on_text(r#"[{"T":"error","code":409,"msg":"insufficient subscription"}]"#);
    assert!(matches!(&events[..], [WireEvent::Fatal { reason }] if reason.contains("iex")), "{events:?}");
    let events = w.on_text(r#"[{"T":"error","code":"402","msg":"auth failed"}]"#);
    assert!(matches!(events[0], WireEvent::Fatal { .. }), "a stringly code still counts");
    for text in [
        r#"[{"T":"error","code":400,"msg":"invalid syntax"}]"#,
        r#"[{"T":"error","code":403,"msg":"already authenticated"}]"#,
        r#"[{"T":"error","code":999}]"#,
        r#"[{"T":"error"}]"#,
    ] {
        assert!(matches!(w.on_text(text)[..], [WireEvent::Info(_)]), "{text}");
    }
}

#[test]
fn symbol_limit_rejects_the_refused_symbol() {
    let mut w = live(&["AAPL", "MSFT"]);
    w.subscribe(&["TSLA".into()]);
    let events = w.on_text(r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#);
    let [WireEvent::Rejected { instrument, code, message }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((instrument.as_str(), *code), ("TSLA", ErrorCode::ProviderRejected));
    assert!(message.contains("symbol limit") && message.contains("405"), "{message}");
    assert!(w.unsubscribe(&["TSLA".into()]).is_empty(), "nothing upstream to release");
    // The next subscribe is attributed on its own, not mixed up with the settled one.
    w.subscribe(&["NVDA".into()]);
    w.on_text(&ack(&["AAPL", "MSFT", "NVDA"]));
    assert!(w.pending.is_empty());
}

#[test]
fn symbol_limit_on_a_batch_rejects_beyond_the_limit_and_resends_the_rest() {
    let mut w = live(&["AAPL"]);
    w.subscribe(&["AAPL".into(), "AMD".into(), "TSLA".into()]);
    let events = w.on_text(r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], WireEvent::Reply(r#"{"action":"subscribe","trades":["AMD"],"quotes":["AMD"]}"#.into()));
    assert!(matches!(&events[1], WireEvent::Rejected { instrument, .. } if instrument == "TSLA"));
    // The resend is refused too: AMD goes, nothing is resent.
    let events = w.on_text(r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#);
    assert!(matches!(&events[..], [WireEvent::Rejected { instrument, .. }] if instrument == "AMD"), "{events:?}");
    assert!(w.requested.contains("AAPL"), "the confirmed symbol is untouched");
    // A 405 nobody can be blamed for is logged, not turned into a rejection.
    assert!(matches!(w.on_text(r#"[{"T":"error","code":405,"msg":"x"}]"#)[..], [WireEvent::Info(_)]));
}

#[test]
fn an_invalid_subscribe_is_refused_as_a_whole_for_the_driver_to_isolate() {
    let mut w = live(&["AAPL"]);
    w.subscribe(&["AAPL".into(), "MSFT".into(), "BAD".into()]);
    let events = w.on_text(r#"[{"T":"error","code":400,"msg":"invalid syntax"}]"#);
    let [WireEvent::RequestRefused { instruments, code, message }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((instruments.as_slice(), *code), (&["MSFT".to_owned(), "BAD".to_owned()][..], ErrorCode::ProviderRejected));
    assert!(message.contains("400 invalid syntax") && message.contains("2 symbols"), "{message}");
    assert!(w.requested.contains("AAPL") && !w.requested.contains("MSFT"), "only the refused new ones are forgotten");
    // The driver's retry of one of them is attributed on its own and names it.
    w.subscribe(&["BAD".into()]);
    let events = w.on_text(r#"[{"T":"error","code":400,"msg":"invalid syntax"}]"#);
    assert!(
        matches!(&events[..], [WireEvent::RequestRefused { instruments, message, .. }]
            if instruments == &["BAD".to_owned()] && message.starts_with("Alpaca refused BAD (400")),
        "{events:?}"
    );
    // With nothing awaiting an acknowledgement, a 400 is only logged.
    assert!(matches!(w.on_text(r#"[{"T":"error","code":400,"msg":"invalid syntax"}]"#)[..], [WireEvent::Info(_)]));
}

#[test]
fn keepalive_acknowledgements_do_not_confuse_attribution() {
    let mut w = live(&["AAPL"]);
    w.subscribe(&["MSFT".into()]);
    // The keep-alive went out before MSFT's subscribe: its acknowledgement lacks MSFT.
    w.on_text(&ack(&["AAPL"]));
    let events = w.on_text(r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#);
    assert!(matches!(&events[..], [WireEvent::Rejected { instrument, .. }] if instrument == "MSFT"), "{events:?}");
}

#[test]
fn odd_frames_do_not_panic() {
    let mut w = live(&["AAPL"]);
    for text in [
        "",
        "null",
        "42",
        "[]",
        "{}",
        "[1,2,null]",
        r#"[{"T":1}]"#,
        r#"[{"T":"t"}]"#,
        r#"[{"T":"t","S":"AAPL","p":"x","t":"2021-02-22T15:51:44Z"}]"#,
        r#"[{"T":"t","S":"AAPL","p":1e400,"t":"2021-02-22T15:51:44Z"}]"#,
        r#"[{"T":"t","S":"AAPL","p":-1,"t":"2021-02-22T15:51:44Z"}]"#,
        r#"[{"T":"t","S":"<>","p":1,"t":"2021-02-22T15:51:44Z"}]"#,
        r#"[{"T":"q","S":"AAPL","bp":null,"ap":"1","t":"2021-02-22T15:51:44Z"}]"#,
        r#"[{"T":"t","S":"AAPL","p":1,"t":"2021-02-22T15:51:4"}]"#,
        r#"[{"T":"t","S":"AAPL","p":1,"t":"2021-02-22T15:51:44.€Z"}]"#,
        r#"[{"T":"t","S":"AAPL","p":1,"t":"2021-02-30T15:51:44Z"}]"#,
        r#"[{"T":"subscription","trades":null}]"#,
        r#"[{"T":"success"}]"#,
        r#"[{"T":"b","S":"SPY","o":388.985,"h":389.13,"l":388.975,"c":389.12,"v":49378,"t":"2021-02-22T19:15:00Z"}]"#,
        r#"[{"T":"s","S":"AAPL","sc":"H","sm":"Trading Halt","rc":"T12","rm":"x","t":"2021-02-22T19:15:00Z","z":"C"}]"#,
        r#"{"T":"t","S":"AAPL","p":2,"t":"2021-02-22T15:51:45Z"}"#,
    ] {
        let _ = w.on_text(text);
    }
    // The bare object above was read, so the wire is still sane.
    let q = quotes(&w.on_text(r#"[{"T":"t","S":"AAPL","p":3,"t":"2021-02-22T15:51:46Z"}]"#));
    assert_eq!(q[0].price, 3.0);
}

#[test]
fn rfc3339_to_milliseconds() {
    assert_eq!(rfc3339_ms("2021-02-22T15:51:44.208Z"), Some(1_614_009_104_208));
    assert_eq!(rfc3339_ms("2021-02-22T15:51:45.335689322Z"), Some(1_614_009_105_335));
    assert_eq!(rfc3339_ms("2024-07-24T07:56:53.639713735Z"), Some(1_721_807_813_639));
    assert_eq!(rfc3339_ms("2021-02-22T10:51:44.208-05:00"), Some(1_614_009_104_208));
    assert_eq!(rfc3339_ms("2000-02-29T23:59:59.9999Z"), Some(951_868_799_999));
    assert_eq!(rfc3339_ms("2021-02-22T19:15:00Z"), Some(1_614_021_300_000));
    assert_eq!(rfc3339_ms("1969-12-31T23:59:59.5Z"), Some(-500));
    assert_eq!(rfc3339_ms("2021-02-22T15:51:44.2Z"), Some(1_614_009_104_200));
    for bad in [
        "",
        "2021-02-22",
        "2021-02-22T15:51:44",
        "2021-02-22T15:51:44.Z",
        "2021-13-01T00:00:00Z",
        "2021-02-29T00:00:00Z",
        "2021-02-22T24:00:00Z",
        "2021-02-22T15:51:44Zjunk",
        "2021-02-22T15:51:44+0500",
        "2021-02-22T15:51:44+05:0x",
        "２０２１-02-22T15:51:44Z",
    ] {
        assert_eq!(rfc3339_ms(bad), None, "{bad}");
    }
}

#[test]
fn feeds_pick_the_url_and_an_explicit_url_wins() {
    let args = |ws_url: Option<&str>, feed| AlpacaArgs {
        ws_url: ws_url.map(str::to_owned),
        assets_url: None,
        feed,
        keepalive_ms: 0,
        symbol_limit: 0,
        data_url: String::new(),
        history_minutes: 0,
    };
    assert_eq!(args(None, Feed::Iex).url(), "wss://stream.data.alpaca.markets/v2/iex");
    assert_eq!(args(None, Feed::Sip).url(), "wss://stream.data.alpaca.markets/v2/sip");
    assert_eq!(args(None, Feed::Boats).url(), "wss://stream.data.alpaca.markets/v1beta1/boats");
    assert_eq!(args(Some("ws://127.0.0.1:9/v2/test"), Feed::Sip).url(), "ws://127.0.0.1:9/v2/test");
    let r = wire().request().unwrap();
    assert_eq!(r.headers().get("content-type").map(|v| v.to_str().unwrap()), Some("application/json"));
    assert!(r.uri().query().is_none(), "keys go in the auth message, not the URL");
}

#[test]
fn only_us_stock_symbols_pass() {
    assert!(check_symbol("AAPL", Feed::Iex).is_ok());
    assert!(check_symbol("BRK.B", Feed::Iex).is_ok());
    assert!(check_symbol("FAKEPACA", Feed::Test).is_ok());
    assert!(check_symbol("BTC/USD", Feed::Iex).unwrap_err().contains("crypto"));
    assert!(check_symbol("EUR/USD", Feed::Iex).unwrap_err().contains("currency pair"));
    assert!(check_symbol("^GSPC", Feed::Iex).is_err());
    assert!(check_symbol("EURUSD=X", Feed::Iex).is_err());
}

#[test]
fn non_stocks_and_the_local_cap_are_refused_before_anything_is_sent() {
    let mut w = wire();
    w.symbol_limit = 2;
    let mut d = Driven::new(w);
    let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (frames, refused) = d.subscribe(&["AAPL", "BTC/USD", "MSFT", "TSLA"]);
    assert_eq!(frames, [action("subscribe", &list(&["AAPL", "MSFT"]))]);
    assert_eq!(refused.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(), ["BTC/USD", "TSLA"]);
    assert!(refused[0].1.message.contains("crypto"), "{refused:?}");
    assert!(refused[1].1.message.contains("--alpaca-symbol-limit"), "{refused:?}");
    let frames = d.unsubscribe(&["BTC/USD", "AAPL"]);
    assert_eq!(frames, [action("unsubscribe", &list(&["AAPL"]))], "refused ones are not released");
    let (frames, refused) = d.subscribe(&["TSLA"]);
    assert_eq!((frames.len(), refused.len()), (1, 0), "the freed slot is reusable");
}
