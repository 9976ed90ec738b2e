//! Answers made of stored chunks copied as they are, without decompressing.

use cat2_blosc2::{ArraySpec, CParams};

use crate::error::Result;
use crate::selection::Selection;

/// A source whose compressed chunks can be copied into a result: its
/// geometry, dtype and the parameters its chunks were compressed with.
pub(crate) struct StoredChunks {
    pub shape: Vec<i64>,
    pub chunks: Vec<i64>,
    pub blocks: Vec<i64>,
    /// As stored in a b2nd metalayer.
    pub dtype: String,
    pub cparams: CParams,
}

/// The pass-through of stored chunks (see the module doc), for any source: `chunk(i)` gives the compressed chunk
/// at index `i` of the source's chunk grid (C order), or `None` when it
/// cannot be copied (the whole selection is then computed instead).
pub(crate) fn passthrough_with(
    source: &StoredChunks,
    sel: &Selection,
    chunk: &mut dyn FnMut(i64) -> Result<Option<Vec<u8>>>,
) -> Result<Option<Vec<u8>>> {
    let shape = source.shape.clone();
    let chunks = &source.chunks;
    let blocks = &source.blocks;
    if shape.is_empty() || sel.dims.len() != shape.len() || chunks.len() != shape.len() {
        return Ok(None);
    }
    let mut first_chunk = Vec::with_capacity(shape.len());
    for (d, s) in sel.dims.iter().enumerate() {
        let c = chunks[d];
        if c <= 0 {
            return Ok(None);
        }
        if !s.keep_dim {
            if c != 1 {
                return Ok(None);
            }
            first_chunk.push(s.start);
            continue;
        }
        let stop = s.start + s.count;
        if s.step != 1 || s.count == 0 || s.start % c != 0 || (stop != shape[d] && stop % c != 0) {
            return Ok(None);
        }
        first_chunk.push(s.start / c);
    }
    let out_shape = sel.out_shape();
    if out_shape.is_empty() {
        return Ok(None);
    }
    let kept: Vec<usize> = (0..shape.len()).filter(|&d| sel.dims[d].keep_dim).collect();
    let clamp = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let spec = ArraySpec {
        shape: out_shape.clone(),
        chunks: kept.iter().map(|&d| clamp(chunks[d])).collect(),
        blocks: kept.iter().map(|&d| clamp(blocks[d])).collect(),
        dtype: source.dtype.clone(),
        cparams: source.cparams.clone(),
        urlpath: None,
    };
    // Chunk grids (C order) of the source and of the result.
    let src_grid: Vec<i64> = shape
        .iter()
        .zip(chunks)
        .map(|(s, c)| (s + c - 1) / c)
        .collect();
    let out_grid: Vec<i64> = kept
        .iter()
        .map(|&d| (sel.dims[d].count + chunks[d] - 1) / chunks[d])
        .collect();
    let nout: i64 = out_grid.iter().product();
    let mut coord = vec![0i64; out_grid.len()];
    let mut picked = Vec::with_capacity(nout.max(0) as usize);
    for _ in 0..nout {
        let mut src_index = 0i64;
        let mut k = 0;
        for d in 0..shape.len() {
            let c = if sel.dims[d].keep_dim {
                let v = first_chunk[d] + coord[k];
                k += 1;
                v
            } else {
                first_chunk[d]
            };
            src_index = src_index * src_grid[d] + c;
        }
        match chunk(src_index)? {
            Some(c) => picked.push(c),
            None => return Ok(None),
        }
        for i in (0..coord.len()).rev() {
            coord[i] += 1;
            if coord[i] < out_grid[i] {
                break;
            }
            coord[i] = 0;
        }
    }
    Ok(Some(cat2_blosc2::ndarray_frame_from_chunks(
        &spec,
        &picked,
        &[],
    )?))
}
