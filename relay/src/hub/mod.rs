//! The hub: who wants which symbol, the last value and short history of each, and fan-out to clients.
//!
//! The hub knows nothing of providers or transports. Its input is a stream of normalised [`HubEvent`]s (today
//! from the local providers, later possibly from a Redis backplane), and its output is:
//! * frames pushed into each client's [`Outbox`] (transports drain those at their own pace), and
//! * [`Demand`] changes — "somebody now wants X" / "nobody wants X any more" — on a channel that the upstream
//!   router turns into provider subscribe/unsubscribe calls. Subscriptions are reference-counted across all
//!   clients (and REST leases), so a symbol is demanded once however many clients want it.
//!
//! Every update of a topic is numbered (`seq`, within the hub's `epoch`) and the last few are kept, so a client
//! that reconnects gets exactly what it missed or is told how much it missed (`continuity`).
//!
//! Fan-out serialises each quote once, and each distinct batch once: all clients that receive the same set of
//! quotes from one ingest batch share one `Bytes` frame (encoding lives in `frame`, queueing in `outbox`). State
//! lives behind one mutex, held briefly; nothing under it waits on I/O, so a slow client can never slow the hub
//! down.

mod continuity;
mod frame;
mod history;
mod outbox;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hamster_shared::api::{Candle, ClientStatus, HistoryResponse, Timeframe};
use hamster_shared::{
    Continuity, ErrorCode, ProviderInfo, ProviderState, Quote, Rejection, RequestId, ServerMessage, Symbol,
};
use parking_lot::Mutex;
use tokio::sync::mpsc;

pub(crate) use frame::{control_frame, Frame};
pub(crate) use history::History;
pub(crate) use outbox::{Drained, Outbox};

use crate::clock::now_ms;
use crate::metrics::Metrics;
use continuity::{Kind, Resumed, Sequence};
use frame::{quotes_frame, Batch};

/// The shortest time between two hand-outs of frames to one client's writer. A client sent updates faster than
/// this gets them in one write (one syscall, one wake-up) per interval instead of one per update, at the cost of
/// up to this much latency; a client that was quiet for longer is written at once. Tokio's timers tick in
/// milliseconds, so the wait ends on the next tick at or after this: 1-2 ms after the previous write
/// (docs/benchmarks.md, "Performance: writes, broadcast, idle memory", has the measurements behind the value).
const COALESCE: Duration = Duration::from_millis(1);

/// Identifies one connected client for the life of the process.
pub(crate) type ClientId = u64;

/// A normalised event entering the hub.
#[derive(Debug, Clone)]
pub(crate) enum HubEvent {
    /// New quotes, each for the canonical symbol clients subscribed to.
    Quotes(Vec<Quote>),
    /// Non-price messages on channels (e.g. options-flow alerts), each for the canonical channel subscribed.
    Events(Vec<ChannelEvent>),
    /// A provider's connection state changed.
    Status { provider: String, state: ProviderState, detail: Option<String>, since: i64 },
    /// The upstream refused a symbol after it was accepted: its subscribers are told and dropped.
    Rejected { symbol: Symbol, code: ErrorCode, message: String },
    /// One-minute candles from before the relay listened, for a symbol's chart history (never sent to clients
    /// as ticks, never recorded).
    History { symbol: Symbol, candles: Vec<Candle> },
}

/// One message on a channel that clients subscribe to like a symbol.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChannelEvent {
    pub(crate) channel: Symbol,
    pub(crate) payload: serde_json::Value,
    pub(crate) ts: i64,
}

/// A change in what the relay as a whole wants from upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Demand {
    /// The first subscriber (or lease) for this symbol arrived.
    Add(Symbol),
    /// The last one left.
    Remove(Symbol),
}

/// Default quote frames a client may have queued (`--client-queue-frames`).
pub(crate) const CLIENT_QUEUE_FRAMES: usize = 64;
/// Default most symbols per connection (`--max-symbols-per-connection`).
pub(crate) const MAX_SYMBOLS_PER_CLIENT: usize = 200;
/// Default recent ticks kept per symbol (`--history-ticks`).
pub(crate) const HISTORY_TICKS: usize = 600;
/// Default one-minute candles kept per symbol (`--history-candles`): a day, so every chart timeframe up to an
/// hour has a day of candles without a store.
pub(crate) const HISTORY_CANDLES: usize = 1440;
/// Default recent updates per symbol a resuming client can be sent again (`--resume-updates`).
pub(crate) const RESUME_UPDATES: usize = 256;
/// Default seconds a REST request keeps its symbols subscribed (`--rest-lease-secs`).
pub(crate) const LEASE_TTL_SECS: u64 = 60;
/// Most symbols REST leases may hold at once (not configurable).
const MAX_LEASES: usize = 1000;
/// Idle topics whose cache is kept (not configurable).
const MAX_IDLE_TOPICS: usize = 1000;
/// How long a wanted symbol may stay silent before its subscribers hear `no_data`.
pub(crate) const NO_DATA_AFTER_SECS: u64 = 30;

/// Tunables of the hub. The defaults are the constants above, which the command-line flags use as theirs too.
#[derive(Debug, Clone)]
pub(crate) struct HubConfig {
    /// Quote frames a client may have queued before it is conflated.
    pub(crate) client_queue_frames: usize,
    /// Most symbols one connection may subscribe to.
    pub(crate) max_symbols_per_client: usize,
    /// Recent ticks kept per symbol.
    pub(crate) history_ticks: usize,
    /// One-minute candles kept per symbol.
    pub(crate) history_candles: usize,
    /// Recent updates per symbol kept for clients that resume.
    pub(crate) resume_updates: usize,
    /// How long a REST request keeps its symbols subscribed.
    pub(crate) lease_ttl: Duration,
    /// Most symbols REST leases may hold at once.
    pub(crate) max_leases: usize,
    /// Symbols nobody wants any more whose cache is still kept (oldest dropped first).
    pub(crate) max_idle_topics: usize,
    /// A wanted symbol that produces nothing for this long is reported `no_data`; `None` never.
    pub(crate) no_data_after: Option<Duration>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            client_queue_frames: CLIENT_QUEUE_FRAMES,
            max_symbols_per_client: MAX_SYMBOLS_PER_CLIENT,
            history_ticks: HISTORY_TICKS,
            history_candles: HISTORY_CANDLES,
            resume_updates: RESUME_UPDATES,
            lease_ttl: Duration::from_secs(LEASE_TTL_SECS),
            max_leases: MAX_LEASES,
            max_idle_topics: MAX_IDLE_TOPICS,
            no_data_after: Some(Duration::from_secs(NO_DATA_AFTER_SECS)),
        }
    }
}

/// Why a REST lease was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the relay already holds {max} leased symbols; subscribe over /ws or /api/stream instead")]
pub(crate) struct LeaseLimit {
    pub(crate) max: usize,
}

#[derive(Debug)]
struct Topic {
    subscribers: Vec<(ClientId, Arc<Outbox>)>,
    leased_until: Option<Instant>,
    last: Option<Quote>,
    /// `last` serialised once, reused by snapshots and conflated frames.
    last_json: Option<Bytes>,
    history: History,
    /// Numbers this topic's updates and keeps the last few for resuming clients.
    sequence: Sequence,
    /// When the last subscriber left; `None` while wanted.
    idle_since: Option<Instant>,
    /// Whether it has produced anything since it was wanted, for `no_data`.
    silence: Silence,
}

/// A wanted topic's wait for its first update: when the wait started (first seen by [`Hub::sweep`]), whether it
/// was reported as `no_data`, and to whom.
#[derive(Debug, Default)]
struct Silence {
    produced: bool,
    since: Option<Instant>,
    flagged: bool,
    told: Vec<ClientId>,
}

impl Silence {
    fn heard(&mut self) {
        if !self.produced {
            *self = Silence { produced: true, ..Silence::default() };
        }
    }
}

impl Topic {
    fn wanted(&self) -> bool {
        !self.subscribers.is_empty() || self.leased_until.is_some()
    }
}

#[derive(Debug)]
struct Client {
    outbox: Arc<Outbox>,
    symbols: HashSet<Symbol>,
    transport: &'static str,
    connected_ms: i64,
}

#[derive(Debug, Default)]
struct State {
    topics: HashMap<Symbol, Topic>,
    clients: HashMap<ClientId, Client>,
    providers: BTreeMap<String, ProviderInfo>,
    leases: usize,
    next_client: ClientId,
}

/// The subscription registry, cache and fan-out. Share as `Arc<Hub>`.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<State>,
    config: HubConfig,
    demand: mpsc::UnboundedSender<Demand>,
    metrics: Arc<Metrics>,
    /// Names this run of the hub: sequence numbers restart with it.
    epoch: u64,
}

/// How a `subscribe` wants its symbols delivered, beyond the symbols themselves.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubscribeOptions {
    /// The epoch and, per canonical symbol, the last `seq` the client saw: it is sent what it missed since.
    pub(crate) resume: Option<(u64, HashMap<Symbol, u64>)>,
    /// At most one update per this interval per symbol (`max_hz`); `None` for every update.
    pub(crate) interval: Option<Duration>,
}

/// A connected client's registration. Dropping it unsubscribes everything the client held.
#[derive(Debug)]
pub(crate) struct ClientHandle {
    id: ClientId,
    outbox: Arc<Outbox>,
    hub: Arc<Hub>,
}

impl Hub {
    /// A hub that reports demand changes on `demand`.
    pub(crate) fn new(config: HubConfig, demand: mpsc::UnboundedSender<Demand>, metrics: Arc<Metrics>) -> Arc<Hub> {
        // Milliseconds since the Unix epoch at start: distinct for every run of the relay.
        let epoch = u64::try_from(now_ms()).unwrap_or_default();
        Arc::new(Hub { state: Mutex::new(State::default()), config, demand, metrics, epoch })
    }

    /// This run's epoch, sent in `hello`; a `resume` naming another one cannot be recovered.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Registers a client. `transport` is a label for status pages (`ws`, `sse`); `greeting` builds the
    /// client's first frames from the current provider states, queued before anything else can be.
    pub(crate) fn connect(
        self: &Arc<Self>,
        transport: &'static str,
        greeting: impl FnOnce(&[ProviderInfo]) -> Vec<Frame>,
    ) -> ClientHandle {
        let outbox = Arc::new(Outbox::new(self.config.client_queue_frames));
        let mut s = self.state.lock();
        let providers: Vec<ProviderInfo> = s.providers.values().cloned().collect();
        for frame in greeting(&providers) {
            outbox.push_control(frame);
        }
        s.next_client += 1;
        let id = s.next_client;
        s.clients
            .insert(id, Client { outbox: outbox.clone(), symbols: HashSet::new(), transport, connected_ms: now_ms() });
        self.metrics.clients.set(s.clients.len() as i64);
        ClientHandle { id, outbox, hub: self.clone() }
    }

    fn disconnect(&self, id: ClientId) {
        let mut s = self.state.lock();
        let Some(client) = s.clients.remove(&id) else { return };
        for symbol in &client.symbols {
            self.release(&mut s, symbol, id);
        }
        self.metrics.clients.set(s.clients.len() as i64);
        self.metrics.topics.set(wanted_topics(&s) as i64);
    }

    /// Subscribes `client` to `symbols` and queues, in this order, `subscribed` (with `rejected` plus any symbol
    /// over the connection's limit) and a `snapshot` of cached values. Done under one lock so no update for a
    /// new symbol can overtake its snapshot.
    #[cfg(test)]
    pub(crate) fn subscribe(
        &self,
        client: ClientId,
        id: Option<RequestId>,
        symbols: Vec<Symbol>,
        rejected: Vec<Rejection>,
    ) {
        self.subscribe_with(client, id, symbols, rejected, SubscribeOptions::default());
    }

    /// [`Hub::subscribe`] with a rate limit and a resume point: a resumed symbol is sent, right after
    /// `subscribed` and under the same lock (so nothing newer can overtake it), exactly the updates the client
    /// missed, or a gap and its latest value in the `snapshot`.
    pub(crate) fn subscribe_with(
        &self,
        client: ClientId,
        id: Option<RequestId>,
        symbols: Vec<Symbol>,
        mut rejected: Vec<Rejection>,
        options: SubscribeOptions,
    ) {
        let mut s = self.state.lock();
        let s = &mut *s;
        let Some(c) = s.clients.get_mut(&client) else { return };
        let mut accepted = Vec::with_capacity(symbols.len());
        let mut added = Vec::new();
        for symbol in symbols {
            if c.symbols.contains(&symbol) {
                if !accepted.contains(&symbol) {
                    accepted.push(symbol);
                }
                continue;
            }
            if c.symbols.len() >= self.config.max_symbols_per_client {
                rejected.push(Rejection {
                    message: format!(
                        "this connection already has {} symbols, the most allowed",
                        self.config.max_symbols_per_client
                    ),
                    symbol: symbol.to_string(),
                    code: ErrorCode::TooManySymbols,
                    suggestions: Vec::new(),
                });
                continue;
            }
            c.symbols.insert(symbol.clone());
            added.push(symbol.clone());
            accepted.push(symbol);
        }
        let outbox = c.outbox.clone();
        for symbol in &added {
            let topic = s.topics.entry(symbol.clone()).or_insert_with(|| new_topic(&self.config));
            let was_wanted = topic.wanted();
            topic.subscribers.push((client, outbox.clone()));
            topic.idle_since = None;
            if !was_wanted {
                let _ = self.demand.send(Demand::Add(symbol.clone()));
            }
        }
        // Rates are set before any frame is queued, so the first live update already obeys them.
        outbox.set_rate(&accepted, options.interval);
        let mut continuity = Vec::new();
        let mut recovered_quotes: Vec<&Bytes> = Vec::new();
        let mut recovered_events: Vec<&Bytes> = Vec::new();
        let mut up_to_date: HashSet<&Symbol> = HashSet::new();
        if let Some((epoch, seen)) = &options.resume {
            for symbol in &accepted {
                let (Some(seen), Some(topic)) = (seen.get(symbol), s.topics.get(symbol)) else { continue };
                let entry = match topic.sequence.resume(*epoch == self.epoch, *seen) {
                    Resumed::UpToDate => {
                        up_to_date.insert(symbol);
                        Continuity { symbol: symbol.clone(), recovered: 0, gap: false, missed: None }
                    }
                    Resumed::Recover(updates) => {
                        up_to_date.insert(symbol);
                        let recovered = updates.len() as u64;
                        for (kind, bytes) in updates {
                            match kind {
                                Kind::Quote => recovered_quotes.push(bytes),
                                Kind::Event => recovered_events.push(bytes),
                            }
                        }
                        Continuity { symbol: symbol.clone(), recovered, gap: false, missed: None }
                    }
                    Resumed::Gap { missed } => Continuity { symbol: symbol.clone(), recovered: 0, gap: true, missed },
                };
                continuity.push(entry);
            }
        }
        self.metrics.resume_gaps.inc_by(continuity.iter().filter(|c| c.gap).count() as u64);
        // A symbol brought up to date needs no snapshot: its last recovered update is its latest value.
        let snapshot: Vec<&Bytes> = accepted
            .iter()
            .filter(|sym| !up_to_date.contains(sym))
            .filter_map(|sym| s.topics.get(sym).and_then(|t| t.last_json.as_ref()))
            .collect();
        let snapshot = quotes_frame(Batch::Snapshot, snapshot.iter().copied());
        let recovered =
            (!recovered_quotes.is_empty()).then(|| quotes_frame(Batch::Recovered, recovered_quotes.iter().copied()));
        let recovered_events: Vec<Frame> =
            recovered_events.into_iter().map(|json| Frame::new("event", json.clone(), 0)).collect();
        self.metrics.recovered.inc_by(recovered_quotes.len() as u64 + recovered_events.len() as u64);
        outbox.push_control(control_frame(&ServerMessage::Subscribed { id, symbols: accepted, rejected, continuity }));
        if let Some(recovered) = recovered {
            outbox.push_control(recovered);
        }
        for event in recovered_events {
            outbox.push_control(event);
        }
        outbox.push_control(snapshot);
        self.metrics.topics.set(wanted_topics(s) as i64);
    }

    /// Unsubscribes `client` from `symbols` and queues `unsubscribed` listing those it actually held.
    pub(crate) fn unsubscribe(&self, client: ClientId, id: Option<RequestId>, symbols: Vec<Symbol>) {
        let mut s = self.state.lock();
        let Some(c) = s.clients.get_mut(&client) else { return };
        let removed: Vec<Symbol> = symbols.into_iter().filter(|sym| c.symbols.remove(sym)).collect();
        let outbox = c.outbox.clone();
        for symbol in &removed {
            self.release(&mut s, symbol, client);
        }
        // A conflated update still pending for a removed symbol must not arrive after `unsubscribed`.
        outbox.forget(&removed);
        outbox.push_control(control_frame(&ServerMessage::Unsubscribed { id, symbols: removed }));
        self.metrics.topics.set(wanted_topics(&s) as i64);
    }

    /// Drops `client` from `symbol`'s subscribers, announcing the demand change if it was the last.
    fn release(&self, s: &mut State, symbol: &Symbol, client: ClientId) {
        let Some(topic) = s.topics.get_mut(symbol) else { return };
        topic.subscribers.retain(|(id, _)| *id != client);
        if !topic.wanted() && topic.idle_since.is_none() {
            topic.idle_since = Some(Instant::now());
            let _ = self.demand.send(Demand::Remove(symbol.clone()));
        }
    }

    /// Queues a control message for one client (command replies, errors).
    pub(crate) fn send(&self, client: ClientId, msg: &ServerMessage) {
        let outbox = self.state.lock().clients.get(&client).map(|c| c.outbox.clone());
        if let Some(outbox) = outbox {
            outbox.push_control(control_frame(msg));
        }
    }

    /// Frames waiting in one client's queue, or `None` once it is gone: lets producers that push to one client
    /// (a replay) keep pace with how fast it reads.
    pub(crate) fn queued(&self, client: ClientId) -> Option<usize> {
        let outbox = self.state.lock().clients.get(&client).map(|c| c.outbox.clone())?;
        Some(outbox.counters().2)
    }

    /// Applies a batch of events: updates caches and history, then fans out.
    pub(crate) fn ingest(&self, events: Vec<HubEvent>) {
        let mut s = self.state.lock();
        let s = &mut *s;
        // Quotes of this batch that have subscribers, in arrival order, each serialised once.
        let mut touched: Vec<(Symbol, Bytes)> = Vec::new();
        for event in events {
            match event {
                HubEvent::Quotes(quotes) => {
                    self.metrics.quotes_in.inc_by(quotes.len() as u64);
                    for mut quote in quotes {
                        let Some(topic) = s.topics.get_mut(&quote.symbol) else { continue };
                        topic.silence.heard();
                        let seq = topic.sequence.next();
                        quote.seq = Some(seq);
                        let json = match serde_json::to_vec(&quote) {
                            Ok(json) => Bytes::from(json),
                            Err(e) => {
                                tracing::warn!(symbol = %quote.symbol, error = %e, "dropping unserialisable quote");
                                continue;
                            }
                        };
                        topic.history.record(quote.ts, quote.price, quote.volume);
                        topic.sequence.remember(seq, Kind::Quote, json.clone());
                        if !topic.subscribers.is_empty() {
                            touched.push((quote.symbol.clone(), json.clone()));
                        }
                        topic.last_json = Some(json);
                        topic.last = Some(quote);
                    }
                }
                HubEvent::Status { provider, state, detail, since } => {
                    // A provider announced before it ran then announces itself the same way: that is no news. Other
                    // repeats are still sent (a retry that failed again, for clients that watch for it).
                    let known = s.providers.get(&provider);
                    let announced_again = state == ProviderState::Connecting && detail.is_none();
                    if announced_again && known.is_some_and(|p| p.state == state && p.detail.is_none()) {
                        continue;
                    }
                    let msg =
                        ServerMessage::Status { provider: provider.clone(), state, detail: detail.clone(), since };
                    s.providers.insert(provider.clone(), ProviderInfo { name: provider, state, detail, since });
                    let frame = control_frame(&msg);
                    for c in s.clients.values() {
                        c.outbox.push_control(frame.clone());
                    }
                }
                HubEvent::Events(events) => {
                    for event in events {
                        let Some(topic) = s.topics.get_mut(&event.channel) else { continue };
                        topic.silence.heard();
                        let seq = topic.sequence.next();
                        // Alerts are individual facts, not prices: delivered in order, never conflated.
                        let frame = control_frame(&ServerMessage::Event {
                            channel: event.channel,
                            payload: event.payload,
                            ts: event.ts,
                            seq: Some(seq),
                        });
                        // Kept even with nobody listening: a client between two connections resumes from here.
                        topic.sequence.remember(seq, Kind::Event, frame.json.clone());
                        for (_, outbox) in &topic.subscribers {
                            outbox.push_control(frame.clone());
                        }
                    }
                }
                HubEvent::Rejected { symbol, code, message } => self.reject(s, symbol, code, message),
                HubEvent::History { symbol, candles } => {
                    if let Some(topic) = s.topics.get_mut(&symbol) {
                        let added = topic.history.backfill(candles);
                        tracing::debug!(%symbol, added, "history backfilled");
                    }
                }
            }
        }
        if !touched.is_empty() {
            self.fan_out(s, &touched);
        }
    }

    /// Sends each client one frame with its share of `touched`; identical shares share one frame.
    fn fan_out(&self, s: &State, touched: &[(Symbol, Bytes)]) {
        let mut shares: HashMap<ClientId, (&Arc<Outbox>, Vec<u32>)> = HashMap::new();
        for (i, (symbol, _)) in touched.iter().enumerate() {
            let Some(topic) = s.topics.get(symbol) else { continue };
            for (client, outbox) in &topic.subscribers {
                shares.entry(*client).or_insert_with(|| (outbox, Vec::new())).1.push(i as u32);
            }
        }
        let mut frames: HashMap<&[u32], Frame> = HashMap::new();
        let mut conflated = 0;
        for (outbox, share) in shares.values() {
            let frame = frames
                .entry(share.as_slice())
                .or_insert_with(|| quotes_frame(Batch::Quotes, share.iter().map(|&i| &touched[i as usize].1)));
            conflated += outbox.push_quotes(
                frame,
                share.iter().map(|&i| {
                    let (symbol, json) = &touched[i as usize];
                    (symbol, json)
                }),
            );
        }
        if conflated > 0 {
            self.metrics.conflated.inc_by(conflated);
        }
    }

    fn reject(&self, s: &mut State, symbol: Symbol, code: ErrorCode, message: String) {
        let Some(topic) = s.topics.remove(&symbol) else { return };
        if topic.leased_until.is_some() {
            s.leases -= 1;
        }
        let frame = control_frame(&ServerMessage::Subscribed {
            continuity: Vec::new(),
            id: None,
            symbols: Vec::new(),
            rejected: vec![Rejection { symbol: symbol.to_string(), code, message, suggestions: Vec::new() }],
        });
        for (client, outbox) in &topic.subscribers {
            if let Some(c) = s.clients.get_mut(client) {
                c.symbols.remove(&symbol);
            }
            outbox.forget([&symbol]);
            outbox.push_control(frame.clone());
        }
        if topic.wanted() {
            let _ = self.demand.send(Demand::Remove(symbol));
        }
        self.metrics.topics.set(wanted_topics(s) as i64);
    }

    /// Cached quotes of `symbols` and the symbols with no value yet.
    pub(crate) fn quotes(&self, symbols: &[Symbol]) -> (Vec<Quote>, Vec<Symbol>) {
        let s = self.state.lock();
        let mut quotes = Vec::with_capacity(symbols.len());
        let mut pending = Vec::new();
        for symbol in symbols {
            match s.topics.get(symbol).and_then(|t| t.last.clone()) {
                Some(q) => quotes.push(q),
                None => pending.push(symbol.clone()),
            }
        }
        (quotes, pending)
    }

    /// Every cached quote, sorted by symbol.
    pub(crate) fn all_quotes(&self) -> Vec<Quote> {
        let s = self.state.lock();
        let mut quotes: Vec<Quote> = s.topics.values().filter_map(|t| t.last.clone()).collect();
        quotes.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        quotes
    }

    /// Keeps `symbols` demanded until `lease_ttl` from now (REST polling keeps data fresh this way).
    pub(crate) fn lease(&self, symbols: &[Symbol]) -> Result<(), LeaseLimit> {
        let until = Instant::now() + self.config.lease_ttl;
        let mut s = self.state.lock();
        let new = symbols.iter().filter(|sym| s.topics.get(*sym).is_none_or(|t| t.leased_until.is_none())).count();
        if s.leases + new > self.config.max_leases {
            return Err(LeaseLimit { max: self.config.max_leases });
        }
        for symbol in symbols {
            let topic = s.topics.entry(symbol.clone()).or_insert_with(|| new_topic(&self.config));
            let was_wanted = topic.wanted();
            let was_leased = topic.leased_until.replace(until).is_some();
            topic.idle_since = None;
            if !was_leased {
                s.leases += 1;
            }
            if !was_wanted {
                let _ = self.demand.send(Demand::Add(symbol.clone()));
            }
        }
        self.metrics.topics.set(wanted_topics(&s) as i64);
        Ok(())
    }

    /// Ends expired leases and forgets the oldest idle topics beyond `max_idle_topics`. Call periodically.
    pub(crate) fn sweep(&self, now: Instant) {
        let mut s = self.state.lock();
        let s = &mut *s;
        let mut ended = 0;
        for (symbol, topic) in s.topics.iter_mut() {
            if topic.leased_until.is_some_and(|until| until <= now) {
                topic.leased_until = None;
                ended += 1;
                if !topic.wanted() {
                    topic.idle_since = Some(now);
                    let _ = self.demand.send(Demand::Remove(symbol.clone()));
                }
            }
        }
        s.leases -= ended;
        self.report_silence(s, now);
        let mut idle: Vec<(Instant, Symbol)> =
            s.topics.iter().filter_map(|(sym, t)| t.idle_since.map(|at| (at, sym.clone()))).collect();
        if idle.len() > self.config.max_idle_topics {
            idle.sort();
            for (_, symbol) in &idle[..idle.len() - self.config.max_idle_topics] {
                s.topics.remove(symbol);
            }
        }
        self.metrics.topics.set(wanted_topics(s) as i64);
    }

    /// Tells the subscribers of every wanted topic that has produced nothing for `no_data_after` (a symbol the
    /// provider accepted but never quotes: unknown to it, a closed market, a plan that does not include it).
    fn report_silence(&self, s: &mut State, now: Instant) {
        let Some(after) = self.config.no_data_after else { return };
        let after_ms = after.as_millis() as u64;
        for (symbol, topic) in s.topics.iter_mut() {
            if !topic.wanted() {
                topic.silence = Silence::default();
                continue;
            }
            if topic.silence.produced {
                continue;
            }
            let since = *topic.silence.since.get_or_insert(now);
            if now.duration_since(since) < after {
                continue;
            }
            topic.silence.flagged = true;
            let mut frame = None;
            for (client, outbox) in &topic.subscribers {
                if !topic.silence.told.contains(client) {
                    let frame = frame.get_or_insert_with(|| {
                        control_frame(&ServerMessage::NoData { symbols: vec![symbol.clone()], after_ms })
                    });
                    outbox.push_control(frame.clone());
                    topic.silence.told.push(*client);
                }
            }
        }
    }

    /// Wanted symbols that have produced nothing for `no_data_after`, for `/api/status`.
    pub(crate) fn no_data(&self) -> Vec<String> {
        let s = self.state.lock();
        let mut out: Vec<String> =
            s.topics.iter().filter(|(_, t)| t.wanted() && t.silence.flagged).map(|(sym, _)| sym.to_string()).collect();
        out.sort();
        out
    }

    /// Recent ticks and candles of `tf` of `symbol` with event times in `[from, to)` (empty if the relay has
    /// none), and the start of the oldest minute held in memory: older candles can only come from a store.
    pub(crate) fn history(&self, symbol: &Symbol, tf: Timeframe, from: i64, to: i64) -> (HistoryResponse, Option<i64>) {
        let s = self.state.lock();
        let topic = s.topics.get(symbol);
        let response = HistoryResponse {
            symbol: symbol.clone(),
            ticks: topic
                .map(|t| t.history.ticks().into_iter().filter(|k| k.ts >= from && k.ts < to).collect())
                .unwrap_or_default(),
            candles: topic.map(|t| t.history.candles(tf, from, to)).unwrap_or_default(),
            tf,
        };
        (response, topic.and_then(|t| t.history.oldest_minute()))
    }

    /// The last known state of every provider.
    pub(crate) fn providers(&self) -> Vec<ProviderInfo> {
        self.state.lock().providers.values().cloned().collect()
    }

    /// Per-client counters, for `/api/clients`.
    pub(crate) fn clients(&self) -> Vec<ClientStatus> {
        let s = self.state.lock();
        let mut out: Vec<ClientStatus> = s
            .clients
            .iter()
            .map(|(id, c)| {
                let (delivered, conflated, queued_frames) = c.outbox.counters();
                ClientStatus {
                    id: *id,
                    transport: c.transport.to_owned(),
                    symbols: c.symbols.len(),
                    delivered,
                    conflated,
                    queued_frames,
                    connected_ms: c.connected_ms,
                }
            })
            .collect();
        out.sort_by_key(|c| c.id);
        out
    }

    /// (connected clients, wanted topics).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.clients.len(), wanted_topics(&s))
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

impl ClientHandle {
    pub(crate) fn id(&self) -> ClientId {
        self.id
    }

    #[cfg(test)]
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Waits for the next frames to write: queued frames, then a conflated catch-up frame if the client fell
    /// behind. `None` once the relay closed this client's outbox and everything queued was handed out. Frames
    /// are handed out at most once per [`COALESCE`], so what arrives sooner goes out in the same write.
    pub(crate) async fn next_frames(&self) -> Option<Vec<Frame>> {
        loop {
            // The timers are boxed: each is made only when needed, and an idle connection's task keeps no room
            // for them.
            if let Some(due) = self.outbox.not_before(COALESCE) {
                Box::pin(tokio::time::sleep_until(due.into())).await;
            }
            let Drained { frames, closed } = self.outbox.drain();
            if !frames.is_empty() {
                return Some(frames);
            }
            if closed {
                return None;
            }
            match self.outbox.next_due() {
                // A rate-limited value is held: it must go out when due even if nothing else arrives.
                Some(due) => {
                    tokio::select! {
                        () = self.outbox.ready() => {}
                        () = Box::pin(tokio::time::sleep_until(due.into())) => {}
                    }
                }
                None => self.outbox.ready().await,
            }
        }
    }

    /// Whatever is queued now, without waiting (a connection that is closing sends what explains why).
    pub(crate) fn queued_frames(&self) -> Vec<Frame> {
        self.outbox.drain().frames
    }

    /// Records that `frames` reached the socket.
    pub(crate) fn delivered(&self, frames: &[Frame]) {
        let quotes: u64 = frames.iter().map(|f| u64::from(f.quotes)).sum();
        self.outbox.record_delivered(quotes);
        self.hub.metrics.quotes_out.inc_by(quotes);
        self.hub.metrics.frames_out.inc_by(frames.len() as u64);
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.hub.disconnect(self.id);
    }
}

fn new_topic(config: &HubConfig) -> Topic {
    Topic {
        subscribers: Vec::new(),
        leased_until: None,
        last: None,
        last_json: None,
        history: History::new(config.history_ticks, config.history_candles),
        sequence: Sequence::new(config.resume_updates),
        idle_since: None,
        silence: Silence::default(),
    }
}

fn wanted_topics(s: &State) -> usize {
    s.topics.values().filter(|t| t.wanted()).count()
}

#[cfg(test)]
mod tests;
