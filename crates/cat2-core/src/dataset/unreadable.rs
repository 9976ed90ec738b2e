//! Files whose name promises a Blosc2 frame that C-Blosc2 cannot open
//! (damaged, truncated, or not a frame at all). `/api/info` describes them
//! as unreadable, as the reference does; everything that needs the frame is
//! a 400 saying why.

use std::sync::Arc;

use cat2_proto::{Info, UnreadableInfo};

use super::operand::Opening;
use super::{Dataset, Download, Operand};
use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::fetch::{FetchOutput, FetchRequest, NOT_A_DATASET};
use crate::path::DsPath;
use crate::storage::Blob;

/// A stored object that does not open as what its name says.
pub(crate) struct Unreadable {
    path: DsPath,
    blob: Arc<dyn Blob>,
    /// Why it could not be opened, as a client is told.
    why: String,
    kind: Kind,
}

/// What the file was supposed to be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Array,
    Frame,
    RegularFile,
}

impl Unreadable {
    /// A `.b2nd` that is not a readable array.
    pub(crate) fn array(
        path: DsPath,
        blob: Arc<dyn Blob>,
        e: impl std::fmt::Display,
    ) -> Unreadable {
        let why = format!(
            "{} is not a readable Blosc2 array: {e}",
            blob.meta().key.name()
        );
        Unreadable {
            path,
            blob,
            why,
            kind: Kind::Array,
        }
    }

    /// A `.b2frame` that is not a readable frame.
    pub(crate) fn frame(
        path: DsPath,
        blob: Arc<dyn Blob>,
        e: impl std::fmt::Display,
    ) -> Unreadable {
        Self::frame_like(path, blob, e, Kind::Frame)
    }

    /// A regular file's `.b2` that is not a readable frame.
    pub(crate) fn regular_file(
        path: DsPath,
        blob: Arc<dyn Blob>,
        e: impl std::fmt::Display,
    ) -> Unreadable {
        Self::frame_like(path, blob, e, Kind::RegularFile)
    }

    fn frame_like(
        path: DsPath,
        blob: Arc<dyn Blob>,
        e: impl std::fmt::Display,
        kind: Kind,
    ) -> Unreadable {
        let why = format!(
            "{} is not a readable Blosc2 frame: {e}",
            blob.meta().key.name()
        );
        Unreadable {
            path,
            blob,
            why,
            kind,
        }
    }

    fn refusal(&self) -> Error {
        Error::BadRequest(self.why.clone())
    }
}

impl Dataset for Unreadable {
    fn path(&self) -> &DsPath {
        &self.path
    }

    fn info(&self) -> Result<Info> {
        Ok(Info::Unreadable(UnreadableInfo {
            mtime: super::mtime_of(&self.blob),
            error: "Unrecognized format".into(),
        }))
    }

    fn fetch(&self, _req: &FetchRequest) -> Result<FetchOutput> {
        match self.kind {
            Kind::RegularFile => Err(Error::BadRequest(NOT_A_DATASET.into())),
            Kind::Array | Kind::Frame => Err(self.refusal()),
        }
    }

    fn chunk(&self, _nchunk: i64, _budget: &Budget) -> Result<Vec<u8>> {
        Err(self.refusal())
    }

    /// A frame is downloaded as the file it is, readable or not; a regular
    /// file's decompression fails as it is sent; an array is checked first.
    fn download(&self, _budget: &Budget) -> Result<Download> {
        match self.kind {
            Kind::Array => Err(self.refusal()),
            Kind::Frame => Ok(Download::Stored(self.blob.clone())),
            Kind::RegularFile => Ok(Download::RegularFile(self.blob.clone())),
        }
    }

    fn is_regular_file(&self) -> bool {
        self.kind == Kind::RegularFile
    }

    fn list(&self) -> Vec<String> {
        if self.kind == Kind::RegularFile && !self.path.name().ends_with(".b2") {
            Vec::new()
        } else {
            vec![self.path.name().to_string()]
        }
    }

    fn object(&self) -> &Arc<dyn Blob> {
        &self.blob
    }

    fn into_operand(self: Box<Self>, _opening: &mut Opening) -> Result<Box<dyn Operand>> {
        match self.kind {
            Kind::Array => Err(self.refusal()),
            Kind::Frame | Kind::RegularFile => Err(Error::BadRequest(format!(
                "Invalid name or expression: {} is not an array (.b2nd)",
                self.path
            ))),
        }
    }
}
