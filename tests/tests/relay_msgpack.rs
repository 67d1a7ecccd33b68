//! The compact encoding over real sockets against the real binary: a client offering the `hamster.msgpack`
//! subprotocol gets it selected, receives every message as a binary MessagePack frame that decodes to the same
//! protocol types (quotes with their `seq`), may send commands in MessagePack or JSON, and is answered a typed
//! `bad_msgpack` error for a malformed frame while its connection and everyone else's carry on; a client that
//! does not offer it keeps JSON text frames.

use futures::{SinkExt, StreamExt};
use hamster_shared::{ClientMessage, ErrorCode, RequestId, ServerMessage, MSGPACK_SUBPROTOCOL};
use hamster_tests::{Relay, WsClient, WAIT};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `/ws` offering `protocols`; returns the socket and the subprotocol the relay selected.
async fn open(relay: &Relay, protocols: &str) -> (Socket, Option<String>) {
    let mut request = relay.ws_url().into_client_request().expect("ws url");
    request.headers_mut().insert("sec-websocket-protocol", protocols.parse().expect("header value"));
    let (socket, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
        .expect("handshake accepted");
    let selected = response.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap_or("?").to_owned());
    (socket, selected)
}

/// The next message, which must come as a binary MessagePack frame.
async fn next_packed(socket: &mut Socket) -> ServerMessage {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next()).await.expect("a frame in time");
        match frame.expect("socket open").expect("frame readable") {
            Message::Binary(bytes) => {
                return ServerMessage::from_msgpack(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:02x?}"))
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("a MessagePack connection got {other:?}"),
        }
    }
}

async fn next_matching(socket: &mut Socket, what: &str, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
    for _ in 0..200 {
        let m = next_packed(socket).await;
        if pred(&m) {
            return m;
        }
    }
    panic!("no {what} within 200 messages");
}

async fn send_packed(socket: &mut Socket, command: &ClientMessage) {
    let bytes = command.to_msgpack().expect("commands encode");
    socket.send(Message::Binary(bytes.into())).await.expect("send");
}

#[tokio::test]
async fn a_client_offering_msgpack_gets_messagepack_frames_and_may_send_messagepack_commands() {
    let relay = Relay::start(&["--sim-tick-hz", "20"]);
    let (mut ws, selected) = open(&relay, &format!("chat, {MSGPACK_SUBPROTOCOL}")).await;
    assert_eq!(selected.as_deref(), Some(MSGPACK_SUBPROTOCOL), "the relay selects the one it speaks");
    match next_packed(&mut ws).await {
        ServerMessage::Hello { features, .. } => assert!(features.iter().any(|f| f == "msgpack"), "{features:?}"),
        other => panic!("hello comes first: {other:?}"),
    }

    let subscribe = ClientMessage::Subscribe {
        id: Some(RequestId::Num(1)),
        symbols: vec!["AAPL".into(), "BTC/USD".into()],
        resume: None,
        max_hz: None,
    };
    send_packed(&mut ws, &subscribe).await;
    match next_matching(&mut ws, "subscribed", |m| matches!(m, ServerMessage::Subscribed { .. })).await {
        ServerMessage::Subscribed { id, symbols, .. } => {
            assert_eq!(id, Some(RequestId::Num(1)));
            assert_eq!(symbols.len(), 2);
        }
        other => unreachable!("{other:?}"),
    }
    let mut seqs = Vec::new();
    while seqs.len() < 10 {
        if let ServerMessage::Quotes { quotes } = next_packed(&mut ws).await {
            for q in quotes.iter().filter(|q| q.symbol.as_str() == "AAPL") {
                assert!(q.price > 0.0 && q.ts > 0 && q.provider == "sim", "{q:?}");
                seqs.push(q.seq.expect("live quotes are numbered"));
            }
        }
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "every update, in order: {seqs:?}");

    // JSON text commands keep working on a MessagePack connection; the answer is MessagePack.
    ws.send(Message::Text(r#"{"type":"ping","id":"j"}"#.into())).await.expect("send");
    let pong = next_matching(&mut ws, "pong", |m| matches!(m, ServerMessage::Pong { .. })).await;
    assert!(matches!(pong, ServerMessage::Pong { id: Some(RequestId::Str(ref s)), .. } if s == "j"), "{pong:?}");
}

#[tokio::test]
async fn malformed_messagepack_gets_a_typed_error_and_the_connection_carries_on() {
    let relay = Relay::start(&["--sim-tick-hz", "20"]);
    let mut bystander = WsClient::subscribed(&relay.ws_url(), &["AAPL"]).await;
    let (mut ws, _) = open(&relay, MSGPACK_SUBPROTOCOL).await;
    next_packed(&mut ws).await;
    let cases: [(&[u8], ErrorCode); 5] = [
        (&[0xc1], ErrorCode::BadMsgpack),
        (&[0xdd, 0xff, 0xff, 0xff, 0xff], ErrorCode::BadMsgpack),
        (&[0x91; 4096], ErrorCode::BadMsgpack),
        // {"type": "dance"}
        (b"\x81\xa4type\xa5dance", ErrorCode::UnknownType),
        // {"type": "subscribe", "max_hz": "fast"}
        (b"\x82\xa4type\xa9subscribe\xa6max_hz\xa4fast", ErrorCode::BadMessage),
    ];
    for (bytes, expected) in cases {
        ws.send(Message::Binary(bytes.to_vec().into())).await.expect("send");
        match next_matching(&mut ws, "error", |m| matches!(m, ServerMessage::Error { .. })).await {
            ServerMessage::Error { code, message, .. } => assert_eq!(code, expected, "{bytes:02x?}: {message}"),
            other => unreachable!("{other:?}"),
        }
    }
    send_packed(&mut ws, &ClientMessage::Ping { id: Some(RequestId::Num(9)) }).await;
    let pong = next_matching(&mut ws, "pong", |m| matches!(m, ServerMessage::Pong { .. })).await;
    assert!(matches!(pong, ServerMessage::Pong { id: Some(RequestId::Num(9)), .. }), "{pong:?}");
    assert!(bystander.quote_for("AAPL").await.seq.is_some(), "another client is unaffected");
    assert!(relay.logs().iter().all(|l| !l.contains("panicked")), "no panic in the relay");

    // Without the subprotocol: JSON text, and binary frames are still refused.
    let mut plain = WsClient::connect(&relay.ws_url()).await;
    plain.hello().await;
    plain.send_binary(vec![0x80]).await;
    match plain.recv_until("error", |m| matches!(m, ServerMessage::Error { .. })).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::UnsupportedFrame),
        other => unreachable!("{other:?}"),
    }
}
