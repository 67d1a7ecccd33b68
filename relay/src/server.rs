//! The HTTP accept loop: hyper serving the axum router, with what `axum::serve` does not offer — a deadline for
//! the first byte and for the request head (silent and slow-loris connections are cut), connections silent past
//! a grace second counted toward their address's connection limit, per-socket options, and the peer address for the edge
//! policy — plus graceful shutdown of plain HTTP connections.
//!
//! Upgraded WebSocket connections leave hyper's hands; the transports track and close those themselves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::guard::Guard;

/// Socket and protocol settings for accepted connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeOptions {
    /// The first byte must arrive within this long of the accept, and the whole request head within this long
    /// of the first byte (each request on a keep-alive connection).
    pub(crate) handshake_timeout: Duration,
    /// `SO_SNDBUF` per socket (0 = OS default).
    pub(crate) send_buffer: usize,
}

/// Serves `router` on `listener` until `stop` fires, then lets in-flight HTTP requests finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    guard: Arc<Guard>,
    options: ServeOptions,
    stop: CancellationToken,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.handshake_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually EMFILE/ENFILE: back off instead of spinning, and let connections drain.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tune_socket(&tcp, options.send_buffer);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move { router.oneshot(request.map(axum::body::Body::new)).await }
        });
        let builder = builder.clone();
        let guard = guard.clone();
        let watcher = graceful.watcher();
        let stop = stop.clone();
        tokio::spawn(async move {
            // hyper's head deadline starts at the first byte; before that, only this one runs.
            let spoke = tokio::select! {
                _ = stop.cancelled() => return,
                spoke = first_byte(&tcp, &guard, peer, options.handshake_timeout) => spoke,
            };
            if !spoke {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// How long a new connection may stay silent before it takes a slot of its address's connection limit. Real
/// clients speak at once, so they never count; the slot is only a cost for sockets that say nothing.
const SILENT_GRACE: Duration = Duration::from_secs(1);

/// Waits for a connection's first byte, up to `deadline` after the accept; `false` if it never came (or the
/// peer left). Past [`SILENT_GRACE`] the wait holds a slot of the peer's per-address connection limit, and
/// with none left the connection is closed at once: silent sockets cannot pile up to the open-files limit.
async fn first_byte(tcp: &TcpStream, guard: &Guard, peer: SocketAddr, deadline: Duration) -> bool {
    let mut first = [0u8; 1];
    let grace = deadline.min(SILENT_GRACE);
    let spoke = |peeked: std::io::Result<usize>| matches!(peeked, Ok(n) if n > 0);
    if let Ok(peeked) = tokio::time::timeout(grace, tcp.peek(&mut first)).await {
        return spoke(peeked);
    }
    let Ok(_slot) = guard.silent_slot(peer.ip()) else {
        tracing::debug!(%peer, "closing a silent connection: its address holds its share of connections");
        return false;
    };
    match tokio::time::timeout(deadline.saturating_sub(grace), tcp.peek(&mut first)).await {
        Ok(peeked) => spoke(peeked),
        Err(_) => {
            tracing::debug!(%peer, "closing a connection that sent nothing");
            false
        }
    }
}

/// Per-connection socket options: no Nagle delay (quotes are small and latency-sensitive) and a bounded send
/// buffer (see `--send-buffer-bytes`).
fn tune_socket(tcp: &TcpStream, send_buffer: usize) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    if send_buffer > 0 {
        if let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer) {
            tracing::debug!(error = %e, "cannot set SO_SNDBUF");
        }
    }
}
