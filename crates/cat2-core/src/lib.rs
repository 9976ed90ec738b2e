//! cat2-core: datasets and roots.
//!
//! Main types: [`StateDir`] (the on-disk layout and how logical paths such as
//! `@public/dir/x.b2nd` map onto it), [`DsPath`] (a checked logical path),
//! [`dtype::DType`], and the selection machinery (`slice_`, `indices`,
//! `filter`) that turns a request into bytes read from a Blosc2 array.
//!
//! Design choice: everything here is synchronous and free of HTTP types, so
//! it can be unit tested directly and driven from a blocking pool or rayon;
//! the server decides which thread runs it.

#![forbid(unsafe_code)]

pub mod blob;
pub mod container;
pub mod dataset;
pub mod dtype;
pub mod error;
pub mod examples;
pub mod fetch;
pub mod filecache;
pub mod filter;
pub mod indices;
pub mod lazy;
pub mod listing;
pub mod meta;
pub mod path;
pub mod proxy;
pub mod selection;
pub mod store;
pub mod unfold;
pub mod view;
pub mod write;

pub use error::{Error, Result};
pub use path::{DsPath, Root};
pub use store::{Caller, Entry, Located, StateDir};
