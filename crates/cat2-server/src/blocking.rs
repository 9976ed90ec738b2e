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
