//! What the components show, derived from the model at render time: the connection badge, the stats panel's
//! numbers, whether a row is dimmed, and each upstream provider as the relay last reported it.
//!
//! Kept apart from the reducer because none of it changes the model: these are read-only views that the
//! components call, and they are tested through the same native unit tests as the transitions that feed them.

use hamster_shared::ProviderState;

use super::row::Row;

/// Silence beyond half a heartbeat (when the page's own ping should have been answered) before the badge
/// says the connection is stalled.
pub(crate) const STALL_GRACE_MS: i64 = 3_000;
/// The built-in simulator's provider name.
const SIMULATOR: &str = "sim";
use super::{AppState, Phase, RestHealth};

/// What the connection badge shows; `as_str` is its `data-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadgeKind {
    Live,
    /// Connected, but nothing at all has arrived for longer than the heartbeat allows.
    Stalled,
    Connecting,
    Reconnecting,
    Offline,
    Fallback,
}

impl BadgeKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BadgeKind::Live => "live",
            BadgeKind::Stalled => "stalled",
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
    pub(crate) label: String,
    pub(crate) detail: Option<String>,
    /// When not live: the time of the newest value on screen ("as of 14:03:12").
    pub(crate) as_of: Option<i64>,
}

/// An upstream provider as last reported by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderView {
    pub(crate) state: ProviderState,
    pub(crate) detail: Option<String>,
    pub(crate) since: i64,
}

/// The relay's providers by name, in name order. A sorted `Vec`, not a `BTreeMap`: a relay has a handful of
/// providers, and the map's code was a few KB of the wasm for this one use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Providers(Vec<(String, ProviderView)>);

impl Providers {
    /// Every provider with its name, in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &ProviderView)> {
        self.0.iter().map(|(name, view)| (name, view))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&ProviderView> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, view)| view)
    }

    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets the view of `name`, replacing what was known of it.
    pub(crate) fn insert(&mut self, name: String, view: ProviderView) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(at) => self.0[at].1 = view,
            Err(at) => self.0.insert(at, (name, view)),
        }
    }
}

/// For tests: `providers["sim"]`.
#[cfg(test)]
impl std::ops::Index<&str> for Providers {
    type Output = ProviderView;

    fn index(&self, name: &str) -> &ProviderView {
        self.get(name).expect("no such provider")
    }
}

/// What the stats panel shows, computed at render time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatsView {
    pub(crate) updates: u64,
    pub(crate) per_second: f64,
    pub(crate) symbols: usize,
    pub(crate) lag_avg_ms: Option<f64>,
    pub(crate) lag_p95_ms: Option<f64>,
    pub(crate) reconnects: u32,
}

impl AppState {
    /// The connection badge for the current state.
    pub fn badge(&self) -> Badge {
        let retry = match self.phase {
            Phase::Waiting { attempt, retry_at_ms } => {
                // Whole seconds, rounded up, in integers: no float formatting for a countdown.
                let secs = (retry_at_ms - self.now_ms).max(0).saturating_add(999) / 1000;
                Some(format!("attempt {attempt}, next try in {secs} s"))
            }
            Phase::Connecting { attempt } => Some(format!("attempt {attempt}, connecting now")),
            Phase::Live { .. } => None,
        };
        let (kind, label, detail) = match (self.phase, self.rest) {
            (Phase::Live { .. }, _) if self.stalled() => {
                let silent = self.last_frame_ms.map_or(0, |t| (self.now_ms - t) / 1000);
                (BadgeKind::Stalled, "Stalled", Some(format!("nothing from the relay for {silent} s")))
            }
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
        // Whatever is on screen while not live is as old as its newest value: say how old.
        let as_of = (kind != BadgeKind::Live).then(|| self.newest_value_ts()).flatten();
        Badge { kind, label: label.to_owned(), detail, as_of }
    }

    /// Connected, but silent for longer than the relay's pings allow: the page sends a `ping` every half
    /// heartbeat and the relay answers at once, so more than that plus [`STALL_GRACE_MS`] of silence means the
    /// relay (or the path to it) is stuck, long before the connection gives up after two heartbeats.
    pub(crate) fn stalled(&self) -> bool {
        let (Some(hb), Some(last)) = (self.heartbeat_ms, self.last_frame_ms) else {
            return false;
        };
        let hb = i64::try_from(hb).unwrap_or(i64::MAX);
        self.is_live() && self.now_ms - last > hb / 2 + STALL_GRACE_MS
    }

    /// The time of the newest value on screen.
    fn newest_value_ts(&self) -> Option<i64> {
        self.rows.values().filter_map(|r| r.quote.as_ref().map(|q| q.ts)).max()
    }

    /// Whether the values on screen come from the built-in simulator (a label says so, so nobody trades on
    /// them).
    pub(crate) fn simulated(&self) -> bool {
        self.providers.contains_key(SIMULATOR)
            || self.rows.values().any(|r| r.quote.as_ref().is_some_and(|q| q.provider == SIMULATOR))
    }

    /// Whether any row shows a value (cached or not).
    fn has_values(&self) -> bool {
        self.rows.values().any(|r| r.quote.is_some())
    }

    /// Whether a row should be dimmed: no fresh value for a while, or its provider is not serving.
    pub(crate) fn row_is_stale(&self, row: &Row) -> bool {
        // Nothing on screen is vouched for once the badge says the connection is not live.
        if row.quote.is_some() && (!self.is_live() || self.stalled()) {
            return true;
        }
        if row.is_stale(self.now_ms) {
            return true;
        }
        let provider = row.quote.as_ref().map(|q| q.provider.as_str());
        provider
            .and_then(|p| self.providers.get(p))
            .is_some_and(|p| matches!(p.state, ProviderState::Down | ProviderState::Reconnecting))
    }

    pub(crate) fn stats_view(&self) -> StatsView {
        StatsView {
            updates: self.stats.updates,
            per_second: self.stats.rate.per_second(self.now_ms),
            symbols: self.watchlist.len(),
            lag_avg_ms: self.stats.lag.average(),
            lag_p95_ms: self.stats.lag.p95(),
            reconnects: self.stats.reconnects,
        }
    }
}
