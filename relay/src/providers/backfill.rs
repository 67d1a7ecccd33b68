//! A provider's past: one-minute candles from its history endpoint for each instrument that becomes wanted, so a
//! chart opened on a freshly subscribed symbol starts with a day behind it instead of one candle.
//!
//! The fetching is the adapter's (its URL, its row format, its symbol spelling); this module owns when and how
//! often: each newly wanted instrument once while it stays wanted, one request at a time with a gap between them
//! (history endpoints are rate-limited per address), a provider's "slow down" honoured before the next request,
//! and a failure logged and left alone (the chart then fills from live ticks, as without a backfill). The hub
//! places what arrives only in front of the minutes it saw live ([`crate::hub::History::backfill`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hamster_shared::api::Candle;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::stream::Link;
use super::EventSink;

/// Why a fetch brought no candles.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum PastError {
    /// The provider asked us to slow down: wait this long, then ask again.
    #[error("rate limited; retry after {0:?}")]
    RetryAfter(Duration),
    /// Anything else (unknown symbol, a malformed answer, the network); not retried.
    #[error("{0}")]
    Failed(String),
}

/// Fetches the `minutes` one-minute candles before now of one instrument, oldest first.
pub(crate) type FetchPast =
    Arc<dyn Fn(String, usize) -> BoxFuture<'static, Result<Vec<Candle>, PastError>> + Send + Sync>;

/// How one provider backfills.
#[derive(Clone)]
pub(crate) struct Backfill {
    pub(crate) fetch: FetchPast,
    /// Minutes asked for per instrument.
    pub(crate) minutes: usize,
    /// Shortest time between two requests.
    pub(crate) gap: Duration,
}

impl std::fmt::Debug for Backfill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backfill").field("minutes", &self.minutes).field("gap", &self.gap).finish_non_exhaustive()
    }
}

/// Times one instrument is asked for again after being told to slow down, before it is given up.
const RETRIES: usize = 3;
/// The longest "retry after" honoured; a longer ban gives the instrument up instead of stalling the queue.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

impl Backfill {
    /// Backfills every instrument the stream newly wants, until `stop`.
    pub(crate) async fn run(self, mut link: watch::Receiver<Link>, events: EventSink, stop: CancellationToken) {
        let provider = events.provider();
        // Instruments fetched (or given up) while wanted; one that is let go is fetched again if it comes back.
        let mut done: HashSet<String> = HashSet::new();
        loop {
            let wanted: Vec<String> = link.borrow_and_update().desired.clone();
            done.retain(|i| wanted.contains(i));
            for instrument in wanted {
                if done.contains(&instrument) || !link.borrow().desired.contains(&instrument) {
                    continue;
                }
                let mut tries = 0;
                let candles = loop {
                    let fetched = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = (self.fetch)(instrument.clone(), self.minutes) => r,
                    };
                    let pause = match fetched {
                        Ok(candles) => break candles,
                        Err(PastError::RetryAfter(wait)) if tries < RETRIES && wait <= MAX_RETRY_AFTER => wait,
                        Err(e) => {
                            tracing::warn!(provider, %instrument, error = %e, "no history for the chart");
                            break Vec::new();
                        }
                    };
                    tries += 1;
                    tracing::info!(provider, %instrument, ?pause, "history endpoint asked us to slow down");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(pause.max(self.gap)) => {}
                    }
                };
                tracing::debug!(provider, %instrument, candles = candles.len(), "history fetched");
                events.history(&instrument, candles).await;
                done.insert(instrument);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(self.gap) => {}
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = link.changed() => if changed.is_err() { return },
            }
        }
    }
}
