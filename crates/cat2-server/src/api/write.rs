//! Writes: upload, remove, move, copy. Bodies stream into a staged object
//! near their target; the library then verifies or compresses it and
//! commits it in place on the blocking pool.

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use serde_json::Value;

use cat2_core::storage::StagedIo;
use cat2_core::write::transfer::Transfer;

use crate::blocking::blocking;
use crate::body::{json_value, required_str};
use crate::error::{ApiError, ApiResult};
use crate::extract::{DatasetPath, LoggedIn};
use crate::stream::Sink;
use crate::AppState;

/// FastAPI's 422 for a multipart body without its `file` part.
fn missing_file() -> ApiError {
    ApiError::validation("missing", &["body", "file"], "Field required", Value::Null)
}

/// Streams the `file` part of a multipart body into a staged object;
/// returns the part's file name (`upload` when it has none, as httpx names
/// in-memory data).
pub async fn receive_file_part(
    multipart: &mut Multipart,
    io: Arc<dyn StagedIo>,
) -> ApiResult<String> {
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?;
        let Some(mut field) = field else {
            return Err(missing_file());
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("upload").to_string();
        let mut sink = Sink::new(io);
        while let Some(bytes) = field
            .chunk()
            .await
            .map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?
        {
            if !sink.write(&bytes).await {
                break;
            }
        }
        sink.finish().await?;
        return Ok(name);
    }
}

/// Refuses early a body that could never fit the quota.
pub(crate) fn check_declared_size(app: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(quota), Some(len)) = (app.config.quota, declared) {
        if len > quota {
            return Err(ApiError::bad_request(
                "Upload failed because quota limit has been exceeded.",
            ));
        }
    }
    Ok(())
}

/// `POST /api/upload/{path}`.
pub async fn post_upload(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> ApiResult<Json<String>> {
    check_declared_size(&app, &headers)?;
    // The file name is only known once its part arrives, but where the
    // upload goes is: it is staged there, and placed once named.
    let service = app.service.clone();
    let (c, p) = (caller.clone(), path.clone());
    let upload = blocking(move || service.start_upload(&c, &p)).await?;
    let file_name = receive_file_part(&mut multipart, upload.io()).await?;
    let logical = blocking(move || {
        app.service
            .finish_upload(&caller, &path, &file_name, upload)
    })
    .await?;
    Ok(Json(logical.to_string()))
}

/// `POST /api/remove/{path}`: answers the path as given.
pub async fn post_remove(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Json<String>> {
    let answer = path.to_string();
    blocking(move || app.service.remove(&caller, &path)).await?;
    Ok(Json(answer))
}

/// `POST /api/unfold/{path}`: unfolds an HDF5 file into proxies beside it;
/// answers the name of the new directory (the file name without its suffix).
pub async fn post_unfold(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Json<String>> {
    let stem = blocking(move || app.service.unfold(&caller, &path)).await?;
    Ok(Json(stem))
}

/// The JSON body of move and copy.
#[derive(Debug)]
pub struct TransferBody {
    src: String,
    dst: String,
}

fn parse_transfer_body(body: &[u8]) -> ApiResult<TransferBody> {
    let value = json_value(body)?;
    Ok(TransferBody {
        src: required_str(&value, "src")?,
        dst: required_str(&value, "dst")?,
    })
}

async fn transfer(
    app: AppState,
    caller: crate::extract::CallerId,
    kind: Transfer,
    body: &[u8],
) -> ApiResult<Json<String>> {
    let body = parse_transfer_body(body)?;
    let dst = blocking(move || app.service.transfer(&caller, kind, &body.src, &body.dst)).await?;
    Ok(Json(dst.to_string()))
}

/// `POST /api/move/`.
pub async fn post_move(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    body: axum::body::Bytes,
) -> ApiResult<Json<String>> {
    transfer(app, caller, Transfer::Move, &body).await
}

/// `POST /api/copy/`.
pub async fn post_copy(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    body: axum::body::Bytes,
) -> ApiResult<Json<String>> {
    transfer(app, caller, Transfer::Copy, &body).await
}

/// `POST /api/append/{path}`: answers the new shape.
pub async fn post_append(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
    mut multipart: Multipart,
) -> ApiResult<Json<Vec<i64>>> {
    // The rows are staged in the root they go to, never listed.
    let service = app.service.clone();
    let (c, p) = (caller.clone(), path.clone());
    let rows = blocking(move || service.start_scratch(&c, &p)).await?;
    receive_file_part(&mut multipart, rows.io()).await?;
    let shape = blocking(move || app.service.append(&caller, &path, rows)).await?;
    Ok(Json(shape))
}

/// `POST /api/addnotebook/{path}`: creates an empty notebook (web GUI).
pub async fn post_addnotebook(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Json<String>> {
    let made = blocking(move || app.service.add_notebook(&caller, &path)).await?;
    Ok(Json(made.to_string()))
}
