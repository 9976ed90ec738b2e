//! What a logical path names, as [`crate::resolve`] decides it: a
//! directory of the state, a group (a whole container file, or a group
//! inside one), an array-like [`Dataset`], a stored file that is neither, or
//! nothing. Every request resolves its path once and asks the node one
//! thing; the node answers for its kind.
//!
//! The things that hold members (`.b2z` stores, HDF5 files) are one trait,
//! [`Hierarchy`]: a group node asks its hierarchy what is below it and how
//! the file answers for itself; what a member is, the resolver decides.

pub(crate) mod h5;
pub(crate) mod zip;

use std::sync::Arc;

use cat2_proto::{FileInfo, GroupInfo, Info};

use crate::budget::Budget;
use crate::dataset::operand::Opening;
use crate::dataset::{Dataset, Download, Operand};
use crate::error::{Error, Result};
use crate::fetch::{FetchOutput, FetchRequest, NOT_A_DATASET};
use crate::hierarchy::Tree;
use crate::path::DsPath;
use crate::storage::{walk, Blob, Key, Storage};

/// What a path names.
pub enum Node {
    /// A directory of the state (a root, or a folder in one).
    Dir(Dir),
    /// A container file as a whole, or a group inside one.
    Group(Group),
    /// Something array-like.
    Dataset(Box<dyn Dataset>),
    /// A stored file that holds no dataset (an unreadable container, a
    /// CTable store).
    File(StoredFile),
    /// Something that exists but cannot be served; every use says why.
    Refused(Refused),
    /// Nothing.
    Missing(Missing),
}

/// The things that hold members: a `.b2z` store, an HDF5 file.
pub trait Hierarchy: Send + Sync {
    /// The file's index of keys, and the file as it was read.
    fn tree(&self) -> &dyn Tree;

    /// `/api/fetch` of the whole file (`key` = `None`) or of a group in it.
    fn fetch_group(
        &self,
        path: &DsPath,
        key: Option<&str>,
        req: &FetchRequest,
    ) -> Result<FetchOutput>;

    /// The refusal of `/api/chunk` on the whole file or a group in it.
    fn chunk_refusal(&self, path: &DsPath, key: Option<&str>) -> Error;

    /// The refusal of the file or a group in it as an expression operand.
    fn operand_refusal(&self, path: &DsPath, key: Option<&str>) -> Error;

    /// What is missing inside it, for the answers a missing key gets.
    fn inside(&self) -> Inside;

    /// The file's tree, when it is an HDF5 file.
    fn hdf5(&self) -> Option<&Arc<crate::hierarchy::h5::H5Tree>> {
        None
    }
}

impl Node {
    /// The path the node was found at.
    pub fn path(&self) -> &DsPath {
        match self {
            Node::Dir(d) => &d.path,
            Node::Group(g) => &g.path,
            Node::Dataset(d) => d.path(),
            Node::File(f) => &f.path,
            Node::Refused(r) => &r.path,
            Node::Missing(m) => &m.path,
        }
    }

    /// The dataset, or the error for what is not one (`None`: not found).
    pub fn into_dataset(self) -> Result<Box<dyn Dataset>> {
        match self {
            Node::Dataset(d) => Ok(d),
            Node::Refused(r) => Err(r.error),
            other => Err(not_found(other.path())),
        }
    }

    /// `/api/info`.
    pub fn info(self) -> Result<Info> {
        match self {
            Node::Dir(d) => d.info(),
            Node::Group(g) => Ok(g.info()),
            Node::Dataset(d) => d.info(),
            Node::File(f) => Ok(f.info()),
            Node::Refused(r) => Err(r.error),
            Node::Missing(m) => Err(not_found(&m.path)),
        }
    }

    /// `/api/list`: a directory lists every file below it, a container or
    /// a group in one the leaves below, a dataset its own name, a missing
    /// path nothing.
    pub fn list(self) -> Result<Vec<String>> {
        match self {
            Node::Dir(d) => d.list(),
            Node::Group(g) => Ok(g.members.tree().list(g.key.as_deref())),
            Node::Dataset(d) => Ok(d.list()),
            Node::File(StoredFile { path, .. }) => Ok(vec![path.name().to_string()]),
            Node::Refused(r) => Ok(r.listing),
            Node::Missing(m) => match m.inside {
                Inside::Store => Err(not_found(&m.path)),
                Inside::Nothing | Inside::Hdf5 { .. } => Ok(Vec::new()),
            },
        }
    }

    /// `/api/fetch`.
    pub fn fetch(self, req: &FetchRequest) -> Result<FetchOutput> {
        req.check()?;
        match self {
            Node::Dir(_) => Err(Error::BadRequest(NOT_A_DATASET.into())),
            Node::Group(g) => g.members.fetch_group(&g.path, g.key.as_deref(), req),
            Node::Dataset(d) => d.fetch(req),
            Node::File(f) => Err(Error::BadRequest(f.fetch_refusal)),
            Node::Refused(r) => Err(r.error),
            Node::Missing(m) => Err(not_found(&m.path)),
        }
    }

    /// `/api/chunk`.
    pub fn chunk(self, nchunk: i64, budget: &Budget) -> Result<Vec<u8>> {
        match self {
            Node::Dir(d) => Err(Error::BadRequest(format!(
                "{} is a directory, not a dataset",
                d.path
            ))),
            Node::Group(g) => Err(g.members.chunk_refusal(&g.path, g.key.as_deref())),
            Node::Dataset(d) => d.chunk(nchunk, budget),
            Node::File(f) => Err(Error::BadRequest(f.chunk_refusal)),
            Node::Refused(r) => Err(r.error),
            Node::Missing(m) => match m.inside {
                Inside::Hdf5 { .. } => Err(crate::dataset::h5::not_blosc2(&m.path)),
                Inside::Nothing | Inside::Store => Err(not_found(&m.path)),
            },
        }
    }

    /// `/api/download`: files as stored (regular files decompressed),
    /// arrays whose data lives elsewhere computed. Nothing inside a
    /// container is a file of its own.
    pub fn download(self, budget: &Budget) -> Result<Download> {
        match self {
            Node::Dir(d) => Err(d.not_a_file()),
            Node::Group(g) => g.download(),
            Node::Dataset(d) => d.download(budget),
            Node::File(f) => Ok(Download::Stored(f.blob)),
            Node::Refused(r) => Err(not_found(&r.path)),
            Node::Missing(m) => Err(not_found(&m.path)),
        }
    }

    /// `/api/preview`: the stored bytes (regular files decompressed).
    pub fn preview(self, budget: &Budget) -> Result<Download> {
        match self {
            Node::Dataset(d) => d.preview(budget),
            other => other.download(budget),
        }
    }

    /// The stored object or directory the node was found in (the container
    /// file, for what lies inside one), and whether it is a directory.
    pub fn stored_key(&self) -> Option<(Key, bool)> {
        match self {
            Node::Dir(d) => Some((d.key.clone(), true)),
            Node::Group(g) => Some((g.members.tree().blob().meta().key.clone(), false)),
            Node::Dataset(d) => Some((d.object().meta().key.clone(), false)),
            Node::File(f) => Some((f.blob.meta().key.clone(), false)),
            Node::Refused(_) | Node::Missing(_) => None,
        }
    }

    /// For a whole HDF5 file: its tree, or why it cannot be read. `None`
    /// for anything else.
    pub fn hdf5_file(
        &self,
    ) -> Option<std::result::Result<Arc<crate::hierarchy::h5::H5Tree>, String>> {
        match self {
            Node::Group(Group {
                key: None, members, ..
            }) => members.hdf5().map(|t| Ok(t.clone())),
            Node::File(f) => f.unreadable_hdf5.clone().map(Err),
            _ => None,
        }
    }

    /// Whether it is a regular file (see [`Dataset::is_regular_file`]).
    pub fn is_regular_file(&self) -> bool {
        matches!(self, Node::Dataset(d) if d.is_regular_file())
    }

    /// For a directory: every file below with its stored size, by logical
    /// name (regular files without their `.b2`), sorted; for anything else,
    /// what [`Node::list`] says, without sizes.
    pub fn files(self) -> Result<Vec<(String, u64)>> {
        match self {
            Node::Dir(d) => {
                let mut files: Vec<(String, u64)> = d
                    .files()?
                    .into_iter()
                    .map(|(rel, m)| (logical_name(&rel).to_string(), m.size))
                    .collect();
                files.sort_unstable();
                Ok(files)
            }
            other => Ok(other.list()?.into_iter().map(|n| (n, 0)).collect()),
        }
    }

    /// The validator of what the node was read from, for `/api/info`.
    pub fn etag(&self) -> Option<String> {
        match self {
            Node::Dir(_) | Node::Refused(_) | Node::Missing(_) => None,
            Node::Group(g) => Some(crate::dataset::etag_of(g.members.tree().blob())),
            Node::Dataset(d) => d.etag(),
            Node::File(f) => Some(crate::dataset::etag_of(&f.blob)),
        }
    }

    /// The node as an operand of an expression.
    pub(crate) fn into_operand(self, opening: &mut Opening) -> Result<Box<dyn Operand>> {
        match self {
            Node::Dataset(d) => d.into_operand(opening),
            Node::Group(g) => Err(g.members.operand_refusal(&g.path, g.key.as_deref())),
            Node::Missing(m) => match m.inside {
                Inside::Hdf5 { readable: true } => Err(not_an_hdf5_dataset(&m.path)),
                _ => Err(not_found(&m.path)),
            },
            other => Err(Error::BadRequest(format!(
                "Invalid name or expression: {} is not an array (.b2nd)",
                other.path()
            ))),
        }
    }
}

fn not_found(path: &DsPath) -> Error {
    Error::NotFound {
        path: path.to_string(),
    }
}

fn not_an_hdf5_dataset(path: &DsPath) -> Error {
    Error::BadRequest(format!(
        "Invalid name or expression: {path} is not an HDF5 dataset"
    ))
}

/// A directory of the state.
pub struct Dir {
    pub(crate) path: DsPath,
    pub(crate) key: Key,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) modified: Option<std::time::SystemTime>,
}

impl Dir {
    /// A group of the files below it: their total size and count.
    fn info(&self) -> Result<Info> {
        let files = self.files()?;
        Ok(Info::Group(GroupInfo {
            kind: "group".into(),
            mtime: self.modified.map(crate::meta::iso_time),
            size: files.iter().map(|(_, m)| m.size).sum(),
            nfiles: files.len() as u64,
        }))
    }

    /// Every file below, by its logical name (regular files without their
    /// `.b2`), relative to the directory, sorted as Python sorts strings.
    fn list(&self) -> Result<Vec<String>> {
        let files = self.files()?;
        let mut names: Vec<String> = files
            .into_iter()
            .map(|(rel, _)| logical_name(&rel).to_string())
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// Every file below; none below a root not made yet (a new user's
    /// `@personal`).
    fn files(&self) -> Result<Vec<(String, crate::storage::ObjectMeta)>> {
        match walk(self.storage.as_ref(), &self.key) {
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            other => Ok(other?),
        }
    }

    fn not_a_file(&self) -> Error {
        Error::BadRequest(format!(
            "{} is a directory; download its files one by one",
            self.path
        ))
    }
}

/// The logical name of a stored file name (`README.md.b2` → `README.md`).
pub(crate) fn logical_name(stored: &str) -> &str {
    stored.strip_suffix(".b2").unwrap_or(stored)
}

/// A container file as a whole (`key` = `None`), or a group inside it.
pub struct Group {
    pub(crate) path: DsPath,
    pub(crate) members: Arc<dyn Hierarchy>,
    pub(crate) key: Option<String>,
}

impl Group {
    fn info(&self) -> Info {
        let tree = self.members.tree();
        let file = tree.blob();
        let size = match &self.key {
            None => file.meta().size,
            Some(key) => tree.size(key),
        };
        Info::Group(GroupInfo {
            kind: "group".into(),
            mtime: crate::dataset::mtime_of(file),
            size,
            nfiles: tree.leaves(self.key.as_deref().unwrap_or("/")).len() as u64,
        })
    }

    fn download(&self) -> Result<Download> {
        match &self.key {
            None => Ok(Download::Stored(self.members.tree().blob().clone())),
            Some(_) => Err(not_found(&self.path)),
        }
    }
}

/// A stored file that holds no dataset: described as a file, downloaded as
/// it is, and refused with its own reasons by fetch and chunk.
pub struct StoredFile {
    pub(crate) path: DsPath,
    pub(crate) blob: Arc<dyn Blob>,
    pub(crate) fetch_refusal: String,
    pub(crate) chunk_refusal: String,
    /// For an HDF5 file that cannot be read: why.
    pub(crate) unreadable_hdf5: Option<String>,
}

impl StoredFile {
    fn info(&self) -> Info {
        Info::File(FileInfo {
            mtime: crate::dataset::mtime_of(&self.blob),
            size: self.blob.meta().size,
        })
    }
}

/// Something that exists but cannot be served: a CTable in a store, an
/// array in a store whose data lives elsewhere, a leaf that does not open.
pub struct Refused {
    pub(crate) path: DsPath,
    pub(crate) error: Error,
    /// What `/api/list` shows for it (its container's listing of it).
    pub(crate) listing: Vec<String>,
}

/// Nothing at a path.
pub struct Missing {
    pub(crate) path: DsPath,
    pub(crate) inside: Inside,
}

/// Where a missing path would have been, which changes some answers (as
/// the reference's do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inside {
    /// Nowhere special.
    Nothing,
    /// Inside an HDF5 file (readable or not): chunks are refused as HDF5's.
    Hdf5 { readable: bool },
    /// Inside a `.b2z` that cannot be browsed: it has no listing either.
    Store,
}
