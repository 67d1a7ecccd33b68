//! A loopback TCP fault-injection proxy, placed between the relay and a mock upstream.
//!
//! [`FaultProxy::start`] listens on a free loopback port and forwards every connection to a target address. The
//! test steers it at runtime through the handle:
//!
//! * [`FaultProxy::pass`] — forward everything as it comes (the initial mode);
//! * [`FaultProxy::delay`] — hold every chunk for a while before forwarding it, both directions;
//! * [`FaultProxy::stall`] — keep every socket open but forward nothing, both directions, until
//!   [`FaultProxy::pass`]; data read meanwhile is held, not dropped;
//! * [`FaultProxy::truncate`] — forward only the next `n` bytes of server→client data, then close that connection
//!   (both sides, with a FIN — or an RST where the kernel still holds unread data) in the middle of whatever it
//!   was sending; later connections pass through;
//! * [`FaultProxy::reset`] — abort every live connection with a TCP RST on both sides (`SO_LINGER` 0);
//! * [`FaultProxy::refuse_for`] — reset new connections as soon as they are accepted, for a while (the listener
//!   stays bound, so a client sees its connect succeed and then a reset, not `ECONNREFUSED`).
//!
//! It counts connections forwarded and refused, and records when the last one was accepted.
//!
//! Bounded and leak-free: the handle owns the only `watch::Sender`; every task (the accept loop and one per
//! connection) holds a receiver and ends, resetting its sockets, as soon as the handle is dropped. It does not
//! parse what it forwards, so faults land wherever the byte stream happens to be — inside a WebSocket frame
//! included.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The faults in force, broadcast to every task.
#[derive(Debug, Clone, Default)]
struct Faults {
    /// Added before forwarding each chunk, in both directions.
    delay: Duration,
    /// Forward nothing (both directions) while set.
    stalled: bool,
    /// Bumped by [`FaultProxy::reset`]: connections opened before the bump are aborted.
    reset_epoch: u64,
    /// New connections are reset on accept until then.
    refuse_until: Option<Instant>,
}

/// Counters and one-shot state the tasks update.
#[derive(Debug, Default)]
struct Shared {
    accepted: AtomicUsize,
    refused: AtomicUsize,
    open: AtomicUsize,
    /// Proxy tasks alive (accept loop and connections), to prove none outlives the handle.
    tasks: AtomicUsize,
    /// Server→client bytes still allowed through before the cut, when a truncation is armed.
    truncate: Mutex<Option<usize>>,
    last_accepted_at: Mutex<Option<Instant>>,
}

/// Decrements a counter when dropped, however the task ends.
struct Count(Arc<Shared>, fn(&Shared) -> &AtomicUsize);

impl Count {
    fn new(shared: &Arc<Shared>, field: fn(&Shared) -> &AtomicUsize) -> Count {
        field(shared).fetch_add(1, Ordering::SeqCst);
        Count(shared.clone(), field)
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        (self.1)(&self.0).fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running proxy. Dropping it stops everything and resets every connection it still holds.
pub struct FaultProxy {
    port: u16,
    faults: watch::Sender<Faults>,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `target`.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind fault proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let (faults, rx) = watch::channel(Faults::default());
        let shared = Arc::new(Shared::default());
        tokio::spawn(accept_loop(listener, target, rx, shared.clone()));
        FaultProxy { port, faults, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, to put in place of the target's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Forward everything again: no delay, no stall, no truncation armed, no refusal.
    pub fn pass(&self) {
        *self.shared.truncate.lock().expect("truncate lock") = None;
        self.faults.send_modify(|f| {
            f.delay = Duration::ZERO;
            f.stalled = false;
            f.refuse_until = None;
        });
    }

    /// Holds every chunk for `delay` before forwarding it, both directions (`Duration::ZERO` to stop).
    pub fn delay(&self, delay: Duration) {
        self.faults.send_modify(|f| f.delay = delay);
    }

    /// Forwards nothing, both directions, with every socket kept open, until [`FaultProxy::pass`].
    pub fn stall(&self) {
        self.faults.send_modify(|f| f.stalled = true);
    }

    /// Forwards only the next `bytes` of server→client data, then closes the connection that carried the last
    /// of them (both sides). A one-shot fault: it disarms itself once it fired.
    pub fn truncate(&self, bytes: usize) {
        *self.shared.truncate.lock().expect("truncate lock") = Some(bytes);
    }

    /// Aborts every live connection with a TCP RST on both sides. Returns how many were open.
    pub fn reset(&self) -> usize {
        let open = self.open();
        self.faults.send_modify(|f| f.reset_epoch += 1);
        open
    }

    /// Resets new connections as soon as they are accepted, for `period` from now.
    pub fn refuse_for(&self, period: Duration) {
        self.faults.send_modify(|f| f.refuse_until = Some(Instant::now() + period));
    }

    /// Connections accepted and forwarded so far (refused ones not included).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections refused so far.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Connections being forwarded now.
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// When the most recent forwarded connection was accepted.
    pub fn last_accepted_at(&self) -> Option<Instant> {
        *self.shared.last_accepted_at.lock().expect("accepted_at lock")
    }

    /// Waits until `accepted() >= n`, failing the test after `limit`.
    pub async fn wait_accepted(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.accepted() < n {
            assert!(
                Instant::now() < deadline,
                "proxy: {} connections accepted, wanted {n} within {limit:?}",
                self.accepted()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    mut faults: watch::Receiver<Faults>,
    shared: Arc<Shared>,
) {
    let _alive = Count::new(&shared, |s| &s.tasks);
    loop {
        let (stream, _) = tokio::select! {
            changed = faults.changed() => {
                if changed.is_err() {
                    return; // The handle was dropped.
                }
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let refuse = faults.borrow().refuse_until.is_some_and(|until| Instant::now() < until);
        if refuse {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            abort(stream);
            continue;
        }
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        *shared.last_accepted_at.lock().expect("accepted_at lock") = Some(Instant::now());
        tokio::spawn(connection(stream, target, faults.clone(), shared.clone()));
    }
}

/// Closes `stream` with a TCP RST instead of a FIN.
fn abort(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// How a connection ends.
enum End {
    /// Both directions finished with a FIN: close normally.
    Close,
    /// A peer reset, the test asked for a reset, or the proxy is going away: reset both sides.
    Abort,
}

/// How one direction of a connection ended.
enum PumpEnd {
    /// The sender closed its side; the FIN was passed on.
    Eof,
    /// The truncation budget ran out here: close the whole connection.
    Cut,
    /// An I/O error (a reset) or the proxy going away.
    Failed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client → server.
    Up,
    /// Server → client (the only direction truncation applies to).
    Down,
}

async fn connection(mut client: TcpStream, target: SocketAddr, faults: watch::Receiver<Faults>, shared: Arc<Shared>) {
    let _alive = Count::new(&shared, |s| &s.tasks);
    let _open = Count::new(&shared, |s| &s.open);
    let epoch = faults.borrow().reset_epoch;
    let mut reset = faults.clone();
    let server = tokio::select! {
        s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(target)) => s,
        _ = reset.wait_for(|f| f.reset_epoch != epoch) => return abort(client),
    };
    let Ok(Ok(mut server)) = server else { return abort(client) };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let end = {
        let (mut client_rx, mut client_tx) = client.split();
        let (mut server_rx, mut server_tx) = server.split();
        let up = pump(&mut client_rx, &mut server_tx, Direction::Up, faults.clone(), &shared);
        let down = pump(&mut server_rx, &mut client_tx, Direction::Down, faults.clone(), &shared);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let ended = tokio::select! {
                e = &mut up, if !up_done => { up_done = true; e }
                e = &mut down, if !down_done => { down_done = true; e }
                // Also fires with an error when the handle is dropped: abort then too.
                _ = reset.wait_for(|f| f.reset_epoch != epoch) => break End::Abort,
            };
            match ended {
                PumpEnd::Eof if up_done && down_done => break End::Close,
                PumpEnd::Eof => continue,
                PumpEnd::Cut => break End::Close,
                PumpEnd::Failed => break End::Abort,
            }
        }
    };
    if let End::Abort = end {
        abort(client);
        abort(server);
    }
}

/// Copies one direction chunk by chunk, applying the faults in force to each chunk.
async fn pump(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    direction: Direction,
    mut faults: watch::Receiver<Faults>,
    shared: &Shared,
) -> PumpEnd {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // While stalled, do not even read: the kernel buffers fill and the sender sees back-pressure.
        if faults.wait_for(|f| !f.stalled).await.is_err() {
            return PumpEnd::Failed;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return PumpEnd::Eof;
            }
            Ok(n) => n,
            Err(_) => return PumpEnd::Failed,
        };
        // A stall that began while we were reading holds this chunk back too.
        let delay = match faults.wait_for(|f| !f.stalled).await {
            Ok(f) => f.delay,
            Err(_) => return PumpEnd::Failed,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (n, cut) = if direction == Direction::Down { budget(shared, n) } else { (n, false) };
        if to.write_all(&buf[..n]).await.is_err() {
            return PumpEnd::Failed;
        }
        if cut {
            let _ = to.flush().await;
            return PumpEnd::Cut;
        }
    }
}

/// How much of an `n`-byte chunk the truncation budget lets through, and whether that spends it.
fn budget(shared: &Shared, n: usize) -> (usize, bool) {
    let mut truncate = shared.truncate.lock().expect("truncate lock");
    match *truncate {
        None => (n, false),
        Some(left) if n < left => {
            *truncate = Some(left - n);
            (n, false)
        }
        Some(left) => {
            *truncate = None;
            (left, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    /// A loopback echo server; returns its address and a counter of connections it saw end with an error
    /// (a reset) rather than an EOF.
    async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resets = Arc::new(AtomicUsize::new(0));
        let r = resets.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    r.fetch_add(1, Ordering::SeqCst);
                                    return;
                                }
                            }
                            Err(_) => {
                                r.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, resets)
    }

    async fn setup() -> (FaultProxy, Arc<AtomicUsize>) {
        let (addr, resets) = echo_server().await;
        (FaultProxy::start(addr).await, resets)
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(LIMIT, s.read_exact(&mut got)).await.expect("echo timed out").unwrap();
        got
    }

    #[tokio::test]
    async fn passes_through_and_counts_connections() {
        let (proxy, _) = setup().await;
        for i in 0..3 {
            let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
            assert_eq!(roundtrip(&mut s, b"hello").await, b"hello");
            proxy.wait_accepted(i + 1, LIMIT).await;
        }
        assert_eq!(proxy.accepted(), 3);
        assert!(proxy.last_accepted_at().is_some());
    }

    #[tokio::test]
    async fn delays_every_chunk() {
        let (proxy, _) = setup().await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut s, b"warm").await;
        proxy.delay(Duration::from_millis(150));
        let started = Instant::now();
        roundtrip(&mut s, b"slow").await;
        // Delayed once on the way up and once on the way down; a lower bound only (load can add, never remove).
        assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
        proxy.pass();
        assert_eq!(roundtrip(&mut s, b"fast").await, b"fast");
    }

    #[tokio::test]
    async fn stall_forwards_nothing_but_keeps_the_socket_open() {
        let (proxy, _) = setup().await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut s, b"before").await;
        proxy.stall();
        s.write_all(b"held").await.unwrap();
        let mut buf = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
        assert!(early.is_err(), "nothing may arrive (not even an EOF) while stalled: {early:?}");
        assert_eq!(proxy.open(), 1);
        proxy.pass();
        tokio::time::timeout(LIMIT, s.read_exact(&mut buf)).await.expect("released").unwrap();
        assert_eq!(&buf, b"held", "held data is delivered once the stall ends");
    }

    #[tokio::test]
    async fn truncate_forwards_n_bytes_then_cuts_once() {
        let (proxy, _) = setup().await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut s, b"x").await;
        proxy.truncate(10);
        s.write_all(&[7u8; 100]).await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(LIMIT, s.read_to_end(&mut got)).await.expect("cut").unwrap();
        assert_eq!(got, vec![7u8; 10], "exactly the budget, then EOF");
        // Disarmed: the next connection passes through in full.
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut s, &[1u8; 100]).await, vec![1u8; 100]);
    }

    #[tokio::test]
    async fn reset_aborts_every_live_connection_with_rst() {
        let (proxy, server_resets) = setup().await;
        let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut a, b"a").await;
        roundtrip(&mut b, b"b").await;
        assert_eq!(proxy.reset(), 2);
        for s in [&mut a, &mut b] {
            let mut buf = [0u8; 1];
            let r = tokio::time::timeout(LIMIT, s.read(&mut buf)).await.expect("reset seen");
            let err = r.expect_err("a reset, not an orderly EOF");
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
        }
        // The upstream side was reset too.
        let deadline = Instant::now() + LIMIT;
        while server_resets.load(Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline, "server saw {} resets", server_resets.load(Ordering::SeqCst));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // New connections work after a reset.
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut c, b"c").await, b"c");
    }

    #[tokio::test]
    async fn refuses_new_connections_for_a_while() {
        let (proxy, _) = setup().await;
        proxy.refuse_for(Duration::from_millis(400));
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = s.write_all(b"x").await;
        let mut buf = [0u8; 1];
        let r = tokio::time::timeout(LIMIT, s.read(&mut buf)).await.expect("refusal seen");
        assert!(matches!(r, Err(_) | Ok(0)), "refused: {r:?}");
        assert_eq!((proxy.refused(), proxy.accepted()), (1, 0));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut s, b"ok").await, b"ok");
        assert_eq!(proxy.accepted(), 1);
    }

    #[tokio::test]
    async fn dropping_the_handle_ends_every_task() {
        let (proxy, _) = setup().await;
        let shared = proxy.shared.clone();
        let addr = proxy.addr();
        let mut live = TcpStream::connect(addr).await.unwrap();
        roundtrip(&mut live, b"a").await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        proxy.wait_accepted(2, LIMIT).await;
        proxy.stall();
        stalled.write_all(b"held").await.unwrap();
        proxy.delay(Duration::from_secs(3600));
        assert_eq!(shared.tasks.load(Ordering::SeqCst), 3, "accept loop + two connections");
        drop(proxy);
        let deadline = Instant::now() + LIMIT;
        while shared.tasks.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "{} proxy tasks outlived the handle",
                shared.tasks.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut buf = [0u8; 1];
        for s in [&mut live, &mut stalled] {
            let r = tokio::time::timeout(LIMIT, s.read(&mut buf)).await.expect("closed");
            assert!(matches!(r, Err(_) | Ok(0)), "connection ended: {r:?}");
        }
        assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
    }
}
