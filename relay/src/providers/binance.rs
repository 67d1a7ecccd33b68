//! Binance spot: crypto prices from the public market streams at `wss://stream.binance.com:9443/ws`. No key.
//!
//! This module owns only the wire protocol (see `shared/reference/upstream-protocols.md` §2); reconnecting,
//! resubscribing, pacing and the staleness watchdog are the shared driver's ([`connection`]). It connects to the
//! bare `/ws` endpoint and manages streams live: `{"method":"SUBSCRIBE","params":["btcusdt@ticker"],"id":1}`
//! answered by `{"result":null,"id":1}`, `UNSUBSCRIBE` alike, errors as `{"error":{"code":2,"msg":…},"id":1}`
//! (the flat `{"code":…,"msg":…}` form from the docs table is accepted too). Prices come from `<symbol>@ticker`
//! (or `@miniTicker`, `--binance-stream`) with string prices and an event time `E` in ms. The server pings every
//! 20 s and wants the payload echoed; tungstenite does that inside the driver's read loop.
//!
//! Limits the adapter keeps: 5 client messages per second, pings and pongs included, so control frames are
//! paced (300 ms by default, leaving room for a pong) and one SUBSCRIBE carries many streams; 1024 streams per
//! connection, the excess rejected per symbol; a 24 h connection life, so the adapter reconnects on its own
//! before that (`--binance-max-connection-age-secs`) and at once on a `serverShutdown` event.
//!
//! Symbols: `BTC/USD` ↔ `btcusdt` (a `USD` quote means Binance's `USDT`, `--binance-usd-quote`), `BTC/USDT` and
//! `ETH/BTC` as spelled, a bare `BTCUSDT` as Binance's own symbol. Several instruments can share one stream
//! (`BTC/USD` and `BTC/USDT`); the stream is subscribed once and each gets the quotes.
//!
//! UNVERIFIED upstream behaviour, made configurable: how many streams one SUBSCRIBE may carry
//! (`--binance-max-streams-per-request`, default 200); how the 5 msg/s window is counted (pacing,
//! `--binance-min-send-interval-ms`); what a SUBSCRIBE for a well-formed stream of an unknown symbol gets
//! (probably an ack and silence: nothing to reject then, the symbol just never quotes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use hamster_shared::{ErrorCode, Quote, Symbol};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Link, Timing, Wire, WireEvent};
use super::{EventSink, Provider, ProviderCommand};
use crate::secret::Secret;

pub const NAME: &str = "binance";

/// Which per-symbol stream carries prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TickerStream {
    /// `<symbol>@ticker`: last price, 24 h change and change %, best bid/ask, volume.
    #[value(name = "ticker")]
    Ticker,
    /// `<symbol>@miniTicker`: last price, 24 h open (change computed from it), volume; no bid/ask.
    #[value(name = "miniTicker", alias = "mini-ticker", alias = "miniticker")]
    MiniTicker,
}

impl TickerStream {
    fn suffix(self) -> &'static str {
        match self {
            TickerStream::Ticker => "@ticker",
            TickerStream::MiniTicker => "@miniTicker",
        }
    }
}

/// Binance settings. Market streams need no key.
#[derive(Debug, Clone, clap::Args)]
pub struct BinanceArgs {
    /// Binance streaming endpoint (the bare `/ws` path; streams are subscribed live).
    #[arg(
        id = "binance_ws_url",
        long = "binance-ws-url",
        env = "BINANCE_WS_URL",
        default_value = "wss://stream.binance.com:9443/ws"
    )]
    pub ws_url: String,
    /// Stream per symbol: `ticker` (price, 24 h change, bid/ask, volume) or `miniTicker` (lighter, no bid/ask).
    #[arg(
        id = "binance_stream",
        long = "binance-stream",
        env = "BINANCE_STREAM",
        value_enum,
        default_value_t = TickerStream::Ticker
    )]
    pub stream: TickerStream,
    /// The Binance quote asset a `USD` quote maps to (`BTC/USD` → `BTCUSDT`).
    #[arg(id = "binance_usd_quote", long = "binance-usd-quote", env = "BINANCE_USD_QUOTE", default_value = "USDT")]
    pub usd_quote: String,
    /// Most streams on the one connection (Binance allows 1024); symbols beyond it are rejected.
    #[arg(
        id = "binance_max_streams",
        long = "binance-max-streams",
        env = "BINANCE_MAX_STREAMS",
        default_value_t = 1024
    )]
    pub max_streams: usize,
    /// Most streams named in one SUBSCRIBE/UNSUBSCRIBE (the upstream's own cap is undocumented).
    #[arg(
        id = "binance_max_streams_per_request",
        long = "binance-max-streams-per-request",
        env = "BINANCE_MAX_STREAMS_PER_REQUEST",
        default_value_t = 200
    )]
    pub max_streams_per_request: usize,
    /// Shortest gap between two control frames we send; Binance allows 5 messages/s, pongs included (0 = no
    /// pacing, only for tests).
    #[arg(
        id = "binance_min_send_interval_ms",
        long = "binance-min-send-interval-ms",
        env = "BINANCE_MIN_SEND_INTERVAL_MS",
        default_value_t = 300
    )]
    pub min_send_interval_ms: u64,
    /// Reconnect on our own after this long, before Binance cuts every connection at 24 h (0 = never).
    #[arg(
        id = "binance_max_connection_age_secs",
        long = "binance-max-connection-age-secs",
        env = "BINANCE_MAX_CONNECTION_AGE_SECS",
        default_value_t = 84_600
    )]
    pub max_connection_age_secs: u64,
}

/// Builds the provider. Binance market streams take no key, so `keys` is empty and ignored.
pub fn build(args: &BinanceArgs, _keys: Vec<Secret>, timing: Timing) -> Box<dyn Provider> {
    Box::new(Binance { wire: BnWire::new(args), timing })
}

/// The Binance provider: the shared driver running [`BnWire`].
struct Binance {
    wire: BnWire,
    timing: Timing,
}

impl Provider for Binance {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(
        self: Box<Self>,
        commands: mpsc::UnboundedReceiver<ProviderCommand>,
        events: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        // Nothing runs beside the stream (no REST fallback), so nobody watches the link.
        let (link, _) = watch::channel(Link::default());
        connection::run(self.wire, commands, events, stop, self.timing, link).boxed()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Subscribe,
    Unsubscribe,
    ListSubscriptions,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Subscribe => "SUBSCRIBE",
            Method::Unsubscribe => "UNSUBSCRIBE",
            Method::ListSubscriptions => "LIST_SUBSCRIPTIONS",
        }
    }
}

/// A control request sent on this connection and not answered yet.
#[derive(Debug)]
struct Pending {
    method: Method,
    /// Binance symbols (`btcusdt`) the request named.
    symbols: Vec<String>,
}

/// Control requests remembered at most; a server that never answers must not grow this without bound.
const MAX_PENDING: usize = 4096;

/// Binance's wire protocol, plus what this connection has subscribed.
struct BnWire {
    ws_url: String,
    stream: TickerStream,
    usd_quote: String,
    max_streams: usize,
    per_request: usize,
    pace: Option<Duration>,
    max_age: Option<Duration>,
    /// Binance symbol (`btcusdt`) → instruments it feeds (`BTC/USD`, `BTC/USDT`). One entry per stream.
    symbols: BTreeMap<String, BTreeSet<String>>,
    /// Instrument → its Binance symbol, for unsubscribing.
    by_instrument: HashMap<String, String>,
    pending: BTreeMap<u64, Pending>,
    next_id: u64,
    /// Rejections decided while building frames. The driver only takes events from incoming frames, so they
    /// go out with the next one (every request we send is answered, so one comes promptly).
    deferred: Vec<WireEvent>,
}

impl BnWire {
    fn new(args: &BinanceArgs) -> BnWire {
        BnWire {
            ws_url: args.ws_url.clone(),
            stream: args.stream,
            usd_quote: args.usd_quote.trim().to_ascii_lowercase(),
            max_streams: args.max_streams.max(1),
            per_request: args.max_streams_per_request.max(1),
            pace: (args.min_send_interval_ms > 0).then(|| Duration::from_millis(args.min_send_interval_ms)),
            max_age: (args.max_connection_age_secs > 0).then(|| Duration::from_secs(args.max_connection_age_secs)),
            symbols: BTreeMap::new(),
            by_instrument: HashMap::new(),
            pending: BTreeMap::new(),
            next_id: 1,
            deferred: Vec::new(),
        }
    }

    /// Frames for `method` on `symbols`, at most `per_request` streams each, remembered by id.
    fn control_frames(&mut self, method: Method, symbols: Vec<String>) -> Vec<String> {
        symbols
            .chunks(self.per_request)
            .map(|chunk| {
                let params: Vec<String> = chunk.iter().map(|s| format!("{s}{}", self.stream.suffix())).collect();
                self.control_frame(method, Some(&params), chunk.to_vec())
            })
            .collect()
    }

    fn control_frame(&mut self, method: Method, params: Option<&[String]>, symbols: Vec<String>) -> String {
        let id = self.next_id;
        self.next_id += 1;
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_first();
        }
        self.pending.insert(id, Pending { method, symbols });
        encode(method, params, id)
    }

    /// Quotes for a ticker payload, one per instrument its symbol feeds (none for a stream we left).
    fn quotes(&self, payload: &Value) -> Vec<WireEvent> {
        let Some(symbol) = payload.get("s").and_then(Value::as_str) else {
            return vec![WireEvent::Info("ticker without a symbol".into())];
        };
        let Some(instruments) = self.symbols.get(&symbol.to_ascii_lowercase()) else { return Vec::new() };
        let mut fed = instruments.iter().filter_map(|i| Symbol::parse(i).ok());
        let Some(first) = fed.next() else { return Vec::new() };
        let Some(quote) = normalise(payload, first) else {
            return vec![WireEvent::Info(format!("unusable ticker for {symbol:?}"))];
        };
        let others: Vec<Quote> = fed.map(|symbol| Quote { symbol, ..quote.clone() }).collect();
        let mut quotes = Vec::with_capacity(1 + others.len());
        quotes.push(quote);
        quotes.extend(others);
        vec![WireEvent::Quotes(quotes)]
    }

    /// An error reply: if it answers one of our SUBSCRIBEs, its instruments are refused.
    fn error(&mut self, code: Option<i64>, msg: &str, id: Option<u64>) -> Vec<WireEvent> {
        let code = code.map_or_else(|| "?".to_owned(), |c| c.to_string());
        match id.and_then(|id| self.pending.remove(&id)) {
            Some(Pending { method: Method::Subscribe, symbols }) => {
                let mut out = Vec::new();
                for symbol in symbols {
                    for instrument in self.symbols.remove(&symbol).unwrap_or_default() {
                        self.by_instrument.remove(&instrument);
                        out.push(WireEvent::Rejected {
                            instrument,
                            code: ErrorCode::ProviderRejected,
                            message: format!("Binance refused {symbol}{}: {msg}", self.stream.suffix()),
                        });
                    }
                }
                out
            }
            Some(Pending { method, .. }) => {
                vec![WireEvent::Info(format!("{} failed ({code}): {msg}", method.as_str()))]
            }
            None => {
                // Not an answer to a request we track: a frame of ours was malformed, which is a bug worth seeing.
                tracing::warn!(provider = NAME, %code, %msg, "Binance reported an error");
                vec![WireEvent::Info(format!("error {code}: {msg}"))]
            }
        }
    }

    /// One JSON value from the wire: an ack, an error, an event, a combined-stream wrapper or an array of events.
    fn interpret(&mut self, v: &Value, out: &mut Vec<WireEvent>) {
        match v {
            Value::Array(items) => {
                for item in items {
                    if item.is_object() {
                        self.interpret(item, out);
                    }
                }
            }
            Value::Object(map) => {
                if let (Some(data), Some(_)) = (map.get("data"), map.get("stream")) {
                    return self.interpret(data, out);
                }
                let id = map.get("id").and_then(Value::as_u64);
                if let Some(error) = map.get("error") {
                    let code = error.get("code").and_then(Value::as_i64);
                    let msg = error.get("msg").and_then(Value::as_str).unwrap_or("");
                    return out.extend(self.error(code, msg, id));
                }
                if let (Some(msg), Some(code)) = (map.get("msg").and_then(Value::as_str), map.get("code")) {
                    return out.extend(self.error(code.as_i64(), msg, id));
                }
                if let Some(result) = map.get("result") {
                    let method =
                        id.and_then(|id| self.pending.remove(&id)).map_or("unknown request", |p| p.method.as_str());
                    return out.push(WireEvent::Info(format!("{method} ok: {result}")));
                }
                match map.get("e").and_then(Value::as_str) {
                    Some("24hrTicker" | "24hrMiniTicker") => out.extend(self.quotes(v)),
                    Some("serverShutdown") => {
                        out.push(WireEvent::Reconnect { reason: "Binance announced serverShutdown".into() })
                    }
                    Some(other) => out.push(WireEvent::Info(format!("event {other:?} ignored"))),
                    None => out.push(WireEvent::Info("unrecognised frame".into())),
                }
            }
            _ => out.push(WireEvent::Info("unrecognised frame".into())),
        }
    }
}

impl Wire for BnWire {
    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self) -> Result<Request, String> {
        connection::request(&self.ws_url, &[]).map_err(|_| "invalid --binance-ws-url".to_owned())
    }

    fn on_open(&mut self) -> Vec<String> {
        // A new connection has no streams: the driver resubscribes the whole desired set right after this.
        self.symbols.clear();
        self.by_instrument.clear();
        self.pending.clear();
        self.deferred.clear();
        Vec::new()
    }

    fn subscribe(&mut self, instruments: &[String]) -> Vec<String> {
        let mut fresh = Vec::new();
        let refused_before = self.deferred.len();
        for instrument in instruments {
            if self.by_instrument.contains_key(instrument) {
                continue;
            }
            let Some(symbol) = wire_symbol(instrument, &self.usd_quote) else {
                self.deferred.push(WireEvent::Rejected {
                    instrument: instrument.clone(),
                    code: ErrorCode::ProviderRejected,
                    message: "not a Binance spot pair: use BASE/QUOTE such as BTC/USDT or ETH/BTC".into(),
                });
                continue;
            };
            if let Some(fed) = self.symbols.get_mut(&symbol) {
                // Another spelling of a stream we already have (BTC/USD beside BTC/USDT): no new stream.
                fed.insert(instrument.clone());
            } else if self.symbols.len() >= self.max_streams {
                self.deferred.push(WireEvent::Rejected {
                    instrument: instrument.clone(),
                    code: ErrorCode::ProviderRejected,
                    message: format!("Binance allows {} streams per connection and all are in use", self.max_streams),
                });
                continue;
            } else {
                self.symbols.insert(symbol.clone(), BTreeSet::from([instrument.clone()]));
                fresh.push(symbol.clone());
            }
            self.by_instrument.insert(instrument.clone(), symbol);
        }
        let mut frames = self.control_frames(Method::Subscribe, fresh);
        if frames.is_empty() && self.deferred.len() > refused_before {
            // Nothing to subscribe, only refusals to report: ask for something cheap so a reply carries them.
            frames.push(self.control_frame(Method::ListSubscriptions, None, Vec::new()));
        }
        frames
    }

    fn unsubscribe(&mut self, instruments: &[String]) -> Vec<String> {
        let mut gone = Vec::new();
        for instrument in instruments {
            let Some(symbol) = self.by_instrument.remove(instrument) else { continue };
            if let Some(fed) = self.symbols.get_mut(&symbol) {
                fed.remove(instrument);
                if fed.is_empty() {
                    self.symbols.remove(&symbol);
                    gone.push(symbol);
                }
            }
        }
        self.control_frames(Method::Unsubscribe, gone)
    }

    fn on_text(&mut self, text: &str) -> Vec<WireEvent> {
        let mut out = std::mem::take(&mut self.deferred);
        match serde_json::from_str::<Value>(text) {
            Ok(v) => self.interpret(&v, &mut out),
            Err(e) => out.push(WireEvent::Info(format!("unparsed frame ({e})"))),
        }
        out
    }

    fn min_send_interval(&self) -> Option<Duration> {
        self.pace
    }

    fn max_connection_age(&self) -> Option<Duration> {
        self.max_age
    }

    fn is_auth_failure(&self, _status: u16) -> bool {
        // No credentials are involved: any refused upgrade (403 from a WAF, 429/418 rate bans) is retried with
        // the normal backoff.
        false
    }
}

/// `{"method":"SUBSCRIBE","params":[…],"id":1}`, fields in the documented order.
fn encode(method: Method, params: Option<&[String]>, id: u64) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a [String]>,
        id: u64,
    }
    // Serialising strings and integers cannot fail; the fallback is still a valid (harmless) request.
    serde_json::to_string(&Frame { method: method.as_str(), params, id })
        .unwrap_or_else(|_| format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#))
}

/// The Binance symbol (lower case, as stream names need) for a canonical instrument: `BTC/USD` → `btcusdt`
/// (`usd_quote` replaces a `USD` quote), `ETH/BTC` → `ethbtc`, `BTCUSDT` → `btcusdt`. `None` if it cannot be a
/// Binance spot symbol (anything but letters and digits around one `/`).
fn wire_symbol(instrument: &str, usd_quote: &str) -> Option<String> {
    let alnum = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    let symbol = match instrument.split_once('/') {
        Some((base, quote)) if alnum(base) && alnum(quote) => {
            let quote = if quote.eq_ignore_ascii_case("USD") && alnum(usd_quote) { usd_quote } else { quote };
            format!("{base}{quote}")
        }
        Some(_) => return None,
        None if alnum(instrument) && instrument.len() >= 2 => instrument.to_owned(),
        None => return None,
    };
    Some(symbol.to_ascii_lowercase())
}

/// A number Binance sends as a string (`"0.0015"`), or as a JSON number in case it ever does.
fn num(v: Option<&Value>) -> Option<f64> {
    let n = match v? {
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// Event time in ms. With `timeUnit=MICROSECOND` in the URL Binance sends µs; no ms timestamp reaches 10¹⁴
/// before the year 5138, so larger values are read as µs.
fn event_ms(v: Option<&Value>) -> Option<i64> {
    let t = v?.as_i64()?;
    Some(if t >= 100_000_000_000_000 { t / 1000 } else { t }).filter(|t| *t > 0)
}

/// A `24hrTicker` or `24hrMiniTicker` payload as a quote for `symbol`, or `None` without a usable last price and
/// event time. Only fields the payload carries are set; change and change % are Binance's own (`p`, `P`) or, for
/// the mini ticker, computed from its 24 h open `o`.
fn normalise(p: &Value, symbol: Symbol) -> Option<Quote> {
    let price = num(p.get("c"))?;
    let ts = event_ms(p.get("E"))?;
    let open = num(p.get("o")).filter(|o| *o > 0.0);
    // Computed values can overflow (a tiny positive open): none then, rather than an infinity sent as `null`.
    let change = num(p.get("p")).or_else(|| open.map(|o| price - o)).filter(|v| v.is_finite());
    let change_pct = num(p.get("P")).or_else(|| open.map(|o| (price - o) / o * 100.0)).filter(|v| v.is_finite());
    // An empty book side is sent as "0.00000000": no bid is not a bid of zero.
    let side = |key: &str| num(p.get(key)).filter(|v| *v > 0.0);
    Some(Quote {
        symbol,
        price,
        ts,
        provider: NAME.to_owned(),
        bid: side("b"),
        ask: side("a"),
        volume: num(p.get("v")),
        change,
        change_pct,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        binance: BinanceArgs,
    }

    fn args(extra: &[&str]) -> BinanceArgs {
        let mut argv = vec!["test", "--binance-ws-url", "ws://127.0.0.1:1/ws"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().binance
    }

    fn wire_with(extra: &[&str]) -> BnWire {
        let mut w = BnWire::new(&args(extra));
        w.on_open();
        w
    }

    fn wire() -> BnWire {
        wire_with(&[])
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The documented `@ticker` sample, compact as on the wire.
    const TICKER: &str = concat!(
        r#"{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","#,
        r#""c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025","#,
        r#""l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}"#
    );

    fn quotes(events: &[WireEvent]) -> Vec<Quote> {
        events
            .iter()
            .flat_map(|e| match e {
                WireEvent::Quotes(q) => q.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn defaults_are_the_documented_limits() {
        let a = args(&[]);
        assert_eq!((a.stream, a.max_streams, a.min_send_interval_ms), (TickerStream::Ticker, 1024, 300));
        assert_eq!(a.max_connection_age_secs, 84_600, "23.5 h");
        assert_eq!(a.usd_quote, "USDT");
        let a = args(&["--binance-stream", "miniTicker", "--binance-max-connection-age-secs", "0"]);
        assert_eq!(a.stream, TickerStream::MiniTicker);
        let w = BnWire::new(&a);
        assert_eq!(w.max_age, None, "0 turns the proactive reconnect off");
        assert_eq!(w.min_send_interval(), Some(Duration::from_millis(300)));
        assert!(!w.is_auth_failure(401) && !w.is_auth_failure(403), "no key, so no credentials to refuse");
    }

    #[test]
    fn maps_symbols() {
        let m = |s: &str| wire_symbol(s, "usdt");
        assert_eq!(m("BTC/USD").as_deref(), Some("btcusdt"));
        assert_eq!(m("BTC/USDT").as_deref(), Some("btcusdt"));
        assert_eq!(m("ETH/BTC").as_deref(), Some("ethbtc"));
        assert_eq!(m("BTCUSDT").as_deref(), Some("btcusdt"));
        assert_eq!(m("1000SATS/USD").as_deref(), Some("1000satsusdt"));
        assert_eq!(wire_symbol("BTC/USD", "usdc").as_deref(), Some("btcusdc"));
        for bad in ["BRK.B", "A/B/C", "/USD", "BTC/", "^GSPC", "X", "BTC-USD", "ÄÖ/USD"] {
            assert_eq!(m(bad), None, "{bad}");
        }
    }

    #[test]
    fn subscribes_in_batches_with_integer_ids() {
        let mut w = wire_with(&["--binance-max-streams-per-request", "2"]);
        let frames = w.subscribe(&strings(&["BTC/USD", "ETH/USDT", "SOL/USD"]));
        assert_eq!(
            frames,
            [
                r#"{"method":"SUBSCRIBE","params":["btcusdt@ticker","ethusdt@ticker"],"id":1}"#,
                r#"{"method":"SUBSCRIBE","params":["solusdt@ticker"],"id":2}"#,
            ]
        );
        assert!(w.subscribe(&strings(&["BTC/USD"])).is_empty(), "already subscribed");
        assert_eq!(
            w.unsubscribe(&strings(&["ETH/USDT", "NOT/HELD"])),
            [r#"{"method":"UNSUBSCRIBE","params":["ethusdt@ticker"],"id":3}"#]
        );
        assert!(matches!(w.on_text(r#"{"result":null,"id":1}"#)[0], WireEvent::Info(_)));
        assert!(!w.pending.contains_key(&1), "ack clears the request");

        let mut mini = wire_with(&["--binance-stream", "miniTicker"]);
        assert_eq!(
            mini.subscribe(&strings(&["BTC/USD"])),
            [r#"{"method":"SUBSCRIBE","params":["btcusdt@miniTicker"],"id":1}"#]
        );
    }

    #[test]
    fn two_spellings_share_one_stream() {
        let mut w = wire();
        assert_eq!(w.subscribe(&strings(&["BTC/USD"])).len(), 1);
        assert!(w.subscribe(&strings(&["BTC/USDT", "BTCUSDT"])).is_empty(), "same stream, no new SUBSCRIBE");
        let q = quotes(&w.on_text(&TICKER.replace("BNBBTC", "BTCUSDT")));
        let names: Vec<&str> = q.iter().map(|q| q.symbol.as_str()).collect();
        assert_eq!(names, ["BTC/USD", "BTC/USDT", "BTCUSDT"]);
        assert!(w.unsubscribe(&strings(&["BTC/USD", "BTCUSDT"])).is_empty(), "BTC/USDT still wants it");
        assert_eq!(w.unsubscribe(&strings(&["BTC/USDT"])).len(), 1, "the last one leaves upstream");
        assert!(quotes(&w.on_text(&TICKER.replace("BNBBTC", "BTCUSDT"))).is_empty(), "late ticks are dropped");
    }

    #[test]
    fn parses_the_documented_ticker() {
        let mut w = wire();
        w.subscribe(&strings(&["BNB/BTC"]));
        let q = quotes(&w.on_text(TICKER));
        assert_eq!(q.len(), 1);
        let q = &q[0];
        assert_eq!((q.symbol.as_str(), q.provider.as_str(), q.ts), ("BNB/BTC", "binance", 1_672_515_782_136));
        assert_eq!((q.price, q.bid, q.ask, q.volume), (0.0025, Some(0.0024), Some(0.0026), Some(10000.0)));
        assert_eq!((q.change, q.change_pct), (Some(0.0015), Some(250.0)), "Binance's own 24 h change");

        // Combined-stream wrapper, and µs timestamps.
        let wrapped =
            format!(r#"{{"stream":"bnbbtc@ticker","data":{}}}"#, TICKER.replace("1672515782136", "1672515782136123"));
        let q = quotes(&w.on_text(&wrapped));
        assert_eq!(q[0].ts, 1_672_515_782_136);
    }

    #[test]
    fn parses_the_documented_mini_ticker() {
        let mut w = wire_with(&["--binance-stream", "miniTicker"]);
        w.subscribe(&strings(&["BNB/BTC"]));
        let q = quotes(&w.on_text(
            r#"{"e": "24hrMiniTicker", "E": 1672515782136, "s": "BNBBTC", "c": "0.0025", "o": "0.0010", "h": "0.0025",
                "l": "0.0010", "v": "10000", "q": "18"}"#,
        ));
        let q = &q[0];
        assert_eq!((q.price, q.bid, q.ask, q.volume), (0.0025, None, None, Some(10000.0)), "no invented bid/ask");
        assert!((q.change.unwrap() - 0.0015).abs() < 1e-12);
        assert!((q.change_pct.unwrap() - 150.0).abs() < 1e-9, "from the 24 h open: {:?}", q.change_pct);
        // An array of payloads (the `!miniTicker@arr` shape) is read element by element.
        let arr = r#"[{"e":"24hrMiniTicker","E":1,"s":"BNBBTC","c":"2","o":"0","v":"1"}]"#;
        let q = quotes(&w.on_text(arr));
        assert_eq!((q[0].change, q[0].change_pct), (None, None), "no usable reference, no change");
    }

    #[test]
    fn an_overflowing_change_is_left_out() {
        // Found by fuzz_binance_sessions: a tiny positive 24 h open made change % infinite, which went out as
        // `"change_pct":null`.
        let mut w = wire_with(&["--binance-stream", "miniTicker"]);
        w.subscribe(&strings(&["BNB/BTC"]));
        let q = quotes(
            &w.on_text(r#"{"e":"24hrMiniTicker","E":1,"s":"BNBBTC","c":"2","o":1.6548792761017726e-308,"v":"1"}"#),
        );
        assert_eq!((q[0].price, q[0].change, q[0].change_pct), (2.0, Some(2.0), None));
        let q = quotes(&w.on_text(r#"{"e":"24hrMiniTicker","E":1,"s":"BNBBTC","c":"-1.7e308","o":"1.7e308"}"#));
        assert_eq!((q[0].change, q[0].change_pct), (None, None));
    }

    #[test]
    fn server_shutdown_means_reconnect() {
        for text in [
            r#"{"e": "serverShutdown", "E": 1770123456789}"#,
            r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#,
        ] {
            let events = wire().on_text(text);
            assert!(matches!(&events[..], [WireEvent::Reconnect { reason }] if reason.contains("serverShutdown")));
        }
    }

    #[test]
    fn error_replies_reject_the_instruments_they_answer() {
        let mut w = wire();
        w.subscribe(&strings(&["BTC/USD"]));
        w.subscribe(&strings(&["NOPE/USD", "NOPE/USDT"]));
        let events = w.on_text(r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}"#);
        let rejected: Vec<(&str, &str)> = events
            .iter()
            .filter_map(|e| match e {
                WireEvent::Rejected { instrument, code: ErrorCode::ProviderRejected, message } => {
                    Some((instrument.as_str(), message.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(rejected.len(), 2, "{events:?}");
        assert_eq!(rejected[0].0, "NOPE/USD");
        assert!(rejected[0].1.contains("invalid stream") && rejected[0].1.contains("nopeusdt@ticker"));
        assert!(w.unsubscribe(&strings(&["NOPE/USD"])).is_empty(), "forgotten, so nothing to unsubscribe");
        // Flat (docs table) and id-less forms are only logged; BTC/USD is untouched.
        for text in [
            r#"{"error":{"code":2,"msg":"Invalid request: missing field `method`"},"id":null}"#,
            r#"{"code": 2, "msg": "Invalid request: too many parameters"}"#,
            r#"{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}"#,
            r#"{"error":{"code":2,"msg":"x"},"id":99}"#,
        ] {
            assert!(matches!(&w.on_text(text)[..], [WireEvent::Info(_)]), "{text}");
        }
        assert_eq!(w.unsubscribe(&strings(&["BTC/USD"])).len(), 1);
    }

    #[test]
    fn stream_limit_rejects_the_excess_per_symbol() {
        let mut w = wire_with(&["--binance-max-streams", "2"]);
        let frames = w.subscribe(&strings(&["A1/USD", "A2/USD", "A3/USD", "BTC/USDT"]));
        assert_eq!(frames, [r#"{"method":"SUBSCRIBE","params":["a1usdt@ticker","a2usdt@ticker"],"id":1}"#]);
        // Sharing an existing stream costs nothing, so it is still accepted at the limit.
        assert!(w.subscribe(&strings(&["A1/USDT"])).is_empty());
        let events = w.on_text(r#"{"result":null,"id":1}"#);
        let rejected: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                WireEvent::Rejected { instrument, code: ErrorCode::ProviderRejected, message } => {
                    assert!(message.contains("2 streams"), "{message}");
                    Some(instrument.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(rejected, ["A3/USD", "BTC/USDT"]);
        // Only refusals: a cheap request makes sure a reply comes to carry them.
        assert_eq!(w.subscribe(&strings(&["A4/USD"])), [r#"{"method":"LIST_SUBSCRIPTIONS","id":2}"#]);
        let events = w.on_text(r#"{"result":["a1usdt@ticker","a2usdt@ticker"],"id":2}"#);
        assert!(matches!(&events[0], WireEvent::Rejected { instrument, .. } if instrument == "A4/USD"));
        // A bad spelling is refused the same way.
        w.subscribe(&strings(&["BRK.B"]));
        assert!(matches!(&w.on_text("{}")[0], WireEvent::Rejected { instrument, .. } if instrument == "BRK.B"));
        // Freed capacity is reusable; a new connection starts empty.
        w.unsubscribe(&strings(&["A2/USD"]));
        assert_eq!(w.subscribe(&strings(&["A5/USD"])).len(), 1);
        w.on_open();
        assert!(w.symbols.is_empty() && w.pending.is_empty() && w.deferred.is_empty());
    }

    #[test]
    fn old_connections_are_retired_before_the_cut() {
        let w = wire_with(&["--binance-max-connection-age-secs", "60"]);
        assert_eq!(w.max_connection_age(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn odd_frames_do_not_panic() {
        let mut w = wire();
        w.subscribe(&strings(&["BNB/BTC"]));
        for text in [
            "",
            "null",
            "42",
            "\"x\"",
            "[]",
            "[1,null,[]]",
            "{}",
            "{\"e\":1}",
            r#"{"e":"24hrTicker"}"#,
            r#"{"e":"24hrTicker","s":7,"c":"1","E":1}"#,
            r#"{"e":"24hrTicker","s":"BNBBTC","c":"NaN","E":1}"#,
            r#"{"e":"24hrTicker","s":"BNBBTC","c":"inf","E":1}"#,
            r#"{"e":"24hrTicker","s":"BNBBTC","c":"1","E":-5}"#,
            r#"{"e":"24hrTicker","s":"BNBBTC","c":"1","E":"soon"}"#,
            r#"{"e":"24hrTicker","s":"BNBBTC","c":[],"E":1,"b":{},"a":null,"v":"x","p":"","P":true}"#,
            r#"{"e":"24hrTicker","s":"BNBBTC","c":"1e400","E":1}"#,
            r#"{"e":"24hrMiniTicker","s":"BNBBTC","c":"1","o":"-0","E":9223372036854775807}"#,
            r#"{"stream":"x","data":null}"#,
            r#"{"stream":"x","data":[[[[]]]]}"#,
            r#"{"error":"boom","id":"abc"}"#,
            r#"{"error":{"code":"x","msg":5},"id":-1}"#,
            r#"{"code":null,"msg":"m"}"#,
            r#"{"result":[],"id":18446744073709551615}"#,
            r#"{"e":"aggTrade","E":1,"s":"BNBBTC","a":12345,"p":"0.001","q":"100"}"#,
            r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
        ] {
            for event in w.on_text(text) {
                if let WireEvent::Quotes(q) = event {
                    assert!(q.iter().all(|q| q.price.is_finite() && q.ts > 0), "{text}: {q:?}");
                }
            }
        }
        // Deep nesting is refused by serde_json's recursion limit rather than overflowing the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(&w.on_text(&deep)[..], [WireEvent::Info(_)]));
    }

    #[test]
    fn a_bad_url_is_reported_without_echoing_it() {
        let mut a = args(&[]);
        a.ws_url = "not a url".into();
        assert_eq!(BnWire::new(&a).request().unwrap_err(), "invalid --binance-ws-url");
        assert!(wire().request().is_ok());
    }
}

#[cfg(test)]
mod fuzz_tests;
