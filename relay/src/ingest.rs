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
                HubEvent::Status { .. } | HubEvent::Rejected { .. } | HubEvent::History { .. } => {}
            }
        }
    }
}

/// A tap moved onto a thread of its own and fed the quotes of every batch, in order, through an unbounded channel:
/// for taps that must see every tick but whose work (the paper broker's evaluation of working orders and its journal writes)
/// must not delay the fan-out that runs right after the taps. Measured at 100 clients × 10 symbols × 1,000
/// ticks/s with 10,000 working orders on those symbols: evaluated on the ingest path, fan-out p99 went from
/// 4–6 ms to 12–245 ms.
pub(crate) struct OffThread {
    batches: std::sync::mpsc::Sender<(Vec<HubEvent>, i64)>,
}

impl OffThread {
    /// Starts the thread `name` running `tap`. It ends when the ingest loop (and with it this sender) is gone.
    pub(crate) fn spawn(name: &str, mut tap: impl Tap + 'static) -> std::io::Result<OffThread> {
        let (batches, rx) = std::sync::mpsc::channel::<(Vec<HubEvent>, i64)>();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            for (events, recv_ms) in rx {
                tap.observe(&events, recv_ms);
            }
        })?;
        Ok(OffThread { batches })
    }
}

impl Tap for OffThread {
    fn observe(&mut self, events: &[HubEvent], recv_ms: i64) {
        // Prices are what the taps on threads need; status changes and rejections are not worth a copy.
        let quotes: Vec<HubEvent> = events.iter().filter(|e| matches!(e, HubEvent::Quotes(_))).cloned().collect();
        if !quotes.is_empty() {
            // The thread only ends with the process; a send cannot fail before that.
            let _ = self.batches.send((quotes, recv_ms));
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
