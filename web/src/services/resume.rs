//! Where the page stopped: the relay's epoch and the sequence number of the last update of every symbol
//! received, so that the first subscribe on a new socket carries `resume` and the relay sends exactly what the
//! page missed while it was away (or says how much it could not send).
//!
//! Pure bookkeeping, fed every server message by the connection service; tested natively.

use std::collections::{BTreeMap, HashMap};

use hamster_shared::{Resume, ServerMessage, Symbol};

/// The last update seen of each symbol, in the epoch of the relay that numbered them.
#[derive(Debug, Default)]
pub(crate) struct ResumePoint {
    epoch: Option<u64>,
    seqs: HashMap<Symbol, u64>,
}

impl ResumePoint {
    /// Notes the sequence numbers a message carries.
    pub(crate) fn observe(&mut self, msg: &ServerMessage) {
        match msg {
            ServerMessage::Quotes { quotes }
            | ServerMessage::Snapshot { quotes }
            | ServerMessage::Recovered { quotes } => {
                for q in quotes {
                    if let Some(seq) = q.seq {
                        self.seqs.insert(q.symbol.clone(), seq);
                    }
                }
            }
            ServerMessage::Event { channel, seq: Some(seq), .. } => {
                self.seqs.insert(channel.clone(), *seq);
            }
            _ => {}
        }
    }

    /// A new socket said `hello` with `epoch`: the resume point for `symbols` to send with their first
    /// subscribe (the previous epoch's numbers: the relay decides whether it can still recover them), and from
    /// now on numbers of the new epoch.
    pub(crate) fn on_hello(&mut self, epoch: u64, symbols: &[Symbol]) -> Option<Resume> {
        let resume = self
            .epoch
            .map(|previous| Resume { epoch: previous, seqs: seqs_of(symbols, |s| self.seqs.get(s).copied()) });
        if self.epoch != Some(epoch) {
            self.seqs.clear();
        }
        // A relay without numbering says epoch 0 (or nothing): there is never anything to resume from it.
        self.epoch = (epoch != 0).then_some(epoch);
        resume.filter(|r| !r.seqs.is_empty())
    }

    /// The part of `resume` that concerns `symbols` (a subscribe split into several commands).
    pub(crate) fn part(resume: Option<&Resume>, symbols: &[Symbol]) -> Option<Resume> {
        let resume = resume?;
        let seqs = seqs_of(symbols, |s| resume.seqs.get(s.as_str()).copied());
        (!seqs.is_empty()).then_some(Resume { epoch: resume.epoch, seqs })
    }
}

/// The known sequence numbers of `symbols`. Inserted one by one: collecting into a map sorts the pairs first,
/// one more instance of the sort in the wasm for a handful of symbols.
fn seqs_of(symbols: &[Symbol], seq: impl Fn(&Symbol) -> Option<u64>) -> BTreeMap<String, u64> {
    let mut seqs = BTreeMap::new();
    for s in symbols {
        if let Some(n) = seq(s) {
            seqs.insert(s.as_str().to_owned(), n);
        }
    }
    seqs
}

#[cfg(test)]
mod tests {
    use hamster_shared::Quote;

    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn quotes(symbol: &str, seq: u64) -> ServerMessage {
        ServerMessage::Quotes { quotes: vec![Quote { seq: Some(seq), ..Quote::new(sym(symbol), 1.0, 1, "sim") }] }
    }

    #[test]
    fn the_first_socket_has_nothing_to_resume_and_the_next_resumes_where_the_page_stopped() {
        let mut point = ResumePoint::default();
        let watch = [sym("AAPL"), sym("MSFT"), sym("uw:flow-alerts")];
        assert_eq!(point.on_hello(7, &watch), None);
        point.observe(&quotes("AAPL", 41));
        point.observe(&quotes("AAPL", 42));
        point.observe(&ServerMessage::Event {
            channel: sym("uw:flow-alerts"),
            payload: serde_json::Value::Null,
            ts: 1,
            seq: Some(3),
        });
        let resume = point.on_hello(7, &watch).unwrap();
        assert_eq!(resume.epoch, 7);
        assert_eq!(resume.seqs, [("AAPL".to_owned(), 42), ("uw:FLOW-ALERTS".to_owned(), 3)].into());
        assert_eq!(
            ResumePoint::part(Some(&resume), &[sym("AAPL")]).unwrap().seqs,
            [("AAPL".to_owned(), 42)].into(),
            "each command carries its own symbols' points"
        );
        assert_eq!(ResumePoint::part(Some(&resume), &[sym("MSFT")]), None);
    }

    #[test]
    fn after_a_relay_restart_the_old_epoch_is_sent_once_then_forgotten() {
        let mut point = ResumePoint::default();
        let watch = [sym("AAPL")];
        point.on_hello(7, &watch);
        point.observe(&quotes("AAPL", 500));
        let resume = point.on_hello(8, &watch).unwrap();
        assert_eq!((resume.epoch, resume.seqs.get("AAPL").copied()), (7, Some(500)), "the relay reports the gap");
        assert_eq!(point.on_hello(8, &watch), None, "nothing of epoch 8 was seen yet");
        point.observe(&quotes("AAPL", 2));
        assert_eq!(point.on_hello(8, &watch).unwrap().seqs.get("AAPL"), Some(&2));
        assert_eq!(ResumePoint::default().on_hello(0, &watch), None);
    }
}
