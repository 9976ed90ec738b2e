//! Logical dataset paths (`@public/dir/x.b2nd`), checked once at the edge.
//!
//! After [`DsPath::parse`] a path has a known root and only normal
//! components: no `..`, no `.`, no empty segments, no NUL bytes (a path
//! with one names nothing and is [`Error::NotFound`]). Code further
//! in can join it under a root directory without re-checking.
//!
//! The rules for names live here too, in one place, because every way a
//! name reaches the server (a URL, a multipart file name, an archive member,
//! an HDF5 object being unfolded) must meet the same ones:
//!
//! * the storage's own names (`is_reserved_name`: write temporaries and
//!   `.b2lock` sidecars) are a 400, read or written: a user's file under such
//!   a name would be hidden, swept away at start-up or taken for a lock;
//! * control characters (C0, DEL, C1) and the Unicode controls that reorder
//!   text (bidi embeddings, overrides, isolates and marks) are a 400: a name
//!   is shown in listings, logs and the web GUI, where they would hide or
//!   disguise what it is;
//! * a path is at most `MAX_PATH_BYTES` (4096) long, and a name a write
//!   creates at most `MAX_NAME_BYTES` (245): the file system's 255 bytes
//!   less the longest suffix the server adds to a name it stores (a regular
//!   file `x` is `x.b2`, and a frame's lock is `<frame>.b2lock`), so a write
//!   is refused up front, with the limit, rather than failing half way. Reads are not
//!   bounded per name (a name inside an HDF5 file or a `.b2z` may be longer
//!   than a file name can), and a stored name longer than the file system
//!   allows is the storage's 400.

use std::fmt;

use crate::error::{Error, Result};

pub(crate) use crate::storage::key::is_reserved_name;

/// The longest file name the file systems the server stores on allow, in
/// bytes (`NAME_MAX` of ext4, XFS, Btrfs, ZFS).
const FS_NAME_MAX: usize = 255;

/// The longest suffix the server adds to a name it stores: `.b2` (a regular
/// file is stored compressed as `<name>.b2`) and then `.b2lock` (the lock
/// sidecar C-Blosc2 puts beside a frame).
const LONGEST_STORED_SUFFIX: &str = ".b2.b2lock";

/// The longest name (one path component, in UTF-8 bytes) a write may
/// create: what is left of [`FS_NAME_MAX`] once the server's suffixes are
/// added (245).
pub(crate) const MAX_NAME_BYTES: usize = FS_NAME_MAX - LONGEST_STORED_SUFFIX.len();

/// The longest logical path accepted, in UTF-8 bytes (Linux's `PATH_MAX`).
pub(crate) const MAX_PATH_BYTES: usize = 4096;

/// Characters that reorder the text around them (Unicode bidi embeddings,
/// overrides, isolates and marks): refused in names, where they would make
/// `evil\u{202e}txt.exe` show as `evilexe.txt`.
const BIDI_CONTROLS: [char; 12] = [
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// At most this many characters of a refused name are repeated in a message.
const SHOWN_CHARS: usize = 40;

/// A name as error messages show it: quoted, escaped (so a control
/// character or a bidi override is visible, not acted on) and cut short.
fn shown(name: &str) -> String {
    let mut cut: String = name.chars().take(SHOWN_CHARS).collect();
    if cut.len() < name.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Why `name` (one path component) can name nothing the server stores,
/// whatever its length: a reserved name, a control character, a bidi
/// control. `None` when it can.
fn name_problem(name: &str) -> Option<String> {
    if is_reserved_name(name) {
        return Some(format!(
            "the name {} is reserved for the server's own files (names starting with \
             {:?} or ending in \".b2lock\")",
            shown(name),
            crate::storage::key::TEMP_PREFIX,
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Some(format!(
            "the name {} holds the control character U+{:04X}; names may not hold \
             control characters (U+0000-U+001F, U+007F-U+009F)",
            shown(name),
            u32::from(c)
        ));
    }
    if let Some(c) = name.chars().find(|c| BIDI_CONTROLS.contains(c)) {
        return Some(format!(
            "the name {} holds the bidirectional-text control U+{:04X}; names may not hold \
             U+061C, U+200E, U+200F, U+202A-U+202E or U+2066-U+2069",
            shown(name),
            u32::from(c)
        ));
    }
    None
}

/// Checks a name a write is about to create (one path component): the
/// rules of [`DsPath::parse`] and at most [`MAX_NAME_BYTES`] bytes. The
/// error is a 400 that says which rule and, for a long name, the limit.
pub(crate) fn check_new_name(name: &str) -> Result<()> {
    if let Some(why) = name_problem(name) {
        return Err(Error::BadRequest(why));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::BadRequest(format!(
            "the name {} is {} bytes long; names may be at most {MAX_NAME_BYTES} bytes (UTF-8)",
            shown(name),
            name.len()
        )));
    }
    Ok(())
}

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
    /// A name with a NUL byte names nothing ([`Error::NotFound`], as the
    /// reference answers); a reserved name, a control character, a bidi
    /// control or a path longer than 4096 bytes is a 400 (see the module's
    /// documentation).
    pub fn parse(raw: &str) -> Result<DsPath> {
        if raw.len() > MAX_PATH_BYTES {
            return Err(Error::BadRequest(format!(
                "the path is {} bytes long; paths may be at most {MAX_PATH_BYTES} bytes (UTF-8)",
                raw.len()
            )));
        }
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
            if c.contains('\0') {
                // No file (and no key inside a container) has a NUL in its
                // name, so such a path names nothing: 404, as the reference
                // (and the upstream test suite) expect.
                return Err(Error::NotFound {
                    path: raw.to_string(),
                });
            }
            if let Some(why) = name_problem(c) {
                return Err(Error::BadRequest(why));
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

    fn bad_request(p: &str) -> String {
        match DsPath::parse(p) {
            Err(Error::BadRequest(msg)) => msg,
            other => panic!("{p:?}: expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn reserved_names_are_bad_requests() {
        for p in [
            "@public/.cat2rs-tmp-abc",
            "@shared/d/x.b2nd.b2lock",
            "@personal/x.b2lock/y",
            "@public/.cat2rs-tmp-",
        ] {
            let msg = bad_request(p);
            assert!(msg.contains("reserved for the server's own files"), "{msg}");
        }
        // Names that only look alike are names like any other.
        for p in [
            "@public/cat2rs-tmp-x",
            "@public/x.b2lock.txt",
            "@public/a.cat2rs-tmp-",
        ] {
            assert!(DsPath::parse(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn control_characters_are_bad_requests() {
        for c in [
            '\u{1}', '\n', '\r', '\t', '\u{1b}', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}',
        ] {
            let msg = bad_request(&format!("@public/dir/a{c}b.txt"));
            let code = format!("U+{:04X}", u32::from(c));
            assert!(
                msg.contains(&code) && msg.contains("control character"),
                "{msg}"
            );
            // The name is shown escaped, never with the raw character.
            assert!(!msg.contains(c), "{msg:?}");
        }
    }

    #[test]
    fn nul_still_names_nothing() {
        assert!(matches!(
            DsPath::parse("@public/g/\0bad"),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn bidi_controls_are_bad_requests() {
        for c in BIDI_CONTROLS {
            let msg = bad_request(&format!("@shared/evil{c}txt.exe"));
            assert!(msg.contains("bidirectional-text control"), "{msg}");
            assert!(!msg.contains(c), "{msg:?}");
        }
    }

    #[test]
    fn ordinary_names_are_unchanged() {
        for p in [
            "@public/dir with space/my array.b2nd",
            "@public/données/café.txt",
            "@public/データ/配列.b2nd",
            "@public/emoji-🙂.txt",
            "@public/שלום.txt",
            "@public/!_attrs_.json",
            "@public/.hidden",
            "@public/a\u{200b}b",
        ] {
            let parsed = DsPath::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(parsed.to_string(), p);
        }
    }

    #[test]
    fn path_length_is_bounded() {
        let at_limit = format!("@public/{}", "a/".repeat((MAX_PATH_BYTES - 9) / 2));
        assert!(at_limit.len() <= MAX_PATH_BYTES);
        assert!(DsPath::parse(&at_limit).is_ok());
        let over = format!("@public/{}", "a".repeat(MAX_PATH_BYTES));
        let msg = bad_request(&over);
        assert!(msg.contains("4096 bytes"), "{msg}");
        // Reads are not bounded per name (names inside containers may be long).
        assert!(DsPath::parse(&format!("@public/x.h5/{}", "d".repeat(300))).is_ok());
    }

    #[test]
    fn new_names_fit_the_file_system_with_the_server_suffixes() {
        assert_eq!(MAX_NAME_BYTES, 245);
        // The longest name plus the longest suffix the server adds still fits.
        assert_eq!(MAX_NAME_BYTES + ".b2.b2lock".len(), 255);
        assert!(check_new_name(&"n".repeat(MAX_NAME_BYTES)).is_ok());
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        match check_new_name(&long) {
            Err(Error::BadRequest(msg)) => {
                assert!(
                    msg.contains("246 bytes") && msg.contains("at most 245 bytes"),
                    "{msg}"
                );
                assert!(msg.len() < 200, "the whole name is not repeated: {msg}");
            }
            other => panic!("{other:?}"),
        }
        // Bytes, not characters: 82 three-byte characters are 246 bytes.
        assert!(check_new_name(&"語".repeat(82)).is_err());
        assert!(check_new_name(&"語".repeat(81)).is_ok());
        assert!(check_new_name(".cat2rs-tmp-1").is_err());
        assert!(check_new_name("a\u{202e}b").is_err());
        assert!(check_new_name("fine name.txt").is_ok());
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
