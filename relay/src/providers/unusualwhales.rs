//! Unusual Whales: per-ticker live prices and non-price channels (options-flow alerts, news, GEX, option trades)
//! over `wss://api.unusualwhales.com/socket?token=…`.
//!
//! This module owns only the wire protocol (see `shared/reference/upstream-protocols.md` §5) and the mapping
//! between our instruments and Unusual Whales channel names; connecting, rejoining, backoff and the watchdog are
//! [`connection`]'s. The protocol: auth by `?token=` in the upgrade URL (a token without WebSocket entitlement is
//! refused with HTTP 401 there); no greeting; `{"channel":C,"msg_type":"join"}` per channel, acknowledged with
//! `[C,{"response":{},"status":"ok"}]`; every data frame is `[C, payload]`. `price:TICKER` payloads
//! (`{"close":"562.82","time":1726670327692,"vol":6015555}`) become quotes; every other channel's payloads are
//! passed through untouched as protocol `event`s, because they are documents (alerts, headlines) rather than
//! prices and the dashboard renders them as such.
//!
//! Instruments ↔ channels (symbols are upper-cased by the relay and may not contain `:`):
//! * a configured channel name, e.g. `FLOW-ALERTS` ↔ `flow-alerts`, `NEWS` ↔ `news`;
//! * `FAMILY-TICKER` for a configured per-ticker family, e.g. `GEX-SPY` ↔ `gex:SPY`,
//!   `OPTION_TRADES-JPM` ↔ `option_trades:JPM`;
//! * anything else is a ticker: `AAPL` ↔ `price:AAPL`.
//!
//! UNVERIFIED upstream behaviour, each made configurable: the shape of a failed join (any `[C, payload]` whose
//! payload has a string `status` and either a `response` member or a status from `--uw-join-error-statuses` is a
//! reply; a non-`ok` reply rejects the channel's symbols), whether `leave` is supported (`--uw-leave`), which HTTP
//! statuses at the upgrade mean a refused token (`--uw-auth-failure-statuses`), client message limits
//! (`--uw-min-send-interval-ms`), and the Cloudflare edge's User-Agent filtering (`--uw-user-agent`).

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use hamster_shared::{ErrorCode, Quote, Symbol};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Link, Timing, Wire, WireEvent};
use super::rfc3339_ms;
use super::unconfigured::NotConfigured;
use super::{EventSink, Provider, ProviderCommand};
use crate::clock::now_ms;
use crate::secret::Secret;

pub const NAME: &str = "uw";
/// Environment variable holding the API token.
pub const KEY_VAR: &str = "UW_API_TOKEN";

/// Unusual Whales settings (the token itself comes from [`KEY_VAR`], never a flag).
#[derive(Debug, Clone, clap::Args)]
pub struct UnusualWhalesArgs {
    /// Unusual Whales streaming endpoint (the token is added as `?token=`).
    #[arg(
        id = "uw_ws_url",
        long = "uw-ws-url",
        env = "UW_WS_URL",
        default_value = "wss://api.unusualwhales.com/socket"
    )]
    pub ws_url: String,

    /// Channels without a ticker, comma-separated; clients subscribe to them upper-cased (`uw:FLOW-ALERTS`).
    #[arg(
        id = "uw_channels",
        long = "uw-channels",
        env = "UW_CHANNELS",
        value_delimiter = ',',
        default_value = "flow-alerts,news,option_trades,lit_trades,off_lit_trades"
    )]
    pub channels: Vec<String>,

    /// Per-ticker channel families, comma-separated; clients subscribe to `FAMILY-TICKER` (`uw:GEX-SPY` joins
    /// `gex:SPY`). Plain tickers always join `price:TICKER`.
    #[arg(
        id = "uw_ticker_channels",
        long = "uw-ticker-channels",
        env = "UW_TICKER_CHANNELS",
        value_delimiter = ',',
        default_value = "option_trades,gex,gex_strike,gex_strike_expiry"
    )]
    pub ticker_channels: Vec<String>,

    /// Reply `status` values meaning a join failed even without a `response` member (UNVERIFIED shape).
    #[arg(
        id = "uw_join_error_statuses",
        long = "uw-join-error-statuses",
        env = "UW_JOIN_ERROR_STATUSES",
        value_delimiter = ',',
        default_value = "error"
    )]
    pub join_error_statuses: Vec<String>,

    /// Send `leave` when the last client of a channel goes (UNVERIFIED upstream support); with `false` the channel
    /// stays joined until the next reconnect and its late data is dropped.
    #[arg(
        id = "uw_leave",
        long = "uw-leave",
        env = "UW_LEAVE",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub leave: bool,

    /// HTTP statuses at the upgrade that mean the token was refused (then: `down`, slow retry).
    #[arg(
        id = "uw_auth_failure_statuses",
        long = "uw-auth-failure-statuses",
        env = "UW_AUTH_FAILURE_STATUSES",
        value_delimiter = ',',
        default_value = "401,403"
    )]
    pub auth_failure_statuses: Vec<u16>,

    /// User-Agent sent at the upgrade: the Cloudflare edge is observed to block some library defaults.
    #[arg(
        id = "uw_user_agent",
        long = "uw-user-agent",
        env = "UW_USER_AGENT",
        default_value = concat!("Mozilla/5.0 (compatible; hamster-relay/", env!("CARGO_PKG_VERSION"), ")")
    )]
    pub user_agent: String,

    /// Send a WebSocket ping after this many ms without any frame (the official examples ping after 30 s of
    /// silence); capped at half of `--upstream-stale-ms` so the pong arrives before the watchdog fires. 0 = never.
    #[arg(id = "uw_idle_ping_ms", long = "uw-idle-ping-ms", env = "UW_IDLE_PING_MS", default_value_t = 15_000)]
    pub idle_ping_ms: u64,

    /// Shortest gap between two frames sent upstream, in ms (0 = unpaced; no limit is documented).
    #[arg(
        id = "uw_min_send_interval_ms",
        long = "uw-min-send-interval-ms",
        env = "UW_MIN_SEND_INTERVAL_MS",
        default_value_t = 0
    )]
    pub min_send_interval_ms: u64,
}

/// Builds the provider from its settings and keys (`[UW_API_TOKEN]`, as read from the environment by the caller).
pub fn build(args: &UnusualWhalesArgs, keys: Vec<Secret>, timing: Timing) -> Box<dyn Provider> {
    match keys.into_iter().next() {
        Some(token) => {
            let mut wire = UwWire::new(args, token);
            wire.idle_ping = wire.idle_ping.map(|every| every.min(timing.stale_after / 2));
            Box::new(UnusualWhales { wire, timing })
        }
        None => Box::new(NotConfigured { name: NAME, reason: format!("set {KEY_VAR}") }),
    }
}

/// The Unusual Whales provider.
#[derive(Debug)]
pub struct UnusualWhales {
    wire: UwWire,
    timing: Timing,
}

impl Provider for UnusualWhales {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(
        self: Box<Self>,
        commands: mpsc::UnboundedReceiver<ProviderCommand>,
        events: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        // No fallback runs beside the stream, so nobody watches the link.
        let (link, _) = watch::channel(Link::default());
        connection::run(self.wire, commands, events, stop, self.timing, link).boxed()
    }
}

/// How our instruments map to Unusual Whales channel names and back.
#[derive(Debug, Clone)]
struct Channels {
    /// Lower-case channel names without a ticker (`flow-alerts`).
    plain: Vec<String>,
    /// Lower-case per-ticker families (`gex` for `gex:SPY`).
    families: Vec<String>,
}

/// What a channel carries, named by our instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `price:TICKER`: quotes for the instrument `TICKER`.
    Price(String),
    /// Any other channel: events for the instrument (`FLOW-ALERTS`, `GEX-SPY`).
    Channel(String),
}

impl Target {
    fn instrument(&self) -> &str {
        match self {
            Target::Price(i) | Target::Channel(i) => i,
        }
    }
}

impl Channels {
    fn new(plain: &[String], families: &[String]) -> Channels {
        let clean = |list: &[String]| -> Vec<String> {
            list.iter().map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()).collect()
        };
        Channels { plain: clean(plain), families: clean(families) }
    }

    /// The channel to join for `instrument`.
    fn channel_of(&self, instrument: &str) -> String {
        let lower = instrument.trim().to_ascii_lowercase();
        if self.plain.contains(&lower) {
            return lower;
        }
        for family in &self.families {
            let ticker = lower.strip_prefix(family.as_str()).and_then(|rest| rest.strip_prefix('-'));
            if let Some(ticker) = ticker.filter(|t| !t.is_empty()) {
                return format!("{family}:{}", ticker.to_ascii_uppercase());
            }
        }
        format!("price:{}", instrument.trim().to_ascii_uppercase())
    }

    /// The instrument a channel's frames belong to. Stateless (the inverse of [`Channels::channel_of`] for every
    /// configured name), so frames for channels we did not join simply find no subscriber in the sink.
    fn target_of(channel: &str) -> Target {
        match channel.split_once(':') {
            Some((family, ticker)) if family.eq_ignore_ascii_case("price") => {
                Target::Price(ticker.to_ascii_uppercase())
            }
            Some((family, ticker)) => Target::Channel(format!("{family}-{ticker}").to_ascii_uppercase()),
            None => Target::Channel(channel.to_ascii_uppercase()),
        }
    }
}

#[derive(Debug)]
struct UwWire {
    ws_url: String,
    token: Secret,
    channels: Channels,
    join_error_statuses: Vec<String>,
    leave: bool,
    auth_failure_statuses: Vec<u16>,
    user_agent: String,
    min_send_interval: Option<Duration>,
    idle_ping: Option<Duration>,
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
    fn new(args: &UnusualWhalesArgs, token: Secret) -> UwWire {
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

    fn frames(&self, instruments: &[String], msg_type: &str) -> Vec<String> {
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
    fn parse(&self, text: &str) -> Vec<WireEvent> {
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
    fn name(&self) -> &'static str {
        NAME
    }

    fn request(&self) -> Result<Request, String> {
        let mut url = url::Url::parse(&self.ws_url).map_err(|_| "invalid --uw-ws-url".to_owned())?;
        url.query_pairs_mut().append_pair("token", self.token.expose());
        let headers: &[(&str, &str)] =
            if self.user_agent.is_empty() { &[] } else { &[("User-Agent", self.user_agent.as_str())] };
        connection::request(url.as_str(), headers)
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
    Some(Quote {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        uw: UnusualWhalesArgs,
    }

    fn args(extra: &[&str]) -> UnusualWhalesArgs {
        let mut argv = vec!["test"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).uw
    }

    fn wire() -> UwWire {
        UwWire::new(&args(&[]), Secret::new("t&k"))
    }

    const FLOW_ALERT: &str = r#"["flow-alerts",{"rule_id":"5ce5ec11-087c-4c00-b164-08106b015856","rule_name":"RepeatedHitsDescendingFill","ticker":"DIA","option_chain":"DIA241018C00415000","underlying_price":415.981,"volume":106,"total_size":50,"total_premium":36466,"total_ask_side_prem":36466,"total_bid_side_prem":0,"start_time":1726670212648,"end_time":1726670212748,"url":"","price":7.3,"has_multileg":false,"has_sweep":false,"has_floor":false,"open_interest":575,"all_opening_trades":false,"id":"29ed5829-e4ce-4934-876b-51985d2f9b70","has_singleleg":true,"volume_oi_ratio":0,"trade_ids":["417f0cd6-09ae-4d43-8542-38557bb713aa","4af4c646-4b21-4a27-8326-db7b0698d3d8"],"trade_count":7,"expiry_count":1,"executed_at":1726670212748,"ask_vol":52,"bid_vol":49,"no_side_vol":0,"mid_vol":5,"multi_vol":0,"stock_multi_vol":0,"upstream_condition_details":["auto","slan"],"exchanges":["XCBO","MPRL"],"bid":"7.15","ask":"7.3"}]"#;

    #[test]
    fn defaults_parse_from_flags() {
        let a = args(&[]);
        assert_eq!(a.ws_url, "wss://api.unusualwhales.com/socket");
        assert_eq!(a.channels, ["flow-alerts", "news", "option_trades", "lit_trades", "off_lit_trades"]);
        assert_eq!(a.ticker_channels, ["option_trades", "gex", "gex_strike", "gex_strike_expiry"]);
        assert_eq!(a.auth_failure_statuses, [401, 403]);
        assert!(a.leave && a.user_agent.contains("hamster-relay"));
        let a = args(&["--uw-leave", "false", "--uw-channels", "flow-alerts", "--uw-min-send-interval-ms", "100"]);
        assert!(!a.leave);
        assert_eq!(a.channels, ["flow-alerts"]);
        assert_eq!(UwWire::new(&a, Secret::new("t")).min_send_interval(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn instruments_map_to_channels_and_back() {
        let w = wire();
        for (instrument, channel) in [
            ("AAPL", "price:AAPL"),
            ("BRK.B", "price:BRK.B"),
            ("FLOW-ALERTS", "flow-alerts"),
            ("NEWS", "news"),
            ("OPTION_TRADES", "option_trades"),
            ("OPTION_TRADES-JPM", "option_trades:JPM"),
            ("GEX-SPY", "gex:SPY"),
            ("GEX_STRIKE-SPY", "gex_strike:SPY"),
            ("GEX_STRIKE_EXPIRY-SPY", "gex_strike_expiry:SPY"),
            // Not a configured family: a ticker that happens to contain '-'.
            ("BF-B", "price:BF-B"),
            ("GEX", "price:GEX"),
        ] {
            assert_eq!(w.channels.channel_of(instrument), channel, "{instrument}");
            let back = Channels::target_of(channel);
            assert_eq!(back.instrument(), instrument, "{channel}");
            assert_eq!(matches!(back, Target::Price(_)), channel.starts_with("price:"), "{channel}");
        }
        // The configured set decides; names are matched case-insensitively.
        let custom = Channels::new(&[" Flow-Alerts ".into(), String::new()], &["GEX".into()]);
        assert_eq!(custom.channel_of("FLOW-ALERTS"), "flow-alerts");
        assert_eq!(custom.channel_of("NEWS"), "price:NEWS");
        assert_eq!(custom.channel_of("GEX-QQQ"), "gex:QQQ");
        assert_eq!(custom.channel_of("OPTION_TRADES-JPM"), "price:OPTION_TRADES-JPM");
        assert_eq!(
            w.frames(&["FLOW-ALERTS".into(), "AAPL".into()], "join"),
            [r#"{"channel":"flow-alerts","msg_type":"join"}"#, r#"{"channel":"price:AAPL","msg_type":"join"}"#]
        );
    }

    #[test]
    fn documented_price_frames_become_quotes() {
        let events = wire().on_text(r#"["price:SPY",{"close":"562.82","time":1726670327692,"vol":6015555}]"#);
        let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(q[0].symbol.as_str(), "SPY");
        assert_eq!((q[0].price, q[0].ts, q[0].volume), (562.82, 1_726_670_327_692, Some(6_015_555.0)));
        assert_eq!(q[0].provider, "uw");
        assert_eq!((q[0].bid, q[0].ask, q[0].change), (None, None, None), "never invented");
        // Numbers where the docs show strings, and the reverse, parse the same.
        let events = wire().on_text(r#"["price:SPY",{"close":562.5,"time":"1726670327692","vol":"12"}]"#);
        let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!((q[0].price, q[0].ts, q[0].volume), (562.5, 1_726_670_327_692, Some(12.0)));
        // No volume given: none reported.
        let events = wire().on_text(r#"["price:AAPL",{"close":"1","time":1726670327692}]"#);
        let [WireEvent::Quotes(q)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(q[0].volume, None);
    }

    #[test]
    fn documented_channel_frames_become_events() {
        let events = wire().on_text(FLOW_ALERT);
        let [WireEvent::Event { instrument, payload, ts }] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(instrument, "FLOW-ALERTS");
        assert_eq!(*ts, 1_726_670_212_748, "executed_at");
        assert_eq!(payload["rule_name"], "RepeatedHitsDescendingFill");
        assert_eq!(payload["bid"], "7.15", "payload passed through untouched");
        let expected: Value = serde_json::from_str::<Vec<Value>>(FLOW_ALERT).unwrap().remove(1);
        assert_eq!(*payload, expected);

        let events = wire().on_text(
            r#"["gex:SPY",{"ticker":"SPY","timestamp":1726670396000,"gamma_per_one_percent_move_oi":"-262444980.31","delta_per_one_percent_move_oi":"","price":"562.86"}]"#,
        );
        let [WireEvent::Event { instrument, ts, .. }] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!((instrument.as_str(), *ts), ("GEX-SPY", 1_726_670_396_000));

        let events = wire().on_text(
            r#"["news",{"headline":"US Energy Secretary foresees many more LNG export deals signed","timestamp":"2025-06-11T21:40:56Z","source":"social-media","tickers":[],"is_trump_ts":false}]"#,
        );
        let [WireEvent::Event { instrument, ts, .. }] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!((instrument.as_str(), *ts), ("NEWS", 1_749_678_056_000));

        let events = wire().on_text(
            r#"["option_trades:UVIX",{"id":"a4dc6020-0611-4c23-b0bc-99944c7348ab","underlying_symbol":"UVIX","executed_at":1726670167412,"price":"0.01"}]"#,
        );
        let [WireEvent::Event { instrument, ts, .. }] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!((instrument.as_str(), *ts), ("OPTION_TRADES-UVIX", 1_726_670_167_412));

        // No usable time: the receive time.
        let before = now_ms();
        let events = wire().on_text(r#"["lit_trades",{"ticker":"AAPL"}]"#);
        let [WireEvent::Event { ts, .. }] = events.as_slice() else { panic!("{events:?}") };
        assert!(*ts >= before);
    }

    #[test]
    fn join_acks_and_failures() {
        let w = wire();
        for ack in
            [r#"["option_trades",{"response":{},"status":"ok"}]"#, r#"["price:AAPL",{"response":{},"status":"ok"}]"#]
        {
            assert!(matches!(w.parse(ack).as_slice(), [WireEvent::Info(_)]), "{ack}");
        }
        // Phoenix-style reply and a flat error: both UNVERIFIED, both understood.
        for (frame, instrument, reason) in [
            (r#"["price:NOPE",{"response":{"reason":"unknown ticker"},"status":"error"}]"#, "NOPE", "unknown ticker"),
            (r#"["gex:SPY",{"status":"error","message":"not entitled"}]"#, "GEX-SPY", "not entitled"),
            (r#"["flow-alerts",{"response":{},"status":"unauthorized"}]"#, "FLOW-ALERTS", "status unauthorized"),
        ] {
            let events = w.parse(frame);
            let [WireEvent::Rejected { instrument: i, code, message }] = events.as_slice() else {
                panic!("{events:?}")
            };
            assert_eq!((i.as_str(), *code), (instrument, ErrorCode::ProviderRejected));
            assert!(message.contains(reason) && message.contains("Unusual Whales"), "{message}");
        }
        // Bare replies, and a reason given as the `response` itself.
        assert!(matches!(w.parse(r#"["news",{"status":"ok"}]"#).as_slice(), [WireEvent::Info(_)]));
        let events = w.parse(r#"["news",{"status":"forbidden","response":"plan lacks news"}]"#);
        assert!(matches!(&events[0], WireEvent::Rejected { message, .. } if message.contains("plan lacks news")));
        // A data document with an unrelated `status` field is data.
        let events = w.parse(r#"["news",{"headline":"x","status":"published"}]"#);
        assert!(matches!(events.as_slice(), [WireEvent::Event { .. }]), "{events:?}");
        // The error statuses are configurable.
        let w = UwWire::new(&args(&["--uw-join-error-statuses", "error,denied"]), Secret::new("t"));
        assert!(matches!(w.parse(r#"["news",{"status":"denied"}]"#)[0], WireEvent::Rejected { .. }));
    }

    #[test]
    fn odd_frames_never_panic() {
        let w = wire();
        for text in [
            "",
            "null",
            "1",
            "\"x\"",
            "[]",
            "{}",
            "[1,2]",
            r#"["price:AAPL"]"#,
            r#"["price:AAPL",null]"#,
            r#"["price:AAPL",[]]"#,
            r#"["price:AAPL",{}]"#,
            r#"["price:AAPL",{"close":"abc"}]"#,
            r#"["price:AAPL",{"close":"NaN","time":1}]"#,
            r#"["price:AAPL",{"close":"1e999"}]"#,
            r#"["price:<>",{"close":"1"}]"#,
            r#"["price:",{"close":"1"}]"#,
            r#"["",{"a":1}]"#,
            r#"[":",{"a":1}]"#,
            r#"["flow-alerts",{"executed_at":-5,"timestamp":"2025-13-45T99:99:99Z"}]"#,
            r#"["news",{"timestamp":"2025-06-11T21:40:56.5+0"}]"#,
            r#"["news",{"timestamp":"é2025-06-11T21:40:56Zéééééé"}]"#,
            r#"["flow-alerts",{"status":5,"response":1}]"#,
            r#"["flow-alerts",{"status":"error","response":{"reason":7}}]"#,
            r#"["a","b","c"]"#,
            r#"{"status":"error","message":"bad"}"#,
        ] {
            let _ = w.parse(text);
        }
        let events = w.parse(r#"["price:AAPL",{"close":"NaN","time":1}]"#);
        assert!(matches!(events.as_slice(), [WireEvent::Info(_)]), "a NaN price is no quote: {events:?}");
    }

    #[test]
    fn token_goes_in_the_query_and_never_into_text() {
        let r = wire().request().unwrap();
        assert_eq!(r.uri().path(), "/socket");
        assert_eq!(r.uri().query(), Some("token=t%26k"));
        assert!(r.headers().get("user-agent").is_some_and(|v| v.to_str().unwrap_or("").contains("hamster-relay")));
        let events = wire().on_text(r#"["price:X",{"response":{"reason":"bad token t&k"},"status":"error"}]"#);
        let [WireEvent::Rejected { message, .. }] = events.as_slice() else { panic!("{events:?}") };
        assert!(!message.contains("t&k") && message.contains("[redacted]"), "{message}");
        let events = wire().on_text(r#"{"echo":"t&k"}"#);
        let [WireEvent::Info(info)] = events.as_slice() else { panic!("{events:?}") };
        assert!(!info.contains("t&k"), "{info}");
    }

    #[test]
    fn leave_and_auth_statuses_are_configurable() {
        let mut w = wire();
        assert_eq!(w.unsubscribe(&["GEX-SPY".into()]), [r#"{"channel":"gex:SPY","msg_type":"leave"}"#]);
        assert!(w.is_auth_failure(401) && w.is_auth_failure(403) && !w.is_auth_failure(503));
        let mut w = UwWire::new(&args(&["--uw-leave", "false", "--uw-auth-failure-statuses", "401"]), Secret::new("t"));
        assert!(w.unsubscribe(&["GEX-SPY".into()]).is_empty());
        assert!(!w.is_auth_failure(403));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2025-06-11T21:40:56Z"), Some(1_749_678_056_000));
        assert_eq!(rfc3339_ms("2025-06-11T23:40:56.123+02:00"), Some(1_749_678_056_123));
        assert_eq!(rfc3339_ms("2024-02-29T00:00:00.5Z"), Some(1_709_164_800_500));
        for bad in ["", "2025-06-11", "2025-06-11T21:40:56", "2025-06-11T21:40:56.Z", "2025/06/11T21:40:56Z"] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod fuzz_tests;
