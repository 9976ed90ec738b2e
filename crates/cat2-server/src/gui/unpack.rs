//! `POST /gui/unpack/{dir}`: an uploaded `.zip`/`.tar`/`.tar.gz` unpacked into
//! `dir/<archive name without its suffix>/`, each member stored as an upload
//! of it would be (`cat2_core::write::archive`). Other files go to
//! `/api/upload` directly.

use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::Json;

use crate::api::write::{check_declared_size, receive_file_part};
use crate::blocking::blocking;
use crate::error::ApiResult;
use crate::extract::{DatasetPath, LoggedIn};
use crate::AppState;

/// Answers the stored paths, in archive order.
pub async fn post_unpack(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(dir): DatasetPath,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> ApiResult<Json<Vec<String>>> {
    check_declared_size(&app, &headers)?;
    // The archive waits, staged, in the root it unpacks into (never listed).
    let service = app.service.clone();
    let (c, d) = (caller.clone(), dir.clone());
    let archive = blocking(move || service.start_scratch(&c, &d)).await?;
    let name = receive_file_part(&mut multipart, archive.io()).await?;
    let stored = blocking(move || app.service.unpack(&caller, &dir, &name, archive)).await?;
    Ok(Json(stored.iter().map(ToString::to_string).collect()))
}
