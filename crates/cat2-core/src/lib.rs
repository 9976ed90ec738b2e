//! cat2-core: datasets and roots.
//!
//! Everything here is synchronous and free of HTTP types, so it can be unit
//! tested directly and driven from a blocking pool or rayon.

#![forbid(unsafe_code)]

pub mod dtype;
pub mod error;
pub mod filter;
pub mod indices;
pub mod selection;
pub use error::{Error, Result};
