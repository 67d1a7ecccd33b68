//! The dashboard's model: [`AppState`] and the [`Action`]s that change it, applied by a pure reducer.
//!
//! Owns: the watchlist (the one copy of it: the connection service subscribes to whatever this list says) and
//! one [`Row`] per watched symbol, what is known about the connection and the providers, the activity log and
//! the stats, and the trading account ([`portfolio`]). Does not own: sockets, timers or storage. Time comes in
//! with the actions (`now_ms`), so every transition is deterministic and tested natively.
//!
//! The parts live in their own files: [`row`] the rules of one row, [`log`] the activity log, [`view`] what
//! the components derive from the model at render time; this file holds the model and the transitions.

pub(crate) mod alerts;
pub(crate) mod feed;
pub(crate) mod lists;
mod log;
mod portfolio;
mod replay;
mod row;
#[cfg(test)]
mod tests;
mod view;

use crate::format::Fixed;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use hamster_shared::api::{HistoryResponse, QuotesResponse};
use hamster_shared::{Continuity, ProviderState, Quote, ServerMessage, Symbol};

pub(crate) use alerts::Alerts;
pub use alerts::{Alert, Condition, Repeat, Signal};
pub(crate) use feed::Feed;
pub use feed::Filter as FeedFilter;
pub use portfolio::PortfolioAction;
pub(crate) use portfolio::{trim_qty, Field, FieldError, Portfolio, TicketForm, ToastKind, ACCOUNT_REQUEST};
pub(crate) use replay::{plan as replay_plan, Replay};
use yew::Reducible;

pub use row::Row;
pub use view::{Badge, BadgeKind};

pub(crate) use log::{LogEntry, LogLevel};
pub(crate) use row::Direction;
pub(crate) use view::StatsView;

use log::Log;
use row::Refusal;
use view::{ProviderView, Providers};

use crate::events::{ConnEvent, TabRole};
use crate::services::api::Api;
use crate::stats::{LagWindow, RateCounter};

/// Shown on first visit (and when the saved watchlist is unreadable).
pub(crate) const DEFAULT_WATCHLIST: [&str; 8] =
    ["BTC/USD", "ETH/USD", "AAPL", "MSFT", "NVDA", "SPY", "EUR/USD", "GBP/USD"];

/// The symbols of [`DEFAULT_WATCHLIST`].
pub fn default_watchlist() -> Vec<Symbol> {
    DEFAULT_WATCHLIST.iter().filter_map(|s| Symbol::parse(s).ok()).collect()
}

/// The socket's side of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Opening a socket; `attempt` counts failures since the last stable connection.
    Connecting { attempt: u32 },
    /// `hello` received.
    Live { since_ms: i64 },
    /// Down; the next attempt is at `retry_at_ms`.
    Waiting { attempt: u32, retry_at_ms: i64 },
}

/// Whether the REST fallback works while the socket is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestHealth {
    /// Not polled since the socket was last live.
    Idle,
    Ok {
        at_ms: i64,
    },
    Failing,
}

/// Counters behind the stats panel.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Stats {
    /// Quote values received (stream, snapshots and REST).
    pub(crate) updates: u64,
    pub(crate) reconnects: u32,
    pub(crate) lag: LagWindow,
    pub(crate) rate: RateCounter,
}

/// The whole model.
#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    /// Display order. An `Rc` so components can take it as a prop that compares cheaply.
    pub(crate) watchlist: Rc<Vec<Symbol>>,
    pub rows: HashMap<Symbol, Rc<Row>>,
    pub(crate) phase: Phase,
    pub(crate) rest: RestHealth,
    /// A `hello` was seen at least once on this page (so a later one is a reconnect).
    pub(crate) ever_live: bool,
    pub(crate) heartbeat_ms: Option<u64>,
    pub(crate) server: Option<String>,
    /// The relay's REST API, once the connection service has resolved where the relay is.
    pub(crate) api: Option<Api>,
    pub(crate) providers: Providers,
    pub(crate) log: Log,
    pub(crate) stats: Stats,
    /// The latest time an action brought in.
    pub(crate) now_ms: i64,
    /// Bumped whenever a quote value changes, so persistence knows when to save.
    pub(crate) quotes_rev: u64,
    /// Bumped whenever the watchlist changes.
    pub(crate) watchlist_rev: u64,
    /// Bumped by every reduction: a cheap identity for the context value.
    pub(crate) generation: u64,
    /// This connection's replay of a recorded range, once one was asked for.
    pub(crate) replay: Option<Replay>,
    /// When the latest frame of any kind came from the relay (ms), to tell a stalled connection.
    pub(crate) last_frame_ms: Option<i64>,
    /// Watched symbols whose rows are out of view: the connection asks for them at a low rate.
    pub(crate) off_screen: Rc<HashSet<Symbol>>,
    /// The trading account as the relay's account stream reports it.
    pub(crate) portfolio: Rc<Portfolio>,
    /// Price alerts and the log of those that fired.
    pub(crate) alerts: Rc<Alerts>,
    /// Bumped whenever the alerts themselves (not their log) change, so persistence knows when to save.
    pub(crate) alerts_rev: u64,
    /// A row's bell asked for an alert on this symbol near this price: the form is prefilled with it.
    pub(crate) alerts_draft: Option<(Symbol, f64)>,
    /// The named watchlists; `watchlist` is the active one's symbols.
    pub(crate) lists: Rc<lists::WatchLists>,
    /// Bumped whenever the lists (names, which is active) change.
    pub(crate) lists_rev: u64,
    /// Every event of the watched channels, in readable columns.
    pub(crate) feed: Rc<Feed>,
    /// Whether this tab holds the browser's one socket, follows the tab that does, or is on its own.
    pub(crate) tab_role: Option<TabRole>,
}

/// What the event feed's controls ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedAction {
    Pause,
    Resume,
    Filter(FeedFilter),
    BigPremium(Option<f64>),
}

/// What the watchlist tabs ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum ListAction {
    Switch(usize),
    /// A new empty list (its name already checked), made active.
    Create(String),
    Rename(usize, String),
    Delete(usize),
    /// The lists as saved at page load, or by another tab.
    Adopt(lists::Saved),
}

/// What the alert form and list ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertAction {
    Add {
        /// `None`: every symbol of the watchlist.
        symbol: Option<Symbol>,
        condition: Condition,
        repeat: Repeat,
        expires_ms: Option<i64>,
    },
    Remove(u64),
    /// The saved alerts, at page load.
    Restore(Vec<Alert>),
    /// The alerts another tab saved: taken as they are, and not saved again (that tab did).
    Adopt(Vec<Alert>),
    /// Prefill the form (a row's bell).
    Draft {
        symbol: Symbol,
        price: f64,
    },
    /// The relay's candles for an indicator alert's symbol and timeframe.
    Seed {
        symbol: Symbol,
        tf: hamster_shared::api::Timeframe,
        candles: Vec<hamster_shared::api::Candle>,
    },
}

/// Everything that changes the model. Public only because [`AppState`]'s `Reducible` impl names it; nothing
/// outside the crate dispatches.
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
    /// Put `new` where `old` is in the watchlist (a refused symbol replaced by one of the relay's suggestions).
    ReplaceSymbol {
        old: Symbol,
        new: Symbol,
        now_ms: i64,
    },
    /// Recent ticks for a sparkline.
    History(HistoryResponse),
    /// A change to the named watchlists.
    Lists(ListAction),
    /// Another tab saved its watchlist: take it, so that this tab's next change starts from it.
    AdoptWatchlist {
        symbols: Vec<Symbol>,
        now_ms: i64,
    },
    /// Rows came into view (`on_screen`) or left it.
    OnScreen {
        symbols: Vec<Symbol>,
        on_screen: bool,
    },
    /// A failure worth logging that no connection event covers (e.g. history).
    Warn {
        text: String,
        now_ms: i64,
    },
    /// A change to the price alerts.
    Alert(AlertAction),
    /// The event feed paused, resumed or filtered.
    Feed(FeedAction),
    /// A trading change that did not come from the socket (REST answers, the ticket, toasts).
    Portfolio {
        action: PortfolioAction,
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
                Rc::make_mut(row).restore(q);
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
            api: None,
            providers: Providers::default(),
            log: Log::default(),
            stats: Stats::default(),
            now_ms,
            quotes_rev: 0,
            watchlist_rev: 0,
            generation: 0,
            replay: None,
            last_frame_ms: None,
            off_screen: Rc::default(),
            portfolio: Rc::default(),
            alerts: Rc::default(),
            alerts_rev: 0,
            alerts_draft: None,
            lists: Rc::new(lists::WatchLists::single(Vec::new())),
            lists_rev: 0,
            feed: Rc::default(),
            tab_role: None,
        };
        if restored > 0 {
            state.log(LogLevel::Info, format!("restored {restored} cached quotes"));
        }
        state
    }

    /// Shows `symbols` as the watchlist: rows kept for symbols already shown, new rows for the others.
    fn show_watchlist(&mut self, symbols: Vec<Symbol>) {
        let mut list: Vec<Symbol> = Vec::with_capacity(symbols.len());
        for s in symbols {
            if !list.contains(&s) {
                list.push(s);
            }
        }
        let mut rows = HashMap::with_capacity(list.len());
        for symbol in &list {
            let row = self.rows.remove(symbol).unwrap_or_else(|| Rc::new(Row::new(symbol.clone())));
            rows.insert(symbol.clone(), row);
        }
        self.rows = rows;
        self.watchlist = Rc::new(list);
        self.watchlist_rev += 1;
        self.quotes_rev += 1;
    }

    /// Applies one action in place. The reducer proper ([`Reducible::reduce`]) clones and calls this.
    pub(crate) fn apply(&mut self, action: Action) {
        match action {
            Action::Batch { events, now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                for event in events {
                    self.apply_event(event, now_ms);
                }
            }
            Action::Clock { now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                if self.portfolio.toasts.iter().any(|t| now_ms - t.at_ms >= portfolio::TOAST_MS) {
                    Rc::make_mut(&mut self.portfolio).expire(now_ms);
                }
            }
            Action::Portfolio { action, now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                Rc::make_mut(&mut self.portfolio).apply(action, now_ms);
            }
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
            Action::ReplaceSymbol { old, new, now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                let Some(at) = self.watchlist.iter().position(|s| *s == old) else { return };
                if old == new {
                    return;
                }
                self.rows.remove(&old);
                let list = Rc::make_mut(&mut self.watchlist);
                if self.rows.contains_key(&new) {
                    // Already watched elsewhere in the list: the refused row just goes.
                    list.remove(at);
                } else {
                    list[at] = new.clone();
                    self.rows.insert(new.clone(), Rc::new(Row::new(new.clone())));
                }
                self.watchlist_rev += 1;
                self.quotes_rev += 1;
                self.log(LogLevel::Info, format!("replaced {old} with {new}"));
            }
            Action::History(history) => self.apply_history(history),
            Action::Lists(action) => {
                let current = self.watchlist.to_vec();
                let lists = Rc::make_mut(&mut self.lists);
                let show = match action {
                    ListAction::Switch(to) => lists.switch(to, &current),
                    ListAction::Create(name) => lists.create(name).and_then(|at| lists.switch(at, &current)),
                    ListAction::Rename(at, name) => {
                        lists.rename(at, name);
                        None
                    }
                    ListAction::Delete(at) => lists.delete(at),
                    ListAction::Adopt(saved) => match lists::WatchLists::from_saved(saved) {
                        Some(adopted) if adopted == *lists && adopted.active_symbols() == current => return,
                        Some(adopted) => {
                            let symbols = adopted.active_symbols();
                            *lists = adopted;
                            (symbols != current).then_some(symbols)
                        }
                        None => return,
                    },
                };
                self.lists_rev += 1;
                if let Some(symbols) = show {
                    self.show_watchlist(symbols);
                }
            }
            Action::AdoptWatchlist { symbols, now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                if *self.watchlist == symbols {
                    return;
                }
                let mut rows = HashMap::with_capacity(symbols.len());
                for symbol in &symbols {
                    let row = self.rows.remove(symbol).unwrap_or_else(|| Rc::new(Row::new(symbol.clone())));
                    rows.insert(symbol.clone(), row);
                }
                self.rows = rows;
                self.watchlist = Rc::new(symbols);
                self.watchlist_rev += 1;
                self.quotes_rev += 1;
                self.log(LogLevel::Info, "watchlist changed in another tab".to_owned());
            }
            Action::OnScreen { symbols, on_screen } => {
                let off = Rc::make_mut(&mut self.off_screen);
                for symbol in symbols {
                    if on_screen {
                        off.remove(&symbol);
                    } else {
                        off.insert(symbol);
                    }
                }
            }
            Action::Feed(action) => {
                let feed = Rc::make_mut(&mut self.feed);
                match action {
                    FeedAction::Pause => feed.pause(),
                    FeedAction::Resume => feed.resume(),
                    FeedAction::Filter(filter) => feed.filter = filter,
                    FeedAction::BigPremium(p) => feed.big_premium = p,
                }
            }
            Action::Alert(action) => {
                let alerts = Rc::make_mut(&mut self.alerts);
                match action {
                    AlertAction::Add { symbol, condition, repeat, expires_ms } => {
                        let name = symbol.as_ref().map_or(alerts::WHOLE_WATCHLIST, Symbol::as_str);
                        let text = alerts::describe(name, condition, f64::NAN);
                        alerts.add(symbol, condition, repeat, expires_ms);
                        let what = text.rsplit_once(':').map_or(text.as_str(), |(what, _)| what).to_owned();
                        self.log(LogLevel::Info, format!("alert set: {what}"));
                    }
                    AlertAction::Remove(id) => alerts.remove(id),
                    AlertAction::Restore(list) => {
                        let elsewhere = alerts.evaluated_elsewhere;
                        *alerts = Alerts::restored(list);
                        alerts.evaluated_elsewhere = elsewhere;
                    }
                    AlertAction::Adopt(list) => {
                        alerts.adopt(list);
                        return;
                    }
                    AlertAction::Draft { symbol, price } => {
                        self.alerts_draft = Some((symbol, price));
                        return;
                    }
                    AlertAction::Seed { symbol, tf, candles } => {
                        alerts.seed(symbol, tf, candles);
                        return;
                    }
                }
                self.alerts_rev += 1;
            }
            Action::Warn { text, now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                self.log(LogLevel::Warn, text);
            }
        }
    }

    fn apply_event(&mut self, event: ConnEvent, now_ms: i64) {
        match event {
            ConnEvent::Endpoints { ws_url, api, warning } => {
                if let Some(w) = warning {
                    self.log(LogLevel::Warn, w);
                }
                self.log(LogLevel::Info, format!("relay at {ws_url}"));
                self.api = Some(api);
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
                if let Some(replay) = self.replay.as_mut() {
                    replay.connection_lost();
                }
                let text = format!(
                    "{}: {reason}; retrying in {} s",
                    if was_live { "connection lost" } else { "could not connect" },
                    Fixed(retry_in_ms as f64 / 1000.0, 1)
                );
                self.log(if was_live { LogLevel::Warn } else { LogLevel::Info }, text);
            }
            ConnEvent::Server(msg) => {
                self.last_frame_ms = Some(now_ms);
                self.apply_server(msg, now_ms);
            }
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
            ConnEvent::Role(role) => {
                if self.tab_role.is_some_and(|r| r != role) {
                    self.log(LogLevel::Info, format!("this tab is now the {}", role.as_str()));
                }
                self.tab_role = Some(role);
                Rc::make_mut(&mut self.alerts).evaluated_elsewhere = role == TabRole::Follower;
            }
            ConnEvent::AlertFired(fired) => Rc::make_mut(&mut self.alerts).fired_elsewhere(fired),
        }
    }

    fn apply_server(&mut self, msg: ServerMessage, now_ms: i64) {
        match msg {
            ServerMessage::Hello { protocol, server, heartbeat_ms, providers, epoch: _, features: _ } => {
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
                self.providers = Providers::default();
                for p in providers {
                    self.providers.insert(p.name, ProviderView { state: p.state, detail: p.detail, since: p.since });
                }
            }
            ServerMessage::Subscribed { id: _, symbols, rejected, continuity } => {
                if !symbols.is_empty() {
                    self.log(LogLevel::Info, format!("subscribed {}", join(&symbols)));
                }
                if let Some((level, text)) = continuity_notice(&continuity) {
                    self.log(level, text);
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
                        // A suggestion that is not a valid symbol could not be subscribed: it is not offered.
                        let suggestions = r.suggestions.iter().filter_map(|s| Symbol::parse(s).ok()).collect();
                        Rc::make_mut(row).refusal = Some(Refusal { code: r.code, message: r.message, suggestions });
                    }
                }
            }
            ServerMessage::NoData { symbols, after_ms } => {
                for symbol in &symbols {
                    if let Some(row) = self.rows.get_mut(symbol) {
                        if row.quote.is_none() && row.last_event.is_none() {
                            Rc::make_mut(row).no_data_ms = Some(after_ms);
                        }
                    }
                }
                let secs = after_ms / 1000;
                self.log(LogLevel::Warn, format!("no data for {} after {secs} s", join(&symbols)));
            }
            ServerMessage::Unsubscribed { id: _, symbols } => {
                if !symbols.is_empty() {
                    self.log(LogLevel::Info, format!("unsubscribed {}", join(&symbols)));
                }
            }
            ServerMessage::Snapshot { quotes } => self.apply_quotes(quotes, now_ms, false),
            ServerMessage::Quotes { quotes } => self.apply_quotes(quotes, now_ms, true),
            // Old ticks sent again in order: they move rows and charts but say nothing about today's lag.
            ServerMessage::Recovered { quotes } => self.apply_quotes(quotes, now_ms, false),
            ServerMessage::Status { provider, state, detail, since } => {
                let text = match &detail {
                    Some(d) => format!("provider {provider}: {} ({d})", state.as_str()),
                    None => format!("provider {provider}: {}", state.as_str()),
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
            ServerMessage::Event { channel, .. } if replay::is_replayed(&channel) => {
                if let Some(replay) = self.replay.as_mut() {
                    replay.events += 1;
                }
            }
            ServerMessage::Event { channel, payload, ts, seq: _ } => {
                let Some(row) = self.rows.get_mut(&channel) else {
                    return;
                };
                if Rc::make_mut(row).apply_event(&payload, ts, now_ms) {
                    self.log(LogLevel::Info, format!("first event on {channel}"));
                }
                Rc::make_mut(&mut self.feed).push(channel, &payload, ts);
            }
            ServerMessage::Pong { .. } => {}
            ServerMessage::ReplayState { id: _, phase, from, to, position, speed, played } => {
                let replay = Replay::reported(self.replay.take(), phase, from, to, position, speed, played);
                if !replay.is_active() {
                    self.log(LogLevel::Info, format!("replay {}: {} played", phase_name(phase), replay.played));
                }
                self.replay = Some(replay);
            }
            msg @ (ServerMessage::Order { .. }
            | ServerMessage::OrderRejected { .. }
            | ServerMessage::Positions { .. }
            | ServerMessage::Account { .. }) => Rc::make_mut(&mut self.portfolio).apply_server(msg, now_ms),
        }
    }

    /// Applies quote values. `live` marks streamed updates, the only ones whose lag means anything (snapshots
    /// and REST values are cached on the relay and can be old by design).
    fn apply_quotes(&mut self, quotes: Vec<Quote>, now_ms: i64, live: bool) {
        let mut applied = 0u64;
        for q in quotes {
            if replay::is_replayed(&q.symbol) {
                if let Some(replay) = self.replay.as_mut() {
                    replay.apply_quote(&q);
                }
                continue;
            }
            let Some(row) = self.rows.get_mut(&q.symbol) else {
                // Not (or no longer) watched, e.g. a late update after a removal.
                continue;
            };
            if !row.takes(&q) {
                continue;
            }
            if live {
                self.stats.lag.record((now_ms - q.ts) as f64);
            }
            // Every applied value, not every rendered frame: a hidden tab or a busy render skips no crossing.
            if self.alerts.watches(&q.symbol) {
                let alerts = Rc::make_mut(&mut self.alerts);
                let before = alerts.list.len();
                alerts.on_quote(&q, now_ms);
                if alerts.list.len() != before {
                    self.alerts_rev += 1;
                }
            }
            Rc::make_mut(row).apply_quote(q, now_ms);
            applied += 1;
        }
        if applied > 0 {
            self.stats.updates += applied;
            self.stats.rate.record(now_ms, applied);
            self.quotes_rev += 1;
        }
    }

    /// Seeds a sparkline with recorded ticks.
    fn apply_history(&mut self, history: HistoryResponse) {
        let Some(row) = self.rows.get_mut(&history.symbol) else {
            return;
        };
        // Checked before the copy-on-write, so an empty history leaves the row (and its render) alone.
        if history.ticks.is_empty() {
            return;
        }
        Rc::make_mut(row).seed_history(&history.ticks);
    }

    fn log(&mut self, level: LogLevel, text: String) {
        self.log.push(self.now_ms, level, text);
    }

    /// True once `hello` arrived on the current socket.
    pub(crate) fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live { .. })
    }

    /// The watched symbols the relay refused, as their rows show. The connection service's REST fallback skips
    /// them (a refused symbol would fail the whole poll).
    pub(crate) fn refused(&self) -> HashSet<Symbol> {
        self.rows.values().filter(|r| r.refusal.is_some()).map(|r| r.symbol.clone()).collect()
    }

    /// The values worth caching: every watched row's last quote, in watchlist order.
    pub(crate) fn quotes_to_cache(&self) -> Vec<&Quote> {
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

fn join(symbols: &[Symbol]) -> String {
    const SHOWN: usize = 10;
    let mut text = symbols.iter().take(SHOWN).map(Symbol::as_str).collect::<Vec<_>>().join(", ");
    if symbols.len() > SHOWN {
        text.push_str(&format!(" and {} more", symbols.len() - SHOWN));
    }
    text
}

/// The one line a reconnect's `continuity` deserves: what was recovered, or how much was missed and where.
fn continuity_notice(continuity: &[Continuity]) -> Option<(LogLevel, String)> {
    if continuity.is_empty() {
        return None;
    }
    let recovered: u64 = continuity.iter().map(|c| c.recovered).sum();
    let gaps: Vec<&Continuity> = continuity.iter().filter(|c| c.gap).collect();
    if gaps.is_empty() {
        return Some((LogLevel::Info, format!("resynced: {recovered} missed updates recovered, none lost")));
    }
    let counted: u64 = gaps.iter().filter_map(|c| c.missed).sum();
    let uncounted = gaps.iter().filter(|c| c.missed.is_none()).count();
    let mut text = format!("resynced, {counted} updates missed");
    if uncounted > 0 {
        text.push_str(&format!(" (and an unknown number on {uncounted} symbols: the relay restarted)"));
    }
    let names: Vec<&str> = gaps.iter().take(5).map(|c| c.symbol.as_str()).collect();
    text.push_str(&format!(" on {}", names.join(", ")));
    if gaps.len() > names.len() {
        text.push_str(&format!(" and {} more", gaps.len() - names.len()));
    }
    if recovered > 0 {
        text.push_str(&format!("; {recovered} recovered"));
    }
    Some((LogLevel::Warn, text))
}

/// How a replay phase reads in the log.
fn phase_name(phase: hamster_shared::ReplayPhase) -> &'static str {
    match phase {
        hamster_shared::ReplayPhase::Playing => "playing",
        hamster_shared::ReplayPhase::Paused => "paused",
        hamster_shared::ReplayPhase::Ended => "ended",
        hamster_shared::ReplayPhase::Stopped => "stopped",
    }
}
