//! Blosc2 frames opened from storage: the adapters between the storage
//! seam's byte access ([`Blob`], [`StagedIo`]) and the byte access C-Blosc2
//! reads and writes frames through ([`FrameIo`]).
//!
//! Every frame the server reads is opened here, from a [`Blob`] pinned to
//! one version of its object, so a handle never mixes the bytes of two
//! versions, whatever backend holds them.

use std::sync::Arc;

use cat2_blosc2::{FrameIo, NdArray, SChunk};

use crate::storage::{Blob, ReadAt, StagedIo};

/// A pinned object as C-Blosc2 reads it.
struct BlobIo(Arc<dyn Blob>);

impl FrameIo for BlobIo {
    fn len(&self) -> std::io::Result<u64> {
        Ok(ReadAt::len(self.0.as_ref()))
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        ReadAt::read_at(self.0.as_ref(), offset, buf)
    }
    fn name(&self) -> String {
        self.0.meta().key.name().to_string()
    }
}

/// A staged object as C-Blosc2 reads and writes it.
struct StagedFrameIo {
    io: Arc<dyn StagedIo>,
    name: String,
}

impl FrameIo for StagedFrameIo {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.io.len())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.io.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.io.write_at(offset, data)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.io.set_len(len)
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// The b2nd array whose frame is the object `blob`.
pub(crate) fn open_array(blob: &Arc<dyn Blob>) -> cat2_blosc2::Result<NdArray> {
    items_match_dtype(NdArray::open_io(Arc::new(BlobIo(blob.clone())))?)
}

/// `arr`, if the items its chunks hold are as wide as its dtype says.
///
/// Why: readers size a box from the chunks (C-Blosc2's item size) and
/// results from the dtype; a damaged file whose dtype says `<i4` over
/// chunks of 1-byte items made every read a quarter of what its result was
/// laid out from (a panic, found by the `b2z` fuzz target). Checked once
/// here, for every stored array, before anything is read. A dtype this
/// server does not parse is left to the reads that need it.
pub(crate) fn items_match_dtype(arr: NdArray) -> cat2_blosc2::Result<NdArray> {
    let dtype = arr.dtype();
    match crate::dtype::DType::parse(&dtype) {
        Ok(d) if d.itemsize() != arr.itemsize() => Err(cat2_blosc2::Error::Damaged(format!(
            "its dtype {dtype} has items of {} bytes, but its chunks hold items of {}",
            d.itemsize(),
            arr.itemsize()
        ))),
        _ => Ok(arr),
    }
}

/// The super-chunk whose frame is the object `blob`.
pub fn open_frame(blob: &Arc<dyn Blob>) -> cat2_blosc2::Result<SChunk> {
    SChunk::open_io(Arc::new(BlobIo(blob.clone())))
}

/// The b2nd array whose frame starts `offset` bytes into `blob`.
pub(crate) fn open_array_at(blob: &Arc<dyn Blob>, offset: u64) -> cat2_blosc2::Result<NdArray> {
    items_match_dtype(NdArray::open_io_offset(
        Arc::new(BlobIo(blob.clone())),
        offset,
    )?)
}

/// The super-chunk whose frame starts `offset` bytes into `blob`.
pub(crate) fn open_frame_at(blob: &Arc<dyn Blob>, offset: u64) -> cat2_blosc2::Result<SChunk> {
    SChunk::open_io_offset(Arc::new(BlobIo(blob.clone())), offset)
}

/// The super-chunk of a staged frame, opened to be changed in place.
pub(crate) fn open_staged_frame(io: Arc<dyn StagedIo>, name: &str) -> cat2_blosc2::Result<SChunk> {
    SChunk::open_io(Arc::new(StagedFrameIo {
        io,
        name: name.to_string(),
    }))
}

/// A new, empty super-chunk written into a staged object as chunks are
/// appended.
pub(crate) fn create_staged_frame(
    io: Arc<dyn StagedIo>,
    name: &str,
    cparams: &cat2_blosc2::CParams,
) -> cat2_blosc2::Result<SChunk> {
    SChunk::create_io(
        Arc::new(StagedFrameIo {
            io,
            name: name.to_string(),
        }),
        cparams,
    )
}

/// The offsets index of the frame `blob` holds: which chunks are written.
pub(crate) fn frame_index(blob: &dyn ReadAt) -> cat2_blosc2::Result<Vec<cat2_blosc2::ChunkSlot>> {
    let mut reader = Cursor { blob, at: 0 };
    cat2_blosc2::read_frame_index(&mut reader)
}

/// `Read + Seek` over random access, for readers written against streams.
pub(crate) struct Cursor<'a> {
    blob: &'a dyn ReadAt,
    at: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(blob: &'a dyn ReadAt) -> Self {
        Cursor { blob, at: 0 }
    }
}

impl std::io::Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.blob.read_at(self.at, buf)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for Cursor<'_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let len = self.blob.len();
        let to = match pos {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.at.checked_add_signed(d),
        };
        self.at = to.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.at)
    }
}

/// Opens staged bytes as an array and closes them again, then reads the
/// header of every chunk it stores: the check that an upload is the array it
/// claims to be (`cat2_blosc2::check_chunk_headers` says how deep).
pub(crate) fn check_staged_array(io: Arc<dyn StagedIo>, name: &str) -> cat2_blosc2::Result<()> {
    let frame = Arc::new(StagedFrameIo {
        io,
        name: name.to_string(),
    });
    drop(NdArray::open_io(frame.clone())?);
    cat2_blosc2::check_chunk_headers(frame.as_ref(), 0)
}

/// Opens staged bytes as a super-chunk and closes them again, then reads
/// the header of every chunk it stores.
pub(crate) fn check_staged_frame(io: Arc<dyn StagedIo>, name: &str) -> cat2_blosc2::Result<()> {
    let frame = StagedFrameIo {
        io: io.clone(),
        name: name.to_string(),
    };
    drop(open_staged_frame(io, name)?);
    cat2_blosc2::check_chunk_headers(&frame, 0)
}

/// The array whose frame is staged (rows received to be appended, say).
pub(crate) fn open_staged_array(io: Arc<dyn StagedIo>, name: &str) -> cat2_blosc2::Result<NdArray> {
    NdArray::open_io(Arc::new(StagedFrameIo {
        io,
        name: name.to_string(),
    }))
}
