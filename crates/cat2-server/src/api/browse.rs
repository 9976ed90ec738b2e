//! Browsing: roots, listings and metadata.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use cat2_core::dataset;
use cat2_core::listing;

use crate::blocking::blocking;
use crate::error::ApiResult;
use crate::extract::{CallerId, DatasetPath};
use crate::AppState;

/// `GET /api/roots`: `@public` for everyone, the private roots once logged in.
pub async fn get_roots(caller: CallerId) -> Json<Value> {
    let mut roots = Map::new();
    let mut add = |name: &str| {
        roots.insert(name.into(), json!({ "name": name }));
    };
    add("@public");
    if caller.user_id.is_some() {
        add("@personal");
        add("@shared");
    }
    Json(Value::Object(roots))
}

/// `GET /api/list/{path}`: every file below a directory, recursively.
pub async fn get_list(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Json<Vec<String>>> {
    let sd = app.state_dir.clone();
    let names = blocking(move || {
        let loc = sd.locate(&path, caller.as_caller())?;
        listing::list(&loc)
    })
    .await?;
    Ok(Json(names))
}

/// `GET /api/info/{path}`: metadata of an array, super-chunk, file or group.
pub async fn get_info(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Response> {
    let sd = app.state_dir.clone();
    let (info, etag) = blocking(move || {
        let loc = sd.locate(&path, caller.as_caller())?;
        // The validator first: if a writer replaces the file in between, the
        // answer is newer than its ETag (a later request sees the ETag move
        // and asks again), never older than it.
        let etag = match loc.entry {
            // A path inside a container carries the container's validator:
            // a leaf served in ranges is a window of that file.
            cat2_core::Entry::Dataset | cat2_core::Entry::Blob | cat2_core::Entry::Member => {
                std::fs::metadata(&loc.fs)
                    .ok()
                    .map(|m| cat2_core::meta::etag(&loc.fs, &m))
            }
            _ => None,
        };
        let info = dataset::info_with(&sd, &loc, caller.as_caller())?;
        Ok::<_, cat2_core::Error>((info, etag))
    })
    .await?;
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
    let sd = app.state_dir.clone();
    let peer_id = blocking(move || {
        let p = sd.path().join("peer_id");
        std::fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|e| cat2_core::Error::io("reading", p, e))
    })
    .await?;
    Ok(Json(json!({
        "peer_id": peer_id,
        "name": app.config.urlbase,
        "api_version": 1,
        "roots": ["@public"],
        "capabilities": { "chunk_api": "plain" },
    })))
}
