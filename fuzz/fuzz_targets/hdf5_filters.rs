//! The HDF5 filter decoders (LZF, Blosc, LZ4, bitshuffle, Zstd, Blosc2, and
//! hdf5-reader's built-in ones) on one chunk, through the registry that
//! reads files with them. Input: a byte picking the filter, a byte for the
//! element size, a byte for how many client-data values follow (each 4
//! bytes, little-endian), then the chunk.
#![no_main]

use hdf5_reader::messages::filter_pipeline::FilterDescription;
use libfuzzer_sys::fuzz_target;

const IDS: [u16; 12] = [1, 2, 3, 4, 5, 6, 32000, 32001, 32004, 32008, 32015, 32026];

fuzz_target!(|data: &[u8]| {
    let [pick, elem, ncd, rest @ ..] = data else {
        return;
    };
    let ncd = usize::from(ncd % 8);
    if rest.len() < 4 * ncd {
        return;
    }
    let (cd, chunk) = rest.split_at(4 * ncd);
    let filter = FilterDescription {
        id: IDS[usize::from(*pick) % IDS.len()],
        name: None,
        client_data: cd
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    let registry = cat2_hdf5::filters::registry();
    let _ = registry.apply_with_limit(&filter, chunk, usize::from(*elem), Some(64 << 20));
});
