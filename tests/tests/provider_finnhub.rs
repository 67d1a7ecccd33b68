//! Finnhub adapter against a mock speaking its protocol (`docs/providers/finnhub.md`), through the real relay binary:
//! connect → subscribe (one frame per symbol, mapped to Finnhub's spelling) → trades reach WebSocket clients
//! normalised → the last client leaving unsubscribes upstream → cuts are survived with clients attached and
//! resubscribe one frame per symbol → 50 clients share one connection and one subscription → a refused token means
//! `down` without a hot loop and never reaches a log → the symbol limit is enforced per symbol, by the relay
//! itself and when Finnhub refuses → pings keep an idle stream alive.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hamster_shared::{ErrorCode, ProviderState, Rejection, ServerMessage};
use hamster_tests::mocks::finnhub::FinnhubMock;
use hamster_tests::{eventually, Relay, WsClient, WAIT};

const KEY: &str = "fh-test-key-93c1";

fn relay_for(mock: &FinnhubMock, extra: &[&str]) -> Relay {
    let ws_url = mock.ws_url();
    let mut args = vec![
        "--providers",
        "finnhub",
        "--finnhub-ws-url",
        &ws_url,
        "--finnhub-rest-url",
        &mock.rest_url,
        "--upstream-backoff-min-ms",
        "50",
        "--upstream-backoff-max-ms",
        "300",
    ];
    args.extend_from_slice(extra);
    Relay::start_with_env(0, &args, &[("FINNHUB_API_KEY", KEY)])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Sends a subscribe for `symbols` and collects its `subscribed` reply and `want` rejections, in whatever order
/// they arrive (a rejection the relay makes at once may overtake the reply's snapshot).
async fn subscribe_expecting_rejections(ws: &mut WsClient, symbols: &[&str], want: usize) -> Vec<Rejection> {
    ws.send_json(serde_json::json!({"type": "subscribe", "symbols": symbols})).await;
    let (mut replied, mut rejected) = (false, Vec::new());
    while !replied || rejected.len() < want {
        let m = ws.recv_until("subscribed or rejection", |m| matches!(m, ServerMessage::Subscribed { .. })).await;
        let ServerMessage::Subscribed { symbols: subscribed, rejected: r, .. } = m else { unreachable!() };
        replied |= subscribed.len() == symbols.len();
        rejected.extend(r);
    }
    rejected
}

#[tokio::test]
async fn lifecycle_against_the_mock() {
    let mock = FinnhubMock::start(KEY).await;
    let relay = relay_for(&mock, &[]);

    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL", "BTC/USD", "EUR/USD"]).await;
    let q = ws.quote_for("AAPL").await;
    assert_eq!(q.provider, "finnhub");
    assert!((q.ts - now_ms()).abs() < 60_000, "t is already milliseconds: {}", q.ts);
    assert!(q.price >= 100.0, "the batch's latest trade, not the older one: {}", q.price);
    assert_eq!((q.volume, q.bid, q.ask, q.change), (None, None, None, None), "a trade size is not a volume");
    assert_eq!(ws.quote_for("BTC/USD").await.provider, "finnhub");
    ws.quote_for("EUR/USD").await;
    assert_eq!(mock.ws.accepted(), 1);
    // One frame per symbol, in Finnhub's spelling and documented shape.
    let received = mock.ws.received();
    assert!(received.iter().any(|f| f == r#"{"type":"subscribe","symbol":"AAPL"}"#), "{received:?}");
    for wire in ["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"] {
        assert_eq!(mock.requests_for("subscribe", wire), 1, "{wire}: {received:?}");
    }

    // A second client's symbol is released upstream when that client leaves.
    let mut other = WsClient::connect(&relay.ws_url()).await;
    other.hello().await;
    other.subscribe(&["MSFT"]).await;
    other.quote_for("MSFT").await;
    other.close().await;
    eventually("MSFT unsubscribed upstream", || {
        mock.requests_for("unsubscribe", "MSFT") == 1 && !mock.subscribed().contains("MSFT")
    })
    .await;
    ws.quote_for("AAPL").await;

    // Cut the connection three times; the client stays connected, and every reconnect resubscribes each symbol
    // exactly once.
    for round in 1..=3 {
        mock.ws.cut_all();
        ws.provider_state(ProviderState::Reconnecting).await;
        ws.provider_state(ProviderState::Live).await;
        let started = Instant::now();
        for symbol in ["AAPL", "BTC/USD", "EUR/USD"] {
            ws.quote_for(symbol).await;
        }
        println!("round {round}: data resumed {:?} after live", started.elapsed());
        assert_eq!(mock.ws.accepted(), round + 1);
        for wire in ["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"] {
            assert_eq!(mock.requests_for("subscribe", wire), round + 1, "{wire} once per connection");
        }
        assert_eq!(mock.requests_for("subscribe", "MSFT"), 1, "released symbols are not resubscribed");
    }
    let want: BTreeSet<String> = ["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"].map(String::from).into();
    assert_eq!(mock.subscribed(), want);

    // The last client unsubscribing releases everything upstream.
    ws.send_text(r#"{"type":"unsubscribe","symbols":["AAPL","BTC/USD","EUR/USD"]}"#).await;
    eventually("all unsubscribed upstream", || mock.subscribed().is_empty()).await;
    assert_eq!(mock.requests_for("unsubscribe", "OANDA:EUR_USD"), 1);
    assert!(mock.ws.received().iter().all(|f| !f.contains("pong")), "no pong unless configured");
    assert!(relay.logs().iter().all(|l| !l.contains(KEY)), "the key never reaches a log line");
}

#[tokio::test]
async fn fifty_clients_one_connection_one_subscription() {
    let mock = FinnhubMock::start(KEY).await;
    let relay = relay_for(&mock, &[]);
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(WsClient::subscribed(&relay.ws_url(), &["NVDA"]).await);
    }
    for ws in clients.iter_mut().step_by(7) {
        ws.quote_for("NVDA").await;
    }
    assert_eq!(mock.ws.accepted(), 1, "one upstream connection");
    assert_eq!(mock.requests_for("subscribe", "NVDA"), 1, "one upstream subscription");
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.upstream_subscriptions, 1);
}

#[tokio::test]
async fn refused_token_means_down_without_a_hot_loop() {
    let mock = FinnhubMock::start("the-right-token").await;
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    let status = relay.wait_status("finnhub down", |s| s.providers[0].state == ProviderState::Down).await;
    let detail = status.providers[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("401") && detail.contains("API key"), "{detail}");
    assert!(!detail.contains(KEY));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mock.attempts(), 1, "no retry storm after the upstream refused our key");
    assert_eq!(mock.ws.accepted(), 0);
    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.providers[0].state, ProviderState::Down);
    assert!(relay.logs().iter().all(|l| !l.contains(KEY)), "the key never reaches a log line");
}

#[tokio::test]
async fn auth_statuses_are_configurable() {
    // If Finnhub turned out to refuse with 403 only, 401 could be dropped; here 400 is added, as a proxy might send.
    let mock = FinnhubMock::start("the-right-token").await;
    mock.state.bad_token_status.store(400, Ordering::SeqCst);
    let relay = relay_for(&mock, &["--finnhub-auth-statuses", "400,401"]);
    let status = relay.wait_status("finnhub down", |s| s.providers[0].state == ProviderState::Down).await;
    assert!(status.providers[0].detail.clone().unwrap_or_default().contains("400"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mock.attempts(), 1);

    // Not an auth status: an ordinary outage, retried with backoff.
    let mock = FinnhubMock::start("the-right-token").await;
    mock.state.bad_token_status.store(400, Ordering::SeqCst);
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.recv_until("reconnecting after HTTP 400", |m| {
        matches!(m, ServerMessage::Status { state: ProviderState::Reconnecting, detail: Some(d), .. } if d.contains("400"))
    })
    .await;
    eventually("retries", || mock.attempts() >= 3).await;
    assert_ne!(
        relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await.1.providers[0].state,
        ProviderState::Down
    );
}

#[tokio::test]
async fn the_relay_rejects_symbols_past_its_limit_itself() {
    let mock = FinnhubMock::start(KEY).await;
    let relay = relay_for(&mock, &["--finnhub-max-symbols", "3"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let symbols = ["AAPL", "MSFT", "TSLA", "NVDA", "AMZN"];
    let rejected = subscribe_expecting_rejections(&mut ws, &symbols, 2).await;
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    for r in &rejected {
        assert_eq!(r.code, ErrorCode::ProviderRejected);
        assert!(r.message.contains("at most 3 symbols"), "{}", r.message);
        assert_eq!(mock.requests_for("subscribe", &r.symbol), 0, "{} never reached Finnhub", r.symbol);
    }
    let refused: BTreeSet<&str> = rejected.iter().map(|r| r.symbol.as_str()).collect();
    let admitted: Vec<&str> = symbols.iter().copied().filter(|s| !refused.contains(s)).collect();
    for symbol in &admitted {
        ws.quote_for(symbol).await;
    }
    assert_eq!(mock.subscribed().len(), 3);
    assert!(mock.refused().is_empty(), "Finnhub never had to refuse anything");

    // Releasing one makes room for a refused one.
    let (freed, retry) = (admitted[0], rejected[0].symbol.clone());
    ws.send_json(serde_json::json!({"type": "unsubscribe", "symbols": [freed]})).await;
    eventually("slot freed upstream", || mock.requests_for("unsubscribe", freed) == 1).await;
    assert!(subscribe_expecting_rejections(&mut ws, &[retry.as_str()], 0).await.is_empty());
    ws.quote_for(&retry).await;
    assert_eq!(mock.requests_for("subscribe", &retry), 1);
}

#[tokio::test]
async fn finnhubs_own_limit_error_rejects_the_refused_symbol() {
    let mock = FinnhubMock::start(KEY).await;
    mock.set_max_symbols(2);
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let rejected = subscribe_expecting_rejections(&mut ws, &["AAPL", "MSFT", "TSLA"], 1).await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].code, ErrorCode::ProviderRejected);
    assert!(rejected[0].message.contains("too many symbols"), "{}", rejected[0].message);
    assert_eq!(mock.refused(), [rejected[0].symbol.clone()], "the symbol Finnhub refused is the one rejected");
    let others: Vec<&str> =
        ["AAPL", "MSFT", "TSLA"].into_iter().filter(|s| *s != rejected[0].symbol.as_str()).collect();
    for symbol in &others {
        ws.quote_for(symbol).await;
    }
    // A reconnect does not ask for the refused symbol again.
    mock.ws.cut_all();
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for(others[0]).await;
    assert_eq!(mock.refused().len(), 1);
    assert_eq!(mock.requests_for("subscribe", &rejected[0].symbol), 1);
}

#[tokio::test]
async fn pings_keep_an_idle_stream_alive_and_can_be_answered() {
    let mock = FinnhubMock::start(KEY).await;
    mock.set_ping_every(Duration::from_millis(150));
    mock.state.no_trades.store(true, Ordering::SeqCst);
    let relay = relay_for(&mock, &["--finnhub-stale-ms", "700", "--finnhub-reply-pong"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    relay.wait_status("finnhub live", |s| s.providers[0].state == ProviderState::Live).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mock.ws.accepted(), 1, "pings alone count as liveness: no watchdog reconnect");
    assert!(mock.ws.received().iter().any(|f| f == r#"{"type":"pong"}"#), "pong sent when configured");

    // Not even pings: the watchdog replaces the connection.
    mock.state.silent.store(true, Ordering::SeqCst);
    let detail = ws.provider_state(ProviderState::Reconnecting).await;
    assert!(detail.unwrap_or_default().contains("no data"), "the watchdog fired");
    mock.state.silent.store(false, Ordering::SeqCst);
    mock.state.no_trades.store(false, Ordering::SeqCst);
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for("AAPL").await;
}

#[tokio::test]
async fn a_second_connection_on_the_key_drops_both_and_the_relay_recovers() {
    let mock = FinnhubMock::start(KEY).await;
    mock.state.one_connection_per_token.store(true, Ordering::SeqCst);
    let relay = relay_for(&mock, &[]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    ws.quote_for("AAPL").await;

    // Someone else uses the same key (another deployment, a developer's laptop).
    let url = format!("{}/?token={KEY}", mock.ws_url());
    let (mut intruder, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .expect("connect timed out")
        .expect("connect");
    ws.provider_state(ProviderState::Reconnecting).await;
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match intruder.next().await {
                Some(Ok(m)) if m.is_text() => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the intruder was dropped too");
    ws.provider_state(ProviderState::Live).await;
    ws.quote_for("AAPL").await;
}

#[tokio::test]
async fn missing_key_is_reported_not_configured() {
    let relay = Relay::start(&["--providers", "sim,finnhub"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    relay
        .wait_status("finnhub down", |s| {
            s.providers.iter().any(|p| p.name == "finnhub" && p.state == ProviderState::Down)
        })
        .await;
    let rejected = subscribe_expecting_rejections(&mut ws, &["finnhub:AAPL"], 1).await;
    assert_eq!(rejected[0].symbol, "finnhub:AAPL");
    assert!(rejected[0].message.contains("FINNHUB_API_KEY"), "{}", rejected[0].message);
}

#[tokio::test]
async fn the_symbol_lists_refuse_an_unknown_symbol_before_anything_is_sent_and_the_valid_one_trades() {
    let mock = FinnhubMock::start(KEY).await;
    let item = |s: &str, d: &str, n: &str| (s.to_owned(), d.to_owned(), n.to_owned());
    *mock.state.lists.lock().unwrap() = Some((
        vec![item("AAPL", "AAPL", "APPLE INC"), item("MSFT", "MSFT", "MICROSOFT CORP")],
        vec![item("OANDA:EUR_USD", "EUR/USD", "Oanda EUR/USD")],
        vec![item("BINANCE:BTCUSDT", "BTC/USDT", "Binance BTCUSDT")],
    ));
    let relay = relay_for(&mock, &[]);
    relay
        .wait_status("Finnhub's symbol lists", |s| {
            s.providers.iter().any(|p| p.name == "finnhub" && p.catalog.as_ref().is_some_and(|c| c.instruments == 4))
        })
        .await;
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let (subscribed, _) = ws.subscribe(&["BTC/USD", "EUR/USD", "MSTF"]).await;
    let ServerMessage::Subscribed { symbols, rejected, .. } = subscribed else { unreachable!() };
    assert_eq!(symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["BTC/USD", "EUR/USD"]);
    assert_eq!((rejected[0].symbol.as_str(), rejected[0].code), ("MSTF", ErrorCode::UnknownSymbol));
    assert_eq!(rejected[0].suggestions.first().map(String::as_str), Some("MSFT"), "{rejected:?}");
    ws.quote_for("BTC/USD").await;
    assert_eq!(mock.requests_for("subscribe", "MSTF"), 0, "the typo never reached Finnhub");
    assert!(!relay.logs().join("\n").contains(KEY), "the token stays out of logs");
}
