//! The web GUI: pages and fragments rendered on the server from askama
//! templates (`templates/`, compiled into the binary) and a little JavaScript
//! of our own (`assets/`, served by the binary too; nothing comes from the
//! internet).
//!
//! Why this shape: the GUI adds no rules of its own. Pages and fragments
//! render what the library answers the API (`listing::list`,
//! `dataset::info_with`, `view::fetch_values`, which goes through the fetch
//! code), with the caller's permissions; actions (prompt commands, delete,
//! upload) run the REST API's own handlers, called from here or by the
//! browser. A rule changed in one place changes for both.
//!
//! The page is a shell whose panels load fragments (`/gui/...`) with
//! `fetch`; the URL (`/roots/<path>?roots=…&search=…#tab`) always says what is
//! shown, so it can be shared or bookmarked.

mod assets;
mod browse;
mod display;
mod notebook;
mod pages;
mod prompt;
mod table;
mod unpack;
mod viewer;

use askama::Template;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

/// Every route of the GUI.
pub fn routes(state: &AppState) -> Router<AppState> {
    let r = Router::new()
        .route("/", get(pages::home))
        .route("/roots/{*path}", get(pages::home_at))
        .route("/static/{file}", get(assets::get_asset))
        .route("/gui/list", get(browse::list))
        .route("/gui/usage", get(pages::usage))
        .route("/gui/info/{*path}", get(browse::info))
        .route("/gui/view/{*path}", get(table::view))
        .route("/gui/display/{*path}", get(display::display))
        .route("/gui/frame/{*path}", get(viewer::frame))
        .route("/gui/command", post(prompt::command))
        .route("/gui/unpack/{*path}", post(unpack::post_unpack));
    if !state.has_users() {
        return r;
    }
    let r = r
        .route("/login", get(pages::login))
        .route("/logout", get(pages::logout))
        .route("/forgot-password", get(pages::forgot_password))
        .route("/forgot-password-ok", get(pages::forgot_password_ok))
        .route("/reset-password/{token}", get(pages::reset_password));
    if state.config.register {
        r.route("/register", get(pages::register))
    } else {
        r
    }
}

/// A rendered template as an HTML answer (a render error is a 500).
pub struct Html<T>(pub T);

impl<T: Template> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        match self.0.render() {
            Ok(text) => axum::response::Html(text).into_response(),
            Err(e) => ApiError::internal(format!("rendering a page: {e}")).into_response(),
        }
    }
}

/// Bytes as people read them: `381 B`, `1.1 GB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub use cat2_proto::url_path;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_reference_shows_them() {
        assert_eq!(human_size(381), "381 B");
        assert_eq!(human_size(1_100_000_000), "1.1 GB");
        assert_eq!(human_size(2_500), "2.5 KB");
    }

    #[test]
    fn paths_keep_their_shape_in_urls() {
        assert_eq!(url_path("@shared/a b/x.b2nd"), "@shared/a%20b/x.b2nd");
        assert_eq!(url_path("@shared/!_attrs_.json"), "@shared/!_attrs_.json");
    }
}
