//! Twelve Data: stocks, forex and crypto prices over `wss://ws.twelvedata.com/v1/quotes/price`, with a REST
//! `/price` fallback while the stream is down.
//!
//! Wire protocol (see `shared/reference/upstream-protocols.md` §1): auth by `?apikey=`; no greeting;
//! `{"action":"subscribe","params":{"symbols":"AAPL,EUR/USD"}}` answered by one `subscribe-status` whose
//! `fails[]` become per-symbol rejections; `price` events with a Unix-seconds `timestamp`, numeric `price`,
//! optional `bid`/`ask`/`day_volume`; `{"action":"heartbeat"}` every 10 s. The server accepts about 100 client
//! events a minute, so outgoing frames are paced at one per 600 ms. Instruments use Twelve Data's own spelling
//! (`AAPL`, `EUR/USD`, `BTC/USD`), so no mapping is needed.
//!
//! UNVERIFIED upstream behaviour, made configurable: how a bad key is refused (treated as bad credentials when
//! the upgrade gets HTTP 400, 401 or 403 — see [`Wire::is_auth_failure`]); the REST credit budget per minute
//! (`--twelvedata-rest-credits-per-min`, default 8 as on the Basic plan).

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use hamster_shared::{ErrorCode, ProviderState, Quote, Symbol};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Link, Timing, Wire, WireEvent};
use super::{EventSink, Provider, ProviderCommand};
use crate::clock::now_ms;
use crate::secret::Secret;

pub const NAME: &str = "twelvedata";
/// Environment variable holding the key.
pub const KEY_VAR: &str = "TWELVE_DATA_API_KEY";

/// Twelve Data settings (the key itself comes from [`KEY_VAR`]).
#[derive(Debug, Clone, clap::Args)]
pub struct TwelveDataArgs {
    /// Twelve Data streaming endpoint.
    #[arg(
        id = "twelvedata_ws_url",
        long = "twelvedata-ws-url",
        env = "TWELVE_DATA_WS_URL",
        default_value = "wss://ws.twelvedata.com/v1/quotes/price"
    )]
    pub ws_url: String,
    /// Twelve Data REST base, used by the fallback while the stream is down.
    #[arg(
        id = "twelvedata_rest_url",
        long = "twelvedata-rest-url",
        env = "TWELVE_DATA_REST_URL",
        default_value = "https://api.twelvedata.com"
    )]
    pub rest_url: String,
    /// API credits per minute the REST fallback may spend (1 per symbol per poll); 0 disables the fallback.
    #[arg(long = "twelvedata-rest-credits-per-min", env = "TWELVE_DATA_REST_CREDITS_PER_MIN", default_value_t = 8)]
    pub rest_credits_per_min: u32,
}

/// The Twelve Data provider.
#[derive(Debug)]
pub struct TwelveData {
    args: TwelveDataArgs,
    key: Secret,
    timing: Timing,
}

impl TwelveData {
    pub fn new(args: TwelveDataArgs, key: Secret, timing: Timing) -> TwelveData {
        TwelveData { args, key, timing }
    }
}

impl Provider for TwelveData {
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
            let (link_tx, link_rx) = watch::channel(Link::default());
            let wire = TdWire { ws_url: self.args.ws_url.clone(), key: self.key.clone() };
            let fallback = RestFallback {
                base: self.args.rest_url.trim_end_matches('/').to_owned(),
                key: self.key,
                credits_per_min: self.args.rest_credits_per_min,
            };
            let stream = connection::run(wire, commands, events.clone(), stop.clone(), self.timing, link_tx);
            tokio::join!(stream, fallback.run(link_rx, events, stop));
        }
        .boxed()
    }
}

struct TdWire {
    ws_url: String,
    key: Secret,
}

/// Frames from Twelve Data, by `event`.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum Incoming {
    Price {
        symbol: String,
        price: f64,
        timestamp: f64,
        bid: Option<f64>,
        ask: Option<f64>,
        day_volume: Option<f64>,
    },
    SubscribeStatus {
        status: String,
        #[serde(default)]
        fails: Option<Vec<Fail>>,
        #[serde(default)]
        messages: Option<Vec<String>>,
    },
    UnsubscribeStatus {
        status: String,
    },
    ResetStatus {
        status: String,
    },
    Heartbeat {
        status: String,
    },
    Error {
        #[serde(default)]
        message: Option<String>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Fail {
    symbol: String,
    #[serde(default)]
    message: Option<String>,
}

impl Wire for TdWire {
    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self) -> Result<Request, String> {
        let mut url = url::Url::parse(&self.ws_url).map_err(|_| "invalid --twelvedata-ws-url".to_owned())?;
        url.query_pairs_mut().append_pair("apikey", self.key.expose());
        connection::request(url.as_str(), &[])
    }

    fn subscribe(&mut self, instruments: &[String]) -> Vec<String> {
        vec![action("subscribe", instruments)]
    }

    fn unsubscribe(&mut self, instruments: &[String]) -> Vec<String> {
        vec![action("unsubscribe", instruments)]
    }

    fn on_text(&mut self, text: &str) -> Vec<WireEvent> {
        let incoming: Incoming = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return vec![WireEvent::Info(format!("unparsed frame ({e})"))],
        };
        match incoming {
            Incoming::Price { symbol, price, timestamp, bid, ask, day_volume } => {
                let Ok(symbol) = Symbol::parse(&symbol) else {
                    return vec![WireEvent::Info(format!("price for unusable symbol {symbol:?}"))];
                };
                if !price.is_finite() {
                    return Vec::new();
                }
                vec![WireEvent::Quotes(vec![Quote {
                    symbol,
                    price,
                    ts: (timestamp * 1000.0) as i64,
                    provider: NAME.to_owned(),
                    bid: bid.filter(|v| v.is_finite()),
                    ask: ask.filter(|v| v.is_finite()),
                    volume: day_volume.filter(|v| v.is_finite()),
                    change: None,
                    change_pct: None,
                }])]
            }
            Incoming::SubscribeStatus { status, fails, messages } => {
                let mut out: Vec<WireEvent> = fails
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| WireEvent::Rejected {
                        instrument: f.symbol,
                        code: ErrorCode::ProviderRejected,
                        message: f.message.unwrap_or_else(|| "Twelve Data refused this symbol".into()),
                    })
                    .collect();
                if let Some(messages) = messages {
                    out.push(WireEvent::Info(format!("subscribe-status {status}: {}", messages.join("; "))));
                }
                out
            }
            Incoming::UnsubscribeStatus { status }
            | Incoming::ResetStatus { status }
            | Incoming::Heartbeat { status } => {
                vec![WireEvent::Info(format!("ack: {status}"))]
            }
            Incoming::Error { message } => vec![WireEvent::Info(format!("error: {}", message.unwrap_or_default()))],
            Incoming::Other => Vec::new(),
        }
    }

    fn keepalive(&self) -> Option<(Duration, String)> {
        Some((Duration::from_secs(10), r#"{"action":"heartbeat"}"#.to_owned()))
    }

    fn min_send_interval(&self) -> Option<Duration> {
        // 100 client events per minute.
        Some(Duration::from_millis(600))
    }

    fn is_auth_failure(&self, status: u16) -> bool {
        matches!(status, 400 | 401 | 403)
    }
}

fn action(action: &str, instruments: &[String]) -> String {
    serde_json::json!({"action": action, "params": {"symbols": instruments.join(",")}}).to_string()
}

/// Polls `GET /price` for the wanted symbols while the stream is down, within a per-minute credit budget.
struct RestFallback {
    base: String,
    key: Secret,
    credits_per_min: u32,
}

impl RestFallback {
    async fn run(self, mut link: watch::Receiver<Link>, events: EventSink, stop: CancellationToken) {
        if self.credits_per_min == 0 {
            return;
        }
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "twelvedata REST fallback disabled: no HTTP client");
                return;
            }
        };
        // Round-robin position, so a budget smaller than the watchlist still refreshes every symbol in turn.
        let mut cursor = 0usize;
        loop {
            let state = link.borrow_and_update().clone();
            if state.live || state.desired.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = link.changed() => if changed.is_err() { return },
                }
                continue;
            }
            let budget = (self.credits_per_min as usize).min(state.desired.len()).max(1);
            let batch: Vec<String> =
                (0..budget).map(|i| state.desired[(cursor + i) % state.desired.len()].clone()).collect();
            cursor = (cursor + budget) % state.desired.len();
            match self.poll(&client, &batch).await {
                Ok(quotes) if !quotes.is_empty() => {
                    events.quotes(quotes).await;
                    events.status(ProviderState::Degraded, Some("stream down; polling REST /price".into())).await;
                }
                Ok(_) => {}
                Err(reason) => tracing::warn!(%reason, "twelvedata REST fallback poll failed"),
            }
            // Spend `budget` credits per poll, so poll every budget/credits_per_min minutes.
            let wait = Duration::from_secs_f64(60.0 * budget as f64 / f64::from(self.credits_per_min));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                // Stream back: stop polling at once.
                _ = link.wait_for(|l| l.live) => {}
            }
        }
    }

    async fn poll(&self, client: &reqwest::Client, symbols: &[String]) -> Result<Vec<Quote>, String> {
        let url = format!("{}/price", self.base);
        let response = client
            .get(url)
            .query(&[("symbol", symbols.join(",")), ("apikey", self.key.expose().to_owned())])
            .send()
            .await
            .map_err(|e| format!("request failed: {}", e.without_url()))?;
        let body: serde_json::Value = response.json().await.map_err(|e| format!("bad body: {}", e.without_url()))?;
        let ts = now_ms();
        parse_prices(&body, symbols, ts)
    }
}

/// Reads a `/price` body: `{"price":"1.0"}` for one symbol, `{"AAPL":{"price":"1.0"},…}` for several, and
/// `{"code":429,"message":…,"status":"error"}` (sometimes with HTTP 200) for errors, whole or per symbol.
fn parse_prices(body: &serde_json::Value, symbols: &[String], ts: i64) -> Result<Vec<Quote>, String> {
    if body.get("status").and_then(|s| s.as_str()) == Some("error") {
        let code = body.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
        let message = body.get("message").and_then(|m| m.as_str()).unwrap_or("");
        return Err(format!("Twelve Data error {code}: {message}"));
    }
    let price_of = |v: &serde_json::Value| -> Option<f64> {
        v.get("price")?.as_str()?.parse::<f64>().ok().filter(|p| p.is_finite())
    };
    let mut found: HashMap<&str, f64> = HashMap::new();
    if let [only] = symbols {
        if let Some(p) = price_of(body) {
            found.insert(only, p);
        }
    }
    for s in symbols {
        if let Some(p) = body.get(s.as_str()).and_then(price_of) {
            found.insert(s, p);
        }
    }
    Ok(symbols
        .iter()
        .filter_map(|s| {
            let price = *found.get(s.as_str())?;
            Some(Quote {
                symbol: Symbol::parse(s).ok()?,
                price,
                // REST /price carries no event time; the response time is the best bound we have.
                ts,
                provider: NAME.to_owned(),
                bid: None,
                ask: None,
                volume: None,
                change: None,
                change_pct: None,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire() -> TdWire {
        TdWire { ws_url: "ws://127.0.0.1:1/v1/quotes/price".into(), key: Secret::new("k&y") }
    }

    #[test]
    fn parses_documented_price_events() {
        let events = wire().on_text(
            r#"{"event":"price","symbol":"XAU/USD","currency":"USD","currency_base":"Gold Spot","currency_quote":"US Dollar","type":"Physical Currency","timestamp":1647950462,"price":1925.18,"bid":1925.05,"ask":1925.32}"#,
        );
        let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(q[0].symbol.as_str(), "XAU/USD");
        assert_eq!(
            (q[0].price, q[0].ts, q[0].bid, q[0].ask),
            (1925.18, 1_647_950_462_000, Some(1925.05), Some(1925.32))
        );
        assert_eq!(q[0].change, None, "Twelve Data WS gives no reference price");
        let events = wire().on_text(
            r#"{"event":"price","symbol":"AAPL","currency":"USD","exchange":"NASDAQ","type":"Common Stock","timestamp":1592249566,"price":342.0157,"day_volume":27631112}"#,
        );
        let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(q[0].volume, Some(27_631_112.0));
    }

    #[test]
    fn subscribe_status_fails_become_rejections() {
        let events = wire().on_text(
            r#"{"event":"subscribe-status","status":"warning","success":[{"symbol":"AMZN","exchange":"NASDAQ"}],"fails":[{"symbol":"1211","message":"You are not authorized to access XHKG data."}]}"#,
        );
        assert_eq!(
            events,
            [WireEvent::Rejected {
                instrument: "1211".into(),
                code: ErrorCode::ProviderRejected,
                message: "You are not authorized to access XHKG data.".into()
            }]
        );
        for text in [
            r#"{"event":"subscribe-status","status":"ok","success":[],"fails":null}"#,
            r#"{"event":"subscribe-status","status":"ok","success":[]}"#,
        ] {
            assert!(wire().on_text(text).is_empty(), "{text}");
        }
        let events = wire().on_text(r#"{"event":"subscribe-status","status":"error","fails":[{"symbol":"GBP/USD"}]}"#);
        assert!(matches!(&events[0], WireEvent::Rejected { instrument, .. } if instrument == "GBP/USD"));
    }

    #[test]
    fn odd_frames_do_not_panic() {
        for text in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"event":"price"}"#,
            r#"{"event":"price","symbol":"<>","price":1,"timestamp":1}"#,
        ] {
            let _ = wire().on_text(text);
        }
        assert!(matches!(wire().on_text(r#"{"event":"heartbeat","status":"ok"}"#)[0], WireEvent::Info(_)));
    }

    #[test]
    fn key_goes_in_the_query_url_encoded() {
        let r = wire().request().unwrap();
        assert_eq!(r.uri().query(), Some("apikey=k%26y"));
        assert_eq!(
            action("subscribe", &["AAPL".into(), "EUR/USD".into()]),
            r#"{"action":"subscribe","params":{"symbols":"AAPL,EUR/USD"}}"#
        );
    }

    #[test]
    fn rest_bodies() {
        let one = serde_json::json!({"price": "200.99001"});
        assert_eq!(parse_prices(&one, &["AAPL".into()], 5).unwrap()[0].price, 200.99001);
        let many = serde_json::json!({"AAPL": {"price": "189.30"}, "MSFT": {"code": 404, "status": "error"}});
        let q = parse_prices(&many, &["AAPL".into(), "MSFT".into()], 5).unwrap();
        assert_eq!(q.len(), 1);
        let err = serde_json::json!({"code": 429, "message": "You have run out of API credits for the current minute.", "status": "error"});
        assert!(parse_prices(&err, &["AAPL".into()], 5).unwrap_err().contains("429"));
    }
}

#[cfg(test)]
mod fuzz_tests;
