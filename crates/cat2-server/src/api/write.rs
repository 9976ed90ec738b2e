//! Writes: upload, remove, move, copy. Bodies stream to a temporary file
//! beside their target; the library then verifies or compresses it and
//! renames it into place on the blocking pool.

use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use cat2_core::write::{self, transfer::Transfer, upload};

use crate::blocking::blocking;
use crate::body::{json_value, required_str};
use crate::error::{ApiError, ApiResult};
use crate::extract::{DatasetPath, LoggedIn};
use crate::AppState;

/// FastAPI's 422 for a multipart body without its `file` part.
fn missing_file() -> ApiError {
    ApiError::validation("missing", &["body", "file"], "Field required", Value::Null)
}

/// Streams the `file` part of a multipart body into `dest`; returns the part's
/// file name (`upload` when it has none, as httpx names in-memory data).
pub async fn receive_file_part(
    multipart: &mut Multipart,
    dest: &std::path::Path,
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
        let mut out = tokio::fs::File::create(dest)
            .await
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dest.display())))?;
        let result = async {
            while let Some(bytes) = field
                .chunk()
                .await
                .map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?
            {
                out.write_all(&bytes)
                    .await
                    .map_err(|e| ApiError::internal(format!("writing {}: {e}", dest.display())))?;
            }
            out.flush()
                .await
                .map_err(|e| ApiError::internal(format!("writing {}: {e}", dest.display())))
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(dest).await;
            return Err(e);
        }
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
    let policy = app.config.write_policy();
    // The file name is only known once its part arrives, but the directory
    // the temporary file goes to is: plan with a placeholder, re-plan after.
    let sd = app.state_dir.clone();
    let (c, p) = (caller.clone(), path.clone());
    let first =
        blocking(move || upload::plan_upload(&sd, &p, "upload", c.as_caller(), &policy)).await?;
    let temp = blocking(move || upload::upload_temp(&first)).await?;
    let file_name = match receive_file_part(&mut multipart, &temp).await {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
    };
    let sd = app.state_dir.clone();
    let logical = blocking(move || {
        let plan = match upload::plan_upload(&sd, &path, &file_name, caller.as_caller(), &policy) {
            Ok(plan) => plan,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        upload::finish_upload(&sd, &plan, &temp, &policy)?;
        Ok::<_, cat2_core::Error>(plan.logical.to_string())
    })
    .await?;
    Ok(Json(logical))
}

/// `POST /api/remove/{path}`: answers the path as given.
pub async fn post_remove(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Json<String>> {
    let policy = app.config.write_policy();
    let sd = app.state_dir.clone();
    let answer = path.to_string();
    blocking(move || write::transfer::remove(&sd, &path, caller.as_caller(), &policy)).await?;
    Ok(Json(answer))
}

/// `POST /api/unfold/{path}`: unfolds an HDF5 file into proxies beside it;
/// answers the name of the new directory (the file name without its suffix).
pub async fn post_unfold(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Json<String>> {
    let policy = app.config.write_policy();
    let sd = app.state_dir.clone();
    let stem = blocking(move || {
        let who = caller.as_caller();
        let loc = sd.locate(&path, who)?;
        cat2_core::unfold::unfold(&sd, &loc, who, &policy)
    })
    .await?;
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
    let policy = app.config.write_policy();
    let sd = app.state_dir.clone();
    let dst = blocking(move || {
        let (src, dst) = write::transfer::parse_ends(kind, &body.src, &body.dst)?;
        write::transfer::transfer(&sd, kind, &src, &dst, caller.as_caller(), &policy)
    })
    .await?;
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
    let policy = app.config.write_policy();
    let sd = app.state_dir.clone();
    // The rows travel to a temporary file in the state dir's own temp area.
    let temp = write::temp_beside(&sd.path().join("personal").join("append"));
    receive_file_part(&mut multipart, &temp).await?;
    let shape = blocking(move || {
        let r = write::append::append(&sd, &path, &temp, caller.as_caller(), &policy);
        let _ = std::fs::remove_file(&temp);
        r
    })
    .await?;
    Ok(Json(shape))
}

/// An empty Jupyter notebook (nbformat 4).
const EMPTY_NOTEBOOK: &str = r#"{
 "cells": [],
 "metadata": {},
 "nbformat": 4,
 "nbformat_minor": 5
}
"#;

/// `POST /api/addnotebook/{path}`: creates an empty notebook (web GUI).
pub async fn post_addnotebook(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Json<String>> {
    if !path.name().ends_with(".ipynb") {
        return Err(ApiError::bad_request(
            "Notebooks must end with the .ipynb extension",
        ));
    }
    let policy = app.config.write_policy();
    let sd = app.state_dir.clone();
    let answer = path.to_string();
    blocking(move || {
        let plan = upload::plan_upload(&sd, &path, "upload", caller.as_caller(), &policy)?;
        if plan.target.exists() {
            return Err(cat2_core::Error::BadRequest(
                "File exists at the given path".into(),
            ));
        }
        let frame = cat2_core::blob::compress_blob(EMPTY_NOTEBOOK.as_bytes())?;
        write::write_new(&plan.target, &frame)
    })
    .await?;
    Ok(Json(answer))
}
