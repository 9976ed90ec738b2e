//! cat2-cloud: the backends that let cat2rs run as stateless replicas —
//! data on S3-compatible object storage, the catalog, writer locks and
//! users in PostgreSQL.
//!
//! [`CloudStorage`] implements cat2-core's [`Storage`](cat2_core::storage::Storage)
//! trait, so everything above storage (datasets, expressions, writes, the
//! API and the GUI) runs unchanged on it. The heavy client libraries
//! (`object_store`, `tokio-postgres`) live in this crate alone, so that the
//! core and its fuzz targets do not build them.
//!
//! Layout: `bridge` (the backends' own runtime, and how synchronous callers
//! wait on it), `pg` (a bounded connection pool), `catalog` (the SQL and
//! why it is consistent), `objects` (immutable data objects, uploads, the
//! page cache), `storage` (the trait implemented over those).

mod bridge;
mod catalog;
mod objects;
mod pg;
mod storage;
mod tls;
mod users;

pub use storage::{redact, CloudConfig, CloudStorage, OpenError};
pub use tls::{Target as DatabaseTarget, UrlError as DatabaseUrlError};
pub use users::PgUsers;
