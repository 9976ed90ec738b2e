//! [`CloudStorage`]: cat2-core's storage trait on S3 objects and a
//! PostgreSQL catalog — the second backend beside the local state directory.
//!
//! Where each operation goes: `head`/`list`/`usage` are catalog queries;
//! `open` reads the catalog row and pins its (immutable) data object, whose
//! bytes come by ranged GETs through the page cache; `put`/`stage`+`commit`
//! upload a new data object first and then commit it in one catalog
//! transaction; `copy`/`rename`/`delete*` are catalog transactions only
//! (data objects are shared or left to the collector); `lock` is a
//! PostgreSQL session advisory lock held on a connection of its own until
//! the lock is dropped (a crashed replica's locks go with its connections).
//! See [`crate::catalog`] for why this is consistent without conditional
//! writes, and [`crate::objects`] for the data objects and the cache.
//!
//! Staged objects are spooled in a local file (S3 has no random-access
//! writes): C-Blosc2 writes and rereads it at any offset, and the commit
//! uploads it whole. The spool counts toward nothing in the catalog until
//! committed, and a dropped stage removes its file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use cat2_core::storage::{
    Blob, Entry, Error, Key, Listing, Lock, LockMode, ObjectMeta, PutMode, ReadAt, Result, Staged,
    StagedIo, Storage, Version,
};

use cat2_core::storage::local::FileIo;

use crate::bridge::Bridge;
use crate::catalog::{self, CatalogError, NewObject, Row};
use crate::objects::Objects;
use crate::pg::PgPool;

/// How the backend is set up (from the `[storage]` and `[database]` tables).
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// `s3://bucket/prefix`.
    pub storage_url: String,
    /// The S3 endpoint (`http://127.0.0.1:3900`); AWS's when absent.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// `postgresql://user@host:port/db`.
    pub database_url: String,
    /// Where staged objects are spooled before they are uploaded.
    pub spool_dir: PathBuf,
    /// How long superseded data objects are kept before they are deleted.
    pub gc_grace: Duration,
    /// Bytes of the cache of ranges read (small reads by page, chunks whole).
    pub cache_bytes: usize,
    /// Most database connections the storage opens (a quarter for catalog
    /// queries, the rest for writers' locks, each held while its lock is).
    pub connections: usize,
}

impl CloudConfig {
    /// The defaults for what `storage_url` and `database_url` leave open.
    pub fn new(storage_url: &str, database_url: &str) -> CloudConfig {
        CloudConfig {
            storage_url: storage_url.into(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            database_url: database_url.into(),
            spool_dir: std::env::temp_dir().join("cat2rs-spool"),
            gc_grace: Duration::from_secs(600),
            cache_bytes: 256 << 20,
            connections: DEFAULT_CONNECTIONS,
        }
    }
}

/// Database connections of one replica's storage by default: with the
/// users' few, three replicas stay within PostgreSQL's default
/// `max_connections` of 100.
pub const DEFAULT_CONNECTIONS: usize = 28;

/// What the storage's handles share.
#[derive(Debug)]
struct Shared {
    bridge: Bridge,
    objects: Objects,
    /// Short catalog queries and transactions.
    catalog: Arc<PgPool>,
    /// Writer locks, each holding its connection while held.
    locks: Arc<PgPool>,
    spool_dir: PathBuf,
    gc_grace: Duration,
    described: String,
    /// The state directories imported into this store, and when they were
    /// last read from the catalog.
    origins: Mutex<(Vec<PathBuf>, Option<Instant>)>,
}

/// How often a path outside every known origin makes a replica read the
/// origins again (one started before an import learns of it so).
const ORIGINS_REREAD: Duration = Duration::from_secs(1);

/// Data on S3, catalog and locks in PostgreSQL.
#[derive(Debug)]
pub struct CloudStorage {
    shared: Arc<Shared>,
}

/// Why the backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("[storage] url must be s3://BUCKET[/PREFIX], not {0:?}")]
    BadUrl(String),
    #[error("setting up the S3 client: {0}")]
    S3(#[source] object_store::Error),
    #[error("[database] url: {0}")]
    DbUrl(#[source] crate::tls::UrlError),
    #[error("making the catalog tables in the database: {0}")]
    Schema(String),
    #[error("starting the storage runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("making the spool directory {0}: {1}")]
    Spool(PathBuf, #[source] std::io::Error),
}

/// `user:password@` taken out of a URL, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn backend(op: &'static str, key: &impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    Error::io(op, key, std::io::Error::other(e.to_string()))
}

fn catalog_error(op: &'static str, key: &Key, e: CatalogError) -> Error {
    match e {
        CatalogError::NotFound(p) => Error::not_found(&p),
        CatalogError::AlreadyExists(p) => Error::AlreadyExists { key: p },
        CatalogError::Conflict(p, why) => Error::Conflict { key: p, why },
        other => backend(op, key, other),
    }
}

/// What a catalog row (or its absence) says `key` is.
fn entry_of(key: &Key, row: Option<Row>) -> Result<Entry> {
    match row {
        None => Err(Error::not_found(key)),
        Some(r) if r.is_dir => Ok(Entry::Dir {
            modified: Some(r.modified),
        }),
        Some(r) => Ok(Entry::Object(meta_of(key.clone(), &r))),
    }
}

/// The [`Version`] of a row: its data object and generation.
fn version_of(row: &Row) -> Version {
    let object = row.object.as_deref().unwrap_or("");
    let hex = object.rsplit('/').next().unwrap_or("");
    let short = &hex[..hex.len().min(16)];
    Version {
        etag: format!("{short}-{}", row.generation),
        instance: u64::from_str_radix(short, 16).unwrap_or(0),
        handle: row.object.as_deref().map(Arc::from),
    }
}

fn meta_of(key: Key, row: &Row) -> ObjectMeta {
    ObjectMeta {
        key,
        size: row.size,
        modified: Some(row.modified),
        version: version_of(row),
    }
}

impl CloudStorage {
    /// Connects to the bucket and the database (making the catalog's tables
    /// if they are missing) and starts the collector of superseded objects.
    pub fn open(config: &CloudConfig) -> std::result::Result<CloudStorage, OpenError> {
        let rest = config
            .storage_url
            .strip_prefix("s3://")
            .ok_or_else(|| OpenError::BadUrl(config.storage_url.clone()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(OpenError::BadUrl(config.storage_url.clone()));
        }
        // TLS (https endpoints) on ring, the workspace's crypto provider;
        // installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(false);
        if let Some(e) = &config.endpoint {
            builder = builder
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"));
        }
        if let Some(r) = &config.region {
            builder = builder.with_region(r);
        }
        if let Some(k) = &config.access_key_id {
            builder = builder.with_access_key_id(k);
        }
        if let Some(s) = &config.secret_access_key {
            builder = builder.with_secret_access_key(s);
        }
        let bridge = Bridge::new(2).map_err(OpenError::Runtime)?;
        let store = {
            let _in_runtime = bridge.enter();
            builder.build().map_err(OpenError::S3)?
        };
        std::fs::create_dir_all(&config.spool_dir)
            .map_err(|e| OpenError::Spool(config.spool_dir.clone(), e))?;
        let for_queries = (config.connections / 4).max(2);
        let for_locks = config.connections.saturating_sub(for_queries).max(2);
        let catalog_pool =
            PgPool::new("catalog", &config.database_url, for_queries).map_err(OpenError::DbUrl)?;
        let lock_pool =
            PgPool::new("lock", &config.database_url, for_locks).map_err(OpenError::DbUrl)?;
        let pool = catalog_pool.clone();
        bridge
            .run(async move {
                let mut c = pool.get().await.map_err(|e| e.to_string())?;
                catalog::ensure_schema(&mut c)
                    .await
                    .map_err(|e| e.to_string())
            })
            .map_err(OpenError::Schema)?;
        let described = format!(
            "{} (catalog {})",
            config.storage_url,
            redact(&config.database_url)
        );
        let shared = Arc::new(Shared {
            bridge,
            objects: Objects::new(Arc::new(store), prefix, config.cache_bytes),
            catalog: catalog_pool,
            locks: lock_pool,
            spool_dir: config.spool_dir.clone(),
            gc_grace: config.gc_grace,
            described,
            origins: Mutex::new((Vec::new(), None)),
        });
        start_collector(Arc::downgrade(&shared));
        Ok(CloudStorage { shared })
    }

    /// The key `path` names below one of the origins, reading them again
    /// from the catalog (at most once per [`ORIGINS_REREAD`]) when it names
    /// none.
    fn key_in_origins(&self, path: &Path) -> Option<Key> {
        let mut origins = self
            .shared
            .origins
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let found = |dirs: &[PathBuf]| {
            dirs.iter()
                .find_map(|dir| cat2_core::storage::key_under(dir, path))
        };
        if let Some(key) = found(&origins.0) {
            return Some(key);
        }
        if origins.1.is_some_and(|at| at.elapsed() < ORIGINS_REREAD) {
            return None;
        }
        origins.1 = Some(Instant::now());
        let dirs = self
            .catalog("reading the origins for", &Key::root(), |c| {
                Box::pin(async move { catalog::origins(&*c).await })
            })
            .ok()?;
        origins.0 = dirs.into_iter().map(PathBuf::from).collect();
        found(&origins.0)
    }

    /// Runs a catalog operation on a pooled connection.
    fn catalog<T, F>(&self, op: &'static str, key: &Key, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c mut tokio_postgres::Client,
            )
                -> futures_util::future::BoxFuture<'c, catalog::CatalogResult<T>>
            + Send
            + 'static,
    {
        let pool = self.shared.catalog.clone();
        self.shared
            .bridge
            .run(async move {
                let mut conn = pool.get().await?;
                f(&mut conn).await
            })
            .map_err(|e| catalog_error(op, key, e))
    }

    fn row(&self, key: &Key) -> Result<Option<Row>> {
        let path = key.as_str().to_string();
        self.catalog("reading the catalog for", key, move |c| {
            Box::pin(async move { catalog::head(&*c, &path).await })
        })
    }

    /// Uploads the spooled `file` as a new data object, reserved first
    /// (see [`catalog::reserve`]); answers its id.
    fn upload(&self, key: &Key, file: std::fs::File, size: u64) -> Result<String> {
        let id = Objects::new_id();
        let reserved = id.clone();
        self.catalog("reserving an upload for", key, move |c| {
            Box::pin(async move { catalog::reserve(&*c, &reserved).await })
        })?;
        self.shared
            .objects
            .upload(&self.shared.bridge, &id, file, size)
            .map_err(|e| Error::io("uploading", key, e))?;
        Ok(id)
    }

    /// Commits uploaded objects. An upload the catalog refused (the path
    /// exists, is a directory...) is deleted at once; after any other
    /// failure (a lost connection: did the commit happen?) the collector
    /// decides, as it only deletes what no row points at.
    fn commit(&self, key: &Key, items: Vec<NewObject>, create: bool) -> Result<Vec<Row>> {
        let ids: Vec<String> = items.iter().map(|i| i.object.clone()).collect();
        let pool = self.shared.catalog.clone();
        let out = self.shared.bridge.run(async move {
            let mut c = pool.get().await?;
            catalog::commit(&mut c, &items, create).await
        });
        match out {
            Ok(rows) => Ok(rows),
            Err(e) => {
                if matches!(
                    e,
                    CatalogError::AlreadyExists(_)
                        | CatalogError::Conflict(..)
                        | CatalogError::NotFound(_)
                ) {
                    let _ = self.shared.objects.delete(&self.shared.bridge, ids);
                }
                Err(catalog_error("committing", key, e))
            }
        }
    }

    fn put_bytes(&self, key: &Key, data: &[u8]) -> Result<String> {
        let spool = tempfile::tempfile_in(&self.shared.spool_dir)
            .map_err(|e| Error::io("spooling", key, e))?;
        use std::io::{Seek, Write};
        let mut f = spool;
        f.write_all(data)
            .and_then(|()| f.rewind())
            .map_err(|e| Error::io("spooling", key, e))?;
        self.upload(key, f, data.len() as u64)
    }

    /// Answers whether the bucket and the database both answer (`/healthz`).
    pub fn ping(&self) -> std::result::Result<(), String> {
        let pool = self.shared.catalog.clone();
        self.shared
            .bridge
            .run(async move {
                let c = pool.get().await.map_err(|e| e.to_string())?;
                c.simple_query("SELECT 1")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            })
            .map_err(|e| format!("database: {e}"))?;
        self.shared
            .objects
            .ping(&self.shared.bridge)
            .map_err(|e| format!("object store: {e}"))
    }

    /// Deletes garbage older than the grace period that nothing points at;
    /// answers how many data objects went.
    pub fn collect_garbage(&self) -> Result<usize> {
        collect(&self.shared)
    }

    /// Data objects in the bucket, older than `before`, that the catalog
    /// neither points at nor holds as garbage or reservations: what a bug
    /// would leak. Lists the whole bucket prefix: for checks, not for
    /// serving.
    pub fn unaccounted_objects(&self, before: SystemTime) -> Result<Vec<String>> {
        let root = Key::root();
        let old = self
            .shared
            .objects
            .list_older_than(&self.shared.bridge, before)
            .map_err(|e| backend("listing the data objects of", &root, e))?;
        let mut unaccounted = Vec::new();
        for batch in old.chunks(1000) {
            let probe = batch.to_vec();
            let known = self.catalog("checking the data objects of", &root, move |c| {
                Box::pin(async move { catalog::known_objects(&*c, &probe).await })
            })?;
            unaccounted.extend(batch.iter().filter(|o| !known.contains(*o)).cloned());
        }
        Ok(unaccounted)
    }
}

fn collect(shared: &Arc<Shared>) -> Result<usize> {
    let grace = shared.gc_grace;
    let root = Key::root();
    let mut total = 0;
    loop {
        let pool = shared.catalog.clone();
        let deleting = shared.objects.deleter();
        let n = shared
            .bridge
            .run(async move {
                let mut conn = pool.get().await?;
                let tx = conn.transaction().await?;
                let dead = catalog::take_garbage(&tx, grace, BATCH).await?;
                let n = dead.len();
                // Deleted while the transaction holds their garbage rows: if
                // a delete fails, the rows stay and a later round tries again.
                deleting(dead)
                    .await
                    .map_err(|e| CatalogError::Objects(e.to_string()))?;
                tx.commit().await?;
                Ok::<usize, CatalogError>(n)
            })
            .map_err(|e| catalog_error("collecting garbage in", &root, e))?;
        total += n;
        if n < BATCH as usize {
            return Ok(total);
        }
    }
}

/// Garbage collected per transaction.
const BATCH: i64 = 500;

/// Collects garbage every minute while the storage lives.
fn start_collector(shared: Weak<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("cat2-cloud-gc".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(60));
            let Some(shared) = shared.upgrade() else {
                return;
            };
            match collect(&shared) {
                Ok(0) => {}
                Ok(n) => tracing::info!(objects = n, "collected superseded data objects"),
                Err(e) => tracing::warn!("collecting superseded data objects: {e}"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("superseded data objects will only be collected at start: {e}");
    }
}

/// One version of an object: its data object, read by ranges.
struct CloudBlob {
    meta: ObjectMeta,
    object: Arc<str>,
    shared: Arc<Shared>,
}

impl ReadAt for CloudBlob {
    fn len(&self) -> u64 {
        self.meta.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.shared.objects.read_at(
            &self.shared.bridge,
            &self.object,
            self.meta.size,
            offset,
            buf,
        )
    }
}

impl Blob for CloudBlob {
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
}

/// An object being written: a spool file, uploaded at commit.
struct CloudStaged {
    storage: CloudStorage,
    io: Arc<FileIo>,
}

impl Staged for CloudStaged {
    fn io(&self) -> Arc<dyn StagedIo> {
        self.io.clone()
    }

    fn commit(self: Box<Self>, key: &Key, mode: PutMode) -> Result<ObjectMeta> {
        if key.is_root() {
            return Err(Error::Conflict {
                key: key.to_string(),
                why: "is the root, not an object".into(),
            });
        }
        let size = self.io.len();
        let file = self
            .io
            .0
            .try_clone()
            .and_then(|mut f| {
                use std::io::Seek;
                f.rewind().map(|_| f)
            })
            .map_err(|e| Error::io("reading the spool of", key, e))?;
        let id = self.storage.upload(key, file, size)?;
        let item = NewObject {
            path: key.as_str().to_string(),
            object: id,
            size,
        };
        let rows = self
            .storage
            .commit(key, vec![item], mode == PutMode::Create)?;
        let row = rows
            .first()
            .ok_or_else(|| backend("committing", key, "no row"))?;
        Ok(meta_of(key.clone(), row))
    }
}

/// A writer lock: a session advisory lock on a connection held with it.
struct CloudLock {
    key: Key,
    exclusive: bool,
    id: i32,
    conn: Option<crate::pg::Conn>,
    shared: Arc<Shared>,
}

impl Lock for CloudLock {
    fn bump_generation(&self) -> Result<u64> {
        if !self.exclusive {
            return Err(Error::Conflict {
                key: self.key.to_string(),
                why: "is locked shared; only an exclusive lock counts changes".into(),
            });
        }
        let path = self.key.as_str().to_string();
        let storage = CloudStorage {
            shared: self.shared.clone(),
        };
        storage.catalog("counting a change of", &self.key, move |c| {
            Box::pin(async move { catalog::bump(&*c, &path).await })
        })
    }
}

impl Drop for CloudLock {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let (id, exclusive) = (self.id, self.exclusive);
        // Released without waiting; a connection that fails to release is
        // closed (which releases it) instead of going back to the pool.
        self.shared.bridge.spawn(async move {
            let sql = if exclusive {
                "SELECT pg_advisory_unlock($1, $2)"
            } else {
                "SELECT pg_advisory_unlock_shared($1, $2)"
            };
            let mut conn = conn;
            if conn
                .query_one(sql, &[&catalog::WRITER_LOCKS, &id])
                .await
                .is_err()
            {
                conn.discard();
            }
        });
    }
}

impl Storage for CloudStorage {
    fn describe(&self) -> String {
        self.shared.described.clone()
    }

    fn head(&self, key: &Key) -> Result<Entry> {
        if key.is_root() {
            return Ok(Entry::Dir { modified: None });
        }
        entry_of(key, self.row(key)?)
    }

    fn head_each(&self, keys: &[Key]) -> Vec<Result<Entry>> {
        if keys.len() < 2 {
            return keys.iter().map(|key| self.head(key)).collect();
        }
        let paths: Vec<String> = keys.iter().map(|k| k.as_str().to_string()).collect();
        let first = keys.first().cloned().unwrap_or_else(Key::root);
        let found = self.catalog("reading the catalog for", &first, move |c| {
            Box::pin(async move { catalog::head_each(&*c, &paths).await })
        });
        match found {
            Ok(mut rows) => keys
                .iter()
                .map(|key| {
                    if key.is_root() {
                        return Ok(Entry::Dir { modified: None });
                    }
                    let at = rows.iter().position(|r| r.path == key.as_str());
                    entry_of(key, at.map(|i| rows.swap_remove(i)))
                })
                .collect(),
            // Each key then fails as its own head would have.
            Err(_) => keys.iter().map(|key| self.head(key)).collect(),
        }
    }

    fn open(&self, key: &Key) -> Result<Arc<dyn Blob>> {
        match self.head(key)? {
            Entry::Object(meta) => {
                let object = meta.version.handle.clone().unwrap_or_else(|| Arc::from(""));
                Ok(Arc::new(CloudBlob {
                    meta,
                    object,
                    shared: self.shared.clone(),
                }))
            }
            Entry::Dir { .. } => Err(Error::not_found(key)),
        }
    }

    fn key_of_path(&self, path: &Path) -> Option<Key> {
        self.key_in_origins(path)
    }

    fn record_origin(&self, dir: &Path) -> Result<()> {
        let text = dir
            .to_str()
            .filter(|_| dir.is_absolute())
            .ok_or_else(|| Error::InvalidKey {
                key: dir.display().to_string(),
                why: "an origin is an absolute path in UTF-8".into(),
            })?
            .to_string();
        self.catalog("recording the origin", &Key::root(), move |c| {
            Box::pin(async move { catalog::add_origin(&*c, &text).await })
        })?;
        let mut origins = self
            .shared
            .origins
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        origins.1 = None;
        Ok(())
    }

    fn open_version(&self, meta: &ObjectMeta) -> Result<Arc<dyn Blob>> {
        // Data objects are immutable and outlive the rows that name them by
        // the collector's grace period: the version described is still there.
        let Some(object) = meta.version.handle.clone() else {
            return self.open(&meta.key);
        };
        Ok(Arc::new(CloudBlob {
            meta: meta.clone(),
            object,
            shared: self.shared.clone(),
        }))
    }

    fn list(&self, key: &Key) -> Result<Listing> {
        let path = key.as_str().to_string();
        let is_root = key.is_root();
        let rows = self.catalog("listing", key, move |c| {
            Box::pin(async move {
                if !is_root {
                    match catalog::head(&*c, &path).await? {
                        Some(r) if r.is_dir => {}
                        _ => return Err(CatalogError::NotFound(path)),
                    }
                }
                catalog::children(&*c, &path).await
            })
        })?;
        let mut listing = Listing::default();
        for r in rows {
            let child = Key::parse(&r.path).map_err(|e| backend("listing", key, e))?;
            if r.is_dir {
                listing.dirs.push(child);
            } else {
                listing.objects.push(meta_of(child, &r));
            }
        }
        Ok(listing)
    }

    fn put(&self, key: &Key, data: &[u8], mode: PutMode) -> Result<ObjectMeta> {
        if key.is_root() {
            return Err(Error::Conflict {
                key: key.to_string(),
                why: "is the root, not an object".into(),
            });
        }
        let id = self.put_bytes(key, data)?;
        let item = NewObject {
            path: key.as_str().to_string(),
            object: id,
            size: data.len() as u64,
        };
        let rows = self.commit(key, vec![item], mode == PutMode::Create)?;
        let row = rows
            .first()
            .ok_or_else(|| backend("committing", key, "no row"))?;
        Ok(meta_of(key.clone(), row))
    }

    fn stage(&self, near: &Key) -> Result<Box<dyn Staged>> {
        // As on a local disk, where the temporary file is made beside its
        // target: the directory it is going to exists from now on.
        // (One query when it does already; the transaction that makes it
        // only when it does not. The commit makes it again if it went.)
        if let Some(dir) = near.parent().filter(|d| !d.is_root()) {
            if !matches!(self.head(&dir), Ok(Entry::Dir { .. })) {
                self.create_dir(&dir)?;
            }
        }
        let file = tempfile::tempfile_in(&self.shared.spool_dir)
            .map_err(|e| Error::io("spooling", near, e))?;
        Ok(Box::new(CloudStaged {
            storage: CloudStorage {
                shared: self.shared.clone(),
            },
            io: Arc::new(FileIo(file)),
        }))
    }

    fn put_many(&self, objects: Vec<(Key, Vec<u8>)>) -> Result<()> {
        let Some(first) = objects.first().map(|(k, _)| k.clone()) else {
            return Ok(());
        };
        let mut items = Vec::with_capacity(objects.len());
        for (key, data) in &objects {
            let id = self.put_bytes(key, data)?;
            items.push(NewObject {
                path: key.as_str().to_string(),
                object: id,
                size: data.len() as u64,
            });
        }
        self.commit(&first, items, false).map(|_| ())
    }

    fn delete(&self, key: &Key) -> Result<()> {
        let path = key.as_str().to_string();
        self.catalog("deleting", key, move |c| {
            Box::pin(async move { catalog::delete_object(c, &path).await })
        })
    }

    fn delete_dir(&self, key: &Key) -> Result<()> {
        if key.is_root() {
            return Err(Error::Conflict {
                key: key.to_string(),
                why: "is the root, which is never removed".into(),
            });
        }
        let path = key.as_str().to_string();
        self.catalog("removing", key, move |c| {
            Box::pin(async move { catalog::delete_tree(c, &path).await })
        })
    }

    fn create_dir(&self, key: &Key) -> Result<()> {
        if key.is_root() {
            return Ok(());
        }
        let path = key.as_str().to_string();
        self.catalog("making the directory", key, move |c| {
            Box::pin(async move { catalog::create_dir(c, &path).await })
        })
    }

    fn copy(&self, from: &Key, to: &Key) -> Result<()> {
        self.transfer(from, to, true)
    }

    fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.transfer(from, to, false)
    }

    fn lock(&self, key: &Key, mode: LockMode) -> Result<Box<dyn Lock>> {
        let pool = self.shared.locks.clone();
        let id = catalog::writer_lock_id(key.as_str());
        let exclusive = mode == LockMode::Exclusive;
        let conn = self
            .shared
            .bridge
            .run(async move {
                let conn = pool.get().await?;
                let sql = if exclusive {
                    "SELECT pg_advisory_lock($1, $2)"
                } else {
                    "SELECT pg_advisory_lock_shared($1, $2)"
                };
                conn.query_one(sql, &[&catalog::WRITER_LOCKS, &id]).await?;
                Ok::<_, CatalogError>(conn)
            })
            .map_err(|e| catalog_error("locking", key, e))?;
        Ok(Box::new(CloudLock {
            key: key.clone(),
            exclusive,
            id,
            conn: Some(conn),
            shared: self.shared.clone(),
        }))
    }

    fn usage(&self, key: &Key) -> Result<u64> {
        let path = key.as_str().to_string();
        let is_root = key.is_root();
        self.catalog("measuring", key, move |c| {
            Box::pin(async move {
                if !is_root && catalog::head(&*c, &path).await?.is_none() {
                    return Ok(0);
                }
                catalog::usage(&*c, &path).await
            })
        })
    }

    fn set_modified(&self, key: &Key, when: SystemTime) -> Result<()> {
        let path = key.as_str().to_string();
        self.catalog("setting the time of", key, move |c| {
            Box::pin(async move { catalog::set_modified(&*c, &path, when).await })
        })
    }

    fn check_health(&self) -> Result<()> {
        self.ping()
            .map_err(|e| backend("checking", &Key::root(), e))
    }

    /// Collects garbage due, and removes uploads that no commit ever made
    /// visible (a replica killed between upload and commit) once they are
    /// older than the grace period.
    /// Collects what is due: superseded objects, and uploads whose commit
    /// never came (their reservations). Lists nothing.
    fn sweep(&self) -> Result<usize> {
        collect(&self.shared)
    }
}

impl CloudStorage {
    fn transfer(&self, from: &Key, to: &Key, keep_source: bool) -> Result<()> {
        if from.is_root() || to.is_root() {
            return Err(Error::Conflict {
                key: to.to_string(),
                why: "cannot be the root".into(),
            });
        }
        let (f, t) = (from.as_str().to_string(), to.as_str().to_string());
        let op = if keep_source { "copying" } else { "moving" };
        self.catalog(op, from, move |c| {
            Box::pin(async move { catalog::transfer(c, &f, &t, keep_source).await })
        })
    }
}
