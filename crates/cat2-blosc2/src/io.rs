//! Frames read and written through a trait object instead of a path.
//!
//! C-Blosc2 reads a frame file by opening its path again for every access
//! (the header, the offsets, each chunk, the trailer). Here it is handed a
//! [`FrameIo`] instead, through its user-defined I/O (see `raw::io`): every
//! access becomes one `read_at` or `write_at` on the object given, so the
//! layer above can serve frames from any storage with random access (a local
//! file today, an object store later), and a handle keeps reading the version
//! it opened: an open [`std::fs::File`] keeps its inode, whatever is renamed
//! over its name afterwards.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Random access to the bytes of one version of a frame: what C-Blosc2
/// reads and writes through.
///
/// `Send + Sync`: C-Blosc2 calls it from the thread that uses the handle,
/// and also, while decompressing a chunk of a frame it reads lazily, from
/// its decompression threads (rayon's pool) at the same time; all of those
/// calls happen inside one call on the handle.
pub trait FrameIo: Send + Sync + 'static {
    /// Current length in bytes.
    fn len(&self) -> std::io::Result<u64>;

    /// Whether there are no bytes at all (clippy's `len_without_is_empty`
    /// asks for it; nothing here needs it).
    fn is_empty(&self) -> std::io::Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Reads up to `buf.len()` bytes at `offset`, fewer only at the end of
    /// the data (as `pread` looped until the buffer is full or at EOF), and
    /// returns how many.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;

    /// Writes all of `data` at `offset`, extending the data if needed.
    /// Read-only sources keep this default, which refuses.
    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let _ = (offset, data);
        Err(unsupported(&self.name(), "written to"))
    }

    /// Truncates or extends the data to `len` bytes. Read-only sources keep
    /// this default, which refuses.
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let _ = len;
        Err(unsupported(&self.name(), "resized"))
    }

    /// What to call it in error messages (a file name or a key).
    fn name(&self) -> String;
}

fn unsupported(name: &str, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("{name} is read-only and cannot be {what}"),
    )
}

/// `pread` until `buf` is full or the end of the file.
fn pread_full(file: &File, mut offset: u64, mut buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while !buf.is_empty() {
        match FileExt::read_at(file, buf, offset) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                offset += n as u64;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A file is read and written with positioned I/O (`pread`/`pwrite`), so a
/// handle shared by several readers keeps no cursor. Opened read-only,
/// writes fail (as C-Blosc2's own `fopen(.., "rb+")` would).
impl FrameIo for File {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        pread_full(self, offset, buf)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.write_all_at(data, offset)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        File::set_len(self, len)
    }

    fn name(&self) -> String {
        "file".into()
    }
}

/// A file with a name for error messages (its path, say).
#[derive(Debug)]
pub struct FileIo {
    file: File,
    name: String,
}

impl FileIo {
    pub fn new(file: File, name: impl Into<String>) -> FileIo {
        FileIo {
            file,
            name: name.into(),
        }
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl FrameIo for FileIo {
    fn len(&self) -> std::io::Result<u64> {
        FrameIo::len(&self.file)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        FrameIo::read_at(&self.file, offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        FrameIo::write_at(&self.file, offset, data)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        FrameIo::set_len(&self.file, len)
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Reads until `buf` is full or `read_at` reports the end (a correct
/// [`FrameIo`] fills it in one call; this only guards against one that
/// returns short reads before the end).
pub(crate) fn read_full(
    io: &dyn FrameIo,
    mut offset: u64,
    mut buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut done = 0;
    while !buf.is_empty() {
        let n = io.read_at(offset, buf)?;
        if n == 0 {
            break;
        }
        let n = n.min(buf.len());
        done += n;
        offset += n as u64;
        buf = &mut buf[n..];
    }
    Ok(done)
}

/// Exactly `len` bytes at `offset`, or an `UnexpectedEof` error.
pub(crate) fn read_exact_at(io: &dyn FrameIo, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let n = usize::try_from(len).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{len} bytes do not fit in memory"),
        )
    })?;
    let mut buf = vec![0u8; n];
    if read_full(io, offset, &mut buf)? != n {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{len} bytes at {offset} run past the end of {}", io.name()),
        ));
    }
    Ok(buf)
}

/// What a path given to a path-based constructor turned out to be.
pub(crate) enum Opened {
    /// A file, open for the handle to read (and write, when `writable`).
    File(Arc<dyn FrameIo>),
    /// A directory: a sparse frame, which C-Blosc2 opens by its path.
    Dir,
}

/// Opens `path` once for a handle: read-write when `writable` and the file
/// allows it, read-only otherwise.
pub(crate) fn open_path(path: &Path, writable: bool) -> Result<Opened> {
    let io_err = |source| Error::Io {
        op: "opening",
        path: path.to_path_buf(),
        source,
    };
    // A directory (EISDIR) or a read-only file fails read-write: read-only then.
    let read_write = writable
        .then(|| File::options().read(true).write(true).open(path).ok())
        .flatten();
    let file = match read_write {
        Some(f) => f,
        None => File::open(path).map_err(io_err)?,
    };
    if file.metadata().map_err(io_err)?.is_dir() {
        return Ok(Opened::Dir);
    }
    Ok(Opened::File(Arc::new(FileIo::new(
        file,
        path.display().to_string(),
    ))))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::{read_frame_index_io, ArraySpec, CParams, NdArray, SChunk};

    /// Counts live values: one more while it exists.
    #[derive(Default)]
    struct Live(Option<Arc<AtomicUsize>>);

    impl Drop for Live {
        fn drop(&mut self) {
            if let Some(n) = &self.0 {
                n.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Frames kept in memory, counting what C-Blosc2 does with them.
    #[derive(Default)]
    struct MemIo {
        data: Mutex<Vec<u8>>,
        read_only: bool,
        reads: AtomicUsize,
        writes: AtomicUsize,
        /// Reads fail once this many have been served (0: never).
        fail_after: usize,
        /// Reads panic once this many have been served (0: never).
        panic_after: usize,
        live: Live,
    }

    impl MemIo {
        fn holding(bytes: Vec<u8>) -> MemIo {
            MemIo {
                data: Mutex::new(bytes),
                ..MemIo::default()
            }
        }

        /// Counted in `live` until dropped.
        fn counted(mut self, live: &Arc<AtomicUsize>) -> MemIo {
            live.fetch_add(1, Ordering::SeqCst);
            self.live = Live(Some(live.clone()));
            self
        }

        fn bytes(&self) -> Vec<u8> {
            self.data.lock().unwrap().clone()
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    impl FrameIo for MemIo {
        fn len(&self) -> std::io::Result<u64> {
            Ok(self.data.lock().unwrap().len() as u64)
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            let served = self.reads.fetch_add(1, Ordering::SeqCst);
            if self.fail_after > 0 && served >= self.fail_after {
                return Err(std::io::Error::other("the storage went away"));
            }
            if self.panic_after > 0 && served >= self.panic_after {
                panic!("a storage backend bug");
            }
            let data = self.data.lock().unwrap();
            let start = (offset as usize).min(data.len());
            let n = buf.len().min(data.len() - start);
            buf[..n].copy_from_slice(&data[start..start + n]);
            Ok(n)
        }
        fn write_at(&self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
            if self.read_only {
                return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            let mut data = self.data.lock().unwrap();
            let end = offset as usize + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[offset as usize..end].copy_from_slice(bytes);
            Ok(())
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            if self.read_only {
                return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
            }
            self.data.lock().unwrap().resize(len as usize, 0);
            Ok(())
        }
        fn name(&self) -> String {
            "memory".into()
        }
    }

    fn spec() -> ArraySpec {
        ArraySpec {
            shape: vec![20, 30],
            chunks: vec![10, 10],
            blocks: vec![5, 5],
            dtype: "<i4".into(),
            cparams: CParams::zstd_shuffle(4),
            urlpath: None,
        }
    }

    fn ints(n: i32, salt: i32) -> Vec<u8> {
        (0..n).flat_map(|i| (i * 7 - salt).to_le_bytes()).collect()
    }

    /// The frame of a 20x30 array of ints in 6 chunks, and its items.
    fn array_frame() -> (Vec<u8>, Vec<u8>) {
        let data = ints(600, 3);
        let arr = NdArray::from_buffer(&spec(), &data).unwrap();
        (arr.to_cframe().unwrap(), data)
    }

    /// Chunk `n` of the array of `array_frame` with other items.
    fn other_chunk(n: i64) -> Vec<u8> {
        let arr = NdArray::from_buffer(&spec(), &ints(600, 1000)).unwrap();
        arr.schunk().chunk(n).unwrap()
    }

    /// Chunks of data: all of one size but the last, which is smaller.
    fn pieces() -> Vec<Vec<u8>> {
        (0..5)
            .map(|k| ints(if k == 4 { 333 } else { 1000 }, k))
            .collect()
    }

    #[test]
    fn a_frame_created_through_an_io_reopens_through_it() {
        let mem = Arc::new(MemIo::holding(b"old bytes, truncated".to_vec()));
        {
            let mut sc = SChunk::create_io(mem.clone(), &CParams::zstd_shuffle(4)).unwrap();
            for p in pieces() {
                sc.append_buffer(&p).unwrap();
            }
            assert_eq!(sc.nchunks(), 5);
        }
        assert!(mem.writes.load(Ordering::SeqCst) > 0);
        let frame = mem.bytes();
        assert_eq!(&frame[1..9], b"\xa8b2frame");
        // A whole contiguous frame: the same bytes open from memory.
        assert_eq!(SChunk::from_cframe(&frame).unwrap().nchunks(), 5);
        let sc = SChunk::open_io(mem.clone()).unwrap();
        assert_eq!(sc.nchunks(), 5);
        let mut out = Vec::new();
        for (n, p) in pieces().iter().enumerate() {
            sc.decompress_chunk(n as i64, &mut out).unwrap();
            assert_eq!(&out, p);
        }
        assert_eq!(sc.to_bytes().unwrap(), pieces().concat());
        assert_eq!(read_frame_index_io(&*mem, 0).unwrap().len(), 5);
    }

    #[test]
    fn an_array_frame_held_in_memory_opens_through_an_io() {
        let (frame, data) = array_frame();
        let arr = NdArray::open_io(Arc::new(MemIo::holding(frame.clone()))).unwrap();
        assert_eq!(arr.shape(), [20, 30]);
        assert_eq!(arr.chunks(), [10, 10]);
        assert_eq!(arr.dtype(), "<i4");
        assert_eq!(arr.to_vec().unwrap(), data);
        let row = data[5 * 30 * 4..6 * 30 * 4].to_vec();
        assert_eq!(arr.read_box_vec(&[5, 0], &[6, 30]).unwrap(), row);
        assert_eq!(arr.to_cframe().unwrap(), frame);
    }

    #[test]
    fn a_frame_at_an_offset_opens_through_an_io() {
        let (frame, data) = array_frame();
        let mut bytes = vec![0xabu8; 1000];
        bytes.extend_from_slice(&frame);
        bytes.extend_from_slice(&[0xcd; 333]);
        let mem = Arc::new(MemIo::holding(bytes));
        let arr = NdArray::open_io_offset(mem.clone(), 1000).unwrap();
        assert_eq!(arr.to_vec().unwrap(), data);
        let sc = SChunk::open_io_offset(mem.clone(), 1000).unwrap();
        assert_eq!(sc.nchunks(), 6);
        assert!(sc.metalayer("b2nd").is_some());
        assert_eq!(read_frame_index_io(&*mem, 1000).unwrap().len(), 6);
        // Anywhere else there is no frame.
        assert!(NdArray::open_io_offset(mem.clone(), 999).is_err());
        assert!(SChunk::open_io(mem.clone()).is_err());
        assert!(SChunk::open_io_offset(mem, u64::MAX).is_err());
    }

    #[test]
    fn reads_go_to_the_object_given() {
        let (frame, data) = array_frame();
        let mem = Arc::new(MemIo::holding(frame));
        let arr = NdArray::open_io(mem.clone()).unwrap();
        // The checks read the header, the trailer and the offsets index's
        // header; C-Blosc2 reads the first two again while opening, from
        // those bytes, not from the io.
        let after_open = mem.reads();
        assert_eq!(after_open, 5);
        let chunk = arr.schunk().chunk(3).unwrap();
        assert!(mem.reads() > after_open, "a chunk is read through the io");
        let in_memory = SChunk::from_cframe(&mem.bytes()).unwrap();
        assert_eq!(chunk, in_memory.chunk(3).unwrap());
        let before = mem.reads();
        assert_eq!(arr.to_vec().unwrap(), data);
        assert!(mem.reads() >= before + 6);
        assert_eq!(mem.writes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_open_file_keeps_its_version_when_another_is_renamed_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.b2nd");
        let (frame, data) = array_frame();
        std::fs::write(&path, &frame).unwrap();
        let file = FileIo::new(File::open(&path).unwrap(), "a.b2nd");
        let arr = NdArray::open_io(Arc::new(file)).unwrap();
        let other = dir.path().join("b");
        std::fs::write(&other, b"something else entirely").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(arr.to_vec().unwrap(), data);
    }

    #[test]
    fn chunk_and_vlmeta_writes_go_through_a_writable_io() {
        let (frame, _) = array_frame();
        let mem = Arc::new(MemIo::holding(frame));
        let replacement = other_chunk(4);
        {
            let mut sc = SChunk::open_io(mem.clone()).unwrap();
            sc.update_chunk(4, &replacement).unwrap();
            sc.set_vlmeta("note", &rmpv::Value::String("written".into()))
                .unwrap();
            sc.set_vlmeta("n", &rmpv::Value::from(42)).unwrap();
        }
        assert!(mem.writes.load(Ordering::SeqCst) > 0);
        // The bytes in the io are a sound frame holding the changes.
        crate::check_cframe(&mem.bytes()).unwrap();
        let arr = NdArray::open_io(mem.clone()).unwrap();
        assert_eq!(arr.schunk().chunk(4).unwrap(), replacement);
        // (Compressing the same data twice may give other bytes: compare items.)
        let mut out = Vec::new();
        arr.schunk().decompress_chunk(0, &mut out).unwrap();
        let first = NdArray::from_buffer(&spec(), &array_frame().1).unwrap();
        let mut want = Vec::new();
        first.schunk().decompress_chunk(0, &mut want).unwrap();
        assert_eq!(out, want);
        let vl = arr.schunk().vlmeta().unwrap();
        assert!(vl.contains(&("note".into(), rmpv::Value::String("written".into()))));
        assert!(vl.contains(&("n".into(), rmpv::Value::from(42))));
    }

    #[test]
    fn arrays_opened_through_an_io_can_be_written_and_shrunk() {
        let (frame, data) = array_frame();
        let mem = Arc::new(MemIo::holding(frame));
        let mut arr = NdArray::open_io(mem.clone()).unwrap();
        // A partial box: C-Blosc2 decompresses the chunks lazily, reading
        // their blocks through the io from its decompression threads.
        let patch = vec![0x11u8; 3 * 7 * 4];
        arr.write_box(&[2, 3], &[5, 10], &patch).unwrap();
        let mut want = data.clone();
        for r in 2..5 {
            let at = (r * 30 + 3) * 4;
            want[at..at + 7 * 4].copy_from_slice(&patch[..7 * 4]);
        }
        assert_eq!(arr.to_vec().unwrap(), want);
        // Shrinking deletes chunks, which C-Blosc2 2.21 does through the io
        // with a pointer to its own settings instead of the io's parameters.
        arr.resize(&[10, 30]).unwrap();
        assert_eq!(arr.to_vec().unwrap(), want[..10 * 30 * 4]);
        drop(arr);
        let back = NdArray::open_io(mem).unwrap();
        assert_eq!(back.shape(), [10, 30]);
        assert_eq!(back.to_vec().unwrap(), want[..10 * 30 * 4]);
    }

    #[test]
    fn writes_to_a_read_only_io_are_errors() {
        let (frame, _) = array_frame();
        let mem = Arc::new(MemIo {
            read_only: true,
            ..MemIo::holding(frame.clone())
        });
        let mut sc = SChunk::open_io(mem.clone()).unwrap();
        assert!(sc.update_chunk(1, &other_chunk(1)).is_err());
        let e = sc.set_vlmeta("x", &rmpv::Value::Nil).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(e.to_string().contains("memory"), "{e}");
        assert!(SChunk::create_io(mem.clone(), &CParams::zstd_shuffle(1)).is_err());
        assert_eq!(mem.bytes(), frame);
        // The handle still reads.
        assert_eq!(sc.nchunks(), 6);
        assert!(sc.chunk(1).is_ok());
    }

    #[test]
    fn damaged_frames_through_an_io_are_errors() {
        let (frame, _) = array_frame();
        let hl = i32::from_be_bytes(frame[11..15].try_into().unwrap()) as usize;
        let n = frame.len();
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"not a frame".to_vec(),
            frame[..n / 2].to_vec(),
            frame[..n - 1].to_vec(),
        ];
        let mut filters = frame.clone();
        filters[70] = 8; // more filters than there can be
        cases.push(filters);
        let mut marker = frame.clone();
        marker[n - 23] = 0; // the trailer length's msgpack marker
        cases.push(marker);
        let mut trailer_len = frame.clone();
        trailer_len[n - 20] ^= 0x7f; // the trailer length
        cases.push(trailer_len);
        for (i, bad) in cases.into_iter().enumerate() {
            let mem = Arc::new(MemIo::holding(bad));
            assert!(SChunk::open_io(mem.clone()).is_err(), "case {i}");
            assert!(NdArray::open_io(mem).is_err(), "case {i}");
        }
        // Every byte of the header and of the end of the frame changed.
        for at in (0..hl).chain(n.saturating_sub(300).max(hl)..n) {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = frame.clone();
                bad[at] ^= flip;
                let mem = Arc::new(MemIo::holding(bad));
                if let Ok(a) = NdArray::open_io(mem.clone()) {
                    if a.shape().iter().product::<i64>() <= 1 << 20 {
                        let _ = a.to_vec();
                    }
                }
                if let Ok(s) = SChunk::open_io(mem) {
                    if s.nbytes() <= 1 << 20 {
                        let _ = s.to_bytes();
                    }
                }
            }
        }
    }

    #[test]
    fn a_failing_or_panicking_io_is_an_error_not_a_crash() {
        let (frame, _) = array_frame();
        // Reads fail, or panic, from the first read of a chunk on.
        let io = Arc::new(MemIo {
            fail_after: 5,
            ..MemIo::holding(frame.clone())
        });
        let sc = SChunk::open_io(io.clone()).unwrap();
        let e = sc.chunk(0).unwrap_err();
        assert!(e.to_string().contains("the storage went away"), "{e}");
        assert!(e.to_string().contains("memory"), "{e}");
        let io = Arc::new(MemIo {
            panic_after: 5,
            ..MemIo::holding(frame.clone())
        });
        let arr = NdArray::open_io(io).unwrap();
        let e = arr.to_vec().unwrap_err();
        assert!(e.to_string().contains("panicked"), "{e}");
        // Reads that fail while checking.
        for fail_after in 1..5 {
            let io = MemIo {
                fail_after,
                ..MemIo::holding(frame.clone())
            };
            let e = NdArray::open_io(Arc::new(io)).err().expect("reads fail");
            assert!(e.to_string().contains("the storage went away"), "{e}");
        }
    }

    #[test]
    fn the_io_is_released_with_the_handle_and_after_a_failed_open() {
        let live = Arc::new(AtomicUsize::new(0));
        let (frame, _) = array_frame();
        let counted = |bytes: &[u8]| Arc::new(MemIo::holding(bytes.to_vec()).counted(&live));

        // Opened, used and dropped.
        let sc = SChunk::open_io(counted(&frame)).unwrap();
        sc.chunk(0).unwrap();
        assert_eq!(live.load(Ordering::SeqCst), 1);
        drop(sc);
        assert_eq!(live.load(Ordering::SeqCst), 0);

        // An array, its super-chunk view, and a resize that replaces it.
        let mut arr = NdArray::open_io(counted(&frame)).unwrap();
        arr.to_vec().unwrap();
        arr.resize(&[20, 20]).unwrap();
        arr.schunk().vlmeta().unwrap();
        drop(arr);
        assert_eq!(live.load(Ordering::SeqCst), 0);

        // Created, written, dropped.
        let mut created = SChunk::create_io(counted(&[]), &CParams::zstd_shuffle(4)).unwrap();
        created.append_buffer(&pieces()[0]).unwrap();
        drop(created);
        assert_eq!(live.load(Ordering::SeqCst), 0);

        // Refused by the checks, before C-Blosc2 sees it.
        let mut bad = frame.clone();
        bad[70] = 8;
        assert!(NdArray::open_io(counted(&bad)).is_err());
        assert_eq!(live.load(Ordering::SeqCst), 0);

        // Opened by C-Blosc2 as a super-chunk, refused as an array (no b2nd
        // metalayer): the super-chunk is freed, and the io with it.
        let plain = SChunk::from_bytes(&ints(100, 0), 100, &CParams::zstd_shuffle(4))
            .unwrap()
            .to_cframe()
            .unwrap();
        assert!(NdArray::open_io(counted(&plain)).is_err());
        assert_eq!(live.load(Ordering::SeqCst), 0);

        // Refused by C-Blosc2 while creating (the io cannot be written).
        let ro = Arc::new(
            MemIo {
                read_only: true,
                ..MemIo::default()
            }
            .counted(&live),
        );
        assert!(SChunk::create_io(ro, &CParams::zstd_shuffle(4)).is_err());
        assert_eq!(live.load(Ordering::SeqCst), 0);

        // Failing inside C-Blosc2 after opening.
        let failing = Arc::new(
            MemIo {
                fail_after: 5,
                ..MemIo::holding(frame.clone())
            }
            .counted(&live),
        );
        let arr = NdArray::open_io(failing).unwrap();
        assert!(arr.to_vec().is_err());
        drop(arr);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn path_constructors_read_and_write_through_the_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.b2frame");
        {
            let mut sc = SChunk::create_file(&path, &CParams::zstd_shuffle(4)).unwrap();
            for p in pieces() {
                sc.append_buffer(&p).unwrap();
            }
        }
        // An existing file is not overwritten.
        assert!(SChunk::create_file(&path, &CParams::zstd_shuffle(4)).is_err());
        let mut sc = SChunk::open(&path).unwrap();
        assert_eq!(sc.to_bytes().unwrap(), pieces().concat());
        sc.set_vlmeta("k", &rmpv::Value::from(1)).unwrap();
        drop(sc);
        let sc = SChunk::open(&path).unwrap();
        assert_eq!(sc.vlmeta_raw("k").unwrap(), Some(vec![1]));
        drop(sc);
        // A read-only file opens for reading; writes are errors.
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&path, perms).unwrap();
        let mut ro = SChunk::open(&path).unwrap();
        assert_eq!(ro.to_bytes().unwrap(), pieces().concat());
        if File::options().write(true).open(&path).is_err() {
            // (root may write it anyway)
            assert!(ro.set_vlmeta("k", &rmpv::Value::from(2)).is_err());
        }
        // A frame in a bigger file, at an offset.
        let (frame, data) = array_frame();
        let zip = dir.path().join("z");
        std::fs::write(&zip, [vec![1u8; 77], frame].concat()).unwrap();
        let arr = NdArray::open_offset(&zip, 77).unwrap();
        assert_eq!(arr.to_vec().unwrap(), data);
        assert_eq!(SChunk::open_offset(&zip, 77).unwrap().nchunks(), 6);
        assert!(NdArray::open_offset(dir.path(), 0).is_err());
        // Missing files are I/O errors that say so.
        let e = SChunk::open(&dir.path().join("nope")).err().unwrap();
        assert!(
            matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{e}"
        );
    }
}
