//! The one error type that reaches HTTP: a status code and a JSON body with a stable code.
//!
//! The refusals other modules return (the edge's, auth's, routing's, a symbol's, a lease's) become HTTP errors
//! here and nowhere else, through `From`, so every status code the relay answers with is chosen in this file and
//! handlers simply use `?`. What the framework answers on its own (an extractor's rejection, 404, 405, 413,
//! 415) is rewritten by [`json_errors`] into the same body, so no client ever has to parse `text/plain`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hamster_shared::api::ApiError;
use hamster_shared::{ErrorCode, Rejection};

use crate::commands::TooManySymbols;
use crate::guard::auth::AuthError;
use crate::guard::limits::AddressLeaseLimit;
use crate::guard::Refusal;
use crate::hub::LeaseLimit;
use crate::upstream::RouteError;

/// An HTTP error response: `status` with body `{"code": ..., "message": ...}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub(crate) struct HttpError {
    pub(crate) status: StatusCode,
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> HttpError {
        HttpError { status, code, message: message.into() }
    }

    pub(crate) fn bad_request(code: ErrorCode, message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, Json(ApiError { code: self.code, message: self.message })).into_response()
    }
}

/// Longest framework error text kept as the `message`; longer ones are replaced by the status's reason.
const MAX_FRAMEWORK_MESSAGE: usize = 512;

/// Middleware: gives every error response that is not already JSON (axum's extractor rejections, unmatched
/// methods, oversized or mistyped bodies) the JSON error body, keeping its status and its text as the message.
pub(crate) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_FRAMEWORK_MESSAGE).await.ok();
    let text = text.as_deref().map(String::from_utf8_lossy).map(|t| t.trim().to_owned()).unwrap_or_default();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::MessageTooLarge,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        s if s.is_server_error() => ErrorCode::Unavailable,
        _ => ErrorCode::BadMessage,
    };
    let mut out = HttpError::new(status, code, crate::secret::redact(&message)).into_response();
    for (name, value) in parts.headers.iter() {
        // `Allow` on a 405 and `WWW-Authenticate` on a 401 still tell the client what to do.
        if name == header::ALLOW || name == header::WWW_AUTHENTICATE {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out.headers_mut().entry(header::CONTENT_TYPE).or_insert(HeaderValue::from_static("application/json"));
    out
}

/// A stream handshake refused at the edge: 403 for the origin, 429 for the address's connection limit.
impl From<Refusal> for HttpError {
    fn from(e: Refusal) -> HttpError {
        let (status, code) = match e {
            Refusal::Origin(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            Refusal::TooManyConnections => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyConnections),
        };
        HttpError::new(status, code, e.to_string())
    }
}

/// A missing or invalid credential: 401 (the auth middleware adds `WWW-Authenticate`).
impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> HttpError {
        HttpError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, e.to_string())
    }
}

/// A symbol refused by the shared rules or the router, named in the message: 400 with the rejection's code.
impl From<Rejection> for HttpError {
    fn from(r: Rejection) -> HttpError {
        HttpError::bad_request(r.code, format!("{:?}: {}", r.symbol, r.message))
    }
}

/// A symbol no configured provider serves: 400 with the router's code.
impl From<RouteError> for HttpError {
    fn from(e: RouteError) -> HttpError {
        HttpError::bad_request(e.code, e.message)
    }
}

/// A request naming more symbols than one request may: 400.
impl From<TooManySymbols> for HttpError {
    fn from(e: TooManySymbols) -> HttpError {
        HttpError::bad_request(ErrorCode::TooManySymbols, e.to_string())
    }
}

/// REST leases are full: 429, the client should stream instead.
impl From<LeaseLimit> for HttpError {
    fn from(e: LeaseLimit) -> HttpError {
        HttpError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManySymbols, e.to_string())
    }
}

/// One address holds its share of REST leases: 429, like the relay-wide limit.
impl From<AddressLeaseLimit> for HttpError {
    fn from(e: AddressLeaseLimit) -> HttpError {
        HttpError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManySymbols, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(e: impl Into<HttpError>) -> (StatusCode, ErrorCode, String) {
        let e = e.into();
        (e.status, e.code, e.message)
    }

    #[test]
    fn refusals_keep_their_status_code_and_message() {
        let origin = Refusal::Origin("https://evil.example".into());
        assert_eq!(
            parts(origin),
            (
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "origin \"https://evil.example\" is not allowed to connect (see ALLOWED_ORIGINS)".into()
            )
        );
        let (status, code, _) = parts(Refusal::TooManyConnections);
        assert_eq!((status, code), (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyConnections));
        let (status, code, _) = parts(AuthError::Missing);
        assert_eq!((status, code), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized));
        let (status, code, _) = parts(LeaseLimit { max: 3 });
        assert_eq!((status, code), (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManySymbols));
        let (status, code, message) = parts(TooManySymbols { count: 101 });
        assert_eq!((status, code), (StatusCode::BAD_REQUEST, ErrorCode::TooManySymbols));
        assert!(message.starts_with("101 symbols in one request"), "{message}");
    }

    #[tokio::test]
    async fn framework_errors_get_the_json_body() {
        for (status, code) in [
            (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::MessageTooLarge),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::BadMessage),
            (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::BadMessage),
            (StatusCode::NOT_FOUND, ErrorCode::NotFound),
        ] {
            let plain = (status, [(header::ALLOW, "GET,HEAD")], "plain text from the framework").into_response();
            let out = json_errors(plain).await;
            assert_eq!(out.status(), status);
            assert_eq!(out.headers()[header::CONTENT_TYPE], "application/json");
            assert_eq!(out.headers()[header::ALLOW], "GET,HEAD");
            let body = axum::body::to_bytes(out.into_body(), 4096).await.unwrap();
            let parsed: ApiError = serde_json::from_slice(&body).unwrap();
            assert_eq!((parsed.code, parsed.message.as_str()), (code, "plain text from the framework"));
        }
        let empty = json_errors(StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response()).await;
        let body = axum::body::to_bytes(empty.into_body(), 4096).await.unwrap();
        let parsed: ApiError = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.message, "Unsupported Media Type");
        let ok = json_errors((StatusCode::OK, "fine").into_response()).await;
        assert_eq!(axum::body::to_bytes(ok.into_body(), 64).await.unwrap(), "fine");
    }

    #[test]
    fn symbol_rejections_name_the_symbol_and_route_errors_do_not() {
        let rejected = Rejection {
            symbol: "A B".into(),
            code: ErrorCode::InvalidSymbol,
            message: "bad".into(),
            suggestions: Vec::new(),
        };
        assert_eq!(parts(rejected), (StatusCode::BAD_REQUEST, ErrorCode::InvalidSymbol, "\"A B\": bad".into()));
        let unrouted =
            RouteError { code: ErrorCode::UnknownProvider, message: "no provider".into(), suggestions: Vec::new() };
        assert_eq!(parts(unrouted), (StatusCode::BAD_REQUEST, ErrorCode::UnknownProvider, "no provider".into()));
    }
}
