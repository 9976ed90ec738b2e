//! Moving, copying and removing datasets and directories.
//!
//! Caterva2's rules (protocol.md §5.14–5.15, S11, S13): both ends must be in
//! a built-in root; a destination that is a directory, or has no suffix, is a
//! directory the item goes into under its own name; a regular file keeps its
//! `.b2` storage name; removing a directory removes it entirely.

use super::lock::lock_fillable;
use super::WritePolicy;
use crate::error::{Error, Result};
use crate::node::logical_name;
use crate::path::{suffix, DsPath};
use crate::resolve::Resolver;
use crate::storage::{walk, Entry, Key};
use crate::store::{Caller, StateDir};

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
    let node = Resolver::new(sd, caller).resolve(src)?;
    let Some((from, from_is_dir)) = node.stored_key() else {
        return Err(Error::NotFound {
            path: src.to_string(),
        });
    };
    if src.is_root() {
        return Err(Error::BadRequest(format!(
            "{src} is a root; {} it is not possible",
            kind.verb()
        )));
    }
    if kind == Transfer::Move {
        // Moving takes the source away: its root must be writable too.
        sd.writable_root(src.root(), caller, policy)?;
    }
    let to = sd.writable_key(dst, caller, policy)?;
    let stored_name = from.name().to_string();
    let into_dir = dst.is_root()
        || matches!(sd.entry(&to)?, Some(Entry::Dir { .. }))
        || suffix(dst.name()).is_empty();
    let (logical, mut target) = if into_dir {
        let name = logical_name(&stored_name).to_string();
        // The name is the source's, which may be one the server would not
        // create (a file put in the state directory by hand): it must meet
        // the rules for new names like any name a write makes.
        crate::path::check_new_name(&name)?;
        (dst.join(&name), to.join(&stored_name)?)
    } else {
        (dst.clone(), to)
    };
    // A regular file addressed by its logical name keeps its storage name.
    let regular_file = stored_name.ends_with(".b2") && stored_name != src.name();
    if regular_file && !target.name().ends_with(".b2") {
        target = target.with_suffix(".b2")?;
    }
    if target.starts_with(&from) {
        return Err(Error::BadRequest(format!(
            "{} {src} into itself is not possible",
            kind.verb()
        )));
    }
    let storage = sd.storage();
    if kind == Transfer::Copy {
        let size = tree_size(sd, &from, from_is_dir)?;
        let replaced = match sd.entry(&target)? {
            Some(Entry::Dir { .. }) => tree_size(sd, &target, true)?,
            Some(Entry::Object(m)) => m.size,
            None => 0,
        };
        sd.check_quota(policy, size, replaced, "Copy")?;
    }
    if let Some(parent) = target.parent() {
        storage.create_dir(&parent)?;
    }
    // A moved array is taken from under its chunk writers, and a replaced
    // one must not be renamed back by one (directories are not covered).
    let _locks = match kind {
        Transfer::Move => lock_fillable(storage, &[&from, &target])?,
        Transfer::Copy => lock_fillable(storage, &[&target])?,
    };
    match kind {
        Transfer::Move => storage.rename(&from, &target)?,
        Transfer::Copy => storage.copy(&from, &target)?,
    }
    Ok(logical)
}

/// Bytes stored at `key`: an object's size, or every object below a directory.
fn tree_size(sd: &StateDir, key: &Key, is_dir: bool) -> Result<u64> {
    if !is_dir {
        return Ok(sd.object_size(key));
    }
    Ok(walk(sd.storage(), key)?.iter().map(|(_, m)| m.size).sum())
}

/// Removes a file (its exact name, else its `.b2` storage) or a whole
/// directory; returns the key removed.
pub fn remove(
    sd: &StateDir,
    path: &DsPath,
    caller: Caller<'_>,
    policy: &WritePolicy,
) -> Result<Key> {
    let key = sd.writable_key(path, caller, policy)?;
    if path.is_root() {
        return Err(Error::BadRequest(format!(
            "{path} is a root and cannot be removed"
        )));
    }
    let storage = sd.storage();
    let missing = || Error::Missing("The specified path does not exist".into());
    let target = match sd.entry(&key)? {
        Some(Entry::Dir { .. }) => {
            storage.delete_dir(&key)?;
            return Ok(key);
        }
        Some(Entry::Object(_)) => key,
        None => {
            let b2 = key.with_suffix(".b2")?;
            match sd.entry(&b2)? {
                Some(Entry::Object(_)) => b2,
                _ => return Err(missing()),
            }
        }
    };
    let _locks = lock_fillable(storage, &[&target])?;
    storage.delete(&target)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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
    fn names_put_in_by_hand_meet_the_rules_when_copied_or_moved_into_a_directory() {
        let (_t, sd) = setup();
        let pol = WritePolicy::default();
        // 250 bytes: a file system takes it, but not with a `.b2lock` beside it.
        let long = format!("{}.b2nd", "n".repeat(245));
        fs::write(sd.path().join("shared").join(&long), b"L").unwrap();
        for kind in [Transfer::Copy, Transfer::Move] {
            let err = transfer(
                &sd,
                kind,
                &p(&format!("@shared/{long}")),
                &p("@shared/d"),
                user(),
                &pol,
            )
            .unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{err}");
            assert!(err.to_string().contains("at most 245 bytes"), "{err}");
        }
        assert!(sd.path().join("shared").join(&long).is_file());
        assert!(!sd.path().join("shared/d").join(&long).exists());
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
