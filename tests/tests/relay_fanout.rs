//! Multiplexing and back-pressure against the real relay: many clients share one upstream subscription per
//! symbol, the last one leaving releases it, and a client that stops reading is conflated while a fast client
//! still receives every tick.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hamster_shared::api::ClientsResponse;
use hamster_shared::ServerMessage;
use hamster_tests::{Relay, WsClient};

const SEEDS: [&str; 8] = ["BTC/USD", "ETH/USD", "AAPL", "MSFT", "NVDA", "SPY", "EUR/USD", "GBP/USD"];

#[tokio::test]
async fn two_clients_one_upstream_subscription_released_by_the_last() {
    let relay = Relay::start(&[]);
    let mut a = WsClient::connect(&relay.ws_url()).await;
    let mut b = WsClient::connect(&relay.ws_url()).await;
    a.hello().await;
    b.hello().await;
    a.subscribe(&["AAPL"]).await;
    b.subscribe(&["aapl"]).await;
    let s = relay.wait_status("AAPL subscribed once", |s| s.upstream_subscriptions == 1 && s.topics == 1).await;
    assert_eq!(s.providers[0].subscriptions, 1);
    assert_eq!(s.clients, 2);

    // Still wanted by b.
    a.close().await;
    relay.wait_status("a gone", |s| s.clients == 1).await;
    let (_, s) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(s.upstream_subscriptions, 1);

    b.send_text(r#"{"type":"unsubscribe","symbols":["AAPL"]}"#).await;
    relay.wait_status("AAPL released upstream", |s| s.upstream_subscriptions == 0 && s.topics == 0).await;
}

#[tokio::test]
async fn hundred_clients_eight_symbols_eight_upstream_subscriptions() {
    let relay = Relay::start(&[]);
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(WsClient::subscribed(&relay.ws_url(), &SEEDS).await);
    }
    let s = relay.wait_status("100 clients on 8 symbols", |s| s.clients == 100).await;
    assert_eq!(s.upstream_subscriptions, 8, "{s:?}");
    assert_eq!(s.topics, 8);
    for ws in clients {
        ws.close().await;
    }
    let s = relay.wait_status("everyone left", |s| s.clients == 0).await;
    // Demand changes are applied asynchronously; give the router its moment.
    if s.upstream_subscriptions != 0 {
        relay.wait_status("upstream released", |s| s.upstream_subscriptions == 0).await;
    }
}

/// Connects a client whose socket buffers are tiny and which never reads after subscribing.
async fn stalled_client(relay: &Relay, symbols: &[&str]) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    use futures::{SinkExt, StreamExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(([127, 0, 0, 1], relay.port()).into()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(relay.ws_url(), stream).await.unwrap();
    let subscribe = serde_json::json!({"type": "subscribe", "symbols": symbols}).to_string();
    ws.send(tokio_tungstenite::tungstenite::Message::text(subscribe)).await.unwrap();
    // Read just the greeting, then stop reading for good.
    let _ = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
    ws
}

#[tokio::test]
async fn slow_client_is_conflated_fast_client_gets_every_tick() {
    let queue = 8;
    let relay = Relay::start(&["--sim-tick-hz", "200", "--client-queue-frames", &queue.to_string()]);
    let slow = stalled_client(&relay, &SEEDS).await;

    let mut fast = WsClient::connect(&relay.ws_url()).await;
    fast.hello().await;
    fast.subscribe(&SEEDS).await;
    let rss_before = relay.rss_kib();

    let mut per_symbol: HashMap<String, u64> = HashMap::new();
    let mut lags = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        if let ServerMessage::Quotes { quotes } = fast.recv().await {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
            for q in quotes {
                lags.push(now - q.ts);
                *per_symbol.entry(q.symbol.as_str().to_owned()).or_default() += 1;
            }
        }
    }
    let rss_after = relay.rss_kib();
    let (_, ClientsResponse { clients }) = relay.get_json::<ClientsResponse>("/api/clients").await;
    assert_eq!(clients.len(), 2, "{clients:?}");
    let (slow_c, fast_c) = (&clients[0], &clients[1]);

    assert!(slow_c.conflated > 0, "the stalled client must be conflated: {slow_c:?}");
    assert!(slow_c.queued_frames <= queue, "its queue stays bounded: {slow_c:?}");
    assert_eq!(fast_c.conflated, 0, "the fast client loses nothing: {fast_c:?}");

    // Every tick reached the fast client: the simulator ticks all symbols together, so counts must match.
    let counts: Vec<u64> = SEEDS.iter().map(|s| per_symbol.get(*s).copied().unwrap_or(0)).collect();
    let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
    assert!(min >= 200, "about 200 ticks/s per symbol for 4 s, got {counts:?}");
    assert!(max - min <= 1, "no symbol may miss ticks: {counts:?}");

    lags.sort_unstable();
    let p99 = lags[lags.len() * 99 / 100];
    println!(
        "fast client: {} quotes in 4 s, p50 lag {} ms, p99 lag {} ms; slow client conflated {} updates, \
         {} frames queued; relay RSS {:?} KiB -> {:?} KiB",
        lags.len(),
        lags[lags.len() / 2],
        p99,
        slow_c.conflated,
        slow_c.queued_frames,
        rss_before,
        rss_after
    );
    assert!(p99 < 1000, "the stalled client must not delay the fast one (p99 lag {p99} ms)");
    drop(slow);
}
