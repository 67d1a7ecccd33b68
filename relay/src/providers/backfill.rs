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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt;
    use hamster_shared::Symbol;
    use parking_lot::RwLock;
    use tokio::sync::mpsc;

    use super::*;
    use crate::hub::HubEvent;

    fn candle(start: i64) -> Candle {
        Candle { start, open: 1.0, high: 1.0, low: 1.0, close: 1.0, ticks: 1, volume: 0.0 }
    }

    /// A provider that says "slow down" once per instrument, then answers; one instrument fails for good.
    #[tokio::test(start_paused = true)]
    async fn each_wanted_instrument_once_slow_downs_waited_out_failures_left_alone() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let fetch: FetchPast = Arc::new(move |instrument: String, minutes: usize| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                match (instrument.as_str(), n) {
                    ("BAD", _) => Err(PastError::Failed("unknown".into())),
                    (_, 0) => Err(PastError::RetryAfter(Duration::from_secs(30))),
                    _ => Ok((0..minutes as i64).map(|m| candle(m * 60_000)).collect()),
                }
            }
            .boxed()
        });
        let keys: crate::providers::InstrumentKeys = Arc::new(RwLock::new(HashMap::new()));
        for s in ["AAA", "BAD"] {
            keys.write().insert(s.to_owned(), vec![Symbol::parse(s).unwrap()]);
        }
        let (hub, mut events) = mpsc::channel(16);
        let sink = EventSink::new("test", keys, hub);
        let (link, watch) = watch::channel(Link { live: true, desired: vec!["AAA".into(), "BAD".into()] });
        let stop = CancellationToken::new();
        let backfill = Backfill { fetch, minutes: 3, gap: Duration::from_secs(1) };
        let task = tokio::spawn(backfill.run(watch, sink, stop.clone()));

        let started = tokio::time::Instant::now();
        let Some(HubEvent::History { symbol, candles }) = events.recv().await else { panic!("no history") };
        assert_eq!((symbol.as_str(), candles.len()), ("AAA", 3));
        assert!(started.elapsed() >= Duration::from_secs(30), "the slow-down was waited out");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3, "AAA twice, BAD once and never again");
        assert!(events.try_recv().is_err(), "nothing for the failed one");

        // Letting AAA go and wanting it again fetches it again; wanting it still does not.
        link.send_replace(Link { live: true, desired: vec!["BAD".into()] });
        tokio::time::sleep(Duration::from_secs(2)).await;
        link.send_replace(Link { live: true, desired: vec!["BAD".into(), "AAA".into()] });
        assert!(matches!(events.recv().await, Some(HubEvent::History { .. })));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        stop.cancel();
        task.await.unwrap();
    }
}
