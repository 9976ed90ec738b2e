//! Recursive listings, the way Caterva2 presents them: files only, paths
//! relative to the listed directory, `.b2` stripped from stored regular
//! files, sorted by bytes (Python's string order).

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::path::is_container_name;
use crate::store::{Entry, Located, TEMP_PREFIX};

/// Lists what a located path holds.
///
/// A directory lists every file below it; a dataset lists its own name; a
/// `.b2z` store (or a group in it) lists the leaves below, relative to it; a
/// missing path lists nothing (Caterva2 answers `[]`, not 404).
pub fn list(loc: &Located) -> Result<Vec<String>> {
    match loc.entry {
        Entry::Dir => {
            let mut out = Vec::new();
            if loc.fs.is_dir() {
                walk(&loc.fs, "", &mut out)?;
            }
            out.sort_unstable();
            Ok(out)
        }
        // A regular file addressed by its logical name lists as [] in the
        // reference (its lookup does not add `.b2`); keep that.
        Entry::Blob => Ok(Vec::new()),
        Entry::Dataset
            if is_container_name(loc.logical.name())
                || crate::dataset::FileKind::of(loc) == Some(crate::dataset::FileKind::Hdf5) =>
        {
            Ok(crate::container::browse::list_store(loc))
        }
        Entry::Dataset => Ok(vec![loc.logical.name().to_string()]),
        Entry::Member => crate::container::browse::list_member(loc),
        Entry::Missing => Ok(Vec::new()),
    }
}

/// Whether a directory entry is internal to the server and never shown.
pub fn is_hidden(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) || name.ends_with(".b2lock")
}

/// The logical name of a stored file name (`README.md.b2` → `README.md`).
pub fn logical_name(stored: &str) -> &str {
    stored.strip_suffix(".b2").unwrap_or(stored)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let rd = fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_hidden(&name) {
            continue;
        }
        let path = entry.path();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        // Follow symlinks like the reference does (metadata, not symlink_metadata).
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, &rel, out)?;
        } else if meta.is_file() {
            out.push(logical_name(&rel).to_string());
        }
    }
    Ok(())
}

/// Total size in bytes and number of files below a directory.
pub fn dir_usage(dir: &Path) -> Result<(u64, u64)> {
    let mut size = 0;
    let mut nfiles = 0;
    if !dir.is_dir() {
        return Ok((0, 0));
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = fs::read_dir(&d).map_err(|e| Error::io("listing", &d, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("listing", &d, e))?;
            let name = entry.file_name();
            if is_hidden(&name.to_string_lossy()) {
                continue;
            }
            let Ok(meta) = fs::metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                size += meta.len();
                nfiles += 1;
            }
        }
    }
    Ok((size, nfiles))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::DsPath;
    use crate::store::{Caller, StateDir};

    #[test]
    fn lists_recursively_sorted_and_stripped() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        let public = sd.path().join("public");
        fs::create_dir_all(public.join("dir1")).unwrap();
        fs::write(public.join("dir1/b.b2nd"), b"x").unwrap();
        fs::write(public.join("README.md.b2"), b"x").unwrap();
        fs::write(public.join("a.b2frame"), b"x").unwrap();
        fs::write(public.join(format!("{TEMP_PREFIX}x")), b"x").unwrap();
        let loc = sd
            .locate(&DsPath::parse("@public").unwrap(), Caller::default())
            .unwrap();
        assert_eq!(
            list(&loc).unwrap(),
            ["README.md", "a.b2frame", "dir1/b.b2nd"]
        );
        let sub = sd
            .locate(&DsPath::parse("@public/dir1").unwrap(), Caller::default())
            .unwrap();
        assert_eq!(list(&sub).unwrap(), ["b.b2nd"]);
        let file = sd
            .locate(
                &DsPath::parse("@public/dir1/b.b2nd").unwrap(),
                Caller::default(),
            )
            .unwrap();
        assert_eq!(list(&file).unwrap(), ["b.b2nd"]);
        assert_eq!(dir_usage(&public).unwrap(), (3, 3));
    }
}
