//! Unusual Whales adapter against a mock speaking its documented protocol, through the real relay binary:
//! connect with `?token=` → join → prices reach WebSocket clients as `uw` quotes and flow alerts reach
//! `uw:flow-alerts` subscribers as `event`s → the last client leaving leaves upstream → cuts are survived with
//! clients attached and everything is rejoined → a half-dead upstream is replaced → 50 clients share one
//! connection and one join → a refused token means `down` without a reconnect storm and never a logged token →
//! refused channels are rejected per symbol → a missing token is reported.

use std::time::{Duration, Instant};

use hamster_shared::{ErrorCode, ProviderState, Quote, ServerMessage};
use hamster_tests::mocks::unusualwhales::{JoinFailure, UnusualWhalesMock};
use hamster_tests::{eventually, Relay, WsClient};
use serde_json::Value;

const TOKEN: &str = "uw-test-token-5c1e";

fn relay_for(mock: &UnusualWhalesMock, token: &str, extra: &[&str]) -> Relay {
    let ws_url = mock.ws_url();
    let mut args = vec![
        "--providers",
        "uw",
        "--uw-ws-url",
        &ws_url,
        "--upstream-backoff-min-ms",
        "50",
        "--upstream-backoff-max-ms",
        "300",
    ];
    args.extend_from_slice(extra);
    Relay::start_with_env(0, &args, &[("UW_API_TOKEN", token)])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A client that has read its greeting and subscribed to `symbols`.
/// The next quote for `symbol` whose event time is after `after_ms`.
async fn quote_after(ws: &mut WsClient, symbol: &str, after_ms: i64) -> Quote {
    let matches = |q: &Quote| q.symbol.as_str() == symbol && q.ts > after_ms;
    match ws
        .recv_until(
            &format!("quote for {symbol} after {after_ms}"),
            |m| matches!(m, ServerMessage::Quotes { quotes } if quotes.iter().any(matches)),
        )
        .await
    {
        ServerMessage::Quotes { quotes } => quotes.into_iter().find(matches).expect("matched above"),
        _ => unreachable!(),
    }
}

/// The next event on `channel` whose time is after `after_ms`: its payload and ts.
async fn event_after(ws: &mut WsClient, channel: &str, after_ms: i64) -> (Value, i64) {
    match ws
        .recv_until(
            &format!("event on {channel} after {after_ms}"),
            |m| matches!(m, ServerMessage::Event { channel: c, ts, .. } if c.as_str() == channel && *ts > after_ms),
        )
        .await
    {
        ServerMessage::Event { payload, ts, .. } => (payload, ts),
        _ => unreachable!(),
    }
}

/// The mock's connection number encoded in a flow alert's `id` (`…-8000-CCCCCCNNNNNN`).
fn conn_of(payload: &Value) -> usize {
    let id = payload["id"].as_str().unwrap_or_default();
    id.rsplit('-').next().and_then(|tail| tail.get(..6)).and_then(|c| c.parse().ok()).unwrap_or(usize::MAX)
}

#[tokio::test]
async fn lifecycle_against_the_mock() {
    let mock = UnusualWhalesMock::start(TOKEN).await;
    let relay = relay_for(&mock, TOKEN, &[]);

    // Prices: `AAPL` joins `price:AAPL`; the string `close` becomes a number, `time` (ms) the ts, `vol` the volume.
    let mut prices = WsClient::subscribed(&relay.ws_url(), &["AAPL"]).await;
    let q = quote_after(&mut prices, "AAPL", 0).await;
    assert_eq!(q.provider, "uw");
    assert!((562.0..563.0).contains(&q.price), "parsed from the string close: {}", q.price);
    assert!(q.ts > 1_600_000_000_000 && q.ts <= now_ms(), "ms timestamps: {}", q.ts);
    assert!(q.volume.is_some_and(|v| v >= 6_015_555.0), "vol: {:?}", q.volume);
    assert_eq!((q.bid, q.ask, q.change), (None, None, None), "fields UW does not send are absent");

    // Flow alerts: `uw:flow-alerts` is the channel `uw:FLOW-ALERTS`, delivered as `event` with the payload as sent.
    let mut alerts = WsClient::subscribed(&relay.ws_url(), &["uw:flow-alerts"]).await;
    let (payload, ts) = event_after(&mut alerts, "uw:FLOW-ALERTS", 0).await;
    assert_eq!(payload["rule_name"], "RepeatedHitsDescendingFill");
    assert_eq!((payload["bid"].as_str(), payload["underlying_price"].as_f64()), (Some("7.15"), Some(415.981)));
    assert_eq!(Some(ts), payload["executed_at"].as_i64(), "the alert's own time");

    // A second alert client and a per-ticker channel: `uw:GEX-SPY` joins `gex:SPY`.
    let mut alerts2 = WsClient::subscribed(&relay.ws_url(), &["uw:FLOW-ALERTS", "uw:gex-spy"]).await;
    let (gex, _) = event_after(&mut alerts2, "uw:GEX-SPY", 0).await;
    assert_eq!((gex["ticker"].as_str(), gex["price"].as_str()), (Some("SPY"), Some("562.86")));
    event_after(&mut alerts2, "uw:FLOW-ALERTS", 0).await;
    assert_eq!(mock.ws.accepted(), 1, "one upstream connection");
    for channel in ["price:AAPL", "flow-alerts", "gex:SPY"] {
        assert_eq!(mock.requests("join", channel), 1, "one join of {channel}");
    }
    assert_eq!(*mock.state.tokens_seen.lock().unwrap(), [TOKEN], "the token went upstream as ?token=");
    assert!(mock.state.user_agents.lock().unwrap()[0].contains("hamster-relay"), "a normal User-Agent");

    // The last client of a channel leaving sends `leave`; a client leaving a channel others still hold does not.
    alerts2.send_text(r#"{"type":"unsubscribe","symbols":["uw:GEX-SPY"]}"#).await;
    eventually("leave gex:SPY", || mock.requests("leave", "gex:SPY") == 1 && !mock.joined().contains("gex:SPY")).await;
    alerts2.send_text(r#"{"type":"unsubscribe","symbols":["uw:FLOW-ALERTS"]}"#).await;
    alerts2.recv_until("unsubscribed", |m| matches!(m, ServerMessage::Unsubscribed { .. })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mock.requests("leave", "flow-alerts"), 0, "another client still wants flow-alerts");
    event_after(&mut alerts, "uw:FLOW-ALERTS", now_ms()).await;

    // Cut the connection three times: clients stay connected, everything still wanted is rejoined, data resumes.
    for round in 1..=3 {
        mock.ws.cut_all();
        prices.provider_state(ProviderState::Reconnecting).await;
        // The relay has dropped the old socket by now: anything newer comes over a new connection.
        let lost_at = now_ms();
        prices.provider_state(ProviderState::Live).await;
        let started = Instant::now();
        quote_after(&mut prices, "AAPL", lost_at).await;
        let (payload, _) = event_after(&mut alerts, "uw:FLOW-ALERTS", lost_at).await;
        println!("round {round}: data resumed {:?} after live", started.elapsed());
        assert_eq!(conn_of(&payload), round, "the alert came over the new connection");
        assert_eq!(mock.ws.accepted(), round + 1);
        let joined = mock.joined_on_latest();
        assert_eq!(joined, ["flow-alerts", "price:AAPL"].map(String::from).into(), "rejoined in full");
    }
    assert_eq!(mock.requests("join", "gex:SPY"), 1, "a channel nobody wants is not rejoined");

    // The last flow-alerts client disconnecting leaves the channel; the last price client unsubscribing too.
    alerts.close().await;
    eventually("leave flow-alerts", || mock.requests("leave", "flow-alerts") == 1).await;
    prices.send_text(r#"{"type":"unsubscribe","symbols":["AAPL"]}"#).await;
    eventually("nothing joined", || mock.joined().is_empty()).await;
    assert_eq!(mock.requests("leave", "price:AAPL"), 1);
    assert!(relay.logs().iter().all(|l| !l.contains(TOKEN)), "the token never reaches a log line");
}

#[tokio::test]
async fn fifty_clients_one_connection_one_join() {
    let mock = UnusualWhalesMock::start(TOKEN).await;
    let relay = relay_for(&mock, TOKEN, &[]);
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(WsClient::subscribed(&relay.ws_url(), &["uw:flow-alerts"]).await);
    }
    let since = now_ms();
    for ws in &mut clients {
        event_after(ws, "uw:FLOW-ALERTS", since).await;
    }
    assert_eq!(mock.ws.accepted(), 1, "one upstream connection");
    assert_eq!(mock.attempts(), 1);
    assert_eq!(mock.requests("join", "flow-alerts"), 1, "one upstream join");
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.upstream_subscriptions, 1);
}

#[tokio::test]
async fn refused_token_means_down_without_a_hot_loop() {
    let mock = UnusualWhalesMock::start(TOKEN).await;
    let bad = "uw-wrong-token-canary-91d2";
    let relay = relay_for(&mock, bad, &[]);
    let _early = WsClient::subscribed(&relay.ws_url(), &["uw:flow-alerts", "AAPL"]).await;
    let status = relay.wait_status("uw down", |s| s.providers[0].state == ProviderState::Down).await;
    let detail = status.providers[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("401") && detail.contains("API key"), "a clear reason: {detail}");
    assert!(!detail.contains(bad));
    // Clients are told in their greeting.
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    let ServerMessage::Hello { providers, .. } = ws.hello().await else { unreachable!() };
    assert_eq!(providers[0].state, ProviderState::Down);
    assert!(providers[0].detail.as_deref().unwrap_or_default().contains("401"), "{:?}", providers[0].detail);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mock.attempts(), 1, "no reconnect storm after the token was refused");
    assert_eq!(mock.state.refused_tokens.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(mock.ws.accepted(), 0);
    let logs = relay.logs();
    assert!(logs.iter().any(|l| l.contains("401")), "the refusal is logged");
    assert!(logs.iter().all(|l| !l.contains(bad)), "the token never reaches a log line");
}

async fn refused_channels_are_rejected_per_symbol(shape: JoinFailure) {
    let mock = UnusualWhalesMock::start(TOKEN).await;
    mock.set_join_failure(shape);
    mock.refuse("price:NOPE");
    mock.refuse("gex:QQQ");
    let relay = relay_for(&mock, TOKEN, &[]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &["AAPL", "uw:flow-alerts"]).await;
    quote_after(&mut ws, "AAPL", 0).await;

    ws.send_text(r#"{"type":"subscribe","symbols":["NOPE","uw:GEX-QQQ"]}"#).await;
    ws.recv_until("subscribed", |m| matches!(m, ServerMessage::Subscribed { symbols, .. } if symbols.len() == 2)).await;
    let mut rejected = Vec::new();
    while rejected.len() < 2 {
        match ws
            .recv_until(
                "late rejection",
                |m| matches!(m, ServerMessage::Subscribed { rejected, .. } if !rejected.is_empty()),
            )
            .await
        {
            ServerMessage::Subscribed { rejected: r, .. } => rejected.extend(r),
            _ => unreachable!(),
        }
    }
    rejected.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    assert_eq!(rejected[0].symbol, "NOPE");
    assert_eq!(rejected[1].symbol, "uw:GEX-QQQ");
    for r in &rejected {
        assert_eq!(r.code, ErrorCode::ProviderRejected);
        assert!(r.message.contains("not entitled"), "the upstream's reason: {}", r.message);
    }

    // The others keep streaming, and a refused channel is not retried on the next connection.
    let since = now_ms();
    quote_after(&mut ws, "AAPL", since).await;
    event_after(&mut ws, "uw:FLOW-ALERTS", since).await;
    mock.ws.cut_all();
    ws.provider_state(ProviderState::Reconnecting).await;
    let since = now_ms();
    ws.provider_state(ProviderState::Live).await;
    quote_after(&mut ws, "AAPL", since).await;
    assert_eq!(mock.ws.accepted(), 2);
    // Rejoins go out one frame at a time: wait for the set rather than race the second join.
    let wanted: std::collections::BTreeSet<String> = ["flow-alerts", "price:AAPL"].map(String::from).into();
    eventually("both channels rejoined", || mock.joined_on_latest() == wanted).await;
    assert_eq!(mock.requests("join", "price:NOPE"), 1);
    assert_eq!(mock.requests("join", "gex:QQQ"), 1);
}

#[tokio::test]
async fn refused_channel_phoenix_reply_shape() {
    refused_channels_are_rejected_per_symbol(JoinFailure::Reply).await;
}

#[tokio::test]
async fn refused_channel_flat_error_shape() {
    refused_channels_are_rejected_per_symbol(JoinFailure::Flat).await;
}

#[tokio::test]
async fn missing_token_is_reported_not_configured() {
    let relay = Relay::start(&["--providers", "sim,uw"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    relay
        .wait_status("uw down", |s| s.providers.iter().any(|p| p.name == "uw" && p.state == ProviderState::Down))
        .await;
    ws.send_text(r#"{"type":"subscribe","symbols":["uw:flow-alerts"]}"#).await;
    match ws
        .recv_until("rejection", |m| matches!(m, ServerMessage::Subscribed { rejected, .. } if !rejected.is_empty()))
        .await
    {
        ServerMessage::Subscribed { rejected, .. } => {
            assert_eq!(rejected[0].symbol, "uw:FLOW-ALERTS");
            assert!(rejected[0].message.contains("UW_API_TOKEN"), "{}", rejected[0].message);
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_half_dead_upstream_is_replaced_by_the_watchdog() {
    let mock = UnusualWhalesMock::start(TOKEN).await;
    let relay = relay_for(&mock, TOKEN, &["--upstream-stale-ms", "700"]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &["uw:flow-alerts"]).await;
    event_after(&mut ws, "uw:FLOW-ALERTS", 0).await;
    // The upstream stops reading and writing without closing: no data, no pongs.
    mock.state.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    let detail = ws.provider_state(ProviderState::Reconnecting).await;
    assert!(detail.unwrap_or_default().contains("no data"), "the watchdog fired");
    mock.state.frozen.store(false, std::sync::atomic::Ordering::SeqCst);
    let since = now_ms();
    ws.provider_state(ProviderState::Live).await;
    let (payload, _) = event_after(&mut ws, "uw:FLOW-ALERTS", since).await;
    assert!(conn_of(&payload) >= 1, "data over a new connection");
    assert_eq!(mock.joined_on_latest(), ["flow-alerts".to_owned()].into());
}

#[tokio::test]
async fn a_quiet_upstream_is_kept_alive_by_protocol_pings() {
    let mock = UnusualWhalesMock::start(TOKEN).await;
    // The idle ping defaults to 15 s but is capped at half the watchdog window: 400 ms here.
    let relay = relay_for(&mock, TOKEN, &["--upstream-stale-ms", "800"]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &["uw:flow-alerts"]).await;
    event_after(&mut ws, "uw:FLOW-ALERTS", 0).await;
    // A quiet market: no data for several watchdog windows, but pings are answered.
    mock.state.silent.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mock.ws.accepted(), 1, "pongs keep a quiet connection open");
    mock.state.silent.store(false, std::sync::atomic::Ordering::SeqCst);
    event_after(&mut ws, "uw:FLOW-ALERTS", now_ms()).await;
    assert_eq!(mock.ws.accepted(), 1);
}

#[tokio::test]
async fn the_channel_list_is_searchable_and_refuses_an_unknown_channel_before_any_frame() {
    use hamster_shared::api::SymbolsResponse;
    let mock = UnusualWhalesMock::start(TOKEN).await;
    let relay = relay_for(&mock, TOKEN, &[]);
    relay
        .wait_status("the uw channel list", |s| {
            s.providers.iter().any(|p| p.name == "uw" && p.catalog.as_ref().is_some_and(|c| c.instruments == 9))
        })
        .await;

    // Search finds the channels by name and by what they carry.
    let (status, found): (u16, SymbolsResponse) = relay.get_json("/api/symbols?q=flow").await;
    assert_eq!(status, 200);
    let first = found.results.first().expect("a hit for flow");
    assert_eq!((first.symbol.as_str(), first.provider.as_str()), ("FLOW-ALERTS", "uw"), "{found:?}");
    assert_eq!(first.class, hamster_shared::api::InstrumentClass::Channel);
    let dark: SymbolsResponse = relay.get_json("/api/symbols?q=dark").await.1;
    assert_eq!(dark.results.first().map(|r| r.symbol.as_str()), Some("OFF_LIT_TRADES"), "{dark:?}");

    // A mistyped channel is refused at once with suggestions; the valid channel and ticker of the command stream.
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let (subscribed, _) = ws.subscribe(&["uw:FLOW-ALERT", "uw:flow-alerts", "AAPL", "uw:GEX-SPY"]).await;
    let ServerMessage::Subscribed { symbols, rejected, .. } = subscribed else { unreachable!() };
    assert_eq!(symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["uw:FLOW-ALERTS", "AAPL", "uw:GEX-SPY"]);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!((rejected[0].symbol.as_str(), rejected[0].code), ("uw:FLOW-ALERT", ErrorCode::UnknownSymbol));
    assert_eq!(rejected[0].suggestions.first().map(String::as_str), Some("FLOW-ALERTS"), "{rejected:?}");
    assert!(rejected[0].message.contains("did you mean FLOW-ALERTS?"), "{}", rejected[0].message);
    event_after(&mut ws, "uw:FLOW-ALERTS", 0).await;
    quote_after(&mut ws, "AAPL", 0).await;
    let wanted: std::collections::BTreeSet<String> = ["flow-alerts", "gex:SPY", "price:AAPL"].map(String::from).into();
    eventually("the valid channels joined", || mock.joined() == wanted).await;
    assert_eq!(mock.requests("join", "price:FLOW-ALERT"), 0, "nothing was sent for the mistyped channel");

    // REST refuses it the same way.
    let (status, body): (u16, Value) = relay.get_json("/api/quotes?symbols=uw:FLOW-ALERT").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("unknown_symbol")), "{body}");
}
