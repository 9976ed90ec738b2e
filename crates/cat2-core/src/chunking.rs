//! Chunk and block shapes of a proxy, chosen as python-blosc2 4.14 chooses
//! them when the reference server creates one (`compute_chunks_blocks`).
//!
//! python-blosc2 derives its two sizes from the CPU's caches (blocks of a
//! quarter of L2, chunks of a quarter of L3). A proxy's geometry is part of
//! the file, so cat2rs fixes them at what that rule gives on the common
//! x86-64 server (1 MiB L2, 32 MiB L3), so unfolding gives the same file on
//! every machine.

/// Bytes a block aims at (python-blosc2: L2 / 4).
pub(crate) const BLOCK_BYTES: i64 = 256 << 10;
/// Bytes a chunk aims at, when the HDF5 dataset has no chunks (L3 / 4).
pub(crate) const CHUNK_BYTES: i64 = 8 << 20;

/// The divisor of `a` nearest to `b` (below `b` first when `strict` or for
/// large `a`), as python-blosc2's `nearest_divisor`.
fn nearest_divisor(a: i64, b: i64, strict: bool) -> i64 {
    if a > 100_000 || strict {
        let mut i = b;
        while i > 0 {
            if a % i == 0 {
                return i;
            }
            i -= 1;
        }
        return 1;
    }
    let mut closest = 1;
    let mut min_diff = a;
    let mut i = 1;
    while i * i <= a {
        if a % i == 0 {
            for d in [i, a / i] {
                let diff = (d - b).abs();
                if diff < min_diff {
                    min_diff = diff;
                    closest = d;
                }
            }
        }
        i += 1;
    }
    closest
}

/// Splits `nitems` over the dimensions of `maxshape`, innermost first, as
/// python-blosc2's `compute_partition`.
fn compute_partition(nitems: i64, maxshape: &[i64], minpart: Option<&[i64]>) -> Vec<i64> {
    let mut max_items = nitems;
    let mut partition = vec![1i64; maxshape.len()];
    for i in (0..maxshape.len()).rev() {
        if max_items <= 1 {
            break;
        }
        let size = maxshape[i];
        let minsize = minpart.map_or(1, |m| m[i]);
        let mut rsize = size.max(minsize);
        if rsize <= max_items {
            if size % rsize != 0 {
                rsize = nearest_divisor(size, rsize, false);
            }
        } else {
            rsize = max_items.max(minsize);
            let new_rsize = if size % rsize == 0 {
                rsize
            } else {
                nearest_divisor(size, rsize, true)
            };
            if rsize / 2 < new_rsize && new_rsize < rsize * 2 {
                rsize = new_rsize;
            }
        }
        partition[i] = rsize;
        max_items /= rsize.max(1);
    }
    partition
}

/// Chunks and blocks for an array of `shape` whose chunks are `chunks` when
/// given (an HDF5 dataset's own chunks) or chosen here.
pub(crate) fn chunks_blocks(
    shape: &[i64],
    chunks: Option<&[i64]>,
    itemsize: usize,
) -> (Vec<i64>, Vec<i64>) {
    let itemsize = (itemsize as i64).max(1);
    if chunks.is_none() && shape.contains(&0) {
        return (shape.to_vec(), shape.to_vec());
    }
    let blocksize = BLOCK_BYTES.max(itemsize);
    let maxshape = chunks.unwrap_or(shape);
    if maxshape.contains(&0) {
        // python-blosc2 refuses this; a block may not exceed its chunk.
        return (maxshape.to_vec(), maxshape.to_vec());
    }
    let blocks = compute_partition(blocksize / itemsize, maxshape, None);
    let chunks = match chunks {
        Some(c) => c.to_vec(),
        None => {
            let blockbytes = blocks.iter().product::<i64>() * itemsize;
            let chunksize = (CHUNK_BYTES / blockbytes).max(1) * blockbytes;
            let chunks = compute_partition(chunksize / itemsize, shape, Some(&blocks));
            shape
                .iter()
                .zip(chunks)
                .zip(&blocks)
                .map(|((&s, c), &b)| s.min(if c % b == 0 { c } else { (c / b + 1) * b }))
                .collect()
        }
    };
    (chunks, blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shape, HDF5 chunks and item size; chunks and blocks the reference chose.
    type Case<'a> = (&'a [i64], Option<&'a [i64]>, usize, &'a [i64], &'a [i64]);

    /// What the reference server wrote for these datasets (uint16 = 2 bytes).
    #[test]
    fn as_the_reference_chose() {
        let cases: &[Case] = &[
            (&[8, 512, 512], None, 2, &[8, 512, 512], &[1, 256, 512]),
            (
                &[8, 512, 512],
                Some(&[1, 512, 512]),
                2,
                &[1, 512, 512],
                &[1, 256, 512],
            ),
            (
                &[8, 512, 512],
                Some(&[1, 128, 128]),
                2,
                &[1, 128, 128],
                &[1, 128, 128],
            ),
            (&[1000, 1000], None, 8, &[1000, 1000], &[25, 1000]),
            (&[1_000_000], None, 4, &[1_000_000], &[62500]),
            (&[300, 300], Some(&[100, 150]), 8, &[100, 150], &[100, 150]),
            (
                &[5, 50, 70],
                Some(&[2, 32, 32]),
                4,
                &[2, 32, 32],
                &[2, 32, 32],
            ),
            (&[0, 3], None, 4, &[0, 3], &[0, 3]),
            (&[0, 3], Some(&[4, 3]), 4, &[4, 3], &[4, 3]),
            (&[], None, 8, &[], &[]),
            (&[3], None, 1, &[3], &[3]),
        ];
        for (shape, chunks, itemsize, want_c, want_b) in cases {
            let (c, b) = chunks_blocks(shape, *chunks, *itemsize);
            assert_eq!(
                (c.as_slice(), b.as_slice()),
                (*want_c, *want_b),
                "{shape:?}"
            );
        }
    }

    #[test]
    fn divisors_as_python_blosc2() {
        assert_eq!(nearest_divisor(1000, 32, false), 25);
        assert_eq!(nearest_divisor(70, 33, false), 35);
        assert_eq!(nearest_divisor(70, 33, true), 14);
        assert_eq!(nearest_divisor(97, 10, false), 1);
    }
}
