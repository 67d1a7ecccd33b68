//! Alpaca's `trade_updates` stream (`docs/providers/alpaca-broker.md`): connect, authenticate, listen, turn
//! every event into orders and fills, and reconnect with backoff when the connection is lost.
//!
//! The stream does not replay what happened while it was down, so every successful `listen` is followed by a
//! resync over REST ([`Alpaca::resync`]). Alpaca sends JSON in binary frames on paper (text elsewhere, perhaps),
//! so both are read. It documents no server pings, so the relay pings after [`PING_AFTER`] of silence and calls
//! the connection dead when even that draws nothing for [`DEAD_AFTER`]. A refused key is reported as `down`
//! and retried slowly; Alpaca allows one stream per account and answers a second one with HTTP 429 on the
//! upgrade, which is backed off like any other loss.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hamster_shared::ProviderState;
use serde_json::json;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::wire::{Envelope, TradeUpdate};
use super::Alpaca;
use crate::providers::stream::timing::Backoff;
use crate::secret::redact;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the answer to `auth` and to `listen`.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const PING_AFTER: Duration = Duration::from_secs(30);
const DEAD_AFTER: Duration = Duration::from_secs(90);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A refused key does not fix itself quickly; retrying it often would only burn Alpaca's patience.
const UNAUTHORIZED_RETRY: Duration = Duration::from_secs(60);

/// Why a session ended.
#[derive(Debug)]
enum Ended {
    Stopped,
    Unauthorized(String),
    Lost(String),
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs the stream until `stop`.
pub(super) async fn run(alpaca: Arc<Alpaca>, stop: CancellationToken) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    loop {
        let ended = session(&alpaca, &stop, &mut backoff).await;
        let delay = match ended {
            Ended::Stopped => return,
            Ended::Unauthorized(why) => {
                alpaca.set_state(ProviderState::Down, Some(why));
                UNAUTHORIZED_RETRY
            }
            Ended::Lost(why) => {
                alpaca.set_state(ProviderState::Reconnecting, Some(why));
                backoff.next_delay()
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// The next JSON envelope, skipping pongs and keep-alive bytes.
async fn next_envelope(socket: &mut Socket) -> Result<Envelope, String> {
    loop {
        let bytes = match socket.next().await {
            Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
            Some(Ok(Message::Binary(b))) => b.to_vec(),
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                return Err(redact(&format!("Alpaca closed the stream {why}")).trim().to_owned());
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(redact(&format!("stream error: {e}")).into_owned()),
            None => return Err("the stream ended".into()),
        };
        // A lone byte is a keep-alive some clients expect; it carries nothing.
        if bytes.len() <= 1 {
            continue;
        }
        match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(envelope) => return Ok(envelope),
            Err(e) => tracing::warn!(error = %e, "unreadable frame on Alpaca's trade_updates stream"),
        }
    }
}

async fn reply(socket: &mut Socket, stop: &CancellationToken) -> Result<Envelope, Ended> {
    tokio::select! {
        _ = stop.cancelled() => Err(Ended::Stopped),
        r = timeout(REPLY_TIMEOUT, next_envelope(socket)) => match r {
            Ok(Ok(envelope)) => Ok(envelope),
            Ok(Err(why)) => Err(Ended::Lost(why)),
            Err(_) => Err(Ended::Lost("Alpaca did not answer in time".into())),
        },
    }
}

async fn session(alpaca: &Arc<Alpaca>, stop: &CancellationToken, backoff: &mut Backoff) -> Ended {
    let connected = tokio::select! {
        _ = stop.cancelled() => return Ended::Stopped,
        r = timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(alpaca.stream_url.as_str())) => r,
    };
    let mut socket = match connected {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(tungstenite::Error::Http(response))) if response.status().as_u16() == 429 => {
            return Ended::Lost(
                "Alpaca refused the stream (429): another connection may hold this account's one \
                                trade_updates stream"
                    .into(),
            )
        }
        Ok(Err(e)) => return Ended::Lost(redact(&format!("cannot connect the trade_updates stream: {e}")).into()),
        Err(_) => return Ended::Lost("connecting the trade_updates stream timed out".into()),
    };
    // The form Alpaca's own deprecation notice asks for (the older `authenticate` form is deprecated).
    let auth = json!({"action": "auth", "key": alpaca.key.expose(), "secret": alpaca.secret.expose()});
    if socket.send(Message::text(auth.to_string())).await.is_err() {
        return Ended::Lost("the stream closed before authentication".into());
    }
    let answer = match reply(&mut socket, stop).await {
        Ok(answer) => answer,
        Err(ended) => return ended,
    };
    let status = answer.data.get("status").and_then(|s| s.as_str()).unwrap_or_default();
    if answer.stream != "authorization" || status != "authorized" {
        let message = answer.data.get("message").and_then(|m| m.as_str()).unwrap_or("unauthorized");
        let _ = socket.close(None).await;
        return Ended::Unauthorized(redact(&format!("Alpaca refused the API key on the stream: {message}")).into());
    }
    let listen = json!({"action": "listen", "data": {"streams": ["trade_updates"]}});
    if socket.send(Message::text(listen.to_string())).await.is_err() {
        return Ended::Lost("the stream closed before listening".into());
    }
    let listening = match reply(&mut socket, stop).await {
        Ok(answer) => answer,
        Err(ended) => return ended,
    };
    let streams = listening.data.get("streams").and_then(|s| s.as_array());
    if listening.stream != "listening" || !streams.is_some_and(|s| s.iter().any(|v| v == "trade_updates")) {
        return Ended::Lost("Alpaca did not start the trade_updates stream".into());
    }
    match alpaca.resync().await {
        Ok(()) => alpaca.set_state(ProviderState::Live, None),
        Err(e) => {
            let reject = e.reject();
            if reject.code == hamster_shared::broker::OrderRejectCode::Unauthorized {
                return Ended::Unauthorized(reject.message);
            }
            alpaca.set_state(ProviderState::Degraded, Some(format!("resync failed: {}", reject.message)));
        }
    }
    backoff.reset();
    stream(alpaca, stop, &mut socket).await
}

/// Reads events until the connection is lost.
async fn stream(alpaca: &Alpaca, stop: &CancellationToken, socket: &mut Socket) -> Ended {
    let mut heard = Instant::now();
    let mut pinged = false;
    loop {
        let wait = if pinged { DEAD_AFTER } else { PING_AFTER };
        let frame = tokio::select! {
            _ = stop.cancelled() => {
                let _ = socket.close(None).await;
                return Ended::Stopped;
            }
            r = timeout(wait.saturating_sub(heard.elapsed()), socket.next()) => r,
        };
        let message = match frame {
            Err(_) if !pinged => {
                pinged = true;
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return Ended::Lost("the stream broke".into());
                }
                continue;
            }
            Err(_) => return Ended::Lost("the trade_updates stream went silent".into()),
            Ok(None) => return Ended::Lost("the stream ended".into()),
            Ok(Some(Err(e))) => return Ended::Lost(redact(&format!("stream error: {e}")).into()),
            Ok(Some(Ok(message))) => message,
        };
        heard = Instant::now();
        pinged = false;
        let bytes = match message {
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Binary(b) => b.to_vec(),
            Message::Close(_) => return Ended::Lost("Alpaca closed the stream".into()),
            _ => continue,
        };
        if bytes.len() <= 1 {
            continue;
        }
        let envelope: Envelope = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable frame on Alpaca's trade_updates stream");
                continue;
            }
        };
        match envelope.stream.as_str() {
            "trade_updates" => match serde_json::from_value::<TradeUpdate>(envelope.data) {
                Ok(update) => alpaca.on_trade_update(update),
                Err(e) => tracing::warn!(error = %e, "unreadable trade update"),
            },
            _ if envelope.data.get("error_message").is_some() => {
                let why = envelope.data.get("error_message").and_then(|m| m.as_str()).unwrap_or_default();
                return Ended::Lost(redact(&format!("Alpaca reported an error: {why}")).into());
            }
            _ => {}
        }
    }
}
