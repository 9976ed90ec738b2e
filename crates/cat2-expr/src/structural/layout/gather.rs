//! Strided copies: the items at `first + Σ_k o_k·strides[k]` of a buffer, for `o` over a
//! box in C order.
//!
//! Unit-stride rows are copied whole. Otherwise, when some outer axis walks the input more
//! locally than the last one (a transpose), the two axes are copied in square tiles so
//! that both the reads and the writes stay in cache; only when no axis helps are items
//! picked one by one. Large outputs are cut along the first axis and filled in parallel.

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Items per parallel task (and the size from which copies go parallel).
const TASK: usize = 1 << 16;
/// Tile side, in items.
const TILE: usize = 32;

/// The gathered items, as bytes (`itemsize` bytes each).
pub(crate) fn gather(
    buf: &[u8],
    itemsize: usize,
    first: i64,
    strides: &[i64],
    extents: &[usize],
) -> Result<Vec<u8>> {
    match itemsize {
        1 => Ok(gather_n::<1>(buf, first, strides, extents)),
        2 => Ok(gather_n::<2>(buf, first, strides, extents)),
        4 => Ok(gather_n::<4>(buf, first, strides, extents)),
        8 => Ok(gather_n::<8>(buf, first, strides, extents)),
        16 => Ok(gather_n::<16>(buf, first, strides, extents)),
        _ => Err(Error::Internal(format!(
            "no copy loop for {itemsize}-byte items"
        ))),
    }
}

fn gather_n<const N: usize>(buf: &[u8], first: i64, strides: &[i64], extents: &[usize]) -> Vec<u8> {
    let total: usize = extents.iter().product();
    let mut out = vec![0u8; total * N];
    if total == 0 {
        return out;
    }
    if extents.is_empty() {
        out.copy_from_slice(&buf[first as usize * N..first as usize * N + N]);
        return out;
    }
    if total < TASK {
        fill::<N>(buf, first, strides, extents, &mut out);
        return out;
    }
    // Blocks of the first axis: whole tiles when it is the tiled axis, and at least a
    // task's worth of items each.
    let row: usize = extents[1..].iter().product();
    let tiled_first = tile_axis(strides, extents) == Some(0);
    let mut block = (TASK / row.max(1)).max(1);
    if tiled_first {
        block = block.div_ceil(TILE) * TILE;
    }
    out.par_chunks_mut(block * row * N)
        .enumerate()
        .for_each(|(b, dst)| {
            let mut ext = extents.to_vec();
            ext[0] = dst.len() / (row * N);
            let at = first + (b * block) as i64 * strides[0];
            fill::<N>(buf, at, strides, &ext, dst);
        });
    out
}

/// The outer axis to tile with the last one: the one with the smallest input stride, if
/// that is smaller than the last axis's (and the last axis is not unit-stride).
fn tile_axis(strides: &[i64], extents: &[usize]) -> Option<usize> {
    let last = extents.len().checked_sub(1)?;
    if strides[last] == 1 || extents[last] < 2 {
        return None;
    }
    (0..last)
        .filter(|&d| extents[d] > 1)
        .min_by_key(|&d| strides[d].unsigned_abs())
        .filter(|&d| strides[d].unsigned_abs() < strides[last].unsigned_abs())
}

/// The serial copy into `dst` (exactly the box's items).
fn fill<const N: usize>(
    buf: &[u8],
    first: i64,
    strides: &[i64],
    extents: &[usize],
    dst: &mut [u8],
) {
    let last = extents.len() - 1;
    let n = extents[last];
    let step = strides[last];
    let item = |at: i64| -> &[u8] {
        let at = at as usize * N;
        &buf[at..at + N]
    };
    if let Some(p) = tile_axis(strides, extents) {
        // C-order output strides (items), and the odometer over the other axes.
        let mut ostride = vec![1usize; extents.len()];
        for d in (0..last).rev() {
            ostride[d] = ostride[d + 1] * extents[d + 1];
        }
        let others: Vec<usize> = (0..last).filter(|&d| d != p).collect();
        let mut idx = vec![0usize; extents.len()];
        loop {
            let src: i64 = first
                + others
                    .iter()
                    .map(|&d| idx[d] as i64 * strides[d])
                    .sum::<i64>();
            let out: usize = others.iter().map(|&d| idx[d] * ostride[d]).sum();
            for i0 in (0..extents[p]).step_by(TILE) {
                for j0 in (0..n).step_by(TILE) {
                    for i in i0..(i0 + TILE).min(extents[p]) {
                        let s = src + i as i64 * strides[p];
                        let o = (out + i * ostride[p]) * N;
                        for j in j0..(j0 + TILE).min(n) {
                            dst[o + j * N..o + j * N + N]
                                .copy_from_slice(item(s + j as i64 * step));
                        }
                    }
                }
            }
            if !advance(&others, &mut idx, extents) {
                return;
            }
        }
    }
    // Row by row: whole rows when unit-stride, items otherwise.
    let outer: Vec<usize> = (0..last).collect();
    let mut idx = vec![0usize; extents.len()];
    let mut rows = dst.chunks_exact_mut(n * N);
    loop {
        let src: i64 = first
            + outer
                .iter()
                .map(|&d| idx[d] as i64 * strides[d])
                .sum::<i64>();
        let Some(row) = rows.next() else { return };
        if step == 1 {
            let at = src as usize * N;
            row.copy_from_slice(&buf[at..at + n * N]);
        } else {
            for (j, o) in row.chunks_exact_mut(N).enumerate() {
                o.copy_from_slice(item(src + j as i64 * step));
            }
        }
        if !advance(&outer, &mut idx, extents) {
            return;
        }
    }
}

/// The next index over `axes` (C order); false after the last.
fn advance(axes: &[usize], idx: &mut [usize], extents: &[usize]) -> bool {
    for &d in axes.iter().rev() {
        idx[d] += 1;
        if idx[d] < extents[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gather done item by item.
    fn naive(buf: &[u32], first: i64, strides: &[i64], extents: &[usize]) -> Vec<u32> {
        let total: usize = extents.iter().product();
        let mut out = Vec::new();
        let mut idx = vec![0usize; extents.len()];
        for _ in 0..total {
            let at = first
                + idx
                    .iter()
                    .zip(strides)
                    .map(|(&i, s)| i as i64 * s)
                    .sum::<i64>();
            out.push(buf[at as usize]);
            let all: Vec<usize> = (0..extents.len()).collect();
            advance(&all, &mut idx, extents);
        }
        out
    }

    fn check(first: i64, strides: &[i64], extents: &[usize], len: usize) {
        let buf: Vec<u32> = (0..len as u32).collect();
        let bytes: Vec<u8> = buf.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let got: Vec<u32> = gather(&bytes, 4, first, strides, extents)
            .expect("gathers")
            .chunks_exact(4)
            .map(|c| u32::from_ne_bytes(c.try_into().expect("4")))
            .collect();
        assert_eq!(
            got,
            naive(&buf, first, strides, extents),
            "{strides:?} {extents:?}"
        );
    }

    #[test]
    fn tiles_rows_and_items_agree_with_item_by_item() {
        // A transpose of 70 × 90 (tiled, with partial tiles).
        check(0, &[1, 70], &[70, 90], 6300);
        // Reversed 3-D transpose, tiled on the first axis, large enough to go parallel.
        check(0, &[1, 50, 2500], &[50, 50, 40], 100_000);
        // Tiled on a middle axis, with a reversed last axis.
        check(39 * 2500, &[50, 1, -2500], &[50, 50, 40], 100_000);
        // Unit-stride rows, parallel.
        check(5, &[400, 1], &[300, 390], 120_005);
        // Strided items with no better axis.
        check(0, &[7, 3], &[4, 2], 28);
        // 0-d and 1-d.
        check(3, &[], &[], 4);
        check(9, &[-1], &[10], 10);
    }
}
