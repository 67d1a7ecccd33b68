//! Finding the culprit when a provider refuses a whole subscribe request that carried several instruments.
//!
//! Some protocols answer a batched subscribe with one error for the request (Binance: an error reply to the
//! `SUBSCRIBE`'s id; Alpaca: a bare `400` while a subscribe is unacknowledged) and never say which instrument
//! they object to. Rejecting every instrument of the request would cost valid ones their data, and a retry of the
//! same batch would fail the same way. So the driver bisects: the refused instruments are retried in two halves,
//! each its own request, and a half that is refused again is halved again, until a refused request holds a single
//! upstream name — that one is the culprit and is rejected with the provider's message. The retries go through
//! the connection's send queue, so they stay within the provider's pacing; `k` culprits among `n` streams cost at
//! most about `2·k·log₂ n` extra requests, and a batch with one bad name costs `2·log₂ n`.
//!
//! Halving is by *upstream name*, not by instrument: spellings sharing one upstream subscription (Binance's
//! `BTC/USD` and `BTC/USDT`) stand or fall together, and a refused request carrying one name is never split.

use super::demand::Desired;

/// What to do with the instruments of a request the provider refused as a whole.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Isolation {
    /// Retry each batch as a request of its own (at most two, each with fewer upstream names than the refused one).
    pub(crate) retry: Vec<Vec<String>>,
    /// The request held one upstream name: these instruments are the culprits and are rejected.
    pub(crate) culprits: Vec<String>,
}

/// Splits the instruments of a refused request. Instruments no longer wanted (unsubscribed while the request was
/// in flight, or never admitted) are dropped: nobody is waiting for them.
pub(crate) fn isolate(desired: &Desired, refused: Vec<String>) -> Isolation {
    // Upstream name → its instruments, in the order the request carried them.
    let mut names: Vec<(String, Vec<String>)> = Vec::new();
    for instrument in refused {
        let Some(name) = desired.upstream_name(&instrument) else { continue };
        match names.iter_mut().find(|(n, _)| n == name) {
            Some((_, list)) if !list.contains(&instrument) => list.push(instrument),
            Some(_) => {}
            None => names.push((name.to_owned(), vec![instrument])),
        }
    }
    match names.len() {
        0 => Isolation::default(),
        1 => Isolation { retry: Vec::new(), culprits: names.into_iter().flat_map(|(_, list)| list).collect() },
        n => {
            let second = names.split_off(n / 2);
            let flat = |half: Vec<(String, Vec<String>)>| half.into_iter().flat_map(|(_, list)| list).collect();
            Isolation { retry: vec![flat(names), flat(second)], culprits: Vec::new() }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::handshake::client::Request;

    use super::super::wire::{Refusal, Wire, WireEvent};
    use super::*;

    /// Upper-cases names, so `a` and `A` share one upstream subscription.
    struct Upper;

    impl Wire for Upper {
        const NAME: &'static str = "upper";
        fn request(&self) -> Result<Request, String> {
            Err("never connects".into())
        }
        fn admit(&self, instrument: &str) -> Result<String, Refusal> {
            Ok(instrument.to_ascii_uppercase())
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

    fn desired(list: &[&str]) -> Desired {
        let mut d = Desired::default();
        d.subscribe(&Upper, strings(list));
        d
    }

    #[test]
    fn a_refused_batch_is_halved_by_upstream_name() {
        let d = desired(&["a", "b", "c", "d", "e"]);
        let out = isolate(&d, strings(&["a", "b", "c", "d", "e"]));
        assert_eq!(out.retry, [strings(&["a", "b"]), strings(&["c", "d", "e"])]);
        assert!(out.culprits.is_empty());
        // Spellings of one name stay together, and two names are split one each.
        let d = desired(&["a", "A", "b"]);
        let out = isolate(&d, strings(&["a", "b", "A"]));
        assert_eq!(out.retry, [strings(&["a", "A"]), strings(&["b"])]);
    }

    #[test]
    fn a_refused_request_of_one_name_names_its_culprits() {
        let d = desired(&["a", "A", "b"]);
        assert_eq!(isolate(&d, strings(&["b"])), Isolation { retry: Vec::new(), culprits: strings(&["b"]) });
        let out = isolate(&d, strings(&["A", "a", "a"]));
        assert_eq!((out.retry.len(), out.culprits), (0, strings(&["A", "a"])), "both spellings, once each");
    }

    #[test]
    fn instruments_nobody_wants_any_more_are_dropped() {
        let mut d = desired(&["a", "b", "c"]);
        d.remove("b");
        let out = isolate(&d, strings(&["a", "b", "c"]));
        assert_eq!(out.retry, [strings(&["a"]), strings(&["c"])]);
        d.remove("a");
        assert_eq!(isolate(&d, strings(&["a", "b", "c"])).culprits, ["c"]);
        assert_eq!(isolate(&d, strings(&["a", "zzz"])), Isolation::default());
    }

    /// The whole search, as the driver runs it against a provider that refuses any request holding a bad name:
    /// every valid instrument ends up subscribed, exactly the bad ones are rejected, within the request bound.
    #[test]
    fn bisection_finds_every_culprit_and_keeps_every_valid_instrument() {
        for (n, bad) in
            [(1, vec![0]), (2, vec![1]), (16, vec![5]), (16, vec![0, 15]), (33, vec![3, 4, 20]), (8, (0..8).collect())]
        {
            let all: Vec<String> = (0..n).map(|i| format!("s{i:02}")).collect();
            let bad: Vec<String> = bad.iter().map(|i| all[*i].clone()).collect();
            let mut d = Desired::default();
            d.subscribe(&Upper, all.clone());
            let (mut subscribed, mut rejected, mut requests) = (Vec::new(), Vec::new(), 0);
            let mut queue = std::collections::VecDeque::from([all.clone()]);
            while let Some(request) = queue.pop_front() {
                requests += 1;
                if !request.iter().any(|i| bad.contains(i)) {
                    subscribed.extend(request);
                    continue;
                }
                let out = isolate(&d, request);
                for culprit in &out.culprits {
                    d.remove(culprit);
                }
                rejected.extend(out.culprits);
                queue.extend(out.retry);
            }
            subscribed.sort();
            rejected.sort();
            let valid: Vec<String> = all.iter().filter(|i| !bad.contains(i)).cloned().collect();
            assert_eq!((subscribed, &rejected), (valid, &bad), "{n} with {bad:?}");
            // A binary tree over n leaves with k marked ones visits at most 1 + 2·k·⌈log₂ n⌉ nodes.
            let depth = (n as f64).log2().ceil() as usize;
            assert!(requests <= 1 + 2 * bad.len() * depth.max(1), "{requests} requests for {n} with {bad:?}");
        }
    }
}
