//! b2nd arrays: an n-dimensional shape, chunk and block grid and a NumPy
//! dtype string on top of a super-chunk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::boxread::{self, Geometry};
use crate::error::{Error, Result};
use crate::io::{open_path, FrameIo, Opened};
use crate::raw::ndarray::{Fill, RawNdArray};
use crate::raw::schunk::RawSChunk;
use crate::{CParams, SChunk};

/// Most dimensions a b2nd array can have (`B2ND_MAX_DIM`).
pub const MAX_DIM: usize = 16;

/// Everything needed to create an array.
#[derive(Debug, Clone)]
pub struct ArraySpec {
    pub shape: Vec<i64>,
    pub chunks: Vec<i32>,
    pub blocks: Vec<i32>,
    /// NumPy dtype string as stored in the b2nd metalayer (`"<u2"`, a descr repr...).
    pub dtype: String,
    pub cparams: CParams,
    /// Where to create the array on disk; `None` keeps it in memory.
    pub urlpath: Option<PathBuf>,
}

/// A b2nd array. `Send` but not `Sync`, like [`SChunk`].
pub struct NdArray {
    // Field order matters: the borrowed super-chunk view is dropped before
    // the array that owns it.
    schunk: SChunk,
    raw: RawNdArray,
}

impl NdArray {
    fn wrap(mut raw: RawNdArray) -> Result<NdArray> {
        let schunk = SChunk::wrap(raw.schunk()?);
        let arr = NdArray { schunk, raw };
        arr.check_grid()?;
        Ok(arr)
    }

    /// A b2nd array has one stored chunk per cell of its chunk grid. A
    /// damaged frame whose shape or chunk shape disagrees with the chunks it
    /// holds is refused here, before anything sized by its shape is
    /// allocated.
    fn check_grid(&self) -> Result<()> {
        let (shape, chunks) = (self.shape(), self.chunks());
        let mut cells: Option<i64> = Some(1);
        for (&s, &c) in shape.iter().zip(&chunks) {
            let c = i64::from(c);
            cells = match (s, c) {
                (s, _) if s < 0 => None,
                (0, _) => cells.map(|_| 0),
                (_, c) if c <= 0 => None,
                (s, c) => cells.and_then(|n| n.checked_mul((s + c - 1) / c)),
            };
        }
        match cells {
            Some(n) if n == self.schunk.nchunks() && shape.len() == chunks.len() => {}
            _ => {
                return Err(Error::Damaged(format!(
                    "an array of shape {shape:?} in chunks of {chunks:?} cannot hold the {} chunks it has",
                    self.schunk.nchunks()
                )))
            }
        }
        // Readers size their buffers from the chunk and block shapes: they
        // must describe the chunks the super-chunk holds (a whole number
        // of items of the extended chunk), not gigabytes a 2 kB file claims.
        let ext = self.ext_chunk_items();
        let chunksize = self.schunk.chunksize();
        let fits = matches!(ext, Some(e) if e > 0 && chunksize >= e && chunksize % e == 0);
        if self.schunk.nchunks() > 0 && !fits {
            return Err(Error::Damaged(format!(
                "chunks of {chunks:?} in blocks of {:?} do not describe its chunks of {chunksize} bytes",
                self.blocks()
            )));
        }
        Ok(())
    }

    /// Items of a chunk extended to whole blocks (`None` past `i64`).
    fn ext_chunk_items(&self) -> Option<i64> {
        self.chunks()
            .iter()
            .zip(self.blocks())
            .try_fold(1i64, |n, (&c, b)| {
                let (c, b) = (i64::from(c), i64::from(b).max(1));
                n.checked_mul((c + b - 1) / b * b)
            })
    }

    /// Opens a `.b2nd` file. Fails if the frame has no `b2nd` metalayer.
    ///
    /// As [`SChunk::open`]: the file is opened once (read-write if it can
    /// be) and read through [`NdArray::open_io`], so the handle reads (and
    /// writes) the file that was there when it was opened, even if another
    /// is renamed over the name meanwhile; a directory (a sparse frame) is
    /// left to C-Blosc2.
    pub fn open(path: &Path) -> Result<NdArray> {
        match open_path(path, true)? {
            Opened::File(io) => NdArray::open_io(io),
            Opened::Dir => Self::wrap(RawNdArray::open(path)?),
        }
    }

    /// Opens the array whose frame starts `offset` bytes into a file, as a
    /// stored member of a zip store is, read-only (a write could grow the
    /// frame over what follows it). The header is checked first
    /// ([`crate::check_header`]); the caller checks that the frame's
    /// declared length fits in the bytes it belongs to.
    pub fn open_offset(path: &Path, offset: u64) -> Result<NdArray> {
        NdArray::open_io_offset(crate::schunk::open_file_read_only(path)?, offset)
    }

    /// Opens the array held by `io` (see [`SChunk::open_io`]).
    pub fn open_io(io: Arc<dyn FrameIo>) -> Result<NdArray> {
        NdArray::open_io_offset(io, 0)
    }

    /// Opens the array whose frame starts `offset` bytes into `io` (see
    /// [`SChunk::open_io`]).
    pub fn open_io_offset(io: Arc<dyn FrameIo>, offset: u64) -> Result<NdArray> {
        let checked = crate::frame::check_frame_io(&*io, offset)?;
        Self::wrap(RawNdArray::open_io(io, offset, checked)?)
    }

    /// Reads an NDArray contiguous frame held in memory (copied). The frame
    /// is checked first ([`crate::check_cframe`]): C-Blosc2 trusts its chunk
    /// offsets.
    pub fn from_cframe(frame: &[u8]) -> Result<NdArray> {
        crate::check_cframe(frame).map_err(Error::Invalid)?;
        // C-Blosc2's b2nd_from_cframe leaks the super-chunk it made from a
        // frame without a b2nd metalayer: such frames stop here.
        if !crate::frame::probe_frame(frame)? {
            return Err(Error::Invalid(
                "it is a super-chunk, not a b2nd array (it has no b2nd metalayer)".into(),
            ));
        }
        Self::wrap(RawNdArray::from_cframe(frame)?)
    }

    /// A new array holding `data` (C order, exactly shape × itemsize bytes,
    /// where the item size is `spec.cparams.typesize`).
    pub fn from_buffer(spec: &ArraySpec, data: &[u8]) -> Result<NdArray> {
        let nitems = spec
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?));
        let need = nitems.and_then(|n| n.checked_mul(spec.cparams.typesize.max(1) as usize));
        if need != Some(data.len()) {
            return Err(Error::Invalid(format!(
                "{} bytes given for shape {:?} of {}-byte items",
                data.len(),
                spec.shape,
                spec.cparams.typesize
            )));
        }
        Self::wrap(RawNdArray::create(spec, Fill::Buffer(data))?)
    }

    /// A new array of zeros (stored as special zero chunks).
    pub fn zeros(spec: &ArraySpec) -> Result<NdArray> {
        Self::wrap(RawNdArray::create(spec, Fill::Zeros)?)
    }

    /// A new array whose chunks are all uninitialised specials, to be filled later.
    pub fn uninit(spec: &ArraySpec) -> Result<NdArray> {
        Self::wrap(RawNdArray::create(spec, Fill::Uninit)?)
    }

    pub fn ndim(&self) -> usize {
        self.raw.ndim()
    }
    pub fn shape(&self) -> Vec<i64> {
        self.raw.shape()
    }
    pub fn chunks(&self) -> Vec<i32> {
        self.raw.chunks()
    }
    pub fn blocks(&self) -> Vec<i32> {
        self.raw.blocks()
    }
    /// The dtype string exactly as stored.
    pub fn dtype(&self) -> String {
        self.raw.dtype()
    }
    /// Bytes per item: a chunk holds the extended chunk's items, so this is
    /// the chunk size over that count (frames written by some C-Blosc2
    /// versions record typesize 1 for items wider than 255 bytes).
    pub fn itemsize(&self) -> usize {
        let ext = self.ext_chunk_items().unwrap_or(0);
        let chunksize = self.schunk.chunksize();
        if ext > 0 && chunksize > 0 && chunksize % ext == 0 {
            (chunksize / ext) as usize
        } else {
            self.schunk.typesize()
        }
    }
    /// The underlying super-chunk (metadata, vlmeta, raw chunks).
    pub fn schunk(&self) -> &SChunk {
        &self.schunk
    }
    pub fn schunk_mut(&mut self) -> &mut SChunk {
        &mut self.schunk
    }

    fn check_box(&self, start: &[i64], stop: &[i64]) -> Result<usize> {
        let shape = self.shape();
        if start.len() != shape.len() || stop.len() != shape.len() {
            return Err(Error::Invalid(format!(
                "a box over shape {shape:?} needs {} coordinates",
                shape.len()
            )));
        }
        let mut n: usize = 1;
        for ((&a, &b), &s) in start.iter().zip(stop).zip(&shape) {
            if a < 0 || b > s || a > b {
                return Err(Error::Invalid(format!(
                    "box {start:?}..{stop:?} is outside shape {shape:?}"
                )));
            }
            n = n.saturating_mul((b - a) as usize);
        }
        Ok(n.saturating_mul(self.itemsize()))
    }

    /// Reads the box `[start, stop)` in C order into `out`, which must be
    /// exactly the box's size in bytes.
    pub fn read_box(&self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()> {
        let need = self.check_box(start, stop)?;
        if out.len() != need {
            return Err(Error::Invalid(format!(
                "buffer of {} bytes for a box of {need}",
                out.len()
            )));
        }
        if need == 0 {
            return Ok(());
        }
        if self.ndim() == 0 {
            // b2nd's slice reader needs at least one dimension: a 0-d array
            // is its first item.
            let mut buf = Vec::new();
            self.schunk.decompress_chunk(0, &mut buf)?;
            let item = buf
                .get(..need)
                .ok_or_else(|| Error::Damaged("the chunk of a 0-d array holds no item".into()))?;
            out.copy_from_slice(item);
            return Ok(());
        }
        let (shape, chunks, blocks) = self.grid();
        if chunks.iter().chain(&blocks).any(|&c| c <= 0) {
            return Err(Error::Damaged(format!(
                "array with chunks {chunks:?} and blocks {blocks:?} cannot be read"
            )));
        }
        let geo = Geometry {
            shape: &shape,
            chunks: &chunks,
            blocks: &blocks,
            itemsize: self.itemsize(),
        };
        let sc = &self.schunk;
        sc.with_decompressor(|single| {
            boxread::read_box(&geo, start, stop, out, single, |n| sc.chunk(n))
        })
    }

    /// Shape, chunk shape and block shape, as the box reader takes them.
    fn grid(&self) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
        let chunks = self.chunks().into_iter().map(i64::from).collect();
        let blocks = self.blocks().into_iter().map(i64::from).collect();
        (self.shape(), chunks, blocks)
    }

    /// The box `[start, stop)` in C order, in a new buffer. Runs of whole chunks whose
    /// bytes are already in C order (frames of a stack) are decompressed straight into
    /// it; other boxes are read by [`NdArray::read_box`] into a zeroed one.
    pub fn read_box_vec(&self, start: &[i64], stop: &[i64]) -> Result<Vec<u8>> {
        let need = self.check_box(start, stop)?;
        let (shape, chunks, blocks) = self.grid();
        if need > 0 && self.ndim() > 0 && chunks.iter().chain(&blocks).all(|&c| c > 0) {
            let geo = Geometry {
                shape: &shape,
                chunks: &chunks,
                blocks: &blocks,
                itemsize: self.itemsize(),
            };
            let sc = &self.schunk;
            let direct = sc.with_decompressor(|single| {
                boxread::read_prefix_runs(&geo, start, stop, single, |n| sc.chunk(n))
            })?;
            if let Some(data) = direct.filter(|d| d.len() == need) {
                return Ok(data);
            }
        }
        let mut out = Vec::new();
        out.try_reserve_exact(need)
            .map_err(|_| Error::Invalid(format!("{need} bytes do not fit in memory")))?;
        out.resize(need, 0);
        self.read_box(start, stop, &mut out)?;
        Ok(out)
    }

    /// Writes `data` (C order) into the box `[start, stop)`.
    pub fn write_box(&mut self, start: &[i64], stop: &[i64], data: &[u8]) -> Result<()> {
        let need = self.check_box(start, stop)?;
        if data.len() != need {
            return Err(Error::Invalid(format!(
                "{} bytes for a box of {need}",
                data.len()
            )));
        }
        if need == 0 {
            return Ok(());
        }
        self.raw.write_box(start, stop, data)
    }

    /// Every item, in C order.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let shape = self.shape();
        let n: usize =
            shape.iter().map(|&d| d.max(0) as usize).product::<usize>() * self.itemsize();
        let mut out = vec![0u8; n];
        self.read_box(&vec![0; shape.len()], &shape, &mut out)?;
        Ok(out)
    }

    /// Grows or shrinks the array; new items are zero.
    pub fn resize(&mut self, new_shape: &[i64]) -> Result<()> {
        if new_shape.len() != self.ndim() || new_shape.iter().any(|&d| d < 0) {
            return Err(Error::Invalid(format!(
                "cannot resize shape {:?} to {new_shape:?}",
                self.shape()
            )));
        }
        self.raw.resize(new_shape)?;
        // Resizing may replace the super-chunk's internals; refresh the view.
        self.schunk = SChunk::wrap(RawSChunk::borrowed_from(&mut self.raw)?);
        Ok(())
    }

    /// The array serialised as a contiguous frame (with all metadata).
    pub fn to_cframe(&self) -> Result<Vec<u8>> {
        let mut frame = self.raw.to_cframe()?;
        crate::schunk::fix_frame_typesize(&mut frame, self.itemsize());
        Ok(frame)
    }

    /// Writes the array as a frame file (the serialised frame, written in
    /// one go; C-Blosc2's own `b2nd_save` loses item sizes above 255).
    pub fn save(&self, path: &Path) -> Result<()> {
        let frame = self.to_cframe()?;
        std::fs::write(path, frame).map_err(|source| Error::Io {
            op: "writing",
            path: path.to_path_buf(),
            source,
        })
    }
}
