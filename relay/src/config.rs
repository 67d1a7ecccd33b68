//! Relay configuration: command-line flags, each with an environment-variable fallback (12-factor style, so
//! Render/Railway settings and `--flags` are interchangeable). README's configuration table mirrors this file, and
//! a test (`readme_config`) holds the two together.
//!
//! Each default has one source: the hub's tunables are constants in [`crate::hub`] (also behind
//! [`HubConfig::default`]), upstream reconnect timing is `providers/stream/timing.rs`, and each adapter's flags
//! live in its own folder; the rest are written once, here.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::broker::BrokerArgs;
use crate::cluster::ClusterArgs;
use crate::guard::auth::JwtConfig;
use crate::guard::limits::CommandQuota;
use crate::guard::GuardConfig;
use crate::hub::{self, HubConfig};
use crate::providers::stream::timing::{Timing, TimingArgs};
use crate::providers::{Adapter, AdapterParser, ProviderArgs};
use crate::secret::Secret;
use crate::store::StoreArgs;

/// Hamster Terminal relay: streams market data from upstream providers to browsers.
#[derive(Debug, Clone, Parser)]
// Later occurrences of a flag override earlier ones, so wrappers and tests can set defaults callers replace.
#[command(name = "hamster-relay", version, about, args_override_self = true)]
pub struct Config {
    /// TCP port to listen on (0 picks a free port; the chosen one is printed).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub(crate) port: u16,

    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub(crate) host: IpAddr,

    /// Providers to run, comma-separated; the first is the default route for symbols without a `provider:`
    /// prefix.
    #[arg(long, env = "PROVIDERS", value_delimiter = ',', default_value = "sim", value_parser = AdapterParser)]
    pub(crate) providers: Vec<&'static Adapter>,

    /// Routing rules `pattern=provider`, comma-separated, first match wins; patterns are `crypto`, `forex`,
    /// `equity`, `*`, an exact ticker, or a ticker with one `*` (`BTC/*`, `*/USDT`). Unmatched symbols go to the
    /// first provider. A `provider:SYMBOL` prefix always wins.
    #[arg(long = "route", env = "ROUTES", value_delimiter = ',')]
    pub(crate) routes: Vec<String>,

    #[command(flatten)]
    pub(crate) upstream: TimingArgs,

    #[command(flatten)]
    pub(crate) provider_args: ProviderArgs,

    #[command(flatten)]
    pub(crate) store: StoreArgs,

    #[command(flatten)]
    pub(crate) broker: BrokerArgs,

    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,

    /// Run a tool instead of serving.
    #[command(subcommand)]
    pub command: Option<crate::cli::Command>,

    /// Replays of recorded data that may run at once, relay-wide (one per connection at most).
    #[arg(long, env = "MAX_REPLAYS", default_value_t = 8)]
    pub(crate) max_replays: usize,

    /// Directory with the built dashboard, served at `/` when it exists.
    #[arg(long, env = "STATIC_DIR", default_value = "dist")]
    pub(crate) static_dir: PathBuf,

    /// Interval of WebSocket pings to clients; a client silent for twice this long is dropped.
    #[arg(long, env = "HEARTBEAT_MS", default_value_t = 15_000)]
    pub(crate) heartbeat_ms: u64,

    /// A client whose socket accepts nothing for this long is dropped.
    #[arg(long, env = "WRITE_TIMEOUT_MS", default_value_t = 30_000)]
    pub(crate) write_timeout_ms: u64,

    /// Kernel send buffer per client socket in bytes (0 = OS default). Small buffers keep a slow client's
    /// backlog short, so it is conflated to fresh prices instead of reading seconds-old ones, and bound the
    /// kernel memory each connection can pin.
    #[arg(long, env = "SEND_BUFFER_BYTES", default_value_t = 131_072)]
    pub(crate) send_buffer_bytes: usize,

    /// Quote frames queued per client before it is conflated (latest value per symbol wins).
    #[arg(long, env = "CLIENT_QUEUE_FRAMES", default_value_t = hub::CLIENT_QUEUE_FRAMES)]
    pub(crate) client_queue_frames: usize,

    /// Most symbols one connection may subscribe to.
    #[arg(long, env = "MAX_SYMBOLS_PER_CONNECTION", default_value_t = hub::MAX_SYMBOLS_PER_CLIENT)]
    pub(crate) max_symbols_per_connection: usize,

    /// Largest accepted client frame in bytes; larger ones close the connection with code 1009.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 65_536)]
    pub(crate) max_message_bytes: usize,

    /// permessage-deflate (RFC 7692) on `/ws` for clients that offer it: `on` resets the compressor after each
    /// message so an idle connection holds none (docs/benchmarks.md), `context` keeps one per connection (fewer
    /// bytes, ~300 KB each), `off` never compresses.
    #[arg(long, env = "WS_DEFLATE", value_enum, default_value_t = WsDeflate::On)]
    pub(crate) ws_deflate: WsDeflate,

    /// LZ77 window of the relay's compressor in bits (9-15); smaller saves memory, larger compresses long
    /// messages better.
    #[arg(long, env = "WS_DEFLATE_WINDOW_BITS", default_value_t = 15, value_parser = clap::value_parser!(u8).range(9..=15))]
    pub(crate) ws_deflate_window_bits: u8,

    /// Recent ticks kept per symbol for `/api/history`.
    #[arg(long, env = "HISTORY_TICKS", default_value_t = hub::HISTORY_TICKS)]
    pub(crate) history_ticks: usize,

    /// One-minute candles kept per symbol for `/api/history`.
    #[arg(long, env = "HISTORY_CANDLES", default_value_t = hub::HISTORY_CANDLES)]
    pub(crate) history_candles: usize,

    /// Recent updates kept per symbol for clients that reconnect and resume where they stopped.
    #[arg(long, env = "RESUME_UPDATES", default_value_t = hub::RESUME_UPDATES)]
    pub(crate) resume_updates: usize,

    /// Seconds a subscribed symbol may produce nothing before its clients hear `no_data` (0 = never).
    #[arg(long, env = "NO_DATA_AFTER_SECS", default_value_t = hub::NO_DATA_AFTER_SECS)]
    pub(crate) no_data_after_secs: u64,

    /// How long a `GET /api/quotes` keeps its symbols subscribed upstream, in seconds.
    #[arg(long, env = "REST_LEASE_SECS", default_value_t = hub::LEASE_TTL_SECS)]
    pub(crate) rest_lease_secs: u64,

    /// Seconds to wait for connections to close on SIGTERM/SIGINT before exiting anyway.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 5)]
    pub(crate) shutdown_grace_secs: u64,

    /// Web origins allowed to open `/ws` and `/api/stream` and to read REST cross-origin, comma-separated:
    /// `https://app.example.com`, `https://*.example.com`. The relay's own origin is always allowed. Unset (or
    /// `*`) allows any origin, for local use only; the relay warns at startup.
    #[arg(long = "allowed-origin", env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub(crate) allowed_origins: Vec<String>,

    /// Host names the relay is served under (e.g. `terminal.example.com`), comma-separated. Orders are taken only
    /// through a known host: these, `localhost`, IP addresses and the hosts of `ALLOWED_ORIGINS`.
    #[arg(long = "public-host", env = "PUBLIC_HOSTS", value_delimiter = ',')]
    pub(crate) public_hosts: Vec<String>,

    /// Static bearer tokens clients may present, comma-separated (environment only: flags show in process lists).
    /// With neither tokens nor `JWT_SECRET`, client auth is off.
    #[arg(long = "auth-token", env = "AUTH_TOKENS", value_delimiter = ',', hide = true, hide_env_values = true)]
    pub(crate) auth_tokens: Vec<Secret>,

    /// HS256 secret for client JWTs (`exp` required; environment only).
    #[arg(long, env = "JWT_SECRET", hide = true, hide_env_values = true)]
    pub(crate) jwt_secret: Option<Secret>,

    /// Required JWT `aud` claim, if any.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub(crate) jwt_audience: Option<String>,

    /// Required JWT `iss` claim, if any.
    #[arg(long, env = "JWT_ISSUER")]
    pub(crate) jwt_issuer: Option<String>,

    /// Endpoints served without a token when auth is on, comma-separated (`healthz`, `metrics`; `none` for
    /// neither). Platforms' health checks carry no token, so `/healthz` is public by default.
    #[arg(long = "public-endpoint", env = "PUBLIC_ENDPOINTS", value_delimiter = ',', default_value = "healthz")]
    pub(crate) public_endpoints: Vec<PublicEndpoint>,

    /// Most concurrent WebSocket + SSE connections from one client address (IPv6: one /64); 0 = unlimited.
    #[arg(long, env = "MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub(crate) max_connections_per_ip: usize,

    /// Most symbols one client address may hold leased through `GET /api/quotes` at once (0 = unlimited).
    #[arg(long, env = "MAX_LEASES_PER_IP", default_value_t = 200)]
    pub(crate) max_leases_per_ip: usize,

    /// Sustained commands per second one connection may send (0 = unlimited); faster ones get `rate_limited`.
    #[arg(long, env = "MAX_COMMANDS_PER_SEC", default_value_t = 20)]
    pub(crate) max_commands_per_sec: u32,

    /// Commands one connection may send at once above the sustained rate.
    #[arg(long, env = "COMMAND_BURST", default_value_t = 40)]
    pub(crate) command_burst: u32,

    /// Refused commands (bad input, over a limit) one connection may send per minute, all at once at most;
    /// past that it is closed with code 1008 (0 = never).
    #[arg(long, env = "MAX_REFUSED_PER_MIN", default_value_t = 30)]
    pub(crate) max_refused_per_min: u32,

    /// WebSocket ping and pong frames one connection may send per second (twice that at once); past that it is
    /// closed with code 1008 (0 = unlimited).
    #[arg(long, env = "MAX_CONTROL_FRAMES_PER_SEC", default_value_t = 10)]
    pub(crate) max_control_frames_per_sec: u32,

    /// Reverse proxies in front of the relay that append the client address to `X-Forwarded-For` (1 on Render
    /// and Railway). 0 trusts no header: the TCP peer is the client.
    #[arg(long, env = "TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub(crate) trusted_proxy_hops: usize,

    /// A connection must send its complete HTTP request head (incl. the WebSocket handshake) within this long.
    #[arg(long, env = "HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub(crate) handshake_timeout_ms: u64,

    /// A WebSocket client silent this long (no frame, no pong) is dropped; default twice `--heartbeat-ms`.
    #[arg(long, env = "CLIENT_TIMEOUT_MS")]
    pub(crate) client_timeout_ms: Option<u64>,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// Endpoints that may be served without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PublicEndpoint {
    Healthz,
    Metrics,
    None,
}

/// Whether `/ws` negotiates permessage-deflate, and how much state a connection keeps for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WsDeflate {
    /// Never compress: the extension is not answered.
    Off,
    /// Compress without context takeover in either direction; compressors are shared between connections.
    On,
    /// Keep each connection's compression context from message to message.
    Context,
}

/// How log lines are written (filter them with `RUST_LOG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

impl Config {
    pub(crate) fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(100))
    }

    /// How long a silent WebSocket client is kept.
    pub(crate) fn client_timeout(&self) -> Duration {
        self.client_timeout_ms.map_or(2 * self.heartbeat(), |ms| Duration::from_millis(ms.max(100)))
    }

    pub(crate) fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms.max(100))
    }

    pub(crate) fn is_public(&self, endpoint: PublicEndpoint) -> bool {
        self.public_endpoints.contains(&endpoint)
    }

    /// The edge policy's settings.
    pub(crate) fn guard(&self) -> GuardConfig {
        GuardConfig {
            allowed_origins: self.allowed_origins.clone(),
            auth_tokens: self.auth_tokens.clone(),
            jwt: JwtConfig {
                secret: self.jwt_secret.clone(),
                audience: self.jwt_audience.clone(),
                issuer: self.jwt_issuer.clone(),
            },
            max_connections_per_ip: self.max_connections_per_ip,
            max_leases_per_ip: self.max_leases_per_ip,
            lease_ttl: Duration::from_secs(self.rest_lease_secs),
            commands: CommandQuota {
                per_second: self.max_commands_per_sec,
                burst: self.command_burst.max(self.max_commands_per_sec),
                refusals_per_minute: self.max_refused_per_min,
            },
            controls: CommandQuota {
                per_second: self.max_control_frames_per_sec,
                burst: self.max_control_frames_per_sec.saturating_mul(2),
                refusals_per_minute: 0,
            },
            proxy_hops: self.trusted_proxy_hops,
        }
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms.max(100))
    }

    /// Reconnect timing shared by every upstream adapter.
    pub(crate) fn upstream_timing(&self) -> Timing {
        self.upstream.timing()
    }

    /// The hub's tunables; those without a flag keep [`HubConfig::default`].
    pub(crate) fn hub(&self) -> HubConfig {
        HubConfig {
            client_queue_frames: self.client_queue_frames,
            max_symbols_per_client: self.max_symbols_per_connection,
            history_ticks: self.history_ticks,
            history_candles: self.history_candles,
            resume_updates: self.resume_updates,
            lease_ttl: Duration::from_secs(self.rest_lease_secs),
            no_data_after: (self.no_data_after_secs > 0).then(|| Duration::from_secs(self.no_data_after_secs)),
            ..HubConfig::default()
        }
    }
}

#[cfg(test)]
mod readme_config;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_readme() {
        let c = Config::try_parse_from(["hamster-relay"]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.host.to_string(), "0.0.0.0");
        assert_eq!(c.providers.iter().map(|a| a.name).collect::<Vec<_>>(), ["sim"]);
        assert_eq!(c.log_format, LogFormat::Human);
        assert!(c.allowed_origins.is_empty() && c.auth_tokens.is_empty() && c.jwt_secret.is_none());
        assert_eq!(c.public_endpoints, [PublicEndpoint::Healthz]);
        assert_eq!(c.client_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn hub_defaults_are_the_flags_defaults() {
        let c = Config::try_parse_from(["hamster-relay"]).unwrap();
        assert_eq!(format!("{:?}", c.hub()), format!("{:?}", HubConfig::default()));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = Config::try_parse_from([
            "hamster-relay",
            "--auth-token",
            "tok-canary-1,tok-canary-2",
            "--jwt-secret",
            "jwt-canary",
        ])
        .unwrap();
        assert_eq!(c.auth_tokens.len(), 2);
        let text = format!("{c:?}");
        assert!(!text.contains("canary"), "{text}");
    }

    #[test]
    fn flags_parse() {
        let c = Config::try_parse_from([
            "hamster-relay",
            "--port",
            "0",
            "--providers",
            "sim, Binance,unusualwhales",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(c.port, 0);
        assert_eq!(c.providers.iter().map(|a| a.name).collect::<Vec<_>>(), ["sim", "binance", "uw"]);
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(Config::try_parse_from(["hamster-relay", "--port", "nope"]).is_err());
        let unknown = Config::try_parse_from(["hamster-relay", "--providers", "sim,other"]).unwrap_err().to_string();
        assert!(
            unknown.contains("unknown provider \"other\"") && unknown.contains("available: sim, twelvedata"),
            "{unknown}"
        );
    }
}
