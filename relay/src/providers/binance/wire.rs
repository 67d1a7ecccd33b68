//! Binance's control protocol on the bare `/ws` endpoint: `SUBSCRIBE`/`UNSUBSCRIBE` requests by integer id, their
//! acknowledgements and errors, and `24hrTicker`/`24hrMiniTicker` events (`docs/providers/binance.md`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use hamster_shared::{ErrorCode, Quote, Symbol};
use serde::Serialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::handshake::client::Request;

use super::symbols::wire_symbol;
use super::{BinanceArgs, TickerStream, NAME};
use crate::providers::stream::{self, Capacity, Refusal, Wire, WireEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Subscribe,
    Unsubscribe,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Subscribe => "SUBSCRIBE",
            Method::Unsubscribe => "UNSUBSCRIBE",
        }
    }
}

/// A control request sent on this connection and not answered yet.
#[derive(Debug)]
pub(super) struct Pending {
    method: Method,
    /// Binance symbols (`btcusdt`) the request named.
    symbols: Vec<String>,
}

/// Control requests remembered at most; a server that never answers must not grow this without bound.
pub(super) const MAX_PENDING: usize = 4096;

/// Binance's wire protocol, plus what this connection has subscribed.
pub(super) struct BnWire {
    pub(super) ws_url: String,
    pub(super) stream: TickerStream,
    pub(super) usd_quote: String,
    pub(super) max_streams: usize,
    pub(super) per_request: usize,
    pub(super) pace: Option<Duration>,
    pub(super) max_age: Option<Duration>,
    /// Binance symbol (`btcusdt`) → instruments it feeds (`BTC/USD`, `BTC/USDT`). One entry per stream.
    pub(super) symbols: BTreeMap<String, BTreeSet<String>>,
    /// Instrument → its Binance symbol, for unsubscribing.
    pub(super) by_instrument: HashMap<String, String>,
    pub(super) pending: BTreeMap<u64, Pending>,
    pub(super) next_id: u64,
}

impl BnWire {
    pub(super) fn new(args: &BinanceArgs) -> BnWire {
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
        }
    }

    /// Frames for `method` on `symbols`, at most `per_request` streams each, remembered by id.
    fn control_frames(&mut self, method: Method, symbols: Vec<String>) -> Vec<String> {
        symbols
            .chunks(self.per_request)
            .map(|chunk| {
                let params: Vec<String> = chunk.iter().map(|s| format!("{s}{}", self.stream.suffix())).collect();
                self.control_frame(method, &params, chunk.to_vec())
            })
            .collect()
    }

    fn control_frame(&mut self, method: Method, params: &[String], symbols: Vec<String>) -> String {
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

    /// An error reply. One answering a SUBSCRIBE refuses that request as a whole: Binance does not say which
    /// stream it objects to, so its instruments are handed to the driver, which finds the culprit by retrying
    /// them in smaller requests ([`WireEvent::RequestRefused`]).
    fn error(&mut self, code: Option<i64>, msg: &str, id: Option<u64>) -> Vec<WireEvent> {
        let code = code.map_or_else(|| "?".to_owned(), |c| c.to_string());
        match id.and_then(|id| self.pending.remove(&id)) {
            Some(Pending { method: Method::Subscribe, symbols }) => {
                let mut instruments = Vec::new();
                for symbol in &symbols {
                    for instrument in self.symbols.remove(symbol).unwrap_or_default() {
                        self.by_instrument.remove(&instrument);
                        instruments.push(instrument);
                    }
                }
                let suffix = self.stream.suffix();
                let what = match &symbols[..] {
                    [one] => format!("{one}{suffix}"),
                    many => format!("a SUBSCRIBE of {} streams", many.len()),
                };
                vec![WireEvent::RequestRefused {
                    instruments,
                    code: ErrorCode::ProviderRejected,
                    message: format!("Binance refused {what}: {msg}"),
                }]
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
    const NAME: &'static str = NAME;

    fn request(&self) -> Result<Request, String> {
        stream::request(&self.ws_url, &[]).map_err(|_| "invalid --binance-ws-url".to_owned())
    }

    fn on_open(&mut self) -> Vec<String> {
        // A new connection has no streams: the driver resubscribes the whole desired set right after this.
        self.symbols.clear();
        self.by_instrument.clear();
        self.pending.clear();
        Vec::new()
    }

    fn admit(&self, instrument: &str) -> Result<String, Refusal> {
        wire_symbol(instrument, &self.usd_quote)
            .ok_or_else(|| Refusal::rejected("not a Binance spot pair: use BASE/QUOTE such as BTC/USDT or ETH/BTC"))
    }

    fn capacity(&self) -> Option<Capacity> {
        let full = format!("Binance allows {} streams per connection and all are in use", self.max_streams);
        Some(Capacity { max: self.max_streams, full })
    }

    fn subscribe(&mut self, instruments: &[String]) -> Vec<String> {
        let mut fresh = Vec::new();
        for instrument in instruments {
            if self.by_instrument.contains_key(instrument) {
                continue;
            }
            // Admitted instruments always have a symbol; the driver kept the stream count within capacity.
            let Some(symbol) = wire_symbol(instrument, &self.usd_quote) else { continue };
            if let Some(fed) = self.symbols.get_mut(&symbol) {
                // Another spelling of a stream we already have (BTC/USD beside BTC/USDT): no new stream.
                fed.insert(instrument.clone());
            } else {
                self.symbols.insert(symbol.clone(), BTreeSet::from([instrument.clone()]));
                fresh.push(symbol.clone());
            }
            self.by_instrument.insert(instrument.clone(), symbol);
        }
        self.control_frames(Method::Subscribe, fresh)
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
        let mut out = Vec::new();
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
fn encode(method: Method, params: &[String], id: u64) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        method: &'a str,
        params: &'a [String],
        id: u64,
    }
    // Serialising strings and integers cannot fail; should it ever, an empty frame is ignored upstream.
    serde_json::to_string(&Frame { method: method.as_str(), params, id }).unwrap_or_default()
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
    Some(Quote { seq: None, recv: None,
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

