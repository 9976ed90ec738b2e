//! Changing what a state directory holds: uploads, appends, chunk writes and
//! publishing, moves, copies and removals, with Caterva2's rules about where
//! each may happen.
//!
//! Every change goes through the storage seam ([`crate::storage`]): a new
//! object is staged, checked, and committed in one step, so a reader or a
//! crash sees the old state or the new one, never a partial dataset. Arrays
//! that chunk writers may change are replaced only under their frame lock
//! ([`lock::lock_fillable`]).

pub mod append;
pub mod archive;
pub mod fill;
pub(crate) mod lock;
pub mod transfer;
pub mod upload;

use crate::error::{Error, Result};
use crate::path::{check_new_name, DsPath, Root};
use crate::storage::{Entry, Key};
use crate::store::{Caller, StateDir};

/// Who may write into `@public`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublicWrites {
    /// Only superusers (the default: `@public` is what anonymous visitors see).
    #[default]
    Superusers,
    /// Any logged-in user, as the reference server allows.
    Users,
}

/// The rules a server applies to writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct WritePolicy {
    pub public_writes: PublicWrites,
    /// Bytes the state directory may hold (`db.json`/`db.sqlite` excluded).
    pub quota: Option<u64>,
}

/// Files of the state that are not data and do not count against the quota.
const NOT_COUNTED: [&str; 2] = ["db.json", "db.sqlite"];

impl StateDir {
    /// The key of `root` if `caller` may write there.
    pub fn writable_root(
        &self,
        root: Root,
        caller: Caller<'_>,
        policy: &WritePolicy,
    ) -> Result<Key> {
        if caller.user_id.is_none() {
            return Err(Error::Unauthorized);
        }
        if root == Root::Public
            && policy.public_writes == PublicWrites::Superusers
            && !caller.is_superuser
        {
            return Err(Error::Forbidden(
                "only superusers may write to @public on this server".into(),
            ));
        }
        self.root_key(root, caller)
    }

    /// The key `path` is stored at, in a root `caller` may write to.
    ///
    /// Every write finds its target here, so every name a write creates is
    /// checked here too (`path::check_new_name`: not reserved, no control
    /// characters, short enough for the file system with the suffixes the
    /// server adds), and refused with a 400 that names no key.
    pub fn writable_key(
        &self,
        path: &DsPath,
        caller: Caller<'_>,
        policy: &WritePolicy,
    ) -> Result<Key> {
        let mut key = self.writable_root(path.root(), caller, policy)?;
        for part in path.parts() {
            check_new_name(part)?;
            key = key.join(part).map_err(|e| match e {
                crate::storage::Error::InvalidKey { why, .. } => {
                    Error::BadRequest(format!("{path} cannot be written: {why}"))
                }
                other => other.into(),
            })?;
        }
        Ok(key)
    }

    /// Bytes held by the state directory, as the quota counts them.
    pub fn usage(&self) -> Result<u64> {
        let storage = self.storage();
        let mut total = storage.usage(&Key::root())?;
        for name in NOT_COUNTED {
            if let Ok(Entry::Object(m)) = Key::parse(name).and_then(|k| storage.head(&k)) {
                total = total.saturating_sub(m.size);
            }
        }
        Ok(total)
    }

    /// Refuses a write that would take the state directory over its quota:
    /// `incoming` bytes not yet stored are added and the `replaced` bytes of
    /// an object the write replaces are taken off (bytes already staged are
    /// stored, so they are counted by `usage` itself).
    pub fn check_quota(
        &self,
        policy: &WritePolicy,
        incoming: u64,
        replaced: u64,
        what: &str,
    ) -> Result<()> {
        if let Some(quota) = policy.quota {
            let after = self
                .usage()?
                .saturating_add(incoming)
                .saturating_sub(replaced);
            if after > quota {
                return Err(quota_exceeded(what));
            }
        }
        Ok(())
    }

    /// The bytes a write may add before the state directory is over its
    /// quota, when the write replaces an object of `replaced` bytes (the
    /// room [`StateDir::check_quota`] leaves); `None` without a quota.
    pub(crate) fn quota_room(&self, policy: &WritePolicy, replaced: u64) -> Result<Option<u64>> {
        policy
            .quota
            .map(|quota| Ok(quota.saturating_add(replaced).saturating_sub(self.usage()?)))
            .transpose()
    }

    /// The size of the object at `key`, 0 if there is none.
    pub(crate) fn object_size(&self, key: &Key) -> u64 {
        match self.storage().head(key) {
            Ok(Entry::Object(m)) => m.size,
            _ => 0,
        }
    }

    /// What `key` names, `None` for nothing.
    pub(crate) fn entry(&self, key: &Key) -> Result<Option<Entry>> {
        match self.storage().head(key) {
            Ok(e) => Ok(Some(e)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The refusal of a write past the quota, in the reference's words (which
/// the client shows): `what` is `Upload`, `Copy`, ….
pub(crate) fn quota_exceeded(what: &str) -> Error {
    Error::BadRequest(format!(
        "{what} failed because quota limit has been exceeded."
    ))
}

/// `std::io::Write` onto the end of a staged object.
pub(crate) struct Appender(pub std::sync::Arc<dyn crate::storage::StagedIo>);

impl std::io::Write for Appender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
