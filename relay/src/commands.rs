//! What a client's commands mean, independent of the transport that carried them.
//!
//! Validation is the same everywhere: symbols are checked with the shared rules, then routed; a bad symbol is
//! rejected on its own with a reason while the rest of the command proceeds. A command that cannot be read at
//! all gets an `error` with a stable code, and the connection stays usable.

use std::sync::Arc;
use std::time::Duration;

use hamster_shared::{
    ClientMessage, ErrorCode, ParseError, Rejection, RequestId, ServerMessage, Symbol, MAX_SYMBOLS_PER_REQUEST,
};

use crate::hub::{ClientHandle, Hub, SubscribeOptions};
use crate::replay::{ReplayRequest, Replays};
use crate::trading::Trading;
use crate::upstream::Upstream;

/// Splits raw symbols into routable canonical ones (deduplicated, in order) and rejections.
pub(crate) fn resolve(upstream: &Upstream, raw: &[String]) -> (Vec<Symbol>, Vec<Rejection>) {
    let mut ok: Vec<Symbol> = Vec::with_capacity(raw.len());
    let mut rejected = Vec::new();
    for text in raw {
        let symbol = match parse(text) {
            Ok(symbol) => symbol,
            Err(rejection) => {
                rejected.push(rejection);
                continue;
            }
        };
        if let Err(e) = upstream.route(&symbol) {
            rejected.push(Rejection {
                symbol: text.clone(),
                code: e.code,
                message: e.message,
                suggestions: e.suggestions,
            });
            continue;
        }
        if !ok.contains(&symbol) {
            ok.push(symbol);
        }
    }
    (ok, rejected)
}

/// A command or request naming more than [`MAX_SYMBOLS_PER_REQUEST`] symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{count} symbols in one request; at most {MAX_SYMBOLS_PER_REQUEST} are allowed")]
pub(crate) struct TooManySymbols {
    pub(crate) count: usize,
}

impl TooManySymbols {
    /// Refuses `symbols` if there are too many of them.
    pub(crate) fn check<T>(symbols: &[T]) -> Result<(), TooManySymbols> {
        match symbols.len() {
            count if count > MAX_SYMBOLS_PER_REQUEST => Err(TooManySymbols { count }),
            _ => Ok(()),
        }
    }
}

/// Parses one symbol as the client wrote it; if it is invalid, the rejection names it and says why.
pub(crate) fn parse(text: &str) -> Result<Symbol, Rejection> {
    Symbol::parse(text).map_err(|e| Rejection {
        symbol: text.to_owned(),
        code: ErrorCode::InvalidSymbol,
        message: e.to_string(),
        suggestions: Vec::new(),
    })
}

/// Whether a command was carried out or refused with an `error` (refusals count against abusive clients).
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    Done,
    Refused,
}

/// Handles one text frame from `client`, queueing replies in its outbox.
pub(crate) fn handle_text(
    hub: &Arc<Hub>,
    upstream: &Upstream,
    replays: Option<&Arc<Replays>>,
    trading: &Trading,
    client: &ClientHandle,
    text: &str,
) -> Handled {
    handle(hub, upstream, replays, trading, client, ClientMessage::parse(text))
}

/// Handles one binary frame from a `client` that negotiated MessagePack: the same commands, the same replies.
pub(crate) fn handle_msgpack(
    hub: &Arc<Hub>,
    upstream: &Upstream,
    replays: Option<&Arc<Replays>>,
    trading: &Trading,
    client: &ClientHandle,
    bytes: &[u8],
) -> Handled {
    handle(hub, upstream, replays, trading, client, ClientMessage::parse_msgpack(bytes))
}

fn handle(
    hub: &Arc<Hub>,
    upstream: &Upstream,
    replays: Option<&Arc<Replays>>,
    trading: &Trading,
    client: &ClientHandle,
    parsed: Result<ClientMessage, ParseError>,
) -> Handled {
    hub.metrics().commands.inc();
    let message = match parsed {
        Ok(message) => message,
        Err(e) => return error(hub, client, e.id, e.code, e.message),
    };
    let Some(message) = trading.handle(hub, upstream, client.id(), message) else { return Handled::Done };
    match message {
        ClientMessage::Subscribe { id, symbols, resume, max_hz } => {
            if let Err(e) = TooManySymbols::check(&symbols) {
                return error(hub, client, id, ErrorCode::TooManySymbols, e.to_string());
            }
            let interval = match max_hz.map(rate_interval).transpose() {
                Ok(interval) => interval.flatten(),
                Err(message) => return error(hub, client, id, ErrorCode::BadMessage, message),
            };
            // Resume points name symbols as the client wrote them; an unreadable one has nothing to resume.
            let resume = resume.map(|r| {
                let seen = r.seqs.iter().filter_map(|(raw, seq)| Symbol::parse(raw).ok().map(|s| (s, *seq))).collect();
                (r.epoch, seen)
            });
            let (symbols, rejected) = resolve(upstream, &symbols);
            hub.subscribe_with(client.id(), id, symbols, rejected, SubscribeOptions { resume, interval });
        }
        ClientMessage::Unsubscribe { id, symbols } => {
            if let Err(e) = TooManySymbols::check(&symbols) {
                return error(hub, client, id, ErrorCode::TooManySymbols, e.to_string());
            }
            // Anything invalid cannot be subscribed, so there is nothing to remove for it.
            let symbols = symbols.iter().filter_map(|s| Symbol::parse(s).ok()).collect();
            hub.unsubscribe(client.id(), id, symbols);
        }
        ClientMessage::Ping { id } => {
            hub.send(client.id(), &ServerMessage::Pong { id, ts: Some(crate::clock::now_ms()) })
        }
        ClientMessage::Replay { id, from, to, symbols, speed } => {
            let Some(replays) = replays else { return no_store(hub, client, id) };
            if let Err(e) = TooManySymbols::check(&symbols) {
                return error(hub, client, id, ErrorCode::TooManySymbols, e.to_string());
            }
            let mut recorded = Vec::with_capacity(symbols.len());
            for raw in &symbols {
                match parse(raw) {
                    Ok(symbol) => recorded.push(symbol),
                    Err(r) => return error(hub, client, id, r.code, format!("{:?}: {}", r.symbol, r.message)),
                }
            }
            let request = ReplayRequest { id: id.clone(), from, to, symbols: recorded, speed };
            if let Err(e) = replays.start(client.id(), request) {
                return error(hub, client, id, e.code, e.message);
            }
        }
        ClientMessage::ReplayControl { id, action, speed, to } => {
            let Some(replays) = replays else { return no_store(hub, client, id) };
            if let Err(e) = replays.control(client.id(), id.clone(), action, speed, to) {
                return error(hub, client, id, e.code, e.message);
            }
        }
        // Handled by `trading` above.
        ClientMessage::PlaceOrder { .. }
        | ClientMessage::CancelOrder { .. }
        | ClientMessage::ReplaceOrder { .. }
        | ClientMessage::SubscribeAccount { .. }
        | ClientMessage::UnsubscribeAccount { .. }
        | ClientMessage::ResetAccount { .. } => {}
    }
    Handled::Done
}

/// Fastest `max_hz` that still limits anything; above it a client gets every update.
const UNLIMITED_HZ: f64 = 1000.0;
/// Slowest `max_hz` honoured (one update an hour); slower requests get that.
const SLOWEST_HZ: f64 = 1.0 / 3600.0;

/// The interval between updates for `max_hz`, `None` when it limits nothing, or why it is not a rate.
fn rate_interval(max_hz: f64) -> Result<Option<Duration>, String> {
    if !max_hz.is_finite() || max_hz <= 0.0 {
        return Err(format!("max_hz must be a positive number of updates per second, not {max_hz}"));
    }
    if max_hz >= UNLIMITED_HZ {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs_f64(1.0 / max_hz.max(SLOWEST_HZ))))
}

fn no_store(hub: &Hub, client: &ClientHandle, id: Option<RequestId>) -> Handled {
    let message = "replay needs the embedded store, which is not available on this relay".to_owned();
    error(hub, client, id, ErrorCode::Unavailable, message)
}

/// Queues an `error` for `client`.
pub(crate) fn error(
    hub: &Hub,
    client: &ClientHandle,
    id: Option<RequestId>,
    code: ErrorCode,
    message: String,
) -> Handled {
    hub.metrics().command_errors.inc();
    tracing::debug!(client = client.id(), code = code.as_str(), %message, "client command refused");
    hub.send(client.id(), &ServerMessage::Error { id, code, message });
    Handled::Refused
}
