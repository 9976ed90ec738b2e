//! cat2-blosc2: a small safe wrapper over C-Blosc2.
//!
//! Main types: [`SChunk`] (a super-chunk: compressed chunks + metadata) and
//! [`NdArray`] (a b2nd array on top of one), plus [`Compressor`] and
//! [`Decompressor`] for single compressed chunks, one per thread.
//!
//! Design choice: the dtype is an opaque NumPy dtype string, exactly as
//! python-blosc2 stores it, so structured, unicode and void dtypes round-trip
//! without this crate having to understand them (cat2-core does that).
//! All `unsafe` lives in `raw/`, one file per C object.
//!
//! Frames in storage are read through [`FrameIo`], random access to the
//! bytes of one version of a frame, which C-Blosc2 reads and writes through
//! its user-defined I/O ([`SChunk::open_io`], [`NdArray::open_io`],
//! [`SChunk::create_io`]); the path-based constructors open the file once
//! and hand it over as one.

mod assemble;
mod boxread;
mod chunks;
pub mod cparams;
mod error;
mod frame;
mod io;
mod layout;
mod ndarray;
mod raw;
mod schunk;

pub use assemble::{ndarray_frame_from_chunks, FrameAssembler, FrameEnds};
pub use chunks::{
    bitunshuffle, chunk_sizes, chunk_version, special_chunk, Compressor, Decompressor, Special,
};
pub use cparams::CParams;
pub use error::{Error, Result};
pub use frame::{
    check_b2nd_meta, check_cframe, check_chunk_headers, check_header, read_frame_index,
    read_frame_index_io, ChunkSlot, FRAME_HEADER_MINLEN, MAX_CHECKED_CHUNKS,
};
pub use io::{FileIo, FrameIo};
pub use layout::{pack_chunk, pack_chunk_owned};
pub use ndarray::{ArraySpec, NdArray, MAX_DIM};
pub use schunk::{decode_msgpack, encode_msgpack, SChunk};
