//! Building the Blosc2 frames of computed answers, one result chunk at a
//! time: each is read (or computed) through a [`BoxReader`], laid out in
//! blocks and compressed, in parallel, so memory stays at a few chunks
//! whatever the size of the selection.

use std::sync::Mutex;

use cat2_blosc2::{ArraySpec, CParams, FrameAssembler, NdArray};

use super::frame_out::{FrameDest, FrameOut, MadeFrame};
use super::geometry::{fit_geometry, Geometry};
use super::output::FetchOutput;
use crate::budget::{bytes_of, dims_of, Budget};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::selection::{read_selection, BoxReader, Selection};

/// The items of the box `start..stop` (C order), laid out and compressed as
/// one chunk of geometry `chunks`/`blocks` with `cparams`.
pub(crate) fn compress_chunk(
    data: Vec<u8>,
    start: &[i64],
    stop: &[i64],
    chunks: &[i64],
    blocks: &[i64],
    itemsize: usize,
    cparams: CParams,
) -> Result<Vec<u8>> {
    let box_shape: Vec<i64> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
    let packed = cat2_blosc2::pack_chunk_owned(data, &box_shape, chunks, blocks, itemsize);
    compress_packed(&packed, blocks, itemsize, cparams)
}

/// Compresses a chunk already in block layout (see [`compress_chunk`]).
pub(crate) fn compress_packed(
    packed: &[u8],
    blocks: &[i64],
    itemsize: usize,
    mut cparams: CParams,
) -> Result<Vec<u8>> {
    cparams.typesize = cat2_blosc2::cparams::clamp_typesize(itemsize);
    cparams.blocksize = i32::try_from(blocks.iter().product::<i64>() * itemsize as i64)
        .map_err(|_| Error::BadRequest("a block of the chunk would exceed 2 GB".into()))?;
    cparams.nthreads = cat2_blosc2::cparams::default_nthreads();
    Ok(cat2_blosc2::Compressor::new(&cparams)?.compress(packed)?)
}

/// How computed answers are compressed: LZ4 over bit-shuffled items. The
/// client throws the compression away at once, so speed counts more than
/// ratio; on detector data bitshuffle + LZ4 compresses within ~15% of
/// ZSTD 1 + shuffle at several times its speed (bench/hdf5_proxy.py).
pub(crate) fn result_cparams(itemsize: usize) -> CParams {
    let mut cp = CParams::lz4_fast(itemsize);
    cp.clevel = 5;
    cp.filters = [0, 0, 0, 0, 0, cat2_blosc2::cparams::filter::BITSHUFFLE];
    cp
}

/// Result chunks read, laid out and compressed together: bounds the memory a
/// large selection holds to this many decompressed result chunks.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Opens a reader of the same data for one worker (see [`ChunkSource`]).
pub(crate) type OpenReader<'a> = dyn Fn() -> Result<Box<dyn BoxReader>> + Sync + 'a;

/// Where the result chunks of a frame are read from.
pub(crate) enum ChunkSource<'a> {
    /// One reader, read a result chunk after the other (its reads may be
    /// parallel inside); the chunks are compressed in parallel.
    Serial(&'a mut dyn BoxReader),
    /// A reader per worker thread, opened once by the worker: each worker
    /// takes the next result chunk, reads (or computes), lays out and
    /// compresses it start to end, with its own buffers and compressor, and
    /// no worker waits for another. For computed data (lazy expressions),
    /// where reading is decompression plus arithmetic, this keeps every core
    /// busy.
    Workers(&'a OpenReader<'a>),
}

/// Reads a selection into a new NDArray frame one result chunk at a time:
/// each chunk's items are read, laid out in blocks and compressed (in
/// parallel, a batch at a time), so memory stays at a few chunks whatever
/// the size of the selection (an answer larger than the request's memory is
/// spilled, see [`super::frame_out`]).
pub(crate) fn frame_from_selection(
    reader: &mut dyn BoxReader,
    sel: &Selection,
    dtype: &DType,
    geometry: Geometry,
    budget: &Budget,
) -> Result<FetchOutput> {
    let cparams = result_cparams(dtype.itemsize());
    frame_from_chunks(
        ChunkSource::Serial(reader),
        sel,
        dtype,
        geometry,
        &cparams,
        budget,
    )
}

/// The result chunks of a selection, in the chunk grid of its frame.
struct ResultGrid<'s> {
    sel: &'s Selection,
    out_shape: Vec<i64>,
    chunks: Vec<i64>,
    blocks: Vec<i64>,
    itemsize: usize,
    /// The selection's dimensions that the result keeps.
    kept: Vec<usize>,
    grid: Vec<i64>,
    cparams: CParams,
    budget: &'s Budget,
    /// Where the compressed chunks go as they are made.
    out: Mutex<FrameOut>,
    /// Result chunks worked on at once.
    in_flight: usize,
}

impl ResultGrid<'_> {
    fn nchunks(&self) -> i64 {
        self.grid.iter().product()
    }

    /// Gives compressed result chunk `n` to the frame, and stops when the
    /// request is cancelled or out of time.
    fn made(&self, n: i64, compressed: Vec<u8>) -> Result<()> {
        self.budget.check()?;
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        out.put(n as usize, compressed, &|| {
            format!(
                "the answer (shape {:?}, compressed as it is made)",
                self.out_shape
            )
        })
    }

    /// Result chunk `n` as a selection of the source, with its shape.
    fn chunk_selection(&self, n: i64) -> (Selection, Vec<i64>) {
        let mut coord = vec![0i64; self.grid.len()];
        let mut rest = n;
        for (c, &g) in coord.iter_mut().zip(&self.grid).rev() {
            *c = rest % g;
            rest /= g;
        }
        let mut sub = self.sel.clone();
        let mut box_shape = Vec::with_capacity(self.kept.len());
        for (k, &d) in self.kept.iter().enumerate() {
            let o0 = coord[k] * self.chunks[k];
            let o1 = (o0 + self.chunks[k]).min(self.out_shape[k]);
            let src = self.sel.dims[d];
            sub.dims[d].start = src.start + o0 * src.step;
            sub.dims[d].count = o1 - o0;
            box_shape.push(o1 - o0);
        }
        (sub, box_shape)
    }

    /// Whether `reader` makes the result chunks itself, already in block layout: the
    /// whole of it is selected and its chunk grid and blocks are the result's.
    fn native_from(&self, reader: &dyn BoxReader) -> bool {
        self.sel.is_full(reader.shape())
            && reader.chunk_shape() == self.chunks.as_slice()
            && reader.native_blocks() == Some(self.blocks.as_slice())
    }

    /// Result chunk `n` read through `reader`, compressed.
    fn compressed_chunk(
        &self,
        reader: &mut dyn BoxReader,
        native: bool,
        compressor: &mut cat2_blosc2::Compressor,
        scratch: &mut Vec<u8>,
        n: i64,
    ) -> Result<Vec<u8>> {
        if native {
            reader.read_native_chunk(n, scratch)?;
            return Ok(compressor.compress(scratch)?);
        }
        let (sub, box_shape) = self.chunk_selection(n);
        let packed = self.pack(read_selection(reader, &sub)?, &box_shape);
        Ok(compressor.compress(&packed)?)
    }

    fn pack(&self, data: Vec<u8>, box_shape: &[i64]) -> Vec<u8> {
        cat2_blosc2::pack_chunk_owned(data, box_shape, &self.chunks, &self.blocks, self.itemsize)
    }

    fn compressor(&self) -> Result<cat2_blosc2::Compressor> {
        cat2_blosc2::Compressor::new(&self.cparams)
            .map_err(|e| Error::BadRequest(format!("compressor: {e}")))
    }
}

/// [`frame_from_selection`] from any [`ChunkSource`].
pub(crate) fn frame_from_chunks(
    source: ChunkSource<'_>,
    sel: &Selection,
    dtype: &DType,
    geometry: Geometry,
    cparams: &CParams,
    budget: &Budget,
) -> Result<FetchOutput> {
    match write_frame(
        source,
        sel,
        dtype,
        geometry,
        cparams,
        budget,
        FrameDest::Memory,
    )? {
        MadeFrame::Bytes(frame) => Ok(FetchOutput::Frame(frame)),
        MadeFrame::Spilled(frame) => Ok(FetchOutput::Spilled(frame)),
        MadeFrame::Written => Err(Error::BadRequest(
            "an answer made in memory was written to storage".into(),
        )),
    }
}

/// The frame of a selection read from any [`ChunkSource`], made into
/// `dest` one result chunk at a time (see [`FrameDest`]).
pub(crate) fn write_frame(
    mut source: ChunkSource<'_>,
    sel: &Selection,
    dtype: &DType,
    geometry: Geometry,
    cparams: &CParams,
    budget: &Budget,
    dest: FrameDest,
) -> Result<MadeFrame> {
    let out_shape = sel.out_shape();
    let itemsize = dtype.itemsize();
    if out_shape.is_empty() || out_shape.contains(&0) || itemsize == 0 {
        // Nothing, or one item: no chunk to hold.
        let data = match &mut source {
            ChunkSource::Serial(reader) => read_selection(*reader, sel)?,
            ChunkSource::Workers(open) => read_selection(&mut *open()?, sel)?,
        };
        return dest.store_whole(build_array_frame(&data, &out_shape, dtype, Some(geometry))?);
    }
    let (chunks, blocks) = fit_geometry(&out_shape, itemsize, Some(geometry));
    let chunks64: Vec<i64> = chunks.iter().map(|&c| i64::from(c)).collect();
    let blocks64: Vec<i64> = blocks.iter().map(|&b| i64::from(b)).collect();
    let mut cparams = CParams {
        typesize: cat2_blosc2::cparams::clamp_typesize(itemsize),
        nthreads: cat2_blosc2::cparams::default_nthreads(),
        ..cparams.clone()
    };
    cparams.blocksize = i32::try_from(blocks64.iter().product::<i64>() * itemsize as i64)
        .map_err(|_| Error::BadRequest("a block of the result would exceed 2 GB".into()))?;
    let grid: Vec<i64> = out_shape
        .iter()
        .zip(&chunks64)
        .map(|(s, c)| (s + c - 1) / c)
        .collect();
    // A chunk in flight is held twice (laid out, then compressed): fewer
    // are in flight when the budget is small, and none fitting is refused
    // up front.
    let chunk_bytes = bytes_of(dims_of(&chunks64), itemsize as u64).max(1);
    let wanted = match source {
        ChunkSource::Serial(_) => CHUNKS_IN_FLIGHT,
        ChunkSource::Workers(_) => rayon::current_num_threads().max(1),
    } as u64;
    let affordable = budget.memory_limit() / (2 * chunk_bytes).max(1);
    let in_flight = wanted.min(affordable).max(1);
    let working = budget.reserve(2 * chunk_bytes * in_flight, &|| {
        format!(
            "computing the answer (shape {out_shape:?}) in chunks of {chunks:?} items, {in_flight} at a time,"
        )
    })?;
    let spec = ArraySpec {
        shape: out_shape.clone(),
        chunks,
        blocks,
        dtype: dtype.descr_str(),
        cparams,
        urlpath: None,
    };
    let assembler = FrameAssembler::new(&spec, &[])?;
    let mut rg = ResultGrid {
        sel,
        kept: (0..sel.dims.len())
            .filter(|&d| sel.dims[d].keep_dim)
            .collect(),
        out_shape,
        chunks: chunks64,
        blocks: blocks64,
        itemsize,
        grid,
        cparams: spec.cparams,
        budget,
        out: Mutex::new(FrameOut::new(assembler, dest, budget)),
        in_flight: in_flight as usize,
    };
    if rg.nchunks() > 1 {
        // Parallelism comes from working on several chunks at once.
        rg.cparams.nthreads = 1;
    }
    match source {
        ChunkSource::Serial(reader) => serial_chunks(&rg, reader)?,
        ChunkSource::Workers(open) => worker_chunks(&rg, open)?,
    };
    drop(working);
    let out = rg
        .out
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    out.finish(budget, &|| {
        format!("the answer's frame (shape {:?})", rg.out_shape)
    })
}

/// The result chunks of one reader, read a batch at a time, compressed in
/// parallel and given to the frame in order.
fn serial_chunks(rg: &ResultGrid<'_>, reader: &mut dyn BoxReader) -> Result<()> {
    use rayon::prelude::*;

    let nchunks = rg.nchunks();
    let native = rg.native_from(reader);
    let mut batch = Vec::with_capacity(rg.in_flight);
    let mut first = 0;
    for n in 0..nchunks {
        batch.push(if native {
            let mut chunk = Vec::new();
            reader.read_native_chunk(n, &mut chunk)?;
            chunk
        } else {
            let (sub, box_shape) = rg.chunk_selection(n);
            rg.pack(read_selection(reader, &sub)?, &box_shape)
        });
        if batch.len() < rg.in_flight && n + 1 < nchunks {
            continue;
        }
        let done: Vec<Vec<u8>> = batch
            .par_iter()
            .map(|packed| Ok(rg.compressor()?.compress(packed)?))
            .collect::<Result<_>>()?;
        for (chunk, k) in done.into_iter().zip(first..) {
            rg.made(k, chunk)?;
        }
        batch.clear();
        first = n + 1;
    }
    Ok(())
}

/// The result chunks made by one worker per thread, each with a reader of
/// its own, taking chunks from a shared counter and giving them to the
/// frame as they are done.
fn worker_chunks(rg: &ResultGrid<'_>, open: &OpenReader<'_>) -> Result<()> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    let nchunks = rg.nchunks();
    let next = AtomicI64::new(0);
    let failed = AtomicBool::new(false);
    let workers = rg.in_flight.clamp(1, nchunks as usize);
    (0..workers).into_par_iter().try_for_each(|_| {
        let work = || -> Result<()> {
            let mut reader = open()?;
            let native = rg.native_from(&*reader);
            let mut compressor = rg.compressor()?;
            let mut scratch = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= nchunks || failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let chunk =
                    rg.compressed_chunk(&mut *reader, native, &mut compressor, &mut scratch, n)?;
                rg.made(n, chunk)?;
            }
        };
        work().inspect_err(|_| failed.store(true, Ordering::Relaxed))
    })
}

/// Compresses C-ordered items into an NDArray frame.
pub(crate) fn build_array_frame(
    data: &[u8],
    shape: &[i64],
    dtype: &DType,
    geometry: Option<Geometry>,
) -> Result<Vec<u8>> {
    let itemsize = dtype.itemsize();
    let (chunks, blocks) = fit_geometry(shape, itemsize, geometry);
    let spec = ArraySpec {
        shape: shape.to_vec(),
        chunks,
        blocks,
        dtype: dtype.descr_str(),
        cparams: CParams::zstd_shuffle(itemsize),
        urlpath: None,
    };
    let arr = NdArray::from_buffer(&spec, data)?;
    Ok(arr.to_cframe()?)
}
