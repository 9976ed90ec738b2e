//! cat2-blosc2: a small safe wrapper over C-Blosc2.
//!
//! Main types: [`SChunk`] (a super-chunk: compressed chunks + metadata) and
//! [`NdArray`] (a b2nd array on top of one), plus [`Chunks`] for working with
//! single compressed chunks in parallel.
//!
//! Design choice: the dtype is an opaque NumPy dtype string, exactly as
//! python-blosc2 stores it, so structured, unicode and void dtypes round-trip
//! without this crate having to understand them (cat2-core does that).
//! All `unsafe` lives in `raw/`, one file per C object.

mod boxread;
mod chunks;
pub mod cparams;
mod error;
mod frame;
mod layout;
mod ndarray;
mod pin;
mod raw;
mod schunk;

pub use chunks::{
    bitunshuffle, chunk_sizes, chunk_version, special_chunk, Compressor, Decompressor, Special,
};
pub use cparams::CParams;
pub use error::{Error, Result};
pub use frame::{
    check_b2nd_meta, check_cframe, check_header, ndarray_frame_from_chunks, read_frame_index,
    ChunkSlot, FRAME_HEADER_MINLEN,
};
pub use layout::{pack_chunk, pack_chunk_owned};
pub use ndarray::{ArraySpec, NdArray, MAX_DIM};
pub use schunk::{decode_msgpack, encode_msgpack, SChunk};
