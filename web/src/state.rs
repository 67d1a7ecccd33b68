//! The dashboard's model: [`AppState`] and the [`Action`]s that change it, applied by a pure reducer.
//!
//! Owns: the watchlist and one [`Row`] per watched symbol (last quote, tick direction, sparkline, cached and
//! rejected flags), what is known about the connection and the providers, the activity log and the stats.
//! Does not own: sockets, timers or storage. Time comes in with the actions (`now_ms`), so every transition is
//! deterministic and tested natively.
//!
//! Rows are `Rc<Row>`: a batch of quotes replaces only the rows it touches, and the row components compare
//! props by pointer, so unchanged rows are not re-rendered.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use hamster_shared::api::{HistoryResponse, QuotesResponse};
use hamster_shared::{ErrorCode, ProviderState, Quote, ServerMessage, Symbol};
use yew::Reducible;

use crate::events::ConnEvent;
use crate::stats::{LagWindow, RateCounter};

/// Shown on first visit (and when the saved watchlist is unreadable).
pub const DEFAULT_WATCHLIST: [&str; 8] = ["BTC/USD", "ETH/USD", "AAPL", "MSFT", "NVDA", "SPY", "EUR/USD", "GBP/USD"];
/// Entries kept in the activity log.
pub const LOG_CAPACITY: usize = 100;
/// Points kept per sparkline.
pub const SPARK_POINTS: usize = 60;
/// A row with no fresh value for this long is dimmed as stale.
pub const STALE_AFTER_MS: i64 = 15_000;
/// Shortest time between two flashes of one row. The flash animation lasts 0.7 s; a row ticking faster would
/// otherwise restart it on every tick and never stop animating, which costs style and paint work in every
/// frame (with many fast symbols, the largest rendering cost left) and reads as a constant tint anyway.
pub const FLASH_GAP_MS: i64 = 1_000;

/// The symbols of [`DEFAULT_WATCHLIST`].
pub fn default_watchlist() -> Vec<Symbol> {
    DEFAULT_WATCHLIST.iter().filter_map(|s| Symbol::parse(s).ok()).collect()
}

/// Which way the last price change went; drives the green/red flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    Up,
    Down,
    #[default]
    Flat,
}

/// A relay's refusal of a symbol, shown in its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

/// The latest message on a channel row (a non-price feed such as an options-flow alert stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEvent {
    pub ts: i64,
    /// The payload as compact JSON, cut to [`EVENT_PREVIEW_CHARS`].
    pub preview: String,
}

/// Characters of an event payload shown in its row.
pub const EVENT_PREVIEW_CHARS: usize = 160;

/// One point of a sparkline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparkPoint {
    pub ts: i64,
    pub price: f64,
}

/// Everything one watchlist row shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub symbol: Symbol,
    pub quote: Option<Quote>,
    /// The direction of the latest flash.
    pub direction: Direction,
    /// Bumped on every flash (a price change at least [`FLASH_GAP_MS`] after the last flash) so the row can
    /// restart its flash animation.
    pub flash_seq: u64,
    /// Local time of the latest flash.
    pub flashed_ms: Option<i64>,
    /// Local time the last fresh value arrived (`None` for values restored from the cache).
    pub received_ms: Option<i64>,
    /// The value was restored from localStorage and nothing fresh has arrived since.
    pub cached: bool,
    pub refusal: Option<Refusal>,
    /// Oldest first, at most [`SPARK_POINTS`].
    pub spark: VecDeque<SparkPoint>,
    /// Events received when the symbol is a channel rather than an instrument.
    pub events: u64,
    pub last_event: Option<ChannelEvent>,
}

impl Row {
    pub fn new(symbol: Symbol) -> Row {
        Row {
            symbol,
            quote: None,
            direction: Direction::Flat,
            flash_seq: 0,
            flashed_ms: None,
            received_ms: None,
            cached: false,
            refusal: None,
            spark: VecDeque::new(),
            events: 0,
            last_event: None,
        }
    }

    /// No fresh value for [`STALE_AFTER_MS`] (or only a cached one).
    pub fn is_stale(&self, now_ms: i64) -> bool {
        self.quote.is_some() && (self.cached || self.received_ms.is_none_or(|t| now_ms - t > STALE_AFTER_MS))
    }

    fn push_spark(&mut self, point: SparkPoint) {
        match self.spark.back_mut() {
            Some(last) if last.ts > point.ts => return,
            Some(last) if last.ts == point.ts => *last = point,
            _ => self.spark.push_back(point),
        }
        while self.spark.len() > SPARK_POINTS {
            self.spark.pop_front();
        }
    }
}

/// The socket's side of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening a socket; `attempt` counts failures since the last stable connection.
    Connecting { attempt: u32 },
    /// `hello` received.
    Live { since_ms: i64 },
    /// Down; the next attempt is at `retry_at_ms`.
    Waiting { attempt: u32, retry_at_ms: i64 },
}

/// Whether the REST fallback works while the socket is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestHealth {
    /// Not polled since the socket was last live.
    Idle,
    Ok {
        at_ms: i64,
    },
    Failing,
}

/// What the connection badge shows; `as_str` is its `data-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadgeKind {
    Live,
    Connecting,
    Reconnecting,
    Offline,
    Fallback,
}

impl BadgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BadgeKind::Live => "live",
            BadgeKind::Connecting => "connecting",
            BadgeKind::Reconnecting => "reconnecting",
            BadgeKind::Offline => "offline",
            BadgeKind::Fallback => "fallback",
        }
    }
}

/// The connection badge: its kind, its text, and a detail that changes every second (the retry countdown),
/// kept apart so screen readers are told about state changes but not about every tick of the countdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    pub kind: BadgeKind,
    pub label: String,
    pub detail: Option<String>,
}

/// An upstream provider as last reported by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderView {
    pub state: ProviderState,
    pub detail: Option<String>,
    pub since: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Unique and increasing: the list key.
    pub id: u64,
    pub at_ms: i64,
    pub level: LogLevel,
    pub text: String,
}

/// Counters behind the stats panel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Quote values received (stream, snapshots and REST).
    pub updates: u64,
    pub reconnects: u32,
    pub lag: LagWindow,
    pub rate: RateCounter,
}

/// What the stats panel shows, computed at render time.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsView {
    pub updates: u64,
    pub per_second: f64,
    pub symbols: usize,
    pub lag_avg_ms: Option<f64>,
    pub lag_p95_ms: Option<f64>,
    pub reconnects: u32,
}

/// The whole model.
#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    /// Display order. An `Rc` so components can take it as a prop that compares cheaply.
    pub watchlist: Rc<Vec<Symbol>>,
    pub rows: HashMap<Symbol, Rc<Row>>,
    pub phase: Phase,
    pub rest: RestHealth,
    /// A `hello` was seen at least once on this page (so a later one is a reconnect).
    pub ever_live: bool,
    pub heartbeat_ms: Option<u64>,
    pub server: Option<String>,
    /// Base URL for REST calls, once the connection service has resolved it.
    pub http_base: Option<String>,
    pub providers: BTreeMap<String, ProviderView>,
    /// Oldest first, at most [`LOG_CAPACITY`].
    pub log: Rc<VecDeque<LogEntry>>,
    pub stats: Stats,
    /// The latest time an action brought in.
    pub now_ms: i64,
    /// Bumped whenever a quote value changes, so persistence knows when to save.
    pub quotes_rev: u64,
    /// Bumped whenever the watchlist changes.
    pub watchlist_rev: u64,
    /// Bumped by every reduction: a cheap identity for the context value.
    pub generation: u64,
    next_log_id: u64,
}

/// Everything that changes the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Events collected during one animation frame, applied together so the page renders once.
    Batch {
        events: Vec<ConnEvent>,
        now_ms: i64,
    },
    /// The once-a-second clock (staleness, "next try in", rates).
    Clock {
        now_ms: i64,
    },
    /// Add an already validated symbol (validation happens in the form, with the user's input at hand).
    AddSymbol {
        symbol: Symbol,
        now_ms: i64,
    },
    RemoveSymbol {
        symbol: Symbol,
        now_ms: i64,
    },
    /// Recent ticks for a sparkline.
    History(HistoryResponse),
    /// A failure worth logging that no connection event covers (e.g. history).
    Warn {
        text: String,
        now_ms: i64,
    },
}

impl AppState {
    /// The state at page load: the saved (or default) watchlist and any cached quotes, shown as cached.
    pub fn restored(watchlist: Vec<Symbol>, cached: Vec<Quote>, now_ms: i64) -> AppState {
        let mut list: Vec<Symbol> = Vec::with_capacity(watchlist.len());
        for s in watchlist {
            if !list.contains(&s) {
                list.push(s);
            }
        }
        let mut rows: HashMap<Symbol, Rc<Row>> =
            list.iter().map(|s| (s.clone(), Rc::new(Row::new(s.clone())))).collect();
        let mut restored = 0;
        for q in cached {
            if let Some(row) = rows.get_mut(&q.symbol) {
                let row = Rc::make_mut(row);
                row.push_spark(SparkPoint { ts: q.ts, price: q.price });
                row.quote = Some(q);
                row.cached = true;
                restored += 1;
            }
        }
        let mut state = AppState {
            watchlist: Rc::new(list),
            rows,
            phase: Phase::Connecting { attempt: 0 },
            rest: RestHealth::Idle,
            ever_live: false,
            heartbeat_ms: None,
            server: None,
            http_base: None,
            providers: BTreeMap::new(),
            log: Rc::new(VecDeque::new()),
            stats: Stats::default(),
            now_ms,
            quotes_rev: 0,
            watchlist_rev: 0,
            generation: 0,
            next_log_id: 0,
        };
        if restored > 0 {
            state.log(LogLevel::Info, format!("restored {restored} cached quotes"));
        }
        state
    }

    /// Applies one action in place. The reducer proper ([`Reducible::reduce`]) clones and calls this.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Batch { events, now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                for event in events {
                    self.apply_event(event, now_ms);
                }
            }
            Action::Clock { now_ms } => self.now_ms = self.now_ms.max(now_ms),
            Action::AddSymbol { symbol, now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                if self.rows.contains_key(&symbol) {
                    return;
                }
                self.log(LogLevel::Info, format!("added {symbol}"));
                self.rows.insert(symbol.clone(), Rc::new(Row::new(symbol.clone())));
                Rc::make_mut(&mut self.watchlist).push(symbol);
                self.watchlist_rev += 1;
            }
            Action::RemoveSymbol { symbol, now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                if self.rows.remove(&symbol).is_none() {
                    return;
                }
                Rc::make_mut(&mut self.watchlist).retain(|s| *s != symbol);
                self.watchlist_rev += 1;
                self.quotes_rev += 1;
                self.log(LogLevel::Info, format!("removed {symbol}"));
            }
            Action::History(history) => self.apply_history(history),
            Action::Warn { text, now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                self.log(LogLevel::Warn, text);
            }
        }
    }

    fn apply_event(&mut self, event: ConnEvent, now_ms: i64) {
        match event {
            ConnEvent::Endpoints { ws_url, http_base, warning } => {
                if let Some(w) = warning {
                    self.log(LogLevel::Warn, w);
                }
                self.log(LogLevel::Info, format!("relay at {ws_url}"));
                self.http_base = Some(http_base);
            }
            ConnEvent::Connecting { attempt } => {
                self.phase = Phase::Connecting { attempt };
                if attempt > 0 {
                    self.log(LogLevel::Info, format!("reconnecting (attempt {attempt})"));
                }
            }
            ConnEvent::Closed { reason, attempt, retry_in_ms } => {
                let was_live = matches!(self.phase, Phase::Live { .. });
                let retry_at_ms = now_ms.saturating_add(i64::try_from(retry_in_ms).unwrap_or(i64::MAX));
                self.phase = Phase::Waiting { attempt, retry_at_ms };
                let text = format!(
                    "{}: {reason}; retrying in {:.1} s",
                    if was_live { "connection lost" } else { "could not connect" },
                    retry_in_ms as f64 / 1000.0
                );
                self.log(if was_live { LogLevel::Warn } else { LogLevel::Info }, text);
            }
            ConnEvent::Server(msg) => self.apply_server(msg, now_ms),
            ConnEvent::RestQuotes(QuotesResponse { quotes, pending: _ }) => {
                if matches!(self.phase, Phase::Live { .. }) {
                    // The socket came back while the poll was in flight; streaming data wins.
                    return;
                }
                if !matches!(self.rest, RestHealth::Ok { .. }) {
                    self.log(LogLevel::Info, "fallback: polling quotes over REST".into());
                }
                self.rest = RestHealth::Ok { at_ms: now_ms };
                self.apply_quotes(quotes, now_ms, false);
            }
            ConnEvent::RestFailed(err) => {
                if matches!(self.phase, Phase::Live { .. }) {
                    return;
                }
                if self.rest != RestHealth::Failing {
                    self.log(LogLevel::Warn, format!("REST fallback failed: {err}"));
                }
                self.rest = RestHealth::Failing;
            }
            ConnEvent::Warning(text) => self.log(LogLevel::Warn, text),
        }
    }

    fn apply_server(&mut self, msg: ServerMessage, now_ms: i64) {
        match msg {
            ServerMessage::Hello { protocol, server, heartbeat_ms, providers } => {
                if self.ever_live {
                    self.stats.reconnects += 1;
                    self.log(LogLevel::Info, format!("reconnected to {server}"));
                } else {
                    self.log(LogLevel::Info, format!("connected to {server} (protocol {protocol})"));
                }
                if protocol != hamster_shared::PROTOCOL_VERSION {
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "relay speaks protocol {protocol}, this dashboard {}",
                            hamster_shared::PROTOCOL_VERSION
                        ),
                    );
                }
                self.phase = Phase::Live { since_ms: now_ms };
                self.rest = RestHealth::Idle;
                self.ever_live = true;
                self.heartbeat_ms = Some(heartbeat_ms);
                self.server = Some(server);
                self.providers = providers
                    .into_iter()
                    .map(|p| (p.name, ProviderView { state: p.state, detail: p.detail, since: p.since }))
                    .collect();
            }
            ServerMessage::Subscribed { id: _, symbols, rejected } => {
                if !symbols.is_empty() {
                    self.log(LogLevel::Info, format!("subscribed {}", join(&symbols)));
                }
                for s in &symbols {
                    if let Some(row) = self.rows.get_mut(s) {
                        if row.refusal.is_some() {
                            Rc::make_mut(row).refusal = None;
                        }
                    }
                }
                for r in rejected {
                    self.log(LogLevel::Warn, format!("rejected {}: {} ({})", r.symbol, r.message, r.code.as_str()));
                    // The relay echoes what it was sent; we send canonical symbols, but match leniently.
                    let key = Symbol::parse(&r.symbol).ok();
                    if let Some(row) = key.and_then(|k| self.rows.get_mut(&k)) {
                        Rc::make_mut(row).refusal = Some(Refusal { code: r.code, message: r.message });
                    }
                }
            }
            ServerMessage::Unsubscribed { id: _, symbols } => {
                if !symbols.is_empty() {
                    self.log(LogLevel::Info, format!("unsubscribed {}", join(&symbols)));
                }
            }
            ServerMessage::Snapshot { quotes } => self.apply_quotes(quotes, now_ms, false),
            ServerMessage::Quotes { quotes } => self.apply_quotes(quotes, now_ms, true),
            ServerMessage::Status { provider, state, detail, since } => {
                let text = match &detail {
                    Some(d) => format!("provider {provider}: {} ({d})", provider_state_str(state)),
                    None => format!("provider {provider}: {}", provider_state_str(state)),
                };
                let changed = self.providers.get(&provider).is_none_or(|p| p.state != state || p.detail != detail);
                if changed {
                    let level = match state {
                        ProviderState::Live | ProviderState::Connecting => LogLevel::Info,
                        ProviderState::Reconnecting | ProviderState::Degraded => LogLevel::Warn,
                        ProviderState::Down => LogLevel::Error,
                    };
                    self.log(level, text);
                }
                self.providers.insert(provider, ProviderView { state, detail, since });
            }
            ServerMessage::Error { id: _, code, message } => {
                self.log(LogLevel::Error, format!("relay error {}: {message}", code.as_str()));
            }
            ServerMessage::Event { channel, payload, ts } => {
                let Some(row) = self.rows.get_mut(&channel) else {
                    return;
                };
                let row = Rc::make_mut(row);
                row.events += 1;
                row.received_ms = Some(now_ms);
                row.last_event = Some(ChannelEvent { ts, preview: preview(&payload) });
                if row.events == 1 {
                    self.log(LogLevel::Info, format!("first event on {channel}"));
                }
            }
            ServerMessage::Pong { .. } => {}
        }
    }

    /// Applies quote values. `live` marks streamed updates, the only ones whose lag means anything (snapshots
    /// and REST values are cached on the relay and can be old by design).
    fn apply_quotes(&mut self, quotes: Vec<Quote>, now_ms: i64, live: bool) {
        let mut applied = 0u64;
        for q in quotes {
            let Some(row) = self.rows.get_mut(&q.symbol) else {
                // Not (or no longer) watched, e.g. a late update after a removal.
                continue;
            };
            if let (Some(old), false) = (&row.quote, row.cached) {
                // Out-of-order or repeated values (a REST poll racing the stream) must not move the price back.
                if q.ts < old.ts || (q.ts == old.ts && q == *old) {
                    continue;
                }
            }
            if live {
                self.stats.lag.record((now_ms - q.ts) as f64);
            }
            let row = Rc::make_mut(row);
            let moved = match &row.quote {
                Some(old) if q.price > old.price => Direction::Up,
                Some(old) if q.price < old.price => Direction::Down,
                _ => Direction::Flat,
            };
            let flash_due = row.flashed_ms.is_none_or(|t| now_ms - t >= FLASH_GAP_MS);
            if moved != Direction::Flat && flash_due {
                row.direction = moved;
                row.flash_seq += 1;
                row.flashed_ms = Some(now_ms);
            }
            row.push_spark(SparkPoint { ts: q.ts, price: q.price });
            row.quote = Some(q);
            row.cached = false;
            row.received_ms = Some(now_ms);
            applied += 1;
        }
        if applied > 0 {
            self.stats.updates += applied;
            self.stats.rate.record(now_ms, applied);
            self.quotes_rev += 1;
        }
    }

    /// Seeds a sparkline with recorded ticks, keeping live points newer than the history.
    fn apply_history(&mut self, history: HistoryResponse) {
        let Some(row) = self.rows.get_mut(&history.symbol) else {
            return;
        };
        let Some(last_hist) = history.ticks.last().map(|t| t.ts) else {
            return;
        };
        let row = Rc::make_mut(row);
        let live: Vec<SparkPoint> = row.spark.iter().copied().filter(|p| p.ts > last_hist).collect();
        let skip = history.ticks.len().saturating_sub(SPARK_POINTS);
        row.spark = history.ticks[skip..].iter().map(|t| SparkPoint { ts: t.ts, price: t.price }).collect();
        for p in live {
            row.push_spark(p);
        }
    }

    fn log(&mut self, level: LogLevel, text: String) {
        let log = Rc::make_mut(&mut self.log);
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(LogEntry { id: self.next_log_id, at_ms: self.now_ms, level, text });
        self.next_log_id += 1;
    }

    /// True once `hello` arrived on the current socket.
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live { .. })
    }

    /// Whether any row shows a value (cached or not).
    fn has_values(&self) -> bool {
        self.rows.values().any(|r| r.quote.is_some())
    }

    /// The connection badge for the current state.
    pub fn badge(&self) -> Badge {
        let retry = match self.phase {
            Phase::Waiting { attempt, retry_at_ms } => {
                let secs = ((retry_at_ms - self.now_ms).max(0) as f64 / 1000.0).ceil();
                Some(format!("attempt {attempt}, next try in {secs:.0} s"))
            }
            Phase::Connecting { attempt } => Some(format!("attempt {attempt}, connecting now")),
            Phase::Live { .. } => None,
        };
        let (kind, label, detail) = match (self.phase, self.rest) {
            (Phase::Live { .. }, _) => (BadgeKind::Live, "Live", None),
            (_, RestHealth::Ok { .. }) => (BadgeKind::Fallback, "Fallback (REST)", retry),
            (_, RestHealth::Failing) => {
                let label =
                    if self.has_values() { "Offline – showing cached data" } else { "Offline – no data yet" };
                (BadgeKind::Offline, label, retry)
            }
            (Phase::Connecting { attempt: 0 }, RestHealth::Idle) if !self.ever_live => {
                (BadgeKind::Connecting, "Connecting…", None)
            }
            (_, RestHealth::Idle) => (BadgeKind::Reconnecting, "Reconnecting", retry),
        };
        Badge { kind, label: label.to_owned(), detail }
    }

    /// Whether a row should be dimmed: no fresh value for a while, or its provider is not serving.
    pub fn row_is_stale(&self, row: &Row) -> bool {
        if row.is_stale(self.now_ms) {
            return true;
        }
        let provider = row.quote.as_ref().map(|q| q.provider.as_str());
        provider
            .and_then(|p| self.providers.get(p))
            .is_some_and(|p| matches!(p.state, ProviderState::Down | ProviderState::Reconnecting))
    }

    pub fn stats_view(&self) -> StatsView {
        StatsView {
            updates: self.stats.updates,
            per_second: self.stats.rate.per_second(self.now_ms),
            symbols: self.watchlist.len(),
            lag_avg_ms: self.stats.lag.average(),
            lag_p95_ms: self.stats.lag.p95(),
            reconnects: self.stats.reconnects,
        }
    }

    /// The values worth caching: every watched row's last quote, in watchlist order.
    pub fn quotes_to_cache(&self) -> Vec<&Quote> {
        self.watchlist.iter().filter_map(|s| self.rows.get(s).and_then(|r| r.quote.as_ref())).collect()
    }
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        // Cheap: rows and the log are behind `Rc`s and only the touched ones get copied.
        let mut next = Rc::unwrap_or_clone(self);
        next.apply(action);
        next.generation += 1;
        Rc::new(next)
    }
}

pub fn provider_state_str(state: ProviderState) -> &'static str {
    match state {
        ProviderState::Live => "live",
        ProviderState::Connecting => "connecting",
        ProviderState::Reconnecting => "reconnecting",
        ProviderState::Degraded => "degraded",
        ProviderState::Down => "down",
    }
}

/// Compact JSON of an event payload, cut at a character boundary.
fn preview(payload: &serde_json::Value) -> String {
    let text = payload.to_string();
    match text.char_indices().nth(EVENT_PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn join(symbols: &[Symbol]) -> String {
    const SHOWN: usize = 10;
    let mut text = symbols.iter().take(SHOWN).map(Symbol::as_str).collect::<Vec<_>>().join(", ");
    if symbols.len() > SHOWN {
        text.push_str(&format!(" and {} more", symbols.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use hamster_shared::api::Tick;
    use hamster_shared::{ProviderInfo, Rejection};
    use wasm_bindgen_test::wasm_bindgen_test;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).expect("valid test symbol")
    }

    fn quote(s: &str, price: f64, ts: i64) -> Quote {
        Quote {
            symbol: sym(s),
            price,
            ts,
            provider: "sim".into(),
            bid: None,
            ask: None,
            volume: None,
            change: None,
            change_pct: None,
        }
    }

    fn hello() -> ConnEvent {
        ConnEvent::Server(ServerMessage::Hello {
            protocol: hamster_shared::PROTOCOL_VERSION,
            server: "hamster-relay/test".into(),
            heartbeat_ms: 15_000,
            providers: vec![ProviderInfo { name: "sim".into(), state: ProviderState::Live, detail: None, since: 0 }],
        })
    }

    fn batch(state: &mut AppState, now_ms: i64, events: Vec<ConnEvent>) {
        state.apply(Action::Batch { events, now_ms });
    }

    fn ticks(state: &mut AppState, now_ms: i64, quotes: Vec<Quote>) {
        batch(state, now_ms, vec![ConnEvent::Server(ServerMessage::Quotes { quotes })]);
    }

    fn fresh() -> AppState {
        AppState::restored(default_watchlist(), vec![], 1_000)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn default_watchlist_is_valid_and_complete() {
        let list = default_watchlist();
        assert_eq!(list.len(), DEFAULT_WATCHLIST.len());
        let state = fresh();
        assert_eq!(state.watchlist.len(), 8);
        assert_eq!(state.rows.len(), 8);
        assert_eq!(state.badge().kind, BadgeKind::Connecting);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn restoring_dedupes_and_marks_cached() {
        let state = AppState::restored(
            vec![sym("AAPL"), sym("aapl"), sym("MSFT")],
            vec![quote("AAPL", 190.0, 5), quote("TSLA", 1.0, 5)],
            10,
        );
        assert_eq!(*state.watchlist, vec![sym("AAPL"), sym("MSFT")]);
        let row = &state.rows[&sym("AAPL")];
        assert!(row.cached);
        assert!(row.is_stale(10), "cached values are shown dimmed");
        assert!(!state.rows.contains_key(&sym("TSLA")), "unwatched cached quotes are dropped");
        assert_eq!(state.log.len(), 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn quotes_update_rows_with_direction_and_stats() {
        let mut s = fresh();
        batch(&mut s, 2_000, vec![hello()]);
        assert!(s.is_live());
        ticks(&mut s, 2_100, vec![quote("AAPL", 190.0, 2_050)]);
        let first = s.rows[&sym("AAPL")].clone();
        assert_eq!(first.direction, Direction::Flat);
        ticks(&mut s, 2_300, vec![quote("AAPL", 191.0, 2_250), quote("MSFT", 400.0, 2_290)]);
        let row = &s.rows[&sym("AAPL")];
        assert_eq!(row.direction, Direction::Up);
        assert_eq!(row.flash_seq, 1);
        assert_eq!(row.spark.len(), 2);
        ticks(&mut s, 2_400, vec![quote("AAPL", 189.0, 2_390)]);
        let row = &s.rows[&sym("AAPL")];
        assert_eq!((row.direction, row.flash_seq), (Direction::Up, 1), "no second flash within FLASH_GAP_MS");
        ticks(&mut s, 2_300 + FLASH_GAP_MS, vec![quote("AAPL", 188.0, 2_290 + FLASH_GAP_MS)]);
        let row = &s.rows[&sym("AAPL")];
        assert_eq!((row.direction, row.flash_seq), (Direction::Down, 2));
        assert_eq!(s.stats.updates, 5);
        assert_eq!(s.stats.lag.len(), 5);
        assert_eq!(s.stats.lag.average(), Some((50.0 + 50.0 + 10.0 + 10.0 + 10.0) / 5.0));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn untouched_rows_keep_their_rc() {
        let mut s = fresh();
        batch(&mut s, 2_000, vec![hello()]);
        ticks(&mut s, 2_100, vec![quote("AAPL", 190.0, 2_050), quote("MSFT", 400.0, 2_050)]);
        let msft_before = s.rows[&sym("MSFT")].clone();
        let aapl_before = s.rows[&sym("AAPL")].clone();
        ticks(&mut s, 2_200, vec![quote("AAPL", 190.5, 2_150)]);
        assert!(Rc::ptr_eq(&msft_before, &s.rows[&sym("MSFT")]), "MSFT must not re-render");
        assert!(!Rc::ptr_eq(&aapl_before, &s.rows[&sym("AAPL")]));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn stale_and_duplicate_quotes_are_ignored() {
        let mut s = fresh();
        batch(&mut s, 2_000, vec![hello()]);
        ticks(&mut s, 2_100, vec![quote("AAPL", 190.0, 2_050)]);
        let before = s.rows[&sym("AAPL")].clone();
        ticks(&mut s, 2_200, vec![quote("AAPL", 100.0, 1_000), quote("AAPL", 190.0, 2_050)]);
        assert!(Rc::ptr_eq(&before, &s.rows[&sym("AAPL")]));
        assert_eq!(s.stats.updates, 1);
        ticks(&mut s, 2_200, vec![quote("TSLA", 100.0, 2_100)]);
        assert!(!s.rows.contains_key(&sym("TSLA")), "unwatched symbols are not added by quotes");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn fresh_data_clears_cached_flag_even_when_older() {
        let mut s = AppState::restored(vec![sym("AAPL")], vec![quote("AAPL", 190.0, 5_000)], 10);
        batch(&mut s, 6_000, vec![hello()]);
        // A relay that restarted may hold an older value than our cache; it is still the live truth.
        batch(
            &mut s,
            6_100,
            vec![ConnEvent::Server(ServerMessage::Snapshot { quotes: vec![quote("AAPL", 180.0, 4_000)] })],
        );
        let row = &s.rows[&sym("AAPL")];
        assert!(!row.cached);
        assert_eq!(row.quote.as_ref().map(|q| q.price), Some(180.0));
        assert_eq!(s.stats.lag.len(), 0, "snapshots carry no lag");
        assert!(!s.row_is_stale(row));
        s.apply(Action::Clock { now_ms: 6_100 + STALE_AFTER_MS + 1 });
        assert!(s.row_is_stale(&s.rows[&sym("AAPL")]));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn provider_down_dims_its_rows() {
        let mut s = fresh();
        batch(&mut s, 2_000, vec![hello()]);
        ticks(&mut s, 2_100, vec![quote("AAPL", 190.0, 2_050)]);
        assert!(!s.row_is_stale(&s.rows[&sym("AAPL")]));
        batch(
            &mut s,
            2_200,
            vec![ConnEvent::Server(ServerMessage::Status {
                provider: "sim".into(),
                state: ProviderState::Down,
                detail: Some("auth failed".into()),
                since: 2_150,
            })],
        );
        assert!(s.row_is_stale(&s.rows[&sym("AAPL")]));
        assert!(s.log.back().is_some_and(|e| e.level == LogLevel::Error && e.text.contains("auth failed")));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rejections_show_the_relays_reason() {
        let mut s = fresh();
        s.apply(Action::AddSymbol { symbol: sym("nosuch:AAPL"), now_ms: 1_500 });
        batch(
            &mut s,
            2_000,
            vec![
                hello(),
                ConnEvent::Server(ServerMessage::Subscribed {
                    id: None,
                    symbols: vec![sym("AAPL")],
                    rejected: vec![Rejection {
                        symbol: "nosuch:AAPL".into(),
                        code: ErrorCode::UnknownProvider,
                        message: "no provider named nosuch".into(),
                    }],
                }),
            ],
        );
        let refusal = s.rows[&sym("nosuch:AAPL")].refusal.clone();
        assert_eq!(
            refusal,
            Some(Refusal { code: ErrorCode::UnknownProvider, message: "no provider named nosuch".into() })
        );
        assert!(s.log.iter().any(|e| e.text.contains("rejected nosuch:AAPL")));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn add_and_remove_symbols() {
        let mut s = fresh();
        let rev = s.watchlist_rev;
        s.apply(Action::AddSymbol { symbol: sym("TSLA"), now_ms: 2_000 });
        s.apply(Action::AddSymbol { symbol: sym("TSLA"), now_ms: 2_000 });
        assert_eq!(s.watchlist.len(), 9);
        assert_eq!(s.watchlist.last(), Some(&sym("TSLA")));
        assert_eq!(s.watchlist_rev, rev + 1);
        s.apply(Action::RemoveSymbol { symbol: sym("AAPL"), now_ms: 2_100 });
        assert!(!s.watchlist.contains(&sym("AAPL")));
        assert!(!s.rows.contains_key(&sym("AAPL")));
        s.apply(Action::RemoveSymbol { symbol: sym("AAPL"), now_ms: 2_100 });
        assert_eq!(s.watchlist_rev, rev + 2);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn badge_follows_the_connection() {
        let mut s = fresh();
        assert_eq!(s.badge().kind, BadgeKind::Connecting);
        batch(&mut s, 2_000, vec![hello()]);
        assert_eq!(s.badge(), Badge { kind: BadgeKind::Live, label: "Live".into(), detail: None });
        batch(
            &mut s,
            3_000,
            vec![ConnEvent::Closed { reason: "closed (1006)".into(), attempt: 1, retry_in_ms: 2_400 }],
        );
        let badge = s.badge();
        assert_eq!(badge.kind, BadgeKind::Reconnecting);
        assert_eq!(badge.label, "Reconnecting");
        assert_eq!(badge.detail.as_deref(), Some("attempt 1, next try in 3 s"));
        s.apply(Action::Clock { now_ms: 4_000 });
        assert_eq!(s.badge().detail.as_deref(), Some("attempt 1, next try in 2 s"));
        batch(&mut s, 6_000, vec![ConnEvent::RestFailed("connection refused".into())]);
        assert_eq!(s.badge().kind, BadgeKind::Offline);
        assert_eq!(s.badge().label, "Offline – no data yet");
        batch(
            &mut s,
            9_000,
            vec![ConnEvent::RestQuotes(QuotesResponse { quotes: vec![quote("AAPL", 1.0, 8_000)], pending: vec![] })],
        );
        assert_eq!(s.badge().kind, BadgeKind::Fallback);
        assert_eq!(s.rows[&sym("AAPL")].quote.as_ref().map(|q| q.price), Some(1.0));
        batch(&mut s, 9_500, vec![ConnEvent::Connecting { attempt: 2 }, hello()]);
        assert_eq!(s.badge().kind, BadgeKind::Live);
        assert_eq!(s.rest, RestHealth::Idle);
        assert_eq!(s.stats.reconnects, 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn offline_with_cache_says_so() {
        let mut s = AppState::restored(vec![sym("AAPL")], vec![quote("AAPL", 190.0, 5)], 10);
        batch(
            &mut s,
            100,
            vec![
                ConnEvent::Closed { reason: "refused".into(), attempt: 1, retry_in_ms: 100 },
                ConnEvent::RestFailed("refused".into()),
            ],
        );
        let badge = s.badge();
        assert_eq!(badge.kind, BadgeKind::Offline);
        assert_eq!(badge.label, "Offline – showing cached data");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rest_results_are_ignored_while_live() {
        let mut s = fresh();
        batch(&mut s, 2_000, vec![hello()]);
        batch(
            &mut s,
            2_100,
            vec![
                ConnEvent::RestFailed("late".into()),
                ConnEvent::RestQuotes(QuotesResponse { quotes: vec![quote("AAPL", 1.0, 2_000)], pending: vec![] }),
            ],
        );
        assert_eq!(s.badge().kind, BadgeKind::Live);
        assert!(s.rows[&sym("AAPL")].quote.is_none());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn log_is_a_ring_of_100() {
        let mut s = fresh();
        for i in 0..250 {
            s.apply(Action::Warn { text: format!("event {i}"), now_ms: 2_000 + i });
        }
        assert_eq!(s.log.len(), LOG_CAPACITY);
        assert_eq!(s.log.back().map(|e| e.text.as_str()), Some("event 249"));
        assert_eq!(s.log.front().map(|e| e.text.as_str()), Some("event 150"));
        let ids: Vec<u64> = s.log.iter().map(|e| e.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids stay unique and ordered");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn history_seeds_the_sparkline_and_keeps_newer_live_points() {
        let mut s = fresh();
        batch(&mut s, 2_000, vec![hello()]);
        ticks(&mut s, 10_000, vec![quote("AAPL", 200.0, 9_999)]);
        let ticks_in: Vec<Tick> = (0..100).map(|i| Tick { ts: i * 10, price: i as f64 }).collect();
        s.apply(Action::History(HistoryResponse { symbol: sym("AAPL"), ticks: ticks_in, candles: vec![] }));
        let spark = &s.rows[&sym("AAPL")].spark;
        assert_eq!(spark.len(), SPARK_POINTS);
        assert_eq!(spark.back().map(|p| p.price), Some(200.0));
        assert_eq!(spark.front().map(|p| p.price), Some(41.0));
        assert!(spark.iter().zip(spark.iter().skip(1)).all(|(a, b)| a.ts < b.ts));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn provider_status_is_logged_once_per_change() {
        let mut s = fresh();
        batch(&mut s, 2_000, vec![hello()]);
        let status =
            |state| ConnEvent::Server(ServerMessage::Status { provider: "sim".into(), state, detail: None, since: 1 });
        let before = s.log.len();
        batch(&mut s, 2_100, vec![status(ProviderState::Live)]);
        assert_eq!(s.log.len(), before, "hello already said sim is live");
        batch(&mut s, 2_200, vec![status(ProviderState::Reconnecting)]);
        assert_eq!(s.log.len(), before + 1);
        assert_eq!(s.providers["sim"].state, ProviderState::Reconnecting);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn channel_events_fill_their_row() {
        let mut s = fresh();
        s.apply(Action::AddSymbol { symbol: sym("uw:flow-alerts"), now_ms: 1_500 });
        let event = |n: u32| {
            ConnEvent::Server(ServerMessage::Event {
                channel: sym("uw:FLOW-ALERTS"),
                payload: serde_json::json!({ "ticker": "AAPL", "n": n, "note": "é".repeat(300) }),
                ts: 1_900 + i64::from(n),
            })
        };
        batch(&mut s, 2_000, vec![hello(), event(1), event(2)]);
        let row = &s.rows[&sym("uw:FLOW-ALERTS")];
        assert_eq!(row.events, 2);
        let last = row.last_event.clone().expect("an event");
        assert_eq!(last.ts, 1_902);
        assert!(last.preview.starts_with(r#"{"n":2"#) || last.preview.contains(r#""n":2"#), "{}", last.preview);
        assert_eq!(last.preview.chars().count(), EVENT_PREVIEW_CHARS + 1, "cut with an ellipsis");
        assert!(!s.row_is_stale(row), "channels have no price to go stale");
        assert_eq!(s.log.iter().filter(|e| e.text.contains("first event")).count(), 1);
        assert_eq!(s.stats.updates, 0, "events are not quote updates");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reducer_leaves_the_previous_state_untouched() {
        let s = Rc::new(fresh());
        let next = s.clone().reduce(Action::AddSymbol { symbol: sym("TSLA"), now_ms: 5 });
        assert_eq!(s.watchlist.len(), 8);
        assert_eq!(next.watchlist.len(), 9);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cache_export_follows_watchlist_order() {
        let mut s = fresh();
        batch(&mut s, 2_000, vec![hello()]);
        ticks(&mut s, 2_100, vec![quote("MSFT", 400.0, 2_050), quote("AAPL", 190.0, 2_050)]);
        let cached: Vec<String> = s.quotes_to_cache().iter().map(|q| q.symbol.to_string()).collect();
        assert_eq!(cached, ["AAPL", "MSFT"]);
    }
}
