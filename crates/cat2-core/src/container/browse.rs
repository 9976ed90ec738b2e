//! What `/api/list` and `/api/info` say about a `.b2z` store and the paths
//! inside it, kept apart from the index itself so [`super::Container`] knows
//! nothing of the wire format.
//!
//! The answers follow the reference server: the store file is a group of its
//! leaves (its size is the file's), an inner group is a group whose size is
//! the bytes its members occupy, and a leaf is an array (or super-chunk)
//! whose `mtime` is the store's and whose byte ranges are not advertised in
//! `accept_ranges` (`/api/fetch` still serves them for whole leaves).

use std::fs;
use std::sync::Arc;

use cat2_proto::{FileInfo, GroupInfo, Info};

use super::h5::{self, H5Tree};
use super::{Container, Leaf, Node, Placement};
use crate::dataset::{self, Dataset};
use crate::error::{Error, Result};
use crate::meta::iso_mtime;
use crate::path::is_hdf5_name;
use crate::store::Located;

fn not_found(loc: &Located) -> Error {
    Error::NotFound {
        path: loc.logical.to_string(),
    }
}

/// The key a located path names inside its container (`/` for the store).
pub fn inner_key(loc: &Located) -> &str {
    loc.inner.as_deref().unwrap_or("/")
}

/// Whether a located path is (or lies inside) an HDF5 file.
pub fn is_hdf5(loc: &Located) -> bool {
    let name = loc.fs.file_name().and_then(|n| n.to_str()).unwrap_or("");
    is_hdf5_name(name) || (!name.ends_with(".b2z") && h5::is_hdf5_file(&loc.fs))
}

/// Opens the HDF5 file a path inside it belongs to; an unreadable file has
/// nothing inside it.
pub fn open_h5_for_member(loc: &Located) -> Result<Arc<H5Tree>> {
    H5Tree::open_cached(&loc.fs).ok_or_else(|| not_found(loc))
}

/// Opens the store a path inside it belongs to. A file that is not a
/// browsable store has nothing inside it, so the path names nothing.
pub fn open_for_member(loc: &Located) -> Result<Arc<Container>> {
    match Container::open_cached(&loc.fs) {
        Ok(c) if c.is_browsable() => Ok(c),
        _ => Err(not_found(loc)),
    }
}

/// `/api/list` of the store file itself: its leaves, or its own name when
/// it is not a store that can be browsed (a table, a damaged file).
pub fn list_store(loc: &Located) -> Vec<String> {
    if is_hdf5(loc) {
        return match H5Tree::open_cached(&loc.fs) {
            Some(t) => t.list(None),
            None => vec![loc.logical.name().to_string()],
        };
    }
    match Container::open_cached(&loc.fs) {
        Ok(c) if c.is_browsable() => c.list(None),
        _ => vec![loc.logical.name().to_string()],
    }
}

/// `/api/list` of a path inside a store.
pub fn list_member(loc: &Located) -> Result<Vec<String>> {
    if is_hdf5(loc) {
        // A path naming nothing inside the file lists as nothing.
        return Ok(H5Tree::open_cached(&loc.fs)
            .map(|t| t.list(loc.inner.as_deref()))
            .unwrap_or_default());
    }
    Ok(open_for_member(loc)?.list(loc.inner.as_deref()))
}

/// `/api/info` of the store file itself.
pub fn store_info(loc: &Located, meta: &fs::Metadata) -> Info {
    if is_hdf5(loc) {
        return match H5Tree::open_cached(&loc.fs) {
            Some(t) => Info::Group(GroupInfo {
                kind: "group".into(),
                mtime: iso_mtime(meta),
                size: meta.len(),
                nfiles: t.leaves("/").len() as u64,
            }),
            None => Info::File(FileInfo {
                mtime: iso_mtime(meta),
                size: meta.len(),
            }),
        };
    }
    match Container::open_cached(&loc.fs) {
        Ok(c) if c.is_browsable() => Info::Group(GroupInfo {
            kind: "group".into(),
            mtime: iso_mtime(meta),
            size: meta.len(),
            nfiles: c.leaves("/").len() as u64,
        }),
        _ => Info::File(FileInfo {
            mtime: iso_mtime(meta),
            size: meta.len(),
        }),
    }
}

/// The error for an object (a CTable) that is not served yet.
pub fn object_unsupported(loc: &Located, kind: &str) -> Error {
    let what = match kind {
        "ctable" => {
            return Error::BadRequest(format!(
                "{} is a CTable, a set of columns rather than one chunked array; Caterva2 \
                 serves its rows through /api/fetch with the slice_ parameter, which this \
                 server does not do yet",
                loc.logical
            ))
        }
        "remote_store" => "a reference to a remote store".to_string(),
        other => format!("an object of kind {other:?}"),
    };
    Error::BadRequest(format!(
        "{} is {what}, which this server cannot serve yet",
        loc.logical
    ))
}

/// `/api/info` of a path inside a store.
pub fn member_info(loc: &Located) -> Result<Info> {
    let meta = fs::metadata(&loc.fs).map_err(|_| not_found(loc))?;
    let mtime = iso_mtime(&meta);
    let key = inner_key(loc);
    if is_hdf5(loc) {
        let t = open_h5_for_member(loc)?;
        return match (t.lookup(key), t.dataset(key)) {
            (_, Some(d)) => Ok(Info::Array(h5::leaf_meta(d, t.storage_size(key)?, mtime))),
            (Some(Node::Group), _) => Ok(Info::Group(GroupInfo {
                kind: "group".into(),
                mtime,
                size: t.size(key),
                nfiles: t.leaves(key).len() as u64,
            })),
            _ => Err(not_found(loc)),
        };
    }
    let c = open_for_member(loc)?;
    match c.lookup(key).ok_or_else(|| not_found(loc))? {
        Node::Group => Ok(Info::Group(GroupInfo {
            kind: "group".into(),
            mtime,
            size: c.size(key),
            nfiles: c.leaves(key).len() as u64,
        })),
        Node::Object(kind) => Err(object_unsupported(loc, kind)),
        Node::Leaf => {
            let Leaf { dataset, placement } = c.open_leaf(key)?;
            let embedded = matches!(placement, Placement::Embedded(_));
            let fix = |s: &mut cat2_proto::SChunkInfo| {
                if embedded {
                    // An embedded leaf is a frame copied out of the store:
                    // no file of its own, as the reference reports it.
                    s.urlpath = None;
                    s.contiguous = false;
                    s.cparams.nthreads = 1;
                }
            };
            match dataset {
                Dataset::Array(arr) => {
                    if let Some(d) = dataset::derived_kind(&arr) {
                        return Err(dataset::derived_unsupported(loc, d));
                    }
                    let mut schunk = dataset::schunk_info(arr.schunk(), &loc.fs, None)?;
                    fix(&mut schunk);
                    Ok(Info::Array(dataset::array_meta(&arr, schunk, mtime, None)))
                }
                Dataset::Frame(sc) => {
                    let mut info = dataset::schunk_info(&sc, &loc.fs, mtime)?;
                    fix(&mut info);
                    Ok(Info::SChunk(info))
                }
            }
        }
    }
}
