//! The viewer's frames: one 2-D slice of an image stack as float32 pixels,
//! shrunk on the server to what the screen shows. Colour maps and contrast
//! are applied in the browser (`assets/viewer.js`), so changing them costs
//! no request.

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::blocking::blocking;
use crate::error::{ApiError, ApiResult};
use crate::extract::{CallerId, DatasetPath, RequestBudget};
use crate::AppState;

/// The largest side a frame is sent with unless asked otherwise.
const DEFAULT_MAX_SIDE: usize = 1024;

/// `GET /gui/frame/{path}?axis=0&i=5&max=1024`: little-endian float32
/// pixels, row-major (channels last), with the geometry in headers:
/// `x-frame-shape: height,width,channels`, `x-frame-full: height,width`
/// (before shrinking), `x-frame-index: i`.
pub async fn frame(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
    RawQuery(query): RawQuery,
    budget: RequestBudget,
) -> ApiResult<Response> {
    let limit = app.config.max_frame_side;
    let mut axis = 0usize;
    let mut index = 0i64;
    let mut max_side = DEFAULT_MAX_SIDE;
    for (k, v) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        let bad = || ApiError::bad_request(format!("{k}={v} is not a valid number"));
        match &*k {
            "axis" => axis = v.parse().map_err(|_| bad())?,
            "i" => index = v.parse().map_err(|_| bad())?,
            "max" => {
                max_side = v.parse::<usize>().map_err(|_| bad())?;
                if max_side > limit {
                    return Err(ApiError::bad_request(format!(
                        "max={max_side} is larger than the {limit} pixels a side this server sends (max_frame_side); ask for max={limit} or less"
                    )));
                }
                max_side = max_side.max(16);
            }
            _ => {}
        }
    }
    let shared = budget.share();
    let image = blocking(move || {
        app.service
            .frame(&caller, &path, axis, index, max_side, &shared)
    })
    .await?;
    let mut body = Vec::with_capacity(image.pixels.len() * 4);
    for p in &image.pixels {
        body.extend_from_slice(&p.to_le_bytes());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::HeaderName::from_static("x-frame-shape"),
                format!("{},{},{}", image.height, image.width, image.channels),
            ),
            (
                header::HeaderName::from_static("x-frame-full"),
                format!("{},{}", image.full_height, image.full_width),
            ),
            (
                header::HeaderName::from_static("x-frame-index"),
                index.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}
