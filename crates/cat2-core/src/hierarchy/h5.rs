//! HDF5 files browsed in place: the file is a group, its HDF5 groups are
//! groups and its datasets are leaves, read through `cat2-hdf5`.
//!
//! Only datasets a client can receive as an NDArray are leaves: variable
//! length data (NumPy `O`) and datasets of more than [`MAX_DIMS`] dimensions
//! are left out of listings and counts, as the reference does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cat2_hdf5::{DatasetInfo, File, Node as H5Node};

use super::{Member, Tree};
use crate::error::{Error, Result};
use crate::filecache::FileCache;
use crate::storage::{Blob, Key, ReadAt, Storage};

/// Most dimensions an NDArray has.
pub(crate) const MAX_DIMS: usize = 16;

/// The groups and compatible datasets of an HDF5 file.
pub struct H5Tree {
    file: File,
    /// The file's object, as it was read.
    blob: Arc<dyn Blob>,
    groups: BTreeSet<String>,
    leaves: BTreeMap<String, DatasetInfo>,
}

/// The stored chunks of a dataset by the coordinates of their first element.
pub(crate) use cat2_hdf5::ChunkMap as RawChunkMap;

/// HDF5's superblock signature, found at offset 0, 512, 1024, 2048, ...
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Whether `bytes` are an HDF5 file, whatever its name: the signature sits
/// at the start or after a user block of 512 bytes times a power of two.
pub(crate) fn has_hdf5_signature(bytes: &dyn ReadAt) -> bool {
    let len = bytes.len();
    let mut offset = 0u64;
    let mut buf = [0u8; 8];
    while offset + 8 <= len {
        if !matches!(bytes.read_at(offset, &mut buf), Ok(8)) {
            return false;
        }
        if &buf == SIGNATURE {
            return true;
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    false
}

/// Whether `bytes` (an upload, say, named `name`) open as an HDF5 file: the
/// superblock parses and the root group lists. External links are not followed.
pub(crate) fn check_hdf5(bytes: Arc<dyn ReadAt>, name: &str) -> std::result::Result<(), String> {
    struct NoLinks;
    impl cat2_hdf5::LinkOpener for NoLinks {
        fn open_linked(&self, _filename: &str) -> Option<cat2_hdf5::DynStorage> {
            None
        }
    }
    File::open_storage(Arc::new(BlobBytes(bytes)), name, Arc::new(NoLinks))
        .and_then(|file| file.check_root())
        .map_err(|e| e.to_string())
}

/// Bytes (an object's, staged ones) as the HDF5 reader reads them.
struct BlobBytes(Arc<dyn ReadAt>);

impl cat2_hdf5::Storage for BlobBytes {
    fn len(&self) -> u64 {
        ReadAt::len(self.0.as_ref())
    }
    fn read_range(
        &self,
        offset: u64,
        len: usize,
    ) -> hdf5_reader_result::Result<cat2_hdf5::StorageBuffer> {
        let buf = self.0.read_range(offset, len)?;
        Ok(cat2_hdf5::StorageBuffer::from_vec(buf))
    }
}

/// The HDF5 reader's own error and result types.
mod hdf5_reader_result {
    pub(super) type Result<T> = std::result::Result<T, cat2_hdf5::ReaderError>;
}

/// External links of a file in a store: the files beside it (or below),
/// never above its directory or outside the store.
struct StoreLinks {
    storage: Arc<dyn Storage>,
    dir: Key,
}

impl cat2_hdf5::LinkOpener for StoreLinks {
    fn open_linked(&self, filename: &str) -> Option<cat2_hdf5::DynStorage> {
        let segments = cat2_hdf5::link_segments(filename)?;
        let mut key = self.dir.clone();
        for s in &segments {
            key = key.join(s).ok()?;
        }
        let blob: Arc<dyn ReadAt> = self.storage.open(&key).ok()?;
        Some(Arc::new(BlobBytes(blob)))
    }
}

/// Opens the HDF5 file in `blob`, an object of `storage` whose neighbours
/// its external links may name.
pub(crate) fn open_file(
    blob: &Arc<dyn Blob>,
    storage: Arc<dyn Storage>,
) -> cat2_hdf5::Result<File> {
    let key = blob.meta().key.clone();
    let links = StoreLinks {
        storage,
        dir: key.parent().unwrap_or_default(),
    };
    File::open_storage(
        Arc::new(BlobBytes(blob.clone() as Arc<dyn ReadAt>)),
        key.name(),
        Arc::new(links),
    )
}

/// Whether a dataset can be served as an NDArray.
pub(crate) fn compatible(d: &DatasetInfo) -> bool {
    d.shape.len() <= MAX_DIMS && d.itemsize > 0 && !d.dtype.contains("|O")
}

/// Files whose structure was read lately. Each holds the file's decoded-chunk
/// cache (bounded by `cat2_hdf5::CHUNK_CACHE_BYTES`), so this bounds memory too.
static TREES: FileCache<H5Tree> = FileCache::new(8);

impl H5Tree {
    /// [`H5Tree::open`], keeping the last few files read while they are
    /// unchanged (their version).
    pub fn open_cached(
        storage: &Arc<dyn Storage>,
        key: &Key,
    ) -> std::result::Result<Arc<H5Tree>, String> {
        TREES.get_or_open(
            storage.as_ref(),
            key,
            |e| e.to_string(),
            |blob| H5Tree::open(blob, storage.clone()),
        )
    }

    /// Reads the structure of the HDF5 file in `blob` (an object of
    /// `storage`, whose neighbours external links may name), or says why it
    /// is not one that can be read.
    pub fn open(
        blob: Arc<dyn Blob>,
        storage: Arc<dyn Storage>,
    ) -> std::result::Result<H5Tree, String> {
        let file = open_file(&blob, storage).map_err(|e| e.to_string())?;
        let nodes = file.walk().map_err(|e| e.to_string())?;
        let mut groups = BTreeSet::new();
        let mut leaves = BTreeMap::new();
        for n in nodes {
            match n {
                H5Node::Group(g) => {
                    groups.insert(g.path);
                }
                H5Node::Dataset(d) if compatible(&d) => {
                    leaves.insert(d.path.clone(), d);
                }
                H5Node::Dataset(_) => {}
            }
        }
        Ok(H5Tree {
            file,
            blob,
            groups,
            leaves,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// What is known of the file's object (the version read).
    pub fn meta(&self) -> &crate::storage::ObjectMeta {
        self.blob.meta()
    }

    /// The stored chunks of the dataset at `key` (read once per file version).
    pub fn raw_chunks(&self, key: &str) -> Result<Arc<RawChunkMap>> {
        self.file
            .chunk_map(key)
            .map_err(|e| Error::hdf5(format!("reading the chunk index of {key}"), e))
    }

    /// Bytes the dataset at `key` occupies in the file.
    pub fn storage_size(&self, key: &str) -> Result<u64> {
        match self.dataset(key).and_then(|d| d.chunks.as_ref()) {
            Some(_) => Ok(self.raw_chunks(key)?.values().map(|c| c.size).sum()),
            None => self
                .file
                .storage_size(key)
                .map_err(|e| Error::hdf5(format!("reading the layout of {key}"), e)),
        }
    }

    /// The dataset at `key`, when it is a leaf.
    pub fn dataset(&self, key: &str) -> Option<&DatasetInfo> {
        self.leaves.get(key)
    }

    /// The datasets below `prefix`.
    pub fn datasets_below(&self, prefix: &str) -> Vec<&DatasetInfo> {
        let start = format!("{}/", prefix.trim_end_matches('/'));
        self.leaves
            .range(start.clone()..)
            .take_while(|(k, _)| k.starts_with(&start))
            .map(|(_, d)| d)
            .collect()
    }
}

impl Tree for H5Tree {
    fn blob(&self) -> &Arc<dyn Blob> {
        &self.blob
    }

    fn lookup(&self, key: &str) -> Option<Member<'_>> {
        if key == "/" || self.groups.contains(key) {
            Some(Member::Group)
        } else if self.leaves.contains_key(key) {
            Some(Member::Leaf)
        } else {
            None
        }
    }

    fn leaves(&self, prefix: &str) -> Vec<String> {
        self.datasets_below(prefix)
            .iter()
            .map(|d| d.path.clone())
            .collect()
    }

    /// Bytes of data below `prefix`.
    fn size(&self, prefix: &str) -> u64 {
        self.datasets_below(prefix).iter().map(|d| nbytes(d)).sum()
    }
}

/// Uncompressed bytes of a dataset.
pub(crate) fn nbytes(d: &DatasetInfo) -> u64 {
    d.shape
        .iter()
        .try_fold(d.itemsize as u64, |acc, &n| acc.checked_mul(n))
        .unwrap_or(u64::MAX)
}

/// The chunk shape a leaf is served with: the HDF5 chunk shape, or the
/// whole shape for contiguous (and scalar) datasets.
pub(crate) fn chunk_shape(d: &DatasetInfo) -> Vec<u64> {
    match &d.chunks {
        Some(c) if c.len() == d.shape.len() => c.clone(),
        _ => d.shape.clone(),
    }
}
