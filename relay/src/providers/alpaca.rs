//! Alpaca Market Data v2 (US stocks): trades and quotes over `wss://stream.data.alpaca.markets/v2/{feed}`,
//! merged into one [`Quote`] per symbol.
//!
//! This module owns Alpaca's wire protocol (see `shared/reference/upstream-protocols.md` §3) and nothing else;
//! reconnecting, resubscribing, backoff and the watchdog are [`connection`]'s. The flow per connection: the server
//! greets with `[{"T":"success","msg":"connected"}]`, we answer `{"action":"auth","key":…,"secret":…}` (it must
//! arrive within 10 s), `[{"T":"success","msg":"authenticated"}]` makes us ready, then
//! `{"action":"subscribe","trades":[…],"quotes":[…]}` deltas are each acknowledged with the *full* current set
//! (`[{"T":"subscription",…}]`). Every server frame is a JSON array; data may be batched.
//!
//! Alpaca streams trades (`T:"t"`, price `p`) and quotes (`T:"q"`, `bp`/`ap`) separately. Clients want one quote
//! per symbol, so the adapter keeps the latest trade price and the latest bid/ask of each symbol and emits the
//! merge on every update — but only once a trade price is known, because a bid/ask alone is no price. Timestamps
//! are RFC 3339 with nanoseconds and become milliseconds (truncated).
//!
//! Errors arrive as `[{"T":"error","code":N,"msg":…}]`: 402 (bad keys) puts the provider `down` with slow retries,
//! 404/406/407/500 reconnect with backoff (406 means another session holds the account's single connection), and
//! 405 (symbol limit exceeded) carries no symbol, so the refused subscribe is worked out here (see
//! [`AlpacaWire::on_symbol_limit`]). Symbols that cannot be US stocks (`BTC/USD`, `EUR/USD`) are refused before
//! they reach Alpaca, each with a clear message.
//!
//! UNVERIFIED upstream behaviour, made configurable or tolerated: per-plan symbol limits (Alpaca's 405s are acted
//! on whatever the limit; `--alpaca-symbol-limit` adds an optional local cap); whether the server pings or drops
//! quiet connections — an empty subscribe, a no-op delta that should be answered with the full `subscription` set,
//! is sent every `--alpaca-keepalive-ms` so the staleness watchdog does not replace a connection that is merely
//! quiet outside market hours (0 turns it off); whether the server closes the socket after 402/404/406 — the
//! adapter acts on the error itself and does not wait for a close.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use hamster_shared::{AssetClass, ErrorCode, Quote, Symbol};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Link, Timing, Wire, WireEvent};
use super::rfc3339_ms;
use super::unconfigured::NotConfigured;
use super::{EventSink, Provider, ProviderCommand};
use crate::secret::Secret;

pub const NAME: &str = "alpaca";
/// Environment variables holding the key id and the secret, in the order [`build`] receives them.
pub const KEY_VARS: [&str; 2] = ["APCA_API_KEY_ID", "APCA_API_SECRET_KEY"];
/// Production host; the path is picked by the feed.
const DEFAULT_HOST: &str = "wss://stream.data.alpaca.markets";
/// A no-op delta, which Alpaca should answer with the full subscription set (UNVERIFIED): our keep-alive.
const KEEPALIVE_FRAME: &str = r#"{"action":"subscribe","trades":[],"quotes":[]}"#;

/// Alpaca's stock data feeds (the last path segment of the stream URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Feed {
    /// IEX only; free plans.
    #[value(name = "iex")]
    Iex,
    /// All US exchanges; paid plans.
    #[value(name = "sip")]
    Sip,
    /// SIP, 15 minutes delayed.
    #[value(name = "delayed_sip")]
    DelayedSip,
    /// Blue Ocean ATS (overnight trading).
    #[value(name = "boats")]
    Boats,
    /// Alpaca's derived overnight feed.
    #[value(name = "overnight")]
    Overnight,
    /// Alpaca's always-on test stream (symbol `FAKEPACA`).
    #[value(name = "test")]
    Test,
}

impl Feed {
    /// The URL path of this feed: the v2 feeds, and the two newer ones still under v1beta1.
    fn path(self) -> &'static str {
        match self {
            Feed::Iex => "v2/iex",
            Feed::Sip => "v2/sip",
            Feed::DelayedSip => "v2/delayed_sip",
            Feed::Boats => "v1beta1/boats",
            Feed::Overnight => "v1beta1/overnight",
            Feed::Test => "v2/test",
        }
    }

    fn label(self) -> &'static str {
        self.path().rsplit('/').next().unwrap_or("iex")
    }
}

/// Alpaca settings (keys come from the environment, never flags).
#[derive(Debug, Clone, clap::Args)]
pub struct AlpacaArgs {
    /// Alpaca streaming endpoint, used verbatim (e.g. the sandbox). Unset: the production URL of --alpaca-feed,
    /// `wss://stream.data.alpaca.markets/v2/iex` by default.
    #[arg(id = "alpaca_ws_url", long = "alpaca-ws-url", env = "ALPACA_WS_URL", value_name = "URL")]
    pub ws_url: Option<String>,
    /// Alpaca stock feed: iex (free plans), sip (paid), delayed_sip, boats, overnight, or test.
    #[arg(
        id = "alpaca_feed",
        value_name = "FEED",
        long = "alpaca-feed",
        env = "ALPACA_FEED",
        value_enum,
        default_value = "iex"
    )]
    pub feed: Feed,
    /// Send a no-op subscribe this often so a quiet connection (no trades outside market hours) is not taken for a
    /// dead one; sent at least twice per --upstream-stale-ms window. 0 disables it.
    #[arg(
        id = "alpaca_keepalive_ms",
        value_name = "MS",
        long = "alpaca-keepalive-ms",
        env = "ALPACA_KEEPALIVE_MS",
        default_value_t = 10_000
    )]
    pub keepalive_ms: u64,
    /// Most symbols to subscribe at once; beyond it symbols are rejected without asking Alpaca. Alpaca's own
    /// limit (30 on free IEX plans per older docs) is enforced anyway: its 405 errors reject the symbols beyond
    /// it. 0 = no local cap.
    #[arg(
        id = "alpaca_symbol_limit",
        value_name = "N",
        long = "alpaca-symbol-limit",
        env = "ALPACA_SYMBOL_LIMIT",
        default_value_t = 0
    )]
    pub symbol_limit: usize,
}

impl AlpacaArgs {
    /// The stream URL: the explicit one, else the production URL of the feed.
    pub fn url(&self) -> String {
        match &self.ws_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => format!("{DEFAULT_HOST}/{}", self.feed.path()),
        }
    }
}

/// Builds the provider from its settings and keys: `keys` is `[APCA_API_KEY_ID, APCA_API_SECRET_KEY]`.
pub fn build(args: &AlpacaArgs, keys: Vec<Secret>, timing: Timing) -> Box<dyn Provider> {
    match <[Secret; 2]>::try_from(keys) {
        Ok([key, secret]) => Box::new(Alpaca { args: args.clone(), key, secret, timing }),
        // The caller checks both variables; this only guards against a wiring mistake.
        Err(_) => Box::new(NotConfigured { name: NAME, reason: format!("set {}", KEY_VARS.join(" and ")) }),
    }
}

/// The Alpaca provider.
#[derive(Debug)]
pub struct Alpaca {
    args: AlpacaArgs,
    key: Secret,
    secret: Secret,
    timing: Timing,
}

impl Provider for Alpaca {
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
            // Keep-alives must land inside the staleness window, or they could not keep the watchdog fed.
            let keepalive = (self.args.keepalive_ms > 0)
                .then(|| Duration::from_millis(self.args.keepalive_ms).min(self.timing.stale_after / 2));
            let wire = AlpacaWire::new(self.args.url(), self.key, self.secret, self.args.feed, keepalive);
            let (link_tx, _link_rx) = watch::channel(Link::default());
            let gate = Gate { feed: self.args.feed, limit: self.args.symbol_limit, accepted: BTreeSet::new() };
            connection::run_admitted(wire, gate, commands, events, stop, self.timing, link_tx).await;
        }
        .boxed()
    }
}

/// Sits between the router and the connection: refuses instruments Alpaca's stock feed cannot serve (and those
/// beyond the local cap) at once, with a reason, so they never cost an upstream round trip or a 400/405.
struct Gate {
    feed: Feed,
    /// 0 = no local cap.
    limit: usize,
    /// Instruments passed on and not yet unsubscribed.
    accepted: BTreeSet<String>,
}

impl connection::Admission for Gate {
    fn admit(&mut self, command: ProviderCommand) -> (Option<ProviderCommand>, Vec<(String, String)>) {
        self.filter(command)
    }
}

impl Gate {
    /// The part of `command` to pass on, and the instruments refused with why.
    fn filter(&mut self, command: ProviderCommand) -> (Option<ProviderCommand>, Vec<(String, String)>) {
        match command {
            ProviderCommand::Subscribe(list) => {
                let (mut passed, mut refused) = (Vec::new(), Vec::new());
                for instrument in list {
                    if let Err(why) = check_symbol(&instrument, self.feed) {
                        refused.push((instrument, why));
                    } else if self.limit > 0
                        && !self.accepted.contains(&instrument)
                        && self.accepted.len() >= self.limit
                    {
                        let why = format!(
                            "the relay's Alpaca symbol limit ({}, --alpaca-symbol-limit) is reached; unsubscribe \
                             another stock first",
                            self.limit
                        );
                        refused.push((instrument, why));
                    } else {
                        self.accepted.insert(instrument.clone());
                        passed.push(instrument);
                    }
                }
                ((!passed.is_empty()).then_some(ProviderCommand::Subscribe(passed)), refused)
            }
            ProviderCommand::Unsubscribe(list) => {
                // Refused instruments were never passed on, so there is nothing upstream to release for them.
                let passed: Vec<String> = list.into_iter().filter(|i| self.accepted.remove(i)).collect();
                ((!passed.is_empty()).then_some(ProviderCommand::Unsubscribe(passed)), Vec::new())
            }
        }
    }
}

/// Why `instrument` cannot be a stock on Alpaca's stock feed, if it cannot.
fn check_symbol(instrument: &str, feed: Feed) -> Result<(), String> {
    let feed = feed.label();
    match AssetClass::of(instrument) {
        AssetClass::Crypto => Err(format!(
            "{instrument} looks like a crypto pair, but alpaca streams US stocks only (feed {feed}); subscribe to it \
             through a crypto provider, e.g. binance:{instrument}"
        )),
        AssetClass::Forex => Err(format!(
            "{instrument} looks like a currency pair, but alpaca streams US stocks only (feed {feed}); use a forex \
             provider, e.g. twelvedata:{instrument}"
        )),
        AssetClass::Equity => {
            let mut chars = instrument.chars();
            let shaped = chars.next().is_some_and(|c| c.is_ascii_uppercase())
                && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.');
            if shaped {
                Ok(())
            } else {
                Err(format!(
                    "{instrument} is not a US stock ticker as Alpaca spells it (letters, digits and '.', e.g. AAPL, \
                     BRK.B)"
                ))
            }
        }
    }
}

/// A subscribe or unsubscribe we sent and Alpaca has not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
}

impl Pending {
    /// Whether the subscription set `confirmed` already reflects this request.
    fn satisfied_by(&self, confirmed: &BTreeSet<String>) -> bool {
        match self {
            Pending::Subscribe(list) => list.iter().all(|s| confirmed.contains(s)),
            Pending::Unsubscribe(list) => list.iter().all(|s| !confirmed.contains(s)),
        }
    }
}

/// The latest of each half of a symbol's picture.
#[derive(Debug, Clone, Default, PartialEq)]
struct Book {
    /// Last trade price and its time (ms).
    trade: Option<(f64, i64)>,
    bid: Option<f64>,
    ask: Option<f64>,
    /// Time of the last quote (ms).
    quote_ts: Option<i64>,
}

struct AlpacaWire {
    url: String,
    key: Secret,
    secret: Secret,
    feed: Feed,
    keepalive: Option<Duration>,
    // Per connection, reset by `on_open`.
    auth_sent: bool,
    /// What we asked this connection to stream (after our own subscribes and unsubscribes).
    requested: BTreeSet<String>,
    /// The set of the last `subscription` acknowledgement.
    confirmed: BTreeSet<String>,
    /// Requests not yet reflected by an acknowledgement, oldest first.
    pending: VecDeque<Pending>,
    // Across connections: the last trade outlives a reconnect, and quotes after it still carry its price.
    books: HashMap<String, Book>,
}

/// One message of a server frame, by `T`.
#[derive(Debug, Deserialize)]
#[serde(tag = "T")]
enum Incoming {
    #[serde(rename = "success")]
    Success {
        #[serde(default)]
        msg: String,
    },
    #[serde(rename = "error")]
    Error {
        #[serde(default)]
        code: serde_json::Value,
        #[serde(default)]
        msg: serde_json::Value,
    },
    #[serde(rename = "subscription")]
    Subscription {
        #[serde(default)]
        trades: Option<Vec<String>>,
        #[serde(default)]
        quotes: Option<Vec<String>>,
    },
    #[serde(rename = "t")]
    Trade {
        #[serde(rename = "S")]
        symbol: String,
        #[serde(rename = "p")]
        price: f64,
        #[serde(rename = "t")]
        time: String,
    },
    #[serde(rename = "q")]
    Quote {
        #[serde(rename = "S")]
        symbol: String,
        #[serde(rename = "bp", default)]
        bid: Option<f64>,
        #[serde(rename = "ap", default)]
        ask: Option<f64>,
        #[serde(rename = "t")]
        time: String,
    },
    /// Bars, statuses, corrections and cancel errors (sent with trades automatically), and anything newer.
    #[serde(other)]
    Other,
}

/// `{"action":"auth",…}`, fields in the documented order.
#[derive(Serialize)]
struct Auth<'a> {
    action: &'static str,
    key: &'a str,
    secret: &'a str,
}

/// `{"action":"subscribe"|"unsubscribe","trades":[…],"quotes":[…]}`.
#[derive(Serialize)]
struct Action<'a> {
    action: &'static str,
    trades: &'a [String],
    quotes: &'a [String],
}

fn action(action: &'static str, instruments: &[String]) -> String {
    serde_json::to_string(&Action { action, trades: instruments, quotes: instruments }).unwrap_or_default()
}

impl AlpacaWire {
    fn new(url: String, key: Secret, secret: Secret, feed: Feed, keepalive: Option<Duration>) -> AlpacaWire {
        AlpacaWire {
            url,
            key,
            secret,
            feed,
            keepalive,
            auth_sent: false,
            requested: BTreeSet::new(),
            confirmed: BTreeSet::new(),
            pending: VecDeque::new(),
            books: HashMap::new(),
        }
    }

    fn auth_frame(&self) -> String {
        let auth = Auth { action: "auth", key: self.key.expose(), secret: self.secret.expose() };
        serde_json::to_string(&auth).unwrap_or_default()
    }

    fn on_success(&mut self, msg: &str) -> Option<WireEvent> {
        match msg {
            // Authenticate once per connection, right after the greeting, as the official SDKs do.
            "connected" if !self.auth_sent => {
                self.auth_sent = true;
                Some(WireEvent::Reply(self.auth_frame()))
            }
            "authenticated" => Some(WireEvent::Ready),
            other => Some(WireEvent::Info(format!("success: {other}"))),
        }
    }

    fn on_error(&mut self, code: i64, msg: &str) -> Vec<WireEvent> {
        let feed = self.feed.label();
        let event = match code {
            402 => WireEvent::Fatal {
                reason: format!(
                    "Alpaca refused the credentials (402 {msg}): check {} and {}",
                    KEY_VARS[0], KEY_VARS[1]
                ),
            },
            // The SDK retries 406 during connection setup: another session (often our own previous one, not yet
            // reaped) holds the account's single connection, so try again after a backoff.
            406 => WireEvent::Reconnect {
                reason: format!("Alpaca connection limit exceeded (406 {msg}): another session uses these keys"),
            },
            404 => WireEvent::Reconnect { reason: format!("Alpaca auth timeout (404 {msg})") },
            407 => WireEvent::Reconnect { reason: format!("Alpaca dropped us as a slow client (407 {msg})") },
            500 => WireEvent::Reconnect { reason: format!("Alpaca internal error (500 {msg})") },
            408 | 409 | 411 => WireEvent::Fatal {
                reason: format!(
                    "Alpaca refused the {feed} feed for these keys ({code} {msg}): check the plan or --alpaca-feed"
                ),
            },
            405 => return self.on_symbol_limit(msg),
            _ => {
                // 400 (syntax), 401 (not authenticated), 403 (already authenticated), 410 (channel) and newer codes:
                // nothing to retry or refuse on our side, but worth seeing.
                tracing::warn!(provider = NAME, code, %msg, "Alpaca reported an error");
                WireEvent::Info(format!("error {code}: {msg}"))
            }
        };
        vec![event]
    }

    /// 405 "symbol limit exceeded": Alpaca refused a whole subscribe (its set stays unchanged) without saying
    /// which. The refused one is the oldest subscribe not yet reflected by an acknowledgement, and of its symbols
    /// those not already streaming are the new ones. Limits are not documented per plan, so the known limit is
    /// what was confirmed plus all but one of them: the last symbol is rejected and the others resent, and each
    /// further 405 rejects one more, until what is left fits. A single-symbol subscribe — the usual case — is
    /// rejected at once.
    fn on_symbol_limit(&mut self, msg: &str) -> Vec<WireEvent> {
        let refused = self
            .pending
            .iter()
            .position(|p| matches!(p, Pending::Subscribe(_)) && !p.satisfied_by(&self.confirmed))
            .and_then(|at| self.pending.remove(at));
        let Some(Pending::Subscribe(list)) = refused else {
            tracing::warn!(provider = NAME, %msg, "Alpaca symbol limit exceeded, but no subscribe is pending");
            return vec![WireEvent::Info(format!("error 405 without a pending subscribe: {msg}"))];
        };
        let mut new: Vec<String> =
            list.into_iter().filter(|s| self.requested.contains(s) && !self.confirmed.contains(s)).collect();
        let Some(last) = new.pop() else { return Vec::new() };
        let mut events = Vec::new();
        if !new.is_empty() {
            self.pending.push_back(Pending::Subscribe(new.clone()));
            events.push(WireEvent::Reply(action("subscribe", &new)));
        }
        self.requested.remove(&last);
        self.books.remove(&last);
        events.push(WireEvent::Rejected {
            instrument: last,
            code: ErrorCode::ProviderRejected,
            message: format!(
                "Alpaca symbol limit exceeded (405 {msg}): this account's {} feed already streams {} symbols here",
                self.feed.label(),
                self.confirmed.len()
            ),
        });
        events
    }

    fn on_subscription(&mut self, trades: Vec<String>, quotes: Vec<String>) -> WireEvent {
        let info = format!("subscription: {} trades, {} quotes", trades.len(), quotes.len());
        self.confirmed = trades.into_iter().chain(quotes).collect();
        // Acknowledgements arrive in request order, so one reflecting a later request settles the earlier ones too
        // (a keep-alive's acknowledgement reflects nothing new and settles nothing that is not already done).
        if let Some(last) = self.pending.iter().rposition(|p| p.satisfied_by(&self.confirmed)) {
            self.pending.drain(..=last);
        }
        WireEvent::Info(info)
    }

    fn on_trade(&mut self, symbol: String, price: f64, time: &str) -> Option<Quote> {
        let usable = price.is_finite() && price > 0.0;
        if !usable || !self.requested.contains(&symbol) {
            return None;
        }
        let ts = rfc3339_ms(time)?;
        let book = self.books.entry(symbol.clone()).or_default();
        // A late-reported trade is history, not the latest price.
        if book.trade.is_some_and(|(_, last)| ts < last) {
            return None;
        }
        book.trade = Some((price, ts));
        merged(&symbol, price, ts, book)
    }

    fn on_quote(&mut self, symbol: String, bid: Option<f64>, ask: Option<f64>, time: &str) -> Option<Quote> {
        if !self.requested.contains(&symbol) {
            return None;
        }
        let ts = rfc3339_ms(time)?;
        let book = self.books.entry(symbol.clone()).or_default();
        if book.quote_ts.is_some_and(|last| ts < last) {
            return None;
        }
        // A side with no orders comes as 0: that is "no bid", not a bid of zero.
        let side = |v: Option<f64>| v.filter(|v| v.is_finite() && *v > 0.0);
        book.bid = side(bid);
        book.ask = side(ask);
        book.quote_ts = Some(ts);
        let (price, _) = book.trade?;
        merged(&symbol, price, ts, book)
    }
}

fn merged(symbol: &str, price: f64, ts: i64, book: &Book) -> Option<Quote> {
    Some(Quote {
        symbol: Symbol::parse(symbol).ok()?,
        price,
        ts,
        provider: NAME.to_owned(),
        bid: book.bid,
        ask: book.ask,
        // A trade's size is not a day volume, and no reference price comes with trades or quotes.
        volume: None,
        change: None,
        change_pct: None,
    })
}

impl Wire for AlpacaWire {
    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self) -> Result<Request, String> {
        // JSON text frames are the default; asking for them explicitly keeps msgpack out whatever the default.
        connection::request(&self.url, &[("Content-Type", "application/json")])
            .map_err(|e| format!("{e} (--alpaca-ws-url)"))
    }

    fn on_open(&mut self) -> Vec<String> {
        // Auth waits for the server's greeting (see `on_success`); here a new connection only starts clean.
        self.auth_sent = false;
        self.requested.clear();
        self.confirmed.clear();
        self.pending.clear();
        Vec::new()
    }

    fn waits_for_ready(&self) -> bool {
        true
    }

    fn subscribe(&mut self, instruments: &[String]) -> Vec<String> {
        if instruments.is_empty() {
            return Vec::new();
        }
        // The first subscribe of a connection carries the whole wanted set: drop books nobody wants any more.
        if self.requested.is_empty() {
            self.books.retain(|symbol, _| instruments.contains(symbol));
        }
        self.requested.extend(instruments.iter().cloned());
        self.pending.push_back(Pending::Subscribe(instruments.to_vec()));
        vec![action("subscribe", instruments)]
    }

    fn unsubscribe(&mut self, instruments: &[String]) -> Vec<String> {
        // Only what this connection streams: refused instruments are already gone upstream.
        let list: Vec<String> = instruments.iter().filter(|i| self.requested.remove(*i)).cloned().collect();
        if list.is_empty() {
            return Vec::new();
        }
        for symbol in &list {
            self.books.remove(symbol);
        }
        self.pending.push_back(Pending::Unsubscribe(list.clone()));
        vec![action("unsubscribe", &list)]
    }

    fn on_text(&mut self, text: &str) -> Vec<WireEvent> {
        let items = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Array(items)) => items,
            // Always an array per the docs; a bare object is read as an array of one rather than lost.
            Ok(object @ serde_json::Value::Object(_)) => vec![object],
            Ok(_) => return vec![WireEvent::Info("frame is not a JSON array".into())],
            Err(e) => return vec![WireEvent::Info(format!("unparsed frame ({e})"))],
        };
        let mut events = Vec::new();
        let mut quotes = Vec::new();
        for item in items {
            // One bad element must not cost the rest of a batch.
            let message = match serde_json::from_value::<Incoming>(item) {
                Ok(m) => m,
                Err(e) => {
                    events.push(WireEvent::Info(format!("unparsed message ({e})")));
                    continue;
                }
            };
            match message {
                Incoming::Trade { symbol, price, time } => quotes.extend(self.on_trade(symbol, price, &time)),
                Incoming::Quote { symbol, bid, ask, time } => quotes.extend(self.on_quote(symbol, bid, ask, &time)),
                Incoming::Success { msg } => events.extend(self.on_success(&msg)),
                Incoming::Subscription { trades, quotes: q } => {
                    events.push(self.on_subscription(trades.unwrap_or_default(), q.unwrap_or_default()))
                }
                Incoming::Error { code, msg } => {
                    let code = code.as_i64().or_else(|| code.as_str()?.trim().parse().ok()).unwrap_or(0);
                    let msg = msg.as_str().unwrap_or("").to_owned();
                    events.extend(self.on_error(code, &msg));
                }
                Incoming::Other => {}
            }
        }
        if !quotes.is_empty() {
            events.insert(0, WireEvent::Quotes(quotes));
        }
        events
    }

    fn keepalive(&self) -> Option<(Duration, String)> {
        self.keepalive.map(|every| (every, KEEPALIVE_FRAME.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKTESTKEY";
    const SECRET: &str = "s3cr3t-canary";

    fn wire() -> AlpacaWire {
        AlpacaWire::new(
            "ws://127.0.0.1:1/v2/iex".into(),
            Secret::new(KEY),
            Secret::new(SECRET),
            Feed::Iex,
            Some(Duration::from_secs(10)),
        )
    }

    /// A wire that is connected, authenticated and streams `symbols` (acknowledged).
    fn live(symbols: &[&str]) -> AlpacaWire {
        let mut w = wire();
        w.on_open();
        w.on_text(r#"[{"T":"success","msg":"connected"}]"#);
        assert_eq!(w.on_text(r#"[{"T":"success","msg":"authenticated"}]"#), [WireEvent::Ready]);
        let list: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
        w.subscribe(&list);
        w.on_text(&ack(symbols));
        w
    }

    fn ack(symbols: &[&str]) -> String {
        let list = serde_json::to_string(symbols).unwrap();
        format!(
            r#"[{{"T":"subscription","trades":{list},"quotes":{list},"bars":[],"updatedBars":[],"dailyBars":[],"statuses":[],"lulds":[],"corrections":{list},"cancelErrors":{list}}}]"#
        )
    }

    fn quotes(events: &[WireEvent]) -> Vec<Quote> {
        events
            .iter()
            .filter_map(|e| if let WireEvent::Quotes(q) = e { Some(q.clone()) } else { None })
            .flatten()
            .collect()
    }

    #[test]
    fn authenticates_after_the_greeting_then_is_ready() {
        let mut w = wire();
        assert!(w.on_open().is_empty(), "nothing before the greeting");
        let events = w.on_text(r#"[{"T":"success","msg":"connected"}]"#);
        assert_eq!(events, [WireEvent::Reply(format!(r#"{{"action":"auth","key":"{KEY}","secret":"{SECRET}"}}"#))]);
        assert!(w.on_text(r#"[{"T":"success","msg":"connected"}]"#).iter().all(|e| !matches!(e, WireEvent::Reply(_))));
        assert_eq!(w.on_text(r#"[{"T":"success","msg":"authenticated"}]"#), [WireEvent::Ready]);
        assert!(w.waits_for_ready());
        // A new connection authenticates again.
        w.on_open();
        assert!(matches!(w.on_text(r#"[{"T":"success","msg":"connected"}]"#)[0], WireEvent::Reply(_)));
    }

    #[test]
    fn subscribe_frames_are_documented_deltas() {
        let mut w = live(&[]);
        assert_eq!(
            w.subscribe(&["AAPL".into(), "BRK.B".into()]),
            [r#"{"action":"subscribe","trades":["AAPL","BRK.B"],"quotes":["AAPL","BRK.B"]}"#]
        );
        assert_eq!(
            w.unsubscribe(&["AAPL".into(), "NEVER".into()]),
            [r#"{"action":"unsubscribe","trades":["AAPL"],"quotes":["AAPL"]}"#]
        );
        assert!(w.unsubscribe(&["NEVER".into()]).is_empty(), "nothing to release upstream");
        assert_eq!(w.keepalive().map(|(_, f)| f).as_deref(), Some(KEEPALIVE_FRAME));
    }

    #[test]
    fn merges_trades_and_quotes_from_documented_frames() {
        let mut w = live(&["AAPL", "AMD"]);
        // A quote before any trade: no price is known yet, so nothing is emitted.
        let events = w.on_text(
            r#"[{"T": "q", "S": "AMD", "bx": "U", "bp": 87.66, "bs": 1, "ax": "Q", "ap": 87.68, "as": 4, "t": "2021-02-22T15:51:45.335689322Z", "c": ["R"], "z": "C"}]"#,
        );
        assert!(quotes(&events).is_empty(), "{events:?}");
        let events = w.on_text(
            r#"[{"T": "t", "i": 96921, "S": "AMD", "x": "D", "p": 87.67, "s": 1, "t": "2021-02-22T15:51:46.208Z", "c": ["@", "I"], "z": "C"}]"#,
        );
        let q = quotes(&events);
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].symbol.as_str(), "AMD");
        assert_eq!((q[0].price, q[0].bid, q[0].ask, q[0].ts), (87.67, Some(87.66), Some(87.68), 1_614_009_106_208));
        assert_eq!(q[0].provider, "alpaca");
        assert_eq!((q[0].volume, q[0].change, q[0].change_pct), (None, None, None), "nothing invented");
        // A later quote carries the last trade price; a batch yields one quote per message.
        let events = w.on_text(
            r#"[{"T":"q","S":"AMD","bp":87.70,"ap":87.72,"t":"2021-02-22T15:51:47.000000001Z"},{"T":"t","S":"AAPL","p":126.55,"t":"2021-02-22T15:51:44.208Z"}]"#,
        );
        let q = quotes(&events);
        assert_eq!(q.len(), 2);
        assert_eq!((q[0].price, q[0].bid, q[0].ask, q[0].ts), (87.67, Some(87.70), Some(87.72), 1_614_009_107_000));
        assert_eq!((q[1].symbol.as_str(), q[1].price, q[1].bid), ("AAPL", 126.55, None));
    }

    #[test]
    fn late_trades_and_empty_sides_do_not_mislead() {
        let mut w = live(&["AAPL"]);
        w.on_text(r#"[{"T":"t","S":"AAPL","p":100.5,"t":"2021-02-22T15:51:44.208Z"}]"#);
        let late = w.on_text(r#"[{"T":"t","S":"AAPL","p":99.0,"t":"2021-02-22T15:51:40Z"}]"#);
        assert!(quotes(&late).is_empty(), "an out-of-sequence trade does not replace the latest");
        let q = quotes(&w.on_text(r#"[{"T":"q","S":"AAPL","bp":0,"ap":100.6,"t":"2021-02-22T15:51:45Z"}]"#));
        assert_eq!((q[0].price, q[0].bid, q[0].ask), (100.5, None, Some(100.6)), "a 0 bid is no bid");
        // Data for an instrument we no longer stream (server-side buffering) is dropped.
        w.unsubscribe(&["AAPL".into()]);
        assert!(quotes(&w.on_text(r#"[{"T":"t","S":"AAPL","p":101,"t":"2021-02-22T15:52:00Z"}]"#)).is_empty());
    }

    #[test]
    fn errors_map_to_the_right_reaction() {
        let mut w = live(&[]);
        let events = w.on_text(r#"[{"T":"error","code":402,"msg":"auth failed"}]"#);
        let [WireEvent::Fatal { reason }] = events.as_slice() else { panic!("{events:?}") };
        assert!(reason.contains("402") && reason.contains("APCA_API_KEY_ID"), "{reason}");
        assert!(!reason.contains(SECRET) && !reason.contains(KEY));
        let events = w.on_text(r#"[{"T":"error","code":406,"msg":"connection limit exceeded"}]"#);
        assert!(matches!(&events[..], [WireEvent::Reconnect { reason }] if reason.contains("406")), "{events:?}");
        let events = w.on_text(r#"[{"T":"error","code":404,"msg":"auth timeout"}]"#);
        assert!(matches!(&events[..], [WireEvent::Reconnect { reason }] if reason.contains("auth timeout")));
        let events = w.on_text(r#"[{"T":"error","code":409,"msg":"insufficient subscription"}]"#);
        assert!(matches!(&events[..], [WireEvent::Fatal { reason }] if reason.contains("iex")), "{events:?}");
        let events = w.on_text(r#"[{"T":"error","code":"402","msg":"auth failed"}]"#);
        assert!(matches!(events[0], WireEvent::Fatal { .. }), "a stringly code still counts");
        for text in [
            r#"[{"T":"error","code":400,"msg":"invalid syntax"}]"#,
            r#"[{"T":"error","code":403,"msg":"already authenticated"}]"#,
            r#"[{"T":"error","code":999}]"#,
            r#"[{"T":"error"}]"#,
        ] {
            assert!(matches!(w.on_text(text)[..], [WireEvent::Info(_)]), "{text}");
        }
    }

    #[test]
    fn symbol_limit_rejects_the_refused_symbol() {
        let mut w = live(&["AAPL", "MSFT"]);
        w.subscribe(&["TSLA".into()]);
        let events = w.on_text(r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#);
        let [WireEvent::Rejected { instrument, code, message }] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!((instrument.as_str(), *code), ("TSLA", ErrorCode::ProviderRejected));
        assert!(message.contains("symbol limit") && message.contains("405"), "{message}");
        assert!(w.unsubscribe(&["TSLA".into()]).is_empty(), "nothing upstream to release");
        // The next subscribe is attributed on its own, not mixed up with the settled one.
        w.subscribe(&["NVDA".into()]);
        w.on_text(&ack(&["AAPL", "MSFT", "NVDA"]));
        assert!(w.pending.is_empty());
    }

    #[test]
    fn symbol_limit_on_a_batch_rejects_beyond_the_limit_and_resends_the_rest() {
        let mut w = live(&["AAPL"]);
        w.subscribe(&["AAPL".into(), "AMD".into(), "TSLA".into()]);
        let events = w.on_text(r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], WireEvent::Reply(r#"{"action":"subscribe","trades":["AMD"],"quotes":["AMD"]}"#.into()));
        assert!(matches!(&events[1], WireEvent::Rejected { instrument, .. } if instrument == "TSLA"));
        // The resend is refused too: AMD goes, nothing is resent.
        let events = w.on_text(r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#);
        assert!(matches!(&events[..], [WireEvent::Rejected { instrument, .. }] if instrument == "AMD"), "{events:?}");
        assert!(w.requested.contains("AAPL"), "the confirmed symbol is untouched");
        // A 405 nobody can be blamed for is logged, not turned into a rejection.
        assert!(matches!(w.on_text(r#"[{"T":"error","code":405,"msg":"x"}]"#)[..], [WireEvent::Info(_)]));
    }

    #[test]
    fn keepalive_acknowledgements_do_not_confuse_attribution() {
        let mut w = live(&["AAPL"]);
        w.subscribe(&["MSFT".into()]);
        // The keep-alive went out before MSFT's subscribe: its acknowledgement lacks MSFT.
        w.on_text(&ack(&["AAPL"]));
        let events = w.on_text(r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#);
        assert!(matches!(&events[..], [WireEvent::Rejected { instrument, .. }] if instrument == "MSFT"), "{events:?}");
    }

    #[test]
    fn odd_frames_do_not_panic() {
        let mut w = live(&["AAPL"]);
        for text in [
            "",
            "null",
            "42",
            "[]",
            "{}",
            "[1,2,null]",
            r#"[{"T":1}]"#,
            r#"[{"T":"t"}]"#,
            r#"[{"T":"t","S":"AAPL","p":"x","t":"2021-02-22T15:51:44Z"}]"#,
            r#"[{"T":"t","S":"AAPL","p":1e400,"t":"2021-02-22T15:51:44Z"}]"#,
            r#"[{"T":"t","S":"AAPL","p":-1,"t":"2021-02-22T15:51:44Z"}]"#,
            r#"[{"T":"t","S":"<>","p":1,"t":"2021-02-22T15:51:44Z"}]"#,
            r#"[{"T":"q","S":"AAPL","bp":null,"ap":"1","t":"2021-02-22T15:51:44Z"}]"#,
            r#"[{"T":"t","S":"AAPL","p":1,"t":"2021-02-22T15:51:4"}]"#,
            r#"[{"T":"t","S":"AAPL","p":1,"t":"2021-02-22T15:51:44.€Z"}]"#,
            r#"[{"T":"t","S":"AAPL","p":1,"t":"2021-02-30T15:51:44Z"}]"#,
            r#"[{"T":"subscription","trades":null}]"#,
            r#"[{"T":"success"}]"#,
            r#"[{"T":"b","S":"SPY","o":388.985,"h":389.13,"l":388.975,"c":389.12,"v":49378,"t":"2021-02-22T19:15:00Z"}]"#,
            r#"[{"T":"s","S":"AAPL","sc":"H","sm":"Trading Halt","rc":"T12","rm":"x","t":"2021-02-22T19:15:00Z","z":"C"}]"#,
            r#"{"T":"t","S":"AAPL","p":2,"t":"2021-02-22T15:51:45Z"}"#,
        ] {
            let _ = w.on_text(text);
        }
        // The bare object above was read, so the wire is still sane.
        let q = quotes(&w.on_text(r#"[{"T":"t","S":"AAPL","p":3,"t":"2021-02-22T15:51:46Z"}]"#));
        assert_eq!(q[0].price, 3.0);
    }

    #[test]
    fn rfc3339_to_milliseconds() {
        assert_eq!(rfc3339_ms("2021-02-22T15:51:44.208Z"), Some(1_614_009_104_208));
        assert_eq!(rfc3339_ms("2021-02-22T15:51:45.335689322Z"), Some(1_614_009_105_335));
        assert_eq!(rfc3339_ms("2024-07-24T07:56:53.639713735Z"), Some(1_721_807_813_639));
        assert_eq!(rfc3339_ms("2021-02-22T10:51:44.208-05:00"), Some(1_614_009_104_208));
        assert_eq!(rfc3339_ms("2000-02-29T23:59:59.9999Z"), Some(951_868_799_999));
        assert_eq!(rfc3339_ms("2021-02-22T19:15:00Z"), Some(1_614_021_300_000));
        assert_eq!(rfc3339_ms("1969-12-31T23:59:59.5Z"), Some(-500));
        assert_eq!(rfc3339_ms("2021-02-22T15:51:44.2Z"), Some(1_614_009_104_200));
        for bad in [
            "",
            "2021-02-22",
            "2021-02-22T15:51:44",
            "2021-02-22T15:51:44.Z",
            "2021-13-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2021-02-22T24:00:00Z",
            "2021-02-22T15:51:44Zjunk",
            "2021-02-22T15:51:44+0500",
            "2021-02-22T15:51:44+05:0x",
            "２０２１-02-22T15:51:44Z",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn feeds_pick_the_url_and_an_explicit_url_wins() {
        let args = |ws_url: Option<&str>, feed| AlpacaArgs {
            ws_url: ws_url.map(str::to_owned),
            feed,
            keepalive_ms: 0,
            symbol_limit: 0,
        };
        assert_eq!(args(None, Feed::Iex).url(), "wss://stream.data.alpaca.markets/v2/iex");
        assert_eq!(args(None, Feed::Sip).url(), "wss://stream.data.alpaca.markets/v2/sip");
        assert_eq!(args(None, Feed::Boats).url(), "wss://stream.data.alpaca.markets/v1beta1/boats");
        assert_eq!(args(Some("ws://127.0.0.1:9/v2/test"), Feed::Sip).url(), "ws://127.0.0.1:9/v2/test");
        let r = wire().request().unwrap();
        assert_eq!(r.headers().get("content-type").map(|v| v.to_str().unwrap()), Some("application/json"));
        assert!(r.uri().query().is_none(), "keys go in the auth message, not the URL");
    }

    #[test]
    fn only_us_stock_symbols_pass() {
        assert!(check_symbol("AAPL", Feed::Iex).is_ok());
        assert!(check_symbol("BRK.B", Feed::Iex).is_ok());
        assert!(check_symbol("FAKEPACA", Feed::Test).is_ok());
        assert!(check_symbol("BTC/USD", Feed::Iex).unwrap_err().contains("crypto"));
        assert!(check_symbol("EUR/USD", Feed::Iex).unwrap_err().contains("currency pair"));
        assert!(check_symbol("^GSPC", Feed::Iex).is_err());
        assert!(check_symbol("EURUSD=X", Feed::Iex).is_err());
    }

    #[test]
    fn gate_refuses_non_stocks_and_applies_the_local_cap() {
        let mut gate = Gate { feed: Feed::Iex, limit: 2, accepted: BTreeSet::new() };
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (passed, refused) = gate.filter(ProviderCommand::Subscribe(list(&["AAPL", "BTC/USD", "MSFT", "TSLA"])));
        assert_eq!(passed, Some(ProviderCommand::Subscribe(list(&["AAPL", "MSFT"]))));
        assert_eq!(refused.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(), ["BTC/USD", "TSLA"]);
        assert!(refused[1].1.contains("--alpaca-symbol-limit"));
        let (passed, _) = gate.filter(ProviderCommand::Unsubscribe(list(&["BTC/USD", "AAPL"])));
        assert_eq!(passed, Some(ProviderCommand::Unsubscribe(list(&["AAPL"]))), "refused ones are not released");
        let (passed, refused) = gate.filter(ProviderCommand::Subscribe(list(&["TSLA"])));
        assert_eq!((passed, refused.len()), (Some(ProviderCommand::Subscribe(list(&["TSLA"]))), 0));
    }
}

#[cfg(test)]
mod fuzz_tests;
