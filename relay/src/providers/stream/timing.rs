//! Reconnect timing shared by every upstream connection: the flags that set it (their defaults are the only
//! defaults) and the full-jitter backoff.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rand::Rng;

/// Upstream reconnect settings, common to every provider.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TimingArgs {
    /// Shortest reconnect backoff to an upstream provider (full jitter below it).
    #[arg(long, env = "UPSTREAM_BACKOFF_MIN_MS", default_value_t = 500)]
    pub(crate) upstream_backoff_min_ms: u64,

    /// Longest reconnect backoff to an upstream provider.
    #[arg(long, env = "UPSTREAM_BACKOFF_MAX_MS", default_value_t = 30_000)]
    pub(crate) upstream_backoff_max_ms: u64,

    /// An upstream connection silent for this long is considered dead and replaced.
    #[arg(long, env = "UPSTREAM_STALE_MS", default_value_t = 30_000)]
    pub(crate) upstream_stale_ms: u64,

    /// Wait before retrying a provider that refused our credentials.
    #[arg(long, env = "UPSTREAM_DOWN_RETRY_MS", default_value_t = 300_000)]
    pub(crate) upstream_down_retry_ms: u64,
}

/// Healthy streaming for this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// A connection attempt (TCP, TLS and upgrade) that takes longer is abandoned.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Timing of the reconnect loop, as every adapter gets it.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// Healthy streaming for this long resets the backoff.
    pub(crate) stable_after: Duration,
    /// No frame at all for this long: reconnect.
    pub(crate) stale_after: Duration,
    pub(crate) connect_timeout: Duration,
    /// Wait after credentials were refused before trying again.
    pub(crate) down_retry: Duration,
}

impl TimingArgs {
    /// The timing these flags describe, with floors that keep a mistyped flag from spinning.
    pub(crate) fn timing(&self) -> Timing {
        let ms = Duration::from_millis;
        let min = self.upstream_backoff_min_ms.max(1);
        Timing {
            backoff_min: ms(min),
            backoff_max: ms(self.upstream_backoff_max_ms.max(min)),
            stable_after: STABLE_AFTER,
            stale_after: ms(self.upstream_stale_ms.max(100)),
            connect_timeout: CONNECT_TIMEOUT,
            down_retry: ms(self.upstream_down_retry_ms.max(100)),
        }
    }
}

#[cfg(test)]
impl Timing {
    /// The timing of a relay started without flags.
    pub(crate) fn defaults() -> Timing {
        use clap::{Args, FromArgMatches};
        let matches = TimingArgs::augment_args(clap::Command::new("relay")).get_matches_from(["relay"]);
        TimingArgs::from_arg_matches(&matches).map(|a| a.timing()).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Exponential backoff with full jitter: `uniform(0, min(max, min·2ⁿ))`.
///
/// The exponential schedule comes from `backon`; full jitter (rather than `backon`'s additive jitter) spreads
/// the reconnects of many relays that lost the same upstream at the same moment.
pub(crate) struct Backoff {
    builder: ExponentialBuilder,
    schedule: backon::ExponentialBackoff,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let builder = ExponentialBuilder::default().with_min_delay(min).with_max_delay(max).without_max_times();
        Backoff { schedule: builder.build(), builder }
    }

    /// The next delay to wait.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.schedule.next().unwrap_or_default();
        rand::rng().random_range(Duration::ZERO..=ceiling)
    }

    /// Back to the shortest delays (after a stable connection).
    pub(crate) fn reset(&mut self) {
        self.schedule = self.builder.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_flags_defaults() {
        let t = Timing::defaults();
        assert_eq!((t.backoff_min, t.backoff_max), (Duration::from_millis(500), Duration::from_secs(30)));
        assert_eq!((t.stale_after, t.down_retry), (Duration::from_secs(30), Duration::from_secs(300)));
    }

    #[test]
    fn full_jitter_stays_under_a_growing_capped_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let ceilings = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
        for ceiling in ceilings {
            let d = b.next_delay();
            assert!(d <= Duration::from_millis(ceiling), "{d:?} > {ceiling} ms");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn full_jitter_spreads_delays() {
        let mut delays: Vec<Duration> = (0..200)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
                b.next_delay()
            })
            .collect();
        delays.sort();
        assert!(delays[20] < Duration::from_millis(300), "low delays occur: {:?}", delays[20]);
        assert!(delays[180] > Duration::from_millis(700), "high delays occur: {:?}", delays[180]);
    }
}
