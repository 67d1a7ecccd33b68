//! The data bus: how a provider's reports travel from the node that owns its upstream connection to every other
//! node, and how a node notices it missed some.
//!
//! The owner publishes every [`Report`] of its provider on the provider's one `data` channel, in an
//! [`Envelope`] stamped with its node, its fencing token and a sequence number, and keeps the last quote per
//! instrument in a hash. One channel per provider (not per symbol) keeps one sequence per owner, so a gap is a
//! missing number, and lets a burst of quotes cost one `PUBLISH`. A node receiving an envelope drops it if its
//! token is older than the newest it has seen (a fenced ex-owner), and on a new token or a gap in the sequence
//! re-reads the last values of the instruments it serves (quotes are state: the last value is the catch-up).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hamster_shared::Quote;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::keys;
use super::lease::Gate;
use crate::clock::now_ms;
use crate::hub::{ChannelEvent, HubEvent};
use crate::ingest::Tap;
use crate::providers::{Report, Tee};

/// How a provider's instrument is named to clients (and in the store): bare when the routes send it to that
/// provider anyway, else `provider:INSTRUMENT`.
pub(crate) type Naming = Arc<dyn Fn(&'static str, &str) -> String + Send + Sync>;

/// The store's recorder, fed on the owner with everything its provider streams: a cluster records each tick once,
/// not once per node.
pub(crate) struct Recording {
    pub(crate) tap: Box<dyn Tap>,
    pub(crate) naming: Naming,
}

impl Recording {
    fn observe(&mut self, provider: &'static str, reports: &[Report]) {
        let name = |instrument: &str| hamster_shared::Symbol::parse(&(self.naming)(provider, instrument)).ok();
        let mut events = Vec::new();
        for report in reports {
            match report {
                Report::Quotes { quotes } => events.push(HubEvent::Quotes(
                    quotes
                        .iter()
                        .filter_map(|q| Some(Quote { symbol: name(q.symbol.as_str())?, ..q.clone() }))
                        .collect(),
                )),
                Report::Event { instrument, payload, ts } => {
                    if let Some(channel) = name(instrument) {
                        events.push(HubEvent::Events(vec![ChannelEvent {
                            channel,
                            payload: payload.clone(),
                            ts: *ts,
                        }]));
                    }
                }
                Report::Status { .. } | Report::Reject { .. } | Report::History { .. } => {}
            }
        }
        if !events.is_empty() {
            self.tap.observe(&events, now_ms());
        }
    }
}

/// One report on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) node: String,
    pub(crate) tok: u64,
    pub(crate) seq: u64,
    pub(crate) report: Report,
}

/// The owner's side: a [`Tee`] on its provider's sink that queues every report for the publisher task, as long
/// as the lease gate is open.
#[derive(Debug)]
pub(crate) struct OwnerTee {
    pub(crate) gate: Arc<Gate>,
    pub(crate) queue: mpsc::UnboundedSender<Report>,
}

impl Tee for OwnerTee {
    fn forward(&self, report: &Report) {
        if self.gate.is_open() {
            // The publisher ends only with the owner's term; a report after that has nowhere to go.
            let _ = self.queue.send(report.clone());
        }
    }

    fn may_connect(&self) -> bool {
        self.gate.is_open()
    }
}

/// Publishes queued reports until the queue closes (the owner's term ended). Whatever is waiting goes out in one
/// pipeline: each report as an envelope, then the newest quote per instrument into the last-value hash, then the
/// status. A failed pipeline is lost to the bus; receivers see the gap and catch up from the last values.
pub(crate) struct Publisher {
    pub(crate) provider: &'static str,
    pub(crate) node: String,
    pub(crate) token: Arc<AtomicU64>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) redis: ConnectionManager,
    pub(crate) published: Arc<AtomicU64>,
    pub(crate) recording: Arc<parking_lot::Mutex<Option<Recording>>>,
}

pub(crate) async fn publish(publisher: Publisher, mut queue: mpsc::UnboundedReceiver<Report>) {
    let Publisher { provider, node, token, gate, mut redis, published, recording } = publisher;
    let (data, last, status) = (keys::data(provider), keys::last(provider), keys::status(provider));
    let mut seq = 0u64;
    let mut batch = Vec::with_capacity(256);
    while queue.recv_many(&mut batch, 256).await > 0 {
        if !gate.is_open() {
            batch.clear();
            continue;
        }
        if let Some(recording) = recording.lock().as_mut() {
            recording.observe(provider, &batch);
        }
        let tok = token.load(Ordering::Acquire);
        let mut pipe = redis::pipe();
        let mut newest: HashMap<&str, &Quote> = HashMap::new();
        let mut state = None;
        let reports = merged(&batch);
        for report in &reports {
            seq += 1;
            let envelope = Envelope { node: node.clone(), tok, seq, report: report.clone() };
            match serde_json::to_vec(&envelope) {
                Ok(bytes) => {
                    pipe.publish(&data, bytes).ignore();
                }
                Err(e) => tracing::warn!(provider, error = %e, "cannot encode a report for the cluster"),
            }
            match report {
                Report::Quotes { quotes } => {
                    for q in quotes {
                        newest.insert(q.symbol.as_str(), q);
                    }
                }
                Report::Status { .. } => state = Some(report),
                _ => {}
            }
        }
        let values: Vec<(&str, Vec<u8>)> =
            newest.into_iter().filter_map(|(i, q)| Some((i, serde_json::to_vec(q).ok()?))).collect();
        if !values.is_empty() {
            pipe.hset_multiple(&last, &values).ignore();
        }
        if let Some(Ok(bytes)) = state.map(serde_json::to_vec) {
            pipe.set(&status, bytes).ignore();
        }
        match pipe.query_async::<()>(&mut redis).await {
            Ok(()) => {
                // Envelopes, as receivers count them.
                published.fetch_add(reports.len() as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(provider, error = %e, lost = reports.len(), "cannot publish to the cluster"),
        }
        batch.clear();
    }
}

/// The reports of a batch with consecutive quote reports merged into one, in order: a burst of ticks costs one
/// `PUBLISH` and one envelope to decode on every node, not one per upstream message.
fn merged(batch: &[Report]) -> Vec<Report> {
    let mut out: Vec<Report> = Vec::with_capacity(batch.len());
    for report in batch {
        match (out.last_mut(), report) {
            (Some(Report::Quotes { quotes: into }), Report::Quotes { quotes }) => into.extend(quotes.iter().cloned()),
            _ => out.push(report.clone()),
        }
    }
    out
}

/// What a node tracks per provider to accept, order and catch up the owner's envelopes.
#[derive(Debug, Default)]
pub(crate) struct Receiver {
    /// The newest token seen; anything older comes from a fenced ex-owner.
    pub(crate) max_tok: u64,
    /// The sequence number expected next from `max_tok`.
    next_seq: Option<u64>,
}

/// What to do with an envelope.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Our own, already delivered here.
    Own,
    /// From a fenced ex-owner: drop.
    Stale,
    /// Deliver; `catch_up` when something may have been missed before it (a new owner or a gap).
    Deliver { catch_up: bool },
}

impl Receiver {
    pub(crate) fn judge(&mut self, me: &str, node: &str, tok: u64, seq: u64) -> Verdict {
        if tok < self.max_tok {
            return Verdict::Stale;
        }
        let catch_up = tok > self.max_tok || self.next_seq != Some(seq);
        self.max_tok = tok;
        self.next_seq = Some(seq + 1);
        if node == me {
            Verdict::Own
        } else {
            Verdict::Deliver { catch_up }
        }
    }

    /// Forget the expected sequence (the subscription was lost): the next envelope triggers a catch-up.
    pub(crate) fn lost(&mut self) {
        self.next_seq = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_tokens_are_dropped_and_gaps_and_new_owners_catch_up() {
        let mut r = Receiver::default();
        assert_eq!(r.judge("me", "a", 5, 1), Verdict::Deliver { catch_up: true }, "first ever");
        assert_eq!(r.judge("me", "a", 5, 2), Verdict::Deliver { catch_up: false });
        assert_eq!(r.judge("me", "a", 5, 4), Verdict::Deliver { catch_up: true }, "3 is missing");
        assert_eq!(r.judge("me", "b", 6, 1), Verdict::Deliver { catch_up: true }, "a new owner");
        assert_eq!(r.judge("me", "a", 5, 5), Verdict::Stale, "the fenced owner");
        assert_eq!(r.judge("me", "b", 6, 2), Verdict::Deliver { catch_up: false });
        r.lost();
        assert_eq!(r.judge("me", "b", 6, 3), Verdict::Deliver { catch_up: true });
        assert_eq!(r.judge("me", "me", 7, 1), Verdict::Own);
        assert_eq!(r.judge("me", "b", 6, 4), Verdict::Stale, "after we took over");
    }

    #[test]
    fn consecutive_quote_reports_travel_as_one() {
        let quote = |s: &str| hamster_shared::Quote::new(hamster_shared::Symbol::parse(s).unwrap(), 1.0, 1, "p");
        let quotes = |s: &str| Report::Quotes { quotes: vec![quote(s)] };
        let status = Report::Status { state: hamster_shared::ProviderState::Live, detail: None };
        let merged = merged(&[quotes("A"), quotes("B"), status.clone(), quotes("C")]);
        assert_eq!(merged, [Report::Quotes { quotes: vec![quote("A"), quote("B")] }, status, quotes("C")]);
    }

    #[test]
    fn envelopes_round_trip() {
        let e = Envelope {
            node: "n1".into(),
            tok: 1_733_000_000_000,
            seq: 3,
            report: Report::Reject {
                instrument: "XX".into(),
                code: hamster_shared::ErrorCode::UnknownSymbol,
                message: "no".into(),
            },
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), e);
    }
}
