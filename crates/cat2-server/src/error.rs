//! The one error type of the HTTP layer, and the single place where library
//! errors become status codes.
//!
//! Client errors keep their message in Caterva2's `{"detail": ...}` body.
//! Server errors answer `Internal Server Error` (as the reference does) and
//! the real cause is logged here, with its whole chain of sources.

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

    /// A 500 for an error whose sources are logged with it (`a: b: c`).
    pub fn internal_chain(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut text = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            let more = s.to_string();
            // Transparent wrappers repeat their source's text.
            if !text.ends_with(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = s.source();
        }
        Self::internal(text)
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
            E::TooLarge(msg) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, msg),
            E::TimedOut(msg) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg),
            E::Busy(msg) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg)
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("5")),
            // Nobody reads it: the client went away (nginx's 499).
            E::Cancelled => ApiError::new(
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                "the request was cancelled",
            ),
            E::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ApiError::not_found()
            }
            E::Hdf5 { .. } if e.is_io_fault() => ApiError::internal_chain(&e),
            E::Hdf5 { .. } => ApiError::bad_request(e.to_string()),
            E::Storage(ref s) => match s {
                cat2_core::storage::Error::NotFound { .. } => ApiError::not_found(),
                cat2_core::storage::Error::InvalidKey { .. }
                | cat2_core::storage::Error::Conflict { .. }
                | cat2_core::storage::Error::AlreadyExists { .. } => {
                    // Keys become logical paths: the state's layout (user
                    // ids, `personal/`) is not the client's business.
                    ApiError::bad_request(cat2_core::store::client_text(&e))
                }
                _ => ApiError::internal_chain(&e),
            },
            E::Damaged {
                ref path,
                ref source,
            } => damaged(Some(path), source),
            E::Blosc(ref b) if b.is_damaged_data() => damaged(None, b),
            other => ApiError::internal_chain(&other),
        }
    }
}

impl From<cat2_blosc2::Error> for ApiError {
    fn from(e: cat2_blosc2::Error) -> Self {
        if e.is_damaged_data() {
            return damaged(None, &e);
        }
        ApiError::internal_chain(&e)
    }
}

/// A 422 for stored data C-Blosc2 refused (damaged, or in a form this
/// server does not read; see `cat2_blosc2::Error::is_damaged_data`): what
/// a file holds is untrusted input, not the server's fault. The message
/// names the dataset (its logical path) and the chunk when they are known.
fn damaged(path: Option<&str>, e: &cat2_blosc2::Error) -> ApiError {
    let of = path.map(|p| format!(" of {p}")).unwrap_or_default();
    tracing::warn!("stored data{of} not readable: {e}");
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("the stored data{of} could not be decoded (it is damaged, or in a form this server does not read): {e}"),
    )
}

impl From<cat2_auth::Error> for ApiError {
    fn from(e: cat2_auth::Error) -> Self {
        use cat2_auth::Error as E;
        match e {
            E::InvalidEmail { .. }
            | E::InvalidPassword { .. }
            | E::UserAlreadyExists { .. }
            | E::UserNotExists { .. }
            | E::TooManyUsers { .. }
            | E::BadResetToken { .. } => ApiError::bad_request(e.to_string()),
            other => ApiError::internal_chain(&other),
        }
    }
}

impl From<cat2_service::Error> for ApiError {
    fn from(e: cat2_service::Error) -> Self {
        use cat2_service::Error as E;
        match e {
            E::Core(e) => e.into(),
            E::Users(e) => e.into(),
            E::NotAllowed(msg) => ApiError::new(StatusCode::UNAUTHORIZED, msg),
            E::BadRequest(msg) => ApiError::bad_request(msg),
            E::NoUsers => ApiError::not_found(),
            E::BadCredentials => ApiError::bad_request("LOGIN_BAD_CREDENTIALS"),
            other => ApiError::internal_chain(&other),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("blocking task failed: {e}"))
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
