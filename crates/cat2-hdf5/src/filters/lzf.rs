//! The LZF decompressor (format of liblzf 3.x, as used by h5py's LZF filter 32000).
//!
//! A stream is a series of runs. A control byte below 32 starts a literal run of
//! `ctrl + 1` bytes. Otherwise the top 3 bits are a length (7 means "add the next byte")
//! and the low 5 bits with the following byte are a back-reference distance minus one;
//! the match copies `len + 2` bytes from the output, byte by byte (they may overlap).

/// Decompresses a whole LZF stream.
pub fn decompress(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(input.len() * 2);
    let mut ip = 0;
    let next = |ip: &mut usize| -> Result<u8, String> {
        let b = *input.get(*ip).ok_or("truncated LZF stream")?;
        *ip += 1;
        Ok(b)
    };
    while ip < input.len() {
        let ctrl = next(&mut ip)? as usize;
        if ctrl < 32 {
            let end = ip + ctrl + 1;
            let lit = input.get(ip..end).ok_or("truncated LZF literal run")?;
            out.extend_from_slice(lit);
            ip = end;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += next(&mut ip)? as usize;
            }
            let dist = ((ctrl & 0x1f) << 8) + next(&mut ip)? as usize + 1;
            let start = out
                .len()
                .checked_sub(dist)
                .ok_or("LZF back-reference before the start of the output")?;
            for k in 0..len + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_back_reference() {
        // "abc" literal, then a match of 6 bytes at distance 3 -> "abcabcabc".
        let stream = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(decompress(&stream).unwrap(), b"abcabcabc");
        // Long match: len field 7 + extra 3 -> 12 bytes at distance 1.
        let stream = [0, b'z', 7 << 5, 3, 0];
        assert_eq!(decompress(&stream).unwrap(), vec![b'z'; 13]);
    }

    #[test]
    fn bad_streams_are_errors() {
        assert!(decompress(&[5, 1, 2]).is_err());
        assert!(decompress(&[0, 1, 1 << 5, 9]).is_err());
        assert!(decompress(&[1 << 5]).is_err());
    }
}
