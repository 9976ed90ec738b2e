//! Symbolic links in a state directory: followed for reading only while
//! they stay inside their own root, never followed by a write.
//!
//! A state directory is shared by users who must not reach each other's
//! data, and by a server that must not serve the machine's files. Links put
//! there by hand (or by a tool) are honoured when they point within the
//! root they lie in — `public/latest.b2nd -> runs/42.b2nd` — and otherwise
//! the path names nothing (a 404, and no entry in listings): a link out of
//! the state directory (`public/passwd -> /etc/passwd`), from `shared` into
//! a user's `personal/<id>`, or from one user's `personal` into another's.
//! The root of a key is its first segment (`public`, `shared`), or
//! `personal/<id>` for a user's files.
//!
//! Writes — uploads, copies, moves, removals, new directories, locks — do
//! not go through links at all: a key whose parent directories include a
//! link is refused, so no write lands outside its root by way of a
//! directory link. A link itself may be removed or moved (that writes the
//! directory holding it, not what it points to), and is never rewritten by
//! first-touch compression ([`LocalStorage::is_link`]).
//!
//! The checks resolve paths with `realpath` (a `lstat` per component); a
//! link swapped between the check and the use is the remaining window,
//! which only someone who can write the state directory can use.

use std::fs;
use std::path::{Path, PathBuf};

use super::LocalStorage;
use crate::storage::{Error, Key, Result};

impl LocalStorage {
    /// The directory a key may not leave: its root.
    fn confinement(&self, key: &Key) -> PathBuf {
        let mut segments = key.segments();
        match (segments.next(), segments.next()) {
            (Some("personal"), Some(id)) => self.root.join("personal").join(id),
            (Some(first), _) => self.root.join(first),
            (None, _) => self.root.clone(),
        }
    }

    /// The real path of `key` for reading, when it lies inside the key's
    /// root; `NotFound` when a link leads out of it (or nothing is there).
    pub(super) fn readable(&self, key: &Key) -> Result<PathBuf> {
        let path = self.path_of(key);
        let real = fs::canonicalize(&path).map_err(|e| Error::io("resolving", key, e))?;
        if self.inside(key, &real) {
            Ok(real)
        } else {
            tracing::warn!(key = %key, "a symbolic link leads out of its root; not served");
            Err(Error::not_found(key))
        }
    }

    /// Whether `real` (a resolved path) lies inside the root of `key`.
    pub(super) fn inside(&self, key: &Key, real: &Path) -> bool {
        let root = self.confinement(key);
        let root = fs::canonicalize(&root).unwrap_or(root);
        real.starts_with(root)
    }

    /// The path of `key` for writing: refused when a directory on the way
    /// to it is a link. The key itself may be a link (replacing or
    /// removing it changes the directory, not the target).
    pub(super) fn writable(&self, key: &Key) -> Result<PathBuf> {
        let target = self.path_of(key);
        let mut dir = self.root.clone();
        let segments: Vec<&str> = key.segments().collect();
        for segment in segments.iter().take(segments.len().saturating_sub(1)) {
            dir.push(segment);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::Conflict {
                        key: key.to_string(),
                        why: "lies behind a symbolic link; links are not written through".into(),
                    })
                }
                Ok(_) => {}
                // What does not exist yet holds no link.
                Err(_) => break,
            }
        }
        Ok(target)
    }

    /// Whether `key` names a symbolic link (which is served, if it stays
    /// inside its root, but never rewritten).
    pub fn is_link(&self, key: &Key) -> bool {
        fs::symlink_metadata(self.path_of(key)).is_ok_and(|m| m.file_type().is_symlink())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::storage::{Entry, PutMode, Storage};

    fn key(s: &str) -> Key {
        Key::parse(s).unwrap()
    }

    fn store() -> (tempfile::TempDir, LocalStorage) {
        let tmp = tempfile::tempdir().unwrap();
        let st = LocalStorage::open(&tmp.path().join("state")).unwrap();
        for d in ["public/runs", "shared", "personal/alice", "personal/bob"] {
            fs::create_dir_all(st.root().join(d)).unwrap();
        }
        fs::write(st.root().join("public/runs/42.txt"), b"run 42").unwrap();
        fs::write(st.root().join("personal/alice/secret.txt"), b"alice's").unwrap();
        fs::write(tmp.path().join("outside.txt"), b"the machine's").unwrap();
        (tmp, st)
    }

    #[test]
    fn links_inside_their_root_are_followed() {
        let (_tmp, st) = store();
        symlink("runs/42.txt", st.root().join("public/latest.txt")).unwrap();
        symlink("runs", st.root().join("public/current")).unwrap();
        assert!(matches!(
            st.head(&key("public/latest.txt")),
            Ok(Entry::Object(_))
        ));
        let blob = st.open(&key("public/current/42.txt")).unwrap();
        assert_eq!(blob.read_range(0, 6).unwrap(), b"run 42");
        let names: Vec<String> = st
            .list(&key("public"))
            .unwrap()
            .objects
            .iter()
            .map(|m| m.key.to_string())
            .collect();
        assert_eq!(names, ["public/latest.txt"]);
        assert!(st.is_link(&key("public/latest.txt")));
    }

    #[test]
    fn links_out_of_their_root_name_nothing() {
        let (tmp, st) = store();
        symlink(
            tmp.path().join("outside.txt"),
            st.root().join("public/passwd"),
        )
        .unwrap();
        symlink("../personal/alice", st.root().join("shared/alice")).unwrap();
        symlink(
            "../alice/secret.txt",
            st.root().join("personal/bob/stolen.txt"),
        )
        .unwrap();
        for k in [
            "public/passwd",
            "shared/alice",
            "shared/alice/secret.txt",
            "personal/bob/stolen.txt",
        ] {
            assert!(st.head(&key(k)).unwrap_err().is_not_found(), "{k}");
            assert!(st.open(&key(k)).is_err(), "{k}");
        }
        assert!(st.list(&key("public")).unwrap().objects.is_empty());
        assert!(st.list(&key("shared")).unwrap().dirs.is_empty());
        assert!(st.list(&key("shared/alice")).is_err());
        assert!(st.list(&key("personal/bob")).unwrap().objects.is_empty());
    }

    #[test]
    fn writes_do_not_go_through_links() {
        let (tmp, st) = store();
        symlink(tmp.path(), st.root().join("public/out")).unwrap();
        symlink("../personal/alice", st.root().join("shared/alice")).unwrap();
        symlink("runs", st.root().join("public/current")).unwrap();
        let refused = |r: Result<()>| assert!(matches!(r, Err(Error::Conflict { .. })), "{r:?}");
        refused(
            st.put(&key("public/out/x.txt"), b"x", PutMode::Overwrite)
                .map(drop),
        );
        refused(st.delete(&key("shared/alice/secret.txt")));
        refused(st.copy(&key("public/runs/42.txt"), &key("shared/alice/copy.txt")));
        refused(st.rename(&key("shared/alice/secret.txt"), &key("shared/mine.txt")));
        refused(st.create_dir(&key("public/current/new")));
        refused(st.delete_dir(&key("shared/alice")));
        assert!(!tmp.path().join("x.txt").exists());
        assert!(st.root().join("personal/alice/secret.txt").exists());
        // The link itself may go.
        st.delete(&key("shared/alice")).unwrap();
        assert!(st.root().join("personal/alice/secret.txt").exists());
    }

    #[test]
    fn copies_of_directories_leave_links_behind() {
        let (tmp, st) = store();
        symlink(
            tmp.path().join("outside.txt"),
            st.root().join("public/runs/passwd"),
        )
        .unwrap();
        st.copy(&key("public/runs"), &key("shared/runs")).unwrap();
        assert!(st.root().join("shared/runs/42.txt").exists());
        assert!(fs::symlink_metadata(st.root().join("shared/runs/passwd")).is_err());
    }
}
