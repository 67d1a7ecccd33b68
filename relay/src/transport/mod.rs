//! How clients reach the hub: WebSocket ([`ws`]), Server-Sent Events ([`sse`]) and plain REST ([`rest`]).
//!
//! Transports own sockets and HTTP details only. They register clients with the hub, hand commands to
//! [`crate::session`], and drain each client's outbox at the pace its socket allows.

pub mod rest;
pub mod sse;
pub mod ws;

use hamster_shared::{ServerMessage, PROTOCOL_VERSION};

use crate::app::AppState;
use crate::hub::{control_frame, ClientHandle};

/// Relay name and version as sent in `hello`.
pub fn server_name() -> String {
    format!("hamster-relay/{}", env!("CARGO_PKG_VERSION"))
}

/// Queues the greeting every connection starts with: `hello`, then the current `status` of each provider.
pub fn greet(app: &AppState, client: &ClientHandle) {
    let providers = app.hub.providers();
    let hello = ServerMessage::Hello {
        protocol: PROTOCOL_VERSION,
        server: server_name(),
        heartbeat_ms: app.config.heartbeat().as_millis() as u64,
        providers: providers.clone(),
    };
    client.outbox().push_control(control_frame(&hello));
    for p in providers {
        let status = ServerMessage::Status { provider: p.name, state: p.state, detail: p.detail, since: p.since };
        client.outbox().push_control(control_frame(&status));
    }
}
