//! HDF5 files as a stored file or an upload holds them: opened from memory
//! (`cat2_hdf5::File::open_storage`, as cat2-core opens them from storage),
//! walked, and every dataset described and read in small boxes, with its
//! raw chunk index. Input: the file.
#![no_main]

use std::sync::Arc;

use cat2_hdf5::{DynStorage, File, LinkOpener, Node};
use hdf5_reader::storage::BytesStorage;
use libfuzzer_sys::fuzz_target;

/// The largest box read, in bytes: the server reads nothing larger than its
/// per-request budget allows (`Budget::check_chunks` and the result chunks
/// it reserves), and a file may declare items of gigabytes each.
const MAX_BOX: u64 = 64 << 20;

/// External links lead nowhere.
struct NoLinks;

impl LinkOpener for NoLinks {
    fn open_linked(&self, _filename: &str) -> Option<DynStorage> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    let storage: DynStorage = Arc::new(BytesStorage::new(data.to_vec()));
    let Ok(file) = File::open_storage(storage, "fuzz.h5", Arc::new(NoLinks)) else {
        return;
    };
    let Ok(nodes) = file.walk() else {
        return;
    };
    for node in nodes.iter().take(16) {
        let Node::Dataset(ds) = node else {
            if let Node::Group(g) = node {
                let _ = file.group_attrs(&g.path);
            }
            continue;
        };
        let _ = (file.layout(&ds.path), file.storage_size(&ds.path));
        if let Ok(chunks) = file.raw_chunks(&ds.path) {
            for c in chunks.iter().take(2) {
                if c.size <= 1 << 20 {
                    let _ = file.read_raw_chunk(c);
                }
            }
        }
        let fits = |start: &[u64], stop: &[u64]| {
            (start.iter().zip(stop))
                .map(|(a, b)| b.saturating_sub(*a))
                .try_fold(ds.itemsize as u64, |n, k| n.checked_mul(k))
                .is_some_and(|n| n <= MAX_BOX)
        };
        let start = vec![0; ds.shape.len()];
        let stop: Vec<u64> = ds.shape.iter().map(|&n| n.min(3)).collect();
        if fits(&start, &stop) {
            let _ = file.read_box(&ds.path, &start, &stop);
        }
        let start: Vec<u64> = ds.shape.iter().map(|&n| n.saturating_sub(2)).collect();
        if fits(&start, &ds.shape) {
            let _ = file.read_box(&ds.path, &start, &ds.shape);
        }
    }
});
