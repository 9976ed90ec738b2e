//! Saving lazy expressions (`/api/upload_lazyarr`, `/api/lazyexpr/`); they
//! are read as datasets by [`crate::dataset::lazy`].

pub mod create;
