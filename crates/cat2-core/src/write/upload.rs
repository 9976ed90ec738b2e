//! Uploads: where an uploaded file lands and how it is stored.
//!
//! Caterva2's rules (protocol.md §5.11, S12): a target that is an existing
//! directory receives the file under the upload's own file name; anything
//! else *is* the file name. The target's suffix decides the storage: Blosc2
//! containers and HDF5 files are kept verbatim (after a check that they are
//! what they claim to be), any other file is compressed into `<name>.b2`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use cat2_blosc2::{CParams, NdArray, SChunk};

use super::{commit_replacing, make_parents, temp_beside, WritePolicy};
use crate::blob::BLOB_CHUNKSIZE;
use crate::error::{Error, Result};
use crate::path::{is_stored_verbatim, suffix, DsPath};
use crate::store::{with_b2, Caller, StateDir};

/// Where an upload goes.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    /// The logical path answered to the client.
    pub logical: DsPath,
    /// The file it is stored as.
    pub target: PathBuf,
    /// Whether the bytes are compressed into a `.b2` super-chunk.
    pub compress: bool,
}

/// A file name as sent in a multipart part, reduced to a safe base name.
pub fn safe_file_name(name: &str) -> Result<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base == "." || base == ".." || base.contains('\0') {
        return Err(Error::BadRequest(format!(
            "the uploaded file name {name:?} cannot name a file"
        )));
    }
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
    let base = sd.writable_dir(path.root(), caller, policy)?;
    let mut fs_path = base;
    for part in path.parts() {
        fs_path.push(part);
    }
    let logical = if fs_path.is_dir() {
        let name = safe_file_name(file_name)?;
        fs_path.push(&name);
        path.join(&name)
    } else {
        if path.is_root() {
            return Err(Error::BadRequest(format!("{path} is a root, not a file")));
        }
        path.clone()
    };
    let compress = !is_stored_verbatim(logical.name());
    let target = if compress { with_b2(&fs_path) } else { fs_path };
    if target.is_dir() {
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

/// A temporary file to stream an upload into, beside its target.
pub fn upload_temp(plan: &UploadPlan) -> Result<PathBuf> {
    make_parents(&plan.target)?;
    Ok(temp_beside(&plan.target))
}

/// Checks that a file is what its suffix says, before it becomes visible.
pub fn verify_dataset(path: &Path, logical_name: &str) -> Result<()> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::BadRequest(format!("{logical_name} is not a valid {what}: {e}"))
    };
    match suffix(logical_name) {
        ".b2nd" => NdArray::open(path)
            .map(drop)
            .map_err(|e| bad("Blosc2 array (.b2nd)", &e)),
        ".b2frame" | ".b2" => SChunk::open(path)
            .map(drop)
            .map_err(|e| bad("Blosc2 frame", &e)),
        _ if crate::path::is_hdf5_name(logical_name) => {
            if crate::container::h5::is_hdf5_file(path) {
                Ok(())
            } else {
                Err(bad("HDF5 file", &"no HDF5 signature"))
            }
        }
        _ => Ok(()),
    }
}

/// Stores a received upload (`received`, a temporary file beside the target)
/// under its plan: compresses or verifies it, syncs it and renames it into
/// place. The temporary file is gone afterwards, whatever happens.
pub fn finish_upload(
    sd: &StateDir,
    plan: &UploadPlan,
    received: &Path,
    policy: &WritePolicy,
) -> Result<()> {
    let result = (|| {
        // The received bytes are on disk already; the file they replace goes.
        let replaced = fs::metadata(&plan.target).map(|m| m.len()).unwrap_or(0);
        sd.check_quota(policy, 0, replaced, "Upload")?;
        let raw_target = plan.target.with_extension("");
        if plan.compress && crate::container::h5::is_hdf5_file(received) {
            // An HDF5 file under any other name stays an HDF5 file: kept as
            // it is under its own name, so it can be browsed and unfolded
            // (the reference compresses it into an opaque `.b2`).
            verify_dataset(received, plan.logical.name())?;
            commit_replacing(received, &raw_target)?;
            let _ = fs::remove_file(&plan.target);
            Ok(())
        } else if plan.compress {
            let packed = temp_beside(&plan.target);
            let r = compress_file(received, &packed)
                .and_then(|()| commit_replacing(&packed, &plan.target));
            if r.is_err() {
                let _ = fs::remove_file(&packed);
            } else if crate::container::h5::is_hdf5_file(&raw_target) {
                // An HDF5 file this upload replaces.
                let _ = fs::remove_file(&raw_target);
            }
            r
        } else {
            verify_dataset(received, plan.logical.name())?;
            commit_replacing(received, &plan.target)
        }
    })();
    let _ = fs::remove_file(received);
    result
}

/// Compresses a file into an on-disk super-chunk frame, a chunk at a time.
pub fn compress_file(src: &Path, dst: &Path) -> Result<()> {
    let mut input = fs::File::open(src).map_err(|e| Error::io("opening", src, e))?;
    let mut sc = SChunk::create_file(dst, &CParams::zstd_shuffle(1))?;
    let mut buf = vec![0u8; BLOB_CHUNKSIZE];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = input
                .read(&mut buf[filled..])
                .map_err(|e| Error::io("reading", src, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        sc.append_buffer(&buf[..filled])?;
        if filled < buf.len() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(plan.target.ends_with("shared/dir1/notes.txt.b2"));
        // A path that does not exist is the file itself, even with a trailing slash.
        let p = DsPath::parse("@personal/dir9/").unwrap();
        let plan = plan_upload(&sd, &p, "x.b2nd", user(), &WritePolicy::default()).unwrap();
        assert_eq!(plan.logical.to_string(), "@personal/dir9");
        assert!(plan.target.ends_with("dir9.b2"));
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
        let tmpf = upload_temp(&plan).unwrap();
        fs::write(&tmpf, b"# hello\n".repeat(1000)).unwrap();
        finish_upload(&sd, &plan, &tmpf, &pol).unwrap();
        assert!(!tmpf.exists());
        assert_eq!(
            crate::blob::read_blob(&plan.target).unwrap(),
            b"# hello\n".repeat(1000)
        );

        let p = DsPath::parse("@shared/bad.b2nd").unwrap();
        let plan = plan_upload(&sd, &p, "upload", user(), &pol).unwrap();
        let tmpf = upload_temp(&plan).unwrap();
        fs::write(&tmpf, b"not a frame").unwrap();
        let err = finish_upload(&sd, &plan, &tmpf, &pol)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid Blosc2 array"), "{err}");
        assert!(!plan.target.exists() && !tmpf.exists());

        let tight = WritePolicy {
            quota: Some(10),
            ..pol
        };
        let p = DsPath::parse("@shared/big.txt").unwrap();
        let plan = plan_upload(&sd, &p, "upload", user(), &tight).unwrap();
        let tmpf = upload_temp(&plan).unwrap();
        fs::write(&tmpf, vec![b'x'; 100]).unwrap();
        let err = finish_upload(&sd, &plan, &tmpf, &tight)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "Upload failed because quota limit has been exceeded.");
    }
}
