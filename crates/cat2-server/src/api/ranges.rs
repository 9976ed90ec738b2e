//! HTTP byte ranges (RFC 9110 §14) over stored bytes served verbatim.
//!
//! Only whole stored files (and leaves lying in a container) honour `Range`;
//! blosc2's remote arrays read frame headers and chunk offsets this way. The
//! spans are read from the one pinned version of the object whose version
//! made the ETag, so the bytes and the validator always belong together,
//! whatever writers do meanwhile.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use cat2_core::storage::Blob;

use crate::error::{ApiError, ApiResult};
use crate::stream::read_span;

/// A parsed `Range` header against a file of known length.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Malformed or absent: serve the whole file.
    Whole,
    /// No range overlaps the file.
    Unsatisfiable,
    /// Merged, sorted, inclusive spans.
    Spans(Vec<(u64, u64)>),
}

/// Parses `bytes=a-b, c-, -n` against a length; overlapping and adjacent
/// spans are merged.
pub fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some(specs) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    let mut spans = Vec::new();
    for spec in specs.split(',') {
        let spec = spec.trim();
        let Some((a, b)) = spec.split_once('-') else {
            return RangeRequest::Whole;
        };
        let (a, b) = (a.trim(), b.trim());
        let span = if a.is_empty() {
            let Ok(n) = b.parse::<u64>() else {
                return RangeRequest::Whole;
            };
            if n == 0 || len == 0 {
                continue;
            }
            (len.saturating_sub(n), len - 1)
        } else {
            let Ok(start) = a.parse::<u64>() else {
                return RangeRequest::Whole;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e,
                    _ => return RangeRequest::Whole,
                }
            };
            if start >= len {
                continue;
            }
            (start, end.min(len - 1))
        };
        spans.push(span);
    }
    if spans.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    RangeRequest::Spans(merged)
}

/// The 206 (or 416) answer for `spans` of the `len` bytes that start
/// `offset` bytes into `file`; positions are the window's.
pub async fn ranged_response(
    blob: &Arc<dyn Blob>,
    offset: u64,
    len: u64,
    request: RangeRequest,
    base: axum::http::response::Builder,
) -> ApiResult<Response> {
    match request {
        RangeRequest::Whole => Err(ApiError::internal("ranged_response called without ranges")),
        RangeRequest::Unsatisfiable => Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "Requested Range Not Satisfiable",
        )
        .with_header(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes */{len}"))
                .unwrap_or(HeaderValue::from_static("bytes */0")),
        )),
        RangeRequest::Spans(spans) if spans.len() == 1 => {
            let (s, e) = spans[0];
            let data = read_span(blob, offset, (s, e)).await?;
            base.status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_RANGE, format!("bytes {s}-{e}/{len}"))
                .header(header::CONTENT_LENGTH, data.len())
                .body(Body::from(data))
                .map_err(ApiError::internal)
        }
        RangeRequest::Spans(spans) => {
            let boundary = cat2_core::random::random_hex32();
            let mut body = Vec::new();
            for (s, e) in spans {
                let data = read_span(blob, offset, (s, e)).await?;
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {s}-{e}/{len}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(&data);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            base.status(StatusCode::PARTIAL_CONTENT)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/byteranges; boundary={boundary}"),
                )
                .header(header::CONTENT_LENGTH, body.len())
                .body(Body::from(body))
                .map_err(ApiError::internal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_suffix_ranges() {
        assert_eq!(
            parse_range("bytes=0-9", 100),
            RangeRequest::Spans(vec![(0, 9)])
        );
        assert_eq!(
            parse_range("bytes=90-", 100),
            RangeRequest::Spans(vec![(90, 99)])
        );
        assert_eq!(
            parse_range("bytes=-5", 100),
            RangeRequest::Spans(vec![(95, 99)])
        );
        assert_eq!(
            parse_range("bytes=50-500", 100),
            RangeRequest::Spans(vec![(50, 99)])
        );
    }

    #[test]
    fn merges_overlapping_and_adjacent() {
        assert_eq!(
            parse_range("bytes=10-19, 0-9, 40-49, 45-60", 100),
            RangeRequest::Spans(vec![(0, 19), (40, 60)])
        );
    }

    #[test]
    fn unsatisfiable_and_malformed() {
        assert_eq!(
            parse_range("bytes=200-300", 100),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range("items=0-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=5-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=abc", 100), RangeRequest::Whole);
    }
}
