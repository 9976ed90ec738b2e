//! A small cache of things read from files (a zip store's index, an opened
//! HDF5 file and its tree), keyed by the file's identity.
//!
//! Why: a client reading a dataset chunk by chunk sends many requests for one
//! file, and re-reading an index (or re-walking an HDF5 file's groups) each
//! time costs more than the read itself. Nothing else is cached in cat2rs, so
//! the rule is strict: an entry is used only while the object has the same
//! [`Version`] (for a local file: size, modification time, inode and lock
//! generation), so an object replaced or rewritten is read again at once.

use std::sync::{Arc, Mutex};

use crate::storage::{Blob, Entry, Key, Storage, Version};

/// A cached value and the version of the object it was read from.
type Slot<T> = ((Key, Version), Arc<T>);

/// The last `slots` values read, most recently used last.
pub(crate) struct FileCache<T> {
    slots: usize,
    entries: Mutex<Vec<Slot<T>>>,
}

impl<T> FileCache<T> {
    pub(crate) const fn new(slots: usize) -> Self {
        FileCache {
            slots,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The value for the current version of the object at `key`, made by
    /// `open` from that version when it is not cached. Failures are not
    /// cached.
    pub(crate) fn get_or_open<E>(
        &self,
        storage: &dyn Storage,
        key: &Key,
        storage_error: impl FnOnce(crate::storage::Error) -> E,
        open: impl FnOnce(Arc<dyn Blob>) -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let current = match storage.head(key) {
            Ok(Entry::Object(meta)) => meta.version,
            Ok(Entry::Dir { .. }) => {
                return Err(storage_error(crate::storage::Error::not_found(key)))
            }
            Err(e) => return Err(storage_error(e)),
        };
        if let Ok(mut entries) = self.entries.lock() {
            if let Some(i) = entries
                .iter()
                .position(|((k, v), _)| k == key && *v == current)
            {
                let hit = entries.remove(i);
                let value = Arc::clone(&hit.1);
                entries.push(hit);
                return Ok(value);
            }
        }
        let blob = match storage.open(key) {
            Ok(b) => b,
            Err(e) => return Err(storage_error(e)),
        };
        let version = blob.meta().version.clone();
        let value = Arc::new(open(blob)?);
        if let Ok(mut entries) = self.entries.lock() {
            // An older version of the same object is of no more use.
            entries.retain(|((k, _), _)| k != key);
            if entries.len() >= self.slots {
                entries.remove(0);
            }
            entries.push(((key.clone(), version), Arc::clone(&value)));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::LocalStorage;
    use crate::storage::PutMode;

    fn read(blob: Arc<dyn Blob>) -> std::io::Result<Vec<u8>> {
        blob.read_range(0, blob.len() as usize)
    }

    #[test]
    fn a_rewritten_object_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(dir.path()).unwrap();
        let k = Key::parse("f").unwrap();
        store.put(&k, b"one", PutMode::Overwrite).unwrap();
        let cache: FileCache<Vec<u8>> = FileCache::new(2);
        let err = |e: crate::storage::Error| std::io::Error::other(e);
        let a = cache.get_or_open(&store, &k, err, read).unwrap();
        let b = cache
            .get_or_open(&store, &k, err, |_| Ok(b"not read".to_vec()))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        store.put(&k, b"three", PutMode::Overwrite).unwrap();
        let c = cache.get_or_open(&store, &k, err, read).unwrap();
        assert_eq!(&*c, b"three");
    }

    #[test]
    fn the_least_recently_used_entry_goes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(dir.path()).unwrap();
        let cache: FileCache<usize> = FileCache::new(2);
        let err = |e: crate::storage::Error| std::io::Error::other(e);
        let keys: Vec<Key> = (0..3)
            .map(|i| Key::parse(&i.to_string()).unwrap())
            .collect();
        for (i, k) in keys.iter().enumerate() {
            store.put(k, b"x", PutMode::Overwrite).unwrap();
            cache.get_or_open(&store, k, err, |_| Ok(i)).unwrap();
        }
        // 0 was evicted: it is opened again.
        assert_eq!(
            *cache.get_or_open(&store, &keys[0], err, |_| Ok(9)).unwrap(),
            9
        );
        assert_eq!(
            *cache.get_or_open(&store, &keys[2], err, |_| Ok(9)).unwrap(),
            2
        );
    }
}
