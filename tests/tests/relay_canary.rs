//! Provider keys never leave the relay: canary keys, then a scan of everything the relay emits.
//!
//! Every keyed provider gets a distinct random canary (`CANARY-twelvedata-…`, fresh each run) from the
//! environment. The real relay runs with every provider enabled, each pointed at its mock, with `RUST_LOG=trace`:
//!
//! * **accepting** (`--log-format human`): mocks accept the keys and stream; then connections are cut, Twelve Data
//!   refuses upgrades with 500 so its REST fallback polls with `?apikey=`, Alpaca refuses a session (406), Binance
//!   announces a shutdown, and everything reconnects;
//! * **refusing** (`--log-format json`): mocks refuse the keys (HTTP 401, Alpaca's 402 then a close, Twelve Data's
//!   REST bad-key body), then fail with 500 and 403 and cut sockets, so the down, error and reconnect paths —
//!   whose messages could carry a URL with `?apikey=`/`?token=` — run over and over;
//! * **echoing** (`--log-format human`, and again with `json`): hostile upstreams that accept the upgrade
//!   and then echo the key they were sent back in every message the relay might forward or log: error and
//!   rejection messages, close reasons, REST error bodies, and a data payload. Alpaca's keys carry `"`, `\`, a
//!   control character and a non-ASCII letter, which every log format escapes.
//!
//! The accepting run's `RUST_LOG` also names the modules of the HTTP and WebSocket crates that print request
//! lines and frames verbatim (`tungstenite::handshake::client=trace`, …), as an operator debugging a handshake
//! might: a crate-level cap in the relay must not be undone by a more specific directive.
//!
//! Each run first proves the keys were really used (every mock received its canary, so the scan means
//! something), then scans for every canary — raw, percent-encoded, JSON-, ASCII-JSON-, `Debug`- and
//! `\u`-escaped (and escaped twice), base64 at every alignment, hex and any letter case — in: every HTTP response's status, headers and body (REST, metrics, health, 404s, bad requests); every
//! static asset in `dist/` fetched through the relay, plus `/` and a SPA fallback path; every WebSocket frame
//! (and handshake header) received by clients subscribing to symbols on every provider, rejected and invalid
//! ones included, over several seconds; every SSE frame of `/api/stream`; and every line the relay wrote to
//! stdout and stderr. The scanner is checked against planted canaries, each channel must have carried a minimum
//! volume, and the counts per channel are printed.
//!
//! Known gap: `dist/` is built before the canaries exist, so a key compiled into the dashboard at build time
//! would not be seen here; the relay serves static files verbatim, so the relay itself cannot add one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hamster_shared::api::StatusResponse;
use hamster_shared::ProviderState;
use hamster_tests::browser::dist_dir;
use hamster_tests::mock::{query_param, Incoming, MockServer};
use hamster_tests::mocks::alpaca::AlpacaMock;
use hamster_tests::mocks::binance::BinanceMock;
use hamster_tests::mocks::finnhub::FinnhubMock;
use hamster_tests::mocks::twelvedata::TwelveDataMock;
use hamster_tests::mocks::unusualwhales::UnusualWhalesMock;
use hamster_tests::{Relay, PROVIDER_KEY_VARS, WAIT};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// The providers' reference endpoints (instrument catalogs) for these runs: a closed loopback port, so the relay
/// never reaches out to the internet and checks no symbol against a catalog.
const NO_REST: &str = "http://127.0.0.1:9";

/// The relays of these tests run one at a time: each is busy, and the machine may be too.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every provider the relay knows, all enabled in every run.
const PROVIDERS: &str = "sim,twelvedata,binance,alpaca,finnhub,uw";

/// Symbols each provider serves (explicit prefixes, so routing is not what is tested).
const ACCEPTED: &[&str] = &[
    "twelvedata:AAPL",
    "twelvedata:EUR/USD",
    "binance:BTC/USDT",
    "alpaca:MSFT",
    "finnhub:AAPL",
    "finnhub:BTC/USD",
    "uw:SPY",
    "uw:FLOW-ALERTS",
    "sim:AAPL",
];

/// Symbols refused upstream (the mocks are told to), by the relay's own rules, or invalid.
const REJECTED: &[&str] = &[
    "twelvedata:NOPE",
    "binance:NOPE/USDT",
    "uw:GEX-SPY",
    "alpaca:EUR/USD",
    "nosuch:AAPL",
    "not a symbol!",
    "finnhub:",
];

/// `RUST_LOG=trace`, plus what an operator debugging an upstream handshake might add: the modules of the crates
/// that print request lines, URLs and frames verbatim, named more specifically than any cap on the crate.
const TRACE_HANDSHAKES: &str = "trace,tungstenite::handshake::client=trace,tungstenite::protocol=trace,\
    tokio_tungstenite=trace,reqwest::connect=trace,reqwest::async_impl::client=trace,hyper_util::client::legacy=trace,\
    hyper::proto=trace";

// ---------------------------------------------------------------------------------------------------------------
// Canaries and the scanner

/// One canary per key variable, distinct per variable and per run.
#[derive(Debug, Clone)]
struct Canaries(Vec<(&'static str, String)>);

impl Canaries {
    fn new() -> Canaries {
        let canaries = PROVIDER_KEY_VARS
            .iter()
            .map(|var| {
                let slug = match *var {
                    "TWELVE_DATA_API_KEY" => "twelvedata",
                    "APCA_API_KEY_ID" => "alpaca-id",
                    "APCA_API_SECRET_KEY" => "alpaca-secret",
                    "FINNHUB_API_KEY" => "finnhub",
                    "UW_API_TOKEN" => "uw",
                    other => panic!("no canary slug for {other}: add it here"),
                };
                // Characters that URL encoding changes in two of them, so the encoded forms differ from the raw;
                // Alpaca's pair (sent in a JSON message, so any character can reach the upstream and be echoed)
                // also carries characters JSON, `Debug` and ASCII-only JSON escape: `"`, `\`, a control character,
                // a non-ASCII letter.
                let tail = match *var {
                    "TWELVE_DATA_API_KEY" => "+/=",
                    "APCA_API_SECRET_KEY" => "+/=\"\\\u{1}é",
                    "APCA_API_KEY_ID" => "\"q\\",
                    _ => "",
                };
                (*var, format!("CANARY-{slug}-{}{tail}", random_hex()))
            })
            .collect();
        Canaries(canaries)
    }

    fn get(&self, var: &str) -> &str {
        self.0.iter().find(|(v, _)| *v == var).map(|(_, c)| c.as_str()).unwrap_or_else(|| panic!("no canary {var}"))
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(v, c)| (*v, c.as_str())).collect()
    }
}

/// 32 hex digits from the standard library's per-process random hash keys and the clock.
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    (0..2u8)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_u32(std::process::id());
            h.write_u8(i);
            format!("{:016x}", h.finish())
        })
        .collect()
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 without padding (the tests crate has no base64 dependency).
fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The base64 characters that depend only on `value`, were it encoded starting `offset` (0‥2) bytes into a larger
/// blob: what shows up of it inside any base64 text, whatever came before or after.
fn base64_core(value: &[u8], offset: usize) -> String {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(value);
    let encoded = base64(&padded);
    let (start, end) = ((8 * offset).div_ceil(6), 8 * (offset + value.len()) / 6);
    encoded[start..end].to_owned()
}

/// Every form a leaked `value` could take, by name; matched case-insensitively.
fn forms(value: &str) -> Vec<(String, String)> {
    let mut forms = vec![("raw".to_owned(), value.to_owned())];
    forms.push(("form-urlencoded".into(), url::form_urlencoded::byte_serialize(value.as_bytes()).collect()));
    let percent = |keep: &dyn Fn(u8) -> bool| -> String {
        value.bytes().map(|b| if keep(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
    };
    forms.push(("percent-encoded".into(), percent(&|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))));
    forms.push(("percent-encoded (all)".into(), percent(&|b| b.is_ascii_alphanumeric())));
    let json = |text: &str| -> String {
        let quoted = serde_json::to_string(text).unwrap();
        quoted[1..quoted.len() - 1].to_owned()
    };
    let debug = |text: &str| -> String { text.escape_debug().to_string() };
    let unicode = |c: char| -> String { c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("\\u{u:04x}")).collect() };
    let ascii_json = |text: &str| -> String {
        json(text).chars().map(|c| if c.is_ascii() { c.to_string() } else { unicode(c) }).collect()
    };
    forms.push(("json".into(), json(value)));
    forms.push(("json (ASCII only)".into(), ascii_json(value)));
    forms.push(("debug".into(), debug(value)));
    forms.push(("json of json".into(), json(&json(value))));
    forms.push(("json of debug".into(), json(&debug(value))));
    forms.push(("debug of json".into(), debug(&json(value))));
    forms.push(("all \\u".into(), value.chars().map(unicode).collect()));
    forms.push(("hex".into(), value.bytes().map(|b| format!("{b:02x}")).collect()));
    for offset in 0..3 {
        let core = base64_core(value.as_bytes(), offset);
        forms.push((format!("base64@{offset}"), core.clone()));
        forms.push((format!("base64url@{offset}"), core.replace('+', "-").replace('/', "_")));
    }
    // The random part alone catches a key re-prefixed or cut at the front (last, so fuller forms are named first).
    if let Some(core) = value.rsplit('-').next().filter(|c| c.len() >= 16) {
        forms.push(("random part".into(), core.trim_end_matches(['+', '/', '=']).to_owned()));
    }
    let mut seen = std::collections::HashSet::new();
    forms.retain(|(_, text)| seen.insert(text.to_ascii_lowercase()));
    forms
}

/// What the scanner looks for: one canary in one form, lower-cased.
struct Needle {
    var: &'static str,
    form: String,
    text: String,
}

/// How much one channel carried.
#[derive(Debug, Default, Clone, Copy)]
struct Volume {
    items: usize,
    bytes: usize,
}

/// Scans bytes for every form of every canary and keeps the volume scanned per channel.
struct Scanner {
    canaries: Vec<(&'static str, String)>,
    needles: Vec<Needle>,
    volume: BTreeMap<&'static str, Volume>,
    hits: Vec<Hit>,
}

impl Scanner {
    fn new(canaries: &Canaries) -> Scanner {
        let needles = canaries
            .0
            .iter()
            .flat_map(|(var, value)| {
                forms(value).into_iter().map(|(form, text)| Needle { var, form, text: text.to_ascii_lowercase() })
            })
            .collect();
        Scanner { canaries: canaries.0.clone(), needles, volume: BTreeMap::new(), hits: Vec::new() }
    }

    fn scan(&mut self, channel: &'static str, label: &str, data: &[u8]) {
        let volume = self.volume.entry(channel).or_default();
        volume.items += 1;
        volume.bytes += data.len();
        // Lossy decoding keeps every ASCII byte where it was, and every needle is ASCII; lower-casing keeps offsets.
        let original = String::from_utf8_lossy(data);
        let text = original.to_ascii_lowercase();
        let mut reported: Vec<&str> = Vec::new();
        for needle in &self.needles {
            // One hit per canary per item: the first form found (raw comes first) says enough.
            if reported.contains(&needle.var) {
                continue;
            }
            if let Some(at) = text.find(needle.text.as_str()) {
                reported.push(needle.var);
                let from = floor_char_boundary(&text, at.saturating_sub(100));
                let to = floor_char_boundary(&text, (at + needle.text.len() + 100).min(text.len()));
                self.hits.push(Hit {
                    var: needle.var,
                    form: needle.form.clone(),
                    channel,
                    label: label.to_owned(),
                    context: strip_ansi(&original[from..to]).replace('\n', "⏎"),
                });
            }
        }
    }

    fn volume(&self, channel: &str) -> Volume {
        self.volume.get(channel).copied().unwrap_or_default()
    }

    fn report(&self, run: &str) {
        println!(
            "[{run}] scanned {} needles ({} canaries × their forms):",
            self.needles.len(),
            PROVIDER_KEY_VARS.len()
        );
        for (channel, v) in &self.volume {
            let unit = match *channel {
                "http" => "responses",
                "static" => "files",
                "ws" | "sse" => "frames",
                "logs" => "lines",
                _ => "items",
            };
            println!("[{run}]   {channel:<7} {:>6} {unit:<9} {:>10} bytes", v.items, v.bytes);
        }
    }

    fn assert_clean(&self, run: &str) {
        if let Some(report) = self.leak_report(run) {
            panic!("{report}");
        }
    }

    /// What was found, grouped; `None` if nothing.
    fn leak_report(&self, run: &str) -> Option<String> {
        if self.hits.is_empty() {
            return None;
        }
        // Grouped by where they were found and what surrounded them, so one leak repeated a hundred times reads once.
        let mut groups: BTreeMap<(String, &str, &str), (usize, &Hit)> = BTreeMap::new();
        for hit in &self.hits {
            let mut shape = hit.context.clone();
            for (_, value) in &self.canaries {
                shape = shape.replace(value.as_str(), "<KEY>");
            }
            let shape: String = shape.chars().filter(|c| !c.is_ascii_digit()).collect();
            groups.entry((shape, hit.channel, hit.var)).or_insert((0, hit)).0 += 1;
        }
        let mut per_channel: BTreeMap<&str, usize> = BTreeMap::new();
        for hit in &self.hits {
            *per_channel.entry(hit.channel).or_default() += 1;
        }
        let report: Vec<String> = groups
            .values()
            .map(|(n, h)| format!("{} ({}) in {} / {} ×{n}:\n    …{}…", h.var, h.form, h.channel, h.label, h.context))
            .collect();
        Some(format!(
            "[{run}] {} canary hit(s) — keys left the relay. Per channel: {per_channel:?}. Distinct leaks:\n{}",
            self.hits.len(),
            report.join("\n")
        ))
    }
}

/// One canary found somewhere.
#[derive(Debug)]
struct Hit {
    var: &'static str,
    form: String,
    channel: &'static str,
    label: String,
    context: String,
}

/// `str::floor_char_boundary` is unstable.
fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Removes ANSI colour sequences (`ESC [ … m`) from a human-format log line, for readable reports.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Capturing what the relay emits

/// Everything captured from one relay, by channel, scanned at the end.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

/// One captured item: its channel, what it was, and its bytes.
type Captured = (&'static str, String, Vec<u8>);

impl Capture {
    fn add(&self, channel: &'static str, label: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.0.lock().unwrap().push((channel, label.into(), data.into()));
    }

    fn items(&self, channel: &str) -> Vec<(String, Vec<u8>)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _, _)| *c == channel)
            .map(|(_, l, d)| (l.clone(), d.clone()))
            .collect()
    }

    fn scan_into(&self, scanner: &mut Scanner) {
        for (channel, label, data) in self.0.lock().unwrap().iter() {
            scanner.scan(channel, label, data);
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(WAIT).build().unwrap()
}

/// One HTTP exchange, captured as status line, headers and body.
async fn fetch(
    capture: &Capture,
    channel: &'static str,
    request: reqwest::RequestBuilder,
    label: &str,
) -> (u16, Vec<u8>) {
    let response = request.send().await.unwrap_or_else(|e| panic!("{label}: {e}"));
    let status = response.status().as_u16();
    let mut text = format!("HTTP {status}\n");
    for (name, value) in response.headers() {
        text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
    }
    text.push('\n');
    let body = response.bytes().await.unwrap_or_else(|e| panic!("{label} body: {e}")).to_vec();
    let mut data = text.into_bytes();
    data.extend_from_slice(&body);
    capture.add(channel, label, data);
    (status, body)
}

/// Every REST endpoint, good and bad requests alike.
async fn sweep_http(relay: &Relay, capture: &Capture) {
    let client = http_client();
    let base = relay.http_url();
    let all = ACCEPTED.join(",");
    let too_many: Vec<String> = (0..101).map(|i| format!("sim:S{i}")).collect();
    let too_many = too_many.join(",");
    let mut paths: Vec<String> = vec![
        "/api/status".into(),
        "/api/quotes".into(),
        format!("/api/quotes?symbols={all}"),
        format!("/api/quotes?symbols={}", REJECTED.join(",")),
        "/api/quotes?symbols=".into(),
        format!("/api/quotes?symbols={too_many}"),
        "/api/quotes?symbols=%FF%FE".into(),
        "/api/clients".into(),
        "/metrics".into(),
        "/healthz".into(),
        "/api/x".into(),
        "/api/does/not/exist?apikey=probe".into(),
        "/api/stream".into(),
        "/api/stream?symbols=nosuch:AAPL".into(),
        "/api/history/".into(),
        "/api/history/%00".into(),
        "/ws".into(),
    ];
    for s in ACCEPTED.iter().chain(REJECTED) {
        paths.push(format!("/api/history/{}", url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()));
        paths.push(format!(
            "/api/quotes?symbols={}",
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
        ));
    }
    paths.push("/api/history/binance:BTC/USDT".into());
    for path in &paths {
        fetch(capture, "http", client.get(format!("{base}{path}")), &format!("GET {path}")).await;
    }
    for (method, path) in [("POST", "/api/status"), ("DELETE", "/api/quotes"), ("PUT", "/metrics")] {
        let request = client.request(method.parse().unwrap(), format!("{base}{path}")).body("{}");
        fetch(capture, "http", request, &format!("{method} {path}")).await;
    }
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{base}/api/quotes"))
        .header("Origin", "https://elsewhere.example")
        .header("Access-Control-Request-Method", "GET");
    fetch(capture, "http", preflight, "OPTIONS /api/quotes (CORS preflight)").await;
    let cors = client.get(format!("{base}/api/status")).header("Origin", "https://elsewhere.example");
    fetch(capture, "http", cors, "GET /api/status (cross-origin)").await;
}

/// Every file in `dist/` through the relay (byte for byte), `/`, and paths the SPA fallback answers.
async fn sweep_static(relay: &Relay, capture: &Capture, dist: &Path) {
    let client = http_client();
    let base = relay.http_url();
    let mut files = Vec::new();
    walk(dist, &mut files);
    assert!(!files.is_empty(), "{} is empty", dist.display());
    for file in &files {
        let rel = file.strip_prefix(dist).unwrap().to_string_lossy().replace('\\', "/");
        let (status, body) =
            fetch(capture, "static", client.get(format!("{base}/{rel}")), &format!("GET /{rel}")).await;
        assert_eq!(status, 200, "GET /{rel}");
        assert_eq!(body, std::fs::read(file).unwrap(), "/{rel} is served verbatim, so its bytes were all scanned");
    }
    for path in ["/", "/index.html", "/watchlist/some/spa/path", "/favicon.ico", "/config.json", "/.env"] {
        fetch(capture, "static", client.get(format!("{base}{path}")), &format!("GET {path}")).await;
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A WebSocket client that sends `commands` (text, or binary when prefixed `BINARY:`) one by one and records every
/// frame it receives, close reasons and ping payloads included, until `stop` fires.
async fn ws_client(
    relay: &Relay,
    capture: Capture,
    name: &'static str,
    commands: Vec<String>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(relay.ws_url()))
        .await
        .expect("ws connect timed out")
        .expect("ws connect");
    let mut head = format!("HTTP {}\n", response.status().as_u16());
    for (k, v) in response.headers() {
        head.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    capture.add("ws", format!("{name} handshake"), head);
    let mut commands = commands.into_iter();
    let mut next_command = tokio::time::interval(Duration::from_millis(150));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = next_command.tick() => {
                let Some(command) = commands.next() else { continue };
                let message = match command.strip_prefix("BINARY:") {
                    Some(bytes) => Message::binary(bytes.as_bytes().to_vec()),
                    None => Message::text(command),
                };
                if ws.send(message).await.is_err() {
                    break;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => capture.add("ws", format!("{name} text"), text.as_bytes().to_vec()),
                Some(Ok(Message::Binary(bytes))) => capture.add("ws", format!("{name} binary"), bytes.to_vec()),
                Some(Ok(Message::Ping(p))) => capture.add("ws", format!("{name} ping"), p.to_vec()),
                Some(Ok(Message::Pong(p))) => capture.add("ws", format!("{name} pong"), p.to_vec()),
                Some(Ok(Message::Close(frame))) => {
                    let reason = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                    capture.add("ws", format!("{name} close"), reason);
                    break;
                }
                Some(Ok(Message::Frame(_))) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    let _ = ws.close(None).await;
}

/// Reads `/api/stream` until `stop` fires, recording each SSE frame.
async fn sse_client(relay: &Relay, capture: Capture, symbols: &[&str], mut stop: watch::Receiver<bool>) {
    let url = format!("{}/api/stream?symbols={}", relay.http_url(), symbols.join(","));
    let response = reqwest::get(url).await.expect("sse request");
    assert_eq!(response.status(), 200, "/api/stream");
    let mut head = format!("HTTP {}\n", response.status().as_u16());
    for (k, v) in response.headers() {
        head.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    capture.add("sse", "headers", head);
    let mut body = response.bytes_stream();
    let mut buf = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            chunk = body.next() => match chunk {
                Some(Ok(chunk)) => {
                    buf.extend_from_slice(&chunk);
                    while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                        let frame: Vec<u8> = buf.drain(..end + 2).collect();
                        capture.add("sse", "frame", frame);
                    }
                }
                _ => break,
            },
        }
    }
    if !buf.is_empty() {
        capture.add("sse", "partial frame", buf);
    }
}

fn subscribe(symbols: &[&str]) -> String {
    json!({"type": "subscribe", "symbols": symbols}).to_string()
}

/// What each WebSocket client does: one holds the good symbols, one everything that is refused or malformed.
fn client_scripts() -> Vec<(&'static str, Vec<String>)> {
    let too_many: Vec<String> = (0..101).map(|i| format!("sim:S{i}")).collect();
    let good = vec![subscribe(ACCEPTED), json!({"type": "ping", "id": 1}).to_string()];
    let mut bad: Vec<String> = REJECTED.iter().map(|s| subscribe(&[s])).collect();
    bad.extend([
        subscribe(&["twelvedata:AAPL", "uw:FLOW-ALERTS", "finnhub:AAPL"]),
        "not json".to_owned(),
        json!({"type": "nope"}).to_string(),
        json!({"type": "subscribe"}).to_string(),
        json!({"type": "subscribe", "symbols": too_many}).to_string(),
        json!({"type": "unsubscribe", "symbols": ["twelvedata:AAPL", "nosuch:X"]}).to_string(),
        "BINARY:binary frame".to_owned(),
        subscribe(&["twelvedata:AAPL", "alpaca:MSFT", "binance:BTC/USDT"]),
    ]);
    vec![("good", good), ("bad", bad)]
}

/// Drives one relay: WebSocket and SSE clients listen throughout while `chaos` works the mocks (and sweeps HTTP
/// as it sees fit); a late client then connects to receive the current statuses in its greeting.
async fn exercise(relay: &Relay, capture: &Capture, chaos: impl std::future::Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let clients: Vec<_> = client_scripts()
        .into_iter()
        .map(|(name, script)| ws_client(relay, capture.clone(), name, script, stop_rx.clone()))
        .collect();
    let sse = sse_client(relay, capture.clone(), ACCEPTED, stop_rx.clone());
    let driver = async {
        chaos.await;
        // Late subscribers see every provider's current state and reason right after `hello`.
        let (late_tx, late_rx) = watch::channel(false);
        let late = ws_client(relay, capture.clone(), "late", vec![subscribe(ACCEPTED), subscribe(REJECTED)], late_rx);
        let wait = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = late_tx.send(true);
        };
        tokio::join!(late, wait);
        let _ = stop_tx.send(true);
    };
    tokio::join!(futures::future::join_all(clients), sse, driver);
}

/// Stops the relay with SIGTERM, waits for it to exit and for its output to drain, and captures every line.
async fn stop_and_capture_logs(mut relay: Relay, capture: &Capture) {
    relay.signal(libc::SIGTERM);
    assert!(relay.wait_exit(WAIT).is_some(), "relay did not exit after SIGTERM");
    let mut last = usize::MAX;
    for _ in 0..50 {
        let n = relay.logs().len() + relay.stdout().len();
        if n == last {
            break;
        }
        last = n;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in relay.logs() {
        capture.add("logs", "stderr", line);
    }
    for line in relay.stdout() {
        capture.add("logs", "stdout", line);
    }
}

async fn wait_status(relay: &Relay, what: &str, pred: impl Fn(&StatusResponse) -> bool) {
    relay.wait_status(what, pred).await;
}

fn state_of(status: &StatusResponse, provider: &str) -> Option<ProviderState> {
    status.providers.iter().find(|p| p.name == provider).map(|p| p.state)
}

/// The common relay command line for a run.
fn relay_args<'a>(urls: &'a [(&'static str, String)], dist: &'a str, log_format: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "--providers",
        PROVIDERS,
        "--static-dir",
        dist,
        "--log-format",
        log_format,
        "--upstream-backoff-min-ms",
        "50",
        "--upstream-backoff-max-ms",
        "300",
        "--upstream-down-retry-ms",
        "700",
        "--twelvedata-rest-credits-per-min",
        "600",
        "--heartbeat-ms",
        "1000",
    ];
    for (flag, url) in urls {
        args.extend([*flag, url.as_str()]);
    }
    args
}

/// Scans the capture, prints the volumes, and checks each channel carried enough to mean something.
fn scan_and_check(run: &str, canaries: &Canaries, capture: &Capture, dist_files: usize, dist_bytes: usize) -> Scanner {
    let mut scanner = Scanner::new(canaries);
    capture.scan_into(&mut scanner);
    scanner.report(run);
    let at_least = |channel: &str, items: usize, bytes: usize| {
        let v = scanner.volume(channel);
        assert!(
            v.items >= items && v.bytes >= bytes,
            "[{run}] channel {channel} carried too little to mean anything: {v:?} (want ≥ {items} items, ≥ {bytes} bytes)"
        );
    };
    at_least("http", 40, 10_000);
    at_least("static", dist_files + 6, dist_bytes);
    at_least("ws", 60, 10_000);
    at_least("sse", 10, 2_000);
    at_least("logs", 200, 20_000);
    // What the clients were told must include the error paths, not only prices.
    let ws = capture.items("ws");
    let has = |needle: &str| ws.iter().any(|(_, d)| String::from_utf8_lossy(d).contains(needle));
    assert!(has(r#""type":"error""#), "[{run}] no error message reached a client");
    assert!(has(r#""rejected":[{"#), "[{run}] no rejection reached a client");
    assert!(has(r#""detail":""#), "[{run}] no status with a detail reached a client");
    // RUST_LOG=trace took effect.
    let logs = capture.items("logs");
    assert!(
        logs.iter().any(|(_, l)| String::from_utf8_lossy(l).contains("TRACE")),
        "[{run}] no TRACE line: RUST_LOG=trace did not reach the relay"
    );
    scanner
}

fn dist_volume(dist: &Path) -> (usize, usize) {
    let mut files = Vec::new();
    walk(dist, &mut files);
    let bytes = files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len() as usize)).sum();
    (files.len(), bytes)
}

/// Waits until `pred` holds for a mock, failing with `what`.
async fn until(what: &str, pred: impl Fn() -> bool) {
    hamster_tests::eventually_within(what, Duration::from_secs(20), pred).await;
}

fn key_in_paths(paths: &[String], param: &str, key: &str) -> bool {
    paths.iter().any(|p| query_param(p, param).as_deref() == Some(key))
}

// ---------------------------------------------------------------------------------------------------------------
// The runs

#[test]
fn the_scanner_finds_planted_canaries_in_every_form() {
    let canaries = Canaries::new();
    let run = "self-check";
    let mut clean = Scanner::new(&canaries);
    clean.scan("sample", "noise", b"AAPL 189.30 {\"type\":\"quotes\"} apikey=[redacted] token=%5Bredacted%5D");
    assert!(clean.hits.is_empty(), "false positives: {:?}", clean.hits);

    for (var, value) in &canaries.0 {
        // Each form the scanner knows, planted in noise, upper- and lower-cased.
        for (form, text) in forms(value) {
            for planted in [text.clone(), text.to_ascii_uppercase(), text.to_ascii_lowercase()] {
                let mut s = Scanner::new(&canaries);
                s.scan("sample", &form, format!("noise «{planted}» noise").as_bytes());
                assert!(s.hits.iter().any(|h| h.var == *var), "{var} as {form} ({planted}) was missed");
            }
        }
        // The encodings real code produces: a URL query, a JSON string, base64 inside a larger blob at every offset.
        let mut url = url::Url::parse("wss://example.test/socket").unwrap();
        url.query_pairs_mut().append_pair("token", value);
        let samples = [
            url.to_string(),
            json!({"action": "auth", "key": value}).to_string(),
            format!("{:?}", url),
            base64(format!("a{value}bc").as_bytes()),
            base64(format!("ab{value}c").as_bytes()),
            base64(format!("abc{value}").as_bytes()),
            base64(value.as_bytes()).replace('+', "-").replace('/', "_"),
            value.bytes().map(|b| format!("{b:02X}")).collect(),
        ];
        for sample in samples {
            let mut s = Scanner::new(&canaries);
            s.scan("sample", "encoded", sample.as_bytes());
            assert!(s.hits.iter().any(|h| h.var == *var), "{var} missed in {sample}");
        }
        // Binary surroundings (a wasm file) do not hide it.
        let mut blob = vec![0xffu8, 0x00, 0xc3];
        blob.extend_from_slice(value.as_bytes());
        blob.extend_from_slice(&[0xe2, 0x82]);
        let mut s = Scanner::new(&canaries);
        s.scan("sample", "binary", &blob);
        assert!(s.hits.iter().any(|h| h.var == *var), "{var} missed in binary");
    }
    // Canaries are distinct, random per run, and the report names channel and context.
    let again = Canaries::new();
    for (var, value) in &canaries.0 {
        assert_ne!(value, again.get(var), "canaries must differ between runs");
        assert_eq!(canaries.0.iter().filter(|(_, v)| v == value).count(), 1);
    }
    let mut s = Scanner::new(&canaries);
    s.scan("logs", "stderr", format!("GET /v1?apikey={}", canaries.get("UW_API_TOKEN")).as_bytes());
    let hit = &s.hits[0];
    assert_eq!(
        (hit.var, hit.form.as_str(), hit.channel, hit.label.as_str()),
        ("UW_API_TOKEN", "raw", "logs", "stderr")
    );
    assert!(hit.context.contains("GET /v1?apikey="), "{}", hit.context);
    let report = s.leak_report(run).expect("a hit is reported");
    assert!(report.contains("1 canary hit(s)") && report.contains("UW_API_TOKEN (raw) in logs / stderr"), "{report}");
    s.report(run);
}

/// The relay's own list of keyed providers and their variables matches [`PROVIDER_KEY_VARS`], so a new keyed
/// provider cannot go unscanned: with no keys at all, each keyed provider says which variables to set.
#[tokio::test]
async fn every_key_variable_the_relay_reads_has_a_canary() {
    let _serial = SERIAL.lock().await;
    let relay = Relay::start_with_env(0, &["--providers", PROVIDERS], &[]);
    let status = relay
        .wait_status("every keyed provider reported", |s| {
            s.providers.iter().filter(|p| p.detail.as_deref().is_some_and(|d| d.contains("set "))).count() >= 4
        })
        .await;
    let mut named: Vec<String> = status
        .providers
        .iter()
        .filter_map(|p| p.detail.as_deref())
        .filter_map(|d| d.split_once("set ").map(|(_, vars)| vars.to_owned()))
        .flat_map(|vars| vars.split(" and ").map(|v| v.trim().to_owned()).collect::<Vec<_>>())
        .collect();
    named.sort();
    let mut ours: Vec<String> = PROVIDER_KEY_VARS.iter().map(|v| v.to_string()).collect();
    ours.sort();
    assert_eq!(named, ours, "key variables the relay asks for vs. those the canary test plants");
}

#[tokio::test]
async fn keys_never_leave_the_relay_when_upstreams_accept_them() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let run = "accepting";
    let dist = dist_dir();
    let (dist_files, dist_bytes) = dist_volume(&dist);
    let canaries = Canaries::new();
    let (td_key, fh_key, uw_key) =
        (canaries.get("TWELVE_DATA_API_KEY"), canaries.get("FINNHUB_API_KEY"), canaries.get("UW_API_TOKEN"));

    let td = TwelveDataMock::start().await;
    td.refuse("NOPE");
    let bn = BinanceMock::start().await;
    bn.refuse("nopeusdt@ticker");
    let ap = AlpacaMock::start(canaries.get("APCA_API_KEY_ID"), canaries.get("APCA_API_SECRET_KEY")).await;
    let fh = FinnhubMock::start(fh_key).await;
    let uw = UnusualWhalesMock::start(uw_key).await;
    uw.refuse("gex:SPY");

    let urls = [
        ("--twelvedata-ws-url", td.ws_url()),
        ("--twelvedata-rest-url", td.rest_url.clone()),
        ("--binance-ws-url", bn.ws_url()),
        ("--binance-rest-url", NO_REST.to_owned()),
        ("--alpaca-assets-url", NO_REST.to_owned()),
        ("--alpaca-data-url", NO_REST.to_owned()),
        ("--finnhub-rest-url", NO_REST.to_owned()),
        ("--alpaca-ws-url", ap.ws_url()),
        ("--finnhub-ws-url", fh.ws_url()),
        ("--uw-ws-url", uw.ws_url()),
    ];
    let dist_arg = dist.to_string_lossy().into_owned();
    let args = relay_args(&urls, &dist_arg, "human");
    let mut env = canaries.env();
    env.push(("RUST_LOG", TRACE_HANDSHAKES));
    let relay = Relay::start_with_env(0, &args, &env);
    let capture = Capture::default();

    let chaos = async {
        wait_status(&relay, "every provider live", |s| {
            s.providers.len() == 6 && s.providers.iter().all(|p| p.state == ProviderState::Live)
        })
        .await;
        // Let quotes and events flow to the clients for a while.
        tokio::time::sleep(Duration::from_secs(2)).await;
        sweep_http(&relay, &capture).await;
        sweep_static(&relay, &capture, &dist).await;

        // Twelve Data's stream fails (500 at the upgrade), so its REST fallback polls `/price?apikey=`.
        td.ws.refuse_with(500);
        td.ws.cut_all();
        let polled = td.state.rest_requests.load(Ordering::SeqCst);
        until("the Twelve Data REST fallback to poll", || td.state.rest_requests.load(Ordering::SeqCst) > polled + 1)
            .await;
        td.state.rest_out_of_credits.store(true, Ordering::SeqCst);
        let polled = td.state.rest_requests.load(Ordering::SeqCst);
        until("an out-of-credits REST answer", || td.state.rest_requests.load(Ordering::SeqCst) > polled).await;
        sweep_http(&relay, &capture).await;
        td.state.rest_out_of_credits.store(false, Ordering::SeqCst);
        td.ws.refuse_with(0);

        // Alpaca refuses the next session (406) after a cut; the others are cut or told the server shuts down.
        ap.state.refuse_sessions.store(1, Ordering::SeqCst);
        ap.ws.cut_all();
        fh.ws.cut_all();
        uw.ws.cut_all();
        bn.server_shutdown();
        until("Alpaca's 406 to be spent", || ap.state.refuse_sessions.load(Ordering::SeqCst) == 0).await;
        wait_status(&relay, "every provider live again", |s| {
            s.providers.iter().all(|p| p.state == ProviderState::Live)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        sweep_http(&relay, &capture).await;
    };
    exercise(&relay, &capture, chaos).await;

    // The keys were really used: every keyed mock received its canary.
    let td_paths = td.ws.upgrade_paths();
    assert!(key_in_paths(&td_paths, "apikey", td_key), "Twelve Data stream never got the canary: {td_paths:?}");
    assert_eq!(*td.state.rest_last_key.lock().unwrap(), td_key, "the REST fallback sent the canary");
    assert!(ap.state.auths_ok.load(Ordering::SeqCst) >= 2, "Alpaca authenticated with the canaries (twice)");
    assert!(key_in_paths(&fh.ws.upgrade_paths(), "token", fh_key) && fh.ws.accepted() >= 2, "Finnhub canary");
    assert!(uw.state.tokens_seen.lock().unwrap().iter().filter(|t| *t == uw_key).count() >= 2, "UW canary");
    // And the data they unlocked reached the clients.
    let ws: String = capture.items("ws").iter().map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect();
    for provider in ["twelvedata", "binance", "alpaca", "finnhub", "uw", "sim"] {
        assert!(ws.contains(&format!(r#""provider":"{provider}""#)), "no quote from {provider} reached a client");
    }
    assert!(ws.contains(r#""channel":"uw:FLOW-ALERTS""#), "no UW event reached a client");

    stop_and_capture_logs(relay, &capture).await;
    let logs = capture.items("logs");
    assert!(logs.iter().all(|(_, l)| !l.starts_with(b"{")), "human log format");
    let scanner = scan_and_check(run, &canaries, &capture, dist_files, dist_bytes);
    println!("[{run}] done in {:?}", started.elapsed());
    scanner.assert_clean(run);
}

#[tokio::test]
async fn keys_never_leave_the_relay_when_upstreams_refuse_them() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let run = "refusing";
    let dist = dist_dir();
    let (dist_files, dist_bytes) = dist_volume(&dist);
    let canaries = Canaries::new();
    let (td_key, fh_key, uw_key) =
        (canaries.get("TWELVE_DATA_API_KEY"), canaries.get("FINNHUB_API_KEY"), canaries.get("UW_API_TOKEN"));

    // Every keyed mock refuses the canaries: HTTP 401 at the upgrade, or Alpaca's 402 and a close.
    let td = TwelveDataMock::start().await;
    td.ws.refuse_with(401);
    td.state.rest_bad_key.store(true, Ordering::SeqCst);
    let bn = BinanceMock::start().await;
    let ap = AlpacaMock::start("AK-SOMEONE-ELSE", "not-the-canary").await;
    let fh = FinnhubMock::start("not-the-canary").await;
    let uw = UnusualWhalesMock::start("not-the-canary").await;

    let urls = [
        ("--twelvedata-ws-url", td.ws_url()),
        ("--twelvedata-rest-url", td.rest_url.clone()),
        ("--binance-ws-url", bn.ws_url()),
        ("--binance-rest-url", NO_REST.to_owned()),
        ("--alpaca-assets-url", NO_REST.to_owned()),
        ("--alpaca-data-url", NO_REST.to_owned()),
        ("--finnhub-rest-url", NO_REST.to_owned()),
        ("--alpaca-ws-url", ap.ws_url()),
        ("--finnhub-ws-url", fh.ws_url()),
        ("--uw-ws-url", uw.ws_url()),
    ];
    let dist_arg = dist.to_string_lossy().into_owned();
    let args = relay_args(&urls, &dist_arg, "json");
    let mut env = canaries.env();
    env.push(("RUST_LOG", "trace"));
    let relay = Relay::start_with_env(0, &args, &env);
    let capture = Capture::default();

    let chaos = async {
        wait_status(&relay, "every keyed provider down", |s| {
            ["twelvedata", "alpaca", "finnhub", "uw"].iter().all(|p| state_of(s, p) == Some(ProviderState::Down))
        })
        .await;
        until("the Twelve Data REST fallback to be refused", || td.state.rest_requests.load(Ordering::SeqCst) > 0)
            .await;
        sweep_http(&relay, &capture).await;
        sweep_static(&relay, &capture, &dist).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // Then they fail differently: 500 at the upgrade (a reconnect, not `down`), and Binance too, after a cut.
        td.ws.refuse_with(500);
        fh.state.bad_token_status.store(500, Ordering::SeqCst);
        uw.state.bad_token_status.store(500, Ordering::SeqCst);
        ap.ws.refuse_with(500);
        bn.ws.refuse_with(500);
        bn.ws.cut_all();
        let attempts = (td.ws.attempts(), fh.attempts(), uw.attempts(), ap.ws.attempts());
        until("retries after 500s", || {
            td.ws.attempts() > attempts.0 + 1
                && fh.attempts() > attempts.1 + 1
                && uw.attempts() > attempts.2 + 1
                && ap.ws.attempts() > attempts.3 + 1
        })
        .await;
        sweep_http(&relay, &capture).await;

        // Twelve Data lets the stream in and drops it; the rest answer 403; Alpaca closes after its 402 again.
        td.ws.refuse_with(0);
        until("a Twelve Data connection", || td.ws.accepted() > 0).await;
        td.ws.cut_all();
        td.ws.refuse_with(403);
        fh.state.bad_token_status.store(403, Ordering::SeqCst);
        uw.state.bad_token_status.store(403, Ordering::SeqCst);
        ap.ws.refuse_with(0);
        bn.ws.refuse_with(0);
        let attempts = (td.ws.attempts(), fh.attempts(), uw.attempts(), ap.state.auths.load(Ordering::SeqCst));
        until("retries after 403s", || {
            td.ws.attempts() > attempts.0
                && fh.attempts() > attempts.1
                && uw.attempts() > attempts.2
                && ap.state.auths.load(Ordering::SeqCst) > attempts.3
        })
        .await;
        wait_status(&relay, "keyed providers down again", |s| {
            ["twelvedata", "alpaca", "finnhub", "uw"].iter().all(|p| state_of(s, p) == Some(ProviderState::Down))
        })
        .await;
        sweep_http(&relay, &capture).await;
    };
    exercise(&relay, &capture, chaos).await;

    // The canaries were really offered (and refused).
    assert!(key_in_paths(&td.ws.upgrade_paths(), "apikey", td_key), "Twelve Data stream never got the canary");
    assert_eq!(*td.state.rest_last_key.lock().unwrap(), td_key, "the REST fallback sent the canary");
    let auths: Vec<Value> = ap.frames().into_iter().filter(|f| f["action"] == "auth").collect();
    assert!(
        auths.len() >= 2
            && auths
                .iter()
                .all(|a| a["key"] == canaries.get("APCA_API_KEY_ID")
                    && a["secret"] == canaries.get("APCA_API_SECRET_KEY")),
        "Alpaca was offered the canaries: {auths:?}"
    );
    assert_eq!(ap.state.auths_ok.load(Ordering::SeqCst), 0);
    assert!(key_in_paths(&fh.ws.upgrade_paths(), "token", fh_key), "Finnhub canary");
    assert!(key_in_paths(&uw.ws.upgrade_paths(), "token", uw_key), "UW canary");
    assert!(uw.state.refused_tokens.load(Ordering::SeqCst) >= 3, "UW refused the canary repeatedly");

    stop_and_capture_logs(relay, &capture).await;
    let logs = capture.items("logs");
    let json_lines = logs.iter().filter(|(_, l)| serde_json::from_slice::<Value>(l).is_ok()).count();
    assert!(json_lines * 10 >= logs.len() * 9, "json log format: {json_lines} of {} lines are JSON", logs.len());
    let text: String = logs.iter().map(|(_, l)| String::from_utf8_lossy(l).into_owned() + "\n").collect();
    for path in ["upstream refused us", "upstream connection lost", "REST fallback poll failed"] {
        assert!(text.contains(path), "[{run}] the {path:?} path did not run");
    }
    let scanner = scan_and_check(run, &canaries, &capture, dist_files, dist_bytes);
    println!("[{run}] done in {:?}", started.elapsed());
    scanner.assert_clean(run);
}

/// The key the relay sent in an upgrade path, or the Alpaca `auth` frame, as a hostile upstream would read it.
fn sent_key(path: &str) -> String {
    query_param(path, "apikey").or_else(|| query_param(path, "token")).unwrap_or_default()
}

/// An upstream that accepts any upgrade and then echoes the key it was sent back in everything: Twelve Data-,
/// Finnhub- and Unusual Whales-shaped frames alike (each adapter ignores the others' shapes), then a close whose
/// reason carries the key.
async fn echo_mock(kind: &'static str) -> MockServer {
    MockServer::start(move |mut conn| async move {
        let mut key = sent_key(&conn.path);
        if kind == "alpaca" {
            conn.send(r#"[{"T":"success","msg":"connected"}]"#).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        loop {
            let Ok(incoming) = tokio::time::timeout_at(deadline, conn.recv()).await else { break };
            let text = match incoming {
                Incoming::Text(text) => text,
                _ => return,
            };
            let msg: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let replies: Vec<Value> = match kind {
                "twelvedata" => {
                    let symbols = msg["params"]["symbols"].as_str().unwrap_or("").to_owned();
                    vec![
                        json!({"event": "subscribe-status", "status": "error", "success": [],
                               "fails": symbols.split(',').map(|s| json!({"symbol": s,
                                   "message": format!("{s} is not available for apikey={key}")})).collect::<Vec<_>>()}),
                        json!({"event": "error", "message": format!("invalid api key {key}")}),
                    ]
                }
                "finnhub" => vec![json!({"type": "error", "msg": format!("Invalid token {key}")})],
                "uw" => {
                    let channel = msg["channel"].as_str().unwrap_or("price:SPY").to_owned();
                    vec![
                        json!([channel, {"response": {"reason": format!("token {key} not entitled")}, "status": "error"}]),
                        json!(["flow-alerts", {"id": "x", "note": format!("token={key}"), "executed_at": 1}]),
                    ]
                }
                "alpaca" => {
                    if msg["action"] == "auth" {
                        key = msg["key"].as_str().unwrap_or("").to_owned();
                        let secret = msg["secret"].as_str().unwrap_or("");
                        vec![json!([{"T": "error", "code": 402, "msg": format!("auth failed for {key}:{secret}")}])]
                    } else {
                        vec![json!([{"T": "error", "code": 400, "msg": format!("invalid syntax from {key}")}])]
                    }
                }
                _ => Vec::new(),
            };
            for reply in replies {
                if !conn.send(reply.to_string()).await {
                    return;
                }
            }
            if kind == "alpaca" && msg["action"] == "auth" {
                break;
            }
        }
        conn.close(4001, &format!("bad key {key}")).await;
    })
    .await
}

/// A Twelve Data REST `/price` that echoes the key in its error body.
async fn echo_rest() -> String {
    let app = axum::Router::new().route(
        "/price",
        axum::routing::get(|q: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
            let key = q.get("apikey").cloned().unwrap_or_default();
            axum::Json(json!({"code": 401, "status": "error", "message": format!("apikey {key} is incorrect")}))
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// Upstream text reaches clients (status details, rejections, event payloads) and logs; the relay redacts every
/// loaded secret from both, so an upstream that echoes the key leaks nothing.
#[tokio::test]
async fn keys_never_leave_the_relay_when_upstreams_echo_them_back() {
    echoing("echoing", "human").await;
}

/// The same with JSON logs, which escape what they quote: a key with `"`, `\\` or a control character in it is
/// logged escaped, and must be redacted in that form too.
#[tokio::test]
async fn keys_never_leave_json_logs_when_upstreams_echo_them_back() {
    echoing("echoing, json logs", "json").await;
}

async fn echoing(run: &str, log_format: &str) {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let dist = dist_dir();
    let (dist_files, dist_bytes) = dist_volume(&dist);
    let canaries = Canaries::new();

    let td = echo_mock("twelvedata").await;
    let td_rest = echo_rest().await;
    let bn = BinanceMock::start().await;
    let ap = echo_mock("alpaca").await;
    let fh = echo_mock("finnhub").await;
    let uw = echo_mock("uw").await;
    let urls = [
        ("--twelvedata-ws-url", td.ws_url("/v1/quotes/price")),
        ("--twelvedata-rest-url", td_rest),
        ("--binance-ws-url", bn.ws_url()),
        ("--binance-rest-url", NO_REST.to_owned()),
        ("--alpaca-assets-url", NO_REST.to_owned()),
        ("--alpaca-data-url", NO_REST.to_owned()),
        ("--finnhub-rest-url", NO_REST.to_owned()),
        ("--alpaca-ws-url", ap.ws_url("/v2/iex")),
        ("--finnhub-ws-url", fh.ws_url("")),
        ("--uw-ws-url", uw.ws_url("/socket")),
    ];
    let dist_arg = dist.to_string_lossy().into_owned();
    let args = relay_args(&urls, &dist_arg, log_format);
    let mut env = canaries.env();
    env.push(("RUST_LOG", "trace"));
    let relay = Relay::start_with_env(0, &args, &env);
    let capture = Capture::default();

    let chaos = async {
        until("each echoing upstream to have been connected twice", || {
            [&td, &ap, &fh, &uw].iter().all(|m| m.accepted() >= 2)
        })
        .await;
        sweep_http(&relay, &capture).await;
        sweep_static(&relay, &capture, &dist).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        sweep_http(&relay, &capture).await;
    };
    exercise(&relay, &capture, chaos).await;

    // The keys were really sent to, and echoed by, the hostile upstreams.
    assert!(key_in_paths(&td.upgrade_paths(), "apikey", canaries.get("TWELVE_DATA_API_KEY")));
    assert!(key_in_paths(&fh.upgrade_paths(), "token", canaries.get("FINNHUB_API_KEY")));
    assert!(key_in_paths(&uw.upgrade_paths(), "token", canaries.get("UW_API_TOKEN")));
    // Alpaca's key travels inside a JSON message, escaped.
    let ap_key = serde_json::to_string(canaries.get("APCA_API_KEY_ID")).unwrap();
    assert!(ap.received().iter().any(|f| f.contains(ap_key.trim_matches('"'))), "Alpaca got the key");

    stop_and_capture_logs(relay, &capture).await;
    let scanner = scan_and_check(run, &canaries, &capture, dist_files, dist_bytes);
    println!("[{run}] done in {:?}", started.elapsed());
    scanner.assert_clean(run);
}
