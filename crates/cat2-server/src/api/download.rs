//! `GET /api/download/{path}` (whole files, decompressed unless the client
//! takes Blosc2) and `GET /api/preview/{path}` (content for the web view).

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use cat2_core::dataset::{self, FileKind};
use cat2_core::{Entry, Located};

use crate::blocking::{blocking, blocking_timed, server_timing};
use crate::error::{ApiError, ApiResult};
use crate::extract::{CallerId, DatasetPath};
use crate::AppState;

/// The MIME type Caterva2 would announce for a logical file name, if any.
pub fn guess_mime(name: &str) -> Option<String> {
    let suffix = cat2_core::path::suffix(name);
    if matches!(suffix, ".b2nd" | ".b2frame" | ".b2" | ".b2z") {
        return None;
    }
    if cat2_core::path::is_hdf5_name(name) {
        return Some("application/x-hdf5".into());
    }
    if suffix == ".md" {
        return Some("text/markdown; charset=utf-8".into());
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

/// Bytes read from disk per body frame when streaming a file: large enough
/// that per-frame overhead vanishes, small enough to keep memory flat.
const STREAM_BUFFER: usize = 1 << 20;

/// A body that streams a file from disk.
pub async fn file_body(path: &PathBuf) -> ApiResult<(Body, u64)> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ApiError::not_found(),
            _ => ApiError::internal(format!("opening {}: {e}", path.display())),
        })?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("stat {}: {e}", path.display())))?
        .len();
    Ok((open_file_body(file), len))
}

/// A body that streams an already open file from its current position.
pub fn open_file_body(file: tokio::fs::File) -> Body {
    Body::from_stream(ReaderStream::with_capacity(file, STREAM_BUFFER))
}

/// A body that streams bytes `offset..offset + len` of a file (a leaf's
/// window inside a `.b2z` store).
pub async fn window_body(path: &PathBuf, offset: u64, len: u64) -> ApiResult<Body> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ApiError::not_found(),
            _ => ApiError::internal(format!("opening {}: {e}", path.display())),
        })?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| ApiError::internal(format!("seeking {}: {e}", path.display())))?;
    Ok(Body::from_stream(ReaderStream::with_capacity(
        file.take(len),
        STREAM_BUFFER,
    )))
}

/// A body that decompresses a stored regular file chunk by chunk on the
/// blocking pool, so memory stays at one chunk whatever the file size.
fn decompressed_body(path: PathBuf) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let sc = match cat2_core::dataset::open_frame(&path) {
            Ok(sc) => sc,
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        };
        let mut buf = Vec::new();
        for n in 0..sc.nchunks() {
            let item = sc
                .decompress_chunk(n, &mut buf)
                .map(|()| Bytes::copy_from_slice(&buf))
                .map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    Body::from_stream(tokio_stream_from(rx))
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn locate(app: &AppState, caller: CallerId, path: cat2_core::DsPath) -> ApiResult<Located> {
    let sd = app.state_dir.clone();
    let loc = blocking(move || sd.locate(&path, caller.as_caller())).await?;
    match loc.entry {
        // Paths inside a container name leaves and groups, not files: the
        // reference has nothing to download there either.
        Entry::Missing | Entry::Member => Err(ApiError::not_found()),
        Entry::Dir => Err(ApiError::bad_request(format!(
            "{} is a directory; download its files one by one",
            loc.logical
        ))),
        Entry::Dataset | Entry::Blob => Ok(loc),
    }
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
) -> ApiResult<Response> {
    if headers.contains_key(header::RANGE) {
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "byte ranges are served by /api/fetch, not by downloads",
        )
        .with_header(header::ACCEPT_RANGES, HeaderValue::from_static("none")));
    }
    let loc = locate(&app, caller.clone(), path).await?;
    let kind = FileKind::of(&loc);
    // An HDF5 proxy is downloaded as the array of its data, computed; other
    // arrays whose data lives elsewhere must not be handed out as their
    // (empty) carrier file.
    let mut computed = (None, std::time::Duration::ZERO);
    if kind == Some(FileKind::Array) {
        let l = loc.clone();
        let sd = app.state_dir.clone();
        computed = blocking_timed(move || {
            let arr = dataset::open_array(&l.fs)?;
            match dataset::derived_kind(&arr) {
                Some(_) => {
                    match cat2_core::fetch::fetch_with(
                        &sd,
                        &l,
                        &Default::default(),
                        caller.as_caller(),
                    )? {
                        cat2_core::fetch::FetchOutput::Frame(f) => Ok(Some(f)),
                        _ => Err(cat2_core::Error::BadRequest(format!(
                            "{} could not be computed",
                            l.logical
                        ))),
                    }
                }
                None => Ok(None),
            }
        })
        .await?;
    }
    let name = loc.logical.name().to_string();
    let mut builder = Response::builder()
        .header(header::CONTENT_DISPOSITION, content_disposition(&name))
        .header(header::ACCEPT_RANGES, "none");
    if let Some(m) = guess_mime(&name) {
        builder = builder.header(header::CONTENT_TYPE, m);
    }
    let body = if let (Some(frame), took) = computed {
        builder = builder
            .header(header::CONTENT_LENGTH, frame.len())
            .header("server-timing", server_timing("compute", took));
        Body::from(frame)
    } else if kind == Some(FileKind::Blob) && !wants_blosc2(&headers) {
        decompressed_body(loc.fs.clone())
    } else {
        if kind == Some(FileKind::Blob) {
            builder = builder.header(header::CONTENT_ENCODING, "blosc2");
        }
        let (body, len) = file_body(&loc.fs).await?;
        builder = builder.header(header::CONTENT_LENGTH, len);
        body
    };
    builder.body(body).map_err(ApiError::internal)
}

pub async fn get_preview(
    State(app): State<AppState>,
    caller: CallerId,
    DatasetPath(path): DatasetPath,
) -> ApiResult<Response> {
    let loc = locate(&app, caller, path).await?;
    let name = loc.logical.name().to_string();
    let mut builder = Response::builder();
    if let Some(m) = guess_mime(&name) {
        builder = builder.header(header::CONTENT_TYPE, m);
    }
    let body = if FileKind::of(&loc) == Some(FileKind::Blob) {
        decompressed_body(loc.fs.clone())
    } else {
        file_body(&loc.fs).await?.0
    };
    builder.body(body).map_err(ApiError::internal)
}
