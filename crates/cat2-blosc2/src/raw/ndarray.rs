//! `b2nd_array_t`: the n-dimensional array on top of a super-chunk.

use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use blosc2_rs_sys as ffi;

use super::io::{explain, IoParams};
use super::schunk::RawSChunk;
use super::{c_name, c_path, check, dparams, init, string_from_c, take_c_buffer, to_c_cparams};
use crate::error::{Error, Result};
use crate::{ArraySpec, MAX_DIM};

/// An owned b2nd array.
pub(crate) struct RawNdArray {
    ptr: NonNull<ffi::b2nd_array_t>,
    /// The user-defined I/O its super-chunk reads through, if any: dropped
    /// after the array (and its super-chunk) is freed.
    io: Option<Arc<IoParams>>,
}

// SAFETY: like its super-chunk, a b2nd array has no thread-affine state; its
// chunk cache makes reads mutate it, so it is Send but not Sync.
unsafe impl Send for RawNdArray {}

impl Drop for RawNdArray {
    fn drop(&mut self) {
        // SAFETY: we own the array (and its super-chunk) and free it once;
        // the I/O parameters its super-chunk uses are still alive (`self.io`).
        unsafe { ffi::b2nd_free(self.ptr.as_ptr()) };
    }
}

/// An owned b2nd creation context. b2nd_create_ctx copies the storage
/// struct and the cparams but keeps *pointers* to the dparams and the
/// urlpath, so those live here, boxed, for as long as the context.
struct RawNdCtx {
    ptr: NonNull<ffi::b2nd_context_t>,
    _dparams: Box<ffi::blosc2_dparams>,
    _urlpath: Option<std::ffi::CString>,
}

impl Drop for RawNdCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context; b2nd_free_ctx leaves any schunk alone.
        unsafe { ffi::b2nd_free_ctx(self.ptr.as_ptr()) };
    }
}

impl RawNdCtx {
    fn new(spec: &ArraySpec, contiguous: bool) -> Result<Self> {
        init();
        let ndim = spec.shape.len();
        if ndim > MAX_DIM || spec.chunks.len() != ndim || spec.blocks.len() != ndim {
            return Err(Error::Invalid(format!(
                "shape {:?}, chunks {:?} and blocks {:?} must have the same length (at most {MAX_DIM})",
                spec.shape, spec.chunks, spec.blocks
            )));
        }
        let dtype = c_name(&spec.dtype)?;
        let mut cp = to_c_cparams(&spec.cparams);
        let mut dp = Box::new(dparams(spec.cparams.nthreads));
        let urlpath = match &spec.urlpath {
            Some(p) => Some(c_path(p)?),
            None => None,
        };
        // In memory, a sparse super-chunk (an array of chunk pointers) lets
        // chunks be replaced without rewriting a frame; it is serialised
        // into a contiguous frame only by to_cframe. On disk, a frame file.
        let storage = ffi::blosc2_storage {
            contiguous: contiguous || urlpath.is_some(),
            urlpath: urlpath
                .as_ref()
                .map_or(std::ptr::null_mut(), |c| c.as_ptr() as *mut _),
            cparams: &mut cp,
            dparams: &mut *dp,
            io: std::ptr::null_mut(),
        };
        // SAFETY: every pointer is valid for the call and the arrays hold ndim
        // entries; b2nd_create_ctx copies the storage, cparams and dtype, and
        // the dparams and urlpath it points to are kept alive in the context.
        let ptr = unsafe {
            ffi::b2nd_create_ctx(
                &storage,
                ndim as i8,
                spec.shape.as_ptr(),
                spec.chunks.as_ptr(),
                spec.blocks.as_ptr(),
                dtype.as_ptr(),
                ffi::DTYPE_NUMPY_FORMAT as i8,
                std::ptr::null(),
                0,
            )
        };
        let ptr = NonNull::new(ptr).ok_or(Error::Null {
            op: "b2nd_create_ctx",
            what: "array description",
        })?;
        Ok(RawNdCtx {
            ptr,
            _dparams: dp,
            _urlpath: urlpath,
        })
    }
}

/// How to fill a new array.
pub(crate) enum Fill<'a> {
    Zeros,
    Uninit,
    Buffer(&'a [u8]),
}

impl RawNdArray {
    fn wrap(rc: i32, arr: *mut ffi::b2nd_array_t, op: &'static str) -> Result<Self> {
        check(rc, op)?;
        let mut a = NonNull::new(arr)
            .map(|ptr| RawNdArray { ptr, io: None })
            .ok_or(Error::Null { op, what: "array" })?;
        a.schunk()?
            .set_decompression_threads(crate::cparams::default_nthreads())?;
        Ok(a)
    }

    /// Opens an array stored as a directory (a sparse frame), by its path.
    /// (Not `b2nd_open`, which leaks the super-chunk of a frame that is not
    /// an array.)
    pub(crate) fn open(path: &Path) -> Result<Self> {
        Self::from_schunk(RawSChunk::open(path)?)
    }

    /// Opens the array whose frame starts `offset` bytes into `io` (see
    /// `RawSChunk::open_io`).
    pub(crate) fn open_io(
        io: Arc<dyn crate::io::FrameIo>,
        offset: u64,
        checked: crate::frame::CheckedFrame,
    ) -> Result<Self> {
        Self::from_schunk(RawSChunk::open_io(io, offset, checked)?)
    }

    /// Makes an array of a super-chunk with a b2nd metalayer. The array
    /// takes the super-chunk over; when that fails it is freed here.
    pub(crate) fn from_schunk(sc: RawSChunk) -> Result<Self> {
        let mut arr: *mut ffi::b2nd_array_t = std::ptr::null_mut();
        // SAFETY: sc is a live super-chunk we own; arr is an out-pointer.
        // b2nd_from_schunk (b2nd.c) stores sc in the new array only once
        // every check has passed and returns success then: on failure the
        // super-chunk is still ours, and dropping `sc` frees it.
        let rc = unsafe { ffi::b2nd_from_schunk(sc.ptr(), &mut arr) };
        check(rc, "b2nd_from_schunk")?;
        let ptr = NonNull::new(arr).ok_or(Error::Null {
            op: "b2nd_from_schunk",
            what: "array",
        })?;
        let (_, io) = sc.disown();
        let mut a = RawNdArray { ptr, io };
        a.schunk()?
            .set_decompression_threads(crate::cparams::default_nthreads())?;
        Ok(a)
    }

    pub(crate) fn from_cframe(frame: &[u8]) -> Result<Self> {
        init();
        let buf = super::MallocFrame::copy_of(frame)?;
        let mut arr: *mut ffi::b2nd_array_t = std::ptr::null_mut();
        // SAFETY: with copy=false C-Blosc2 keeps the pointer to `buf`, which
        // stays alive: on success it is adopted below (freed with the array).
        let rc = unsafe { ffi::b2nd_from_cframe(buf.ptr(), buf.len(), false, &mut arr) };
        let mut lazy = Self::wrap(rc, arr, "b2nd_from_cframe")?;
        let mut sc = lazy.schunk()?;
        sc.adopt_frame_buffer();
        buf.adopted();
        // See `RawSChunk::special_then_stored`.
        if super::schunk::RawSChunk::special_then_stored(frame)? {
            return Ok(lazy);
        }
        sc.check_before_copy()?;
        drop(sc);
        drop(lazy);
        let mut arr: *mut ffi::b2nd_array_t = std::ptr::null_mut();
        // SAFETY: with copy=true the frame is copied before the call returns
        // and never written to.
        let rc = unsafe {
            ffi::b2nd_from_cframe(
                frame.as_ptr() as *mut u8,
                frame.len() as i64,
                true,
                &mut arr,
            )
        };
        Self::wrap(rc, arr, "b2nd_from_cframe")
    }

    /// Parses the b2nd metalayer of a frame held in memory without copying
    /// it or reading any chunk (see `RawSChunk::probe_metalayers`).
    pub(crate) fn probe(frame: &[u8]) -> Result<()> {
        init();
        let mut arr: *mut ffi::b2nd_array_t = std::ptr::null_mut();
        // SAFETY: with copy=false C-Blosc2 keeps a pointer into `frame`
        // without writing to it or owning it, and reads no chunk; the array
        // is freed below while `frame` is still borrowed.
        let rc = unsafe {
            ffi::b2nd_from_cframe(
                frame.as_ptr() as *mut u8,
                frame.len() as i64,
                false,
                &mut arr,
            )
        };
        check(rc, "b2nd_from_cframe")?;
        let arr = NonNull::new(arr)
            .map(|ptr| RawNdArray { ptr, io: None })
            .ok_or(Error::Null {
                op: "b2nd_from_cframe",
                what: "array",
            })?;
        drop(arr);
        Ok(())
    }

    pub(crate) fn create(spec: &ArraySpec, fill: Fill<'_>) -> Result<Self> {
        Self::create_in(spec, fill, false)
    }

    /// Like `create`; `contiguous` keeps an in-memory array as one frame
    /// buffer, which is cheap to serialise but slow to modify.
    pub(crate) fn create_in(spec: &ArraySpec, fill: Fill<'_>, contiguous: bool) -> Result<Self> {
        let ctx = RawNdCtx::new(spec, contiguous)?;
        let mut arr: *mut ffi::b2nd_array_t = std::ptr::null_mut();
        // SAFETY: ctx is live; for Buffer the size is passed along and checked
        // by C against the array's item count.
        let (rc, op) = unsafe {
            match fill {
                Fill::Zeros => (ffi::b2nd_zeros(ctx.ptr.as_ptr(), &mut arr), "b2nd_zeros"),
                Fill::Uninit => (ffi::b2nd_uninit(ctx.ptr.as_ptr(), &mut arr), "b2nd_uninit"),
                Fill::Buffer(buf) => (
                    ffi::b2nd_from_cbuffer(
                        ctx.ptr.as_ptr(),
                        &mut arr,
                        buf.as_ptr().cast(),
                        buf.len() as i64,
                    ),
                    "b2nd_from_cbuffer",
                ),
            }
        };
        Self::wrap(rc, arr, op)
    }

    fn arr(&self) -> &ffi::b2nd_array_t {
        // SAFETY: the pointer is live while self is.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn schunk(&mut self) -> Result<RawSChunk> {
        RawSChunk::borrowed(self.arr().sc, self.io.clone())
    }

    /// The I/O error behind a failed call, if the frame is read through a
    /// `FrameIo` that reported one.
    fn explain<T>(&self, r: Result<T>) -> Result<T> {
        explain(self.io.as_ref(), "accessing the frame in", r)
    }

    pub(crate) fn ndim(&self) -> usize {
        (self.arr().ndim.max(0) as usize).min(MAX_DIM)
    }
    pub(crate) fn shape(&self) -> Vec<i64> {
        self.arr().shape[..self.ndim()].to_vec()
    }
    pub(crate) fn chunks(&self) -> Vec<i32> {
        self.arr().chunkshape[..self.ndim()].to_vec()
    }
    pub(crate) fn blocks(&self) -> Vec<i32> {
        self.arr().blockshape[..self.ndim()].to_vec()
    }
    pub(crate) fn dtype(&self) -> String {
        // SAFETY: dtype is a NUL-terminated string owned by the array.
        unsafe { string_from_c(self.arr().dtype) }
    }

    /// Writes `data` (C order) into the box `[start, stop)`.
    pub(crate) fn write_box(&mut self, start: &[i64], stop: &[i64], data: &[u8]) -> Result<()> {
        let shape: Vec<i64> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
        // SAFETY: as read_box; C only reads from `data`.
        let rc = unsafe {
            ffi::b2nd_set_slice_cbuffer(
                data.as_ptr().cast(),
                shape.as_ptr(),
                data.len() as i64,
                start.as_ptr(),
                stop.as_ptr(),
                self.ptr.as_ptr(),
            )
        };
        self.explain(check(rc, "b2nd_set_slice_cbuffer").map(drop))
    }

    /// Grows or shrinks the array (new items are zero).
    pub(crate) fn resize(&mut self, new_shape: &[i64]) -> Result<()> {
        // SAFETY: new_shape holds ndim entries (checked by the caller); a NULL
        // start means "at the end" of each dimension.
        let rc =
            unsafe { ffi::b2nd_resize(self.ptr.as_ptr(), new_shape.as_ptr(), std::ptr::null()) };
        self.explain(check(rc, "b2nd_resize").map(drop))
    }

    pub(crate) fn to_cframe(&self) -> Result<Vec<u8>> {
        let mut buf: *mut u8 = std::ptr::null_mut();
        let mut len: i64 = 0;
        let mut needs_free = false;
        // SAFETY: the array is live and the out-pointers are valid.
        let rc =
            unsafe { ffi::b2nd_to_cframe(self.ptr.as_ptr(), &mut buf, &mut len, &mut needs_free) };
        self.explain(check(rc, "b2nd_to_cframe"))?;
        // SAFETY: on success `buf` points to `len` bytes, ours to free when
        // needs_free is set.
        unsafe { take_c_buffer(buf, len.max(0) as usize, needs_free, "b2nd_to_cframe") }
    }
}
