//! Errors of the C-Blosc2 wrapper.
//!
//! C-Blosc2 reports failures as negative integers (or NULL pointers); they are
//! turned into [`Error`] in exactly one place (`raw::check`), together with the
//! name of the C function that failed, so a log line says what was attempted.

use std::path::PathBuf;

/// A failure of C-Blosc2 or of the frame/chunk data handed to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A C function returned a negative status code.
    #[error("{op} failed: {} (code {code})", describe(*.code))]
    Blosc { op: &'static str, code: i32 },

    /// A C constructor returned NULL (bad frame, unreadable file, out of memory).
    #[error("{op} failed: the data is not a valid Blosc2 {what}")]
    Null {
        op: &'static str,
        what: &'static str,
    },

    /// Arguments that C-Blosc2 would reject or misbehave on, caught before the call.
    #[error("{0}")]
    Invalid(String),

    /// What a frame or chunk holds disagrees with what it declares (sizes,
    /// block layout): damage C-Blosc2 itself does not catch.
    #[error("{0}")]
    Damaged(String),

    /// A file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// One chunk of a super-chunk could not be read or decoded: which one,
    /// for the message that says where a stored file is damaged.
    #[error("chunk {nchunk}: {source}")]
    Chunk {
        nchunk: i64,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// This error, as what happened to chunk `nchunk` (unless it already
    /// names a chunk: the innermost reader knows best).
    pub fn in_chunk(self, nchunk: i64) -> Error {
        match self {
            Error::Chunk { .. } => self,
            other => Error::Chunk {
                nchunk,
                source: Box::new(other),
            },
        }
    }

    /// The chunk the error happened in, when one is known.
    pub fn chunk(&self) -> Option<i64> {
        match self {
            Error::Chunk { nchunk, .. } => Some(*nchunk),
            _ => None,
        }
    }

    /// Whether C-Blosc2 refused what the data holds (a damaged chunk or
    /// frame, an unknown codec or format version) rather than failed itself:
    /// stored files are untrusted input, and what they hold is not the
    /// server's fault. Failures to read, write or allocate are not.
    pub fn is_damaged_data(&self) -> bool {
        match self {
            // Bad stream, invalid data, short input, unknown codec, format
            // version, invalid header, bad run-length encoding, filter
            // pipeline, wrong frame type.
            Error::Blosc { code, .. } => {
                matches!(code, -2 | -3 | -5 | -7 | -10 | -11 | -17 | -18 | -24)
            }
            Error::Null { .. } | Error::Damaged(_) => true,
            Error::Chunk { source, .. } => source.is_damaged_data(),
            Error::Invalid(_) | Error::Io { .. } => false,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Human text for C-Blosc2's error codes (`blosc2.h`, `BLOSC2_ERROR_*`).
fn describe(code: i32) -> &'static str {
    match code {
        -1 => "generic failure",
        -2 => "bad stream",
        -3 => "invalid data",
        -4 => "memory allocation failure",
        -5 => "not enough space to read",
        -6 => "not enough space to write",
        -7 => "codec not supported",
        -8 => "invalid codec parameter",
        -9 => "codec dictionary error",
        -10 => "format version not supported",
        -11 => "invalid header",
        -12 => "invalid parameter",
        -13 => "file read failure",
        -14 => "file write failure",
        -15 => "file open failure",
        -16 => "not found",
        -17 => "bad run length encoding",
        -18 => "filter pipeline error",
        -19 => "chunk insert failure",
        -20 => "chunk append failure",
        -21 => "chunk update failure",
        -22 => "sizes larger than 2 GB are not supported",
        -23 => "super-chunk copy failure",
        -24 => "wrong frame type",
        -25 => "file truncate failure",
        -26 => "thread creation failure",
        -27 => "postfilter failure",
        -28 => "special frame failure",
        -29 => "special super-chunk failure",
        -30 => "I/O plugin error",
        -31 => "file remove failure",
        -32 => "null pointer",
        -33 => "invalid index",
        -34 => "metalayer not found",
        -35 => "maximum buffer size exceeded",
        -36 => "tuner failure",
        _ => "unknown error",
    }
}
