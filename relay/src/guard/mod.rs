//! The relay's edge policy: who may connect ([`origin`], [`auth`]) and how much they may ask ([`limits`]).
//!
//! Everything here runs before a client reaches the hub, and the hub knows nothing of it. Refusals are HTTP
//! errors with a JSON body and a stable code (401 `unauthorized`, 403 `forbidden`, 429 `too_many_connections`)
//! on the handshake, or an `error` message and then close code 1008 on an open connection.

pub(crate) mod auth;
pub(crate) mod limits;
pub(crate) mod origin;
pub(crate) mod site;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::auth::{Auth, JwtConfig};
use self::limits::{AddressLeaseLimit, CommandQuota, IpLimiter, IpPermit, LeaseLedger};
use self::origin::OriginPolicy;
use crate::error::HttpError;
use crate::metrics::Metrics;

pub(crate) use self::auth::Authenticated;
pub(crate) use self::limits::{CommandBudget, Verdict};

/// Everything the edge checks, built once from the configuration.
#[derive(Debug)]
pub(crate) struct Guard {
    origins: OriginPolicy,
    auth: Auth,
    ips: Arc<IpLimiter>,
    leases: LeaseLedger,
    commands: CommandQuota,
    controls: CommandQuota,
    /// Reverse proxies in front of the relay that append to `X-Forwarded-For` (0 = trust no header).
    proxy_hops: usize,
    metrics: Arc<Metrics>,
}

/// The edge settings, as configured by flags and environment.
#[derive(Debug, Clone)]
pub(crate) struct GuardConfig {
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) auth_tokens: Vec<crate::secret::Secret>,
    pub(crate) jwt: JwtConfig,
    pub(crate) max_connections_per_ip: usize,
    /// Symbols one address may hold leased through REST, and for how long a lease lasts.
    pub(crate) max_leases_per_ip: usize,
    pub(crate) lease_ttl: Duration,
    pub(crate) commands: CommandQuota,
    /// WebSocket ping and pong frames one connection may send (the rate, and the burst on top).
    pub(crate) controls: CommandQuota,
    pub(crate) proxy_hops: usize,
}

/// Why a stream handshake was refused. Texts are safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The page's `Origin` is not on the allowlist.
    #[error("origin {0:?} is not allowed to connect (see ALLOWED_ORIGINS)")]
    Origin(String),
    /// The client's address already holds its share of connections.
    #[error("too many connections from this address")]
    TooManyConnections,
}

/// A streaming client let in: its address slot, and until when its credential holds.
#[derive(Debug)]
pub(crate) struct ClientPass {
    pub(crate) ip: IpAddr,
    pub(crate) expires: Option<std::time::SystemTime>,
    _slot: IpPermit,
}

impl ClientPass {
    /// Time left before the credential expires; a century for credentials that do not.
    pub(crate) fn time_left(&self) -> Duration {
        match self.expires {
            Some(at) => at.duration_since(std::time::SystemTime::now()).unwrap_or_default(),
            None => Duration::from_secs(100 * 365 * 86_400),
        }
    }
}

impl Guard {
    pub(crate) fn new(config: GuardConfig, metrics: Arc<Metrics>) -> anyhow::Result<Guard> {
        Ok(Guard {
            origins: OriginPolicy::parse(&config.allowed_origins)?,
            auth: Auth::new(config.auth_tokens, config.jwt),
            ips: IpLimiter::new(config.max_connections_per_ip),
            leases: LeaseLedger::new(config.max_leases_per_ip, config.lease_ttl),
            commands: config.commands,
            controls: config.controls,
            proxy_hops: config.proxy_hops,
            metrics,
        })
    }

    /// What an operator should hear about at startup: the permissive defaults left on.
    pub(crate) fn warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.origins == OriginPolicy::Any {
            out.push("any web origin may open /ws and /api/stream and read REST (set ALLOWED_ORIGINS in production)");
        }
        if !self.auth.enabled() {
            out.push("client auth is off: anyone who can reach the relay may stream (set AUTH_TOKENS or JWT_SECRET)");
        }
        out
    }

    /// CORS for REST, from the same allowlist as the stream handshakes.
    pub(crate) fn cors(self: &Arc<Self>) -> CorsLayer {
        let origin = match self.origins {
            OriginPolicy::Any => AllowOrigin::any(),
            OriginPolicy::Only(_) => {
                let guard = self.clone();
                AllowOrigin::predicate(move |origin: &HeaderValue, _| guard.origins.allows(Some(origin), None))
            }
        };
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(Duration::from_secs(3600))
    }

    /// The client's address: the TCP peer, or with `proxy_hops` trusted proxies in front, the address the
    /// outermost of them saw (`X-Forwarded-For` counted from the right, since a client can forge the left).
    pub(crate) fn client_ip(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        if self.proxy_hops == 0 {
            return peer;
        }
        let chain: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|ip| ip.trim().parse().ok())
            .collect();
        match chain.len().checked_sub(self.proxy_hops) {
            Some(i) => chain[i],
            None => chain.first().copied().unwrap_or(peer),
        }
    }

    /// Checks a `/ws` or `/api/stream` handshake: the origin, then a free slot for the client's address.
    pub(crate) fn check_handshake(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        auth: Authenticated,
    ) -> Result<ClientPass, Refusal> {
        if !self.origins.allows(headers.get(header::ORIGIN), headers.get(header::HOST)) {
            self.refuse("origin");
            let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or("?");
            return Err(Refusal::Origin(origin.to_owned()));
        }
        let ip = self.client_ip(headers, peer.ip());
        let Some(slot) = self.ips.acquire(ip) else {
            self.refuse("connections_per_ip");
            tracing::info!(%ip, "refusing a connection: too many from this address");
            return Err(Refusal::TooManyConnections);
        };
        Ok(ClientPass { ip, expires: auth.expires, _slot: slot })
    }

    /// A slot for a TCP connection that has not sent its first byte yet, from the same per-address count as the
    /// streams: silent sockets cost a file descriptor each, and 1,100 of them once starved the whole relay.
    /// `Ok(None)` behind trusted proxies, whose address every client shares (they cut idle sockets themselves).
    pub(crate) fn silent_slot(&self, peer: IpAddr) -> Result<Option<IpPermit>, Refusal> {
        if self.proxy_hops > 0 {
            return Ok(None);
        }
        match self.ips.acquire(peer) {
            Some(slot) => Ok(Some(slot)),
            None => {
                self.refuse("connections_per_ip");
                Err(Refusal::TooManyConnections)
            }
        }
    }

    /// Records a REST lease of `symbols` by the client at `peer`, or refuses it past the address's share.
    pub(crate) fn lease<'a>(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
        symbols: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), AddressLeaseLimit> {
        let ip = self.client_ip(headers, peer);
        self.leases.lease(ip, symbols, std::time::Instant::now()).inspect_err(|_| {
            self.refuse("leases_per_ip");
            tracing::info!(%ip, "refusing a REST lease: too many symbols leased from this address");
        })
    }

    /// A command budget for a new connection.
    pub(crate) fn command_budget(&self) -> CommandBudget {
        self.commands.budget()
    }

    /// A ping/pong budget for a new WebSocket connection: a browser sends none, a library one per few seconds,
    /// so a client past it is flooding (each ping costs the relay a pong it must hold until the client reads).
    pub(crate) fn control_budget(&self) -> CommandBudget {
        self.controls.budget()
    }

    /// Counts a refusal in `/metrics`, by reason.
    pub(crate) fn refuse(&self, reason: &'static str) {
        self.metrics.refused(reason);
    }
}

impl Guard {
    /// Whether clients must present a credential.
    pub(crate) fn auth_enabled(&self) -> bool {
        self.auth.enabled()
    }

    /// Who a request is (see [`auth::Identity`]).
    pub(crate) fn identify(&self, request: &axum::http::request::Parts) -> Result<auth::Identity, auth::AuthError> {
        self.auth.identify(request)
    }
}

/// Middleware: requires a valid credential when auth is on, and stores [`Authenticated`] for the handler.
pub(crate) async fn require_auth(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match guard.auth.check(&parts) {
        Ok(who) => {
            parts.extensions.insert(who);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => {
            guard.refuse("auth");
            let mut response = HttpError::from(e).into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hops: usize) -> Guard {
        let config = GuardConfig {
            allowed_origins: vec!["https://app.example.com".into()],
            auth_tokens: vec![],
            jwt: JwtConfig::default(),
            max_connections_per_ip: 1,
            max_leases_per_ip: 0,
            lease_ttl: Duration::from_secs(60),
            commands: CommandQuota { per_second: 0, burst: 0, refusals_per_minute: 0 },
            controls: CommandQuota { per_second: 0, burst: 0, refusals_per_minute: 0 },
            proxy_hops: hops,
        };
        Guard::new(config, Metrics::new()).unwrap()
    }

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_and_only_when_trusted() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let forged = xff("1.1.1.1, 203.0.113.9");
        assert_eq!(guard(0).client_ip(&forged, peer), peer);
        assert_eq!(guard(1).client_ip(&forged, peer), "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(guard(2).client_ip(&forged, peer), "1.1.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(guard(1).client_ip(&HeaderMap::new(), peer), peer);
    }

    #[test]
    fn streams_need_an_allowed_origin_and_a_free_slot() {
        let g = guard(0);
        let peer: SocketAddr = "198.51.100.4:5000".parse().unwrap();
        let open = Authenticated { expires: None };
        let mut evil = HeaderMap::new();
        evil.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        let e = g.check_handshake(&evil, peer, open).unwrap_err();
        assert_eq!(e, Refusal::Origin("https://evil.example".into()));
        let first = g.check_handshake(&HeaderMap::new(), peer, open).unwrap();
        let e = g.check_handshake(&HeaderMap::new(), peer, open).unwrap_err();
        assert_eq!(e, Refusal::TooManyConnections);
        drop(first);
        assert!(g.check_handshake(&HeaderMap::new(), peer, open).is_ok());
    }
}
