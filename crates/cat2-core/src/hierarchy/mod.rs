//! Files that hold members: `.b2z` stores ([`zip`]) and HDF5 files ([`h5`]),
//! each read into an index of its keys (`/g/a`) once per version of the file.
//! What their members are as datasets, and how they answer the API, is
//! [`crate::node`]'s business; this layer only knows the files.

pub(crate) mod h5;
pub mod zip;

use std::sync::Arc;

use crate::storage::Blob;

/// The index of keys both kinds of file read: what a key names, the leaves
/// below a prefix, and the listing `/api/list` makes of them (one rule for
/// both: the leaves below, relative to the prefix; a leaf lists as its own
/// name).
pub trait Tree: Send + Sync {
    /// The file, as it was read.
    fn blob(&self) -> &Arc<dyn Blob>;

    /// What `key` (`/g/a`) names.
    fn lookup(&self, key: &str) -> Option<Member<'_>>;

    /// Full keys of the leaves below `prefix` (`/` for all), sorted.
    fn leaves(&self, prefix: &str) -> Vec<String>;

    /// Bytes below `prefix`.
    fn size(&self, prefix: &str) -> u64;

    /// What `/api/list` shows for the file (`None`) or a key in it.
    fn list(&self, inner: Option<&str>) -> Vec<String> {
        let prefix = inner.unwrap_or("/");
        let strip = prefix.trim_end_matches('/').len() + 1;
        let mut names: Vec<String> = self
            .leaves(prefix)
            .into_iter()
            .filter_map(|k| k.get(strip..).map(str::to_string))
            .collect();
        names.sort_unstable();
        if names.is_empty() {
            if let Some(key) = inner {
                if matches!(self.lookup(key), Some(Member::Leaf | Member::Object(_))) {
                    names.push(key.rsplit('/').next().unwrap_or(key).to_string());
                }
            }
        }
        names
    }
}

/// What a key inside a container names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Group,
    Leaf,
    /// The root of an object kept as a subtree; the kind as registered
    /// (`"ctable"`, `"remote_store"`).
    Object(&'a str),
}
