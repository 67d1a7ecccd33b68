//! Finnhub: last-trade prices for US stocks, crypto and forex over `wss://ws.finnhub.io?token=KEY`.
//!
//! This module owns Finnhub's wire protocol (`docs/providers/finnhub.md`), the mapping
//! between our canonical instruments and Finnhub's exchange-prefixed symbols, and Finnhub's per-connection
//! symbol limit. Admission, reconnecting, resubscribing, the watchdog and status reporting are the shared driver's
//! ([`stream`](super::stream)).
//!
//! Wire protocol: auth by `?token=` (a bad key is refused with HTTP 401 at the upgrade); no greeting and no
//! acknowledgements; one `{"type":"subscribe","symbol":"AAPL"}` (or `unsubscribe`) per symbol; `trade` batches
//! `{"data":[{"c":[..],"p":..,"s":..,"t":..,"v":..}],"type":"trade"}` with `t` in Unix milliseconds and `v` the
//! size of that one trade; `{"type":"ping"}` every minute or two; `{"msg":"Subscribing to too many symbols",
//! "type":"error"}` when a subscribe goes over the plan's symbol limit — without naming the symbol.
//!
//! Choices made here, and why:
//! * One quote per symbol per batch, from its latest trade (highest `t`, the later one on a tie): a quote is a
//!   last price, and the hub would conflate the others away anyway.
//! * `volume` stays empty: `v` is one trade's size, not a day volume. Finnhub sends no bid/ask or change either.
//! * The symbol limit (`--finnhub-max-symbols`, default 50 as measured on the free tier) is the wire's
//!   capacity, so the driver refuses the excess per symbol at once, before Finnhub sees a subscribe. Should Finnhub still refuse one (a
//!   lower real limit), its anonymous error is pinned on the most recent subscribe still unblamed on this
//!   connection — Finnhub refuses everything past its limit, so k errors mean the last k subscribes.
//! * The watchdog allows 150 s of silence by default (`--finnhub-stale-ms`): Finnhub's pings are the only frames
//!   an idle stream (market closed) gets, and they come only every one to two minutes.
//!
//! UNVERIFIED upstream behaviour, made configurable: whether a client reply to `ping` is expected (not sent
//! unless `--finnhub-reply-pong`); which upgrade statuses mean a bad token (`--finnhub-auth-statuses`, default
//! 401 as observed and 403); the symbol limit; whether Finnhub limits client messages per second
//! (`--finnhub-min-send-interval-ms`, default no pacing).

mod catalog;
mod symbols;
mod wire;

use std::time::Duration;

use self::symbols::SymbolMap;
use self::wire::FhWire;
use super::stream::Streaming;
use super::Adapter;

const NAME: &str = "finnhub";
/// Environment variable holding the key.
const KEY_VAR: &str = "FINNHUB_API_KEY";

/// Silence allowed before the connection is replaced, unless `--finnhub-stale-ms` says otherwise (Finnhub pings
/// an idle stream only every one to two minutes).
const DEFAULT_STALE: Duration = Duration::from_secs(150);

pub(crate) const ADAPTER: Adapter = Adapter {
    name: NAME,
    aliases: &[],
    about: "Finnhub: US stocks, forex and crypto trades (FINNHUB_API_KEY)",
    key_vars: &[KEY_VAR],
    args: <FinnhubArgs as clap::Args>::augment_args,
    build: |build| {
        let args: FinnhubArgs = build.args()?;
        let map = SymbolMap::from_args(&args)?;
        let mut timing = build.timing.clone();
        timing.stale_after = stale_after(args.stale_ms, timing.stale_after);
        let key = build.key()?;
        let catalog =
            catalog::source(&args.rest_url, &key, map.clone(), &args.crypto_exchange, &args.forex_exchange);
        let streaming = Streaming::new(FhWire::new(&args, key, map), timing);
        Ok(Box::new(match catalog {
            Some(catalog) => streaming.with_catalog(catalog),
            None => streaming,
        }))
    },
};

/// Finnhub settings (keys come from the environment, never flags).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FinnhubArgs {
    /// Finnhub streaming endpoint (the key is added as `?token=`).
    #[arg(
        id = "finnhub_ws_url",
        long = "finnhub-ws-url",
        env = "FINNHUB_WS_URL",
        default_value = "wss://ws.finnhub.io"
    )]
    pub(crate) ws_url: String,
    /// Finnhub REST base, for the symbol lists (`/stock/symbol`, `/forex/symbol`, `/crypto/symbol`).
    #[arg(
        id = "finnhub_rest_url",
        long = "finnhub-rest-url",
        env = "FINNHUB_REST_URL",
        default_value = "https://finnhub.io/api/v1"
    )]
    pub(crate) rest_url: String,
    /// Most Finnhub symbols subscribed at once; the relay rejects subscriptions beyond it before Finnhub sees
    /// them. 50 is the free tier as measured (paid plans were reported at 250); 0 leaves limiting to Finnhub.
    #[arg(id = "finnhub_max_symbols", long = "finnhub-max-symbols", env = "FINNHUB_MAX_SYMBOLS", default_value_t = 50)]
    pub(crate) max_symbols: usize,
    /// Exchange prefix for crypto pairs: `BTC/USD` is streamed as `BINANCE:BTCUSDT`. Empty: no prefix.
    #[arg(
        id = "finnhub_crypto_exchange",
        long = "finnhub-crypto-exchange",
        env = "FINNHUB_CRYPTO_EXCHANGE",
        default_value = "BINANCE"
    )]
    pub(crate) crypto_exchange: String,
    /// What a crypto pair's `USD` quote currency is sent as (Binance lists USDT pairs, not USD). Empty: `USD`.
    #[arg(
        id = "finnhub_crypto_usd_quote",
        long = "finnhub-crypto-usd-quote",
        env = "FINNHUB_CRYPTO_USD_QUOTE",
        default_value = "USDT"
    )]
    pub(crate) crypto_usd_quote: String,
    /// Between a crypto pair's base and quote on the wire (`BINANCE:BTCUSDT` has none, `COINBASE:BTC-USD` `-`).
    #[arg(
        id = "finnhub_crypto_separator",
        long = "finnhub-crypto-separator",
        env = "FINNHUB_CRYPTO_SEPARATOR",
        default_value = ""
    )]
    pub(crate) crypto_separator: String,
    /// Exchange prefix for forex pairs: `EUR/USD` is streamed as `OANDA:EUR_USD`. Empty: no prefix.
    #[arg(
        id = "finnhub_forex_exchange",
        long = "finnhub-forex-exchange",
        env = "FINNHUB_FOREX_EXCHANGE",
        default_value = "OANDA"
    )]
    pub(crate) forex_exchange: String,
    /// Between a forex pair's base and quote on the wire (OANDA uses `_`).
    #[arg(
        id = "finnhub_forex_separator",
        long = "finnhub-forex-separator",
        env = "FINNHUB_FOREX_SEPARATOR",
        default_value = "_"
    )]
    pub(crate) forex_separator: String,
    /// Explicit mappings that win over the rules above, comma-separated `CANONICAL=FINNHUB`, e.g.
    /// `XAU/USD=OANDA:XAU_USD,ETH/EUR=KRAKEN:XETHZEUR`.
    #[arg(id = "finnhub_symbol_map", long = "finnhub-symbol-map", env = "FINNHUB_SYMBOL_MAP", value_delimiter = ',')]
    pub(crate) symbol_map: Vec<String>,
    /// Answer Finnhub's `{"type":"ping"}` with `{"type":"pong"}`. Finnhub documents no reply, so off by default.
    #[arg(id = "finnhub_reply_pong", long = "finnhub-reply-pong", env = "FINNHUB_REPLY_PONG")]
    pub(crate) reply_pong: bool,
    /// HTTP statuses refusing the upgrade that mean a bad key (reported `down`, retried slowly), comma-separated.
    #[arg(
        id = "finnhub_auth_statuses",
        long = "finnhub-auth-statuses",
        env = "FINNHUB_AUTH_STATUSES",
        value_delimiter = ',',
        default_value = "401,403"
    )]
    pub(crate) auth_statuses: Vec<u16>,
    /// Silence (not even a ping) after which the connection is replaced, in ms. Default: 150 s, or
    /// `--upstream-stale-ms` when that is longer.
    #[arg(id = "finnhub_stale_ms", long = "finnhub-stale-ms", env = "FINNHUB_STALE_MS")]
    pub(crate) stale_ms: Option<u64>,
    /// Shortest gap between two frames sent to Finnhub, in ms; 0 sends subscribes as fast as they come.
    #[arg(
        id = "finnhub_min_send_interval_ms",
        long = "finnhub-min-send-interval-ms",
        env = "FINNHUB_MIN_SEND_INTERVAL_MS",
        default_value_t = 0
    )]
    pub(crate) min_send_interval_ms: u64,
}


/// The watchdog's limit: `--finnhub-stale-ms` if given, else the general one but never under [`DEFAULT_STALE`],
/// since a healthy idle Finnhub stream is silent between pings for up to two minutes.
fn stale_after(finnhub_ms: Option<u64>, general: Duration) -> Duration {
    match finnhub_ms {
        Some(ms) => Duration::from_millis(ms.max(100)),
        None => general.max(DEFAULT_STALE),
    }
}


#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
