//! Which sites may trade: the check in front of every endpoint and command that changes an account.
//!
//! Streams accept any `Origin` whose authority equals the request's `Host` as same-origin. A site that points its
//! own domain at the relay's address (DNS rebinding) gets exactly that: the browser sends `Host` and `Origin`
//! both naming the attacker's domain. So before an order is taken, the `Host` must be a name the relay knows:
//! an IP literal (rebinding always goes through a domain name), `localhost`, a host of `ALLOWED_ORIGINS`, or one
//! of `PUBLIC_HOSTS`. On top, order requests from another site are refused even with auth off (CSRF): a
//! present `Origin` must be the relay's own origin or an allowed one, `Sec-Fetch-Site` must not say
//! `cross-site`/`same-site`, and bodies must be JSON, which no HTML form can send.

use std::net::IpAddr;

use axum::http::{header, HeaderMap};

/// The names this relay answers to, for trading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Site {
    /// Lowercase host names (no port).
    names: Vec<String>,
    /// Origins allowed to trade from another host, normalised `scheme://host[:port]` lowercase.
    origins: Vec<String>,
}

/// Why a trading request was refused; the text is safe to send back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SiteRefusal {
    #[error("the Host header names a host this relay does not serve (add it to PUBLIC_HOSTS)")]
    UnknownHost,
    #[error("orders are not accepted from another site")]
    CrossSite,
    #[error("order bodies must be sent as application/json")]
    NotJson,
}

fn host_name(authority: &str) -> &str {
    let authority = authority.trim();
    match authority.strip_prefix('[') {
        // `[v6]:port`
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => {
            authority.rsplit_once(':').map_or(authority, |(h, p)| if p.parse::<u16>().is_ok() { h } else { authority })
        }
    }
}

fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl Site {
    pub(crate) fn new(public_hosts: &[String], allowed_origins: &[String]) -> Site {
        let mut names: Vec<String> = vec!["localhost".into()];
        names.extend(public_hosts.iter().map(|h| host_name(h).to_ascii_lowercase()).filter(|h| !h.is_empty()));
        let origins: Vec<String> =
            allowed_origins.iter().map(|o| normalise_origin(o)).filter(|o| !o.is_empty() && o != "*").collect();
        for origin in &origins {
            if let Some((_, authority)) = origin.split_once("://") {
                if !authority.starts_with("*.") {
                    names.push(host_name(authority).to_owned());
                }
            }
        }
        Site { names, origins }
    }

    fn known_host(&self, authority: &str) -> bool {
        let name = host_name(authority).to_ascii_lowercase();
        name.parse::<IpAddr>().is_ok()
            || self.names.contains(&name)
            || name.strip_suffix(".localhost").is_some_and(|sub| !sub.is_empty())
    }

    /// Whether a request (or a stream handshake, `json_body` false) may change an account.
    pub(crate) fn check(&self, headers: &HeaderMap, json_body: bool) -> Result<(), SiteRefusal> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).ok_or(SiteRefusal::UnknownHost)?;
        if !self.known_host(host) {
            return Err(SiteRefusal::UnknownHost);
        }
        if let Some(fetch_site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            if fetch_site.eq_ignore_ascii_case("cross-site") || fetch_site.eq_ignore_ascii_case("same-site") {
                // Same-site is another origin too (a sibling subdomain): only an allowed origin may.
                let listed = headers
                    .get(header::ORIGIN)
                    .and_then(|o| o.to_str().ok())
                    .is_some_and(|o| self.origins.contains(&normalise_origin(o)));
                if !listed {
                    return Err(SiteRefusal::CrossSite);
                }
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().map(normalise_origin).map_err(|_| SiteRefusal::CrossSite)?;
            let same =
                origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host.trim()));
            if !same && !self.origins.contains(&origin) {
                return Err(SiteRefusal::CrossSite);
            }
        }
        if json_body {
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/json"));
            if !json {
                return Err(SiteRefusal::NotJson);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn rebinding_and_cross_site_requests_are_refused() {
        let site = Site::new(&["terminal.example.com".into()], &["https://app.example.net".into()]);
        let ok = |pairs: &[(&'static str, &str)]| site.check(&headers(pairs), true);
        let json = ("content-type", "application/json");
        assert_eq!(ok(&[("host", "127.0.0.1:8080"), json]), Ok(()));
        assert_eq!(ok(&[("host", "localhost:8080"), ("origin", "http://localhost:8080"), json]), Ok(()));
        assert_eq!(ok(&[("host", "[::1]:8080"), json]), Ok(()));
        assert_eq!(ok(&[("host", "terminal.example.com"), ("origin", "https://terminal.example.com"), json]), Ok(()));
        assert_eq!(ok(&[("host", "127.0.0.1:8080"), ("origin", "https://app.example.net"), json]), Ok(()));
        // DNS rebinding: Host and Origin agree, but name a domain the relay does not serve.
        assert_eq!(
            ok(&[("host", "evil.example:8080"), ("origin", "http://evil.example:8080"), json]),
            Err(SiteRefusal::UnknownHost)
        );
        assert_eq!(ok(&[json]), Err(SiteRefusal::UnknownHost));
        assert_eq!(
            ok(&[("host", "127.0.0.1:8080"), ("origin", "https://evil.example"), json]),
            Err(SiteRefusal::CrossSite)
        );
        assert_eq!(ok(&[("host", "127.0.0.1:8080"), ("origin", "null"), json]), Err(SiteRefusal::CrossSite));
        assert_eq!(
            ok(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site"), json]),
            Err(SiteRefusal::CrossSite)
        );
        assert_eq!(ok(&[("host", "127.0.0.1:8080"), ("content-type", "text/plain")]), Err(SiteRefusal::NotJson));
        assert_eq!(site.check(&headers(&[("host", "127.0.0.1:8080")]), false), Ok(()));
    }
}
