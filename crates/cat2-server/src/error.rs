//! The one error type of the HTTP layer, and the single place where library
//! errors become status codes.
//!
//! Client errors keep their message in Caterva2's `{"detail": ...}` body.
//! Server errors answer `Internal Server Error` (as the reference does) and
//! the real cause is logged here, with the request that caused it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answer: a status and a `detail` (string, or FastAPI's list of
/// validation problems for 422).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: Value,
    /// Extra headers (e.g. `content-range` on 416).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: Value::String(detail.into()),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found")
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }
    /// FastAPI's 422 body for one invalid parameter.
    pub fn validation(kind: &str, loc: &[&str], msg: &str, input: Value) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: json!([{ "type": kind, "loc": loc, "msg": msg, "input": input }]),
            headers: Vec::new(),
        }
    }
    /// Adds pydantic's `ctx.error` to a single validation problem.
    pub fn with_ctx_error(mut self, error: String) -> Self {
        if let Some(first) = self.detail.get_mut(0).and_then(Value::as_object_mut) {
            first.insert("ctx".into(), json!({ "error": error }));
        }
        self
    }
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            (
                self.status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Internal Server Error",
            )
                .into_response()
        } else {
            (self.status, axum::Json(json!({ "detail": self.detail }))).into_response()
        };
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

impl From<cat2_core::Error> for ApiError {
    fn from(e: cat2_core::Error) -> Self {
        use cat2_core::Error as E;
        match e {
            E::BadSlice { .. }
            | E::OutOfBounds(_)
            | E::BadIndices(_)
            | E::BadFilter(_)
            | E::BadRequest(_) => ApiError::bad_request(e.to_string()),
            E::NotFound { .. } => ApiError::not_found(),
            E::Missing(msg) => ApiError::new(StatusCode::NOT_FOUND, msg),
            E::Forbidden(msg) => ApiError::new(StatusCode::FORBIDDEN, msg),
            E::Conflict(msg) => ApiError::new(StatusCode::CONFLICT, msg),
            E::Unauthorized => ApiError::unauthorized(),
            E::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ApiError::not_found()
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<cat2_blosc2::Error> for ApiError {
    fn from(e: cat2_blosc2::Error) -> Self {
        ApiError::internal(e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("blocking task failed: {e}"))
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
