//! The state directory and how logical paths map onto it.
//!
//! Layout (shared with the reference Caterva2 server, so both can take turns
//! on one directory): `public/`, `shared/`, `personal/<user uuid>/`,
//! `db.sqlite`, `db.json`, `peer_id`, `media/`. Nothing is cached: every
//! request looks at the filesystem, so files written by another process are
//! seen at once.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::path::{is_container_name, is_stored_verbatim, DsPath, Root};

pub use crate::path::TEMP_PREFIX;

/// A Caterva2 state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// Who is asking: the user id (a lowercase hyphenated UUID) when logged in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    pub user_id: Option<&'a str>,
    pub is_superuser: bool,
}

/// What a logical path names on disk.
#[derive(Debug, Clone)]
pub struct Located {
    pub logical: DsPath,
    /// The file or directory on disk (for regular files: the `.b2` file; for
    /// a path inside a container: the container file).
    pub fs: PathBuf,
    pub entry: Entry,
    /// For [`Entry::Member`]: the key inside the container (`/g/a`).
    pub inner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Dir,
    /// A file stored under its own name (`.b2nd`, `.b2frame`, `.h5`, ...).
    Dataset,
    /// A regular file stored compressed as `<name>.b2`.
    Blob,
    /// A path inside a container file (`x.b2z/g/a`): [`Located::fs`] is the
    /// container and [`Located::inner`] the key. Whether the key names a
    /// leaf, a group or nothing is for the container to say.
    Member,
    Missing,
}

impl StateDir {
    /// Opens (creating it and its layout if needed) a state directory.
    pub fn open(dir: &Path) -> Result<StateDir> {
        fs::create_dir_all(dir).map_err(|e| Error::io("creating state dir", dir, e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| Error::io("resolving state dir", dir, e))?;
        for sub in ["public", "shared", "personal", "media"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| Error::io("creating", &p, e))?;
        }
        let db_json = dir.join("db.json");
        if !db_json.exists() {
            write_small_file(&db_json, b"{}")?;
        }
        let peer_id = dir.join("peer_id");
        if !peer_id.exists() {
            write_small_file(&peer_id, random_hex32().as_bytes())?;
        }
        Ok(StateDir { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The directory of a root for this caller; `@shared` and `@personal`
    /// need a logged-in user.
    pub fn root_dir(&self, root: Root, caller: Caller<'_>) -> Result<PathBuf> {
        match (root, caller.user_id) {
            (Root::Public, _) => Ok(self.dir.join("public")),
            (Root::Shared, Some(_)) => Ok(self.dir.join("shared")),
            (Root::Personal, Some(uid)) => {
                if uid.is_empty() || uid.contains(['/', '\\', '.']) {
                    return Err(Error::Unauthorized);
                }
                Ok(self.dir.join("personal").join(uid))
            }
            (_, None) => Err(Error::Unauthorized),
        }
    }

    /// Finds what a logical path names, applying the `.b2` rule for regular files.
    pub fn locate(&self, p: &DsPath, caller: Caller<'_>) -> Result<Located> {
        let base = self.root_dir(p.root(), caller)?;
        let mut fs_path = base.clone();
        for part in p.parts() {
            fs_path.push(part);
        }
        let located = |fs: PathBuf, entry| Located {
            logical: p.clone(),
            fs,
            entry,
            inner: None,
        };
        if p.is_root() || fs_path.is_dir() {
            return Ok(located(fs_path, Entry::Dir));
        }
        if let Some((container, inner)) = split_container(&base, p.parts()) {
            let entry = if container.is_file() {
                Entry::Member
            } else {
                Entry::Missing
            };
            return Ok(Located {
                inner: Some(inner),
                ..located(container, entry)
            });
        }
        if is_stored_verbatim(p.name()) {
            let entry = if fs_path.is_file() {
                Entry::Dataset
            } else {
                Entry::Missing
            };
            return Ok(located(fs_path, entry));
        }
        let b2 = with_b2(&fs_path);
        if b2.is_file() {
            return Ok(located(b2, Entry::Blob));
        }
        if fs_path.is_file() {
            // An HDF5 file is one whatever its name (uploads keep them as
            // they are): it is served in place, never compressed.
            if crate::container::h5::is_hdf5_file(&fs_path) {
                return Ok(located(fs_path, Entry::Dataset));
            }
            // A plain file dropped into a root by hand: store it the way
            // every other regular file is stored, as the reference does.
            compress_in_place(&fs_path, &b2)?;
            return Ok(located(b2, Entry::Blob));
        }
        Ok(located(fs_path, Entry::Missing))
    }
}

/// Where a path descends into a container file: the first component (but
/// the last) whose suffix is a container's and which is not a directory (a
/// directory merely named like one is walked through, as the reference
/// does). Returns the container's path and the inner key (`/g/a`).
fn split_container(base: &Path, parts: &[String]) -> Option<(PathBuf, String)> {
    let mut fs = base.to_path_buf();
    for (i, part) in parts.iter().enumerate().take(parts.len().saturating_sub(1)) {
        fs.push(part);
        let container = if is_container_name(part) {
            !fs.is_dir()
        } else {
            // An HDF5 file under another name (kept as is by uploads).
            fs.is_file() && crate::container::h5::is_hdf5_file(&fs)
        };
        if container {
            return Some((fs, format!("/{}", parts[i + 1..].join("/"))));
        }
    }
    None
}

/// `<path>.b2`.
pub fn with_b2(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".b2");
    PathBuf::from(s)
}

/// Compresses a plain file into `<file>.b2` (atomically), then removes it.
fn compress_in_place(src: &Path, dst: &Path) -> Result<()> {
    let data = fs::read(src).map_err(|e| Error::io("reading", src, e))?;
    let frame = crate::blob::compress_blob(&data)?;
    write_atomic(dst, &frame)?;
    fs::remove_file(src).map_err(|e| Error::io("removing", src, e))?;
    Ok(())
}

/// Writes `data` to a temporary file beside `dst`, syncs it and renames it
/// into place, so readers see either the old file or the complete new one.
pub fn write_atomic(dst: &Path, data: &[u8]) -> Result<()> {
    let parent = dst.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    let tmp = parent.join(format!("{TEMP_PREFIX}{}", random_hex32()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        f.write_all(data)
            .map_err(|e| Error::io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        fs::rename(&tmp, dst).map_err(|e| Error::io("renaming into", dst, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_small_file(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic(path, data)
}

/// 32 random hex digits (a uuid4-like token), from the OS random source.
pub fn random_hex32() -> String {
    let mut bytes = [0u8; 16];
    let ok = fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !ok {
        // Fall back to time and address entropy; only used for file names.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let addr = &bytes as *const _ as usize as u128;
        bytes = (t ^ addr.rotate_left(64)).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(sd.root_dir(Root::Public, anon).is_ok());
        assert!(matches!(
            sd.root_dir(Root::Shared, anon),
            Err(Error::Unauthorized)
        ));
        assert!(matches!(
            sd.root_dir(Root::Personal, anon),
            Err(Error::Unauthorized)
        ));
    }

    #[test]
    fn regular_files_resolve_to_b2() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        fs::write(sd.path().join("public/notes.txt"), b"hello").unwrap();
        let p = DsPath::parse("@public/notes.txt").unwrap();
        let loc = sd.locate(&p, Caller::default()).unwrap();
        assert_eq!(loc.entry, Entry::Blob);
        assert!(loc.fs.ends_with("notes.txt.b2"));
        assert!(!sd.path().join("public/notes.txt").exists());
        let again = sd.locate(&p, Caller::default()).unwrap();
        assert_eq!(again.entry, Entry::Blob);
        let data = crate::blob::read_blob(&again.fs).unwrap();
        assert_eq!(data, b"hello");
    }

    #[test]
    fn missing_and_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        fs::create_dir(sd.path().join("public/d")).unwrap();
        let c = Caller::default();
        let d = sd.locate(&DsPath::parse("@public/d").unwrap(), c).unwrap();
        assert_eq!(d.entry, Entry::Dir);
        let m = sd
            .locate(&DsPath::parse("@public/x.b2nd").unwrap(), c)
            .unwrap();
        assert_eq!(m.entry, Entry::Missing);
    }
}
