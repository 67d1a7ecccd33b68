//! Frames: server messages serialised once, ready for any socket. A frame carries its message `type` too, which
//! SSE uses as the event name ([`ServerMessage::kind`], the same string serde writes).
//!
//! Quote batches are assembled from quotes serialised once per ingest, so fan-out and conflated catch-ups never
//! re-serialise a quote per client.

use bytes::Bytes;
use hamster_shared::ServerMessage;

/// One frame ready to be written: the `type` of the message (SSE uses it as the event name) and its JSON text.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) kind: &'static str,
    pub(crate) json: Bytes,
    /// Quotes carried by this frame, for delivery counters.
    pub(crate) quotes: u32,
}

/// A control frame for `msg`.
pub(crate) fn control_frame(msg: &ServerMessage) -> Frame {
    Frame { kind: msg.kind(), json: Bytes::from(msg.to_json()), quotes: 0 }
}

/// Which quote-carrying message a batch frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Batch {
    /// Cached values sent after `subscribed`; not counted as delivered updates.
    Snapshot,
    /// Live updates (fan-out and conflated catch-ups).
    Quotes,
    /// Updates a resuming client missed, sent again.
    Recovered,
}

impl Batch {
    /// The message `type`, taken from the protocol's own [`ServerMessage::kind`].
    fn kind(self) -> &'static str {
        match self {
            Batch::Snapshot => ServerMessage::Snapshot { quotes: Vec::new() }.kind(),
            Batch::Quotes => ServerMessage::Quotes { quotes: Vec::new() }.kind(),
            Batch::Recovered => ServerMessage::Recovered { quotes: Vec::new() }.kind(),
        }
    }
}

/// `{"type":kind,"quotes":[..]}` assembled from already-serialised quotes, byte-identical to serialising
/// [`ServerMessage::Quotes`]/[`ServerMessage::Snapshot`] but without re-serialising per client.
pub(super) fn quotes_frame<'a>(batch: Batch, fragments: impl Iterator<Item = &'a Bytes> + Clone) -> Frame {
    let kind = batch.kind();
    let (count, len) = fragments.clone().fold((0u32, 0usize), |(n, l), f| (n + 1, l + f.len() + 1));
    let mut buf = Vec::with_capacity(len + kind.len() + 24);
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(kind.as_bytes());
    buf.extend_from_slice(b"\",\"quotes\":[");
    for (i, fragment) in fragments.enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(fragment);
    }
    buf.extend_from_slice(b"]}");
    let quotes = match batch {
        Batch::Quotes | Batch::Recovered => count,
        Batch::Snapshot => 0,
    };
    Frame { kind, json: Bytes::from(buf), quotes }
}

#[cfg(test)]
mod tests {
    use hamster_shared::{Quote, Symbol};

    use super::*;

    fn quote(symbol: &str, price: f64) -> Quote {
        Quote {
            seq: None,
            recv: None,
            symbol: Symbol::parse(symbol).unwrap(),
            price,
            ts: 1_700_000_000_000,
            provider: "sim".into(),
            bid: Some(price - 0.5),
            ask: None,
            volume: None,
            change: None,
            change_pct: Some(-1.25),
        }
    }

    #[test]
    fn batches_are_byte_identical_to_serde() {
        let quotes = vec![quote("AAPL", 190.5), quote("BTC/USD", 64_000.0)];
        let fragments: Vec<Bytes> = quotes.iter().map(|q| Bytes::from(serde_json::to_vec(q).unwrap())).collect();
        let cases = [
            (Batch::Quotes, &fragments[..], ServerMessage::Quotes { quotes: quotes.clone() }),
            (Batch::Snapshot, &fragments[..], ServerMessage::Snapshot { quotes }),
            (Batch::Snapshot, &[][..], ServerMessage::Snapshot { quotes: Vec::new() }),
        ];
        for (batch, fragments, message) in cases {
            let frame = quotes_frame(batch, fragments.iter());
            assert_eq!(frame.kind, message.kind());
            assert_eq!(frame.json, Bytes::from(message.to_json()), "{batch:?}");
        }
    }

    #[test]
    fn only_live_batches_count_as_delivered_quotes() {
        let fragments = [Bytes::from_static(b"{}"), Bytes::from_static(b"{}")];
        assert_eq!(quotes_frame(Batch::Quotes, fragments.iter()).quotes, 2);
        assert_eq!(quotes_frame(Batch::Snapshot, fragments.iter()).quotes, 0);
    }
}
