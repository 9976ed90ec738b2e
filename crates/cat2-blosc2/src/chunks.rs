//! Single compressed chunks: header sizes, special values, and per-thread
//! compression/decompression contexts.

use crate::error::{Error, Result};
use crate::raw::chunk::{self, RawCtx};
use crate::CParams;

/// Sizes declared by a chunk header: `(nbytes, cbytes, blocksize)`.
pub fn chunk_sizes(chunk: &[u8]) -> Result<(i32, i32, i32)> {
    chunk::sizes(chunk)
}

/// The special value a header-only chunk stands for (bits 4–6 of byte 31).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    None,
    Zero,
    Nan,
    Value,
    Uninit,
}

impl Special {
    /// Reads the special-value marker of a chunk header.
    pub fn of(chunk: &[u8]) -> Special {
        match chunk.get(31).map(|b| (b >> 4) & 7) {
            Some(1) => Special::Zero,
            Some(2) => Special::Nan,
            Some(3) => Special::Value,
            Some(4) => Special::Uninit,
            _ => Special::None,
        }
    }
}

/// Reverses bitshuffle on one block of `typesize`-byte items (C-Blosc2's
/// SIMD kernels): whole groups of 8 items are transposed back, the leftover
/// items copied. `dst` has the length of `src`.
pub fn bitunshuffle(typesize: usize, src: &[u8], dst: &mut [u8]) -> Result<()> {
    chunk::bitunshuffle(typesize, src, dst)
}

/// A header-only chunk of `nbytes` zeros (or uninitialised bytes).
pub fn special_chunk(cparams: &CParams, nbytes: i32, uninit: bool) -> Result<Vec<u8>> {
    chunk::special_chunk(cparams, nbytes, uninit)
}

/// A decompression context; one per thread.
///
/// Besides calling C-Blosc2, it decodes one thing the bundled C-Blosc2
/// (2.21) does not know but python-blosc2 4.x writes: SHUFFLE with a
/// non-zero `filters_meta`, which C-Blosc2 3.x reads as "shuffle groups of
/// this many bytes" (python-blosc2 uses 4 for `<U` strings). C-Blosc2 2.21
/// would silently unshuffle by the whole item instead and return scrambled
/// bytes, so such chunks are decompressed with that filter switched off and
/// unshuffled here, block by block, the way 3.x does it.
pub struct Decompressor(RawCtx);

/// Byte offsets in a Blosc2 extended chunk header (`README_CHUNK_FORMAT`).
mod header {
    pub(super) const VERSION: usize = 0;
    pub(super) const FLAGS: usize = 2;
    pub(super) const TYPESIZE: usize = 3;
    pub(super) const BLOCKSIZE: usize = 8;
    pub(super) const FILTERS: usize = 16;
    pub(super) const FILTERS_META: usize = 24;
    pub(super) const BLOSC2_FLAGS: usize = 31;
    pub(super) const LEN: usize = 32;
    /// Flags with both shuffle bits set mark the extended (Blosc2) header.
    pub(super) const EXTENDED: u8 = 0x05;
    pub(super) const MEMCPYED: u8 = 0x02;
}

const SHUFFLE: u8 = crate::cparams::filter::SHUFFLE;
const TRUNC_PREC: u8 = crate::cparams::filter::TRUNC_PREC;

/// The byte-group size of a SHUFFLE that C-Blosc2 2.21 would get wrong, and
/// its filter slot, if the chunk has one.
fn grouped_shuffle(chunk: &[u8]) -> Result<Option<(usize, usize)>> {
    if chunk.len() < header::LEN
        || chunk[header::FLAGS] & header::EXTENDED != header::EXTENDED
        || chunk[header::FLAGS] & header::MEMCPYED != 0
        || (chunk[header::BLOSC2_FLAGS] >> 4) & 7 != 0
    {
        return Ok(None);
    }
    let filters = &chunk[header::FILTERS..header::FILTERS + crate::cparams::MAX_FILTERS];
    let metas = &chunk[header::FILTERS_META..header::FILTERS_META + crate::cparams::MAX_FILTERS];
    let typesize = chunk[header::TYPESIZE];
    let Some(slot) = (0..filters.len())
        .find(|&i| filters[i] == SHUFFLE && metas[i] != 0 && metas[i] != typesize)
    else {
        return Ok(None);
    };
    // Undoing the shuffle last is right only if no filter applied before it
    // (a lower slot) needs undoing after it; TRUNC_PREC has no inverse.
    if let Some(other) = (0..slot).find(|&i| filters[i] != 0 && filters[i] != TRUNC_PREC) {
        return Err(Error::Damaged(format!(
            "chunk shuffles groups of {} bytes after filter {}, a combination this server cannot decode",
            metas[slot], filters[other]
        )));
    }
    Ok(Some((slot, metas[slot] as usize)))
}

/// Reverses a byte shuffle of `group`-byte items over one block (C-Blosc2's
/// generic unshuffle: whole items transposed, trailing bytes kept).
fn unshuffle_block(group: usize, src: &[u8], dst: &mut [u8]) {
    let n = src.len() / group;
    for i in 0..n {
        for j in 0..group {
            dst[i * group + j] = src[j * n + i];
        }
    }
    let done = n * group;
    dst[done..].copy_from_slice(&src[done..]);
}

impl Decompressor {
    pub fn new(nthreads: i16) -> Result<Self> {
        RawCtx::decompressor(nthreads).map(Decompressor)
    }

    /// Decompresses a whole chunk into `out`.
    pub fn decompress(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        self.decompress_append(chunk, out)
    }

    /// Decompresses only blocks `blocks` (indices in the chunk, each
    /// `block_bytes` long) of a chunk into their places in `out`, which holds
    /// the whole decompressed chunk's room; other bytes are left as they
    /// are. `false` (nothing done) for chunks that need the grouped-shuffle
    /// path, which only whole chunks take.
    pub fn decompress_blocks(
        &mut self,
        chunk: &[u8],
        blocks: &[usize],
        block_bytes: usize,
        out: &mut [u8],
    ) -> Result<bool> {
        if grouped_shuffle(chunk)?.is_some() || chunk.len() < 4 {
            return Ok(false);
        }
        let typesize = usize::from(chunk[3]).max(1);
        if !block_bytes.is_multiple_of(typesize) {
            return Ok(false);
        }
        let room = out.len();
        for &b in blocks {
            let range = b * block_bytes..(b + 1) * block_bytes;
            let dest = out.get_mut(range).ok_or_else(|| {
                Error::Damaged(format!("block {b} lies outside the chunk's {room} bytes"))
            })?;
            self.0.getitem(chunk, b * block_bytes / typesize, dest)?;
        }
        Ok(true)
    }

    /// Decompresses a whole chunk after the bytes `out` already holds.
    pub fn decompress_append(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let Some((slot, group)) = grouped_shuffle(chunk)? else {
            return self.0.decompress_append(chunk, out);
        };
        let mut patched = chunk.to_vec();
        patched[header::FILTERS + slot] = 0;
        let mut shuffled = Vec::new();
        self.0.decompress(&patched, &mut shuffled)?;
        let blocksize = i32::from_le_bytes(
            chunk[header::BLOCKSIZE..header::BLOCKSIZE + 4]
                .try_into()
                .map_err(|_| Error::Damaged("truncated chunk header".into()))?,
        );
        if blocksize <= 0 {
            return Err(Error::Damaged(format!(
                "chunk declares block size {blocksize}"
            )));
        }
        let filled = out.len();
        out.resize(filled + shuffled.len(), 0);
        for (src, dst) in shuffled
            .chunks(blocksize as usize)
            .zip(out[filled..].chunks_mut(blocksize as usize))
        {
            unshuffle_block(group, src, dst);
        }
        Ok(())
    }
}

/// The format version byte of a chunk (5 for C-Blosc2 2.x/3.x fixed blocks).
pub fn chunk_version(chunk: &[u8]) -> Option<u8> {
    chunk.get(header::VERSION).copied()
}

/// A compression context; one per thread.
pub struct Compressor(RawCtx);

impl Compressor {
    pub fn new(cparams: &CParams) -> Result<Self> {
        RawCtx::compressor(cparams).map(Compressor)
    }
    /// Compresses `src` into one chunk.
    pub fn compress(&mut self, src: &[u8]) -> Result<Vec<u8>> {
        self.0.compress(src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshuffle_inverts_a_grouped_shuffle() {
        // 3 items of 4 bytes, plus 2 trailing bytes left as they are.
        let plain: Vec<u8> = (0..14).collect();
        let mut shuffled = vec![0u8; 14];
        for i in 0..3 {
            for j in 0..4 {
                shuffled[j * 3 + i] = plain[i * 4 + j];
            }
        }
        shuffled[12..].copy_from_slice(&plain[12..]);
        let mut back = vec![0u8; 14];
        unshuffle_block(4, &shuffled, &mut back);
        assert_eq!(back, plain);
    }

    #[test]
    fn plain_chunks_are_not_patched() {
        let cp = CParams::zstd_shuffle(4);
        let data: Vec<u8> = (0..4000u32).flat_map(|v| v.to_le_bytes()).collect();
        let chunk = Compressor::new(&cp).unwrap().compress(&data).unwrap();
        assert_eq!(grouped_shuffle(&chunk).unwrap(), None);
        let mut out = Vec::new();
        Decompressor::new(1)
            .unwrap()
            .decompress(&chunk, &mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}
