//! `POST /api/publish/{path}`: copy a filled array to the publish root.
//!
//! Also started by itself, after the answer, by the chunk write that fills
//! an array's last slot; the endpoint is how an interrupted publish (the
//! array says `publishing`) is finished.

use axum::extract::State;
use axum::Json;

use cat2_core::DsPath;
use cat2_proto::Published;

use crate::blocking::blocking;
use crate::error::ApiResult;
use crate::extract::{CallerId, DatasetPath, LoggedIn};
use crate::AppState;

/// `POST /api/publish/{path}`: answers where the array went.
pub async fn post_publish(
    State(app): State<AppState>,
    LoggedIn(caller): LoggedIn,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Json<Published>> {
    let published = publish(app, caller, path).await?;
    Ok(Json(Published { published }))
}

async fn publish(app: AppState, caller: CallerId, path: DsPath) -> ApiResult<String> {
    blocking(move || app.service.publish(&caller, &path)).await
}

/// Publishes `path` on a task of its own; the outcome is logged (a failure
/// leaves the array `publishing`, for `POST /api/publish` to finish).
pub fn publish_in_background(app: AppState, caller: CallerId, path: DsPath) {
    tokio::spawn(async move {
        let shown = path.to_string();
        match publish(app, caller, path).await {
            Ok(dest) => tracing::info!(path = %shown, %dest, "published"),
            Err(e) => {
                tracing::warn!(path = %shown, status = %e.status, detail = %e.detail, "publishing failed")
            }
        }
    });
}
