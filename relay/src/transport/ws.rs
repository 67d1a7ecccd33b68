//! `GET /ws`: the protocol over WebSocket.
//!
//! Each connection runs a reader and a writer concurrently; whichever ends first ends the connection. The writer
//! drains the client's outbox (a batch of frames per wake-up, one flush), pings every heartbeat and drops a client
//! it has not heard from in two heartbeats. A client whose socket accepts nothing for `write_timeout` is dropped;
//! until then, falling behind only costs it conflated updates. On shutdown the client gets close code 1001.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use hamster_shared::ErrorCode;

use crate::app::AppState;
use crate::hub::{ClientHandle, Frame};
use crate::session;

/// Close codes (RFC 6455 §7.4.1).
mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
}

pub async fn upgrade(ws: WebSocketUpgrade, State(app): State<AppState>) -> Response {
    let max = app.config.max_message_bytes;
    ws.max_message_size(max).max_frame_size(max).on_upgrade(move |socket| {
        let tracker = app.tracker.clone();
        tracker.track_future(serve(socket, app))
    })
}

async fn serve(socket: WebSocket, app: AppState) {
    let client = super::connect(&app, "ws");
    tracing::debug!(client = client.id(), "ws client connected");
    let (mut sink, mut stream) = socket.split();
    let started = Instant::now();
    // Milliseconds since `started` when the client was last heard from.
    let last_heard = AtomicI64::new(0);
    let heard = || last_heard.store(started.elapsed().as_millis() as i64, Ordering::Relaxed);

    let reader = async {
        while let Some(message) = stream.next().await {
            heard();
            match message {
                Ok(Message::Text(text)) => session::handle_text(&app.hub, &app.upstream, &client, text.as_str()),
                Ok(Message::Binary(_)) => session::error(
                    &app.hub,
                    &client,
                    None,
                    ErrorCode::UnsupportedFrame,
                    "binary frames are not part of the protocol; send JSON text".into(),
                ),
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(Message::Close(_)) => return None,
                Err(e) => return too_big(e).then_some((close::TOO_BIG, "message too large")),
            }
        }
        None
    };

    let writer = async {
        let heartbeat = app.config.heartbeat();
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        loop {
            let frames = tokio::select! {
                biased;
                _ = app.shutdown.cancelled() => return Some((close::GOING_AWAY, "relay shutting down")),
                _ = ping.tick() => {
                    let silent_ms = started.elapsed().as_millis() as i64 - last_heard.load(Ordering::Relaxed);
                    if silent_ms > 2 * heartbeat.as_millis() as i64 {
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
                r = tokio::time::timeout(app.config.write_timeout(), write(&mut sink, &client, frames)) => r,
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
    if let Some((code, reason)) = close {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
    }
    tracing::debug!(client = client.id(), "ws client disconnected");
}

/// Writes a batch of frames with one flush.
async fn write<S>(sink: &mut S, client: &ClientHandle, frames: Vec<Frame>) -> Result<(), S::Error>
where
    S: futures::Sink<Message> + Unpin,
{
    for frame in &frames {
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

/// Whether a read error means the client sent a frame over the size limit.
fn too_big(e: axum::Error) -> bool {
    matches!(e.into_inner().downcast_ref::<tungstenite::Error>(), Some(tungstenite::Error::Capacity(_)))
}
