//! Datasets of an HDF5 file, read in place (`@shared/x.h5/entry/data`):
//! every answer is computed (read through `cat2-hdf5` and compressed as a
//! new NDArray frame), never file bytes. Proxies ([`super::proxy`]) read
//! their data the same way.

use std::sync::Arc;

use cat2_hdf5::DatasetInfo;
use cat2_proto::{ArrayInfo, Info, SChunkInfo};

use super::operand::Opening;
use super::{Dataset, Operand};
use crate::budget::Budget;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::fetch::{
    build_array_frame, indices_frame, result_geometry, selection_frame, FetchOutput, FetchRequest,
};
use crate::hierarchy::h5::{chunk_shape, nbytes, H5Tree};
use crate::hierarchy::Tree;
use crate::meta::cparams_json;
use crate::path::DsPath;
use crate::selection::{read_selection, BoxReader};

/// A dataset inside an HDF5 file.
pub(crate) struct H5Dataset {
    path: DsPath,
    tree: Arc<H5Tree>,
    key: String,
}

impl H5Dataset {
    /// The dataset at `key` of `tree`, if it is one that can be served.
    pub(crate) fn open(path: DsPath, tree: Arc<H5Tree>, key: &str) -> Option<H5Dataset> {
        tree.dataset(key)?;
        Some(H5Dataset {
            path,
            tree,
            key: key.to_string(),
        })
    }

    fn info_of(&self) -> &DatasetInfo {
        self.tree
            .dataset(&self.key)
            .expect("opened only for keys that name datasets")
    }
}

/// The refusal of Blosc2 access (chunks) to an HDF5 file or a dataset in it.
pub(crate) fn not_blosc2(path: &DsPath) -> Error {
    Error::BadRequest(format!(
        "{path} is HDF5, whose chunks are HDF5-compressed rather than Blosc2 chunks; \
         fetch it with the slice_ parameter instead"
    ))
}

impl Dataset for H5Dataset {
    fn path(&self) -> &DsPath {
        &self.path
    }

    fn info(&self) -> Result<Info> {
        let mtime = self.tree.meta().modified.map(crate::meta::iso_time);
        let stored = self.tree.storage_size(&self.key)?;
        Ok(Info::Array(leaf_meta(self.info_of(), stored, mtime)))
    }

    fn fetch(&self, req: &FetchRequest) -> Result<FetchOutput> {
        let d = self.info_of();
        let mut reader = H5Reader::new(self.tree.file(), d);
        let chunks = reader.chunks.clone();
        fetch_hdf5(&mut reader, &d.dtype, &chunks, &chunks, req)
    }

    fn chunk(&self, _nchunk: i64, _budget: &Budget) -> Result<Vec<u8>> {
        Err(not_blosc2(&self.path))
    }

    fn object(&self) -> &Arc<dyn crate::storage::Blob> {
        self.tree.blob()
    }

    fn into_operand(self: Box<Self>, _opening: &mut Opening) -> Result<Box<dyn Operand>> {
        Ok(Box::new(H5Operand {
            tree: self.tree,
            key: self.key,
        }))
    }
}

/// A dataset of an HDF5 file as an expression operand.
pub(crate) struct H5Operand {
    pub(crate) tree: Arc<H5Tree>,
    pub(crate) key: String,
}

impl H5Operand {
    fn dataset(&self) -> Result<&DatasetInfo> {
        self.tree.dataset(&self.key).ok_or_else(|| Error::NotFound {
            path: self.key.clone(),
        })
    }
}

impl Operand for H5Operand {
    fn dtype(&self) -> Result<cat2_expr::DType> {
        Ok(super::lazy::expr_dtype(&self.dataset()?.dtype)?.0)
    }

    fn shape(&self) -> Vec<usize> {
        self.dataset()
            .map(|d| d.shape.iter().map(|&n| n as usize).collect())
            .unwrap_or_default()
    }

    fn geometry(&self) -> Option<(Vec<i64>, Vec<i64>)> {
        None
    }

    fn read(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>> {
        let d = self.dataset()?;
        let s: Vec<i64> = start.iter().map(|&n| n as i64).collect();
        let e: Vec<i64> = stop.iter().map(|&n| n as i64).collect();
        let data = H5Reader::new(self.tree.file(), d).read_box_vec(&s, &e)?;
        super::lazy::to_native(data, &d.dtype)
    }
}

/// A fetch from an HDF5 dataset: every answer is computed (read through
/// `cat2-hdf5` and compressed as a new NDArray frame), never file bytes.
pub(crate) fn fetch_hdf5(
    reader: &mut H5Reader<'_>,
    stored_dtype: &str,
    chunks: &[i64],
    blocks: &[i64],
    req: &FetchRequest,
) -> Result<FetchOutput> {
    if req.filter.is_some() {
        return Err(Error::BadRequest(
            "Filtering is not supported for HDF5-backed datasets".into(),
        ));
    }
    let dtype = DType::parse(stored_dtype)?;
    let shape = reader.shape.clone();
    let budget = &req.budget;
    if let Some(bytes) = reader.stored_chunk_bytes {
        // Chunks are decompressed a thread each.
        let what = format!("HDF5 dataset {}", reader.path);
        budget.check_chunks(bytes, rayon::current_num_threads() as u64, &what)?;
    }
    if let Some(ind) = &req.indices {
        return indices_frame(reader, ind, &shape, &dtype, budget);
    }
    let sel = req.selection(&shape)?;
    if let (Some((base, sub)), None) = (dtype.subarray(), &req.field) {
        // A sub-array element is its own dimensions to NumPy (and to h5py).
        let _held = crate::fetch::reserve_whole(
            budget,
            &sel.out_shape(),
            dtype.itemsize(),
            "the selection",
        )?;
        let data = read_selection(reader, &sel)?;
        let mut out_shape = sel.out_shape();
        out_shape.extend(sub.iter().map(|&n| n as i64));
        return build_array_frame(&data, &out_shape, base, None).map(FetchOutput::Frame);
    }
    let geometry = result_geometry(&sel, &sel.out_shape(), chunks, blocks, dtype.itemsize());
    selection_frame(reader, &sel, &dtype, geometry, req.field.as_deref(), budget)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `/api/info` of a leaf: array metadata with Blosc2 default parameters
/// (the data is recompressed with them when fetched), no file of its own
/// and no byte ranges.
pub(crate) fn leaf_meta(d: &DatasetInfo, stored: u64, mtime: Option<String>) -> ArrayInfo {
    let chunks = chunk_shape(d);
    // Sizes a file declares: counted saturating (a damaged one may declare
    // dimensions whose product overflows).
    let items = crate::budget::bytes_of(chunks.iter().copied(), 1);
    let nbytes = nbytes(d);
    let nchunks = crate::budget::bytes_of(
        (d.shape.iter().zip(&chunks)).map(|(&s, &c)| if c == 0 { 0 } else { s.div_ceil(c) }),
        1,
    );
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
pub(crate) struct H5Reader<'a> {
    file: &'a cat2_hdf5::File,
    path: String,
    pub shape: Vec<i64>,
    pub chunks: Vec<i64>,
    itemsize: usize,
    /// Decompressed bytes of a stored chunk (`None`: contiguous, read by
    /// byte ranges).
    stored_chunk_bytes: Option<u64>,
}

impl<'a> H5Reader<'a> {
    pub(crate) fn new(file: &'a cat2_hdf5::File, d: &cat2_hdf5::DatasetInfo) -> Self {
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
            stored_chunk_bytes: d
                .chunks
                .as_ref()
                .map(|c| crate::budget::bytes_of(c.iter().copied(), d.itemsize as u64)),
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
            .map_err(|e| Error::hdf5(format!("reading HDF5 dataset {}", self.path), e))?;
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
