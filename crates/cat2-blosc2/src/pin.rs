//! Pinning a frame file to the version that was opened.
//!
//! C-Blosc2 does not keep a frame file open: every read (header, offsets,
//! a chunk, the trailer) opens it again by its path. A writer that replaces
//! the file by renaming a new version over it (as cat2-core's writes do)
//! would then hand one handle bytes of two versions, and C-Blosc2 is not
//! robust against a header that does not match the file (seen as heap
//! corruption). So a file is opened once here, and C-Blosc2 is given
//! `/proc/self/fd/<n>` instead of the path: every reopen through it reaches
//! the same inode, whatever has been renamed over the name since, for as
//! long as the handle (which owns the descriptor) lives.
//!
//! Where `/proc` is not mounted, or for directories (sparse frames), the path
//! itself is used, as before.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A path for C-Blosc2 and the descriptor that keeps it meaning one file.
pub(crate) struct Pinned {
    /// Keeps `c_path` valid; dropped with the handle that uses it.
    pub(crate) file: Option<File>,
    pub(crate) c_path: PathBuf,
}

pub(crate) fn pin(path: &Path) -> Pinned {
    let unpinned = || Pinned {
        file: None,
        c_path: path.to_path_buf(),
    };
    let Ok(file) = File::open(path) else {
        return unpinned();
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return unpinned();
    }
    let c_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    if !c_path.exists() {
        return unpinned();
    }
    Pinned {
        file: Some(file),
        c_path,
    }
}
