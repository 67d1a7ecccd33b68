//! The reconnecting upstream WebSocket session that every streaming adapter runs on.
//!
//! An adapter describes only its wire protocol through the [`Wire`] trait: how to connect (URL, headers, key),
//! what to send after connecting (auth) and to subscribe/unsubscribe, and what each incoming frame means. This
//! module owns everything else, the same way for every provider:
//!
//! * one connection at a time; on loss, reconnect with exponential backoff and **full jitter** (uniform in
//!   `0..=d`, `d` doubling from `backoff_min` to `backoff_max`), reset after `stable_after` of healthy streaming;
//! * the desired instrument set survives reconnects and is resubscribed in full on every new connection;
//!   subscription diffs are applied live while connected;
//! * a staleness watchdog: no frame at all for `stale_after` means a silent, half-dead socket, so reconnect;
//! * keep-alives the protocol asks for, answers to protocol pings, and pacing of outgoing frames where the
//!   provider limits client messages per second;
//! * state changes reported as `status` (connecting → live → reconnecting …, or down with a reason when the
//!   provider refuses our credentials — retried slowly, never in a hot loop).
//!
//! Keys live inside the adapter's request and are never logged: errors are reported by kind, not by URL.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::{SinkExt, StreamExt};
use hamster_shared::{ErrorCode, ProviderState, Quote};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::{EventSink, ProviderCommand};

/// What one incoming frame meant.
#[derive(Debug, Clone, PartialEq)]
pub enum WireEvent {
    /// Authenticated / ready for subscriptions (only awaited when [`Wire::waits_for_ready`]).
    Ready,
    /// Prices; each quote's `symbol` is the canonical instrument.
    Quotes(Vec<Quote>),
    /// A non-price message on a channel instrument (e.g. `FLOW-ALERTS`); `ts` in ms since epoch.
    Event { instrument: String, payload: serde_json::Value, ts: i64 },
    /// The upstream refused an instrument for good (unknown symbol, plan limit).
    Rejected { instrument: String, code: ErrorCode, message: String },
    /// A frame to send back right away (e.g. an application-level pong).
    Reply(String),
    /// The upstream asked us to go away or announced its shutdown: reconnect (with backoff).
    Reconnect { reason: String },
    /// Credentials refused: report `down` with `reason` and retry only after `down_retry`.
    Fatal { reason: String },
    /// Anything else worth logging at debug level (acks, info messages).
    Info(String),
}

/// A provider's wire protocol.
pub trait Wire: Send + 'static {
    /// The provider's name, for logs.
    fn name(&self) -> &'static str;

    /// The upgrade request (URL, auth query or headers). Built fresh for every attempt.
    fn request(&self) -> Result<Request, String>;

    /// Frames to send right after the connection opens (authentication).
    fn on_open(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Whether to wait for [`WireEvent::Ready`] before subscribing.
    fn waits_for_ready(&self) -> bool {
        false
    }

    /// Frames that subscribe `instruments` (chunked as the provider needs).
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
    /// the staleness watchdog, while a dead one still is. Keep it well below [`Timing::stale_after`].
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

/// Timing of the reconnect loop. Every adapter gets the same defaults; tests shorten them by flags.
#[derive(Debug, Clone)]
pub struct Timing {
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Healthy streaming for this long resets the backoff.
    pub stable_after: Duration,
    /// No frame at all for this long: reconnect.
    pub stale_after: Duration,
    pub connect_timeout: Duration,
    /// Wait after credentials were refused before trying again.
    pub down_retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            stale_after: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            down_retry: Duration::from_secs(300),
        }
    }
}

/// Exponential backoff with full jitter: `uniform(0, min(max, min·2ⁿ))`.
///
/// The exponential schedule comes from `backon`; full jitter (rather than `backon`'s additive jitter) spreads
/// the reconnects of many relays that lost the same upstream at the same moment.
pub struct Backoff {
    builder: ExponentialBuilder,
    schedule: backon::ExponentialBackoff,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let builder = ExponentialBuilder::default().with_min_delay(min).with_max_delay(max).without_max_times();
        Backoff { schedule: builder.build(), builder }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.schedule.next().unwrap_or_default();
        rand::rng().random_range(Duration::ZERO..=ceiling)
    }

    /// Back to the shortest delays (after a stable connection).
    pub fn reset(&mut self) {
        self.schedule = self.builder.build();
    }
}

/// What adapters running beside the stream (e.g. a REST fallback) can see of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    /// The stream is connected and subscribed.
    pub live: bool,
    /// The instruments currently wanted.
    pub desired: Vec<String>,
}

/// Publishes [`Link`] changes.
pub type LinkSender = tokio::sync::watch::Sender<Link>;

fn publish(link: &LinkSender, live: bool, desired: &BTreeSet<String>) {
    let desired: Vec<String> = desired.iter().cloned().collect();
    link.send_if_modified(|l| {
        let changed = l.live != live || l.desired != desired;
        *l = Link { live, desired: desired.clone() };
        changed
    });
}

/// How a connection attempt ended.
enum Ended {
    Stopped,
    /// Lost; reconnect after a backoff. `healthy` if it streamed long enough to reset the backoff.
    Lost {
        reason: String,
        healthy: bool,
    },
    Fatal {
        reason: String,
    },
}

/// Runs `wire` until `stop` fires, keeping one connection up and the desired instruments subscribed.
pub async fn run<W: Wire>(
    mut wire: W,
    mut commands: mpsc::UnboundedReceiver<ProviderCommand>,
    events: EventSink,
    stop: CancellationToken,
    timing: Timing,
    link: LinkSender,
) {
    let mut desired: BTreeSet<String> = BTreeSet::new();
    let mut backoff = Backoff::new(timing.backoff_min, timing.backoff_max);
    let mut first = true;
    // Why the last attempt ended, kept on the `reconnecting` status while the next one runs.
    let mut last_reason: Option<String> = None;
    // The state clients last heard about from this loop, so a retry does not announce `reconnecting` twice.
    let mut announced: Option<ProviderState> = None;
    loop {
        let state = if first { ProviderState::Connecting } else { ProviderState::Reconnecting };
        let reason = last_reason.take();
        if announced != Some(state) {
            events.status(state, reason).await;
        }
        announced = None;
        first = false;
        let ended = session(&mut wire, &mut desired, &mut commands, &events, &stop, &timing, &link).await;
        publish(&link, false, &desired);
        let wait = match ended {
            Ended::Stopped => return,
            Ended::Lost { reason, healthy } => {
                last_reason = Some(reason.clone());
                if healthy {
                    backoff.reset();
                }
                let wait = backoff.next_delay();
                tracing::warn!(provider = wire.name(), %reason, ?wait, "upstream connection lost; reconnecting");
                events.status(ProviderState::Reconnecting, Some(reason)).await;
                announced = Some(ProviderState::Reconnecting);
                wait
            }
            Ended::Fatal { reason } => {
                tracing::error!(provider = wire.name(), %reason, retry = ?timing.down_retry, "upstream refused us");
                events.status(ProviderState::Down, Some(reason)).await;
                timing.down_retry
            }
        };
        // Keep tracking demand while waiting, so the reconnect subscribes exactly what is wanted then.
        let deadline = Instant::now() + wait;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => break,
                command = commands.recv() => match command {
                    Some(command) => {
                        apply(&mut desired, command);
                        publish(&link, false, &desired);
                    }
                    None => return,
                },
            }
        }
    }
}

/// Screens commands before the stream sees them: instruments a provider can never serve, or that would exceed
/// a limit it enforces, are refused with a reason at once instead of costing an upstream round trip.
pub trait Admission: Send + 'static {
    /// The part of `command` to pass on, and the instruments refused with why.
    fn admit(&mut self, command: ProviderCommand) -> (Option<ProviderCommand>, Vec<(String, String)>);
}

/// Like [`run`], with `admission` screening every command first; refused instruments are rejected to their
/// subscribers with `provider_rejected` and never sent upstream.
pub async fn run_admitted<W: Wire, A: Admission>(
    wire: W,
    mut admission: A,
    mut commands: mpsc::UnboundedReceiver<ProviderCommand>,
    events: EventSink,
    stop: CancellationToken,
    timing: Timing,
    link: LinkSender,
) {
    let (admitted_tx, admitted_rx) = mpsc::unbounded_channel();
    let name = wire.name();
    let screen = async {
        // Returning drops `admitted_tx`, which ends the stream too.
        loop {
            let command = tokio::select! {
                _ = stop.cancelled() => return,
                command = commands.recv() => command,
            };
            let Some(command) = command else { return };
            let (passed, refused) = admission.admit(command);
            for (instrument, message) in refused {
                tracing::info!(provider = name, %instrument, %message, "instrument refused before subscribing");
                events.reject(&instrument, ErrorCode::ProviderRejected, message).await;
            }
            if let Some(passed) = passed {
                if admitted_tx.send(passed).is_err() {
                    return;
                }
            }
        }
    };
    tokio::join!(run(wire, admitted_rx, events.clone(), stop.clone(), timing, link), screen);
}

fn apply(desired: &mut BTreeSet<String>, command: ProviderCommand) -> ProviderCommand {
    match &command {
        ProviderCommand::Subscribe(list) => desired.extend(list.iter().cloned()),
        ProviderCommand::Unsubscribe(list) => {
            for i in list {
                desired.remove(i);
            }
        }
    }
    command
}

/// One connection's life: connect, authenticate, subscribe, stream until it ends.
async fn session<W: Wire>(
    wire: &mut W,
    desired: &mut BTreeSet<String>,
    commands: &mut mpsc::UnboundedReceiver<ProviderCommand>,
    events: &EventSink,
    stop: &CancellationToken,
    timing: &Timing,
    link: &LinkSender,
) -> Ended {
    let request = match wire.request() {
        Ok(r) => r,
        Err(reason) => return Ended::Fatal { reason },
    };
    let connect = tokio::select! {
        _ = stop.cancelled() => return Ended::Stopped,
        r = timeout(timing.connect_timeout, tokio_tungstenite::connect_async(request)) => r,
    };
    let mut socket = match connect {
        Err(_) => return Ended::Lost { reason: "connect timed out".into(), healthy: false },
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            return if wire.is_auth_failure(status) {
                Ended::Fatal { reason: format!("upgrade refused with HTTP {status}: check the API key") }
            } else {
                Ended::Lost { reason: format!("upgrade refused with HTTP {status}"), healthy: false }
            };
        }
        Ok(Err(e)) => return Ended::Lost { reason: describe(&e), healthy: false },
        Ok(Ok((socket, _))) => socket,
    };
    let connected_at = Instant::now();
    let mut outgoing: VecDeque<String> = wire.on_open().into();
    let mut ready = !wire.waits_for_ready();
    if ready {
        outgoing.extend(subscribe_all(wire, desired));
        events.status(ProviderState::Live, None).await;
        publish(link, true, desired);
    }
    let pace = wire.min_send_interval();
    let mut next_send = Instant::now();
    let keepalive = wire.keepalive();
    let mut keepalive_at = keepalive.as_ref().map(|(every, _)| Instant::now() + *every);
    let mut last_frame = Instant::now();
    let idle_ping = wire.idle_ping();
    let mut last_ping = Instant::now();
    let retire_at = wire.max_connection_age().map(|age| connected_at + age);
    let lost = |reason: String| Ended::Lost { reason, healthy: connected_at.elapsed() >= timing.stable_after };

    loop {
        // Flush what may be sent now; paced providers get one frame per slot.
        while let Some(frame) = outgoing.front() {
            if pace.is_some() && Instant::now() < next_send {
                break;
            }
            if let Err(e) = socket.send(Message::text(frame.clone())).await {
                return lost(describe(&e));
            }
            outgoing.pop_front();
            if let Some(pace) = pace {
                next_send = Instant::now() + pace;
            }
        }
        let send_wake = if outgoing.is_empty() { None } else { Some(next_send) };
        let stale_at = last_frame + timing.stale_after;
        // Ping when idle for `every`, then again every `every` until something arrives.
        let ping_at = idle_ping.map(|every| last_frame.max(last_ping) + every);
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
                return Ended::Stopped;
            }
            _ = tokio::time::sleep_until(stale_at) => {
                return lost(format!("no data for {:?}", timing.stale_after));
            }
            _ = sleep_until_opt(retire_at) => {
                return Ended::Lost { reason: "maximum connection age reached".into(), healthy: true };
            }
            _ = sleep_until_opt(send_wake) => {}
            _ = sleep_until_opt(ping_at) => {
                if let Err(e) = socket.send(Message::Ping(Default::default())).await {
                    return lost(describe(&e));
                }
                last_ping = Instant::now();
            }
            _ = sleep_until_opt(keepalive_at) => {
                if let Some((every, frame)) = &keepalive {
                    outgoing.push_back(frame.clone());
                    keepalive_at = Some(Instant::now() + *every);
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { return Ended::Stopped };
                // Only send diffs once subscribed; before that, the full set goes out on Ready.
                match apply(desired, command) {
                    ProviderCommand::Subscribe(list) if ready => outgoing.extend(wire.subscribe(&list)),
                    ProviderCommand::Unsubscribe(list) if ready => outgoing.extend(wire.unsubscribe(&list)),
                    _ => {}
                }
                publish(link, ready, desired);
            }
            frame = socket.next() => {
                last_frame = Instant::now();
                let text = match frame {
                    None => return lost("connection closed".into()),
                    Some(Err(e)) => return lost(describe(&e)),
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        let reason = frame.map_or_else(|| "closed by upstream".to_owned(), |f| {
                            format!("closed by upstream ({} {})", u16::from(f.code), f.reason)
                        });
                        return lost(reason);
                    }
                    // tungstenite answers pings itself (with the same payload) on the next write or read.
                    Some(Ok(_)) => continue,
                };
                for event in wire.on_text(text.as_str()) {
                    match event {
                        WireEvent::Ready if !ready => {
                            ready = true;
                            outgoing.extend(subscribe_all(wire, desired));
                            events.status(ProviderState::Live, None).await;
                            publish(link, true, desired);
                        }
                        WireEvent::Ready => {}
                        WireEvent::Quotes(quotes) => events.quotes(quotes).await,
                        WireEvent::Event { instrument, payload, ts } => events.event(&instrument, payload, ts).await,
                        WireEvent::Rejected { instrument, code, message } => {
                            tracing::info!(provider = wire.name(), %instrument, %message, "upstream rejected instrument");
                            desired.remove(&instrument);
                            publish(link, ready, desired);
                            events.reject(&instrument, code, message).await;
                        }
                        WireEvent::Reply(frame) => outgoing.push_front(frame),
                        WireEvent::Reconnect { reason } => return lost(reason),
                        WireEvent::Fatal { reason } => return Ended::Fatal { reason },
                        WireEvent::Info(info) => tracing::debug!(provider = wire.name(), %info, "upstream says"),
                    }
                }
            }
        }
    }
}

fn subscribe_all<W: Wire>(wire: &mut W, desired: &BTreeSet<String>) -> Vec<String> {
    if desired.is_empty() {
        return Vec::new();
    }
    let all: Vec<String> = desired.iter().cloned().collect();
    wire.subscribe(&all)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A loggable description of a connection error that never includes the request URL (it may carry a key).
fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => format!("i/o error: {}", io.kind()),
        tungstenite::Error::Tls(_) => "TLS error".into(),
        tungstenite::Error::Url(_) => "invalid upstream URL".into(),
        tungstenite::Error::Http(r) => format!("HTTP {}", r.status().as_u16()),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => "connection closed".into(),
        tungstenite::Error::Protocol(p) => format!("protocol error: {p}"),
        tungstenite::Error::Capacity(c) => format!("frame too large: {c}"),
        _ => "websocket error".into(),
    }
}

/// Builds an upgrade request for `url` (which may contain a key) with extra headers.
pub fn request(url: &str, headers: &[(&str, &str)]) -> Result<Request, String> {
    let mut request = url.into_client_request().map_err(|_| "invalid upstream URL".to_owned())?;
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| "bad header name")?;
        let value = tungstenite::http::HeaderValue::from_str(value).map_err(|_| "bad header value")?;
        request.headers_mut().insert(name, value);
    }
    Ok(request)
}

/// Sleeps, returning early when `stop` fires. True if stopped.
pub async fn sleep_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_a_growing_capped_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let ceilings = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
        for ceiling in ceilings {
            let d = b.next_delay();
            assert!(d <= Duration::from_millis(ceiling), "{d:?} > {ceiling} ms");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn full_jitter_spreads_delays() {
        let mut delays: Vec<Duration> = (0..200)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
                b.next_delay()
            })
            .collect();
        delays.sort();
        assert!(delays[20] < Duration::from_millis(300), "low delays occur: {:?}", delays[20]);
        assert!(delays[180] > Duration::from_millis(700), "high delays occur: {:?}", delays[180]);
    }
}
