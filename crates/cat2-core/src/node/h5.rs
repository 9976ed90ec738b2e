//! HDF5 files as a [`Hierarchy`]: the file is a group, its HDF5 groups are
//! groups (its datasets are leaves read in place: [`crate::dataset::h5`]).

use std::sync::Arc;

use super::{Hierarchy, Inside};
use crate::dataset::h5::not_blosc2;
use crate::error::{Error, Result};
use crate::fetch::{FetchOutput, FetchRequest, NOT_A_DATASET};
use crate::hierarchy::h5::H5Tree;
use crate::hierarchy::Tree;
use crate::path::DsPath;

/// A readable HDF5 file.
pub(crate) struct H5Store(pub Arc<H5Tree>);

impl Hierarchy for H5Store {
    fn tree(&self) -> &dyn Tree {
        self.0.as_ref()
    }

    /// Nothing of an HDF5 file but its datasets is fetched.
    fn fetch_group(
        &self,
        path: &DsPath,
        key: Option<&str>,
        _req: &FetchRequest,
    ) -> Result<FetchOutput> {
        match key {
            Some(_) => Err(super::not_found(path)),
            None => Err(Error::BadRequest(NOT_A_DATASET.into())),
        }
    }

    fn chunk_refusal(&self, path: &DsPath, _key: Option<&str>) -> Error {
        not_blosc2(path)
    }

    fn operand_refusal(&self, path: &DsPath, key: Option<&str>) -> Error {
        match key {
            Some(_) => super::not_an_hdf5_dataset(path),
            None => Error::BadRequest(format!(
                "Invalid name or expression: {path} is not an array (.b2nd)"
            )),
        }
    }

    fn inside(&self) -> Inside {
        Inside::Hdf5 { readable: true }
    }

    fn hdf5(&self) -> Option<&Arc<H5Tree>> {
        Some(&self.0)
    }
}
