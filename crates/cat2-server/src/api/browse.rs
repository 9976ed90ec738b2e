//! Browsing: roots, listings and metadata.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::blocking::blocking;
use crate::error::ApiResult;
use crate::extract::{CallerId, DatasetPath};
use crate::AppState;

/// `GET /api/roots`: `@public` for everyone, the private roots once logged in.
pub async fn get_roots(State(app): State<AppState>, caller: CallerId) -> Json<Value> {
    let roots: Map<String, Value> = app
        .service
        .roots(&caller)
        .into_iter()
        .map(|name| (name.to_string(), json!({ "name": name })))
        .collect();
    Json(Value::Object(roots))
}

/// `GET /api/list/{path}`: every file below a directory, recursively.
pub async fn get_list(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Json<Vec<String>>> {
    let names = blocking(move || app.service.list(&caller, &path)).await?;
    Ok(Json(names))
}

/// `GET /api/info/{path}`: metadata of an array, super-chunk, file or group.
pub async fn get_info(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Response> {
    // The validator is of the version the answer was read from (for a path
    // inside a container, the container's: a leaf served in ranges is a
    // window of that file).
    let (info, etag) = blocking(move || app.service.info(&caller, &path)).await?;
    let mut resp = Json(info).into_response();
    if let Some(v) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

/// `GET /api/service-worker-heartbeat`: liveness for the browser's worker.
pub async fn get_heartbeat() -> &'static str {
    "ok"
}

/// `GET /api/peer`: this server's identity, for peers that mount its roots.
pub async fn get_peer(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let service = app.service.clone();
    let peer_id = blocking(move || service.peer_id()).await?;
    Ok(Json(json!({
        "peer_id": peer_id,
        "name": app.config.urlbase,
        "api_version": 1,
        "roots": ["@public"],
        "capabilities": { "chunk_api": "plain" },
    })))
}
