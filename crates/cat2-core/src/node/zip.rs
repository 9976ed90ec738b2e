//! `.b2z` stores as a [`Hierarchy`]: the store file is a group of its
//! leaves, fetched whole as the file it is; an inner group is a group whose
//! size is the bytes its members occupy (see [`crate::hierarchy::zip`]).

use std::sync::Arc;

use super::{Hierarchy, Inside};
use crate::error::{Error, Result};
use crate::fetch::{FetchOutput, FetchRequest};
use crate::hierarchy::zip::Container;
use crate::hierarchy::Tree;
use crate::path::DsPath;

/// A browsable `.b2z` store.
pub(crate) struct ZipStore(pub Arc<Container>);

/// The refusal of an object kept as a subtree (a CTable), not served yet.
pub(crate) fn object_unsupported(path: &DsPath, kind: &str) -> Error {
    let what = match kind {
        "ctable" => {
            return Error::BadRequest(format!(
                "{path} is a CTable, a set of columns rather than one chunked array; Caterva2 \
                 serves its rows through /api/fetch with the slice_ parameter, which this \
                 server does not do yet"
            ))
        }
        "remote_store" => "a reference to a remote store".to_string(),
        other => format!("an object of kind {other:?}"),
    };
    Error::BadRequest(format!(
        "{path} is {what}, which this server cannot serve yet"
    ))
}

impl Hierarchy for ZipStore {
    fn tree(&self) -> &dyn Tree {
        self.0.as_ref()
    }

    /// The store file is served as the file it is: there is nothing to slice.
    fn fetch_group(
        &self,
        path: &DsPath,
        key: Option<&str>,
        req: &FetchRequest,
    ) -> Result<FetchOutput> {
        match key {
            Some(_) => Err(super::not_found(path)),
            None if req.selects() => Err(Error::BadRequest(format!(
                "{path} is a container, so there is nothing to slice; ask for a dataset inside it"
            ))),
            None => Ok(FetchOutput::object(self.0.blob())),
        }
    }

    fn chunk_refusal(&self, path: &DsPath, key: Option<&str>) -> Error {
        match key {
            Some(_) => super::not_found(path),
            None => Error::BadRequest(format!(
                "{path} is a container, which holds datasets rather than being one; ask for a dataset inside it"
            )),
        }
    }

    fn operand_refusal(&self, path: &DsPath, _key: Option<&str>) -> Error {
        Error::BadRequest(format!(
            "Invalid name or expression: {path} is not an array (.b2nd)"
        ))
    }

    fn inside(&self) -> Inside {
        Inside::Nothing
    }
}
