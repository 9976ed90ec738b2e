//! The one place that decides what a logical path names.
//!
//! [`Resolver::resolve`] maps `@root/a/b` to a [`Node`] for one caller: a
//! directory of the state, a container file (a `.b2z` store or an HDF5 file)
//! or a group in it, an array-like dataset of one of the kinds in
//! [`crate::dataset`], a stored file that is none of these, or nothing. It is
//! the only caller of the classifiers (names by suffix, HDF5 by signature,
//! arrays by what they derive from); the rules are the reference server's:
//!
//! * a path is a directory if the state has one there (roots always are);
//! * a path goes *into* a container at the first component (but the last)
//!   that is a `.b2z` or HDF5 file: by suffix, unless it is a directory
//!   merely named like one, or by content for an HDF5 file under another
//!   name;
//! * a name with a Blosc2 or HDF5 suffix is the file of that name;
//! * any other name is a regular file, stored as `<name>.b2`; a plain file
//!   dropped into a root by hand is compressed into that form on first
//!   touch, as the reference does (an HDF5 file is kept as it is).
//!
//! Adding a kind of dataset is a type implementing
//! [`crate::dataset::Dataset`] and a line in [`Resolver::open_stored`].

use std::rc::Rc;
use std::sync::Arc;

use crate::dataset::array::ArrayDataset;
use crate::dataset::h5::H5Dataset;
use crate::dataset::lazy::{LazyDataset, MAX_DEPTH};
use crate::dataset::operand::{Opening, SharedOperand};
use crate::dataset::proxy::{proxy_refusal, ProxyDataset};
use crate::dataset::schunk::{FrameDataset, RegularFile};
use crate::dataset::unreadable::Unreadable;
use crate::dataset::{Derived, Opener, Stored};
use crate::error::{Error, Result};
use crate::fetch::NOT_A_DATASET;
use crate::hierarchy::h5::{has_hdf5_signature, H5Tree};
use crate::hierarchy::zip::{Container, Leaf, LeafData};
use crate::hierarchy::{Member, Tree};
use crate::node::h5::H5Store;
use crate::node::zip::{object_unsupported, ZipStore};
use crate::node::{Dir, Group, Inside, Missing, Node, Refused, StoredFile};
use crate::path::{is_container_name, is_hdf5_name, is_stored_verbatim, suffix, DsPath};
use crate::storage::{Blob, Entry, Key, ObjectMeta, PutMode, ReadAt, StagedIo, Storage};
use crate::store::{Caller, StateDir};

/// Resolves paths for one caller (and opens expression operands as them).
#[derive(Clone)]
pub struct Resolver {
    state: StateDir,
    user_id: Option<String>,
    is_superuser: bool,
    /// How many lazy expressions deep the paths resolved are operands.
    depth: usize,
}

impl Resolver {
    pub fn new(state: &StateDir, caller: Caller<'_>) -> Resolver {
        Resolver {
            state: state.clone(),
            user_id: caller.user_id.map(str::to_string),
            is_superuser: caller.is_superuser,
            depth: 0,
        }
    }

    pub fn caller(&self) -> Caller<'_> {
        Caller {
            user_id: self.user_id.as_deref(),
            is_superuser: self.is_superuser,
        }
    }

    pub fn state(&self) -> &StateDir {
        &self.state
    }

    fn storage(&self) -> &Arc<dyn Storage> {
        self.state.storage_arc()
    }

    /// What `path` names for this caller.
    pub fn resolve(&self, path: &DsPath) -> Result<Node> {
        let base = self.state.root_key(path.root(), self.caller())?;
        let key = join(&base, path.parts(), path)?;
        let heads = Heads::of(self.storage().as_ref(), &base, path, &key);
        let entry = heads.head(&key)?;
        if path.is_root() || matches!(entry, Some(Entry::Dir { .. })) {
            let modified = match entry {
                Some(Entry::Dir { modified }) => modified,
                _ => None,
            };
            return Ok(Node::Dir(Dir {
                path: path.clone(),
                key,
                storage: self.storage().clone(),
                modified,
            }));
        }
        if let Some((container, inner)) = self.split_container(&heads, &base, path)? {
            return self.open_member(&heads, path, &container, &inner);
        }
        let missing = || {
            Node::Missing(Missing {
                path: path.clone(),
                inside: Inside::Nothing,
            })
        };
        if is_stored_verbatim(path.name()) {
            return match entry {
                Some(Entry::Object(meta)) => self.open_stored(path, self.open(&meta)?),
                _ => Ok(missing()),
            };
        }
        let b2 = key.with_suffix(".b2")?;
        if let Some(Entry::Object(meta)) = heads.head(&b2)? {
            return Ok(regular_file(path, self.open(&meta)?, false));
        }
        if let Some(Entry::Object(meta)) = entry {
            let blob = self.open(&meta)?;
            // An HDF5 file is one whatever its name (uploads keep them as
            // they are): it is served in place, never compressed.
            if has_hdf5_signature(blob.as_ref()) {
                return Ok(self.hdf5_file(path, blob));
            }
            // A plain file dropped into a root by hand: store it the way
            // every other regular file is stored, as the reference does;
            // but a link is never rewritten (what it points to is not ours).
            if self.storage().is_link(&key) {
                return Err(Error::Forbidden(format!(
                    "{path} is a symbolic link to a plain file, which is not served: links are never rewritten, and plain files are served once compressed; put the file itself there"
                )));
            }
            let packed = compress_in_place(self.storage().as_ref(), &key, &b2, &blob)?;
            return Ok(regular_file(path, packed, false));
        }
        Ok(missing())
    }

    /// The version of an object a lookup described.
    fn open(&self, meta: &ObjectMeta) -> Result<Arc<dyn Blob>> {
        Ok(self.storage().open_version(meta)?)
    }

    /// Where a path descends into a container file: the first component
    /// (but the last) whose suffix is a container's and which is not a
    /// directory (a directory merely named like one is walked through, as
    /// the reference does), or which is a file holding HDF5 under another
    /// name. Answers the container's key and the inner key (`/g/a`).
    fn split_container(
        &self,
        heads: &Heads<'_>,
        base: &Key,
        path: &DsPath,
    ) -> Result<Option<(Key, String)>> {
        let parts = path.parts();
        let mut key = base.clone();
        for (i, part) in parts.iter().enumerate().take(parts.len().saturating_sub(1)) {
            key = key.join(part).map_err(|_| not_found(path))?;
            let entry = heads.head(&key)?;
            let container = if is_container_name(part) {
                !matches!(entry, Some(Entry::Dir { .. }))
            } else {
                match &entry {
                    Some(Entry::Object(meta)) => has_hdf5_signature(self.open(meta)?.as_ref()),
                    _ => false,
                }
            };
            if container {
                return Ok(Some((key, format!("/{}", parts[i + 1..].join("/")))));
            }
        }
        Ok(None)
    }

    /// A path inside the container file at `container`.
    fn open_member(
        &self,
        heads: &Heads<'_>,
        path: &DsPath,
        container: &Key,
        inner: &str,
    ) -> Result<Node> {
        let missing = |inside| {
            Ok(Node::Missing(Missing {
                path: path.clone(),
                inside,
            }))
        };
        let blob = match heads.head(container)? {
            Some(Entry::Object(meta)) => self.open(&meta)?,
            _ => return missing(Inside::Nothing),
        };
        let name = container.name();
        if is_hdf5_name(name) || (!name.ends_with(".b2z") && has_hdf5_signature(blob.as_ref())) {
            return match H5Tree::open_cached(self.storage(), container) {
                Ok(tree) => Ok(hdf5_member(path, tree, inner)),
                Err(_) => missing(Inside::Hdf5 { readable: false }),
            };
        }
        match Container::open_cached(self.storage().as_ref(), container) {
            Ok(c) if c.is_browsable() => Ok(zip_member(path, c, inner)),
            // A file that is not a store that can be browsed has nothing
            // inside it.
            _ => missing(Inside::Store),
        }
    }

    /// A file stored under its own name, by its suffix.
    fn open_stored(&self, path: &DsPath, blob: Arc<dyn Blob>) -> Result<Node> {
        let dataset: Box<dyn crate::dataset::Dataset> = match suffix(path.name()) {
            ".b2nd" => match crate::frames::open_array(&blob) {
                Err(e) => Box::new(Unreadable::array(path.clone(), blob, e)),
                Ok(arr) => match Derived::of(&arr) {
                    None => Box::new(ArrayDataset::new(path.clone(), arr, Stored::Object(blob))),
                    Some(Derived::Hdf5Proxy) => Box::new(ProxyDataset::new(
                        path.clone(),
                        blob,
                        arr,
                        self.storage().clone(),
                        Arc::new(self.clone()),
                    )),
                    Some(Derived::LazyExpr) => Box::new(LazyDataset::new(
                        path.clone(),
                        blob,
                        arr,
                        Arc::new(self.clone()),
                        self.depth,
                    )),
                },
            },
            ".b2frame" => match crate::frames::open_frame(&blob) {
                Err(e) => Box::new(Unreadable::frame(path.clone(), blob, e)),
                Ok(sc) => Box::new(FrameDataset::new(path.clone(), sc, Stored::Object(blob))),
            },
            ".b2" => return Ok(regular_file(path, blob, true)),
            ".b2z" => return Ok(self.zip_store(path, blob)),
            _ => return Ok(self.hdf5_file(path, blob)),
        };
        Ok(Node::Dataset(dataset))
    }

    /// A `.b2z` file as a whole.
    fn zip_store(&self, path: &DsPath, blob: Arc<dyn Blob>) -> Node {
        let key = blob.meta().key.clone();
        match Container::open_cached(self.storage().as_ref(), &key) {
            Ok(c) if c.is_browsable() => Node::Group(Group {
                path: path.clone(),
                members: Arc::new(ZipStore(c)),
                key: None,
            }),
            Ok(_) => {
                let refusal = object_unsupported(path, "ctable").to_string();
                Node::File(StoredFile {
                    path: path.clone(),
                    blob,
                    fetch_refusal: refusal.clone(),
                    chunk_refusal: refusal,
                    unreadable_hdf5: None,
                })
            }
            Err(e) => Node::File(StoredFile {
                path: path.clone(),
                blob,
                fetch_refusal: format!("{path} is not a readable Blosc2 zip store: {e}"),
                chunk_refusal: format!(
                    "{path} is a container, which holds datasets rather than being one; ask for a dataset inside it"
                ),
                unreadable_hdf5: None,
            }),
        }
    }

    /// An HDF5 file as a whole.
    fn hdf5_file(&self, path: &DsPath, blob: Arc<dyn Blob>) -> Node {
        let key = blob.meta().key.clone();
        match H5Tree::open_cached(self.storage(), &key) {
            Ok(tree) => Node::Group(Group {
                path: path.clone(),
                members: Arc::new(H5Store(tree)),
                key: None,
            }),
            Err(why) => Node::File(StoredFile {
                path: path.clone(),
                blob,
                fetch_refusal: NOT_A_DATASET.into(),
                chunk_refusal: crate::dataset::h5::not_blosc2(path).to_string(),
                unreadable_hdf5: Some(why),
            }),
        }
    }
}

impl Opener for Resolver {
    fn operand(
        &self,
        path: &DsPath,
        depth: usize,
        opening: &mut Opening,
    ) -> Result<Rc<SharedOperand>> {
        if depth > MAX_DEPTH {
            return Err(Error::BadRequest(format!(
                "Invalid name or expression: lazy expressions nest deeper than {MAX_DEPTH} \
                 (or refer to themselves) at {path}"
            )));
        }
        opening.operand(path, |opening| {
            let deeper = Resolver {
                depth,
                ..self.clone()
            };
            deeper.resolve(path)?.into_operand(opening)
        })
    }

    fn logical_path(&self, dir: &Key, url: &str) -> Option<DsPath> {
        let key = if url.starts_with('/') {
            self.storage().key_of_path(std::path::Path::new(url))?
        } else {
            let parts = crate::dataset::lazy_format::resolve_relative(dir, url)?;
            Key::from_segments(parts.iter().map(String::as_str)).ok()?
        };
        self.state.logical_of(&key, self.caller())
    }

    fn proxy_file(&self, path: &DsPath, key: &Key, dsetname: &str) -> Result<Key> {
        proxy_file(self.storage().as_ref(), path, key, dsetname)
    }
}

/// Whether a file named `name` is stored under its own name (Blosc2
/// containers and HDF5 files) rather than compressed as `<name>.b2`: how
/// writes store what [`Resolver::resolve`] then finds.
pub(crate) fn stored_under_own_name(name: &str) -> bool {
    is_stored_verbatim(name)
}

/// Whether bytes are an HDF5 file, whatever the name they came with (such a
/// file is kept as it is, under its own name).
pub(crate) fn holds_hdf5(bytes: &dyn ReadAt) -> bool {
    has_hdf5_signature(bytes)
}

/// Checks that received bytes are what their name's suffix says, before
/// they become visible under it.
pub(crate) fn check_upload(bytes: &Arc<dyn StagedIo>, logical_name: &str) -> Result<()> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::BadRequest(format!("{logical_name} is not a valid {what}: {e}"))
    };
    match suffix(logical_name) {
        ".b2nd" => crate::frames::check_staged_array(bytes.clone(), logical_name)
            .map_err(|e| bad("Blosc2 array (.b2nd)", &e)),
        ".b2frame" | ".b2" => crate::frames::check_staged_frame(bytes.clone(), logical_name)
            .map_err(|e| bad("Blosc2 frame", &e)),
        ".b2z" => crate::hierarchy::zip::check_directory(bytes.as_ref())
            .map_err(|e| bad("Blosc2 store (.b2z)", &e)),
        _ if is_hdf5_name(logical_name) => {
            if !has_hdf5_signature(bytes.as_ref()) {
                return Err(bad("HDF5 file", &"no HDF5 signature"));
            }
            crate::hierarchy::h5::check_hdf5(bytes.clone(), logical_name)
                .map_err(|e| bad("HDF5 file", &e))
        }
        _ => Ok(()),
    }
}

/// The media type a name says, where the name alone decides it: none for
/// Blosc2 containers (`Some(None)`), HDF5's for HDF5 names, Markdown's; `None`
/// when the name does not decide (ask a table of suffixes).
pub fn media_type_of(name: &str) -> Option<Option<&'static str>> {
    if matches!(suffix(name), ".b2nd" | ".b2frame" | ".b2" | ".b2z") {
        return Some(None);
    }
    if is_hdf5_name(name) {
        return Some(Some("application/x-hdf5"));
    }
    if suffix(name) == ".md" {
        return Some(Some("text/markdown; charset=utf-8"));
    }
    None
}

/// The array a stored `.b2nd` holds, when it holds its own data; `None`
/// for one whose data lives elsewhere (a proxy, a lazy expression), which
/// writes that change an array's data refuse.
pub(crate) fn data_array(
    blob: &Arc<dyn Blob>,
) -> cat2_blosc2::Result<Option<cat2_blosc2::NdArray>> {
    let arr = crate::frames::open_array(blob)?;
    Ok(Derived::of(&arr).is_none().then_some(arr))
}

/// What `key` names inside a readable HDF5 file.
fn hdf5_member(path: &DsPath, tree: Arc<H5Tree>, key: &str) -> Node {
    if let Some(d) = H5Dataset::open(path.clone(), tree.clone(), key) {
        return Node::Dataset(Box::new(d));
    }
    match tree.lookup(key) {
        Some(Member::Group) => Node::Group(Group {
            path: path.clone(),
            members: Arc::new(H5Store(tree)),
            key: Some(key.to_string()),
        }),
        _ => Node::Missing(Missing {
            path: path.clone(),
            inside: Inside::Hdf5 { readable: true },
        }),
    }
}

/// What `key` names inside a browsable `.b2z` store: a group, a leaf (an
/// array or a super-chunk read in place), or an object that is not served.
fn zip_member(path: &DsPath, store: Arc<Container>, key: &str) -> Node {
    let listing = store.list(Some(key));
    let refused = |error, listing| {
        Node::Refused(Refused {
            path: path.clone(),
            error,
            listing,
        })
    };
    match store.lookup(key) {
        Some(Member::Group) => Node::Group(Group {
            path: path.clone(),
            members: Arc::new(ZipStore(store.clone())),
            key: Some(key.to_string()),
        }),
        Some(Member::Object(kind)) => refused(object_unsupported(path, kind), listing),
        Some(Member::Leaf) => {
            let Leaf { data, placement } = match store.open_leaf(key) {
                Ok(leaf) => leaf,
                Err(e) => return refused(e, listing),
            };
            let stored = Stored::Member {
                store: store.blob().clone(),
                placement,
                listing: listing.clone(),
            };
            Node::Dataset(match data {
                LeafData::Array(arr) => match Derived::of(&arr) {
                    // Arrays whose data lives elsewhere are not served
                    // from inside a store.
                    Some(d) => return refused(d.unsupported(path), listing),
                    None => Box::new(ArrayDataset::new(path.clone(), arr, stored)),
                },
                LeafData::Frame(sc) => Box::new(FrameDataset::new(path.clone(), sc, stored)),
            })
        }
        None => Node::Missing(Missing {
            path: path.clone(),
            inside: Inside::Nothing,
        }),
    }
}

/// The HDF5 file a proxy at `path` (stored at `key`) with dataset name
/// `dsetname` reads from, found as the reference finds it: climb from the
/// proxy's directory one level per `/` in `_dsetname`, and add `.h5` (or
/// `.hdf5`); cat2rs also accepts any other sibling of that name that *is* an
/// HDF5 file (`scan.nxs` unfolds into `scan/`), and refuses a `_dsetname`
/// that would climb out of the proxy's root (the vlmeta of an uploaded
/// `.b2nd` is the uploader's to choose).
fn proxy_file(storage: &dyn Storage, path: &DsPath, key: &Key, dsetname: &str) -> Result<Key> {
    let climb = dsetname.matches('/').count();
    // The proxy's directory is `parts - 1` levels below its root; the HDF5
    // file must be at least one level below it.
    let depth = path.parts().len().saturating_sub(1);
    if climb + 1 > depth {
        return Err(proxy_refusal(
            path,
            format!(
                "its dataset name {dsetname:?} points outside {}",
                path.root().name()
            ),
        ));
    }
    let mut dir = key.parent().unwrap_or_default();
    for _ in 0..climb {
        dir = dir.parent().unwrap_or_default();
    }
    for ext in [".h5", ".hdf5"] {
        if let Ok(candidate) = dir.with_suffix(ext) {
            if matches!(storage.head(&candidate), Ok(Entry::Object(_))) {
                return Ok(candidate);
            }
        }
    }
    // Any sibling `<name>.<ext>` that is an HDF5 file (NeXus `.nxs`, ...).
    let name = dir.name().to_string();
    if let Some(parent) = dir.parent() {
        let prefix = format!("{name}.");
        let siblings = storage.list(&parent).map(|l| l.objects).unwrap_or_default();
        for meta in siblings {
            if !meta.key.name().starts_with(&prefix) {
                continue;
            }
            if let Ok(blob) = storage.open(&meta.key) {
                if has_hdf5_signature(blob.as_ref()) {
                    return Ok(meta.key);
                }
            }
        }
    }
    Err(proxy_refusal(
        path,
        format!("its HDF5 file {name}.h5 is missing"),
    ))
}

fn regular_file(path: &DsPath, blob: Arc<dyn Blob>, by_stored_name: bool) -> Node {
    Node::Dataset(match crate::frames::open_frame(&blob) {
        Ok(sc) => Box::new(RegularFile::new(path.clone(), sc, blob, by_stored_name)),
        Err(e) => Box::new(Unreadable::regular_file(path.clone(), blob, e)),
    })
}

/// What the keys of one resolution name, looked up together
/// ([`Storage::head_each`]): a path, the ancestors below its root and its
/// `.b2` twin cost one round trip to a catalog, not one each. A key not
/// looked up, or whose lookup failed, is asked about again on its own, so
/// an error surfaces where the resolution meets it.
struct Heads<'s> {
    storage: &'s dyn Storage,
    found: Vec<(Key, Entry)>,
    absent: Vec<Key>,
}

impl<'s> Heads<'s> {
    fn of(storage: &'s dyn Storage, base: &Key, path: &DsPath, key: &Key) -> Heads<'s> {
        let mut keys = Vec::with_capacity(path.parts().len() + 1);
        let mut at = base.clone();
        for part in path.parts() {
            match at.join(part) {
                Ok(next) => at = next,
                Err(_) => break,
            }
            keys.push(at.clone());
        }
        if !path.is_root() && !is_stored_verbatim(path.name()) {
            if let Ok(b2) = key.with_suffix(".b2") {
                keys.push(b2);
            }
        }
        let mut heads = Heads {
            storage,
            found: Vec::with_capacity(keys.len()),
            absent: Vec::new(),
        };
        let answers = storage.head_each(&keys);
        for (key, answer) in keys.into_iter().zip(answers) {
            match answer {
                Ok(entry) => heads.found.push((key, entry)),
                Err(e) if e.is_not_found() => heads.absent.push(key),
                Err(_) => {}
            }
        }
        heads
    }

    /// What `key` names, `None` for nothing.
    fn head(&self, key: &Key) -> Result<Option<Entry>> {
        if let Some((_, entry)) = self.found.iter().find(|(k, _)| k == key) {
            return Ok(Some(entry.clone()));
        }
        if self.absent.contains(key) {
            return Ok(None);
        }
        head(self.storage, key)
    }
}

/// What `key` names, `None` for nothing.
fn head(storage: &dyn Storage, key: &Key) -> Result<Option<Entry>> {
    match storage.head(key) {
        Ok(e) => Ok(Some(e)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn not_found(path: &DsPath) -> Error {
    Error::NotFound {
        path: path.to_string(),
    }
}

/// `base` joined with the components of a checked path. A component no key
/// can hold names nothing.
fn join(base: &Key, parts: &[String], path: &DsPath) -> Result<Key> {
    let mut key = base.clone();
    for part in parts {
        key = key.join(part).map_err(|_| not_found(path))?;
    }
    Ok(key)
}

/// Compresses the plain file at `key` (read as `blob`) into the regular
/// file `b2`, atomically, then removes it.
fn compress_in_place(
    storage: &dyn Storage,
    key: &Key,
    b2: &Key,
    blob: &Arc<dyn Blob>,
) -> Result<Arc<dyn Blob>> {
    let len = usize::try_from(blob.len()).map_err(|_| {
        Error::BadRequest(format!(
            "{key} is too large to be compressed on first touch"
        ))
    })?;
    let data = blob
        .read_range(0, len)
        .map_err(|e| crate::storage::Error::io("reading", key, e))?;
    let frame = crate::blob::compress_blob(&data)?;
    storage.put(b2, &frame, PutMode::Overwrite)?;
    storage.delete(key)?;
    Ok(storage.open(b2)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const USER: Caller<'static> = Caller {
        user_id: Some("0b5e5a2c-96f3-4a0c-8d53-2f6a4ad7d5a1"),
        is_superuser: false,
    };

    fn resolve(sd: &StateDir, path: &str, caller: Caller<'_>) -> Result<Node> {
        Resolver::new(sd, caller).resolve(&DsPath::parse(path).unwrap())
    }

    fn kind(node: &Node) -> &'static str {
        match node {
            Node::Dir(_) => "dir",
            Node::Group(_) => "group",
            Node::Dataset(d) if d.is_regular_file() => "regular file",
            Node::Dataset(_) => "dataset",
            Node::File(_) => "file",
            Node::Refused(_) => "refused",
            Node::Missing(_) => "missing",
        }
    }

    #[test]
    fn a_plain_file_becomes_a_regular_file_on_first_touch() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        fs::write(sd.path().join("public/notes.txt"), b"hello").unwrap();
        let node = resolve(&sd, "@public/notes.txt", Caller::default()).unwrap();
        assert_eq!(kind(&node), "regular file");
        assert!(!sd.path().join("public/notes.txt").exists());
        assert!(sd.path().join("public/notes.txt.b2").is_file());
        // Listed by its logical name as nothing (as the reference), and read back.
        assert!(node.list().unwrap().is_empty());
        let again = resolve(&sd, "@public/notes.txt", Caller::default()).unwrap();
        let (key, _) = again.stored_key().unwrap();
        let blob = sd.storage().open(&key).unwrap();
        assert_eq!(crate::blob::read_blob(&blob).unwrap(), b"hello");
    }

    #[test]
    fn directories_roots_and_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        fs::create_dir(sd.path().join("public/d")).unwrap();
        let anon = Caller::default();
        assert_eq!(kind(&resolve(&sd, "@public/d", anon).unwrap()), "dir");
        assert_eq!(kind(&resolve(&sd, "@public", anon).unwrap()), "dir");
        // A new user's @personal is a root before it exists: empty.
        let personal = resolve(&sd, "@personal", USER).unwrap();
        assert!(personal.list().unwrap().is_empty());
        let missing = resolve(&sd, "@public/x.b2nd", anon).unwrap();
        assert_eq!(kind(&missing), "missing");
        assert!(matches!(
            resolve(&sd, "@shared/x.b2nd", anon),
            Err(Error::Unauthorized)
        ));
        // Below a file is nothing, not a fault.
        fs::write(sd.path().join("public/f.b2frame"), b"x").unwrap();
        let below = resolve(&sd, "@public/f.b2frame/inner", anon).unwrap();
        assert_eq!(kind(&below), "missing");
    }

    #[test]
    fn names_and_contents_decide_the_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        let anon = Caller::default();
        // A frame name with no frame in it is unreadable, not a fault.
        fs::write(sd.path().join("public/bad.b2nd"), b"not a frame").unwrap();
        let bad = resolve(&sd, "@public/bad.b2nd", anon).unwrap();
        assert_eq!(kind(&bad), "dataset");
        assert!(matches!(
            bad.info().unwrap(),
            cat2_proto::Info::Unreadable(_)
        ));
        // An HDF5 signature makes a file HDF5 whatever its name; an
        // unreadable one is a stored file, and paths inside it name nothing.
        let mut h5 = b"\x89HDF\r\n\x1a\n".to_vec();
        h5.resize(600, 0);
        fs::write(sd.path().join("public/scan.dat"), &h5).unwrap();
        let scan = resolve(&sd, "@public/scan.dat", anon).unwrap();
        assert_eq!(kind(&scan), "file");
        assert!(
            sd.path().join("public/scan.dat").is_file(),
            "never compressed"
        );
        let inside = resolve(&sd, "@public/scan.dat/entry", anon).unwrap();
        assert!(matches!(
            inside,
            Node::Missing(Missing {
                inside: Inside::Hdf5 { readable: false },
                ..
            })
        ));
        // A .b2z that is not a store: a stored file, with nothing inside.
        fs::write(sd.path().join("public/s.b2z"), b"not a zip").unwrap();
        assert_eq!(kind(&resolve(&sd, "@public/s.b2z", anon).unwrap()), "file");
        assert!(resolve(&sd, "@public/s.b2z/a", anon)
            .unwrap()
            .list()
            .is_err());
        // A directory merely named like a container is walked through.
        fs::create_dir_all(sd.path().join("public/d.h5/sub")).unwrap();
        assert_eq!(
            kind(&resolve(&sd, "@public/d.h5/sub", anon).unwrap()),
            "dir"
        );
    }

    #[test]
    fn operands_resolve_relative_and_absolute_paths_for_the_caller() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        let r = Resolver::new(&sd, USER);
        let dir = Key::parse("personal/0b5e5a2c-96f3-4a0c-8d53-2f6a4ad7d5a1").unwrap();
        assert_eq!(
            r.logical_path(&dir, "../../shared/x.b2nd")
                .unwrap()
                .to_string(),
            "@shared/x.b2nd"
        );
        assert_eq!(
            r.logical_path(&dir, "y.b2nd").unwrap().to_string(),
            "@personal/y.b2nd"
        );
        let abs = sd.path().join("public/z.b2nd");
        assert_eq!(
            r.logical_path(&dir, &abs.to_string_lossy())
                .unwrap()
                .to_string(),
            "@public/z.b2nd"
        );
        // Another user's @personal, or outside the roots, is out of reach.
        assert!(r.logical_path(&dir, "../other/x.b2nd").is_none());
        assert!(r.logical_path(&dir, "../../../etc/passwd").is_none());
        assert!(r.logical_path(&dir, "/etc/passwd").is_none());
    }
}
