//! Assembling NDArray frames from chunks that are already compressed.
//!
//! Serving a selection made of whole stored chunks should cost a copy, not a
//! decompression and recompression. C-Blosc2 can only build a contiguous
//! frame by appending chunks one at a time (rewriting the offsets index each
//! time), so the frame is assembled here in one pass instead: C-Blosc2 makes
//! the frame of an all-uninitialised array of the same geometry (tiny, and
//! exact in its header, metalayers and trailer), and its chunk section and
//! offsets index are replaced by the real chunks (`README_CFRAME_FORMAT`:
//! header | chunks | offsets chunk | trailer; the trailer's own offsets are
//! relative to its start, so it moves as it is).

use crate::error::{Error, Result};
use crate::raw::ndarray::{Fill, RawNdArray};
use crate::{chunk_sizes, ArraySpec, CParams, Compressor};

/// Offsets of big-endian fields in a frame header (after their msgpack markers).
const HEADER_LEN_AT: usize = 11;
const FRAME_LEN_AT: usize = 16;
const CBYTES_AT: usize = 39;

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Bytes of a frame header that [`frame_len`] needs.
pub const FRAME_PREFIX_LEN: usize = 24;

/// The total length a contiguous frame declares in its header, read without
/// C-Blosc2: the header opens with a msgpack array whose first items are the
/// magic string `b2frame\0`, the header length (int32) and the frame length
/// (uint64), all big-endian. `None` when `prefix` does not start a frame.
///
/// Lets a caller check that a frame found inside a larger file (a member of
/// a zip store) claims no more bytes than it has before C-Blosc2 reads it.
pub fn frame_len(prefix: &[u8]) -> Option<u64> {
    let p = prefix.get(..FRAME_PREFIX_LEN)?;
    if &p[1..11] != b"\xa8b2frame\0\xd2" || p[15] != 0xcf {
        return None;
    }
    let header_len = u64::from(be_u32(p, HEADER_LEN_AT)?);
    let frame_len = u64::try_from(be_i64(p, FRAME_LEN_AT)?).ok()?;
    (header_len <= frame_len).then_some(frame_len)
}

/// The frame of an array of geometry `spec` whose chunks (C order of the
/// chunk grid) are `chunks`, each a complete compressed chunk holding one
/// extended chunk of `spec`.
pub fn ndarray_frame_from_chunks(spec: &ArraySpec, chunks: &[Vec<u8>]) -> Result<Vec<u8>> {
    let bad = |what: &str| Error::Invalid(format!("cannot assemble a frame: {what}"));
    let nchunks: i64 = spec
        .shape
        .iter()
        .zip(&spec.chunks)
        .map(|(&s, &c)| {
            if c > 0 {
                (s + i64::from(c) - 1) / i64::from(c)
            } else {
                0
            }
        })
        .product();
    if nchunks <= 0 || nchunks as usize != chunks.len() {
        return Err(bad(&format!(
            "{} chunks given for a grid of {nchunks}",
            chunks.len()
        )));
    }
    let template = RawNdArray::create_in(spec, Fill::Uninit, true)?.to_cframe()?;
    let header_len = be_u32(&template, HEADER_LEN_AT).ok_or_else(|| bad("short header"))? as usize;
    let cbytes0 = be_i64(&template, CBYTES_AT).ok_or_else(|| bad("short header"))?;
    let offsets_at = header_len
        .checked_add(usize::try_from(cbytes0).map_err(|_| bad("negative cbytes"))?)
        .ok_or_else(|| bad("header overflow"))?;
    let offsets0 = template
        .get(offsets_at..)
        .ok_or_else(|| bad("no offsets"))?;
    let (_, off_cbytes0, _) = chunk_sizes(offsets0)?;
    let trailer = template
        .get(offsets_at + off_cbytes0 as usize..)
        .ok_or_else(|| bad("no trailer"))?;

    // The extended chunk size every chunk must decompress to.
    let ext_items: i64 = spec
        .chunks
        .iter()
        .zip(&spec.blocks)
        .map(|(&c, &b)| {
            let (c, b) = (i64::from(c), i64::from(b).max(1));
            (c + b - 1) / b * b
        })
        .product();
    let chunk_nbytes = ext_items * i64::from(spec.cparams.typesize.max(1));
    let mut offsets = Vec::with_capacity(chunks.len() * 8);
    let mut total: i64 = 0;
    for (i, c) in chunks.iter().enumerate() {
        let (nbytes, cbytes, _) = chunk_sizes(c)?;
        if cbytes as usize != c.len() || i64::from(nbytes) != chunk_nbytes {
            return Err(bad(&format!(
                "chunk {i} holds {nbytes} bytes in {cbytes} ({} given) where {chunk_nbytes} are needed",
                c.len()
            )));
        }
        offsets.extend_from_slice(&total.to_le_bytes());
        total += i64::from(cbytes);
    }
    let mut cp = CParams::zstd_shuffle(8);
    cp.nthreads = 1;
    let offsets_chunk = Compressor::new(&cp)?.compress(&offsets)?;

    let frame_len = header_len + total as usize + offsets_chunk.len() + trailer.len();
    let mut frame = Vec::with_capacity(frame_len);
    frame.extend_from_slice(&template[..header_len]);
    frame[FRAME_LEN_AT..FRAME_LEN_AT + 8].copy_from_slice(&(frame_len as u64).to_be_bytes());
    frame[CBYTES_AT..CBYTES_AT + 8].copy_from_slice(&total.to_be_bytes());
    for c in chunks {
        frame.extend_from_slice(c);
    }
    frame.extend_from_slice(&offsets_chunk);
    frame.extend_from_slice(trailer);
    crate::schunk::fix_frame_typesize(&mut frame, spec.cparams.typesize.max(1) as usize);
    Ok(frame)
}
