//! Twelve Data adapter against a mock speaking its documented protocol, through the real relay binary:
//! connect → subscribe → data reaches WebSocket clients normalised → per-symbol rejection → the last client
//! leaving unsubscribes upstream → cuts and a silent upstream are survived with clients attached → REST fallback
//! while the stream is down → refused credentials are reported without a hot loop → a newly wanted symbol gets a
//! day of one-minute candles from `/time_series`, the key in its header.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hamster_shared::{ErrorCode, ProviderState, ServerMessage};
use hamster_tests::mocks::twelvedata::TwelveDataMock;
use hamster_tests::{Relay, WsClient};

const KEY: &str = "td-test-key-7f3a";

fn relay_for(mock: &TwelveDataMock, extra: &[&str]) -> Relay {
    let upstream = mock.relay_args();
    let mut args: Vec<&str> = upstream.iter().map(String::as_str).collect();
    args.extend_from_slice(&["--upstream-backoff-min-ms", "50", "--upstream-backoff-max-ms", "300"]);
    args.extend_from_slice(extra);
    Relay::start_with_env(0, &args, &[("TWELVE_DATA_API_KEY", KEY)])
}

#[tokio::test]
async fn lifecycle_against_the_mock() {
    let mock = TwelveDataMock::start().await;
    mock.refuse("NOPE");
    let relay = relay_for(&mock, &[]);

    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL", "EUR/USD"]).await;
    let q = ws.quote_for("AAPL").await;
    assert_eq!(q.provider, "twelvedata");
    assert!(q.ts > 1_600_000_000_000, "seconds became milliseconds: {}", q.ts);
    assert!(q.volume.is_some() && q.bid.is_none());
    let fx = ws.quote_for("EUR/USD").await;
    assert!(fx.bid.is_some() && fx.ask.is_some());
    assert_eq!(mock.ws.accepted(), 1);
    // The key went upstream in the query, as documented.
    let first = mock.ws.received();
    assert!(!first.is_empty());

    // A symbol the upstream refuses is rejected with its reason; the others keep streaming.
    ws.send_text(r#"{"type":"subscribe","symbols":["NOPE"]}"#).await;
    ws.recv_until("subscribed NOPE", |m| matches!(m, ServerMessage::Subscribed { symbols, .. } if symbols.len() == 1))
        .await;
    match ws
        .recv_until(
            "late rejection",
            |m| matches!(m, ServerMessage::Subscribed { rejected, .. } if !rejected.is_empty()),
        )
        .await
    {
        ServerMessage::Subscribed { rejected, .. } => {
            assert_eq!(rejected[0].symbol, "NOPE");
            assert_eq!(rejected[0].code, ErrorCode::ProviderRejected);
            assert!(rejected[0].message.contains("not available on your plan"), "{}", rejected[0].message);
        }
        _ => unreachable!(),
    }
    ws.quote_for("AAPL").await;

    // Cut the connection three times; the client stays connected and data resumes each time.
    for round in 1..=3 {
        mock.ws.cut_all();
        ws.provider_state(ProviderState::Reconnecting).await;
        ws.provider_state(ProviderState::Live).await;
        let started = Instant::now();
        ws.quote_for("AAPL").await;
        ws.quote_for("EUR/USD").await;
        println!("round {round}: data resumed {:?} after live", started.elapsed());
        assert_eq!(mock.ws.accepted(), round + 1);
    }
    let subscribed = mock.subscribed();
    assert!(subscribed.contains("AAPL") && subscribed.contains("EUR/USD"), "resubscribed in full: {subscribed:?}");

    // The last client leaving unsubscribes upstream.
    ws.send_text(r#"{"type":"unsubscribe","symbols":["AAPL","EUR/USD"]}"#).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !mock.subscribed().is_empty() {
        assert!(Instant::now() < deadline, "still subscribed upstream: {:?}", mock.subscribed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mock.ws.received().iter().any(|f| f.contains(r#""action":"unsubscribe""#)));
}

#[tokio::test]
async fn fifty_clients_one_connection_one_subscription() {
    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &[]);
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(WsClient::subscribed(&relay.ws_url(), &["MSFT"]).await);
    }
    for ws in clients.iter_mut().step_by(7) {
        ws.quote_for("MSFT").await;
    }
    assert_eq!(mock.ws.accepted(), 1, "one upstream connection");
    assert_eq!(mock.subscribe_requests_for("MSFT"), 1, "one upstream subscription");
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.upstream_subscriptions, 1);
}

#[tokio::test]
async fn silent_upstream_is_replaced_by_the_watchdog() {
    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &["--upstream-stale-ms", "700"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    ws.quote_for("AAPL").await;
    mock.state.silent.store(true, Ordering::SeqCst);
    let detail = ws.provider_state(ProviderState::Reconnecting).await;
    assert!(detail.unwrap_or_default().contains("no data"), "the watchdog fired");
    mock.state.silent.store(false, Ordering::SeqCst);
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for("AAPL").await;
    assert!(mock.ws.accepted() >= 2);
}

#[tokio::test]
async fn rest_fallback_while_the_stream_is_down() {
    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &["--twelvedata-rest-credits-per-min", "600"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL", "MSFT"]).await;
    ws.quote_for("AAPL").await;

    // The stream goes away and stays away (upgrades refused with 503, not an auth failure).
    mock.ws.refuse_with(503);
    mock.ws.cut_all();
    let detail = ws.provider_state(ProviderState::Degraded).await;
    assert!(detail.unwrap_or_default().contains("REST"));
    let q = ws.quote_for("MSFT").await;
    assert_eq!(q.price, 204.0, "the REST price, parsed from its string");
    assert!(mock.state.rest_requests.load(Ordering::SeqCst) >= 1);
    assert_eq!(*mock.state.rest_last_key.lock().unwrap(), KEY);

    // Back to streaming once the upstream accepts again; polling stops.
    mock.ws.refuse_with(0);
    ws.provider_state(ProviderState::Live).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let polls = mock.state.rest_requests.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mock.state.rest_requests.load(Ordering::SeqCst), polls, "no polling while live");
    ws.quote_for("AAPL").await;
}

#[tokio::test]
async fn refused_credentials_mean_down_without_a_hot_loop() {
    let mock = TwelveDataMock::start().await;
    mock.ws.refuse_with(401);
    mock.state.rest_bad_key.store(true, Ordering::SeqCst);
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    let status = relay.wait_status("twelvedata down", |s| s.providers[0].state == ProviderState::Down).await;
    let detail = status.providers[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("401") && detail.contains("API key"), "{detail}");
    assert!(!detail.contains(KEY));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mock.ws.attempts(), 1, "no retry storm after the upstream refused our key");
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.providers[0].state, ProviderState::Down, "REST refused the key too: still down");
    assert!(mock.state.rest_requests.load(Ordering::SeqCst) >= 1, "the REST fallback tried");
    assert!(relay.logs().iter().all(|l| !l.contains(KEY)), "the key never reaches a log line");
}

#[tokio::test]
async fn missing_key_is_reported_not_configured() {
    let relay = Relay::start(&["--providers", "sim,twelvedata"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    let hello = ws.hello().await;
    let ServerMessage::Hello { providers, .. } = hello else { unreachable!() };
    assert_eq!(providers.len(), 2);
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    let td = status.providers.iter().find(|p| p.name == "twelvedata").unwrap();
    if td.state != ProviderState::Down {
        relay
            .wait_status("twelvedata down", |s| {
                s.providers.iter().any(|p| p.name == "twelvedata" && p.state == ProviderState::Down)
            })
            .await;
    }
    ws.send_text(r#"{"type":"subscribe","symbols":["twelvedata:AAPL","sim:AAPL"]}"#).await;
    match ws
        .recv_until("rejection", |m| matches!(m, ServerMessage::Subscribed { rejected, .. } if !rejected.is_empty()))
        .await
    {
        ServerMessage::Subscribed { rejected, .. } => {
            assert_eq!(rejected[0].symbol, "twelvedata:AAPL");
            assert!(rejected[0].message.contains("TWELVE_DATA_API_KEY"), "{}", rejected[0].message);
        }
        _ => unreachable!(),
    }
    ws.quote_for("sim:AAPL").await;
}

/// 1,000 clients × 10 distinct symbols of 1,000, against a provider that takes one client event per 600 ms: every
/// symbol is subscribed upstream within 3 s (the wanted symbols are merged into few frames while a slot is
/// awaited), and the 10 s heartbeat never waits behind subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_are_subscribed_in_few_frames_and_heartbeats_keep_their_beat() {
    let mock = TwelveDataMock::start().await;
    mock.state.prices_off.store(true, Ordering::SeqCst);
    let relay = relay_for(&mock, &["--max-connections-per-ip", "0", "--twelvedata-rest-credits-per-min", "0"]);
    let symbols: Vec<String> = (0..1000).map(|i| format!("S{i:03}X")).collect();
    // Connect everyone first, so the subscriptions arrive as one burst.
    let mut clients = Vec::new();
    for _ in 0..1000 {
        let mut ws = WsClient::connect(&relay.ws_url()).await;
        ws.hello().await;
        clients.push(ws);
    }
    let connected_at = mock.ws.received_timed().first().map(|(at, _)| *at);
    let burst = Instant::now();
    for (i, ws) in clients.iter_mut().enumerate() {
        // Client i wants symbols i, i+100, … i+900 (mod 1000): every symbol is wanted by ten clients.
        let mine: Vec<&String> = (0..10).map(|k| &symbols[(i + k * 100) % 1000]).collect();
        ws.send_json(serde_json::json!({"type": "subscribe", "symbols": mine})).await;
    }
    let sent = burst.elapsed();
    hamster_tests::eventually_within("all 1,000 symbols subscribed upstream", Duration::from_secs(10), || {
        mock.subscribed().len() == 1000
    })
    .await;
    let subscribed_after = burst.elapsed();
    assert!(subscribed_after <= Duration::from_secs(3) + sent, "took {subscribed_after:?} (sending took {sent:?})");
    let frames = mock.ws.received();
    let subscribes = frames.iter().filter(|f| f.contains(r#""action":"subscribe""#)).count();
    assert!(subscribes <= 10, "{subscribes} subscribe frames for 1,000 symbols");
    for symbol in ["S000X", "S999X", "S500X"] {
        assert_eq!(mock.subscribe_requests_for(symbol), 1, "{symbol} subscribed once");
    }

    // Heartbeats every ~10 s throughout, the burst included.
    tokio::time::sleep(Duration::from_secs(21)).await;
    let beats: Vec<Instant> = mock
        .ws
        .received_timed()
        .into_iter()
        .filter(|(_, f)| f.contains(r#""action":"heartbeat""#))
        .map(|(at, _)| at)
        .collect();
    assert!(beats.len() >= 2, "{} heartbeats in 21 s", beats.len());
    let mut previous = connected_at.unwrap_or(burst);
    for at in beats {
        let gap = at.duration_since(previous);
        assert!(gap <= Duration::from_millis(11_000), "a heartbeat waited {gap:?}");
        previous = at;
    }
    println!("1,000 symbols subscribed {subscribed_after:?} after the burst began, in {subscribes} frames");
}

#[tokio::test]
async fn search_finds_twelve_datas_reference_symbols_and_they_refuse_nothing() {
    use hamster_shared::api::SymbolsResponse;
    let mock = TwelveDataMock::start().await;
    let relay = relay_for(&mock, &[]);
    relay
        .wait_status("Twelve Data's reference lists", |s| {
            s.providers.iter().any(|p| p.catalog.as_ref().is_some_and(|c| c.instruments == 4 && !c.validates))
        })
        .await;
    let found: SymbolsResponse = relay.get_json("/api/symbols?q=business").await.1;
    assert_eq!(found.results[0].symbol, "IBM", "{found:?}");
    assert_eq!(*mock.state.reference_auth.lock().unwrap(), format!("apikey {KEY}"), "the key in the header");
    // Not in the lists, still streamed: Twelve Data names its own refusals.
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let (subscribed, _) = ws.subscribe(&["MSFT"]).await;
    let ServerMessage::Subscribed { rejected, .. } = subscribed else { unreachable!() };
    assert!(rejected.is_empty(), "{rejected:?}");
    ws.quote_for("MSFT").await;
}

#[tokio::test]
async fn a_symbol_opens_with_a_day_of_minutes_fetched_with_the_key_in_the_header() {
    use hamster_shared::api::HistoryResponse;
    use hamster_tests::mocks::twelvedata::series_close;

    let mock = TwelveDataMock::start().await;
    // 600 credits a minute space requests 100 ms apart. (An out-of-credits answer waits for the next minute, up to
    // 61 s: the unit tests of `providers::backfill` and `twelvedata::history` cover it without the wait.)
    let relay = relay_for(&mock, &["--twelvedata-rest-credits-per-min", "600"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL", "EUR/USD"]).await;
    ws.quote_for("AAPL").await;

    let day = |symbol: &'static str| {
        let (relay, mock) = (&relay, &mock);
        async move {
            let deadline = Instant::now() + Duration::from_secs(75);
            loop {
                let (status, h) =
                    relay.get_json::<HistoryResponse>(&format!("/api/history/{symbol}?tf=1m&limit=5000")).await;
                assert_eq!(status, 200);
                if h.candles.len() >= 1_400 {
                    return h.candles;
                }
                assert!(
                    Instant::now() < deadline,
                    "{symbol}: no day of candles ({}); requests {:?}",
                    h.candles.len(),
                    mock.state.series_requests.lock().map(|r| r.clone()).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    for (symbol, volume) in [("AAPL", 3_300.0), ("EUR/USD", 0.0)] {
        let candles = day(symbol).await;
        assert_eq!(candles.len(), 1_440, "{symbol}");
        assert!(candles.windows(2).all(|w| w[1].start - w[0].start == 60_000), "{symbol}: one candle a minute");
        for c in candles.iter().filter(|c| c.start < now / 60_000 * 60_000 - 60_000) {
            assert_eq!((c.close, c.volume), (series_close(c.start), volume), "{symbol}: {c:?}");
        }
    }
    let requests = mock.state.series_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "one per symbol: {requests:?}");
    for (query, auth) in &requests {
        assert_eq!(auth, &format!("apikey {KEY}"), "the key goes in the header");
        assert!(!query.contains(KEY), "and never in the query: {query}");
        assert!(query.contains("interval=1min") && query.contains("outputsize=1440") && query.contains("timezone=UTC"));
    }
}
