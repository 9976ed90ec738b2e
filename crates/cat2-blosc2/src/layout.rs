//! The byte layout of one b2nd chunk ("two-level partitioning"): the chunk
//! shape padded up to a multiple of the block shape (the *extended* chunk),
//! stored as its blocks in C order of the block grid, each block's items in
//! C order. Padding is zero.

/// Blocks per extended chunk along each dimension, and items per block.
pub(crate) fn block_grid(chunks: &[i64], blocks: &[i64]) -> (Vec<i64>, usize) {
    let grid = chunks
        .iter()
        .zip(blocks)
        .map(|(&c, &b)| (c + b.max(1) - 1) / b.max(1))
        .collect();
    let per_block = blocks.iter().product::<i64>().max(0) as usize;
    (grid, per_block)
}

/// Lays out C-ordered items of shape `data_shape` (at most the chunk shape:
/// edge chunks are smaller) as one chunk of geometry `chunks`/`blocks`,
/// ready to be compressed with block size `prod(blocks) * itemsize`.
pub fn pack_chunk(
    data: &[u8],
    data_shape: &[i64],
    chunks: &[i64],
    blocks: &[i64],
    itemsize: usize,
) -> Vec<u8> {
    let nd = data_shape.len();
    let (grid, per_block) = block_grid(chunks, blocks);
    let nblocks: i64 = grid.iter().product();
    let mut out = vec![0u8; nblocks.max(0) as usize * per_block * itemsize];
    if nd == 0 {
        let n = itemsize.min(data.len()).min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        return out;
    }
    if data_shape.contains(&0) {
        return out;
    }
    let mut data_strides = vec![1i64; nd];
    let mut blk_strides = vec![1i64; nd];
    for d in (0..nd - 1).rev() {
        data_strides[d] = data_strides[d + 1] * data_shape[d + 1];
        blk_strides[d] = blk_strides[d + 1] * blocks[d + 1];
    }
    let mut b = vec![0i64; nd];
    for nb in 0..nblocks.max(0) as usize {
        let lo: Vec<i64> = (0..nd).map(|d| b[d] * blocks[d]).collect();
        let hi: Vec<i64> = (0..nd)
            .map(|d| (lo[d] + blocks[d]).min(data_shape[d]))
            .collect();
        if (0..nd).all(|d| lo[d] < hi[d]) {
            let base = nb * per_block * itemsize;
            let row = (hi[nd - 1] - lo[nd - 1]) as usize * itemsize;
            let mut i = lo.clone();
            'rows: loop {
                let mut src = 0i64;
                let mut dst = 0i64;
                for d in 0..nd {
                    src += i[d] * data_strides[d];
                    dst += (i[d] - lo[d]) * blk_strides[d];
                }
                let (src, dst) = (src as usize * itemsize, base + dst as usize * itemsize);
                out[dst..dst + row].copy_from_slice(&data[src..src + row]);
                let mut d = nd - 1;
                loop {
                    if d == 0 {
                        break 'rows;
                    }
                    d -= 1;
                    i[d] += 1;
                    if i[d] < hi[d] {
                        break;
                    }
                    i[d] = lo[d];
                }
            }
        }
        for d in (0..nd).rev() {
            b[d] += 1;
            if b[d] < grid[d] {
                break;
            }
            b[d] = 0;
        }
    }
    out
}

/// [`pack_chunk`] taking the items by value: when the blocks are slabs of
/// whole trailing rows, the block order is plain C order of the extended
/// chunk, so items that already span every dimension but the first are the
/// packed chunk once zero-padded at the end, and no copy is made.
pub fn pack_chunk_owned(
    mut data: Vec<u8>,
    data_shape: &[i64],
    chunks: &[i64],
    blocks: &[i64],
    itemsize: usize,
) -> Vec<u8> {
    let nd = data_shape.len();
    let row_slabs = match blocks.iter().position(|&b| b != 1) {
        None => true,
        Some(d) => blocks[d + 1..] == chunks[d + 1..],
    };
    let (grid, per_block) = block_grid(chunks, blocks);
    let ext: Vec<i64> = grid.iter().zip(blocks).map(|(g, b)| g * b).collect();
    if nd > 0
        && row_slabs
        && data_shape[1..] == ext[1..]
        && data.len().is_multiple_of(itemsize.max(1))
    {
        let nblocks: i64 = grid.iter().product();
        let len = nblocks.max(0) as usize * per_block * itemsize;
        if data.len() <= len {
            data.resize(len, 0);
            return data;
        }
    }
    pack_chunk(&data, data_shape, chunks, blocks, itemsize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_packing_agrees_and_skips_the_copy_when_it_can() {
        let cases: [(&[i64], &[i64], &[i64]); 4] = [
            (&[7, 6], &[8, 6], &[2, 6]), // row slabs, padded rows at the end
            (&[1, 4, 6], &[1, 4, 6], &[1, 2, 6]),
            (&[5, 5], &[5, 5], &[2, 3]), // not row slabs
            (&[3, 6], &[4, 8], &[2, 8]), // rows shorter than the chunk's
        ];
        for (shape, chunks, blocks) in cases {
            let n: i64 = shape.iter().product();
            let data: Vec<u8> = (0..n as u16 * 2).map(|i| i as u8).collect();
            let want = pack_chunk(&data, shape, chunks, blocks, 2);
            let ptr = data.as_ptr();
            let got = pack_chunk_owned(data, shape, chunks, blocks, 2);
            assert_eq!(got, want, "{shape:?} {chunks:?} {blocks:?}");
            if shape == [1, 4, 6] {
                assert_eq!(got.as_ptr(), ptr, "no copy");
            }
        }
    }

    #[test]
    fn matches_the_documented_layout() {
        // protocol.md: ds-2d (10x20 uint16, chunks (5,5), blocks (2,3)), chunk 0
        // decompresses to 0,1,2,20,21,22, 3,4,0,23,24,0, 40,41,42,60,61,62, ...
        let data: Vec<u8> = (0..5)
            .flat_map(|r| (0..5).map(move |c| (r * 20 + c) as u16))
            .flat_map(u16::to_le_bytes)
            .collect();
        let packed = pack_chunk(&data, &[5, 5], &[5, 5], &[2, 3], 2);
        let items: Vec<u16> = packed
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(items.len(), 36);
        assert_eq!(
            &items[..18],
            [0, 1, 2, 20, 21, 22, 3, 4, 0, 23, 24, 0, 40, 41, 42, 60, 61, 62]
        );
    }
}
