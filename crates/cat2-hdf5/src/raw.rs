//! Where a dataset's bytes lie in the file, without decoding them.
//!
//! Two things need the stored (still filtered) chunks rather than decoded
//! data: `/api/info` reports the HDF5 storage size of a dataset as its
//! compressed size, and a dataset whose only filter is Blosc2 keeps one
//! Blosc2 frame per HDF5 chunk, whose compressed chunk can be served as it is.
//! `hdf5-reader` walks chunk indexes only to decode them, so the walk over its
//! public index readers is done here, one arm per kind of index.

use hdf5_reader::btree_v1::{collect_btree_v1_leaves_storage, BTreeV1Key};
use hdf5_reader::chunk_index::{
    collect_implicit_chunk_entries, collect_v2_chunk_entries_storage, single_chunk_entry,
    ChunkEntry,
};
use hdf5_reader::extensible_array::collect_extensible_array_chunk_entries_storage;
use hdf5_reader::fixed_array::collect_fixed_array_chunk_entries_storage;
use hdf5_reader::messages::layout::{ChunkIndexing, DataLayout};
use hdf5_reader::messages::HdfMessage;

use crate::owner::Owner;
use crate::{Error, File, Result};

/// How a dataset's data is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Inside the object header.
    Compact { len: u64 },
    /// One run of bytes (`address` is undefined when nothing was written).
    Contiguous { address: u64, size: u64 },
    /// Chunks of `dims`, found through an index.
    Chunked { dims: Vec<u64> },
}

/// One stored chunk of a chunked dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawChunk {
    /// Dataset coordinates of the chunk's first element.
    pub offsets: Vec<u64>,
    /// Absolute file address of the filtered bytes.
    pub address: u64,
    /// Bytes stored (after filtering).
    pub size: u64,
    /// Bit `i` set: filter `i` of the pipeline was skipped for this chunk.
    pub filter_mask: u32,
    /// Which file holds it (0: the file itself; else a linked one).
    pub(crate) source: usize,
}

/// The "no address" value of a file whose addresses are `offset_size` bytes.
fn undefined_address(offset_size: u8) -> u64 {
    match offset_size {
        0 | 8.. => u64::MAX,
        n => (1u64 << (u32::from(n) * 8)) - 1,
    }
}

impl File {
    #[allow(clippy::type_complexity)]
    fn layout_message(
        &self,
        path: &str,
    ) -> Result<(DataLayout, Vec<u64>, Option<Vec<u64>>, Owner)> {
        let ds = self.inner.dataset(path)?;
        let owner = self.owner(&ds)?;
        let layout = owner
            .header
            .messages
            .iter()
            .find_map(|m| match m {
                HdfMessage::DataLayout(l) => Some(l.layout.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                Error::Hdf5(hdf5_reader::error::Error::InvalidData(format!(
                    "dataset {path} has no layout message"
                )))
            })?;
        Ok((
            layout,
            ds.shape().to_vec(),
            ds.max_dims().map(<[u64]>::to_vec),
            owner,
        ))
    }

    /// How the dataset at `path` is stored.
    pub fn layout(&self, path: &str) -> Result<Layout> {
        let (layout, shape, _, _) = self.layout_message(path)?;
        Ok(match layout {
            DataLayout::Compact { data } => Layout::Compact {
                len: data.len() as u64,
            },
            DataLayout::Contiguous { address, size } => Layout::Contiguous { address, size },
            DataLayout::Chunked { dims, .. } => Layout::Chunked {
                dims: dims
                    .iter()
                    .take(shape.len())
                    .map(|&d| u64::from(d))
                    .collect(),
            },
        })
    }

    /// The stored chunks of a chunked dataset (empty for other layouts and
    /// for chunks never written), in the index's order.
    pub fn raw_chunks(&self, path: &str) -> Result<Vec<RawChunk>> {
        let (layout, shape, max_dims, owner) = self.layout_message(path)?;
        let DataLayout::Chunked {
            address,
            dims,
            chunk_indexing,
            ..
        } = layout
        else {
            return Ok(Vec::new());
        };
        let sb = owner.file.superblock();
        let (osize, lsize) = (sb.offset_size, sb.length_size);
        if address == undefined_address(osize) {
            return Ok(Vec::new());
        }
        let ndim = shape.len();
        let dims: Vec<u32> = dims.into_iter().take(ndim).collect();
        let storage = owner.file.storage();
        let itemsize = self.inner.dataset(path)?.raw_element_size()?;
        let entries: Vec<ChunkEntry> = match chunk_indexing {
            None => collect_btree_v1_leaves_storage(
                storage,
                address,
                osize,
                lsize,
                Some(ndim as u32),
                &dims,
                None,
            )?
            .into_iter()
            .filter_map(|(key, addr)| match key {
                BTreeV1Key::RawData {
                    chunk_size,
                    filter_mask,
                    offsets,
                } => Some(ChunkEntry {
                    address: addr,
                    size: u64::from(chunk_size),
                    filter_mask,
                    offsets: offsets.into_iter().take(ndim).collect(),
                }),
                BTreeV1Key::Group { .. } => None,
            })
            .collect(),
            Some(ChunkIndexing::SingleChunk {
                filtered_size,
                filters,
            }) => vec![single_chunk_entry(address, filtered_size, filters, ndim)],
            Some(ChunkIndexing::BTreeV2) => collect_v2_chunk_entries_storage(
                storage,
                address,
                osize,
                lsize,
                ndim as u32,
                &dims,
                None,
            )?,
            Some(ChunkIndexing::Implicit) => collect_implicit_chunk_entries(
                address,
                &shape,
                &dims,
                itemsize,
                None,
                storage.len(),
            )?,
            Some(ChunkIndexing::FixedArray { .. }) => collect_fixed_array_chunk_entries_storage(
                storage, address, osize, lsize, &shape, &dims, None,
            )?,
            Some(ChunkIndexing::ExtensibleArray { .. }) => {
                collect_extensible_array_chunk_entries_storage(
                    storage,
                    address,
                    osize,
                    lsize,
                    &shape,
                    max_dims.as_deref(),
                    &dims,
                    None,
                )?
            }
        };
        // Chunks wholly outside the current extent (a dataset shrunk after
        // writing) hold nothing the dataset shows.
        Ok(entries
            .into_iter()
            .filter(|e| e.offsets.len() == ndim && e.offsets.iter().zip(&shape).all(|(o, s)| o < s))
            .map(|e| RawChunk {
                offsets: e.offsets,
                address: e.address,
                size: e.size,
                filter_mask: e.filter_mask,
                source: owner.source,
            })
            .collect())
    }

    /// Bytes the dataset occupies in the file (h5py's `id.get_storage_size()`).
    pub fn storage_size(&self, path: &str) -> Result<u64> {
        Ok(match self.layout(path)? {
            Layout::Compact { len } => len,
            Layout::Contiguous { address, size } => {
                if address == undefined_address(self.inner.superblock().offset_size) {
                    0
                } else {
                    size
                }
            }
            Layout::Chunked { .. } => self.raw_chunks(path)?.iter().map(|c| c.size).sum(),
        })
    }

    /// The stored bytes of one chunk, still filtered.
    pub fn read_raw_chunk(&self, chunk: &RawChunk) -> Result<Vec<u8>> {
        let len = usize::try_from(chunk.size).map_err(|_| {
            Error::Hdf5(hdf5_reader::error::Error::InvalidData(
                "chunk larger than memory".into(),
            ))
        })?;
        let file = self.files().into_iter().nth(chunk.source).ok_or_else(|| {
            Error::Hdf5(hdf5_reader::error::Error::InvalidData(
                "a chunk of a linked file that is no longer open".into(),
            ))
        })?;
        Ok(file.storage().read_range(chunk.address, len)?.to_vec())
    }
}
