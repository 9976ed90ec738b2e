//! `blosc2_schunk`: the super-chunk, owned or borrowed from a b2nd array.

use std::ffi::c_char;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use blosc2_rs_sys as ffi;

use super::io::{explain, IoParams, CREATE_URLPATH, OPEN_URLPATH};
use super::{
    c_free, c_name, c_path, check, dparams, init, string_from_c, take_c_buffer, to_c_cparams,
};
use crate::error::{Error, Result};
use crate::io::FrameIo;
use crate::CParams;

/// Most bytes one vlmeta entry is decompressed to: they are metadata
/// (attributes, an expression), read whole on every open that asks for them.
const MAX_VLMETA_BYTES: i32 = 64 << 20;

/// A super-chunk handle. `owned` handles free the super-chunk on drop;
/// borrowed ones point into a `RawNdArray` that outlives them.
pub(crate) struct RawSChunk {
    ptr: NonNull<ffi::blosc2_schunk>,
    owned: bool,
    /// The user-defined I/O the frame is read through, if any. C-Blosc2
    /// holds a pointer to it, so it is dropped after the super-chunk is
    /// freed (`Drop::drop` runs before the fields are dropped).
    io: Option<Arc<IoParams>>,
}

// SAFETY: C-Blosc2 keeps no thread-affine state in a super-chunk (file access
// goes through its open/close callbacks per call, and the I/O parameters of
// ours are `Send + Sync`), so a handle may move between threads. It is not
// Sync: reads mutate internal caches, so it must never be used from two
// threads at once.
unsafe impl Send for RawSChunk {}

impl Drop for RawSChunk {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: we own the super-chunk and free it exactly once; the
            // I/O parameters it points to are still alive (`self.io`).
            unsafe { ffi::blosc2_schunk_free(self.ptr.as_ptr()) };
        }
    }
}

impl RawSChunk {
    /// Borrows the super-chunk of an array; the caller keeps the array alive
    /// at least as long as the returned handle.
    pub(crate) fn borrowed(
        ptr: *mut ffi::blosc2_schunk,
        io: Option<Arc<IoParams>>,
    ) -> Result<Self> {
        NonNull::new(ptr)
            .map(|ptr| RawSChunk {
                ptr,
                owned: false,
                io,
            })
            .ok_or(Error::Null {
                op: "b2nd array",
                what: "super-chunk",
            })
    }

    fn owned(ptr: *mut ffi::blosc2_schunk, op: &'static str) -> Result<Self> {
        Self::owned_with(ptr, op, None)
    }

    fn owned_with(
        ptr: *mut ffi::blosc2_schunk,
        op: &'static str,
        io: Option<Arc<IoParams>>,
    ) -> Result<Self> {
        let opened = NonNull::new(ptr)
            .map(|ptr| RawSChunk {
                ptr,
                owned: true,
                io: io.clone(),
            })
            .ok_or(Error::Null { op, what: "frame" });
        let mut sc = explain(io.as_ref(), "opening a frame in", opened)?;
        sc.set_decompression_threads(crate::cparams::default_nthreads())?;
        Ok(sc)
    }

    /// Gives up the super-chunk to a b2nd array that now frees it, and hands
    /// back the I/O parameters it uses, which the array must keep.
    pub(crate) fn disown(mut self) -> (*mut ffi::blosc2_schunk, Option<Arc<IoParams>>) {
        self.owned = false;
        (self.ptr.as_ptr(), self.io.take())
    }

    pub(crate) fn ptr(&self) -> *mut ffi::blosc2_schunk {
        self.ptr.as_ptr()
    }

    /// Opens a frame stored as a directory (a sparse frame), by its path.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        init();
        let cpath = c_path(path)?;
        // SAFETY: cpath is a valid NUL-terminated string for the call.
        let ptr = unsafe { ffi::blosc2_schunk_open(cpath.as_ptr()) };
        Self::owned(ptr, "blosc2_schunk_open")
    }

    /// Opens the frame that starts `offset` bytes into `io`. `checked` are
    /// the parts of it that `crate::frame` read and checked (position,
    /// bytes), which C-Blosc2 reads again while opening: they are served
    /// from memory meanwhile.
    pub(crate) fn open_io(
        io: Arc<dyn FrameIo>,
        offset: u64,
        checked: crate::frame::CheckedFrame,
    ) -> Result<Self> {
        super::io::ready()?;
        let offset = i64::try_from(offset)
            .map_err(|_| Error::Invalid(format!("offset {offset} is too large")))?;
        let params = IoParams::new(io);
        params.opening(checked.parts);
        let udio = params.c_io();
        // SAFETY: the urlpath is a static C string, only stat-ed (see
        // OPEN_URLPATH); C-Blosc2 copies `udio`, whose params stay alive in
        // `params`: in the handle on success, until this returns otherwise.
        let ptr =
            unsafe { ffi::blosc2_schunk_open_offset_udio(OPEN_URLPATH.as_ptr(), offset, &udio) };
        params.opened();
        params.limit_reads(checked.largest_read);
        Self::owned_with(ptr, "blosc2_schunk_open_offset_udio", Some(params))
    }

    /// A new, empty frame written through `io` (truncated first) as chunks
    /// are appended.
    pub(crate) fn new_io(cparams: &CParams, io: Arc<dyn FrameIo>) -> Result<Self> {
        super::io::ready()?;
        let params = IoParams::new(io);
        let mut udio = params.c_io();
        let mut cp = to_c_cparams(cparams);
        let mut dp = dparams(cparams.nthreads);
        let mut storage = ffi::blosc2_storage {
            contiguous: true,
            urlpath: CREATE_URLPATH.as_ptr() as *mut c_char,
            cparams: &mut cp,
            dparams: &mut dp,
            io: &mut udio,
        };
        // SAFETY: storage and everything it points to are valid for the
        // call, and blosc2_schunk_new copies them (the urlpath, a static C
        // string that never exists, is only stat-ed and copied: see
        // CREATE_URLPATH); the io params stay alive in `params`, kept by the
        // handle on success.
        let ptr = unsafe { ffi::blosc2_schunk_new(&mut storage) };
        Self::owned_with(ptr, "blosc2_schunk_new", Some(params))
    }

    pub(crate) fn from_cframe(frame: &[u8]) -> Result<Self> {
        init();
        let buf = super::MallocFrame::copy_of(frame)?;
        // SAFETY: with copy=false C-Blosc2 keeps the pointer to `buf`, which
        // stays alive: on success it is adopted below (freed with the handle).
        let ptr = unsafe { ffi::blosc2_schunk_from_buffer(buf.ptr(), buf.len(), false) };
        let mut lazy = Self::owned(ptr, "blosc2_schunk_from_buffer")?;
        lazy.adopt_frame_buffer();
        buf.adopted();
        if Self::special_then_stored(frame)? {
            return Ok(lazy);
        }
        lazy.check_before_copy()?;
        drop(lazy);
        // SAFETY: with copy=true C-Blosc2 copies the buffer before returning,
        // so the borrow only needs to last for the call; it never writes to it.
        let ptr = unsafe {
            ffi::blosc2_schunk_from_buffer(frame.as_ptr() as *mut u8, frame.len() as i64, true)
        };
        Self::owned(ptr, "blosc2_schunk_from_buffer")
    }

    /// Fetches every chunk of this super-chunk, opened in place on a frame
    /// in memory, and reads its header, before the frame is copied.
    ///
    /// Why: C-Blosc2 2.21 copies a frame's chunks into an array it does not
    /// zero, and when one cannot be fetched or its header is refused it
    /// frees the whole array, pointers it never set included (a crash, found
    /// by fuzzing both `blosc2_schunk_from_buffer` and `b2nd_from_cframe`).
    /// Fetching them the way the copy does, from the frame in place, finds
    /// what it would refuse first. The copy also fails, and frees what it
    /// made, when its chunks do not hold the bytes the header declares; that
    /// path freed a pointer into the frame (found by fuzzing: eight chunks
    /// "stored" at the offsets index itself, then two special ones), so that
    /// is refused here too.
    pub(crate) fn check_before_copy(&self) -> Result<()> {
        let mut held: i64 = 0;
        for n in 0..self.nchunks() {
            let (nbytes, _, _) = super::chunk::sizes(&self.chunk(n)?).map_err(|e| e.in_chunk(n))?;
            held = held.saturating_add(i64::from(nbytes));
        }
        if held != self.nbytes() {
            return Err(Error::Damaged(format!(
                "its chunks hold {held} bytes where its header declares {}",
                self.nbytes()
            )));
        }
        Ok(())
    }

    /// Whether the offsets index of `frame` (a whole frame in memory) has a
    /// stored chunk after a special one (zeros, NaN, uninit): the frames
    /// C-Blosc2 2.21 cannot copy into memory (see `MallocFrame`), which are
    /// then read in place instead. Other frames are copied, as python-blosc2
    /// does, so their figures (`cbytes`) are the same.
    ///
    /// The index, not the chunks' headers, is what C-Blosc2's copy goes by:
    /// a stored chunk may itself be a special one (a fuzzed frame of four
    /// "uninitialised" chunks, the first in the index and three stored, made
    /// it free a pointer into the frame).
    pub(crate) fn special_then_stored(frame: &[u8]) -> Result<bool> {
        use crate::frame::ChunkSlot;
        let slots = crate::frame::read_frame_index(&mut std::io::Cursor::new(frame))?;
        let first_special = slots
            .iter()
            .position(|s| matches!(s, ChunkSlot::Special(_)));
        Ok(first_special.is_some_and(|first| {
            slots[first..]
                .iter()
                .any(|s| matches!(s, ChunkSlot::Stored(_)))
        }))
    }

    /// Makes C-Blosc2 own (and free) the frame buffer this in-memory
    /// super-chunk was opened on (see `MallocFrame`).
    pub(crate) fn adopt_frame_buffer(&mut self) {
        // SAFETY: the handle is valid; the call only flips a flag of its frame.
        unsafe { ffi::blosc2_schunk_avoid_cframe_free(self.ptr.as_ptr(), false) }
    }

    /// Parses the header and trailer of a frame held in memory without
    /// copying it or reading any chunk, and returns its metalayers.
    /// (Checks what opening the frame from a file would parse, where a
    /// failure is not survivable: see `crate::frame::check_frame_io`.)
    pub(crate) fn probe_metalayers(frame: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
        init();
        // SAFETY: with copy=false C-Blosc2 keeps a pointer into `frame` and
        // marks it as not its own to free; it does not write to it, and with
        // copy=false it reads no chunk while opening. The handle is freed
        // below, while `frame` is still borrowed.
        let ptr = unsafe {
            ffi::blosc2_schunk_from_buffer(frame.as_ptr() as *mut u8, frame.len() as i64, false)
        };
        let sc = NonNull::new(ptr)
            .map(|ptr| RawSChunk {
                ptr,
                owned: true,
                io: None,
            })
            .ok_or(Error::Null {
                op: "blosc2_schunk_from_buffer",
                what: "frame",
            })?;
        let metas = sc.metalayers();
        drop(sc);
        Ok(metas)
    }

    /// A new, empty in-memory super-chunk, sparse (an array of chunk
    /// pointers) until [`RawSChunk::to_cframe`] serialises it: each append to
    /// a contiguous frame rewrites and recompresses its offsets index, with a
    /// pool of 4 threads C-Blosc2 starts and stops every time.
    pub(crate) fn new_in_memory(cparams: &CParams) -> Result<Self> {
        init();
        let mut cp = to_c_cparams(cparams);
        let mut dp = dparams(cparams.nthreads);
        let mut storage = ffi::blosc2_storage {
            contiguous: false,
            urlpath: std::ptr::null_mut(),
            cparams: &mut cp,
            dparams: &mut dp,
            io: std::ptr::null_mut(),
        };
        // SAFETY: storage and the params it points to are valid for the call;
        // blosc2_schunk_new copies them.
        let ptr = unsafe { ffi::blosc2_schunk_new(&mut storage) };
        Self::owned(ptr, "blosc2_schunk_new")
    }

    /// The I/O error behind a failed call, if the frame is read through a
    /// `FrameIo` that reported one.
    fn explain<T>(&self, r: Result<T>) -> Result<T> {
        explain(self.io.as_ref(), "accessing the frame in", r)
    }

    /// Replaces the decompression context so reads use `nthreads` threads.
    pub(crate) fn set_decompression_threads(&mut self, nthreads: i16) -> Result<()> {
        let sc = self.ptr.as_ptr();
        let mut dp = dparams(nthreads);
        dp.schunk = sc.cast();
        // SAFETY: sc is a live super-chunk; its dctx was created by C-Blosc2
        // and is replaced by a fresh one, as python-blosc2 does.
        unsafe {
            let new = ffi::blosc2_create_dctx(dp);
            if new.is_null() {
                return Err(Error::Null {
                    op: "blosc2_create_dctx",
                    what: "context",
                });
            }
            if !(*sc).dctx.is_null() {
                ffi::blosc2_free_ctx((*sc).dctx);
            }
            (*sc).dctx = new;
            if !(*sc).storage.is_null() && !(*(*sc).storage).dparams.is_null() {
                (*(*(*sc).storage).dparams).nthreads = dp.nthreads;
            }
        }
        Ok(())
    }

    fn sc(&self) -> &ffi::blosc2_schunk {
        // SAFETY: the pointer is live for as long as self (owned, or borrowed
        // from an array the caller keeps alive).
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn typesize(&self) -> i32 {
        self.sc().typesize
    }
    pub(crate) fn chunksize(&self) -> i32 {
        self.sc().chunksize
    }
    pub(crate) fn blocksize(&self) -> i32 {
        self.sc().blocksize
    }
    pub(crate) fn nchunks(&self) -> i64 {
        self.sc().nchunks
    }
    pub(crate) fn nbytes(&self) -> i64 {
        self.sc().nbytes
    }
    pub(crate) fn cbytes(&self) -> i64 {
        self.sc().cbytes
    }
    pub(crate) fn contiguous(&self) -> bool {
        let sc = self.sc();
        // SAFETY: storage, when set, is owned by the live super-chunk.
        !sc.storage.is_null() && unsafe { (*sc.storage).contiguous }
    }

    pub(crate) fn cparams(&self) -> CParams {
        let sc = self.sc();
        let (use_dict, nthreads) = if sc.storage.is_null() {
            (false, 1)
        } else {
            // SAFETY: storage and its cparams, when set, are owned by the live super-chunk.
            unsafe {
                let cp = (*sc.storage).cparams;
                if cp.is_null() {
                    (false, 1)
                } else {
                    ((*cp).use_dict != 0, (*cp).nthreads)
                }
            }
        };
        CParams {
            codec: sc.compcode,
            codec_meta: sc.compcode_meta,
            clevel: sc.clevel,
            filters: sc.filters,
            filters_meta: sc.filters_meta,
            typesize: sc.typesize,
            blocksize: sc.blocksize,
            nthreads,
            splitmode: sc.splitmode as i32,
            use_dict,
            tuner: sc.tuner_id,
        }
    }

    /// Fixed metalayers as (name, content).
    pub(crate) fn metalayers(&self) -> Vec<(String, Vec<u8>)> {
        let sc = self.sc();
        let n = (sc.nmetalayers as usize).min(sc.metalayers.len());
        let mut out = Vec::with_capacity(n);
        for &meta in &sc.metalayers[..n] {
            if meta.is_null() {
                continue;
            }
            // SAFETY: non-null metalayer entries are owned by the super-chunk,
            // with a NUL-terminated name and content_len bytes of content.
            unsafe {
                let name = string_from_c((*meta).name);
                let len = (*meta).content_len.max(0) as usize;
                let content = if (*meta).content.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts((*meta).content, len).to_vec()
                };
                out.push((name, content));
            }
        }
        out
    }

    pub(crate) fn add_metalayer(&mut self, name: &str, content: &[u8]) -> Result<()> {
        let cname = c_name(name)?;
        // SAFETY: the name is NUL-terminated; C copies the content.
        let rc = unsafe {
            ffi::blosc2_meta_add(
                self.ptr.as_ptr(),
                cname.as_ptr(),
                content.as_ptr() as *mut u8,
                content.len() as i32,
            )
        };
        self.explain(check(rc, "blosc2_meta_add").map(drop))
    }

    pub(crate) fn vlmeta_names(&self) -> Result<Vec<String>> {
        let n = self.sc().nvlmetalayers.max(0) as usize;
        let mut names: Vec<*mut c_char> = vec![std::ptr::null_mut(); n];
        // SAFETY: the array has room for nvlmetalayers pointers, which is how
        // many C writes; they point to names owned by the super-chunk.
        let rc = unsafe { ffi::blosc2_vlmeta_get_names(self.ptr.as_ptr(), names.as_mut_ptr()) };
        let got = (check(rc, "blosc2_vlmeta_get_names")? as usize).min(n);
        // SAFETY: the first `got` entries were set to valid C strings.
        Ok(names[..got]
            .iter()
            .map(|&p| unsafe { string_from_c(p) })
            .collect())
    }

    /// The content of vlmeta `name`, decompressed. Read from the handle's
    /// own copy and decompressed here rather than by `blosc2_vlmeta_get`,
    /// which allocates the size the content's header declares unchecked (a
    /// negative one from a damaged trailer is a request for exabytes).
    pub(crate) fn vlmeta_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let cname = c_name(name)?;
        // SAFETY: the name is NUL-terminated.
        let index = unsafe { ffi::blosc2_vlmeta_exists(self.ptr.as_ptr(), cname.as_ptr()) };
        let Ok(index) = usize::try_from(index) else {
            return Ok(None);
        };
        let sc = self.sc();
        if index >= (sc.nvlmetalayers.max(0) as usize).min(sc.vlmetalayers.len()) {
            return Ok(None);
        }
        let meta = sc.vlmetalayers[index];
        // SAFETY: entries below nvlmetalayers are live metalayers the handle
        // owns, each holding `content_len` bytes at `content` (C-Blosc2 read
        // them from the trailer, bounds checked, when the frame was opened).
        let packed = unsafe {
            if meta.is_null() || (*meta).content.is_null() || (*meta).content_len <= 0 {
                return Ok(Some(Vec::new()));
            }
            std::slice::from_raw_parts((*meta).content, (*meta).content_len as usize)
        };
        let (nbytes, _, _) = super::chunk::sizes(packed)?;
        if !(0..=MAX_VLMETA_BYTES).contains(&nbytes) {
            return Err(Error::Damaged(format!(
                "vlmeta {name:?} declares {nbytes} bytes (at most {MAX_VLMETA_BYTES} are read)"
            )));
        }
        let mut out = Vec::new();
        super::chunk::RawCtx::decompressor(1)?.decompress(packed, &mut out)?;
        Ok(Some(out))
    }

    pub(crate) fn vlmeta_set(
        &mut self,
        name: &str,
        content: &[u8],
        cparams: &CParams,
    ) -> Result<()> {
        let cname = c_name(name)?;
        let mut cp = to_c_cparams(cparams);
        // SAFETY: the name is NUL-terminated; C compresses a copy of content.
        unsafe {
            let exists = ffi::blosc2_vlmeta_exists(self.ptr.as_ptr(), cname.as_ptr());
            let rc = if exists >= 0 {
                ffi::blosc2_vlmeta_update(
                    self.ptr.as_ptr(),
                    cname.as_ptr(),
                    content.as_ptr() as *mut u8,
                    content.len() as i32,
                    &mut cp,
                )
            } else {
                ffi::blosc2_vlmeta_add(
                    self.ptr.as_ptr(),
                    cname.as_ptr(),
                    content.as_ptr() as *mut u8,
                    content.len() as i32,
                    &mut cp,
                )
            };
            self.explain(check(rc, "blosc2_vlmeta_add").map(drop))
        }
    }

    fn check_nchunk(&self, nchunk: i64) -> Result<()> {
        if nchunk < 0 || nchunk >= self.nchunks() {
            return Err(Error::Invalid(format!(
                "chunk {nchunk} does not exist: there are {} chunks",
                self.nchunks()
            )));
        }
        Ok(())
    }

    /// A copy of chunk `nchunk` as stored (compressed).
    pub(crate) fn chunk(&self, nchunk: i64) -> Result<Vec<u8>> {
        self.check_nchunk(nchunk)?;
        let mut chunk: *mut u8 = std::ptr::null_mut();
        let mut needs_free = false;
        // SAFETY: the super-chunk is live, nchunk is in range and the
        // out-pointers are valid.
        let rc = unsafe {
            ffi::blosc2_schunk_get_chunk(self.ptr.as_ptr(), nchunk, &mut chunk, &mut needs_free)
        };
        if rc < 0 && needs_free && !chunk.is_null() {
            // SAFETY: C-Blosc2 allocated the buffer and, failing, gave it
            // up: frame_get_chunk returns an error when the read of a chunk
            // falls short with the buffer still allocated (C-Blosc2 2.21),
            // which would leak as much as a damaged chunk declares.
            unsafe { c_free(chunk) };
        }
        let n = self.explain(check(rc, "blosc2_schunk_get_chunk"))? as usize;
        // SAFETY: on success `chunk` points to `n` bytes, owned by C when
        // needs_free is false, by us otherwise.
        unsafe { take_c_buffer(chunk, n, needs_free, "blosc2_schunk_get_chunk") }
    }

    pub(crate) fn append_buffer(&mut self, data: &[u8]) -> Result<i64> {
        let n = i32::try_from(data.len())
            .map_err(|_| Error::Invalid("a chunk cannot exceed 2 GB".into()))?;
        // SAFETY: data is valid for n bytes; C compresses a copy.
        let rc =
            unsafe { ffi::blosc2_schunk_append_buffer(self.ptr.as_ptr(), data.as_ptr().cast(), n) };
        self.explain(check(rc, "blosc2_schunk_append_buffer"))
    }

    pub(crate) fn append_chunk(&mut self, chunk: &[u8]) -> Result<i64> {
        let (_, cbytes, _) = super::chunk::sizes(chunk)?;
        if cbytes as usize != chunk.len() {
            return Err(Error::Invalid(format!(
                "chunk declares {cbytes} compressed bytes but has {}",
                chunk.len()
            )));
        }
        // SAFETY: the chunk is a complete Blosc2 chunk (its header's cbytes
        // matches its length); with copy=true C keeps its own copy.
        let rc = unsafe {
            ffi::blosc2_schunk_append_chunk(self.ptr.as_ptr(), chunk.as_ptr() as *mut u8, true)
        };
        self.explain(check(rc, "blosc2_schunk_append_chunk"))
    }

    /// Replaces chunk `nchunk` with an already compressed chunk (copied).
    pub(crate) fn update_chunk(&mut self, nchunk: i64, chunk: &[u8]) -> Result<()> {
        self.check_nchunk(nchunk)?;
        let (_, cbytes, _) = super::chunk::sizes(chunk)?;
        if cbytes as usize != chunk.len() {
            return Err(Error::Invalid(format!(
                "chunk declares {cbytes} compressed bytes but has {}",
                chunk.len()
            )));
        }
        // SAFETY: nchunk is in range and the chunk is complete (header cbytes
        // equals its length); with copy=true C keeps its own copy.
        let rc = unsafe {
            ffi::blosc2_schunk_update_chunk(
                self.ptr.as_ptr(),
                nchunk,
                chunk.as_ptr() as *mut u8,
                true,
            )
        };
        self.explain(check(rc, "blosc2_schunk_update_chunk").map(drop))
    }

    pub(crate) fn to_cframe(&self) -> Result<Vec<u8>> {
        let mut buf: *mut u8 = std::ptr::null_mut();
        let mut needs_free = false;
        // SAFETY: the super-chunk is live and the out-pointers are valid.
        let rc =
            unsafe { ffi::blosc2_schunk_to_buffer(self.ptr.as_ptr(), &mut buf, &mut needs_free) };
        let len = self.explain(check(rc, "blosc2_schunk_to_buffer"))? as usize;
        // SAFETY: on success `buf` points to `len` bytes, owned by us when
        // needs_free is set, by the super-chunk otherwise.
        unsafe { take_c_buffer(buf, len, needs_free, "blosc2_schunk_to_buffer") }
    }
}

impl RawSChunk {
    /// Borrows the (possibly new) super-chunk of an array.
    pub(crate) fn borrowed_from(arr: &mut super::ndarray::RawNdArray) -> Result<Self> {
        arr.schunk()
    }
}
