//! Keys of a [`super::Storage`], checked once, where they are made.
//!
//! A key is a `/`-separated list of segments (`public/dir/x.b2nd`); the empty
//! key is the root. After [`Key::parse`] (or [`Key::join`]) every segment is
//! a plain name: not empty, not `.` or `..`, without `/` or NUL, and not one
//! of the names backends keep for themselves ([`is_reserved_name`]:
//! write temporaries and lock sidecars). A backend can then map a key onto
//! its own namespace (a path below a directory, an object name) without
//! checking again, and no key reaches anything outside that namespace.

use std::fmt;

use super::error::{Error, Result};

/// Prefix of the temporary files a backend writes beside their targets;
/// such names are the backends' own: never listed, served or writable.
pub(crate) const TEMP_PREFIX: &str = ".cat2rs-tmp-";

/// Whether a name is one backends keep for themselves (write temporaries,
/// chunk-write lock sidecars).
pub(crate) fn is_reserved_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) || name.ends_with(".b2lock")
}

/// A checked storage key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Key(String);

fn check_segment(whole: &str, segment: &str) -> Result<()> {
    let why = if segment.is_empty() {
        "it has an empty segment"
    } else if segment == "." || segment == ".." {
        "it has a relative segment"
    } else if segment.contains('\0') {
        "it has a NUL byte"
    } else if is_reserved_name(segment) {
        "it names a file the server keeps for itself"
    } else {
        return Ok(());
    };
    Err(Error::InvalidKey {
        key: whole.to_string(),
        why: why.into(),
    })
}

impl Key {
    /// The root of a store (the empty key).
    pub fn root() -> Key {
        Key(String::new())
    }

    /// Parses `a/b/c`; the empty string is the root.
    pub fn parse(raw: &str) -> Result<Key> {
        if raw.is_empty() {
            return Ok(Key::root());
        }
        for segment in raw.split('/') {
            check_segment(raw, segment)?;
        }
        Ok(Key(raw.to_string()))
    }

    /// The key of the segments given, in order.
    pub fn from_segments<'a>(segments: impl IntoIterator<Item = &'a str>) -> Result<Key> {
        let mut key = Key::root();
        for s in segments {
            key = key.join(s)?;
        }
        Ok(key)
    }

    /// The child `name` (one segment) of this key.
    pub fn join(&self, name: &str) -> Result<Key> {
        let whole = if self.0.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.0)
        };
        if name.contains('/') {
            return Err(Error::InvalidKey {
                key: whole,
                why: "a segment holds a slash".into(),
            });
        }
        check_segment(&whole, name)?;
        Ok(Key(whole))
    }

    /// The key below this one spelled by the relative path `rel` (`a/b`).
    pub fn join_path(&self, rel: &str) -> Result<Key> {
        let mut key = self.clone();
        for s in rel.split('/') {
            key = key.join(s)?;
        }
        Ok(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The segments, root first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The last segment (empty for the root).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The key this one is directly below; `None` for the root.
    pub fn parent(&self) -> Option<Key> {
        if self.0.is_empty() {
            return None;
        }
        Some(Key(self
            .0
            .rfind('/')
            .map_or(String::new(), |i| self.0[..i].to_string())))
    }

    /// This key with `suffix` added to its last segment (`x` → `x.b2`).
    pub fn with_suffix(&self, suffix: &str) -> Result<Key> {
        match self.parent() {
            Some(parent) => parent.join(&format!("{}{suffix}", self.name())),
            None => Err(Error::InvalidKey {
                key: suffix.to_string(),
                why: "the root has no name to add a suffix to".into(),
            }),
        }
    }

    /// Whether `prefix` is this key or one of its ancestors (segment-wise:
    /// `a/bc` is not below `a/b`).
    pub fn starts_with(&self, prefix: &Key) -> bool {
        prefix.0.is_empty()
            || self.0 == prefix.0
            || (self.0.starts_with(&prefix.0)
                && self.0.as_bytes().get(prefix.0.len()) == Some(&b'/'))
    }

    /// The rest of this key below `prefix` (`""` for the key itself).
    pub fn strip_prefix(&self, prefix: &Key) -> Option<String> {
        if !self.starts_with(prefix) {
            return None;
        }
        if prefix.0.is_empty() {
            return Some(self.0.clone());
        }
        Some(self.0[prefix.0.len()..].trim_start_matches('/').to_string())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_every_segment() {
        assert_eq!(
            Key::parse("public/d/x.b2nd").unwrap().as_str(),
            "public/d/x.b2nd"
        );
        assert!(Key::parse("").unwrap().is_root());
        for bad in [
            "a//b",
            "/a",
            "a/",
            "a/../b",
            "./a",
            "a/\0",
            "a/.cat2rs-tmp-1",
            "a/x.b2lock",
        ] {
            assert!(
                matches!(Key::parse(bad), Err(Error::InvalidKey { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn navigation() {
        let k = Key::parse("public/d/x.b2nd").unwrap();
        assert_eq!(k.name(), "x.b2nd");
        assert_eq!(k.parent().unwrap().as_str(), "public/d");
        assert_eq!(Key::parse("a").unwrap().parent(), Some(Key::root()));
        assert_eq!(Key::root().parent(), None);
        assert_eq!(k.segments().collect::<Vec<_>>(), ["public", "d", "x.b2nd"]);
        let p = Key::parse("public").unwrap();
        assert!(k.starts_with(&p) && k.starts_with(&Key::root()) && k.starts_with(&k));
        assert!(!Key::parse("publicx/a").unwrap().starts_with(&p));
        assert_eq!(k.strip_prefix(&p).as_deref(), Some("d/x.b2nd"));
        assert_eq!(k.strip_prefix(&k).as_deref(), Some(""));
        assert_eq!(
            Key::root()
                .join("a")
                .unwrap()
                .join_path("b/c")
                .unwrap()
                .as_str(),
            "a/b/c"
        );
        assert!(Key::root().join("a/b").is_err());
        assert_eq!(
            Key::parse("d/n.txt")
                .unwrap()
                .with_suffix(".b2")
                .unwrap()
                .as_str(),
            "d/n.txt.b2"
        );
    }
}
