//! `GET /api/chunk/{path}?nchunk=N`: one chunk exactly as stored.
//! `POST /api/chunk/{path}?nchunk=N`: write one compressed chunk into an
//! unwritten slot of a laid-out array (see `cat2_core::write::fill`).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::Json;

use cat2_proto::ChunkWritten;

use crate::blocking::blocking;
use crate::error::{ApiError, ApiResult};
use crate::extract::{CallerId, DatasetPath, LoggedIn, QueryMap, RequestBudget};
use crate::AppState;

/// Longest chunk accepted: a Blosc2 chunk's size is an `i32`.
pub const MAX_CHUNK_BODY: usize = i32::MAX as usize;

/// `POST /api/chunk/{path}?nchunk=N`: answers how far the fill has got. The
/// write that fills the last slot starts the publish, after its answer.
pub async fn post_chunk(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
    query: QueryMap,
    body: Bytes,
) -> ApiResult<Json<ChunkWritten>> {
    let nchunk = query.required_int("nchunk")?;
    let service = app.service.clone();
    let (c, p) = (caller.clone(), path.clone());
    let written = blocking(move || service.write_chunk(&c, &p, nchunk, &body)).await?;
    if written.publish_now {
        super::publish::publish_in_background(app, caller, path);
    }
    Ok(Json(written.answer))
}

pub async fn get_chunk(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    query: QueryMap,
    budget: RequestBudget,
) -> ApiResult<Response> {
    let nchunk = query.required_int("nchunk")?;
    let shared = budget.share();
    let chunk = blocking(move || app.service.chunk(&caller, &path, nchunk, &shared)).await?;
    // Like the reference, a bare body with no content type.
    Response::builder()
        .body(Body::from(chunk))
        .map_err(ApiError::internal)
}
