//! API keys: read from the environment only (never flags, which show up in process lists), and redacted
//! wherever they could be printed.
//!
//! Redaction is twofold. [`Secret`] never prints its value. And every secret the process loads is remembered, so
//! text that came from elsewhere — an upstream's error message or close reason, which could echo the key back —
//! passes through [`redact`] before it reaches a client or a log line ([`RedactingStderr`]).
//!
//! A secret is remembered in every spelling text could carry it in: raw, URL-encoded (form and percent, either
//! hex case), and each of those escaped as JSON does it (`\"`, `\\`, `\n`, `\u001f`), as ASCII-only JSON does
//! it (`\u00e9`), as Rust's `Debug` does it, or with every character as `\uXXXX` — and escaped twice, since a
//! JSON log line quotes a field whose `Debug` text already escaped an upstream frame that JSON-escaped the key.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

use parking_lot::RwLock;

/// Every loaded secret, in the spellings it could appear in (see the module doc).
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values are not redacted from free text: they would match ordinary words.
const MIN_REDACTED_LEN: usize = 6;

const REDACTED: &str = "[redacted]";

fn remember(value: &str) {
    if value.len() < MIN_REDACTED_LEN {
        return;
    }
    let percent = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string();
    let bases = [
        value.to_owned(),
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
        lowercase_percent_hex(&percent),
        percent,
    ];
    let mut forms: Vec<String> = Vec::new();
    for base in bases {
        for once in escaped(&base) {
            forms.extend(escaped(&once));
        }
    }
    let mut known = KNOWN.write();
    for form in forms {
        if !known.contains(&form) {
            known.push(form);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    known.sort_by_key(|k| std::cmp::Reverse(k.len()));
}

/// `text` as itself and in every single escaping a log or a JSON producer might apply to it.
fn escaped(text: &str) -> Vec<String> {
    let json = serde_json::to_string(text).map(|q| q[1..q.len() - 1].to_owned()).unwrap_or_else(|_| text.to_owned());
    let ascii_json = |upper: bool| -> String {
        json.chars().map(|c| if c.is_ascii() { c.to_string() } else { unicode_escape(c, upper) }).collect::<String>()
    };
    let all_unicode = |upper: bool| -> String { text.chars().map(|c| unicode_escape(c, upper)).collect() };
    vec![
        text.to_owned(),
        ascii_json(false),
        ascii_json(true),
        text.escape_debug().to_string(),
        text.escape_default().to_string(),
        all_unicode(false),
        all_unicode(true),
        json,
    ]
}

/// `c` as `\uXXXX` (a surrogate pair outside the Basic Multilingual Plane), in lower or upper hex.
fn unicode_escape(c: char, upper: bool) -> String {
    let mut units = [0u16; 2];
    c.encode_utf16(&mut units)
        .iter()
        .map(|u| if upper { format!("\\u{u:04X}") } else { format!("\\u{u:04x}") })
        .collect()
}

/// Percent-encoding with lowercase hex digits (`%2f`), which some clients send.
fn lowercase_percent_hex(upper: &str) -> String {
    let mut out = String::with_capacity(upper.len());
    let mut rest = upper;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let hex = rest.get(i + 1..i + 3).unwrap_or("");
        out.push('%');
        out.push_str(&hex.to_ascii_lowercase());
        rest = &rest[(i + 1 + hex.len()).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// `text` with every known secret replaced by `[redacted]`; borrowed (no allocation) when there is none.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read();
    if !known.iter().any(|k| text.contains(k.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for k in known.iter() {
        if out.contains(k.as_str()) {
            out = out.replace(k.as_str(), REDACTED);
        }
    }
    Cow::Owned(out)
}

/// [`redact`] applied to every string (keys included) inside a JSON value.
pub(crate) fn redact_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => match redact(&s) {
            Cow::Borrowed(_) => Value::String(s),
            Cow::Owned(r) => Value::String(r),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(redact_json).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (redact(&k).into_owned(), redact_json(v))).collect())
        }
        other => other,
    }
}

/// Standard error with [`redact`] applied to every write: the log sink. A log event is formatted whole and
/// written at once, so a secret is never split across two writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().lock().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Why [`keyed_client`] could not make a client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyedClientError {
    /// The named header's value has characters no HTTP header can carry (the value itself is never shown).
    #[error("{0} holds characters an HTTP header cannot carry")]
    Header(&'static str),
    #[error("no HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// An HTTP client for an upstream's REST API that sends `headers` (its credentials) with every request. They are
/// marked sensitive, so no debug output of a request shows them, and the client follows no redirect: a redirect
/// would carry them to whatever host it names.
pub(crate) fn keyed_client(
    headers: &[(&'static str, &str)],
    timeout: std::time::Duration,
) -> Result<reqwest::Client, KeyedClientError> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| KeyedClientError::Header(name))?;
        value.set_sensitive(true);
        map.insert(*name, value);
    }
    Ok(reqwest::Client::builder()
        .default_headers(map)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// A credential. `Debug` and `Display` print `[redacted]`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    /// Reads `var`; an unset or blank variable is `None`.
    pub(crate) fn from_env(var: &str) -> Option<Secret> {
        std::env::var(var).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).map(Secret::new)
    }

    pub(crate) fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        remember(&value);
        Secret(value)
    }

    /// The value, for building an upstream request. Never log what this returns.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// For clap: secrets given through the environment (`AUTH_TOKENS`, `JWT_SECRET`); surrounding blanks dropped.
impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret::new(s.trim()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_keyed_client_refuses_an_unsendable_credential_without_showing_it() {
        assert!(keyed_client(&[("X-Key", "fine-value")], std::time::Duration::from_secs(1)).is_ok());
        let e = keyed_client(&[("X-Key", "line\nbreak-secret")], std::time::Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, KeyedClientError::Header("X-Key")));
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("sk-canary-123");
        assert_eq!(format!("{s:?} {s} {:?}", Some(&s)), "Secret([redacted]) [redacted] Some(Secret([redacted]))");
    }

    #[test]
    fn loaded_secrets_are_redacted_from_foreign_text() {
        let _s = Secret::new("key+with/odd=chars-42");
        let _short = Secret::new("abc");
        assert_eq!(redact("nothing here, abc"), "nothing here, abc");
        assert!(matches!(redact("plain"), Cow::Borrowed(_)));
        assert_eq!(
            redact("closed: bad key key+with/odd=chars-42 in GET /v1?apikey=key%2Bwith%2Fodd%3Dchars-42"),
            "closed: bad key [redacted] in GET /v1?apikey=[redacted]"
        );
        assert_eq!(redact("form: key%2Bwith%2Fodd%3Dchars-42"), "form: [redacted]");
        let json = serde_json::json!({"msg": ["echo key+with/odd=chars-42"], "key+with/odd=chars-42": 1});
        assert_eq!(redact_json(json), serde_json::json!({"msg": ["echo [redacted]"], "[redacted]": 1}));
    }

    #[test]
    fn every_escaped_form_of_a_secret_is_redacted() {
        let key = "sk\"q\\b\u{1}\té/+=-canary-77";
        let _s = Secret::new(key);
        let json = serde_json::to_string(key).unwrap();
        let inner = &json[1..json.len() - 1];
        let double = serde_json::to_string(inner).unwrap();
        let unicode: String = key.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        let forms = [
            inner.to_owned(),
            double[1..double.len() - 1].to_owned(),
            format!("{key:?}").trim_matches('"').to_owned(),
            format!("{inner:?}").trim_matches('"').to_owned(),
            inner.replace('é', "\\u00e9"),
            inner.replace('é', "\\u00E9"),
            unicode.clone(),
            unicode.to_uppercase().replace("\\U", "\\u"),
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string(),
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string().to_lowercase(),
            url::form_urlencoded::byte_serialize(key.as_bytes()).collect(),
        ];
        for (i, form) in forms.iter().enumerate() {
            let line = format!("upstream said: {form} (end)");
            assert_eq!(redact(&line), "upstream said: [redacted] (end)", "form {form:?}");
            // A JSON log line quotes a singly escaped form once more (the doubly escaped ones are that already).
            if i != 1 && i != 3 {
                let logged = serde_json::to_string(&line).unwrap();
                assert!(!redact(&logged).contains("canary-77"), "JSON-logged form {form:?}: {}", redact(&logged));
            }
        }
    }
}
