//! The load generator: a WebSocket server speaking Twelve Data's streaming protocol, the relay's upstream.
//!
//! It speaks exactly what the relay's adapter (`relay/src/providers/twelvedata.rs`) and the test mock
//! (`tests/src/mocks/twelvedata.rs`) speak: the key arrives as `?apikey=` (any key is accepted); there is no
//! greeting; `{"action":"subscribe"|"unsubscribe","params":{"symbols":"A,B"}}` is answered by one
//! `subscribe-status`/`unsubscribe-status`; `{"action":"heartbeat"}` by `{"event":"heartbeat","status":"ok"}`;
//! and prices go out as `{"event":"price",…}` frames, one tick per frame.
//!
//! Ticks are pushed at one configured **total** rate (ticks/s per upstream connection), round-robin over the
//! symbols that connection has subscribed, so every symbol gets `rate / symbols` ticks a second. Each tick is
//! marked (see [`crate::mark`]): `price` is the symbol's sequence number and `bid` the send instant. The rate
//! can change at any time ([`Generator::set_rate`]), which is how a burst is made.
//!
//! It does not model anything the relay does not read (REST, reset, exchange metadata beyond one realistic
//! set of fields), and it never refuses a symbol.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::mark::{now_ns, Window};

/// How often the tick loop wakes; ticks due since the last wake go out together, in one flush.
const TICK_EVERY: Duration = Duration::from_millis(1);
/// Most ticks owed after a stall that are sent at once (in seconds of the current rate), so a hiccup becomes a
/// short catch-up, not a flood.
const MAX_CATCH_UP_SECS: f64 = 0.05;

/// State shared by the accept loop, every connection and the scenario that steers them.
#[derive(Debug)]
struct Shared {
    /// Ticks per second per connection, as `f64` bits.
    rate: AtomicU64,
    window: Arc<Window>,
    /// Ticks sent whose send instant lies in the window.
    sent_in_window: AtomicU64,
    /// Subscribed symbols of each open connection.
    subscribed: Mutex<HashMap<usize, HashSet<String>>>,
    next_connection: AtomicUsize,
    /// Connections accepted from this id on count towards `peak_open`.
    watch_from: AtomicUsize,
    /// Most of those open at once (a cluster must never hold two).
    peak_open: AtomicUsize,
}

/// A running generator. Dropping it does not stop it; call [`Generator::stop`].
#[derive(Debug)]
pub struct Generator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Generator {
    /// Listens on `listen` (port 0 picks a free one). Ticks are counted against `window`.
    ///
    /// The generator runs on its own thread with its own single-threaded runtime: ticks then go out on time
    /// however busy the bench's thousands of client tasks keep the main runtime (they would otherwise queue
    /// in front of it and the rate would sag for the bench's reasons, not the relay's).
    pub fn start(listen: SocketAddr, window: Arc<Window>) -> anyhow::Result<Generator> {
        let listener =
            std::net::TcpListener::bind(listen).with_context(|| format!("generator cannot listen on {listen}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            rate: AtomicU64::new(0f64.to_bits()),
            window,
            sent_in_window: AtomicU64::new(0),
            subscribed: Mutex::new(HashMap::new()),
            next_connection: AtomicUsize::new(0),
            watch_from: AtomicUsize::new(0),
            peak_open: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (accept_shared, accept_stop) = (shared.clone(), stop.clone());
        std::thread::Builder::new().name("generator".into()).spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => accept(listener, accept_shared, accept_stop).await,
                    Err(e) => warn(&format!("generator cannot use its socket: {e}")),
                }
            })
        })?;
        Ok(Generator { addr, shared, stop })
    }

    /// The streaming URL to give the relay (`--twelvedata-ws-url`) or the Node peer.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/quotes/price", self.addr)
    }

    /// Sets the total tick rate of every connection (0 pauses).
    pub fn set_rate(&self, ticks_per_s: f64) {
        self.shared.rate.store(ticks_per_s.max(0.0).to_bits(), Ordering::Relaxed);
    }

    /// Ticks sent inside the window so far; [`Generator::reset_count`] zeroes it.
    pub fn sent_in_window(&self) -> u64 {
        self.shared.sent_in_window.load(Ordering::Relaxed)
    }

    pub fn reset_count(&self) {
        self.shared.sent_in_window.store(0, Ordering::Relaxed);
    }

    /// Upstream connections accepted so far (ever, not just open ones: a target that was just stopped may not
    /// have been noticed gone yet).
    pub fn accepted(&self) -> usize {
        self.shared.next_connection.load(Ordering::SeqCst)
    }

    /// How many of `symbols` are subscribed on some open connection accepted after the first `skip` ones (so
    /// a previous target's connection, not yet noticed gone, does not count).
    pub fn subscribed_of(&self, symbols: &[String], skip: usize) -> usize {
        let Ok(all) = self.shared.subscribed.lock() else { return 0 };
        let sets: Vec<&HashSet<String>> = all.iter().filter(|(id, _)| **id >= skip).map(|(_, set)| set).collect();
        symbols.iter().filter(|s| sets.iter().any(|set| set.contains(s.as_str()))).count()
    }

    /// From now on, count the most upstream connections open at once, ignoring those accepted before (a previous
    /// target's connection that has not been noticed gone yet).
    pub fn watch_peak(&self) {
        let Ok(_all) = self.shared.subscribed.lock() else { return };
        self.shared.watch_from.store(self.accepted(), Ordering::SeqCst);
        self.shared.peak_open.store(0, Ordering::SeqCst);
    }

    /// The most connections open at once since [`Generator::watch_peak`].
    pub fn peak_open(&self) -> usize {
        self.shared.peak_open.load(Ordering::SeqCst)
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _)) => {
                tokio::spawn(serve(tcp, shared.clone(), stop.child_token()));
            }
            Err(e) => {
                warn(&format!("generator accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One upstream connection: answers commands and pushes ticks until either side ends.
async fn serve(tcp: TcpStream, shared: Arc<Shared>, stop: CancellationToken) {
    let _ = tcp.set_nodelay(true);
    let mut ws = match tokio_tungstenite::accept_async(tcp).await {
        Ok(ws) => ws,
        Err(e) => {
            warn(&format!("generator handshake failed: {e}"));
            return;
        }
    };
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut all) = shared.subscribed.lock() {
        all.insert(id, HashSet::new());
        let from = shared.watch_from.load(Ordering::SeqCst);
        shared.peak_open.fetch_max(all.keys().filter(|k| **k >= from).count(), Ordering::SeqCst);
    }
    let mut feed = Feed::default();
    let mut tick = interval(TICK_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last_wake = now_ns();
    let mut owed = 0.0f64;
    'connection: loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                let now = now_ns();
                let rate = f64::from_bits(shared.rate.load(Ordering::Relaxed));
                owed += rate * (now - last_wake) as f64 / 1e9;
                owed = owed.min((rate * MAX_CATCH_UP_SECS).max(1.0));
                last_wake = now;
                if rate == 0.0 || feed.symbols.is_empty() {
                    owed = 0.0;
                    continue;
                }
                let due = owed.floor() as u64;
                owed -= due as f64;
                let mut counted = 0;
                for _ in 0..due {
                    let (text, mark) = feed.next_tick();
                    if shared.window.contains(mark) {
                        counted += 1;
                    }
                    if ws.feed(Message::text(text)).await.is_err() {
                        break 'connection;
                    }
                }
                shared.sent_in_window.fetch_add(counted, Ordering::Relaxed);
                if due > 0 && ws.flush().await.is_err() {
                    break;
                }
            }
            incoming = ws.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Some(reply) = feed.command(text.as_str()) else { continue };
                if let Ok(mut all) = shared.subscribed.lock() {
                    all.insert(id, feed.symbols.iter().cloned().collect());
                }
                if ws.send(Message::text(reply)).await.is_err() {
                    break;
                }
            }
        }
    }
    forget(&shared, id);
}

fn forget(shared: &Shared, id: usize) {
    if let Ok(mut all) = shared.subscribed.lock() {
        all.remove(&id);
    }
}

/// One connection's subscriptions and sequence numbers.
#[derive(Debug, Default)]
struct Feed {
    /// Subscribed symbols, in subscription order (the round-robin order).
    symbols: Vec<String>,
    /// Last sequence number per symbol (kept across unsubscribe, so numbers never repeat on a connection).
    seq: HashMap<String, u64>,
    cursor: usize,
}

impl Feed {
    /// Applies a client command and returns the reply, if the protocol has one.
    fn command(&mut self, text: &str) -> Option<String> {
        let msg: Value = serde_json::from_str(text).ok()?;
        let symbols: Vec<String> = msg["params"]["symbols"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let reply = match msg["action"].as_str()? {
            "subscribe" => {
                for s in &symbols {
                    if !self.symbols.contains(s) {
                        self.symbols.push(s.clone());
                    }
                }
                let success: Vec<Value> = symbols.iter().map(|s| json!({"symbol": s, "exchange": "NASDAQ"})).collect();
                json!({"event": "subscribe-status", "status": "ok", "success": success, "fails": []})
            }
            "unsubscribe" => {
                self.symbols.retain(|s| !symbols.contains(s));
                json!({"event": "unsubscribe-status", "status": "ok", "success": symbols, "fails": []})
            }
            "reset" => {
                self.symbols.clear();
                json!({"event": "reset-status", "status": "ok"})
            }
            "heartbeat" => json!({"event": "heartbeat", "status": "ok"}),
            _ => return None,
        };
        Some(reply.to_string())
    }

    /// The next tick (round-robin over the subscribed symbols) and its send mark. Call only with symbols.
    fn next_tick(&mut self) -> (String, u64) {
        self.cursor = (self.cursor + 1) % self.symbols.len();
        let symbol = &self.symbols[self.cursor];
        let seq = self.seq.entry(symbol.clone()).or_default();
        *seq += 1;
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mark = now_ns();
        // The fields of a documented Twelve Data equity price event; `price` and `bid` carry the mark.
        let text = format!(
            r#"{{"event":"price","symbol":"{symbol}","currency":"USD","exchange":"NASDAQ","type":"Common Stock","timestamp":{timestamp},"price":{seq},"bid":{mark},"day_volume":{seq}}}"#
        );
        (text, mark)
    }
}

/// Generator problems are rare and never fatal; they go to stderr so they do not mix with the results table.
fn warn(message: &str) {
    eprintln!("[bench] {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_twelve_data_and_round_robins() {
        let mut feed = Feed::default();
        let reply = feed.command(r#"{"action":"subscribe","params":{"symbols":"AAA,BBB"}}"#).unwrap();
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(reply["event"], "subscribe-status");
        assert_eq!(reply["success"][1]["symbol"], "BBB");
        let ticks: Vec<Value> = (0..4).map(|_| serde_json::from_str(&feed.next_tick().0).unwrap()).collect();
        let seen: Vec<(&str, u64)> =
            ticks.iter().map(|t| (t["symbol"].as_str().unwrap(), t["price"].as_u64().unwrap())).collect();
        assert_eq!(seen, [("BBB", 1), ("AAA", 1), ("BBB", 2), ("AAA", 2)]);
        assert!(ticks[0]["bid"].as_u64().is_some(), "send mark is an integer");
        let reply = feed.command(r#"{"action":"heartbeat"}"#).unwrap();
        assert_eq!(reply, r#"{"event":"heartbeat","status":"ok"}"#);
        feed.command(r#"{"action":"unsubscribe","params":{"symbols":"AAA"}}"#).unwrap();
        assert_eq!(feed.symbols, ["BBB"]);
        assert!(feed.command("not json").is_none());
    }

    #[tokio::test]
    async fn counts_the_connections_open_at_once_since_watching() {
        let generator = Generator::start("127.0.0.1:0".parse().unwrap(), Arc::new(Window::default())).unwrap();
        let until = |what: &'static str, done: &dyn Fn() -> bool| {
            let ok = (0..500).any(|_| {
                std::thread::sleep(Duration::from_millis(10));
                done()
            });
            assert!(ok, "{what}");
        };
        let (_earlier, _) = tokio_tungstenite::connect_async(generator.ws_url()).await.unwrap();
        until("first accepted", &|| generator.accepted() == 1);
        generator.watch_peak();
        let (_one, _) = tokio_tungstenite::connect_async(generator.ws_url()).await.unwrap();
        until("one open since watching (the earlier one is not counted)", &|| {
            generator.accepted() == 2 && generator.peak_open() == 1
        });
        let (_two, _) = tokio_tungstenite::connect_async(generator.ws_url()).await.unwrap();
        until("two open at once", &|| generator.peak_open() == 2);
        generator.stop();
    }
}
