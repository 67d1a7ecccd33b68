//! `GET /ws`: the protocol over WebSocket.
//!
//! Each connection runs a reader and a writer concurrently; whichever ends first ends the connection. The writer
//! drains the client's outbox (a batch of frames per wake-up, one flush), pings every heartbeat and drops a client
//! it has not heard from within `--client-timeout-ms`. A client whose socket accepts nothing for `write_timeout`
//! is dropped; until then, falling behind only costs it conflated updates. On shutdown the client gets close
//! code 1001.
//!
//! The edge policy ([`crate::guard`]) runs on the handshake (origin, address slot, credential) and on every
//! command (rate). Refused commands are answered with an `error`; a client that keeps earning them, or whose
//! token expires, gets close code 1008 after the frames already queued for it.
//!
//! A client offering the subprotocol `hamster.msgpack` gets it selected and is written binary MessagePack
//! frames (each frame's encoding is shared with every other such client, see `hub::Frame`); it may send
//! MessagePack commands as binary frames, and JSON text frames keep working for it as for everyone else.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use futures::{FutureExt, SinkExt, StreamExt};
use hamster_shared::{ErrorCode, ServerMessage, MSGPACK_SUBPROTOCOL};

use crate::commands::{self, Handled};
use crate::error::HttpError;
use crate::guard::{Authenticated, ClientPass, Verdict};
use crate::hub::{ClientHandle, Frame};
use crate::state::AppState;
use crate::trading::Trading;
use hamster_shared::broker::{OrderReject, OrderRejectCode};

/// Close codes (RFC 6455 §7.4.1).
mod close {
    pub(crate) const GOING_AWAY: u16 = 1001;
    pub(crate) const PROTOCOL: u16 = 1002;
    pub(crate) const INVALID_PAYLOAD: u16 = 1007;
    pub(crate) const POLICY: u16 = 1008;
    pub(crate) const TOO_BIG: u16 = 1009;
}

/// Bytes read from a client socket at a time.
const READ_BUFFER_BYTES: usize = 4096;

/// Bytes tungstenite may hold for a socket that accepts nothing. Our own frames never queue past its write
/// buffer (the sink waits instead), but the pong it answers each ping with is queued while reading, without
/// limit: a client flooding pings and never reading grew the relay by a hundred megabytes. This cap leaves room
/// for the largest frame we send (a history or a replay batch) on top of the write buffer.
const MAX_WRITE_BUFFER_BYTES: usize = 128 * 1024 + 2 * 1024 * 1024;

/// `GET /ws`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    who: Option<Extension<Authenticated>>,
    parts: axum::http::request::Parts,
) -> Result<Response, HttpError> {
    let who = who.map_or(Authenticated { expires: None }, |Extension(who)| who);
    let pass = app.guard.check_handshake(&headers, peer, who)?;
    // A page from another site, or one reached through a rebound domain, may stream prices but never trade.
    let account = match app.site.check(&headers, false) {
        Ok(()) => super::orders::account_of(&app, &parts),
        Err(e) => Err(OrderReject { code: OrderRejectCode::Forbidden, message: e.to_string() }),
    };
    let trading = Trading::new(app.broker.clone(), account);
    let max = app.config.max_message_bytes;
    // tungstenite's default read buffer is 128 KiB per connection, zero-filled before each read: it made an idle
    // client cost 133 KB and the fan-out spend a quarter of its CPU in memset (docs/benchmarks.md). Clients
    // send a few small commands, so 4 KiB reads are plenty; a larger message is assembled across reads.
    let ws = ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max)
        .protocols([MSGPACK_SUBPROTOCOL]);
    let encoding = if ws.selected_protocol().is_some() { Encoding::Msgpack } else { Encoding::Json };
    Ok(ws.on_upgrade(move |socket| {
        let tracker = app.tracker.clone();
        tracker.track_future(serve(socket, app, pass, trading, encoding))
    }))
}

/// How a connection's messages are written, chosen once by the handshake's subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Text frames of JSON: the default.
    Json,
    /// Binary frames of MessagePack (`hamster.msgpack`).
    Msgpack,
}

async fn serve(socket: WebSocket, app: AppState, pass: ClientPass, trading: Trading, encoding: Encoding) {
    let transport = match encoding {
        Encoding::Json => "ws",
        Encoding::Msgpack => "ws+msgpack",
    };
    let client = super::connect(&app, transport);
    tracing::debug!(client = client.id(), ip = %pass.ip, "ws client connected");
    let (mut sink, mut stream) = socket.split();
    let started = Instant::now();
    // Milliseconds since `started` when the client was last heard from.
    let last_heard = AtomicI64::new(0);
    let heard = || last_heard.store(started.elapsed().as_millis() as i64, Ordering::Relaxed);
    let budget = app.guard.command_budget();
    let controls = app.guard.control_budget();

    let reader = async {
        while let Some(message) = stream.next().await {
            heard();
            let command = match &message {
                Ok(Message::Text(_)) => true,
                Ok(Message::Binary(_)) => encoding == Encoding::Msgpack,
                _ => false,
            };
            let handled = match message {
                Ok(_) if command && !budget.take_command() => commands::error(
                    &app.hub,
                    &client,
                    None,
                    ErrorCode::RateLimited,
                    format!("more than {} commands per second; slow down", app.config.max_commands_per_sec),
                ),
                Ok(Message::Text(text)) => commands::handle_text(
                    &app.hub,
                    &app.upstream,
                    app.replays.as_ref(),
                    &trading,
                    &client,
                    text.as_str(),
                ),
                Ok(Message::Binary(bytes)) if encoding == Encoding::Msgpack => {
                    commands::handle_msgpack(&app.hub, &app.upstream, app.replays.as_ref(), &trading, &client, &bytes)
                }
                Ok(Message::Binary(_)) => commands::error(
                    &app.hub,
                    &client,
                    None,
                    ErrorCode::UnsupportedFrame,
                    "binary frames are not part of the protocol; send JSON text".into(),
                ),
                Ok(Message::Ping(_) | Message::Pong(_)) if !controls.take_command() => {
                    app.guard.refuse("control_frames");
                    tracing::info!(client = client.id(), ip = %pass.ip, "closing a ws client flooding control frames");
                    return Some((close::POLICY, "too many ping/pong frames"));
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => Handled::Done,
                Ok(Message::Close(_)) => return None,
                Err(e) => return read_error(e),
            };
            if handled == Handled::Refused && budget.refused() == Verdict::Abusive {
                app.guard.refuse("abusive");
                tracing::info!(client = client.id(), ip = %pass.ip, "closing an abusive ws client");
                return Some((close::POLICY, "too many refused commands"));
            }
        }
        None
    };

    let expiry = pass.time_left();
    let writer = async {
        let heartbeat = app.config.heartbeat();
        let client_timeout = app.config.client_timeout().as_millis() as i64;
        let expired = tokio::time::sleep(expiry);
        tokio::pin!(expired);
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        loop {
            let frames = tokio::select! {
                biased;
                _ = app.shutdown.cancelled() => return Some((close::GOING_AWAY, "relay shutting down")),
                _ = &mut expired => {
                    app.hub.send(client.id(), &ServerMessage::Error {
                        id: None,
                        code: ErrorCode::Unauthorized,
                        message: "token expired; reconnect with a fresh one".into(),
                    });
                    return Some((close::POLICY, "token expired"));
                }
                _ = ping.tick() => {
                    let silent_ms = started.elapsed().as_millis() as i64 - last_heard.load(Ordering::Relaxed);
                    if silent_ms > client_timeout {
                        tracing::debug!(client = client.id(), silent_ms, "dropping silent ws client");
                        return Some((close::GOING_AWAY, "heartbeat timeout"));
                    }
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        return None;
                    }
                    continue;
                }
                frames = client.next_frames() => frames,
            };
            let Some(frames) = frames else {
                return Some((close::POLICY, "client is not reading its messages"));
            };
            let written = tokio::select! {
                _ = app.shutdown.cancelled() => return Some((close::GOING_AWAY, "relay shutting down")),
                r = tokio::time::timeout(app.config.write_timeout(), write(&mut sink, &client, frames, encoding)) => r,
            };
            match written {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => {
                    tracing::info!(client = client.id(), "dropping ws client: socket not writable");
                    return None;
                }
            }
        }
    };

    let close = tokio::select! {
        c = reader => c,
        c = writer => c,
    };
    if let Some((code @ close::POLICY, _)) = close {
        // The `error` that explains a policy close is already queued: deliver it first, without waiting.
        if let Some(Some(frames)) = client.next_frames().now_or_never() {
            let _ = tokio::time::timeout(Duration::from_secs(1), write(&mut sink, &client, frames, encoding)).await;
        }
        tracing::debug!(client = client.id(), code, "closing with a policy violation");
    }
    if let Some((code, reason)) = close {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
    }
    tracing::debug!(client = client.id(), "ws client disconnected");
}

/// Writes a batch of frames with one flush.
async fn write<S>(sink: &mut S, client: &ClientHandle, frames: Vec<Frame>, encoding: Encoding) -> Result<(), S::Error>
where
    S: futures::Sink<Message> + Unpin,
{
    for frame in &frames {
        if encoding == Encoding::Msgpack {
            sink.feed(Message::Binary(frame.msgpack().clone())).await?;
            continue;
        }
        // Frames are serde_json output, so always UTF-8; a failure here would be a relay bug, not input.
        match Utf8Bytes::try_from(frame.json.clone()) {
            Ok(text) => sink.feed(Message::Text(text)).await?,
            Err(e) => tracing::error!(error = %e, "frame is not UTF-8; skipped"),
        }
    }
    sink.flush().await?;
    client.delivered(&frames);
    Ok(())
}

/// The close a read error earns: 1009 for a frame over the size limit, 1007 for text that is not UTF-8, 1002
/// for any other breach of RFC 6455 (unmasked, reserved bits, bad opcode, fragmented control frame...); none
/// when the socket itself failed, since nobody would read the close frame.
fn read_error(e: axum::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::ProtocolError;
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some((close::TOO_BIG, "message too large")),
        tungstenite::Error::Utf8(_) => Some((close::INVALID_PAYLOAD, "text frame is not valid UTF-8")),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake | ProtocolError::SendAfterClosing) => {
            None
        }
        tungstenite::Error::Protocol(_) => Some((close::PROTOCOL, "protocol error")),
        tungstenite::Error::WriteBufferFull(_) => Some((close::POLICY, "client is not reading its messages")),
        _ => None,
    }
}
