//! How clients reach the hub: WebSocket ([`ws`]), Server-Sent Events ([`sse`]) and plain REST ([`rest`],
//! [`history`], [`symbols`]).
//!
//! Transports own sockets and HTTP details only. They register clients with the hub, hand commands to
//! [`crate::commands`], and drain each client's outbox at the pace its socket allows. Each one lists its own
//! routes next to its handlers (`routes()`); [`crate::app`] decides which sit behind auth. The `?symbols=`
//! query that SSE and REST share is parsed in `query`, so no transport imports another.

pub(crate) mod history;
pub(crate) mod orders;
mod query;
pub(crate) mod recordings;
pub(crate) mod rest;
pub(crate) mod sse;
pub(crate) mod symbols;
pub(crate) mod ws;

use hamster_shared::{ServerMessage, FEATURES, PROTOCOL_VERSION};

use crate::hub::{control_frame, ClientHandle};
use crate::state::AppState;

/// Relay name and version as sent in `hello`.
pub(crate) fn server_name() -> String {
    format!("hamster-relay/{}", env!("CARGO_PKG_VERSION"))
}

/// Registers a client whose first frames are the greeting: `hello`, then the current `status` of each
/// provider. Done atomically by the hub, so no broadcast can overtake the `hello`.
pub(crate) fn connect(app: &AppState, transport: &'static str) -> ClientHandle {
    let heartbeat_ms = app.config.heartbeat().as_millis() as u64;
    let epoch = app.hub.epoch();
    app.hub.connect(transport, |providers| {
        let hello = ServerMessage::Hello {
            epoch,
            features: FEATURES.iter().map(|f| f.to_string()).collect(),
            protocol: PROTOCOL_VERSION,
            server: server_name(),
            heartbeat_ms,
            providers: providers.to_vec(),
        };
        let statuses = providers.iter().map(|p| {
            control_frame(&ServerMessage::Status {
                provider: p.name.clone(),
                state: p.state,
                detail: p.detail.clone(),
                since: p.since,
            })
        });
        std::iter::once(control_frame(&hello)).chain(statuses).collect()
    })
}
