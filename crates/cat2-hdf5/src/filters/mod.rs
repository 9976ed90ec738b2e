//! Decoders for the HDF5 filters that `hdf5-reader` does not build in, and the registry
//! that plugs them into it.
//!
//! Built into `hdf5-reader`: deflate (1), shuffle (2), fletcher32 (3), szip (4), nbit (5),
//! scale-offset (6). Added here: LZF (32000), Blosc (32001), hdf5plugin's LZ4 (32004,
//! replacing the built-in one, which fails on multi-block chunks), bitshuffle (32008),
//! Zstd (32015) and Blosc2 (32026).

pub(crate) mod bitshuffle;
mod lz4;
mod lzf;

use hdf5_reader::messages::filter_pipeline::FilterDescription;
use hdf5_reader::FilterRegistry;

use crate::{Error, Result};

pub use bitshuffle::decode as decode_bitshuffle;
pub use lzf::decompress as lzf_decompress;

/// LZF (h5py's own filter).
pub const LZF: u16 = 32000;
/// Blosc (C-Blosc1/2 chunk format).
pub const BLOSC: u16 = 32001;
/// LZ4 in hdf5plugin's block format.
pub const LZ4: u16 = 32004;
/// Bitshuffle, optionally with LZ4 or Zstd blocks.
pub const BITSHUFFLE: u16 = 32008;
/// Zstd (one Zstd frame per chunk).
pub const ZSTD: u16 = 32015;
/// Blosc2 (each chunk is a b2nd cframe).
pub const BLOSC2: u16 = 32026;

/// Filter ids this crate can decode, with their names.
const SUPPORTED: &[(u16, &str)] = &[
    (1, "gzip"),
    (2, "shuffle"),
    (3, "fletcher32"),
    (4, "szip"),
    (5, "nbit"),
    (6, "scaleoffset"),
    (LZF, "lzf"),
    (BLOSC, "blosc"),
    (LZ4, "lz4"),
    (BITSHUFFLE, "bitshuffle"),
    (ZSTD, "zstd"),
    (BLOSC2, "blosc2"),
];

/// Names of registered filters we cannot decode (from the HDF Group's filter list).
const KNOWN_UNSUPPORTED: &[(u16, &str)] = &[
    (307, "bzip2"),
    (32013, "zfp"),
    (32017, "sz"),
    (32018, "fcidecomp"),
    (32019, "jpeg"),
    (32020, "vbz"),
    (32022, "fapec"),
    (32023, "bitgroom"),
    (32024, "granular bitround"),
    (32025, "sz3"),
    (32028, "bitround"),
];

/// The name of a filter id: ours, a known one we refuse, or the name stored in the file.
pub fn filter_name(desc: &FilterDescription) -> String {
    SUPPORTED
        .iter()
        .chain(KNOWN_UNSUPPORTED)
        .find(|(id, _)| *id == desc.id)
        .map(|(_, name)| (*name).to_string())
        .or_else(|| desc.name.clone().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Checks that every filter of a pipeline can be decoded.
pub fn check_pipeline(filters: &[FilterDescription]) -> Result<()> {
    match filters
        .iter()
        .find(|f| !SUPPORTED.iter().any(|(id, _)| *id == f.id))
    {
        Some(f) => Err(Error::UnsupportedFilter {
            id: f.id,
            name: filter_name(f),
        }),
        None => Ok(()),
    }
}

/// An `hdf5-reader` registry with the built-in filters plus ours.
pub fn registry() -> FilterRegistry {
    let mut reg = FilterRegistry::new();
    reg.register(
        LZF,
        Box::new(|_, data, _| wrap(LZF, "lzf", lzf::decompress(data))),
    );
    reg.register(
        BLOSC,
        Box::new(|_, data, _| wrap(BLOSC, "blosc", decode_blosc(data))),
    );
    reg.register(
        LZ4,
        Box::new(|_, data, _| wrap(LZ4, "lz4", lz4::decode(data))),
    );
    reg.register(
        BITSHUFFLE,
        Box::new(|desc, data, elem_size| {
            wrap(
                BITSHUFFLE,
                "bitshuffle",
                bitshuffle::decode(&desc.client_data, data, elem_size),
            )
        }),
    );
    reg.register(
        ZSTD,
        Box::new(|_, data, _| wrap(ZSTD, "zstd", decode_zstd(data))),
    );
    reg.register(
        BLOSC2,
        Box::new(|_, data, _| wrap(BLOSC2, "blosc2", decode_blosc2(data))),
    );
    reg
}

/// Turns a decoder's error text into `hdf5-reader`'s error, keeping the filter's name.
fn wrap(
    id: u16,
    name: &str,
    r: std::result::Result<Vec<u8>, String>,
) -> hdf5_reader::error::Result<Vec<u8>> {
    r.map_err(|e| hdf5_reader::error::Error::FilterError(format!("filter {id} ({name}): {e}")))
}

/// A Blosc filter chunk is one whole Blosc1/Blosc2 chunk.
fn decode_blosc(data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut d = cat2_blosc2::Decompressor::new(1).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    d.decompress(data, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A Blosc2 filter chunk is a cframe holding the whole (padded) HDF5 chunk:
/// a b2nd array for multidimensional chunks, a plain super-chunk otherwise
/// (hdf5plugin writes 1-D chunks without the b2nd metalayer).
fn decode_blosc2(data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    match cat2_blosc2::NdArray::from_cframe(data) {
        Ok(a) => a.to_vec().map_err(|e| e.to_string()),
        Err(nd_err) => cat2_blosc2::SChunk::from_cframe(data)
            .and_then(|sc| sc.to_bytes())
            .map_err(|e| format!("neither a b2nd array ({nd_err}) nor a super-chunk ({e})")),
    }
}

/// A Zstd filter chunk is one Zstd frame (possibly without a content size).
fn decode_zstd(data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    zstd::stream::decode_all(data).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(id: u16, name: Option<&str>) -> FilterDescription {
        FilterDescription {
            id,
            name: name.map(str::to_string),
            client_data: vec![],
        }
    }

    #[test]
    fn unknown_filter_is_named_in_the_error() {
        let err = check_pipeline(&[desc(2, None), desc(307, Some("bzip2"))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dataset uses HDF5 filter 307 (bzip2), which this server cannot decode"
        );
        let err = check_pipeline(&[desc(40000, None)]).unwrap_err();
        assert!(err.to_string().contains("40000 (unknown)"), "{err}");
        assert!(check_pipeline(&[desc(2, None), desc(BITSHUFFLE, None)]).is_ok());
    }

    #[test]
    fn zstd_frame_decodes() {
        let data: Vec<u8> = (0..1000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = zstd::bulk::compress(&data, 3).unwrap();
        assert_eq!(decode_zstd(&z).unwrap(), data);
        assert!(decode_zstd(b"not zstd").is_err());
    }

    #[test]
    fn garbage_blosc_is_an_error_not_a_panic() {
        assert!(decode_blosc(&[1, 2, 3]).is_err());
        assert!(decode_blosc2(&[0; 40]).is_err());
    }
}
