//! Streaming an input box through a kernel, slab by slab.
//!
//! A reduction never holds its whole input: the input box (the output box on kept
//! dimensions, everything on reduced ones) is read in *slabs* of at most a bounded number
//! of items, each split off along the outermost dimension that makes it small enough, in C
//! order. A slab's outputs are a contiguous run of the output box's accumulators (its kept
//! coordinates are a fixed prefix, one range, then full dimensions), so each slab is a
//! self-contained problem: reduce a C-order buffer into a C-order run of accumulators.
//!
//! Within a slab, dimensions of size 1 are dropped and neighbouring dimensions of the same
//! kind (kept or reduced) merged, leaving an innermost group and outer groups. When the
//! innermost group is kept, every input row adds element-wise into a row of accumulators
//! (in tiles, so that a tile of accumulators stays in cache while all the rows that reduce
//! into it go by); when it is reduced, every input row folds into one accumulator. Large
//! slabs are worked on in parallel: by rows of outputs, or, when there are few outputs, by
//! pieces of each output's reduced items, merged in order.

use rayon::prelude::*;

use super::kernels::{Kernel, Rows};
use crate::error::Result;
use crate::{Plan, ReadOperand};

/// Bytes per slab read from the input (at most `SLAB_ITEMS` items): big enough that the
/// accumulators, revisited once per slab, cost little next to the input.
pub(crate) const SLAB_BYTES: usize = 16 << 20;
/// Most items per slab.
pub(crate) const SLAB_ITEMS: usize = 8 << 20;

#[cfg(test)]
thread_local! {
    /// Slab size (items) of operations built on this thread, if not 0: tests exercise many
    /// small slabs.
    pub(crate) static TEST_SLAB: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Items per slab for a new operation reading items of `itemsize` bytes.
pub(crate) fn slab_items(itemsize: usize) -> usize {
    #[cfg(test)]
    if TEST_SLAB.with(std::cell::Cell::get) > 0 {
        return TEST_SLAB.with(std::cell::Cell::get);
    }
    (SLAB_BYTES / itemsize.max(1)).min(SLAB_ITEMS)
}

/// Accumulators per tile when the innermost dimension is kept.
const TILE: usize = 4096;
/// Slabs with fewer items are reduced on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;
/// Items per parallel piece of one output's reduction.
const PIECE: usize = 1 << 16;

/// The slabs of the box `start..stop` (not empty), in C order, each at most `limit` items
/// (at least one item).
pub(crate) fn slabs(start: &[usize], stop: &[usize], limit: usize) -> Slabs {
    let nd = start.len();
    let ext: Vec<usize> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
    let limit = limit.max(1);
    // The outermost dimension `d` whose inner dimensions fit in a slab.
    let mut inner = 1usize;
    let mut d = nd;
    while d > 0 && inner.saturating_mul(ext[d - 1]) <= limit {
        inner *= ext[d - 1];
        d -= 1;
    }
    // Dimensions >= d fit whole; split along d - 1 (if any) in steps of `limit / inner`.
    let (split, step) = if d == 0 {
        (None, 0)
    } else {
        (Some(d - 1), (limit / inner).max(1))
    };
    Slabs {
        start: start.to_vec(),
        stop: stop.to_vec(),
        split,
        step,
        next: Some(start.to_vec()),
    }
}

/// Iterator over slabs: `(start, stop)` boxes.
pub(crate) struct Slabs {
    start: Vec<usize>,
    stop: Vec<usize>,
    split: Option<usize>,
    step: usize,
    /// The start of the next slab.
    next: Option<Vec<usize>>,
}

impl Iterator for Slabs {
    type Item = (Vec<usize>, Vec<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let cur = self.next.take()?;
        if self.start.iter().zip(&self.stop).any(|(a, b)| a >= b) {
            return None;
        }
        let Some(d) = self.split else {
            return Some((cur, self.stop.clone()));
        };
        let mut stop = cur.clone();
        for k in 0..d {
            stop[k] = cur[k] + 1;
        }
        stop[d] = (cur[d] + self.step).min(self.stop[d]);
        stop[d + 1..].copy_from_slice(&self.stop[d + 1..]);
        // Advance: along d, then an odometer over the dimensions before it.
        let mut next = cur.clone();
        next[d] = stop[d];
        let mut k = d;
        while next[k] >= self.stop[k] {
            next[k] = self.start[k];
            if k == 0 {
                return Some((cur, stop));
            }
            k -= 1;
            next[k] += 1;
        }
        self.next = Some(next);
        Some((cur, stop))
    }
}

/// A slab's dimensions, simplified: an innermost group and the outer groups' offsets.
#[derive(Debug)]
pub(crate) struct Layout {
    /// Items in the innermost group.
    pub(crate) inner: usize,
    /// Whether the innermost group is reduced.
    pub(crate) inner_reduced: bool,
    /// Input offsets (items) of the outer kept coordinates, in C order.
    pub(crate) kept: Vec<usize>,
    /// Input offsets of the outer reduced coordinates, in C order.
    pub(crate) reduced: Vec<usize>,
}

impl Layout {
    /// The layout of a C-order buffer of `extents` where `reduced[d]` marks reduced
    /// dimensions.
    pub(crate) fn new(extents: &[usize], reduced: &[bool]) -> Layout {
        // Groups of (extent, reduced, stride of their last dimension), outermost first.
        let mut groups: Vec<(usize, bool, usize)> = Vec::new();
        let mut stride = 1usize;
        for d in (0..extents.len()).rev() {
            let e = extents[d];
            if e != 1 {
                match groups.last_mut() {
                    Some(g) if g.1 == reduced[d] => g.0 *= e,
                    _ => groups.push((e, reduced[d], stride)),
                }
            }
            stride *= e;
        }
        groups.reverse();
        let (inner, inner_reduced) = match groups.pop() {
            Some((e, r, _)) => (e, r),
            None => (1, true),
        };
        let offsets = |want: bool| {
            let mut offs = vec![0usize];
            for &(e, _, s) in groups.iter().filter(|g| g.1 == want) {
                offs = offs
                    .iter()
                    .flat_map(|&o| (0..e).map(move |i| o + i * s))
                    .collect();
            }
            offs
        };
        Layout {
            inner,
            inner_reduced,
            kept: offsets(false),
            reduced: offsets(true),
        }
    }

    /// Accumulators the slab writes.
    pub(crate) fn outputs(&self) -> usize {
        self.kept.len() * if self.inner_reduced { 1 } else { self.inner }
    }
}

/// Reduces the slab `data` (items of `itemsize` bytes, laid out as `lay`) into `acc` (the
/// slab's accumulators, C order); `idx` is the flat reduced position of the slab's first
/// reduced item.
pub(crate) fn run<K: Kernel>(
    k: &K,
    lay: &Layout,
    data: &[u8],
    itemsize: usize,
    acc: &mut [K::Acc],
    idx: usize,
) {
    debug_assert_eq!(acc.len(), lay.outputs());
    let l = lay.inner;
    let parallel = data.len() / itemsize >= PARALLEL_MIN;
    if lay.inner_reduced {
        let per_output = lay.reduced.len() * l;
        let fold_output = |o: usize, a: &mut K::Acc| {
            let rows = Rows {
                data,
                itemsize,
                base: lay.kept[o],
                offsets: &lay.reduced,
                len: l,
                idx,
                step: l,
            };
            k.fold_rows(a, &rows);
        };
        if !parallel {
            for (o, a) in acc.iter_mut().enumerate() {
                fold_output(o, a);
            }
        } else if acc.len() >= rayon::current_num_threads() * 4 || per_output < 2 * PIECE {
            let group = (TILE / per_output).max(1);
            acc.par_chunks_mut(group).enumerate().for_each(|(g, accs)| {
                for (j, a) in accs.iter_mut().enumerate() {
                    fold_output(g * group + j, a);
                }
            });
        } else {
            // Few outputs with many items each: pieces of each output's items in
            // parallel, merged in order.
            for (o, a) in acc.iter_mut().enumerate() {
                let base = lay.kept[o];
                let pieces: Vec<K::Acc> = (0..per_output.div_ceil(PIECE))
                    .into_par_iter()
                    .map(|p| {
                        let mut part = k.fresh(a);
                        let (mut q, hi) = (p * PIECE, ((p + 1) * PIECE).min(per_output));
                        while q < hi {
                            let (r, j) = (q / l, q % l);
                            let n = (l - j).min(hi - q);
                            let s = (base + lay.reduced[r] + j) * itemsize;
                            k.fold(&mut part, &data[s..s + n * itemsize], idx + q);
                            q += n;
                        }
                        part
                    })
                    .collect();
                for part in pieces {
                    k.merge(a, part);
                }
            }
        }
    } else {
        let tile_rows = |o: usize, t0: usize, accs: &mut [K::Acc]| {
            let rows = Rows {
                data,
                itemsize,
                base: lay.kept[o] + t0,
                offsets: &lay.reduced,
                len: accs.len(),
                idx,
                step: 1,
            };
            k.accumulate_rows(accs, &rows);
        };
        if !parallel {
            for (o, row) in acc.chunks_mut(l).enumerate() {
                for (t, accs) in row.chunks_mut(TILE).enumerate() {
                    tile_rows(o, t * TILE, accs);
                }
            }
        } else if l >= TILE {
            acc.par_chunks_mut(l).enumerate().for_each(|(o, row)| {
                row.par_chunks_mut(TILE)
                    .enumerate()
                    .for_each(|(t, accs)| tile_rows(o, t * TILE, accs));
            });
        } else {
            let rows = TILE / l;
            acc.par_chunks_mut(rows * l)
                .enumerate()
                .for_each(|(g, accs)| {
                    for (j, row) in accs.chunks_mut(l).enumerate() {
                        tile_rows(g * rows + j, 0, row);
                    }
                });
        }
    }
}

/// Where a slab's accumulators start in the output box's (C order over the box's kept
/// dimensions), and the flat reduced position of its first reduced item.
pub(crate) fn slab_offsets(
    box_start: &[usize],
    box_stop: &[usize],
    slab_start: &[usize],
    reduced: &[bool],
) -> (usize, usize) {
    let (mut out, mut red) = (0usize, 0usize);
    for d in 0..box_start.len() {
        let (e, i) = (box_stop[d] - box_start[d], slab_start[d] - box_start[d]);
        if reduced[d] {
            red = red * e + i;
        } else {
            out = out * e + i;
        }
    }
    (out, red)
}

/// Streams the box `start..stop` of `input` slab by slab: `f(data, layout, accumulator
/// range, reduced position)` for each, in C order.
pub(crate) fn for_each_slab(
    input: &Plan,
    start: &[usize],
    stop: &[usize],
    reduced: &[bool],
    limit: usize,
    read: &mut ReadOperand<'_>,
    mut f: impl FnMut(&[u8], &Layout, std::ops::Range<usize>, usize) -> Result<()>,
) -> Result<()> {
    if start.iter().zip(stop).any(|(a, b)| a >= b) {
        return Ok(());
    }
    for (s0, s1) in slabs(start, stop, limit) {
        let data = input.eval_box(&s0, &s1, read)?;
        let ext: Vec<usize> = s0.iter().zip(&s1).map(|(a, b)| b - a).collect();
        let lay = Layout::new(&ext, reduced);
        let (out, idx) = slab_offsets(start, stop, &s0, reduced);
        f(&data, &lay, out..out + lay.outputs(), idx)?;
    }
    Ok(())
}
