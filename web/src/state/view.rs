//! What the components show, derived from the model at render time: the connection badge, the stats panel's
//! numbers, whether a row is dimmed, and each upstream provider as the relay last reported it.
//!
//! Kept apart from the reducer because none of it changes the model: these are read-only views that the
//! components call, and they are tested through the same native unit tests as the transitions that feed them.

use hamster_shared::ProviderState;

use super::row::Row;
use super::{AppState, Phase, RestHealth};

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
    pub(crate) fn as_str(self) -> &'static str {
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
    pub(crate) label: String,
    pub(crate) detail: Option<String>,
}

/// An upstream provider as last reported by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderView {
    pub(crate) state: ProviderState,
    pub(crate) detail: Option<String>,
    pub(crate) since: i64,
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

    /// Whether any row shows a value (cached or not).
    fn has_values(&self) -> bool {
        self.rows.values().any(|r| r.quote.is_some())
    }

    /// Whether a row should be dimmed: no fresh value for a while, or its provider is not serving.
    pub(crate) fn row_is_stale(&self, row: &Row) -> bool {
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
