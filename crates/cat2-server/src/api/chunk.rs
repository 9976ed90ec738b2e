//! `GET /api/chunk/{path}?nchunk=N`: one chunk exactly as stored.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;

use cat2_core::dataset::{self, Dataset};

use crate::blocking::blocking;
use crate::error::{ApiError, ApiResult};
use crate::extract::{CallerId, DatasetPath, QueryMap};
use crate::AppState;

pub async fn get_chunk(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    query: QueryMap,
) -> ApiResult<Response> {
    let nchunk = query.required_int("nchunk")?;
    let sd = app.state_dir.clone();
    let chunk = blocking(move || {
        let loc = sd.locate(&path, caller.as_caller())?;
        let ds = dataset::open(&loc)?;
        let sc = match &ds {
            Dataset::Array(arr) => arr.schunk(),
            Dataset::Frame(sc) => sc,
        };
        if nchunk < 0 || nchunk >= sc.nchunks() {
            return Err(ApiError::bad_request(format!(
                "nchunk {nchunk} is out of range: {} has {} chunks",
                loc.logical,
                sc.nchunks()
            )));
        }
        Ok(sc.chunk(nchunk)?)
    })
    .await?;
    // Like the reference, a bare body with no content type.
    Response::builder()
        .body(Body::from(chunk))
        .map_err(ApiError::internal)
}
