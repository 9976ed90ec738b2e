//! HDF5 chunks rewritten as Blosc2 chunks without decompressing them.
//!
//! Why: a detector frame stored with the bitshuffle filter (LZ4 or Zstd
//! blocks, what Eiger and Jungfrau files use) is made of the same pieces a
//! Blosc2 chunk is made of: blocks of bit-transposed items, each compressed
//! on its own with LZ4 (or Zstd), and the transpose is the bitshuffle
//! library's in both. Only the framing differs (a 12-byte big-endian header
//! and big-endian block lengths against Blosc2's 32-byte header, block
//! offsets and little-endian stream lengths). Rewriting the framing gives a
//! Blosc2 chunk the client decompresses itself: serving a frame through a
//! proxy then costs a read and a copy, as serving a native `.b2nd` does,
//! instead of a decompression and a recompression.

/// The Blosc2 chunk holding the same bytes as an HDF5 bitshuffle chunk
/// (`cd` the filter's parameters), or `None` when this chunk cannot be
/// rewritten: no LZ4/Zstd compression, items wider than 255 bytes, or a
/// chunk whose item count is not a multiple of 8 (its last items are stored
/// raw after the last block, which Blosc2 cannot express). The last block
/// may be shorter than the others, as Blosc2's last block may.
pub fn bitshuffle_to_blosc2(cd: &[u32], data: &[u8], elem_size: usize) -> Option<Vec<u8>> {
    let elem_size = match cd.get(2) {
        Some(&s) if s > 0 => s as usize,
        _ => elem_size,
    };
    let (codec, format) = match cd.get(4).copied() {
        Some(2) => (1u8, 1u8), // LZ4
        Some(3) => (5u8, 4u8), // ZSTD
        _ => return None,
    };
    let typesize = u8::try_from(elem_size).ok().filter(|&t| t > 0)?;
    let total = usize::try_from(u64::from_be_bytes(data.get(..8)?.try_into().ok()?)).ok()?;
    let block_bytes = u32::from_be_bytes(data.get(8..12)?.try_into().ok()?) as usize;
    if block_bytes == 0
        || !block_bytes.is_multiple_of(8 * elem_size)
        || total == 0
        || !total.is_multiple_of(8 * elem_size)
        || i32::try_from(total).is_err()
    {
        return None;
    }
    // A chunk smaller than one block is one (Blosc2's blocks are never
    // larger than the chunk).
    let block_bytes = block_bytes.min(total);
    let nblocks = total.div_ceil(block_bytes);
    let body = &data[12..];
    let header_len = 32 + 4 * nblocks;
    let mut out = Vec::with_capacity(header_len + body.len());
    out.resize(header_len, 0);
    let mut pos = 0;
    for b in 0..nblocks {
        let len = u32::from_be_bytes(body.get(pos..pos + 4)?.try_into().ok()?) as usize;
        let stream = body.get(pos + 4..pos + 4 + len)?;
        pos += 4 + len;
        // A stream as long as its block means "stored raw" to Blosc2; a
        // compressed block of exactly that length would be misread.
        let this_block = block_bytes.min(total - b * block_bytes);
        if len == this_block || len == 0 {
            return None;
        }
        let start = i32::try_from(out.len()).ok()?;
        out[32 + 4 * b..36 + 4 * b].copy_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&i32::try_from(len).ok()?.to_le_bytes());
        out.extend_from_slice(stream);
    }
    if pos != body.len() {
        return None;
    }
    let cbytes = i32::try_from(out.len()).ok()?;
    out[0] = 5; // format version
    out[1] = 1; // codec format version
                // Extended header (shuffle and bitshuffle bits both set), one stream per
                // block, the codec's format in the top bits.
    out[2] = 0x05 | 0x10 | (format << 5);
    out[3] = typesize;
    out[4..8].copy_from_slice(&(total as i32).to_le_bytes());
    out[8..12].copy_from_slice(&(block_bytes as i32).to_le_bytes());
    out[12..16].copy_from_slice(&cbytes.to_le_bytes());
    out[16 + 5] = 2; // BITSHUFFLE in the last filter slot
    out[22] = codec;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward bit transpose (bitshuffle library layout).
    fn bitshuffle(src: &[u8], elem_size: usize) -> Vec<u8> {
        let n = src.len() / elem_size;
        let mut dst = vec![0u8; src.len()];
        for i in 0..n {
            for j in 0..elem_size {
                for k in 0..8 {
                    if src[i * elem_size + j] >> k & 1 == 1 {
                        dst[(8 * j + k) * (n / 8) + i / 8] |= 1 << (i % 8);
                    }
                }
            }
        }
        dst
    }

    fn hdf5_chunk(data: &[u8], elem_size: usize, block_elems: usize, zstd: bool) -> Vec<u8> {
        let mut chunk = (data.len() as u64).to_be_bytes().to_vec();
        chunk.extend_from_slice(&((block_elems * elem_size) as u32).to_be_bytes());
        for b in data.chunks(block_elems * elem_size) {
            let shuffled = bitshuffle(b, elem_size);
            let c = if zstd {
                zstd::bulk::compress(&shuffled, 3).unwrap()
            } else {
                lz4_flex::block::compress(&shuffled)
            };
            chunk.extend_from_slice(&(c.len() as u32).to_be_bytes());
            chunk.extend_from_slice(&c);
        }
        chunk
    }

    #[test]
    fn rewritten_chunks_decompress_to_the_data() {
        for (elem_size, zstd) in [(2usize, false), (4, false), (1, true), (8, true)] {
            let n = 4096usize;
            let data: Vec<u8> = (0..n * elem_size)
                .map(|i| ((i * 7919) % 13 + (i / 97) % 3) as u8)
                .collect();
            let chunk = hdf5_chunk(&data, elem_size, 512, zstd);
            let cd = [0, 3, elem_size as u32, 512, if zstd { 3 } else { 2 }];
            let b2 = bitshuffle_to_blosc2(&cd, &chunk, elem_size).expect("rewritable");
            let mut out = Vec::new();
            cat2_blosc2::Decompressor::new(2)
                .unwrap()
                .decompress(&b2, &mut out)
                .unwrap();
            assert_eq!(out, data, "{elem_size}-byte items, zstd {zstd}");
            // And the HDF5 decoder agrees.
            assert_eq!(
                crate::filters::decode_bitshuffle(&cd, &chunk, elem_size).unwrap(),
                data
            );
        }
    }

    #[test]
    fn a_chunk_smaller_than_a_block_is_one_block() {
        // 128 items of 8 bytes with bitshuffle's default 8 KiB blocks.
        let data: Vec<u8> = (0..128u64).flat_map(|i| (i * 3).to_le_bytes()).collect();
        let mut chunk = (data.len() as u64).to_be_bytes().to_vec();
        chunk.extend_from_slice(&8192u32.to_be_bytes());
        let c = lz4_flex::block::compress(&bitshuffle(&data, 8));
        chunk.extend_from_slice(&(c.len() as u32).to_be_bytes());
        chunk.extend_from_slice(&c);
        let b2 = bitshuffle_to_blosc2(&[0, 4, 8, 0, 2], &chunk, 8).expect("rewritable");
        assert_eq!(cat2_blosc2::chunk_sizes(&b2).unwrap().2, 1024);
        let mut out = Vec::new();
        cat2_blosc2::Decompressor::new(1)
            .unwrap()
            .decompress(&b2, &mut out)
            .unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn a_short_last_block_is_rewritten_too() {
        // 1000 items in blocks of 256: three whole blocks and one of 232.
        let data: Vec<u8> = (0..1000u16).flat_map(|i| (i * 31).to_le_bytes()).collect();
        let chunk = hdf5_chunk(&data, 2, 256, false);
        let b2 = bitshuffle_to_blosc2(&[0, 3, 2, 256, 2], &chunk, 2).expect("rewritable");
        let mut out = Vec::new();
        cat2_blosc2::Decompressor::new(1)
            .unwrap()
            .decompress(&b2, &mut out)
            .unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn chunks_with_raw_leftover_items_are_not_rewritten() {
        // 1001 items: the last one is stored raw after the blocks.
        let data: Vec<u8> = (0..1001u16).flat_map(u16::to_le_bytes).collect();
        let mut chunk = hdf5_chunk(&data[..2000], 2, 256, false);
        chunk[..8].copy_from_slice(&(data.len() as u64).to_be_bytes());
        chunk.extend_from_slice(&data[2000..]);
        assert!(bitshuffle_to_blosc2(&[0, 3, 2, 256, 2], &chunk, 2).is_none());
        assert_eq!(
            crate::filters::decode_bitshuffle(&[0, 3, 2, 256, 2], &chunk, 2).unwrap(),
            data
        );
        assert!(bitshuffle_to_blosc2(&[0, 3, 2, 256, 0], &chunk, 2).is_none());
        assert!(bitshuffle_to_blosc2(&[0, 3, 2, 256, 2], &chunk[..5], 2).is_none());
    }
}
