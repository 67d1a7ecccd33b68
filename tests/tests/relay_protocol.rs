//! The relay's WebSocket protocol, driven over real sockets against the real binary: greeting, subscribe,
//! snapshot, updates, and a typed error for every kind of bad input — with the connection still usable after
//! each and other clients untouched.

use std::time::Duration;

use hamster_shared::{ErrorCode, ProviderState, ServerMessage, PROTOCOL_VERSION};
use hamster_tests::{Relay, WsClient};

fn quotes_of(m: &ServerMessage) -> Option<&[hamster_shared::Quote]> {
    match m {
        ServerMessage::Quotes { quotes } => Some(quotes),
        _ => None,
    }
}

#[tokio::test]
async fn hello_subscribe_snapshot_updates() {
    let relay = Relay::start(&["--sim-tick-hz", "20"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    match ws.hello().await {
        ServerMessage::Hello { protocol, heartbeat_ms, providers, server, epoch, features } => {
            assert_eq!(protocol, PROTOCOL_VERSION);
            assert!(epoch > 1_600_000_000_000, "the epoch is the relay's start time in ms: {epoch}");
            assert_eq!(features, ["resume", "max_hz", "msgpack"]);
            assert_eq!(heartbeat_ms, 15_000);
            assert!(server.starts_with("hamster-relay/"));
            assert_eq!(providers.len(), 1);
            assert_eq!(providers[0].name, "sim");
            assert!(matches!(providers[0].state, ProviderState::Live | ProviderState::Connecting));
        }
        other => panic!("{other:?}"),
    }

    ws.send_text(r#"{"type":"subscribe","id":1,"symbols":["btc/usd","AAPL"]}"#).await;
    // A provider's `status` may come first (the simulator going live as the client connects).
    match ws.recv_until("subscribed", |m| matches!(m, ServerMessage::Subscribed { .. })).await {
        // A version 1 command (no `resume`, no `max_hz`) gets a version 1 answer: nothing to resume.
        ServerMessage::Subscribed { id, symbols, rejected, continuity } => {
            assert!(continuity.is_empty());
            assert_eq!(id, Some(hamster_shared::RequestId::Num(1)));
            let symbols: Vec<_> = symbols.iter().map(|s| s.as_str().to_owned()).collect();
            assert_eq!(symbols, ["BTC/USD", "AAPL"], "canonical spelling");
            assert!(rejected.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(ws.recv().await, ServerMessage::Snapshot { .. }));

    // Updates arrive for both symbols, with sane fields.
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 {
        let m = ws.recv_until("quotes", |m| quotes_of(m).is_some()).await;
        for q in quotes_of(&m).unwrap_or_default() {
            assert_eq!(q.provider, "sim");
            assert!(q.price > 0.0 && q.bid.unwrap() <= q.ask.unwrap());
            assert!(q.ts > 1_600_000_000_000);
            seen.insert(q.symbol.as_str().to_owned());
        }
    }

    // A second client now gets a snapshot from the cache straight away.
    let mut late = WsClient::connect(&relay.ws_url()).await;
    late.hello().await;
    let (_, snapshot) = late.subscribe(&["BTC/USD"]).await;
    match snapshot {
        ServerMessage::Snapshot { quotes } => {
            assert_eq!(quotes.len(), 1);
            assert_eq!(quotes[0].symbol.as_str(), "BTC/USD");
        }
        other => panic!("{other:?}"),
    }

    ws.send_text(r#"{"type":"unsubscribe","id":"u","symbols":["AAPL","MSFT"]}"#).await;
    let m = ws.recv_until("unsubscribed", |m| matches!(m, ServerMessage::Unsubscribed { .. })).await;
    match m {
        ServerMessage::Unsubscribed { id, symbols } => {
            assert_eq!(id, Some(hamster_shared::RequestId::Str("u".into())));
            assert_eq!(symbols.len(), 1, "only AAPL was held");
        }
        other => panic!("{other:?}"),
    }
    ws.send_text(r#"{"type":"ping","id":42}"#).await;
    ws.recv_until("pong", |m| matches!(m, ServerMessage::Pong { id: Some(hamster_shared::RequestId::Num(42)), .. }))
        .await;
}

async fn expect_error(ws: &mut WsClient, code: ErrorCode) -> String {
    match ws.recv_until("error", |m| matches!(m, ServerMessage::Error { .. })).await {
        ServerMessage::Error { code: got, message, .. } => {
            assert_eq!(got, code, "{message}");
            message
        }
        _ => unreachable!(),
    }
}

async fn still_usable(ws: &mut WsClient) {
    ws.send_text(r#"{"type":"ping","id":"alive"}"#).await;
    ws.recv_until("pong", |m| matches!(m, ServerMessage::Pong { .. })).await;
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_hurts_nobody() {
    let relay = Relay::start(&["--sim-tick-hz", "20", "--max-message-bytes", "4096"]);
    let mut bystander = WsClient::connect(&relay.ws_url()).await;
    bystander.hello().await;
    bystander.subscribe(&["EUR/USD"]).await;

    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;

    ws.send_text("{not json").await;
    expect_error(&mut ws, ErrorCode::BadJson).await;
    still_usable(&mut ws).await;

    ws.send_text(r#"{"type":"teleport","id":3}"#).await;
    expect_error(&mut ws, ErrorCode::UnknownType).await;
    ws.send_text(r#"["subscribe"]"#).await;
    expect_error(&mut ws, ErrorCode::UnknownType).await;

    ws.send_text(r#"{"type":"subscribe","symbols":"AAPL"}"#).await;
    expect_error(&mut ws, ErrorCode::BadMessage).await;
    still_usable(&mut ws).await;

    let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    ws.send_json(serde_json::json!({"type":"subscribe","id":9,"symbols": many})).await;
    let message = expect_error(&mut ws, ErrorCode::TooManySymbols).await;
    assert!(message.contains("100"), "{message}");

    ws.send_binary(vec![1, 2, 3]).await;
    expect_error(&mut ws, ErrorCode::UnsupportedFrame).await;
    still_usable(&mut ws).await;

    // Invalid and unroutable symbols are rejected one by one; the valid one still subscribes.
    ws.send_text(r#"{"type":"subscribe","symbols":["AAPL","bad symbol","nosuch:AAPL","<x>"]}"#).await;
    match ws.recv_until("subscribed", |m| matches!(m, ServerMessage::Subscribed { .. })).await {
        ServerMessage::Subscribed { symbols, rejected, .. } => {
            assert_eq!(symbols.len(), 1);
            let codes: Vec<_> = rejected.iter().map(|r| (r.symbol.as_str(), r.code)).collect();
            assert_eq!(
                codes,
                [
                    ("bad symbol", ErrorCode::InvalidSymbol),
                    ("nosuch:AAPL", ErrorCode::UnknownProvider),
                    ("<x>", ErrorCode::InvalidSymbol)
                ]
            );
            assert!(rejected.iter().all(|r| !r.message.is_empty()));
        }
        _ => unreachable!(),
    }
    ws.recv_until("quotes for AAPL", |m| quotes_of(m).is_some_and(|q| q.iter().any(|q| q.symbol.as_str() == "AAPL")))
        .await;

    // An oversized frame closes only this connection, with 1009.
    ws.send_text(&format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(8192))).await;
    let close = ws.closed().await.expect("close frame");
    assert_eq!(u16::from(close.code), 1009);

    // The bystander kept streaming throughout.
    bystander.recv_until("quotes", |m| quotes_of(m).is_some()).await;
    let mut after = WsClient::connect(&relay.ws_url()).await;
    after.hello().await;
    still_usable(&mut after).await;

    let (_, status) = relay.get_json::<hamster_shared::api::StatusResponse>("/api/status").await;
    assert_eq!(status.clients, 2);
}

#[tokio::test]
async fn per_connection_symbol_limit() {
    let relay = Relay::start(&["--max-symbols-per-connection", "3"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    let (subscribed, _) = ws.subscribe(&["A", "B", "C", "D"]).await;
    match subscribed {
        ServerMessage::Subscribed { symbols, rejected, .. } => {
            assert_eq!(symbols.len(), 3);
            assert_eq!(rejected.len(), 1);
            assert_eq!(rejected[0].code, ErrorCode::TooManySymbols);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn silent_clients_are_reaped_by_heartbeat() {
    // A raw TCP connection that completes the WebSocket handshake but then never reads or answers pings.
    let relay = Relay::start(&["--heartbeat-ms", "200"]);
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", relay.port())).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(relay.ws_url(), stream).await.unwrap();
    relay.wait_status("one client", |s| s.clients == 1).await;
    // Keep the socket open but unread: tungstenite only answers pings while it is polled.
    relay.wait_status("silent client dropped", |s| s.clients == 0).await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
