//! Client authentication: static bearer tokens and HS256 JWTs, checked before a WebSocket upgrade, an SSE stream
//! or a REST call is served.
//!
//! Browsers cannot set headers on a WebSocket handshake or an `EventSource`, so the token may also come as
//! `?token=`; the relay never logs request URLs with their query for that reason. A JWT's expiry is kept with
//! the connection, which is closed when it passes, so a revoked user cannot keep a stream open forever.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// Clock skew tolerated on `exp` and `nbf`, between the token issuer and the relay.
pub(crate) const LEEWAY: Duration = Duration::from_secs(30);

/// How clients prove they may connect. Without tokens or a JWT secret, everyone may.
pub(crate) struct Auth {
    tokens: Vec<Secret>,
    jwt: Option<(DecodingKey, Validation)>,
}

/// JWT settings: the HS256 secret and the claims a token must carry.
#[derive(Debug, Clone, Default)]
pub(crate) struct JwtConfig {
    pub(crate) secret: Option<Secret>,
    pub(crate) audience: Option<String>,
    pub(crate) issuer: Option<String>,
}

/// Who was let in; stored in the request's extensions for the transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authenticated {
    /// When the credential stops being valid (JWT `exp` plus leeway); static tokens never expire.
    pub(crate) expires: Option<SystemTime>,
}

/// Why a request was refused. Texts are safe to send to the client: they never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("missing token: send `Authorization: Bearer <token>` or `?token=<token>`")]
    Missing,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token is for another audience or issuer")]
    WrongAudience,
    /// A configured claim (`aud`, `iss`) is absent or null: a token minted for no one is not minted for us.
    #[error("token lacks the required `{0}` claim")]
    MissingClaim(String),
    #[error("invalid token")]
    Invalid,
}

#[derive(Deserialize)]
struct Claims {
    exp: u64,
    #[serde(default)]
    sub: Option<String>,
}

/// Whose account a verified request acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// Client auth is off: everyone shares the one local account.
    Open,
    /// A static token, named by its place in `AUTH_TOKENS` (`token-1`, …): the token itself must never be a name.
    Token(usize),
    /// A JWT's `sub` claim.
    Subject(String),
    /// A JWT without `sub`: it may read prices but owns no account.
    Anonymous,
}

impl Auth {
    pub(crate) fn new(tokens: Vec<Secret>, jwt: JwtConfig) -> Auth {
        // A blank secret would let anyone sign tokens: it means "no JWTs", like a blank token list.
        let jwt = jwt.secret.filter(|s| !s.expose().is_empty()).map(|secret| {
            let mut validation = Validation::new(Algorithm::HS256);
            validation.leeway = LEEWAY.as_secs();
            validation.validate_nbf = true;
            // jsonwebtoken checks `aud`/`iss` only when the token has them: a configured claim must also be required.
            let mut required = vec!["exp"];
            match &jwt.audience {
                Some(aud) => {
                    validation.set_audience(&[aud]);
                    required.push("aud");
                }
                None => validation.validate_aud = false,
            }
            if let Some(iss) = &jwt.issuer {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            validation.set_required_spec_claims(&required);
            (DecodingKey::from_secret(secret.expose().as_bytes()), validation)
        });
        Auth { tokens: tokens.into_iter().filter(|t| !t.expose().is_empty()).collect(), jwt }
    }

    /// Whether any credential is required at all.
    pub(crate) fn enabled(&self) -> bool {
        !self.tokens.is_empty() || self.jwt.is_some()
    }

    /// Checks a request's token (header first, then `?token=`).
    pub(crate) fn check(&self, request: &Parts) -> Result<Authenticated, AuthError> {
        if !self.enabled() {
            return Ok(Authenticated { expires: None });
        }
        let token = bearer(&request.headers).or_else(|| query_token(request.uri.query())).ok_or(AuthError::Missing)?;
        self.verify(&token)
    }

    /// Who a request is, for per-identity state such as a broker account. Verifies the token again.
    pub(crate) fn identify(&self, request: &Parts) -> Result<Identity, AuthError> {
        if !self.enabled() {
            return Ok(Identity::Open);
        }
        let token = bearer(&request.headers).or_else(|| query_token(request.uri.query())).ok_or(AuthError::Missing)?;
        let mut index = None;
        for (i, t) in self.tokens.iter().enumerate() {
            if t.expose().as_bytes().ct_eq(token.as_bytes()).unwrap_u8() == 1 {
                index = Some(i);
            }
        }
        if let Some(i) = index {
            return Ok(Identity::Token(i + 1));
        }
        let Some((key, validation)) = &self.jwt else { return Err(AuthError::Invalid) };
        let data = jsonwebtoken::decode::<Claims>(&token, key, validation).map_err(|_| AuthError::Invalid)?;
        Ok(data.claims.sub.filter(|s| !s.is_empty()).map_or(Identity::Anonymous, Identity::Subject))
    }

    /// Checks one token: a static token compared in constant time, else a JWT.
    pub(crate) fn verify(&self, token: &str) -> Result<Authenticated, AuthError> {
        // Every configured token is compared, so timing says nothing about which one (or how much) matched.
        let matched =
            self.tokens.iter().fold(0u8, |hit, t| hit | t.expose().as_bytes().ct_eq(token.as_bytes()).unwrap_u8());
        if matched == 1 {
            return Ok(Authenticated { expires: None });
        }
        let Some((key, validation)) = &self.jwt else { return Err(AuthError::Invalid) };
        let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => AuthError::WrongAudience,
                ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
                _ => AuthError::Invalid,
            }
        })?;
        let expires = UNIX_EPOCH + Duration::from_secs(data.claims.exp) + LEEWAY;
        Ok(Authenticated { expires: Some(expires) })
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("tokens", &self.tokens.len()).field("jwt", &self.jwt.is_some()).finish()
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

fn query_token(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &str = "test-secret-at-least-32-bytes-long!!";

    fn jwt(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
            .unwrap()
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    fn auth() -> Auth {
        Auth::new(
            vec![Secret::new("static-1"), Secret::new("static-2")],
            JwtConfig { secret: Some(Secret::new(SECRET)), audience: Some("hamster".into()), issuer: None },
        )
    }

    fn parts(uri: &str, authorization: Option<&str>) -> Parts {
        let mut b = Request::builder().uri(uri);
        if let Some(a) = authorization {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn disabled_lets_everyone_in() {
        let a = Auth::new(vec![], JwtConfig::default());
        assert!(!a.enabled());
        let blank = JwtConfig { secret: Some(Secret::new("")), ..JwtConfig::default() };
        assert!(!Auth::new(vec![Secret::new("")], blank).enabled(), "blank secrets enable nothing");
        assert_eq!(a.check(&parts("/ws", None)), Ok(Authenticated { expires: None }));
    }

    #[test]
    fn static_tokens_from_header_or_query() {
        let a = auth();
        assert!(a.check(&parts("/ws", Some("Bearer static-2"))).is_ok());
        assert!(a.check(&parts("/ws", Some("bearer  static-1 "))).is_ok());
        assert!(a.check(&parts("/ws?symbols=A&token=static-1", None)).is_ok());
        assert_eq!(a.check(&parts("/ws", None)), Err(AuthError::Missing));
        assert_eq!(a.check(&parts("/ws", Some("Basic static-1"))), Err(AuthError::Missing));
        assert_eq!(a.check(&parts("/ws?token=static-", None)), Err(AuthError::Invalid));
        assert_eq!(a.check(&parts("/ws?token=", None)), Err(AuthError::Invalid));
    }

    #[test]
    fn jwts_are_checked_for_signature_expiry_and_audience() {
        let a = auth();
        let good = jwt(serde_json::json!({"exp": now() + 600, "aud": "hamster", "sub": "u1"}), SECRET);
        let ok = a.verify(&good).unwrap();
        assert!(ok.expires.unwrap() > SystemTime::now() + Duration::from_secs(600));
        let expired = jwt(serde_json::json!({"exp": now() - 120, "aud": "hamster"}), SECRET);
        assert_eq!(a.verify(&expired), Err(AuthError::Expired));
        let other_aud = jwt(serde_json::json!({"exp": now() + 600, "aud": "other"}), SECRET);
        assert_eq!(a.verify(&other_aud), Err(AuthError::WrongAudience));
        let forged =
            jwt(serde_json::json!({"exp": now() + 600, "aud": "hamster"}), "another-secret-of-32-bytes-or-more");
        assert_eq!(a.verify(&forged), Err(AuthError::Invalid));
        let later = jwt(serde_json::json!({"exp": now() + 600, "nbf": now() + 300, "aud": "hamster"}), SECRET);
        assert_eq!(a.verify(&later), Err(AuthError::NotYetValid));
        assert_eq!(a.verify("not.a.jwt"), Err(AuthError::Invalid));
    }

    #[test]
    fn configured_claims_must_be_present() {
        let a = Auth::new(
            vec![],
            JwtConfig {
                secret: Some(Secret::new(SECRET)),
                audience: Some("hamster".into()),
                issuer: Some("https://id.example".into()),
            },
        );
        let good = jwt(serde_json::json!({"exp": now() + 600, "aud": "hamster", "iss": "https://id.example"}), SECRET);
        assert!(a.verify(&good).is_ok());
        let bare = jwt(serde_json::json!({"exp": now() + 600}), SECRET);
        assert!(matches!(a.verify(&bare), Err(AuthError::MissingClaim(_))), "{:?}", a.verify(&bare));
        let null_aud = jwt(serde_json::json!({"exp": now() + 600, "aud": null, "iss": "https://id.example"}), SECRET);
        assert!(a.verify(&null_aud).is_err(), "aud: null accepted");
        let no_iss = jwt(serde_json::json!({"exp": now() + 600, "aud": "hamster"}), SECRET);
        assert_eq!(a.verify(&no_iss), Err(AuthError::MissingClaim("iss".into())));
        // Without configured claims, a token with only `exp` is fine.
        let open = Auth::new(vec![], JwtConfig { secret: Some(Secret::new(SECRET)), ..JwtConfig::default() });
        assert!(open.verify(&bare).is_ok());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let text = format!("{:?}", auth());
        assert!(!text.contains("static-1") && !text.contains(SECRET), "{text}");
    }
}
