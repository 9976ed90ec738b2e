//! `.b2z` stores (python-blosc2's `TreeStore` and `DictStore`), read in place.
//!
//! A `.b2z` is a zip archive whose members are *stored*, not deflated: each
//! leaf is an ordinary Blosc2 frame (`g/a.b2nd`, `x.b2f`) lying at a byte
//! window of the file, and `embed.b2e` is a super-chunk whose metalayer says
//! which kind of store this is (`b2tree`, `b2dict`), whose vlmeta
//! `estore_metadata` maps the keys of small *embedded* leaves to byte ranges
//! of its own (decompressed) data, and whose vlmeta `_object_registry` names
//! the roots of objects kept as subtrees (a CTable at `/tbl` is `tbl/_meta`,
//! `tbl/_cols/*`, ...). Nothing is unpacked: a leaf is opened by C-Blosc2 at
//! its offset in the archive, so serving a slice of a big leaf reads only the
//! chunks it needs, and serving the whole leaf is a copy of its window.
//!
//! The hierarchy is the one the keys spell, with each store's own rules, as
//! the reference server browses them:
//! * DictStore: every key is a leaf; a group is a prefix some key continues
//!   (so `/grp` can be both a leaf and, when listing, a prefix).
//! * TreeStore: a key with children is a group, not a leaf; `/x/__vlmeta__`
//!   carriers make `/x` a group; the internals of objects are hidden and the
//!   object root (a CTable) is one entry. A TreeStore whose root holds a
//!   CTable manifest (`/_meta`) *is* that table and is not browsed.
//!
//! The archive is untrusted: its structure is checked by [`zip`], every leaf
//! frame's declared length must fit in its window before C-Blosc2 reads it
//! (and cat2-blosc2 checks what else C-Blosc2 parses on opening), and an
//! embedded leaf may claim no more bytes than the whole file has.
//!
//! Files: `archive` (the zip format), this one (reading a store's index),
//! `keys` (what keys name), `frame` (frames lying in the archive), `leaf`
//! (opening leaves).

pub(crate) mod archive;
mod frame;
mod keys;
mod leaf;

use frame::frame_fits;
pub use frame::{Leaf, LeafData, Placement};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::filecache::FileCache;
use crate::storage::{Blob, Key, ReadAt, Storage};

use cat2_blosc2::SChunk;

use archive::{ZipError, ZipIndex, ZipMember};

/// The member holding the store's index and embedded leaves.
const EMBED_MEMBER: &str = "embed.b2e";
/// Suffixes python-blosc2 gives the members that hold leaves.
const LEAF_SUFFIXES: [&str; 3] = [".b2nd", ".b2f", ".b2b"];
/// The key suffix of TreeStore group metadata carriers.
const VLMETA_SUFFIX: &str = "/__vlmeta__";
/// Longest member name taken as a leaf; real keys are paths of a few
/// components, and bounding them bounds the work per key.
const MAX_NAME_LEN: usize = 4096;
/// Most `*/_meta` members probed for CTable manifests in a store without an
/// object registry (each probe opens a frame).
const MAX_MANIFEST_PROBES: usize = 1024;
/// Stores whose index is kept between requests (a client reading a leaf
/// chunk by chunk would otherwise have the zip directory re-read each time).
const CACHE_SLOTS: usize = 32;

/// Why a `.b2z` file is not a store that can be browsed: it is then served
/// as the plain file it is, and paths inside it name nothing.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NotAStore(pub String);

impl From<ZipError> for NotAStore {
    fn from(e: ZipError) -> Self {
        NotAStore(e.0)
    }
}

/// Which python-blosc2 object a store file opens as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A hierarchical `TreeStore` (also what a store without a marker is).
    Tree,
    /// A flat `DictStore`, whose keys are paths.
    Dict,
    /// A `TreeStore` whose root is a CTable: a table, not a group.
    Table,
}

/// Where the frame of a leaf lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A stored zip member (index into `Container::members`).
    Member(usize),
    /// A byte range of the embedded store's data.
    Embedded { offset: u64, length: u64 },
    /// A reference to an array on another server (`urlbase`, `path`).
    Remote(String),
}

/// The index of a `.b2z` store, read from its zip directory and `embed.b2e`.
pub struct Container {
    /// The archive, pinned to the version indexed.
    blob: Arc<dyn Blob>,
    file_len: u64,
    kind: StoreKind,
    /// Zip members, one per name (the last of duplicates, as Python's zipfile).
    members: Vec<ZipMember>,
    /// Where each member's data starts, for the members that hold leaves.
    data_offsets: HashMap<usize, u64>,
    /// Data offset of `embed.b2e`.
    embed_offset: u64,
    /// Every stored leaf by key (`/g/a`), object internals included.
    leaves: BTreeMap<String, Source>,
    /// The keys of the hierarchy a listing walks (see the module docs).
    keys: BTreeSet<String>,
    /// TreeStore groups that exist through their metadata carrier.
    marked: BTreeSet<String>,
    /// Object roots and their kinds.
    objects: BTreeMap<String, String>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("file", &self.blob.meta().key)
            .field("kind", &self.kind)
            .field("leaves", &self.leaves.len())
            .finish()
    }
}

/// Python's `os.path.splitext(name)[0]`: the name without the suffix of its
/// last component (leading dots of that component are not a suffix).
fn strip_ext(name: &str) -> &str {
    let base_at = name.rfind('/').map_or(0, |i| i + 1);
    let base = &name[base_at..];
    let lead = base.len() - base.trim_start_matches('.').len();
    match base[lead..].rfind('.') {
        Some(i) => &name[..base_at + lead + i],
        None => name,
    }
}

/// The key of a member (`g/a.b2nd` → `/g/a`).
fn key_of(name: &str) -> String {
    let k = strip_ext(name);
    if k.starts_with('/') {
        k.to_string()
    } else {
        format!("/{k}")
    }
}

/// A msgpack map's entry by string key.
fn map_get<'a>(v: &'a rmpv::Value, key: &str) -> Option<&'a rmpv::Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn as_text(v: &rmpv::Value) -> Option<String> {
    match v {
        rmpv::Value::String(s) => s.as_str().map(str::to_string),
        rmpv::Value::Binary(b) => std::str::from_utf8(b).ok().map(str::to_string),
        _ => None,
    }
}

/// The string vlmeta entry `name` of a super-chunk.
fn vlmeta_text(sc: &SChunk, name: &str) -> Option<String> {
    let raw = sc.vlmeta_raw(name).ok().flatten()?;
    as_text(&cat2_blosc2::decode_msgpack(&raw))
}

/// The keys that lie strictly below one of `roots` (`/t/a` below `/t`), in
/// one sorted sweep. The part of the key space below a root, `root/...`,
/// is the range `[root + "/", root + "0")` (`0` follows `/`), and such ranges
/// are nested or disjoint, so a stack of the open ranges' ends suffices.
pub(super) fn inside_any<'a>(
    keys: &'a BTreeSet<String>,
    roots: impl Iterator<Item = &'a String>,
) -> BTreeSet<&'a String> {
    let mut ranges: Vec<(String, String)> =
        roots.map(|r| (format!("{r}/"), format!("{r}0"))).collect();
    ranges.sort_unstable();
    let mut open: Vec<&str> = Vec::new();
    let mut next = 0;
    let mut inside = BTreeSet::new();
    for key in keys {
        while let Some((start, end)) = ranges.get(next) {
            if start.as_str() > key.as_str() {
                break;
            }
            while open.last().is_some_and(|e| *e <= start.as_str()) {
                open.pop();
            }
            open.push(end);
            next += 1;
        }
        while open.last().is_some_and(|e| *e <= key.as_str()) {
            open.pop();
        }
        if !open.is_empty() {
            inside.insert(key);
        }
    }
    inside
}

static CACHE: FileCache<Container> = FileCache::new(CACHE_SLOTS);

/// Whether `bytes` (an upload) are a zip archive whose central directory
/// lists: the check a `.b2z` gets before it is stored. Its members are read
/// (and checked) when they are asked for.
pub(crate) fn check_directory(bytes: &dyn ReadAt) -> std::result::Result<(), String> {
    archive::read_index(bytes, bytes.len())
        .map(drop)
        .map_err(|e| e.to_string())
}

impl Container {
    /// [`Container::open`], keeping the last few indexes read: an entry
    /// serves while the object keeps its version.
    pub fn open_cached(
        storage: &dyn Storage,
        key: &Key,
    ) -> std::result::Result<Arc<Container>, NotAStore> {
        CACHE.get_or_open(
            storage,
            key,
            |e| NotAStore(format!("cannot open it: {e}")),
            Container::open,
        )
    }

    /// Reads the index of the store in `blob`.
    pub fn open(blob: Arc<dyn Blob>) -> std::result::Result<Container, NotAStore> {
        let file_len = blob.len();
        let f: &dyn ReadAt = blob.as_ref();
        let ZipIndex { members: all, .. } = archive::read_index(f, file_len)?;
        // One member per name, the last one winning, in first-seen order.
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut members: Vec<ZipMember> = Vec::new();
        for m in all {
            match by_name.get(&m.name) {
                Some(&i) => members[i] = m,
                None => {
                    by_name.insert(m.name.clone(), members.len());
                    members.push(m);
                }
            }
        }
        let embed = by_name
            .get(EMBED_MEMBER)
            .map(|&i| &members[i])
            .ok_or_else(|| NotAStore(format!("it has no {EMBED_MEMBER} member")))?;
        if !embed.is_stored() {
            return Err(NotAStore(format!(
                "its {EMBED_MEMBER} is compressed; a .b2z is read in place, so its members must be stored"
            )));
        }
        let embed_offset = archive::data_offset(f, file_len, embed)?;
        let unreadable =
            |why: String| NotAStore(format!("its {EMBED_MEMBER} is unreadable: {why}"));
        frame_fits(f, embed_offset, embed.compressed_size).map_err(unreadable)?;
        let estore = crate::frames::open_frame_at(&blob, embed_offset)
            .map_err(|e| unreadable(e.to_string()))?;
        let metas: Vec<String> = estore.metalayers().into_iter().map(|(n, _)| n).collect();
        let mut kind = if metas.iter().any(|n| n == "b2tree") {
            StoreKind::Tree
        } else if metas.iter().any(|n| n == "b2dict") {
            StoreKind::Dict
        } else if metas
            .iter()
            .any(|n| n == "b2embed" || n == "b2remote_store")
        {
            return Err(NotAStore("it is not a TreeStore or a DictStore".into()));
        } else {
            StoreKind::Tree
        };

        let mut c = Container {
            blob: blob.clone(),
            file_len,
            kind,
            members,
            data_offsets: HashMap::new(),
            embed_offset,
            leaves: BTreeMap::new(),
            keys: BTreeSet::new(),
            marked: BTreeSet::new(),
            objects: BTreeMap::new(),
        };
        c.index_members(f);
        c.index_embedded(&estore);
        if kind == StoreKind::Tree {
            if c.is_table_root("/_meta") {
                kind = StoreKind::Table;
                c.kind = kind;
            } else {
                c.index_objects(&estore);
                c.build_tree_keys();
            }
        }
        if kind == StoreKind::Dict {
            c.keys = c.leaves.keys().cloned().collect();
        }
        Ok(c)
    }

    /// Stored members that hold frames become leaves (python-blosc2 trusts
    /// its own suffixes and probes anything else; a probe here is a look at
    /// the frame header). Deflated members hold no frame where they lie.
    fn index_members(&mut self, f: &dyn ReadAt) {
        for (i, m) in self.members.iter().enumerate() {
            if m.name == EMBED_MEMBER || !m.is_stored() || m.name.len() > MAX_NAME_LEN {
                continue;
            }
            let Ok(offset) = archive::data_offset(f, self.file_len, m) else {
                continue;
            };
            let trusted = LEAF_SUFFIXES.iter().any(|s| m.name.ends_with(s));
            if !trusted && frame_fits(f, offset, m.compressed_size).is_err() {
                continue;
            }
            self.data_offsets.insert(i, offset);
            self.leaves.insert(key_of(&m.name), Source::Member(i));
        }
    }

    /// Keys of the embedded store; stored members take precedence.
    fn index_embedded(&mut self, estore: &SChunk) {
        let Some(raw) = estore.vlmeta_raw("estore_metadata").ok().flatten() else {
            return;
        };
        let meta = cat2_blosc2::decode_msgpack(&raw);
        let Some(map) = map_get(&meta, "embed_map").and_then(rmpv::Value::as_map) else {
            return;
        };
        for (k, v) in map {
            let Some(key) = as_text(k) else { continue };
            if self.leaves.contains_key(&key) {
                continue;
            }
            let num = |name| map_get(v, name).and_then(rmpv::Value::as_u64);
            let text = |name| map_get(v, name).and_then(as_text);
            let source = match (num("offset"), num("length"), text("urlbase"), text("path")) {
                (Some(offset), Some(length), _, _) => Source::Embedded { offset, length },
                (_, _, Some(base), Some(path)) => {
                    Source::Remote(format!("{}/{}", base.trim_end_matches('/'), path))
                }
                _ => continue,
            };
            self.leaves.insert(key, source);
        }
    }

    /// Whether the leaf at `key` is a CTable manifest (a super-chunk whose
    /// vlmeta `kind` is `ctable`).
    fn is_table_root(&self, key: &str) -> bool {
        if !self.leaves.contains_key(key) {
            return false;
        }
        match self.open_leaf(key) {
            Ok(Leaf {
                data: LeafData::Frame(sc),
                ..
            }) => vlmeta_text(&sc, "kind").as_deref() == Some("ctable"),
            _ => false,
        }
    }

    /// Object roots: the registry in `embed.b2e`, or (for stores written
    /// before it existed) CTable manifests found by probing `*/_meta`.
    fn index_objects(&mut self, estore: &SChunk) {
        if let Some(raw) = estore.vlmeta_raw("_object_registry").ok().flatten() {
            let reg = cat2_blosc2::decode_msgpack(&raw);
            for (k, v) in reg.as_map().map(Vec::as_slice).unwrap_or_default() {
                if let (Some(key), Some(kind)) = (as_text(k), map_get(v, "kind").and_then(as_text))
                {
                    self.objects.insert(key, kind);
                }
            }
        }
        if !self.objects.is_empty() {
            return;
        }
        let manifests: Vec<String> = self
            .leaves
            .keys()
            .filter_map(|k| k.strip_suffix("/_meta"))
            .filter(|root| !root.is_empty())
            .take(MAX_MANIFEST_PROBES)
            .map(str::to_string)
            .collect();
        for root in manifests {
            if self.is_table_root(&format!("{root}/_meta")) {
                self.objects.insert(root, "ctable".into());
            }
        }
    }

    /// The TreeStore's keys: leaves minus metadata carriers and object
    /// internals, plus the groups carriers mark and the object roots. Groups
    /// that are only ancestors of keys are not stored: a key has children
    /// exactly when some stored key lies below it.
    fn build_tree_keys(&mut self) {
        let mut keys = BTreeSet::new();
        for key in self.leaves.keys() {
            match key.strip_suffix(VLMETA_SUFFIX) {
                Some("") => {}
                Some(group) => {
                    self.marked.insert(group.to_string());
                    keys.insert(group.to_string());
                }
                None => {
                    keys.insert(key.clone());
                }
            }
        }
        let hidden: Vec<String> = inside_any(&keys, self.objects.keys())
            .into_iter()
            .cloned()
            .collect();
        for key in &hidden {
            keys.remove(key);
        }
        keys.extend(self.objects.keys().cloned());
        self.keys = keys;
    }

    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Whether the store is browsed as a group (a table is not).
    pub fn is_browsable(&self) -> bool {
        self.kind != StoreKind::Table
    }

    /// The archive's size in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitext_like_python() {
        assert_eq!(strip_ext("g/a.b2nd"), "g/a");
        assert_eq!(strip_ext("a.b.c"), "a.b");
        assert_eq!(strip_ext("g.x/a"), "g.x/a");
        assert_eq!(strip_ext(".hidden"), ".hidden");
        assert_eq!(strip_ext("d/..b2nd"), "d/..b2nd");
        assert_eq!(strip_ext("d/.a.b2nd"), "d/.a");
        assert_eq!(key_of("g/a.b2nd"), "/g/a");
    }
}
