//! The storage seam's one error type, grouped by what the caller should do.

use std::fmt::Display;

/// What can go wrong in a storage operation, grouped by what the caller
/// should do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing is stored under the key (or not of the kind asked for: an
    /// object where a directory was listed, a directory where an object was
    /// opened).
    #[error("{key} not found")]
    NotFound {
        key: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// [`PutMode::Create`](super::PutMode::Create) on a key that holds something already.
    #[error("{key} already exists")]
    AlreadyExists { key: String },
    /// The operation needs the key to hold something of another kind (a
    /// directory where an object is written, say).
    #[error("{key} {why}")]
    Conflict { key: String, why: String },
    /// A key that cannot name anything (`..`, empty segments, NUL bytes, a
    /// backend's own reserved names).
    #[error("{key:?} is not a valid key: {why}")]
    InvalidKey { key: String, why: String },
    /// The backend cannot do this at all.
    #[error("{operation} is not supported by {backend}")]
    NotSupported {
        operation: &'static str,
        backend: String,
    },
    /// The backend failed (a disk error, a lost connection): not the
    /// caller's fault, and worth a log line with the source.
    #[error("{op} {key}: {source}")]
    Backend {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with the storage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(key: &impl Display) -> Error {
        Error::NotFound {
            key: key.to_string(),
            source: None,
        }
    }

    /// Wraps an I/O error: nothing there (or a file where a directory was
    /// needed on the way) becomes [`Error::NotFound`], a name longer than
    /// the file system allows an [`Error::InvalidKey`] (the caller's to fix,
    /// not a fault), anything else a backend fault.
    pub fn io(op: &'static str, key: &impl Display, source: std::io::Error) -> Error {
        use std::io::ErrorKind;
        if rustix::io::Errno::from_io_error(&source) == Some(rustix::io::Errno::NAMETOOLONG) {
            return Error::InvalidKey {
                key: key.to_string(),
                why: "a name in it is longer than the file system allows (255 bytes)".into(),
            };
        }
        if matches!(
            source.kind(),
            ErrorKind::NotFound | ErrorKind::NotADirectory
        ) {
            Error::NotFound {
                key: key.to_string(),
                source: Some(source),
            }
        } else {
            Error::Backend {
                op,
                key: key.to_string(),
                source,
            }
        }
    }

    /// The error's text with its key shown by `show` (the state shows keys
    /// as the logical paths they stand for), and no I/O detail: what a
    /// client may be told. The whole error, with its source, is for the log.
    pub fn describe_with(&self, show: impl Fn(&str) -> String) -> String {
        match self {
            Error::NotFound { key, .. } => format!("{} not found", show(key)),
            Error::AlreadyExists { key } => format!("{} already exists", show(key)),
            Error::Conflict { key, why } => format!("{} {why}", show(key)),
            Error::InvalidKey { key, why } => {
                format!("{} cannot name a file here: {why}", show(key))
            }
            Error::NotSupported { operation, .. } => {
                format!("{operation} is not supported by this server's storage")
            }
            Error::Backend { op, key, .. } => format!("{op} {} failed", show(key)),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}
