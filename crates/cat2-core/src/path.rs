//! Logical dataset paths (`@public/dir/x.b2nd`), checked once at the edge.
//!
//! After [`DsPath::parse`] a path has a known root and only normal
//! components: no `..`, no `.`, no empty segments, no NUL bytes (a path
//! with one names nothing and is [`Error::NotFound`]). Code further
//! in can join it under a root directory without re-checking.

use std::fmt;

use crate::error::{Error, Result};

pub(crate) use crate::storage::key::is_reserved_name;

/// The built-in roots of a Caterva2 server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    /// `@public`: readable by anyone.
    Public,
    /// `@shared`: readable and writable by every logged-in user.
    Shared,
    /// `@personal`: each user's own directory.
    Personal,
}

impl Root {
    pub fn name(self) -> &'static str {
        match self {
            Root::Public => "@public",
            Root::Shared => "@shared",
            Root::Personal => "@personal",
        }
    }

    pub fn from_name(name: &str) -> Option<Root> {
        match name {
            "@public" => Some(Root::Public),
            "@shared" => Some(Root::Shared),
            "@personal" => Some(Root::Personal),
            _ => None,
        }
    }

    /// Whether reading needs a logged-in user.
    pub fn needs_user(self) -> bool {
        !matches!(self, Root::Public)
    }
}

/// A checked logical path: a root plus normal components.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DsPath {
    root: Root,
    parts: Vec<String>,
}

impl DsPath {
    /// Parses an already percent-decoded path such as `@public//dir/x.b2nd/`.
    ///
    /// Repeated and trailing slashes and `.` components are dropped, a `..`
    /// component is refused (400), and an unknown root is [`Error::NotFound`].
    pub fn parse(raw: &str) -> Result<DsPath> {
        let mut comps = raw.split('/').filter(|c| !c.is_empty() && *c != ".");
        let first = comps.next().unwrap_or("");
        let root = Root::from_name(first).ok_or_else(|| Error::NotFound {
            path: raw.to_string(),
        })?;
        let mut parts = Vec::new();
        for c in comps {
            if c == ".." {
                return Err(Error::BadRequest(format!(
                    "{raw} climbs out of {}, which is where it may write",
                    root.name()
                )));
            }
            if is_reserved_name(c) {
                return Err(Error::NotFound {
                    path: raw.to_string(),
                });
            }
            if c.contains('\0') {
                // No file (and no key inside a container) has a NUL in its
                // name, so such a path names nothing: 404, as the reference.
                return Err(Error::NotFound {
                    path: raw.to_string(),
                });
            }
            parts.push(c.to_string());
        }
        Ok(DsPath { root, parts })
    }

    pub fn root(&self) -> Root {
        self.root
    }

    /// Components below the root.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The last component (the root's name for a root).
    pub fn name(&self) -> &str {
        self.parts.last().map_or(self.root.name(), String::as_str)
    }

    /// The path below the root, `/`-joined (empty for the root itself).
    pub fn rel(&self) -> String {
        self.parts.join("/")
    }

    /// A child path.
    pub fn join(&self, name: &str) -> DsPath {
        let mut parts = self.parts.clone();
        parts.extend(
            name.split('/')
                .filter(|c| !c.is_empty() && *c != "." && *c != "..")
                .map(str::to_string),
        );
        DsPath {
            root: self.root,
            parts,
        }
    }
}

impl fmt::Display for DsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.name())?;
        for p in &self.parts {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

/// The suffix of a file name, with the dot (`".b2nd"`), or `""`.
pub(crate) fn suffix(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if i > 0 => &name[i..],
        _ => "",
    }
}

/// Suffixes HDF5 files go by: HDF5's own, NeXus (`.nxs`, `.nx5`), CXI and
/// HDF-EOS 5. Compared without regard to case.
pub(crate) const HDF5_SUFFIXES: [&str; 7] =
    [".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".nx5", ".cxi"];

/// Suffixes stored verbatim: Blosc2 containers and HDF5 files. Any other
/// file is stored compressed as `<name>.b2` and addressed without the `.b2`
/// (unless its content is HDF5: see `crate::container::h5::is_hdf5_file`).
pub(crate) fn is_stored_verbatim(name: &str) -> bool {
    matches!(suffix(name), ".b2nd" | ".b2frame" | ".b2z" | ".b2") || is_hdf5_name(name)
}

/// Files a path can descend into (`x.b2z/g/a`, `x.h5/g/a`) by their name:
/// zip stores of Blosc2 datasets and HDF5 files.
pub(crate) fn is_container_name(name: &str) -> bool {
    suffix(name) == ".b2z" || is_hdf5_name(name)
}

/// Whether a file name is an HDF5 file's, browsed as a container of its
/// datasets.
pub(crate) fn is_hdf5_name(name: &str) -> bool {
    let s = suffix(name);
    HDF5_SUFFIXES.iter().any(|h| s.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalises_slashes_and_dots() {
        let p = DsPath::parse("@public//dir1/./ds-2d.b2nd/").unwrap();
        assert_eq!(p.root(), Root::Public);
        assert_eq!(p.parts(), ["dir1", "ds-2d.b2nd"]);
        assert_eq!(p.to_string(), "@public/dir1/ds-2d.b2nd");
        assert_eq!(p.name(), "ds-2d.b2nd");
    }

    #[test]
    fn parse_refuses_dotdot_with_caterva2_text() {
        let err = DsPath::parse("@public/dir/../../etc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "@public/dir/../../etc climbs out of @public, which is where it may write"
        );
    }

    #[test]
    fn unknown_root_is_not_found() {
        assert!(matches!(
            DsPath::parse("@nope/x"),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(DsPath::parse(""), Err(Error::NotFound { .. })));
    }

    #[test]
    fn reserved_names_are_not_found() {
        for p in ["@public/.cat2rs-tmp-abc", "@shared/d/x.b2nd.b2lock"] {
            assert!(
                matches!(DsPath::parse(p), Err(Error::NotFound { .. })),
                "{p}"
            );
        }
    }

    #[test]
    fn root_alone() {
        let p = DsPath::parse("@shared").unwrap();
        assert!(p.is_root());
        assert_eq!(p.name(), "@shared");
        assert_eq!(p.rel(), "");
    }

    #[test]
    fn verbatim_suffixes() {
        assert!(is_stored_verbatim("a.b2nd"));
        assert!(is_stored_verbatim("k.h5"));
        assert!(is_container_name("k.h5") && is_container_name("k.hdf5"));
        assert!(is_container_name("k.b2z") && !is_container_name("k.b2nd"));
        assert!(is_hdf5_name("k.hdf5") && !is_hdf5_name("k.b2z"));
        assert!(!is_stored_verbatim("README.md"));
        assert!(!is_stored_verbatim("noext"));
        assert!(!is_stored_verbatim(".hidden"));
    }
}
