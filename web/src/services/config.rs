//! Where the relay is. By default the page's own origin (`/ws` and `/api` next to `index.html`), which is how
//! the relay serves the dashboard. An optional `config.json` next to `index.html` (`{"relay": "wss://host"}`)
//! overrides that for a deployment, and `?relay=wss://host` in the page URL overrides both for one visit.
//!
//! A relay with client auth on needs a token: `?token=…` in the page URL is taken once, kept in
//! `sessionStorage` (gone when the tab closes) and removed from the address bar, so it does not linger in
//! history or get shared with a copied link. The socket URL carries it as `?token=` (browsers cannot set headers
//! on a WebSocket); REST calls send it as `Authorization: Bearer`.
//!
//! The URL rules are pure ([`resolve`], [`with_token`], [`without_param`]); only [`load`] and [`load_token`]
//! touch the browser.

use crate::json_object::json_object;

/// The two URLs the dashboard needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    /// e.g. `wss://relay.example/ws`
    pub(crate) ws_url: String,
    /// Prefix for REST paths (no trailing `/`), e.g. `https://relay.example`; `/api/...` is appended.
    pub(crate) http_base: String,
}

/// The page's location, as far as resolving needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PageLocation {
    /// `http:` or `https:` (with the colon, as `location.protocol` spells it).
    protocol: String,
    /// `host[:port]`.
    host: String,
    /// Path of the directory `index.html` is in, e.g. `/` or `/terminal/`.
    dir: String,
}

/// `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ClientConfig {
    relay: Option<String>,
}

json_object!(ClientConfig, "config.json", required {} optional { relay: Option<String> });

/// Picks the relay: `?relay=` first, then `config.json`, then the page's origin. An override that is not a
/// usable URL is skipped with a warning instead of leaving the page with no relay at all.
fn resolve(page: &PageLocation, query: Option<&str>, config: Option<&str>) -> (Endpoints, Option<String>) {
    let mut warnings = vec![];
    for (source, value) in [("?relay=", query), ("config.json relay", config)] {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        match parse_relay(value) {
            Ok(endpoints) => return (endpoints, join_warnings(warnings)),
            Err(why) => warnings.push(format!("ignoring {source} {value:?}: {why}")),
        }
    }
    let secure = page.protocol == "https:";
    let dir = page.dir.trim_end_matches('/');
    let endpoints = Endpoints {
        ws_url: format!("{}://{}{dir}/ws", if secure { "wss" } else { "ws" }, page.host),
        http_base: format!("{}//{}{dir}", if secure { "https:" } else { "http:" }, page.host),
    };
    (endpoints, join_warnings(warnings))
}

fn join_warnings(w: Vec<String>) -> Option<String> {
    (!w.is_empty()).then(|| w.join("; "))
}

/// Accepts `ws://`, `wss://`, `http://` or `https://` with a host, and an optional path prefix. A path ending
/// in `/ws` is taken as the socket endpoint itself.
fn parse_relay(value: &str) -> Result<Endpoints, String> {
    let (scheme, rest) = value.split_once("://").ok_or("expected a URL such as wss://host")?;
    let secure = match scheme.to_ascii_lowercase().as_str() {
        "wss" | "https" => true,
        "ws" | "http" => false,
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host_ok = !authority.is_empty()
        && authority.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if !host_ok {
        return Err("missing or invalid host".into());
    }
    let path = path.trim_end_matches('/');
    let prefix = path.strip_suffix("/ws").unwrap_or(path);
    Ok(Endpoints {
        ws_url: format!("{}://{authority}{prefix}/ws", if secure { "wss" } else { "ws" }),
        http_base: format!("{}://{authority}{prefix}", if secure { "https" } else { "http" }),
    })
}

/// The decoded value of `name` in a query string such as `?relay=wss%3A%2F%2Fhost&x=1`.
fn query_param(search: &str, name: &str) -> Option<String> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| percent_decode(k) == name)
        .map(|(_, v)| percent_decode(v))
}

/// Decodes `%XX` escapes and `+` (form encoding); invalid escapes are kept literally.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Reads the page location and `config.json` and resolves the relay. `config.json` is optional: a missing,
/// unreachable or malformed file (the relay may answer unknown paths with `index.html`) means "no override".
pub(crate) async fn load() -> (Endpoints, Option<String>) {
    let location = web_sys::window().map(|w| w.location());
    let get = |f: fn(&web_sys::Location) -> Result<String, wasm_bindgen::JsValue>| {
        location.as_ref().and_then(|l| f(l).ok()).unwrap_or_default()
    };
    let pathname = get(web_sys::Location::pathname);
    let page = PageLocation {
        protocol: get(web_sys::Location::protocol),
        host: get(web_sys::Location::host),
        // The directory of index.html: everything up to the last `/`.
        dir: pathname.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_else(|| "/".into()),
    };
    let query = query_param(&get(web_sys::Location::search), "relay");
    let config = match query {
        // An explicit ?relay= wins; no need to wait for config.json.
        Some(_) => None,
        None => fetch_config().await.and_then(|c| c.relay),
    };
    resolve(&page, query.as_deref(), config.as_deref())
}

/// `url` with `token=` added to its query (percent-encoded); `url` unchanged without a token.
pub(crate) fn with_token(url: &str, token: Option<&str>) -> String {
    match token.filter(|t| !t.is_empty()) {
        Some(token) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}token={}", super::api::encode_component(token))
        }
        None => url.to_owned(),
    }
}

/// A query string (`?a=1&token=x`) without `name`, keeping the others in order; `""` when nothing is left.
fn without_param(search: &str, name: &str) -> String {
    let kept: Vec<&str> = search
        .trim_start_matches('?')
        .split('&')
        .filter(|pair| !pair.is_empty() && percent_decode(pair.split('=').next().unwrap_or_default()) != name)
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

const TOKEN_KEY: &str = "hamster.token";

/// The client token for the relay: from `?token=` (then stored for the session and removed from the address
/// bar), else from this tab's session.
pub(crate) fn load_token() -> Option<String> {
    use gloo_storage::{SessionStorage, Storage};
    let window = web_sys::window()?;
    let location = window.location();
    let search = location.search().unwrap_or_default();
    match query_param(&search, "token").filter(|t| !t.is_empty()) {
        Some(token) => {
            let _ = SessionStorage::set(TOKEN_KEY, &token);
            let clean = format!(
                "{}{}{}",
                location.pathname().unwrap_or_default(),
                without_param(&search, "token"),
                location.hash().unwrap_or_default()
            );
            if let Ok(history) = window.history() {
                let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&clean));
            }
            Some(token)
        }
        None => SessionStorage::get::<String>(TOKEN_KEY).ok().filter(|t| !t.is_empty()),
    }
}

async fn fetch_config() -> Option<ClientConfig> {
    let text = super::api::get_body("config.json", None, 2_000).await.ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn page(protocol: &str, host: &str, dir: &str) -> PageLocation {
        PageLocation { protocol: protocol.into(), host: host.into(), dir: dir.into() }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn tokens_ride_on_the_socket_url_and_leave_the_page_url() {
        assert_eq!(with_token("wss://r.example/ws", Some("a b/c")), "wss://r.example/ws?token=a%20b%2Fc");
        assert_eq!(with_token("ws://h/ws?x=1", Some("t")), "ws://h/ws?x=1&token=t");
        assert_eq!(with_token("ws://h/ws", None), "ws://h/ws");
        assert_eq!(with_token("ws://h/ws", Some("")), "ws://h/ws");
        assert_eq!(without_param("?relay=wss%3A%2F%2Fr&token=abc&x=1", "token"), "?relay=wss%3A%2F%2Fr&x=1");
        assert_eq!(without_param("?token=abc", "token"), "");
        assert_eq!(without_param("", "token"), "");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn defaults_to_same_origin() {
        let (e, w) = resolve(&page("http:", "127.0.0.1:8080", "/"), None, None);
        assert_eq!(e.ws_url, "ws://127.0.0.1:8080/ws");
        assert_eq!(e.http_base, "http://127.0.0.1:8080");
        assert_eq!(w, None);
        let (e, _) = resolve(&page("https:", "example.com", "/terminal/"), None, None);
        assert_eq!(e.ws_url, "wss://example.com/terminal/ws");
        assert_eq!(e.http_base, "https://example.com/terminal");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn query_beats_config_beats_origin() {
        let p = page("http:", "localhost:8081", "/");
        let (e, _) = resolve(&p, Some("wss://a.example"), Some("wss://b.example"));
        assert_eq!(e.ws_url, "wss://a.example/ws");
        let (e, _) = resolve(&p, None, Some("wss://b.example/"));
        assert_eq!(e.ws_url, "wss://b.example/ws");
        assert_eq!(e.http_base, "https://b.example");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_overrides_fall_through_with_a_warning() {
        let p = page("http:", "localhost:8081", "/");
        let (e, w) = resolve(&p, Some("javascript:alert(1)"), Some("ws://ok:9000"));
        assert_eq!(e.ws_url, "ws://ok:9000/ws");
        assert!(w.is_some_and(|w| w.contains("?relay=")));
        let (e, w) = resolve(&p, Some("ftp://x"), None);
        assert_eq!(e.ws_url, "ws://localhost:8081/ws");
        assert!(w.is_some());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn relay_urls() {
        let e = parse_relay("ws://127.0.0.1:9000/ws").expect("valid");
        assert_eq!(e.ws_url, "ws://127.0.0.1:9000/ws");
        assert_eq!(e.http_base, "http://127.0.0.1:9000");
        let e = parse_relay("https://h.example/prefix/?x=1").expect("valid");
        assert_eq!(e.ws_url, "wss://h.example/prefix/ws");
        assert_eq!(e.http_base, "https://h.example/prefix");
        assert!(parse_relay("wss://").is_err());
        assert!(parse_relay("wss://ho st").is_err());
        assert!(parse_relay("host:80").is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn query_params_are_decoded() {
        assert_eq!(query_param("?relay=wss%3A%2F%2Fh%3A1&x=2", "relay"), Some("wss://h:1".into()));
        assert_eq!(query_param("?x=2&relay=ws://a", "relay"), Some("ws://a".into()));
        assert_eq!(query_param("?relay", "relay"), Some(String::new()));
        assert_eq!(query_param("", "relay"), None);
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
