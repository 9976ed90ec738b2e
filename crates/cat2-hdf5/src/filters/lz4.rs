//! hdf5plugin's LZ4 filter (32004), read side.
//!
//! A chunk is a 12-byte header (decoded size as a big-endian u64, block size in bytes as
//! a big-endian u32) followed by the blocks. Each block is a big-endian u32 length and
//! that many bytes: an LZ4 raw block, or the plain bytes when the length equals the
//! block's decoded size (incompressible data). The last block may be short.
//!
//! `hdf5-reader` has a built-in decoder for this id, but it fails on chunks of more than
//! one block, so we register ours over it.

/// Most bytes one byte of an LZ4 block decodes to (a match's length grows by
/// 255 per length byte), with room for a block's fixed overhead: what a
/// block can hold bounds what it may declare, before anything is allocated.
const MAX_RATIO: usize = 255;
const SLACK: usize = 64;

/// Most bytes `len` stored bytes can decode to.
fn max_decoded(len: usize) -> usize {
    len.saturating_mul(MAX_RATIO).saturating_add(SLACK)
}

/// Decodes one chunk.
pub(super) fn decode(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 12 {
        return Err("chunk shorter than its 12-byte header".into());
    }
    let total = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let total = usize::try_from(total).map_err(|_| "decoded size too large")?;
    let mut block = u32::from_be_bytes(data[8..12].try_into().expect("4 bytes")) as usize;
    if block == 0 || block > total {
        block = total;
    }
    // The header's size is a claim: reserve no more than the chunk can hold.
    let mut out = Vec::with_capacity(total.min(max_decoded(data.len())));
    let mut pos = 12;
    while out.len() < total {
        let want = block.min(total - out.len());
        let len = data.get(pos..pos + 4).ok_or("truncated block length")?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        pos += 4;
        let comp = data.get(pos..pos + len).ok_or("truncated block")?;
        pos += len;
        if len == want {
            out.extend_from_slice(comp);
        } else if want > max_decoded(len) {
            return Err(format!(
                "a block of {len} bytes cannot decode to the {want} it declares"
            ));
        } else {
            let b = lz4_flex::block::decompress(comp, want).map_err(|e| e.to_string())?;
            if b.len() != want {
                return Err(format!(
                    "block decoded to {} bytes, expected {want}",
                    b.len()
                ));
            }
            out.extend_from_slice(&b);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `hdf5_filters` fuzz target: a header declaring 1.7e18
    /// bytes was reserved up front (an abort, not an error).
    #[test]
    fn a_size_beyond_the_data_is_an_error() {
        let mut chunk = 0x1800_0000_1800_0000u64.to_be_bytes().to_vec();
        chunk.extend_from_slice(&0x1800_0000u32.to_be_bytes());
        chunk.extend_from_slice(&[0, 0, 0, 4, 1, 2, 3, 4]);
        assert!(decode(&chunk).unwrap_err().contains("cannot decode"));
        // Without any block: the loop stops at the missing length.
        assert!(decode(&chunk[..12]).is_err());
    }

    #[test]
    fn several_blocks_one_stored_plain() {
        let data: Vec<u8> = (0..2500u32).map(|i| (i / 10) as u8).collect();
        let mut chunk = (data.len() as u64).to_be_bytes().to_vec();
        chunk.extend_from_slice(&1000u32.to_be_bytes());
        for (i, b) in data.chunks(1000).enumerate() {
            let c = if i == 1 {
                b.to_vec()
            } else {
                lz4_flex::block::compress(b)
            };
            chunk.extend_from_slice(&(c.len() as u32).to_be_bytes());
            chunk.extend_from_slice(&c);
        }
        assert_eq!(decode(&chunk).unwrap(), data);
        assert!(decode(&chunk[..chunk.len() - 1]).is_err());
        assert!(decode(&chunk[..5]).is_err());
    }
}
