//! Frames lying in an archive: where a leaf's frame is, what it holds once
//! opened, and the check that a window holds a whole frame before C-Blosc2
//! reads it.

use cat2_blosc2::{check_header, NdArray, SChunk, FRAME_HEADER_MINLEN};

use crate::storage::ReadAt;

/// The frame of an opened leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Bytes `offset..offset + len` of the container file.
    Window { offset: u64, len: u64 },
    /// The frame, copied out of the embedded store.
    Embedded(Vec<u8>),
}

/// What an opened leaf holds.
pub enum LeafData {
    Array(NdArray),
    Frame(SChunk),
}

/// An opened leaf: its data and where its frame lies.
pub struct Leaf {
    pub data: LeafData,
    pub placement: Placement,
}

/// Checks that `window` bytes at `offset` hold a whole frame: a sound header
/// ([`check_header`]) whose declared length fits. Returns that length.
pub(super) fn frame_fits(
    f: &dyn ReadAt,
    offset: u64,
    window: u64,
) -> std::result::Result<u64, String> {
    let mut header = [0u8; FRAME_HEADER_MINLEN];
    let read = f.read_at(offset, &mut header);
    if window < FRAME_HEADER_MINLEN as u64 || !matches!(read, Ok(n) if n == header.len()) {
        return Err(format!("{window} bytes are too few for a Blosc2 frame"));
    }
    match check_header(&header)? {
        n if n > window => Err(format!(
            "its frame declares {n} bytes but its member holds {window}"
        )),
        n => Ok(n),
    }
}

/// Opens a frame held in memory (exactly its declared length; checked by
/// cat2-blosc2 before C-Blosc2 copies it) as the dataset it is: an array
/// when it has the `b2nd` metalayer.
pub(super) fn open_bytes(frame: &[u8]) -> cat2_blosc2::Result<LeafData> {
    let sc = SChunk::from_cframe(frame)?;
    if sc.metalayer("b2nd").is_some() {
        drop(sc);
        Ok(LeafData::Array(crate::frames::items_match_dtype(
            NdArray::from_cframe(frame)?,
        )?))
    } else {
        Ok(LeafData::Frame(sc))
    }
}
