//! What one request may spend: working memory, time, and whether it is
//! still wanted.
//!
//! A [`Budget`] is made per request by the server and travels with the
//! [`crate::resolve::Resolver`] that resolves its paths, so every dataset
//! opened for the request, and every reader and computation they start,
//! answer to it. Three rules:
//!
//! * **Memory is reserved before it is allocated.** Code that is about to
//!   hold a buffer whose size follows from the request (a result chunk, a
//!   gathered selection, the frame being built) calls [`Budget::reserve`]
//!   with the size it computed from shapes and chunk sizes. A size past the
//!   request's limit is refused at once ([`Error::TooLarge`]: 413, saying
//!   what was asked, the limit, and how to ask for less); a size that fits
//!   the request but not what all requests hold together waits for room in
//!   the server's [`MemoryPool`] until the request's deadline, so many
//!   medium requests queue instead of adding up.
//! * **Work stops when nobody wants it.** [`Budget::check`] fails once the
//!   request was cancelled (the client went away: the server cancels the
//!   budget when it drops the request) or its time limit passed; the chunk
//!   loops and the expression engine call it between chunks and blocks, so a
//!   computation stops within a block and its reservations are returned as
//!   the stack unwinds.
//! * **Internal work is unbudgeted.** [`Budget::unlimited`] is for the
//!   server's own operations (unfolding, appending) and for tests; requests
//!   always get a real one.
//!
//! Rejected: counting allocations with a global allocator hook (it cannot
//! refuse *before* the allocation, and it cannot tell whose request an
//! allocation serves when rayon's threads work for several).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The limits every request runs with (the `[server]` table's).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Working memory of one request, in bytes.
    pub request_memory: u64,
    /// Working memory of all requests together, in bytes.
    pub total_memory: u64,
    /// Longest a computation may run.
    pub compute_time: Duration,
    /// Bytes of storage one computed answer may be spilled into when it
    /// does not fit `request_memory` (0: never spilled, refused instead).
    pub request_disk: u64,
    /// Bytes of storage all spilled answers together may hold.
    pub total_disk: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_memory: 512 << 20,
            total_memory: 1 << 30,
            compute_time: Duration::from_secs(600),
            request_disk: 8 << 30,
            total_disk: 32 << 30,
        }
    }
}

/// The server's working memory, shared by all requests: a semaphore over
/// bytes.
#[derive(Debug)]
pub struct MemoryPool {
    limit: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

impl MemoryPool {
    pub fn new(limit: u64) -> Arc<MemoryPool> {
        Arc::new(MemoryPool {
            limit,
            used: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    /// Bytes reserved now, by all requests.
    pub fn in_use(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `bytes` when there is room, waiting while `keep_waiting` says
    /// so; `false` when it gave up.
    fn take(&self, bytes: u64, keep_waiting: impl Fn() -> bool) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if *used + bytes <= self.limit {
                *used += bytes;
                return true;
            }
            if !keep_waiting() {
                return false;
            }
            // Woken by every release; the timeout re-checks the deadline
            // and cancellation of a request that waits long.
            used = match self.freed.wait_timeout(used, Duration::from_millis(100)) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    fn give_back(&self, bytes: u64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(bytes);
        self.freed.notify_all();
    }
}

/// What one request may still spend (cheap to clone: clones share it).
#[derive(Debug, Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Bytes the request may hold at once (`u64::MAX`: no limit).
    memory: u64,
    /// Bytes it holds now.
    held: AtomicU64,
    pool: Option<Arc<MemoryPool>>,
    /// When computing must stop, and the limit that set it (for messages).
    deadline: Option<(Instant, Duration)>,
    cancelled: AtomicBool,
    spill: Option<Spill>,
}

/// Where a computed answer too large for the request's memory is written
/// instead (an object staged in `storage`, never committed, removed once
/// sent), how large it may grow there, and the server's [`SpillPool`] it
/// counts against.
#[derive(Debug, Clone)]
pub struct Spill {
    pub storage: Arc<dyn crate::storage::Storage>,
    pub limit: u64,
    pub pool: Arc<SpillPool>,
}

/// The storage all spilled answers share: a counter of bytes that refuses
/// (it does not wait: a spill is written as the answer is computed, and
/// waiting would hold the computation) past its limit.
#[derive(Debug)]
pub struct SpillPool {
    limit: u64,
    used: AtomicU64,
}

impl SpillPool {
    pub fn new(limit: u64) -> Arc<SpillPool> {
        Arc::new(SpillPool {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Bytes spilled now, by all requests.
    pub fn in_use(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Nothing taken yet, to [`SpillHold::grow`].
    pub fn hold(self: &Arc<Self>) -> SpillHold {
        SpillHold {
            pool: self.clone(),
            bytes: 0,
        }
    }
}

/// Bytes of a [`SpillPool`] held by one spilled answer, given back when
/// dropped (with the answer's spill object).
#[derive(Debug)]
pub struct SpillHold {
    pool: Arc<SpillPool>,
    bytes: u64,
}

impl SpillHold {
    /// Takes `more` bytes, or refuses (503) when all spills together would
    /// pass the pool's limit.
    pub fn grow(&mut self, more: u64) -> Result<()> {
        let pool = &self.pool;
        let taken = pool
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(more).filter(|&after| after <= pool.limit)
            });
        if taken.is_err() {
            return Err(Error::Busy(format!(
                "the storage for answers too large for memory ({}, total_disk_limit) is held by other requests; retry later, or ask for less at a time",
                describe_bytes(pool.limit)
            )));
        }
        self.bytes += more;
        Ok(())
    }
}

impl Drop for SpillHold {
    fn drop(&mut self) {
        self.pool.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Budget {
    /// No limits: the server's own work, and tests.
    pub fn unlimited() -> Budget {
        Budget {
            inner: Arc::new(Inner {
                memory: u64::MAX,
                held: AtomicU64::new(0),
                pool: None,
                deadline: None,
                cancelled: AtomicBool::new(false),
                spill: None,
            }),
        }
    }

    /// A request's budget under `limits`, drawing on `pool`; its time starts now.
    pub fn new(limits: &Limits, pool: Arc<MemoryPool>) -> Budget {
        Budget::made(limits, pool, None)
    }

    /// [`Budget::new`], with answers too large for memory spilled into
    /// `storage` (up to `limits.request_disk` each and what `spills` has
    /// room for; none when `request_disk` is 0).
    pub fn spilling_to(
        limits: &Limits,
        pool: Arc<MemoryPool>,
        storage: Arc<dyn crate::storage::Storage>,
        spills: Arc<SpillPool>,
    ) -> Budget {
        let spill = (limits.request_disk > 0).then(|| Spill {
            storage,
            limit: limits.request_disk,
            pool: spills,
        });
        Budget::made(limits, pool, spill)
    }

    fn made(limits: &Limits, pool: Arc<MemoryPool>, spill: Option<Spill>) -> Budget {
        Budget {
            inner: Arc::new(Inner {
                memory: limits.request_memory.min(pool.limit),
                held: AtomicU64::new(0),
                pool: Some(pool),
                deadline: Some((Instant::now() + limits.compute_time, limits.compute_time)),
                cancelled: AtomicBool::new(false),
                spill,
            }),
        }
    }

    /// Where an answer too large for memory may be spilled, if anywhere.
    pub(crate) fn spill(&self) -> Option<&Spill> {
        self.inner.spill.as_ref()
    }

    /// The request is not wanted any more: work on it stops at the next check.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Relaxed);
    }

    /// Bytes one request may hold at once.
    pub fn memory_limit(&self) -> u64 {
        self.inner.memory
    }

    /// Fails once the request was cancelled or its time is up. Cheap: call
    /// it between chunks and blocks.
    pub fn check(&self) -> Result<()> {
        if self.inner.cancelled.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        match self.inner.deadline {
            Some((at, limit)) if Instant::now() >= at => Err(Error::TimedOut(format!(
                "the computation took longer than the limit of {} (compute_time_limit); ask for less: a slice of the result, or a smaller expression",
                describe_duration(limit)
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses, without reserving, a single buffer of `bytes` that the
    /// request could never hold; `what` names it for the message.
    pub fn fits(&self, bytes: u64, what: &dyn Fn() -> String) -> Result<()> {
        if bytes > self.inner.memory {
            return Err(self.too_large(bytes, what));
        }
        Ok(())
    }

    /// Reserves `bytes` of working memory for as long as the answer lives:
    /// refused at once when the request could never hold them, waiting for
    /// room when other requests hold the server's memory.
    pub fn reserve(&self, bytes: u64, what: &dyn Fn() -> String) -> Result<Reservation> {
        let held = self.inner.held.fetch_add(bytes, Ordering::Relaxed);
        if held.saturating_add(bytes) > self.inner.memory {
            self.inner.held.fetch_sub(bytes, Ordering::Relaxed);
            return Err(self.too_large(held.saturating_add(bytes), what));
        }
        if let Some(pool) = &self.inner.pool {
            if !pool.take(bytes, || self.check().is_ok()) {
                self.inner.held.fetch_sub(bytes, Ordering::Relaxed);
                self.check()?;
                return Err(Error::Busy(format!(
                    "the server's working memory ({}) is held by other requests; retry later",
                    describe_bytes(pool.limit)
                )));
            }
        }
        Ok(Reservation {
            budget: self.clone(),
            bytes: AtomicU64::new(bytes),
        })
    }

    /// Refuses reading data whose chunks decompress to `chunk_bytes` each,
    /// `at_once` of them held together, when the request could never hold
    /// them: a file's chunk sizes are untrusted input (a file of a few
    /// hundred bytes may declare chunks of gigabytes), so they are checked
    /// before a chunk is decompressed.
    pub fn check_chunks(
        &self,
        chunk_bytes: u64,
        at_once: u64,
        of: &dyn fmt::Display,
    ) -> Result<()> {
        let need = chunk_bytes.saturating_mul(at_once.max(1));
        if need > self.inner.memory {
            return Err(Error::TooLarge(format!(
                "{of} has chunks of {} each, and reading it holds {at_once} at a time: {} of working memory, more than the limit of {} per request (request_memory_limit); this server cannot read it",
                describe_bytes(chunk_bytes),
                describe_bytes(need),
                describe_bytes(self.inner.memory)
            )));
        }
        Ok(())
    }

    /// A reservation of nothing yet, to [`Reservation::grow`].
    pub fn nothing_held(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: AtomicU64::new(0),
        }
    }

    fn too_large(&self, bytes: u64, what: &dyn Fn() -> String) -> Error {
        Error::TooLarge(format!(
            "{} needs {} of working memory, more than the limit of {} per request (request_memory_limit); ask for less at a time, e.g. a slice (slice_=) of the dataset",
            what(),
            describe_bytes(bytes),
            describe_bytes(self.inner.memory)
        ))
    }
}

impl Default for Budget {
    /// [`Budget::unlimited`].
    fn default() -> Budget {
        Budget::unlimited()
    }
}

/// Working memory reserved by a request, returned when dropped.
#[derive(Debug)]
#[must_use = "the memory is returned when the reservation is dropped"]
pub struct Reservation {
    budget: Budget,
    bytes: AtomicU64,
}

impl Reservation {
    /// Reserves `more` bytes on top of these, for output that grows as it
    /// is made (by several workers at once).
    pub fn grow(&self, more: u64, what: &dyn Fn() -> String) -> Result<()> {
        let extra = self.budget.reserve(more, what)?;
        let taken = extra.bytes.swap(0, Ordering::Relaxed);
        self.bytes.fetch_add(taken, Ordering::Relaxed);
        Ok(())
    }

    /// Bytes reserved.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let bytes = *self.bytes.get_mut();
        if bytes == 0 {
            return;
        }
        let inner = &self.budget.inner;
        inner.held.fetch_sub(bytes, Ordering::Relaxed);
        if let Some(pool) = &inner.pool {
            pool.give_back(bytes);
        }
    }
}

/// Bytes of `itemsize`-byte items in a box of `dims` (saturating: a size
/// too large to count is larger than any budget).
pub fn bytes_of(dims: impl IntoIterator<Item = u64>, itemsize: u64) -> u64 {
    dims.into_iter()
        .try_fold(itemsize, |n, d| n.checked_mul(d))
        .unwrap_or(u64::MAX)
}

/// The dimensions of an `i64` shape as [`bytes_of`] counts them.
pub fn dims_of(shape: &[i64]) -> impl Iterator<Item = u64> + '_ {
    shape.iter().map(|&d| d.max(0) as u64)
}

/// `512 MiB`, `1.5 GiB`, `300 bytes`.
pub fn describe_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn describe_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{} ms", d.as_millis()),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(request: u64, total: u64) -> Limits {
        Limits {
            request_memory: request,
            total_memory: total,
            compute_time: Duration::from_secs(60),
            request_disk: 0,
            total_disk: 0,
        }
    }

    #[test]
    fn spills_together_stay_within_their_pool_and_give_back_when_dropped() {
        let pool = SpillPool::new(100);
        let mut a = pool.hold();
        let mut b = pool.hold();
        a.grow(60).unwrap();
        let err = b.grow(50).unwrap_err();
        assert!(matches!(err, Error::Busy(_)), "{err}");
        assert!(err.to_string().contains("total_disk_limit"), "{err}");
        b.grow(40).unwrap();
        assert_eq!(pool.in_use(), 100);
        drop(a);
        assert_eq!(pool.in_use(), 40);
        b.grow(50).unwrap();
        drop(b);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn a_request_cannot_hold_more_than_its_limit() {
        let pool = MemoryPool::new(1000);
        let b = Budget::new(&limits(100, 1000), pool.clone());
        let what = || "the answer".to_string();
        let first = b.reserve(60, &what).unwrap();
        let err = b.reserve(60, &what).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err}");
        assert!(
            err.to_string().contains("the answer needs 120 bytes"),
            "{err}"
        );
        assert_eq!(pool.in_use(), 60);
        drop(first);
        assert_eq!(pool.in_use(), 0);
        let _again = b.reserve(100, &what).unwrap();
    }

    #[test]
    fn requests_wait_for_the_pool_and_give_up_when_cancelled() {
        let pool = MemoryPool::new(100);
        let a = Budget::new(&limits(100, 100), pool.clone());
        let b = Budget::new(&limits(100, 100), pool.clone());
        let what = || "x".to_string();
        let held = a.reserve(80, &what).unwrap();
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || b.reserve(50, &|| "y".to_string()).map(|r| r.bytes()))
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        assert_eq!(waiter.join().unwrap().unwrap(), 50);

        let _full = a.reserve(100, &what).unwrap();
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || b.reserve(50, &|| "y".to_string()).map(|r| r.bytes()))
        };
        std::thread::sleep(Duration::from_millis(50));
        b.cancel();
        assert!(matches!(waiter.join().unwrap(), Err(Error::Cancelled)));
    }

    #[test]
    fn time_runs_out() {
        let pool = MemoryPool::new(100);
        let mut l = limits(10, 100);
        l.compute_time = Duration::from_millis(0);
        let b = Budget::new(&l, pool);
        let err = b.check().unwrap_err();
        assert!(matches!(err, Error::TimedOut(_)), "{err}");
        assert!(Budget::unlimited().check().is_ok());
    }

    #[test]
    fn growing_output_is_counted() {
        let pool = MemoryPool::new(1000);
        let b = Budget::new(&limits(100, 1000), pool.clone());
        let what = || "the frame".to_string();
        let r = b.reserve(10, &what).unwrap();
        r.grow(80, &what).unwrap();
        assert_eq!(pool.in_use(), 90);
        assert!(r.grow(20, &what).is_err());
        drop(r);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(describe_bytes(512 << 20), "512 MiB");
        assert_eq!(describe_bytes(3 << 29), "1.5 GiB");
        assert_eq!(describe_bytes(300), "300 bytes");
    }
}
