//! The instruments one provider should stream: admitted by its wire, within its capacity, counted by upstream name.
//!
//! This is the one place where a provider refuses an instrument before it reaches the upstream. The driver applies
//! it to every command at once — connected, reconnecting or waiting out a backoff — so a refusal is immediate and
//! never costs an upstream round trip. The set survives reconnects: a new connection subscribes all of it.

use std::collections::{BTreeMap, HashMap};

use super::wire::{Refusal, Wire};

/// The admitted instruments and the upstream names they use.
#[derive(Debug, Default)]
pub(crate) struct Desired {
    /// Instrument → its upstream name (see [`Wire::admit`]).
    instruments: BTreeMap<String, String>,
    /// Upstream name → how many admitted instruments share it: what [`Wire::capacity`] counts.
    upstream: HashMap<String, usize>,
}

/// The outcome of a subscribe: instruments newly admitted (to send upstream) and those refused, with why.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Admitted {
    pub(crate) added: Vec<String>,
    pub(crate) refused: Vec<(String, Refusal)>,
}

impl Desired {
    /// Admits what `wire` can serve and has room for, in order; instruments already held are left alone.
    pub(crate) fn subscribe<W: Wire>(&mut self, wire: &W, instruments: Vec<String>) -> Admitted {
        let mut out = Admitted::default();
        let capacity = wire.capacity();
        for instrument in instruments {
            if self.instruments.contains_key(&instrument) {
                continue;
            }
            let name = match wire.admit(&instrument) {
                Ok(name) => name,
                Err(refusal) => {
                    out.refused.push((instrument, refusal));
                    continue;
                }
            };
            // Sharing an upstream name costs nothing, so it fits even at the limit.
            let full = capacity.as_ref().filter(|c| !self.upstream.contains_key(&name) && self.upstream.len() >= c.max);
            if let Some(capacity) = full {
                out.refused.push((instrument, Refusal::rejected(capacity.full.clone())));
                continue;
            }
            *self.upstream.entry(name.clone()).or_default() += 1;
            self.instruments.insert(instrument.clone(), name);
            out.added.push(instrument);
        }
        out
    }

    /// Drops `instruments`; returns those that were held (only they are subscribed upstream).
    pub(crate) fn unsubscribe(&mut self, instruments: Vec<String>) -> Vec<String> {
        instruments.into_iter().filter(|i| self.remove(i)).collect()
    }

    /// Drops one instrument (unsubscribed, or refused by the upstream after all). True if it was held.
    pub(crate) fn remove(&mut self, instrument: &str) -> bool {
        let Some(name) = self.instruments.remove(instrument) else { return false };
        if let Some(count) = self.upstream.get_mut(&name) {
            *count -= 1;
            if *count == 0 {
                self.upstream.remove(&name);
            }
        }
        true
    }

    /// The upstream name an admitted instrument uses.
    pub(crate) fn upstream_name(&self, instrument: &str) -> Option<&str> {
        self.instruments.get(instrument).map(String::as_str)
    }

    /// Every admitted instrument, in order.
    pub(crate) fn all(&self) -> Vec<String> {
        self.instruments.keys().cloned().collect()
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, instrument: &str) -> bool {
        self.instruments.contains_key(instrument)
    }

    /// Distinct upstream names in use.
    #[cfg(test)]
    pub(crate) fn upstream_len(&self) -> usize {
        self.upstream.len()
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::handshake::client::Request;

    use super::super::wire::{Capacity, WireEvent};
    use super::*;

    /// Upper-cases names (so `a` and `A` share one), refuses anything with a digit, holds two names.
    struct Shouty;

    impl Wire for Shouty {
        const NAME: &'static str = "shouty";
        fn request(&self) -> Result<Request, String> {
            Err("never connects".into())
        }
        fn admit(&self, instrument: &str) -> Result<String, Refusal> {
            if instrument.chars().any(|c| c.is_ascii_digit()) {
                return Err(Refusal::rejected(format!("{instrument} has a digit")));
            }
            Ok(instrument.to_ascii_uppercase())
        }
        fn capacity(&self) -> Option<Capacity> {
            Some(Capacity { max: 2, full: "two names at most".into() })
        }
        fn subscribe(&mut self, _: &[String]) -> Vec<String> {
            Vec::new()
        }
        fn unsubscribe(&mut self, _: &[String]) -> Vec<String> {
            Vec::new()
        }
        fn on_text(&mut self, _: &str) -> Vec<WireEvent> {
            Vec::new()
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn admits_refuses_and_counts_by_upstream_name() {
        let mut d = Desired::default();
        let out = d.subscribe(&Shouty, strings(&["a", "b1", "A", "c", "d"]));
        assert_eq!(out.added, ["a", "A", "c"], "A shares a's name, so it fits");
        let refused: Vec<(&str, &str)> = out.refused.iter().map(|(i, r)| (i.as_str(), r.message.as_str())).collect();
        assert_eq!(refused, [("b1", "b1 has a digit"), ("d", "two names at most")]);
        assert_eq!((d.upstream_len(), d.all()), (2, strings(&["A", "a", "c"])));
        assert!(d.subscribe(&Shouty, strings(&["a"])).added.is_empty(), "already held");

        assert_eq!(d.unsubscribe(strings(&["a", "zzz"])), ["a"]);
        assert_eq!(d.upstream_len(), 2, "A still holds the name");
        assert!(d.remove("A"));
        assert_eq!(d.upstream_len(), 1);
        assert_eq!(d.subscribe(&Shouty, strings(&["d"])).added, ["d"], "freed capacity is reusable");
        assert!(!d.remove("nope") && d.contains("d"));
    }
}
