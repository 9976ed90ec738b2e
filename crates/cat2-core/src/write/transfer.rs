//! Moving, copying and removing datasets and directories.
//!
//! Caterva2's rules (protocol.md §5.14–5.15, S11, S13): both ends must be in
//! a built-in root; a destination that is a directory, or has no suffix, is a
//! directory the item goes into under its own name; a regular file keeps its
//! `.b2` storage name; removing a directory removes it entirely.

use std::fs;
use std::path::{Path, PathBuf};

use super::{commit, make_parents, temp_beside, WritePolicy};
use crate::error::{Error, Result};
use crate::listing::logical_name;
use crate::path::{suffix, DsPath};
use crate::store::{Caller, Entry, StateDir};

/// Move or copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Move,
    Copy,
}

impl Transfer {
    fn verb(self) -> &'static str {
        match self {
            Transfer::Move => "moving",
            Transfer::Copy => "copying",
        }
    }
}

const ROOTS: [&str; 3] = ["@personal", "@shared", "@public"];

/// Checks the raw `src`/`dst` strings the way the reference does (a prefix
/// test, with its error texts), then parses them.
pub fn parse_ends(kind: Transfer, src: &str, dst: &str) -> Result<(DsPath, DsPath)> {
    let verb = match kind {
        Transfer::Move => "moving",
        Transfer::Copy => "copying",
    };
    if !ROOTS.iter().any(|r| src.starts_with(r)) {
        return Err(Error::BadRequest(format!(
            "Only {verb} from @personal or @shared or @public roots is allowed"
        )));
    }
    if !ROOTS.iter().any(|r| dst.starts_with(r)) {
        return Err(Error::BadRequest(format!(
            "Only {verb} to @personal or @shared or @public roots is allowed"
        )));
    }
    Ok((DsPath::parse(src)?, DsPath::parse(dst)?))
}

/// Moves or copies `src` to `dst`; returns the logical destination.
pub fn transfer(
    sd: &StateDir,
    kind: Transfer,
    src: &DsPath,
    dst: &DsPath,
    caller: Caller<'_>,
    policy: &WritePolicy,
) -> Result<DsPath> {
    let from = sd.locate(src, caller)?;
    if from.entry == Entry::Missing {
        return Err(Error::NotFound {
            path: src.to_string(),
        });
    }
    if src.is_root() {
        return Err(Error::BadRequest(format!(
            "{src} is a root; {} it is not possible",
            kind.verb()
        )));
    }
    if kind == Transfer::Move {
        // Moving takes the source away: its root must be writable too.
        sd.writable_dir(src.root(), caller, policy)?;
    }
    let mut to = sd.writable_dir(dst.root(), caller, policy)?;
    for part in dst.parts() {
        to.push(part);
    }
    let stored_name = from
        .fs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let into_dir = dst.is_root() || to.is_dir() || suffix(dst.name()).is_empty();
    let (logical, mut target) = if into_dir {
        let name = logical_name(&stored_name).to_string();
        (dst.join(&name), to.join(&stored_name))
    } else {
        (dst.clone(), to)
    };
    if from.entry == Entry::Blob && !target.to_string_lossy().ends_with(".b2") {
        target = crate::store::with_b2(&target);
    }
    if target.starts_with(&from.fs) {
        return Err(Error::BadRequest(format!(
            "{} {src} into itself is not possible",
            kind.verb()
        )));
    }
    if kind == Transfer::Copy {
        let size = if from.entry == Entry::Dir {
            crate::listing::dir_usage(&from.fs)?.0
        } else {
            fs::metadata(&from.fs).map(|m| m.len()).unwrap_or(0)
        };
        let replaced = if target.is_dir() {
            crate::listing::dir_usage(&target)?.0
        } else {
            fs::metadata(&target).map(|m| m.len()).unwrap_or(0)
        };
        sd.check_quota(policy, size, replaced, "Copy")?;
    }
    make_parents(&target)?;
    // A moved array is taken from under its chunk writers, and a replaced
    // one must not be renamed back by one (directories are not covered).
    let _locks = match kind {
        Transfer::Move => super::lock::lock_fillable(&[&from.fs, &target])?,
        Transfer::Copy => super::lock::lock_fillable(&[&target])?,
    };
    match kind {
        Transfer::Move => replace_with(&target, |dst| {
            fs::rename(&from.fs, dst).map_err(|e| Error::io("moving", &from.fs, e))
        })?,
        Transfer::Copy => {
            let staged = temp_beside(&target);
            let r = copy_tree(&from.fs, &staged).and_then(|()| {
                if staged.is_file() {
                    commit(&staged, &staged)?;
                }
                replace_with(&target, |dst| {
                    fs::rename(&staged, dst).map_err(|e| Error::io("renaming into", dst, e))
                })
            });
            if r.is_err() {
                let _ = remove_any(&staged);
            }
            r?
        }
    }
    Ok(logical)
}

/// Puts something at `target` with `place`, replacing what was there: a file
/// is replaced atomically by rename; a directory is first moved aside.
fn replace_with(target: &Path, place: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if target.is_dir() {
        let aside = temp_beside(target);
        fs::rename(target, &aside).map_err(|e| Error::io("moving aside", target, e))?;
        let r = place(target);
        if r.is_err() {
            let _ = fs::rename(&aside, target);
        } else {
            let _ = fs::remove_dir_all(&aside);
        }
        r
    } else {
        place(target)
    }
}

fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let meta = fs::metadata(src).map_err(|e| Error::io("stat", src, e))?;
    if meta.is_dir() {
        fs::create_dir_all(dst).map_err(|e| Error::io("creating", dst, e))?;
        for entry in fs::read_dir(src).map_err(|e| Error::io("listing", src, e))? {
            let entry = entry.map_err(|e| Error::io("listing", src, e))?;
            let name = entry.file_name();
            if crate::listing::is_hidden(&name.to_string_lossy()) {
                continue;
            }
            copy_tree(&entry.path(), &dst.join(name))?;
        }
        Ok(())
    } else {
        fs::copy(src, dst)
            .map(drop)
            .map_err(|e| Error::io("copying", src, e))
    }
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Removes a file (its exact name, else its `.b2` storage) or a whole
/// directory; returns what was removed on disk.
pub fn remove(
    sd: &StateDir,
    path: &DsPath,
    caller: Caller<'_>,
    policy: &WritePolicy,
) -> Result<PathBuf> {
    let mut fs_path = sd.writable_dir(path.root(), caller, policy)?;
    if path.is_root() {
        return Err(Error::BadRequest(format!(
            "{path} is a root and cannot be removed"
        )));
    }
    for part in path.parts() {
        fs_path.push(part);
    }
    let missing = || Error::Missing("The specified path does not exist".into());
    if fs_path.is_dir() {
        // Renamed aside first, so the directory vanishes at once for readers.
        let aside = temp_beside(&fs_path);
        fs::rename(&fs_path, &aside).map_err(|e| Error::io("removing", &fs_path, e))?;
        fs::remove_dir_all(&aside).map_err(|e| Error::io("removing", &aside, e))?;
        return Ok(fs_path);
    }
    let target = if fs_path.is_file() {
        fs_path
    } else {
        let b2 = crate::store::with_b2(&fs_path);
        if b2.is_file() {
            b2
        } else {
            return Err(missing());
        }
    };
    let _locks = super::lock::lock_fillable(&[&target])?;
    fs::remove_file(&target).map_err(|e| Error::io("removing", &target, e))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Caller<'static> {
        Caller {
            user_id: Some("f4e7e458-4fa4-4a4f-8546-7e6e021d6eda"),
            is_superuser: true,
        }
    }

    fn setup() -> (tempfile::TempDir, StateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        fs::create_dir_all(sd.path().join("shared/d")).unwrap();
        fs::write(sd.path().join("shared/d/a.b2nd"), b"A").unwrap();
        fs::write(sd.path().join("shared/notes.txt.b2"), b"N").unwrap();
        (tmp, sd)
    }

    fn p(s: &str) -> DsPath {
        DsPath::parse(s).unwrap()
    }

    #[test]
    fn prefix_rules_use_the_reference_texts() {
        let e = parse_ends(Transfer::Move, "foo", "@shared/x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Only moving from @personal or @shared or @public roots is allowed"
        );
        let e = parse_ends(Transfer::Copy, "@shared/x", "..").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Only copying to @personal or @shared or @public roots is allowed"
        );
    }

    #[test]
    fn no_suffix_means_directory_and_blobs_keep_b2() {
        let (_t, sd) = setup();
        let pol = WritePolicy::default();
        let got = transfer(
            &sd,
            Transfer::Copy,
            &p("@shared/notes.txt"),
            &p("@shared/newdir"),
            user(),
            &pol,
        )
        .unwrap();
        assert_eq!(got.to_string(), "@shared/newdir/notes.txt");
        assert!(sd.path().join("shared/newdir/notes.txt.b2").is_file());
        let got = transfer(
            &sd,
            Transfer::Move,
            &p("@shared/d/a.b2nd"),
            &p("@shared/b.b2nd"),
            user(),
            &pol,
        )
        .unwrap();
        assert_eq!(got.to_string(), "@shared/b.b2nd");
        assert!(!sd.path().join("shared/d/a.b2nd").exists());
        assert_eq!(fs::read(sd.path().join("shared/b.b2nd")).unwrap(), b"A");
        let got = transfer(
            &sd,
            Transfer::Copy,
            &p("@shared/d"),
            &p("@shared/e"),
            user(),
            &pol,
        )
        .unwrap();
        assert_eq!(got.to_string(), "@shared/e/d");
        assert!(sd.path().join("shared/e/d").is_dir());
    }

    #[test]
    fn missing_sources_and_self_nesting_are_refused() {
        let (_t, sd) = setup();
        let pol = WritePolicy::default();
        assert!(matches!(
            transfer(
                &sd,
                Transfer::Move,
                &p("@shared/nope.b2nd"),
                &p("@shared/x.b2nd"),
                user(),
                &pol
            ),
            Err(Error::NotFound { .. })
        ));
        assert!(transfer(
            &sd,
            Transfer::Move,
            &p("@shared/d"),
            &p("@shared/d/inner"),
            user(),
            &pol
        )
        .is_err());
    }

    #[test]
    fn remove_takes_directories_whole_and_finds_b2() {
        let (_t, sd) = setup();
        let pol = WritePolicy::default();
        remove(&sd, &p("@shared/notes.txt"), user(), &pol).unwrap();
        assert!(!sd.path().join("shared/notes.txt.b2").exists());
        remove(&sd, &p("@shared/d"), user(), &pol).unwrap();
        assert!(!sd.path().join("shared/d").exists());
        let e = remove(&sd, &p("@shared/d"), user(), &pol).unwrap_err();
        assert_eq!(e.to_string(), "The specified path does not exist");
    }
}
