//! Uploads: where an uploaded file lands and how it is stored.
//!
//! Caterva2's rules (protocol.md §5.11, S12): a target that is an existing
//! directory receives the file under the upload's own file name; anything
//! else *is* the file name. The target's suffix decides the storage: Blosc2
//! containers and HDF5 files are kept verbatim (after a check that they are
//! what they claim to be), any other file is compressed into `<name>.b2`.

use std::sync::Arc;

use cat2_blosc2::CParams;

use super::lock::lock_fillable;
use super::WritePolicy;
use crate::blob::BLOB_CHUNKSIZE;
use crate::error::{Error, Result};
use crate::path::DsPath;
use crate::storage::{Entry, Key, PutMode, ReadAt, Staged, StagedIo};
use crate::store::{Caller, StateDir};

/// Where an upload goes.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    /// The logical path answered to the client.
    pub logical: DsPath,
    /// The key it is stored as.
    pub target: Key,
    /// Whether the bytes are compressed into a `.b2` super-chunk.
    pub compress: bool,
}

impl UploadPlan {
    /// The key of the file under its own name (the target without the
    /// `.b2` of a regular file).
    fn raw_target(&self) -> Result<Key> {
        if !self.compress {
            return Ok(self.target.clone());
        }
        let name = self.target.name();
        let raw = name.strip_suffix(".b2").unwrap_or(name);
        let parent = self.target.parent().unwrap_or_default();
        Ok(parent.join(raw)?)
    }
}

/// A file name as sent in a multipart part, reduced to a safe base name
/// that meets the rules for new names (`path::check_new_name`).
pub fn safe_file_name(name: &str) -> Result<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base == "." || base == ".." || base.contains('\0') {
        return Err(Error::BadRequest(format!(
            "the uploaded file name {name:?} cannot name a file"
        )));
    }
    crate::path::check_new_name(base)?;
    Ok(base.to_string())
}

/// Decides where an upload of `file_name` to `path` lands.
pub fn plan_upload(
    sd: &StateDir,
    path: &DsPath,
    file_name: &str,
    caller: Caller<'_>,
    policy: &WritePolicy,
) -> Result<UploadPlan> {
    let mut key = sd.writable_key(path, caller, policy)?;
    let logical = if matches!(sd.entry(&key)?, Some(Entry::Dir { .. })) {
        let name = safe_file_name(file_name)?;
        key = key.join(&name).map_err(|_| {
            Error::BadRequest(format!(
                "the uploaded file name {file_name:?} cannot name a file"
            ))
        })?;
        path.join(&name)
    } else {
        if path.is_root() {
            return Err(Error::BadRequest(format!("{path} is a root, not a file")));
        }
        path.clone()
    };
    let compress = !crate::resolve::stored_under_own_name(logical.name());
    let target = if compress {
        key.with_suffix(".b2")?
    } else {
        key
    };
    if matches!(sd.entry(&target)?, Some(Entry::Dir { .. })) {
        return Err(Error::BadRequest(format!(
            "{logical} is a directory and cannot be replaced by a file"
        )));
    }
    Ok(UploadPlan {
        logical,
        target,
        compress,
    })
}

/// A staged object to stream an upload into, near its target.
pub fn upload_staging(sd: &StateDir, plan: &UploadPlan) -> Result<Box<dyn Staged>> {
    Ok(sd.storage().stage(&plan.target)?)
}

/// Stores a received upload (staged, not yet visible) under its plan:
/// compresses or verifies it and commits it in place; if the upload fails,
/// the staged bytes are dropped.
pub fn finish_upload(
    sd: &StateDir,
    plan: &UploadPlan,
    received: Box<dyn Staged>,
    policy: &WritePolicy,
) -> Result<()> {
    let storage = sd.storage();
    // The received bytes are stored already; the file they replace goes.
    let replaced = sd.object_size(&plan.target);
    sd.check_quota(policy, 0, replaced, "Upload")?;
    let raw_target = plan.raw_target()?;
    let io = received.io();
    if plan.compress && crate::resolve::holds_hdf5(io.as_ref()) {
        // An HDF5 file under any other name stays an HDF5 file: kept as
        // it is under its own name, so it can be browsed and unfolded
        // (the reference compresses it into an opaque `.b2`).
        crate::resolve::check_upload(&io, plan.logical.name())?;
        commit_replacing(sd, received, &raw_target)?;
        let _ = storage.delete(&plan.target);
        Ok(())
    } else if plan.compress {
        let packed = storage.stage(&plan.target)?;
        compress_bytes(io.as_ref(), packed.io(), plan.target.name())?;
        drop(received);
        commit_replacing(sd, packed, &plan.target)?;
        // An HDF5 file this upload replaces.
        if let Ok(blob) = storage.open(&raw_target) {
            if crate::resolve::holds_hdf5(blob.as_ref()) {
                let _ = storage.delete(&raw_target);
            }
        }
        Ok(())
    } else {
        crate::resolve::check_upload(&io, plan.logical.name())?;
        commit_replacing(sd, received, &plan.target)
    }
}

/// Commits a staged object at `target`, holding the frame lock of `target`
/// if it is an array chunk writers may change.
pub(crate) fn commit_replacing(sd: &StateDir, staged: Box<dyn Staged>, target: &Key) -> Result<()> {
    let _locks = lock_fillable(sd.storage(), &[target])?;
    staged.commit(target, PutMode::Overwrite)?;
    Ok(())
}

/// Compresses bytes into a super-chunk frame written into `out`, a chunk
/// at a time (memory stays at one chunk whatever the size).
pub(crate) fn compress_bytes(src: &dyn ReadAt, out: Arc<dyn StagedIo>, name: &str) -> Result<()> {
    let mut sc = crate::frames::create_staged_frame(out, name, &CParams::zstd_shuffle(1))?;
    let mut buf = vec![0u8; BLOB_CHUNKSIZE];
    let mut offset = 0u64;
    loop {
        let filled = src
            .read_at(offset, &mut buf)
            .map_err(|e| Error::io("reading", name, e))?;
        if filled == 0 {
            break;
        }
        sc.append_buffer(&buf[..filled])?;
        offset += filled as u64;
        if filled < buf.len() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A staged object holding `data`, as an upload would leave it.
    fn received(sd: &StateDir, plan: &UploadPlan, data: &[u8]) -> Box<dyn Staged> {
        let staged = upload_staging(sd, plan).unwrap();
        staged.io().write_at(0, data).unwrap();
        staged
    }

    /// Whether nothing but `names` lies in `dir` (no temporaries left).
    fn only(dir: &std::path::Path, names: &[&str]) {
        let mut got: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, names);
    }

    fn user() -> Caller<'static> {
        Caller {
            user_id: Some("f4e7e458-4fa4-4a4f-8546-7e6e021d6eda"),
            is_superuser: false,
        }
    }

    #[test]
    fn directory_targets_take_the_file_name() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        fs::create_dir_all(sd.path().join("shared/dir1")).unwrap();
        let p = DsPath::parse("@shared/dir1").unwrap();
        let plan = plan_upload(&sd, &p, "../notes.txt", user(), &WritePolicy::default()).unwrap();
        assert_eq!(plan.logical.to_string(), "@shared/dir1/notes.txt");
        assert!(plan.compress);
        assert_eq!(plan.target.as_str(), "shared/dir1/notes.txt.b2");
        // A path that does not exist is the file itself, even with a trailing slash.
        let p = DsPath::parse("@personal/dir9/").unwrap();
        let plan = plan_upload(&sd, &p, "x.b2nd", user(), &WritePolicy::default()).unwrap();
        assert_eq!(plan.logical.to_string(), "@personal/dir9");
        assert!(plan.target.as_str().ends_with("dir9.b2"));
    }

    #[test]
    fn anonymous_and_public_writes_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        let p = DsPath::parse("@public/a.b2nd").unwrap();
        let pol = WritePolicy::default();
        assert!(matches!(
            plan_upload(&sd, &p, "a", Caller::default(), &pol),
            Err(Error::Unauthorized)
        ));
        assert!(matches!(
            plan_upload(&sd, &p, "a", user(), &pol),
            Err(Error::Forbidden(_))
        ));
        let open = WritePolicy {
            public_writes: super::super::PublicWrites::Users,
            quota: None,
        };
        assert!(plan_upload(&sd, &p, "a", user(), &open).is_ok());
    }

    #[test]
    fn uploads_are_compressed_or_verified_and_quota_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        let pol = WritePolicy::default();
        let p = DsPath::parse("@shared/readme.md").unwrap();
        let plan = plan_upload(&sd, &p, "upload", user(), &pol).unwrap();
        let staged = received(&sd, &plan, &b"# hello\n".repeat(1000));
        finish_upload(&sd, &plan, staged, &pol).unwrap();
        only(&sd.path().join("shared"), &["readme.md.b2"]);
        let blob = sd.storage().open(&plan.target).unwrap();
        assert_eq!(
            crate::blob::read_blob(&blob).unwrap(),
            b"# hello\n".repeat(1000)
        );

        let p = DsPath::parse("@shared/bad.b2nd").unwrap();
        let plan = plan_upload(&sd, &p, "upload", user(), &pol).unwrap();
        let staged = received(&sd, &plan, b"not a frame");
        let err = finish_upload(&sd, &plan, staged, &pol)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid Blosc2 array"), "{err}");
        only(&sd.path().join("shared"), &["readme.md.b2"]);

        let tight = WritePolicy {
            quota: Some(10),
            ..pol
        };
        let p = DsPath::parse("@shared/big.txt").unwrap();
        let plan = plan_upload(&sd, &p, "upload", user(), &tight).unwrap();
        let staged = received(&sd, &plan, &[b'x'; 100]);
        let err = finish_upload(&sd, &plan, staged, &tight)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "Upload failed because quota limit has been exceeded.");
    }
}
