//! What a fetch answers: stored bytes, or a frame computed for it.

use std::sync::Arc;

use super::frame_out::SpilledFrame;
use crate::storage::Blob;

/// What to answer.
pub enum FetchOutput {
    /// Stored bytes, verbatim (ranges allowed, relative to `offset`): a whole
    /// object (`whole`: the answer names it as a file), or the window of a
    /// container holding a leaf's frame.
    Stored {
        blob: Arc<dyn Blob>,
        offset: u64,
        len: u64,
        whole: bool,
    },
    /// A freshly built frame (NDArray or SChunk).
    Frame(Vec<u8>),
    /// A freshly built frame too large for the request's memory, spilled
    /// into storage; removed when the last handle on it is dropped.
    Spilled(Arc<SpilledFrame>),
}

impl FetchOutput {
    /// The whole of a stored object.
    pub fn object(blob: &Arc<dyn Blob>) -> FetchOutput {
        FetchOutput::Stored {
            len: blob.meta().size,
            blob: blob.clone(),
            offset: 0,
            whole: true,
        }
    }
}
