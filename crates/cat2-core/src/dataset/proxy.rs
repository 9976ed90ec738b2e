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

use std::sync::Arc;

use cat2_blosc2::{CParams, NdArray};
use cat2_hdf5::DatasetInfo;
use cat2_proto::{ArrayInfo, Info};

use super::h5::{fetch_hdf5, H5Reader};
use super::operand::Opening;
use super::{array_meta, Dataset, Download, Opener, Operand};
use crate::budget::Budget;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::fetch::{FetchOutput, FetchRequest};
use crate::hierarchy::h5::H5Tree;
use crate::path::DsPath;
use crate::selection::BoxReader;
use crate::storage::{Blob, Key, Storage};

/// The vlmeta key naming the dataset inside the HDF5 file.
pub(crate) const DSETNAME_KEY: &str = "_dsetname";

/// A proxy array, found at `path`: its data is opened from the HDF5 file on
/// every use (the file's tree is cached while it is unchanged).
pub(crate) struct ProxyDataset {
    path: DsPath,
    blob: Arc<dyn Blob>,
    arr: NdArray,
    storage: Arc<dyn Storage>,
    opener: Arc<dyn Opener>,
}

/// The HDF5 side of a proxy: the dataset behind the array.
pub(crate) struct Proxy<'a> {
    pub arr: &'a NdArray,
    pub tree: Arc<H5Tree>,
    /// The dataset's path in the file (`/entry/data/data`).
    pub key: String,
}

/// A proxy's refusal: `path is an HDF5 proxy, but ...`.
pub(crate) fn proxy_refusal(path: &DsPath, why: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{path} is an HDF5 proxy, but {why}"))
}

impl<'a> Proxy<'a> {
    /// Opens the HDF5 side of the proxy array `arr` found at `path` (stored
    /// at `key`).
    pub(crate) fn open(
        storage: &Arc<dyn Storage>,
        opener: &dyn Opener,
        path: &DsPath,
        key: &Key,
        arr: &'a NdArray,
    ) -> Result<Proxy<'a>> {
        let dsetname = match arr.schunk().vlmeta_raw(DSETNAME_KEY)? {
            Some(raw) => match cat2_blosc2::decode_msgpack(&raw) {
                rmpv::Value::String(s) => s.into_str().unwrap_or_default(),
                _ => String::new(),
            },
            None => String::new(),
        };
        if dsetname.is_empty() {
            return Err(proxy_refusal(
                path,
                "it does not name its dataset (_dsetname)",
            ));
        }
        let h5 = opener.proxy_file(path, key, &dsetname)?;
        let tree = H5Tree::open_cached(storage, &h5)
            .map_err(|_| proxy_refusal(path, format!("{h5} is not a readable HDF5 file")))?;
        let dset = format!("/{}", dsetname.trim_start_matches('/'));
        let d = tree.dataset(&dset).ok_or_else(|| {
            proxy_refusal(
                path,
                format!("{} has no dataset {dset} that can be served", h5.name()),
            )
        })?;
        let shape: Vec<i64> = d.shape.iter().map(|&n| n as i64).collect();
        if shape != arr.shape() {
            return Err(proxy_refusal(
                path,
                format!(
                    "its shape {:?} no longer matches the dataset's {:?}; unfold the file again",
                    arr.shape(),
                    shape
                ),
            ));
        }
        Ok(Proxy {
            arr,
            tree,
            key: dset,
        })
    }

    /// The HDF5 dataset.
    pub(crate) fn dataset(&self) -> &DatasetInfo {
        // `open` checked that the key names a dataset of the tree.
        self.tree
            .dataset(&self.key)
            .expect("the proxy's dataset was found when it was opened")
    }

    /// A box reader over the HDF5 dataset.
    pub(crate) fn reader(&self) -> H5Reader<'_> {
        H5Reader::new(self.tree.file(), self.dataset())
    }

    /// `/api/info`: the proxy's metadata, with the HDF5 storage size as its
    /// compressed size and no byte ranges.
    pub(crate) fn info(&self, blob: &Arc<dyn Blob>, path: &DsPath) -> Result<Info> {
        let mut schunk = super::schunk_info(self.arr.schunk(), Some(path.to_string()), None)?;
        let stored = self.tree.storage_size(&self.key)?;
        schunk.cbytes = i64::try_from(stored).unwrap_or(i64::MAX);
        schunk.cratio = if stored > 0 {
            schunk.nbytes as f64 / stored as f64
        } else {
            0.0
        };
        let info: ArrayInfo = array_meta(self.arr, schunk, super::mtime_of(blob), None);
        Ok(Info::Array(info))
    }

    /// Chunk `nchunk` of the proxy's chunk grid, compressed.
    pub(crate) fn chunk(&self, nchunk: i64, budget: &Budget) -> Result<Vec<u8>> {
        let shape = self.arr.shape();
        let chunks: Vec<i64> = self.arr.chunks().into_iter().map(i64::from).collect();
        let blocks: Vec<i64> = self.arr.blocks().into_iter().map(i64::from).collect();
        let nchunks = self.arr.schunk().nchunks();
        if nchunk < 0 || nchunk >= nchunks {
            return Err(Error::BadRequest(format!(
                "nchunk {nchunk} is out of range: the array has {nchunks} chunks"
            )));
        }
        let (start, stop) = crate::grid::chunk_box(&shape, &chunks, nchunk);
        if let Some(chunk) = self.passthrough_chunk(&start, &chunks, &blocks)? {
            return Ok(chunk);
        }
        // Read, laid out and compressed.
        let chunk_bytes =
            crate::budget::bytes_of(crate::budget::dims_of(&chunks), self.arr.itemsize() as u64);
        budget.check_chunks(chunk_bytes, 3, &"the HDF5 proxy")?;
        let data = self.reader().read_box_vec(&start, &stop)?;
        let cparams: CParams = self.arr.schunk().cparams();
        crate::fetch::compress_chunk(
            data,
            &start,
            &stop,
            &chunks,
            &blocks,
            self.arr.itemsize(),
            cparams,
        )
    }

    /// How the dataset's stored chunks become Blosc2 chunks without being
    /// decompressed, when they can: the proxy's grid is the HDF5 one and the
    /// only filter is Blosc2 (each chunk a one-chunk frame), or the pipeline
    /// is one Blosc2 expresses (re-framed, see `cat2_hdf5::transcode`).
    fn stored_kind(&self) -> Option<StoredKind> {
        let d = self.dataset();
        let chunks: Vec<i64> = self.arr.chunks().into_iter().map(i64::from).collect();
        let same_grid = d
            .chunks
            .as_ref()
            .is_some_and(|c| c.iter().map(|&n| n as i64).eq(chunks.iter().copied()));
        if !same_grid || d.itemsize == 0 {
            return None;
        }
        match d.filters.as_slice() {
            [f] if f.id == cat2_hdf5::filters::BLOSC2 => Some(StoredKind::Blosc2Frame),
            [f] if f.id == cat2_hdf5::filters::BITSHUFFLE
                && matches!(f.params.get(4), Some(2 | 3)) =>
            {
                Some(StoredKind::Reframed)
            }
            [f] if f.id == 1 => Some(StoredKind::Reframed),
            [s, f] if s.id == 2 && f.id == 1 => Some(StoredKind::Reframed),
            _ => None,
        }
    }

    /// The Blosc2 chunk of the stored HDF5 chunk starting at `start`, its
    /// block shape and compression parameters; `None` when that chunk
    /// cannot be passed through (unwritten, filter skipped, odd framing).
    fn stored_chunk(&self, start: &[i64]) -> Result<Option<StoredChunk>> {
        let Some(kind) = self.stored_kind() else {
            return Ok(None);
        };
        let map = self.tree.raw_chunks(&self.key)?;
        let want: Vec<u64> = start.iter().map(|&s| s.max(0) as u64).collect();
        let Some(rc) = map.get(&want) else {
            return Ok(None);
        };
        if rc.filter_mask != 0 {
            return Ok(None);
        }
        let file = self.tree.file();
        let raw = file
            .read_raw_chunk(rc)
            .map_err(|e| Error::hdf5(format!("reading HDF5 dataset {}", self.key), e))?;
        let chunks: Vec<i64> = self.arr.chunks().into_iter().map(i64::from).collect();
        let itemsize = self.arr.itemsize();
        Ok(match kind {
            StoredKind::Blosc2Frame => {
                let Ok(inner) = NdArray::from_cframe(&raw) else {
                    return Ok(None);
                };
                let inner_chunks: Vec<i64> = inner.chunks().into_iter().map(i64::from).collect();
                if inner.schunk().nchunks() != 1 || inner_chunks != chunks {
                    return Ok(None);
                }
                let blocks = inner.blocks().into_iter().map(i64::from).collect();
                let mut cparams = inner.schunk().cparams();
                cparams.typesize = cat2_blosc2::cparams::clamp_typesize(itemsize);
                Some((inner.schunk().chunk(0)?, blocks, cparams))
            }
            StoredKind::Reframed => {
                let chunk_bytes = chunks.iter().product::<i64>() as usize * itemsize;
                let filters = &self.dataset().filters;
                let Some(chunk) =
                    cat2_hdf5::transcode::chunk_as_blosc2(filters, &raw, chunk_bytes, itemsize)
                else {
                    return Ok(None);
                };
                let (nbytes, _, blocksize) = cat2_blosc2::chunk_sizes(&chunk)?;
                // A short last block would not be a block of the array.
                if blocksize <= 0 || nbytes % blocksize != 0 {
                    return Ok(None);
                }
                let Some(blocks) = row_slab_blocks(&chunks, blocksize as usize / itemsize) else {
                    return Ok(None);
                };
                // What the chunk's own header says (frames record it).
                let mut cparams = CParams::lz4_fast(itemsize);
                cparams.codec = chunk.get(22).copied().unwrap_or(cparams.codec);
                cparams.filters = [0, 0, 0, 0, 0, chunk.get(21).copied().unwrap_or(0)];
                cparams.blocksize = blocksize;
                Some((chunk, blocks, cparams))
            }
        })
    }

    /// The stored Blosc2 chunk at index `index` of the chunk grid (C order).
    fn stored_chunk_at(&self, index: i64) -> Result<Option<StoredChunk>> {
        let chunks: Vec<i64> = self.arr.chunks().into_iter().map(i64::from).collect();
        let (start, _) = crate::grid::chunk_box(&self.arr.shape(), &chunks, index);
        self.stored_chunk(&start)
    }

    /// A fetch answered by copying stored chunks into the result, when the
    /// selection is made of whole chunks and they can be passed through.
    pub(crate) fn passthrough(&self, sel: &crate::selection::Selection) -> Result<Option<Vec<u8>>> {
        // The geometry of what passes through: the first selected chunk's.
        let first: Vec<i64> = sel
            .dims
            .iter()
            .zip(self.arr.chunks())
            .map(|(s, c)| s.start / i64::from(c).max(1) * i64::from(c))
            .collect();
        let Some((first_chunk, blocks, cparams)) = self.stored_chunk(&first)? else {
            return Ok(None);
        };
        let chunks: Vec<i64> = self.arr.chunks().into_iter().map(i64::from).collect();
        let first_index = crate::grid::chunk_index(&self.arr.shape(), &chunks, &first);
        let mut first_chunk = Some(first_chunk);
        let source = crate::fetch::passthrough::StoredChunks {
            shape: self.arr.shape(),
            chunks: self.arr.chunks().into_iter().map(i64::from).collect(),
            blocks: blocks.clone(),
            dtype: self.arr.dtype(),
            cparams,
        };
        crate::fetch::passthrough::passthrough_with(&source, sel, &mut |index| {
            if index == first_index {
                if let Some(c) = first_chunk.take() {
                    return Ok(Some(c));
                }
            }
            // Every chunk must share the first one's blocks.
            Ok(self
                .stored_chunk_at(index)?
                .filter(|(_, b, _)| *b == blocks)
                .map(|(c, _, _)| c))
        })
    }

    /// The stored chunk as the answer to `/api/chunk`, when its bytes decode
    /// to what the proxy's own blocks would hold.
    fn passthrough_chunk(
        &self,
        start: &[i64],
        chunks: &[i64],
        blocks: &[i64],
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .stored_chunk(start)?
            .filter(|(_, b, _)| b == blocks || (c_order(chunks, b) && c_order(chunks, blocks)))
            .map(|(c, _, _)| c))
    }
}

impl ProxyDataset {
    pub(crate) fn new(
        path: DsPath,
        blob: Arc<dyn Blob>,
        arr: NdArray,
        storage: Arc<dyn Storage>,
        opener: Arc<dyn Opener>,
    ) -> ProxyDataset {
        ProxyDataset {
            path,
            blob,
            arr,
            storage,
            opener,
        }
    }

    fn proxy(&self) -> Result<Proxy<'_>> {
        Proxy::open(
            &self.storage,
            self.opener.as_ref(),
            &self.path,
            &self.blob.meta().key,
            &self.arr,
        )
    }
}

impl Dataset for ProxyDataset {
    fn path(&self) -> &DsPath {
        &self.path
    }

    fn info(&self) -> Result<Info> {
        self.proxy()?.info(&self.blob, &self.path)
    }

    /// Computed from the HDF5 dataset like an in-place leaf, with the proxy's
    /// geometry guiding the result's; whole stored chunks (a detector frame)
    /// are copied, not recomputed.
    fn fetch(&self, req: &FetchRequest) -> Result<FetchOutput> {
        let proxy = self.proxy()?;
        let plain = req.field.is_none() && req.indices.is_none() && req.filter.is_none();
        if plain && DType::parse(&proxy.dataset().dtype)?.subarray().is_none() {
            let sel = req.selection(&self.arr.shape())?;
            if let Some(frame) = proxy.passthrough(&sel)? {
                return Ok(FetchOutput::Frame(frame));
            }
        }
        let chunks: Vec<i64> = self.arr.chunks().into_iter().map(i64::from).collect();
        let blocks: Vec<i64> = self.arr.blocks().into_iter().map(i64::from).collect();
        let mut reader = proxy.reader();
        fetch_hdf5(&mut reader, &proxy.dataset().dtype, &chunks, &blocks, req)
    }

    fn chunk(&self, nchunk: i64, budget: &Budget) -> Result<Vec<u8>> {
        self.proxy()?.chunk(nchunk, budget)
    }

    /// Downloaded as the array of its data, computed.
    fn download(&self, budget: &Budget) -> Result<Download> {
        super::computed(self, budget)
    }

    /// The carrier file itself.
    fn preview(&self, _budget: &Budget) -> Result<Download> {
        Ok(Download::Stored(self.blob.clone()))
    }

    fn object(&self) -> &Arc<dyn Blob> {
        &self.blob
    }

    fn into_operand(self: Box<Self>, _opening: &mut Opening) -> Result<Box<dyn Operand>> {
        let Proxy { tree, key, .. } = self.proxy()?;
        Ok(Box::new(ProxyOperand {
            arr: self.arr,
            tree,
            key,
        }))
    }
}

/// A proxy as an expression operand.
struct ProxyOperand {
    arr: NdArray,
    tree: Arc<H5Tree>,
    key: String,
}

impl ProxyOperand {
    fn proxy(&self) -> Proxy<'_> {
        Proxy {
            arr: &self.arr,
            tree: self.tree.clone(),
            key: self.key.clone(),
        }
    }
}

impl Operand for ProxyOperand {
    fn dtype(&self) -> Result<cat2_expr::DType> {
        Ok(super::lazy::expr_dtype(&self.proxy().dataset().dtype)?.0)
    }

    fn shape(&self) -> Vec<usize> {
        self.arr
            .shape()
            .iter()
            .map(|&n| n.max(0) as usize)
            .collect()
    }

    fn geometry(&self) -> Option<(Vec<i64>, Vec<i64>)> {
        Some((
            self.arr.chunks().into_iter().map(i64::from).collect(),
            self.arr.blocks().into_iter().map(i64::from).collect(),
        ))
    }

    fn read(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>> {
        let proxy = self.proxy();
        let s: Vec<i64> = start.iter().map(|&n| n as i64).collect();
        let e: Vec<i64> = stop.iter().map(|&n| n as i64).collect();
        let data = proxy.reader().read_box_vec(&s, &e)?;
        super::lazy::to_native(data, &proxy.dataset().dtype)
    }
}

/// A stored chunk as a Blosc2 chunk: its bytes, block shape and the
/// parameters it was compressed with.
type StoredChunk = (Vec<u8>, Vec<i64>, CParams);

/// How a proxy's stored chunks pass through (see `Proxy::stored_kind`).
enum StoredKind {
    /// Blosc2 filter: each HDF5 chunk is a frame holding one Blosc2 chunk.
    Blosc2Frame,
    /// A pipeline Blosc2 expresses (bitshuffle with LZ4 or Zstd blocks,
    /// deflate with or without shuffle): the chunk is re-framed.
    Reframed,
}

/// The block shape whose blocks are `elems` consecutive items of a chunk in
/// C order (whole trailing rows), if there is one.
fn row_slab_blocks(chunks: &[i64], elems: usize) -> Option<Vec<i64>> {
    let mut rest = i64::try_from(elems).ok()?;
    let mut blocks = vec![1i64; chunks.len()];
    for d in (0..chunks.len()).rev() {
        if rest == 1 {
            break;
        }
        let c = chunks[d].max(1);
        if rest % c == 0 {
            blocks[d] = c;
            rest /= c;
        } else if c % rest == 0 {
            blocks[d] = rest;
            rest = 1;
        } else {
            return None;
        }
    }
    (rest == 1).then_some(blocks)
}

/// Whether blocks of this shape lay a chunk out in plain C order: they tile
/// it exactly and each covers whole trailing rows.
fn c_order(chunks: &[i64], blocks: &[i64]) -> bool {
    if chunks.len() != blocks.len() {
        return false;
    }
    let Some(first) = blocks.iter().position(|&b| b != 1) else {
        return true;
    };
    chunks[first] % blocks[first].max(1) == 0 && blocks[first + 1..] == chunks[first + 1..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_slabs() {
        assert_eq!(
            row_slab_blocks(&[1, 2048, 2048], 4096),
            Some(vec![1, 2, 2048])
        );
        assert_eq!(
            row_slab_blocks(&[1, 100, 100], 10000),
            Some(vec![1, 100, 100])
        );
        assert_eq!(row_slab_blocks(&[4, 100], 200), Some(vec![2, 100]));
        assert_eq!(row_slab_blocks(&[4, 100], 300), None);
        assert_eq!(row_slab_blocks(&[3, 100], 40), None);
        assert_eq!(row_slab_blocks(&[1, 64], 128), None);
    }

    #[test]
    fn c_order_layouts() {
        assert!(c_order(&[1, 2048, 2048], &[1, 2, 2048]));
        assert!(c_order(&[1, 2048, 2048], &[1, 128, 2048]));
        assert!(c_order(&[4, 6], &[4, 6]));
        assert!(!c_order(&[1, 2048, 2048], &[1, 128, 128]));
        assert!(!c_order(&[10, 6], &[3, 6]));
    }
}
