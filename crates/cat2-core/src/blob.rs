//! Regular files ("blobs"): any file that is not a dataset is stored as a
//! Blosc2 super-chunk of its bytes (typesize 1) named `<name>.b2`, exactly as
//! Caterva2 does, so the reference server and cat2rs read each other's files.

use std::sync::Arc;

use cat2_blosc2::{CParams, SChunk};

use crate::error::{Error, Result};
use crate::storage::Blob;

/// Bytes per chunk when compressing a regular file (python-blosc2's default
/// for an SChunk built from bytes is a single chunk; bounded chunks keep
/// streaming reads cheap).
pub(crate) const BLOB_CHUNKSIZE: usize = 4 * 1024 * 1024;

/// Compresses bytes into an SChunk cframe (typesize 1).
pub fn compress_blob(data: &[u8]) -> Result<Vec<u8>> {
    let cparams = CParams::zstd_shuffle(1);
    let sc = SChunk::from_bytes(data, BLOB_CHUNKSIZE, &cparams)?;
    Ok(sc.to_cframe()?)
}

/// Decompresses a whole stored `.b2` file.
pub fn read_blob(blob: &Arc<dyn Blob>) -> Result<Vec<u8>> {
    let sc = crate::frames::open_frame(blob).map_err(|e| {
        Error::BadRequest(format!(
            "{} is not a Blosc2 frame: {e}",
            blob.meta().key.name()
        ))
    })?;
    Ok(sc.to_bytes()?)
}
