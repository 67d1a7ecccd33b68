//! `GET /ws`: the protocol over WebSocket.
//!
//! Each connection runs a reader and a writer concurrently; whichever ends first ends the connection. The writer
//! drains the client's outbox (a batch of frames per wake-up, one flush), pings every heartbeat and drops a client
//! it has not heard from within `--client-timeout-ms`. A client whose socket accepts nothing for `write_timeout`
//! is dropped; until then, falling behind only costs it conflated updates. On shutdown the client gets close
//! code 1001.
//!
//! The socket is yawc's, not axum's: tungstenite (behind `axum::extract::ws`) has no permessage-deflate, and
//! yawc implements RFC 7692 on the server side (docs/benchmarks.md#websocket-compression says why this crate and
//! what it costs). A client that offers the extension gets compressed frames unless `--ws-deflate off`; one that
//! does not gets plain frames as before. By default neither side keeps its compression context between
//! messages, so compressors are shared between connections ([`DeflatePool`]) and an idle connection holds none.
//!
//! The edge policy ([`crate::guard`]) runs on the handshake (origin, address slot, credential) and on every
//! command (rate). Refused commands are answered with an `error`; a client that keeps earning them, or whose
//! token expires, gets close code 1008 after the frames already queued for it.
//!
//! A client offering the subprotocol `hamster.msgpack` gets it selected and is written binary MessagePack
//! frames (each frame's encoding is shared with every other such client, see `hub::Frame`); it may send
//! MessagePack commands as binary frames, and JSON text frames keep working for it as for everyone else.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures::stream::{SplitSink, SplitStream};
use futures::{FutureExt, SinkExt, StreamExt};
use hamster_shared::{ErrorCode, ServerMessage, MSGPACK_SUBPROTOCOL};
use yawc::close::CloseCode;
use yawc::{CompressionLevel, DeflatePool, HttpWebSocket, IncomingUpgrade, OpCode, Options, WebSocketError};

use crate::commands::{self, Handled};
use crate::config::{Config, WsDeflate};
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

/// Bytes read from a client socket at a time; also what the read buffer shrinks back to after a larger message.
/// Clients send a few small commands (a 100-symbol `subscribe` is about 1.5 KB); a larger message is assembled
/// across reads. Every idle connection holds this buffer whole (docs/benchmarks.md, idle memory).
const READ_BUFFER_BYTES: usize = 256;

/// The write buffer's initial capacity: none, so an idle connection holds only what its greeting needed (4 KiB
/// here and 4 KiB of read buffer made an idle connection cost 16.2 KB instead of 8.8, docs/benchmarks.md). It
/// grows with the batches written and keeps that capacity up to [`MAX_WRITE_BUFFER_BYTES`], beyond which it is
/// given back after the flush.
const WRITE_BUFFER_BYTES: usize = 0;

/// Bytes the socket's write buffer may hold before it is flushed and further frames wait for the client to read.
/// A batch of frames collects up to this before its one flush; the buffer never holds more than this plus the
/// largest frame we send (a history or a replay batch), and the pongs a client is owed are capped by its ping
/// budget: a client flooding pings and never reading once grew the relay by a hundred megabytes.
const MAX_WRITE_BUFFER_BYTES: usize = 128 * 1024;

/// Messages shorter than this are sent uncompressed: on a `pong` or a short `error`, deflate's block header and
/// trailer save nothing.
const COMPRESSION_THRESHOLD_BYTES: usize = 64;

/// Idle compressors (and, separately, decompressors) kept for connections without context takeover: enough for
/// every worker thread to be compressing at once; a busier moment builds more and drops them afterwards.
static DEFLATE_POOL: LazyLock<DeflatePool> =
    LazyLock::new(|| DeflatePool::new(std::thread::available_parallelism().map_or(4, |n| n.get())));

/// `GET /ws`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

/// A WebSocket upgrade request: what axum's own extractor checked (`Connection: upgrade`, `Upgrade: websocket`),
/// then yawc's checks (key, version 13, an upgradable connection) and the extensions the client offered.
struct Upgrade(IncomingUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let has_token = |name: header::HeaderName, token: &str| {
            parts
                .headers
                .get_all(name)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
        };
        let refused = |status: StatusCode, reason: &'static str| {
            // As axum's own extractor logged its rejections: at trace, for whoever debugs a client.
            tracing::trace!(status = status.as_u16(), reason, "ws handshake refused");
            (status, reason).into_response()
        };
        if !has_token(header::CONNECTION, "upgrade") {
            return Err(refused(StatusCode::BAD_REQUEST, "Connection header did not include 'upgrade'"));
        }
        if !has_token(header::UPGRADE, "websocket") {
            return Err(refused(StatusCode::BAD_REQUEST, "`Upgrade` header did not include 'websocket'"));
        }
        match IncomingUpgrade::from_request_parts(parts, state).await {
            Ok(upgrade) => Ok(Upgrade(upgrade)),
            Err(status) => Err(refused(status, "not a WebSocket version 13 handshake")),
        }
    }
}

/// The socket settings of every connection, from the relay's flags.
fn options(config: &Config) -> Options {
    let max = config.max_message_bytes;
    let options = Options::default()
        // yawc's limits are exclusive; ours (`--max-message-bytes`) is the largest accepted size.
        .with_limits(max.saturating_add(1), max.saturating_add(1))
        .with_utf8()
        .with_read_buffer_capacity(READ_BUFFER_BYTES)
        .with_write_buffer_capacity(WRITE_BUFFER_BYTES)
        .with_backpressure_boundary(MAX_WRITE_BUFFER_BYTES)
        // A message left unfinished holds its fragments; give up on it when a silent client would be dropped.
        .with_fragment_timeout(config.client_timeout());
    let deflate = || {
        options
            .clone()
            .with_compression_level(CompressionLevel::fast())
            .with_server_max_window_bits(config.ws_deflate_window_bits)
            .with_compression_threshold(COMPRESSION_THRESHOLD_BYTES)
    };
    match config.ws_deflate {
        WsDeflate::Off => options.without_compression(),
        // RFC 7692 lets the server impose no context takeover in both directions on any client that offered
        // the extension; then nothing outlives a message and the compressors can be shared.
        WsDeflate::On => {
            deflate().server_no_context_takeover().client_no_context_takeover().with_deflate_pool(DEFLATE_POOL.clone())
        }
        WsDeflate::Context => deflate(),
    }
}

async fn upgrade(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    who: Option<Extension<Authenticated>>,
    parts: Parts,
    Upgrade(ws): Upgrade,
) -> Result<Response, HttpError> {
    let who = who.map_or(Authenticated { expires: None }, |Extension(who)| who);
    let pass = app.guard.check_handshake(&headers, peer, who)?;
    // A page from another site, or one reached through a rebound domain, may stream prices but never trade.
    let account = match app.site.check(&headers, false) {
        Ok(()) => super::orders::account_of(&app, &parts),
        Err(e) => Err(OrderReject { code: OrderRejectCode::Forbidden, message: e.to_string() }),
    };
    let trading = Trading::new(app.broker.clone(), account);
    let encoding = Encoding::offered(&headers);
    let (mut response, socket) = match ws.upgrade(options(&app.config)) {
        Ok(upgrade) => upgrade,
        Err(e) => {
            tracing::debug!(error = %e, "ws handshake refused");
            return Ok((StatusCode::BAD_REQUEST, "invalid WebSocket handshake").into_response());
        }
    };
    if encoding == Encoding::Msgpack {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, header::HeaderValue::from_static(MSGPACK_SUBPROTOCOL));
    }
    let tracker = app.tracker.clone();
    // `then` holds either the handshake's future or the connection's, never both (an `async` block keeps room
    // for the socket it awaited beside the future it then runs), and the socket is split before `serve` is
    // called, so its future holds two pointers instead of the socket: an idle connection's task was 8.9 KB.
    tracker.spawn(socket.then(move |upgraded| match upgraded {
        Ok(socket) => serve(Socket(socket).split(), app, pass, trading, encoding).left_future(),
        Err(e) => {
            tracing::debug!(error = %e, "ws upgrade failed");
            futures::future::ready(()).right_future()
        }
    }));
    Ok(response.map(axum::body::Body::new))
}

/// How a connection's messages are written, chosen once by the handshake's subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Text frames of JSON: the default.
    Json,
    /// Binary frames of MessagePack (`hamster.msgpack`).
    Msgpack,
}

impl Encoding {
    /// MessagePack when the client listed `hamster.msgpack` among its `Sec-WebSocket-Protocol` offers.
    fn offered(headers: &HeaderMap) -> Encoding {
        let offers = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL);
        let msgpack = offers
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == MSGPACK_SUBPROTOCOL);
        if msgpack {
            Encoding::Msgpack
        } else {
            Encoding::Json
        }
    }
}

/// yawc's socket with its read errors kept: its own `Stream` ends on an error, and the close code depends on
/// which error it was.
struct Socket(HttpWebSocket);

impl futures::Stream for Socket {
    type Item = Result<yawc::Frame, WebSocketError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().0.poll_next_frame(cx) {
            Poll::Ready(Err(WebSocketError::ConnectionClosed)) => Poll::Ready(None),
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures::Sink<yawc::Frame> for Socket {
    type Error = WebSocketError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().0.poll_ready_unpin(cx)
    }

    fn start_send(self: Pin<&mut Self>, frame: yawc::Frame) -> Result<(), Self::Error> {
        self.get_mut().0.start_send_unpin(frame)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // yawc writes the frames it owes (pongs, the echo of a close, the close for a malformed frame) only in
        // `poll_ready`, which `SplitSink` skips when it holds no frame of ours: a flush must reach them too.
        let socket = &mut self.get_mut().0;
        std::task::ready!(socket.poll_ready_unpin(cx))?;
        socket.poll_flush_unpin(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().0.poll_close_unpin(cx)
    }
}

async fn serve(
    (mut sink, mut stream): (SplitSink<Socket, yawc::Frame>, SplitStream<Socket>),
    app: AppState,
    pass: ClientPass,
    trading: Trading,
    encoding: Encoding,
) {
    let transport = match encoding {
        Encoding::Json => "ws",
        Encoding::Msgpack => "ws+msgpack",
    };
    let client = super::connect(&app, transport);
    tracing::debug!(client = client.id(), ip = %pass.ip, "ws client connected");
    let started = Instant::now();
    // Milliseconds since `started` when the client was last heard from.
    let last_heard = AtomicI64::new(0);
    let heard = || last_heard.store(started.elapsed().as_millis() as i64, Ordering::Relaxed);
    let budget = app.guard.command_budget();
    let controls = app.guard.control_budget();

    let reader = async {
        while let Some(message) = stream.next().await {
            heard();
            let message = match message {
                Ok(message) => message,
                Err(e) => return read_error(&e),
            };
            let command = match message.opcode() {
                OpCode::Text => true,
                OpCode::Binary => encoding == Encoding::Msgpack,
                _ => false,
            };
            let handled = match message.opcode() {
                _ if command && !budget.take_command() => commands::error(
                    &app.hub,
                    &client,
                    None,
                    ErrorCode::RateLimited,
                    format!("more than {} commands per second; slow down", app.config.max_commands_per_sec),
                ),
                // The socket validates text (`with_utf8`); checked again rather than trusted not to panic.
                OpCode::Text => match std::str::from_utf8(message.payload()) {
                    Ok(text) => {
                        commands::handle_text(&app.hub, &app.upstream, app.replays.as_ref(), &trading, &client, text)
                    }
                    Err(_) => return Some((close::INVALID_PAYLOAD, "text frame is not valid UTF-8")),
                },
                OpCode::Binary if encoding == Encoding::Msgpack => commands::handle_msgpack(
                    &app.hub,
                    &app.upstream,
                    app.replays.as_ref(),
                    &trading,
                    &client,
                    message.payload(),
                ),
                OpCode::Binary => commands::error(
                    &app.hub,
                    &client,
                    None,
                    ErrorCode::UnsupportedFrame,
                    "binary frames are not part of the protocol; send JSON text".into(),
                ),
                OpCode::Ping | OpCode::Pong if !controls.take_command() => {
                    app.guard.refuse("control_frames");
                    tracing::info!(client = client.id(), ip = %pass.ip, "closing a ws client flooding control frames");
                    return Some((close::POLICY, "too many ping/pong frames"));
                }
                OpCode::Ping | OpCode::Pong => Handled::Done,
                OpCode::Close => return None,
                // Fragments arrive reassembled; a stray continuation is a read error above.
                OpCode::Continuation => Handled::Done,
            };
            if handled == Handled::Refused && budget.refused() == Verdict::Abusive {
                app.guard.refuse("abusive");
                tracing::info!(client = client.id(), ip = %pass.ip, "closing an abusive ws client");
                return Some((close::POLICY, "too many refused commands"));
            }
        }
        None
    };

    let writer = async {
        let heartbeat = app.config.heartbeat();
        let client_timeout = app.config.client_timeout().as_millis() as i64;
        // Only a credential that expires needs a timer; boxed, it takes room only in the connections that have one.
        let mut expired = pass.expires.map(|_| Box::pin(tokio::time::sleep(pass.time_left())));
        // Registered with the token once, not once per batch: a fresh `cancelled()` joins (and on drop leaves) a
        // waiter list that every connection shares.
        let shutdown = app.shutdown.cancelled();
        tokio::pin!(shutdown);
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        loop {
            let frames = tokio::select! {
                biased;
                _ = &mut shutdown => return Some((close::GOING_AWAY, "relay shutting down")),
                () = until(&mut expired) => {
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
                    if sink.send(yawc::Frame::ping(bytes::Bytes::new())).await.is_err() {
                        return None;
                    }
                    continue;
                }
                frames = client.next_frames() => frames,
            };
            let Some(frames) = frames else {
                return Some((close::POLICY, "client is not reading its messages"));
            };
            // Almost every batch fits in the socket's buffer and is written on the first poll; only a write that
            // has to wait for the client is given a deadline (a timer and a clock read per batch otherwise).
            let mut pending = std::pin::pin!(write(&mut sink, &client, frames, encoding));
            let written = match futures::poll!(pending.as_mut()) {
                Poll::Ready(r) => Ok(r),
                Poll::Pending => tokio::select! {
                    _ = &mut shutdown => return Some((close::GOING_AWAY, "relay shutting down")),
                    // Boxed: the deadline's timer takes room only while a write waits.
                    r = Box::pin(tokio::time::timeout(app.config.write_timeout(), pending)) => r,
                },
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
    // Runs once per connection: boxed, it takes no room in every idle connection's task.
    Box::pin(finish(sink, &client, close, encoding)).await;
    tracing::debug!(client = client.id(), "ws client disconnected");
}

/// Ends a connection: the frames that explain a policy close, what the socket queued on its own, then our close.
async fn finish(
    mut sink: SplitSink<Socket, yawc::Frame>,
    client: &ClientHandle,
    close: Option<(u16, &'static str)>,
    encoding: Encoding,
) {
    if let Some((code @ close::POLICY, _)) = close {
        // The `error` that explains a policy close is already queued: deliver it first, without waiting.
        let frames = client.queued_frames();
        if !frames.is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(1), write(&mut sink, client, frames, encoding)).await;
        }
        tracing::debug!(client = client.id(), code, "closing with a policy violation");
    }
    // What the socket queued on its own goes out first: the echo of a client's close, or the close it answers a
    // malformed frame with.
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.flush()).await;
    if let Some((code, reason)) = close {
        let frame = yawc::Frame::close(CloseCode::from(code), reason);
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(frame)).await;
    }
}

/// Completes when `timer` fires; never without one.
async fn until(timer: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Writes a batch of frames with one flush (each compressed on its own when the client negotiated deflate).
async fn write<S>(sink: &mut S, client: &ClientHandle, frames: Vec<Frame>, encoding: Encoding) -> Result<(), S::Error>
where
    S: futures::Sink<yawc::Frame> + Unpin,
{
    for frame in &frames {
        let frame = match encoding {
            // Frames are serde_json output, so always UTF-8.
            Encoding::Json => yawc::Frame::text(frame.json.clone()),
            Encoding::Msgpack => yawc::Frame::binary(frame.msgpack().clone()),
        };
        sink.feed(frame).await?;
    }
    sink.flush().await?;
    client.delivered(&frames);
    Ok(())
}

/// The close a read error earns: 1009 for a message over the size limit, 1007 for text that is not UTF-8, 1002
/// for a malformed fragmented message; none when the socket itself failed, since nobody would read it. Errors in
/// a single frame (unmasked, reserved bits, a compressed frame without the extension, a fragmented or oversized
/// control frame, a bad close frame) yawc answers itself, with 1002 (1003 for an unknown opcode), so none here:
/// the connection only has to flush what yawc queued. Frame-size and fragment errors can come from either yawc
/// layer; a second close with the same code may then follow the first, which clients ignore.
fn read_error(e: &WebSocketError) -> Option<(u16, &'static str)> {
    match e {
        WebSocketError::FrameTooLarge => Some((close::TOO_BIG, "message too large")),
        WebSocketError::InvalidUTF8 => Some((close::INVALID_PAYLOAD, "text frame is not valid UTF-8")),
        WebSocketError::InvalidFragment
        | WebSocketError::InvalidContinuationFrame
        | WebSocketError::FragmentTimeout => Some((close::PROTOCOL, "protocol error")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("hamster-relay").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn deflate_modes_become_socket_options() {
        let off = options(&config(&["--ws-deflate", "off"]));
        assert!(off.compression.is_none());

        let on = options(&config(&[]));
        let deflate = on.compression.expect("on by default");
        assert!(deflate.server_no_context_takeover && deflate.client_no_context_takeover);
        assert!(deflate.pool.is_some(), "without context takeover the state is pooled");
        assert_eq!(deflate.server_max_window_bits, Some(15));
        assert_eq!(deflate.compression_threshold, COMPRESSION_THRESHOLD_BYTES);

        let context = options(&config(&["--ws-deflate", "context", "--ws-deflate-window-bits", "10"]));
        let deflate = context.compression.expect("context mode compresses");
        assert!(!deflate.server_no_context_takeover && !deflate.client_no_context_takeover);
        assert!(deflate.pool.is_none());
        assert_eq!(deflate.server_max_window_bits, Some(10));
    }

    #[test]
    fn limits_follow_max_message_bytes_and_window_bits_stay_in_range() {
        let o = options(&config(&["--max-message-bytes", "1000"]));
        assert_eq!((o.max_payload_read, o.max_read_buffer), (Some(1001), Some(1001)));
        for bits in ["8", "16"] {
            let parsed = Config::try_parse_from(["hamster-relay", "--ws-deflate-window-bits", bits]);
            assert!(parsed.is_err(), "window bits {bits} accepted");
        }
    }
}
