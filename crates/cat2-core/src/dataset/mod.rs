//! Array-like datasets: one trait, [`Dataset`], that every kind implements,
//! so `info`, `fetch`, `chunk`, `download`, `list`, the web GUI and
//! expression operands never match on kinds.
//!
//! The kinds, one file each: [`array`](mod@array) (b2nd arrays, stored or inside a
//! `.b2z`), [`schunk`] (super-chunks and regular files), [`h5`] (datasets of
//! an HDF5 file, read in place), [`proxy`] (unfolded HDF5 proxies),
//! [`lazy`] (stored lazy expressions) and [`unreadable`] (files whose
//! suffix promises a frame they do not hold). [`crate::resolve`] decides which
//! one a path is; adding a kind is a type implementing [`Dataset`] and a line
//! there.

pub(crate) mod array;
pub(crate) mod h5;
pub(crate) mod lazy;
pub(crate) mod lazy_format;
pub mod operand;
pub(crate) mod proxy;
pub(crate) mod schunk;
pub(crate) mod unreadable;

use std::sync::Arc;

use cat2_proto::{ArrayInfo, Info, SChunkInfo};
use serde_json::Map;

use crate::budget::Budget;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::fetch::{FetchOutput, FetchRequest};
use crate::meta::{cparams_json, msgpack_to_json};
use crate::path::DsPath;
use crate::storage::Blob;
pub use operand::Operand;
use operand::{Opening, SharedOperand};

/// What every array-like dataset answers.
pub trait Dataset: Send {
    /// The logical path it was found at.
    fn path(&self) -> &DsPath;

    /// `/api/info`.
    fn info(&self) -> Result<Info>;

    /// `/api/fetch`: a selection of the data, or the stored bytes when they
    /// are the answer.
    fn fetch(&self, req: &FetchRequest) -> Result<FetchOutput>;

    /// `/api/chunk`: chunk `nchunk` of the dataset's chunk grid, compressed.
    fn chunk(&self, nchunk: i64, budget: &Budget) -> Result<Vec<u8>>;

    /// `/api/download`: the dataset as a file. Datasets that are not files
    /// of their own (members of a container) are not downloaded.
    fn download(&self, _budget: &Budget) -> Result<Download> {
        Err(not_found(self.path()))
    }

    /// `/api/preview`: the stored bytes (decompressed for regular files).
    fn preview(&self, budget: &Budget) -> Result<Download> {
        self.download(budget)
    }

    /// `/api/list` of the dataset itself: its own name.
    fn list(&self) -> Vec<String> {
        vec![self.path().name().to_string()]
    }

    /// The stored object the dataset was read from: its own file, or the
    /// container it lies in.
    fn object(&self) -> &Arc<dyn Blob>;

    /// The validator of what the dataset was read from.
    fn etag(&self) -> Option<String> {
        Some(etag_of(self.object()))
    }

    /// Whether it is a regular file (any file that is not a dataset, stored
    /// compressed): what the web GUI displays by its type.
    fn is_regular_file(&self) -> bool {
        false
    }

    /// The dataset as an operand of an expression.
    fn into_operand(self: Box<Self>, _opening: &mut Opening) -> Result<Box<dyn Operand>> {
        Err(not_an_operand(self.path()))
    }
}

/// What `/api/download` sends.
pub enum Download {
    /// The object's bytes as stored.
    Stored(Arc<dyn Blob>),
    /// A regular file: its frame, decompressed chunk by chunk as it is sent
    /// (or sent as it is to clients that take Blosc2).
    RegularFile(Arc<dyn Blob>),
    /// A frame computed for the answer.
    Computed(Vec<u8>),
    /// A frame computed for the answer, too large for memory: spilled into
    /// storage, removed once sent.
    Spilled(Arc<crate::fetch::SpilledFrame>),
}

/// The download of an array whose data lives elsewhere: the whole of it,
/// computed.
pub(crate) fn computed(ds: &dyn Dataset, budget: &Budget) -> Result<Download> {
    let whole = FetchRequest {
        budget: budget.clone(),
        ..FetchRequest::default()
    };
    match ds.fetch(&whole)? {
        FetchOutput::Frame(frame) => Ok(Download::Computed(frame)),
        FetchOutput::Spilled(frame) => Ok(Download::Spilled(frame)),
        FetchOutput::Stored { .. } => Err(Error::BadRequest(format!(
            "{} could not be computed",
            ds.path()
        ))),
    }
}

/// Opens other paths for the one who asks, for datasets that read other
/// datasets (a lazy expression's operands), without this layer depending on
/// the resolver that makes them.
pub(crate) trait Opener: Send + Sync {
    /// The array at `path` as an operand, `depth` expressions deep.
    fn operand(
        &self,
        path: &DsPath,
        depth: usize,
        opening: &mut Opening,
    ) -> Result<std::rc::Rc<SharedOperand>>;

    /// The logical path of the file an expression saved in the directory
    /// `dir` names as `url` (relative to `dir`, or absolute), as the one who
    /// asks addresses it; `None` when it lies outside the roots they may read.
    fn logical_path(&self, dir: &crate::storage::Key, url: &str) -> Option<DsPath>;

    /// The HDF5 file a proxy found at `path` (stored at `key`) reads the
    /// dataset `dsetname` from.
    fn proxy_file(
        &self,
        path: &DsPath,
        key: &crate::storage::Key,
        dsetname: &str,
    ) -> Result<crate::storage::Key>;
}

pub(crate) fn not_found(path: &DsPath) -> Error {
    Error::NotFound {
        path: path.to_string(),
    }
}

fn not_an_operand(path: &DsPath) -> Error {
    Error::BadRequest(format!(
        "Invalid name or expression: {path} is not an array (.b2nd)"
    ))
}

/// The dtype as `/api/info` shows it: Python's `str(numpy.dtype)`.
pub(crate) fn display_dtype(stored: &str) -> String {
    DType::parse(stored).map_or_else(|_| stored.to_string(), |d| d.numpy_str())
}

/// Metadata of an array whose super-chunk is already described.
pub(crate) fn array_meta(
    arr: &cat2_blosc2::NdArray,
    schunk: SChunkInfo,
    mtime: Option<String>,
    accept_ranges: Option<String>,
) -> ArrayInfo {
    ArrayInfo {
        shape: arr.shape(),
        chunks: arr.chunks().into_iter().map(i64::from).collect(),
        blocks: arr.blocks().into_iter().map(i64::from).collect(),
        dtype: display_dtype(&arr.dtype()),
        schunk,
        mtime,
        accept_ranges,
    }
}

/// Metadata of a super-chunk; `urlpath` is the dataset's logical path (the
/// reference shows its absolute path on the server, which would tell anyone
/// the state directory's layout and users' ids), `mtime` is set only when it
/// is the top level.
pub(crate) fn schunk_info(
    sc: &cat2_blosc2::SChunk,
    urlpath: Option<String>,
    mtime: Option<String>,
) -> Result<SChunkInfo> {
    let mut vlmeta = Map::new();
    for (k, v) in sc.vlmeta()? {
        vlmeta.insert(k, msgpack_to_json(&v));
    }
    let nbytes = sc.nbytes();
    let cbytes = sc.cbytes();
    let typesize = sc.typesize() as i64;
    Ok(SChunkInfo {
        cbytes,
        chunkshape: sc.chunksize() / typesize.max(1),
        chunksize: sc.chunksize(),
        contiguous: sc.contiguous(),
        cparams: cparams_json(&sc.cparams()),
        cratio: if cbytes > 0 {
            nbytes as f64 / cbytes as f64
        } else {
            0.0
        },
        nbytes,
        urlpath,
        vlmeta,
        nchunks: sc.nchunks(),
        mtime,
    })
}

/// Chunk `nchunk` of a super-chunk exactly as stored, range checked.
pub(crate) fn stored_chunk(
    sc: &cat2_blosc2::SChunk,
    path: &DsPath,
    nchunk: i64,
    budget: &Budget,
) -> Result<Vec<u8>> {
    if nchunk < 0 || nchunk >= sc.nchunks() {
        return Err(Error::BadRequest(format!(
            "nchunk {nchunk} is out of range: {path} has {} chunks",
            sc.nchunks()
        )));
    }
    // Sent as stored: at most its decompressed size and a header.
    budget.check_chunks(sc.chunksize().max(0) as u64 + 64, 1, path)?;
    sc.chunk(nchunk).map_err(|e| Error::from(e).reading(path))
}

/// What derives from other data: a proxy or a lazy expression carrier, by
/// its metadata. Every kind that opens a b2nd frame asks this once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Derived {
    /// An unfolded HDF5 dataset (`vlmeta._ftype == "hdf5"`).
    Hdf5Proxy,
    /// A stored lazy expression or UDF.
    LazyExpr,
}

impl Derived {
    /// Detects proxies and lazy expressions.
    pub(crate) fn of(arr: &cat2_blosc2::NdArray) -> Option<Derived> {
        let sc = arr.schunk();
        let metas = sc.metalayers();
        if metas.iter().any(|(n, _)| n == "b2o" || n == "LazyArray") {
            return Some(Derived::LazyExpr);
        }
        if let Ok(Some(raw)) = sc.vlmeta_raw("_ftype") {
            if let rmpv::Value::String(s) = cat2_blosc2::decode_msgpack(&raw) {
                if s.as_str() == Some("hdf5") {
                    return Some(Derived::Hdf5Proxy);
                }
            }
        }
        None
    }

    /// The refusal where such an array is not served (inside a `.b2z`).
    pub(crate) fn unsupported(self, path: &DsPath) -> Error {
        let what = match self {
            Derived::Hdf5Proxy => "an unfolded HDF5 proxy",
            Derived::LazyExpr => "a stored lazy expression",
        };
        Error::BadRequest(format!(
            "{path} is {what}, which this server cannot serve yet"
        ))
    }
}

/// The validator clients see for a stored object.
pub fn etag_of(blob: &Arc<dyn Blob>) -> String {
    format!("\"{}\"", blob.meta().version)
}

/// The modification time of a stored object, as `/api/info` shows it.
pub(crate) fn mtime_of(blob: &Arc<dyn Blob>) -> Option<String> {
    blob.meta().modified.map(crate::meta::iso_time)
}

/// Where the frame of an array or super-chunk is stored.
pub(crate) enum Stored {
    /// An object of its own.
    Object(Arc<dyn Blob>),
    /// A leaf of a `.b2z` store: the store's object, where its frame is,
    /// and what the store lists for it (a DictStore key can also be a
    /// prefix of others: it lists what lies below it, not itself).
    Member {
        store: Arc<dyn Blob>,
        placement: crate::hierarchy::zip::Placement,
        listing: Vec<String>,
    },
}

impl Stored {
    /// The stored frame itself, as a fetch answers it: the object, the
    /// window of the store holding it, or the frame copied out of it.
    pub(crate) fn verbatim(&self) -> FetchOutput {
        use crate::hierarchy::zip::Placement;
        match self {
            Stored::Object(blob) => FetchOutput::object(blob),
            Stored::Member {
                store,
                placement: Placement::Window { offset, len },
                ..
            } => FetchOutput::Stored {
                blob: store.clone(),
                offset: *offset,
                len: *len,
                whole: false,
            },
            Stored::Member {
                placement: Placement::Embedded(frame),
                ..
            } => FetchOutput::Frame(frame.clone()),
        }
    }

    /// The object the frame is read from (the store, for a member).
    pub(crate) fn blob(&self) -> &Arc<dyn Blob> {
        match self {
            Stored::Object(blob) | Stored::Member { store: blob, .. } => blob,
        }
    }

    pub(crate) fn is_member(&self) -> bool {
        matches!(self, Stored::Member { .. })
    }

    /// The super-chunk's metadata as `/api/info` shows it for this place:
    /// its `urlpath` is the logical path of the file that holds it (the
    /// dataset at `path`, or the `.b2z` store a leaf is in), and an embedded
    /// leaf is a frame copied out of its store, with no file of its own, as
    /// the reference reports it.
    pub(crate) fn schunk_info(
        &self,
        sc: &cat2_blosc2::SChunk,
        path: &DsPath,
        mtime: Option<String>,
    ) -> Result<SChunkInfo> {
        let file = match self {
            Stored::Object(_) => path.to_string(),
            Stored::Member { .. } => {
                let parts = path.parts();
                let store = parts.iter().position(|p| p.ends_with(".b2z"));
                let mut file = DsPath::parse(path.root().name())?;
                for part in &parts[..store.map_or(parts.len(), |i| i + 1)] {
                    file = file.join(part);
                }
                file.to_string()
            }
        };
        let mut info = schunk_info(sc, Some(file), mtime)?;
        if let Stored::Member {
            placement: crate::hierarchy::zip::Placement::Embedded(_),
            ..
        } = self
        {
            info.urlpath = None;
            info.contiguous = false;
            info.cparams.nthreads = 1;
        }
        Ok(info)
    }

    /// `/api/list` of the dataset found at `path`.
    pub(crate) fn list(&self, path: &DsPath) -> Vec<String> {
        match self {
            Stored::Object(_) => vec![path.name().to_string()],
            Stored::Member { listing, .. } => listing.clone(),
        }
    }

    /// `/api/download`: an object is sent as it is; a member is no file.
    pub(crate) fn download(&self, path: &DsPath) -> Result<Download> {
        match self {
            Stored::Object(blob) => Ok(Download::Stored(blob.clone())),
            Stored::Member { .. } => Err(not_found(path)),
        }
    }
}
