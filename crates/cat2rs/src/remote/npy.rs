//! NumPy's `.npy` files: written by `show --npy`, read by `append --npy`.

use anyhow::{bail, Context, Result};
use cat2_client::Array;

/// A `.npy` file (format 1, 2 or 3, C order) as an array.
pub fn parse_npy(bytes: &[u8]) -> Result<Array> {
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        bail!("not a .npy file");
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!(".npy format version {v} is not known"),
    };
    let header = std::str::from_utf8(bytes.get(start..start + hlen).context("truncated header")?)
        .context("the header is not text")?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}'"))
            .with_context(|| format!("no {key} in the header"))?;
        Ok(header[at + key.len() + 2..].trim_start_matches([':', ' ']))
    };
    if field("fortran_order")?.starts_with("True") {
        bail!("Fortran-ordered .npy files are not supported; save with np.ascontiguousarray");
    }
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .context("descr is not a simple dtype string")?
        .to_string();
    let shape_text = field("shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|t| t.split(')').next())
        .context("no shape tuple")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<i64>().context("a dimension is not a number"))
        .collect::<Result<Vec<_>>>()?;
    Ok(Array {
        shape,
        dtype: descr,
        data: bytes[start + hlen..].to_vec(),
    })
}

/// The array as a `.npy` file (format 1.0).
pub fn npy_bytes(arr: &Array) -> Vec<u8> {
    let shape = match arr.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", arr.shape[0]),
        _ => format!(
            "({})",
            arr.shape
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        arr.dtype
    );
    // Magic (6) + version (2) + length (2) + header, padded to 64 bytes with a final newline.
    let pad = 64 - (10 + header.len() + 1) % 64;
    header.push_str(&" ".repeat(pad % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&arr.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_files_read_back() {
        let arr = Array {
            shape: vec![2, 3],
            dtype: "<u2".into(),
            data: (0..12).collect(),
        };
        assert_eq!(parse_npy(&npy_bytes(&arr)).unwrap(), arr);
        assert!(parse_npy(b"not npy").is_err());
    }

    #[test]
    fn npy_headers_are_aligned() {
        let arr = Array {
            shape: vec![2, 3],
            dtype: "<i4".into(),
            data: vec![0; 24],
        };
        let bytes = npy_bytes(&arr);
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(bytes.len(), 10 + hlen + 24);
    }
}
