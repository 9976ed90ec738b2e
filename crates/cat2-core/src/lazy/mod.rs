//! Lazy expressions stored as datasets (`/api/upload_lazyarr`): their files
//! ([`format`]), their operands ([`source`]) and their evaluation through
//! `cat2-expr`.
//!
//! An expression is evaluated box by box of its result: only the operand
//! boxes a requested region needs are read (through the same readers as any
//! fetch, so HDF5 proxies and other lazy expressions are operands like native
//! arrays), and the box is computed fused by `cat2-expr`. Operands are
//! located again on every use, with the permissions of whoever asks, so a
//! lazy expression in `@public` never lets an anonymous caller read the
//! `@shared` data it names.

pub mod create;
pub mod format;
pub mod source;

pub use source::{Lazy, Source};
