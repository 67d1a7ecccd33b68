//! Alpaca's market-data stream protocol: greeting, `auth`, `subscribe`/`unsubscribe` deltas acknowledged with the
//! full `subscription` set, trades and quotes merged into one quote per symbol, and the error codes
//! (`docs/providers/alpaca.md`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use hamster_shared::{ErrorCode, Quote, Symbol};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::handshake::client::Request;

use super::symbols::check_symbol;
use super::{Feed, KEY_VARS, NAME};
use crate::providers::rfc3339_ms;
use crate::providers::stream::{self, Capacity, Refusal, Wire, WireEvent};
use crate::secret::Secret;

/// A no-op delta, which Alpaca should answer with the full subscription set (UNVERIFIED): our keep-alive.
pub(super) const KEEPALIVE_FRAME: &str = r#"{"action":"subscribe","trades":[],"quotes":[]}"#;

/// A subscribe or unsubscribe we sent and Alpaca has not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pending {
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
pub(super) struct Book {
    /// Last trade price and its time (ms).
    trade: Option<(f64, i64)>,
    bid: Option<f64>,
    ask: Option<f64>,
    /// Time of the last quote (ms).
    quote_ts: Option<i64>,
}

pub(super) struct AlpacaWire {
    url: String,
    key: Secret,
    secret: Secret,
    feed: Feed,
    keepalive: Option<Duration>,
    /// The relay's own cap on streamed symbols (`--alpaca-symbol-limit`); 0 = none.
    pub(super) symbol_limit: usize,
    // Per connection, reset by `on_open`.
    auth_sent: bool,
    /// What we asked this connection to stream (after our own subscribes and unsubscribes).
    pub(super) requested: BTreeSet<String>,
    /// The set of the last `subscription` acknowledgement.
    pub(super) confirmed: BTreeSet<String>,
    /// Requests not yet reflected by an acknowledgement, oldest first.
    pub(super) pending: VecDeque<Pending>,
    // Across connections: the last trade outlives a reconnect, and quotes after it still carry its price.
    pub(super) books: HashMap<String, Book>,
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

pub(super) fn action(action: &'static str, instruments: &[String]) -> String {
    serde_json::to_string(&Action { action, trades: instruments, quotes: instruments }).unwrap_or_default()
}

impl AlpacaWire {
    pub(super) fn new(url: String, key: Secret, secret: Secret, feed: Feed, keepalive: Option<Duration>) -> AlpacaWire {
        AlpacaWire {
            url,
            key,
            secret,
            feed,
            keepalive,
            symbol_limit: 0,
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
            400 => return self.on_invalid_request(code, msg),
            _ => {
                // 401 (not authenticated), 403 (already authenticated), 410 (channel) and newer codes:
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

    /// 400 "invalid syntax" (which also covers a symbol Alpaca cannot parse) while a subscribe awaits its
    /// acknowledgement: Alpaca refused that message as a whole, its set unchanged, without saying which symbol it
    /// objects to. The refused message is the oldest not yet reflected by an acknowledgement; if it is a
    /// subscribe, its symbols not already streaming are handed to the driver, which retries them in smaller
    /// subscribes until the culprit is alone ([`WireEvent::RequestRefused`]). Anything else is only logged.
    fn on_invalid_request(&mut self, code: i64, msg: &str) -> Vec<WireEvent> {
        let oldest = self.pending.iter().position(|p| !p.satisfied_by(&self.confirmed));
        let Some(Pending::Subscribe(list)) = oldest.and_then(|at| self.pending.remove(at)) else {
            tracing::warn!(provider = NAME, code, %msg, "Alpaca reported an error");
            return vec![WireEvent::Info(format!("error {code}: {msg}"))];
        };
        let new: Vec<String> =
            list.into_iter().filter(|s| self.requested.contains(s) && !self.confirmed.contains(s)).collect();
        for symbol in &new {
            self.requested.remove(symbol);
            self.books.remove(symbol);
        }
        let what = match &new[..] {
            [one] => one.clone(),
            many => format!("a subscribe of {} symbols", many.len()),
        };
        vec![WireEvent::RequestRefused {
            instruments: new,
            code: ErrorCode::ProviderRejected,
            message: format!("Alpaca refused {what} ({code} {msg})"),
        }]
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
    Some(Quote { seq: None, recv: None,
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
    const NAME: &'static str = NAME;

    fn admit(&self, instrument: &str) -> Result<String, Refusal> {
        check_symbol(instrument, self.feed).map(|()| instrument.to_owned()).map_err(Refusal::rejected)
    }

    fn capacity(&self) -> Option<Capacity> {
        (self.symbol_limit > 0).then(|| Capacity {
            max: self.symbol_limit,
            full: format!(
                "the relay's Alpaca symbol limit ({}, --alpaca-symbol-limit) is reached; unsubscribe another stock first",
                self.symbol_limit
            ),
        })
    }

    fn request(&self) -> Result<Request, String> {
        // JSON text frames are the default; asking for them explicitly keeps msgpack out whatever the default.
        stream::request(&self.url, &[("Content-Type", "application/json")])
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

