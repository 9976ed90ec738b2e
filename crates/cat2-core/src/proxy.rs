//! Serving HDF5 proxies: `.b2nd` files written by unfolding (see
//! [`crate::unfold`]) whose data lives in the HDF5 file they came from.
//!
//! A proxy finds its file as the reference does: climb from the proxy's
//! directory one level per `/` in `_dsetname`, and add `.h5` (or `.hdf5`).
//! cat2rs also accepts any other sibling of that name that *is* an HDF5 file
//! (`scan.nxs` unfolds into `scan/`), and refuses a `_dsetname` that would
//! climb out of the proxy's root: the vlmeta of an uploaded `.b2nd` is the
//! uploader's to choose.
//!
//! The proxy is an array like any other for the rest of the server: its
//! shape, dtype, chunks and blocks are the proxy file's, and its data is read
//! through [`H5Reader`] (only the HDF5 chunks a selection touches, decoded
//! in parallel, with the decoded-chunk cache of the cached file). A chunk of
//! the proxy's grid is a real Blosc2 chunk: the HDF5 chunk itself when the
//! dataset is Blosc2-filtered with the same grid, else computed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cat2_blosc2::{CParams, NdArray};
use cat2_hdf5::DatasetInfo;
use cat2_proto::{ArrayInfo, Info};

use crate::container::h5::{is_hdf5_file, H5Reader, H5Tree};
use crate::dataset::{array_meta, schunk_info};
use crate::error::{Error, Result};
use crate::meta::iso_mtime;
use crate::selection::BoxReader;
use crate::store::Located;
use crate::unfold::DSETNAME_KEY;

/// An opened proxy and the HDF5 dataset behind it.
pub struct Proxy {
    pub arr: NdArray,
    pub tree: Arc<H5Tree>,
    /// The dataset's path in the file (`/entry/data/data`).
    pub key: String,
    /// The HDF5 file.
    pub h5: PathBuf,
}

fn bad(loc: &Located, why: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{} is an HDF5 proxy, but {why}", loc.logical))
}

/// The HDF5 file a proxy at `loc` with dataset name `dsetname` reads from.
fn locate_file(loc: &Located, dsetname: &str) -> Result<PathBuf> {
    let climb = dsetname.matches('/').count();
    // The proxy's directory is `parts - 1` levels below its root; the HDF5
    // file must be at least one level below it.
    let depth = loc.logical.parts().len().saturating_sub(1);
    if climb + 1 > depth {
        return Err(bad(
            loc,
            format!(
                "its dataset name {dsetname:?} points outside {}",
                loc.logical.root().name()
            ),
        ));
    }
    let mut dir: &Path = loc.fs.parent().unwrap_or(Path::new("/"));
    for _ in 0..climb {
        dir = dir.parent().unwrap_or(dir);
    }
    let base = dir.as_os_str().to_owned();
    for ext in [".h5", ".hdf5"] {
        let mut p = base.clone();
        p.push(ext);
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    // Any sibling `<name>.<ext>` that is an HDF5 file (NeXus `.nxs`, ...).
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    if let (Some(name), Some(parent)) = (name, dir.parent()) {
        let prefix = format!("{name}.");
        let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && is_hdf5_file(p))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        if let Some(p) = found.into_iter().next() {
            return Ok(p);
        }
    }
    Err(bad(
        loc,
        format!(
            "its HDF5 file {}.h5 is missing",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ),
    ))
}

impl Proxy {
    /// Opens the HDF5 side of the proxy array `arr` found at `loc`.
    pub fn open(loc: &Located, arr: NdArray) -> Result<Proxy> {
        let dsetname = match arr.schunk().vlmeta_raw(DSETNAME_KEY)? {
            Some(raw) => match cat2_blosc2::decode_msgpack(&raw) {
                rmpv::Value::String(s) => s.into_str().unwrap_or_default(),
                _ => String::new(),
            },
            None => String::new(),
        };
        if dsetname.is_empty() {
            return Err(bad(loc, "it does not name its dataset (_dsetname)"));
        }
        let h5 = locate_file(loc, &dsetname)?;
        let tree = H5Tree::open_cached(&h5)
            .ok_or_else(|| bad(loc, format!("{} is not a readable HDF5 file", h5.display())))?;
        let key = format!("/{}", dsetname.trim_start_matches('/'));
        let d = tree.dataset(&key).ok_or_else(|| {
            bad(
                loc,
                format!(
                    "{} has no dataset {key} that can be served",
                    h5.file_name().unwrap_or_default().to_string_lossy()
                ),
            )
        })?;
        let shape: Vec<i64> = d.shape.iter().map(|&n| n as i64).collect();
        if shape != arr.shape() {
            return Err(bad(
                loc,
                format!(
                    "its shape {:?} no longer matches the dataset's {:?}; unfold the file again",
                    arr.shape(),
                    shape
                ),
            ));
        }
        Ok(Proxy { arr, tree, key, h5 })
    }

    /// The HDF5 dataset.
    pub fn dataset(&self) -> &DatasetInfo {
        // `open` checked that the key names a dataset of the tree.
        self.tree
            .dataset(&self.key)
            .expect("the proxy's dataset was found when it was opened")
    }

    /// A box reader over the HDF5 dataset.
    pub fn reader(&self) -> H5Reader<'_> {
        H5Reader::new(self.tree.file(), self.dataset())
    }

    /// `/api/info`: the proxy's metadata, with the HDF5 storage size as its
    /// compressed size and no byte ranges.
    pub fn info(&self, loc: &Located) -> Result<Info> {
        let meta = std::fs::metadata(&loc.fs).map_err(|e| Error::io("stat", &loc.fs, e))?;
        let mut schunk = schunk_info(self.arr.schunk(), &loc.fs, None)?;
        let stored = self
            .tree
            .file()
            .storage_size(&self.key)
            .map_err(|e| bad(loc, e))?;
        schunk.cbytes = i64::try_from(stored).unwrap_or(i64::MAX);
        schunk.cratio = if stored > 0 {
            schunk.nbytes as f64 / stored as f64
        } else {
            0.0
        };
        let info: ArrayInfo = array_meta(&self.arr, schunk, iso_mtime(&meta), None);
        Ok(Info::Array(info))
    }

    /// Chunk `nchunk` of the proxy's chunk grid, compressed.
    pub fn chunk(&self, nchunk: i64) -> Result<Vec<u8>> {
        let shape = self.arr.shape();
        let chunks: Vec<i64> = self.arr.chunks().into_iter().map(i64::from).collect();
        let blocks: Vec<i64> = self.arr.blocks().into_iter().map(i64::from).collect();
        let nchunks = self.arr.schunk().nchunks();
        if nchunk < 0 || nchunk >= nchunks {
            return Err(Error::BadRequest(format!(
                "nchunk {nchunk} is out of range: the array has {nchunks} chunks"
            )));
        }
        // The chunk's coordinates in the grid (C order).
        let grid: Vec<i64> = shape
            .iter()
            .zip(&chunks)
            .map(|(&s, &c)| if c > 0 { (s + c - 1) / c } else { 0 })
            .collect();
        let mut coord = vec![0i64; grid.len()];
        let mut rest = nchunk;
        for d in (0..grid.len()).rev() {
            let g = grid[d].max(1);
            coord[d] = rest % g;
            rest /= g;
        }
        let start: Vec<i64> = coord.iter().zip(&chunks).map(|(i, c)| i * c).collect();
        if let Some(chunk) = self.passthrough_chunk(&start, &chunks, &blocks)? {
            return Ok(chunk);
        }
        let stop: Vec<i64> = start
            .iter()
            .zip(&chunks)
            .zip(&shape)
            .map(|((a, c), s)| (a + c).min(*s))
            .collect();
        let itemsize = self.arr.itemsize();
        let box_shape: Vec<i64> = start.iter().zip(&stop).map(|(a, b)| b - a).collect();
        let n = box_shape.iter().product::<i64>().max(0) as usize * itemsize;
        let mut data = vec![0u8; n];
        self.reader().read_box(&start, &stop, &mut data)?;
        let packed = cat2_blosc2::pack_chunk(&data, &box_shape, &chunks, &blocks, itemsize);
        let mut cparams: CParams = self.arr.schunk().cparams();
        cparams.typesize = cat2_blosc2::cparams::clamp_typesize(itemsize);
        cparams.blocksize = i32::try_from(blocks.iter().product::<i64>() * itemsize as i64)
            .map_err(|_| Error::BadRequest("a block of the proxy exceeds 2 GB".into()))?;
        cparams.nthreads = cat2_blosc2::cparams::default_nthreads();
        Ok(cat2_blosc2::Compressor::new(&cparams)?.compress(&packed)?)
    }

    /// The stored chunk itself, when the dataset's only filter is Blosc2,
    /// the proxy's grid is the HDF5 one and the chunk's frame holds one
    /// chunk of the proxy's blocks: then it already is the answer.
    fn passthrough_chunk(
        &self,
        start: &[i64],
        chunks: &[i64],
        blocks: &[i64],
    ) -> Result<Option<Vec<u8>>> {
        let d = self.dataset();
        let same_grid = d
            .chunks
            .as_ref()
            .is_some_and(|c| c.iter().map(|&n| n as i64).eq(chunks.iter().copied()));
        if d.filters.len() != 1 || d.filters[0].id != cat2_hdf5::filters::BLOSC2 || !same_grid {
            return Ok(None);
        }
        let file = self.tree.file();
        let Ok(raw_chunks) = file.raw_chunks(&self.key) else {
            return Ok(None);
        };
        let want: Vec<u64> = start.iter().map(|&s| s as u64).collect();
        let Some(rc) = raw_chunks.iter().find(|c| c.offsets == want) else {
            return Ok(None);
        };
        if rc.filter_mask != 0 {
            return Ok(None);
        }
        let Ok(raw) = file.read_raw_chunk(rc) else {
            return Ok(None);
        };
        let Ok(inner) = NdArray::from_cframe(&raw) else {
            return Ok(None);
        };
        let inner_chunks: Vec<i64> = inner.chunks().into_iter().map(i64::from).collect();
        let inner_blocks: Vec<i64> = inner.blocks().into_iter().map(i64::from).collect();
        if inner.schunk().nchunks() != 1 || inner_chunks != chunks || inner_blocks != blocks {
            return Ok(None);
        }
        Ok(Some(inner.schunk().chunk(0)?))
    }
}
