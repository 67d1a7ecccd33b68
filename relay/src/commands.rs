//! What a client's commands mean, independent of the transport that carried them.
//!
//! Validation is the same everywhere: symbols are checked with the shared rules, then routed; a bad symbol is
//! rejected on its own with a reason while the rest of the command proceeds. A command that cannot be read at
//! all gets an `error` with a stable code, and the connection stays usable.

use hamster_shared::{ClientMessage, ErrorCode, Rejection, RequestId, ServerMessage, Symbol, MAX_SYMBOLS_PER_REQUEST};

use crate::hub::{ClientHandle, Hub};
use crate::upstream::Upstream;

/// Splits raw symbols into routable canonical ones (deduplicated, in order) and rejections.
pub fn resolve(upstream: &Upstream, raw: &[String]) -> (Vec<Symbol>, Vec<Rejection>) {
    let mut ok: Vec<Symbol> = Vec::with_capacity(raw.len());
    let mut rejected = Vec::new();
    for text in raw {
        let symbol = match Symbol::parse(text) {
            Ok(symbol) => symbol,
            Err(e) => {
                rejected.push(Rejection {
                    symbol: text.clone(),
                    code: ErrorCode::InvalidSymbol,
                    message: e.to_string(),
                });
                continue;
            }
        };
        if let Err(e) = upstream.route(&symbol) {
            rejected.push(Rejection { symbol: text.clone(), code: e.code, message: e.message });
            continue;
        }
        if !ok.contains(&symbol) {
            ok.push(symbol);
        }
    }
    (ok, rejected)
}

/// The error for a command naming too many symbols.
pub fn too_many(count: usize) -> (ErrorCode, String) {
    (
        ErrorCode::TooManySymbols,
        format!("{count} symbols in one request; at most {MAX_SYMBOLS_PER_REQUEST} are allowed"),
    )
}

/// Whether a command was carried out or refused with an `error` (refusals count against abusive clients).
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Done,
    Refused,
}

/// Handles one text frame from `client`, queueing replies in its outbox.
pub fn handle_text(hub: &Hub, upstream: &Upstream, client: &ClientHandle, text: &str) -> Handled {
    hub.metrics().commands.inc();
    let message = match ClientMessage::parse(text) {
        Ok(message) => message,
        Err(e) => return error(hub, client, e.id, e.code, e.message),
    };
    match message {
        ClientMessage::Subscribe { id, symbols } => {
            if symbols.len() > MAX_SYMBOLS_PER_REQUEST {
                let (code, message) = too_many(symbols.len());
                return error(hub, client, id, code, message);
            }
            let (symbols, rejected) = resolve(upstream, &symbols);
            hub.subscribe(client.id(), id, symbols, rejected);
        }
        ClientMessage::Unsubscribe { id, symbols } => {
            if symbols.len() > MAX_SYMBOLS_PER_REQUEST {
                let (code, message) = too_many(symbols.len());
                return error(hub, client, id, code, message);
            }
            // Anything invalid cannot be subscribed, so there is nothing to remove for it.
            let symbols = symbols.iter().filter_map(|s| Symbol::parse(s).ok()).collect();
            hub.unsubscribe(client.id(), id, symbols);
        }
        ClientMessage::Ping { id } => hub.send(client.id(), &ServerMessage::Pong { id }),
    }
    Handled::Done
}

/// Queues an `error` for `client`.
pub fn error(hub: &Hub, client: &ClientHandle, id: Option<RequestId>, code: ErrorCode, message: String) -> Handled {
    hub.metrics().command_errors.inc();
    tracing::debug!(client = client.id(), code = code.as_str(), %message, "client command refused");
    hub.send(client.id(), &ServerMessage::Error { id, code, message });
    Handled::Refused
}
