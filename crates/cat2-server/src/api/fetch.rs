//! `GET`/`POST /api/fetch/{path}`: data as a Blosc2 frame.
//!
//! Whole stored datasets are streamed from disk byte for byte (and honour
//! `Range`); everything else is computed on the blocking pool.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use cat2_core::fetch::{self, FetchOutput, FetchRequest};
use cat2_proto::FetchParams;

use super::download::{open_file_body, window_body};
use super::ranges::{parse_range, ranged_response, ranged_window_response, RangeRequest};
use crate::blocking::{blocking_timed, server_timing};
use crate::error::{ApiError, ApiResult};
use crate::extract::{CallerId, DatasetPath, QueryMap};
use crate::AppState;

/// Longest `POST` body read: 8 MiB of indices plus room for the rest.
pub const MAX_POST_BODY: usize = 9 << 20;

pub async fn get_fetch(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    query: QueryMap,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let req = FetchRequest {
        slice: query.opt("slice_"),
        indices: query.opt("indices"),
        filter: query.opt("filter"),
        field: query.opt("field"),
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    answer(app, caller, path, req, range).await
}

pub async fn post_fetch(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    body: Bytes,
) -> ApiResult<Response> {
    if body.len() > MAX_POST_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is {} bytes where at most {MAX_POST_BODY} are read",
                body.len()
            ),
        ));
    }
    let params: FetchParams = parse_json_body(&body)?;
    let empty_is_none = |s: Option<String>| s.filter(|s| !s.is_empty());
    let req = FetchRequest {
        slice: empty_is_none(params.slice_),
        indices: empty_is_none(params.indices),
        filter: empty_is_none(params.filter),
        field: empty_is_none(params.field),
    };
    answer(app, caller, path, req, None).await
}

/// FastAPI-style JSON body validation: malformed JSON and unknown keys are
/// 422 (without echoing the body back).
fn parse_json_body(body: &[u8]) -> ApiResult<FetchParams> {
    let value = crate::body::json_value(body)?;
    let Value::Object(map) = &value else {
        return Err(ApiError::validation(
            "model_attributes_type",
            &["body"],
            "Input should be a valid dictionary or object to extract fields from",
            Value::Null,
        ));
    };
    for (k, v) in map {
        if !matches!(k.as_str(), "slice_" | "indices" | "filter" | "field") {
            return Err(ApiError::validation(
                "extra_forbidden",
                &["body", k],
                "Extra inputs are not permitted",
                v.clone(),
            ));
        }
        if !(v.is_string() || v.is_null()) {
            return Err(crate::body::string_type(k, v));
        }
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn answer(
    app: AppState,
    caller: CallerId,
    path: cat2_core::DsPath,
    req: FetchRequest,
    range: Option<String>,
) -> ApiResult<Response> {
    let sd = app.state_dir.clone();
    let ((loc, out, opened), took) = blocking_timed(move || {
        let loc = sd.locate(&path, caller.as_caller())?;
        let out = fetch::fetch_with(&sd, &loc, &req, caller.as_caller())?;
        // A stored file is opened here, once: its metadata makes the ETag
        // and the same handle serves the bytes, so a writer renaming a new
        // version into place cannot pair one version's bytes with the
        // other's validator.
        let opened = match out {
            FetchOutput::Verbatim => {
                let file = std::fs::File::open(&loc.fs)
                    .map_err(|e| cat2_core::Error::io("opening", &loc.fs, e))?;
                let meta = file
                    .metadata()
                    .map_err(|e| cat2_core::Error::io("reading metadata of", &loc.fs, e))?;
                let etag = cat2_core::meta::etag(&loc.fs, &meta);
                Some((file, meta, etag))
            }
            FetchOutput::Frame(_) | FetchOutput::Window { .. } => None,
        };
        Ok::<_, cat2_core::Error>((loc, out, opened))
    })
    .await?;
    match (out, opened) {
        (FetchOutput::Frame(bytes), _) => {
            if range.is_some() {
                return Err(not_from_file(&loc.logical.to_string()));
            }
            Response::builder()
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::ACCEPT_RANGES, "none")
                .header("server-timing", server_timing("compute", took))
                .body(Body::from(bytes))
                .map_err(ApiError::internal)
        }
        (FetchOutput::Window { offset, len }, _) => window_response(&loc, offset, len, range).await,
        (FetchOutput::Verbatim, None) => Err(ApiError::internal("a stored file was not opened")),
        (FetchOutput::Verbatim, Some((file, meta, etag))) => {
            let file = tokio::fs::File::from_std(file);
            let len = meta.len();
            let mut builder = Response::builder()
                .header(header::ACCEPT_RANGES, "bytes")
                .header(header::ETAG, etag)
                .header(
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"{}\"",
                        loc.logical.name().replace('"', "_")
                    ),
                );
            if let Ok(t) = meta.modified() {
                builder = builder.header(header::LAST_MODIFIED, httpdate::fmt_http_date(t));
            }
            match range.as_deref().map(|r| parse_range(r, len)) {
                None | Some(RangeRequest::Whole) => builder
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, len)
                    .body(open_file_body(file))
                    .map_err(ApiError::internal),
                Some(req) => ranged_response(file, &loc.fs, len, req, builder).await,
            }
        }
    }
}

/// A leaf of a `.b2z` store, served as the window of the store file that
/// holds its frame: ranges count from the window's start, and the validator
/// is the store's (what tells a client the window still holds).
async fn window_response(
    loc: &cat2_core::Located,
    offset: u64,
    len: u64,
    range: Option<String>,
) -> ApiResult<Response> {
    let meta = tokio::fs::metadata(&loc.fs)
        .await
        .map_err(|_| ApiError::not_found())?;
    let builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, cat2_core::meta::etag(&loc.fs, &meta));
    match range.as_deref().map(|r| (r, parse_range(r, len))) {
        None | Some((_, RangeRequest::Whole)) => {
            let body = window_body(&loc.fs, offset, len).await?;
            builder
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, len)
                .body(body)
                .map_err(ApiError::internal)
        }
        Some((raw, RangeRequest::Unsatisfiable)) => Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!("none of '{raw}' lies within the {len} bytes there are"),
        )
        .with_header(
            header::CONTENT_RANGE,
            axum::http::HeaderValue::from_str(&format!("bytes */{len}"))
                .unwrap_or(axum::http::HeaderValue::from_static("bytes */0")),
        )
        .with_header(
            header::ACCEPT_RANGES,
            axum::http::HeaderValue::from_static("bytes"),
        )),
        Some((_, spans)) => {
            let file = tokio::fs::File::open(&loc.fs)
                .await
                .map_err(|_| ApiError::not_found())?;
            ranged_window_response(file, &loc.fs, offset, len, spans, builder).await
        }
    }
}

fn not_from_file(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        format!("{path} is not served from a file (it is computed, filtered or held inside a container), so byte ranges are not available for it"),
    )
    .with_header(header::ACCEPT_RANGES, axum::http::HeaderValue::from_static("none"))
}
