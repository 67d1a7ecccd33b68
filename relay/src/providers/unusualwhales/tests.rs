//! Unusual Whales' wire against the documented frames, the channel mapping, and the failure shapes it tolerates.

use std::time::Duration;

use clap::Parser;
use hamster_shared::ErrorCode;
use serde_json::Value;

use super::channels::{Channels, Target};
use super::wire::UwWire;
use super::UnusualWhalesArgs;
use crate::clock::now_ms;
use crate::providers::rfc3339_ms;
use crate::providers::stream::{Wire, WireEvent};
use crate::secret::Secret;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    uw: UnusualWhalesArgs,
}

fn args(extra: &[&str]) -> UnusualWhalesArgs {
    let mut argv = vec!["test"];
    argv.extend_from_slice(extra);
    Cli::parse_from(argv).uw
}

fn wire() -> UwWire {
    UwWire::new(&args(&[]), Secret::new("t&k"))
}

const FLOW_ALERT: &str = r#"["flow-alerts",{"rule_id":"5ce5ec11-087c-4c00-b164-08106b015856","rule_name":"RepeatedHitsDescendingFill","ticker":"DIA","option_chain":"DIA241018C00415000","underlying_price":415.981,"volume":106,"total_size":50,"total_premium":36466,"total_ask_side_prem":36466,"total_bid_side_prem":0,"start_time":1726670212648,"end_time":1726670212748,"url":"","price":7.3,"has_multileg":false,"has_sweep":false,"has_floor":false,"open_interest":575,"all_opening_trades":false,"id":"29ed5829-e4ce-4934-876b-51985d2f9b70","has_singleleg":true,"volume_oi_ratio":0,"trade_ids":["417f0cd6-09ae-4d43-8542-38557bb713aa","4af4c646-4b21-4a27-8326-db7b0698d3d8"],"trade_count":7,"expiry_count":1,"executed_at":1726670212748,"ask_vol":52,"bid_vol":49,"no_side_vol":0,"mid_vol":5,"multi_vol":0,"stock_multi_vol":0,"upstream_condition_details":["auto","slan"],"exchanges":["XCBO","MPRL"],"bid":"7.15","ask":"7.3"}]"#;

#[test]
fn defaults_parse_from_flags() {
    let a = args(&[]);
    assert_eq!(a.ws_url, "wss://api.unusualwhales.com/socket");
    assert_eq!(a.channels, ["flow-alerts", "news", "option_trades", "lit_trades", "off_lit_trades"]);
    assert_eq!(a.ticker_channels, ["option_trades", "gex", "gex_strike", "gex_strike_expiry"]);
    assert_eq!(a.auth_failure_statuses, [401, 403]);
    assert!(a.leave && a.user_agent.contains("hamster-relay"));
    let a = args(&["--uw-leave", "false", "--uw-channels", "flow-alerts", "--uw-min-send-interval-ms", "100"]);
    assert!(!a.leave);
    assert_eq!(a.channels, ["flow-alerts"]);
    assert_eq!(UwWire::new(&a, Secret::new("t")).min_send_interval(), Some(Duration::from_millis(100)));
}

#[test]
fn instruments_map_to_channels_and_back() {
    let w = wire();
    for (instrument, channel) in [
        ("AAPL", "price:AAPL"),
        ("BRK.B", "price:BRK.B"),
        ("FLOW-ALERTS", "flow-alerts"),
        ("NEWS", "news"),
        ("OPTION_TRADES", "option_trades"),
        ("OPTION_TRADES-JPM", "option_trades:JPM"),
        ("GEX-SPY", "gex:SPY"),
        ("GEX_STRIKE-SPY", "gex_strike:SPY"),
        ("GEX_STRIKE_EXPIRY-SPY", "gex_strike_expiry:SPY"),
        // Not a configured family: a ticker that happens to contain '-'.
        ("BF-B", "price:BF-B"),
        ("GEX", "price:GEX"),
    ] {
        assert_eq!(w.channels.channel_of(instrument), channel, "{instrument}");
        let back = Channels::target_of(channel);
        assert_eq!(back.instrument(), instrument, "{channel}");
        assert_eq!(matches!(back, Target::Price(_)), channel.starts_with("price:"), "{channel}");
    }
    // The configured set decides; names are matched case-insensitively.
    let custom = Channels::new(&[" Flow-Alerts ".into(), String::new()], &["GEX".into()]);
    assert_eq!(custom.channel_of("FLOW-ALERTS"), "flow-alerts");
    assert_eq!(custom.channel_of("NEWS"), "price:NEWS");
    assert_eq!(custom.channel_of("GEX-QQQ"), "gex:QQQ");
    assert_eq!(custom.channel_of("OPTION_TRADES-JPM"), "price:OPTION_TRADES-JPM");
    assert_eq!(
        w.frames(&["FLOW-ALERTS".into(), "AAPL".into()], "join"),
        [r#"{"channel":"flow-alerts","msg_type":"join"}"#, r#"{"channel":"price:AAPL","msg_type":"join"}"#]
    );
}

#[test]
fn documented_price_frames_become_quotes() {
    let events = wire().on_text(r#"["price:SPY",{"close":"562.82","time":1726670327692,"vol":6015555}]"#);
    let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(q[0].symbol.as_str(), "SPY");
    assert_eq!((q[0].price, q[0].ts, q[0].volume), (562.82, 1_726_670_327_692, Some(6_015_555.0)));
    assert_eq!(q[0].provider, "uw");
    assert_eq!((q[0].bid, q[0].ask, q[0].change), (None, None, None), "never invented");
    // Numbers where the docs show strings, and the reverse, parse the same.
    let events = wire().on_text(r#"["price:SPY",{"close":562.5,"time":"1726670327692","vol":"12"}]"#);
    let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((q[0].price, q[0].ts, q[0].volume), (562.5, 1_726_670_327_692, Some(12.0)));
    // No volume given: none reported.
    let events = wire().on_text(r#"["price:AAPL",{"close":"1","time":1726670327692}]"#);
    let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(q[0].volume, None);
}

#[test]
fn documented_channel_frames_become_events() {
    let events = wire().on_text(FLOW_ALERT);
    let [WireEvent::Event { instrument, payload, ts }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(instrument, "FLOW-ALERTS");
    assert_eq!(*ts, 1_726_670_212_748, "executed_at");
    assert_eq!(payload["rule_name"], "RepeatedHitsDescendingFill");
    assert_eq!(payload["bid"], "7.15", "payload passed through untouched");
    let expected: Value = serde_json::from_str::<Vec<Value>>(FLOW_ALERT).unwrap().remove(1);
    assert_eq!(*payload, expected);

    let events = wire().on_text(
        r#"["gex:SPY",{"ticker":"SPY","timestamp":1726670396000,"gamma_per_one_percent_move_oi":"-262444980.31","delta_per_one_percent_move_oi":"","price":"562.86"}]"#,
    );
    let [WireEvent::Event { instrument, ts, .. }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((instrument.as_str(), *ts), ("GEX-SPY", 1_726_670_396_000));

    let events = wire().on_text(
        r#"["news",{"headline":"US Energy Secretary foresees many more LNG export deals signed","timestamp":"2025-06-11T21:40:56Z","source":"social-media","tickers":[],"is_trump_ts":false}]"#,
    );
    let [WireEvent::Event { instrument, ts, .. }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((instrument.as_str(), *ts), ("NEWS", 1_749_678_056_000));

    let events = wire().on_text(
        r#"["option_trades:UVIX",{"id":"a4dc6020-0611-4c23-b0bc-99944c7348ab","underlying_symbol":"UVIX","executed_at":1726670167412,"price":"0.01"}]"#,
    );
    let [WireEvent::Event { instrument, ts, .. }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((instrument.as_str(), *ts), ("OPTION_TRADES-UVIX", 1_726_670_167_412));

    // No usable time: the receive time.
    let before = now_ms();
    let events = wire().on_text(r#"["lit_trades",{"ticker":"AAPL"}]"#);
    let [WireEvent::Event { ts, .. }] = events.as_slice() else { panic!("{events:?}") };
    assert!(*ts >= before);
}

#[test]
fn join_acks_and_failures() {
    let w = wire();
    for ack in
        [r#"["option_trades",{"response":{},"status":"ok"}]"#, r#"["price:AAPL",{"response":{},"status":"ok"}]"#]
    {
        assert!(matches!(w.parse(ack).as_slice(), [WireEvent::Info(_)]), "{ack}");
    }
    // Phoenix-style reply and a flat error: both UNVERIFIED, both understood.
    for (frame, instrument, reason) in [
        (r#"["price:NOPE",{"response":{"reason":"unknown ticker"},"status":"error"}]"#, "NOPE", "unknown ticker"),
        (r#"["gex:SPY",{"status":"error","message":"not entitled"}]"#, "GEX-SPY", "not entitled"),
        (r#"["flow-alerts",{"response":{},"status":"unauthorized"}]"#, "FLOW-ALERTS", "status unauthorized"),
    ] {
        let events = w.parse(frame);
        let [WireEvent::Rejected { instrument: i, code, message }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!((i.as_str(), *code), (instrument, ErrorCode::ProviderRejected));
        assert!(message.contains(reason) && message.contains("Unusual Whales"), "{message}");
    }
    // Bare replies, and a reason given as the `response` itself.
    assert!(matches!(w.parse(r#"["news",{"status":"ok"}]"#).as_slice(), [WireEvent::Info(_)]));
    let events = w.parse(r#"["news",{"status":"forbidden","response":"plan lacks news"}]"#);
    assert!(matches!(&events[0], WireEvent::Rejected { message, .. } if message.contains("plan lacks news")));
    // A data document with an unrelated `status` field is data.
    let events = w.parse(r#"["news",{"headline":"x","status":"published"}]"#);
    assert!(matches!(events.as_slice(), [WireEvent::Event { .. }]), "{events:?}");
    // The error statuses are configurable.
    let w = UwWire::new(&args(&["--uw-join-error-statuses", "error,denied"]), Secret::new("t"));
    assert!(matches!(w.parse(r#"["news",{"status":"denied"}]"#)[0], WireEvent::Rejected { .. }));
}

#[test]
fn odd_frames_never_panic() {
    let w = wire();
    for text in [
        "",
        "null",
        "1",
        "\"x\"",
        "[]",
        "{}",
        "[1,2]",
        r#"["price:AAPL"]"#,
        r#"["price:AAPL",null]"#,
        r#"["price:AAPL",[]]"#,
        r#"["price:AAPL",{}]"#,
        r#"["price:AAPL",{"close":"abc"}]"#,
        r#"["price:AAPL",{"close":"NaN","time":1}]"#,
        r#"["price:AAPL",{"close":"1e999"}]"#,
        r#"["price:<>",{"close":"1"}]"#,
        r#"["price:",{"close":"1"}]"#,
        r#"["",{"a":1}]"#,
        r#"[":",{"a":1}]"#,
        r#"["flow-alerts",{"executed_at":-5,"timestamp":"2025-13-45T99:99:99Z"}]"#,
        r#"["news",{"timestamp":"2025-06-11T21:40:56.5+0"}]"#,
        r#"["news",{"timestamp":"é2025-06-11T21:40:56Zéééééé"}]"#,
        r#"["flow-alerts",{"status":5,"response":1}]"#,
        r#"["flow-alerts",{"status":"error","response":{"reason":7}}]"#,
        r#"["a","b","c"]"#,
        r#"{"status":"error","message":"bad"}"#,
    ] {
        let _ = w.parse(text);
    }
    let events = w.parse(r#"["price:AAPL",{"close":"NaN","time":1}]"#);
    assert!(matches!(events.as_slice(), [WireEvent::Info(_)]), "a NaN price is no quote: {events:?}");
}

#[test]
fn token_goes_in_the_query_and_never_into_text() {
    let r = wire().request().unwrap();
    assert_eq!(r.uri().path(), "/socket");
    assert_eq!(r.uri().query(), Some("token=t%26k"));
    assert!(r.headers().get("user-agent").is_some_and(|v| v.to_str().unwrap_or("").contains("hamster-relay")));
    let events = wire().on_text(r#"["price:X",{"response":{"reason":"bad token t&k"},"status":"error"}]"#);
    let [WireEvent::Rejected { message, .. }] = events.as_slice() else { panic!("{events:?}") };
    assert!(!message.contains("t&k") && message.contains("[redacted]"), "{message}");
    let events = wire().on_text(r#"{"echo":"t&k"}"#);
    let [WireEvent::Info(info)] = events.as_slice() else { panic!("{events:?}") };
    assert!(!info.contains("t&k"), "{info}");
}

#[test]
fn leave_and_auth_statuses_are_configurable() {
    let mut w = wire();
    assert_eq!(w.unsubscribe(&["GEX-SPY".into()]), [r#"{"channel":"gex:SPY","msg_type":"leave"}"#]);
    assert!(w.is_auth_failure(401) && w.is_auth_failure(403) && !w.is_auth_failure(503));
    let mut w = UwWire::new(&args(&["--uw-leave", "false", "--uw-auth-failure-statuses", "401"]), Secret::new("t"));
    assert!(w.unsubscribe(&["GEX-SPY".into()]).is_empty());
    assert!(!w.is_auth_failure(403));
}

#[test]
fn rfc3339() {
    assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(rfc3339_ms("2025-06-11T21:40:56Z"), Some(1_749_678_056_000));
    assert_eq!(rfc3339_ms("2025-06-11T23:40:56.123+02:00"), Some(1_749_678_056_123));
    assert_eq!(rfc3339_ms("2024-02-29T00:00:00.5Z"), Some(1_709_164_800_500));
    for bad in ["", "2025-06-11", "2025-06-11T21:40:56", "2025-06-11T21:40:56.Z", "2025/06/11T21:40:56Z"] {
        assert_eq!(rfc3339_ms(bad), None, "{bad}");
    }
}
