//! Relay configuration: command-line flags, each with an environment-variable fallback (12-factor style, so
//! Render/Railway settings and `--flags` are interchangeable). README's configuration table mirrors this file.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::hub::HubConfig;
use crate::providers::connection::Timing;

/// Hamster Terminal relay: streams market data from upstream providers to browsers.
#[derive(Debug, Clone, Parser)]
// Later occurrences of a flag override earlier ones, so wrappers and tests can set defaults callers replace.
#[command(name = "hamster-relay", version, about, args_override_self = true)]
pub struct Config {
    /// TCP port to listen on (0 picks a free port; the chosen one is printed).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Providers to run, comma-separated; the first is the default route for symbols without a `provider:`
    /// prefix. Available: sim, twelvedata, binance, alpaca, finnhub, uw.
    #[arg(long, env = "PROVIDERS", value_delimiter = ',', default_value = "sim")]
    pub providers: Vec<String>,

    /// Routing rules `pattern=provider`, comma-separated, first match wins; patterns are `crypto`, `forex`,
    /// `equity`, `*`, an exact ticker, or a ticker with one `*` (`BTC/*`, `*/USDT`). Unmatched symbols go to the
    /// first provider. A `provider:SYMBOL` prefix always wins.
    #[arg(long = "route", env = "ROUTES", value_delimiter = ',')]
    pub routes: Vec<String>,

    /// Shortest reconnect backoff to an upstream provider (full jitter below it).
    #[arg(long, env = "UPSTREAM_BACKOFF_MIN_MS", default_value_t = 500)]
    pub upstream_backoff_min_ms: u64,

    /// Longest reconnect backoff to an upstream provider.
    #[arg(long, env = "UPSTREAM_BACKOFF_MAX_MS", default_value_t = 30_000)]
    pub upstream_backoff_max_ms: u64,

    /// An upstream connection silent for this long is considered dead and replaced.
    #[arg(long, env = "UPSTREAM_STALE_MS", default_value_t = 30_000)]
    pub upstream_stale_ms: u64,

    /// Wait before retrying a provider that refused our credentials.
    #[arg(long, env = "UPSTREAM_DOWN_RETRY_MS", default_value_t = 300_000)]
    pub upstream_down_retry_ms: u64,

    #[command(flatten)]
    pub twelvedata: crate::providers::twelvedata::TwelveDataArgs,

    #[command(flatten)]
    pub binance: crate::providers::binance::BinanceArgs,

    #[command(flatten)]
    pub alpaca: crate::providers::alpaca::AlpacaArgs,

    #[command(flatten)]
    pub finnhub: crate::providers::finnhub::FinnhubArgs,

    #[command(flatten)]
    pub uw: crate::providers::unusualwhales::UnusualWhalesArgs,

    /// Directory with the built dashboard, served at `/` when it exists.
    #[arg(long, env = "STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,

    /// Simulator ticks per second per subscribed symbol.
    #[arg(long, env = "SIM_TICK_HZ", default_value_t = 4.0)]
    pub sim_tick_hz: f64,

    /// Simulator random seed, for reproducible price paths.
    #[arg(long, env = "SIM_SEED")]
    pub sim_seed: Option<u64>,

    /// Interval of WebSocket pings to clients; a client silent for twice this long is dropped.
    #[arg(long, env = "HEARTBEAT_MS", default_value_t = 15_000)]
    pub heartbeat_ms: u64,

    /// A client whose socket accepts nothing for this long is dropped.
    #[arg(long, env = "WRITE_TIMEOUT_MS", default_value_t = 30_000)]
    pub write_timeout_ms: u64,

    /// Kernel send buffer per client socket in bytes (0 = OS default). Small buffers keep a slow client's
    /// backlog short, so it is conflated to fresh prices instead of reading seconds-old ones, and bound the
    /// kernel memory each connection can pin.
    #[arg(long, env = "SEND_BUFFER_BYTES", default_value_t = 131_072)]
    pub send_buffer_bytes: usize,

    /// Quote frames queued per client before it is conflated (latest value per symbol wins).
    #[arg(long, env = "CLIENT_QUEUE_FRAMES", default_value_t = 64)]
    pub client_queue_frames: usize,

    /// Most symbols one connection may subscribe to.
    #[arg(long, env = "MAX_SYMBOLS_PER_CONNECTION", default_value_t = 200)]
    pub max_symbols_per_connection: usize,

    /// Largest accepted client frame in bytes; larger ones close the connection with code 1009.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 65_536)]
    pub max_message_bytes: usize,

    /// Recent ticks kept per symbol for `/api/history`.
    #[arg(long, env = "HISTORY_TICKS", default_value_t = 600)]
    pub history_ticks: usize,

    /// One-minute candles kept per symbol for `/api/history`.
    #[arg(long, env = "HISTORY_CANDLES", default_value_t = 240)]
    pub history_candles: usize,

    /// How long a `GET /api/quotes` keeps its symbols subscribed upstream, in seconds.
    #[arg(long, env = "REST_LEASE_SECS", default_value_t = 60)]
    pub rest_lease_secs: u64,

    /// Seconds to wait for connections to close on SIGTERM/SIGINT before exiting anyway.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 5)]
    pub shutdown_grace_secs: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// How log lines are written (filter them with `RUST_LOG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

impl Config {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(100))
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms.max(100))
    }

    /// Reconnect timing shared by every upstream adapter.
    pub fn upstream_timing(&self) -> Timing {
        let ms = Duration::from_millis;
        Timing {
            backoff_min: ms(self.upstream_backoff_min_ms.max(1)),
            backoff_max: ms(self.upstream_backoff_max_ms.max(self.upstream_backoff_min_ms.max(1))),
            stale_after: ms(self.upstream_stale_ms.max(100)),
            down_retry: ms(self.upstream_down_retry_ms.max(100)),
            ..Timing::default()
        }
    }

    pub fn hub(&self) -> HubConfig {
        HubConfig {
            client_queue_frames: self.client_queue_frames,
            max_symbols_per_client: self.max_symbols_per_connection,
            history_ticks: self.history_ticks,
            history_candles: self.history_candles,
            lease_ttl: Duration::from_secs(self.rest_lease_secs),
            ..HubConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_readme() {
        let c = Config::try_parse_from(["hamster-relay"]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.host.to_string(), "0.0.0.0");
        assert_eq!(c.providers, ["sim"]);
        assert_eq!(c.log_format, LogFormat::Human);
    }

    #[test]
    fn flags_parse() {
        let c = Config::try_parse_from([
            "hamster-relay",
            "--port",
            "0",
            "--providers",
            "sim,other",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(c.port, 0);
        assert_eq!(c.providers, ["sim", "other"]);
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(Config::try_parse_from(["hamster-relay", "--port", "nope"]).is_err());
    }
}
