//! Alpaca adapter against a mock speaking its documented protocol, through the real relay binary: greeting →
//! auth → subscribe → trades and quotes merged and normalised for WebSocket clients → crypto-shaped symbols refused
//! → cuts survived with clients attached (re-auth, resubscribe) → the last client leaving unsubscribes upstream →
//! 50 clients share one connection and one subscription → 402 means `down` without a hot loop and without the
//! secret anywhere → 406 means backoff → 405 rejects the refused symbol → auth timeout, keep-alive and watchdog →
//! a newly wanted stock gets its day of one-minute bars from the Market Data API, with a 429 waited out.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hamster_shared::{ErrorCode, ProviderState, ServerMessage};
use hamster_tests::mocks::alpaca::{AlpacaMock, ASK, BID};
use hamster_tests::ws::Received;
use hamster_tests::{eventually, Relay, WsClient};

const KEY: &str = "AKALPACATESTKEY01";
const SECRET: &str = "alpaca-secret-canary-9c41";

fn relay_for(mock: &AlpacaMock, extra: &[&str]) -> Relay {
    relay_with_secret(mock, SECRET, extra)
}

fn relay_with_secret(mock: &AlpacaMock, secret: &str, extra: &[&str]) -> Relay {
    let ws_url = mock.ws_url();
    let mut args = vec![
        "--providers",
        "alpaca",
        "--alpaca-ws-url",
        &ws_url,
        "--alpaca-assets-url",
        &mock.rest_url,
        "--alpaca-data-url",
        &mock.rest_url,
        "--upstream-backoff-min-ms",
        "50",
        "--upstream-backoff-max-ms",
        "300",
    ];
    args.extend_from_slice(extra);
    Relay::start_with_env(0, &args, &[("APCA_API_KEY_ID", KEY), ("APCA_API_SECRET_KEY", secret)])
}

/// Waits for `state` reported with a reason (the driver also reports each new attempt, without one).
async fn wait_reason(ws: &mut WsClient, state: ProviderState) -> String {
    match ws
        .recv_until(
            &format!("status {state:?} with a reason"),
            |m| matches!(m, ServerMessage::Status { state: s, detail: Some(_), .. } if *s == state),
        )
        .await
    {
        ServerMessage::Status { detail, .. } => detail.unwrap_or_default(),
        _ => unreachable!(),
    }
}

/// Subscribes to one symbol and waits for its late rejection; returns the rejection message.
async fn late_rejection(ws: &mut WsClient, symbols: &[&str]) -> Vec<hamster_shared::Rejection> {
    ws.send_json(serde_json::json!({"type": "subscribe", "symbols": symbols})).await;
    match ws
        .recv_until(
            "late rejection",
            |m| matches!(m, ServerMessage::Subscribed { rejected, .. } if !rejected.is_empty()),
        )
        .await
    {
        ServerMessage::Subscribed { rejected, .. } => rejected,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn lifecycle_against_the_mock() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    let relay = relay_for(&mock, &[]);

    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL", "BRK.B"]).await;
    let q = ws.quote_for("AAPL").await;
    assert_eq!(q.provider, "alpaca");
    assert!((100.0..100.5).contains(&q.price), "price comes from trades: {}", q.price);
    assert_eq!((q.bid, q.ask), (Some(BID), Some(ASK)), "bid/ask come from quotes");
    assert!(mock.sent_at("AAPL", q.ts), "ts {} is the event time, nanoseconds truncated to ms", q.ts);
    assert_eq!((q.volume, q.change, q.change_pct), (None, None, None), "nothing invented");
    ws.quote_for("BRK.B").await;

    // Greeting first, then the auth message with both keys, then subscribe deltas for trades and quotes.
    let frames = mock.frames();
    assert_eq!(frames[0], serde_json::json!({"action": "auth", "key": KEY, "secret": SECRET}));
    assert!(frames
        .iter()
        .any(|f| f["action"] == "subscribe" && f["trades"] == f["quotes"] && f["trades"][0] == "AAPL"));
    assert_eq!(mock.state.content_types.lock().unwrap()[0], "application/json", "JSON frames, not msgpack");
    assert_eq!(mock.state.auths_ok.load(Ordering::SeqCst), 1);

    // A crypto pair is not a stock: refused per symbol with a clear reason, never sent to Alpaca.
    let rejected = late_rejection(&mut ws, &["BTC/USD"]).await;
    assert_eq!((rejected[0].symbol.as_str(), rejected[0].code), ("BTC/USD", ErrorCode::ProviderRejected));
    assert!(rejected[0].message.contains("crypto"), "{}", rejected[0].message);
    assert_eq!(mock.subscribe_requests_for("BTC/USD"), 0);

    // Cut the connection three times: the client stays, the relay re-authenticates and resubscribes each time.
    for round in 1..=3 {
        mock.ws.cut_all();
        ws.provider_state(ProviderState::Reconnecting).await;
        ws.provider_state(ProviderState::Live).await;
        let started = Instant::now();
        ws.quote_for("AAPL").await;
        ws.quote_for("BRK.B").await;
        println!("round {round}: data resumed {:?} after live", started.elapsed());
        assert_eq!(mock.state.auths_ok.load(Ordering::SeqCst), round + 1, "re-authenticated");
    }
    assert!(mock.subscribe_requests_for("BRK.B") >= 4, "resubscribed after every cut");
    assert_eq!(mock.subscribed(), ["AAPL".to_owned(), "BRK.B".to_owned()].into(), "resubscribed in full");

    // A second client shares AAPL; the first leaving releases only what nobody else wants.
    let mut other = WsClient::connect(&relay.ws_url()).await;
    other.hello().await;
    other.subscribe(&["AAPL"]).await;
    ws.close().await;
    eventually("BRK.B unsubscribed upstream", || !mock.subscribed().contains("BRK.B")).await;
    assert!(mock.subscribed().contains("AAPL"), "still wanted by the other client");
    other.quote_for("AAPL").await;
    other.close().await;
    eventually("AAPL unsubscribed upstream", || mock.subscribed().is_empty()).await;
    assert!(mock.unsubscribe_requests_for("AAPL") >= 1);
}

#[tokio::test]
async fn a_bid_and_ask_alone_are_no_price() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    mock.state.no_trades.store(true, Ordering::SeqCst);
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["MSFT"]).await;
    eventually("quotes streaming upstream", || {
        mock.state.sent_ms.lock().map(|s| s.iter().filter(|(sym, _)| sym == "MSFT").count() >= 5).unwrap_or(false)
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
        match ws.next_within(left).await {
            Some(Received::Message(ServerMessage::Quotes { quotes })) => panic!("quote without a trade: {quotes:?}"),
            Some(Received::Closed(frame)) => panic!("closed: {frame:?}"),
            Some(Received::Message(_)) => {}
            None => break,
        }
    }
    mock.state.no_trades.store(false, Ordering::SeqCst);
    let q = ws.quote_for("MSFT").await;
    assert!((100.0..100.5).contains(&q.price));
    assert_eq!((q.bid, q.ask), (Some(BID), Some(ASK)), "the quotes seen before the trade are merged in");
}

#[tokio::test]
async fn fifty_clients_one_connection_one_subscription() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    let relay = relay_for(&mock, &[]);
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(WsClient::subscribed(&relay.ws_url(), &["MSFT"]).await);
    }
    for ws in clients.iter_mut().step_by(7) {
        ws.quote_for("MSFT").await;
    }
    assert_eq!(mock.ws.accepted(), 1, "one upstream connection");
    assert_eq!(mock.state.auths.load(Ordering::SeqCst), 1, "one authentication");
    assert_eq!(mock.subscribe_requests_for("MSFT"), 1, "one upstream subscription");
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.upstream_subscriptions, 1);
}

#[tokio::test]
async fn refused_credentials_mean_down_without_a_hot_loop_or_a_leak() {
    let mock = AlpacaMock::start(KEY, "the-right-secret").await;
    // Whether Alpaca closes after 402 is unverified: the mock keeps the socket open, so only the error can tell.
    mock.state.close_on_error.store(false, Ordering::SeqCst);
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    let status = relay.wait_status("alpaca down", |s| s.providers[0].state == ProviderState::Down).await;
    let detail = status.providers[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("402") && detail.contains("APCA_API_SECRET_KEY"), "{detail}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mock.ws.attempts(), 1, "no retry storm after Alpaca refused our keys");
    assert_eq!(mock.state.auths.load(Ordering::SeqCst), 1);
    let (_, raw) = relay.get_json::<serde_json::Value>("/api/status").await;
    assert_eq!(raw["providers"][0]["state"], "down");
    assert!(!raw.to_string().contains(SECRET), "the secret is not in /api/status");
    let logs = relay.logs();
    assert!(!logs.is_empty());
    assert!(logs.iter().all(|l| !l.contains(SECRET) && !l.contains(KEY)), "the keys never reach a log line");
}

#[tokio::test]
async fn connection_limit_means_reconnecting_with_backoff() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    mock.state.refuse_sessions.store(usize::MAX, Ordering::SeqCst);
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    let detail = wait_reason(&mut ws, ProviderState::Reconnecting).await;
    assert!(detail.contains("406") && detail.contains("connection limit"), "{detail}");
    let before = mock.ws.attempts();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let retries = mock.ws.attempts() - before;
    // Full jitter under a 50 → 300 ms ceiling: a handful of tries in 2 s, never a hot loop, never giving up.
    assert!((2..=40).contains(&retries), "{retries} attempts in 2 s");
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.providers[0].state, ProviderState::Reconnecting, "406 is not an auth failure");
    mock.state.refuse_sessions.store(0, Ordering::SeqCst);
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for("AAPL").await;
}

#[tokio::test]
async fn symbol_limit_rejects_the_refused_symbol() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    mock.state.symbol_limit.store(3, Ordering::SeqCst);
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL", "BRK.B"]).await;
    ws.quote_for("AAPL").await;

    // One slot left, two asked for together: Alpaca refuses the whole subscribe (405 names no symbol); the relay
    // rejects the one beyond the limit and gets the other.
    let rejected = late_rejection(&mut ws, &["TSLA", "NVDA"]).await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].code, ErrorCode::ProviderRejected);
    assert!(rejected[0].message.contains("405") && rejected[0].message.contains("limit"), "{}", rejected[0].message);
    let kept = if rejected[0].symbol == "TSLA" { "NVDA" } else { "TSLA" };
    ws.quote_for(kept).await;

    let rejected = late_rejection(&mut ws, &["AMD"]).await;
    assert_eq!((rejected[0].symbol.as_str(), rejected[0].code), ("AMD", ErrorCode::ProviderRejected));
    assert_eq!(mock.subscribed().len(), 3);
    ws.quote_for("AAPL").await;
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.providers[0].state, ProviderState::Live, "a refused symbol costs no reconnect");
}

#[tokio::test]
async fn a_subscribe_refused_as_a_whole_costs_only_its_culprit() {
    let mock = AlpacaMock::start(KEY, SECRET).await; // no asset list: nothing is filtered before Alpaca sees it
    mock.state.malformed.lock().unwrap().insert("ZZZZ".to_owned());
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    // Alpaca answers the one subscribe with a bare 400 and takes none of it; the relay retries in halves.
    let rejected = late_rejection(&mut ws, &["AAPL", "MSFT", "ZZZZ", "TSLA"]).await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!((rejected[0].symbol.as_str(), rejected[0].code), ("ZZZZ", ErrorCode::ProviderRejected));
    assert!(rejected[0].message.contains("Alpaca refused ZZZZ (400 invalid syntax)"), "{}", rejected[0].message);
    for symbol in ["AAPL", "MSFT", "TSLA"] {
        ws.quote_for(symbol).await;
    }
    assert_eq!(mock.subscribed().into_iter().collect::<Vec<_>>(), ["AAPL", "MSFT", "TSLA"]);
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.providers[0].state, ProviderState::Live, "a refused subscribe costs no reconnect");
}

#[tokio::test]
async fn auth_waits_for_the_greeting_and_a_timeout_reconnects() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    mock.state.no_greeting.store(true, Ordering::SeqCst);
    mock.state.auth_timeout_ms.store(300, Ordering::SeqCst);
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let detail = wait_reason(&mut ws, ProviderState::Reconnecting).await;
    assert!(detail.contains("auth timeout"), "{detail}");
    assert_eq!(mock.state.auths.load(Ordering::SeqCst), 0, "no auth before the greeting");
    mock.state.no_greeting.store(false, Ordering::SeqCst);
    ws.provider_state(ProviderState::Live).await;
    assert_eq!(mock.state.auths_ok.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_quiet_connection_is_kept_alive() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    // No subscriptions, so no data: only the keep-alive's acknowledgements feed the 1 s watchdog.
    let relay = relay_for(&mock, &["--upstream-stale-ms", "1000"]);
    eventually("authenticated", || mock.state.auths_ok.load(Ordering::SeqCst) == 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(mock.ws.accepted(), 1, "the quiet connection was kept");
    let keepalives =
        mock.frames().iter().filter(|f| f["action"] == "subscribe" && f["trades"] == serde_json::json!([])).count();
    assert!(keepalives >= 3, "{keepalives} keep-alives");
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.providers[0].state, ProviderState::Live);
}

#[tokio::test]
async fn without_keepalive_a_quiet_connection_is_replaced() {
    // The twin of the test above: proves the watchdog would fire there if the keep-alive did not work.
    let mock = AlpacaMock::start(KEY, SECRET).await;
    let _relay = relay_for(&mock, &["--upstream-stale-ms", "800", "--alpaca-keepalive-ms", "0"]);
    eventually("authenticated", || mock.state.auths_ok.load(Ordering::SeqCst) == 1).await;
    eventually("the watchdog replacing the connection", || mock.ws.accepted() >= 2).await;
}

#[tokio::test]
async fn silent_upstream_is_replaced_by_the_watchdog() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    let relay = relay_for(&mock, &["--upstream-stale-ms", "700"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    ws.quote_for("AAPL").await;
    mock.state.silent.store(true, Ordering::SeqCst);
    let detail = wait_reason(&mut ws, ProviderState::Reconnecting).await;
    assert!(detail.contains("no data"), "the watchdog fired despite keep-alives");
    mock.state.silent.store(false, Ordering::SeqCst);
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for("AAPL").await;
    assert!(mock.ws.accepted() >= 2);
}

#[tokio::test]
async fn the_asset_list_refuses_an_unknown_ticker_before_anything_is_sent_and_the_valid_one_ticks() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    *mock.state.assets.lock().unwrap() = Some(vec![
        ("AAPL".into(), "Apple Inc. Common Stock".into()),
        ("MSFT".into(), "Microsoft Corporation Common Stock".into()),
        ("TSLA".into(), "Tesla, Inc. Common Stock".into()),
    ]);
    let relay = relay_for(&mock, &[]);
    relay
        .wait_status("Alpaca's asset list", |s| {
            s.providers.iter().any(|p| p.name == "alpaca" && p.catalog.as_ref().is_some_and(|c| c.instruments == 3))
        })
        .await;
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let (subscribed, _) = ws.subscribe(&["AAPL", "APPL"]).await;
    let ServerMessage::Subscribed { symbols, rejected, .. } = subscribed else { unreachable!() };
    assert_eq!(symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["AAPL"]);
    assert_eq!((rejected[0].symbol.as_str(), rejected[0].code), ("APPL", ErrorCode::UnknownSymbol));
    assert_eq!(rejected[0].suggestions.first().map(String::as_str), Some("AAPL"), "{rejected:?}");
    ws.quote_for("AAPL").await;
    assert_eq!(mock.subscribe_requests_for("APPL"), 0, "the typo never reached Alpaca");
    // The relay found the assets with the key pair, in headers, and the search has Alpaca's names.
    let found: hamster_shared::api::SymbolsResponse = relay.get_json("/api/symbols?q=microsoft").await.1;
    assert_eq!(found.results[0].symbol, "MSFT");
    assert!(!relay.logs().join("\n").contains(SECRET));
}

#[tokio::test]
async fn without_its_asset_list_alpaca_works_as_before_and_status_says_why() {
    let mock = AlpacaMock::start(KEY, SECRET).await; // /v2/assets answers 503
    let relay = relay_for(&mock, &[]);
    let status = relay
        .wait_status("the asset list error", |s| {
            s.providers.iter().any(|p| p.catalog.as_ref().is_some_and(|c| c.error.is_some()))
        })
        .await;
    let error = status.providers[0].catalog.as_ref().and_then(|c| c.error.clone()).unwrap_or_default();
    assert!(error.contains("503"), "{error}");
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let (subscribed, _) = ws.subscribe(&["NVDA"]).await;
    let ServerMessage::Subscribed { rejected, .. } = subscribed else { unreachable!() };
    assert!(rejected.is_empty(), "unchecked, as before catalogs: {rejected:?}");
    ws.quote_for("NVDA").await;
}

#[tokio::test]
async fn a_symbol_the_stream_accepts_but_never_quotes_is_reported_no_data_until_it_does() {
    let mock = AlpacaMock::start(KEY, SECRET).await;
    // Quotes only, no trades: the adapter has no price to send, so AAPL stays silent.
    mock.state.no_trades.store(true, Ordering::SeqCst);
    let relay = relay_for(&mock, &["--no-data-after-secs", "1"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    let silent = ws.recv_until("no_data", |m| matches!(m, ServerMessage::NoData { .. })).await;
    let ServerMessage::NoData { symbols, after_ms } = silent else { unreachable!() };
    assert_eq!((symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>(), after_ms), (vec!["AAPL"], 1_000));
    let status = relay.wait_status("AAPL listed as no_data", |s| s.no_data == ["AAPL"]).await;
    assert_eq!(status.no_data, ["AAPL"]);

    mock.state.no_trades.store(false, Ordering::SeqCst);
    ws.quote_for("AAPL").await;
    relay.wait_status("no_data cleared by the first quote", |s| s.no_data.is_empty()).await;
}

#[tokio::test]
async fn a_stock_opens_with_its_day_of_bars_fetched_with_the_key_headers() {
    use hamster_shared::api::HistoryResponse;
    use hamster_tests::mocks::alpaca::{bar_close, bar_minute_trades};

    let mock = AlpacaMock::start(KEY, SECRET).await;
    // The first bars request is answered 429; the relay waits until the window resets and asks again.
    mock.state.bars_throttle.store(1, Ordering::SeqCst);
    // Pages of 1,000 bars would take two requests; the relay asks for Alpaca's maximum, so one page.
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    ws.quote_for("AAPL").await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let candles = loop {
        let (status, h) = relay.get_json::<HistoryResponse>("/api/history/AAPL?tf=1m&limit=5000").await;
        assert_eq!(status, 200);
        if h.candles.len() >= 1_000 {
            break h.candles;
        }
        assert!(Instant::now() < deadline, "no day of bars: {} candles", h.candles.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let live_from = now / 60_000 * 60_000 - 60_000;
    let past: Vec<_> = candles.iter().filter(|c| c.start < live_from).collect();
    // A day of trading minutes (45 of every 60 here), each bar as sent; minutes without trades have no candle.
    assert!((1_070..=1_082).contains(&past.len()), "{} backfilled minutes", past.len());
    for c in &past {
        assert!(bar_minute_trades(c.start), "a candle for a minute without trades: {c:?}");
        assert_eq!((c.close, c.ticks, c.volume), (bar_close(c.start), 17, 1_500.0), "{c:?}");
    }

    let requests = mock.state.bars_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "the 429, then one page: {requests:?}");
    assert_eq!(requests[0], requests[1], "asked again as it was");
    let (symbol, query) = &requests[1];
    assert_eq!(symbol, "AAPL");
    for part in ["timeframe=1Min", "limit=10000", "feed=iex", "start=", "adjustment=raw"] {
        assert!(query.contains(part), "{part} in {query}");
    }
    // The keys travel as headers only, never in the query.
    assert!(!query.contains(KEY) && !query.contains("secret"), "{query}");
}
