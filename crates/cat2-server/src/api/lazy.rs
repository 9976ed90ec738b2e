//! `POST /api/upload_lazyarr/{path}` and the legacy `POST /api/lazyexpr/`:
//! saving lazy expressions (see `cat2_core::lazy`).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::Value;

use cat2_core::lazy::create::LazyRequest;
use cat2_core::DsPath;

use crate::blocking::{blocking_timed, server_timing};
use crate::body::{json_value, nullable_str, required, string_type};
use crate::error::{ApiError, ApiResult};
use crate::extract::{DatasetPath, LoggedIn, RequestBudget};
use crate::AppState;

/// The `Cat2LazyArr` body: all seven keys are required (422 otherwise).
fn parse_body(body: &[u8]) -> ApiResult<(Option<String>, LazyRequest)> {
    let v = json_value(body)?;
    let name = nullable_str(&v, "name")?;
    let expression = nullable_str(&v, "expression")?;
    let func = nullable_str(&v, "func")?;
    let dtype = nullable_str(&v, "dtype")?;
    let operands = match required(&v, "operands")? {
        Value::Null => Vec::new(),
        Value::Object(m) => m
            .iter()
            .map(|(k, p)| match p {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(string_type(&format!("operands.{k}"), other)),
            })
            .collect::<ApiResult<_>>()?,
        other => {
            return Err(ApiError::validation(
                "dict_type",
                &["body", "operands"],
                "Input should be a valid dictionary",
                other.clone(),
            ))
        }
    };
    let shape = match required(&v, "shape")? {
        Value::Null => None,
        Value::Array(items) => Some(
            items
                .iter()
                .map(|n| {
                    n.as_i64().ok_or_else(|| {
                        ApiError::validation(
                            "int_type",
                            &["body", "shape"],
                            "Input should be a valid integer",
                            n.clone(),
                        )
                    })
                })
                .collect::<ApiResult<_>>()?,
        ),
        other => {
            return Err(ApiError::validation(
                "list_type",
                &["body", "shape"],
                "Input should be a valid list",
                other.clone(),
            ))
        }
    };
    let compute = match required(&v, "compute")? {
        Value::Bool(b) => *b,
        Value::Null => false,
        other => {
            return Err(ApiError::validation(
                "bool_type",
                &["body", "compute"],
                "Input should be a valid boolean",
                other.clone(),
            ))
        }
    };
    Ok((
        name,
        LazyRequest {
            expression,
            func,
            operands,
            dtype,
            shape,
            compute,
        },
    ))
}

async fn save_at(
    app: AppState,
    user: crate::extract::CallerId,
    path: DsPath,
    req: LazyRequest,
    budget: RequestBudget,
) -> ApiResult<impl IntoResponse> {
    let shared = budget.share();
    let (answer, took) =
        blocking_timed(move || app.service.save_expression(&user, &path, &req, &shared)).await?;
    Ok((
        [("server-timing", server_timing("save", took))],
        Json(answer),
    ))
}

/// `POST /api/upload_lazyarr/{path}`: answers the path.
pub async fn post_upload_lazyarr(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
    budget: RequestBudget,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let (_, req) = parse_body(&body)?;
    save_at(app, caller, path, req, budget).await
}

/// `POST /api/lazyexpr/`: the same, saved as `@personal/<name>.b2nd`.
pub async fn post_lazyexpr(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    budget: RequestBudget,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let (name, req) = parse_body(&body)?;
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Invalid name or expression: a name is required"))?;
    let path = DsPath::parse(&format!("@personal/{name}.b2nd"))
        .map_err(|e| ApiError::bad_request(format!("Invalid name or expression: {e}")))?;
    save_at(app, caller, path, req, budget).await
}
