//! The bitshuffle HDF5 filter (32008), read side.
//!
//! Filter parameters (`cd_values`): major and minor version, element size, block size in
//! elements (0 = default) and the compression (0 none, 2 LZ4, 3 Zstd).
//!
//! With compression the chunk starts with a 12-byte header: the decoded size in bytes
//! (u64, big-endian) and the block size in bytes (u32, big-endian). Then come the blocks,
//! each a 4-byte big-endian compressed length and an LZ4 block or a Zstd frame. A block
//! holds `block_size` elements; the last one holds the remaining elements rounded down to
//! a multiple of 8, and the final `n % 8` elements are stored as plain bytes. Without
//! compression there is no header and no length prefixes.
//!
//! Inside a block of `n` elements (n a multiple of 8) of `s` bytes, the data is stored as
//! `8 * s` bit rows of `n / 8` bytes: row `8 * j + k` holds bit `k` of byte `j` of every
//! element, element `i` at bit `i % 8` of byte `i / 8` of the row.

use rayon::prelude::*;

const BLOCKED_MULT: usize = 8;
const TARGET_BLOCK_BYTES: usize = 8192;
const MIN_BLOCK: usize = 128;

/// Decodes one chunk. `cd` are the filter's parameters, `elem_size` the dataset's.
///
/// A chunk that can be rewritten as a Blosc2 chunk (see
/// [`crate::transcode`]) is decoded by C-Blosc2 (its LZ4/Zstd and SIMD
/// bit transpose, on several threads); any other by the code below.
pub fn decode(cd: &[u32], data: &[u8], elem_size: usize) -> Result<Vec<u8>, String> {
    if let Some(chunk) = crate::transcode::bitshuffle_to_blosc2(cd, data, elem_size) {
        if let Some(out) = crate::transcode::decompress(&chunk) {
            return Ok(out);
        }
    }
    decode_blocks(cd, data, elem_size)
}

/// Decodes one chunk block by block, in Rust (blocks in parallel).
fn decode_blocks(cd: &[u32], data: &[u8], elem_size: usize) -> Result<Vec<u8>, String> {
    let elem_size = match cd.get(2) {
        Some(&s) if s > 0 => s as usize,
        _ => elem_size,
    };
    if elem_size == 0 {
        return Err("element size 0".into());
    }
    let compression = cd.get(4).copied().unwrap_or(0);
    let (total, mut block, body) = if compression == 0 {
        let block = cd.get(3).copied().unwrap_or(0) as usize;
        (data.len(), block, data)
    } else {
        if data.len() < 12 {
            return Err("chunk shorter than its 12-byte header".into());
        }
        let total = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
        let block_bytes = u32::from_be_bytes(data[8..12].try_into().expect("4 bytes"));
        let total = usize::try_from(total)
            .ok()
            .filter(|&t| t <= hdf5_reader::DEFAULT_MAX_CHUNK_BYTES)
            .ok_or("decoded size too large")?;
        (total, block_bytes as usize / elem_size, &data[12..])
    };
    if block == 0 {
        block = default_block_size(elem_size);
    }
    if block % BLOCKED_MULT != 0 {
        return Err(format!("block size {block} is not a multiple of 8"));
    }
    if total % elem_size != 0 {
        return Err(format!(
            "decoded size {total} is not a multiple of the element size {elem_size}"
        ));
    }
    let n = total / elem_size;
    let last = (n % block) - (n % block) % BLOCKED_MULT;
    let sizes = std::iter::repeat_n(block, n / block).chain((last > 0).then_some(last));
    // Where each block's bytes are: a walk over the length prefixes.
    let mut blocks: Vec<(&[u8], usize)> = Vec::with_capacity(n / block + 1);
    let mut pos = 0;
    for nelem in sizes {
        let nbytes = nelem * elem_size;
        let len = if compression == 0 {
            nbytes
        } else {
            let len = body.get(pos..pos + 4).ok_or("truncated block length")?;
            pos += 4;
            u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize
        };
        let stored = body.get(pos..pos + len).ok_or("truncated block")?;
        pos += len;
        blocks.push((stored, nbytes));
    }
    let decoded: usize = blocks.iter().map(|b| b.1).sum();
    let rest = total - decoded;
    let leftover = body
        .get(pos..pos + rest)
        .ok_or("truncated leftover bytes")?;
    let mut out = vec![0u8; total];
    // Blocks are independent: decode them in parallel, each into its place.
    let mut slices: Vec<&mut [u8]> = Vec::with_capacity(blocks.len());
    let mut tail: &mut [u8] = &mut out;
    for &(_, nbytes) in &blocks {
        let (head, rest) = tail.split_at_mut(nbytes);
        slices.push(head);
        tail = rest;
    }
    tail.copy_from_slice(leftover);
    blocks.par_iter().zip(slices.into_par_iter()).try_for_each(
        |(&(stored, nbytes), dst)| -> Result<(), String> {
            let raw: Vec<u8>;
            let shuffled: &[u8] = match compression {
                0 => stored,
                2 => {
                    raw = lz4_flex::block::decompress(stored, nbytes).map_err(|e| e.to_string())?;
                    &raw
                }
                3 => {
                    raw = zstd::bulk::decompress(stored, nbytes).map_err(|e| e.to_string())?;
                    &raw
                }
                c => return Err(format!("unknown compression {c}")),
            };
            if shuffled.len() != nbytes {
                return Err(format!(
                    "block decoded to {} bytes, expected {nbytes}",
                    shuffled.len()
                ));
            }
            cat2_blosc2::bitunshuffle(elem_size, shuffled, dst).map_err(|e| e.to_string())
        },
    )?;
    Ok(out)
}

/// The block size (in elements) bitshuffle picks when none is given.
fn default_block_size(elem_size: usize) -> usize {
    let b = TARGET_BLOCK_BYTES / elem_size;
    ((b / BLOCKED_MULT) * BLOCKED_MULT).max(MIN_BLOCK)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reverses the bit transpose of one block: `src` and `dst` hold `n` elements of
    /// `elem_size` bytes, `n` a multiple of 8.
    fn bitunshuffle_reference(src: &[u8], dst: &mut [u8], elem_size: usize) {
        debug_assert_eq!(src.len(), dst.len());
        let n = dst.len() / elem_size;
        let row = n / 8;
        dst.fill(0);
        for j in 0..elem_size {
            for k in 0..8 {
                let bits = &src[(8 * j + k) * row..(8 * j + k + 1) * row];
                for (g, &byte) in bits.iter().enumerate() {
                    if byte == 0 {
                        continue;
                    }
                    for b in 0..8 {
                        if byte >> b & 1 == 1 {
                            dst[(8 * g + b) * elem_size + j] |= 1 << k;
                        }
                    }
                }
            }
        }
    }

    /// The forward transform, written straight from the layout in the module
    /// docs (shared with the re-framing tests).
    pub(crate) fn bitshuffle(src: &[u8], elem_size: usize) -> Vec<u8> {
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

    #[test]
    fn unshuffle_inverts_shuffle() {
        for size in [1, 2, 4, 8, 3] {
            let src: Vec<u8> = (0..64u32 * size as u32)
                .map(|i| (i * 37 % 251) as u8)
                .collect();
            let shuffled = bitshuffle(&src, size);
            let mut back = vec![0; src.len()];
            bitunshuffle_reference(&shuffled, &mut back, size);
            assert_eq!(back, src, "reference, {size}-byte items");
            let mut fast = vec![0; src.len()];
            cat2_blosc2::bitunshuffle(size, &shuffled, &mut fast).unwrap();
            assert_eq!(fast, src, "C-Blosc2, {size}-byte items");
        }
    }

    #[test]
    fn lz4_chunk_with_partial_block_and_leftover() {
        // 2-byte elements, block of 16, 37 elements: 2 blocks of 16, none of 0, 5 leftover.
        let elems: Vec<u8> = (0..37u16).flat_map(|i| (i * 1000).to_le_bytes()).collect();
        let mut chunk = (elems.len() as u64).to_be_bytes().to_vec();
        chunk.extend_from_slice(&(16u32 * 2).to_be_bytes());
        for b in elems[..64].chunks(32) {
            let c = lz4_flex::block::compress(&bitshuffle(b, 2));
            chunk.extend_from_slice(&(c.len() as u32).to_be_bytes());
            chunk.extend_from_slice(&c);
        }
        chunk.extend_from_slice(&elems[64..]);
        assert_eq!(decode(&[0, 4, 2, 0, 2], &chunk, 2).unwrap(), elems);
        assert!(decode(&[0, 4, 2, 0, 2], &chunk[..20], 2).is_err());
        assert!(decode(&[0, 4, 2, 0, 9], &chunk, 2).is_err());
    }
}
