//! Frames: server messages serialised once, ready for any socket. A frame carries its message `type` too, which
//! SSE uses as the event name ([`ServerMessage::kind`], the same string serde writes).
//!
//! Quote batches are assembled from quotes serialised once per ingest, so fan-out and conflated catch-ups never
//! re-serialise a quote per client.
//!
//! A frame's MessagePack form (for WebSocket clients that negotiated it) is made from its JSON the first time a
//! MessagePack client writes it, and shared by every clone of the frame after that: at most one encoding per
//! frame however many such clients receive it, and none at all while no client asked for MessagePack (each frame
//! then carries only an empty cell).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hamster_shared::ServerMessage;

/// One frame ready to be written: the `type` of the message (SSE uses it as the event name) and its JSON text.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) kind: &'static str,
    pub(crate) json: Bytes,
    /// Quotes carried by this frame, for delivery counters.
    pub(crate) quotes: u32,
    /// The same message in MessagePack, once a client needed it; shared by all clones of this frame.
    msgpack: Arc<OnceLock<Bytes>>,
}

impl Frame {
    pub(crate) fn new(kind: &'static str, json: Bytes, quotes: u32) -> Frame {
        Frame { kind, json, quotes, msgpack: Arc::default() }
    }

    /// The message as MessagePack (maps with field names, as [`ServerMessage::to_msgpack`] writes them), encoded
    /// from the JSON on first use.
    pub(crate) fn msgpack(&self) -> &Bytes {
        self.msgpack.get_or_init(|| json_to_msgpack(&self.json))
    }
}

/// Re-encodes one JSON frame as MessagePack without building the message again: objects become maps with the
/// same keys, integers stay integers and floats stay 64-bit floats, so it decodes to the same `ServerMessage`.
fn json_to_msgpack(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len());
    let mut de = serde_json::Deserializer::from_slice(json);
    match serde_transcode::transcode(&mut de, &mut rmp_serde::Serializer::new(&mut out)) {
        Ok(()) => Bytes::from(out),
        // Frames are the relay's own serde_json output; failing here is a relay bug, not input.
        Err(e) => {
            tracing::error!(error = %e, "cannot re-encode a frame as MessagePack");
            let error = ServerMessage::Error {
                id: None,
                code: hamster_shared::ErrorCode::Unavailable,
                message: "the relay could not encode a message".into(),
            };
            Bytes::from(error.to_msgpack().unwrap_or_default())
        }
    }
}

/// A control frame for `msg`.
pub(crate) fn control_frame(msg: &ServerMessage) -> Frame {
    Frame::new(msg.kind(), Bytes::from(msg.to_json()), 0)
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
    Frame::new(kind, Bytes::from(buf), quotes)
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
    fn the_msgpack_form_decodes_to_the_same_message_and_is_made_once_per_frame() {
        let quotes =
            vec![quote("AAPL", 190.5), Quote { seq: Some(7), volume: Some(3.0), ..quote("BTC/USD", 64_000.0) }];
        let fragments: Vec<Bytes> = quotes.iter().map(|q| Bytes::from(serde_json::to_vec(q).unwrap())).collect();
        let frame = quotes_frame(Batch::Quotes, fragments.iter());
        let copy = frame.clone();
        let packed = frame.msgpack();
        assert_eq!(ServerMessage::from_msgpack(packed).unwrap(), ServerMessage::Quotes { quotes });
        assert_eq!(copy.msgpack().as_ptr(), packed.as_ptr(), "a clone shares the one encoding");
        assert!(packed.len() < frame.json.len(), "{} vs {} bytes", packed.len(), frame.json.len());
        let event = ServerMessage::Event {
            channel: Symbol::parse("uw:flow-alerts").unwrap(),
            payload: serde_json::json!({"ticker": "AAPL", "size": -3, "premium": 1.5e6, "tags": [null, true]}),
            ts: 1,
            seq: Some(2),
        };
        let packed = control_frame(&event).msgpack().clone();
        assert_eq!(ServerMessage::from_msgpack(&packed).unwrap(), event);
        assert_eq!(packed, Bytes::from(event.to_msgpack().unwrap()), "byte-identical to encoding the message");
    }

    #[test]
    fn only_live_batches_count_as_delivered_quotes() {
        let fragments = [Bytes::from_static(b"{}"), Bytes::from_static(b"{}")];
        assert_eq!(quotes_frame(Batch::Quotes, fragments.iter()).quotes, 2);
        assert_eq!(quotes_frame(Batch::Snapshot, fragments.iter()).quotes, 0);
    }
}
