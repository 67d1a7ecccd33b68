//! `GET /api/stream?symbols=A,B`: the same server messages as `/ws`, as Server-Sent Events, for clients that
//! only need to listen. The event name is the message `type`; the data is the message JSON.
//!
//! The stream is pulled by hyper as the socket drains, so a slow reader simply leaves frames in its outbox and
//! is conflated like a slow WebSocket client. It ends when the client goes away, its token expires or the relay
//! shuts down. The handshake passes the same edge policy as `/ws` (origin, address slot, credential).
//!
//! Resume: every event that carries numbered updates (`snapshot`, `quotes`, `recovered`, `event`) gets an `id:`
//! naming the epoch and the last `seq` of *every* symbol of the stream ([`EventId`]), because `EventSource`
//! sends back only the last id it saw and one frame may carry some symbols and not others. A reconnect's
//! `Last-Event-ID` becomes the same `resume` a WebSocket `subscribe` carries, so the hub's continuity answers it
//! (recovered updates in order, or a gap). The numbers are read back from the frame's JSON as it is written
//! rather than carried beside every frame: only SSE needs them, and WebSocket clients then pay nothing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Extension, Router};
use futures::{stream, Stream, StreamExt};
use hamster_shared::{ErrorCode, Symbol};
use serde::Deserialize;

use super::query::{parse_symbols, SymbolsQuery};
use crate::error::HttpError;
use crate::guard::Authenticated;
use crate::hub::{Frame, SubscribeOptions};
use crate::state::AppState;

/// `GET /api/stream`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/stream", get(stream))
}

async fn stream(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    who: Option<Extension<Authenticated>>,
    Query(q): Query<SymbolsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let who = who.map_or(Authenticated { expires: None }, |Extension(who)| who);
    let pass = app.guard.check_handshake(&headers, peer, who)?;
    let list =
        q.symbols.ok_or_else(|| HttpError::bad_request(ErrorCode::InvalidSymbol, "missing ?symbols=AAPL,BTC/USD"))?;
    let symbols = parse_symbols(&app.upstream, &list)?;
    let epoch = app.hub.epoch();
    let last = headers.get("last-event-id").map(|v| EventId::parse(v.as_bytes(), symbols.len()));
    let mut cursor = Cursor::new(epoch, &symbols);
    let resume = last.map(|last| match last {
        Some(id) => {
            let seen: HashMap<Symbol, u64> =
                symbols.iter().zip(&id.seqs).filter_map(|(sym, seq)| Some((sym.clone(), (*seq)?))).collect();
            if id.epoch == epoch {
                cursor.seqs = id.seqs;
            }
            (id.epoch, seen)
        }
        // An id the relay cannot read says the client saw *something*: every symbol reports a gap of unknown
        // size (as another epoch's numbers do) rather than silently starting over.
        None => (UNREADABLE_EPOCH, symbols.iter().map(|sym| (sym.clone(), 0)).collect()),
    });
    let client = super::connect(&app, "sse");
    app.hub.subscribe_with(client.id(), None, symbols, Vec::new(), SubscribeOptions { resume, interval: None });

    let expiry = pass.time_left();
    // The pass (and with it the address slot) lives as long as the stream.
    let frames = stream::unfold((client, pass), |(client, pass)| async move {
        let frames = client.next_frames().await?;
        client.delivered(&frames);
        Some((frames, (client, pass)))
    });
    let events = frames
        .flat_map(move |frames| {
            let events: Vec<_> = frames.into_iter().map(|f| Ok(cursor.event(&f))).collect();
            stream::iter(events)
        })
        .take_until(app.shutdown.clone().cancelled_owned())
        .take_until(tokio::time::sleep(expiry));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(app.config.heartbeat())))
}

/// Never a hub's epoch (those are start times in ms): a resume naming it is a gap for every symbol.
const UNREADABLE_EPOCH: u64 = 0;

/// Where an SSE client stands, as its event ids say: the epoch and, per symbol of the stream in `?symbols=`
/// order, the last `seq` it was sent (`None` before the first).
///
/// Written as `<epoch>` then `.<seq>` per symbol, every number in base 36 (digits and lower-case letters), a
/// symbol with no update yet as an empty field: `mjuohs00.1a.` is epoch 1767225600000, the first symbol at seq 46,
/// the second not seen yet. Positions refer to the stream's own `?symbols=` list, which a reconnecting
/// `EventSource` repeats unchanged (its URL is fixed), so no symbol name is repeated in every id. An id is about
/// `9 + 4 × symbols` bytes for seqs up to 1.6 million.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventId {
    pub(crate) epoch: u64,
    pub(crate) seqs: Vec<Option<u64>>,
}

impl EventId {
    /// Reads a `Last-Event-ID` for a stream of `symbols` symbols; `None` if it is malformed or counts another
    /// number of symbols (it came from a different stream).
    pub(crate) fn parse(raw: &[u8], symbols: usize) -> Option<EventId> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut fields = text.split('.');
        let epoch = base36(fields.next()?)?;
        let seqs =
            fields.map(|f| if f.is_empty() { Some(None) } else { base36(f).map(Some) }).collect::<Option<Vec<_>>>()?;
        (seqs.len() == symbols).then_some(EventId { epoch, seqs })
    }

    fn write(epoch: u64, seqs: &[Option<u64>], out: &mut String) {
        push_base36(epoch, out);
        for seq in seqs {
            out.push('.');
            if let Some(seq) = seq {
                push_base36(*seq, out);
            }
        }
    }
}

fn base36(field: &str) -> Option<u64> {
    // `from_str_radix` accepts a leading '+', which no id the relay writes has.
    if field.is_empty() || field.len() > 13 || !field.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()) {
        return None;
    }
    u64::from_str_radix(field, 36).ok()
}

fn push_base36(mut n: u64, out: &mut String) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 13];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// One stream's position: turns frames into events and stamps those that carry numbered updates with an id.
struct Cursor {
    epoch: u64,
    index: HashMap<String, usize>,
    seqs: Vec<Option<u64>>,
}

/// The numbers a frame carries: a quote batch's `quotes[].{symbol,seq}`, or an event's `channel` and `seq`.
#[derive(Deserialize)]
struct Numbered<'a> {
    #[serde(default, borrow)]
    quotes: Vec<NumberedQuote<'a>>,
    #[serde(default, borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct NumberedQuote<'a> {
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    #[serde(default)]
    seq: Option<u64>,
}

impl Cursor {
    fn new(epoch: u64, symbols: &[Symbol]) -> Cursor {
        let index = symbols.iter().enumerate().map(|(i, sym)| (sym.to_string(), i)).collect();
        Cursor { epoch, index, seqs: vec![None; symbols.len()] }
    }

    fn event(&mut self, frame: &Frame) -> Event {
        // Frames are serde_json output and therefore UTF-8.
        let data = String::from_utf8_lossy(&frame.json);
        let event = Event::default().event(frame.kind).data(data);
        if !matches!(frame.kind, "snapshot" | "quotes" | "recovered" | "event") {
            return event;
        }
        match serde_json::from_slice::<Numbered<'_>>(&frame.json) {
            Ok(numbered) => {
                for quote in &numbered.quotes {
                    self.saw(&quote.symbol, quote.seq);
                }
                if let Some(channel) = &numbered.channel {
                    self.saw(channel, numbered.seq);
                }
            }
            Err(e) => tracing::warn!(kind = frame.kind, error = %e, "cannot read the numbers of a frame"),
        }
        let mut id = String::with_capacity(14 + 4 * self.seqs.len());
        EventId::write(self.epoch, &self.seqs, &mut id);
        event.id(id)
    }

    fn saw(&mut self, symbol: &str, seq: Option<u64>) {
        if let (Some(&i), Some(seq)) = (self.index.get(symbol), seq) {
            self.seqs[i] = Some(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn event_ids_round_trip_and_stay_short() {
        let id = EventId { epoch: 1_767_225_600_000, seqs: vec![Some(46), None, Some(0), Some(u64::MAX)] };
        let mut text = String::new();
        EventId::write(id.epoch, &id.seqs, &mut text);
        assert_eq!(text, format!("mjuohs00.1a..0.{}", "3w5e11264sgsf"));
        assert_eq!(EventId::parse(text.as_bytes(), 4), Some(id));
        assert_eq!(EventId::parse(text.as_bytes(), 3), None, "another stream's id");
    }

    #[test]
    fn malformed_ids_are_refused_not_misread() {
        for bad in ["", ".", "+1.2", "1.-2", "1.2x!", "1.ZZ", "zzzzzzzzzzzzzz.1", "1..2.."] {
            assert_eq!(EventId::parse(bad.as_bytes(), 1), None, "{bad:?}");
        }
        assert_eq!(EventId::parse(b"\xff.1", 1), None);
    }

    #[test]
    fn only_numbered_frames_get_an_id_and_it_names_every_symbol() {
        let symbols = [Symbol::parse("AAPL").unwrap(), Symbol::parse("uw:flow-alerts").unwrap()];
        let mut cursor = Cursor::new(36, &symbols);
        let frame = |kind: &'static str, json: &'static str| Frame::new(kind, Bytes::from_static(json.as_bytes()), 0);
        let id_of = |e: &Event| format!("{e:?}");
        let hello = cursor.event(&frame("hello", r#"{"type":"hello"}"#));
        assert!(!id_of(&hello).contains("id: "), "{hello:?}");
        let _ =
            cursor.event(&frame("quotes", r#"{"type":"quotes","quotes":[{"symbol":"AAPL","price":1.0,"seq":35}]}"#));
        assert_eq!(cursor.seqs, [Some(35), None]);
        let _ =
            cursor.event(&frame("event", r#"{"type":"event","channel":"uw:FLOW-ALERTS","payload":{},"ts":1,"seq":2}"#));
        assert_eq!(cursor.seqs, [Some(35), Some(2)]);
        let mut text = String::new();
        EventId::write(cursor.epoch, &cursor.seqs, &mut text);
        assert_eq!(text, "10.z.2");
    }
}
