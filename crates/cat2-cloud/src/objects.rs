//! The data objects on S3: immutable, one per committed version.
//!
//! Every version of every dataset is its own object, `data/<uuid>` below
//! the configured prefix, written once and never changed; what a path holds
//! is the catalog's business ([`crate::catalog`]). Immutability is what
//! makes the rest simple on a store that ignores conditional writes (Garage):
//! a reader that found an object in the catalog reads bytes that cannot
//! change under it (no `If-Match` needed), and a cache keyed by the object
//! never goes stale — the page cache below is shared by every reader of the
//! replica without any invalidation.
//!
//! Small reads (frame headers, offset indexes, trailers, HDF5 metadata: what
//! C-Blosc2 and the HDF5 reader ask for before any chunk) go through that
//! cache as [`PAGE`]-sized pieces; large reads (chunks) are one ranged GET
//! each, kept in the same cache under their exact range (a chunk read again
//! — the next slice of the same frame, a viewer stepping back — costs no
//! GET; an object store's GET is several milliseconds, Garage's ~6 ms).
//! Ranges larger than an eighth of the cache are never kept.
//! Uploads of staged objects are single PUTs up to [`PART`] and multipart
//! uploads above, a few parts in flight, read from the spool file piece by
//! piece (constant memory whatever the size).

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::bridge::Bridge;

/// Bytes of one cached page.
pub(crate) const PAGE: usize = 64 << 10;
/// Bytes of one part of a multipart upload (S3 wants at least 5 MiB).
pub(crate) const PART: usize = 8 << 20;
/// Parts uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The bucket (and prefix) the data objects live in.
#[derive(Debug)]
pub(crate) struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    cache: PageCache,
}

pub(crate) type ObjectResult<T> = Result<T, object_store::Error>;

impl Objects {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, prefix: &str, cache_bytes: usize) -> Objects {
        Objects {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            cache: PageCache::new(cache_bytes),
        }
    }

    /// A fresh object id (`data/<uuid>`), never used before.
    pub(crate) fn new_id() -> String {
        format!("data/{}", uuid::Uuid::new_v4().simple())
    }

    fn path(&self, id: &str) -> ObjectPath {
        object_path(&self.prefix, id)
    }

    /// Bytes `[offset, offset + buf.len())` of object `id` (of `size` bytes)
    /// into `buf`; answers how many (fewer only at the end).
    pub(crate) fn read_at(
        &self,
        bridge: &Bridge,
        id: &Arc<str>,
        size: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> std::io::Result<usize> {
        let end = offset.saturating_add(buf.len() as u64).min(size);
        if offset >= end {
            return Ok(0);
        }
        let n = (end - offset) as usize;
        if n > PAGE {
            let key = RangeKey::exact(id, offset, n);
            let bytes = match self.cache.get(&key) {
                Some(b) => b,
                None => {
                    let b = self.get_range(bridge, id, offset..end)?;
                    check_length(&b, n)?;
                    self.cache.put(key, b.clone());
                    b
                }
            };
            buf[..n].copy_from_slice(&bytes);
            return Ok(n);
        }
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let page = at / PAGE as u64;
            let key = RangeKey::page(id, page);
            let data = match self.cache.get(&key) {
                Some(d) => d,
                None => {
                    let start = page * PAGE as u64;
                    let stop = (start + PAGE as u64).min(size);
                    let d = self.get_range(bridge, id, start..stop)?;
                    check_length(&d, (stop - start) as usize)?;
                    self.cache.put(key, d.clone());
                    d
                }
            };
            let within = (at - page * PAGE as u64) as usize;
            let take = (n - done).min(data.len() - within);
            buf[done..done + take].copy_from_slice(&data[within..within + take]);
            done += take;
        }
        Ok(n)
    }

    fn get_range(
        &self,
        bridge: &Bridge,
        id: &str,
        range: std::ops::Range<u64>,
    ) -> std::io::Result<Bytes> {
        let store = self.store.clone();
        let path = self.path(id);
        bridge
            .run(async move { store.get_range(&path, range).await })
            .map_err(std::io::Error::other)
    }

    /// Uploads the `size` bytes `file` holds as object `id`.
    pub(crate) fn upload(
        &self,
        bridge: &Bridge,
        id: &str,
        mut file: std::fs::File,
        size: u64,
    ) -> std::io::Result<()> {
        let path = self.path(id);
        let store = self.store.clone();
        if size <= PART as u64 {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data)?;
            let payload = PutPayload::from(data);
            return bridge
                .run(async move { store.put(&path, payload).await.map(|_| ()) })
                .map_err(std::io::Error::other);
        }
        let mut upload = {
            let (store, path) = (store.clone(), path.clone());
            bridge
                .run(async move { store.put_multipart(&path).await })
                .map_err(std::io::Error::other)?
        };
        let mut sent = || -> std::io::Result<()> {
            let mut in_flight = std::collections::VecDeque::new();
            loop {
                let mut part = Vec::with_capacity(PART);
                (&mut file).take(PART as u64).read_to_end(&mut part)?;
                if part.is_empty() {
                    break;
                }
                in_flight.push_back(bridge.start(upload.put_part(PutPayload::from(part))));
                if in_flight.len() >= PARTS_IN_FLIGHT {
                    if let Some(p) = in_flight.pop_front() {
                        p.wait().map_err(std::io::Error::other)?;
                    }
                }
            }
            for p in in_flight {
                p.wait().map_err(std::io::Error::other)?;
            }
            Ok(())
        };
        match sent() {
            Ok(()) => bridge
                .run(async move { upload.complete().await.map(|_| ()) })
                .map_err(std::io::Error::other),
            Err(e) => {
                let _ = bridge.run(async move { upload.abort().await });
                Err(e)
            }
        }
    }

    /// Removes the objects `ids` (those already gone count as removed).
    pub(crate) fn delete(&self, bridge: &Bridge, ids: Vec<String>) -> ObjectResult<()> {
        bridge.run(self.deleter()(ids))
    }

    /// What removes objects, as a future of its own (to run inside another
    /// task on the bridge's runtime).
    pub(crate) fn deleter(
        &self,
    ) -> impl FnOnce(Vec<String>) -> futures_util::future::BoxFuture<'static, ObjectResult<()>>
    {
        let store = self.store.clone();
        let prefix = self.prefix.clone();
        move |ids| {
            Box::pin(async move {
                for id in ids {
                    let path = object_path(&prefix, &id);
                    match store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
        }
    }

    /// The ids of data objects last modified before `before` (for the sweep
    /// of uploads whose commit never happened).
    pub(crate) fn list_older_than(
        &self,
        bridge: &Bridge,
        before: std::time::SystemTime,
    ) -> ObjectResult<Vec<String>> {
        use futures_util::TryStreamExt;
        let store = self.store.clone();
        let data = self.path("data");
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        bridge.run(async move {
            let metas: Vec<object_store::ObjectMeta> =
                store.list(Some(&data)).try_collect().await?;
            Ok(metas
                .into_iter()
                .filter(|m| std::time::SystemTime::from(m.last_modified) < before)
                .map(|m| {
                    let full = m.location.to_string();
                    full.strip_prefix(&strip).unwrap_or(&full).to_string()
                })
                .collect())
        })
    }

    /// Answers whether the bucket answers (for `/healthz`).
    pub(crate) fn ping(&self, bridge: &Bridge) -> ObjectResult<()> {
        let store = self.store.clone();
        let probe = self.path("data/healthz-probe");
        bridge.run(async move {
            match store.head(&probe).await {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }
}

fn object_path(prefix: &str, id: &str) -> ObjectPath {
    if prefix.is_empty() {
        ObjectPath::from(id)
    } else {
        ObjectPath::from(format!("{prefix}/{id}"))
    }
}

fn check_length(bytes: &Bytes, want: usize) -> std::io::Result<()> {
    if bytes.len() == want {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the object store answered {} bytes for {want}", bytes.len()),
        ))
    }
}

/// What the cache keeps a range of an object under: a page (`len` 0) or
/// an exact range read whole.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RangeKey {
    id: Arc<str>,
    offset: u64,
    len: usize,
}

impl RangeKey {
    fn page(id: &Arc<str>, page: u64) -> RangeKey {
        RangeKey {
            id: id.clone(),
            offset: page,
            len: 0,
        }
    }

    fn exact(id: &Arc<str>, offset: u64, len: usize) -> RangeKey {
        RangeKey {
            id: id.clone(),
            offset,
            len,
        }
    }
}

/// Recently read ranges of objects, bounded in bytes, evicting the least
/// recently used. Objects never change, so nothing is ever invalidated.
#[derive(Debug)]
struct PageCache {
    capacity: usize,
    inner: Mutex<Pages>,
}

#[derive(Debug, Default)]
struct Pages {
    map: HashMap<RangeKey, (Bytes, u64)>,
    /// Keys by last use, oldest first (the tick of their last use).
    order: std::collections::BTreeMap<u64, RangeKey>,
    bytes: usize,
    tick: u64,
}

impl PageCache {
    fn new(capacity: usize) -> PageCache {
        PageCache {
            capacity,
            inner: Mutex::new(Pages::default()),
        }
    }

    fn get(&self, key: &RangeKey) -> Option<Bytes> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let pages = &mut *guard;
        pages.tick += 1;
        let tick = pages.tick;
        let entry = pages.map.get_mut(key)?;
        let old = std::mem::replace(&mut entry.1, tick);
        let data = entry.0.clone();
        if let Some(k) = pages.order.remove(&old) {
            pages.order.insert(tick, k);
        }
        Some(data)
    }

    fn put(&self, key: RangeKey, data: Bytes) {
        if data.len() > self.capacity / 8 {
            return;
        }
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let pages = &mut *guard;
        pages.tick += 1;
        let tick = pages.tick;
        pages.bytes += data.len();
        pages.order.insert(tick, key.clone());
        if let Some((old, old_tick)) = pages.map.insert(key, (data, tick)) {
            pages.bytes -= old.len();
            pages.order.remove(&old_tick);
        }
        while pages.bytes > self.capacity {
            let Some((_, oldest)) = pages.order.pop_first() else {
                break;
            };
            if let Some((gone, _)) = pages.map.remove(&oldest) {
                pages.bytes -= gone.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_to_its_bytes_and_drops_the_least_recent() {
        let cache = PageCache::new(8 * 30);
        let a: Arc<str> = Arc::from("data/a");
        for page in 0..8 {
            cache.put(RangeKey::page(&a, page), Bytes::from(vec![page as u8; 30]));
        }
        assert!(cache.get(&RangeKey::page(&a, 0)).is_some()); // 0 is now the most recent
        cache.put(RangeKey::exact(&a, 5000, 30), Bytes::from(vec![9; 30]));
        assert!(
            cache.get(&RangeKey::page(&a, 1)).is_none(),
            "the least recent went"
        );
        assert_eq!(cache.get(&RangeKey::page(&a, 0)).unwrap()[0], 0);
        assert_eq!(cache.get(&RangeKey::exact(&a, 5000, 30)).unwrap()[0], 9);
        assert!(
            cache.get(&RangeKey::exact(&a, 5000, 29)).is_none(),
            "exact ranges only"
        );
        let pages = cache.inner.lock().unwrap();
        assert_eq!(pages.bytes, 240);
        assert_eq!(pages.order.len(), pages.map.len());
        drop(pages);
        cache.put(RangeKey::exact(&a, 0, 31), Bytes::from(vec![0; 31]));
        assert!(
            cache.get(&RangeKey::exact(&a, 0, 31)).is_none(),
            "larger than an eighth of the cache"
        );
    }
}
