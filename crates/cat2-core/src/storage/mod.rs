//! The storage seam: the one place where the server's data meets bytes.
//!
//! Everything cat2rs keeps — datasets, regular files, lazy expressions, HDF5
//! files, `peer_id` — is an *object* addressed by a [`Key`] (`public/dir/x.b2nd`)
//! in a [`Storage`]. The trait is shaped after `object_store`'s (the habit of
//! `../shared/spec/style.md` §3), cut down to what the server does and made
//! synchronous like the rest of cat2-core (the server calls it on its blocking
//! pool):
//!
//! * reads are of one *version*: [`Storage::open`] pins the object as it is
//!   now ([`Blob`]), and every byte range read through that handle comes from
//!   that version even if a writer replaces the object meanwhile (a local file
//!   stays open; an object store would read with `If-Match` on its ETag);
//! * whole objects appear atomically: [`Storage::put`] for bytes in memory,
//!   [`Storage::stage`] for large or streamed ones (a [`Staged`] object is
//!   written at random offsets, read back to be checked, and becomes visible
//!   only at [`Staged::commit`], under the key it is committed to; dropped
//!   uncommitted, it leaves no trace);
//! * listings are one level of a prefix, with "directories" as common
//!   prefixes ([`Storage::list`]), and [`walk`] goes down a whole tree;
//! * [`Storage::lock`] serialises writers of one object (and gives the
//!   version a generation that moves on every locked change);
//! * errors are grouped by meaning ([`Error`]): the server maps `NotFound` to
//!   404 and a backend fault to a 500 with its source in the log.
//!
//! What the trait deliberately does not promise: rename is allowed to be a
//! copy and a delete (object stores have no rename), directories exist only
//! through what they hold or an explicit [`Storage::create_dir`], and there is
//! no conditional overwrite beyond [`PutMode::Create`] (Garage ignores
//! conditional writes, so correctness must come from locks and keys).
//!
//! Checked against `object_store` 0.14 (the S3 backend of the issue after
//! this one will sit on it): `head` ↔ `head`; `open` + [`ReadAt::read_at`] ↔
//! `get_opts` with a range and `if_match` on the ETag the open saw (moto and
//! Garage both answer 412 once the object is replaced); `list` ↔
//! `list_with_delimiter`; `put` ↔ `put_opts` (`PutMode::Create` ↔ its
//! `Create`, `AlreadyExists`); `stage` + `commit` ↔ a local spool and a
//! multipart upload completed under the key (S3 has no random-access
//! writes); `copy`/`rename` ↔ `copy`/`rename` (rename is copy + delete there);
//! [`Version::etag`] ↔ `ObjectMeta::e_tag`; `lock` has no `object_store`
//! counterpart (a PostgreSQL advisory lock, `../shared/spec/scaleout.md` §5).
//!
//! Backends: [`local::LocalStorage`] (a state directory on a local disk, the
//! reference server's layout); every backend passes the shared behaviour
//! tests in [`conformance`].

pub mod conformance;
mod error;
pub(crate) mod key;
pub mod local;
pub mod transfer;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

pub use error::{Error, Result};
pub use key::Key;

/// What tells one version of an object from another: two equal versions
/// hold the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// The validator clients see (an HTTP ETag, without its quotes).
    pub etag: String,
    /// What else the backend knows of the object's identity, for caches
    /// (a local file's inode: a file renamed over another with the same
    /// size and time is still another version).
    pub instance: u64,
    /// Where the backend keeps this version's bytes, when that is not the
    /// key itself (a cloud backend's immutable data object): opening the
    /// version a [`Storage::head`] answered then needs no second lookup.
    pub handle: Option<Arc<str>>,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.etag)
    }
}

/// What is known of one version of an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: Key,
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub version: Version,
}

/// What a key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Object(ObjectMeta),
    /// A directory (a prefix other keys continue), with its modification
    /// time where the backend keeps one.
    Dir {
        modified: Option<SystemTime>,
    },
}

/// One level of a directory: its objects and its sub-directories, each
/// sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<ObjectMeta>,
    pub dirs: Vec<Key>,
}

/// How [`Storage::put`] and [`Staged::commit`] treat an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PutMode {
    /// Replace whatever object is there.
    #[default]
    Overwrite,
    /// Fail with [`Error::AlreadyExists`] if anything is there.
    Create,
}

/// How [`Storage::lock`] shares an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Readers that must not see a change mid-way; writers wait.
    Shared,
    /// One writer; everybody else who locks waits.
    Exclusive,
}

/// Random access to bytes: what frame and HDF5 readers read through.
pub trait ReadAt: Send + Sync {
    /// The length in bytes.
    fn len(&self) -> u64;

    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Exactly `len` bytes at `offset`, or an error if they run past the end.
    /// The bounds are checked before anything is allocated: a length read
    /// from a damaged file (a heap of 3 GB in a file of 12 kB) is refused at
    /// once, not zero-filled first.
    fn read_range(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let size = self.len();
        if offset.checked_add(len as u64).is_none_or(|end| end > size) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{len} bytes at {offset} run past the end of the {size} there"),
            ));
        }
        let mut buf = Vec::new();
        buf.try_reserve_exact(len).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("{len} bytes do not fit in memory"),
            )
        })?;
        buf.resize(len, 0);
        let got = self.read_at(offset, &mut buf)?;
        if got != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{len} bytes at {offset} run past the end ({got} there)"),
            ));
        }
        Ok(buf)
    }
}

/// Bytes in memory (an embedded frame, a test's data).
impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.as_slice().len());
        let n = buf.len().min(self.as_slice().len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// One version of an object, opened for reading.
pub trait Blob: ReadAt {
    fn meta(&self) -> &ObjectMeta;
}

/// A held lock; released when dropped.
pub trait Lock: Send {
    /// Counts one more change of the locked object, so its [`Version`] moves
    /// even when its size and time would not (exclusive locks only).
    fn bump_generation(&self) -> Result<u64>;
}

/// An object being written: invisible until committed.
///
/// Its bytes are written (and read back, to be checked) at any offset while
/// it is staged; [`Staged::commit`] makes them the object at a key in one
/// step. Dropping it uncommitted discards it.
pub trait Staged: Send {
    /// The bytes written so far, as random access (C-Blosc2 writes frames
    /// through this, and checks read what was received).
    fn io(&self) -> Arc<dyn StagedIo>;

    /// Makes the staged bytes the object at `key`.
    fn commit(self: Box<Self>, key: &Key, mode: PutMode) -> Result<ObjectMeta>;
}

/// Read and write access to a staged object.
pub trait StagedIo: ReadAt {
    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()>;
    fn set_len(&self, len: u64) -> std::io::Result<()>;

    /// Writes `data` at the end.
    fn append(&self, data: &[u8]) -> std::io::Result<()> {
        self.write_at(self.len(), data)
    }
}

/// The key a path names below the directory `dir`, both absolute; the path
/// is normalised lexically first (`a/../b`), as python-blosc2 resolves
/// operand paths. `None` outside `dir`, or for a name no key can hold.
pub fn key_under(dir: &std::path::Path, path: &std::path::Path) -> Option<Key> {
    let mut normal = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    key_of_relative(normal.strip_prefix(dir).ok()?)
}

/// The key a relative path of plain components names (`None` for `..`, a
/// root, a name that is not UTF-8 or that no key can hold).
pub(crate) fn key_of_relative(rel: &std::path::Path) -> Option<Key> {
    let mut segments = Vec::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => segments.push(n.to_str()?),
            _ => return None,
        }
    }
    Key::from_segments(segments).ok()
}

/// The seam between the server and where its bytes live.
pub trait Storage: fmt::Debug + Send + Sync + 'static {
    /// What to call this store in messages (`local:/srv/state`).
    fn describe(&self) -> String;

    /// What `key` names now. The root key is always a directory.
    fn head(&self, key: &Key) -> Result<Entry>;

    /// The object at `key`, pinned to its current version.
    fn open(&self, key: &Key) -> Result<Arc<dyn Blob>>;

    /// What each of `keys` names, as [`Storage::head`] answers them one by
    /// one. A backend that can looks them up together: the resolver asks
    /// for a path and its ancestors at once, one catalog round trip rather
    /// than one per component.
    fn head_each(&self, keys: &[Key]) -> Vec<Result<Entry>> {
        keys.iter().map(|key| self.head(key)).collect()
    }

    /// The object a [`Storage::head`] described. A backend whose versions
    /// are immutable objects opens that very version without asking again
    /// (and the answer stays consistent with the head); the others open
    /// the key's current version.
    fn open_version(&self, meta: &ObjectMeta) -> Result<Arc<dyn Blob>> {
        self.open(&meta.key)
    }

    /// The objects and directories directly below the directory `key`.
    fn list(&self, key: &Key) -> Result<Listing>;

    /// Writes `data` as the object at `key`, atomically.
    fn put(&self, key: &Key, data: &[u8], mode: PutMode) -> Result<ObjectMeta>;

    /// Starts writing a new object, to be committed at `near` or a key
    /// beside it (a backend may keep it close to there).
    fn stage(&self, near: &Key) -> Result<Box<dyn Staged>>;

    /// Starts writing a new object from a copy of the object at `key` (an
    /// edit that replaces it whole when committed).
    fn stage_copy(&self, key: &Key) -> Result<Box<dyn Staged>> {
        let blob = self.open(key)?;
        let staged = self.stage(key)?;
        let io = staged.io();
        let mut offset = 0u64;
        let mut buf = vec![0u8; COPY_BUFFER];
        while offset < blob.len() {
            let n = blob
                .read_at(offset, &mut buf)
                .map_err(|e| Error::io("reading", key, e))?;
            if n == 0 {
                break;
            }
            io.write_at(offset, &buf[..n])
                .map_err(|e| Error::io("copying", key, e))?;
            offset += n as u64;
        }
        Ok(staged)
    }

    /// Writes several objects as one change: each appears old or new after
    /// a crash, and the backend may make them durable together. The default
    /// puts them one by one.
    fn put_many(&self, objects: Vec<(Key, Vec<u8>)>) -> Result<()> {
        for (key, data) in objects {
            self.put(&key, &data, PutMode::Overwrite)?;
        }
        Ok(())
    }

    /// Removes the object at `key`.
    fn delete(&self, key: &Key) -> Result<()>;

    /// Removes the directory `key` and everything below it; it vanishes for
    /// readers at once.
    fn delete_dir(&self, key: &Key) -> Result<()>;

    /// Makes `key` (and its parents) a directory, so it exists while empty.
    fn create_dir(&self, key: &Key) -> Result<()>;

    /// Copies the object or directory tree at `from` to `to`, replacing
    /// what is there; each object appears at `to` whole.
    fn copy(&self, from: &Key, to: &Key) -> Result<()>;

    /// Moves the object or directory tree at `from` to `to`, replacing what
    /// is there. Atomic where the backend can rename; else a copy and a delete.
    fn rename(&self, from: &Key, to: &Key) -> Result<()>;

    /// Waits for, and takes, a lock on the object at `key` (which need not
    /// exist). Locks are advisory: they order writers that take them.
    fn lock(&self, key: &Key, mode: LockMode) -> Result<Box<dyn Lock>>;

    /// Bytes stored below the directory `key`, as a quota counts them
    /// (including objects being written).
    fn usage(&self, key: &Key) -> Result<u64>;

    /// Whether `key` is a symbolic link (of a local store; object stores
    /// have none). Links are served, within their root, but never rewritten.
    fn is_link(&self, key: &Key) -> bool {
        let _ = key;
        false
    }

    /// The key of an object named by a path on the server's own disk (an
    /// absolute operand path a lazy expression saved elsewhere recorded), if
    /// the backend keeps objects there, or if the path lies in a state
    /// directory the store's contents came from ([`Storage::record_origin`]).
    fn key_of_path(&self, path: &std::path::Path) -> Option<Key> {
        let _ = path;
        None
    }

    /// Records that the state directory `dir` (absolute) was copied into
    /// this store, so that the absolute paths its stored lazy expressions
    /// recorded for their operands still name the copies
    /// ([`Storage::key_of_path`]). A store on disk only knows its own place.
    fn record_origin(&self, dir: &std::path::Path) -> Result<()> {
        let _ = dir;
        Ok(())
    }

    /// Sets the modification time of the object at `key` (a copy of a
    /// whole state keeps its times, as `cp -p` does). Its version may move.
    fn set_modified(&self, key: &Key, when: SystemTime) -> Result<()> {
        let _ = (key, when);
        Err(Error::NotSupported {
            operation: "setting modification times",
            backend: self.describe(),
        })
    }

    /// Whether the store answers now (for a load balancer's health check):
    /// the default looks at the root; a networked backend asks its services.
    fn check_health(&self) -> Result<()> {
        self.head(&Key::root()).map(|_| ())
    }

    /// Removes what interrupted writes left behind (a crash between staging
    /// and committing); answers how many were removed.
    fn sweep(&self) -> Result<usize> {
        Ok(0)
    }
}

/// Bytes copied at a time by default implementations.
const COPY_BUFFER: usize = 1 << 20;

/// Every object below the directory `key` (recursively), with keys relative
/// to it (`dir/x.b2nd` for `key/dir/x.b2nd`), sorted by key.
pub(crate) fn walk(storage: &dyn Storage, key: &Key) -> Result<Vec<(String, ObjectMeta)>> {
    let mut out = Vec::new();
    let mut stack = vec![key.clone()];
    while let Some(dir) = stack.pop() {
        let listing = match storage.list(&dir) {
            Ok(l) => l,
            // A directory removed while walked holds nothing any more.
            Err(e) if e.is_not_found() && dir != *key => continue,
            Err(e) => return Err(e),
        };
        for meta in listing.objects {
            let rel = meta.key.strip_prefix(key).unwrap_or_default();
            out.push((rel, meta));
        }
        stack.extend(listing.dirs);
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Reads the whole object at `key`.
pub fn read_all(storage: &dyn Storage, key: &Key) -> Result<Vec<u8>> {
    let blob = storage.open(key)?;
    let len = usize::try_from(blob.len()).map_err(|_| Error::Conflict {
        key: key.to_string(),
        why: "is too large to read into memory".into(),
    })?;
    blob.read_range(0, len)
        .map_err(|e| Error::io("reading", key, e))
}

#[cfg(test)]
mod tests {
    use super::ReadAt;

    #[test]
    fn a_range_past_the_end_is_refused_before_it_is_allocated() {
        let bytes = vec![7u8; 12];
        // 3 GB declared by a damaged length: refused at once, nothing zero-filled.
        let err = bytes.read_range(8, 3 << 30).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(bytes.read_range(u64::MAX, 2).is_err());
        assert_eq!(bytes.read_range(8, 4).unwrap(), [7; 4]);
    }
}
