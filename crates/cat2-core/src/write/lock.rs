//! The locks writes take on the arrays chunk writers may change.
//!
//! A chunk write edits a copy of an array's frame and renames it back under
//! the frame's exclusive lock (see [`super::fill`]). Any other write that
//! replaces, moves or removes such an array takes the same lock, or a chunk
//! write that copied the old frame could rename it back over the result. The
//! lock itself is the storage's ([`crate::storage::Storage::lock`]): on a
//! local state directory, C-Blosc2's `.b2lock` sidecar, shared with the
//! reference server and python-blosc2.

use crate::error::Result;
use crate::storage::{Key, Lock, LockMode, Storage};

/// Whether the object at `key` is one chunk writers may change (a `.b2nd`
/// array), and so one whose frame lock other writes must take too.
pub(crate) fn is_fillable(key: &Key) -> bool {
    key.name().ends_with(".b2nd")
}

/// Exclusive locks on the fillable objects among `keys`, for a write that
/// replaces, moves or removes them. Taken in key order, so two writes
/// locking the same objects cannot deadlock, and each counted as a change
/// (readers holding C-Blosc2 handles look again).
pub(crate) fn lock_fillable(storage: &dyn Storage, keys: &[&Key]) -> Result<Vec<Box<dyn Lock>>> {
    let mut fillable: Vec<&Key> = keys.iter().copied().filter(|k| is_fillable(k)).collect();
    fillable.sort();
    fillable.dedup();
    let mut locks = Vec::with_capacity(fillable.len());
    for key in fillable {
        let lock = storage.lock(key, LockMode::Exclusive)?;
        lock.bump_generation()?;
        locks.push(lock);
    }
    Ok(locks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::{generation, sidecar_path, LocalStorage};

    #[test]
    fn only_arrays_are_locked_for_replacing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStorage::open(dir.path()).unwrap();
        let a = Key::parse("a.b2nd").unwrap();
        let b = Key::parse("b.txt.b2").unwrap();
        let locks = lock_fillable(&store, &[&a, &b, &a]).unwrap();
        assert_eq!(locks.len(), 1);
        assert_eq!(generation(&store.path_of(&a)), Some(1));
        assert!(!sidecar_path(&store.path_of(&b)).exists());
    }
}
