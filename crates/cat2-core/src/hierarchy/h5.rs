//! HDF5 files browsed in place: the file is a group, its HDF5 groups are
//! groups and its datasets are leaves, read through `cat2-hdf5`.
//!
//! Only datasets a client can receive as an NDArray are leaves: variable
//! length data (NumPy `O`) and datasets of more than [`MAX_DIMS`] dimensions
//! are left out of listings and counts, as the reference does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use cat2_hdf5::{DatasetInfo, File, Node as H5Node};
use cat2_proto::{ArrayInfo, SChunkInfo};

use super::Node;
use crate::error::{Error, Result};
use crate::filecache::FileCache;
use crate::meta::cparams_json;
use crate::selection::BoxReader;

/// Most dimensions an NDArray has.
pub const MAX_DIMS: usize = 16;

/// The groups and compatible datasets of an HDF5 file.
pub struct H5Tree {
    file: File,
    groups: BTreeSet<String>,
    leaves: BTreeMap<String, DatasetInfo>,
}

/// The stored chunks of a dataset by the coordinates of their first element.
pub use cat2_hdf5::ChunkMap as RawChunkMap;

/// HDF5's superblock signature, found at offset 0, 512, 1024, 2048, ...
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Whether the file at `path` is an HDF5 file, whatever its name: the
/// signature sits at the start or after a user block of 512 bytes times a
/// power of two.
pub fn is_hdf5_file(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut offset = 0u64;
    let mut buf = [0u8; 8];
    while offset + 8 <= len {
        if f.seek(SeekFrom::Start(offset)).is_err() || f.read_exact(&mut buf).is_err() {
            return false;
        }
        if &buf == SIGNATURE {
            return true;
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    false
}

/// Whether a dataset can be served as an NDArray.
pub fn compatible(d: &DatasetInfo) -> bool {
    d.shape.len() <= MAX_DIMS && d.itemsize > 0 && !d.dtype.contains("|O")
}

/// Files whose structure was read lately. Each holds the file's decoded-chunk
/// cache (bounded by `cat2_hdf5::CHUNK_CACHE_BYTES`), so this bounds memory too.
static TREES: FileCache<H5Tree> = FileCache::new(8);

impl H5Tree {
    /// [`H5Tree::open`], keeping the last few files read while they are
    /// unchanged (size, modification time and inode).
    pub fn open_cached(path: &Path) -> Option<Arc<H5Tree>> {
        TREES
            .get_or_open(path, |_| (), |p| H5Tree::open(p).ok_or(()))
            .ok()
    }

    /// Reads the structure of the HDF5 file at `path`; `None` when it is not
    /// one that can be read.
    pub fn open(path: &Path) -> Option<H5Tree> {
        let file = File::open(path).ok()?;
        let nodes = file.walk().ok()?;
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
        Some(H5Tree {
            file,
            groups,
            leaves,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// The stored chunks of the dataset at `key` (read once per file version).
    pub fn raw_chunks(&self, key: &str) -> Result<Arc<RawChunkMap>> {
        self.file
            .chunk_map(key)
            .map_err(|e| Error::BadRequest(format!("reading the chunk index of {key}: {e}")))
    }

    /// Bytes the dataset at `key` occupies in the file.
    pub fn storage_size(&self, key: &str) -> Result<u64> {
        match self.dataset(key).and_then(|d| d.chunks.as_ref()) {
            Some(_) => Ok(self.raw_chunks(key)?.values().map(|c| c.size).sum()),
            None => self
                .file
                .storage_size(key)
                .map_err(|e| Error::BadRequest(format!("reading the layout of {key}: {e}"))),
        }
    }

    /// What `key` (`/g/a`) names.
    pub fn lookup(&self, key: &str) -> Option<Node<'static>> {
        if key == "/" || self.groups.contains(key) {
            Some(Node::Group)
        } else if self.leaves.contains_key(key) {
            Some(Node::Leaf)
        } else {
            None
        }
    }

    /// The dataset at `key`, when it is a leaf.
    pub fn dataset(&self, key: &str) -> Option<&DatasetInfo> {
        self.leaves.get(key)
    }

    /// The leaves below `prefix`.
    pub fn leaves(&self, prefix: &str) -> Vec<&DatasetInfo> {
        let start = format!("{}/", prefix.trim_end_matches('/'));
        self.leaves
            .range(start.clone()..)
            .take_while(|(k, _)| k.starts_with(&start))
            .map(|(_, d)| d)
            .collect()
    }

    /// Bytes of data below `prefix`.
    pub fn size(&self, prefix: &str) -> u64 {
        self.leaves(prefix).iter().map(|d| nbytes(d)).sum()
    }

    /// What `/api/list` shows for the file (`None`) or a path in it.
    pub fn list(&self, inner: Option<&str>) -> Vec<String> {
        let prefix = inner.unwrap_or("/");
        let strip = prefix.trim_end_matches('/').len() + 1;
        let mut names: Vec<String> = self
            .leaves(prefix)
            .iter()
            .filter_map(|d| d.path.get(strip..))
            .map(str::to_string)
            .collect();
        names.sort_unstable();
        if names.is_empty() {
            if let Some(key) = inner {
                if self.leaves.contains_key(key) {
                    names.push(key.rsplit('/').next().unwrap_or(key).to_string());
                }
            }
        }
        names
    }
}

/// Uncompressed bytes of a dataset.
pub fn nbytes(d: &DatasetInfo) -> u64 {
    d.shape
        .iter()
        .try_fold(d.itemsize as u64, |acc, &n| acc.checked_mul(n))
        .unwrap_or(u64::MAX)
}

/// The chunk shape a leaf is served with: the HDF5 chunk shape, or the
/// whole shape for contiguous (and scalar) datasets.
pub fn chunk_shape(d: &DatasetInfo) -> Vec<u64> {
    match &d.chunks {
        Some(c) if c.len() == d.shape.len() => c.clone(),
        _ => d.shape.clone(),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `/api/info` of a leaf: array metadata with Blosc2 default parameters
/// (the data is recompressed with them when fetched), no file of its own
/// and no byte ranges.
pub fn leaf_meta(d: &DatasetInfo, stored: u64, mtime: Option<String>) -> ArrayInfo {
    let chunks = chunk_shape(d);
    let items: u64 = chunks.iter().product();
    let nbytes = nbytes(d);
    let nchunks: u64 = d
        .shape
        .iter()
        .zip(&chunks)
        .map(|(&s, &c)| if c == 0 { 0 } else { s.div_ceil(c) })
        .product();
    let cparams = cat2_blosc2::CParams::zstd_shuffle(d.itemsize);
    let schunk = SChunkInfo {
        // As for a proxy: the bytes the dataset takes in the HDF5 file.
        cbytes: to_i64(stored),
        chunkshape: to_i64(items),
        chunksize: to_i64(items.saturating_mul(d.itemsize as u64)),
        contiguous: false,
        cparams: cparams_json(&cparams),
        cratio: if stored > 0 {
            nbytes as f64 / stored as f64
        } else {
            0.0
        },
        nbytes: to_i64(nbytes),
        urlpath: None,
        vlmeta: serde_json::Map::new(),
        nchunks: to_i64(nchunks),
        mtime: None,
    };
    let chunks: Vec<i64> = chunks.into_iter().map(to_i64).collect();
    ArrayInfo {
        shape: d.shape.iter().copied().map(to_i64).collect(),
        blocks: chunks.clone(),
        chunks,
        dtype: crate::dataset::display_dtype(&d.dtype),
        schunk,
        mtime,
        accept_ranges: None,
    }
}

/// Reads boxes of an HDF5 dataset.
pub struct H5Reader<'a> {
    file: &'a cat2_hdf5::File,
    path: String,
    pub shape: Vec<i64>,
    pub chunks: Vec<i64>,
    itemsize: usize,
}

impl<'a> H5Reader<'a> {
    pub fn new(file: &'a cat2_hdf5::File, d: &cat2_hdf5::DatasetInfo) -> Self {
        let to_i64 = |v: Vec<u64>| -> Vec<i64> {
            v.into_iter()
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
                .collect()
        };
        H5Reader {
            file,
            path: d.path.clone(),
            shape: to_i64(d.shape.clone()),
            chunks: to_i64(chunk_shape(d)),
            itemsize: d.itemsize,
        }
    }
}

impl BoxReader for H5Reader<'_> {
    fn shape(&self) -> &[i64] {
        &self.shape
    }
    fn chunk_shape(&self) -> &[i64] {
        &self.chunks
    }
    fn itemsize(&self) -> usize {
        self.itemsize
    }
    fn read_box_vec(&mut self, start: &[i64], stop: &[i64]) -> Result<Vec<u8>> {
        let to_u64 = |v: &[i64]| -> Vec<u64> { v.iter().map(|&n| n.max(0) as u64).collect() };
        let data = self
            .file
            .read_box(&self.path, &to_u64(start), &to_u64(stop))
            .map_err(|e| Error::BadRequest(format!("reading HDF5 dataset {}: {e}", self.path)))?;
        let items: i64 = start
            .iter()
            .zip(stop)
            .map(|(a, b)| (b - a).max(0))
            .product();
        if data.len() as u64 != items as u64 * self.itemsize as u64 {
            return Err(Error::BadRequest(format!(
                "reading HDF5 dataset {}: got {} bytes for a box of {items} items",
                self.path,
                data.len(),
            )));
        }
        Ok(data)
    }

    fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()> {
        let data = self.read_box_vec(start, stop)?;
        crate::selection::fill_box(data, out, &format!("HDF5 dataset {}", self.path))
    }
}
