//! `POST /gui/unpack/{dir}`: an uploaded `.zip`/`.tar`/`.tar.gz` unpacked into
//! `dir/<archive name without its suffix>/`, each member stored as an upload
//! of it would be (`cat2_core::write::archive`). Other files go to
//! `/api/upload` directly.

use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::Json;

use cat2_core::write::{archive, temp_beside};

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
    let policy = app.config.write_policy();
    let sd = app.state_dir.clone();
    let (c, d) = (caller.clone(), dir.clone());
    // The archive waits in the root it unpacks into (same filesystem, never listed).
    let temp = blocking(move || {
        let root = sd.writable_dir(d.root(), c.as_caller(), &policy)?;
        // A new user's @personal does not exist before their first write.
        std::fs::create_dir_all(&root).map_err(|e| cat2_core::Error::io("creating", &root, e))?;
        Ok::<_, cat2_core::Error>(temp_beside(&root.join("archive")))
    })
    .await?;
    let name = match receive_file_part(&mut multipart, &temp).await {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
    };
    let sd = app.state_dir.clone();
    let stored = blocking(move || {
        let result = archive::unpack(&sd, &temp, &name, &dir, caller.as_caller(), &policy);
        let _ = std::fs::remove_file(&temp);
        result
    })
    .await?;
    Ok(Json(stored.iter().map(ToString::to_string).collect()))
}
