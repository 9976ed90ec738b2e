//! Which file a dataset lives in, when external links span several.
//!
//! `hdf5-reader` follows an external link by opening the target file
//! through a resolver and handing back a `Dataset` that reads from it, but
//! it does not say which file that is; and the parts of a dataset it keeps
//! to itself (the filter pipeline, the chunk index) have to be read from the
//! object header in the right file. So cat2rs opens linked files itself
//! (with its own filters, confined to the linking file's directory),
//! remembers them, and finds a dataset's header in the one file whose object
//! at the dataset's address has the dataset's shape and type.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use hdf5_reader::messages::HdfMessage;
use hdf5_reader::object_header::ObjectHeader;
use hdf5_reader::storage::DynStorage;
use hdf5_reader::{Dataset, ExternalLinkResolver, Hdf5File, OpenOptions};

use crate::{Error, File, Result};

/// Where the files external links name are found: the linking file's
/// directory, or the keys beside an object in a store. An opener decides
/// which names may be followed (none outside the tree the linking file is
/// in) and answers their bytes.
pub trait LinkOpener: Send + Sync {
    /// The bytes of the file an external link names (`filename`, as the link
    /// spells it, relative to the linking file), or `None` when it is not
    /// there or may not be followed.
    fn open_linked(&self, filename: &str) -> Option<DynStorage>;
}

/// Opens the targets of external links through a [`LinkOpener`], with our
/// filters, and keeps every file it opened.
pub(crate) struct LinkedFiles {
    opener: Arc<dyn LinkOpener>,
    opened: Mutex<Vec<Hdf5File>>,
}

impl LinkedFiles {
    pub(crate) fn new(opener: Arc<dyn LinkOpener>) -> Self {
        LinkedFiles {
            opener,
            opened: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn opened(&self) -> Vec<Hdf5File> {
        self.opened.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// The relative path `filename` split into its segments, refusing absolute
/// paths, `..` and empty names: a link never leads above the linking file's
/// directory.
pub fn link_segments(filename: &str) -> Option<Vec<String>> {
    let rel = Path::new(filename);
    if filename.is_empty() || rel.is_absolute() {
        return None;
    }
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Links followed in a directory of the local disk (for [`File::open`]).
pub(crate) struct DirLinks {
    base: PathBuf,
}

impl DirLinks {
    pub(crate) fn new(base: PathBuf) -> Self {
        DirLinks { base }
    }
}

impl LinkOpener for DirLinks {
    fn open_linked(&self, filename: &str) -> Option<DynStorage> {
        let mut path = self.base.clone();
        path.extend(link_segments(filename)?);
        if !path.is_file() {
            return None;
        }
        let storage = hdf5_reader::storage::FileStorage::open(&path).ok()?;
        Some(Arc::new(storage))
    }
}

impl ExternalLinkResolver for LinkedFiles {
    fn resolve_external_link(
        &self,
        filename: &str,
    ) -> hdf5_reader::error::Result<Option<Hdf5File>> {
        let Some(storage) = self.opener.open_linked(filename) else {
            return Ok(None);
        };
        // Links inside the linked file are not followed further.
        let options = OpenOptions::default()
            .with_chunk_cache_bytes(crate::CHUNK_CACHE_BYTES)
            .with_filter_registry(crate::filters::registry());
        let file = Hdf5File::from_storage_with_options(storage, options)?;
        if let Ok(mut opened) = self.opened.lock() {
            opened.push(file.clone());
        }
        Ok(Some(file))
    }
}

/// A dataset's object header and the file it was read from.
pub(crate) struct Owner {
    pub file: Hdf5File,
    /// 0 for the file itself, `i + 1` for the i-th linked file.
    pub source: usize,
    pub header: Arc<ObjectHeader>,
}

/// Whether `header` describes a dataset of this shape and type.
fn describes(header: &ObjectHeader, ds: &Dataset) -> bool {
    let mut shape_ok = false;
    let mut type_ok = false;
    for m in &header.messages {
        match m {
            HdfMessage::Dataspace(s) => shape_ok = s.dims == ds.shape(),
            HdfMessage::Datatype(t) => type_ok = t.datatype == *ds.dtype(),
            _ => {}
        }
    }
    shape_ok && type_ok
}

impl File {
    /// Every file a dataset may live in: this one, then the linked ones.
    pub(crate) fn files(&self) -> Vec<Hdf5File> {
        let mut files = vec![self.inner.clone()];
        files.extend(self.linked.opened());
        files
    }

    /// The header of `ds`, found in the file that holds it.
    pub(crate) fn owner(&self, ds: &Dataset) -> Result<Owner> {
        for (source, file) in self.files().into_iter().enumerate() {
            if let Ok(header) = file.get_or_parse_header(ds.address()) {
                if describes(&header, ds) {
                    return Ok(Owner {
                        file,
                        source,
                        header,
                    });
                }
            }
        }
        Err(Error::Hdf5(hdf5_reader::error::Error::InvalidData(
            format!("the object header of dataset {} was not found", ds.name()),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_stay_below_their_directory() {
        let seg = |s: &[&str]| Some(s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(link_segments("a/b.h5"), seg(&["a", "b.h5"]));
        assert_eq!(link_segments("./b.h5"), seg(&["b.h5"]));
        assert_eq!(link_segments("../b.h5"), None);
        assert_eq!(link_segments("a/../b.h5"), None);
        assert_eq!(link_segments("/etc/passwd"), None);
        assert_eq!(link_segments(""), None);
        assert_eq!(link_segments("."), None);
    }
}
