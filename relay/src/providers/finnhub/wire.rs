//! Finnhub's WebSocket protocol: `?token=` at the upgrade, one `subscribe`/`unsubscribe` frame per symbol, `trade`
//! batches, pings, and the anonymous symbol-limit error (`docs/providers/finnhub.md`).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use hamster_shared::{ErrorCode, Quote, Symbol};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::handshake::client::Request;

use super::symbols::SymbolMap;
use super::{FinnhubArgs, NAME};
use crate::providers::stream::{self, Capacity, Refusal, Wire, WireEvent};
use crate::secret::Secret;

pub(super) struct FhWire {
    ws_url: String,
    key: Secret,
    map: SymbolMap,
    /// The relay's cap on distinct Finnhub symbols (`--finnhub-max-symbols`); 0 = Finnhub's own only.
    pub(super) max_symbols: usize,
    pub(super) reply_pong: bool,
    auth_statuses: Vec<u16>,
    min_send_interval: Duration,
    /// This connection's subscriptions: Finnhub symbol → the instruments it feeds.
    pub(super) by_wire: HashMap<String, BTreeSet<String>>,
    /// This connection's Finnhub symbols in the order they were subscribed (to blame anonymous limit errors).
    pub(super) sent: Vec<String>,
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
    pub(super) fn new(args: &FinnhubArgs, key: Secret, map: SymbolMap) -> FhWire {
        FhWire {
            ws_url: args.ws_url.clone(),
            key,
            map,
            max_symbols: args.max_symbols,
            reply_pong: args.reply_pong,
            auth_statuses: args.auth_statuses.clone(),
            min_send_interval: Duration::from_millis(args.min_send_interval_ms),
            by_wire: HashMap::new(),
            sent: Vec::new(),
        }
    }

    pub(super) fn frame(kind: &str, symbol: &str) -> String {
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
                quotes.push(Quote { seq: None, recv: None,
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
        instruments
            .into_iter()
            .map(|instrument| {
                // The driver drops the instrument on this, which gives its slot back.
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
    const NAME: &'static str = NAME;

    fn admit(&self, instrument: &str) -> Result<String, Refusal> {
        Ok(self.map.to_wire(instrument))
    }

    fn capacity(&self) -> Option<Capacity> {
        (self.max_symbols > 0).then(|| Capacity {
            max: self.max_symbols,
            full: format!(
                "Finnhub streams at most {} symbols per connection (FINNHUB_MAX_SYMBOLS) and that many are in use",
                self.max_symbols
            ),
        })
    }

    fn request(&self) -> Result<Request, String> {
        let mut url = url::Url::parse(&self.ws_url).map_err(|_| "invalid --finnhub-ws-url".to_owned())?;
        url.query_pairs_mut().append_pair("token", self.key.expose());
        stream::request(url.as_str(), &[])
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

