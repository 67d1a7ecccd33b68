//! The ingest path: normalised events from the providers go to the hub (fan-out, last values, history) and to
//! the taps that must see every one of them — today the recorder of the embedded store. The hub knows nothing of
//! the taps and the taps know nothing of clients; this loop is the one place that joins them.
//!
//! Taps must not block: the recorder only queues (and counts what it has to drop), so live delivery never waits
//! on the disk.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::hub::{Hub, HubEvent};
use crate::store::{EventRecord, QuoteRecord, Record, Recorder};

/// Something that sees every ingested batch, in order, before the hub fans it out.
pub(crate) trait Tap: Send {
    fn observe(&mut self, events: &[HubEvent], recv_ms: i64);
}

impl Tap for Recorder {
    fn observe(&mut self, events: &[HubEvent], recv_ms: i64) {
        for event in events {
            match event {
                HubEvent::Quotes(quotes) => {
                    for q in quotes {
                        self.offer(Record::Quote(QuoteRecord {
                            symbol: q.symbol.as_str().to_owned(),
                            provider: q.provider.clone(),
                            ts: q.ts,
                            recv: recv_ms,
                            price: q.price,
                            bid: q.bid,
                            ask: q.ask,
                            volume: q.volume,
                        }));
                    }
                }
                HubEvent::Events(events) => {
                    for e in events {
                        self.offer(Record::Event(EventRecord {
                            channel: e.channel.as_str().to_owned(),
                            ts: e.ts,
                            recv: recv_ms,
                            payload: e.payload.to_string(),
                        }));
                    }
                }
                HubEvent::Status { .. } | HubEvent::Rejected { .. } => {}
            }
        }
    }
}

/// Feeds the hub (and every tap) from the providers' channel until it closes, in batches of what is waiting.
pub(crate) async fn run(hub: Arc<Hub>, mut events: mpsc::Receiver<HubEvent>, mut taps: Vec<Box<dyn Tap>>) {
    const MAX_BATCH: usize = 512;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while events.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now = now_ms();
        // The receive stamp travels with each quote, so clients can tell the provider's hop from their own.
        for event in &mut batch {
            if let HubEvent::Quotes(quotes) = event {
                for q in quotes {
                    q.recv = Some(now);
                }
            }
        }
        for tap in &mut taps {
            tap.observe(&batch, now);
        }
        hub.ingest(std::mem::take(&mut batch));
    }
}
