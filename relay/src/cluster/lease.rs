//! The lease on a provider's upstream connection: who may hold it, for how long, and the fencing token that
//! orders successive owners.
//!
//! One Lua script acquires or renews atomically. The owner counts its lease as valid only until
//! `sent + ttl - margin` on its own monotonic clock (the [`Gate`]), measured from when it *sent* the renewal: a
//! renewal that took long or a process that was paused cannot make it believe in a lease Redis has already
//! expired. When the gate closes the node stops publishing and connecting at once, and fences its provider.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Script;

/// Acquires the lease when it is free, renews it when we hold it. Returns `{1, token, pttl}` (renewed), `{2,
/// token, pttl}` (acquired with a new token) or `{0, "node|token", pttl}` (held by someone else). The fencing
/// counter starts from Redis's clock in ms when it does not exist, so tokens keep rising after Redis restarts
/// empty.
const ACQUIRE: &str = r#"
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if sep and string.sub(v, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, string.sub(v, sep + 1), tonumber(ARGV[2])}
  end
  return {0, v, redis.call('PTTL', KEYS[1])}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)))
end
local tok = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. tok, 'PX', ARGV[2])
return {2, tostring(tok), tonumber(ARGV[2])}
"#;

/// Deletes the lease only if it is still `node|token` (a graceful hand-over never deletes a successor's lease).
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

pub(crate) fn acquire_script() -> Script {
    Script::new(ACQUIRE)
}

pub(crate) fn release_script() -> Script {
    Script::new(RELEASE)
}

/// What the acquire script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// We hold the lease (renewed, or just acquired: `fresh`) with this token.
    Held { token: u64, fresh: bool },
    /// Another node holds it.
    Other { node: String, token: u64, ttl_ms: i64 },
}

impl Answer {
    /// Reads the script's `{code, text, pttl}` reply.
    pub(crate) fn parse(reply: (i64, String, i64)) -> Option<Answer> {
        let (code, text, ttl_ms) = reply;
        match code {
            1 | 2 => Some(Answer::Held { token: text.parse().ok()?, fresh: code == 2 }),
            0 => {
                let (node, token) = text.rsplit_once('|')?;
                Some(Answer::Other { node: node.to_owned(), token: token.parse().ok()?, ttl_ms })
            }
            _ => None,
        }
    }
}

/// The owner's own view of how long its lease is valid, on the monotonic clock. Shared with everything that
/// must stop the moment the lease may have lapsed (publishing, connecting upstream).
#[derive(Debug)]
pub(crate) struct Gate {
    base: Instant,
    /// Milliseconds after `base` until which the lease is valid; 0 = closed.
    until_ms: AtomicU64,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate { base: Instant::now(), until_ms: AtomicU64::new(0) }
    }

    /// A renewal sent at `sent` succeeded: valid until `sent + ttl - margin`.
    pub(crate) fn extend(&self, sent: Instant, ttl: Duration, margin: Duration) {
        let until = (sent + ttl.saturating_sub(margin)).saturating_duration_since(self.base);
        // 0 is "closed": a renewal whose validity ended before the gate existed grants nothing.
        self.until_ms.store(u64::try_from(until.as_millis()).unwrap_or(u64::MAX), Ordering::Release);
    }

    pub(crate) fn close(&self) {
        self.until_ms.store(0, Ordering::Release);
    }

    pub(crate) fn is_open(&self) -> bool {
        let until = self.until_ms.load(Ordering::Acquire);
        until != 0 && (self.base.elapsed().as_millis() as u64) < until
    }

    /// When the gate closes by itself, if it is open.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let until = self.until_ms.load(Ordering::Acquire);
        (until != 0).then(|| self.base + Duration::from_millis(until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_and_garbage_is_not() {
        assert_eq!(Answer::parse((2, "17".into(), 5000)), Some(Answer::Held { token: 17, fresh: true }));
        assert_eq!(Answer::parse((1, "17".into(), 5000)), Some(Answer::Held { token: 17, fresh: false }));
        assert_eq!(
            Answer::parse((0, "node-a|9".into(), 1200)),
            Some(Answer::Other { node: "node-a".into(), token: 9, ttl_ms: 1200 })
        );
        assert_eq!(Answer::parse((0, "no-token".into(), 1)), None);
        assert_eq!(Answer::parse((7, "1".into(), 1)), None);
    }

    #[test]
    fn the_gate_closes_margin_before_the_lease() {
        let gate = Gate::new();
        assert!(!gate.is_open());
        gate.extend(Instant::now(), Duration::from_secs(5), Duration::from_millis(1500));
        assert!(gate.is_open());
        let left = gate.deadline().unwrap().saturating_duration_since(Instant::now());
        assert!(left <= Duration::from_millis(3500) && left > Duration::from_millis(3000), "{left:?}");
        // A renewal sent long ago grants nothing.
        gate.extend(Instant::now() - Duration::from_secs(4), Duration::from_secs(5), Duration::from_millis(1500));
        assert!(!gate.is_open());
        gate.extend(Instant::now(), Duration::from_secs(5), Duration::from_millis(1500));
        gate.close();
        assert!(!gate.is_open());
    }
}
