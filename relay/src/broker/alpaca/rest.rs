//! Alpaca's Trading REST API (`docs/providers/alpaca-broker.md`): the calls the broker makes, and what their
//! refusals mean in the protocol's terms.
//!
//! The key pair travels in the `APCA-API-KEY-ID`/`APCA-API-SECRET-KEY` headers only, marked sensitive so no
//! debug print of a request shows them, and nothing Alpaca answers reaches a client or a log without passing
//! through [`crate::secret::redact`]. `POST /v2/orders` is never retried: a lost answer must not place an order
//! twice, so the caller sees "unavailable" and the order shows up through the stream or the next resync if
//! Alpaca took it.

use std::time::Duration;

use hamster_shared::broker::{OrderReject, OrderRejectCode};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::wire::{WireAccount, WireError, WireOrder, WirePosition};
use crate::secret::{redact, Secret};

/// How long one REST call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a REST call failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum RestError {
    /// Alpaca answered with an error status.
    #[error("Alpaca answered {status}: {message}")]
    Refused { status: StatusCode, code: Option<i64>, message: String },
    /// No answer (connection refused, timeout, TLS).
    #[error("Alpaca could not be reached: {0}")]
    Unreachable(String),
    /// An answer we could not read.
    #[error("Alpaca sent a body we cannot read: {0}")]
    Unreadable(String),
}

impl RestError {
    /// The refusal a trader sees.
    pub(super) fn reject(&self) -> OrderReject {
        let (code, message) = match self {
            RestError::Refused { status, message, .. } => {
                let lower = message.to_ascii_lowercase();
                let code = match status.as_u16() {
                    401 => OrderRejectCode::Unauthorized,
                    404 => OrderRejectCode::NotFound,
                    429 | 500..=599 => OrderRejectCode::Unavailable,
                    403 if lower.contains("buying power") || lower.contains("insufficient balance") => {
                        OrderRejectCode::InsufficientBuyingPower
                    }
                    403 if lower.contains("qty") || lower.contains("shares") => OrderRejectCode::InsufficientQty,
                    422 if lower.contains("not cancelable") => OrderRejectCode::NotCancelable,
                    _ => OrderRejectCode::InvalidOrder,
                };
                let message = match status.as_u16() {
                    401 => "Alpaca refused the API key (check APCA_API_KEY_ID and APCA_API_SECRET_KEY, and that \
                            paper keys go to the paper endpoint)"
                        .to_owned(),
                    429 => "Alpaca's rate limit was reached; try again in a moment".to_owned(),
                    _ => format!("Alpaca: {message}"),
                };
                (code, message)
            }
            RestError::Unreachable(e) => (OrderRejectCode::Unavailable, format!("Alpaca could not be reached: {e}")),
            RestError::Unreadable(e) => (OrderRejectCode::Unavailable, format!("Alpaca's answer was unreadable: {e}")),
        };
        OrderReject { code, message: redact(&message).into_owned() }
    }
}

/// A client of one Alpaca trading account.
#[derive(Debug)]
pub(super) struct Rest {
    http: reqwest::Client,
    base: String,
}

impl Rest {
    pub(super) fn new(base: &str, key: &Secret, secret: &Secret) -> anyhow::Result<Rest> {
        // Alpaca answers plain HTTP with a redirect; following it would resend the keys (the client follows none).
        let headers = [("APCA-API-KEY-ID", key.expose()), ("APCA-API-SECRET-KEY", secret.expose())];
        let http = crate::secret::keyed_client(&headers, CALL_TIMEOUT)?;
        Ok(Rest { http, base: base.trim_end_matches('/').to_owned() })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Option<T>, RestError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        // reqwest's errors name the URL, never the headers; the redaction is for an upstream that echoes a key.
        let response = request.send().await.map_err(|e| RestError::Unreachable(redact(&e.to_string()).into()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| RestError::Unreachable(redact(&e.to_string()).into()))?;
        if !status.is_success() {
            let error: WireError = serde_json::from_slice(&bytes).unwrap_or_default();
            let message = error
                .message
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).trim().to_owned());
            return Err(RestError::Refused { status, code: error.code, message: redact(&message).into_owned() });
        }
        if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| RestError::Unreadable(e.to_string()))
    }

    async fn expect<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, RestError> {
        self.call(method, path, query, body).await?.ok_or_else(|| RestError::Unreadable("an empty body".into()))
    }

    pub(super) async fn place(&self, body: &Value) -> Result<WireOrder, RestError> {
        self.expect(Method::POST, "/v2/orders", &[], Some(body)).await
    }

    pub(super) async fn replace(&self, id: &str, body: &Value) -> Result<WireOrder, RestError> {
        self.expect(Method::PATCH, &format!("/v2/orders/{}", path_segment(id)), &[], Some(body)).await
    }

    /// Asks for a cancel (Alpaca confirms it later, on the stream).
    pub(super) async fn cancel(&self, id: &str) -> Result<(), RestError> {
        self.call::<Value>(Method::DELETE, &format!("/v2/orders/{}", path_segment(id)), &[], None).await.map(|_| ())
    }

    pub(super) async fn order(&self, id: &str) -> Result<WireOrder, RestError> {
        self.expect(Method::GET, &format!("/v2/orders/{}", path_segment(id)), &[("nested", "true")], None).await
    }

    /// The newest orders, open and closed, with bracket legs nested in their parents.
    pub(super) async fn recent_orders(&self) -> Result<Vec<WireOrder>, RestError> {
        let query = [("status", "all"), ("limit", "500"), ("nested", "true"), ("direction", "desc")];
        self.expect(Method::GET, "/v2/orders", &query, None).await
    }

    pub(super) async fn positions(&self) -> Result<Vec<WirePosition>, RestError> {
        self.expect(Method::GET, "/v2/positions", &[], None).await
    }

    pub(super) async fn account(&self) -> Result<WireAccount, RestError> {
        self.expect(Method::GET, "/v2/account", &[], None).await
    }
}

/// An order id as one path segment (ids come from clients; a `/` or `?` must not change the path).
fn path_segment(id: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(id, SEGMENT).to_string()
}
