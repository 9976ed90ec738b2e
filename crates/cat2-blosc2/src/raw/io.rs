//! C-Blosc2's user-defined I/O (`blosc2_io_cb`), backed by a [`FrameIo`].
//!
//! One set of callbacks is registered once (id [`IO_ID`], in C-Blosc2's
//! range for registered I/O backends, 160..=255). A handle opened or created
//! through it carries a `blosc2_io` whose `params` points to an
//! [`IoParams`]: the `FrameIo` plus a little state. C-Blosc2 passes that
//! pointer to `open`, which hands it back as the "stream" the other
//! callbacks get, so an access costs no allocation: `open` is free, `read`
//! is one `read_at` into the buffer C-Blosc2 allocated, `close` does nothing.
//!
//! Who frees `params`: Rust, not the `destroy` callback. The handle that C
//! uses it through (`RawSChunk`, `RawNdArray`) holds an `Arc<IoParams>` and
//! drops it after freeing the C object; a failed constructor drops it when
//! it returns. `destroy` does nothing. Reading C-Blosc2 2.21 (schunk.c,
//! frame.c) showed why it cannot be the owner: it is called when
//! `frame_from_file_offset` fails and in `blosc2_schunk_free`, but not when
//! `blosc2_schunk_new` fails (the half-made super-chunk is leaked), nor when
//! `frame_to_schunk` fails in `get_header_info` (freed with no storage yet);
//! and `frame_delete_chunk` passes the storage's `blosc2_io` itself where the
//! callbacks expect `params` (see [`resolve`]). With Rust owning it, it is
//! freed exactly once on every path, and never while C-Blosc2 can use it.
//!
//! Threads: the callbacks run on the thread that calls into C-Blosc2, and,
//! for a chunk read lazily (`blosc2_schunk_decompress_chunk`, which b2nd's
//! slice writes use), on the decompression threads too (`blosc_d` in
//! blosc2.c reads each block through `read`), which run on rayon's pool,
//! concurrently, inside that one call. So `IoParams` is `Sync` (`FrameIo` is
//! `Send + Sync`, the rest is behind mutexes).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use blosc2_rs_sys as ffi;

use crate::error::{Error, Result};
use crate::io::{read_full, FrameIo};

/// Our id among C-Blosc2's registered I/O backends.
pub(crate) const IO_ID: u8 = 201;

/// The backend's name. A static, not a const: its address is compared in
/// [`resolve`], and C-Blosc2 keeps the pointer.
static IO_NAME: &CStr = c"cat2rs";

/// Marks an `IoParams`.
const MAGIC: u64 = u64::from_le_bytes(*b"cat2rsIO");

/// The `urlpath` given to C-Blosc2 when opening through the callbacks.
///
/// C-Blosc2 never opens it (every access goes through `open`, which ignores
/// it) but `frame_from_file_offset` calls `stat(urlpath)` before it uses
/// the callbacks: a path that does not exist fails the open, and a
/// directory is taken for a sparse frame, read by chunk file names.
/// `/dev/null` exists everywhere and is a character device, so the frame is
/// read as the contiguous frame it is, through the callbacks only.
pub(crate) static OPEN_URLPATH: &CStr = c"/dev/null";

/// The `urlpath` given to C-Blosc2 when creating a frame through the
/// callbacks. `blosc2_schunk_new` refuses a `urlpath` that `stat` finds
/// ("you are trying to overwrite an existing frame"), so this one must not
/// exist, ever: nothing can exist below `/dev/null`, which is not a
/// directory. It is only stored and passed back to `open`.
pub(crate) static CREATE_URLPATH: &CStr = c"/dev/null/cat2rs-frame";

/// What the callbacks reach a frame through.
///
/// `repr(C)`, with a zero word at offset 8, so that [`resolve`] can tell it
/// from a `blosc2_io` (whose name pointer is at offset 8).
#[repr(C)]
pub(crate) struct IoParams {
    magic: u64,
    /// Always zero (read only through a `blosc2_io` pointer, in `resolve`).
    _not_a_name: usize,
    io: Arc<dyn FrameIo>,
    /// Parts of the frame already read (and checked) by `crate::frame`,
    /// as (position, bytes), served from here while the frame is opened:
    /// C-Blosc2 then parses exactly the bytes that were checked, and cannot
    /// fail on an I/O error half-way through opening (a path on which
    /// C-Blosc2 2.21 frees the frame twice).
    opening: Mutex<Vec<(u64, Vec<u8>)>>,
    /// The last failure of `io`, for the error a C-Blosc2 failure becomes.
    error: Mutex<Option<std::io::Error>>,
    /// The most bytes one read may ask for (see
    /// `crate::frame::CheckedFrame::largest_read`); a bigger read is what a
    /// damaged size asks for, and fails before anything is read.
    read_limit: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl IoParams {
    pub(crate) fn new(io: Arc<dyn FrameIo>) -> Arc<IoParams> {
        Arc::new(IoParams {
            magic: MAGIC,
            _not_a_name: 0,
            io,
            opening: Mutex::new(Vec::new()),
            error: Mutex::new(None),
            read_limit: AtomicU64::new(u64::MAX),
        })
    }

    /// The `blosc2_io` that makes C-Blosc2 use the callbacks on this.
    /// `params` is valid for as long as `self` is.
    pub(crate) fn c_io(self: &Arc<Self>) -> ffi::blosc2_io {
        ffi::blosc2_io {
            id: IO_ID,
            name: IO_NAME.as_ptr(),
            params: Arc::as_ptr(self) as *mut c_void,
        }
    }

    pub(crate) fn name(&self) -> String {
        catch_unwind(AssertUnwindSafe(|| self.io.name())).unwrap_or_else(|_| "a frame".into())
    }

    /// Serves reads of `parts` from memory until [`IoParams::opened`].
    pub(crate) fn opening(&self, parts: Vec<(u64, Vec<u8>)>) {
        *lock(&self.opening) = parts;
    }

    pub(crate) fn opened(&self) {
        lock(&self.opening).clear();
    }

    /// Refuses reads of more than `most` bytes from now on (writes raise
    /// the bound to what they wrote: a frame written through this grows).
    pub(crate) fn limit_reads(&self, most: u64) {
        self.read_limit.store(most, Ordering::Relaxed);
    }

    /// Whether a read of `len` bytes at `pos` may go ahead; records why
    /// not otherwise.
    fn read_allowed(&self, pos: u64, len: usize) -> bool {
        let most = self.read_limit.load(Ordering::Relaxed);
        if len as u64 <= most {
            return true;
        }
        self.record(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a read of {len} bytes at {pos}, more than any part of this frame holds \
                 ({most} bytes): a size in it is damaged"
            ),
        ));
        false
    }

    /// Copies `len` bytes at `pos` into `dst` if they lie in one of the
    /// parts read before opening.
    fn serve_from_memory(&self, pos: u64, len: usize, dst: *mut u8) -> bool {
        let parts = lock(&self.opening);
        for (at, bytes) in parts.iter() {
            let Some(start) = pos.checked_sub(*at).and_then(|s| usize::try_from(s).ok()) else {
                continue;
            };
            if let Some(src) = start.checked_add(len).and_then(|end| bytes.get(start..end)) {
                // SAFETY: `dst` holds `len` bytes (the read callback's
                // buffer) and cannot overlap our own Vec.
                unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, len) };
                return true;
            }
        }
        false
    }

    fn record(&self, e: std::io::Error) {
        *lock(&self.error) = Some(e);
    }

    /// Runs one call of the `FrameIo`, keeping its error (or panic) for
    /// [`explain`] and returning `None` on failure.
    fn guard<T>(&self, f: impl FnOnce() -> std::io::Result<T>) -> Option<T> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.record(e);
                None
            }
            Err(_) => {
                self.record(std::io::Error::other("the frame's storage panicked"));
                None
            }
        }
    }

    pub(crate) fn take_error(&self) -> Option<std::io::Error> {
        lock(&self.error).take()
    }
}

/// Replaces the error of a failed C-Blosc2 call on a handle that reads
/// through `io` with the I/O error behind it, if there is one; either way
/// forgets that error, so it cannot explain a later failure.
pub(crate) fn explain<T>(io: Option<&Arc<IoParams>>, op: &'static str, r: Result<T>) -> Result<T> {
    let Some(io) = io else { return r };
    match (r, io.take_error()) {
        // What a damaged frame asked for (`IoParams::read_allowed`).
        (Err(_), Some(source)) if source.kind() == std::io::ErrorKind::InvalidData => {
            Err(Error::Damaged(source.to_string()))
        }
        (Err(_), Some(source)) => Err(Error::Io {
            op,
            path: io.name().into(),
            source,
        }),
        (r, _) => r,
    }
}

/// The `IoParams` behind a `params` or stream pointer from C-Blosc2.
///
/// # Safety
/// `params` must be NULL, a pointer from [`IoParams::c_io`] (or the stream
/// `io_open` returned for it), or a `blosc2_io` that C-Blosc2 copied from
/// one, and the `IoParams` must be alive; the result must not outlive it.
///
/// The last case is a bug of C-Blosc2 2.21: `frame_delete_chunk` (frame.c)
/// calls `open(urlpath, "rb+", storage->io)`, the `blosc2_io` struct instead
/// of its `params` (harmless for the stdio backend, which ignores them).
/// Both types are `repr(C)`, 8-aligned and at least 24 bytes, with an
/// initialised pointer-sized word at offset 8: the name pointer of a
/// `blosc2_io`, zero in an `IoParams`. Our name pointer there means a
/// `blosc2_io`, whose `params` are then used.
unsafe fn resolve<'a>(params: *mut c_void) -> Option<&'a IoParams> {
    if params.is_null() {
        return None;
    }
    let as_io = params as *const ffi::blosc2_io;
    // SAFETY: see above: the word at offset 8 is initialised in both types.
    let name = unsafe { std::ptr::addr_of!((*as_io).name).read() };
    let ours = if name == IO_NAME.as_ptr() {
        // SAFETY: it is a blosc2_io copied from one of ours.
        (unsafe { std::ptr::addr_of!((*as_io).params).read() }) as *const IoParams
    } else {
        params as *const IoParams
    };
    if ours.is_null() {
        return None;
    }
    // SAFETY: `ours` points to an IoParams (the caller's contract), checked
    // by its magic before a reference is made.
    unsafe {
        if std::ptr::addr_of!((*ours).magic).read() != MAGIC {
            return None;
        }
        Some(&*ours)
    }
}

/// Runs a callback body, turning a panic into the failure value `fail`:
/// unwinding into C would be undefined behaviour.
fn no_unwind<T>(fail: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fail)
}

/// `open`: the stream is the `IoParams` itself. Mode `w` (C-Blosc2 writes a
/// new frame) truncates, as `fopen` would.
unsafe extern "C" fn io_open(
    _urlpath: *const c_char,
    mode: *const c_char,
    params: *mut c_void,
) -> *mut c_void {
    no_unwind(std::ptr::null_mut(), || {
        // SAFETY: C-Blosc2 passes the params of a blosc2_io of ours.
        let Some(p) = (unsafe { resolve(params) }) else {
            return std::ptr::null_mut();
        };
        // SAFETY: mode is NULL or a NUL-terminated string literal ("rb",
        // "rb+", "wb") of C-Blosc2.
        let truncate =
            !mode.is_null() && unsafe { CStr::from_ptr(mode) }.to_bytes().first() == Some(&b'w');
        if truncate && p.guard(|| p.io.set_len(0)).is_none() {
            return std::ptr::null_mut();
        }
        p as *const IoParams as *mut c_void
    })
}

unsafe extern "C" fn io_close(_stream: *mut c_void) -> c_int {
    0
}

unsafe extern "C" fn io_size(stream: *mut c_void) -> i64 {
    no_unwind(-1, || {
        // SAFETY: the stream is what io_open returned.
        let Some(p) = (unsafe { resolve(stream) }) else {
            return -1;
        };
        p.guard(|| p.io.len())
            .and_then(|n| i64::try_from(n).ok())
            .unwrap_or(-1)
    })
}

/// `size * nitems` as a byte count a slice may have, and the position.
fn span(size: i64, nitems: i64, position: i64) -> Option<(usize, usize, u64)> {
    let size = usize::try_from(size).ok()?;
    let total = size.checked_mul(usize::try_from(nitems).ok()?)?;
    (total <= isize::MAX as usize).then_some(())?;
    Some((size, total, u64::try_from(position).ok()?))
}

/// `write`, as `fwrite` at `position`: returns `nitems` when all of them
/// were written, 0 otherwise (C-Blosc2 compares with what it asked for).
unsafe extern "C" fn io_write(
    ptr: *const c_void,
    size: i64,
    nitems: i64,
    position: i64,
    stream: *mut c_void,
) -> i64 {
    no_unwind(0, || {
        // SAFETY: the stream is what io_open returned.
        let Some(p) = (unsafe { resolve(stream) }) else {
            return 0;
        };
        let Some((_, total, pos)) = span(size, nitems, position) else {
            return 0;
        };
        if total == 0 || ptr.is_null() {
            return 0;
        }
        // SAFETY: C-Blosc2 passes `size * nitems` readable bytes at `ptr`,
        // valid for the call.
        let data = unsafe { std::slice::from_raw_parts(ptr as *const u8, total) };
        p.read_limit.fetch_max(total as u64, Ordering::Relaxed);
        match p.guard(|| p.io.write_at(pos, data)) {
            Some(()) => nitems,
            None => 0,
        }
    })
}

/// `read`, as `fread` at `position`, into the buffer C-Blosc2 allocated
/// (`is_allocation_necessary`): returns how many whole items were read,
/// fewer only at the end of the data, 0 on failure. C-Blosc2 compares the
/// count with what it asked for, so a short read is a failure there.
unsafe extern "C" fn io_read(
    ptr: *mut *mut c_void,
    size: i64,
    nitems: i64,
    position: i64,
    stream: *mut c_void,
) -> i64 {
    no_unwind(0, || {
        // SAFETY: the stream is what io_open returned.
        let Some(p) = (unsafe { resolve(stream) }) else {
            return 0;
        };
        let Some((size, total, pos)) = span(size, nitems, position) else {
            return 0;
        };
        if total == 0 || ptr.is_null() {
            return 0;
        }
        // SAFETY: with is_allocation_necessary, `*ptr` is C-Blosc2's buffer.
        let buf = unsafe { *ptr } as *mut u8;
        if buf.is_null() || !p.read_allowed(pos, total) {
            return 0;
        }
        if p.serve_from_memory(pos, total, buf) {
            return nitems;
        }
        // SAFETY: the buffer holds `size * nitems` writable bytes, valid for
        // the call and not used by C-Blosc2 meanwhile. It comes from malloc,
        // so it is zeroed first: a `&mut [u8]` must not see uninitialised
        // bytes, and a `FrameIo` may read what it is given.
        let buf = unsafe {
            std::ptr::write_bytes(buf, 0, total);
            std::slice::from_raw_parts_mut(buf, total)
        };
        match p.guard(|| read_full(&*p.io, pos, buf)) {
            Some(n) => (n / size) as i64,
            None => 0,
        }
    })
}

unsafe extern "C" fn io_truncate(stream: *mut c_void, size: i64) -> c_int {
    no_unwind(-1, || {
        // SAFETY: the stream is what io_open returned.
        let Some(p) = (unsafe { resolve(stream) }) else {
            return -1;
        };
        let Ok(len) = u64::try_from(size) else {
            return -1;
        };
        match p.guard(|| p.io.set_len(len)) {
            Some(()) => 0,
            None => -1,
        }
    })
}

/// Nothing to free: the params belong to the Rust handle (module docs).
unsafe extern "C" fn io_destroy(_params: *mut c_void) -> c_int {
    0
}

/// Registers the callbacks; called once, by `raw::init`. Returns C-Blosc2's
/// status code.
pub(super) fn register() -> i32 {
    let cb = ffi::blosc2_io_cb {
        id: IO_ID,
        name: IO_NAME.as_ptr() as *mut c_char,
        is_allocation_necessary: true,
        open: Some(io_open),
        close: Some(io_close),
        size: Some(io_size),
        write: Some(io_write),
        read: Some(io_read),
        truncate: Some(io_truncate),
        destroy: Some(io_destroy),
    };
    // SAFETY: C-Blosc2 is initialised (init calls this after blosc2_init);
    // it copies the struct, and the name it keeps pointing to is static.
    unsafe { ffi::blosc2_register_io_cb(&cb) }
}

/// Whether frames can be read through the callbacks: they are registered,
/// and [`OPEN_URLPATH`] is what `frame_from_file_offset` needs.
pub(crate) fn ready() -> Result<()> {
    static READY: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    super::init();
    READY
        .get_or_init(|| {
            let rc = super::io_registration();
            if rc < 0 {
                return Err(format!(
                    "C-Blosc2 refused to register the I/O backend {IO_ID} (code {rc})"
                ));
            }
            let path = OPEN_URLPATH.to_str().unwrap_or("/dev/null");
            match std::fs::metadata(path) {
                Ok(m) if !m.is_dir() => Ok(()),
                _ => Err(format!(
                    "{path} is missing or a directory: C-Blosc2 cannot read frames through Rust"
                )),
            }
        })
        .clone()
        .map_err(Error::Invalid)
}
