//! What one upstream connection still has to send, in the order that keeps both the provider and our clients
//! happy: control frames (keep-alives, answers to the server) first, then subscription changes, merged.
//!
//! Subscription changes are kept as *pending diffs* rather than frames until a send slot is free. A paced
//! provider (Twelve Data: about 100 client events a minute) then receives one frame carrying every instrument
//! that became wanted while it waited, instead of one frame per client command, and a subscribe cancelled by an
//! unsubscribe before it went out is never sent at all. The wire chunks a batch as its protocol requires.
//!
//! Retries of a refused request ([`super::isolate`]) are the exception: each is kept as a batch of its own and
//! goes out as its own request, never merged with other changes, so a refusal of it says something about
//! exactly those instruments.

use std::collections::{BTreeSet, VecDeque};

use super::wire::Wire;

/// One connection's outgoing frames and pending subscription diffs.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    /// Keep-alives and replies: never wait behind subscriptions.
    urgent: VecDeque<String>,
    /// Subscription frames already built (the wire's bookkeeping has moved on), in order.
    built: VecDeque<String>,
    /// Instruments to subscribe that no frame carries yet.
    subscribe: BTreeSet<String>,
    /// Instruments to unsubscribe that no frame carries yet.
    unsubscribe: BTreeSet<String>,
    /// Retries of a refused request, each to be sent as a request of its own, oldest first.
    isolated: VecDeque<Vec<String>>,
}

impl SendQueue {
    /// A frame that must go out before any subscription change.
    pub(crate) fn urgent(&mut self, frame: String) {
        self.urgent.push_back(frame);
    }

    /// Instruments newly wanted on this connection.
    pub(crate) fn subscribe(&mut self, instruments: impl IntoIterator<Item = String>) {
        for instrument in instruments {
            // Still subscribed upstream (its unsubscribe never went out): nothing to send either way.
            if !self.unsubscribe.remove(&instrument) {
                self.subscribe.insert(instrument);
            }
        }
    }

    /// Instruments to retry as one request of their own (a half of a refused request).
    pub(crate) fn isolated(&mut self, instruments: Vec<String>) {
        if !instruments.is_empty() {
            self.isolated.push_back(instruments);
        }
    }

    /// Instruments no longer wanted on this connection.
    pub(crate) fn unsubscribe(&mut self, instruments: impl IntoIterator<Item = String>) {
        for instrument in instruments {
            // Never subscribed upstream (or refused and waiting for a retry): nothing to undo.
            let waiting = self.subscribe.remove(&instrument) | self.drop_retry(&instrument);
            if !waiting {
                self.unsubscribe.insert(instrument);
            }
        }
    }

    /// Drops a pending subscribe or retry (the instrument was refused meanwhile).
    pub(crate) fn forget(&mut self, instrument: &str) {
        self.subscribe.remove(instrument);
        self.drop_retry(instrument);
    }

    /// Takes `instrument` out of the retries waiting to be sent; true if one held it.
    fn drop_retry(&mut self, instrument: &str) -> bool {
        let mut found = false;
        for batch in &mut self.isolated {
            let before = batch.len();
            batch.retain(|i| i != instrument);
            found |= batch.len() != before;
        }
        self.isolated.retain(|batch| !batch.is_empty());
        found
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.urgent.is_empty()
            && self.built.is_empty()
            && self.subscribe.is_empty()
            && self.unsubscribe.is_empty()
            && self.isolated.is_empty()
    }

    /// The next frame to send: urgent ones first, then built subscription frames; when none is left, every pending
    /// diff is turned into frames at once (unsubscribes first, so their capacity is free for the subscribes), and
    /// then the oldest retry of a refused request, alone.
    pub(crate) fn pop<W: Wire>(&mut self, wire: &mut W) -> Option<String> {
        if let Some(frame) = self.urgent.pop_front() {
            return Some(frame);
        }
        if self.built.is_empty() {
            if !self.unsubscribe.is_empty() {
                let list: Vec<String> = std::mem::take(&mut self.unsubscribe).into_iter().collect();
                self.built.extend(wire.unsubscribe(&list));
            }
            if !self.subscribe.is_empty() {
                let list: Vec<String> = std::mem::take(&mut self.subscribe).into_iter().collect();
                self.built.extend(wire.subscribe(&list));
            }
            if self.built.is_empty() {
                if let Some(batch) = self.isolated.pop_front() {
                    self.built.extend(wire.subscribe(&batch));
                }
            }
        }
        self.built.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::handshake::client::Request;

    use super::super::wire::WireEvent;
    use super::*;

    /// One frame per change, `+A,B` / `-A`.
    #[derive(Default)]
    struct Lists;

    impl Wire for Lists {
        const NAME: &'static str = "lists";
        fn request(&self) -> Result<Request, String> {
            Err("never connects".into())
        }
        fn subscribe(&mut self, instruments: &[String]) -> Vec<String> {
            vec![format!("+{}", instruments.join(","))]
        }
        fn unsubscribe(&mut self, instruments: &[String]) -> Vec<String> {
            vec![format!("-{}", instruments.join(","))]
        }
        fn on_text(&mut self, _: &str) -> Vec<WireEvent> {
            Vec::new()
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn drain(q: &mut SendQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop(&mut Lists)).collect()
    }

    #[test]
    fn pending_changes_merge_until_a_slot_is_free() {
        let mut q = SendQueue::default();
        q.subscribe(strings(&["A"]));
        assert_eq!(q.pop(&mut Lists).as_deref(), Some("+A"), "a free slot sends at once");
        // While the next slot is awaited, many commands become one frame; a cancelled subscribe never goes out.
        q.subscribe(strings(&["B", "C"]));
        q.subscribe(strings(&["D"]));
        q.unsubscribe(strings(&["C", "A"]));
        q.urgent("heartbeat".into());
        assert_eq!(drain(&mut q), ["heartbeat", "-A", "+B,D"]);
        assert!(q.is_empty());
        // An unsubscribe cancelled by a subscribe sends nothing; a refused pending subscribe is dropped.
        q.unsubscribe(strings(&["B"]));
        q.subscribe(strings(&["B", "E"]));
        q.forget("E");
        assert!(drain(&mut q).is_empty());
    }

    #[test]
    fn retries_go_out_one_request_each_and_never_merge() {
        let mut q = SendQueue::default();
        q.isolated(strings(&["A", "B"]));
        q.isolated(strings(&["C", "D"]));
        q.isolated(Vec::new());
        q.subscribe(strings(&["E"]));
        assert_eq!(q.pop(&mut Lists).as_deref(), Some("+E"), "new demand first, merged as ever");
        // A retried instrument unsubscribed before its retry left is simply not sent, and never unsubscribed.
        q.unsubscribe(strings(&["B", "E"]));
        q.forget("C");
        q.forget("D");
        assert_eq!(drain(&mut q), ["-E", "+A"]);
        assert!(q.is_empty());
    }

    #[test]
    fn urgent_frames_jump_built_subscription_frames() {
        let mut q = SendQueue::default();
        q.subscribe(strings(&["A"]));
        q.unsubscribe(strings(&["Z"]));
        assert_eq!(q.pop(&mut Lists).as_deref(), Some("-Z"));
        q.urgent("pong".into());
        assert_eq!(drain(&mut q), ["pong", "+A"]);
    }
}
