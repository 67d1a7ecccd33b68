//! A loopback WebSocket server for mock upstream providers.
//!
//! [`MockServer`] owns accepting, the handshake (with the request's query and headers kept for assertions),
//! counting connections, a log of every text frame clients sent, and fault injection (cut every connection
//! abruptly, refuse upgrades with an HTTP status). A provider mock supplies only its protocol: an async
//! handler per connection that reads [`MockConn::recv`] and answers with [`MockConn::send`].

use std::future::Future;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, StatusCode};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::WAIT;

#[derive(Default)]
struct Shared {
    attempts: AtomicUsize,
    accepted: AtomicUsize,
    open: AtomicUsize,
    /// The most connections open at once since the start.
    peak: AtomicUsize,
    /// Non-zero: drop a connection whose client sent no frame at all (pongs included) for this many ms.
    silence_limit_ms: AtomicU64,
    /// Non-zero: refuse upgrades with this HTTP status.
    refuse_status: AtomicU16,
    /// Every text frame received, with when it arrived.
    received: Mutex<Vec<(Instant, String)>>,
    /// Path and query of every upgrade request, refused ones included.
    paths: Mutex<Vec<String>>,
}

/// A running mock upstream. Dropping it stops accepting; open connections end with their handlers.
#[derive(Clone)]
pub struct MockServer {
    port: u16,
    shared: Arc<Shared>,
    cut: broadcast::Sender<()>,
    _stop: Arc<tokio::sync::oneshot::Sender<()>>,
}

/// One accepted client connection, as seen by a provider mock.
pub struct MockConn {
    ws: WebSocketStream<TcpStream>,
    /// The request's path and query, e.g. `/v1/quotes/price?apikey=k`.
    pub path: String,
    pub headers: HeaderMap,
    cut: broadcast::Receiver<()>,
    shared: Arc<Shared>,
    /// When the client last sent any frame.
    heard: Instant,
}

/// What [`MockConn::recv`] saw.
#[derive(Debug)]
pub enum Incoming {
    Text(String),
    /// The client closed or the connection broke.
    Gone,
    /// The test cut the connection (handler must return; the socket is dropped without a close frame).
    Cut,
}

/// Decides an upgrade from its path-and-query and headers: `Some((status, body))` refuses it (e.g. a bad
/// `?token=`), `None` accepts it.
pub type Gate = dyn Fn(&str, &HeaderMap) -> Option<(u16, String)> + Send + Sync;

impl MockServer {
    /// Starts a mock on a free loopback port; `handler` runs once per accepted connection.
    pub async fn start<F, Fut>(handler: F) -> MockServer
    where
        F: Fn(MockConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        MockServer::start_gated(|_, _| None, handler).await
    }

    /// Like [`MockServer::start`], with `gate` deciding each upgrade (providers that check credentials before
    /// the upgrade, answering a plain HTTP error).
    pub async fn start_gated<G, F, Fut>(gate: G, handler: F) -> MockServer
    where
        G: Fn(&str, &HeaderMap) -> Option<(u16, String)> + Send + Sync + 'static,
        F: Fn(MockConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let gate: Arc<Gate> = Arc::new(gate);
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind mock");
        let port = listener.local_addr().expect("mock addr").port();
        let shared = Arc::new(Shared::default());
        let (cut, _) = broadcast::channel(4);
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let handler = Arc::new(handler);
        let (s, c) = (shared.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = &mut stop_rx => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let (shared, cut, handler, gate) = (s.clone(), c.subscribe(), handler.clone(), gate.clone());
                tokio::spawn(async move {
                    let mut path = String::new();
                    let mut headers = HeaderMap::new();
                    shared.attempts.fetch_add(1, Ordering::SeqCst);
                    let refuse = shared.refuse_status.load(Ordering::SeqCst);
                    // The Result shape is tungstenite's handshake `Callback` signature, not ours to shrink.
                    #[allow(clippy::result_large_err)]
                    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                        path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                        headers = req.headers().clone();
                        shared.paths.lock().map(|mut p| p.push(path.clone())).ok();
                        if let Some((status, body)) = gate(&path, &headers) {
                            let mut e = ErrorResponse::new(Some(body));
                            *e.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
                            return Err(e);
                        }
                        if refuse != 0 {
                            let mut e = ErrorResponse::new(Some("refused by mock".into()));
                            *e.status_mut() = StatusCode::from_u16(refuse).unwrap_or(StatusCode::UNAUTHORIZED);
                            return Err(e);
                        }
                        Ok(resp)
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
                    shared.accepted.fetch_add(1, Ordering::SeqCst);
                    let open = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
                    shared.peak.fetch_max(open, Ordering::SeqCst);
                    let heard = Instant::now();
                    handler(MockConn { ws, path, headers, cut, shared: shared.clone(), heard }).await;
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        MockServer { port, shared, cut, _stop: Arc::new(stop_tx) }
    }

    /// `ws://127.0.0.1:PORT{path}`
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Upgrade attempts so far, refused ones included.
    pub fn attempts(&self) -> usize {
        self.shared.attempts.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (successful upgrades).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// The most connections that were ever open at the same time.
    pub fn peak_open(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// Drops any connection whose client sends no frame at all (pongs to the mock's pings included) for `limit`:
    /// what providers that ping do to an unresponsive client (Binance: no pong within a minute).
    pub fn drop_silent_clients_after(&self, limit: Duration) {
        self.shared.silence_limit_ms.store(limit.as_millis() as u64, Ordering::SeqCst);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Every text frame clients sent, in order, with when it arrived.
    pub fn received_timed(&self) -> Vec<(Instant, String)> {
        self.shared.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Every text frame clients sent, in order.
    pub fn received(&self) -> Vec<String> {
        self.received_timed().into_iter().map(|(_, text)| text).collect()
    }

    /// Path and query of every upgrade request so far (e.g. `/socket?token=…`), refused ones included.
    pub fn upgrade_paths(&self) -> Vec<String> {
        self.shared.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Drops every open connection without a close frame, like a network failure.
    pub fn cut_all(&self) {
        let _ = self.cut.send(());
    }

    /// From now on, refuse upgrades with `status` (0 to accept again).
    pub fn refuse_with(&self, status: u16) {
        self.shared.refuse_status.store(status, Ordering::SeqCst);
    }

    /// Waits until `pred` holds, failing the test after [`WAIT`].
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&MockServer) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !pred(self) {
            assert!(tokio::time::Instant::now() < deadline, "mock: timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl MockConn {
    /// Next text frame from the client (pings are answered by tungstenite), or why there is none. With a
    /// silence limit set, a client that sent nothing (not even a pong) for that long is dropped as [`Incoming::Cut`].
    pub async fn recv(&mut self) -> Incoming {
        loop {
            let limit = self.shared.silence_limit_ms.load(Ordering::SeqCst);
            let silent_until = (limit > 0).then(|| self.heard + Duration::from_millis(limit));
            tokio::select! {
                _ = self.cut.recv() => return Incoming::Cut,
                _ = sleep_until_opt(silent_until) => return Incoming::Cut,
                frame = self.ws.next() => match frame {
                    Some(Ok(Message::Text(t))) => {
                        self.heard = Instant::now();
                        let text = t.to_string();
                        if let Ok(mut r) = self.shared.received.lock() {
                            r.push((Instant::now(), text.clone()));
                        }
                        return Incoming::Text(text);
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Incoming::Gone,
                    Some(Ok(_)) => {
                        self.heard = Instant::now();
                        continue;
                    }
                },
            }
        }
    }

    /// Like [`MockConn::recv`], but gives up after `limit` with `None`.
    pub async fn recv_within(&mut self, limit: Duration) -> Option<Incoming> {
        tokio::time::timeout(limit, self.recv()).await.ok()
    }

    /// Sends a text frame; false if the connection is gone.
    pub async fn send(&mut self, text: impl Into<String>) -> bool {
        self.ws.send(Message::text(text.into())).await.is_ok()
    }

    /// Sends a binary frame (Alpaca's paper `trade_updates` stream carries its JSON in binary frames).
    pub async fn send_binary(&mut self, bytes: impl Into<Vec<u8>>) -> bool {
        self.ws.send(Message::binary(bytes.into())).await.is_ok()
    }

    /// Sends a WebSocket ping frame with `payload`.
    pub async fn ping(&mut self, payload: &'static [u8]) -> bool {
        self.ws.send(Message::Ping(payload.into())).await.is_ok()
    }

    /// Closes with a close frame (`code`, `reason`).
    pub async fn close(mut self, code: u16, reason: &str) {
        use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() };
        let _ = self.ws.close(Some(frame)).await;
    }

    /// A receiver that fires when the test cuts connections (for handlers that also stream on a timer).
    pub fn cut_signal(&self) -> broadcast::Receiver<()> {
        self.cut.resubscribe()
    }

    /// The query parameter `name` of the upgrade request.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(&self.path, name)
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// The query parameter `name` of a path-and-query such as `/socket?token=abc`.
pub fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Serves a mock provider's REST endpoints on a free loopback port until the test ends; returns
/// `http://127.0.0.1:PORT`.
pub async fn serve_rest(router: axum::Router) -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind a rest mock");
    let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("rest mock addr").port());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}
