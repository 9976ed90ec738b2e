//! The `/api` routes, one module per route group. Handlers stay thin: they
//! extract checked inputs, run the library code on the blocking pool, and
//! shape the answer.

pub mod browse;
pub mod chunk;
pub mod download;
pub mod fetch;
pub mod health;
pub mod lazy;
pub mod load;
pub mod publish;
pub mod ranges;
pub mod users;
pub mod write;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::get_healthz))
        .route("/api/roots", get(browse::get_roots))
        .route("/api/list/{*path}", get(browse::get_list))
        .route("/api/info/{*path}", get(browse::get_info))
        .route(
            "/api/fetch/{*path}",
            get(fetch::get_fetch)
                .post(fetch::post_fetch)
                .layer(DefaultBodyLimit::max(fetch::MAX_POST_BODY)),
        )
        .route(
            "/api/chunk/{*path}",
            get(chunk::get_chunk)
                .post(chunk::post_chunk)
                .layer(DefaultBodyLimit::max(chunk::MAX_CHUNK_BODY)),
        )
        .route("/api/download/{*path}", get(download::get_download))
        .route("/api/preview/{*path}", get(download::get_preview))
        .route("/api/service-worker-heartbeat", get(browse::get_heartbeat))
        .route("/api/peer", get(browse::get_peer))
        // Every write needs a logged-in user; until this server has user
        // accounts no caller can be one, so writes answer 401 like the
        // reference does for anonymous callers.
        .route(
            "/api/upload/{*path}",
            post(write::post_upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/append/{*path}",
            post(write::post_append).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/remove/{*path}", post(write::post_remove))
        .route("/api/unfold/{*path}", post(write::post_unfold))
        .route(
            "/api/upload_lazyarr/{*path}",
            post(lazy::post_upload_lazyarr),
        )
        .route("/api/load_from_url/{*path}", post(load::post_load_from_url))
        .route("/api/publish/{*path}", post(publish::post_publish))
        .route("/api/addnotebook/{*path}", post(write::post_addnotebook))
        .route("/api/move/", post(write::post_move))
        .route("/api/copy/", post(write::post_copy))
        .route("/api/lazyexpr/", post(lazy::post_lazyexpr))
}
