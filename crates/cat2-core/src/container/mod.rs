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
//! frame's declared length must fit in its window before C-Blosc2 reads it,
//! and an embedded leaf may claim no more bytes than the whole file has.

pub mod browse;
pub mod zip;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use cat2_blosc2::{check_header, NdArray, SChunk, FRAME_HEADER_MINLEN};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use zip::{ZipError, ZipIndex, ZipMember};

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

/// What a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node<'a> {
    Group,
    Leaf,
    /// The root of an object kept as a subtree; the kind as registered
    /// (`"ctable"`, `"remote_store"`).
    Object(&'a str),
}

/// The frame of an opened leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Bytes `offset..offset + len` of the container file.
    Window { offset: u64, len: u64 },
    /// The frame, copied out of the embedded store.
    Embedded(Vec<u8>),
}

/// An opened leaf: the dataset and where its frame lies.
pub struct Leaf {
    pub dataset: Dataset,
    pub placement: Placement,
}

/// The index of a `.b2z` store, read from its zip directory and `embed.b2e`.
#[derive(Debug)]
pub struct Container {
    path: PathBuf,
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

fn read_exact_at(f: &mut File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// Checks that `window` bytes at `offset` hold a whole frame: a sound header
/// ([`check_header`]) whose declared length fits. Returns that length.
fn frame_fits(f: &mut File, offset: u64, window: u64) -> std::result::Result<u64, String> {
    let mut header = [0u8; FRAME_HEADER_MINLEN];
    if window < FRAME_HEADER_MINLEN as u64 || read_exact_at(f, offset, &mut header).is_err() {
        return Err(format!("{window} bytes are too few for a Blosc2 frame"));
    }
    match check_header(&header)? {
        n if n > window => Err(format!(
            "its frame declares {n} bytes but its member holds {window}"
        )),
        n => Ok(n),
    }
}

/// Opens a frame held in memory (exactly its declared length; checked by
/// cat2-blosc2 before C-Blosc2 copies it) as the dataset it is: an array
/// when it has the `b2nd` metalayer.
fn open_bytes(frame: &[u8]) -> cat2_blosc2::Result<Dataset> {
    let sc = SChunk::from_cframe(frame)?;
    if sc.metalayer("b2nd").is_some() {
        drop(sc);
        Ok(Dataset::Array(NdArray::from_cframe(frame)?))
    } else {
        Ok(Dataset::Frame(sc))
    }
}

/// Opens the frame that starts `offset` bytes into the file at `path`, in
/// place (chunks are read from the file as they are needed; cat2-blosc2
/// checks what C-Blosc2 parses on opening first).
fn open_in_place(path: &Path, offset: u64) -> cat2_blosc2::Result<Dataset> {
    let sc = SChunk::open_offset(path, offset)?;
    if sc.metalayer("b2nd").is_some() {
        drop(sc);
        Ok(Dataset::Array(NdArray::open_offset(path, offset)?))
    } else {
        Ok(Dataset::Frame(sc))
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
fn inside_any<'a>(
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

/// What identifies a version of a file: path, size, modification time and
/// (on Unix) inode, which changes when a file is replaced by a rename.
type CacheKey = (PathBuf, u64, Option<std::time::SystemTime>, u64);

fn inode(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        std::os::unix::fs::MetadataExt::ino(meta)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

type Cache = std::sync::Mutex<Vec<(CacheKey, Arc<Container>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

impl Container {
    /// [`Container::open`], keeping the last few indexes read. A file that
    /// changes size or modification time is read again.
    pub fn open_cached(path: &Path) -> std::result::Result<Arc<Container>, NotAStore> {
        let meta =
            std::fs::metadata(path).map_err(|e| NotAStore(format!("cannot stat it: {e}")))?;
        let key: CacheKey = (
            path.to_path_buf(),
            meta.len(),
            meta.modified().ok(),
            inode(&meta),
        );
        if let Ok(mut slots) = cache().lock() {
            if let Some(i) = slots.iter().position(|(k, _)| *k == key) {
                let hit = slots.remove(i);
                let c = Arc::clone(&hit.1);
                slots.push(hit);
                return Ok(c);
            }
        }
        let c = Arc::new(Container::open(path)?);
        if let Ok(mut slots) = cache().lock() {
            slots.retain(|(k, _)| k.0 != key.0);
            if slots.len() >= CACHE_SLOTS {
                slots.remove(0);
            }
            slots.push((key, Arc::clone(&c)));
        }
        Ok(c)
    }

    /// Reads the index of the store at `path`.
    pub fn open(path: &Path) -> std::result::Result<Container, NotAStore> {
        let mut f = File::open(path).map_err(|e| NotAStore(format!("cannot open it: {e}")))?;
        let file_len = f
            .metadata()
            .map_err(|e| NotAStore(format!("cannot stat it: {e}")))?
            .len();
        let ZipIndex { members: all, .. } = zip::read_index(&mut f, file_len)?;
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
        let embed_offset = zip::data_offset(&mut f, file_len, embed)?;
        let unreadable =
            |why: String| NotAStore(format!("its {EMBED_MEMBER} is unreadable: {why}"));
        frame_fits(&mut f, embed_offset, embed.compressed_size).map_err(unreadable)?;
        let estore =
            SChunk::open_offset(path, embed_offset).map_err(|e| unreadable(e.to_string()))?;
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
            path: path.to_path_buf(),
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
        c.index_members(&mut f);
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
    fn index_members(&mut self, f: &mut File) {
        for (i, m) in self.members.iter().enumerate() {
            if m.name == EMBED_MEMBER || !m.is_stored() || m.name.len() > MAX_NAME_LEN {
                continue;
            }
            let Ok(offset) = zip::data_offset(f, self.file_len, m) else {
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
                dataset: Dataset::Frame(sc),
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

    /// Whether some key continues `key` (`/g` → `/g/a`).
    fn has_children(&self, key: &str) -> bool {
        let prefix = if key == "/" {
            "/".to_string()
        } else {
            format!("{key}/")
        };
        self.keys
            .range(prefix.clone()..)
            .next()
            .is_some_and(|k| k.starts_with(&prefix))
    }

    /// What `key` (`/g/a`) names, if anything.
    pub fn lookup(&self, key: &str) -> Option<Node<'_>> {
        match self.kind {
            StoreKind::Table => None,
            StoreKind::Dict => {
                if self.leaves.contains_key(key) {
                    Some(Node::Leaf)
                } else if key == "/" || self.has_children(key) {
                    Some(Node::Group)
                } else {
                    None
                }
            }
            StoreKind::Tree => {
                if key == "/" {
                    return Some(Node::Group);
                }
                if key.ends_with(VLMETA_SUFFIX) {
                    return None;
                }
                if let Some(kind) = self.objects.get(key) {
                    if kind == "ctable" || kind == "remote_store" {
                        return Some(Node::Object(kind));
                    }
                }
                if self.has_children(key) || self.marked.contains(key) {
                    Some(Node::Group)
                } else if self.leaves.contains_key(key) {
                    Some(Node::Leaf)
                } else {
                    None
                }
            }
        }
    }

    /// Full keys of the leaves below `prefix` (`/` for all), sorted.
    pub fn leaves(&self, prefix: &str) -> Vec<String> {
        let base = prefix.trim_end_matches('/');
        let start = format!("{base}/");
        let below = self
            .keys
            .range(start.clone()..)
            .take_while(|k| k.starts_with(&start));
        match self.kind {
            StoreKind::Table => Vec::new(),
            StoreKind::Dict => below.cloned().collect(),
            StoreKind::Tree => below
                .filter(|k| !self.has_children(k) && !self.marked.contains(*k))
                .cloned()
                .collect(),
        }
    }

    /// What `/api/list` shows for the store (`inner` = `None`) or a path in
    /// it: the leaves below, relative to it; a leaf lists as its own name.
    pub fn list(&self, inner: Option<&str>) -> Vec<String> {
        let prefix = inner.unwrap_or("/");
        let strip = prefix.trim_end_matches('/').len() + 1;
        let mut names: Vec<String> = self
            .leaves(prefix)
            .iter()
            .filter_map(|k| k.get(strip..))
            .map(str::to_string)
            .collect();
        names.sort_unstable();
        if names.is_empty() {
            if let Some(key) = inner {
                if matches!(self.lookup(key), Some(Node::Leaf | Node::Object(_))) {
                    names.push(key.rsplit('/').next().unwrap_or(key).to_string());
                }
            }
        }
        names
    }

    /// Bytes the members below `prefix` occupy in the archive (all of them,
    /// `embed.b2e` included, for the root).
    pub fn size(&self, prefix: &str) -> u64 {
        let rel = prefix.trim_matches('/');
        let rel = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        self.members
            .iter()
            .filter(|m| m.name.starts_with(&rel))
            .map(|m| m.compressed_size)
            .sum()
    }

    fn leaf_error(&self, key: &str, why: impl std::fmt::Display) -> Error {
        let file = self
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        Error::BadRequest(format!("{key} in {file} cannot be read: {why}"))
    }

    /// Opens the leaf at `key`.
    pub fn open_leaf(&self, key: &str) -> Result<Leaf> {
        let source = self.leaves.get(key).ok_or_else(|| Error::NotFound {
            path: key.to_string(),
        })?;
        match source {
            Source::Member(i) => {
                let m = &self.members[*i];
                let offset = *self
                    .data_offsets
                    .get(i)
                    .ok_or_else(|| self.leaf_error(key, "its member has no data offset"))?;
                let len = m.compressed_size;
                let mut f = File::open(&self.path)
                    .map_err(|e| Error::io("opening", self.path.clone(), e))?;
                frame_fits(&mut f, offset, len).map_err(|why| self.leaf_error(key, why))?;
                let dataset =
                    open_in_place(&self.path, offset).map_err(|e| self.leaf_error(key, e))?;
                Ok(Leaf {
                    dataset,
                    placement: Placement::Window { offset, len },
                })
            }
            Source::Embedded { offset, length } => {
                let frame = self.embedded_frame(key, *offset, *length)?;
                let dataset = open_bytes(&frame).map_err(|e| self.leaf_error(key, e))?;
                Ok(Leaf {
                    dataset,
                    placement: Placement::Embedded(frame),
                })
            }
            Source::Remote(url) => Err(Error::BadRequest(format!(
                "{key} is a reference to the remote array {url}, which this server does not follow"
            ))),
        }
    }

    /// The bytes of an embedded leaf's frame, bounded by the file's size.
    fn embedded_frame(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        if length > self.file_len {
            return Err(self.leaf_error(
                key,
                format!(
                    "it claims {length} bytes, more than the {}-byte file holds",
                    self.file_len
                ),
            ));
        }
        let estore = SChunk::open_offset(&self.path, self.embed_offset)
            .map_err(|e| self.leaf_error(key, e))?;
        if estore.typesize() != 1 {
            return Err(self.leaf_error(key, "the embedded store is not a byte store"));
        }
        let end = offset
            .checked_add(length)
            .filter(|&end| i64::try_from(end).is_ok_and(|e| e <= estore.nbytes()))
            .ok_or_else(|| {
                self.leaf_error(
                    key,
                    format!(
                        "bytes {offset}+{length} lie outside the {} of the embedded store",
                        estore.nbytes()
                    ),
                )
            })?;
        let mut frame = estore
            .slice(offset as i64, end as i64)
            .map_err(|e| self.leaf_error(key, e))?;
        match check_header(&frame) {
            Ok(n) if n <= length => {
                frame.truncate(n as usize);
                Ok(frame)
            }
            Ok(n) => Err(self.leaf_error(
                key,
                format!("its frame declares {n} bytes but {length} are stored"),
            )),
            Err(why) => Err(self.leaf_error(key, why)),
        }
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
