//! Changing what a state directory holds: uploads, appends, chunk writes and
//! publishing, moves, copies and removals, with Caterva2's rules about where
//! each may happen.
//!
//! Every change is made beside its target under a temporary name
//! ([`crate::store::TEMP_PREFIX`], never listed or served), synced, and then
//! renamed into place, so a reader or a crash sees the old state or the new
//! one, never a partial dataset.

pub mod append;
pub mod archive;
pub mod fill;
pub mod lock;
pub mod transfer;
pub mod upload;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::path::Root;
use crate::store::{random_hex32, Caller, StateDir, TEMP_PREFIX};

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

impl StateDir {
    /// The directory of `root` if `caller` may write there.
    pub fn writable_dir(
        &self,
        root: Root,
        caller: Caller<'_>,
        policy: &WritePolicy,
    ) -> Result<PathBuf> {
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
        self.root_dir(root, caller)
    }

    /// Bytes held by the state directory, as the quota counts them.
    pub fn usage(&self) -> Result<u64> {
        let mut total = 0;
        let mut stack = vec![self.path().to_path_buf()];
        let top = self.path().to_path_buf();
        while let Some(d) = stack.pop() {
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("listing", &d, e)),
            };
            for entry in rd.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                let name = entry.file_name();
                if d == top && (name == "db.json" || name == "db.sqlite") {
                    continue;
                }
                if meta.is_dir() {
                    stack.push(entry.path());
                } else {
                    total += meta.len();
                }
            }
        }
        Ok(total)
    }

    /// Refuses a write that would take the state directory over its quota:
    /// `incoming` bytes not yet on disk are added and the `replaced` bytes of
    /// a file the write replaces are taken off (bytes already received into a
    /// temporary file are on disk, so they are counted by `usage` itself).
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
                return Err(Error::BadRequest(format!(
                    "{what} failed because quota limit has been exceeded."
                )));
            }
        }
        Ok(())
    }
}

/// A fresh temporary path beside `target` (same filesystem, so a rename is atomic).
pub fn temp_beside(target: &Path) -> PathBuf {
    let dir = target.parent().unwrap_or(Path::new("."));
    dir.join(format!("{TEMP_PREFIX}{}", random_hex32()))
}

/// Makes the parents of `path` exist.
pub fn make_parents(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    }
    Ok(())
}

/// Syncs a file's data and renames it into place, then syncs the directory
/// so the rename itself survives a crash.
pub fn commit(temp: &Path, target: &Path) -> Result<()> {
    let f = fs::OpenOptions::new()
        .read(true)
        .open(temp)
        .map_err(|e| Error::io("opening", temp, e))?;
    f.sync_all().map_err(|e| Error::io("syncing", temp, e))?;
    drop(f);
    fs::rename(temp, target).map_err(|e| Error::io("renaming into", target, e))?;
    if let Some(dir) = target.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// [`commit`], holding the frame lock of `target` if it is an array chunk
/// writers may change (see [`lock::lock_fillable`]).
pub fn commit_replacing(temp: &Path, target: &Path) -> Result<()> {
    let _locks = lock::lock_fillable(&[target])?;
    commit(temp, target)
}

/// Writes bytes to a temporary file beside `target` and commits it.
pub fn write_new(target: &Path, data: &[u8]) -> Result<()> {
    make_parents(target)?;
    let temp = temp_beside(target);
    let result = (|| {
        let mut f = fs::File::create(&temp).map_err(|e| Error::io("creating", &temp, e))?;
        f.write_all(data)
            .map_err(|e| Error::io("writing", &temp, e))?;
        drop(f);
        commit(&temp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Many small files written as one change (an unfold's proxies): each file is
/// written beside its target unsynced, then one `syncfs` makes all their data
/// durable, every file is renamed into place, and a second `syncfs` makes the
/// renames durable. Two filesystem syncs in all instead of two `fsync`s per
/// file; a crash still leaves each file old or new (an unsynced temporary is
/// never renamed, and leftovers are swept at start-up). Dropping a batch that
/// was not committed removes its temporaries.
#[derive(Debug, Default)]
pub struct Batch {
    pending: Vec<(PathBuf, PathBuf)>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Writes `data` to a temporary file beside `target` (made with its parents).
    pub fn add(&mut self, target: &Path, data: &[u8]) -> Result<()> {
        make_parents(target)?;
        let temp = temp_beside(target);
        let written = fs::write(&temp, data).map_err(|e| Error::io("writing", &temp, e));
        self.pending.push((temp, target.to_path_buf()));
        written
    }

    /// Syncs the data, renames every file into place and syncs the renames.
    pub fn commit(mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let Some((first, _)) = pending.first() else {
            return Ok(());
        };
        let sync = |what: &Path| -> Result<()> {
            let f = fs::File::open(what).map_err(|e| Error::io("opening", what, e))?;
            rustix::fs::syncfs(&f)
                .map_err(|e| Error::io("syncing the filesystem of", what, e.into()))
        };
        if let Err(e) = sync(first) {
            self.pending = pending;
            return Err(e);
        }
        for (i, (temp, target)) in pending.iter().enumerate() {
            if let Err(e) = fs::rename(temp, target) {
                self.pending = pending[i..].to_vec();
                return Err(Error::io("renaming into", target, e));
            }
        }
        let last = pending.last().map(|(_, target)| target.as_path());
        last.map_or(Ok(()), sync)
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for (temp, _) in &self.pending {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Removes leftovers of writes that never finished (a crash between writing
/// a temporary file and renaming it), below `dir`.
pub fn sweep_temporaries(dir: &Path) -> usize {
    let mut removed = 0;
    let mut stack = vec![dir.to_path_buf()];
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
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn replacing_an_array_waits_for_its_chunk_writers() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.b2nd");
        fs::write(&target, b"old").unwrap();
        let temp = temp_beside(&target);
        fs::write(&temp, b"new").unwrap();
        let writer = lock::FrameLock::exclusive(&target).unwrap();
        let (tx, rx) = mpsc::channel();
        let (t, tgt) = (temp.clone(), target.clone());
        let upload = std::thread::spawn(move || {
            commit_replacing(&t, &tgt).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"old");
        drop(writer);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        upload.join().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        // The replacement counts as a mutation of the frame.
        assert_eq!(lock::generation(&target), Some(1));
    }

    #[test]
    fn replacing_other_files_takes_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("notes.txt.b2");
        let temp = temp_beside(&target);
        fs::write(&temp, b"new").unwrap();
        commit_replacing(&temp, &target).unwrap();
        assert!(!lock::sidecar_path(&target).exists());
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_batch_shows_its_files_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("a.b2nd");
        fs::write(&old, b"old").unwrap();
        let mut batch = Batch::new();
        batch.add(&old, b"new").unwrap();
        batch.add(&dir.path().join("g/b.b2nd"), b"b").unwrap();
        // Before the commit: the old file, and temporaries nobody lists.
        assert_eq!(fs::read(&old).unwrap(), b"old");
        assert!(!dir.path().join("g/b.b2nd").exists());
        batch.commit().unwrap();
        assert_eq!(fs::read(&old).unwrap(), b"new");
        assert_eq!(fs::read(dir.path().join("g/b.b2nd")).unwrap(), b"b");
        assert_eq!(names(dir.path()), ["a.b2nd", "g"]);
        assert_eq!(names(&dir.path().join("g")), ["b.b2nd"]);

        // A batch given up (an error half-way) leaves no trace.
        let mut batch = Batch::new();
        batch.add(&old, b"newer").unwrap();
        drop(batch);
        assert_eq!(fs::read(&old).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["a.b2nd", "g"]);
    }
}
