//! The measuring clients: many WebSocket connections to the relay (or the Node peer), and what they saw.
//!
//! Each client is one tokio task with one `tokio-tungstenite` connection. It sends `subscribe` (in requests of
//! at most 100 symbols, the protocol's limit), waits for the `subscribed` replies, then reads `quotes` frames.
//! For every quote it reads the mark (see [`crate::mark`]) and, if the tick was sent inside the measurement
//! window, records the latency in an HDR histogram and checks the symbol's sequence number for a gap (an update
//! the relay conflated or dropped). Separately it counts every quote that *arrives* while the window is open,
//! whenever it was sent: that is the throughput, which stays meaningful when a server is so far behind that the
//! window's own ticks arrive only later (or never). `snapshot` quotes only seed the sequence numbers: they are
//! cached values, not deliveries.
//!
//! Clients behave as told ([`Behaviour`]): fast readers, slow readers (a pause after every frame) or stalled
//! ones (they read the subscribe reply, then nothing). Readers send `ping` every few seconds, as the dashboard
//! does, so an overloaded relay does not drop them for silence. Their results go to one of three groups, fast,
//! slow and remote (fast readers on a cluster node whose quotes crossed Redis), so the fast clients' latency next
//! to stalled ones, and a cluster's clients next to and away from the upstream connection, can be reported apart. Histograms are sharded by client,
//! each shard behind a mutex taken once per frame, so thousands of clients record without contention and
//! without a histogram each (which would dominate the bench's memory at 10,000 clients).
//!
//! A client may offer permessage-deflate (RFC 7692, `--deflate`): it then speaks through yawc instead of
//! tokio-tungstenite (which has no such extension) and inflates what the relay compressed. Either way every byte
//! read from the socket is counted per group ([`Recorder::wire_bytes`]): the bandwidth a client really costs.
//!
//! This module does not decide how many clients there are or when the window opens: `scenario` does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::mark::{exact_u64, now_ns, Window};

/// Histogram shards per group.
const SHARDS: usize = 16;
/// Largest latency recorded (µs); larger values are clamped to it.
const MAX_LATENCY_US: u64 = 60_000_000;
/// The protocol's limit of symbols in one `subscribe`.
const MAX_SYMBOLS_PER_REQUEST: usize = 100;
/// Read buffer per client. tungstenite's default (128 KiB) is zero-filled to its full size before the first
/// read, so 10,000 clients would pin 1.3 GB of the bench's memory; quote frames are far smaller.
const READ_BUFFER: usize = 16 * 1024;
/// How often a reading client sends the protocol's `ping` (the relay drops clients silent for 2 × 15 s).
const KEEPALIVE: Duration = Duration::from_secs(10);
/// Time allowed for one connection's TCP connect and WebSocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How a client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Reads as fast as it can.
    Fast,
    /// Pauses this long after every frame.
    Slow(Duration),
    /// Reads the `subscribed` replies, then never reads again.
    Stalled,
}

/// Which results a client's measurements go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Fast = 0,
    Slow = 1,
    /// Fast readers on a cluster node that does not hold the upstream connection: their quotes crossed Redis.
    Remote = 2,
    /// Measured nowhere (helper connections, e.g. the subscription primers).
    None = 3,
}

/// One client to run.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// `ws://host:port/ws`
    pub url: String,
    pub symbols: Vec<String>,
    pub behaviour: Behaviour,
    pub group: Group,
    /// Offer permessage-deflate (through yawc).
    pub deflate: bool,
}

/// Counters and latencies of one group.
#[derive(Debug)]
struct GroupStats {
    shards: Vec<Mutex<Histogram<u64>>>,
    deliveries: AtomicU64,
    arrived: AtomicU64,
    frames: AtomicU64,
    gaps: AtomicU64,
    reordered: AtomicU64,
    duplicates: AtomicU64,
    /// Clients whose connection ended after they had subscribed.
    dropped: AtomicU64,
    /// Bytes read from the group's sockets (handshakes included), whatever the window.
    wire: Arc<AtomicU64>,
}

impl GroupStats {
    fn new() -> anyhow::Result<GroupStats> {
        let shards = (0..SHARDS)
            .map(|_| Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(GroupStats {
            shards,
            deliveries: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            wire: Arc::default(),
        })
    }
}

/// What one group measured inside the window.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Quotes received whose tick was sent inside the window (by the end of the drain).
    pub deliveries: u64,
    /// Quotes received while the window was open, whenever their tick was sent: the throughput.
    pub arrived: u64,
    /// Frames that carried at least one such quote.
    pub frames: u64,
    /// Updates skipped (sequence jumps): conflated by the relay, or dropped.
    pub gaps: u64,
    /// Quotes older than one already seen for the same symbol: stale data (should be 0).
    pub reordered: u64,
    /// Quotes identical to the previous one for the same symbol (should be 0).
    pub duplicates: u64,
    /// Clients whose connection ended after they had subscribed (e.g. dropped by the relay), and the first
    /// reason seen in any group.
    pub dropped: u64,
    pub first_drop: Option<String>,
    /// Latency quantiles in microseconds: p50, p90, p99, max.
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Shared by all clients: the window, per-group results, and how many clients got how far.
#[derive(Debug)]
pub struct Recorder {
    window: Arc<Window>,
    groups: [GroupStats; 3],
    connected: AtomicUsize,
    subscribed: AtomicUsize,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
    first_drop: Mutex<Option<String>>,
}

impl Recorder {
    pub fn new(window: Arc<Window>) -> anyhow::Result<Recorder> {
        Ok(Recorder {
            window,
            groups: [GroupStats::new()?, GroupStats::new()?, GroupStats::new()?],
            connected: AtomicUsize::new(0),
            subscribed: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            first_drop: Mutex::new(None),
        })
    }

    /// Clients with an open connection, clients whose subscriptions were all acknowledged, clients that failed.
    pub fn progress(&self) -> (usize, usize, usize) {
        (
            self.connected.load(Ordering::Relaxed),
            self.subscribed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// The first error any client hit.
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }

    /// Bytes the clients of `group` have read from their sockets so far: frames as they travelled, compressed
    /// or not, plus the handshakes.
    pub fn wire_bytes(&self, group: Group) -> u64 {
        self.groups.get(group as usize).map_or(0, |g| g.wire.load(Ordering::Relaxed))
    }

    /// The results of `group` so far.
    pub fn summary(&self, group: Group) -> Summary {
        self.summary_of(&[group])
    }

    /// The results of several groups so far, as if they were one (histograms merged, counters added).
    pub fn summary_of(&self, groups: &[Group]) -> Summary {
        let stats: Vec<&GroupStats> = groups.iter().filter_map(|g| self.groups.get(*g as usize)).collect();
        let mut merged: Option<Histogram<u64>> = None;
        for shard in stats.iter().flat_map(|g| &g.shards) {
            let Ok(h) = shard.lock() else { continue };
            match merged.as_mut() {
                None => merged = Some(h.clone()),
                Some(m) => {
                    let _ = m.add(&*h);
                }
            }
        }
        let q = |h: &Histogram<u64>, q: f64| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
        let (p50_us, p90_us, p99_us, max_us) = merged
            .as_ref()
            .map_or((0, 0, 0, 0), |h| (q(h, 0.5), q(h, 0.9), q(h, 0.99), if h.is_empty() { 0 } else { h.max() }));
        let sum = |f: fn(&GroupStats) -> &AtomicU64| stats.iter().map(|g| f(g).load(Ordering::Relaxed)).sum::<u64>();
        Summary {
            deliveries: sum(|g| &g.deliveries),
            arrived: sum(|g| &g.arrived),
            frames: sum(|g| &g.frames),
            gaps: sum(|g| &g.gaps),
            reordered: sum(|g| &g.reordered),
            duplicates: sum(|g| &g.duplicates),
            dropped: sum(|g| &g.dropped),
            first_drop: self.first_drop.lock().ok().and_then(|d| d.clone()),
            p50_us,
            p90_us,
            p99_us,
            max_us,
        }
    }

    /// A subscribed client's connection ended: an outcome to report (the relay may drop slow clients), not a
    /// failure of the run.
    fn dropped(&self, group: Group, error: String) {
        if let Some(g) = self.groups.get(group as usize) {
            g.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut first) = self.first_drop.lock() {
            first.get_or_insert(error);
        }
    }

    fn fail(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(error);
        }
    }
}

/// Starts one client. `index` picks its histogram shard; `permits` bounds concurrent handshakes (so thousands
/// of clients do not overflow the relay's accept backlog at once). The client runs until `stop`.
pub fn spawn(
    spec: ClientSpec,
    index: usize,
    recorder: Arc<Recorder>,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let group = spec.group;
        let mut subscribed = false;
        match run(spec, index, &recorder, permits, stop, &mut subscribed).await {
            Ok(()) => {}
            Err(e) if subscribed => recorder.dropped(group, e),
            Err(e) => recorder.fail(e),
        }
    })
}

async fn run(
    spec: ClientSpec,
    index: usize,
    recorder: &Recorder,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
    subscribed: &mut bool,
) -> Result<(), String> {
    let permit = permits.acquire_owned().await.map_err(|_| "connect permits closed".to_owned())?;
    let wire = recorder.groups.get(spec.group as usize).map(|g| g.wire.clone()).unwrap_or_default();
    let mut ws = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = tokio::time::timeout(CONNECT_TIMEOUT, Conn::open(&spec, wire)) => match r {
            Err(_) => return Err(format!("connect to {} timed out", spec.url)),
            Ok(Err(e)) => return Err(format!("connect to {}: {e}", spec.url)),
            Ok(Ok(ws)) => ws,
        },
    };
    drop(permit);
    recorder.connected.fetch_add(1, Ordering::Relaxed);
    let mut unacknowledged = 0;
    for chunk in spec.symbols.chunks(MAX_SYMBOLS_PER_REQUEST) {
        let request = serde_json::json!({"type": "subscribe", "symbols": chunk}).to_string();
        ws.send_text(request).await.map_err(|e| format!("subscribe: {e}"))?;
        unacknowledged += 1;
    }
    if unacknowledged == 0 {
        recorder.subscribed.fetch_add(1, Ordering::Relaxed);
        *subscribed = true;
    }
    // Like the dashboard, say something every few seconds: the relay drops a client it has not heard from in two
    // heartbeats, and a pong to its ping can sit behind seconds of unread quotes when the relay is overloaded.
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    let mut state = ClientState {
        last_seq: HashMap::with_capacity(spec.symbols.len()),
        latencies: Vec::new(),
        stats: recorder.groups.get(spec.group as usize),
        window: &recorder.window,
        shard: index % SHARDS,
    };
    loop {
        if unacknowledged == 0 && spec.behaviour == Behaviour::Stalled {
            // Leave everything unread in the kernel buffers until the scenario ends.
            stop.cancelled().await;
            return Ok(());
        }
        let message = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = keepalive.tick() => {
                ws.send_text(r#"{"type":"ping"}"#.to_owned()).await.map_err(|e| format!("ping: {e}"))?;
                continue;
            }
            m = ws.next() => m,
        };
        let payload = match message? {
            Incoming::Text(payload) => payload,
            Incoming::Other => continue,
        };
        let text = std::str::from_utf8(&payload).map_err(|e| format!("text frame is not UTF-8: {e}"))?;
        let now = now_ns();
        let frame: ServerFrame = serde_json::from_str(text).map_err(|e| format!("bad frame ({e}): {text}"))?;
        match frame.kind.as_ref() {
            "quotes" => state.on_quotes(&frame.quotes, now, true),
            "snapshot" => state.on_quotes(&frame.quotes, now, false),
            "subscribed" => {
                if !frame.rejected.is_empty() {
                    return Err(format!("symbols rejected: {text}"));
                }
                unacknowledged -= 1;
                if unacknowledged == 0 {
                    recorder.subscribed.fetch_add(1, Ordering::Relaxed);
                    *subscribed = true;
                }
            }
            "error" => return Err(format!("relay error: {text}")),
            _ => {}
        }
        if let Behaviour::Slow(pause) = spec.behaviour {
            if unacknowledged == 0 {
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// A TCP stream that counts the bytes read from it.
struct Counted {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.read.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a read gave: a text message's payload (inflated if it was compressed), or something to skip.
enum Incoming {
    Text(bytes::Bytes),
    Other,
}

/// One client's WebSocket: tokio-tungstenite, or yawc when it offers permessage-deflate.
enum Conn {
    Plain(Box<WebSocketStream<Counted>>),
    Deflate(Box<yawc::WebSocket<Counted>>),
}

impl Conn {
    async fn open(spec: &ClientSpec, wire: Arc<AtomicU64>) -> Result<Conn, String> {
        let url: url::Url = spec.url.parse().map_err(|e| format!("bad url: {e}"))?;
        let host = url.host_str().ok_or("no host in the url")?;
        let port = url.port_or_known_default().ok_or("no port in the url")?;
        let tcp = TcpStream::connect((host, port)).await.map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let io = Counted { inner: tcp, read: wire };
        if spec.deflate {
            // Offers the extension as a plain `permessage-deflate`; the relay decides the parameters.
            let options =
                yawc::Options::default().with_low_latency_compression().with_read_buffer_capacity(READ_BUFFER);
            let ws = yawc::WebSocket::handshake(url, io, options).await.map_err(|e| e.to_string())?;
            Ok(Conn::Deflate(Box::new(ws)))
        } else {
            let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
            let (ws, _) = tokio_tungstenite::client_async_with_config(spec.url.as_str(), io, Some(config))
                .await
                .map_err(|e| e.to_string())?;
            Ok(Conn::Plain(Box::new(ws)))
        }
    }

    async fn send_text(&mut self, text: String) -> Result<(), String> {
        match self {
            Conn::Plain(ws) => ws.send(Message::text(text)).await.map_err(|e| e.to_string()),
            Conn::Deflate(ws) => ws.send(yawc::Frame::text(text)).await.map_err(|e| e.to_string()),
        }
    }

    async fn next(&mut self) -> Result<Incoming, String> {
        match self {
            Conn::Plain(ws) => match ws.next().await {
                None => Err("connection closed by the server".into()),
                Some(Err(e)) => Err(format!("read: {e}")),
                Some(Ok(Message::Text(text))) => Ok(Incoming::Text(bytes::Bytes::from(text))),
                Some(Ok(Message::Close(frame))) => {
                    Err(format!("closed by the server: {}", frame.map_or_else(String::new, |f| f.to_string())))
                }
                Some(Ok(_)) => Ok(Incoming::Other),
            },
            Conn::Deflate(ws) => {
                let frame = ws.next_frame().await.map_err(|e| format!("read: {e}"))?;
                match frame.opcode() {
                    yawc::OpCode::Text => Ok(Incoming::Text(frame.into_payload())),
                    yawc::OpCode::Close => Err(format!(
                        "closed by the server: {:?} {}",
                        frame.close_code().map(u16::from),
                        String::from_utf8_lossy(frame.payload().get(2..).unwrap_or_default())
                    )),
                    _ => Ok(Incoming::Other),
                }
            }
        }
    }
}

/// A server message, reduced to what the bench reads. Unknown fields are ignored, as the protocol asks.
#[derive(Debug, Deserialize)]
struct ServerFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    quotes: Vec<WireQuote<'a>>,
    #[serde(default)]
    rejected: Vec<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct WireQuote<'a> {
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    price: f64,
    #[serde(default)]
    bid: Option<f64>,
}

/// One client's view: the last sequence number per symbol, and latencies waiting to be recorded.
struct ClientState<'a> {
    last_seq: HashMap<String, u64>,
    latencies: Vec<u64>,
    stats: Option<&'a GroupStats>,
    window: &'a Window,
    shard: usize,
}

impl ClientState<'_> {
    /// Checks sequence numbers and, for live quotes of ticks sent inside the window, records latency.
    fn on_quotes(&mut self, quotes: &[WireQuote<'_>], now: u64, live: bool) {
        let Some(stats) = self.stats else { return };
        let (mut gaps, mut reordered, mut duplicates) = (0, 0, 0);
        if live && self.window.contains(now) {
            stats.arrived.fetch_add(quotes.len() as u64, Ordering::Relaxed);
        }
        for quote in quotes {
            let (Some(seq), Some(mark)) = (exact_u64(quote.price), quote.bid.and_then(exact_u64)) else { continue };
            let last = match self.last_seq.get_mut(quote.symbol.as_ref()) {
                Some(last) => last,
                None => self.last_seq.entry(quote.symbol.to_string()).or_insert(0),
            };
            let previous = std::mem::replace(last, seq);
            if !live || !self.window.contains(mark) {
                continue;
            }
            if previous > 0 && seq > previous + 1 {
                gaps += seq - previous - 1;
            } else if seq == previous {
                duplicates += 1;
            } else if seq < previous {
                reordered += 1;
            }
            self.latencies.push(now.saturating_sub(mark) / 1_000);
        }
        if self.latencies.is_empty() {
            return;
        }
        if let Ok(mut h) = stats.shards[self.shard].lock() {
            for &us in &self.latencies {
                h.saturating_record(us.clamp(1, MAX_LATENCY_US));
            }
        }
        stats.deliveries.fetch_add(self.latencies.len() as u64, Ordering::Relaxed);
        stats.frames.fetch_add(1, Ordering::Relaxed);
        if gaps > 0 {
            stats.gaps.fetch_add(gaps, Ordering::Relaxed);
        }
        if reordered > 0 {
            stats.reordered.fetch_add(reordered, Ordering::Relaxed);
        }
        if duplicates > 0 {
            stats.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        }
        self.latencies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_latency_and_window() {
        fn frame(text: &str) -> ServerFrame<'_> {
            serde_json::from_str(text).unwrap()
        }
        let recorder = Recorder::new(Arc::new(Window::default())).unwrap();
        let mut state = ClientState {
            last_seq: HashMap::new(),
            latencies: Vec::new(),
            stats: recorder.groups.get(Group::Fast as usize),
            window: &recorder.window,
            shard: 0,
        };
        // The relay's output shape, with fields the bench ignores. A snapshot only seeds the sequence.
        let f = frame(r#"{"type":"snapshot","quotes":[{"symbol":"A","price":4.0,"ts":1,"provider":"t","bid":100.0}]}"#);
        state.on_quotes(&f.quotes, 1_000_000, false);
        recorder.window.open(150);
        let f = frame(
            r#"{"type":"quotes","quotes":[{"symbol":"A","price":5.0,"ts":1,"provider":"t","bid":200.0},
                {"symbol":"A","price":9.0,"ts":1,"provider":"t","bid":300000}]}"#,
        );
        state.on_quotes(&f.quotes, 2_000_200, true);
        // Outside the window: not counted, but the sequence still moves on.
        recorder.window.close(400_000);
        let f = frame(r#"{"type":"quotes","quotes":[{"symbol":"A","price":20.0,"ts":1,"provider":"t","bid":500000}]}"#);
        state.on_quotes(&f.quotes, 3_000_000, true);
        let s = recorder.summary(Group::Fast);
        assert_eq!((s.deliveries, s.frames, s.gaps, s.reordered), (2, 1, 3, 0));
        assert_eq!(s.arrived, 2, "the quotes that arrived at 2_000_200 ns; the last one arrived after the window");
        assert_eq!(s.max_us, 2_000, "(2_000_200 - 200) ns is 2000 µs");
        assert_eq!(recorder.summary(Group::Slow).deliveries, 0);
        let both = recorder.summary_of(&[Group::Fast, Group::Remote]);
        assert_eq!((both.deliveries, both.gaps, both.max_us), (2, 3, 2_000), "an empty group adds nothing");
    }
}
