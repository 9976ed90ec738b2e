//! Single compressed chunks: header sizes, special values, and per-thread
//! compression/decompression contexts.

use crate::error::Result;
use crate::raw::chunk::{self, RawCtx};
use crate::CParams;

/// Sizes declared by a chunk header: `(nbytes, cbytes, blocksize)`.
pub fn chunk_sizes(chunk: &[u8]) -> Result<(i32, i32, i32)> {
    chunk::sizes(chunk)
}

/// The special value a header-only chunk stands for (bits 4–6 of byte 31).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    None,
    Zero,
    Nan,
    Value,
    Uninit,
}

impl Special {
    /// Reads the special-value marker of a chunk header.
    pub fn of(chunk: &[u8]) -> Special {
        match chunk.get(31).map(|b| (b >> 4) & 7) {
            Some(1) => Special::Zero,
            Some(2) => Special::Nan,
            Some(3) => Special::Value,
            Some(4) => Special::Uninit,
            _ => Special::None,
        }
    }
}

/// A header-only chunk of `nbytes` zeros (or uninitialised bytes).
pub fn special_chunk(cparams: &CParams, nbytes: i32, uninit: bool) -> Result<Vec<u8>> {
    chunk::special_chunk(cparams, nbytes, uninit)
}

/// A decompression context; one per thread.
pub struct Decompressor(RawCtx);

impl Decompressor {
    pub fn new(nthreads: i16) -> Result<Self> {
        RawCtx::decompressor(nthreads).map(Decompressor)
    }
    /// Decompresses a whole chunk into `out`.
    pub fn decompress(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.0.decompress(chunk, out)
    }
}

/// A compression context; one per thread.
pub struct Compressor(RawCtx);

impl Compressor {
    pub fn new(cparams: &CParams) -> Result<Self> {
        RawCtx::compressor(cparams).map(Compressor)
    }
    /// Compresses `src` into one chunk.
    pub fn compress(&mut self, src: &[u8]) -> Result<Vec<u8>> {
        self.0.compress(src)
    }
}
