//! `GET /api/stream?symbols=A,B`: the same server messages as `/ws`, as Server-Sent Events, for clients that
//! only need to listen. The event name is the message `type`; the data is the message JSON.
//!
//! The stream is pulled by hyper as the socket drains, so a slow reader simply leaves frames in its outbox and
//! is conflated like a slow WebSocket client. It ends when the client goes away, its token expires or the relay
//! shuts down. The handshake passes the same edge policy as `/ws` (origin, address slot, credential).

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Extension, Router};
use futures::{stream, Stream, StreamExt};
use hamster_shared::ErrorCode;

use super::query::{parse_symbols, SymbolsQuery};
use crate::error::HttpError;
use crate::guard::Authenticated;
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
    let client = super::connect(&app, "sse");
    app.hub.subscribe(client.id(), None, symbols, Vec::new());

    let expiry = pass.time_left();
    // The pass (and with it the address slot) lives as long as the stream.
    let frames = stream::unfold((client, pass), |(client, pass)| async move {
        let frames = client.next_frames().await?;
        client.delivered(&frames);
        Some((frames, (client, pass)))
    });
    let events = frames
        .flat_map(|frames| {
            stream::iter(frames.into_iter().map(|f| {
                // Frames are serde_json output and therefore UTF-8.
                let data = String::from_utf8_lossy(&f.json).into_owned();
                Ok(Event::default().event(f.kind).data(data))
            }))
        })
        .take_until(app.shutdown.clone().cancelled_owned())
        .take_until(tokio::time::sleep(expiry));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(app.config.heartbeat())))
}
