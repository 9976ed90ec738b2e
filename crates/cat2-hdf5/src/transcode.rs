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
    if !matches!(cd.get(4), Some(2 | 3)) {
        // Only LZ4 (2) and Zstd (3) blocks are Blosc2 streams.
        return None;
    }
    let typesize = u8::try_from(elem_size).ok().filter(|&t| t > 0)?;
    let total = usize::try_from(u64::from_be_bytes(data.get(..8)?.try_into().ok()?)).ok()?;
    let block_bytes = u32::from_be_bytes(data.get(8..12)?.try_into().ok()?) as usize;
    if block_bytes == 0
        || !block_bytes.is_multiple_of(8 * elem_size)
        || total == 0
        || total > hdf5_reader::DEFAULT_MAX_CHUNK_BYTES
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
    i32::try_from(out.len()).ok()?;
    let codec = if cd.get(4) == Some(&3) { ZSTD } else { LZ4 };
    header(
        &mut out,
        codec,
        typesize,
        total as i32,
        block_bytes as i32,
        2,
    );
    Some(out)
}

thread_local! {
    /// A multi-threaded C-Blosc2 context per calling thread, made on first
    /// use (making one starts its worker threads).
    static DECOMPRESSOR: std::cell::RefCell<Option<cat2_blosc2::Decompressor>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses a chunk made here with C-Blosc2 (its codecs and SIMD
/// filters, on several threads); `None` if it fails.
pub(crate) fn decompress(chunk: &[u8]) -> Option<Vec<u8>> {
    DECOMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = cat2_blosc2::Decompressor::new(cat2_blosc2::cparams::default_nthreads()).ok();
        }
        let mut out = Vec::new();
        slot.as_mut()?.decompress(chunk, &mut out).ok()?;
        Some(out)
    })
}

/// Blosc2's codec ids and their header formats.
const LZ4: (u8, u8) = (1, 1);
const ZLIB: (u8, u8) = (4, 3);
const ZSTD: (u8, u8) = (5, 4);

/// A Blosc2 header for a chunk of `nbytes` in blocks of `blocksize`, one
/// stream per block, with `filter` in the last pipeline slot.
fn header(
    out: &mut [u8],
    (codec, format): (u8, u8),
    typesize: u8,
    nbytes: i32,
    blocksize: i32,
    filter: u8,
) {
    let cbytes = out.len() as i32;
    out[0] = 5; // format version
    out[1] = 1; // codec format version
                // Extended header (shuffle and bitshuffle bits both set), one stream per
                // block, the codec's format in the top bits.
    out[2] = 0x05 | 0x10 | (format << 5);
    out[3] = typesize;
    out[4..8].copy_from_slice(&nbytes.to_le_bytes());
    out[8..12].copy_from_slice(&blocksize.to_le_bytes());
    out[12..16].copy_from_slice(&cbytes.to_le_bytes());
    out[16 + 5] = filter;
    out[22] = codec;
}

/// The Blosc2 chunk holding the same bytes as an HDF5 gzip chunk (`data`,
/// one zlib stream) of `nbytes` decoded bytes, byte-shuffled over items of
/// `itemsize` before compression when `shuffled`; `None` when it cannot be
/// expressed (items wider than 255 bytes, sizes past 2 GB).
pub fn deflate_to_blosc2(
    data: &[u8],
    nbytes: usize,
    itemsize: usize,
    shuffled: bool,
) -> Option<Vec<u8>> {
    let typesize = u8::try_from(itemsize).ok().filter(|&t| t > 0)?;
    if nbytes > hdf5_reader::DEFAULT_MAX_CHUNK_BYTES {
        return None;
    }
    let nbytes = i32::try_from(nbytes).ok().filter(|&n| n > 0)?;
    let len = i32::try_from(data.len()).ok()?;
    // A stream as long as the block means "stored raw" to Blosc2.
    if len == nbytes || data.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(40 + data.len());
    out.resize(36, 0);
    out[32..36].copy_from_slice(&36i32.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    i32::try_from(out.len()).ok()?;
    header(
        &mut out,
        ZLIB,
        typesize,
        nbytes,
        nbytes,
        if shuffled { 1 } else { 0 },
    );
    Some(out)
}

/// A stored HDF5 chunk as a Blosc2 chunk, when its filter pipeline is one
/// Blosc2 can express: bitshuffle with LZ4 or Zstd, or deflate with or
/// without a byte shuffle before it. `filters` is the dataset's pipeline in
/// HDF5's (encoding) order, none of them skipped for this chunk.
pub fn chunk_as_blosc2(
    filters: &[crate::Filter],
    data: &[u8],
    nbytes: usize,
    itemsize: usize,
) -> Option<Vec<u8>> {
    match filters {
        [f] if f.id == crate::filters::BITSHUFFLE => {
            bitshuffle_to_blosc2(&f.params, data, itemsize)
        }
        [f] if f.id == 1 => deflate_to_blosc2(data, nbytes, itemsize, false),
        [s, f] if s.id == 2 && f.id == 1 => deflate_to_blosc2(data, nbytes, itemsize, true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::filters::bitshuffle::tests::bitshuffle;

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
    fn gzip_chunks_with_and_without_shuffle() {
        use std::io::Write;
        let data: Vec<u8> = (0..5000u32).flat_map(|i| (i / 7).to_le_bytes()).collect();
        for shuffled in [false, true] {
            let input = if shuffled {
                // HDF5's shuffle: byte j of every item, then byte j + 1, ...
                let n = data.len() / 4;
                (0..4)
                    .flat_map(|j| (0..n).map(move |i| (j, i)))
                    .map(|(j, i)| data[i * 4 + j])
                    .collect()
            } else {
                data.clone()
            };
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(4));
            z.write_all(&input).unwrap();
            let stream = z.finish().unwrap();
            let b2 = deflate_to_blosc2(&stream, data.len(), 4, shuffled).expect("rewritable");
            let mut out = Vec::new();
            cat2_blosc2::Decompressor::new(1)
                .unwrap()
                .decompress(&b2, &mut out)
                .unwrap();
            assert_eq!(out, data, "shuffled {shuffled}");
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
