//! API keys: read from the environment only (never flags, which show up in process lists), and redacted
//! wherever they could be printed.

use std::fmt;

/// A credential. `Debug` and `Display` print `[redacted]`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Reads `var`; an unset or blank variable is `None`.
    pub fn from_env(var: &str) -> Option<Secret> {
        std::env::var(var).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).map(Secret)
    }

    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for building an upstream request. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// For clap: secrets given through the environment (`AUTH_TOKENS`, `JWT_SECRET`); surrounding blanks dropped.
impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.trim().to_owned()))
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
}
