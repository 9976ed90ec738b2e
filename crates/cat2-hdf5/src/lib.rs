//! HDF5 reading for cat2rs, in pure Rust.
//!
//! The container format (superblock, groups, B-trees, chunk indexes) is parsed by the
//! `hdf5-reader` crate; this crate adds the decoders for the third-party HDF5 filters
//! Caterva2 files use (bitshuffle, LZF, Blosc, Blosc2, LZ4, Zstd) and registers them in
//! `hdf5-reader`'s [`hdf5_reader::FilterRegistry`] (see [`filters::registry`]).
//!
//! Design choice: we never load HDF5 filter plugins (C shared objects). Every filter is
//! either decoded here in safe Rust (or through the safe `cat2-blosc2` wrapper) or
//! refused up front with an [`Error::UnsupportedFilter`] naming it, so a dataset with an
//! unknown filter gives a clear error instead of wrong data or a panic.
#![forbid(unsafe_code)]

mod attrs;
mod chunked;
mod dtype;
mod file;
pub mod filters;
mod owner;
mod raw;
pub mod transcode;

pub use attrs::{attribute_value, attribute_values, AttrValue};
pub use chunked::ChunkMap;
pub use dtype::numpy_dtype;
pub use file::{DatasetInfo, File, Filter, GroupInfo, Node, CHUNK_CACHE_BYTES, MAX_GROUP_DEPTH};
pub use hdf5_reader::error::Error as ReaderError;
pub use hdf5_reader::storage::{DynStorage, Storage, StorageBuffer};
pub use owner::{link_segments, LinkOpener};
pub use raw::{Layout, RawChunk};

/// What can go wrong reading an HDF5 file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The dataset's filter pipeline has a filter we cannot decode.
    #[error("dataset uses HDF5 filter {id} ({name}), which this server cannot decode")]
    UnsupportedFilter { id: u16, name: String },
    /// The file could not be opened as HDF5.
    #[error("opening HDF5 file {}: {source}", path.display())]
    Open {
        path: std::path::PathBuf,
        source: hdf5_reader::error::Error,
    },
    /// The file's structure is more than this reader follows (groups
    /// nested too deep).
    #[error("{0}")]
    TooDeep(String),
    /// A box does not fit in the dataset.
    #[error("bad box for dataset {path}: {reason}")]
    BadBox { path: String, reason: String },
    /// An error from the HDF5 container parser. A chunk that one of our filters cannot
    /// decode arrives here too, as `FilterError("filter <id> (<name>): <reason>")`.
    #[error("HDF5: {0}")]
    Hdf5(#[from] hdf5_reader::error::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
