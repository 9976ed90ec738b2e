//! The only place that calls C-Blosc2.
//!
//! Every C object gets one owning newtype (`RawSChunk`, `RawNdArray`,
//! `RawCtx`) whose `Drop` frees it; no raw pointer leaves this module, and
//! every status code goes through [`check`]. The callbacks through which
//! C-Blosc2 reads frames from a `FrameIo` are in `io`.

pub(crate) mod chunk;
pub(crate) mod io;
pub(crate) mod ndarray;
pub(crate) mod schunk;

use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::sync::OnceLock;

use blosc2_rs_sys as ffi;

use crate::error::{Error, Result};

extern "C" {
    // C-Blosc2 hands out buffers from `malloc` (vlmeta contents, cframes with
    // `needs_free`); they must go back to the same allocator.
    fn free(ptr: *mut c_void);
    fn malloc(size: usize) -> *mut c_void;
}

/// A copy of `frame` in a `malloc` buffer, for C-Blosc2 to adopt.
///
/// Why: opening an in-memory frame with `copy=true` runs a loop in C-Blosc2
/// 2.21 (`frame_to_schunk`) that frees a pointer into the caller's buffer
/// when a special chunk (zeros, NaN, uninit) is followed by a stored one.
/// Opening with `copy=false` skips that loop; handing over a buffer from
/// `malloc` and letting C-Blosc2 own it (`avoid_cframe_free = false`) keeps
/// the handle independent of the caller and lets C-Blosc2 `realloc` it
/// when metadata is written.
pub(crate) struct MallocFrame {
    ptr: *mut u8,
    len: usize,
}

impl MallocFrame {
    pub(crate) fn copy_of(frame: &[u8]) -> Result<MallocFrame> {
        // SAFETY: malloc has no preconditions; a null result is checked.
        let ptr = unsafe { malloc(frame.len().max(1)) } as *mut u8;
        if ptr.is_null() {
            return Err(Error::Invalid(format!(
                "cannot allocate {} bytes for a frame",
                frame.len()
            )));
        }
        // SAFETY: ptr holds at least frame.len() bytes and does not overlap frame.
        unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), ptr, frame.len()) };
        Ok(MallocFrame {
            ptr,
            len: frame.len(),
        })
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub(crate) fn len(&self) -> i64 {
        self.len as i64
    }

    /// C-Blosc2 now owns the buffer (and frees it with the super-chunk).
    pub(crate) fn adopted(self) {
        std::mem::forget(self);
    }
}

impl Drop for MallocFrame {
    fn drop(&mut self) {
        // SAFETY: the buffer came from malloc and was not adopted.
        unsafe { free(self.ptr as *mut c_void) }
    }
}

/// Initialises C-Blosc2 exactly once per process. Called by every
/// constructor, so callers never have to.
///
/// C-Blosc2's parallel (de)compression runs on rayon's pool, through its
/// threads callback, instead of on threads of its own: C-Blosc2 starts a
/// pool of pthreads per context and joins them when the context is freed,
/// and some of its contexts live for one call (every chunk appended to a
/// contiguous frame recompresses the offsets index with 4 threads), so a
/// request could start and stop dozens of threads. The callback must be set
/// before any context exists, hence here, before anything else.
///
/// The I/O callbacks that frames are read and written through (`io`) are
/// registered here too, once for the process.
pub(crate) fn init() {
    INIT.get_or_init(|| {
        // SAFETY: blosc2_init has no preconditions; OnceLock makes it run
        // once, and every constructor calls init() before making a context,
        // so the callback is in place before C-Blosc2 could start a thread.
        unsafe {
            ffi::blosc2_init();
            ffi::blosc2_set_threads_callback(Some(run_jobs_on_rayon), std::ptr::null_mut());
        }
        // The user-defined I/O that frames are read through (see `io`).
        io::register()
    });
}

/// What `init` did once: C-Blosc2's status code for registering the I/O
/// callbacks.
static INIT: OnceLock<i32> = OnceLock::new();

/// The status code of registering the I/O callbacks (after `init`).
pub(crate) fn io_registration() -> i32 {
    init();
    INIT.get().copied().unwrap_or(-1)
}

/// A pointer to job data that rayon's threads may use: C-Blosc2 keeps it
/// alive and unshared until the callback returns, and its jobs synchronise
/// among themselves (a mutex-guarded block counter).
#[derive(Clone, Copy)]
struct JobData(*mut u8);
// SAFETY: see above; each job gets its own element of the array.
unsafe impl Send for JobData {}
unsafe impl Sync for JobData {}

/// C-Blosc2's threads callback: `dojob(jobdata + i * elsize)` for every job
/// `i`, job 0 on the calling thread and the others on rayon's pool, returning
/// when all are done. Jobs never wait for one another, so running them one
/// after the other (a busy pool) is correct too.
unsafe extern "C" fn run_jobs_on_rayon(
    _callback_data: *mut c_void,
    dojob: Option<unsafe extern "C" fn(*mut c_void)>,
    numjobs: std::ffi::c_int,
    jobdata_elsize: usize,
    jobdata: *mut c_void,
) {
    let Some(dojob) = dojob else { return };
    let data = JobData(jobdata.cast());
    let job = move |i: usize| {
        let data = data;
        // SAFETY: C-Blosc2 passes an array of `numjobs` elements of
        // `jobdata_elsize` bytes, valid until this callback returns.
        unsafe { dojob(data.0.add(i * jobdata_elsize).cast()) }
    };
    let jobs = usize::try_from(numjobs).unwrap_or(0);
    rayon::in_place_scope(|scope| {
        for i in 1..jobs {
            scope.spawn(move |_| job(i));
        }
        if jobs > 0 {
            job(0);
        }
    });
}

/// Turns a C-Blosc2 status code into a `Result`, keeping non-negative values.
pub(crate) fn check<T: Into<i64> + Copy>(rc: T, op: &'static str) -> Result<i64> {
    let v: i64 = rc.into();
    if v < 0 {
        Err(Error::Blosc {
            op,
            code: i32::try_from(v).unwrap_or(-1),
        })
    } else {
        Ok(v)
    }
}

/// Frees a buffer that C-Blosc2 allocated with `malloc`.
///
/// # Safety
/// `ptr` must come from C-Blosc2's allocator and not be used afterwards.
pub(crate) unsafe fn c_free<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: guaranteed by the caller.
        unsafe { free(ptr.cast()) }
    }
}

/// Copies a buffer C-Blosc2 handed out, freeing it when it is ours to free.
///
/// # Safety
/// `ptr` must be NULL or valid for `len` bytes; when `needs_free` it must come
/// from C-Blosc2's allocator and is not used afterwards.
pub(crate) unsafe fn take_c_buffer(
    ptr: *mut u8,
    len: usize,
    needs_free: bool,
    op: &'static str,
) -> Result<Vec<u8>> {
    if ptr.is_null() {
        return Err(crate::Error::Null { op, what: "buffer" });
    }
    // SAFETY: guaranteed by the caller.
    let out = unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
    if needs_free {
        // SAFETY: guaranteed by the caller.
        unsafe { c_free(ptr) };
    }
    Ok(out)
}

/// A path as a C string; paths with interior NUL bytes are refused.
pub(crate) fn c_path(path: &Path) -> Result<CString> {
    let s = path
        .to_str()
        .ok_or_else(|| Error::Invalid(format!("path is not UTF-8: {}", path.display())))?;
    CString::new(s).map_err(|_| Error::Invalid(format!("path contains a NUL byte: {s}")))
}

/// A name (metalayer, vlmeta key, dtype) as a C string.
pub(crate) fn c_name(name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| Error::Invalid(format!("name contains a NUL byte: {name:?}")))
}

/// Copies a NUL-terminated C string owned by C-Blosc2.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that stays valid
/// for the duration of the call.
pub(crate) unsafe fn string_from_c(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

pub(crate) fn to_c_cparams(cp: &crate::CParams) -> ffi::blosc2_cparams {
    ffi::blosc2_cparams {
        compcode: cp.codec,
        compcode_meta: cp.codec_meta,
        clevel: cp.clevel,
        use_dict: cp.use_dict as i32,
        typesize: cp.typesize,
        nthreads: cp.nthreads.max(1),
        blocksize: cp.blocksize,
        splitmode: cp.splitmode,
        schunk: std::ptr::null_mut(),
        filters: cp.filters,
        filters_meta: cp.filters_meta,
        prefilter: None,
        preparams: std::ptr::null_mut(),
        tuner_params: std::ptr::null_mut(),
        tuner_id: cp.tuner,
        instr_codec: false,
        codec_params: std::ptr::null_mut(),
        filter_params: [std::ptr::null_mut(); 6],
    }
}

pub(crate) fn dparams(nthreads: i16) -> ffi::blosc2_dparams {
    ffi::blosc2_dparams {
        nthreads: nthreads.max(1),
        schunk: std::ptr::null_mut(),
        postfilter: None,
        postparams: std::ptr::null_mut(),
    }
}
