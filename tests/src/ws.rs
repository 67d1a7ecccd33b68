//! A protocol-speaking WebSocket test client with bounded waits.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hamster_shared::ServerMessage;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::WAIT;

/// What the next frame from the relay was.
#[derive(Debug)]
pub enum Received {
    Message(ServerMessage),
    Closed(Option<CloseFrame>),
}

/// A handshake the relay answered with an HTTP error instead of `101 Switching Protocols`.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    /// The JSON error body, `{"code": ..., "message": ...}` (`Null` if it was not JSON).
    pub body: serde_json::Value,
    pub www_authenticate: Option<String>,
}

/// One WebSocket connection to the relay.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects and returns the client; the relay's `hello` is the first message waiting.
    pub async fn connect(url: &str) -> WsClient {
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("ws connect timed out")
            .expect("ws connect");
        WsClient { stream }
    }

    /// Opens a connection with extra handshake headers; a refused handshake gives its status and JSON body.
    pub async fn handshake(url: &str, headers: &[(&str, &str)]) -> Result<WsClient, Refused> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().expect("ws url");
        for (name, value) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().expect("header name");
            request.headers_mut().insert(name, value.parse().expect("header value"));
        }
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("ws handshake timed out")
        {
            Ok((stream, _)) => Ok(WsClient { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().unwrap_or_default();
                Err(Refused {
                    status: response.status().as_u16(),
                    body: serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
                    www_authenticate: response
                        .headers()
                        .get("www-authenticate")
                        .map(|v| v.to_str().unwrap_or("?").to_owned()),
                })
            }
            Err(e) => panic!("ws handshake failed without an HTTP answer: {e}"),
        }
    }

    /// Connects, reads the greeting and subscribes to `symbols` if any (their `subscribed` and `snapshot`
    /// consumed).
    pub async fn subscribed(url: &str, symbols: &[&str]) -> WsClient {
        let mut ws = WsClient::connect(url).await;
        ws.hello().await;
        if !symbols.is_empty() {
            ws.subscribe(symbols).await;
        }
        ws
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("ws send");
    }

    pub async fn send_json(&mut self, value: serde_json::Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream.send(Message::binary(bytes)).await.expect("ws send");
    }

    /// Next text message or close, within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let msg = serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad server JSON {e}: {text}"));
                    return Some(Received::Message(msg));
                }
                Some(Ok(Message::Close(frame))) => return Some(Received::Closed(frame)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Received::Closed(None)),
            }
        }
    }

    /// Next server message; panics on close or after [`WAIT`].
    pub async fn recv(&mut self) -> ServerMessage {
        match self.next_within(WAIT).await {
            Some(Received::Message(m)) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Skips messages until one matches `pred`.
    pub async fn recv_until(&mut self, what: &str, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(Received::Message(m)) if pred(&m) => return m,
                Some(Received::Message(_)) => continue,
                other => panic!("waiting for {what}: got {other:?}"),
            }
        }
    }

    /// Waits for the relay to close the connection and returns the close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(Received::Closed(frame)) => return frame,
                Some(Received::Message(_)) => continue,
                None => panic!("connection not closed within {WAIT:?}"),
            }
        }
    }

    /// Reads the greeting (`hello` and one `status` per provider) and returns the hello.
    pub async fn hello(&mut self) -> ServerMessage {
        let hello = self.recv().await;
        let ServerMessage::Hello { providers, .. } = &hello else { panic!("first message must be hello: {hello:?}") };
        for _ in 0..providers.len() {
            let status = self.recv().await;
            assert!(matches!(status, ServerMessage::Status { .. }), "expected status after hello: {status:?}");
        }
        hello
    }

    /// Subscribes and returns the `subscribed` reply and the `snapshot` that follows it.
    pub async fn subscribe(&mut self, symbols: &[&str]) -> (ServerMessage, ServerMessage) {
        self.send_json(serde_json::json!({"type": "subscribe", "symbols": symbols})).await;
        let subscribed = self.recv_until("subscribed", |m| matches!(m, ServerMessage::Subscribed { .. })).await;
        let snapshot = self.recv().await;
        assert!(matches!(snapshot, ServerMessage::Snapshot { .. }), "snapshot must follow subscribed: {snapshot:?}");
        (subscribed, snapshot)
    }

    /// The next quote for `symbol`, skipping everything else.
    pub async fn quote_for(&mut self, symbol: &str) -> hamster_shared::Quote {
        let has = |m: &ServerMessage| matches!(m, ServerMessage::Quotes { quotes } if quotes.iter().any(|q| q.symbol.as_str() == symbol));
        match self.recv_until(&format!("a quote for {symbol}"), has).await {
            ServerMessage::Quotes { quotes } => {
                quotes.into_iter().find(|q| q.symbol.as_str() == symbol).expect("matched above")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Waits for a `status` with `state` from any provider and returns its detail.
    pub async fn provider_state(&mut self, state: hamster_shared::ProviderState) -> Option<String> {
        let is = |m: &ServerMessage| matches!(m, ServerMessage::Status { state: s, .. } if *s == state);
        match self.recv_until(&format!("status {state:?}"), is).await {
            ServerMessage::Status { detail, .. } => detail,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
