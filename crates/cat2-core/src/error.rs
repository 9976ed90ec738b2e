//! The one error type of cat2-core.
//!
//! Variants are grouped by what the caller should do about them (the server
//! maps each group to one HTTP status in a single place), and each carries the
//! message a user needs to fix the request.

use std::path::PathBuf;

/// Everything that can go wrong while resolving, opening or reading a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `slice_` parameter that does not parse or does not fit the dataset.
    /// Displayed as Caterva2 does: `slice_ is not a slice: <reason>`.
    #[error("slice_ is not a slice: {reason}")]
    BadSlice { input: String, reason: String },

    /// An index or slice outside the dataset (NumPy's wording).
    #[error("{0}")]
    OutOfBounds(String),

    /// A malformed or unsupported `indices` parameter; the text is the whole message.
    #[error("{0}")]
    BadIndices(String),

    /// A malformed or unsupported `filter` expression.
    #[error("{0}")]
    BadFilter(String),

    /// Any other request the dataset cannot answer; the text is the whole message.
    #[error("{0}")]
    BadRequest(String),

    /// A logical path that names nothing.
    #[error("{path} not found")]
    NotFound { path: String },

    /// A root that needs a logged-in user.
    #[error("Unauthorized")]
    Unauthorized,

    /// A logged-in user who may not do this; the text says why.
    #[error("{0}")]
    Forbidden(String),

    /// The target exists and may not be replaced (HTTP 409).
    #[error("{0}")]
    Conflict(String),

    /// A request for a path that exists but is not there for this operation
    /// (a 404 with a message of its own).
    #[error("{0}")]
    Missing(String),

    /// The C library refused or failed.
    #[error(transparent)]
    Blosc(#[from] cat2_blosc2::Error),

    /// Reading an HDF5 file failed: a 400 for what the file holds (an
    /// unsupported filter, damage), a 500 for a failed read.
    #[error("{context}: {source}")]
    Hdf5 {
        context: String,
        #[source]
        source: cat2_hdf5::Error,
    },

    /// Storage refused or failed (a missing object, a disk fault).
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),

    /// More than the request's working memory (HTTP 413); the text says what
    /// was asked, the limit, and how to ask for less.
    #[error("{0}")]
    TooLarge(String),

    /// The request's computation ran past its time limit (HTTP 422).
    #[error("{0}")]
    TimedOut(String),

    /// The server's working memory stayed full for as long as the request
    /// could wait (HTTP 503).
    #[error("{0}")]
    Busy(String),

    /// What a stored dataset holds could not be decoded (HTTP 422): the
    /// dataset's logical path, and the chunk when one is known.
    #[error("{path}: {source}")]
    Damaged {
        path: String,
        #[source]
        source: cat2_blosc2::Error,
    },

    /// The request was given up (its client went away); nobody reads this.
    #[error("the request was cancelled")]
    Cancelled,

    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with cat2-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an HDF5 error with what was being done.
    pub fn hdf5(context: impl Into<String>, source: cat2_hdf5::Error) -> Self {
        Error::Hdf5 {
            context: context.into(),
            source,
        }
    }

    /// Whether the cause is a failed read or write of the server's own
    /// storage (not the request's or the data's fault).
    pub fn is_io_fault(&self) -> bool {
        match self {
            Error::Io { .. } => true,
            Error::Storage(e) => matches!(e, crate::storage::Error::Backend { .. }),
            // A read past the end of the file is what a damaged file asks
            // for, not a fault of the disk.
            Error::Hdf5 { source, .. } => matches!(
                source,
                cat2_hdf5::Error::Hdf5(cat2_hdf5::ReaderError::Io(e))
                    if e.kind() != std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }

    /// This error, as one met reading the dataset at `path`: damage in what
    /// the dataset holds names it (stored files are untrusted input, and the
    /// message must say which one, and where, to whoever fixes it).
    pub fn reading(self, path: impl std::fmt::Display) -> Self {
        match self {
            Error::Blosc(source) if source.is_damaged_data() => Error::Damaged {
                path: path.to_string(),
                source,
            },
            other => other,
        }
    }

    /// Wraps an I/O error with the operation and the path it concerned.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
