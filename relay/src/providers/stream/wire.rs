//! The adapter contract: what a streaming provider's wire protocol must say, and nothing more.
//!
//! An adapter implements [`Wire`]: how to connect (URL, headers, key), what to send after connecting
//! (authentication) and to subscribe or unsubscribe, which instruments it can serve at all ([`Wire::admit`]) and
//! how many it can hold ([`Wire::capacity`]), and what each incoming frame means ([`WireEvent`]). Everything else
//! — reconnecting, resubscribing, admission bookkeeping, pacing, keep-alives, status — is the driver's
//! ([`super`]), the same way for every provider.

use std::time::Duration;

use hamster_shared::{ErrorCode, Quote};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::{self};

/// Why a provider will not stream an instrument: sent to every client that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl Refusal {
    /// The provider refused the instrument (unknown, unservable, over a limit).
    pub(crate) fn rejected(message: impl Into<String>) -> Refusal {
        Refusal { code: ErrorCode::ProviderRejected, message: message.into() }
    }
}

/// How many distinct upstream subscriptions one connection may hold, and what the excess is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Capacity {
    pub(crate) max: usize,
    pub(crate) full: String,
}

/// What one incoming frame meant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WireEvent {
    /// Authenticated / ready for subscriptions (only awaited when [`Wire::waits_for_ready`]).
    Ready,
    /// Prices; each quote's `symbol` is the canonical instrument.
    Quotes(Vec<Quote>),
    /// A non-price message on a channel instrument (e.g. `FLOW-ALERTS`); `ts` in ms since epoch.
    Event { instrument: String, payload: serde_json::Value, ts: i64 },
    /// The upstream refused an instrument for good (unknown symbol, plan limit).
    Rejected { instrument: String, code: ErrorCode, message: String },
    /// The upstream refused one whole subscribe request without saying which of its instruments it objects to.
    /// `instruments` are those the request carried, already forgotten by the wire (as if never subscribed);
    /// `message` is the provider's reason. The driver retries them in halves until a refused request holds one
    /// upstream name, whose instruments are then rejected with `code` and the `message` of that refusal
    /// ([`super::isolate`]). A wire that can tell which instrument was refused sends [`WireEvent::Rejected`].
    RequestRefused { instruments: Vec<String>, code: ErrorCode, message: String },
    /// A frame to send back right away (e.g. an application-level pong).
    Reply(String),
    /// The upstream asked us to go away or announced its shutdown: reconnect (with backoff).
    Reconnect { reason: String },
    /// Credentials refused: report `down` with `reason` and retry only after the down-retry delay.
    Fatal { reason: String },
    /// Anything else worth logging at debug level (acks, info messages).
    Info(String),
}

/// A provider's wire protocol.
pub(crate) trait Wire: Send + 'static {
    /// The provider's stable lower-case name (`name:SYMBOL` prefixes, `status`, `Quote.provider`, logs).
    const NAME: &'static str;

    /// The upgrade request (URL, auth query or headers). Built fresh for every attempt.
    fn request(&self) -> Result<Request, String>;

    /// Whether this provider can ever serve `instrument` and, if so, its upstream name. Stateless, so the driver
    /// applies it at once, connected or not: a refused instrument never costs an upstream round trip. Instruments
    /// sharing an upstream name (`BTC/USD` and `BTC/USDT` on one Binance stream) are one subscription upstream.
    fn admit(&self, instrument: &str) -> Result<String, Refusal> {
        Ok(instrument.to_owned())
    }

    /// The most distinct upstream names one connection may hold; the driver refuses instruments beyond it.
    fn capacity(&self) -> Option<Capacity> {
        None
    }

    /// Frames to send right after the connection opens (authentication). A new connection starts clean: any
    /// per-connection bookkeeping is reset here.
    fn on_open(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Whether to wait for [`WireEvent::Ready`] before subscribing.
    fn waits_for_ready(&self) -> bool {
        false
    }

    /// Frames that subscribe `instruments` (all admitted; chunked as the provider needs).
    fn subscribe(&mut self, instruments: &[String]) -> Vec<String>;

    /// Frames that unsubscribe `instruments`.
    fn unsubscribe(&mut self, instruments: &[String]) -> Vec<String>;

    /// Interprets one text frame.
    fn on_text(&mut self, text: &str) -> Vec<WireEvent>;

    /// A frame to send every interval to keep the connection alive, if the protocol wants one.
    fn keepalive(&self) -> Option<(Duration, String)> {
        None
    }

    /// Send a WebSocket ping frame after this long without any incoming frame, for protocols whose servers stay
    /// silent while there is no data: the pong is a frame, so a quiet but healthy connection is not replaced by
    /// the staleness watchdog, while a dead one still is. Keep it well below the staleness limit.
    fn idle_ping(&self) -> Option<Duration> {
        None
    }

    /// Shortest gap between two frames we send, where the provider limits client messages (frames beyond the
    /// limit are paced, never dropped).
    fn min_send_interval(&self) -> Option<Duration> {
        None
    }

    /// Replace the connection after this long, before the provider cuts it (Binance: at 24 h).
    fn max_connection_age(&self) -> Option<Duration> {
        None
    }

    /// Whether an HTTP status refusing the upgrade means bad credentials (then: `down`, slow retry).
    fn is_auth_failure(&self, status: u16) -> bool {
        matches!(status, 401 | 403)
    }
}

/// Builds an upgrade request for `url` (which may contain a key) with extra headers. Errors never echo the URL.
pub(crate) fn request(url: &str, headers: &[(&str, &str)]) -> Result<Request, String> {
    let mut request = url.into_client_request().map_err(|_| "invalid upstream URL".to_owned())?;
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| "bad header name")?;
        let value = tungstenite::http::HeaderValue::from_str(value).map_err(|_| "bad header value")?;
        request.headers_mut().insert(name, value);
    }
    Ok(request)
}
