//! Arithmetic of chunk grids: how many chunks cover a shape, which items a
//! chunk holds, which chunk holds an item. Chunks are numbered in C order of
//! the grid, as Blosc2 stores them.

/// Chunks in the grid of `chunks` over `shape` (1 for a 0-d array).
pub(crate) fn chunk_count(shape: &[i64], chunks: &[i64]) -> i64 {
    shape
        .iter()
        .zip(chunks)
        .map(|(&s, &c)| if c > 0 { (s + c - 1) / c } else { 0 })
        .product()
}

/// The box of items of chunk `index` (C order of the chunk grid).
pub(crate) fn chunk_box(shape: &[i64], chunks: &[i64], index: i64) -> (Vec<i64>, Vec<i64>) {
    let mut start = vec![0i64; shape.len()];
    let mut rest = index;
    for d in (0..shape.len()).rev() {
        let c = chunks[d].max(1);
        let g = ((shape[d] + c - 1) / c).max(1);
        start[d] = (rest % g) * c;
        rest /= g;
    }
    let stop = (0..shape.len())
        .map(|d| (start[d] + chunks[d]).min(shape[d]))
        .collect();
    (start, stop)
}

/// The index (C order of the chunk grid) of the chunk holding item `at`.
pub(crate) fn chunk_index(shape: &[i64], chunks: &[i64], at: &[i64]) -> i64 {
    let mut index = 0i64;
    for ((&s, &c), &a) in shape.iter().zip(chunks).zip(at) {
        let c = c.max(1);
        index = index * ((s + c - 1) / c).max(1) + a / c;
    }
    index
}
