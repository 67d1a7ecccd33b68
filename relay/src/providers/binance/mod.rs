//! Binance spot: crypto prices from the public market streams at `wss://stream.binance.com:9443/ws`. No key.
//!
//! This module owns only the wire protocol (`docs/providers/binance.md`); admission, reconnecting,
//! resubscribing, pacing and the staleness watchdog are the shared driver's ([`stream`](super::stream)). It connects to the
//! bare `/ws` endpoint and manages streams live: `{"method":"SUBSCRIBE","params":["btcusdt@ticker"],"id":1}`
//! answered by `{"result":null,"id":1}`, `UNSUBSCRIBE` alike, errors as `{"error":{"code":2,"msg":…},"id":1}`
//! (the flat `{"code":…,"msg":…}` form from the docs table is accepted too). Prices come from `<symbol>@ticker`
//! (or `@miniTicker`, `--binance-stream`) with string prices and an event time `E` in ms. The server pings every
//! 20 s and wants the payload echoed; tungstenite does that inside the driver's read loop.
//!
//! Limits the adapter keeps: 5 client messages per second, pings and pongs included, so control frames are
//! paced (300 ms by default, leaving room for a pong) and one SUBSCRIBE carries many streams; 1024 streams per
//! connection ([`Wire::capacity`](super::stream::Wire::capacity)), the excess rejected per symbol before anything is sent; a 24 h connection life, so the adapter reconnects on its own
//! before that (`--binance-max-connection-age-secs`) and at once on a `serverShutdown` event.
//!
//! A pair's chart starts with a day of one-minute candles from `GET /api/v3/klines` ([`history`]), fetched once
//! when the pair is first wanted (`--binance-history-minutes`).
//!
//! Symbols: `BTC/USD` ↔ `btcusdt` (a `USD` quote means Binance's `USDT`, `--binance-usd-quote`), `BTC/USDT` and
//! `ETH/BTC` as spelled, a bare `BTCUSDT` as Binance's own symbol. Several instruments can share one stream
//! (`BTC/USD` and `BTC/USDT`); the stream is subscribed once and each gets the quotes.
//!
//! UNVERIFIED upstream behaviour, made configurable: how many streams one SUBSCRIBE may carry
//! (`--binance-max-streams-per-request`, default 200); how the 5 msg/s window is counted (pacing,
//! `--binance-min-send-interval-ms`); what a SUBSCRIBE for a well-formed stream of an unknown symbol gets
//! (probably an ack and silence: nothing to reject then, the symbol just never quotes).

mod catalog;
mod history;
mod symbols;
mod wire;

use self::wire::BnWire;
use super::stream::Streaming;
use super::Adapter;

const NAME: &str = "binance";

pub(crate) const ADAPTER: Adapter = Adapter {
    name: NAME,
    aliases: &[],
    about: "Binance spot market streams: crypto (no key)",
    key_vars: &[],
    args: <BinanceArgs as clap::Args>::augment_args,
    build: |build| {
        let args: BinanceArgs = build.args()?;
        let catalog = catalog::source(&args.rest_url, &args.usd_quote);
        let stream = Streaming::new(BnWire::new(&args), build.timing).with_catalog(catalog);
        Ok(Box::new(match history::backfill(&args.rest_url, &args.usd_quote, args.history_minutes) {
            Some(backfill) => stream.with_backfill(backfill),
            None => stream,
        }))
    },
};

/// Which per-symbol stream carries prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TickerStream {
    /// `<symbol>@ticker`: last price, 24 h change and change %, best bid/ask, volume.
    #[value(name = "ticker")]
    Ticker,
    /// `<symbol>@miniTicker`: last price, 24 h open (change computed from it), volume; no bid/ask.
    #[value(name = "miniTicker", alias = "mini-ticker", alias = "miniticker")]
    MiniTicker,
}

impl TickerStream {
    pub(super) fn suffix(self) -> &'static str {
        match self {
            TickerStream::Ticker => "@ticker",
            TickerStream::MiniTicker => "@miniTicker",
        }
    }
}

/// Binance settings. Market streams need no key.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BinanceArgs {
    /// Binance streaming endpoint (the bare `/ws` path; streams are subscribed live).
    #[arg(
        id = "binance_ws_url",
        long = "binance-ws-url",
        env = "BINANCE_WS_URL",
        default_value = "wss://stream.binance.com:9443/ws"
    )]
    pub(crate) ws_url: String,
    /// Binance REST base, for the instrument list (`/api/v3/exchangeInfo`) and charts' past (`/api/v3/klines`),
    /// no key.
    #[arg(
        id = "binance_rest_url",
        long = "binance-rest-url",
        env = "BINANCE_REST_URL",
        default_value = "https://api.binance.com"
    )]
    pub(crate) rest_url: String,
    /// Stream per symbol: `ticker` (price, 24 h change, bid/ask, volume) or `miniTicker` (lighter, no bid/ask).
    #[arg(
        id = "binance_stream",
        long = "binance-stream",
        env = "BINANCE_STREAM",
        value_enum,
        default_value_t = TickerStream::Ticker
    )]
    pub(crate) stream: TickerStream,
    /// The Binance quote asset a `USD` quote maps to (`BTC/USD` → `BTCUSDT`).
    #[arg(id = "binance_usd_quote", long = "binance-usd-quote", env = "BINANCE_USD_QUOTE", default_value = "USDT")]
    pub(crate) usd_quote: String,
    /// Most streams on the one connection (Binance allows 1024); symbols beyond it are rejected.
    #[arg(
        id = "binance_max_streams",
        long = "binance-max-streams",
        env = "BINANCE_MAX_STREAMS",
        default_value_t = 1024
    )]
    pub(crate) max_streams: usize,
    /// Most streams named in one SUBSCRIBE/UNSUBSCRIBE (the upstream's own cap is undocumented).
    #[arg(
        id = "binance_max_streams_per_request",
        long = "binance-max-streams-per-request",
        env = "BINANCE_MAX_STREAMS_PER_REQUEST",
        default_value_t = 200
    )]
    pub(crate) max_streams_per_request: usize,
    /// Shortest gap between two control frames we send; Binance allows 5 messages/s, pongs included (0 = no
    /// pacing, only for tests).
    #[arg(
        id = "binance_min_send_interval_ms",
        long = "binance-min-send-interval-ms",
        env = "BINANCE_MIN_SEND_INTERVAL_MS",
        default_value_t = 300
    )]
    pub(crate) min_send_interval_ms: u64,
    /// Reconnect on our own after this long, before Binance cuts every connection at 24 h (0 = never).
    #[arg(
        id = "binance_max_connection_age_secs",
        long = "binance-max-connection-age-secs",
        env = "BINANCE_MAX_CONNECTION_AGE_SECS",
        default_value_t = 84_600
    )]
    pub(crate) max_connection_age_secs: u64,
    /// Minutes of one-minute candles fetched (`/api/v3/klines`) when a pair is first wanted, so its chart opens
    /// with a past (0 = none).
    #[arg(
        id = "binance_history_minutes",
        long = "binance-history-minutes",
        env = "BINANCE_HISTORY_MINUTES",
        default_value_t = 1440
    )]
    pub(crate) history_minutes: usize,
}


#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
