//! API keys: read from the environment only (never flags, which show up in process lists), and redacted
//! wherever they could be printed.
//!
//! Redaction is twofold. [`Secret`] never prints its value. And every secret the process loads is remembered, so
//! text that came from elsewhere — an upstream's error message or close reason, which could echo the key back —
//! passes through [`redact`] before it reaches a client or a log line ([`RedactingStderr`]).

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

use parking_lot::RwLock;

/// Every loaded secret, in the spellings it could appear in: raw and URL-encoded.
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values are not redacted from free text: they would match ordinary words.
const MIN_REDACTED_LEN: usize = 6;

const REDACTED: &str = "[redacted]";

fn remember(value: &str) {
    if value.len() < MIN_REDACTED_LEN {
        return;
    }
    let forms = [
        value.to_owned(),
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
        percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string(),
    ];
    let mut known = KNOWN.write();
    for form in forms {
        if !known.contains(&form) {
            known.push(form);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    known.sort_by_key(|k| std::cmp::Reverse(k.len()));
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
}
