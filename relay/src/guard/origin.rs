//! Which web pages may open a stream: the `Origin` allowlist for `/ws` and `/api/stream`.
//!
//! Browsers attach cookies and ambient credentials to cross-site WebSocket handshakes and CORS does not apply to
//! them, so a hostile page could otherwise read a user's stream (cross-site WebSocket hijacking). The allowlist
//! is checked on the handshake itself. A request without `Origin` is not from a browser page and is let through;
//! client auth, not the origin, is what keeps scripts out.

use axum::http::HeaderValue;

/// Allowed origins, normalised to `scheme://host[:port]` in lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginPolicy {
    /// Any origin: the local default, logged as a warning at startup.
    Any,
    /// Only these (plus the relay's own origin, for the dashboard it serves itself).
    Only(Vec<AllowedOrigin>),
}

/// One allowlist entry: an exact origin, or `scheme://*.domain` for every subdomain of `domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowedOrigin {
    scheme: String,
    host: String,
    port: Option<u16>,
    any_subdomain: bool,
}

/// An allowlist entry that is not an origin.
#[derive(Debug, thiserror::Error)]
#[error("--allowed-origin {entry:?}: {reason} (expected e.g. https://app.example.com or https://*.example.com)")]
pub(crate) struct BadOrigin {
    entry: String,
    reason: &'static str,
}

impl OriginPolicy {
    /// Builds the policy from `--allowed-origin` entries; none at all means [`OriginPolicy::Any`], and so does `*`.
    pub(crate) fn parse(entries: &[String]) -> Result<OriginPolicy, BadOrigin> {
        let entries: Vec<&str> = entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()).collect();
        if entries.is_empty() || entries == ["*"] {
            return Ok(OriginPolicy::Any);
        }
        entries.into_iter().map(AllowedOrigin::parse).collect::<Result<_, _>>().map(OriginPolicy::Only)
    }

    /// Whether a handshake with this `Origin` (and `Host`) header may proceed.
    pub(crate) fn allows(&self, origin: Option<&HeaderValue>, host: Option<&HeaderValue>) -> bool {
        let OriginPolicy::Only(list) = self else { return true };
        let Some(origin) = origin else { return true };
        let Some(origin) = origin.to_str().ok().and_then(|o| AllowedOrigin::parse(o).ok()) else {
            // `null` (sandboxed frames, file://) and anything unparseable.
            return false;
        };
        let same_origin =
            host.and_then(|h| h.to_str().ok()).is_some_and(|h| origin.authority().eq_ignore_ascii_case(h));
        same_origin || list.iter().any(|allowed| allowed.matches(&origin))
    }
}

impl AllowedOrigin {
    fn parse(text: &str) -> Result<AllowedOrigin, BadOrigin> {
        let bad = |reason| BadOrigin { entry: text.to_owned(), reason };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("scheme must be http or https"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("an origin has no path, query or user"));
        }
        let (host, any_subdomain) = match rest.strip_prefix("*.") {
            Some(domain) => (domain, true),
            None => (rest, false),
        };
        let port = |p: &str| p.parse::<u16>().map(Some).map_err(|_| bad("port is not a number"));
        let (host, port) = match host.find(']') {
            // `[v6::addr]` or `[v6::addr]:port`
            Some(end) => match host.split_at(end + 1) {
                (h, "") => (h, None),
                (h, tail) => (h, port(tail.strip_prefix(':').ok_or_else(|| bad("junk after the address"))?)?),
            },
            None => match host.rsplit_once(':') {
                Some((h, p)) => (h, port(p)?),
                None => (host, None),
            },
        };
        if host.is_empty() || host.contains('*') {
            return Err(bad("no host, or a `*` other than a leading `*.`"));
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        Ok(AllowedOrigin {
            host: host.to_ascii_lowercase(),
            port: port.filter(|p| *p != default_port),
            scheme,
            any_subdomain,
        })
    }

    /// `host[:port]` as a `Host` header would carry it.
    fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    fn matches(&self, origin: &AllowedOrigin) -> bool {
        let host = if self.any_subdomain {
            origin.host.strip_suffix(&self.host).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        } else {
            origin.host == self.host
        };
        host && self.scheme == origin.scheme && self.port == origin.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OriginPolicy {
        OriginPolicy::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn allows(p: &OriginPolicy, origin: Option<&str>, host: Option<&str>) -> bool {
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        p.allows(origin.map(h).as_ref(), host.map(h).as_ref())
    }

    #[test]
    fn empty_or_star_allows_everything() {
        assert_eq!(policy(&[]), OriginPolicy::Any);
        assert_eq!(policy(&["*"]), OriginPolicy::Any);
        assert!(allows(&policy(&[]), Some("https://evil.example"), None));
    }

    #[test]
    fn exact_entries_match_scheme_host_and_port() {
        let p = policy(&["https://app.example.com", "http://localhost:8081/"]);
        assert!(allows(&p, Some("https://app.example.com"), None));
        assert!(allows(&p, Some("https://APP.example.com:443"), None));
        assert!(allows(&p, Some("http://localhost:8081"), None));
        assert!(!allows(&p, Some("http://app.example.com"), None));
        assert!(!allows(&p, Some("https://app.example.com.evil.io"), None));
        assert!(!allows(&p, Some("http://localhost:9999"), None));
        assert!(!allows(&p, Some("null"), None));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let p = policy(&["https://*.example.com"]);
        assert!(allows(&p, Some("https://a.example.com"), None));
        assert!(allows(&p, Some("https://a.b.example.com"), None));
        assert!(!allows(&p, Some("https://example.com"), None));
        assert!(!allows(&p, Some("https://badexample.com"), None));
    }

    #[test]
    fn same_origin_and_non_browser_requests_pass() {
        let p = policy(&["https://app.example.com"]);
        assert!(allows(&p, Some("https://relay.example.net"), Some("relay.example.net")));
        assert!(allows(&p, Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(!allows(&p, Some("http://127.0.0.1:8081"), Some("127.0.0.1:8080")));
        assert!(allows(&p, None, None));
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_named() {
        for bad in ["example.com", "ftp://x.com", "https://x.com/path", "https://x.com:99999", "https://a*.com"] {
            let e = OriginPolicy::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
