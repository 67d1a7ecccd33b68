//! Fault injection against the real relay binary, for resilience to upstream and relay failures: the Twelve
//! Data mock sits behind a loopback [`FaultProxy`] that resets, stalls, truncates and delays the upstream
//! connection while WebSocket clients stay attached; then the relay itself is SIGKILLed and restarted under 200
//! reconnecting clients, and 50 clients that never read share it with 10 fast ones.
//!
//! What every scenario proves is that clients are never dropped for an upstream's faults, that the relay
//! reconnects and resubscribes in full, and that fresh data reaches every client again. "Fresh" is judged per
//! client from its own message order: a quote that arrives after the relay's `live` status for the new upstream
//! connection was produced on that connection (status and quotes share one in-order queue per client). The one
//! exception, a conflated client whose catch-up sends a cached pre-reset value after `live`, needs a client 64
//! frames behind; these readers never are.
//!
//! Timings are measured and printed, but only asserted with generous bounds: the machine running this may be
//! slow and busy. Every wait is bounded, and the scenarios take turns (see [`SERIAL`]). `HAMSTER_FLAP_CYCLES`
//! overrides the flapping scenario's 100 cycles.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hamster_shared::api::{ClientsResponse, StatusResponse};
use hamster_shared::{ProviderState, ServerMessage};
use hamster_tests::mocks::twelvedata::TwelveDataMock;
use hamster_tests::proxy::FaultProxy;
use hamster_tests::{eventually_within, Relay};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "td-faults-key-5c1e";

/// Generous bound for any recovery on a loaded machine.
const RECOVER: Duration = Duration::from_secs(30);

/// The scenarios run one at a time: each measures timings that a neighbour's load (200 reconnecting clients, a
/// 50 Hz firehose) would distort.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------------------------
// Harness: the relay behind a proxy, and clients that keep reading in their own tasks.
// ---------------------------------------------------------------------------------------------------------------

/// Starts the relay off the async runtime's threads (it blocks until the relay prints its port).
async fn start_relay(port: u16, args: Vec<String>, env: Vec<(String, String)>) -> Relay {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Relay::start_with_env(port, &args, &env)
    })
    .await
    .expect("relay start task")
}

/// The Twelve Data mock, a fault proxy in front of it, and the relay streaming from the mock through the proxy.
struct Rig {
    mock: TwelveDataMock,
    proxy: FaultProxy,
    relay: Relay,
}

impl Rig {
    async fn start(extra: &[&str]) -> Rig {
        let mock = TwelveDataMock::start().await;
        let target = url::Url::parse(&mock.ws_url()).expect("mock url");
        let target = SocketAddr::from(([127, 0, 0, 1], target.port().expect("mock port")));
        let proxy = FaultProxy::start(target).await;
        let ws_url = format!("ws://127.0.0.1:{}/v1/quotes/price", proxy.port());
        let mut args: Vec<String> = [
            "--providers",
            "twelvedata",
            "--twelvedata-ws-url",
            &ws_url,
            "--twelvedata-rest-url",
            &mock.rest_url,
            // No REST fallback: every quote a client sees came over the (faulty) stream.
            "--twelvedata-rest-credits-per-min",
            "0",
            "--upstream-backoff-min-ms",
            "50",
            "--upstream-backoff-max-ms",
            "300",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let relay = start_relay(0, args, vec![("TWELVE_DATA_API_KEY".into(), KEY.into())]).await;
        Rig { mock, proxy, relay }
    }
}

/// One symbol as a client saw it in its current session and provider generation.
#[derive(Debug, Clone, Copy)]
struct SymbolSeen {
    /// Session and `live` count when the first quote of this run arrived.
    session: u64,
    lives: u64,
    first_at: Instant,
    last_at: Instant,
    count: u64,
}

/// Everything a client task observed.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Connections that got the relay's `hello`.
    sessions: u64,
    /// Connections that ended (closed by the relay, reset, or silent for too long).
    disconnects: u64,
    last_disconnect: Option<String>,
    /// `status` messages with `live` / `reconnecting` in the current session.
    lives: u64,
    reconnectings: u64,
    reconnecting_at: Option<Instant>,
    reconnecting_detail: Option<String>,
    quotes: u64,
    symbols: HashMap<String, SymbolSeen>,
    /// Quote age on arrival (now − `ts`) in ms, when recording is on.
    lags: Vec<i64>,
}

/// A WebSocket client running in its own task, reading everything, like a dashboard tab.
struct Client {
    symbols: Vec<String>,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

/// How a client behaves when its connection ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnLoss {
    /// Stay down (and let the test notice the disconnect).
    GiveUp,
    /// Reconnect with full-jitter backoff (250 ms doubling to 4 s) and resubscribe, as the dashboard does.
    Reconnect,
}

impl Client {
    fn spawn(url: &str, symbols: &[&str], on_loss: OnLoss, seed: u64, record_lag: bool) -> Client {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let symbols: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
        let task = tokio::spawn(run_client(url.to_owned(), symbols.clone(), on_loss, seed, record_lag, seen.clone()));
        Client { symbols, seen, task }
    }

    fn seen(&self) -> Seen {
        self.seen.lock().expect("seen lock").clone()
    }

    fn lives(&self) -> u64 {
        self.seen.lock().expect("seen lock").lives
    }

    fn quotes(&self) -> u64 {
        self.seen.lock().expect("seen lock").quotes
    }

    fn take_lags(&self) -> Vec<i64> {
        std::mem::take(&mut self.seen.lock().expect("seen lock").lags)
    }

    /// Every symbol had a quote after the latest `live` of the current session, and there was a `live` after
    /// `lives_before` (in the same session: the connection to the relay was never lost).
    fn fresh_after(&self, lives_before: u64) -> bool {
        let s = self.seen.lock().expect("seen lock");
        s.lives > lives_before
            && self
                .symbols
                .iter()
                .all(|sym| s.symbols.get(sym).is_some_and(|e| e.session == s.sessions && e.lives == s.lives))
    }

    /// Every symbol had a quote in session `session` or later (the client reconnected at least that often).
    fn data_in_session(&self, session: u64) -> bool {
        let s = self.seen.lock().expect("seen lock");
        s.sessions >= session
            && self.symbols.iter().all(|sym| s.symbols.get(sym).is_some_and(|e| e.session == s.sessions))
    }

    /// Earliest and latest arrival of the first fresh quote per symbol (as in [`Client::fresh_after`]).
    fn first_fresh(&self) -> Option<(Instant, Instant)> {
        let s = self.seen.lock().expect("seen lock");
        let firsts: Vec<Instant> =
            self.symbols.iter().filter_map(|sym| s.symbols.get(sym).map(|e| e.first_at)).collect();
        Some((*firsts.iter().min()?, *firsts.iter().max()?))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A small xorshift generator: jitter needs no cryptography, and the tests crate no `rand`.
struct Jitter(u64);

impl Jitter {
    fn below(&mut self, ceiling_ms: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(self.0 % (ceiling_ms + 1))
    }
}

async fn run_client(
    url: String,
    symbols: Vec<String>,
    on_loss: OnLoss,
    seed: u64,
    record_lag: bool,
    seen: Arc<Mutex<Seen>>,
) {
    let mut jitter = Jitter(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut attempt = 0u32;
    loop {
        let connected = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(&url)).await;
        let got_data = match connected {
            Ok(Ok((ws, _))) => session(ws, &symbols, record_lag, &seen).await,
            _ => false,
        };
        if on_loss == OnLoss::GiveUp {
            return;
        }
        if got_data {
            attempt = 0;
        }
        let ceiling = (250u64 << attempt.min(4)).min(4000);
        attempt += 1;
        tokio::time::sleep(jitter.below(ceiling)).await;
    }
}

/// One connection: subscribe, then read until it ends. True if any quote arrived.
async fn session(
    mut ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    symbols: &[String],
    record_lag: bool,
    seen: &Mutex<Seen>,
) -> bool {
    let subscribe = serde_json::json!({"type": "subscribe", "symbols": symbols}).to_string();
    let mut got_data = false;
    let ended = if ws.send(Message::text(subscribe)).await.is_err() {
        "subscribe failed".to_owned()
    } else {
        loop {
            // The relay pings every 15 s; 40 s of silence means it is gone.
            let frame = match tokio::time::timeout(Duration::from_secs(40), ws.next()).await {
                Err(_) => break "silent for 40 s".to_owned(),
                Ok(None) => break "stream ended".to_owned(),
                Ok(Some(Err(e))) => break format!("error: {e}"),
                Ok(Some(Ok(Message::Close(frame)))) => break format!("closed: {frame:?}"),
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(_))) => continue,
            };
            let Ok(msg) = serde_json::from_str::<ServerMessage>(&frame) else { continue };
            let now = Instant::now();
            let mut s = seen.lock().expect("seen lock");
            match msg {
                ServerMessage::Hello { .. } => {
                    s.sessions += 1;
                    s.lives = 0;
                    s.reconnectings = 0;
                }
                ServerMessage::Status { state: ProviderState::Live, .. } => s.lives += 1,
                ServerMessage::Status { state: ProviderState::Reconnecting, detail, .. } => {
                    s.reconnectings += 1;
                    s.reconnecting_at = Some(now);
                    s.reconnecting_detail = detail;
                }
                ServerMessage::Quotes { quotes } => {
                    got_data = true;
                    let (session, lives) = (s.sessions, s.lives);
                    let wall_ms = wall_ms();
                    for q in quotes {
                        s.quotes += 1;
                        if record_lag {
                            s.lags.push(wall_ms - q.ts);
                        }
                        let e = s.symbols.entry(q.symbol.as_str().to_owned()).or_insert(SymbolSeen {
                            session,
                            lives,
                            first_at: now,
                            last_at: now,
                            count: 0,
                        });
                        if (e.session, e.lives) != (session, lives) {
                            *e = SymbolSeen { session, lives, first_at: now, last_at: now, count: 0 };
                        }
                        e.last_at = now;
                        e.count += 1;
                    }
                }
                _ => {}
            }
        }
    };
    let mut s = seen.lock().expect("seen lock");
    s.disconnects += 1;
    s.last_disconnect = Some(ended);
    got_data
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Fails the test if any client lost its connection to the relay.
fn assert_none_disconnected(clients: &[Client], when: &str) {
    for (i, c) in clients.iter().enumerate() {
        let s = c.seen();
        assert!(
            s.sessions == 1 && s.disconnects == 0,
            "{when}: client {i} was disconnected (sessions {}, disconnects {}, last: {:?})",
            s.sessions,
            s.disconnects,
            s.last_disconnect
        );
    }
}

fn assert_no_panic(relay: &Relay) {
    let logs = relay.logs();
    let panics: Vec<&String> = logs.iter().filter(|l| l.contains("panicked")).collect();
    assert!(panics.is_empty(), "the relay panicked: {panics:?}");
}

/// p50 and max of `samples`.
fn p50_max(samples: &[Duration]) -> (Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    (sorted.get(sorted.len() / 2).copied().unwrap_or_default(), sorted.last().copied().unwrap_or_default())
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Quotes per second over `window` of the client that received the fewest.
async fn slowest_rate(clients: &[Client], window: Duration) -> f64 {
    let before: Vec<u64> = clients.iter().map(Client::quotes).collect();
    tokio::time::sleep(window).await;
    let fewest = clients.iter().zip(before).map(|(c, b)| c.quotes() - b).min().unwrap_or(0);
    fewest as f64 / window.as_secs_f64()
}

async fn status(relay: &Relay) -> StatusResponse {
    relay.get_json::<StatusResponse>("/api/status").await.1
}

// ---------------------------------------------------------------------------------------------------------------
// a. Flapping upstream
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_upstream_never_drops_a_client() {
    let _serial = SERIAL.lock().await;
    let cycles: usize = std::env::var("HAMSTER_FLAP_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let rig = Rig::start(&[]).await;
    let symbols = ["AAPL", "MSFT", "EUR/USD", "BTC/USD"];
    let clients: Vec<Client> = (0..20)
        .map(|i| {
            Client::spawn(&rig.relay.ws_url(), &[symbols[i % 4], symbols[(i + 1) % 4]], OnLoss::GiveUp, i as u64, false)
        })
        .collect();
    eventually_within("every client streaming", RECOVER, || clients.iter().all(|c| c.fresh_after(0))).await;
    assert_eq!(rig.proxy.accepted(), 1, "one upstream connection for 20 clients");
    let rss_before = rig.relay.rss_kib();

    let mut to_first_quote = Vec::new();
    let mut to_all_resumed = Vec::new();
    let started = Instant::now();
    for cycle in 1..=cycles {
        let cycle_start = Instant::now();
        let lives_before: Vec<u64> = clients.iter().map(Client::lives).collect();
        let subscribes_before: Vec<usize> = symbols.iter().map(|s| rig.mock.subscribe_requests_for(s)).collect();
        let accepted_before = rig.proxy.accepted();

        rig.proxy.reset();

        rig.proxy.wait_accepted(accepted_before + 1, RECOVER).await;
        eventually_within(&format!("cycle {cycle}: every symbol subscribed again upstream"), RECOVER, || {
            let now_subscribed = rig.mock.subscribed();
            symbols
                .iter()
                .zip(&subscribes_before)
                .all(|(s, before)| rig.mock.subscribe_requests_for(s) > *before && now_subscribed.contains(*s))
        })
        .await;
        eventually_within(&format!("cycle {cycle}: fresh quotes on every client"), RECOVER, || {
            clients.iter().zip(&lives_before).all(|(c, before)| c.fresh_after(*before))
        })
        .await;
        let reconnected_at = rig.proxy.last_accepted_at().expect("accepted");
        let firsts: Vec<(Instant, Instant)> = clients.iter().filter_map(Client::first_fresh).collect();
        let first = firsts.iter().map(|f| f.0).min().expect("clients");
        let last = firsts.iter().map(|f| f.1).max().expect("clients");
        to_first_quote.push(first.saturating_duration_since(reconnected_at));
        to_all_resumed.push(last.saturating_duration_since(reconnected_at));
        assert_none_disconnected(&clients, &format!("cycle {cycle}"));
        if cycle % 10 == 0 {
            println!(
                "flapping: cycle {cycle}/{cycles}, reconnect→first quote {} ms, →all clients {} ms",
                ms(to_first_quote[cycle - 1]),
                ms(to_all_resumed[cycle - 1])
            );
        }
        tokio::time::sleep_until((cycle_start + Duration::from_secs(2)).into()).await;
    }

    // One upstream connection at the end, none leaked by 100 resets.
    eventually_within("one upstream connection left", RECOVER, || rig.proxy.open() == 1 && rig.mock.ws.open() == 1)
        .await;
    let rss_after = rig.relay.rss_kib();
    let st = status(&rig.relay).await;
    assert_eq!(st.clients, 20, "{st:?}");
    assert_eq!(st.providers[0].state, ProviderState::Live, "{st:?}");
    assert_no_panic(&rig.relay);
    let (first_p50, first_max) = p50_max(&to_first_quote);
    let (all_p50, all_max) = p50_max(&to_all_resumed);
    println!(
        "flapping: survived {cycles}/{cycles} cycles in {:.1} s with 20 clients, 0 disconnects; upstream \
         connections {}; reconnect→first quote p50 {} ms max {} ms; →all 20 clients p50 {} ms max {} ms; relay RSS \
         {:?} KiB → {:?} KiB",
        started.elapsed().as_secs_f64(),
        rig.proxy.accepted(),
        ms(first_p50),
        ms(first_max),
        ms(all_p50),
        ms(all_max),
        rss_before,
        rss_after
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        assert!(after < before + 64 * 1024, "relay RSS grew from {before} KiB to {after} KiB over {cycles} reconnects");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// b. Stalled upstream
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_upstream_is_detected_by_the_watchdog() {
    let _serial = SERIAL.lock().await;
    let stale = Duration::from_millis(1500);
    let rig = Rig::start(&["--upstream-stale-ms", &stale.as_millis().to_string()]).await;
    let clients: Vec<Client> =
        (0..3).map(|i| Client::spawn(&rig.relay.ws_url(), &["AAPL", "EUR/USD"], OnLoss::GiveUp, i, false)).collect();
    eventually_within("streaming", RECOVER, || clients.iter().all(|c| c.fresh_after(0))).await;

    for round in 1..=3 {
        let lives_before: Vec<u64> = clients.iter().map(Client::lives).collect();
        let reconnectings_before = clients[0].seen().reconnectings;
        let stalled_at = Instant::now();
        rig.proxy.stall();

        eventually_within(&format!("round {round}: watchdog fires"), stale + RECOVER, || {
            clients.iter().all(|c| c.seen().reconnectings > reconnectings_before)
        })
        .await;
        let seen = clients[0].seen();
        let detected = seen.reconnecting_at.expect("reconnecting seen").saturating_duration_since(stalled_at);
        let detail = seen.reconnecting_detail.unwrap_or_default();
        assert!(detail.contains("no data"), "reconnecting because of the watchdog: {detail:?}");
        // Not before the configured silence (minus the mock's 50 ms tick: the last frame may predate the stall).
        assert!(detected + Duration::from_millis(300) >= stale, "watchdog fired early: {detected:?} < {stale:?}");
        let st = status(&rig.relay).await;
        assert_ne!(st.providers[0].state, ProviderState::Live, "not live while stalled: {st:?}");

        // While the stall lasts, the reconnect cannot complete (its handshake is stalled too): still no `live`.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (c, before) in clients.iter().zip(&lives_before) {
            assert_eq!(c.lives(), *before, "no live status while the upstream is stalled");
        }

        let resumed_at = Instant::now();
        rig.proxy.pass();
        eventually_within(&format!("round {round}: live again with fresh data"), RECOVER, || {
            clients.iter().zip(&lives_before).all(|(c, before)| c.fresh_after(*before))
        })
        .await;
        println!(
            "stalled: round {round}: detected after {} ms (--upstream-stale-ms {}), detail {detail:?}; data resumed {} \
             ms after the stall ended",
            ms(detected),
            stale.as_millis(),
            ms(resumed_at.elapsed())
        );
        assert_none_disconnected(&clients, &format!("stall round {round}"));
    }
    let st = status(&rig.relay).await;
    assert_eq!(st.providers[0].state, ProviderState::Live);
    assert_no_panic(&rig.relay);
}

// ---------------------------------------------------------------------------------------------------------------
// c. Truncated frame + reset, and added delay
// ---------------------------------------------------------------------------------------------------------------

/// A one-shot fault on the upstream connection.
#[derive(Clone, Copy)]
enum Fault {
    /// Let this many bytes of the next upstream data through, then close mid-frame.
    Truncate(usize),
    Reset,
    /// Reset, and refuse the reconnects for a while.
    ResetAndRefuse(Duration),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frames_resets_and_delay_are_survived() {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start(&["--upstream-stale-ms", "5000"]).await;
    let clients: Vec<Client> =
        (0..5).map(|i| Client::spawn(&rig.relay.ws_url(), &["AAPL", "EUR/USD"], OnLoss::GiveUp, i, false)).collect();
    eventually_within("streaming", RECOVER, || clients.iter().all(|c| c.fresh_after(0))).await;

    // Cut inside the next frame from upstream: in its 2-byte header, in its payload, a little further on.
    let faults = [
        ("truncated after 1 byte", Fault::Truncate(1)),
        ("truncated after 10 bytes", Fault::Truncate(10)),
        ("truncated after 437 bytes", Fault::Truncate(437)),
        ("reset", Fault::Reset),
        ("reset, then reconnects refused for 1 s", Fault::ResetAndRefuse(Duration::from_secs(1))),
    ];
    for (what, fault) in faults {
        let lives_before: Vec<u64> = clients.iter().map(Client::lives).collect();
        let accepted_before = rig.proxy.accepted();
        let at = Instant::now();
        let refused_before = rig.proxy.refused();
        match fault {
            Fault::Truncate(bytes) => rig.proxy.truncate(bytes),
            Fault::Reset => {
                rig.proxy.reset();
            }
            Fault::ResetAndRefuse(period) => {
                rig.proxy.refuse_for(period);
                rig.proxy.reset();
            }
        }
        rig.proxy.wait_accepted(accepted_before + 1, RECOVER).await;
        eventually_within(&format!("{what}: data resumes"), RECOVER, || {
            clients.iter().zip(&lives_before).all(|(c, before)| c.fresh_after(*before))
        })
        .await;
        let refused = rig.proxy.refused() - refused_before;
        if let Fault::ResetAndRefuse(_) = fault {
            assert!(refused > 0, "the relay retried while refused");
        }
        println!(
            "faults: {what}: reconnected and data resumed on every client in {} ms ({refused} attempts refused)",
            ms(at.elapsed())
        );
        assert_none_disconnected(&clients, what);
    }

    // 200 ms added to every chunk: data keeps flowing, slower, and the watchdog (5 s) has no reason to fire.
    let window = Duration::from_secs(4);
    let normal = slowest_rate(&clients, window).await;
    rig.proxy.delay(Duration::from_millis(200));
    let lives_before: Vec<u64> = clients.iter().map(Client::lives).collect();
    let accepted_before = rig.proxy.accepted();
    let delayed = slowest_rate(&clients, window).await;
    assert_eq!(rig.proxy.accepted(), accepted_before, "no reconnect needed under a 200 ms delay");
    assert!(clients.iter().zip(&lives_before).all(|(c, b)| c.lives() == *b), "no status flap under delay");
    assert!(delayed >= 2.0, "data must still flow with 200 ms added per chunk: {delayed:.1} quotes/s per client");
    // And a reconnect through the delayed path completes (the handshake itself is delayed).
    let reconnect_at = Instant::now();
    rig.proxy.reset();
    rig.proxy.wait_accepted(accepted_before + 1, RECOVER).await;
    eventually_within("delayed reconnect: data resumes", RECOVER, || {
        clients.iter().zip(&lives_before).all(|(c, before)| c.fresh_after(*before))
    })
    .await;
    println!(
        "faults: slowest client {normal:.1} quotes/s normally, {delayed:.1} quotes/s with 200 ms per chunk; reset under \
         delay recovered in {} ms",
        ms(reconnect_at.elapsed())
    );
    rig.proxy.pass();
    assert_none_disconnected(&clients, "delay");
    let st = status(&rig.relay).await;
    assert_eq!((st.clients, st.providers[0].state), (5, ProviderState::Live), "{st:?}");
    assert_no_panic(&rig.relay);
}

// ---------------------------------------------------------------------------------------------------------------
// d. Relay restart with 200 clients attached
// ---------------------------------------------------------------------------------------------------------------

/// Raises the soft open-files limit to the hard one: 200 clients and their relay peers need descriptors.
fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit with a valid resource and a pointer to a local struct.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restart_with_200_clients_attached() {
    let _serial = SERIAL.lock().await;
    raise_nofile_limit();
    const N: usize = 200;
    const SEEDS: [&str; 8] = ["BTC/USD", "ETH/USD", "AAPL", "MSFT", "NVDA", "SPY", "EUR/USD", "GBP/USD"];
    let args: Vec<String> = vec!["--sim-tick-hz".into(), "4".into()];
    let mut relay = start_relay(0, args.clone(), Vec::new()).await;
    let port = relay.port();
    let clients: Vec<Client> = (0..N)
        .map(|i| {
            Client::spawn(&relay.ws_url(), &[SEEDS[i % 8], SEEDS[(i + 3) % 8]], OnLoss::Reconnect, i as u64 + 1, false)
        })
        .collect();
    eventually_within("200 clients streaming", Duration::from_secs(60), || {
        clients.iter().all(|c| c.data_in_session(1))
    })
    .await;
    let st = status(&relay).await;
    assert_eq!((st.clients, st.upstream_subscriptions), (N, 8), "{st:?}");

    let killed_at = Instant::now();
    relay.kill();
    eventually_within("every client noticed the relay died", RECOVER, || {
        clients.iter().all(|c| c.seen().disconnects >= 1)
    })
    .await;
    let noticed = killed_at.elapsed();

    let restart_at = Instant::now();
    let relay = start_relay(port, args, Vec::new()).await;
    let listening = restart_at.elapsed();
    eventually_within("200 clients back with data", Duration::from_secs(90), || {
        clients.iter().all(|c| c.data_in_session(2))
    })
    .await;
    let all_back = restart_at.elapsed();
    let mut per_client: Vec<Duration> = clients
        .iter()
        .filter_map(|c| c.first_fresh().map(|(first, _)| first.saturating_duration_since(restart_at)))
        .collect();
    per_client.sort();
    let st = relay.wait_status("200 clients on 8 symbols", |s| s.clients == N).await;
    assert_eq!(st.upstream_subscriptions, 8, "every subscription restored: {st:?}");
    let attempts: u64 = clients.iter().map(|c| c.seen().sessions).sum();
    println!(
        "restart: {N} clients noticed the SIGKILL within {} ms; relay listening again {} ms after restart; all {N} \
         resubscribed with data {} ms after restart (per client p50 {} ms, max {} ms); {attempts} sessions in all",
        ms(noticed),
        ms(listening),
        ms(all_back),
        ms(per_client[per_client.len() / 2]),
        ms(*per_client.last().expect("clients"))
    );
    assert_no_panic(&relay);
}

// ---------------------------------------------------------------------------------------------------------------
// e. Slow consumers under load
// ---------------------------------------------------------------------------------------------------------------

/// A client that subscribes and then never reads again, with a tiny receive buffer.
async fn never_reading_client(
    relay: &Relay,
    symbols: &[String],
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(([127, 0, 0, 1], relay.port()).into()).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(relay.ws_url(), stream).await.expect("handshake");
    let subscribe = serde_json::json!({"type": "subscribe", "symbols": symbols}).to_string();
    ws.send(Message::text(subscribe)).await.expect("subscribe");
    ws
}

/// Quotes per second per fast client (the slowest one), and p50/p99 quote age, over `window`.
async fn measure(fast: &[Client], window: Duration) -> (f64, i64, i64) {
    for c in fast {
        c.take_lags();
    }
    let rate = slowest_rate(fast, window).await;
    let mut lags: Vec<i64> = fast.iter().flat_map(Client::take_lags).collect();
    lags.sort_unstable();
    let pct = |p: usize| lags.get(lags.len() * p / 100).copied().unwrap_or(i64::MAX);
    (rate, pct(50), pct(99))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_are_conflated_fast_ones_stay_fresh() {
    let _serial = SERIAL.lock().await;
    let queue = 64;
    let hz = 50;
    let relay = start_relay(
        0,
        ["--sim-tick-hz", &hz.to_string(), "--client-queue-frames", &queue.to_string()].map(String::from).to_vec(),
        Vec::new(),
    )
    .await;
    let symbols: Vec<String> = (0..20).map(|i| format!("LOAD{i:02}")).collect();
    let refs: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let fast: Vec<Client> = (0..10).map(|i| Client::spawn(&relay.ws_url(), &refs, OnLoss::GiveUp, i, true)).collect();
    eventually_within("fast clients streaming", RECOVER, || fast.iter().all(|c| c.data_in_session(1))).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let window = Duration::from_secs(4);
    let (base_rate, base_p50, base_p99) = measure(&fast, window).await;
    let rss_before = relay.rss_kib();

    let mut slow = Vec::new();
    for _ in 0..50 {
        slow.push(never_reading_client(&relay, &symbols).await);
    }
    relay.wait_status("60 clients", |s| s.clients == 60).await;
    relay.wait_status("slow clients conflated", |s| s.conflated_total > 0).await;
    let (load_rate, load_p50, load_p99) = measure(&fast, window).await;
    let rss_after = relay.rss_kib();

    let st = status(&relay).await;
    let (_, ClientsResponse { clients }) = relay.get_json::<ClientsResponse>("/api/clients").await;
    assert_eq!(st.clients, 60, "nobody dropped: {st:?}");
    assert_eq!(clients.len(), 60);
    // Ids grow with connection order: the 10 fast clients connected first.
    let (fast_c, slow_c) = clients.split_at(10);
    let slow_conflated: u64 = slow_c.iter().map(|c| c.conflated).sum();
    let fast_conflated: u64 = fast_c.iter().map(|c| c.conflated).sum();
    let slow_min = slow_c.iter().map(|c| c.conflated).min().unwrap_or(0);
    let max_queued = slow_c.iter().map(|c| c.queued_frames).max().unwrap_or(0);
    println!(
        "slow consumers: 10 fast + 50 never-reading clients on {} symbols at {hz} Hz; fast (slowest client) \
         {base_rate:.0} quotes/s, lag p50 {base_p50} ms p99 {base_p99} ms alone → {load_rate:.0} quotes/s, lag p50 \
         {load_p50} ms p99 {load_p99} ms under load; conflated_total {}, slow clients {slow_conflated} (each ≥ \
         {slow_min}), fast clients {fast_conflated}; slow queues ≤ {max_queued} frames; relay RSS {:?} KiB → {:?} KiB",
        symbols.len(),
        st.conflated_total,
        rss_before,
        rss_after
    );
    assert!(slow_min > 0, "every never-reading client is conflated: {slow_c:?}");
    assert!(max_queued <= queue, "slow queues stay bounded at {queue} frames: {slow_c:?}");
    assert!(load_rate >= base_rate * 0.5, "fast clients keep their pace: {load_rate:.0} vs {base_rate:.0} quotes/s");
    assert!(load_p50 < base_p50.max(0) + 1000, "fast clients still get fresh prices: lag p50 {load_p50} ms");
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        assert!(after < before + 64 * 1024, "relay RSS grew from {before} KiB to {after} KiB under slow consumers");
    }
    drop(slow);
}
