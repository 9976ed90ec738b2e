//! Copying a whole state from one storage to another (`cat2rs import` and
//! `export`: a state directory into a cluster's object store, and back).
//!
//! Each object is streamed through a staged object of the destination (a
//! megabyte at a time, whatever its size) and appears there whole when
//! committed; a copy interrupted half-way leaves complete objects only, and
//! running it again replaces them. What belongs to one backend alone is left
//! out: the local user database (`db.sqlite` and its journals; users are
//! copied through their own tables) and the replicas' spool. Objects keep
//! their modification times where the destination can keep them.

use super::{walk, Error, Key, PutMode, Result, Storage, COPY_BUFFER};

/// What [`copy_state`] copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub objects: usize,
    pub bytes: u64,
}

/// Whether a top-level name is a backend's own, not part of the state.
fn is_backend_own(rel: &str) -> bool {
    let top = rel.split('/').next().unwrap_or("");
    top.starts_with("db.sqlite") || top == "spool"
}

/// Copies every object of `from` into `to` (replacing objects at the same
/// keys), and every directory, empty ones included.
pub fn copy_state(from: &dyn Storage, to: &dyn Storage) -> Result<Copied> {
    let root = Key::root();
    let mut copied = Copied::default();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let listing = from.list(&dir)?;
        for sub in listing.dirs {
            if is_backend_own(sub.as_str()) {
                continue;
            }
            to.create_dir(&sub)?;
            dirs.push(sub);
        }
    }
    for (rel, meta) in walk(from, &root)? {
        if is_backend_own(&rel) {
            continue;
        }
        let key = meta.key.clone();
        let blob = from.open(&key)?;
        let staged = to.stage(&key)?;
        let io = staged.io();
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut offset = 0u64;
        while offset < blob.len() {
            let n = blob
                .read_at(offset, &mut buf)
                .map_err(|e| Error::io("reading", &key, e))?;
            if n == 0 {
                break;
            }
            io.write_at(offset, &buf[..n])
                .map_err(|e| Error::io("copying", &key, e))?;
            offset += n as u64;
        }
        staged.commit(&key, PutMode::Overwrite)?;
        if let Some(when) = meta.modified {
            match to.set_modified(&key, when) {
                Ok(()) | Err(Error::NotSupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        copied.objects += 1;
        copied.bytes += offset;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::LocalStorage;

    #[test]
    fn a_state_is_copied_whole_without_the_backends_own_files() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from = LocalStorage::open(a.path()).unwrap();
        let to = LocalStorage::open(b.path()).unwrap();
        let k = |s: &str| Key::parse(s).unwrap();
        from.put(&k("public/d/x.b2nd"), &[7; 3 << 20], PutMode::Overwrite)
            .unwrap();
        from.put(&k("db.json"), b"{}", PutMode::Overwrite).unwrap();
        from.put(&k("db.sqlite"), b"users", PutMode::Overwrite)
            .unwrap();
        from.create_dir(&k("shared/empty")).unwrap();
        let copied = copy_state(&from, &to).unwrap();
        assert_eq!(
            copied,
            Copied {
                objects: 2,
                bytes: (3 << 20) + 2
            }
        );
        assert_eq!(
            crate::storage::read_all(&to, &k("public/d/x.b2nd")).unwrap(),
            vec![7; 3 << 20]
        );
        assert!(to.head(&k("db.sqlite")).unwrap_err().is_not_found());
        let time = |s: &dyn Storage| match s.head(&k("db.json")).unwrap() {
            crate::storage::Entry::Object(m) => m.modified,
            _ => None,
        };
        assert_eq!(time(&to), time(&from), "times kept");
        assert!(to.list(&k("shared/empty")).unwrap().objects.is_empty());
    }
}
