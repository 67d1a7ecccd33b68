//! The one error type that reaches HTTP: a status code and a JSON body with a stable code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hamster_shared::api::ApiError;
use hamster_shared::ErrorCode;

/// An HTTP error response: `status` with body `{"code": ..., "message": ...}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct HttpError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> HttpError {
        HttpError { status, code, message: message.into() }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, Json(ApiError { code: self.code, message: self.message })).into_response()
    }
}
