//! `GET /api/download/{path}` (whole files, decompressed unless the client
//! takes Blosc2) and `GET /api/preview/{path}` (content for the web view).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use cat2_core::dataset::Download;
use cat2_core::DsPath;

use crate::blocking::{blocking_timed, server_timing};
use crate::error::{ApiError, ApiResult};
use crate::extract::{CallerId, DatasetPath, RequestBudget};
use crate::stream::{blob_body, decompressed_body};
use crate::AppState;

/// The MIME type Caterva2 would announce for a logical file name, if any.
pub fn guess_mime(name: &str) -> Option<String> {
    if let Some(decided) = cat2_core::resolve::media_type_of(name) {
        return decided.map(str::to_string);
    }
    let mime = mime_guess::from_path(name).first()?;
    let s = mime.essence_str().to_string();
    Some(if s.starts_with("text/") {
        format!("{s}; charset=utf-8")
    } else {
        s
    })
}

fn wants_blosc2(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| enc.split(';').next().unwrap_or("").trim() == "blosc2")
}

/// What `/api/download` (or, with `preview`, `/api/preview`) sends for
/// `path`, made on the blocking pool, and how long making it took.
async fn prepare(
    app: &AppState,
    caller: CallerId,
    path: DsPath,
    preview: bool,
    budget: &RequestBudget,
) -> ApiResult<(Download, std::time::Duration)> {
    let service = app.service.clone();
    let budget = budget.share();
    blocking_timed(move || {
        if preview {
            service.preview(&caller, &path, &budget)
        } else {
            service.download(&caller, &path, &budget)
        }
    })
    .await
}

fn content_disposition(name: &str) -> HeaderValue {
    let safe: String = name
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

pub async fn get_download(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    headers: HeaderMap,
    budget: RequestBudget,
) -> ApiResult<Response> {
    if headers.contains_key(header::RANGE) {
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "byte ranges are served by /api/fetch, not by downloads",
        )
        .with_header(header::ACCEPT_RANGES, HeaderValue::from_static("none")));
    }
    let name = path.name().to_string();
    let (download, took) = prepare(&app, caller, path, false, &budget).await?;
    let mut builder = Response::builder()
        .header(header::CONTENT_DISPOSITION, content_disposition(&name))
        .header(header::ACCEPT_RANGES, "none");
    if let Some(m) = guess_mime(&name) {
        builder = builder.header(header::CONTENT_TYPE, m);
    }
    let body = match download {
        // An array whose data lives elsewhere, computed.
        Download::Computed(frame) => {
            builder = builder
                .header(header::CONTENT_LENGTH, frame.len())
                .header("server-timing", server_timing("compute", took));
            Body::from(frame)
        }
        // The same, spilled into storage: sent from there, removed when sent.
        Download::Spilled(frame) => {
            let len = cat2_core::storage::ReadAt::len(frame.as_ref());
            builder = builder
                .header(header::CONTENT_LENGTH, len)
                .header("server-timing", server_timing("compute", took));
            blob_body(frame, 0, len)
        }
        Download::RegularFile(blob) if !wants_blosc2(&headers) => decompressed_body(blob),
        Download::RegularFile(blob) => {
            // The stored frame itself, to a client that takes Blosc2.
            let len = blob.meta().size;
            builder = builder
                .header(header::CONTENT_ENCODING, "blosc2")
                .header(header::CONTENT_LENGTH, len);
            blob_body(blob, 0, len)
        }
        Download::Stored(blob) => {
            let len = blob.meta().size;
            builder = builder.header(header::CONTENT_LENGTH, len);
            blob_body(blob, 0, len)
        }
    };
    builder.body(body).map_err(ApiError::internal)
}

pub async fn get_preview(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    budget: RequestBudget,
) -> ApiResult<Response> {
    let name = path.name().to_string();
    let (preview, _) = prepare(&app, caller, path, true, &budget).await?;
    let mut builder = Response::builder();
    if let Some(m) = guess_mime(&name) {
        builder = builder.header(header::CONTENT_TYPE, m);
    }
    let body = match preview {
        Download::RegularFile(blob) => decompressed_body(blob),
        Download::Stored(blob) => {
            let len = blob.meta().size;
            blob_body(blob, 0, len)
        }
        Download::Computed(frame) => Body::from(frame),
        Download::Spilled(frame) => {
            let len = cat2_core::storage::ReadAt::len(frame.as_ref());
            blob_body(frame, 0, len)
        }
    };
    builder.body(body).map_err(ApiError::internal)
}
