//! Reading a box of an n-dimensional array straight from its compressed
//! chunks, in parallel.
//!
//! Why not `b2nd_get_slice_cbuffer`: it decompresses one chunk at a time
//! through the array's single context, and through the bundled C-Blosc2's
//! own filter pipeline, which misreads some chunks python-blosc2 4.x writes
//! (see [`crate::Decompressor`]). Here the touched chunks are fetched in
//! storage order, decompressed on rayon's pool with one context per worker,
//! and their blocks scattered into the output.
//!
//! Layout of a decompressed b2nd chunk ("two-level partitioning"): the chunk
//! shape is padded up to a multiple of the block shape (the *extended* chunk);
//! its bytes are the blocks of that extended chunk in C order of the block
//! grid, each block's items in C order.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::Decompressor;

/// The geometry needed to place chunk bytes into a box.
pub(crate) struct Geometry<'a> {
    pub shape: &'a [i64],
    pub chunks: &'a [i64],
    pub blocks: &'a [i64],
    pub itemsize: usize,
}

/// Chunks decompressed together; bounds the memory held at once.
const BATCH: usize = 16;

impl Geometry<'_> {
    fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Items in one block, and blocks per extended chunk along each dimension.
    fn block_grid(&self) -> (usize, Vec<i64>) {
        let per_block = self.blocks.iter().product::<i64>().max(0) as usize;
        let grid = self
            .chunks
            .iter()
            .zip(self.blocks)
            .map(|(c, b)| (c + b - 1) / b.max(&1))
            .collect();
        (per_block, grid)
    }

    /// Indices (C order over the chunk grid) of every chunk touching the box.
    fn touched_chunks(&self, start: &[i64], stop: &[i64]) -> Vec<(i64, Vec<i64>)> {
        let nd = self.ndim();
        let grid: Vec<i64> = self
            .shape
            .iter()
            .zip(self.chunks)
            .map(|(s, c)| (s + c - 1) / c)
            .collect();
        let lo: Vec<i64> = (0..nd).map(|d| start[d] / self.chunks[d]).collect();
        let hi: Vec<i64> = (0..nd)
            .map(|d| (stop[d] - 1) / self.chunks[d] + 1)
            .collect();
        let mut out = Vec::new();
        let mut c = lo.clone();
        loop {
            let linear = (0..nd).fold(0i64, |acc, d| acc * grid[d] + c[d]);
            out.push((linear, c.clone()));
            let mut d = nd;
            loop {
                if d == 0 {
                    return out;
                }
                d -= 1;
                c[d] += 1;
                if c[d] < hi[d] {
                    break;
                }
                c[d] = lo[d];
            }
        }
    }

    /// When the touched chunks differ only along the first dimension, the range of box
    /// rows (first-dimension coordinates) each one holds, in the order of `touched`.
    fn rows_per_chunk(
        &self,
        touched: &[(i64, Vec<i64>)],
        start: &[i64],
        stop: &[i64],
    ) -> Option<Vec<(i64, i64)>> {
        let first = touched.first()?;
        if self.ndim() == 0 || touched.iter().any(|(_, c)| c[1..] != first.1[1..]) {
            return None;
        }
        Some(
            touched
                .iter()
                .map(|(_, c)| {
                    let lo = c[0] * self.chunks[0];
                    (lo.max(start[0]), (lo + self.chunks[0]).min(stop[0]))
                })
                .collect(),
        )
    }

    /// When every touched chunk's part of the box is a prefix of the chunk's decompressed
    /// bytes, and the parts follow each other in the box's C order, the bytes of each part.
    ///
    /// That holds when the chunks differ only along the first dimension, the box starts at
    /// a chunk boundary there and spans whole dimensions after it, and the chunk's block
    /// layout is plain C order of its extended shape with the part a C-order prefix of it
    /// (frames of a detector stack in blocks of whole rows, for one).
    fn prefix_bytes(
        &self,
        touched: &[(i64, Vec<i64>)],
        start: &[i64],
        stop: &[i64],
    ) -> Option<Vec<usize>> {
        let nd = self.ndim();
        if nd == 0 || self.chunks[0] <= 0 || start[0] % self.chunks[0] != 0 {
            return None;
        }
        if (1..nd).any(|d| start[d] != 0 || stop[d] != self.shape[d]) {
            return None;
        }
        let rows = self.rows_per_chunk(touched, start, stop)?;
        let ext: Vec<i64> = self
            .chunks
            .iter()
            .zip(self.blocks)
            .map(|(&c, &b)| (c + b - 1) / b.max(1) * b.max(1))
            .collect();
        // Block order is C order of the extended chunk when, past the first dimension
        // with several blocks, every dimension is one block, and before it every one is 1.
        let split = (0..nd).find(|&d| ext[d] > self.blocks[d]);
        if let Some(k) = split {
            if (0..k).any(|d| ext[d] != 1) || (k + 1..nd).any(|d| ext[d] != self.blocks[d]) {
                return None;
            }
        }
        rows.iter()
            .map(|&(r0, r1)| {
                // The part: (r1 - r0) rows, then the array's whole inner dimensions. It is a
                // C-order prefix of the extended chunk when every dimension after its first
                // one longer than 1 is whole.
                let part: Vec<i64> = std::iter::once(r1 - r0)
                    .chain(self.shape[1..].iter().copied())
                    .collect();
                let first = part.iter().position(|&e| e > 1).unwrap_or(nd - 1);
                if (first + 1..nd).any(|d| part[d] != ext[d]) || part[first] > ext[first] {
                    return None;
                }
                Some(part.iter().product::<i64>() as usize * self.itemsize)
            })
            .collect()
    }

    /// Indices of the blocks of chunk `coord` that hold part of the box.
    fn touched_blocks(&self, coord: &[i64], start: &[i64], stop: &[i64]) -> Vec<usize> {
        let nd = self.ndim();
        let (_, bgrid) = self.block_grid();
        let mut ranges = Vec::with_capacity(nd);
        for d in 0..nd {
            let origin = coord[d] * self.chunks[d];
            let end = (origin + self.chunks[d]).min(stop[d]);
            let (lo, hi) = (start[d].max(origin), end);
            if lo >= hi {
                return Vec::new();
            }
            let b = self.blocks[d].max(1);
            ranges.push(((lo - origin) / b, (hi - 1 - origin) / b + 1));
        }
        let mut out = Vec::new();
        let mut idx: Vec<i64> = ranges.iter().map(|r| r.0).collect();
        loop {
            let flat = (0..nd).fold(0i64, |acc, d| acc * bgrid[d] + idx[d]);
            out.push(flat as usize);
            let mut d = nd;
            loop {
                if d == 0 {
                    return out;
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < ranges[d].1 {
                    break;
                }
                idx[d] = ranges[d].0;
            }
        }
    }

    /// Copies the part of one decompressed chunk that lies in the box.
    fn scatter(
        &self,
        coord: &[i64],
        chunk: &[u8],
        start: &[i64],
        stop: &[i64],
        out: &mut [u8],
    ) -> Result<()> {
        let nd = self.ndim();
        let isz = self.itemsize;
        let (per_block, bgrid) = self.block_grid();
        let nblocks: i64 = bgrid.iter().product();
        if chunk.len() < nblocks as usize * per_block * isz {
            return Err(Error::Damaged(format!(
                "chunk holds {} bytes where its {nblocks} blocks need {}",
                chunk.len(),
                nblocks as usize * per_block * isz
            )));
        }
        let mut out_strides = vec![1i64; nd];
        let mut blk_strides = vec![1i64; nd];
        for d in (0..nd.saturating_sub(1)).rev() {
            out_strides[d] = out_strides[d + 1] * (stop[d + 1] - start[d + 1]);
            blk_strides[d] = blk_strides[d + 1] * self.blocks[d + 1];
        }
        let origin: Vec<i64> = (0..nd).map(|d| coord[d] * self.chunks[d]).collect();
        let mut b = vec![0i64; nd];
        for nb in 0..nblocks as usize {
            // This block's extent, clipped to the box (and so to the shape).
            let mut lo = vec![0i64; nd];
            let mut hi = vec![0i64; nd];
            let mut empty = false;
            for d in 0..nd {
                let b0 = origin[d] + b[d] * self.blocks[d];
                lo[d] = b0.max(start[d]);
                hi[d] = (b0 + self.blocks[d]).min(stop[d]);
                // Blocks of the padding beyond the chunk are never in the box.
                hi[d] = hi[d].min(origin[d] + self.chunks[d]);
                if lo[d] >= hi[d] {
                    empty = true;
                }
            }
            if !empty {
                let block = &chunk[nb * per_block * isz..(nb + 1) * per_block * isz];
                let row = (hi[nd - 1] - lo[nd - 1]) as usize * isz;
                let mut i = lo.clone();
                loop {
                    let mut src = 0i64;
                    let mut dst = 0i64;
                    for d in 0..nd {
                        let b0 = origin[d] + b[d] * self.blocks[d];
                        src += (i[d] - b0) * blk_strides[d];
                        dst += (i[d] - start[d]) * out_strides[d];
                    }
                    let (src, dst) = (src as usize * isz, dst as usize * isz);
                    out[dst..dst + row].copy_from_slice(&block[src..src + row]);
                    // Next row: odometer over all but the last dimension.
                    let mut d = nd - 1;
                    let more = loop {
                        if d == 0 {
                            break false;
                        }
                        d -= 1;
                        i[d] += 1;
                        if i[d] < hi[d] {
                            break true;
                        }
                        i[d] = lo[d];
                    };
                    if !more {
                        break;
                    }
                }
            }
            for d in (0..nd).rev() {
                b[d] += 1;
                if b[d] < bgrid[d] {
                    break;
                }
                b[d] = 0;
            }
        }
        Ok(())
    }
}

/// Reads `[start, stop)` into `out`; `fetch(n)` returns compressed chunk `n`.
pub(crate) fn read_box(
    geo: &Geometry<'_>,
    start: &[i64],
    stop: &[i64],
    out: &mut [u8],
    single: &mut Decompressor,
    mut fetch: impl FnMut(i64) -> Result<Vec<u8>>,
) -> Result<()> {
    let touched = geo.touched_chunks(start, stop);
    if touched.len() == 1 {
        let (n, coord) = &touched[0];
        let chunk = fetch(*n)?;
        // A small box of a big chunk: only the blocks it touches.
        let (per_block, bgrid) = geo.block_grid();
        let nblocks = bgrid.iter().product::<i64>().max(0) as usize;
        let blocks = geo.touched_blocks(coord, start, stop);
        if blocks.len() * 2 < nblocks {
            let block_bytes = per_block * geo.itemsize;
            let mut buf = vec![0u8; nblocks * block_bytes];
            let whole = single
                .decompress_blocks(&chunk, &blocks, block_bytes, &mut buf)
                .map_err(|e| e.in_chunk(*n))?;
            if whole {
                return geo.scatter(coord, &buf, start, stop, out);
            }
        }
        // Otherwise the whole chunk, its blocks split among the context's threads.
        let mut buf = Vec::new();
        single
            .decompress(&chunk, &mut buf)
            .map_err(|e| e.in_chunk(*n))?;
        return geo
            .scatter(coord, &buf, start, stop, out)
            .map_err(|e| e.in_chunk(*n));
    }
    if let Some(rows) = geo.rows_per_chunk(&touched, start, stop) {
        return read_rows(geo, &touched, &rows, start, stop, out, fetch);
    }
    for batch in touched.chunks(BATCH) {
        let compressed: Vec<Vec<u8>> = batch
            .iter()
            .map(|(n, _)| fetch(*n))
            .collect::<Result<_>>()?;
        let decompressed: Vec<Vec<u8>> = compressed
            .par_iter()
            .zip(batch)
            .map_init(
                || Decompressor::new(1),
                |ctx, (chunk, (n, _))| {
                    let ctx = ctx.as_mut().map_err(|e| Error::Invalid(e.to_string()))?;
                    let mut buf = Vec::new();
                    ctx.decompress(chunk, &mut buf)
                        .map_err(|e| e.in_chunk(*n))?;
                    Ok(buf)
                },
            )
            .collect::<Result<_>>()?;
        for ((n, coord), buf) in batch.iter().zip(&decompressed) {
            geo.scatter(coord, buf, start, stop, out)
                .map_err(|e| e.in_chunk(*n))?;
        }
    }
    Ok(())
}

/// The items of `[start, stop)` in a new buffer, when the box is a run of chunks whose
/// parts in it are each a prefix of the chunk's decompressed bytes (see
/// [`Geometry::prefix_bytes`]): each chunk is then decompressed straight onto the end of
/// the buffer (by `single`, whose threads split its blocks) and cut to its part, with no
/// zeroing, copying or scattering. `None` for other boxes.
pub(crate) fn read_prefix_runs(
    geo: &Geometry<'_>,
    start: &[i64],
    stop: &[i64],
    single: &mut Decompressor,
    mut fetch: impl FnMut(i64) -> Result<Vec<u8>>,
) -> Result<Option<Vec<u8>>> {
    let touched = geo.touched_chunks(start, stop);
    let Some(keep) = geo.prefix_bytes(&touched, start, stop) else {
        return Ok(None);
    };
    let total: usize = keep.iter().sum();
    // Room for the padding a chunk decompresses to past its part, so that no chunk
    // makes the buffer move.
    let (per_block, bgrid) = geo.block_grid();
    let chunk_bytes = bgrid.iter().product::<i64>().max(0) as usize * per_block * geo.itemsize;
    let mut out = Vec::new();
    out.try_reserve_exact(total + chunk_bytes)
        .map_err(|_| Error::Invalid(format!("{total} bytes do not fit in memory")))?;
    for ((n, _), &bytes) in touched.iter().zip(&keep) {
        let filled = out.len();
        single
            .decompress_append(&fetch(*n)?, &mut out)
            .map_err(|e| e.in_chunk(*n))?;
        if out.len() < filled + bytes {
            return Err(Error::Damaged(format!(
                "decompressed to {} bytes, fewer than the {bytes} of its part",
                out.len() - filled
            ))
            .in_chunk(*n));
        }
        out.truncate(filled + bytes);
    }
    Ok(Some(out))
}

/// [`read_box`] of a box whose touched chunks differ only along the first dimension
/// (a run of detector frames, say): each chunk's part of the box is then a contiguous
/// run of `out`, so the chunks are decompressed *and* placed in parallel, each worker
/// writing its own run. `rows[i]` is the first-dimension range of chunk `i`'s part.
fn read_rows(
    geo: &Geometry<'_>,
    touched: &[(i64, Vec<i64>)],
    rows: &[(i64, i64)],
    start: &[i64],
    stop: &[i64],
    out: &mut [u8],
    mut fetch: impl FnMut(i64) -> Result<Vec<u8>>,
) -> Result<()> {
    let row_bytes: usize = start[1..]
        .iter()
        .zip(&stop[1..])
        .map(|(a, b)| (b - a) as usize)
        .product::<usize>()
        * geo.itemsize;
    let mut rest = out;
    for (batch, batch_rows) in touched.chunks(BATCH).zip(rows.chunks(BATCH)) {
        let mut jobs = Vec::with_capacity(batch.len());
        for ((n, coord), &(r0, r1)) in batch.iter().zip(batch_rows) {
            let (piece, tail) =
                std::mem::take(&mut rest).split_at_mut((r1 - r0) as usize * row_bytes);
            rest = tail;
            jobs.push((*n, fetch(*n)?, coord, r0, r1, piece));
        }
        jobs.into_par_iter().try_for_each_init(
            || (Decompressor::new(1), Vec::new()),
            |(ctx, buf), (n, chunk, coord, r0, r1, piece)| {
                let ctx = ctx.as_mut().map_err(|e| Error::Invalid(e.to_string()))?;
                ctx.decompress(&chunk, buf).map_err(|e| e.in_chunk(n))?;
                let mut a = start.to_vec();
                let mut b = stop.to_vec();
                (a[0], b[0]) = (r0, r1);
                geo.scatter(coord, buf, &a, &b, piece)
                    .map_err(|e| e.in_chunk(n))
            },
        )?;
    }
    Ok(())
}
