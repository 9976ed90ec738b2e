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

use std::io::{Read, Seek, SeekFrom};

use crate::error::{Error, Result};
use crate::raw::ndarray::{Fill, RawNdArray};
use crate::{chunk_sizes, ArraySpec, CParams, Compressor, Decompressor, Special};

/// Offsets of big-endian fields in a frame header (after their msgpack markers).
const HEADER_LEN_AT: usize = 11;
const FRAME_LEN_AT: usize = 16;
const NBYTES_AT: usize = 30;
const CBYTES_AT: usize = 39;
/// The frame magic, a msgpack str8 of 8 bytes after the fixarray marker.
const MAGIC: &[u8] = b"\xa8b2frame\0";
/// Enough of a header to hold every fixed field read here.
const HEADER_PREFIX: usize = 64;
/// Bytes of an extended (Blosc2) chunk header.
const CHUNK_HEADER: usize = 32;

/// Where one chunk of a frame lives, as the frame's offsets index records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkSlot {
    /// Stored in the chunk section, this many bytes after the header.
    Stored(u64),
    /// Not stored at all: the index holds a special value (zeros, NaNs,
    /// uninitialised) instead of an offset.
    Special(Special),
}

impl ChunkSlot {
    /// Whether nothing was ever written to this slot: `uninit` lays an array
    /// out with every chunk in this state, and a chunk write takes it out of it.
    pub fn is_unwritten(self) -> bool {
        self == ChunkSlot::Special(Special::Uninit)
    }

    /// Decodes one entry of the offsets index: a negative value is a special
    /// value, tagged in bits 4-6 of its top byte (`README_CFRAME_FORMAT`).
    fn from_offset(offset: i64) -> ChunkSlot {
        match u64::try_from(offset) {
            Ok(at) => ChunkSlot::Stored(at),
            Err(_) => {
                let tag = ((offset as u64) >> 56) as u8 & 0x7;
                ChunkSlot::Special(match tag {
                    1 => Special::Zero,
                    2 => Special::Nan,
                    3 => Special::Value,
                    4 => Special::Uninit,
                    _ => Special::None,
                })
            }
        }
    }
}

/// The offsets index of the contiguous frame in `file`: one [`ChunkSlot`] per
/// chunk, in chunk order.
///
/// Two small reads (the header, then the index it locates) and one
/// decompression of 8 bytes per chunk; no chunk is read. This is what says
/// which chunks of an array being filled are written.
pub fn read_frame_index<F: Read + Seek>(file: &mut F) -> Result<Vec<ChunkSlot>> {
    let bad = |what: &str| Error::Invalid(format!("not a Blosc2 frame: {what}"));
    let io = |op: &'static str| {
        move |source| Error::Io {
            op,
            path: "frame".into(),
            source,
        }
    };
    let mut header = Vec::with_capacity(HEADER_PREFIX);
    file.seek(SeekFrom::Start(0)).map_err(io("seeking in"))?;
    file.by_ref()
        .take(HEADER_PREFIX as u64)
        .read_to_end(&mut header)
        .map_err(io("reading"))?;
    if header.get(1..1 + MAGIC.len()) != Some(MAGIC) {
        return Err(bad("no b2frame magic"));
    }
    let header_len = be_u32(&header, HEADER_LEN_AT).ok_or_else(|| bad("short header"))?;
    let nbytes = be_i64(&header, NBYTES_AT).ok_or_else(|| bad("short header"))?;
    let cbytes = be_i64(&header, CBYTES_AT).ok_or_else(|| bad("short header"))?;
    if nbytes == 0 {
        return Ok(Vec::new());
    }
    let index_at = u64::try_from(cbytes)
        .ok()
        .and_then(|c| c.checked_add(u64::from(header_len)))
        .ok_or_else(|| bad("negative chunk section"))?;
    file.seek(SeekFrom::Start(index_at))
        .map_err(io("seeking in"))?;
    let mut index = vec![0u8; CHUNK_HEADER];
    file.read_exact(&mut index).map_err(io("reading"))?;
    let (index_nbytes, index_cbytes, _) = chunk_sizes(&index)?;
    let rest = usize::try_from(index_cbytes)
        .ok()
        .and_then(|c| c.checked_sub(CHUNK_HEADER))
        .ok_or_else(|| bad("offsets index shorter than its header"))?;
    if index_nbytes < 0 || index_nbytes % 8 != 0 {
        return Err(bad("offsets index of a size that is not whole offsets"));
    }
    index.resize(CHUNK_HEADER + rest, 0);
    file.read_exact(&mut index[CHUNK_HEADER..])
        .map_err(io("reading"))?;
    let mut offsets = Vec::new();
    Decompressor::new(1)?.decompress(&index, &mut offsets)?;
    Ok(offsets
        .chunks_exact(8)
        .map(|b| {
            let mut le = [0u8; 8];
            le.copy_from_slice(b);
            ChunkSlot::from_offset(i64::from_le_bytes(le))
        })
        .collect())
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The frame of an array of geometry `spec` whose chunks (C order of the
/// chunk grid) are `chunks`, each a complete compressed chunk holding one
/// extended chunk of `spec`, carrying the variable-length metadata `vlmeta`
/// (name, raw msgpack content).
pub fn ndarray_frame_from_chunks(
    spec: &ArraySpec,
    chunks: &[Vec<u8>],
    vlmeta: &[(String, Vec<u8>)],
) -> Result<Vec<u8>> {
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
    let mut array = RawNdArray::create_in(spec, Fill::Uninit, true)?;
    if !vlmeta.is_empty() {
        let mut sc = array.schunk()?;
        let cp = CParams::zstd_shuffle(1);
        for (name, content) in vlmeta {
            sc.vlmeta_set(name, content, &cp)?;
        }
    }
    let template = array.to_cframe()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NdArray;

    fn spec(shape: &[i64], chunks: &[i32], blocks: &[i32]) -> ArraySpec {
        ArraySpec {
            shape: shape.to_vec(),
            chunks: chunks.to_vec(),
            blocks: blocks.to_vec(),
            dtype: "<u2".into(),
            cparams: CParams::zstd_shuffle(2),
            urlpath: None,
        }
    }

    #[test]
    fn assembled_frame_reads_back_as_the_source() {
        let s = spec(&[5, 7, 9], &[2, 7, 4], &[1, 3, 4]);
        let data: Vec<u8> = (0..5 * 7 * 9u16).flat_map(u16::to_le_bytes).collect();
        let src = NdArray::from_buffer(&s, &data).unwrap();
        let chunks: Vec<Vec<u8>> = (0..src.schunk().nchunks())
            .map(|n| src.schunk().chunk(n).unwrap())
            .collect();
        let frame = ndarray_frame_from_chunks(&s, &chunks, &[]).unwrap();
        let back = NdArray::from_cframe(&frame).unwrap();
        assert_eq!(back.shape(), [5, 7, 9]);
        assert_eq!(back.chunks(), [2, 7, 4]);
        assert_eq!(back.dtype(), "<u2");
        assert_eq!(back.to_vec().unwrap(), data);
    }

    #[test]
    fn wrong_chunks_are_refused() {
        let s = spec(&[4], &[2], &[1]);
        let data: Vec<u8> = (0..4u16).flat_map(u16::to_le_bytes).collect();
        let src = NdArray::from_buffer(&s, &data).unwrap();
        let one = src.schunk().chunk(0).unwrap();
        assert!(ndarray_frame_from_chunks(&s, std::slice::from_ref(&one), &[]).is_err());
        let other = spec(&[6], &[3], &[1]);
        assert!(ndarray_frame_from_chunks(&other, &[one.clone(), one], &[]).is_err());
    }
}
