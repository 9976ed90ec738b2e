//! Stand-alone chunks: sizes, decompression and compression through
//! per-call contexts (so any number of threads can work at once).

use std::ptr::NonNull;

use blosc2_rs_sys as ffi;

use super::{check, dparams, init, to_c_cparams};
use crate::error::{Error, Result};
use crate::CParams;

/// The sizes a chunk header declares: (uncompressed bytes, compressed bytes, block size).
pub(crate) fn sizes(chunk: &[u8]) -> Result<(i32, i32, i32)> {
    if chunk.len() < ffi::BLOSC_MIN_HEADER_LENGTH as usize {
        return Err(Error::Damaged(format!(
            "a Blosc2 chunk needs at least {} bytes, got {}",
            ffi::BLOSC_MIN_HEADER_LENGTH,
            chunk.len()
        )));
    }
    let (mut nbytes, mut cbytes, mut blocksize) = (0i32, 0i32, 0i32);
    // SAFETY: the buffer holds at least the minimal header, which is all that
    // blosc2_cbuffer_sizes reads; the out-pointers are valid locals.
    let rc = unsafe {
        ffi::blosc2_cbuffer_sizes(
            chunk.as_ptr().cast(),
            &mut nbytes,
            &mut cbytes,
            &mut blocksize,
        )
    };
    check(rc, "blosc2_cbuffer_sizes")?;
    Ok((nbytes, cbytes, blocksize))
}

/// An owned compression or decompression context.
pub(crate) struct RawCtx(NonNull<ffi::blosc2_context>);

// SAFETY: a blosc2_context holds no thread-affine state (its worker threads
// are owned by it and joined on free); it may be used from any one thread at a
// time, which `&mut self` on every use guarantees.
unsafe impl Send for RawCtx {}

impl Drop for RawCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context and free it exactly once.
        unsafe { ffi::blosc2_free_ctx(self.0.as_ptr()) }
    }
}

impl RawCtx {
    pub(crate) fn decompressor(nthreads: i16) -> Result<Self> {
        init();
        // SAFETY: dparams are fully initialised with no postfilter.
        let ptr = unsafe { ffi::blosc2_create_dctx(dparams(nthreads)) };
        NonNull::new(ptr).map(RawCtx).ok_or(Error::Null {
            op: "blosc2_create_dctx",
            what: "context",
        })
    }

    pub(crate) fn compressor(cparams: &CParams) -> Result<Self> {
        init();
        // SAFETY: cparams are fully initialised with no prefilter or tuner params.
        let ptr = unsafe { ffi::blosc2_create_cctx(to_c_cparams(cparams)) };
        NonNull::new(ptr).map(RawCtx).ok_or(Error::Null {
            op: "blosc2_create_cctx",
            what: "context",
        })
    }

    /// Decompresses a whole chunk into `out` (resized to the chunk's nbytes).
    pub(crate) fn decompress(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        self.decompress_append(chunk, out)
    }

    /// Decompresses a whole chunk after the bytes `out` holds (which grows by the
    /// chunk's nbytes), writing straight into its spare capacity: nothing is zeroed
    /// or copied first.
    pub(crate) fn decompress_append(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let (nbytes, cbytes, _) = sizes(chunk)?;
        if nbytes < 0 || cbytes < 0 {
            return Err(Error::Damaged(format!(
                "chunk declares negative sizes ({nbytes}, {cbytes})"
            )));
        }
        if cbytes as usize > chunk.len() {
            return Err(Error::Damaged(format!(
                "chunk declares {cbytes} compressed bytes but only {} were given",
                chunk.len()
            )));
        }
        out.reserve(nbytes as usize);
        let filled = out.len();
        // SAFETY: src is valid for chunk.len() bytes (checked against the
        // header's cbytes); dest points just past the initialised bytes, with
        // capacity for nbytes more; C writes at most nbytes there and returns
        // how many it wrote, which we add to the length.
        let rc = unsafe {
            ffi::blosc2_decompress_ctx(
                self.0.as_ptr(),
                chunk.as_ptr().cast(),
                chunk.len().min(i32::MAX as usize) as i32,
                out.as_mut_ptr().add(filled).cast(),
                nbytes,
            )
        };
        let n = check(rc, "blosc2_decompress_ctx")? as usize;
        // SAFETY: the first `filled` bytes were initialised before and C
        // initialised the n <= nbytes bytes after them.
        unsafe { out.set_len(filled + n) };
        Ok(())
    }

    /// Decompresses items `[start, start + dest.len() / typesize)` of a chunk
    /// (the chunk's `typesize` units) into `dest`: only the blocks holding
    /// them are decompressed.
    pub(crate) fn getitem(&mut self, chunk: &[u8], start: usize, dest: &mut [u8]) -> Result<()> {
        let (nbytes, cbytes, _) = sizes(chunk)?;
        if cbytes < 0 || cbytes as usize > chunk.len() {
            return Err(Error::Damaged(format!(
                "chunk declares {cbytes} compressed bytes but only {} were given",
                chunk.len()
            )));
        }
        let typesize = usize::from(chunk[3]).max(1);
        let nitems = dest.len() / typesize;
        if !dest.len().is_multiple_of(typesize)
            || (start + nitems) * typesize > nbytes.max(0) as usize
        {
            return Err(Error::Damaged(format!(
                "items {start}..{} of {typesize} bytes are not inside a chunk of {nbytes} bytes",
                start + nitems
            )));
        }
        let (Ok(start), Ok(nitems), Ok(destsize)) = (
            i32::try_from(start),
            i32::try_from(nitems),
            i32::try_from(dest.len()),
        ) else {
            return Err(Error::Invalid("a chunk cannot exceed 2 GB".into()));
        };
        // SAFETY: src is valid for chunk.len() >= cbytes bytes; dest is valid
        // for destsize bytes, and C writes at most nitems * typesize of them.
        let rc = unsafe {
            ffi::blosc2_getitem_ctx(
                self.0.as_ptr(),
                chunk.as_ptr().cast(),
                chunk.len().min(i32::MAX as usize) as i32,
                start,
                nitems,
                dest.as_mut_ptr().cast(),
                destsize,
            )
        };
        let n = check(rc, "blosc2_getitem_ctx")? as usize;
        if n != dest.len() {
            return Err(Error::Damaged(format!(
                "blosc2_getitem_ctx gave {n} bytes of {}",
                dest.len()
            )));
        }
        Ok(())
    }

    /// Compresses `src` into a new chunk.
    pub(crate) fn compress(&mut self, src: &[u8]) -> Result<Vec<u8>> {
        let srclen = i32::try_from(src.len())
            .map_err(|_| Error::Invalid("a chunk cannot exceed 2 GB".into()))?;
        let cap = src.len() + ffi::BLOSC2_MAX_OVERHEAD as usize;
        let mut out: Vec<u8> = Vec::with_capacity(cap);
        // SAFETY: src is valid for srclen bytes; dest has capacity cap, which
        // is the documented worst case (nbytes + BLOSC2_MAX_OVERHEAD).
        let rc = unsafe {
            ffi::blosc2_compress_ctx(
                self.0.as_ptr(),
                src.as_ptr().cast(),
                srclen,
                out.as_mut_ptr().cast(),
                cap.min(i32::MAX as usize) as i32,
            )
        };
        let n = check(rc, "blosc2_compress_ctx")? as usize;
        if n == 0 {
            return Err(Error::Invalid(
                "compressed chunk did not fit its buffer".into(),
            ));
        }
        // SAFETY: C initialised exactly n <= capacity bytes.
        unsafe { out.set_len(n) };
        // Chunks are kept until a whole answer is built: one that compressed
        // well must not keep the worst case's capacity (an 8 MB chunk of
        // zeros is a few hundred bytes, not 8 MB of held memory).
        if n < cap / 2 {
            out.shrink_to_fit();
        }
        Ok(out)
    }
}

/// Builds a header-only chunk of zeros (`special_value` zero) or of
/// uninitialised items (`special_value` uninit), as C-Blosc2 does for empty arrays.
pub(crate) fn special_chunk(cparams: &CParams, nbytes: i32, uninit: bool) -> Result<Vec<u8>> {
    init();
    let cap = ffi::BLOSC_EXTENDED_HEADER_LENGTH as usize;
    let mut out: Vec<u8> = Vec::with_capacity(cap);
    let cp = to_c_cparams(cparams);
    // SAFETY: dest has capacity for the extended header, which is all these
    // functions write; the return value is the number of bytes written.
    let rc = unsafe {
        if uninit {
            ffi::blosc2_chunk_uninit(cp, nbytes, out.as_mut_ptr().cast(), cap as i32)
        } else {
            ffi::blosc2_chunk_zeros(cp, nbytes, out.as_mut_ptr().cast(), cap as i32)
        }
    };
    let n = check(rc, "blosc2_chunk_zeros")? as usize;
    // SAFETY: C initialised exactly n <= capacity bytes.
    unsafe { out.set_len(n) };
    Ok(out)
}

/// Reverses bitshuffle (the bitshuffle library's bit transpose, which
/// C-Blosc2 shares) on one block: the elements up to a multiple of 8 are
/// transposed back, the rest are copied.
pub(crate) fn bitunshuffle(typesize: usize, src: &[u8], dst: &mut [u8]) -> Result<()> {
    let (Ok(ts), Ok(len)) = (i32::try_from(typesize), i32::try_from(src.len())) else {
        return Err(Error::Invalid("block too large to unshuffle".into()));
    };
    if dst.len() != src.len() || typesize == 0 {
        return Err(Error::Invalid(format!(
            "cannot unshuffle {} bytes into {} with items of {typesize}",
            src.len(),
            dst.len()
        )));
    }
    init();
    // SAFETY: src and dst are distinct buffers of `len` bytes each, which is
    // all the call reads and writes.
    let rc =
        unsafe { ffi::blosc2_bitunshuffle(ts, len, src.as_ptr().cast(), dst.as_mut_ptr().cast()) };
    check(rc, "blosc2_bitunshuffle")?;
    Ok(())
}
