//! [`LocalStorage`]: a directory on a local disk as a [`Storage`], laid out
//! exactly as keys spell it, so a Caterva2 state directory is served as it is
//! and the reference server can take turns with cat2rs on it.
//!
//! This is the only code of the server that touches its data with `std::fs`.
//! What it keeps from the reference's ways and adds for safety:
//!
//! * **Visible at once.** Nothing is cached: every call looks at the disk, so
//!   files another process writes (the reference server, a copy tool, the
//!   upstream test suite) are served at once.
//! * **Pinned reads.** [`Storage::open`] opens the file once; every read
//!   through the [`Blob`] comes from that open file, so a writer renaming a
//!   new version over the name is never seen half way.
//! * **Atomic writes.** A staged object is a temporary file beside its target
//!   (named with [`TEMP_PREFIX`], never listed and refused as a key), synced,
//!   then renamed into place, and the directory synced: a crash leaves the
//!   old file or the new one, and [`Storage::sweep`] removes the leftovers at
//!   start-up. [`Storage::put_many`] syncs a whole batch with two `syncfs`.
//! * **C-Blosc2's lock.** [`Storage::lock`] is the `flock` of the frame's
//!   `.b2lock` sidecar (see [`lock`]), shared with the reference server and
//!   python-blosc2, and its generation counter is part of every [`Version`].
//! * Symbolic links are followed, as the reference does.

mod links;
mod lock;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::key::TEMP_PREFIX;
use super::{
    Blob, Entry, Error, Key, Listing, Lock, LockMode, ObjectMeta, PutMode, ReadAt, Result, Staged,
    StagedIo, Storage, Version,
};

pub use lock::{generation, sidecar_path, FrameLock};

/// A directory on a local disk as a store.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// A store rooted at `root`, which is created if missing.
    pub fn open(root: &Path) -> Result<LocalStorage> {
        let key = Key::root();
        fs::create_dir_all(root).map_err(|e| Error::io("creating", &key, e))?;
        let root = root
            .canonicalize()
            .map_err(|e| Error::io("resolving", &key, e))?;
        Ok(LocalStorage { root })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file or directory `key` names.
    pub fn path_of(&self, key: &Key) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(key.segments());
        p
    }

    /// The key of a path below the root, if it is one.
    pub fn key_of(&self, path: &Path) -> Option<Key> {
        super::key_of_relative(path.strip_prefix(&self.root).ok()?)
    }

    /// A temporary file beside the file `key` names (its parents made).
    fn stage_file(&self, near: &Key) -> Result<LocalStaged> {
        let key = near;
        let target = self.writable(key)?;
        make_parents(key, &target)?;
        let temp = if key.is_root() {
            self.root
                .join(format!("{TEMP_PREFIX}{}", crate::random::random_hex32()))
        } else {
            temp_beside(&target)
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| Error::io("creating a temporary file for", key, e))?;
        Ok(LocalStaged {
            root: self.root.clone(),
            temp,
            io: Arc::new(FileIo(file)),
            committed: false,
        })
    }

    fn meta_of(&self, key: &Key, path: &Path, m: &fs::Metadata) -> ObjectMeta {
        ObjectMeta {
            key: key.clone(),
            size: m.len(),
            modified: m.modified().ok(),
            version: version_of(path, m),
        }
    }
}

/// The validator of a file: `<generation>-<size hex>-<mtime_ns hex>`, where
/// the generation comes from its `.b2lock` sidecar (`u` without one), as the
/// reference server makes it.
fn version_of(path: &Path, m: &fs::Metadata) -> Version {
    let gen = generation(path).map_or_else(|| "u".to_string(), |g| format!("{g:x}"));
    let mtime_ns = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Version {
        etag: format!("{gen}-{:x}-{mtime_ns:x}", m.len()),
        instance: m.ino(),
        handle: None,
    }
}

/// Whether a directory entry is the store's own (a write in progress, a lock).
fn is_internal(name: &str) -> bool {
    super::key::is_reserved_name(name)
}

/// A fresh temporary path beside `target` (same filesystem: a rename is atomic).
fn temp_beside(target: &Path) -> PathBuf {
    let dir = target.parent().unwrap_or(Path::new("."));
    dir.join(format!("{TEMP_PREFIX}{}", crate::random::random_hex32()))
}

/// Syncs a directory, so the renames in it survive a crash.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn read_full_at(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// One version of a file: the open file it was read from.
struct LocalBlob {
    file: File,
    meta: ObjectMeta,
}

impl ReadAt for LocalBlob {
    fn len(&self) -> u64 {
        self.meta.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        read_full_at(&self.file, offset, buf)
    }
}

impl Blob for LocalBlob {
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
}

/// A temporary file being written beside where it will go.
struct LocalStaged {
    root: PathBuf,
    temp: PathBuf,
    io: Arc<FileIo>,
    /// Set once renamed into place: nothing to remove on drop.
    committed: bool,
}

/// A local file read and written at any offset: a staged object on the local
/// disk, and the spool other backends stage objects in before they upload them.
#[derive(Debug)]
pub struct FileIo(pub File);

impl ReadAt for FileIo {
    fn len(&self) -> u64 {
        self.0.metadata().map_or(0, |m| m.len())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        read_full_at(&self.0, offset, buf)
    }
}

impl StagedIo for FileIo {
    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
}

impl Staged for LocalStaged {
    fn io(&self) -> Arc<dyn StagedIo> {
        self.io.clone()
    }

    fn commit(mut self: Box<Self>, key: &Key, mode: PutMode) -> Result<ObjectMeta> {
        if key.is_root() {
            return Err(Error::Conflict {
                key: key.to_string(),
                why: "is the root, not an object".into(),
            });
        }
        let mut target = self.root.clone();
        target.extend(key.segments());
        make_parents(key, &target)?;
        self.io
            .0
            .sync_all()
            .map_err(|e| Error::io("syncing", key, e))?;
        if target.is_dir() {
            return Err(Error::Conflict {
                key: key.to_string(),
                why: "is a directory and cannot be replaced by a file".into(),
            });
        }
        match mode {
            PutMode::Overwrite => {
                fs::rename(&self.temp, &target).map_err(|e| Error::io("renaming into", key, e))?
            }
            PutMode::Create => {
                // A hard link fails if the name is taken: creation is atomic.
                fs::hard_link(&self.temp, &target).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Error::AlreadyExists {
                            key: key.to_string(),
                        }
                    } else {
                        Error::io("linking into", key, e)
                    }
                })?;
                let _ = fs::remove_file(&self.temp);
            }
        }
        self.committed = true;
        if let Some(dir) = target.parent() {
            sync_dir(dir);
        }
        let m = fs::metadata(&target).map_err(|e| Error::io("stat", key, e))?;
        Ok(ObjectMeta {
            key: key.clone(),
            size: m.len(),
            modified: m.modified().ok(),
            version: version_of(&target, &m),
        })
    }
}

impl Drop for LocalStaged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Puts something at `target` with `place`, replacing what was there: a file
/// is replaced atomically by the rename `place` does; a directory is first
/// moved aside, and put back if `place` fails.
fn replace_with(key: &Key, target: &Path, place: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if target.is_dir() {
        let aside = temp_beside(target);
        fs::rename(target, &aside).map_err(|e| Error::io("moving aside", key, e))?;
        let r = place(target);
        if r.is_err() {
            let _ = fs::rename(&aside, target);
        } else {
            let _ = fs::remove_dir_all(&aside);
        }
        r
    } else {
        place(target)
    }
}

fn make_parents(key: &Key, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| dir_error("creating the parents of", key, e))?;
    }
    Ok(())
}

/// A failed `create_dir_all`: a file where a directory is needed (EEXIST on
/// the last name, ENOTDIR on one before it) is the caller's [`Error::Conflict`],
/// not a fault of the disk.
fn dir_error(op: &'static str, key: &Key, e: std::io::Error) -> Error {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::AlreadyExists | ErrorKind::NotADirectory
    ) {
        return Error::Conflict {
            key: key.to_string(),
            why: "needs a directory where a file is".into(),
        };
    }
    Error::io(op, key, e)
}

/// Copies a file or a directory tree (without the store's own files).
fn copy_tree(key: &Key, src: &Path, dst: &Path) -> Result<()> {
    let meta = fs::metadata(src).map_err(|e| Error::io("stat", key, e))?;
    if meta.is_dir() {
        fs::create_dir_all(dst).map_err(|e| Error::io("creating", key, e))?;
        for entry in fs::read_dir(src).map_err(|e| Error::io("listing", key, e))? {
            let entry = entry.map_err(|e| Error::io("listing", key, e))?;
            let name = entry.file_name();
            // The store's own files stay; links are not copied (their copy
            // could point anywhere from its new place).
            if is_internal(&name.to_string_lossy())
                || entry.file_type().is_ok_and(|t| t.is_symlink())
            {
                continue;
            }
            copy_tree(key, &entry.path(), &dst.join(name))?;
        }
        Ok(())
    } else {
        fs::copy(src, dst)
            .map(drop)
            .map_err(|e| Error::io("copying", key, e))
    }
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

impl Storage for LocalStorage {
    fn describe(&self) -> String {
        format!("local:{}", self.root.display())
    }

    fn head(&self, key: &Key) -> Result<Entry> {
        let path = self.path_of(key);
        // Links are followed while they stay inside their root (links.rs).
        let real = self.readable(key)?;
        let m = fs::metadata(real).map_err(|e| Error::io("stat", key, e))?;
        if m.is_dir() {
            Ok(Entry::Dir {
                modified: m.modified().ok(),
            })
        } else if m.is_file() {
            Ok(Entry::Object(self.meta_of(key, &path, &m)))
        } else {
            Err(Error::not_found(key))
        }
    }

    fn open(&self, key: &Key) -> Result<Arc<dyn Blob>> {
        let path = self.path_of(key);
        let file = File::open(self.readable(key)?).map_err(|e| Error::io("opening", key, e))?;
        // The metadata of the open file: the version is the one being read.
        let m = file.metadata().map_err(|e| Error::io("stat", key, e))?;
        if !m.is_file() {
            return Err(Error::not_found(key));
        }
        let meta = self.meta_of(key, &path, &m);
        Ok(Arc::new(LocalBlob { file, meta }))
    }

    fn list(&self, key: &Key) -> Result<Listing> {
        let dir = self.readable(key)?;
        let rd = fs::read_dir(&dir).map_err(|e| Error::io("listing", key, e))?;
        let mut listing = Listing::default();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("listing", key, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_internal(name) {
                continue;
            }
            let Ok(child) = key.join(name) else { continue };
            let path = entry.path();
            // Links are followed while they stay inside their root (links.rs).
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                match fs::canonicalize(&path) {
                    Ok(real) if self.inside(&child, &real) => {}
                    _ => continue,
                }
            }
            let Ok(m) = fs::metadata(&path) else { continue };
            if m.is_dir() {
                listing.dirs.push(child);
            } else if m.is_file() {
                listing.objects.push(self.meta_of(&child, &path, &m));
            }
        }
        listing.objects.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        listing.dirs.sort_unstable();
        Ok(listing)
    }

    fn put(&self, key: &Key, data: &[u8], mode: PutMode) -> Result<ObjectMeta> {
        let staged = self.stage(key)?;
        staged
            .io()
            .write_at(0, data)
            .map_err(|e| Error::io("writing", key, e))?;
        staged.commit(key, mode)
    }

    fn stage(&self, key: &Key) -> Result<Box<dyn Staged>> {
        Ok(Box::new(self.stage_file(key)?))
    }

    fn stage_copy(&self, key: &Key) -> Result<Box<dyn Staged>> {
        let staged = self.stage_file(key)?;
        let mut from = File::open(self.readable(key)?).map_err(|e| Error::io("opening", key, e))?;
        // Between two files, `std::io::copy` is copy_file_range: an in-kernel copy.
        std::io::copy(&mut from, &mut &staged.io.0).map_err(|e| Error::io("copying", key, e))?;
        Ok(Box::new(staged))
    }

    /// Each file is written beside its target unsynced, one `syncfs` makes
    /// all their data durable, every file is renamed into place, and a
    /// second `syncfs` makes the renames durable: two filesystem syncs in
    /// all instead of two `fsync`s per file. A crash still leaves each file
    /// old or new (an unsynced temporary is never renamed).
    fn put_many(&self, objects: Vec<(Key, Vec<u8>)>) -> Result<()> {
        let mut pending = Batch::default();
        for (key, data) in objects {
            let target = self.writable(&key)?;
            make_parents(&key, &target)?;
            let temp = temp_beside(&target);
            let written = fs::write(&temp, &data).map_err(|e| Error::io("writing", &key, e));
            pending.0.push((temp, target, key));
            written?;
        }
        let Some((first, _, first_key)) = pending.0.first() else {
            return Ok(());
        };
        syncfs(first, first_key)?;
        let renames = std::mem::take(&mut pending.0);
        for (i, (temp, target, key)) in renames.iter().enumerate() {
            if let Err(e) = fs::rename(temp, target) {
                pending.0 = renames[i..].to_vec();
                return Err(Error::io("renaming into", key, e));
            }
        }
        match renames.last() {
            Some((_, target, key)) => syncfs(target, key),
            None => Ok(()),
        }
    }

    fn delete(&self, key: &Key) -> Result<()> {
        let path = self.writable(key)?;
        // A link is removed itself, whatever it points to.
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return Err(Error::Conflict {
                key: key.to_string(),
                why: "is a directory, not an object".into(),
            });
        }
        fs::remove_file(&path).map_err(|e| Error::io("removing", key, e))
    }

    fn delete_dir(&self, key: &Key) -> Result<()> {
        let path = self.writable(key)?;
        if key.is_root() || !path.is_dir() {
            return Err(Error::not_found(key));
        }
        if self.is_link(key) {
            return Err(Error::Conflict {
                key: key.to_string(),
                why: "is a symbolic link; remove it as a file".into(),
            });
        }
        // Renamed aside first, so the directory vanishes at once for readers.
        let aside = temp_beside(&path);
        fs::rename(&path, &aside).map_err(|e| Error::io("removing", key, e))?;
        fs::remove_dir_all(&aside).map_err(|e| Error::io("removing", key, e))
    }

    fn create_dir(&self, key: &Key) -> Result<()> {
        fs::create_dir_all(self.writable(key)?).map_err(|e| dir_error("creating", key, e))
    }

    fn copy(&self, from: &Key, to: &Key) -> Result<()> {
        let (src, dst) = (self.readable(from)?, self.writable(to)?);
        make_parents(to, &dst)?;
        let staged = temp_beside(&dst);
        let r = copy_tree(from, &src, &staged).and_then(|()| {
            if staged.is_file() {
                File::open(&staged)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io("syncing", to, e))?;
            }
            replace_with(to, &dst, |dst| {
                fs::rename(&staged, dst).map_err(|e| Error::io("renaming into", to, e))
            })
        });
        if r.is_err() {
            let _ = remove_any(&staged);
        }
        r?;
        if let Some(dir) = dst.parent() {
            sync_dir(dir);
        }
        Ok(())
    }

    fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        let (src, dst) = (self.writable(from)?, self.writable(to)?);
        if fs::symlink_metadata(&src).is_err() {
            return Err(Error::not_found(from));
        }
        make_parents(to, &dst)?;
        replace_with(to, &dst, |dst| {
            fs::rename(&src, dst).map_err(|e| Error::io("moving", from, e))
        })?;
        if let Some(dir) = dst.parent() {
            sync_dir(dir);
        }
        Ok(())
    }

    fn lock(&self, key: &Key, mode: LockMode) -> Result<Box<dyn Lock>> {
        // Its sidecar is written beside the object: never through a link,
        // except for a reader of an object a link inside its root reaches.
        let path = match (self.writable(key), mode) {
            (Ok(path), _) => path,
            (Err(_), LockMode::Shared) => self.readable(key).map(|_| self.path_of(key))?,
            (Err(e), LockMode::Exclusive) => return Err(e),
        };
        let lock = match mode {
            LockMode::Shared => FrameLock::shared(&path),
            LockMode::Exclusive => FrameLock::exclusive(&path),
        }
        .map_err(|e| Error::io("locking", key, e))?;
        Ok(Box::new(KeyLock {
            lock,
            key: key.clone(),
        }))
    }

    /// Every file below the directory counts, the store's own temporaries
    /// included (bytes being received are on the disk already); links are
    /// counted as themselves, not followed.
    fn set_modified(&self, key: &Key, when: std::time::SystemTime) -> Result<()> {
        if self.is_link(key) {
            return Err(Error::Conflict {
                key: key.to_string(),
                why: "is a symbolic link, which is served but never rewritten".into(),
            });
        }
        let path = self.path_of(key);
        let file = fs::File::options()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("opening", key, e))?;
        file.set_modified(when)
            .map_err(|e| Error::io("setting the time of", key, e))
    }

    fn is_link(&self, key: &Key) -> bool {
        LocalStorage::is_link(self, key)
    }

    fn usage(&self, key: &Key) -> Result<u64> {
        let mut total = 0;
        let mut stack = vec![self.path_of(key)];
        while let Some(d) = stack.pop() {
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("listing", key, e)),
            };
            for entry in rd.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(entry.path());
                } else {
                    total += meta.len();
                }
            }
        }
        Ok(total)
    }

    fn key_of_path(&self, path: &Path) -> Option<Key> {
        super::key_under(&self.root, path)
    }

    /// Removes leftovers of writes that never finished (a crash between
    /// writing a temporary file and renaming it).
    fn sweep(&self) -> Result<usize> {
        let mut removed = 0;
        let mut stack = vec![self.root.clone()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for entry in rd.flatten() {
                let path = entry.path();
                let name = entry.file_name();
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                if name.to_string_lossy().starts_with(TEMP_PREFIX) {
                    let ok = if meta.is_dir() {
                        fs::remove_dir_all(&path).is_ok()
                    } else {
                        fs::remove_file(&path).is_ok()
                    };
                    removed += usize::from(ok);
                } else if meta.is_dir() {
                    stack.push(path);
                }
            }
        }
        Ok(removed)
    }
}

fn syncfs(what: &Path, key: &Key) -> Result<()> {
    let f = File::open(what).map_err(|e| Error::io("opening", key, e))?;
    rustix::fs::syncfs(&f).map_err(|e| Error::io("syncing the filesystem of", key, e.into()))
}

/// Temporaries of a [`Storage::put_many`] not yet renamed; removed on drop.
#[derive(Default)]
struct Batch(Vec<(PathBuf, PathBuf, Key)>);

impl Drop for Batch {
    fn drop(&mut self) {
        for (temp, _, _) in &self.0 {
            let _ = fs::remove_file(temp);
        }
    }
}

struct KeyLock {
    lock: FrameLock,
    key: Key,
}

impl Lock for KeyLock {
    fn bump_generation(&self) -> Result<u64> {
        self.lock
            .bump_generation()
            .map_err(|e| Error::io("counting a change of", &self.key, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_every_store_must() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(&dir.path().join("store")).unwrap();
        super::super::conformance::all(&store);
        // As a trait object too.
        let dynamic: Arc<dyn Storage> =
            Arc::new(LocalStorage::open(&dir.path().join("2")).unwrap());
        super::super::conformance::all(dynamic.as_ref());
    }

    #[test]
    fn names_too_long_for_the_file_system_are_invalid_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(dir.path()).unwrap();
        store.create_dir(&Key::parse("public").unwrap()).unwrap();
        let long = Key::parse(&format!("public/{}", "n".repeat(300))).unwrap();
        let below = long.join("x.b2nd").unwrap();
        let invalid = |r: Result<()>| match r {
            Err(Error::InvalidKey { key, why }) => {
                assert!(why.contains("255 bytes"), "{why}");
                assert!(!key.contains(&*dir.path().to_string_lossy()), "{key}");
            }
            other => panic!("{other:?}"),
        };
        invalid(store.head(&long).map(|_| ()));
        invalid(store.open(&long).map(|_| ()));
        invalid(store.put(&long, b"x", PutMode::Overwrite).map(|_| ()));
        invalid(store.put(&below, b"x", PutMode::Overwrite).map(|_| ()));
        invalid(store.stage(&below).map(|_| ()));
        invalid(store.create_dir(&long));
        // Nothing was left behind on the way (at most the parent `public`).
        let public = dir.path().join("public");
        assert_eq!(fs::read_dir(&public).map_or(0, |d| d.count()), 0);
    }

    #[test]
    fn a_file_in_the_way_of_a_directory_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(dir.path()).unwrap();
        let file = Key::parse("d/a.b2nd").unwrap();
        store.put(&file, b"x", PutMode::Overwrite).unwrap();
        let conflict = |r: Result<()>| match r {
            Err(Error::Conflict { .. }) => {}
            other => panic!("{other:?}"),
        };
        conflict(store.create_dir(&file));
        conflict(store.create_dir(&file.join("sub").unwrap()));
        let below = Key::parse("d/a.b2nd/x.b2nd").unwrap();
        conflict(store.put(&below, b"y", PutMode::Overwrite).map(|_| ()));
        conflict(store.stage(&below).map(|_| ()));
        conflict(store.copy(&file, &Key::parse("d/a.b2nd/c/y").unwrap()));
    }

    #[test]
    fn keys_are_paths_below_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(dir.path()).unwrap();
        let k = Key::parse("public/d/x.b2nd").unwrap();
        let p = store.path_of(&k);
        assert_eq!(p, store.root().join("public/d/x.b2nd"));
        assert_eq!(store.key_of(&p), Some(k));
        assert_eq!(store.key_of(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn versions_are_the_reference_servers_etags() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(dir.path()).unwrap();
        let k = Key::parse("a.b2nd").unwrap();
        let meta = store.put(&k, b"12345", PutMode::Overwrite).unwrap();
        assert!(meta.version.etag.starts_with("u-5-"), "{}", meta.version);
        let lock = store.lock(&k, LockMode::Exclusive).unwrap();
        lock.bump_generation().unwrap();
        lock.bump_generation().unwrap();
        let Entry::Object(m) = store.head(&k).unwrap() else {
            panic!("an object")
        };
        assert!(m.version.etag.starts_with("2-5-"), "{}", m.version);
    }

    #[test]
    fn sweep_removes_interrupted_writes_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(dir.path()).unwrap();
        store
            .put(&Key::parse("d/kept").unwrap(), b"k", PutMode::Overwrite)
            .unwrap();
        fs::write(dir.path().join(format!("d/{TEMP_PREFIX}1")), b"t").unwrap();
        fs::create_dir(dir.path().join(format!("{TEMP_PREFIX}2"))).unwrap();
        // A staged object lost in a crash.
        std::mem::forget(store.stage(&Key::parse("d/lost").unwrap()).unwrap());
        assert_eq!(store.sweep().unwrap(), 3);
        let names: Vec<String> = fs::read_dir(dir.path().join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["kept"]);
    }
}
