//! The `/api` routes, one module per route group. Handlers stay thin: they
//! extract checked inputs, run the library code on the blocking pool, and
//! shape the answer.

pub mod browse;
pub mod chunk;
pub mod download;
pub mod fetch;
pub mod ranges;

use axum::routing::get;
use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/roots", get(browse::get_roots))
        .route("/api/list/{*path}", get(browse::get_list))
        .route("/api/info/{*path}", get(browse::get_info))
        .route(
            "/api/fetch/{*path}",
            get(fetch::get_fetch).post(fetch::post_fetch),
        )
        .route("/api/chunk/{*path}", get(chunk::get_chunk))
        .route("/api/download/{*path}", get(download::get_download))
        .route("/api/preview/{*path}", get(download::get_preview))
        .route("/api/service-worker-heartbeat", get(browse::get_heartbeat))
}
