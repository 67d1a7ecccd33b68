//! Unusual Whales: per-ticker live prices and non-price channels (options-flow alerts, news, GEX, option trades)
//! over `wss://api.unusualwhales.com/socket?token=…`.
//!
//! This module owns only the wire protocol (`docs/providers/unusualwhales.md`) and the mapping between our
//! instruments and Unusual Whales channel names; connecting, rejoining, backoff and the watchdog are the shared
//! driver's ([`stream`](super::stream)). The protocol: auth by `?token=` in the upgrade URL (a token without WebSocket entitlement is
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
//! The configured channels are also the provider's catalog ([`catalog`]): searchable, and a mistyped channel name
//! is refused before anything is sent.
//!
//! UNVERIFIED upstream behaviour, each made configurable: the shape of a failed join (any `[C, payload]` whose
//! payload has a string `status` and either a `response` member or a status from `--uw-join-error-statuses` is a
//! reply; a non-`ok` reply rejects the channel's symbols), whether `leave` is supported (`--uw-leave`), which HTTP
//! statuses at the upgrade mean a refused token (`--uw-auth-failure-statuses`), client message limits

mod catalog;
mod channels;
mod wire;

use self::wire::UwWire;
use super::stream::Streaming;
use super::Adapter;

const NAME: &str = "uw";

pub(crate) const ADAPTER: Adapter = Adapter {
    name: NAME,
    aliases: &["unusualwhales"],
    about: "Unusual Whales: prices, options flow, news and GEX channels (UW_API_TOKEN)",
    key_vars: &["UW_API_TOKEN"],
    args: <UnusualWhalesArgs as clap::Args>::augment_args,
    build: |build| {
        let args: UnusualWhalesArgs = build.args()?;
        let mut wire = UwWire::new(&args, build.key()?);
        // The pong must arrive before the staleness watchdog fires.
        wire.idle_ping = wire.idle_ping.map(|every| every.min(build.timing.stale_after / 2));
        Ok(Box::new(Streaming::new(wire, build.timing).with_catalog(catalog::source(&args))))
    },
};

/// Unusual Whales settings (the token itself comes from `UW_API_TOKEN`, never a flag).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct UnusualWhalesArgs {
    /// Unusual Whales streaming endpoint (the token is added as `?token=`).
    #[arg(
        id = "uw_ws_url",
        long = "uw-ws-url",
        env = "UW_WS_URL",
        default_value = "wss://api.unusualwhales.com/socket"
    )]
    pub(crate) ws_url: String,

    /// Channels without a ticker, comma-separated; clients subscribe to them upper-cased (`uw:FLOW-ALERTS`).
    #[arg(
        id = "uw_channels",
        long = "uw-channels",
        env = "UW_CHANNELS",
        value_delimiter = ',',
        default_value = "flow-alerts,news,option_trades,lit_trades,off_lit_trades"
    )]
    pub(crate) channels: Vec<String>,

    /// Per-ticker channel families, comma-separated; clients subscribe to `FAMILY-TICKER` (`uw:GEX-SPY` joins
    /// `gex:SPY`). Plain tickers always join `price:TICKER`.
    #[arg(
        id = "uw_ticker_channels",
        long = "uw-ticker-channels",
        env = "UW_TICKER_CHANNELS",
        value_delimiter = ',',
        default_value = "option_trades,gex,gex_strike,gex_strike_expiry"
    )]
    pub(crate) ticker_channels: Vec<String>,

    /// Reply `status` values meaning a join failed even without a `response` member (UNVERIFIED shape).
    #[arg(
        id = "uw_join_error_statuses",
        long = "uw-join-error-statuses",
        env = "UW_JOIN_ERROR_STATUSES",
        value_delimiter = ',',
        default_value = "error"
    )]
    pub(crate) join_error_statuses: Vec<String>,

    /// Send `leave` when the last client of a channel goes (UNVERIFIED upstream support); with `false` the channel
    /// stays joined until the next reconnect and its late data is dropped.
    #[arg(
        id = "uw_leave",
        long = "uw-leave",
        env = "UW_LEAVE",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub(crate) leave: bool,

    /// HTTP statuses at the upgrade that mean the token was refused (then: `down`, slow retry).
    #[arg(
        id = "uw_auth_failure_statuses",
        long = "uw-auth-failure-statuses",
        env = "UW_AUTH_FAILURE_STATUSES",
        value_delimiter = ',',
        default_value = "401,403"
    )]
    pub(crate) auth_failure_statuses: Vec<u16>,

    /// User-Agent sent at the upgrade: the Cloudflare edge is observed to block some library defaults.
    #[arg(
        id = "uw_user_agent",
        long = "uw-user-agent",
        env = "UW_USER_AGENT",
        default_value = concat!("Mozilla/5.0 (compatible; hamster-relay/", env!("CARGO_PKG_VERSION"), ")")
    )]
    pub(crate) user_agent: String,

    /// Send a WebSocket ping after this many ms without any frame (the official examples ping after 30 s of
    /// silence); capped at half of `--upstream-stale-ms` so the pong arrives before the watchdog fires. 0 = never.
    #[arg(id = "uw_idle_ping_ms", long = "uw-idle-ping-ms", env = "UW_IDLE_PING_MS", default_value_t = 15_000)]
    pub(crate) idle_ping_ms: u64,

    /// Shortest gap between two frames sent upstream, in ms (0 = unpaced; no limit is documented).
    #[arg(
        id = "uw_min_send_interval_ms",
        long = "uw-min-send-interval-ms",
        env = "UW_MIN_SEND_INTERVAL_MS",
        default_value_t = 0
    )]
    pub(crate) min_send_interval_ms: u64,
}


#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
