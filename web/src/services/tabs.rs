//! One relay connection for all tabs of the page in a browser.
//!
//! Owns: choosing which tab talks to the relay, and carrying everything between that tab and the others. Every
//! tab asks the Web Locks API for one exclusive lock ([`LOCK_NAME`]) and holds it, once granted, for its
//! lifetime; the tab holding it is the leader and runs the page's one [`Connection`], the only code that talks
//! to the relay. Every other tab is a follower: it opens no socket and talks to the leader over a
//! `BroadcastChannel` ([`CHANNEL_NAME`]). When the leader goes (closed, reloaded, crashed), the browser releases
//! its lock and grants it to the next waiting tab, which becomes leader, opens its own socket and resumes; the
//! followers announce themselves to it again as soon as it says it leads.
//!
//! - Each tab announces what it wants ([`TabWants`]: its watchlist, refused symbols, rows out of view, symbols
//!   an alert watches, and whether it is hidden) whenever that changes and every [`ANNOUNCE_EVERY_MS`] as a
//!   liveness ping. The leader subscribes the union ([`merge`]): a symbol goes at the full rate if any tab
//!   shows it or watches it with an alert, else at the low rate. A tab's entry goes when it says goodbye
//!   (`pagehide`) or when it has not been heard from for [`EXPIRE_MS`] (a crashed tab); that bound is long
//!   because a browser may run a hidden tab's timers only once a minute.
//! - The leader sends every event of its connection (frames, connecting/closed, the REST fallback) to all tabs;
//!   a tab that joins gets the connection's state and the latest quote of each of its symbols at once.
//! - Commands (a replay, orders) from a follower go out on the leader's socket. They share one session, so a
//!   replay started in one tab shows in every tab.
//! - Alerts fire once per browser: only the tab that talks to the relay evaluates them and delivers them (toast,
//!   `role="alert"`, sound, notification); it tells the followers, which add the fired alert to their log.
//!   Alert definitions themselves travel through localStorage (each tab saves, the others adopt).
//!
//! A browser without Web Locks or `BroadcastChannel` (or that refuses the lock) gets the behaviour from before:
//! every tab is [`TabRole::Solo`] with its own socket. web-sys binds `LockManager` only behind an unstable
//! build flag for the whole crate graph, so the one call needed (`navigator.locks.request`) goes through
//! `js_sys::Reflect`.
//!
//! Messages between tabs are JSON text: a [`TabMessage`] travels as one flat object ([`Wire`], every field of
//! every kind, `k` saying which kind), because serde's code to read an enum of structs is one struct reader per
//! variant in the wasm; the relay's frames go as they came ([`Channel`]). A tab skips what it cannot read
//! (another version of the page in another tab).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::channel::oneshot;
use futures::future::{abortable, AbortHandle};
use futures::{select, FutureExt, StreamExt};
use gloo_net::websocket::Message;
use gloo_timers::future::IntervalStream;
use hamster_shared::api::QuotesResponse;
use hamster_shared::{Quote, ServerMessage, Symbol};
use serde::Serialize;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use yew::Callback;

use super::api::Api;
use super::config;
use super::connection::{decode, CommandSender, Connection, EncodedCommand, Wanted, WantedSender};
use super::now_ms;
use crate::events::{ConnEvent, TabRole};
use crate::json_object::json_object;
use crate::state::alerts::FiredElsewhere;

/// The `BroadcastChannel` the page's tabs talk on.
const CHANNEL_NAME: &str = "hamster.tabs.v1";
/// The Web Lock whose holder is the leader.
const LOCK_NAME: &str = "hamster.relay-leader.v1";
/// How often a tab announces its wants, as a liveness ping too.
const ANNOUNCE_EVERY_MS: u32 = 1_000;
/// A tab not heard from for this long is gone. Chrome may run a long-hidden tab's timers once a minute.
const EXPIRE_MS: i64 = 90_000;

/// What one tab wants from the relay, as it tells the leader.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TabWants {
    symbols: Vec<Symbol>,
    refused: Vec<Symbol>,
    off_screen: Vec<Symbol>,
    full_rate: Vec<Symbol>,
    /// The tab is hidden: none of its rows is looked at.
    hidden: bool,
}

impl TabWants {
    fn new(wanted: &Wanted, hidden: bool) -> TabWants {
        TabWants {
            symbols: wanted.symbols.to_vec(),
            refused: wanted.refused.iter().cloned().collect(),
            off_screen: wanted.off_screen.iter().cloned().collect(),
            full_rate: wanted.full_rate.iter().cloned().collect(),
            hidden,
        }
    }
}

/// What the leader asks its connection for: every tab's symbols (the first tab's order first), each at the full
/// rate if any tab needs it so, at the low rate only if every tab that wants it has it out of view or is hidden.
/// The result's `full_rate` holds every full-rate symbol, so the leader tab's own visibility changes nothing.
pub(crate) fn merge<'a>(tabs: impl IntoIterator<Item = &'a TabWants>) -> Wanted {
    let mut symbols = Vec::new();
    let mut seen = HashSet::new();
    let mut refused = HashSet::new();
    let mut full = HashSet::new();
    for tab in tabs {
        let off: HashSet<&Symbol> = tab.off_screen.iter().collect();
        let watched: HashSet<&Symbol> = tab.full_rate.iter().collect();
        for s in &tab.symbols {
            if seen.insert(s.clone()) {
                symbols.push(s.clone());
            }
            if watched.contains(s) || !(tab.hidden || off.contains(s)) {
                full.insert(s.clone());
            }
        }
        refused.extend(tab.refused.iter().cloned());
    }
    let off_screen = symbols.iter().filter(|s| !full.contains(*s)).cloned().collect();
    Wanted { symbols: Rc::new(symbols), refused, off_screen: Rc::new(off_screen), full_rate: Rc::new(full) }
}

/// A connection event as the leader relays it, besides the relay's frames (passed on as they came, see
/// [`Channel`]). [`ConnEvent::Endpoints`] is not relayed: each tab resolves the relay's address itself (the
/// REST API is its own, only the socket is shared).
#[derive(Debug, Clone, PartialEq)]
enum Relayed {
    Connecting { attempt: u32 },
    Closed { reason: String, attempt: u32, retry_in_ms: u64 },
    RestQuotes { quotes: QuotesResponse },
    RestFailed { error: String },
    Warning { text: String },
}

impl Relayed {
    fn of(event: &ConnEvent) -> Option<Relayed> {
        Some(match event {
            ConnEvent::Connecting { attempt } => Relayed::Connecting { attempt: *attempt },
            ConnEvent::Closed { reason, attempt, retry_in_ms } => {
                Relayed::Closed { reason: reason.clone(), attempt: *attempt, retry_in_ms: *retry_in_ms }
            }
            ConnEvent::RestQuotes(quotes) => Relayed::RestQuotes { quotes: quotes.clone() },
            ConnEvent::RestFailed(error) => Relayed::RestFailed { error: error.clone() },
            ConnEvent::Warning(text) => Relayed::Warning { text: text.clone() },
            ConnEvent::Server(_) | ConnEvent::Endpoints { .. } | ConnEvent::Role(_) | ConnEvent::AlertFired(_) => {
                return None
            }
        })
    }

    fn into_event(self) -> ConnEvent {
        match self {
            Relayed::Connecting { attempt } => ConnEvent::Connecting { attempt },
            Relayed::Closed { reason, attempt, retry_in_ms } => ConnEvent::Closed { reason, attempt, retry_in_ms },
            Relayed::RestQuotes { quotes } => ConnEvent::RestQuotes(quotes),
            Relayed::RestFailed { error } => ConnEvent::RestFailed(error),
            Relayed::Warning { text } => ConnEvent::Warning(text),
        }
    }
}

/// One message between the page's tabs.
#[derive(Debug, Clone, PartialEq)]
enum TabMessage {
    /// A follower's wants; also its liveness ping.
    Wants { tab: u64, wants: TabWants },
    /// A follower is going away.
    Bye { tab: u64 },
    /// A follower's command for the leader's socket.
    Command { tab: u64, command: EncodedCommand },
    /// A tab became leader: followers announce themselves to it at once.
    Leader { tab: u64 },
    /// The leader's connection event (other than a frame), for every tab or only for `to` (catching a new tab
    /// up).
    Event { to: Option<u64>, event: Relayed },
    /// The leader fired an alert.
    Fired { fired: FiredElsewhere },
}

/// A [`TabMessage`] as it travels: `k` names the kind (an event's own kind for [`TabMessage::Event`]), and the
/// fields that kind has are set; the others keep their defaults and are ignored.
#[derive(Default, Serialize)]
struct Wire {
    k: String,
    /// The sending tab (`wants`, `bye`, `command`, `leader`).
    tab: u64,
    /// An event's one recipient, when it is not for every tab.
    to: Option<u64>,
    symbols: Vec<Symbol>,
    refused: Vec<Symbol>,
    off_screen: Vec<Symbol>,
    full_rate: Vec<Symbol>,
    hidden: bool,
    /// A command's kind.
    kind: String,
    /// A command's JSON, a `closed` reason, a REST error, a warning, or a fired alert's text.
    text: String,
    attempt: u32,
    retry_in_ms: u64,
    quotes: Option<QuotesResponse>,
    alert_id: u64,
    symbol: Option<Symbol>,
    price: f64,
    ts: i64,
    at_ms: i64,
}

json_object!(Wire, "a message between tabs", required {} optional {
    k: String, tab: u64, to: Option<u64>, symbols: Vec<Symbol>, refused: Vec<Symbol>, off_screen: Vec<Symbol>,
    full_rate: Vec<Symbol>, hidden: bool, kind: String, text: String, attempt: u32, retry_in_ms: u64,
    quotes: Option<QuotesResponse>, alert_id: u64, symbol: Option<Symbol>, price: f64, ts: i64, at_ms: i64,
});

impl TabMessage {
    fn into_wire(self) -> Wire {
        let kind = |k: &str| k.to_owned();
        match self {
            TabMessage::Wants { tab, wants } => Wire {
                k: kind("wants"),
                tab,
                symbols: wants.symbols,
                refused: wants.refused,
                off_screen: wants.off_screen,
                full_rate: wants.full_rate,
                hidden: wants.hidden,
                ..Wire::default()
            },
            TabMessage::Bye { tab } => Wire { k: kind("bye"), tab, ..Wire::default() },
            TabMessage::Command { tab, command } => {
                Wire { k: kind("command"), tab, kind: command.kind, text: command.json, ..Wire::default() }
            }
            TabMessage::Leader { tab } => Wire { k: kind("leader"), tab, ..Wire::default() },
            TabMessage::Event { to, event } => {
                let wire = Wire { to, ..Wire::default() };
                match event {
                    Relayed::Connecting { attempt } => Wire { k: kind("connecting"), attempt, ..wire },
                    Relayed::Closed { reason, attempt, retry_in_ms } => {
                        Wire { k: kind("closed"), text: reason, attempt, retry_in_ms, ..wire }
                    }
                    Relayed::RestQuotes { quotes } => Wire { k: kind("rest_quotes"), quotes: Some(quotes), ..wire },
                    Relayed::RestFailed { error } => Wire { k: kind("rest_failed"), text: error, ..wire },
                    Relayed::Warning { text } => Wire { k: kind("warning"), text, ..wire },
                }
            }
            TabMessage::Fired { fired } => Wire {
                k: kind("fired"),
                alert_id: fired.alert_id,
                symbol: Some(fired.symbol),
                text: fired.text,
                price: fired.price,
                ts: fired.ts,
                at_ms: fired.at_ms,
                ..Wire::default()
            },
        }
    }

    /// The message a [`Wire`] carries; `None` for a kind this build does not know.
    fn from_wire(w: Wire) -> Option<TabMessage> {
        let event = |event| Some(TabMessage::Event { to: w.to, event });
        match w.k.as_str() {
            "wants" => Some(TabMessage::Wants {
                tab: w.tab,
                wants: TabWants {
                    symbols: w.symbols,
                    refused: w.refused,
                    off_screen: w.off_screen,
                    full_rate: w.full_rate,
                    hidden: w.hidden,
                },
            }),
            "bye" => Some(TabMessage::Bye { tab: w.tab }),
            "command" => {
                Some(TabMessage::Command { tab: w.tab, command: EncodedCommand { kind: w.kind, json: w.text } })
            }
            "leader" => Some(TabMessage::Leader { tab: w.tab }),
            "connecting" => event(Relayed::Connecting { attempt: w.attempt }),
            "closed" => event(Relayed::Closed { reason: w.text, attempt: w.attempt, retry_in_ms: w.retry_in_ms }),
            "rest_quotes" => event(Relayed::RestQuotes { quotes: w.quotes? }),
            "rest_failed" => event(Relayed::RestFailed { error: w.text }),
            "warning" => event(Relayed::Warning { text: w.text }),
            "fired" => Some(TabMessage::Fired {
                fired: FiredElsewhere {
                    alert_id: w.alert_id,
                    symbol: w.symbol?,
                    text: w.text,
                    price: w.price,
                    ts: w.ts,
                    at_ms: w.at_ms,
                },
            }),
            _ => None,
        }
    }

    fn into_json(self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&self.into_wire())
    }

    fn from_json(text: &str) -> Option<TabMessage> {
        TabMessage::from_wire(serde_json::from_str(text).ok()?)
    }
}

/// The page's connection as the UI sees it, whichever tab this is. Dropping it stops everything.
pub(crate) struct TabConnection {
    abort: AbortHandle,
}

impl Drop for TabConnection {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// The page's end of the channel for alerts this tab fired, which the leader tells the other tabs about.
#[derive(Debug)]
pub(crate) struct FiredSender {
    tx: UnboundedSender<FiredElsewhere>,
}

impl FiredSender {
    pub(crate) fn channel() -> (FiredSender, UnboundedReceiver<FiredElsewhere>) {
        let (tx, rx) = unbounded();
        (FiredSender { tx }, rx)
    }

    pub(crate) fn send(&self, fired: FiredElsewhere) {
        // Fails only when the service is gone (page teardown); nothing to do then.
        let _ = self.tx.unbounded_send(fired);
    }
}

/// The inputs the UI gives the connection, as for [`Connection::start`], plus fired alerts.
pub(crate) struct Inputs {
    pub(crate) wanted: UnboundedReceiver<Wanted>,
    pub(crate) commands: UnboundedReceiver<EncodedCommand>,
    pub(crate) fired: UnboundedReceiver<FiredElsewhere>,
}

impl TabConnection {
    /// Starts the page's connection: as leader, follower or alone, as the browser allows and decides.
    pub(crate) fn start(inputs: Inputs, emit: Callback<ConnEvent>) -> TabConnection {
        let (task, abort) = abortable(run(inputs, emit));
        wasm_bindgen_futures::spawn_local(async move {
            // `Err(Aborted)` is the normal way to stop.
            let _ = task.await;
        });
        TabConnection { abort }
    }
}

/// `navigator.locks`, if the browser has Web Locks.
fn lock_manager() -> Option<JsValue> {
    let navigator = web_sys::window()?.navigator();
    let locks = js_sys::Reflect::get(&navigator, &"locks".into()).ok()?;
    let request = js_sys::Reflect::get(&locks, &"request".into()).ok()?;
    request.is_function().then_some(locks)
}

fn has_broadcast_channel() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"BroadcastChannel".into()).ok())
        .is_some_and(|c| c.is_function())
}

fn page_hidden() -> bool {
    web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden())
}

/// Asks for the leader lock; the returned receiver gets `true` when this tab holds it, `false` if the browser
/// refused the request (then this tab goes on alone). The lock is held until the page goes away: the callback's
/// promise never settles.
fn request_lock(locks: &JsValue) -> oneshot::Receiver<bool> {
    let (tx, rx) = oneshot::channel();
    let tx = Rc::new(RefCell::new(Some(tx)));
    let granted = {
        let tx = Rc::clone(&tx);
        Closure::once_into_js(move |_lock: JsValue| -> JsValue {
            if let Some(tx) = tx.borrow_mut().take() {
                let _ = tx.send(true);
            }
            js_sys::Promise::new(&mut |_, _| {}).into()
        })
    };
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"mode".into(), &"exclusive".into());
    let request =
        js_sys::Reflect::get(locks, &"request".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let promise = request.and_then(|f| f.call3(locks, &LOCK_NAME.into(), &options, &granted).ok());
    match promise.and_then(|p| p.dyn_into::<js_sys::Promise>().ok()) {
        Some(promise) => wasm_bindgen_futures::spawn_local(async move {
            if wasm_bindgen_futures::JsFuture::from(promise).await.is_err() {
                if let Some(tx) = tx.borrow_mut().take() {
                    let _ = tx.send(false);
                }
            }
        }),
        None => {
            if let Some(tx) = tx.borrow_mut().take() {
                let _ = tx.send(false);
            }
        }
    }
    rx
}

/// What arrives from another tab.
enum Incoming {
    Message(TabMessage),
    /// A frame from the relay as the leader got it, for every tab or only for `to`.
    Frame {
        to: Option<u64>,
        frame: Message,
    },
}

/// The channel to the other tabs: what arrives, and a way to post. A [`TabMessage`] goes as its JSON text; a
/// frame from the relay as an object `{f, to?}` with the frame's own text or bytes (`Uint8Array`), so the
/// leader passes frames on without encoding each message again.
struct Channel {
    channel: web_sys::BroadcastChannel,
    _listener: gloo_events::EventListener,
}

impl Channel {
    fn open() -> Option<(Channel, UnboundedReceiver<Incoming>)> {
        let channel = web_sys::BroadcastChannel::new(CHANNEL_NAME).ok()?;
        let (tx, rx) = unbounded();
        let listener = gloo_events::EventListener::new(&channel, "message", move |event| {
            let Some(data) = event.dyn_ref::<web_sys::MessageEvent>().map(|e| e.data()) else { return };
            // What this build cannot read (another version of the page in another tab) is skipped.
            if let Some(incoming) = Channel::read(&data) {
                let _ = tx.unbounded_send(incoming);
            }
        });
        Some((Channel { channel, _listener: listener }, rx))
    }

    fn read(data: &JsValue) -> Option<Incoming> {
        if let Some(text) = data.as_string() {
            return TabMessage::from_json(&text).map(Incoming::Message);
        }
        let f = js_sys::Reflect::get(data, &"f".into()).ok()?;
        let frame = match f.as_string() {
            Some(text) => Message::Text(text),
            None => Message::Bytes(f.dyn_into::<js_sys::Uint8Array>().ok()?.to_vec()),
        };
        let to = js_sys::Reflect::get(data, &"to".into()).ok().and_then(|t| t.as_f64()).map(|t| t as u64);
        Some(Incoming::Frame { to, frame })
    }

    fn post_raw(&self, value: &JsValue) {
        if let Err(e) = self.channel.post_message(value) {
            web_sys::console::warn_2(&"cannot reach the other tabs:".into(), &e);
        }
    }

    fn post(&self, msg: TabMessage) {
        match msg.into_json() {
            Ok(text) => self.post_raw(&text.into()),
            Err(e) => web_sys::console::warn_1(&format!("cannot encode a message for the other tabs: {e}").into()),
        }
    }

    fn post_frame(&self, frame: &Message, to: Option<u64>) {
        let data = js_sys::Object::new();
        let f: JsValue = match frame {
            Message::Text(text) => text.into(),
            Message::Bytes(bytes) => js_sys::Uint8Array::from(bytes.as_slice()).into(),
        };
        let _ = js_sys::Reflect::set(&data, &"f".into(), &f);
        if let Some(to) = to {
            // Tab ids stay below 2^53, so they are exact as JavaScript numbers.
            let _ = js_sys::Reflect::set(&data, &"to".into(), &JsValue::from_f64(to as f64));
        }
        self.post_raw(&data);
    }

    /// Sends what [`Cache::catch_up`] gives to the tab `to`.
    fn post_catch_up(&self, to: u64, items: Vec<CatchUp>) {
        for item in items {
            match item {
                CatchUp::Event(event) => self.post(TabMessage::Event { to: Some(to), event }),
                CatchUp::Frame(frame) => self.post_frame(&frame, Some(to)),
            }
        }
    }
}

/// The frame as the page reads it: a message from the relay, or a warning that it could not be read.
fn frame_event(frame: &Message) -> ConnEvent {
    match decode(frame) {
        Ok(msg) => ConnEvent::Server(msg),
        Err(e) => ConnEvent::Warning(format!("ignored unreadable frame: {e}")),
    }
}

/// Visibility changes, and the page going away (`pagehide`), as events.
enum PageEvent {
    Visibility,
    Leaving,
}

fn page_events() -> (UnboundedReceiver<PageEvent>, Vec<gloo_events::EventListener>) {
    let (tx, rx) = unbounded();
    let mut listeners = Vec::new();
    if let Some(window) = web_sys::window() {
        if let Some(document) = window.document() {
            let tx = tx.clone();
            listeners.push(gloo_events::EventListener::new(&document, "visibilitychange", move |_| {
                let _ = tx.unbounded_send(PageEvent::Visibility);
            }));
        }
        for name in ["pagehide", "beforeunload"] {
            let tx = tx.clone();
            listeners.push(gloo_events::EventListener::new(&window, name, move |_| {
                let _ = tx.unbounded_send(PageEvent::Leaving);
            }));
        }
    }
    (rx, listeners)
}

async fn run(inputs: Inputs, emit: Callback<ConnEvent>) {
    let coordinated = lock_manager().filter(|_| has_broadcast_channel()).and_then(|locks| {
        let (channel, messages) = Channel::open()?;
        Some((locks, channel, messages))
    });
    let Some((locks, channel, messages)) = coordinated else {
        return solo(inputs, emit).await;
    };
    let lead = request_lock(&locks);
    let tab = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
    let (pages, _listeners) = page_events();
    let tab = Tab { id: tab, channel, messages, pages, inputs, emit, own: Wanted::default() };
    if let Some((inputs, emit)) = tab.run(lead).await {
        solo(inputs, emit).await;
    }
}

/// Without coordination: the page's own connection, as every tab had before.
async fn solo(inputs: Inputs, emit: Callback<ConnEvent>) {
    emit.emit(ConnEvent::Role(TabRole::Solo));
    let Inputs { wanted, commands, mut fired } = inputs;
    let _connection = Connection::start(wanted, commands, emit, None);
    // Nobody to tell about fired alerts; keep the connection until the page drops this task.
    while fired.next().await.is_some() {}
    futures::future::pending::<()>().await;
}

struct Tab {
    id: u64,
    channel: Channel,
    messages: UnboundedReceiver<Incoming>,
    pages: UnboundedReceiver<PageEvent>,
    inputs: Inputs,
    emit: Callback<ConnEvent>,
    /// This tab's latest wants.
    own: Wanted,
}

impl Tab {
    fn announce(&self) {
        self.channel.post(TabMessage::Wants { tab: self.id, wants: TabWants::new(&self.own, page_hidden()) });
    }

    /// Follows the leader until this tab gets the lock, then runs the page's one connection for every tab until
    /// the page goes away. One loop for both roles: what this tab does with each input depends on whether it
    /// leads, and the two share the waiting on every input. Returns the inputs when the browser refused the lock,
    /// for the tab to go on alone.
    async fn run(mut self, lead: oneshot::Receiver<bool>) -> Option<(Inputs, Callback<ConnEvent>)> {
        self.emit.emit(ConnEvent::Role(TabRole::Follower));
        let mut lead = lead.fuse();
        // The REST API is reached from every tab directly; only the socket is the leader's.
        let endpoints = config::load().fuse();
        futures::pin_mut!(endpoints);
        // A follower's announcements; the leader's check for tabs gone quiet.
        let mut ticks = IntervalStream::new(ANNOUNCE_EVERY_MS).fuse();
        // The leader's connection's frames and events in one queue, so the other tabs get them in the order the
        // connection made them. Nothing comes before this tab leads.
        let (events_tx, mut events) = unbounded();
        let mut leading: Option<Leading> = None;
        loop {
            if let Some(leading) = leading.as_mut() {
                leading.ask(&self.own);
            }
            select! {
                granted = lead => {
                    if !granted.unwrap_or(false) {
                        break;
                    }
                    leading = Some(self.start_leading(&events_tx));
                }
                (endpoints, warning) = endpoints => {
                    // A leader's own connection resolves the endpoints.
                    if leading.is_none() {
                        let api = Api::new(endpoints.http_base, config::load_token());
                        self.emit.emit(ConnEvent::Endpoints { ws_url: endpoints.ws_url, api, warning });
                    }
                }
                from = events.select_next_some() => {
                    if let Some(leading) = leading.as_mut() {
                        leading.relay(&self.channel, &self.emit, from);
                    }
                }
                wanted = self.inputs.wanted.next() => match wanted {
                    Some(w) => {
                        self.own = w;
                        match leading.as_mut() {
                            Some(leading) => leading.changed = true,
                            None => self.announce(),
                        }
                    }
                    None => return None,
                },
                command = self.inputs.commands.select_next_some() => match &leading {
                    Some(leading) => leading.commands.send_encoded(command),
                    None => self.channel.post(TabMessage::Command { tab: self.id, command }),
                },
                // Only the leader's alerts are told; a follower's reducer fires none.
                fired = self.inputs.fired.select_next_some() => {
                    if leading.is_some() {
                        self.channel.post(TabMessage::Fired { fired });
                    }
                }
                _ = ticks.select_next_some() => match leading.as_mut() {
                    Some(leading) => leading.expire(),
                    None => self.announce(),
                },
                page = self.pages.select_next_some() => match (leading.as_mut(), page) {
                    (Some(leading), PageEvent::Visibility) => leading.changed = true,
                    (Some(_), PageEvent::Leaving) => {}
                    (None, PageEvent::Visibility) => self.announce(),
                    (None, PageEvent::Leaving) => self.channel.post(TabMessage::Bye { tab: self.id }),
                },
                incoming = self.messages.select_next_some() => match leading.as_mut() {
                    Some(leading) => leading.hear(&self.channel, incoming),
                    None => self.follow(incoming),
                },
            }
        }
        let Tab { inputs, emit, .. } = self;
        Some((inputs, emit))
    }

    /// What a follower does with a message from another tab.
    fn follow(&self, incoming: Incoming) {
        match incoming {
            Incoming::Frame { to, frame } if to.is_none_or(|t| t == self.id) => {
                self.emit.emit(frame_event(&frame));
            }
            Incoming::Message(TabMessage::Event { to, event }) if to.is_none_or(|t| t == self.id) => {
                self.emit.emit(event.into_event());
            }
            Incoming::Message(TabMessage::Leader { .. }) => self.announce(),
            Incoming::Message(TabMessage::Fired { fired }) => self.emit.emit(ConnEvent::AlertFired(fired)),
            _ => {}
        }
    }

    /// Becomes the leader: tells the other tabs and starts the page's one connection.
    fn start_leading(&self, events_tx: &UnboundedSender<FromConnection>) -> Leading {
        self.emit.emit(ConnEvent::Role(TabRole::Leader));
        self.channel.post(TabMessage::Leader { tab: self.id });
        let (wanted, wanted_rx) = WantedSender::channel();
        let (commands, commands_rx) = CommandSender::channel();
        let (events_tx, frames_tx) = (events_tx.clone(), events_tx.clone());
        let connection = Connection::start(
            wanted_rx,
            commands_rx,
            Callback::from(move |event| {
                let _ = events_tx.unbounded_send(FromConnection::Event(event));
            }),
            Some(Callback::from(move |frame| {
                let _ = frames_tx.unbounded_send(FromConnection::Frame(frame));
            })),
        );
        Leading {
            wanted,
            commands,
            _connection: connection,
            last_frame: None,
            others: Vec::new(),
            cache: Cache::default(),
            sent: Wanted::default(),
            changed: true,
        }
    }
}

/// The leader tab's side: the page's one connection and what it knows of the other tabs.
struct Leading {
    wanted: WantedSender,
    commands: CommandSender,
    _connection: Connection,
    /// The latest frame: a `hello`'s is kept for tabs that join later.
    last_frame: Option<Message>,
    /// The other tabs: id, wants, when last heard from. A `Vec` in the order they joined: a browser has a few
    /// tabs, and a map of them was one more map instance in the wasm.
    others: Vec<(u64, TabWants, i64)>,
    cache: Cache,
    /// What the connection was last asked for.
    sent: Wanted,
    /// Some tab's wants changed since the connection was last asked.
    changed: bool,
}

impl Leading {
    /// Asks the connection for the union of every tab's wants, if they changed.
    fn ask(&mut self, own: &Wanted) {
        if !self.changed {
            return;
        }
        self.changed = false;
        let mine = TabWants::new(own, page_hidden());
        let merged = merge(std::iter::once(&mine).chain(self.others.iter().map(|(_, w, _)| w)));
        if merged != self.sent {
            self.cache.keep(&merged.symbols);
            self.wanted.send(merged.clone());
            self.sent = merged;
        }
    }

    /// Passes what the connection gives on to this tab and the others.
    fn relay(&mut self, channel: &Channel, emit: &Callback<ConnEvent>, from: FromConnection) {
        match from {
            FromConnection::Frame(frame) => {
                channel.post_frame(&frame, None);
                self.last_frame = Some(frame);
            }
            FromConnection::Event(event) => {
                if matches!(event, ConnEvent::Server(ServerMessage::Hello { .. })) {
                    self.cache.hello = self.last_frame.take();
                }
                self.cache.observe(&event);
                if let Some(relayed) = Relayed::of(&event) {
                    channel.post(TabMessage::Event { to: None, event: relayed });
                }
                emit.emit(event);
            }
        }
    }

    /// Forgets the tabs not heard from for [`EXPIRE_MS`].
    fn expire(&mut self) {
        let now = now_ms();
        let before = self.others.len();
        self.others.retain(|(_, _, seen)| now - *seen < EXPIRE_MS);
        self.changed |= self.others.len() != before;
    }

    /// What the leader does with a message from another tab.
    fn hear(&mut self, channel: &Channel, incoming: Incoming) {
        match incoming {
            Incoming::Message(TabMessage::Wants { tab, wants }) => {
                match self.others.iter_mut().find(|(id, _, _)| *id == tab) {
                    Some((_, known, seen)) => {
                        self.changed |= *known != wants;
                        *known = wants;
                        *seen = now_ms();
                    }
                    None => {
                        channel.post_catch_up(tab, self.cache.catch_up(&wants.symbols));
                        self.others.push((tab, wants, now_ms()));
                        self.changed = true;
                    }
                }
            }
            Incoming::Message(TabMessage::Bye { tab }) => {
                let before = self.others.len();
                self.others.retain(|(id, _, _)| *id != tab);
                self.changed |= self.others.len() != before;
            }
            Incoming::Message(TabMessage::Command { command, .. }) => self.commands.send_encoded(command),
            _ => {}
        }
    }
}

/// What the leader's connection gives it: events, and before each frame's event the frame as it came.
enum FromConnection {
    Event(ConnEvent),
    Frame(Message),
}

/// One thing a tab that just joined is sent.
#[derive(Debug, PartialEq)]
enum CatchUp {
    Event(Relayed),
    Frame(Message),
}

/// The relay's `snapshot` message as the relay writes it.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    quotes: Vec<&'a Quote>,
}

/// What the leader keeps to catch a tab up when it joins: the connection's state since the latest attempt, and
/// the latest quote of every subscribed symbol.
#[derive(Default)]
struct Cache {
    /// The latest `connecting` or `closed`.
    status: Option<Relayed>,
    /// The current socket's `hello` frame, once live.
    hello: Option<Message>,
    quotes: HashMap<Symbol, Quote>,
}

impl Cache {
    fn observe(&mut self, event: &ConnEvent) {
        match event {
            ConnEvent::Connecting { .. } | ConnEvent::Closed { .. } => {
                self.status = Relayed::of(event);
                self.hello = None;
            }
            ConnEvent::Server(
                ServerMessage::Quotes { quotes }
                | ServerMessage::Snapshot { quotes }
                | ServerMessage::Recovered { quotes },
            ) => {
                for q in quotes {
                    let newer = self.quotes.get(&q.symbol).is_none_or(|old| old.ts <= q.ts);
                    if newer {
                        self.quotes.insert(q.symbol.clone(), q.clone());
                    }
                }
            }
            _ => {}
        }
    }

    /// Forgets quotes of symbols no tab wants any more.
    fn keep(&mut self, symbols: &[Symbol]) {
        let keep: HashSet<&Symbol> = symbols.iter().collect();
        self.quotes.retain(|s, _| keep.contains(s));
    }

    /// What a tab that just joined needs: the connection's state, then a snapshot of its symbols' latest quotes.
    fn catch_up(&self, symbols: &[Symbol]) -> Vec<CatchUp> {
        let mut items: Vec<CatchUp> = self.status.iter().cloned().map(CatchUp::Event).collect();
        items.extend(self.hello.iter().cloned().map(CatchUp::Frame));
        let quotes: Vec<&Quote> = symbols.iter().filter_map(|s| self.quotes.get(s)).collect();
        if !quotes.is_empty() {
            // The relay's own `snapshot` message, written here so that this page need not encode every kind of
            // server message just for this one.
            match serde_json::to_string(&SnapshotOut { kind: "snapshot", quotes }) {
                Ok(text) => items.push(CatchUp::Frame(Message::Text(text))),
                Err(e) => web_sys::console::warn_1(&format!("cannot encode a snapshot: {e}").into()),
            }
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).expect("valid test symbol")
    }

    fn wants(symbols: &[&str], off_screen: &[&str], full_rate: &[&str], hidden: bool) -> TabWants {
        let list = |l: &[&str]| l.iter().map(|s| sym(s)).collect();
        TabWants {
            symbols: list(symbols),
            refused: vec![],
            off_screen: list(off_screen),
            full_rate: list(full_rate),
            hidden,
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_leader_subscribes_the_union_at_the_rate_the_most_demanding_tab_needs() {
        let leader = wants(&["AAPL", "MSFT", "TSLA"], &["TSLA"], &[], true);
        let follower = wants(&["MSFT", "NVDA", "TSLA"], &["NVDA"], &[], false);
        let merged = merge([&leader, &follower]);
        assert_eq!(*merged.symbols, [sym("AAPL"), sym("MSFT"), sym("TSLA"), sym("NVDA")], "the leader's order first");
        // AAPL: only in the hidden leader tab. NVDA: off screen in the one tab that has it. TSLA: on screen in the
        // visible follower.
        assert_eq!(*merged.off_screen, HashSet::from([sym("AAPL"), sym("NVDA")]));
        assert_eq!(*merged.full_rate, HashSet::from([sym("MSFT"), sym("TSLA")]));
        let watched = wants(&["AAPL"], &[], &["AAPL"], true);
        assert!(merge([&leader, &watched]).full_rate.contains(&sym("AAPL")), "an alert needs every tick");
        assert_eq!(merge([&follower]).symbols.len(), 3, "a tab that is gone is no longer subscribed");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn messages_between_tabs_round_trip_as_json() {
        let msg = TabMessage::Event {
            to: Some(3),
            event: Relayed::Closed { reason: "x".into(), attempt: 1, retry_in_ms: 2 },
        };
        let round_trip = |msg: &TabMessage| TabMessage::from_json(&msg.clone().into_json().expect("encodes"));
        assert_eq!(round_trip(&msg), Some(msg));
        let quote = Quote::new(sym("AAPL"), 1.5, 2, "sim");
        let fired = FiredElsewhere {
            alert_id: 4,
            symbol: sym("AAPL"),
            text: "AAPL above 1".into(),
            price: 1.5,
            ts: 2,
            at_ms: 3,
        };
        let quotes = QuotesResponse { quotes: vec![quote], pending: vec![sym("MSFT")] };
        for msg in [
            TabMessage::Wants { tab: 1, wants: wants(&["BTC/USD"], &["BTC/USD"], &[], true) },
            TabMessage::Bye { tab: 2 },
            TabMessage::Command { tab: 3, command: EncodedCommand { kind: "replay".into(), json: "{}".into() } },
            TabMessage::Leader { tab: 4 },
            TabMessage::Event { to: None, event: Relayed::Connecting { attempt: 2 } },
            TabMessage::Event { to: None, event: Relayed::RestQuotes { quotes } },
            TabMessage::Event { to: Some(1), event: Relayed::RestFailed { error: "down".into() } },
            TabMessage::Event { to: None, event: Relayed::Warning { text: "careful".into() } },
            TabMessage::Fired { fired },
        ] {
            assert_eq!(round_trip(&msg), Some(msg));
        }
        assert_eq!(TabMessage::from_json(r#"{"k":"from_a_newer_page"}"#), None, "skipped");
        assert_eq!(TabMessage::from_json(r#"{"Bye":{"tab":1}}"#), None, "the older form is skipped");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_joining_tab_gets_the_connection_state_and_the_latest_quotes_of_its_symbols() {
        let mut cache = Cache::default();
        let quote = |s: &str, price: f64, ts: i64| Quote::new(sym(s), price, ts, "sim");
        cache.observe(&ConnEvent::Connecting { attempt: 0 });
        let quotes = vec![quote("AAPL", 1.0, 2), quote("MSFT", 2.0, 2)];
        cache.observe(&ConnEvent::Server(ServerMessage::Quotes { quotes }));
        cache.observe(&ConnEvent::Server(ServerMessage::Quotes { quotes: vec![quote("AAPL", 0.5, 1)] }));
        let items = cache.catch_up(&[sym("AAPL"), sym("NVDA")]);
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0], CatchUp::Event(Relayed::Connecting { attempt: 0 }));
        let CatchUp::Frame(frame) = &items[1] else { panic!("a frame: {items:?}") };
        assert_eq!(
            frame_event(frame),
            ConnEvent::Server(ServerMessage::Snapshot { quotes: vec![quote("AAPL", 1.0, 2)] }),
            "the relay's snapshot message, of its symbols only, never an older quote"
        );
        let hello = Message::Text("{}".into());
        cache.hello = Some(hello.clone());
        assert_eq!(cache.catch_up(&[])[1], CatchUp::Frame(hello), "the hello after the status");
        cache.observe(&ConnEvent::Closed { reason: "gone".into(), attempt: 1, retry_in_ms: 5 });
        cache.keep(&[]);
        assert_eq!(cache.catch_up(&[sym("AAPL")]).len(), 1, "closed, and nothing cached for unwanted symbols");
    }
}
