//! Request bodies as FastAPI validates them: malformed JSON and missing or
//! mistyped fields become 422 answers with pydantic's error shape, and a
//! malformed body is never echoed back.

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};

/// Parses a JSON body (422 `json_invalid` when it is not JSON).
pub fn json_value(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::validation(
            "json_invalid",
            &["body", "0"],
            "JSON decode error",
            json!({}),
        )
        .with_ctx_error(e.to_string())
    })
}

/// A required string field (422 `missing` / `string_type`).
pub fn required_str(v: &Value, key: &str) -> ApiResult<String> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Err(ApiError::validation(
            "missing",
            &["body", key],
            "Field required",
            v.clone(),
        )),
        Some(other) => Err(string_type(key, other)),
    }
}

/// 422 for a field that should have been a string.
pub fn string_type(key: &str, got: &Value) -> ApiError {
    ApiError::validation(
        "string_type",
        &["body", key],
        "Input should be a valid string",
        got.clone(),
    )
}

/// A field that must be present and may be `null` (422 `missing` when absent).
pub fn required<'a>(v: &'a Value, key: &str) -> ApiResult<&'a Value> {
    v.get(key)
        .ok_or_else(|| ApiError::validation("missing", &["body", key], "Field required", v.clone()))
}

/// A required field holding a string or `null`.
pub fn nullable_str(v: &Value, key: &str) -> ApiResult<Option<String>> {
    match required(v, key)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(string_type(key, other)),
    }
}
