//! The page's one connection to the relay.
//!
//! Owns: the WebSocket (exactly one open at a time), reconnecting with [`Backoff`] (full jitter, reset after a
//! stable connection), resubscribing the whole watchlist after every `hello`, the application-level heartbeat
//! ([`Liveness`]: ping every half heartbeat, give up after two heartbeats of silence) and the REST fallback
//! (polling `/api/quotes` every [`REST_POLL_MS`] while the socket is down). A successful poll after failures
//! means the relay is back, so it cuts the backoff wait short instead of waiting out a long jittered delay.
//!
//! Does not own: the model. It reports [`ConnEvent`]s through a callback and takes [`Command`]s (watchlist
//! changes) through a channel; it keeps its own copy of the wanted symbols because it must resubscribe them
//! when the UI is not involved.
//!
//! The service is one `spawn_local` task; dropping the [`Connection`] aborts it, which drops (and so closes) the
//! socket and every timer with it.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::future::{abortable, AbortHandle, Either};
use futures::{select, FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::future::{IntervalStream, TimeoutFuture};
use hamster_shared::{ClientMessage, RequestId, ServerMessage, Symbol, MAX_SYMBOLS_PER_REQUEST};
use yew::Callback;

use super::api::Api;
use super::backoff::Backoff;
use super::heartbeat::{Liveness, Verdict};
use super::{config, marks, now_ms};
use crate::events::ConnEvent;

/// How often the REST fallback polls while the socket is down.
pub const REST_POLL_MS: u32 = 3_000;
/// How often an open socket checks its heartbeat. Fine-grained enough for the smallest heartbeat we accept.
const CHECK_EVERY_MS: u32 = 500;

/// A watchlist change for the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Subscribe(Vec<Symbol>),
    Unsubscribe(Vec<Symbol>),
}

/// The sending side of the command channel, handed to components through context. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Commands {
    tx: UnboundedSender<Command>,
}

impl PartialEq for Commands {
    fn eq(&self, other: &Self) -> bool {
        self.tx.same_receiver(&other.tx)
    }
}

impl Commands {
    /// A command channel; the receiver goes to [`Connection::start`]. Commands sent before the service runs
    /// wait in the channel.
    pub fn channel() -> (Commands, UnboundedReceiver<Command>) {
        let (tx, rx) = unbounded();
        (Commands { tx }, rx)
    }

    pub fn subscribe(&self, symbols: Vec<Symbol>) {
        // Fails only when the service is gone (page teardown); nothing to do then.
        let _ = self.tx.unbounded_send(Command::Subscribe(symbols));
    }

    pub fn unsubscribe(&self, symbols: Vec<Symbol>) {
        let _ = self.tx.unbounded_send(Command::Unsubscribe(symbols));
    }
}

/// The running service. Dropping it stops everything.
pub struct Connection {
    abort: AbortHandle,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

impl Connection {
    /// Resolves the relay's address, then connects and keeps connecting until dropped.
    pub fn start(commands: UnboundedReceiver<Command>, emit: Callback<ConnEvent>) -> Connection {
        let (task, abort) = abortable(run(commands, emit));
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
    /// What the user watches, in order.
    wanted: RefCell<Vec<Symbol>>,
    /// Refused by the relay; not worth polling over REST.
    refused: RefCell<HashSet<Symbol>>,
    /// A `hello` arrived on the current socket.
    live: Cell<bool>,
}

impl Shared {
    /// Applies a command; returns the symbols that actually changed, to forward to the relay.
    fn apply(&self, command: Command) -> Command {
        let mut wanted = self.wanted.borrow_mut();
        match command {
            Command::Subscribe(symbols) => {
                let mut added = vec![];
                for s in symbols {
                    if !wanted.contains(&s) {
                        wanted.push(s.clone());
                        added.push(s);
                    }
                }
                Command::Subscribe(added)
            }
            Command::Unsubscribe(symbols) => {
                let removed: Vec<Symbol> = symbols.into_iter().filter(|s| wanted.contains(s)).collect();
                wanted.retain(|s| !removed.contains(s));
                let mut refused = self.refused.borrow_mut();
                for s in &removed {
                    refused.remove(s);
                }
                Command::Unsubscribe(removed)
            }
        }
    }

    fn pollable(&self) -> Vec<Symbol> {
        let refused = self.refused.borrow();
        self.wanted.borrow().iter().filter(|s| !refused.contains(*s)).cloned().collect()
    }
}

async fn run(commands: UnboundedReceiver<Command>, emit: Callback<ConnEvent>) {
    let (endpoints, warning) = config::load().await;
    marks::mark(marks::MARK_RELAY_RESOLVED);
    let token = config::load_token();
    let ws_url = config::with_token(&endpoints.ws_url, token.as_deref());
    let api = Api::new(endpoints.http_base, token);
    emit.emit(ConnEvent::Endpoints { ws_url: endpoints.ws_url, api: api.clone(), warning });
    let shared = Rc::new(Shared::default());
    let (wake_tx, wake_rx) = unbounded();
    let socket = socket_loop(ws_url, commands, wake_rx, shared.clone(), emit.clone());
    let rest = rest_loop(api, wake_tx, shared, emit);
    futures::pin_mut!(socket, rest);
    // Neither loop ends on its own; if one did, the other would be useless alone.
    let _: Either<_, _> = futures::future::select(socket, rest).await;
}

enum SessionEnd {
    /// The socket is gone; `stable` if it had been live long enough to reset the backoff.
    Failed { reason: String, stable: bool },
    /// The command channel closed: the page is going away.
    Shutdown,
}

async fn socket_loop(
    url: String,
    mut commands: UnboundedReceiver<Command>,
    mut wake: UnboundedReceiver<()>,
    shared: Rc<Shared>,
    emit: Callback<ConnEvent>,
) {
    let mut backoff = Backoff::default();
    let mut next_id = 0u64;
    loop {
        emit.emit(ConnEvent::Connecting { attempt: backoff.attempt() });
        let end = match WebSocket::open(&url) {
            Ok(ws) => session(ws, &mut commands, &shared, &emit, &mut next_id).await,
            Err(e) => SessionEnd::Failed { reason: format!("cannot open socket: {e}"), stable: false },
        };
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
        let mut sleep = TimeoutFuture::new(u32::try_from(delay).unwrap_or(u32::MAX)).fuse();
        loop {
            select! {
                () = sleep => break,
                () = wake.select_next_some() => break,
                command = commands.next() => match command {
                    Some(c) => {
                        shared.apply(c);
                    }
                    None => return,
                },
            }
        }
    }
}

/// One socket from open to close.
async fn session(
    mut ws: WebSocket,
    commands: &mut UnboundedReceiver<Command>,
    shared: &Shared,
    emit: &Callback<ConnEvent>,
    next_id: &mut u64,
) -> SessionEnd {
    enum Step {
        Frame(Option<Result<Message, WebSocketError>>),
        Command(Option<Command>),
        Check,
    }
    let mut liveness = Liveness::new(now_ms());
    let mut checks = IntervalStream::new(CHECK_EVERY_MS).fuse();
    let mut last_error: Option<String> = None;
    loop {
        let step = select! {
            frame = ws.next().fuse() => Step::Frame(frame),
            command = commands.next() => Step::Command(command),
            _ = checks.select_next_some() => Step::Check,
        };
        let now = now_ms();
        let failed =
            |reason: String, liveness: &Liveness| SessionEnd::Failed { reason, stable: liveness.was_stable(now) };
        match step {
            Step::Frame(Some(Ok(Message::Text(text)))) => {
                liveness.on_frame(now);
                let msg = match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(msg) => msg,
                    Err(e) => {
                        // One unreadable frame (a newer relay's message, say) is not a reason to drop the socket.
                        emit.emit(ConnEvent::Warning(format!("ignored unreadable frame: {e}")));
                        continue;
                    }
                };
                let resubscribe = match &msg {
                    ServerMessage::Hello { heartbeat_ms, .. } => {
                        liveness.on_hello(now, *heartbeat_ms);
                        shared.live.set(true);
                        true
                    }
                    ServerMessage::Subscribed { symbols, rejected, .. } => {
                        let mut refused = shared.refused.borrow_mut();
                        for s in symbols {
                            refused.remove(s);
                        }
                        refused.extend(rejected.iter().filter_map(|r| Symbol::parse(&r.symbol).ok()));
                        false
                    }
                    _ => false,
                };
                emit.emit(ConnEvent::Server(msg));
                if resubscribe {
                    let all = shared.wanted.borrow().clone();
                    if let Err(e) = send_symbols(&mut ws, Command::Subscribe(all), next_id).await {
                        return failed(e, &liveness);
                    }
                }
            }
            // Binary frames are not part of the protocol; they still prove the socket alive.
            Step::Frame(Some(Ok(Message::Bytes(_)))) => liveness.on_frame(now),
            // The browser always follows `error` with `close`, which carries the code; wait for it.
            Step::Frame(Some(Err(WebSocketError::ConnectionError))) => {
                last_error = Some("connection error".into());
            }
            Step::Frame(Some(Err(WebSocketError::ConnectionClose(close)))) => {
                let mut reason = format!("closed (code {})", close.code);
                if !close.reason.is_empty() {
                    reason.push_str(&format!(": {}", close.reason));
                }
                return failed(reason, &liveness);
            }
            Step::Frame(Some(Err(other))) => return failed(other.to_string(), &liveness),
            Step::Frame(None) => return failed(last_error.unwrap_or_else(|| "closed".into()), &liveness),
            Step::Command(None) => return SessionEnd::Shutdown,
            Step::Command(Some(command)) => {
                let changed = shared.apply(command);
                if liveness.is_live() {
                    if let Err(e) = send_symbols(&mut ws, changed, next_id).await {
                        return failed(e, &liveness);
                    }
                }
            }
            Step::Check => match liveness.check(now) {
                Verdict::Fine => {}
                Verdict::SendPing => {
                    liveness.on_ping_sent(now);
                    if let Err(e) = send(&mut ws, &ClientMessage::Ping { id: None }).await {
                        return failed(e, &liveness);
                    }
                }
                Verdict::Dead(reason) => return failed(reason, &liveness),
            },
        }
    }
}

/// Sends a (un)subscribe for the symbols in `command`, split to the relay's per-command limit.
async fn send_symbols(ws: &mut WebSocket, command: Command, next_id: &mut u64) -> Result<(), String> {
    let (subscribe, symbols) = match command {
        Command::Subscribe(s) => (true, s),
        Command::Unsubscribe(s) => (false, s),
    };
    for chunk in symbols.chunks(MAX_SYMBOLS_PER_REQUEST) {
        *next_id += 1;
        let id = Some(RequestId::Num(*next_id));
        let symbols = chunk.iter().map(|s| s.as_str().to_owned()).collect();
        let msg = if subscribe {
            ClientMessage::Subscribe { id, symbols }
        } else {
            ClientMessage::Unsubscribe { id, symbols }
        };
        send(ws, &msg).await?;
    }
    Ok(())
}

async fn send(ws: &mut WebSocket, msg: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(msg).map_err(|e| format!("cannot encode command: {e}"))?;
    ws.send(Message::Text(text)).await.map_err(|e| format!("send failed: {e}"))
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

    #[wasm_bindgen_test(unsupported = test)]
    fn commands_forward_only_changes() {
        let shared = Shared::default();
        assert_eq!(
            shared.apply(Command::Subscribe(vec![sym("AAPL"), sym("MSFT")])),
            Command::Subscribe(vec![sym("AAPL"), sym("MSFT")])
        );
        assert_eq!(
            shared.apply(Command::Subscribe(vec![sym("AAPL"), sym("TSLA")])),
            Command::Subscribe(vec![sym("TSLA")])
        );
        shared.refused.borrow_mut().insert(sym("TSLA"));
        assert_eq!(shared.pollable(), vec![sym("AAPL"), sym("MSFT")]);
        assert_eq!(
            shared.apply(Command::Unsubscribe(vec![sym("TSLA"), sym("NOPE")])),
            Command::Unsubscribe(vec![sym("TSLA")])
        );
        assert!(shared.refused.borrow().is_empty());
        assert_eq!(*shared.wanted.borrow(), vec![sym("AAPL"), sym("MSFT")]);
    }
}
