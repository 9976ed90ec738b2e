//! Running blocking work (decompression, file I/O, directory walks) on
//! tokio's blocking pool, never on the executor threads.

use crate::error::{ApiError, ApiResult};

/// Runs `f` on the blocking pool and flattens its error into an [`ApiError`].
pub async fn blocking<T, E, F>(f: F) -> ApiResult<T>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?.map_err(Into::into)
}

/// [`blocking`], also answering how long `f` ran: the server-side cost of a
/// request (decompression, computation, compression), without the transfer.
pub async fn blocking_timed<T, E, F>(f: F) -> ApiResult<(T, std::time::Duration)>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    blocking(move || {
        let started = std::time::Instant::now();
        f().map(|v| (v, started.elapsed()))
    })
    .await
}

/// A `Server-Timing` header value (W3C Server Timing) for work that took `took`,
/// named `what`: `compute;dur=12.345` (milliseconds). Browsers' developer tools
/// show it, and the benchmarks read it to set the server's work apart from the
/// transfer.
pub fn server_timing(what: &str, took: std::time::Duration) -> axum::http::HeaderValue {
    let text = format!("{what};dur={:.3}", took.as_secs_f64() * 1e3);
    axum::http::HeaderValue::from_str(&text)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("compute"))
}
