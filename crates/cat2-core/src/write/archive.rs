//! Unpacking an uploaded `.zip`, `.tar`, `.tar.gz` or `.tgz` into a folder.
//!
//! Every member is stored the way an upload of it would be (Blosc2 and HDF5
//! files verbatim after a check, anything else compressed into `.b2`), through
//! [`plan_upload`] and [`finish_upload`], so the write rules, the quota and
//! the path rules are the API's. Before anything is written, the member names
//! are all checked: a member that would land outside the folder (`..`, an
//! absolute path), a name the path rules refuse (`path::check_new_name`: a
//! reserved name, a control character, a name too long to store), a link or
//! a device refuses the whole archive with a 400 naming it; hidden files (`.name`) and macOS resource
//! forks (`__MACOSX/`) are skipped, as the reference does. The uncompressed
//! total is checked against the quota first, so a small archive that would
//! inflate past it is refused before it fills the disk.

use std::io::{self, Read};

use super::upload::{finish_upload, plan_upload, upload_staging};
use super::{Appender, WritePolicy};
use crate::error::{Error, Result};
use crate::path::{check_new_name, DsPath};
use crate::storage::ReadAt;
use crate::store::{Caller, StateDir};

/// The kinds of archive unpacked, by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    Zip,
    Tar,
    TarGz,
}

impl ArchiveKind {
    /// The archive kind a file name says, and the name without its suffix
    /// (the folder it unpacks into).
    pub(crate) fn of(name: &str) -> Option<(ArchiveKind, &str)> {
        let lower = name.to_ascii_lowercase();
        for (suffix, kind) in [
            (".tar.gz", ArchiveKind::TarGz),
            (".tgz", ArchiveKind::TarGz),
            (".tar", ArchiveKind::Tar),
            (".zip", ArchiveKind::Zip),
        ] {
            if lower.ends_with(suffix) && name.len() > suffix.len() {
                return Some((kind, &name[..name.len() - suffix.len()]));
            }
        }
        None
    }
}

/// Checks a member name; `Ok(None)` for members skipped (hidden files,
/// macOS resource forks, directories).
fn member_parts(name: &str) -> Result<Option<Vec<String>>> {
    let refuse = |why: &str| {
        Err(Error::BadRequest(format!(
            "archive member {name:?} {why}; nothing was unpacked"
        )))
    };
    if name.starts_with('/') || name.starts_with('\\') || name.contains('\0') {
        return refuse("has an absolute path");
    }
    let parts: Vec<&str> = name
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return refuse("would land outside the folder");
    }
    if parts
        .first()
        .is_some_and(|p| p.len() == 2 && p.ends_with(':'))
    {
        return refuse("has an absolute path");
    }
    if parts.iter().any(|p| p.starts_with('.') || *p == "__MACOSX") || parts.is_empty() {
        return Ok(None);
    }
    for p in &parts {
        if let Err(e) = check_new_name(p) {
            return refuse(&format!("cannot be stored: {e}"));
        }
    }
    Ok(Some(parts.iter().map(|p| p.to_string()).collect()))
}

fn bad_archive(name: &str, e: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{name} is not a readable archive: {e}"))
}

/// Unpacks the archive `file` (uploaded as `name`) into the folder `dir/<stem>`;
/// answers the paths stored, in archive order.
pub fn unpack(
    sd: &StateDir,
    file: &dyn ReadAt,
    name: &str,
    dir: &DsPath,
    caller: Caller<'_>,
    policy: &WritePolicy,
) -> Result<Vec<DsPath>> {
    let (kind, stem) = ArchiveKind::of(name)
        .ok_or_else(|| Error::BadRequest(format!("{name} is not a .zip, .tar or .tar.gz file")))?;
    sd.writable_root(dir.root(), caller, policy)?;
    let folder = dir.join(stem);
    // First pass: every name checked, sizes added, nothing written.
    let mut sizes = Vec::new();
    each_member(kind, file, name, |member_name, size, regular, _| {
        if !regular {
            if member_parts(member_name)?.is_some() {
                return Err(Error::BadRequest(format!(
                    "archive member {member_name:?} is a link or a special file; nothing was unpacked"
                )));
            }
            return Ok(());
        }
        if member_parts(member_name)?.is_some() {
            sizes.push(size);
        }
        Ok(())
    })?;
    if sizes.is_empty() {
        return Err(Error::BadRequest(format!(
            "{name} holds no files to unpack"
        )));
    }
    let total = sizes.iter().fold(0u64, |a, &b| a.saturating_add(b));
    sd.check_quota(policy, total, 0, "Upload")?;
    // Second pass: each member streamed into its own temporary file, stored like an upload.
    let mut stored = Vec::new();
    each_member(kind, file, name, |member_name, _, regular, reader| {
        if !regular {
            return Ok(());
        }
        let Some(parts) = member_parts(member_name)? else {
            return Ok(());
        };
        let logical = folder.join(&parts.join("/"));
        let plan = plan_upload(
            sd,
            &logical,
            parts.last().map_or("", String::as_str),
            caller,
            policy,
        )?;
        let staged = upload_staging(sd, &plan)?;
        io::copy(reader, &mut Appender(staged.io()))
            .map_err(|e| Error::io("unpacking into", plan.target.as_str(), e))?;
        finish_upload(sd, &plan, staged, policy)?;
        stored.push(plan.logical);
        Ok(())
    })?;
    Ok(stored)
}

/// Calls `f(name, size, is_regular_file, reader)` for every member, in order.
fn each_member(
    kind: ArchiveKind,
    file: &dyn ReadAt,
    name: &str,
    mut f: impl FnMut(&str, u64, bool, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let open = || -> Result<crate::frames::Cursor<'_>> { Ok(crate::frames::Cursor::new(file)) };
    match kind {
        ArchiveKind::Zip => {
            let mut zip = zip::ZipArchive::new(open()?).map_err(|e| bad_archive(name, e))?;
            for i in 0..zip.len() {
                let mut entry = zip.by_index(i).map_err(|e| bad_archive(name, e))?;
                if entry.is_dir() {
                    continue;
                }
                let member = entry.name().map_err(|e| bad_archive(name, e))?.to_string();
                let regular = entry.is_file() && !entry.is_symlink();
                let size = entry.size();
                f(&member, size, regular, &mut entry)?;
            }
            Ok(())
        }
        ArchiveKind::Tar | ArchiveKind::TarGz => {
            let input: Box<dyn Read> = if kind == ArchiveKind::TarGz {
                Box::new(flate2::read::GzDecoder::new(io::BufReader::new(open()?)))
            } else {
                Box::new(io::BufReader::new(open()?))
            };
            let mut tar = tar::Archive::new(input);
            for entry in tar.entries().map_err(|e| bad_archive(name, e))? {
                let mut entry = entry.map_err(|e| bad_archive(name, e))?;
                let kind = entry.header().entry_type();
                if kind.is_dir()
                    || kind.is_pax_global_extensions()
                    || kind.is_pax_local_extensions()
                {
                    continue;
                }
                let member = entry
                    .path()
                    .map_err(|e| bad_archive(name, e))?
                    .to_string_lossy()
                    .into_owned();
                let size = entry.size();
                f(&member, size, kind.is_file(), &mut entry)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_say_their_kind_and_folder() {
        assert_eq!(
            ArchiveKind::of("data.zip"),
            Some((ArchiveKind::Zip, "data"))
        );
        assert_eq!(
            ArchiveKind::of("run.tar.gz"),
            Some((ArchiveKind::TarGz, "run"))
        );
        assert_eq!(
            ArchiveKind::of("run.TGZ"),
            Some((ArchiveKind::TarGz, "run"))
        );
        assert_eq!(ArchiveKind::of("x.tar"), Some((ArchiveKind::Tar, "x")));
        assert_eq!(ArchiveKind::of(".zip"), None);
        assert_eq!(ArchiveKind::of("notes.txt"), None);
    }

    #[test]
    fn member_names_are_checked() {
        let ok = |n: &str| member_parts(n).unwrap();
        assert_eq!(ok("a/b.txt"), Some(vec!["a".into(), "b.txt".into()]));
        assert_eq!(ok("./a//b.txt"), Some(vec!["a".into(), "b.txt".into()]));
        assert_eq!(ok(".hidden"), None);
        assert_eq!(ok("__MACOSX/a/._b"), None);
        assert_eq!(ok("a/.git/config"), None);
        assert_eq!(ok("a/.cat2rs-tmp-1"), None);
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "C:/x",
            "a\\..\\x",
            "a/x.b2lock",
            "a/b\u{1}.txt",
            "a/\u{202e}txt.exe",
        ] {
            assert!(member_parts(bad).is_err(), "{bad}");
        }
        let long = format!("a/{}.txt", "n".repeat(250));
        match member_parts(&long) {
            Err(Error::BadRequest(msg)) => assert!(msg.contains("at most 245 bytes"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}
