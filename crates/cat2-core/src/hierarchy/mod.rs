//! Files that hold members: `.b2z` stores ([`zip`]) and HDF5 files ([`h5`]),
//! each read into an index of its keys (`/g/a`) once per version of the file.
//! What their members are as datasets, and how they answer the API, is
//! [`crate::node`]'s business; this layer only knows the files.

pub(crate) mod h5;
pub mod zip;

/// What a key inside a container names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Group,
    Leaf,
    /// The root of an object kept as a subtree; the kind as registered
    /// (`"ctable"`, `"remote_store"`).
    Object(&'a str),
}
