//! The reconnecting upstream WebSocket connection that every streaming adapter runs on.
//!
//! An adapter describes only its wire protocol through the [`Wire`] trait ([`wire`]) and is run by
//! [`Streaming`], the one [`Provider`] implementation for all of them. This module owns everything else, the
//! same way for every provider:
//!
//! * admission: every subscribe is screened by the wire's [`Wire::admit`] and [`Wire::capacity`] at once
//!   ([`demand`]), connected or not; refused instruments are rejected to their subscribers and never sent;
//! * one connection at a time; on loss, reconnect with exponential backoff and **full jitter** ([`timing`]),
//!   reset after a stable period;
//! * the admitted set survives reconnects and is resubscribed in full on every new connection; subscription
//!   diffs are applied live while connected;
//! * a staleness watchdog: no frame at all for `stale_after` means a silent, half-dead socket, so reconnect;
//! * keep-alives the protocol asks for and answers to the server, which jump the queue, and pacing of outgoing
//!   frames where the provider limits client messages per second; subscription changes wait as merged diffs
//!   until a send slot is free ([`send_queue`]), so a burst of client commands costs one frame, not one each;
//! * state changes reported as `status` (connecting → live → reconnecting …, or down with a reason when the
//!   provider refuses our credentials — retried slowly, never in a hot loop);
//! * isolation of a subscribe request the provider refused as a whole: its instruments are retried in halves,
//!   paced like any other frame, until the culprit is found and rejected alone ([`isolate`]), so valid
//!   instruments of the same request still subscribe;
//! * a [`Link`] that adapters running beside the stream (Twelve Data's REST fallback) can watch, and so does the
//!   provider's history [`Backfill`], if it has one.
//!
//! Keys live inside the adapter's request and are never logged: errors are reported by kind, not by URL.

pub(crate) mod demand;
mod isolate;
mod send_queue;
pub(crate) mod timing;
pub(crate) mod wire;

use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use hamster_shared::ProviderState;
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use self::demand::{Admitted, Desired};
use self::send_queue::SendQueue;
use self::timing::{Backoff, Timing};
pub(crate) use self::wire::{request, Capacity, Refusal, Wire, WireEvent};
use super::backfill::Backfill;
use super::{EventSink, Provider, ProviderCommand};
use crate::catalog::CatalogSource;

/// What tasks running beside the stream (e.g. a REST fallback) can see of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Link {
    /// The stream is connected and subscribed.
    pub(crate) live: bool,
    /// The instruments currently wanted (admitted).
    pub(crate) desired: Vec<String>,
}

/// A task that runs beside the stream for as long as the provider runs, watching its [`Link`].
pub(crate) type Beside =
    Box<dyn FnOnce(watch::Receiver<Link>, EventSink, CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A provider that is one upstream WebSocket speaking `W`, optionally with a task beside it.
pub(crate) struct Streaming<W: Wire> {
    wire: W,
    timing: Timing,
    beside: Option<Beside>,
    catalog: Option<CatalogSource>,
    backfill: Option<Backfill>,
}

impl<W: Wire> Streaming<W> {
    pub(crate) fn new(wire: W, timing: Timing) -> Streaming<W> {
        Streaming { wire, timing, beside: None, catalog: None, backfill: None }
    }

    /// Fetches the past of every newly wanted instrument ([`super::backfill`]).
    pub(crate) fn with_backfill(mut self, backfill: Backfill) -> Streaming<W> {
        self.backfill = Some(backfill);
        self
    }

    /// Offers the provider's instrument list ([`crate::catalog`]).
    pub(crate) fn with_catalog(mut self, source: CatalogSource) -> Streaming<W> {
        self.catalog = Some(source);
        self
    }

    /// Runs `task` beside the stream.
    pub(crate) fn with_beside(mut self, task: Beside) -> Streaming<W> {
        self.beside = Some(task);
        self
    }
}

impl<W: Wire> Provider for Streaming<W> {
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn catalog(&self) -> Option<CatalogSource> {
        self.catalog.clone()
    }

    fn run(
        self: Box<Self>,
        commands: mpsc::UnboundedReceiver<ProviderCommand>,
        events: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        let Streaming { wire, timing, beside, backfill, .. } = *self;
        let (link, watcher) = watch::channel(Link::default());
        let stream = run(wire, commands, events.clone(), stop.clone(), timing, link);
        let backfill = backfill.map(|b| b.run(watcher.clone(), events.clone(), stop.clone()));
        let beside = beside.map(|task| task(watcher, events, stop));
        async move {
            let optional = |task: Option<BoxFuture<'static, ()>>| async move {
                if let Some(task) = task {
                    task.await;
                }
            };
            tokio::join!(stream, optional(beside), optional(backfill.map(FutureExt::boxed)));
        }
        .boxed()
    }
}

fn publish(link: &watch::Sender<Link>, live: bool, desired: &Desired) {
    let desired = desired.all();
    link.send_if_modified(|l| {
        let changed = l.live != live || l.desired != desired;
        *l = Link { live, desired: desired.clone() };
        changed
    });
}

/// How a connection ended.
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

/// What the driver keeps across connections.
struct Driver<W: Wire> {
    wire: W,
    desired: Desired,
    events: EventSink,
    link: watch::Sender<Link>,
}

impl<W: Wire> Driver<W> {
    /// Applies a command to the admitted set, rejecting what the wire refuses; returns the change to send
    /// upstream (only instruments that were newly admitted or actually held).
    async fn apply(&mut self, command: ProviderCommand) -> ProviderCommand {
        match command {
            ProviderCommand::Subscribe(list) => {
                let Admitted { added, refused } = self.desired.subscribe(&self.wire, list);
                for (instrument, refusal) in refused {
                    tracing::info!(provider = W::NAME, %instrument, message = %refusal.message, "instrument refused");
                    self.events.reject(&instrument, refusal.code, refusal.message).await;
                }
                ProviderCommand::Subscribe(added)
            }
            ProviderCommand::Unsubscribe(list) => ProviderCommand::Unsubscribe(self.desired.unsubscribe(list)),
        }
    }
}

/// Runs `wire` until `stop` fires, keeping one connection up and the admitted instruments subscribed.
async fn run<W: Wire>(
    wire: W,
    mut commands: mpsc::UnboundedReceiver<ProviderCommand>,
    events: EventSink,
    stop: CancellationToken,
    timing: Timing,
    link: watch::Sender<Link>,
) {
    let mut driver = Driver { wire, desired: Desired::default(), events, link };
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
            driver.events.status(state, reason).await;
        }
        announced = None;
        first = false;
        let ended = connect_and_stream(&mut driver, &mut commands, &stop, &timing).await;
        publish(&driver.link, false, &driver.desired);
        let wait = match ended {
            Ended::Stopped => return,
            Ended::Lost { reason, healthy } => {
                last_reason = Some(reason.clone());
                if healthy {
                    backoff.reset();
                }
                let wait = backoff.next_delay();
                tracing::warn!(provider = W::NAME, %reason, ?wait, "upstream connection lost; reconnecting");
                driver.events.status(ProviderState::Reconnecting, Some(reason)).await;
                announced = Some(ProviderState::Reconnecting);
                wait
            }
            Ended::Fatal { reason } => {
                tracing::error!(provider = W::NAME, %reason, retry = ?timing.down_retry, "upstream refused us");
                driver.events.status(ProviderState::Down, Some(reason)).await;
                timing.down_retry
            }
        };
        // Keep admitting while waiting, so refusals are immediate and the reconnect subscribes what is wanted then.
        let deadline = Instant::now() + wait;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => break,
                command = commands.recv() => match command {
                    Some(command) => {
                        driver.apply(command).await;
                        publish(&driver.link, false, &driver.desired);
                    }
                    None => return,
                },
            }
        }
    }
}

/// One connection's life: connect, authenticate, subscribe, stream until it ends.
async fn connect_and_stream<W: Wire>(
    driver: &mut Driver<W>,
    commands: &mut mpsc::UnboundedReceiver<ProviderCommand>,
    stop: &CancellationToken,
    timing: &Timing,
) -> Ended {
    // In a cluster, only the holder of the provider's lease may connect: an ex-owner that wakes up late (a
    // paused process, a partition) must not open a second connection beside the new owner's.
    if !driver.events.may_connect() {
        tracing::info!(provider = W::NAME, "not connecting upstream: this node no longer holds the provider's lease");
        return Ended::Stopped;
    }
    let request = match driver.wire.request() {
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
            return if driver.wire.is_auth_failure(status) {
                Ended::Fatal { reason: format!("upgrade refused with HTTP {status}: check the API key") }
            } else {
                Ended::Lost { reason: format!("upgrade refused with HTTP {status}"), healthy: false }
            };
        }
        Ok(Err(e)) => return Ended::Lost { reason: describe(&e), healthy: false },
        Ok(Ok((socket, _))) => socket,
    };
    let connected_at = Instant::now();
    let mut outgoing = SendQueue::default();
    for frame in driver.wire.on_open() {
        outgoing.urgent(frame);
    }
    let mut ready = !driver.wire.waits_for_ready();
    if ready {
        outgoing.subscribe(driver.desired.all());
        driver.events.status(ProviderState::Live, None).await;
        publish(&driver.link, true, &driver.desired);
    }
    let pace = driver.wire.min_send_interval();
    let mut next_send = Instant::now();
    let keepalive = driver.wire.keepalive();
    let mut keepalive_at = keepalive.as_ref().map(|(every, _)| Instant::now() + *every);
    let mut last_frame = Instant::now();
    let idle_ping = driver.wire.idle_ping();
    let mut last_ping = Instant::now();
    let retire_at = driver.wire.max_connection_age().map(|age| connected_at + age);
    let lost = |reason: String| Ended::Lost { reason, healthy: connected_at.elapsed() >= timing.stable_after };

    loop {
        // Flush what may be sent now; paced providers get one frame per slot.
        while pace.is_none() || Instant::now() >= next_send {
            let Some(frame) = outgoing.pop(&mut driver.wire) else { break };
            if let Err(e) = socket.send(Message::text(frame)).await {
                return lost(describe(&e));
            }
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
                    outgoing.urgent(frame.clone());
                    keepalive_at = Some(Instant::now() + *every);
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { return Ended::Stopped };
                // Only send diffs once subscribed; before that, the full set goes out on Ready.
                match driver.apply(command).await {
                    ProviderCommand::Subscribe(list) if ready => outgoing.subscribe(list),
                    ProviderCommand::Unsubscribe(list) if ready => outgoing.unsubscribe(list),
                    _ => {}
                }
                publish(&driver.link, ready, &driver.desired);
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
                for event in driver.wire.on_text(text.as_str()) {
                    match event {
                        WireEvent::Ready if !ready => {
                            ready = true;
                            outgoing.subscribe(driver.desired.all());
                            driver.events.status(ProviderState::Live, None).await;
                            publish(&driver.link, true, &driver.desired);
                        }
                        WireEvent::Ready => {}
                        WireEvent::Quotes(quotes) => driver.events.quotes(quotes).await,
                        WireEvent::Event { instrument, payload, ts } => {
                            driver.events.event(&instrument, payload, ts).await;
                        }
                        WireEvent::Rejected { instrument, code, message } => {
                            tracing::info!(provider = W::NAME, %instrument, %message, "upstream rejected instrument");
                            driver.desired.remove(&instrument);
                            outgoing.forget(&instrument);
                            publish(&driver.link, ready, &driver.desired);
                            driver.events.reject(&instrument, code, message).await;
                        }
                        WireEvent::RequestRefused { instruments, code, message } => {
                            let isolation = isolate::isolate(&driver.desired, instruments);
                            if !isolation.retry.is_empty() {
                                let sizes: Vec<usize> = isolation.retry.iter().map(Vec::len).collect();
                                tracing::info!(provider = W::NAME, %message, ?sizes, "request refused; retrying in halves");
                            }
                            for batch in isolation.retry {
                                outgoing.isolated(batch);
                            }
                            for instrument in isolation.culprits {
                                tracing::info!(provider = W::NAME, %instrument, %message, "upstream refused instrument");
                                driver.desired.remove(&instrument);
                                outgoing.forget(&instrument);
                                driver.events.reject(&instrument, code, message.clone()).await;
                            }
                            publish(&driver.link, ready, &driver.desired);
                        }
                        WireEvent::Reply(frame) => outgoing.urgent(frame),
                        WireEvent::Reconnect { reason } => return lost(reason),
                        WireEvent::Fatal { reason } => return Ended::Fatal { reason },
                        WireEvent::Info(info) => tracing::debug!(provider = W::NAME, %info, "upstream says"),
                    }
                }
            }
        }
    }
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
