//! cat2-core: datasets and roots.
//!
//! Main types: [`StateDir`] (the state's layout over a [`storage::Storage`]),
//! [`DsPath`] (a checked logical path), [`resolve::Resolver`] (what a path
//! names, as a [`node::Node`]), [`dataset::Dataset`] (what every array-like
//! kind answers), [`dtype::DType`], and the selection machinery (`slice_`,
//! `indices`, `filter`) that turns a request into bytes read from a dataset.
//!
//! Design choice: everything here is synchronous and free of HTTP types, so
//! it can be unit tested directly and driven from a blocking pool or rayon;
//! the server decides which thread runs it.
//!
//! `pub` is only what other crates use: modules the rest of the workspace
//! does not name are private, and `unreachable_pub` keeps what is inside
//! them `pub(crate)`, so a widened surface is a decision, not a default.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]
// Module docs point contributors at the private files that do the work
// (`cargo doc --document-private-items` renders those links).
#![allow(rustdoc::private_intra_doc_links)]

pub mod blob;
pub mod budget;
mod chunking;
pub mod dataset;
pub mod dtype;
mod error;
pub mod examples;
pub mod fetch;
mod filecache;
mod filter;
pub mod frames;
// The fuzz targets' entry points (fuzz/), only in builds that ask for them.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod grid;
pub mod hierarchy;
mod indices;
pub mod lazy;
mod meta;
pub mod node;
mod path;
pub mod random;
pub mod resolve;
mod selection;
pub mod storage;
pub mod store;
pub mod unfold;
pub mod view;
pub mod write;

pub use error::{Error, Result};
pub use path::{DsPath, Root};
pub use store::{Caller, StateDir};
