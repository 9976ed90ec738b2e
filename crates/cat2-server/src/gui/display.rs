//! The Display tab: a file rendered by its type (JSON, Markdown, text,
//! notebooks, images), with nothing from the file run in the browser.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use serde_json::Value;

use super::browse::displayable;
use super::{url_path, Html};
use crate::blocking::blocking;
use crate::error::{ApiError, ApiResult};
use crate::extract::{CallerId, DatasetPath, RequestBudget};
use crate::AppState;

#[derive(Template)]
#[template(path = "display.html")]
struct DisplayFragment {
    /// One of: json, markdown, text, image.
    kind: &'static str,
    text: String,
    url: String,
}

/// The most bytes of a file the Display tab shows.
const DISPLAY_MAX: usize = 4 << 20;

/// `GET /gui/display/{path}`: a file rendered by its type.
pub async fn display(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    budget: RequestBudget,
) -> ApiResult<Response> {
    let raw = path.to_string();
    let mime = displayable(&raw).ok_or_else(|| {
        ApiError::bad_request(format!("{raw}: this kind of file is not displayed"))
    })?;
    let url = format!("/api/preview/{}", url_path(&raw));
    if mime.starts_with("image/") {
        return Ok(Html(DisplayFragment {
            kind: "image",
            text: String::new(),
            url,
        })
        .into_response());
    }
    let shared = budget.share();
    let bytes = blocking(move || app.service.regular_file(&caller, &path, &shared)).await?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(DISPLAY_MAX)]).into_owned();
    let (kind, text) = if mime == "application/json" {
        let pretty = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(text);
        ("json", pretty)
    } else if mime == "application/x-ipynb+json" {
        let html = super::notebook::to_html(&text, markdown_html).map_err(ApiError::bad_request)?;
        ("markdown", html)
    } else if mime == "text/markdown" {
        ("markdown", markdown_html(&text))
    } else {
        ("text", text)
    };
    Ok(Html(DisplayFragment { kind, text, url }).into_response())
}

/// Markdown as HTML, with raw HTML shown as text and links that could run code made inert.
fn markdown_html(text: &str) -> String {
    {
        let mut html = String::new();
        let parser = pulldown_cmark::Parser::new(text).map(|event| match event {
            // Raw HTML in a document is shown as text, never run.
            pulldown_cmark::Event::Html(h) | pulldown_cmark::Event::InlineHtml(h) => {
                pulldown_cmark::Event::Text(h)
            }
            // Nor do links run scripts.
            pulldown_cmark::Event::Start(pulldown_cmark::Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => pulldown_cmark::Event::Start(pulldown_cmark::Tag::Link {
                link_type,
                dest_url: safe_url(dest_url),
                title,
                id,
            }),
            pulldown_cmark::Event::Start(pulldown_cmark::Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => pulldown_cmark::Event::Start(pulldown_cmark::Tag::Image {
                link_type,
                dest_url: safe_url(dest_url),
                title,
                id,
            }),
            other => other,
        });
        pulldown_cmark::html::push_html(&mut html, parser);
        html
    }
}

/// A link target that cannot run code (`javascript:`, `data:`, `vbscript:` become `#`).
fn safe_url(url: pulldown_cmark::CowStr<'_>) -> pulldown_cmark::CowStr<'_> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if url.contains(':') && ["javascript", "data", "vbscript"].contains(&scheme.as_str()) {
        pulldown_cmark::CowStr::Borrowed("#")
    } else {
        url
    }
}
