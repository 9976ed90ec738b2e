//! `GET`/`POST /api/fetch/{path}`: data as a Blosc2 frame.
//!
//! Whole stored datasets are streamed from storage byte for byte (and honour
//! `Range`); everything else is computed on the blocking pool.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use cat2_core::fetch::{FetchOutput, FetchRequest};
use cat2_proto::FetchParams;

use super::ranges::{parse_range, ranged_response, RangeRequest};
use crate::blocking::{blocking_timed, server_timing};
use crate::error::{ApiError, ApiResult};
use crate::extract::{CallerId, DatasetPath, QueryMap, RequestBudget};
use crate::stream::{blob_body, PIECE};
use crate::AppState;

/// Longest `POST` body read: 8 MiB of indices plus room for the rest.
pub const MAX_POST_BODY: usize = 9 << 20;

pub async fn get_fetch(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    query: QueryMap,
    headers: HeaderMap,
    budget: RequestBudget,
) -> ApiResult<Response> {
    let req = FetchRequest {
        slice: query.opt("slice_"),
        indices: query.opt("indices"),
        filter: query.opt("filter"),
        field: query.opt("field"),
        budget: budget.share(),
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
    budget: RequestBudget,
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
        budget: budget.share(),
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
    let shown = path.clone();
    let ranged = range.is_some();
    let ((out, small), took) = blocking_timed(move || {
        let out = app.service.fetch(&caller, &path, &req)?;
        // Small stored answers are read here, not by a reader of their own.
        let small = match &out {
            FetchOutput::Stored {
                blob, offset, len, ..
            } if !ranged && *len <= PIECE as u64 => Some(
                blob.read_range(*offset, *len as usize)
                    .map_err(|e| cat2_core::storage::Error::io("reading", &blob.meta().key, e))?,
            ),
            _ => None,
        };
        Ok::<_, cat2_service::Error>((out, small))
    })
    .await?;
    let (blob, offset, len, whole) = match out {
        FetchOutput::Frame(bytes) => {
            if range.is_some() {
                return Err(not_from_file(&shown.to_string()));
            }
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::ACCEPT_RANGES, "none")
                .header("server-timing", server_timing("compute", took))
                .body(Body::from(bytes))
                .map_err(ApiError::internal);
        }
        // Too large for memory: sent from its spill, removed once sent.
        FetchOutput::Spilled(frame) => {
            if range.is_some() {
                return Err(not_from_file(&shown.to_string()));
            }
            let len = cat2_core::storage::ReadAt::len(frame.as_ref());
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::ACCEPT_RANGES, "none")
                .header(header::CONTENT_LENGTH, len)
                .header("server-timing", server_timing("compute", took))
                .body(blob_body(frame, 0, len))
                .map_err(ApiError::internal);
        }
        FetchOutput::Stored {
            blob,
            offset,
            len,
            whole,
        } => (blob, offset, len, whole),
    };
    let body = || match small {
        Some(data) => Body::from(data),
        None => blob_body(blob.clone(), offset, len),
    };
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, cat2_core::dataset::etag_of(&blob));
    if whole {
        // The stored file, by its name; the same version's bytes and validator.
        builder = builder.header(
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\"",
                shown.name().replace('"', "_")
            ),
        );
        if let Some(t) = blob.meta().modified {
            builder = builder.header(header::LAST_MODIFIED, httpdate::fmt_http_date(t));
        }
    }
    match range.as_deref().map(|r| (r, parse_range(r, len))) {
        None | Some((_, RangeRequest::Whole)) => builder
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, len)
            .body(body())
            .map_err(ApiError::internal),
        // A leaf of a `.b2z` store: ranges count from the window's start.
        Some((raw, RangeRequest::Unsatisfiable)) if !whole => Err(ApiError::new(
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
        Some((_, spans)) => ranged_response(&blob, offset, len, spans, builder).await,
    }
}

fn not_from_file(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        format!("{path} is not served from a file (it is computed, filtered or held inside a container), so byte ranges are not available for it"),
    )
    .with_header(header::ACCEPT_RANGES, axum::http::HeaderValue::from_static("none"))
}
