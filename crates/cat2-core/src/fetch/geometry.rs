//! The chunk and block shapes of computed answers.

use crate::selection::Selection;

/// Chunk and block shapes for a result.
#[derive(Debug, Clone)]
pub struct Geometry {
    pub chunks: Vec<i64>,
    pub blocks: Vec<i64>,
}

/// Bytes a result chunk aims at: big enough to compress well, small enough to
/// stream.
const TARGET_CHUNK_BYTES: i64 = 8 << 20;

/// Bytes a block aims at: about what fits in a core's L2 cache.
const TARGET_BLOCK_BYTES: i64 = 256 << 10;

/// Halves the leading dimensions of `shape` until it holds at most `target` bytes.
fn shrink_to(shape: &[i64], itemsize: i64, target: i64) -> Vec<i64> {
    let mut s: Vec<i64> = shape.iter().map(|&d| d.max(1)).collect();
    loop {
        let bytes = s.iter().product::<i64>().saturating_mul(itemsize.max(1));
        if bytes <= target {
            break;
        }
        match s.iter_mut().find(|d| **d > 1) {
            Some(d) => *d = (*d + 1) / 2,
            None => break,
        }
    }
    s
}

/// Automatic geometry for a result of `shape`.
pub fn auto_geometry(shape: &[i64], itemsize: usize) -> Geometry {
    let chunks = shrink_to(shape, itemsize as i64, TARGET_CHUNK_BYTES);
    let blocks = shrink_to(&chunks, itemsize as i64, TARGET_BLOCK_BYTES);
    Geometry { chunks, blocks }
}

/// Makes a geometry valid for `shape`: chunks no bigger than the shape,
/// blocks no bigger than the chunks, nothing below 1 (0 for empty dims).
pub(crate) fn fit_geometry(
    shape: &[i64],
    itemsize: usize,
    g: Option<Geometry>,
) -> (Vec<i32>, Vec<i32>) {
    let g = match g {
        Some(g) if g.chunks.len() == shape.len() && g.blocks.len() == shape.len() => g,
        _ => auto_geometry(shape, itemsize),
    };
    let clamp = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let mut chunks = Vec::with_capacity(shape.len());
    let mut blocks = Vec::with_capacity(shape.len());
    let empty = shape.contains(&0);
    for ((&size, &gc), &gb) in shape.iter().zip(&g.chunks).zip(&g.blocks) {
        if empty {
            chunks.push(clamp(size));
            blocks.push(clamp(size));
            continue;
        }
        let c = gc.clamp(1, size.max(1));
        let b = gb.clamp(1, c);
        chunks.push(clamp(c));
        blocks.push(clamp(b));
    }
    (chunks, blocks)
}

/// The chunk and block shapes of a sliced result.
///
/// Result chunks are read one at a time, and each reads the source chunks it
/// overlaps, so the choice decides how often a source chunk is decompressed:
/// a result that fits one chunk is one chunk (each source chunk read once); a
/// selection that starts on the source's chunk grid keeps the source's chunk
/// and block sizes (one source chunk per result chunk, and it compresses like
/// the source); anything else is cut into slabs of about
/// [`TARGET_CHUNK_BYTES`] along the leading dimensions, so a source chunk is
/// read at most twice and usually once.
pub fn result_geometry(
    sel: &Selection,
    out_shape: &[i64],
    src_chunks: &[i64],
    src_blocks: &[i64],
    itemsize: usize,
) -> Geometry {
    let bytes = out_shape
        .iter()
        .product::<i64>()
        .saturating_mul(itemsize as i64);
    if bytes <= TARGET_CHUNK_BYTES {
        return auto_geometry(out_shape, itemsize);
    }
    let kept: Vec<usize> = (0..sel.dims.len())
        .filter(|&d| sel.dims[d].keep_dim)
        .collect();
    let aligned = kept.iter().all(|&d| {
        let s = sel.dims[d];
        s.step == 1 && src_chunks[d] > 0 && s.start % src_chunks[d] == 0
    });
    if aligned {
        Geometry {
            chunks: kept.iter().map(|&d| src_chunks[d]).collect(),
            blocks: kept.iter().map(|&d| src_blocks[d]).collect(),
        }
    } else {
        auto_geometry(out_shape, itemsize)
    }
}
