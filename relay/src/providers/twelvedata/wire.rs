//! Twelve Data's WebSocket protocol: the `?apikey=` upgrade, `subscribe`/`unsubscribe` actions with a comma list,
//! `price` events, `subscribe-status` failures as per-symbol rejections, and the 10 s heartbeat
//! (`docs/providers/twelvedata.md`).

use std::time::Duration;

use hamster_shared::{ErrorCode, Quote, Symbol};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::handshake::client::Request;

use super::NAME;
use crate::providers::stream::{self, Wire, WireEvent};
use crate::secret::Secret;

pub(super) struct TdWire {
    pub(super) ws_url: String,
    pub(super) key: Secret,
}

impl TdWire {
    pub(super) fn new(ws_url: String, key: Secret) -> TdWire {
        TdWire { ws_url, key }
    }
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
    const NAME: &'static str = NAME;

    fn request(&self) -> Result<Request, String> {
        let mut url = url::Url::parse(&self.ws_url).map_err(|_| "invalid --twelvedata-ws-url".to_owned())?;
        url.query_pairs_mut().append_pair("apikey", self.key.expose());
        stream::request(url.as_str(), &[])
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
                vec![WireEvent::Quotes(vec![Quote { seq: None, recv: None,
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

pub(super) fn action(action: &str, instruments: &[String]) -> String {
    serde_json::json!({"action": action, "params": {"symbols": instruments.join(",")}}).to_string()
}

