//! Unusual Whales' WebSocket protocol: `?token=` at the upgrade, `join`/`leave` per channel, `[channel, payload]`
//! frames, join replies, and the payloads that become quotes or events (`docs/providers/unusualwhales.md`).

use std::time::Duration;

use hamster_shared::{ErrorCode, Quote, Symbol};
use serde_json::{Map, Value};
use tokio_tungstenite::tungstenite::handshake::client::Request;

use super::channels::{Channels, Target};
use super::{UnusualWhalesArgs, NAME};
use crate::clock::now_ms;
use crate::providers::rfc3339_ms;
use crate::providers::stream::{self, Wire, WireEvent};
use crate::secret::Secret;

#[derive(Debug)]
pub(super) struct UwWire {
    ws_url: String,
    token: Secret,
    pub(super) channels: Channels,
    join_error_statuses: Vec<String>,
    leave: bool,
    auth_failure_statuses: Vec<u16>,
    user_agent: String,
    min_send_interval: Option<Duration>,
    pub(super) idle_ping: Option<Duration>,
}

/// Longest upstream-provided text we pass on (rejection reasons, logged frames): the network decides its length.
const MAX_TEXT: usize = 300;

/// The members a join/leave reply is made of (the documented `status`/`response`, and the usual names of an error
/// reason, since the failure shape is undocumented).
const REPLY_FIELDS: &[&str] = &["status", "response", "reason", "message", "error", "msg", "code"];

/// Payload fields that carry an event time, in order of preference (alerts and trades: `executed_at`; GEX and
/// news: `timestamp`; prices: `time`).
const TIME_FIELDS: &[&str] = &["executed_at", "timestamp", "time", "end_time", "start_time", "created_at"];

impl UwWire {
    pub(super) fn new(args: &UnusualWhalesArgs, token: Secret) -> UwWire {
        UwWire {
            ws_url: args.ws_url.clone(),
            token,
            channels: Channels::new(&args.channels, &args.ticker_channels),
            join_error_statuses: args.join_error_statuses.iter().map(|s| s.trim().to_ascii_lowercase()).collect(),
            leave: args.leave,
            auth_failure_statuses: args.auth_failure_statuses.clone(),
            user_agent: args.user_agent.trim().to_owned(),
            min_send_interval: (args.min_send_interval_ms > 0)
                .then(|| Duration::from_millis(args.min_send_interval_ms)),
            idle_ping: (args.idle_ping_ms > 0).then(|| Duration::from_millis(args.idle_ping_ms)),
        }
    }

    pub(super) fn frames(&self, instruments: &[String], msg_type: &str) -> Vec<String> {
        instruments
            .iter()
            .map(|i| serde_json::json!({"channel": self.channels.channel_of(i), "msg_type": msg_type}).to_string())
            .collect()
    }

    /// Upstream text made safe to log or show a client: bounded, and without our token should a server echo it.
    fn scrub(&self, text: &str) -> String {
        let mut text: String = text.chars().take(MAX_TEXT).collect();
        let token = self.token.expose();
        if !token.is_empty() && text.contains(token) {
            text = text.replace(token, "[redacted]");
        }
        text
    }

    /// A join/leave reply, if `payload` is one: `Some(Ok(()))` for success, `Some(Err(reason))` for a refusal.
    fn reply(&self, payload: &Map<String, Value>) -> Option<Result<(), String>> {
        let status = payload.get("status")?.as_str()?;
        let status_lower = status.to_ascii_lowercase();
        let is_error_status = self.join_error_statuses.contains(&status_lower);
        let only_reply_fields = payload.keys().all(|k| REPLY_FIELDS.contains(&k.as_str()));
        if !payload.contains_key("response") && !is_error_status && !only_reply_fields {
            // A data document that happens to have a `status` field.
            return None;
        }
        if status_lower == "ok" && !is_error_status {
            return Some(Ok(()));
        }
        let response = payload.get("response");
        let reason = [
            response.filter(|r| r.is_string()),
            response.and_then(|r| r.get("reason")),
            response.and_then(|r| r.get("message")),
            response.and_then(|r| r.get("error")),
            payload.get("reason"),
            payload.get("message"),
            payload.get("error"),
            payload.get("msg"),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().filter(|s| !s.trim().is_empty()))
        .map_or_else(|| format!("status {status}"), str::to_owned);
        Some(Err(reason))
    }

    /// Interprets one text frame (the protocol keeps no per-connection state, so `&self` suffices).
    pub(super) fn parse(&self, text: &str) -> Vec<WireEvent> {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return vec![WireEvent::Info(format!("unparsed frame ({e})"))],
        };
        match value {
            // Every documented frame is `[channel, payload]`.
            Value::Array(mut items) if items.len() == 2 => {
                let payload = items.pop().unwrap_or(Value::Null);
                match items.pop() {
                    Some(Value::String(channel)) => self.on_channel(&channel, payload),
                    _ => vec![WireEvent::Info(format!("frame without a channel name: {}", self.scrub(text)))],
                }
            }
            _ => vec![WireEvent::Info(format!("undocumented frame: {}", self.scrub(text)))],
        }
    }

    fn on_channel(&self, channel: &str, payload: Value) -> Vec<WireEvent> {
        let target = Channels::target_of(channel);
        let Value::Object(fields) = payload else {
            return vec![WireEvent::Info(format!("non-object payload on {}", self.scrub(channel)))];
        };
        match self.reply(&fields) {
            Some(Ok(())) => return vec![WireEvent::Info(format!("ack for {}", self.scrub(channel)))],
            Some(Err(reason)) => {
                return vec![WireEvent::Rejected {
                    instrument: target.instrument().to_owned(),
                    code: ErrorCode::ProviderRejected,
                    message: self.scrub(&format!("Unusual Whales refused channel {channel}: {reason}")),
                }];
            }
            None => {}
        }
        match target {
            Target::Price(ticker) => match price_quote(&ticker, &fields) {
                Some(quote) => vec![WireEvent::Quotes(vec![quote])],
                None => vec![WireEvent::Info(format!("unusable price frame on {}", self.scrub(channel)))],
            },
            Target::Channel(instrument) => {
                let ts = event_ts(&fields).unwrap_or_else(now_ms);
                vec![WireEvent::Event { instrument, payload: Value::Object(fields), ts }]
            }
        }
    }
}

impl Wire for UwWire {
    const NAME: &'static str = NAME;

    fn request(&self) -> Result<Request, String> {
        let mut url = url::Url::parse(&self.ws_url).map_err(|_| "invalid --uw-ws-url".to_owned())?;
        url.query_pairs_mut().append_pair("token", self.token.expose());
        let headers: &[(&str, &str)] =
            if self.user_agent.is_empty() { &[] } else { &[("User-Agent", self.user_agent.as_str())] };
        stream::request(url.as_str(), headers)
    }

    fn subscribe(&mut self, instruments: &[String]) -> Vec<String> {
        self.frames(instruments, "join")
    }

    fn unsubscribe(&mut self, instruments: &[String]) -> Vec<String> {
        if self.leave {
            self.frames(instruments, "leave")
        } else {
            Vec::new()
        }
    }

    fn on_text(&mut self, text: &str) -> Vec<WireEvent> {
        self.parse(text)
    }

    fn min_send_interval(&self) -> Option<Duration> {
        self.min_send_interval
    }

    fn idle_ping(&self) -> Option<Duration> {
        self.idle_ping
    }

    fn is_auth_failure(&self, status: u16) -> bool {
        self.auth_failure_statuses.contains(&status)
    }
}

/// A number that may arrive as a JSON number or a numeric string (Unusual Whales mixes both).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

/// Epoch milliseconds from a number or string in ms (as documented), seconds (tolerated: below 1e11 a value can
/// only be seconds, as 1e11 ms is 1973), or RFC 3339 text (news `timestamp`).
fn epoch_ms(v: &Value) -> Option<i64> {
    if let Value::String(s) = v {
        if let Some(ms) = rfc3339_ms(s.trim()) {
            return Some(ms);
        }
    }
    let n = number(v)?;
    if n <= 0.0 || n >= 1e15 {
        return None;
    }
    Some(if n < 1e11 { (n * 1000.0) as i64 } else { n as i64 })
}

fn event_ts(fields: &Map<String, Value>) -> Option<i64> {
    TIME_FIELDS.iter().find_map(|f| fields.get(*f).and_then(epoch_ms))
}

/// `price:TICKER` payload → quote. Only documented fields are used: `close` (price), `time` (ms), `vol`.
fn price_quote(ticker: &str, fields: &Map<String, Value>) -> Option<Quote> {
    let price = fields.get("close").and_then(number)?;
    let symbol = Symbol::parse(ticker).ok()?;
    Some(Quote { seq: None, recv: None,
        symbol,
        price,
        ts: fields.get("time").and_then(epoch_ms).unwrap_or_else(now_ms),
        provider: NAME.to_owned(),
        bid: None,
        ask: None,
        volume: fields.get("vol").and_then(number),
        change: None,
        change_pct: None,
    })
}

