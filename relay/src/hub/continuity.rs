//! Continuity: each topic's sequence numbers and the short ring of recent updates that a resuming client is sent
//! again.
//!
//! Every quote and event the hub keeps for a topic gets the next number of that topic's sequence (from 1, within
//! the hub's epoch), and its serialised form is remembered in a bounded ring. A client that reconnects names the
//! last number it saw; if the ring still reaches back to the number after it, the client is sent exactly what it
//! missed, in order; if not (or the epoch changed), it is told how many it missed, when that can be counted, and
//! gets the latest value instead. Never a silent jump. The ring holds shared `Bytes` (the same ones fan-out sent),
//! so remembering an update costs a reference count, not a copy.

use std::collections::VecDeque;

use bytes::Bytes;

/// What a remembered update was sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// One serialised [`hamster_shared::Quote`], a fragment of a `quotes` frame.
    Quote,
    /// A whole serialised `event` message.
    Event,
}

/// A topic's sequence counter and its most recent updates.
#[derive(Debug)]
pub(super) struct Sequence {
    last: u64,
    recent: VecDeque<(u64, Kind, Bytes)>,
    capacity: usize,
}

/// What a resuming client needs for one topic.
#[derive(Debug, PartialEq)]
pub(super) enum Resumed<'a> {
    /// It saw the latest update: nothing to send.
    UpToDate,
    /// Everything after what it saw, oldest first.
    Recover(Vec<(Kind, &'a Bytes)>),
    /// The relay no longer holds all it missed; `missed` counts the updates when they are countable.
    Gap { missed: Option<u64> },
}

impl Sequence {
    /// A sequence remembering at most `capacity` updates (0 disables recovery; numbering still happens).
    pub(super) fn new(capacity: usize) -> Sequence {
        Sequence { last: 0, recent: VecDeque::new(), capacity }
    }

    /// The number of the next update.
    pub(super) fn next(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// Keeps the update numbered `seq` for clients that resume later.
    pub(super) fn remember(&mut self, seq: u64, kind: Kind, bytes: Bytes) {
        if self.capacity == 0 {
            return;
        }
        if self.recent.len() >= self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back((seq, kind, bytes));
    }

    /// What a client that last saw update `seen` needs. `same_epoch` is false when it saw that number from an
    /// earlier run of the relay, whose numbers mean nothing now.
    pub(super) fn resume(&self, same_epoch: bool, seen: u64) -> Resumed<'_> {
        if !same_epoch {
            return Resumed::Gap { missed: None };
        }
        // A number from the future: this topic was forgotten and numbered afresh since, so the count is unknown.
        if seen > self.last {
            return Resumed::Gap { missed: None };
        }
        if seen == self.last {
            return Resumed::UpToDate;
        }
        match self.recent.front() {
            Some(&(oldest, _, _)) if oldest <= seen + 1 => Resumed::Recover(
                self.recent.iter().filter(|(seq, _, _)| *seq > seen).map(|(_, kind, bytes)| (*kind, bytes)).collect(),
            ),
            _ => Resumed::Gap { missed: Some(self.last - seen) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(capacity: usize, updates: u64) -> Sequence {
        let mut s = Sequence::new(capacity);
        for _ in 0..updates {
            let seq = s.next();
            s.remember(seq, Kind::Quote, Bytes::from(seq.to_string()));
        }
        s
    }

    fn recovered(r: Resumed<'_>) -> Vec<String> {
        match r {
            Resumed::Recover(v) => v.iter().map(|(_, b)| String::from_utf8(b.to_vec()).unwrap()).collect(),
            other => panic!("expected a recovery, got {other:?}"),
        }
    }

    #[test]
    fn numbers_count_from_one_and_the_ring_keeps_the_newest() {
        let s = filled(3, 5);
        assert_eq!(s.last, 5);
        assert_eq!(s.recent.iter().map(|(seq, _, _)| *seq).collect::<Vec<_>>(), [3, 4, 5]);
    }

    #[test]
    fn a_client_gets_exactly_what_it_missed_while_the_ring_reaches_back() {
        let s = filled(3, 5);
        assert_eq!(recovered(s.resume(true, 2)), ["3", "4", "5"], "the oldest kept is the one after `seen`");
        assert_eq!(recovered(s.resume(true, 4)), ["5"]);
        assert_eq!(s.resume(true, 5), Resumed::UpToDate);
    }

    #[test]
    fn beyond_the_ring_or_the_epoch_it_is_a_gap_never_a_silent_jump() {
        let s = filled(3, 5);
        assert_eq!(s.resume(true, 1), Resumed::Gap { missed: Some(4) });
        assert_eq!(s.resume(true, 0), Resumed::Gap { missed: Some(5) });
        assert_eq!(s.resume(false, 4), Resumed::Gap { missed: None });
        assert_eq!(s.resume(true, 9), Resumed::Gap { missed: None }, "numbered afresh since");
        assert_eq!(filled(0, 5).resume(true, 4), Resumed::Gap { missed: Some(1) }, "recovery disabled");
    }
}
