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

use super::{Container, Leaf, Node, Placement};
use crate::dataset::{self, Dataset};
use crate::error::{Error, Result};
use crate::meta::iso_mtime;
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
    match Container::open_cached(&loc.fs) {
        Ok(c) if c.is_browsable() => c.list(None),
        _ => vec![loc.logical.name().to_string()],
    }
}

/// `/api/list` of a path inside a store.
pub fn list_member(loc: &Located) -> Result<Vec<String>> {
    Ok(open_for_member(loc)?.list(loc.inner.as_deref()))
}

/// `/api/info` of the store file itself.
pub fn store_info(loc: &Located, meta: &fs::Metadata) -> Info {
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
    let c = open_for_member(loc)?;
    let key = inner_key(loc);
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
