//! A small cache of things read from files (a zip store's index, an opened
//! HDF5 file and its tree), keyed by the file's identity.
//!
//! Why: a client reading a dataset chunk by chunk sends many requests for one
//! file, and re-reading an index (or re-walking an HDF5 file's groups) each
//! time costs more than the read itself. Nothing else is cached in cat2rs, so
//! the rule is strict: an entry is used only while the file has the same
//! size, modification time and inode, so a file replaced (renamed over) or
//! rewritten is read again at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What identifies one version of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKey {
    path: PathBuf,
    len: u64,
    mtime: Option<SystemTime>,
    inode: u64,
}

impl FileKey {
    /// The key of the file at `path` as it is now.
    pub fn of(path: &Path) -> std::io::Result<FileKey> {
        let meta = std::fs::metadata(path)?;
        Ok(FileKey {
            path: path.to_path_buf(),
            len: meta.len(),
            mtime: meta.modified().ok(),
            inode: inode(&meta),
        })
    }
}

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

/// The last `slots` values read, most recently used last.
pub struct FileCache<T> {
    slots: usize,
    entries: Mutex<Vec<(FileKey, Arc<T>)>>,
}

impl<T> FileCache<T> {
    pub const fn new(slots: usize) -> Self {
        FileCache {
            slots,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The value for the current version of `path`, made by `open` when it is
    /// not cached. Failures are not cached.
    pub fn get_or_open<E>(
        &self,
        path: &Path,
        stat_error: impl FnOnce(std::io::Error) -> E,
        open: impl FnOnce(&Path) -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let key = FileKey::of(path).map_err(stat_error)?;
        if let Ok(mut entries) = self.entries.lock() {
            if let Some(i) = entries.iter().position(|(k, _)| *k == key) {
                let hit = entries.remove(i);
                let value = Arc::clone(&hit.1);
                entries.push(hit);
                return Ok(value);
            }
        }
        let value = Arc::new(open(path)?);
        if let Ok(mut entries) = self.entries.lock() {
            // An older version of the same file is of no more use.
            entries.retain(|(k, _)| k.path != key.path);
            if entries.len() >= self.slots {
                entries.remove(0);
            }
            entries.push((key, Arc::clone(&value)));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let cache: FileCache<Vec<u8>> = FileCache::new(2);
        let read = |p: &Path| std::fs::read(p);
        let a = cache.get_or_open(&p, |e| e, read).unwrap();
        let b = cache
            .get_or_open(&p, |e| e, |_| Ok(b"not read".to_vec()))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        std::fs::write(&p, b"three").unwrap();
        let c = cache.get_or_open(&p, |e| e, read).unwrap();
        assert_eq!(&*c, b"three");
    }

    #[test]
    fn the_least_recently_used_entry_goes() {
        let dir = tempfile::tempdir().unwrap();
        let cache: FileCache<usize> = FileCache::new(2);
        let paths: Vec<PathBuf> = (0..3).map(|i| dir.path().join(i.to_string())).collect();
        for (i, p) in paths.iter().enumerate() {
            std::fs::write(p, b"x").unwrap();
            cache
                .get_or_open(p, |e| e, |_| Ok::<_, std::io::Error>(i))
                .unwrap();
        }
        // 0 was evicted: it is opened again.
        let v = cache
            .get_or_open(&paths[0], |e| e, |_| Ok::<_, std::io::Error>(9))
            .unwrap();
        assert_eq!(*v, 9);
        let v = cache
            .get_or_open(&paths[2], |e| e, |_| Ok::<_, std::io::Error>(9))
            .unwrap();
        assert_eq!(*v, 2);
    }
}
