//! The HTTP accept loop: hyper serving the axum router, with what `axum::serve` does not offer — a deadline for
//! the request head (slow-loris handshakes are cut), per-socket options, and the peer address for the edge
//! policy — plus graceful shutdown of plain HTTP connections.
//!
//! Upgraded WebSocket connections leave hyper's hands; the transports track and close those themselves.

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

/// Socket and protocol settings for accepted connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeOptions {
    /// The whole request head must arrive within this long (each request on a keep-alive connection).
    pub(crate) handshake_timeout: Duration,
    /// `SO_SNDBUF` per socket (0 = OS default).
    pub(crate) send_buffer: usize,
}

/// Serves `router` on `listener` until `stop` fires, then lets in-flight HTTP requests finish.
pub(crate) async fn serve(listener: TcpListener, router: Router, options: ServeOptions, stop: CancellationToken) {
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
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
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
