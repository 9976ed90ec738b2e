//! Opening stored datasets and describing them (`/api/info`).

use std::fs;
use std::path::Path;

use cat2_blosc2::{NdArray, SChunk};
use cat2_proto::{ArrayInfo, FileInfo, GroupInfo, Info, SChunkInfo, UnreadableInfo};
use serde_json::Map;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::listing::dir_usage;
use crate::meta::{cparams_json, iso_mtime, msgpack_to_json};
use crate::path::suffix;
use crate::store::{Entry, Located};

/// What kind of thing a stored file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `.b2nd`: an n-dimensional array.
    Array,
    /// `.b2frame` or an explicit `.b2`: a super-chunk.
    Frame,
    /// A regular file stored as `<name>.b2`.
    Blob,
    /// `.h5` / `.hdf5`.
    Hdf5,
    /// `.b2z`: a zip store of Blosc2 containers.
    Store,
}

impl FileKind {
    pub fn of(loc: &Located) -> Option<FileKind> {
        match loc.entry {
            Entry::Blob => Some(FileKind::Blob),
            // A file kept under its own name is a Blosc2 container by its
            // suffix, and otherwise an HDF5 file (by suffix or content: see
            // `StateDir::locate`).
            Entry::Dataset => Some(match suffix(loc.logical.name()) {
                ".b2nd" => FileKind::Array,
                ".b2frame" => FileKind::Frame,
                ".b2" => FileKind::Blob,
                ".b2z" => FileKind::Store,
                _ => FileKind::Hdf5,
            }),
            Entry::Dir | Entry::Member | Entry::Missing => None,
        }
    }
}

/// An opened dataset.
pub enum Dataset {
    Array(NdArray),
    Frame(SChunk),
}

/// Arrays that do not hold their own data: they are described by metadata
/// and computed from elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// An unfolded HDF5 dataset (`vlmeta._ftype == "hdf5"`).
    Hdf5Proxy,
    /// A stored lazy expression or UDF.
    LazyExpr,
}

/// Detects proxies and lazy expressions, which every endpoint must treat
/// differently from plain arrays.
pub fn derived_kind(arr: &NdArray) -> Option<Derived> {
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

/// Who asks, for datasets that read other datasets (lazy expressions,
/// whose operands are located with the asker's permissions). `None` where
/// nobody is asking on a user's behalf: lazy expressions are then refused.
pub type Asker<'a> = Option<(&'a crate::store::StateDir, crate::store::Caller<'a>)>;

/// The lazy expression held by the carrier `arr` found at `loc`, opened for
/// `asker`.
pub fn lazy_of(asker: Asker<'_>, loc: &Located, arr: &NdArray) -> Result<crate::lazy::Lazy> {
    match asker {
        Some((sd, caller)) => crate::lazy::Lazy::open(sd, loc, arr, caller, 0),
        None => Err(derived_unsupported(loc, Derived::LazyExpr)),
    }
}

/// `/api/info` as `caller` sees it: a lazy expression is described by what
/// it computes (its operands are read with the caller's permissions).
pub fn info_with(
    sd: &crate::store::StateDir,
    loc: &Located,
    caller: crate::store::Caller<'_>,
) -> Result<Info> {
    info_as(Some((sd, caller)), loc)
}

/// [`chunk`] as `caller` sees it: a lazy expression's chunk is computed.
pub fn chunk_with(
    sd: &crate::store::StateDir,
    loc: &Located,
    nchunk: i64,
    caller: crate::store::Caller<'_>,
) -> Result<Vec<u8>> {
    chunk_as(Some((sd, caller)), loc, nchunk)
}

/// Chunk `nchunk` of a located dataset, compressed (`GET /api/chunk`): as
/// stored, or for an HDF5 proxy, a chunk of its grid made from the HDF5 data.
pub fn chunk(loc: &Located, nchunk: i64) -> Result<Vec<u8>> {
    chunk_as(None, loc, nchunk)
}

fn chunk_as(asker: Asker<'_>, loc: &Located, nchunk: i64) -> Result<Vec<u8>> {
    let ds = if FileKind::of(loc) == Some(FileKind::Array) {
        // Opened once; what it derives from decides who makes the chunk.
        let arr = open_array(&loc.fs)?;
        match derived_kind(&arr) {
            Some(Derived::Hdf5Proxy) => return crate::proxy::Proxy::open(loc, arr)?.chunk(nchunk),
            Some(Derived::LazyExpr) => {
                return crate::fetch::lazy_chunk(&lazy_of(asker, loc, &arr)?, nchunk)
            }
            None => Dataset::Array(arr),
        }
    } else {
        open(loc)?
    };
    let sc = match &ds {
        Dataset::Array(arr) => arr.schunk(),
        Dataset::Frame(sc) => sc,
    };
    if nchunk < 0 || nchunk >= sc.nchunks() {
        return Err(Error::BadRequest(format!(
            "nchunk {nchunk} is out of range: {} has {} chunks",
            loc.logical,
            sc.nchunks()
        )));
    }
    Ok(sc.chunk(nchunk)?)
}

/// Opens the array or super-chunk stored at `path`.
pub fn open_array(path: &Path) -> Result<NdArray> {
    NdArray::open(path).map_err(|e| {
        Error::BadRequest(format!(
            "{} is not a readable Blosc2 array: {e}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ))
    })
}

pub fn open_frame(path: &Path) -> Result<SChunk> {
    SChunk::open(path).map_err(|e| {
        Error::BadRequest(format!(
            "{} is not a readable Blosc2 frame: {e}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ))
    })
}

/// The dtype as `/api/info` shows it: Python's `str(numpy.dtype)`.
pub fn display_dtype(stored: &str) -> String {
    DType::parse(stored).map_or_else(|_| stored.to_string(), |d| d.numpy_str())
}

fn not_found(loc: &Located) -> Error {
    Error::NotFound {
        path: loc.logical.to_string(),
    }
}

/// Describes what a located path names (`GET /api/info`).
pub fn info(loc: &Located) -> Result<Info> {
    info_as(None, loc)
}

fn info_as(asker: Asker<'_>, loc: &Located) -> Result<Info> {
    let meta = || fs::metadata(&loc.fs).map_err(|_| not_found(loc));
    match loc.entry {
        Entry::Missing => Err(not_found(loc)),
        Entry::Member => crate::container::browse::member_info(loc),
        Entry::Dir => {
            let m = fs::metadata(&loc.fs).ok();
            let (size, nfiles) = dir_usage(&loc.fs)?;
            Ok(Info::Group(GroupInfo {
                kind: "group".into(),
                mtime: m.as_ref().and_then(iso_mtime),
                size,
                nfiles,
            }))
        }
        Entry::Blob | Entry::Dataset => {
            let m = meta()?;
            let mtime = iso_mtime(&m);
            let unreadable = || {
                Info::Unreadable(UnreadableInfo {
                    mtime: mtime.clone(),
                    error: "Unrecognized format".into(),
                })
            };
            match FileKind::of(loc) {
                Some(FileKind::Array) => match NdArray::open(&loc.fs) {
                    Ok(arr) => {
                        match derived_kind(&arr) {
                            Some(Derived::Hdf5Proxy) => {
                                return crate::proxy::Proxy::open(loc, arr)?.info(loc)
                            }
                            Some(Derived::LazyExpr) => return lazy_of(asker, loc, &arr)?.info(loc),
                            None => {}
                        }
                        array_info(&arr, &loc.fs, mtime)
                    }
                    Err(_) => Ok(unreadable()),
                },
                Some(FileKind::Frame) | Some(FileKind::Blob) => match SChunk::open(&loc.fs) {
                    Ok(sc) => Ok(Info::SChunk(schunk_info(&sc, &loc.fs, mtime.clone())?)),
                    Err(_) => Ok(unreadable()),
                },
                Some(FileKind::Store) | Some(FileKind::Hdf5) => {
                    Ok(crate::container::browse::store_info(loc, &m))
                }
                None => Ok(Info::File(FileInfo {
                    mtime,
                    size: m.len(),
                })),
            }
        }
    }
}

/// The error for arrays whose data lives elsewhere, until they are served.
pub fn derived_unsupported(loc: &Located, d: Derived) -> Error {
    let what = match d {
        Derived::Hdf5Proxy => "an unfolded HDF5 proxy",
        Derived::LazyExpr => "a stored lazy expression",
    };
    Error::BadRequest(format!(
        "{} is {what}, which this server cannot serve yet",
        loc.logical
    ))
}

/// Metadata of a plain stored array.
pub fn array_info(arr: &NdArray, path: &Path, mtime: Option<String>) -> Result<Info> {
    let schunk = schunk_info(arr.schunk(), path, None)?;
    Ok(Info::Array(array_meta(
        arr,
        schunk,
        mtime,
        Some("bytes".into()),
    )))
}

/// Metadata of an array whose super-chunk is already described.
pub fn array_meta(
    arr: &NdArray,
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

/// Metadata of a super-chunk; `mtime` is set only when it is the top level.
pub fn schunk_info(sc: &SChunk, path: &Path, mtime: Option<String>) -> Result<SChunkInfo> {
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
        urlpath: Some(path.to_string_lossy().into_owned()),
        vlmeta,
        nchunks: sc.nchunks(),
        mtime,
    })
}

/// Opens what a located path names as a Blosc2 dataset.
///
/// Directories, HDF5 files and zip stores are not Blosc2 datasets and get a
/// 400 that says what they are; a leaf inside a store is one, and a group
/// inside it names no dataset (404, as the reference).
pub fn open(loc: &Located) -> Result<Dataset> {
    let hdf5 = loc.entry == Entry::Member && crate::container::browse::is_hdf5(loc);
    if hdf5 || FileKind::of(loc) == Some(FileKind::Hdf5) {
        return Err(hdf5_not_blosc2(loc));
    }
    if loc.entry == Entry::Member {
        return open_member(loc).map(|leaf| leaf.dataset);
    }
    match FileKind::of(loc) {
        None if loc.entry == Entry::Dir => Err(Error::BadRequest(format!(
            "{} is a directory, not a dataset",
            loc.logical
        ))),
        None => Err(not_found(loc)),
        Some(FileKind::Array) => {
            let arr = open_array(&loc.fs)?;
            if let Some(d) = derived_kind(&arr) {
                return Err(derived_unsupported(loc, d));
            }
            Ok(Dataset::Array(arr))
        }
        Some(FileKind::Frame) | Some(FileKind::Blob) => Ok(Dataset::Frame(open_frame(&loc.fs)?)),
        Some(FileKind::Hdf5) => Err(Error::BadRequest(format!(
            "{} is an HDF5 file, not a Blosc2 dataset",
            loc.logical
        ))),
        Some(FileKind::Store) => match crate::container::Container::open_cached(&loc.fs) {
            Ok(c) if !c.is_browsable() => {
                Err(crate::container::browse::object_unsupported(loc, "ctable"))
            }
            _ => Err(Error::BadRequest(format!(
                "{} is a container, which holds datasets rather than being one; ask for a dataset inside it",
                loc.logical
            ))),
        },
    }
}

/// The refusal for Blosc2 access (chunks) to an HDF5 file or a dataset in it.
pub fn hdf5_not_blosc2(loc: &Located) -> Error {
    Error::BadRequest(format!(
        "{} is HDF5, whose chunks are HDF5-compressed rather than Blosc2 chunks; \
         fetch it with the slice_ parameter instead",
        loc.logical
    ))
}

/// Opens the leaf a path inside a store names. Groups and missing keys are
/// [`Error::NotFound`]; objects (CTables) and arrays whose data lives
/// elsewhere are 400s saying so.
pub fn open_member(loc: &Located) -> Result<crate::container::Leaf> {
    use crate::container::{browse, Node};
    let c = browse::open_for_member(loc)?;
    let key = browse::inner_key(loc);
    match c.lookup(key) {
        Some(Node::Leaf) => {}
        Some(Node::Object(kind)) => return Err(browse::object_unsupported(loc, kind)),
        Some(Node::Group) | None => return Err(not_found(loc)),
    }
    let leaf = c.open_leaf(key)?;
    if let Dataset::Array(arr) = &leaf.dataset {
        if let Some(d) = derived_kind(arr) {
            return Err(derived_unsupported(loc, d));
        }
    }
    Ok(leaf)
}
