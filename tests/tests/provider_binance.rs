//! Binance spot adapter against a mock speaking its documented protocol, through the real relay binary:
//! connect → SUBSCRIBE → data reaches WebSocket clients normalised → error replies and bad spellings rejected per
//! symbol → the last client leaving unsubscribes upstream → cuts and `serverShutdown` survived with clients
//! attached → 50 clients share one stream → the stream limit rejects the excess → control frames stay under
//! 5 msg/s (and the check is shown to catch a client that does not) → pings answered with their payload →
//! refused upgrades back off → connections are replaced before the 24 h cut → a newly wanted pair gets a day of
//! one-minute klines from the REST endpoint, with a 429 waited out.

use std::time::Duration;

use hamster_shared::{ErrorCode, ProviderState, ServerMessage};
use hamster_tests::mocks::binance::{BinanceMock, PingProbe};
use hamster_tests::{eventually_within, Relay, WsClient};

/// A relay on `url`; its instrument list comes from `rest` (the mock's, or a closed port: never the internet).
fn relay_at(url: &str, rest: &str, extra: &[&str]) -> Relay {
    let mut args = vec![
        "--providers",
        "binance",
        "--binance-ws-url",
        url,
        "--binance-rest-url",
        rest,
        "--upstream-backoff-min-ms",
        "50",
        "--upstream-backoff-max-ms",
        "300",
    ];
    args.extend_from_slice(extra);
    // Binance needs no key: the relay gets none.
    Relay::start_with_env(0, &args, &[])
}

fn relay_for(mock: &BinanceMock, extra: &[&str]) -> Relay {
    relay_at(&mock.ws_url(), &mock.rest_url, extra)
}

/// Sends a subscribe and returns the rejections that arrive for it (at once or late, from upstream).
async fn rejections(ws: &mut WsClient, symbols: &[&str], expected: usize) -> Vec<hamster_shared::Rejection> {
    ws.send_json(serde_json::json!({"type": "subscribe", "symbols": symbols})).await;
    let mut got = Vec::new();
    while got.len() < expected {
        match ws
            .recv_until(
                "rejection",
                |m| matches!(m, ServerMessage::Subscribed { rejected, .. } if !rejected.is_empty()),
            )
            .await
        {
            ServerMessage::Subscribed { rejected, .. } => got.extend(rejected),
            _ => unreachable!(),
        }
    }
    got
}

#[tokio::test]
async fn lifecycle_against_the_mock() {
    let mock = BinanceMock::start().await;
    mock.refuse("nopeusdt@ticker");
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &["BTC/USD", "ETH/USDT"]).await;

    // Normalised: canonical symbol, provider, ms event time, Binance's 24 h change, bid/ask and volume.
    let q = ws.quote_for("BTC/USD").await;
    assert_eq!(q.provider, "binance");
    assert!(q.ts > 1_600_000_000_000 && q.ts < 100_000_000_000_000, "ms timestamp: {}", q.ts);
    assert!((100.0..101.0).contains(&q.price), "string price parsed: {}", q.price);
    let change = q.change.expect("change from `p`");
    assert!((change - (q.price - 100.0)).abs() < 1e-6, "change {change} vs price {}", q.price);
    let pct = q.change_pct.expect("change_pct from `P`");
    assert!((pct - (q.price - 100.0)).abs() < 0.001, "24 h change % from the open of 100: {pct}");
    assert!(q.bid.is_some() && q.ask.is_some() && q.volume.is_some(), "{q:?}");
    ws.quote_for("ETH/USDT").await;
    assert_eq!(mock.ws.accepted(), 1);
    assert_eq!(mock.ws.open(), 1);
    let subs: Vec<_> = mock.requests().into_iter().filter(|r| r.method == "SUBSCRIBE").collect();
    assert!(subs.iter().all(|r| r.id.is_u64()), "integer ids: {subs:?}");
    assert_eq!(mock.subscribed(), ["btcusdt@ticker", "ethusdt@ticker"].map(String::from).into());

    // An error reply rejects exactly the symbol it answers; a spelling Binance cannot have is refused too.
    let rejected = rejections(&mut ws, &["NOPE/USD", "BRK.B"], 2).await;
    let nope = rejected.iter().find(|r| r.symbol == "NOPE/USD").expect("NOPE/USD rejected");
    assert_eq!(nope.code, ErrorCode::ProviderRejected);
    assert!(nope.message.contains("invalid stream") && nope.message.contains("nopeusdt@ticker"), "{}", nope.message);
    let brk = rejected.iter().find(|r| r.symbol == "BRK.B").expect("BRK.B rejected");
    assert_eq!(brk.code, ErrorCode::ProviderRejected);
    assert!(brk.message.contains("BASE/QUOTE"), "{}", brk.message);
    ws.quote_for("BTC/USD").await;

    // Cut the connection three times; the client stays connected and data resumes each time.
    for round in 1..=3 {
        mock.ws.cut_all();
        ws.provider_state(ProviderState::Reconnecting).await;
        ws.provider_state(ProviderState::Live).await;
        ws.quote_for("BTC/USD").await;
        ws.quote_for("ETH/USDT").await;
        assert_eq!(mock.ws.accepted(), round + 1);
        assert_eq!(mock.subscribed(), ["btcusdt@ticker", "ethusdt@ticker"].map(String::from).into(), "round {round}");
    }

    // serverShutdown: the relay leaves and reconnects on its own (the mock keeps the old socket open).
    mock.server_shutdown();
    let detail = ws.provider_state(ProviderState::Reconnecting).await;
    assert!(detail.unwrap_or_default().contains("serverShutdown"));
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for("BTC/USD").await;
    assert_eq!(mock.ws.accepted(), 5);
    mock.ws.wait_until("the old connection closed", |m| m.open() == 1).await;

    // The last client leaving unsubscribes upstream.
    ws.send_text(r#"{"type":"unsubscribe","symbols":["BTC/USD","ETH/USDT"]}"#).await;
    eventually_within("upstream unsubscribed", Duration::from_secs(10), || mock.subscribed().is_empty()).await;
    let unsubs: Vec<_> = mock.requests().into_iter().filter(|r| r.method == "UNSUBSCRIBE").collect();
    assert!(!unsubs.is_empty() && unsubs.iter().all(|r| r.id.is_u64()));

    assert_eq!(mock.rate_violation(), None, "the relay never sent more than 5 messages/s");
}

#[tokio::test]
async fn a_request_refused_as_a_whole_costs_only_its_culprits() {
    let mock = BinanceMock::start().await;
    // Binance lists three of the five pairs and refuses any SUBSCRIBE naming one it does not list, without
    // saying which; its catalog endpoint is unreachable, so nothing is filtered before the request goes out.
    mock.list_pairs(&["BTC/USDT", "ETH/USDT", "SOL/USDT"]);
    let relay = relay_at(&mock.ws_url(), "http://127.0.0.1:9", &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;

    let symbols = ["BTC/USD", "NOPE/USD", "ETH/USDT", "SOL/USDT", "ZZZ/USDT"];
    let mut rejected = rejections(&mut ws, &symbols, 2).await;
    rejected.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    let culprits: Vec<(&str, ErrorCode)> = rejected.iter().map(|r| (r.symbol.as_str(), r.code)).collect();
    assert_eq!(culprits, [("NOPE/USD", ErrorCode::ProviderRejected), ("ZZZ/USDT", ErrorCode::ProviderRejected)]);
    for (r, stream) in rejected.iter().zip(["nopeusdt@ticker", "zzzusdt@ticker"]) {
        assert!(r.message.contains(stream) && r.message.contains("Invalid request: invalid stream"), "{r:?}");
    }
    // The valid pairs of the same command all tick, on one connection.
    for symbol in ["BTC/USD", "ETH/USDT", "SOL/USDT"] {
        ws.quote_for(symbol).await;
    }
    let streams = ["btcusdt@ticker", "ethusdt@ticker", "solusdt@ticker"];
    assert_eq!(mock.subscribed(), streams.map(String::from).into());
    assert_eq!(mock.ws.accepted(), 1);
    // The search stays within Binance's message budget: a handful of paced requests, no rate violation.
    let refused = mock.refused_requests.load(std::sync::atomic::Ordering::SeqCst);
    let accepted = mock.requests().iter().filter(|r| r.method == "SUBSCRIBE").count();
    assert!((3..=6).contains(&refused) && (1..=4).contains(&accepted), "{refused} refused, {accepted} accepted");
    assert_eq!(mock.rate_violation(), None);
}

#[tokio::test]
async fn fifty_clients_one_connection_one_subscription() {
    let mock = BinanceMock::start().await;
    let relay = relay_for(&mock, &[]);
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(WsClient::subscribed(&relay.ws_url(), &["SOL/USD"]).await);
    }
    for ws in clients.iter_mut().step_by(7) {
        ws.quote_for("SOL/USD").await;
    }
    assert_eq!(mock.ws.accepted(), 1, "one upstream connection");
    assert_eq!(mock.subscribe_requests_for("solusdt@ticker"), 1, "one upstream SUBSCRIBE");
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.upstream_subscriptions, 1);
    assert_eq!(mock.rate_violation(), None);
}

#[tokio::test]
async fn the_stream_limit_rejects_the_excess_per_symbol() {
    let mock = BinanceMock::start().await;
    let relay = relay_for(&mock, &["--binance-max-streams", "3"]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &["BTC/USD", "ETH/USD", "SOL/USD"]).await;
    ws.quote_for("SOL/USD").await;

    let rejected = rejections(&mut ws, &["XRP/USD", "ADA/USD"], 2).await;
    let mut names: Vec<&str> = rejected.iter().map(|r| r.symbol.as_str()).collect();
    names.sort();
    assert_eq!(names, ["ADA/USD", "XRP/USD"]);
    for r in &rejected {
        assert_eq!(r.code, ErrorCode::ProviderRejected);
        assert!(r.message.contains("3 streams"), "{}", r.message);
    }
    // Another spelling of a stream already held costs no stream, so it is still served at the limit.
    ws.subscribe(&["BTC/USDT"]).await;
    let q = ws.quote_for("BTC/USDT").await;
    assert_eq!(q.provider, "binance");
    assert_eq!(mock.subscribe_requests_for("btcusdt@ticker"), 1, "BTC/USD and BTC/USDT share btcusdt@ticker");
    assert_eq!(mock.max_streams_seen(), 3);

    // After a reconnect the same three streams come back, never more.
    mock.ws.cut_all();
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for("ETH/USD").await;
    ws.quote_for("BTC/USDT").await;
    assert_eq!(mock.subscribed().len(), 3);
    assert_eq!(mock.max_streams_seen(), 3);
}

const MANY: [&str; 12] = [
    "BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ADA/USD", "DOGE/USD", "DOT/USD", "LTC/USD", "LINK/USD", "AVAX/USD",
    "TRX/USD", "ATOM/USD",
];

#[tokio::test]
async fn control_frames_are_paced_under_five_per_second() {
    let mock = BinanceMock::start().await;
    // One stream per request forces twelve SUBSCRIBE frames out at once.
    let relay = relay_for(&mock, &["--binance-max-streams-per-request", "1"]);
    let _ws = WsClient::subscribed(&relay.ws_url(), &MANY).await;
    eventually_within("all twelve streams", Duration::from_secs(15), || {
        mock.subscribed().len() == MANY.len() || mock.rate_violation().is_some()
    })
    .await;
    assert_eq!(mock.rate_violation(), None);
    let subs: Vec<_> = mock.requests().into_iter().filter(|r| r.method == "SUBSCRIBE").collect();
    assert_eq!(subs.len(), MANY.len());
    let gaps: Vec<Duration> = subs.windows(2).map(|w| w[1].at.duration_since(w[0].at)).collect();
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(150)), "paced ~300 ms apart: {gaps:?}");
    assert_eq!(mock.ws.accepted(), 1, "never cut for flooding");
}

#[tokio::test]
async fn one_subscribe_carries_many_streams() {
    let mock = BinanceMock::start().await;
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &MANY).await;
    ws.quote_for("ATOM/USD").await;
    eventually_within("all twelve streams", Duration::from_secs(10), || mock.subscribed().len() == MANY.len()).await;
    let subs = mock.requests().into_iter().filter(|r| r.method == "SUBSCRIBE").count();
    assert!(subs <= 2, "{subs} SUBSCRIBE frames for one client command of 12 symbols");
}

/// The negative control for the rate assertions above: with pacing off, the same burst is caught.
#[tokio::test]
async fn the_rate_check_catches_an_unpaced_client() {
    let mock = BinanceMock::start().await;
    let relay = relay_for(&mock, &["--binance-max-streams-per-request", "1", "--binance-min-send-interval-ms", "0"]);
    let _ws = WsClient::subscribed(&relay.ws_url(), &MANY).await;
    eventually_within("a rate violation", Duration::from_secs(10), || mock.rate_violation().is_some()).await;
    println!("caught: {}", mock.rate_violation().unwrap_or_default());
}

#[tokio::test]
async fn pings_are_answered_with_their_payload() {
    let probe = PingProbe::start(Duration::from_millis(300)).await;
    let relay = relay_at(&probe.ws_url(), "http://127.0.0.1:9", &[]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &["BTC/USD"]).await;
    ws.quote_for("BTC/USD").await;
    eventually_within("three pongs", Duration::from_secs(10), || probe.state.pings_and_pongs().1.len() >= 3).await;
    let (pings, pongs) = probe.state.pings_and_pongs();
    assert_eq!(pongs[..3], pings[..3], "each pong echoes its ping's payload, in order");
    assert!(pongs[0].starts_with(b"probe-"));
}

#[tokio::test]
async fn refused_upgrades_back_off_without_a_hot_loop() {
    let mock = BinanceMock::start().await;
    mock.ws.refuse_with(503);
    let relay = relay_for(&mock, &["--upstream-backoff-min-ms", "200", "--upstream-backoff-max-ms", "1000"]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &["BTC/USD"]).await;
    let status = relay
        .wait_status("binance reconnecting after 503", |s| {
            s.providers[0].state == ProviderState::Reconnecting
                && s.providers[0].detail.as_deref().unwrap_or("").contains("503")
        })
        .await;
    assert_eq!(status.providers[0].name, "binance");
    let before = mock.ws.attempts();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = mock.ws.attempts() - before;
    assert!((1..=15).contains(&attempts), "{attempts} attempts in 2 s: retried with backoff, not in a hot loop");
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_ne!(status.providers[0].state, ProviderState::Down, "no key to blame: never down");
    assert_eq!(mock.ws.accepted(), 0);

    // The upstream accepts again: live and streaming, the client never disconnected.
    mock.ws.refuse_with(0);
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for("BTC/USD").await;
}

#[tokio::test]
async fn old_connections_are_replaced_before_the_cut() {
    let mock = BinanceMock::start().await;
    let relay = relay_for(&mock, &["--binance-max-connection-age-secs", "1"]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &["BTC/USD"]).await;
    ws.quote_for("BTC/USD").await;
    let detail = ws.provider_state(ProviderState::Reconnecting).await.unwrap_or_default();
    assert!(detail.contains("connection age"), "{detail}");
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for("BTC/USD").await;
    assert!(mock.ws.accepted() >= 2);
    assert!(mock.subscribed().contains("btcusdt@ticker"), "resubscribed on the new connection");
}

#[tokio::test]
async fn mini_ticker_stream_is_configurable() {
    let mock = BinanceMock::start().await;
    let relay = relay_for(&mock, &["--binance-stream", "miniTicker"]);
    let mut ws = WsClient::subscribed(&relay.ws_url(), &["BTC/USD"]).await;
    let q = ws.quote_for("BTC/USD").await;
    assert_eq!(mock.subscribe_requests_for("btcusdt@miniTicker"), 1);
    assert_eq!((q.bid, q.ask), (None, None), "the mini ticker has no book: nothing invented");
    let pct = q.change_pct.expect("computed from the 24 h open");
    assert!((pct - (q.price - 100.0)).abs() < 1e-6, "{pct} for {}", q.price);
}

/// Polls `/api/status` until Binance's catalog holds `n` instruments.
async fn catalog_loaded(relay: &Relay, n: usize) {
    relay
        .wait_status("the Binance catalog", |s| {
            s.providers.iter().any(|p| p.name == "binance" && p.catalog.as_ref().is_some_and(|c| c.instruments == n))
        })
        .await;
}

#[tokio::test]
async fn the_catalog_refuses_an_unknown_pair_before_anything_is_sent_and_the_valid_one_ticks() {
    let mock = BinanceMock::start().await;
    mock.list_pairs(&["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT"]);
    let relay = relay_for(&mock, &[]);
    catalog_loaded(&relay, 4).await;
    assert_eq!(mock.catalog_requests.load(std::sync::atomic::Ordering::SeqCst), 1);

    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let (subscribed, _) = ws.subscribe(&["BTC/USD", "BTC/USDX", "ETH/BTC"]).await;
    let ServerMessage::Subscribed { symbols, rejected, .. } = subscribed else { unreachable!() };
    assert_eq!(symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["BTC/USD", "ETH/BTC"]);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!((rejected[0].symbol.as_str(), rejected[0].code), ("BTC/USDX", ErrorCode::UnknownSymbol));
    assert_eq!(rejected[0].suggestions.first().map(String::as_str), Some("BTC/USDT"), "{rejected:?}");
    assert!(rejected[0].message.contains("did you mean BTC/USDT"), "{}", rejected[0].message);
    // The valid pairs of the same command tick; the unknown one never reached Binance.
    ws.quote_for("BTC/USD").await;
    ws.quote_for("ETH/BTC").await;
    assert!(
        mock.requests().iter().all(|r| r.params.iter().all(|p| !p.starts_with("btcusdx"))),
        "{:?}",
        mock.requests()
    );

    // REST refuses it the same way, with a JSON body.
    let (status, body): (u16, serde_json::Value) = relay.get_json("/api/quotes?symbols=BTC/USDX").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("unknown_symbol")), "{body}");
}

#[tokio::test]
async fn without_its_catalog_binance_works_as_before_and_status_says_why() {
    let mock = BinanceMock::start().await; // exchangeInfo answers 503
    let relay = relay_for(&mock, &[]);
    let status = relay
        .wait_status("the catalog error", |s| {
            s.providers.iter().any(|p| p.catalog.as_ref().is_some_and(|c| c.error.is_some()))
        })
        .await;
    let catalog = status.providers.iter().find(|p| p.name == "binance").and_then(|p| p.catalog.clone()).unwrap();
    assert!(catalog.error.as_deref().is_some_and(|e| e.contains("503")), "{catalog:?}");
    assert_eq!((catalog.instruments, catalog.validates), (0, true));
    // Unchecked, the pair goes upstream as it always did.
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let (subscribed, _) = ws.subscribe(&["XRP/USD"]).await;
    let ServerMessage::Subscribed { rejected, .. } = subscribed else { unreachable!() };
    assert!(rejected.is_empty());
    ws.quote_for("XRP/USD").await;
}

#[tokio::test]
async fn search_finds_symbols_across_providers_with_the_route_each_takes() {
    use hamster_shared::api::SymbolsResponse;
    let mock = BinanceMock::start().await;
    mock.list_pairs(&["BTC/USDT", "ETH/USDT", "WBTC/BTC"]);
    let (ws_url, rest_url) = (mock.ws_url(), mock.rest_url.clone());
    let args = ["--providers", "sim,binance", "--binance-ws-url", &ws_url, "--binance-rest-url", &rest_url];
    let relay = Relay::start_with_env(0, &args, &[]);
    catalog_loaded(&relay, 3).await;
    let (status, found): (u16, SymbolsResponse) = relay.get_json("/api/symbols?q=btc&limit=5").await;
    assert_eq!(status, 200);
    let symbols: Vec<&str> = found.results.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(symbols[0], "BTC/USD", "the simulator's BTC/USD first: {symbols:?}");
    assert!(symbols.contains(&"binance:BTC/USDT"), "Binance's pair with the prefix that routes there: {symbols:?}");
    let apple: SymbolsResponse = relay.get_json("/api/symbols?q=apple").await.1;
    assert_eq!(apple.results[0].symbol, "AAPL");
    assert_eq!(apple.results[0].name, "Apple Inc.");
    let only: SymbolsResponse = relay.get_json("/api/symbols?q=btc&provider=binance&class=crypto").await.1;
    assert!(only.results.iter().all(|r| r.provider == "binance"), "{only:?}");
    let (status, body): (u16, serde_json::Value) = relay.get_json("/api/symbols?q=btc&class=bonds").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_message")));
    let (status, body): (u16, serde_json::Value) = relay.get_json("/api/symbols?q=btc&provider=nope").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("unknown_provider")));
}

#[tokio::test]
async fn a_pair_opens_with_a_day_of_klines_fetched_politely() {
    use std::sync::atomic::Ordering;

    use hamster_shared::api::HistoryResponse;
    use hamster_tests::mocks::binance::kline_close;

    let mock = BinanceMock::start().await;
    mock.list_pairs(&["BTC/USDT", "ETH/USDT"]);
    // The first klines request is answered 429 with `Retry-After: 1`.
    mock.klines_throttle.store(1, Ordering::SeqCst);
    let relay = relay_for(&mock, &[]);
    catalog_loaded(&relay, 2).await;
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["BTC/USD"]).await;
    ws.quote_for("BTC/USD").await;

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let candles = loop {
        let (status, h) = relay.get_json::<HistoryResponse>("/api/history/BTC/USD?tf=1m&limit=5000").await;
        assert_eq!(status, 200);
        if h.candles.len() >= 1_400 {
            break h.candles;
        }
        assert!(std::time::Instant::now() < deadline, "no day of candles: {} of them", h.candles.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The day the mock serves, up to the relay's ring of 1,440 minutes, one per minute; every minute before the
    // live ones is the provider's candle as sent.
    assert_eq!(candles.len(), 1_440);
    assert!(candles.windows(2).all(|w| w[1].start - w[0].start == 60_000));
    let now_minute = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64)
        / 60_000
        * 60_000;
    let past: Vec<_> = candles.iter().filter(|c| c.start < now_minute - 60_000).collect();
    assert!(past.len() >= 1_437, "{}", past.len());
    for c in past {
        assert_eq!((c.close, c.ticks, c.volume), (kline_close(c.start), 42, 12.5), "{c:?}");
    }

    // Asked politely: the 429 was waited out, then the newest 1,000 and the 440 before them, each once.
    let requests = mock.klines_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[0], requests[1], "the throttled request is asked again as it was");
    assert!(requests[1].contains("symbol=BTCUSDT") && requests[1].contains("interval=1m"), "{requests:?}");
    assert!(requests[1].contains("limit=1000") && !requests[1].contains("endTime"), "{requests:?}");
    assert!(requests[2].contains("limit=440") && requests[2].contains("endTime="), "{requests:?}");

    // A second client on the same pair costs nothing more; a new pair costs its own day.
    let mut other = WsClient::connect(&relay.ws_url()).await;
    other.hello().await;
    other.subscribe(&["BTC/USD", "ETH/USD"]).await;
    other.quote_for("ETH/USD").await;
    eventually_within("ETH/USD's day", Duration::from_secs(10), || {
        mock.klines_requests.lock().map(|r| r.len() == 5).unwrap_or(false)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = mock.klines_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 5, "{requests:?}");
    assert!(requests[3..].iter().all(|r| r.contains("symbol=ETHUSDT")), "{requests:?}");
}
