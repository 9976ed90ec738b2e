//! The state: its layout over a [`crate::storage::Storage`], and which keys
//! the roots are for a caller.
//!
//! Layout (shared with the reference Caterva2 server, so both can take turns
//! on one directory): `public/`, `shared/`, `personal/<user uuid>/`,
//! `db.sqlite` (the users, kept by `cat2-auth` in the local directory),
//! `db.json`, `peer_id`, `media/`. Nothing is cached here: every request asks
//! the storage, so files written by another process are seen at once.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::path::{DsPath, Root};

/// A Caterva2 state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
    storage: std::sync::Arc<dyn crate::storage::Storage>,
}

/// Who is asking: the user id (a lowercase hyphenated UUID) when logged in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    pub user_id: Option<&'a str>,
    pub is_superuser: bool,
}

impl StateDir {
    /// Opens (creating it and its layout if needed) a state directory on
    /// the local disk.
    pub fn open(dir: &Path) -> Result<StateDir> {
        let local = crate::storage::local::LocalStorage::open(dir)?;
        let dir = local.root().to_path_buf();
        Self::with_storage(dir, std::sync::Arc::new(local))
    }

    /// A state kept in `storage` (its layout made if missing); `dir` is the
    /// local directory of what is not kept there (the users' database).
    pub fn with_storage(
        dir: PathBuf,
        storage: std::sync::Arc<dyn crate::storage::Storage>,
    ) -> Result<StateDir> {
        use crate::storage::{Key, PutMode};
        for sub in ["public", "shared", "personal", "media"] {
            storage.create_dir(&Key::parse(sub)?)?;
        }
        let create = |name: &str, data: &[u8]| -> Result<()> {
            let key = Key::parse(name)?;
            if storage.head(&key).is_err() {
                match storage.put(&key, data, PutMode::Create) {
                    Ok(_) | Err(crate::storage::Error::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        };
        create("db.json", b"{}")?;
        create("peer_id", crate::random::random_hex32().as_bytes())?;
        Ok(StateDir { dir, storage })
    }

    /// Removes a user's `@personal` (with everything in it), if they have one.
    pub fn remove_personal(&self, user_id: &str) -> Result<()> {
        let key = crate::storage::Key::parse("personal")?
            .join(user_id)
            .map_err(|_| Error::BadRequest(format!("{user_id:?} is not a user id")))?;
        match self.storage.delete_dir(&key) {
            Err(e) if e.is_not_found() => Ok(()),
            other => Ok(other?),
        }
    }

    /// This server's identity for its peers (`peer_id`).
    pub fn peer_id(&self) -> Result<String> {
        let key = crate::storage::Key::parse("peer_id")?;
        let bytes = crate::storage::read_all(self.storage(), &key)?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where the state's objects are kept.
    pub fn storage(&self) -> &dyn crate::storage::Storage {
        self.storage.as_ref()
    }

    /// [`StateDir::storage`], shared.
    pub fn storage_arc(&self) -> &std::sync::Arc<dyn crate::storage::Storage> {
        &self.storage
    }

    /// The key a root is stored under, for this caller; `@shared` and
    /// `@personal` need a logged-in user.
    pub fn root_key(&self, root: Root, caller: Caller<'_>) -> Result<crate::storage::Key> {
        use crate::storage::Key;
        let key = match (root, caller.user_id) {
            (Root::Public, _) => Key::parse("public"),
            (Root::Shared, Some(_)) => Key::parse("shared"),
            (Root::Personal, Some(uid)) => {
                if uid.is_empty() || uid.contains(['/', '\\', '.']) {
                    return Err(Error::Unauthorized);
                }
                Key::parse("personal").and_then(|k| k.join(uid))
            }
            (_, None) => return Err(Error::Unauthorized),
        };
        key.map_err(|_| Error::Unauthorized)
    }

    /// The logical path of a stored key as `caller` addresses it; `None`
    /// when it lies outside the roots (or in another user's `@personal`).
    pub fn logical_of(&self, key: &crate::storage::Key, caller: Caller<'_>) -> Option<DsPath> {
        let mut parts = key.segments();
        let root = match parts.next()? {
            "public" => "@public",
            "shared" => "@shared",
            "personal" => {
                if Some(parts.next()?) != caller.user_id {
                    return None;
                }
                "@personal"
            }
            _ => return None,
        };
        let rest: Vec<&str> = parts.collect();
        DsPath::parse(&format!("{root}/{}", rest.join("/"))).ok()
    }
}

/// The text of `e` a client may be shown: the error's own, except that a
/// storage error shows logical paths (`@personal/x`) instead of the state's
/// keys (`personal/<user id>/x`), and nothing of the server's file system
/// (an I/O error's path and cause stay in the log). Here, not on [`Error`],
/// because it takes the state's layout to turn a key into a logical path.
pub fn client_text(e: &Error) -> String {
    match e {
        Error::Storage(e) => e.describe_with(shown_key),
        Error::Io { op, .. } => format!("{op} failed"),
        other => other.to_string(),
    }
}

/// A storage key as messages to users show it: the logical path it stands
/// for (`public/a` is `@public/a`, `personal/<user id>/a` is `@personal/a`),
/// so an answer never spells out the state directory's layout; a key outside
/// the roots is shown as it is.
pub(crate) fn shown_key(key: &str) -> String {
    let mut parts = key.split('/');
    let root = match parts.next() {
        Some("public") => "@public",
        Some("shared") => "@shared",
        Some("personal") => {
            parts.next();
            "@personal"
        }
        _ => return key.to_string(),
    };
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{}", rest.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn open_creates_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(&tmp.path().join("state")).unwrap();
        for sub in ["public", "shared", "personal", "media"] {
            assert!(sd.path().join(sub).is_dir(), "{sub}");
        }
        assert_eq!(fs::read_to_string(sd.path().join("db.json")).unwrap(), "{}");
        assert_eq!(
            fs::read_to_string(sd.path().join("peer_id")).unwrap().len(),
            32
        );
    }

    #[test]
    fn anonymous_callers_only_see_public() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        let anon = Caller::default();
        assert!(sd.root_key(Root::Public, anon).is_ok());
        assert!(matches!(
            sd.root_key(Root::Shared, anon),
            Err(Error::Unauthorized)
        ));
        assert!(matches!(
            sd.root_key(Root::Personal, anon),
            Err(Error::Unauthorized)
        ));
    }

    #[test]
    fn keys_are_shown_as_logical_paths() {
        assert_eq!(shown_key("public/a/b.b2nd"), "@public/a/b.b2nd");
        assert_eq!(shown_key("shared"), "@shared");
        assert_eq!(
            shown_key("personal/0b1c3f3e-8a57-4d3c-9d0e-2f0c5f1f6a11/x.b2"),
            "@personal/x.b2"
        );
        assert_eq!(
            shown_key("personal/0b1c3f3e-8a57-4d3c-9d0e-2f0c5f1f6a11"),
            "@personal"
        );
        assert_eq!(shown_key("db.json"), "db.json");
    }

    #[test]
    fn client_texts_show_no_keys_and_no_server_paths() {
        let key = "personal/0b1c3f3e-8a57-4d3c-9d0e-2f0c5f1f6a11/d/x.b2nd";
        let e = Error::Storage(crate::storage::Error::Conflict {
            key: key.into(),
            why: "needs a directory where a file is".into(),
        });
        assert_eq!(
            client_text(&e),
            "@personal/d/x.b2nd needs a directory where a file is"
        );
        let e = Error::io(
            "reading",
            "/srv/state/public/x",
            std::io::Error::other("boom"),
        );
        assert_eq!(client_text(&e), "reading failed");
        assert!(
            e.to_string().contains("/srv/state/public/x"),
            "the log keeps it"
        );
    }
}
