//! Extractors: everything that arrives over the wire is parsed once here
//! into checked types (a [`DsPath`], the calling user, query parameters) and
//! bad input becomes Caterva2's 4xx answers.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, RawQuery};
use axum::http::request::Parts;
use cat2_core::budget::Budget;
use cat2_core::DsPath;
use serde_json::Value;

use crate::error::ApiError;
use crate::AppState;

/// The `{path}` of `/api/<verb>/{path}`, percent-decoded and checked.
pub struct DatasetPath(pub DsPath);

impl FromRequestParts<AppState> for DatasetPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw): Path<String> = Path::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid path: {e}")))?;
        Ok(DatasetPath(DsPath::parse(&raw)?))
    }
}

/// Who is calling: the user of a valid session cookie, or nobody.
pub type CallerId = cat2_service::Who;

impl FromRequestParts<AppState> for CallerId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<CallerId>() {
            return Ok(caller.clone());
        }
        let Some(token) = crate::session::session_token(&parts.headers) else {
            return Ok(CallerId::anonymous());
        };
        if !state.has_users() {
            return Ok(CallerId::anonymous());
        }
        // Every request looks its user up again: users removed or
        // deactivated by another process count at once.
        let service = state.service.clone();
        let caller = tokio::task::spawn_blocking(move || service.who(&token)).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Query parameters as a map (last value wins), for handlers that validate
/// them FastAPI-style.
pub struct QueryMap(pub HashMap<String, String>);

impl FromRequestParts<AppState> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let RawQuery(q) = RawQuery::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let map = q
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect::<HashMap<_, _>>()
            })
            .unwrap_or_default();
        Ok(QueryMap(map))
    }
}

impl QueryMap {
    /// A required integer query parameter, with FastAPI's 422 answers.
    pub fn required_int(&self, name: &str) -> Result<i64, ApiError> {
        let Some(raw) = self.0.get(name) else {
            return Err(ApiError::validation(
                "missing",
                &["query", name],
                "Field required",
                Value::Null,
            ));
        };
        raw.trim().parse::<i64>().map_err(|_| {
            ApiError::validation(
                "int_parsing",
                &["query", name],
                "Input should be a valid integer, unable to parse string as an integer",
                Value::String(raw.clone()),
            )
        })
    }

    /// An optional string parameter; empty counts as absent.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|s| !s.is_empty()).cloned()
    }
}

/// A caller who must be logged in; anonymous requests get 401.
pub struct LoggedIn(pub CallerId);

impl FromRequestParts<AppState> for LoggedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = CallerId::from_request_parts(parts, state).await?;
        if caller.user_id.is_none() {
            return Err(ApiError::unauthorized());
        }
        Ok(LoggedIn(caller))
    }
}

/// What the request may spend ([`cat2_core::budget`]): the server's limits,
/// drawing on its shared working memory. Dropping it — the handler
/// finished, or its client went away and hyper dropped the request —
/// cancels the budget, so work still running for the request on the
/// blocking pool stops at its next check.
pub struct RequestBudget(pub Budget);

impl FromRequestParts<AppState> for RequestBudget {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(RequestBudget(state.new_budget()))
    }
}

impl RequestBudget {
    /// The budget, for the work the request starts on the blocking pool;
    /// the handler keeps `self`, whose drop cancels it.
    pub fn share(&self) -> Budget {
        self.0.clone()
    }
}

impl std::ops::Deref for RequestBudget {
    type Target = Budget;

    fn deref(&self) -> &Budget {
        &self.0
    }
}

impl Drop for RequestBudget {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
