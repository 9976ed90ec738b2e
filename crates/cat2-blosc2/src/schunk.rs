//! Super-chunks: a sequence of independently compressed chunks, plus
//! metalayers and variable-length metadata ("vlmeta").

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::{open_path, FileIo, FrameIo, Opened};
use crate::raw::schunk::RawSChunk;
use crate::CParams;
use crate::Decompressor;

/// A Blosc2 super-chunk, opened from a file, a [`FrameIo`] or a contiguous
/// frame, or new (in memory, in a file, or through a `FrameIo`).
///
/// `Send` but not `Sync`: reads go through C caches, so one handle serves
/// one thread at a time (open another handle for parallel work).
pub struct SChunk {
    pub(crate) raw: RawSChunk,
    /// A multi-threaded decompression context, made on first use.
    dctx: RefCell<Option<Decompressor>>,
}

impl SChunk {
    pub(crate) fn wrap(raw: RawSChunk) -> SChunk {
        SChunk {
            raw,
            dctx: RefCell::new(None),
        }
    }

    /// Runs `f` with this super-chunk's decompression context.
    pub(crate) fn with_decompressor<T>(
        &self,
        f: impl FnOnce(&mut Decompressor) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.dctx.borrow_mut();
        if slot.is_none() {
            *slot = Some(Decompressor::new(crate::cparams::default_nthreads())?);
        }
        match slot.as_mut() {
            Some(d) => f(d),
            None => Err(Error::Invalid("no decompression context".into())),
        }
    }
    /// Opens a frame file (`.b2frame`, `.b2`, or the super-chunk of a `.b2nd`).
    ///
    /// The file is opened once, read-write if it can be (writes such as
    /// [`SChunk::update_chunk`] go to it), read-only otherwise, and read
    /// through [`SChunk::open_io`]: the handle reads (and writes) the file
    /// that was there when it was opened, even if another is renamed over
    /// the name meanwhile. A directory (a sparse frame) is left to C-Blosc2,
    /// which reads it by its path.
    pub fn open(path: &Path) -> Result<SChunk> {
        match open_path(path, true)? {
            Opened::File(io) => SChunk::open_io(io),
            Opened::Dir => RawSChunk::open(path).map(SChunk::wrap),
        }
    }

    /// Opens the frame that starts `offset` bytes into a file (see
    /// [`NdArray::open_offset`](crate::NdArray::open_offset)), read-only.
    pub fn open_offset(path: &Path, offset: u64) -> Result<SChunk> {
        SChunk::open_io_offset(open_file_read_only(path)?, offset)
    }

    /// Opens the frame held by `io`: C-Blosc2 reads (and writes) it through
    /// `io` only, which the handle keeps until it is dropped. The header
    /// and trailer are checked first, as for a file.
    pub fn open_io(io: Arc<dyn FrameIo>) -> Result<SChunk> {
        SChunk::open_io_offset(io, 0)
    }

    /// Opens the frame that starts `offset` bytes into `io` (see
    /// [`SChunk::open_io`]).
    pub fn open_io_offset(io: Arc<dyn FrameIo>, offset: u64) -> Result<SChunk> {
        let checked = crate::frame::check_frame_io(&*io, offset)?;
        RawSChunk::open_io(io, offset, checked).map(SChunk::wrap)
    }

    /// Reads a contiguous frame held in memory (the bytes are copied). The
    /// frame is checked first ([`crate::check_cframe`]): C-Blosc2 trusts its
    /// chunk offsets.
    pub fn from_cframe(frame: &[u8]) -> Result<SChunk> {
        crate::check_cframe(frame).map_err(Error::Invalid)?;
        RawSChunk::from_cframe(frame).map(SChunk::wrap)
    }

    /// An empty in-memory super-chunk; chunks are `chunksize` bytes when filled
    /// through [`SChunk::append_buffer`].
    pub fn new(cparams: &CParams) -> Result<SChunk> {
        RawSChunk::new_in_memory(cparams).map(SChunk::wrap)
    }

    /// A new, empty super-chunk written to `path` as chunks are appended
    /// (the file is a valid frame after every append). An existing file is
    /// not overwritten.
    pub fn create_file(path: &Path, cparams: &CParams) -> Result<SChunk> {
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| Error::Io {
                op: "creating",
                path: path.to_path_buf(),
                source,
            })?;
        let io = Arc::new(FileIo::new(file, path.display().to_string()));
        SChunk::create_io(io, cparams).inspect_err(|_| {
            let _ = std::fs::remove_file(path);
        })
    }

    /// A new, empty super-chunk written through `io` (emptied first) as
    /// chunks are appended; `io` then holds a valid contiguous frame after
    /// every append.
    pub fn create_io(io: Arc<dyn FrameIo>, cparams: &CParams) -> Result<SChunk> {
        RawSChunk::new_io(cparams, io).map(SChunk::wrap)
    }

    /// Compresses `data` into a new super-chunk cut into chunks of at most
    /// `chunksize` bytes — how Caterva2 stores regular files.
    pub fn from_bytes(data: &[u8], chunksize: usize, cparams: &CParams) -> Result<SChunk> {
        let mut sc = SChunk::new(cparams)?;
        if chunksize == 0 {
            return Err(Error::Invalid("chunksize must be positive".into()));
        }
        for piece in data.chunks(chunksize) {
            sc.append_buffer(piece)?;
        }
        Ok(sc)
    }

    pub fn typesize(&self) -> usize {
        self.raw.typesize().max(1) as usize
    }
    /// Uncompressed bytes of a full chunk.
    pub fn chunksize(&self) -> i64 {
        self.raw.chunksize() as i64
    }
    pub fn blocksize(&self) -> i64 {
        self.raw.blocksize() as i64
    }
    pub fn nchunks(&self) -> i64 {
        self.raw.nchunks()
    }
    /// Uncompressed bytes of all chunks.
    pub fn nbytes(&self) -> i64 {
        self.raw.nbytes()
    }
    /// Compressed bytes of all chunks.
    pub fn cbytes(&self) -> i64 {
        self.raw.cbytes()
    }
    pub fn contiguous(&self) -> bool {
        self.raw.contiguous()
    }
    pub fn cparams(&self) -> CParams {
        self.raw.cparams()
    }

    /// Fixed metalayers (name, raw msgpack content), in storage order.
    pub fn metalayers(&self) -> Vec<(String, Vec<u8>)> {
        self.raw.metalayers()
    }

    /// The content of one fixed metalayer.
    pub fn metalayer(&self, name: &str) -> Option<Vec<u8>> {
        self.raw
            .metalayers()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    pub fn add_metalayer(&mut self, name: &str, content: &[u8]) -> Result<()> {
        self.raw.add_metalayer(name, content)
    }

    /// Names of the variable-length metalayers, in storage order.
    pub fn vlmeta_names(&self) -> Result<Vec<String>> {
        self.raw.vlmeta_names()
    }

    /// The raw (msgpack) content of one vlmeta entry.
    pub fn vlmeta_raw(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.raw.vlmeta_get(name)
    }

    /// Every vlmeta entry, msgpack-decoded. Entries that are not valid
    /// msgpack come back as binary values rather than failing the whole read.
    pub fn vlmeta(&self) -> Result<Vec<(String, rmpv::Value)>> {
        let mut out = Vec::new();
        for name in self.vlmeta_names()? {
            if let Some(raw) = self.vlmeta_raw(&name)? {
                out.push((name, decode_msgpack(&raw)));
            }
        }
        Ok(out)
    }

    /// Adds or replaces a vlmeta entry with raw msgpack content.
    pub fn set_vlmeta_raw(&mut self, name: &str, content: &[u8]) -> Result<()> {
        // One thread: vlmeta are small, and C-Blosc2 would start (and stop)
        // a thread pool for them otherwise.
        let cparams = CParams {
            nthreads: 1,
            ..CParams::zstd_shuffle(1)
        };
        self.raw.vlmeta_set(name, content, &cparams)
    }

    /// Adds or replaces a vlmeta entry, msgpack-encoding the value.
    pub fn set_vlmeta(&mut self, name: &str, value: &rmpv::Value) -> Result<()> {
        self.set_vlmeta_raw(name, &encode_msgpack(value))
    }

    /// Chunk `nchunk` exactly as stored (compressed, with its header).
    pub fn chunk(&self, nchunk: i64) -> Result<Vec<u8>> {
        self.raw.chunk(nchunk).map_err(|e| e.in_chunk(nchunk))
    }

    /// Chunk `nchunk` decompressed into `out`.
    pub fn decompress_chunk(&self, nchunk: i64, out: &mut Vec<u8>) -> Result<()> {
        let chunk = self.chunk(nchunk)?;
        self.with_decompressor(|d| d.decompress(&chunk, out))
            .map_err(|e| e.in_chunk(nchunk))
    }

    /// Items `[start, stop)` (typesize units), bounds checked.
    pub fn slice(&self, start: i64, stop: i64) -> Result<Vec<u8>> {
        let typesize = self.typesize() as i64;
        let nitems = self.nbytes() / typesize;
        if start < 0 || stop > nitems || start > stop {
            return Err(Error::Invalid(format!(
                "items {start}..{stop} are outside 0..{nitems}"
            )));
        }
        let (first, last) = (start * typesize, stop * typesize);
        let mut out = Vec::with_capacity((last - first) as usize);
        let chunksize = self.chunksize().max(1);
        let mut buf = Vec::new();
        let mut n = first / chunksize;
        while n * chunksize < last && n < self.nchunks() {
            self.decompress_chunk(n, &mut buf)?;
            let c0 = n * chunksize;
            let a = (first.max(c0) - c0) as usize;
            let b = ((last - c0) as usize).min(buf.len());
            if a < b {
                out.extend_from_slice(&buf[a..b]);
            }
            n += 1;
        }
        if out.len() as i64 != last - first {
            return Err(Error::Damaged(format!(
                "the super-chunk holds fewer bytes than it declares ({} of {})",
                out.len(),
                last - first
            )));
        }
        Ok(out)
    }

    /// All the bytes, decompressed.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // The size comes from the frame header: reserve no more than a
        // bounded amount up front and let a real one grow.
        let mut out = Vec::with_capacity(self.nbytes().clamp(0, 1 << 26) as usize);
        let mut buf = Vec::new();
        for n in 0..self.nchunks() {
            self.decompress_chunk(n, &mut buf)?;
            out.extend_from_slice(&buf);
        }
        Ok(out)
    }

    /// Compresses and appends one chunk of data.
    pub fn append_buffer(&mut self, data: &[u8]) -> Result<i64> {
        self.raw.append_buffer(data)
    }

    /// Appends an already compressed chunk (copied).
    pub fn append_chunk(&mut self, chunk: &[u8]) -> Result<i64> {
        self.raw.append_chunk(chunk)
    }

    /// Replaces chunk `nchunk` with an already compressed chunk (copied). The
    /// chunk must hold exactly the bytes the slot stands for.
    pub fn update_chunk(&mut self, nchunk: i64, chunk: &[u8]) -> Result<()> {
        self.raw.update_chunk(nchunk, chunk)
    }

    /// The whole super-chunk serialised as a contiguous frame.
    pub fn to_cframe(&self) -> Result<Vec<u8>> {
        let mut frame = self.raw.to_cframe()?;
        fix_frame_typesize(&mut frame, self.typesize());
        Ok(frame)
    }
}

/// A file opened read-only, as the `FrameIo` of a frame inside it.
pub(crate) fn open_file_read_only(path: &Path) -> Result<Arc<dyn FrameIo>> {
    match open_path(path, false)? {
        Opened::File(io) => Ok(io),
        Opened::Dir => Err(Error::Invalid(format!(
            "{} is a directory, not a file holding a frame",
            path.display()
        ))),
    }
}

/// Decodes one msgpack value; undecodable bytes become a binary value.
pub fn decode_msgpack(raw: &[u8]) -> rmpv::Value {
    let mut cur = raw;
    rmpv::decode::read_value(&mut cur).unwrap_or_else(|_| rmpv::Value::Binary(raw.to_vec()))
}

/// Encodes one msgpack value.
pub fn encode_msgpack(value: &rmpv::Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, value);
    out
}

/// Offset of the typesize (msgpack int32, big-endian) in a frame header.
const FRAME_TYPESIZE: usize = 48;

/// The bundled C-Blosc2 serialises an in-memory super-chunk with typesize 1
/// when items are wider than 255 bytes; python-blosc2 (and b2nd) keep the real
/// item size there, so put it back.
pub(crate) fn fix_frame_typesize(frame: &mut [u8], typesize: usize) {
    if typesize <= 255 || frame.len() < FRAME_TYPESIZE + 4 || frame[FRAME_TYPESIZE - 1] != 0xd2 {
        return;
    }
    if let Ok(ts) = i32::try_from(typesize) {
        frame[FRAME_TYPESIZE..FRAME_TYPESIZE + 4].copy_from_slice(&ts.to_be_bytes());
    }
}
