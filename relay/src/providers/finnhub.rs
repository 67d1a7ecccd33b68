//! Finnhub: last-trade prices for US stocks, crypto and forex over `wss://ws.finnhub.io?token=KEY`.
//!
//! This module owns Finnhub's wire protocol (reference `shared/reference/upstream-protocols.md` §4), the mapping
//! between our canonical instruments and Finnhub's exchange-prefixed symbols, and Finnhub's per-connection
//! symbol limit. Reconnecting, resubscribing, the watchdog and status reporting are [`connection`]'s.
//!
//! Wire protocol: auth by `?token=` (a bad key is refused with HTTP 401 at the upgrade); no greeting and no
//! acknowledgements; one `{"type":"subscribe","symbol":"AAPL"}` (or `unsubscribe`) per symbol; `trade` batches
//! `{"data":[{"c":[..],"p":..,"s":..,"t":..,"v":..}],"type":"trade"}` with `t` in Unix milliseconds and `v` the
//! size of that one trade; `{"type":"ping"}` every minute or two; `{"msg":"Subscribing to too many symbols",
//! "type":"error"}` when a subscribe goes over the plan's symbol limit — without naming the symbol.
//!
//! Choices made here, and why:
//! * One quote per symbol per batch, from its latest trade (highest `t`, the later one on a tie): a quote is a
//!   last price, and the hub would conflate the others away anyway.
//! * `volume` stays empty: `v` is one trade's size, not a day volume. Finnhub sends no bid/ask or change either.
//! * The symbol limit (`--finnhub-max-symbols`, default 50 as measured on the free tier) is enforced here, before
//!   Finnhub sees the subscribe: the excess is rejected per symbol at once. Should Finnhub still refuse one (a
//!   lower real limit), its anonymous error is pinned on the most recent subscribe still unblamed on this
//!   connection — Finnhub refuses everything past its limit, so k errors mean the last k subscribes.
//! * The watchdog allows 150 s of silence by default (`--finnhub-stale-ms`): Finnhub's pings are the only frames
//!   an idle stream (market closed) gets, and they come only every one to two minutes.
//!
//! UNVERIFIED upstream behaviour, made configurable: whether a client reply to `ping` is expected (not sent
//! unless `--finnhub-reply-pong`); which upgrade statuses mean a bad token (`--finnhub-auth-statuses`, default
//! 401 as observed and 403); the symbol limit; whether Finnhub limits client messages per second
//! (`--finnhub-min-send-interval-ms`, default no pacing).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use hamster_shared::{AssetClass, ErrorCode, Quote, Symbol};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Link, Timing, Wire, WireEvent};
use super::unconfigured::NotConfigured;
use super::{EventSink, Provider, ProviderCommand};
use crate::secret::Secret;

pub const NAME: &str = "finnhub";
/// Environment variable holding the key.
pub const KEY_VAR: &str = "FINNHUB_API_KEY";

/// Silence allowed before the connection is replaced, unless `--finnhub-stale-ms` says otherwise (reference §4.5).
const DEFAULT_STALE: Duration = Duration::from_secs(150);

/// Finnhub settings (keys come from the environment, never flags).
#[derive(Debug, Clone, clap::Args)]
pub struct FinnhubArgs {
    /// Finnhub streaming endpoint (the key is added as `?token=`).
    #[arg(
        id = "finnhub_ws_url",
        long = "finnhub-ws-url",
        env = "FINNHUB_WS_URL",
        default_value = "wss://ws.finnhub.io"
    )]
    pub ws_url: String,
    /// Most Finnhub symbols subscribed at once; the relay rejects subscriptions beyond it before Finnhub sees
    /// them. 50 is the free tier as measured (paid plans were reported at 250); 0 leaves limiting to Finnhub.
    #[arg(id = "finnhub_max_symbols", long = "finnhub-max-symbols", env = "FINNHUB_MAX_SYMBOLS", default_value_t = 50)]
    pub max_symbols: usize,
    /// Exchange prefix for crypto pairs: `BTC/USD` is streamed as `BINANCE:BTCUSDT`. Empty: no prefix.
    #[arg(
        id = "finnhub_crypto_exchange",
        long = "finnhub-crypto-exchange",
        env = "FINNHUB_CRYPTO_EXCHANGE",
        default_value = "BINANCE"
    )]
    pub crypto_exchange: String,
    /// What a crypto pair's `USD` quote currency is sent as (Binance lists USDT pairs, not USD). Empty: `USD`.
    #[arg(
        id = "finnhub_crypto_usd_quote",
        long = "finnhub-crypto-usd-quote",
        env = "FINNHUB_CRYPTO_USD_QUOTE",
        default_value = "USDT"
    )]
    pub crypto_usd_quote: String,
    /// Between a crypto pair's base and quote on the wire (`BINANCE:BTCUSDT` has none, `COINBASE:BTC-USD` `-`).
    #[arg(
        id = "finnhub_crypto_separator",
        long = "finnhub-crypto-separator",
        env = "FINNHUB_CRYPTO_SEPARATOR",
        default_value = ""
    )]
    pub crypto_separator: String,
    /// Exchange prefix for forex pairs: `EUR/USD` is streamed as `OANDA:EUR_USD`. Empty: no prefix.
    #[arg(
        id = "finnhub_forex_exchange",
        long = "finnhub-forex-exchange",
        env = "FINNHUB_FOREX_EXCHANGE",
        default_value = "OANDA"
    )]
    pub forex_exchange: String,
    /// Between a forex pair's base and quote on the wire (OANDA uses `_`).
    #[arg(
        id = "finnhub_forex_separator",
        long = "finnhub-forex-separator",
        env = "FINNHUB_FOREX_SEPARATOR",
        default_value = "_"
    )]
    pub forex_separator: String,
    /// Explicit mappings that win over the rules above, comma-separated `CANONICAL=FINNHUB`, e.g.
    /// `XAU/USD=OANDA:XAU_USD,ETH/EUR=KRAKEN:XETHZEUR`.
    #[arg(id = "finnhub_symbol_map", long = "finnhub-symbol-map", env = "FINNHUB_SYMBOL_MAP", value_delimiter = ',')]
    pub symbol_map: Vec<String>,
    /// Answer Finnhub's `{"type":"ping"}` with `{"type":"pong"}`. Finnhub documents no reply, so off by default.
    #[arg(id = "finnhub_reply_pong", long = "finnhub-reply-pong", env = "FINNHUB_REPLY_PONG")]
    pub reply_pong: bool,
    /// HTTP statuses refusing the upgrade that mean a bad key (reported `down`, retried slowly), comma-separated.
    #[arg(
        id = "finnhub_auth_statuses",
        long = "finnhub-auth-statuses",
        env = "FINNHUB_AUTH_STATUSES",
        value_delimiter = ',',
        default_value = "401,403"
    )]
    pub auth_statuses: Vec<u16>,
    /// Silence (not even a ping) after which the connection is replaced, in ms. Default: 150 s, or
    /// `--upstream-stale-ms` when that is longer.
    #[arg(id = "finnhub_stale_ms", long = "finnhub-stale-ms", env = "FINNHUB_STALE_MS")]
    pub stale_ms: Option<u64>,
    /// Shortest gap between two frames sent to Finnhub, in ms; 0 sends subscribes as fast as they come.
    #[arg(
        id = "finnhub_min_send_interval_ms",
        long = "finnhub-min-send-interval-ms",
        env = "FINNHUB_MIN_SEND_INTERVAL_MS",
        default_value_t = 0
    )]
    pub min_send_interval_ms: u64,
}

/// Builds the provider from its settings and keys (`[FINNHUB_API_KEY]`, read from the environment by the caller).
pub fn build(args: &FinnhubArgs, keys: Vec<Secret>, mut timing: Timing) -> Box<dyn Provider> {
    let Some(key) = keys.into_iter().next() else {
        return Box::new(NotConfigured { name: NAME, reason: format!("set {KEY_VAR}") });
    };
    let map = match SymbolMap::from_args(args) {
        Ok(map) => map,
        Err(reason) => return Box::new(NotConfigured { name: NAME, reason }),
    };
    timing.stale_after = stale_after(args.stale_ms, timing.stale_after);
    Box::new(Finnhub { args: args.clone(), key, map, timing })
}

/// The watchdog's limit: `--finnhub-stale-ms` if given, else the general one but never under [`DEFAULT_STALE`],
/// since a healthy idle Finnhub stream is silent between pings for up to two minutes.
fn stale_after(finnhub_ms: Option<u64>, general: Duration) -> Duration {
    match finnhub_ms {
        Some(ms) => Duration::from_millis(ms.max(100)),
        None => general.max(DEFAULT_STALE),
    }
}

/// The Finnhub provider.
#[derive(Debug)]
struct Finnhub {
    args: FinnhubArgs,
    key: Secret,
    map: SymbolMap,
    timing: Timing,
}

impl Provider for Finnhub {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(
        self: Box<Self>,
        commands: mpsc::UnboundedReceiver<ProviderCommand>,
        events: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let admitted = Arc::new(Mutex::new(Admitted::default()));
            let gate = Gate { max: self.args.max_symbols, map: self.map.clone(), admitted: admitted.clone() };
            let wire = FhWire {
                ws_url: self.args.ws_url.clone(),
                key: self.key,
                map: self.map,
                reply_pong: self.args.reply_pong,
                auth_statuses: self.args.auth_statuses.clone(),
                min_send_interval: Duration::from_millis(self.args.min_send_interval_ms),
                by_wire: HashMap::new(),
                sent: Vec::new(),
                admitted,
            };
            // The stream only ever sees admitted instruments; the gate answers the excess itself.
            let (link_tx, _link_rx) = watch::channel(Link::default());
            connection::run_admitted(wire, gate, commands, events, stop, self.timing, link_tx).await;
        }
        .boxed()
    }
}

/// How canonical instruments are spelled on Finnhub's wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolMap {
    crypto_exchange: String,
    crypto_usd_quote: String,
    crypto_separator: String,
    forex_exchange: String,
    forex_separator: String,
    /// Canonical ticker → Finnhub symbol, winning over the rules.
    overrides: HashMap<String, String>,
}

impl SymbolMap {
    /// Reads the mapping flags; a malformed `--finnhub-symbol-map` entry is an error naming it.
    pub fn from_args(args: &FinnhubArgs) -> Result<SymbolMap, String> {
        let mut overrides = HashMap::new();
        for entry in args.symbol_map.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let bad = || {
                format!(
                    "bad --finnhub-symbol-map entry {entry:?}: expected CANONICAL=FINNHUB, e.g. XAU/USD=OANDA:XAU_USD"
                )
            };
            let (canonical, wire) = entry.split_once('=').ok_or_else(bad)?;
            let canonical = Symbol::parse(canonical).map_err(|_| bad())?;
            let wire = wire.trim();
            if wire.is_empty() {
                return Err(bad());
            }
            overrides.insert(canonical.ticker().to_owned(), wire.to_owned());
        }
        let trim = |s: &str| s.trim().to_owned();
        Ok(SymbolMap {
            crypto_exchange: trim(&args.crypto_exchange),
            crypto_usd_quote: trim(&args.crypto_usd_quote),
            crypto_separator: trim(&args.crypto_separator),
            forex_exchange: trim(&args.forex_exchange),
            forex_separator: trim(&args.forex_separator),
            overrides,
        })
    }

    /// The Finnhub symbol for a canonical instrument: `AAPL` → `AAPL`, `BTC/USD` → `BINANCE:BTCUSDT`,
    /// `EUR/USD` → `OANDA:EUR_USD` (with the default flags).
    pub fn to_wire(&self, instrument: &str) -> String {
        if let Some(wire) = self.overrides.get(instrument) {
            return wire.clone();
        }
        let Some((base, quote)) = instrument.split_once('/') else { return instrument.to_owned() };
        let (exchange, separator, quote) = match AssetClass::of(instrument) {
            AssetClass::Forex => (&self.forex_exchange, &self.forex_separator, quote),
            AssetClass::Crypto | AssetClass::Equity => {
                let quote = if quote == "USD" && !self.crypto_usd_quote.is_empty() {
                    self.crypto_usd_quote.as_str()
                } else {
                    quote
                };
                (&self.crypto_exchange, &self.crypto_separator, quote)
            }
        };
        if exchange.is_empty() {
            format!("{base}{separator}{quote}")
        } else {
            format!("{exchange}:{base}{separator}{quote}")
        }
    }
}

/// Instruments let through to the stream, with their Finnhub symbols. Shared by the gate (which admits) and
/// the wire (which gives a slot back when Finnhub refuses a symbol after all).
#[derive(Debug, Default)]
struct Admitted {
    instruments: HashMap<String, String>,
}

impl Admitted {
    /// Distinct Finnhub symbols in use: what Finnhub counts (`BTC/USD` and `BTC/USDT` may share one).
    fn symbols(&self) -> usize {
        self.instruments.values().collect::<HashSet<_>>().len()
    }
}

/// Enforces the symbol limit between the relay's commands and the stream.
struct Gate {
    max: usize,
    map: SymbolMap,
    admitted: Arc<Mutex<Admitted>>,
}

impl connection::Admission for Gate {
    fn admit(&mut self, command: ProviderCommand) -> (Option<ProviderCommand>, Vec<(String, String)>) {
        self.apply(command)
    }
}

impl Gate {
    /// What to pass on to the stream, and the instruments refused (with the reason) for the symbol limit.
    fn apply(&self, command: ProviderCommand) -> (Option<ProviderCommand>, Vec<(String, String)>) {
        let mut admitted = self.admitted.lock();
        match command {
            ProviderCommand::Subscribe(list) => {
                let (mut pass, mut refused) = (Vec::new(), Vec::new());
                for instrument in list {
                    let wire = self.map.to_wire(&instrument);
                    let shares_a_symbol = admitted.instruments.values().any(|w| *w == wire);
                    let fits = self.max == 0 || shares_a_symbol || admitted.symbols() < self.max;
                    if admitted.instruments.contains_key(&instrument) || fits {
                        admitted.instruments.insert(instrument.clone(), wire);
                        pass.push(instrument);
                    } else {
                        let message = format!(
                            "Finnhub streams at most {} symbols per connection (FINNHUB_MAX_SYMBOLS) and that many \
                             are in use; {instrument} was not subscribed",
                            self.max
                        );
                        refused.push((instrument, message));
                    }
                }
                ((!pass.is_empty()).then_some(ProviderCommand::Subscribe(pass)), refused)
            }
            ProviderCommand::Unsubscribe(list) => {
                // Only what was admitted (and not refused by Finnhub since) is subscribed upstream.
                let pass: Vec<String> = list.into_iter().filter(|i| admitted.instruments.remove(i).is_some()).collect();
                ((!pass.is_empty()).then_some(ProviderCommand::Unsubscribe(pass)), Vec::new())
            }
        }
    }
}

struct FhWire {
    ws_url: String,
    key: Secret,
    map: SymbolMap,
    reply_pong: bool,
    auth_statuses: Vec<u16>,
    min_send_interval: Duration,
    /// This connection's subscriptions: Finnhub symbol → the instruments it feeds.
    by_wire: HashMap<String, BTreeSet<String>>,
    /// This connection's Finnhub symbols in the order they were subscribed (to blame anonymous limit errors).
    sent: Vec<String>,
    admitted: Arc<Mutex<Admitted>>,
}

/// Frames from Finnhub, by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Incoming {
    Trade {
        // Trades are read one by one, so a malformed one costs only itself, not its batch.
        #[serde(default)]
        data: Option<Vec<serde_json::Value>>,
    },
    Ping,
    Error {
        #[serde(default)]
        msg: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// One trade. `v` (that trade's size) and `c` (condition codes) are not used: a quote has no place for them.
#[derive(Debug, Deserialize)]
struct Trade {
    s: String,
    p: f64,
    t: f64,
}

impl FhWire {
    fn frame(kind: &str, symbol: &str) -> String {
        // Field order as in Finnhub's docs; the symbol is JSON-escaped (it may hold spaces: `IC MARKETS:1`).
        let symbol = serde_json::Value::from(symbol);
        format!(r#"{{"type":"{kind}","symbol":{symbol}}}"#)
    }

    /// Quotes from a `trade` batch: the latest trade of each subscribed symbol, for every instrument it feeds.
    fn trades(&self, data: Vec<serde_json::Value>) -> Vec<WireEvent> {
        // Finnhub symbol → (price, ts); insertion order kept so quotes follow the batch.
        let mut latest: Vec<(&str, f64, i64)> = Vec::new();
        let mut skipped = 0usize;
        for item in data {
            let Ok(trade) = serde_json::from_value::<Trade>(item) else {
                skipped += 1;
                continue;
            };
            if !trade.p.is_finite() || !trade.t.is_finite() || trade.t <= 0.0 {
                skipped += 1;
                continue;
            }
            // Late trades for symbols no longer subscribed are dropped here.
            let Some((wire, _)) = self.by_wire.get_key_value(trade.s.as_str()) else { continue };
            let ts = trade.t as i64;
            match latest.iter_mut().find(|(w, _, _)| *w == wire.as_str()) {
                Some(entry) if ts >= entry.2 => *entry = (wire.as_str(), trade.p, ts),
                Some(_) => {}
                None => latest.push((wire.as_str(), trade.p, ts)),
            }
        }
        let mut quotes = Vec::new();
        for (wire, price, ts) in latest {
            for instrument in self.by_wire.get(wire).into_iter().flatten() {
                let Ok(symbol) = Symbol::parse(instrument) else { continue };
                quotes.push(Quote {
                    symbol,
                    price,
                    ts,
                    provider: NAME.to_owned(),
                    bid: None,
                    ask: None,
                    // `v` is this trade's size; presenting it as volume would mislead.
                    volume: None,
                    change: None,
                    change_pct: None,
                });
            }
        }
        let mut out = Vec::new();
        if skipped > 0 {
            out.push(WireEvent::Info(format!("skipped {skipped} malformed trade(s)")));
        }
        if !quotes.is_empty() {
            out.push(WireEvent::Quotes(quotes));
        }
        out
    }

    /// Finnhub's symbol-limit error names no symbol; it refused the latest subscribe not yet accounted for.
    fn too_many(&mut self, msg: &str) -> Vec<WireEvent> {
        let Some(wire) = self.sent.pop() else {
            return vec![WireEvent::Info(format!("error with no pending subscribe: {msg}"))];
        };
        let instruments = self.by_wire.remove(&wire).unwrap_or_default();
        let mut admitted = self.admitted.lock();
        instruments
            .into_iter()
            .map(|instrument| {
                admitted.instruments.remove(&instrument);
                WireEvent::Rejected {
                    instrument,
                    code: ErrorCode::ProviderRejected,
                    message: format!("Finnhub refused {wire}: {msg} (the plan's symbol limit)"),
                }
            })
            .collect()
    }
}

impl Wire for FhWire {
    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self) -> Result<Request, String> {
        let mut url = url::Url::parse(&self.ws_url).map_err(|_| "invalid --finnhub-ws-url".to_owned())?;
        url.query_pairs_mut().append_pair("token", self.key.expose());
        connection::request(url.as_str(), &[])
    }

    fn on_open(&mut self) -> Vec<String> {
        // A new connection starts with no subscriptions; the full set follows right after.
        self.by_wire.clear();
        self.sent.clear();
        Vec::new()
    }

    fn subscribe(&mut self, instruments: &[String]) -> Vec<String> {
        let mut frames = Vec::new();
        for instrument in instruments {
            let wire = self.map.to_wire(instrument);
            let feeds = self.by_wire.entry(wire.clone()).or_default();
            // One Finnhub subscription however many instruments share the symbol.
            if feeds.is_empty() {
                frames.push(Self::frame("subscribe", &wire));
                self.sent.push(wire);
            }
            feeds.insert(instrument.clone());
        }
        frames
    }

    fn unsubscribe(&mut self, instruments: &[String]) -> Vec<String> {
        let mut frames = Vec::new();
        for instrument in instruments {
            let wire = self.map.to_wire(instrument);
            let Some(feeds) = self.by_wire.get_mut(&wire) else { continue };
            feeds.remove(instrument);
            if feeds.is_empty() {
                self.by_wire.remove(&wire);
                self.sent.retain(|w| *w != wire);
                frames.push(Self::frame("unsubscribe", &wire));
            }
        }
        frames
    }

    fn on_text(&mut self, text: &str) -> Vec<WireEvent> {
        let incoming: Incoming = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return vec![WireEvent::Info(format!("unparsed frame ({e})"))],
        };
        match incoming {
            Incoming::Trade { data } => self.trades(data.unwrap_or_default()),
            // Any frame counts as liveness for the watchdog; a reply only if configured.
            Incoming::Ping if self.reply_pong => vec![WireEvent::Reply(r#"{"type":"pong"}"#.to_owned())],
            Incoming::Ping => Vec::new(),
            Incoming::Error { msg } => {
                let msg = msg.unwrap_or_default();
                if msg.to_ascii_lowercase().contains("too many symbols") {
                    self.too_many(&msg)
                } else {
                    tracing::warn!(provider = NAME, %msg, "upstream error");
                    vec![WireEvent::Info(format!("error: {msg}"))]
                }
            }
            Incoming::Other => Vec::new(),
        }
    }

    fn min_send_interval(&self) -> Option<Duration> {
        (!self.min_send_interval.is_zero()).then_some(self.min_send_interval)
    }

    fn is_auth_failure(&self, status: u16) -> bool {
        self.auth_statuses.contains(&status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        finnhub: FinnhubArgs,
    }

    fn args(extra: &[&str]) -> FinnhubArgs {
        let mut argv = vec!["relay"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().finnhub
    }

    fn wire_with(extra: &[&str]) -> FhWire {
        let a = args(extra);
        FhWire {
            ws_url: "ws://127.0.0.1:1".into(),
            key: Secret::new("k&y"),
            map: SymbolMap::from_args(&a).unwrap(),
            reply_pong: a.reply_pong,
            auth_statuses: a.auth_statuses.clone(),
            min_send_interval: Duration::ZERO,
            by_wire: HashMap::new(),
            sent: Vec::new(),
            admitted: Arc::default(),
        }
    }

    fn wire() -> FhWire {
        wire_with(&[])
    }

    fn quotes(events: &[WireEvent]) -> Vec<Quote> {
        events
            .iter()
            .filter_map(|e| match e {
                WireEvent::Quotes(q) => Some(q.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_parse_and_are_documented_values() {
        let a = args(&[]);
        assert_eq!(a.ws_url, "wss://ws.finnhub.io");
        assert_eq!(a.max_symbols, 50);
        assert_eq!(a.auth_statuses, [401, 403]);
        assert!(!a.reply_pong);
        assert_eq!(a.stale_ms, None);
        let a = args(&["--finnhub-reply-pong", "--finnhub-auth-statuses", "401", "--finnhub-max-symbols", "250"]);
        assert!(a.reply_pong);
        assert_eq!((a.auth_statuses.as_slice(), a.max_symbols), (&[401][..], 250));
    }

    #[test]
    fn maps_canonical_instruments_to_finnhub_symbols() {
        let map = SymbolMap::from_args(&args(&[])).unwrap();
        assert_eq!(map.to_wire("AAPL"), "AAPL");
        assert_eq!(map.to_wire("BRK.B"), "BRK.B");
        assert_eq!(map.to_wire("BTC/USD"), "BINANCE:BTCUSDT");
        assert_eq!(map.to_wire("BTC/USDT"), "BINANCE:BTCUSDT");
        assert_eq!(map.to_wire("ETH/BTC"), "BINANCE:ETHBTC");
        assert_eq!(map.to_wire("EUR/USD"), "OANDA:EUR_USD");
        assert_eq!(map.to_wire("USD/JPY"), "OANDA:USD_JPY");

        let map = SymbolMap::from_args(&args(&[
            "--finnhub-crypto-exchange",
            "COINBASE",
            "--finnhub-crypto-separator",
            "-",
            "--finnhub-crypto-usd-quote",
            "",
            "--finnhub-forex-exchange",
            "FXCM",
            "--finnhub-forex-separator",
            "/",
            "--finnhub-symbol-map",
            "xau/usd=OANDA:XAU_USD, ETH/EUR = KRAKEN:XETHZEUR,SPX=IC MARKETS:1",
        ]))
        .unwrap();
        assert_eq!(map.to_wire("BTC/USD"), "COINBASE:BTC-USD");
        assert_eq!(map.to_wire("EUR/USD"), "FXCM:EUR/USD");
        assert_eq!(map.to_wire("XAU/USD"), "OANDA:XAU_USD");
        assert_eq!(map.to_wire("ETH/EUR"), "KRAKEN:XETHZEUR");
        assert_eq!(map.to_wire("SPX"), "IC MARKETS:1");

        let map = SymbolMap::from_args(&args(&["--finnhub-crypto-exchange", ""])).unwrap();
        assert_eq!(map.to_wire("BTC/USD"), "BTCUSDT");

        for bad in ["XAU/USD", "XAU/USD=", "<>=X", "=OANDA:X"] {
            let err = SymbolMap::from_args(&args(&["--finnhub-symbol-map", bad])).unwrap_err();
            assert!(err.contains("--finnhub-symbol-map"), "{bad}: {err}");
        }
    }

    #[test]
    fn one_frame_per_symbol_in_the_documented_shape() {
        let mut w = wire();
        assert_eq!(
            w.subscribe(&strings(&["AAPL", "BTC/USD", "EUR/USD"])),
            [
                r#"{"type":"subscribe","symbol":"AAPL"}"#,
                r#"{"type":"subscribe","symbol":"BINANCE:BTCUSDT"}"#,
                r#"{"type":"subscribe","symbol":"OANDA:EUR_USD"}"#
            ]
        );
        assert_eq!(w.unsubscribe(&strings(&["AAPL"])), [r#"{"type":"unsubscribe","symbol":"AAPL"}"#]);
        assert!(w.unsubscribe(&strings(&["AAPL", "MSFT"])).is_empty(), "nothing subscribed, nothing sent");
        assert_eq!(FhWire::frame("subscribe", r#"IC "X":1"#), r#"{"type":"subscribe","symbol":"IC \"X\":1"}"#);
    }

    #[test]
    fn instruments_sharing_a_finnhub_symbol_share_one_subscription() {
        let mut w = wire();
        assert_eq!(w.subscribe(&strings(&["BTC/USD"])).len(), 1);
        assert!(w.subscribe(&strings(&["BTC/USDT"])).is_empty());
        let events = w
            .on_text(r#"{"data":[{"p":7296.89,"s":"BINANCE:BTCUSDT","t":1575526691134,"v":0.011467}],"type":"trade"}"#);
        let q = quotes(&events);
        let names: Vec<&str> = q.iter().map(|q| q.symbol.as_str()).collect();
        assert_eq!(names, ["BTC/USD", "BTC/USDT"]);
        assert!(w.unsubscribe(&strings(&["BTC/USD"])).is_empty(), "BTC/USDT still needs it");
        assert_eq!(w.unsubscribe(&strings(&["BTC/USDT"])).len(), 1);
    }

    #[test]
    fn parses_documented_trade_frames() {
        let mut w = wire();
        w.subscribe(&strings(&["BTC/USD", "TSLA", "AAPL"]));
        // The docs sample (pretty key order) and a real capture (alphabetical, with conditions).
        let q = quotes(&w.on_text(
            r#"{"type":"trade","data":[{"s":"BINANCE:BTCUSDT","p":7296.89,"t":1575526691134,"v":0.011467}]}"#,
        ));
        assert_eq!(q.len(), 1);
        assert_eq!((q[0].symbol.as_str(), q[0].price, q[0].ts), ("BTC/USD", 7296.89, 1_575_526_691_134));
        assert_eq!(q[0].provider, "finnhub");
        assert_eq!((q[0].volume, q[0].bid, q[0].ask, q[0].change), (None, None, None, None), "trade size is no volume");
        let q = quotes(&w.on_text(
            r#"{"data":[{"c":["1","8","24","12"],"p":122.1,"s":"TSLA","t":1672348887195,"v":1},{"c":["1","24","12"],"p":129.58,"s":"AAPL","t":1672348887666,"v":1}],"type":"trade"}"#,
        ));
        let got: Vec<(&str, f64, i64)> = q.iter().map(|q| (q.symbol.as_str(), q.price, q.ts)).collect();
        assert_eq!(got, [("TSLA", 122.1, 1_672_348_887_195), ("AAPL", 129.58, 1_672_348_887_666)]);
    }

    #[test]
    fn latest_trade_per_symbol_wins_within_a_batch() {
        let mut w = wire();
        w.subscribe(&strings(&["AAPL", "MSFT"]));
        let q = quotes(&w.on_text(
            r#"{"data":[{"p":3,"s":"AAPL","t":1700000000003,"v":1},{"p":1,"s":"AAPL","t":1700000000001,"v":1},{"p":10,"s":"MSFT","t":1700000000005,"v":0},{"p":11,"s":"MSFT","t":1700000000005,"v":2},{"p":9,"s":"NOTSUB","t":1700000000009,"v":2}],"type":"trade"}"#,
        ));
        let got: Vec<(&str, f64)> = q.iter().map(|q| (q.symbol.as_str(), q.price)).collect();
        assert_eq!(got, [("AAPL", 3.0), ("MSFT", 11.0)], "highest t, later on a tie; unsubscribed dropped");
    }

    #[test]
    fn pings_are_answered_only_when_configured() {
        assert!(wire().on_text(r#"{"type":"ping"}"#).is_empty());
        assert_eq!(
            wire_with(&["--finnhub-reply-pong"]).on_text(r#"{"type":"ping"}"#),
            [WireEvent::Reply(r#"{"type":"pong"}"#.into())]
        );
    }

    #[test]
    fn too_many_symbols_rejects_the_latest_subscribes() {
        let mut w = wire();
        w.admitted.lock().instruments.extend(
            [("AAPL", "AAPL"), ("MSFT", "MSFT"), ("BTC/USD", "BINANCE:BTCUSDT")].map(|(a, b)| (a.into(), b.into())),
        );
        w.subscribe(&strings(&["AAPL", "MSFT", "BTC/USD"]));
        let error = r#"{"msg":"Subscribing to too many symbols","type":"error"}"#;
        let events = w.on_text(error);
        assert_eq!(
            events,
            [WireEvent::Rejected {
                instrument: "BTC/USD".into(),
                code: ErrorCode::ProviderRejected,
                message: "Finnhub refused BINANCE:BTCUSDT: Subscribing to too many symbols (the plan's symbol limit)"
                    .into()
            }]
        );
        assert!(!w.admitted.lock().instruments.contains_key("BTC/USD"), "its slot is given back");
        assert!(matches!(&w.on_text(error)[0], WireEvent::Rejected { instrument, .. } if instrument == "MSFT"));
        // No longer subscribed: no trades for it, no unsubscribe for it.
        assert!(quotes(&w.on_text(r#"{"data":[{"p":1,"s":"MSFT","t":1,"v":1}],"type":"trade"}"#)).is_empty());
        assert!(w.unsubscribe(&strings(&["MSFT"])).is_empty());
        // Unrelated errors reject nothing.
        assert!(matches!(w.on_text(r#"{"msg":"Something else","type":"error"}"#).as_slice(), [WireEvent::Info(_)]));
        assert!(matches!(&w.on_text(error)[0], WireEvent::Rejected { instrument, .. } if instrument == "AAPL"));
        assert!(matches!(w.on_text(error).as_slice(), [WireEvent::Info(_)]), "nothing left to blame");
    }

    #[test]
    fn a_new_connection_starts_empty() {
        let mut w = wire();
        assert_eq!(w.subscribe(&strings(&["AAPL"])).len(), 1);
        assert!(w.subscribe(&strings(&["AAPL"])).is_empty());
        assert!(w.on_open().is_empty());
        assert_eq!(w.subscribe(&strings(&["AAPL"])).len(), 1, "resubscribed on the new connection");
    }

    #[test]
    fn odd_frames_do_not_panic() {
        let mut w = wire();
        w.subscribe(&strings(&["AAPL"]));
        for text in [
            "",
            "null",
            "[]",
            "{}",
            "42",
            r#"{"type":7}"#,
            r#"{"type":"trade"}"#,
            r#"{"type":"trade","data":null}"#,
            r#"{"type":"trade","data":{}}"#,
            r#"{"type":"trade","data":[1,null,"x",[],{}]}"#,
            r#"{"type":"trade","data":[{"s":"AAPL","p":"1.5","t":1}]}"#,
            r#"{"type":"trade","data":[{"s":"AAPL","p":1e400,"t":1}]}"#,
            r#"{"type":"trade","data":[{"s":"AAPL","p":1,"t":-5}]}"#,
            r#"{"type":"trade","data":[{"s":"AAPL","p":1,"t":1e300}]}"#,
            r#"{"type":"error"}"#,
            r#"{"type":"error","msg":null}"#,
            r#"{"type":"news","data":[]}"#,
            r#"{"type":"ping","extra":true}"#,
        ] {
            let _ = w.on_text(text);
        }
        let events = w.on_text(r#"{"type":"trade","data":[{"s":"AAPL"},{"s":"AAPL","p":2.5,"t":1700000000000}]}"#);
        assert_eq!(quotes(&events).len(), 1, "one bad trade does not cost the batch: {events:?}");
    }

    #[test]
    fn token_goes_in_the_query_url_encoded() {
        let r = wire().request().unwrap();
        assert_eq!(r.uri().query(), Some("token=k%26y"));
        assert_eq!(r.uri().host(), Some("127.0.0.1"));
        assert!(wire().is_auth_failure(401) && !wire().is_auth_failure(503));
        assert!(wire_with(&["--finnhub-auth-statuses", "400,401"]).is_auth_failure(400));
    }

    #[test]
    fn stale_default_allows_for_finnhub_pings() {
        let s = |ms| Duration::from_millis(ms);
        assert_eq!(stale_after(None, s(30_000)), s(150_000));
        assert_eq!(stale_after(None, s(600_000)), s(600_000));
        assert_eq!(stale_after(Some(700), s(30_000)), s(700));
        assert_eq!(stale_after(Some(0), s(30_000)), s(100));
    }

    fn gate(max: usize) -> Gate {
        Gate { max, map: SymbolMap::from_args(&args(&[])).unwrap(), admitted: Arc::default() }
    }

    #[test]
    fn the_gate_rejects_the_excess_itself() {
        let g = gate(2);
        let (pass, refused) = g.apply(ProviderCommand::Subscribe(strings(&["AAPL", "BTC/USD", "BTC/USDT", "MSFT"])));
        assert_eq!(pass, Some(ProviderCommand::Subscribe(strings(&["AAPL", "BTC/USD", "BTC/USDT"]))));
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, "MSFT");
        assert!(refused[0].1.contains("at most 2 symbols"), "{}", refused[0].1);
        // Resubscribing an admitted one is fine; unsubscribing a refused one sends nothing upstream.
        assert_eq!(g.apply(ProviderCommand::Subscribe(strings(&["AAPL"]))).1.len(), 0);
        assert_eq!(g.apply(ProviderCommand::Unsubscribe(strings(&["MSFT"]))).0, None);
        // Freeing a slot makes room.
        let (pass, _) = g.apply(ProviderCommand::Unsubscribe(strings(&["AAPL", "MSFT"])));
        assert_eq!(pass, Some(ProviderCommand::Unsubscribe(strings(&["AAPL"]))));
        let (pass, refused) = g.apply(ProviderCommand::Subscribe(strings(&["MSFT", "TSLA"])));
        assert_eq!((pass, refused.len()), (Some(ProviderCommand::Subscribe(strings(&["MSFT"]))), 1));
        // 0: no limit of our own.
        let g = gate(0);
        let many: Vec<String> = (0..300).map(|i| format!("S{i}")).collect();
        assert_eq!(g.apply(ProviderCommand::Subscribe(many)).1.len(), 0);
    }
}

#[cfg(test)]
mod fuzz_tests;
