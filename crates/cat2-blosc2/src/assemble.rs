//! Assembling NDArray frames from chunks that are already compressed, in
//! memory or piece by piece into a file of any size.
//!
//! Serving a selection made of whole stored chunks should cost a copy, not a
//! decompression and recompression, and a computed array larger than memory
//! must go to storage as its chunks are made. C-Blosc2 can only build a
//! contiguous frame by appending chunks one at a time (rewriting the offsets
//! index each time: quadratic in the chunks), so frames are assembled here
//! instead: C-Blosc2 makes the frame of an all-uninitialised array of the
//! same geometry (tiny, and exact in its header, metalayers and trailer), and
//! its chunk section and offsets index are replaced by the real chunks
//! (`README_CFRAME_FORMAT`: header | chunks | offsets chunk | trailer; the
//! trailer's own offsets are relative to its start, so it moves as it is).
//!
//! Invariants of [`FrameAssembler`]: chunks are stored one after the other
//! right after the header, in the order they are given (not necessarily the
//! grid's: the offsets index says where each is, as after C-Blosc2's own
//! updates); special chunks (zeros, NaNs, uninitialised) are coded in the
//! index and stored nowhere; the header, which carries the frame's length and
//! the size of its chunk section, is known only at the end and is written
//! last, so a frame cut short by a crash has no valid header (a writer writes
//! into a staged object that is committed only when whole).

use crate::error::{Error, Result};
use crate::frame::{be_i64, be_u32, CBYTES_AT, FRAME_LEN_AT, HEADER_LEN_AT, MAX_META_LEN};
use crate::raw::ndarray::{Fill, RawNdArray};
use crate::{chunk_sizes, ArraySpec, CParams, Compressor, Special};

/// An offsets-index slot no chunk has been given for yet.
const NOT_GIVEN: u64 = u64::MAX;

/// A frame being assembled from the compressed chunks of an array of a
/// given geometry (see the module doc for the order of its parts).
#[derive(Debug)]
pub struct FrameAssembler {
    /// The template's header, patched by [`FrameAssembler::finish`].
    header: Vec<u8>,
    /// The template's trailer (metalayers, vlmeta), moved as it is.
    trailer: Vec<u8>,
    /// The bytes every chunk must decompress to (an extended chunk).
    chunk_nbytes: i64,
    typesize: usize,
    /// Per chunk of the grid: its offset after the header, or its special
    /// code (top bit set), or [`NOT_GIVEN`].
    offsets: Vec<u64>,
    /// Bytes of chunks stored so far.
    stored: u64,
    missing: usize,
}

/// The parts of an assembled frame that come after all chunks are given:
/// `header` goes at the frame's start, `tail` (offsets index and trailer) at
/// `tail_at`, right after the stored chunks.
#[derive(Debug)]
pub struct FrameEnds {
    pub header: Vec<u8>,
    pub tail: Vec<u8>,
    pub tail_at: u64,
}

impl FrameEnds {
    /// The length of the whole frame.
    pub fn frame_len(&self) -> u64 {
        self.tail_at + self.tail.len() as u64
    }
}

impl FrameAssembler {
    /// An assembler of the frame of an array of geometry `spec`, carrying
    /// the variable-length metadata `vlmeta` (name, raw msgpack content).
    pub fn new(spec: &ArraySpec, vlmeta: &[(String, Vec<u8>)]) -> Result<Self> {
        let bad = |what: &str| Error::Invalid(format!("cannot assemble a frame: {what}"));
        let nchunks = spec
            .shape
            .iter()
            .zip(&spec.chunks)
            .try_fold(1u64, |n, (&s, &c)| {
                let per_dim = if c > 0 && s >= 0 {
                    (s as u64).div_ceil(c as u64)
                } else {
                    0
                };
                n.checked_mul(per_dim)
            })
            .filter(|&n| n > 0)
            .ok_or_else(|| bad("an array of no chunks"))?;
        // Readers (this server's, C-Blosc2's) refuse a larger index.
        if nchunks.saturating_mul(8) > MAX_META_LEN {
            return Err(bad(&format!(
                "{nchunks} chunks are more than a frame holds (at most {}); larger chunks are needed",
                MAX_META_LEN / 8
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
        let header_len =
            be_u32(&template, HEADER_LEN_AT).ok_or_else(|| bad("short header"))? as usize;
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
            .ok_or_else(|| bad("no trailer"))?
            .to_vec();
        let ext_items: i64 = spec
            .chunks
            .iter()
            .zip(&spec.blocks)
            .map(|(&c, &b)| {
                let (c, b) = (i64::from(c), i64::from(b).max(1));
                (c + b - 1) / b * b
            })
            .product();
        let typesize = spec.cparams.typesize.max(1) as usize;
        Ok(FrameAssembler {
            header: template[..header_len].to_vec(),
            trailer,
            chunk_nbytes: ext_items * typesize as i64,
            typesize,
            offsets: vec![NOT_GIVEN; nchunks as usize],
            stored: 0,
            missing: nchunks as usize,
        })
    }

    /// The chunks of the array's grid.
    pub fn nchunks(&self) -> usize {
        self.offsets.len()
    }

    /// Where the first stored chunk goes: the header's length.
    pub fn header_len(&self) -> u64 {
        self.header.len() as u64
    }

    /// Bytes of chunks stored so far (the frame's chunk section).
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// Takes chunk `n` of the grid (a complete compressed chunk of one
    /// extended chunk); answers where in the frame its bytes go, or `None`
    /// for a special chunk, which is coded in the index and stored nowhere
    /// (as C-Blosc2 does when it appends one: C-Blosc2 3.x refuses to open a
    /// frame *file* that stores one).
    pub fn place(&mut self, n: usize, chunk: &[u8]) -> Result<Option<u64>> {
        let bad = |what: String| Error::Invalid(format!("cannot assemble a frame: {what}"));
        let slot = self
            .offsets
            .get_mut(n)
            .filter(|s| **s == NOT_GIVEN)
            .ok_or_else(|| bad(format!("chunk {n} is not a chunk still to give")))?;
        let (nbytes, cbytes, _) = chunk_sizes(chunk)?;
        if cbytes as usize != chunk.len() || i64::from(nbytes) != self.chunk_nbytes {
            return Err(bad(format!(
                "chunk {n} holds {nbytes} bytes in {cbytes} ({} given) where {} are needed",
                chunk.len(),
                self.chunk_nbytes
            )));
        }
        self.missing -= 1;
        let special = match Special::of(chunk) {
            Special::Zero => Some(1u64),
            Special::Nan => Some(2),
            Special::Uninit => Some(4),
            Special::None | Special::Value => None,
        };
        if let Some(code) = special {
            *slot = (1u64 << 63) | (code << 56);
            return Ok(None);
        }
        *slot = self.stored;
        let at = self.header.len() as u64 + self.stored;
        self.stored += chunk.len() as u64;
        Ok(Some(at))
    }

    /// The header and the tail of the frame, once every chunk is given.
    pub fn finish(self) -> Result<FrameEnds> {
        if self.missing > 0 {
            return Err(Error::Invalid(format!(
                "cannot assemble a frame: {} of its {} chunks were not given",
                self.missing,
                self.offsets.len()
            )));
        }
        let index: Vec<u8> = self.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        let mut cp = CParams::zstd_shuffle(8);
        cp.nthreads = 1;
        let mut tail = Compressor::new(&cp)?.compress(&index)?;
        tail.extend_from_slice(&self.trailer);
        let tail_at = self.header.len() as u64 + self.stored;
        let mut header = self.header;
        let frame_len = tail_at + tail.len() as u64;
        header[FRAME_LEN_AT..FRAME_LEN_AT + 8].copy_from_slice(&frame_len.to_be_bytes());
        header[CBYTES_AT..CBYTES_AT + 8].copy_from_slice(&(self.stored as i64).to_be_bytes());
        crate::schunk::fix_frame_typesize(&mut header, self.typesize);
        Ok(FrameEnds {
            header,
            tail,
            tail_at,
        })
    }
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
    let mut asm = FrameAssembler::new(spec, vlmeta)?;
    if asm.nchunks() != chunks.len() {
        return Err(Error::Invalid(format!(
            "cannot assemble a frame: {} chunks given for a grid of {}",
            chunks.len(),
            asm.nchunks()
        )));
    }
    let mut stored = Vec::with_capacity(chunks.len());
    for (n, c) in chunks.iter().enumerate() {
        if asm.place(n, c)?.is_some() {
            stored.push(c);
        }
    }
    let ends = asm.finish()?;
    let mut frame = Vec::with_capacity(ends.frame_len() as usize);
    frame.extend_from_slice(&ends.header);
    for c in stored {
        frame.extend_from_slice(c);
    }
    frame.extend_from_slice(&ends.tail);
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
    fn chunks_given_out_of_grid_order_read_back_in_place() {
        let s = spec(&[9, 4], &[2, 3], &[1, 3]);
        let data: Vec<u8> = (0..9 * 4u16).flat_map(u16::to_le_bytes).collect();
        let src = NdArray::from_buffer(&s, &data).unwrap();
        let n = src.schunk().nchunks();
        let mut asm = FrameAssembler::new(&s, &[]).unwrap();
        let mut frame = vec![0u8; asm.header.len()];
        for i in (0..n).rev() {
            let c = src.schunk().chunk(i).unwrap();
            let at = asm.place(i as usize, &c).unwrap().unwrap();
            assert_eq!(at, frame.len() as u64);
            frame.extend_from_slice(&c);
        }
        let ends = asm.finish().unwrap();
        assert_eq!(ends.tail_at, frame.len() as u64);
        frame[..ends.header.len()].copy_from_slice(&ends.header);
        frame.extend_from_slice(&ends.tail);
        assert_eq!(frame.len() as u64, ends.frame_len());
        crate::check_cframe(&frame).unwrap();
        assert_eq!(
            NdArray::from_cframe(&frame).unwrap().to_vec().unwrap(),
            data
        );
    }

    #[test]
    fn special_chunks_are_coded_in_offsets() {
        let s = spec(&[4, 3], &[2, 3], &[1, 3]);
        // The first chunk all zeros: C-Blosc2 compresses it as a special.
        let mut data = vec![0u8; 4 * 3 * 2];
        data[12..]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8 + 1);
        let src = NdArray::from_buffer(&s, &data).unwrap();
        let mut chunks: Vec<Vec<u8>> = (0..2).map(|n| src.schunk().chunk(n).unwrap()).collect();
        let (nbytes, _, _) = chunk_sizes(&chunks[0]).unwrap();
        chunks[0] = crate::special_chunk(&s.cparams, nbytes, false).unwrap();
        assert_eq!(Special::of(&chunks[0]), Special::Zero);
        let frame = ndarray_frame_from_chunks(&s, &chunks, &[]).unwrap();
        // The zero chunk takes no room among the chunk data.
        assert_eq!(be_i64(&frame, CBYTES_AT).unwrap() as usize, chunks[1].len());
        let back = NdArray::from_cframe(&frame).unwrap();
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
        assert!(ndarray_frame_from_chunks(&other, &[one.clone(), one.clone()], &[]).is_err());
        // A chunk given twice, or one never given.
        let mut asm = FrameAssembler::new(&s, &[]).unwrap();
        asm.place(0, &one).unwrap();
        assert!(asm.place(0, &one).is_err());
        assert!(asm.place(2, &one).is_err());
        assert!(asm.finish().is_err());
    }

    #[test]
    fn grids_past_what_readers_take_are_refused_up_front() {
        let s = spec(&[1 << 40], &[1], &[1]);
        let err = FrameAssembler::new(&s, &[]).unwrap_err().to_string();
        assert!(err.contains("larger chunks"), "{err}");
    }
}
