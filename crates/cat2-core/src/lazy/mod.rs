//! Lazy expressions stored as datasets (`/api/upload_lazyarr`): their files
//! ([`format`]) and, with `cat2-expr`, their evaluation.

pub mod format;
