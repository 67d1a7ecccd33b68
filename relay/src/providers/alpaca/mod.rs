//! Alpaca Market Data v2 (US stocks): trades and quotes over `wss://stream.data.alpaca.markets/v2/{feed}`,
//! merged into one [`Quote`] per symbol.
//!
//! This module owns Alpaca's wire protocol (`docs/providers/alpaca.md`) and nothing else; admission,
//! reconnecting, resubscribing, backoff and the watchdog are the shared driver's ([`stream`](super::stream)). The flow per connection: the server
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
//! `AlpacaWire::on_symbol_limit`). Symbols that cannot be US stocks (`BTC/USD`, `EUR/USD`) are refused before
//! they reach Alpaca, each with a clear message.
//!
//! A stock's chart starts with its one-minute bars of the last day from the Market Data API ([`history`]), fetched
//! once when it is first wanted (`--alpaca-history-minutes`).
//!
//! UNVERIFIED upstream behaviour, made configurable or tolerated: per-plan symbol limits (Alpaca's 405s are acted
//! on whatever the limit; `--alpaca-symbol-limit` adds an optional local cap); whether the server pings or drops
//! quiet connections — an empty subscribe, a no-op delta that should be answered with the full `subscription` set,
//! is sent every `--alpaca-keepalive-ms` so the staleness watchdog does not replace a connection that is merely
//! quiet outside market hours (0 turns it off); whether the server closes the socket after 402/404/406 — the
//! adapter acts on the error itself and does not wait for a close.

mod catalog;
mod history;
mod symbols;
mod wire;

use std::time::Duration;

use self::wire::AlpacaWire;
use super::stream::Streaming;
use crate::secret::Secret;
use super::Adapter;

const NAME: &str = "alpaca";
/// Environment variables holding the key id and the secret, in the order the build function receives them.
const KEY_VARS: [&str; 2] = ["APCA_API_KEY_ID", "APCA_API_SECRET_KEY"];
/// Trading API hosts that list assets, paper first (which one answers depends on the keys).
const ASSETS_HOSTS: [&str; 2] = ["https://paper-api.alpaca.markets", "https://api.alpaca.markets"];
/// Production host; the path is picked by the feed.
const DEFAULT_HOST: &str = "wss://stream.data.alpaca.markets";

pub(crate) const ADAPTER: Adapter = Adapter {
    name: NAME,
    aliases: &[],
    about: "Alpaca Market Data: US stocks (APCA_API_KEY_ID, APCA_API_SECRET_KEY)",
    key_vars: &KEY_VARS,
    args: <AlpacaArgs as clap::Args>::augment_args,
    build: |build| {
        let args: AlpacaArgs = build.args()?;
        let [key, secret] = <[_; 2]>::try_from(build.keys).map_err(|_| format!("set {}", KEY_VARS.join(" and ")))?;
        // Keep-alives must land inside the staleness window, or they could not keep the watchdog fed.
        let keepalive = (args.keepalive_ms > 0)
            .then(|| Duration::from_millis(args.keepalive_ms).min(build.timing.stale_after / 2));
        let assets_hosts = match &args.assets_url {
            Some(url) => vec![url.clone()],
            None => ASSETS_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
        };
        let catalog = catalog::source(assets_hosts, &key, &secret, args.feed);
        let backfill = history::backfill(&args.data_url, &key, &secret, args.feed, args.history_minutes);
        let mut wire = AlpacaWire::new(args.url(), key, secret, args.feed, keepalive);
        wire.symbol_limit = args.symbol_limit;
        let streaming = Streaming::new(wire, build.timing);
        let streaming = match backfill {
            Some(backfill) => streaming.with_backfill(backfill),
            None => streaming,
        };
        Ok(Box::new(match catalog {
            Some(catalog) => streaming.with_catalog(catalog),
            None => streaming,
        }))
    },
};

/// A client that sends the key pair in Alpaca's headers (the Trading and Market Data REST APIs take the same);
/// `None`, logged, when the keys cannot be HTTP header values.
fn keyed_client(key: &Secret, secret: &Secret, timeout: Duration) -> Option<reqwest::Client> {
    let headers = [("APCA-API-KEY-ID", key.expose()), ("APCA-API-SECRET-KEY", secret.expose())];
    crate::secret::keyed_client(&headers, timeout)
        .map_err(|e| tracing::warn!(error = %e, "alpaca REST calls disabled"))
        .ok()
}

/// Alpaca's stock data feeds (the last path segment of the stream URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Feed {
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
    pub(super) fn path(self) -> &'static str {
        match self {
            Feed::Iex => "v2/iex",
            Feed::Sip => "v2/sip",
            Feed::DelayedSip => "v2/delayed_sip",
            Feed::Boats => "v1beta1/boats",
            Feed::Overnight => "v1beta1/overnight",
            Feed::Test => "v2/test",
        }
    }

    pub(super) fn label(self) -> &'static str {
        self.path().rsplit('/').next().unwrap_or("iex")
    }
}

/// Alpaca settings (keys come from the environment, never flags).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AlpacaArgs {
    /// Alpaca streaming endpoint, used verbatim (e.g. the sandbox). Unset: the production URL of --alpaca-feed,
    /// `wss://stream.data.alpaca.markets/v2/iex` by default.
    #[arg(id = "alpaca_ws_url", long = "alpaca-ws-url", env = "ALPACA_WS_URL", value_name = "URL")]
    pub(crate) ws_url: Option<String>,
    /// Trading API host that lists the assets (`/v2/assets`); default: the paper host, then the live one.
    #[arg(id = "alpaca_assets_url", long = "alpaca-assets-url", env = "ALPACA_ASSETS_URL", value_name = "URL")]
    pub(crate) assets_url: Option<String>,
    /// Alpaca stock feed: iex (free plans), sip (paid), delayed_sip, boats, overnight, or test.
    #[arg(
        id = "alpaca_feed",
        value_name = "FEED",
        long = "alpaca-feed",
        env = "ALPACA_FEED",
        value_enum,
        default_value = "iex"
    )]
    pub(crate) feed: Feed,
    /// Send a no-op subscribe this often so a quiet connection (no trades outside market hours) is not taken for a
    /// dead one; sent at least twice per --upstream-stale-ms window. 0 disables it.
    #[arg(
        id = "alpaca_keepalive_ms",
        value_name = "MS",
        long = "alpaca-keepalive-ms",
        env = "ALPACA_KEEPALIVE_MS",
        default_value_t = 10_000
    )]
    pub(crate) keepalive_ms: u64,
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
    pub(crate) symbol_limit: usize,
    /// Market Data API host, for charts' past (`/v2/stocks/{symbol}/bars`).
    #[arg(
        id = "alpaca_data_url",
        value_name = "URL",
        long = "alpaca-data-url",
        env = "ALPACA_DATA_URL",
        default_value = "https://data.alpaca.markets"
    )]
    pub(crate) data_url: String,
    /// Minutes of one-minute bars fetched when a stock is first wanted, so its chart opens with a past (0 = none).
    #[arg(
        id = "alpaca_history_minutes",
        value_name = "MINUTES",
        long = "alpaca-history-minutes",
        env = "ALPACA_HISTORY_MINUTES",
        default_value_t = 1440
    )]
    pub(crate) history_minutes: usize,
}

impl AlpacaArgs {
    /// The stream URL: the explicit one, else the production URL of the feed.
    pub(crate) fn url(&self) -> String {
        match &self.ws_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => format!("{DEFAULT_HOST}/{}", self.feed.path()),
        }
    }
}


#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
