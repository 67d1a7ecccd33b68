//! The page's one connection to the relay (the browser's one, when tabs share it: see below).
//!
//! Owns: the WebSocket (exactly one open at a time), reconnecting with [`Backoff`] (full jitter, reset after a
//! stable connection), subscribing the whole watchlist after every `hello` (resuming from the last update
//! seen of each symbol, [`ResumePoint`], so the relay sends what the page missed) and then only its changes, the
//! application-level heartbeat ([`Liveness`]: ping every half heartbeat, give up after two heartbeats of
//! silence) and the REST fallback (polling `/api/quotes` every [`REST_POLL_MS`] while the socket is down). A
//! successful poll after failures means the relay is back, so it cuts the backoff wait short instead of waiting
//! out a long jittered delay.
//!
//! Rows out of view and every row of a hidden tab are subscribed with `max_hz` ([`LIMITED_MAX_HZ`]): nobody
//! looks at those prices, so the relay sends each at most once a second, always its latest value, and the full
//! rate comes back as soon as the row scrolls near the viewport or the tab is shown (a subscribe again, which
//! changes nothing upstream).
//!
//! Frames are JSON text both ways. The relay also speaks MessagePack (the `hamster.msgpack` subprotocol) to
//! clients that offer it, but the page does not: MessagePack decodes no faster in the page's wasm
//! (docs/benchmarks.md), and its decoder was about a fifth of the page's code (docs/dashboard-performance.md).
//! A binary frame, which a relay sends only to a socket that offered the subprotocol, is reported and skipped.
//!
//! Besides subscriptions, the page can send other commands (a replay and its controls) through a
//! [`CommandSender`]; they go out on the current socket only, as the JSON they were encoded to
//! ([`EncodedCommand`]).
//!
//! Does not own: the model, and so not the watchlist either. The page sends the reducer's watchlist (and the
//! symbols the relay refused, which the poller skips) as a [`Wanted`] whenever it changes; the service keeps
//! only the latest one and works out the (un)subscribes from what it has asked for on the current socket. It
//! reports what happens as [`ConnEvent`]s through a callback.
//!
//! The service is one `spawn_local` task; dropping the [`Connection`] aborts it, which drops (and so closes) the
//! socket and every timer with it.
//!
//! It stays the one place that talks to the relay when a browser has several tabs of the page open: only the
//! leader tab runs it ([`super::tabs`]), for every tab at once. The leader gives it the union of the tabs' wants
//! as one [`Wanted`] (with every symbol some tab needs at the full rate in `full_rate`, so the leader tab's own
//! visibility does not slow the others), relays its [`ConnEvent`]s to the other tabs and sends their commands
//! through it. Follower tabs do not run it; the UI reaches either through the same interface
//! (`hooks::use_connection`).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::future::{abortable, AbortHandle, Either};
use futures::{select, FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::future::{IntervalStream, TimeoutFuture};
use hamster_shared::{ClientMessage, RequestId, Resume, ServerMessage, Symbol, MAX_SYMBOLS_PER_REQUEST};
use yew::Callback;

use super::api::Api;
use super::backoff::Backoff;
use super::heartbeat::{Liveness, Verdict};
use super::resume::ResumePoint;
use super::{config, marks, now_ms};
use crate::events::ConnEvent;

/// How often the REST fallback polls while the socket is down.
const REST_POLL_MS: u32 = 3_000;
/// Updates per second per symbol for rows out of view and while the tab is hidden.
pub(crate) const LIMITED_MAX_HZ: f64 = 1.0;
/// How often an open socket checks its heartbeat. Fine-grained enough for the smallest heartbeat we accept.
const CHECK_EVERY_MS: u32 = 500;

/// What the page wants from the relay, as the reducer has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Wanted {
    /// The watchlist, in display order.
    pub(crate) symbols: Rc<Vec<Symbol>>,
    /// Watched symbols the relay refused: not worth polling over REST.
    pub(crate) refused: HashSet<Symbol>,
    /// Watched symbols whose rows are out of view: asked for at [`LIMITED_MAX_HZ`].
    pub(crate) off_screen: Rc<HashSet<Symbol>>,
    /// Symbols that need every update wherever their row is (an alert watches them).
    pub(crate) full_rate: Rc<HashSet<Symbol>>,
}

/// The page's end of the service's input. What is sent before the service runs waits in the channel.
#[derive(Debug)]
pub(crate) struct WantedSender {
    tx: UnboundedSender<Wanted>,
}

impl WantedSender {
    /// A channel for [`Wanted`] values; the receiver goes to [`Connection::start`].
    pub(crate) fn channel() -> (WantedSender, UnboundedReceiver<Wanted>) {
        let (tx, rx) = unbounded();
        (WantedSender { tx }, rx)
    }

    pub(crate) fn send(&self, wanted: Wanted) {
        // Fails only when the service is gone (page teardown); nothing to do then.
        let _ = self.tx.unbounded_send(wanted);
    }
}

/// A command as it goes out: its JSON text, and its kind for messages about it. Encoded where it is made, so a
/// command from another tab travels as text and goes out as it came (`super::tabs`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedCommand {
    pub(crate) kind: String,
    pub(crate) json: String,
}

/// Commands the page sends on the current socket beyond subscriptions (a replay and its controls). They belong
/// to one socket: one that arrives while no socket is live is dropped with a warning rather than sent later to
/// a session that knows nothing of what came before.
#[derive(Debug)]
pub(crate) struct CommandSender {
    tx: UnboundedSender<EncodedCommand>,
}

impl CommandSender {
    /// A channel for commands; the receiver goes to [`Connection::start`].
    pub(crate) fn channel() -> (CommandSender, UnboundedReceiver<EncodedCommand>) {
        let (tx, rx) = unbounded();
        (CommandSender { tx }, rx)
    }

    pub(crate) fn send(&self, command: ClientMessage) {
        match serde_json::to_string(&command) {
            Ok(json) => self.send_encoded(EncodedCommand { kind: command.kind().to_owned(), json }),
            Err(e) => web_sys::console::warn_1(&format!("cannot encode {}: {e}", command.kind()).into()),
        }
    }

    pub(crate) fn send_encoded(&self, command: EncodedCommand) {
        // Fails only when the service is gone (page teardown); nothing to do then.
        let _ = self.tx.unbounded_send(command);
    }
}

/// The running service. Dropping it stops everything.
pub(crate) struct Connection {
    abort: AbortHandle,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

impl Connection {
    /// Resolves the relay's address, then connects and keeps connecting until dropped. `tap`, if given, gets
    /// every frame as it came, just before its [`ConnEvent::Server`] (the leader tab passes frames on as they
    /// are, rather than encoding every message again).
    pub(crate) fn start(
        wanted: UnboundedReceiver<Wanted>,
        commands: UnboundedReceiver<EncodedCommand>,
        emit: Callback<ConnEvent>,
        tap: Option<Callback<Message>>,
    ) -> Connection {
        let (task, abort) = abortable(run(wanted, commands, emit, tap));
        wasm_bindgen_futures::spawn_local(async move {
            // `Err(Aborted)` is the normal way to stop.
            let _ = task.await;
        });
        Connection { abort }
    }
}

/// What the socket loop and the REST poller share.
#[derive(Default)]
struct Shared {
    /// The latest [`Wanted`] from the page.
    wanted: RefCell<Wanted>,
    /// A `hello` arrived on the current socket.
    live: Cell<bool>,
}

/// Whether the page is hidden now (a background tab or a minimised window).
fn page_hidden() -> bool {
    web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden())
}

impl Shared {
    /// The watched symbols worth polling over REST, in watchlist order.
    fn pollable(&self) -> Vec<Symbol> {
        let wanted = self.wanted.borrow();
        wanted.symbols.iter().filter(|s| !wanted.refused.contains(*s)).cloned().collect()
    }

    fn symbols(&self) -> Rc<Vec<Symbol>> {
        Rc::clone(&self.wanted.borrow().symbols)
    }

    /// What the relay should be asked for now, given whether the tab is `hidden`.
    fn changes(&self, subscriptions: &mut Subscriptions, hidden: bool) -> Changes {
        let (off_screen, full) = {
            let wanted = self.wanted.borrow();
            (Rc::clone(&wanted.off_screen), Rc::clone(&wanted.full_rate))
        };
        subscriptions.update(&self.symbols(), |s| !full.contains(s) && (hidden || off_screen.contains(s)))
    }
}

/// What one socket has asked the relay for. A socket starts with nothing; after its `hello` the whole
/// watchlist is subscribed, and from then on only the differences are sent.
#[derive(Debug, Default)]
struct Subscriptions {
    sent: Rc<Vec<Symbol>>,
    /// Of `sent`, those asked for at [`LIMITED_MAX_HZ`].
    limited: HashSet<Symbol>,
}

/// The commands that bring the relay to what the page wants.
#[derive(Debug, Default, PartialEq)]
struct Changes {
    /// To unsubscribe, in the order they were subscribed.
    removed: Vec<Symbol>,
    /// To subscribe (or subscribe again) at the full rate, in watchlist order.
    full: Vec<Symbol>,
    /// To subscribe (or subscribe again) at [`LIMITED_MAX_HZ`], in watchlist order.
    limited: Vec<Symbol>,
}

impl Subscriptions {
    /// The changes from what was sent to `wanted`, with `limit` saying which symbols go at the low rate; the
    /// result is then taken as sent. A symbol already held is sent again only when its rate changes.
    fn update(&mut self, wanted: &Rc<Vec<Symbol>>, limit: impl Fn(&Symbol) -> bool) -> Changes {
        let want: HashSet<&Symbol> = wanted.iter().collect();
        let have: HashSet<&Symbol> = self.sent.iter().collect();
        let mut changes = Changes {
            removed: self.sent.iter().filter(|s| !want.contains(s)).cloned().collect(),
            ..Changes::default()
        };
        let mut limited = HashSet::new();
        for symbol in wanted.iter() {
            let low = limit(symbol);
            if !have.contains(symbol) || low != self.limited.contains(symbol) {
                if low {
                    changes.limited.push(symbol.clone());
                } else {
                    changes.full.push(symbol.clone());
                }
            }
            if low {
                limited.insert(symbol.clone());
            }
        }
        self.sent = Rc::clone(wanted);
        self.limited = limited;
        changes
    }
}

async fn run(
    wanted: UnboundedReceiver<Wanted>,
    commands: UnboundedReceiver<EncodedCommand>,
    emit: Callback<ConnEvent>,
    tap: Option<Callback<Message>>,
) {
    let (endpoints, warning) = config::load().await;
    marks::mark(marks::MARK_RELAY_RESOLVED);
    let token = config::load_token();
    let ws_url = config::with_token(&endpoints.ws_url, token.as_deref());
    let api = Api::new(endpoints.http_base, token);
    emit.emit(ConnEvent::Endpoints { ws_url: endpoints.ws_url, api: api.clone(), warning });
    let shared = Rc::new(Shared::default());
    let (wake_tx, wake_rx) = unbounded();
    let inputs = Inputs { wanted, commands, wake: wake_rx, tap };
    let socket = socket_loop(ws_url, inputs, shared.clone(), emit.clone());
    let rest = rest_loop(api, wake_tx, shared, emit);
    futures::pin_mut!(socket, rest);
    // Neither loop ends on its own; if one did, the other would be useless alone.
    let _: Either<_, _> = futures::future::select(socket, rest).await;
}

enum SessionEnd {
    /// The socket is gone; `stable` if it had been live long enough to reset the backoff.
    Failed { reason: String, stable: bool },
    /// The page's channel closed: the page is going away.
    Shutdown,
}

/// What the socket loop listens to besides its socket.
struct Inputs {
    wanted: UnboundedReceiver<Wanted>,
    commands: UnboundedReceiver<EncodedCommand>,
    /// Gets every frame as it came.
    tap: Option<Callback<Message>>,
    /// The REST poller found the relay back: stop waiting out the backoff.
    wake: UnboundedReceiver<()>,
}

/// The page's visibility changes, as `true` for hidden. The listener lives as long as the returned guard.
fn visibility_changes() -> (UnboundedReceiver<bool>, Option<gloo_events::EventListener>) {
    let (tx, rx) = unbounded();
    let listener = web_sys::window().and_then(|w| w.document()).map(|document| {
        gloo_events::EventListener::new(&document, "visibilitychange", move |_| {
            let _ = tx.unbounded_send(page_hidden());
        })
    });
    (rx, listener)
}

/// Connects, and reconnects after the backoff wait, until the page goes away. One loop for the socket and the
/// wait between sockets, waiting on every input at one point: while connected each input is a [`Step`] of the
/// [`Session`], while waiting the page's wants are kept for the next socket and its commands are dropped with a
/// warning.
async fn socket_loop(url: String, inputs: Inputs, shared: Rc<Shared>, emit: Callback<ConnEvent>) {
    let Inputs { mut wanted, mut commands, mut wake, tap } = inputs;
    let mut backoff = Backoff::default();
    let (mut visibility, _listener) = visibility_changes();
    let mut checks = IntervalStream::new(CHECK_EVERY_MS).fuse();
    let mut session = Session {
        shared: &shared,
        emit: &emit,
        tap: tap.as_ref(),
        next_id: 0,
        resume: ResumePoint::default(),
        liveness: Liveness::new(now_ms()),
        last_error: None,
        subscriptions: Subscriptions::default(),
        hidden: false,
    };
    let mut socket: Option<WebSocket> = None;
    let mut sleep = futures::future::Fuse::terminated();
    let mut connect = true;
    loop {
        let mut end = None;
        if connect {
            connect = false;
            emit.emit(ConnEvent::Connecting { attempt: backoff.attempt() });
            match WebSocket::open(&url) {
                Ok(ws) => {
                    socket = Some(ws);
                    session.opened();
                }
                Err(e) => end = Some(SessionEnd::Failed { reason: format!("cannot open socket: {e}"), stable: false }),
            }
        }
        if end.is_none() {
            let step = select! {
                frame = next_frame(&mut socket).fuse() => Step::Frame(frame),
                latest = wanted.next() => Step::Wanted(latest),
                command = commands.select_next_some() => Step::Command(command),
                now_hidden = visibility.select_next_some() => Step::Hidden(now_hidden),
                _ = checks.select_next_some() => Step::Check,
                () = sleep => Step::Retry,
                () = wake.select_next_some() => Step::Retry,
            };
            let now = now_ms();
            match (socket.as_mut(), step) {
                (_, Step::Wanted(None)) => return,
                (Some(ws), step) => match session.step(step, now) {
                    Ok(texts) => {
                        for text in texts {
                            if let Err(e) = ws.send(Message::Text(text)).await {
                                end = Some(session.failed(format!("send failed: {e}"), now));
                                break;
                            }
                        }
                    }
                    Err(e) => end = Some(e),
                },
                (None, Step::Wanted(Some(w))) => *shared.wanted.borrow_mut() = w,
                (None, Step::Command(command)) => {
                    emit.emit(ConnEvent::Warning(format!("not connected: {} not sent", command.kind)));
                }
                (None, Step::Retry) => {
                    sleep = futures::future::Fuse::terminated();
                    connect = true;
                }
                (None, Step::Frame(_) | Step::Hidden(_) | Step::Check) => {}
            }
        }
        let Some(end) = end else { continue };
        socket = None;
        shared.live.set(false);
        let (reason, stable) = match end {
            SessionEnd::Failed { reason, stable } => (reason, stable),
            SessionEnd::Shutdown => return,
        };
        if stable {
            backoff.reset();
        }
        let delay = backoff.next_delay_ms(js_sys::Math::random());
        emit.emit(ConnEvent::Closed { reason, attempt: backoff.attempt(), retry_in_ms: delay });
        // A wake-up that arrived while we were connected is about an older outage.
        while wake.try_recv().is_ok() {}
        sleep = TimeoutFuture::new(u32::try_from(delay).unwrap_or(u32::MAX)).fuse();
    }
}

/// The next frame of the socket; never, while there is none.
async fn next_frame(socket: &mut Option<WebSocket>) -> Option<Result<Message, WebSocketError>> {
    match socket {
        Some(ws) => ws.next().await,
        None => futures::future::pending().await,
    }
}

/// What wakes a socket's loop.
enum Step {
    Frame(Option<Result<Message, WebSocketError>>),
    Wanted(Option<Wanted>),
    Command(EncodedCommand),
    Hidden(bool),
    Check,
    /// The wait before the next attempt is over (or the REST poller found the relay back).
    Retry,
}

/// The socket loop's state besides the socket itself: what lasts across sockets (request ids, where to resume)
/// and the current socket's (from `liveness` on, reset by [`Session::opened`]). Each [`Step`] of a socket is
/// handled here, without awaiting anything: what it has to send comes back as text and goes out at the loop's
/// one sending point, which keeps the loop's state machine small.
struct Session<'a> {
    shared: &'a Shared,
    emit: &'a Callback<ConnEvent>,
    tap: Option<&'a Callback<Message>>,
    next_id: u64,
    resume: ResumePoint,
    liveness: Liveness,
    last_error: Option<String>,
    subscriptions: Subscriptions,
    hidden: bool,
}

impl Session<'_> {
    /// A new socket: nothing heard or asked for on it yet.
    fn opened(&mut self) {
        self.liveness = Liveness::new(now_ms());
        self.last_error = None;
        self.subscriptions = Subscriptions::default();
        self.hidden = page_hidden();
    }

    fn failed(&self, reason: String, now: i64) -> SessionEnd {
        SessionEnd::Failed { reason, stable: self.liveness.was_stable(now) }
    }

    /// The frames to send for the subscriptions to match what the page wants, with `resume` on a new socket.
    fn changes(&mut self, resume: Option<&Resume>, now: i64) -> Result<Vec<String>, SessionEnd> {
        let changes = self.shared.changes(&mut self.subscriptions, self.hidden);
        encode_changes(changes, resume, &mut self.next_id).map_err(|e| self.failed(e, now))
    }

    /// Handles one step: the frames to send, in order, or the end of the socket.
    fn step(&mut self, step: Step, now: i64) -> Result<Vec<String>, SessionEnd> {
        match step {
            Step::Frame(Some(Ok(frame))) => {
                self.liveness.on_frame(now);
                let decoded = decode(&frame);
                if let Some(tap) = self.tap {
                    tap.emit(frame);
                }
                let msg = match decoded {
                    Ok(msg) => msg,
                    Err(e) => {
                        // One unreadable frame (a newer relay's message, say) is not a reason to drop the socket.
                        self.emit.emit(ConnEvent::Warning(format!("ignored unreadable frame: {e}")));
                        return Ok(Vec::new());
                    }
                };
                self.resume.observe(&msg);
                let hello = match &msg {
                    ServerMessage::Hello { heartbeat_ms, epoch, .. } => {
                        self.liveness.on_hello(now, *heartbeat_ms);
                        self.shared.live.set(true);
                        Some(*epoch)
                    }
                    _ => None,
                };
                self.emit.emit(ConnEvent::Server(msg));
                match hello {
                    Some(epoch) => {
                        // A new session on the relay's side (or a relay that restarted): nothing is subscribed yet.
                        self.subscriptions = Subscriptions::default();
                        let point = self.resume.on_hello(epoch, &self.shared.symbols());
                        self.changes(point.as_ref(), now)
                    }
                    None => Ok(Vec::new()),
                }
            }
            // The browser always follows `error` with `close`, which carries the code; wait for it.
            Step::Frame(Some(Err(WebSocketError::ConnectionError))) => {
                self.last_error = Some("connection error".into());
                Ok(Vec::new())
            }
            Step::Frame(Some(Err(WebSocketError::ConnectionClose(close)))) => {
                let mut reason = format!("closed (code {})", close.code);
                if !close.reason.is_empty() {
                    reason.push_str(&format!(": {}", close.reason));
                }
                Err(self.failed(reason, now))
            }
            Step::Frame(Some(Err(other))) => Err(self.failed(other.to_string(), now)),
            Step::Frame(None) => {
                let reason = self.last_error.take().unwrap_or_else(|| "closed".into());
                Err(self.failed(reason, now))
            }
            Step::Wanted(None) => Err(SessionEnd::Shutdown),
            Step::Wanted(Some(latest)) => {
                *self.shared.wanted.borrow_mut() = latest;
                if self.liveness.is_live() {
                    self.changes(None, now)
                } else {
                    Ok(Vec::new())
                }
            }
            Step::Hidden(now_hidden) if now_hidden != self.hidden => {
                self.hidden = now_hidden;
                if self.liveness.is_live() {
                    // Subscribing again to what is held only changes its rate.
                    self.changes(None, now)
                } else {
                    Ok(Vec::new())
                }
            }
            Step::Hidden(_) => Ok(Vec::new()),
            // A wake-up while connected is about an older outage.
            Step::Retry => Ok(Vec::new()),
            Step::Command(command) => {
                if self.liveness.is_live() {
                    Ok(vec![command.json])
                } else {
                    self.emit.emit(ConnEvent::Warning(format!("not connected yet: {} not sent", command.kind)));
                    Ok(Vec::new())
                }
            }
            Step::Check => match self.liveness.check(now) {
                Verdict::Fine => Ok(Vec::new()),
                Verdict::SendPing => {
                    self.liveness.on_ping_sent(now);
                    // The id is the send time, which the pong echoes: with the relay's time in the pong, that is
                    // all the latency estimate needs (`super::latency`).
                    let id = u64::try_from(now_ms()).ok().map(RequestId::Num);
                    let text = encode(&ClientMessage::Ping { id }).map_err(|e| self.failed(e, now))?;
                    Ok(vec![text])
                }
                Verdict::Dead(reason) => Err(self.failed(reason, now)),
            },
        }
    }
}

/// Reads one frame: the protocol is JSON text; a binary frame is not (the page never offers MessagePack).
pub(crate) fn decode(frame: &Message) -> Result<ServerMessage, String> {
    match frame {
        Message::Text(text) => ServerMessage::from_json(text).map_err(|e| e.to_string()),
        Message::Bytes(bytes) => Err(format!("a binary frame of {} bytes (the page speaks JSON only)", bytes.len())),
    }
}

/// Which way an [`encode_symbols`] goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Request<'a> {
    /// With where to resume from (on a new socket) and the rate limit, if any.
    Subscribe {
        resume: Option<&'a Resume>,
        max_hz: Option<f64>,
    },
    Unsubscribe,
}

/// Encodes `changes`: unsubscribes first, then subscribes at each rate (with `resume` on a new socket).
fn encode_changes(changes: Changes, resume: Option<&Resume>, next_id: &mut u64) -> Result<Vec<String>, String> {
    let mut texts = Vec::new();
    encode_symbols(&mut texts, Request::Unsubscribe, &changes.removed, next_id)?;
    encode_symbols(&mut texts, Request::Subscribe { resume, max_hz: None }, &changes.full, next_id)?;
    encode_symbols(&mut texts, Request::Subscribe { resume, max_hz: Some(LIMITED_MAX_HZ) }, &changes.limited, next_id)?;
    Ok(texts)
}

/// Encodes a (un)subscribe for `symbols`, split to the relay's per-command limit; nothing when there are none.
fn encode_symbols(
    texts: &mut Vec<String>,
    request: Request<'_>,
    symbols: &[Symbol],
    next_id: &mut u64,
) -> Result<(), String> {
    for chunk in symbols.chunks(MAX_SYMBOLS_PER_REQUEST) {
        *next_id += 1;
        let id = Some(RequestId::Num(*next_id));
        let symbols = chunk.iter().map(|s| s.as_str().to_owned()).collect();
        let msg = match request {
            Request::Subscribe { resume, max_hz } => {
                let resume = ResumePoint::part(resume, chunk);
                ClientMessage::Subscribe { id, symbols, resume, max_hz }
            }
            Request::Unsubscribe => ClientMessage::Unsubscribe { id, symbols },
        };
        texts.push(encode(&msg)?);
    }
    Ok(())
}

fn encode(msg: &ClientMessage) -> Result<String, String> {
    serde_json::to_string(msg).map_err(|e| format!("cannot encode command: {e}"))
}

/// Polls `/api/quotes` while the socket is down.
async fn rest_loop(api: Api, wake: UnboundedSender<()>, shared: Rc<Shared>, emit: Callback<ConnEvent>) {
    // Whether the previous poll reached the relay: the first poll that does after one that did not (or after
    // the socket dropped) means the relay is back, worth an immediate reconnect instead of the backoff wait.
    let mut reached_before = false;
    loop {
        TimeoutFuture::new(REST_POLL_MS).await;
        if shared.live.get() {
            reached_before = false;
            continue;
        }
        let symbols = shared.pollable();
        if symbols.is_empty() {
            continue;
        }
        let result = api.quotes(&symbols).await;
        if shared.live.get() {
            // The socket came back while we were polling; its data is newer.
            continue;
        }
        match result {
            Ok(quotes) => {
                if !reached_before {
                    let _ = wake.unbounded_send(());
                }
                reached_before = true;
                emit.emit(ConnEvent::RestQuotes(quotes));
            }
            Err(e) => {
                // An error *response* still proves the relay is up (e.g. a watchlist symbol it refuses failed
                // the whole poll): worth a reconnect attempt, though not a working fallback.
                if e.reachable && !reached_before {
                    let _ = wake.unbounded_send(());
                }
                reached_before = e.reachable;
                emit.emit(ConnEvent::RestFailed(e.message));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).expect("valid test symbol")
    }

    /// `(removed, added)` at the full rate, nothing limited.
    fn full(subs: &mut Subscriptions, wanted: Vec<Symbol>) -> (Vec<Symbol>, Vec<Symbol>) {
        let changes = subs.update(&Rc::new(wanted), |_| false);
        assert!(changes.limited.is_empty());
        (changes.removed, changes.full)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn subscriptions_send_only_differences() {
        let mut subs = Subscriptions::default();
        let (removed, added) = full(&mut subs, vec![sym("AAPL"), sym("MSFT")]);
        assert_eq!((removed, added), (vec![], vec![sym("AAPL"), sym("MSFT")]));
        let (removed, added) = full(&mut subs, vec![sym("AAPL"), sym("MSFT"), sym("TSLA")]);
        assert_eq!((removed, added), (vec![], vec![sym("TSLA")]));
        let (removed, added) = full(&mut subs, vec![sym("AAPL"), sym("TSLA")]);
        assert_eq!((removed, added), (vec![sym("MSFT")], vec![]));
        let (removed, added) = full(&mut subs, vec![sym("AAPL"), sym("TSLA")]);
        assert_eq!((removed, added), (vec![], vec![]), "an unchanged list sends nothing");
        let (removed, added) = full(&mut subs, vec![sym("NVDA")]);
        assert_eq!((removed, added), (vec![sym("AAPL"), sym("TSLA")], vec![sym("NVDA")]));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_symbol_is_sent_again_only_when_its_rate_changes() {
        let mut subs = Subscriptions::default();
        let list = Rc::new(vec![sym("AAPL"), sym("MSFT"), sym("TSLA")]);
        let changes = subs.update(&list, |s| *s == sym("TSLA"));
        assert_eq!(changes.full, [sym("AAPL"), sym("MSFT")]);
        assert_eq!(changes.limited, [sym("TSLA")], "a row out of view starts at the low rate");
        assert_eq!(subs.update(&list, |s| *s == sym("TSLA")), Changes::default(), "nothing changed");
        // The tab is hidden: everything not already limited goes to the low rate.
        let changes = subs.update(&list, |_| true);
        assert_eq!((changes.full, changes.limited), (vec![], vec![sym("AAPL"), sym("MSFT")]));
        // Shown again, with TSLA scrolled into view.
        let changes = subs.update(&list, |_| false);
        assert_eq!(changes.full, [sym("AAPL"), sym("MSFT"), sym("TSLA")]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn text_frames_are_json_and_binary_frames_are_refused() {
        let pong = ServerMessage::Pong { id: Some(RequestId::Num(4)), ts: Some(9) };
        assert_eq!(decode(&Message::Text(pong.to_json())), Ok(pong));
        assert!(decode(&Message::Bytes(vec![0x81, 0xa4])).is_err(), "reported, not a panic");
    }

    /// Unit enums are read by name in the wasm (`hamster_shared`'s `names_deserialize`), not by serde's derive
    /// as on the host: this runs in the browser too.
    #[wasm_bindgen_test(unsupported = test)]
    fn frames_with_named_values_read_as_the_relay_wrote_them() {
        use hamster_shared::broker::{OrderRejectCode, OrderStatus, OrderType, Side, TimeInForce};
        use hamster_shared::{ErrorCode, ProviderState, ReplayPhase};
        let read = |text: &str| decode(&Message::Text(text.to_owned()));
        let status = read(r#"{"type":"status","provider":"sim","state":"reconnecting","since":1}"#);
        assert!(matches!(status, Ok(ServerMessage::Status { state: ProviderState::Reconnecting, .. })), "{status:?}");
        let error = read(r#"{"type":"error","code":"too_many_symbols","message":"x"}"#);
        assert!(matches!(error, Ok(ServerMessage::Error { code: ErrorCode::TooManySymbols, .. })), "{error:?}");
        let newer = read(r#"{"type":"error","code":"from_a_newer_relay","message":"x"}"#);
        assert!(matches!(newer, Ok(ServerMessage::Error { code: ErrorCode::Unknown, .. })), "{newer:?}");
        let replay =
            read(r#"{"type":"replay_state","phase":"paused","from":1,"to":2,"position":1,"speed":1.0,"played":0}"#);
        assert!(matches!(replay, Ok(ServerMessage::ReplayState { phase: ReplayPhase::Paused, .. })), "{replay:?}");
        let rejected = read(r#"{"type":"order_rejected","code":"insufficient_qty","message":"x"}"#);
        let Ok(ServerMessage::OrderRejected { reject, .. }) = rejected else { panic!("{rejected:?}") };
        assert_eq!(reject.code, OrderRejectCode::InsufficientQty);
        let order = read(
            r#"{"type":"order","order":{"id":"o1","symbol":"AAPL","qty":1.0,"filled_qty":0.0,"side":"sell",
            "type":"trailing_stop","time_in_force":"ioc","order_class":"bracket","status":"partially_filled",
            "created_at":1,"updated_at":1}}"#,
        );
        let Ok(ServerMessage::Order { order, .. }) = order else { panic!("{order:?}") };
        assert_eq!(
            (order.side, order.order_type, order.time_in_force, order.status),
            (Side::Sell, OrderType::TrailingStop, TimeInForce::Ioc, OrderStatus::PartiallyFilled)
        );
        assert_eq!(order.order_class, hamster_shared::broker::OrderClass::Bracket);
        for bad in [
            r#"{"type":"status","provider":"sim","state":"asleep","since":1}"#,
            r#"{"type":"status","provider":"sim","state":3,"since":1}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refused_symbols_are_not_polled() {
        let shared = Shared::default();
        *shared.wanted.borrow_mut() = Wanted {
            symbols: Rc::new(vec![sym("AAPL"), sym("nosuch:X"), sym("MSFT")]),
            refused: HashSet::from([sym("nosuch:X")]),
            off_screen: Rc::default(),
            full_rate: Rc::default(),
        };
        assert_eq!(shared.pollable(), vec![sym("AAPL"), sym("MSFT")]);
    }
}
