//! How much one client may take: streaming connections per IP address, REST-leased symbols per IP address, and
//! commands per second per connection.
//!
//! Both are cheap enough to sit on every handshake and every command. Per-IP slots are RAII permits, so a
//! connection that ends in any way (close, error, panic, shutdown) gives its slot back. Command budgets are
//! GCRA rate limiters from `governor`: one bounds how fast a connection may send commands, a second how fast it
//! may have them refused; a client that exhausts the second is abusive and is disconnected.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

/// Live streaming connections per client address, capped at `max` (0 = unlimited).
#[derive(Debug)]
pub(crate) struct IpLimiter {
    max: usize,
    live: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct IpPermit {
    limiter: Arc<IpLimiter>,
    key: IpAddr,
}

impl IpLimiter {
    pub(crate) fn new(max: usize) -> Arc<IpLimiter> {
        Arc::new(IpLimiter { max, live: Mutex::new(HashMap::new()) })
    }

    /// Takes a slot for `ip`, or `None` when it already holds `max`.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        let key = bucket(ip);
        let mut live = self.live.lock();
        let count = live.entry(key).or_insert(0);
        if self.max > 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpPermit { limiter: self.clone(), key })
    }

    /// Connections now held by `ip`'s bucket.
    #[cfg(test)]
    pub(crate) fn live(&self, ip: IpAddr) -> usize {
        self.live.lock().get(&bucket(ip)).copied().unwrap_or(0)
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut live = self.limiter.live.lock();
        if let Some(count) = live.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                live.remove(&self.key);
            }
        }
    }
}

/// The unit a limit applies to: one IPv4 address, or one IPv6 /64 (what a single subscriber is usually given,
/// so rotating addresses inside it gains nothing). IPv4-mapped IPv6 addresses count as their IPv4 address.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Symbols each address holds leased through `GET /api/quotes`, capped at `max` (0 = unlimited), so one
/// client cannot take every relay-wide lease with made-up symbols. Entries live as long as the lease they took.
#[derive(Debug)]
pub(crate) struct LeaseLedger {
    max: usize,
    ttl: Duration,
    held: Mutex<HashMap<IpAddr, HashMap<String, Instant>>>,
}

/// Addresses tracked before expired entries of all of them are swept (each call sweeps its own address).
const LEDGER_SWEEP_AT: usize = 4096;

/// An address asked to lease more symbols than its share.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this address already holds {max} leased symbols; subscribe over /ws or /api/stream instead")]
pub(crate) struct AddressLeaseLimit {
    pub(crate) max: usize,
}

impl LeaseLedger {
    pub(crate) fn new(max: usize, ttl: Duration) -> LeaseLedger {
        LeaseLedger { max, ttl, held: Mutex::new(HashMap::new()) }
    }

    /// Records that `ip` leases `symbols` now, or refuses all of them when that would exceed its share.
    pub(crate) fn lease<'a>(
        &self,
        ip: IpAddr,
        symbols: impl IntoIterator<Item = &'a str> + Clone,
        now: Instant,
    ) -> Result<(), AddressLeaseLimit> {
        if self.max == 0 {
            return Ok(());
        }
        let mut held = self.held.lock();
        if held.len() >= LEDGER_SWEEP_AT {
            held.retain(|_, symbols| {
                symbols.retain(|_, until| *until > now);
                !symbols.is_empty()
            });
        }
        let mine = held.entry(bucket(ip)).or_default();
        mine.retain(|_, until| *until > now);
        let new = symbols.clone().into_iter().filter(|s| !mine.contains_key(*s)).count();
        if mine.len() + new > self.max {
            return Err(AddressLeaseLimit { max: self.max });
        }
        let until = now + self.ttl;
        for symbol in symbols {
            mine.insert(symbol.to_owned(), until);
        }
        Ok(())
    }
}

/// Command limits for each connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommandQuota {
    /// Sustained commands per second (0 = unlimited) and the burst allowed on top.
    pub(crate) per_second: u32,
    pub(crate) burst: u32,
    /// Refused commands (bad input, over a limit) tolerated per minute, all at once at most; beyond that the
    /// client is disconnected.
    pub(crate) refusals_per_minute: u32,
}

/// What a connection may still do.
pub(crate) struct CommandBudget {
    commands: Option<DefaultDirectRateLimiter>,
    refusals: Option<DefaultDirectRateLimiter>,
}

/// Whether a client that just had a command refused may stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Tolerated,
    Abusive,
}

impl CommandQuota {
    pub(crate) fn budget(&self) -> CommandBudget {
        let commands = NonZeroU32::new(self.per_second)
            .map(|rate| Quota::per_second(rate).allow_burst(NonZeroU32::new(self.burst).unwrap_or(rate)));
        let refusals = NonZeroU32::new(self.refusals_per_minute)
            .and_then(|n| Quota::with_period(Duration::from_secs(60) / n.get()).map(|q| q.allow_burst(n)));
        CommandBudget { commands: commands.map(RateLimiter::direct), refusals: refusals.map(RateLimiter::direct) }
    }
}

impl CommandBudget {
    /// Takes one command from the budget; `false` means the client is sending too fast.
    pub(crate) fn take_command(&self) -> bool {
        self.commands.as_ref().is_none_or(|l| l.check().is_ok())
    }

    /// Records a refused command.
    pub(crate) fn refused(&self) -> Verdict {
        match &self.refusals {
            Some(l) if l.check().is_err() => Verdict::Abusive,
            _ => Verdict::Tolerated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_slots_are_capped_and_given_back() {
        let limiter = IpLimiter::new(2);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let a = limiter.acquire(ip).unwrap();
        let _b = limiter.acquire(ip).unwrap();
        assert!(limiter.acquire(ip).is_none());
        assert!(limiter.acquire("203.0.113.8".parse().unwrap()).is_some(), "another address is not affected");
        drop(a);
        assert_eq!(limiter.live(ip), 1);
        assert!(limiter.acquire(ip).is_some());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = IpLimiter::new(0);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let permits: Vec<_> = (0..1000).filter_map(|_| limiter.acquire(ip)).collect();
        assert_eq!(permits.len(), 1000);
        drop(permits);
        assert_eq!(limiter.live(ip), 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let limiter = IpLimiter::new(1);
        let _a = limiter.acquire("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(limiter.acquire("2001:db8:1:2:ffff::9".parse().unwrap()).is_none());
        assert!(limiter.acquire("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = limiter.acquire("198.51.100.1".parse().unwrap()).unwrap();
        assert!(limiter.acquire("::ffff:198.51.100.1".parse().unwrap()).is_none());
    }

    #[test]
    fn command_budget_allows_the_burst_then_refuses() {
        let budget = CommandQuota { per_second: 1, burst: 5, refusals_per_minute: 3 }.budget();
        assert_eq!((0..10).filter(|_| budget.take_command()).count(), 5);
        assert_eq!(budget.refused(), Verdict::Tolerated);
        assert_eq!(budget.refused(), Verdict::Tolerated);
        assert_eq!(budget.refused(), Verdict::Tolerated);
        assert_eq!(budget.refused(), Verdict::Abusive);
    }

    #[test]
    fn leases_are_capped_per_address_and_expire() {
        let ledger = LeaseLedger::new(3, Duration::from_secs(60));
        let (ip, other): (IpAddr, IpAddr) = ("203.0.113.7".parse().unwrap(), "203.0.113.8".parse().unwrap());
        let t0 = Instant::now();
        assert!(ledger.lease(ip, ["A", "B"], t0).is_ok());
        assert!(ledger.lease(ip, ["A", "B", "C"], t0).is_ok(), "renewing costs nothing");
        assert_eq!(ledger.lease(ip, ["D"], t0), Err(AddressLeaseLimit { max: 3 }));
        assert!(ledger.lease(other, ["D", "E", "F"], t0).is_ok(), "another address is not affected");
        assert!(ledger.lease(ip, ["D", "E", "F"], t0 + Duration::from_secs(61)).is_ok(), "expired leases free up");
        assert!(LeaseLedger::new(0, Duration::from_secs(1)).lease(ip, ["A", "B", "C", "D"], t0).is_ok());
    }

    #[test]
    fn zero_quota_is_unlimited() {
        let budget = CommandQuota { per_second: 0, burst: 0, refusals_per_minute: 0 }.budget();
        assert!((0..10_000).all(|_| budget.take_command()));
        assert!((0..10_000).all(|_| budget.refused() == Verdict::Tolerated));
    }
}
