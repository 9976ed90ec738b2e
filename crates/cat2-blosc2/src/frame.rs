//! Reading and checking Blosc2 frames before C-Blosc2 is given them: the
//! offsets index (which chunks are stored where), the header, metalayer and
//! trailer indexes, and every chunk's header, so that a damaged frame is
//! refused with a message instead of being read past its end by C.
//! (Frames are assembled from compressed chunks in `assemble.rs`.)

use std::io::{Read, Seek, SeekFrom};

use crate::error::{Error, Result};
use crate::io::{read_exact_at, read_full, FrameIo};
use crate::{chunk_sizes, Decompressor, Special};

/// Offsets of big-endian fields in a frame header (after their msgpack markers).
pub(crate) const HEADER_LEN_AT: usize = 11;
pub(crate) const FRAME_LEN_AT: usize = 16;
const NBYTES_AT: usize = 30;
pub(crate) const CBYTES_AT: usize = 39;
/// The frame magic, a msgpack str8 of 8 bytes after the fixarray marker.
const MAGIC: &[u8] = b"\xa8b2frame\0";
/// Enough of a header to hold every fixed field read here.
const HEADER_PREFIX: usize = 64;
/// Bytes of an extended (Blosc2) chunk header.
const CHUNK_HEADER: usize = 32;

/// Where one chunk of a frame lives, as the frame's offsets index records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkSlot {
    /// Stored in the chunk section, this many bytes after the header.
    Stored(u64),
    /// Not stored at all: the index holds a special value (zeros, NaNs,
    /// uninitialised) instead of an offset.
    Special(Special),
}

impl ChunkSlot {
    /// Whether nothing was ever written to this slot: `uninit` lays an array
    /// out with every chunk in this state, and a chunk write takes it out of it.
    pub fn is_unwritten(self) -> bool {
        self == ChunkSlot::Special(Special::Uninit)
    }

    /// Decodes one entry of the offsets index: a negative value is a special
    /// value, tagged in bits 4-6 of its top byte (`README_CFRAME_FORMAT`).
    fn from_offset(offset: i64) -> ChunkSlot {
        match u64::try_from(offset) {
            Ok(at) => ChunkSlot::Stored(at),
            Err(_) => {
                let tag = ((offset as u64) >> 56) as u8 & 0x7;
                ChunkSlot::Special(match tag {
                    1 => Special::Zero,
                    2 => Special::Nan,
                    3 => Special::Value,
                    4 => Special::Uninit,
                    _ => Special::None,
                })
            }
        }
    }
}

/// The offsets index of the contiguous frame in `file`: one [`ChunkSlot`] per
/// chunk, in chunk order.
///
/// Two small reads (the header, then the index it locates) and one
/// decompression of 8 bytes per chunk; no chunk is read. This is what says
/// which chunks of an array being filled are written.
pub fn read_frame_index<F: Read + Seek>(file: &mut F) -> Result<Vec<ChunkSlot>> {
    frame_index(
        |at, buf| {
            file.seek(SeekFrom::Start(at))?;
            let mut done = 0;
            while done < buf.len() {
                match file.read(&mut buf[done..]) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(done)
        },
        0,
        "frame",
    )
}

/// [`read_frame_index`] of the frame that starts `offset` bytes into `io`.
pub fn read_frame_index_io(io: &dyn FrameIo, offset: u64) -> Result<Vec<ChunkSlot>> {
    frame_index(|at, buf| read_full(io, at, buf), offset, &io.name())
}

/// The offsets index of the frame at `offset`, read with `read_at` (which
/// fills its buffer but at the end of the data, and says how much it read).
fn frame_index(
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
    offset: u64,
    name: &str,
) -> Result<Vec<ChunkSlot>> {
    let bad = |what: &str| Error::Invalid(format!("not a Blosc2 frame: {what}"));
    let io = |source| Error::Io {
        op: "reading",
        path: name.into(),
        source,
    };
    let mut header = vec![0u8; HEADER_PREFIX];
    let got = read_at(offset, &mut header).map_err(io)?;
    let mut read_exact = |at: u64, buf: &mut [u8]| match read_at(at, buf) {
        Ok(n) if n == buf.len() => Ok(()),
        Ok(_) => Err(io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))),
        Err(e) => Err(io(e)),
    };
    header.truncate(got);
    if header.get(1..1 + MAGIC.len()) != Some(MAGIC) {
        return Err(bad("no b2frame magic"));
    }
    let header_len = be_u32(&header, HEADER_LEN_AT).ok_or_else(|| bad("short header"))?;
    let nbytes = be_i64(&header, NBYTES_AT).ok_or_else(|| bad("short header"))?;
    let cbytes = be_i64(&header, CBYTES_AT).ok_or_else(|| bad("short header"))?;
    if nbytes == 0 {
        return Ok(Vec::new());
    }
    let index_at = u64::try_from(cbytes)
        .ok()
        .and_then(|c| c.checked_add(u64::from(header_len)))
        .and_then(|c| c.checked_add(offset))
        .ok_or_else(|| bad("negative chunk section"))?;
    let mut index = vec![0u8; CHUNK_HEADER];
    read_exact(index_at, &mut index)?;
    let (index_nbytes, index_cbytes, _) = chunk_sizes(&index)?;
    let rest = usize::try_from(index_cbytes)
        .ok()
        .and_then(|c| c.checked_sub(CHUNK_HEADER))
        .ok_or_else(|| bad("offsets index shorter than its header"))?;
    if index_nbytes < 0 || index_nbytes % 8 != 0 {
        return Err(bad("offsets index of a size that is not whole offsets"));
    }
    index.resize(CHUNK_HEADER + rest, 0);
    read_exact(index_at + CHUNK_HEADER as u64, &mut index[CHUNK_HEADER..])?;
    let mut offsets = Vec::new();
    Decompressor::new(1)?.decompress(&index, &mut offsets)?;
    Ok(offsets
        .chunks_exact(8)
        .map(|b| {
            let mut le = [0u8; 8];
            le.copy_from_slice(b);
            ChunkSlot::from_offset(i64::from_le_bytes(le))
        })
        .collect())
}

/// Most chunks whose headers [`check_chunk_headers`] reads: their offsets
/// index (8 bytes a chunk) is decompressed whole, so this bounds it (32 MiB).
pub const MAX_CHECKED_CHUNKS: usize = 1 << 22;

/// Checks every chunk the frame at `offset` stores, by its header alone:
/// that it lies in the frame's chunk section, that C-Blosc2 accepts its
/// sizes, that it holds no more than the frame's chunk size and that its
/// compressed bytes end inside the section. One read of 32 bytes a chunk
/// and no decompression: what an upload can afford to check of its data
/// (reads still check each chunk as it is decompressed).
///
/// Frames of more than [`MAX_CHECKED_CHUNKS`] chunks are not checked here.
/// The frame's header and index must already have been accepted (it has
/// been opened).
pub fn check_chunk_headers(io: &dyn FrameIo, offset: u64) -> Result<()> {
    let io_err = |source| Error::Io {
        op: "reading",
        path: io.name().into(),
        source,
    };
    let mut header = [0u8; HEADER_PREFIX];
    let got = read_full(io, offset, &mut header).map_err(io_err)?;
    let header = &header[..got];
    let short = || Error::Damaged("its frame header is short".into());
    let header_len = u64::from(be_u32(header, HEADER_LEN_AT).ok_or_else(short)?);
    let section = u64::try_from(be_i64(header, CBYTES_AT).ok_or_else(short)?).unwrap_or(0);
    let nbytes = be_i64(header, NBYTES_AT).ok_or_else(short)?;
    let chunksize = i64::from(be_i32(header, CHUNKSIZE_AT).ok_or_else(short)?);
    if nbytes <= 0 || chunksize <= 0 {
        return Ok(());
    }
    let nchunks = (nbytes - 1) / chunksize + 1;
    if nchunks > MAX_CHECKED_CHUNKS as i64 {
        return Ok(());
    }
    let slots = read_frame_index_io(io, offset)?;
    if slots.len() as i64 != nchunks {
        return Err(Error::Damaged(format!(
            "its offsets index has {} entries for {nchunks} chunks",
            slots.len()
        )));
    }
    let chunks_at = offset + header_len;
    let mut head = [0u8; CHUNK_HEADER];
    for (n, slot) in slots.iter().enumerate() {
        let ChunkSlot::Stored(at) = *slot else {
            continue;
        };
        let damaged = |why: String| Error::Damaged(why).in_chunk(n as i64);
        if at.saturating_add(CHUNK_HEADER as u64) > section {
            return Err(damaged(format!(
                "it starts at {at}, past the {section} bytes of chunks"
            )));
        }
        let got = read_full(io, chunks_at + at, &mut head).map_err(io_err)?;
        if got < CHUNK_HEADER {
            return Err(damaged("its header is cut short".into()));
        }
        let (chunk_nbytes, chunk_cbytes, _) =
            chunk_sizes(&head).map_err(|e| e.in_chunk(n as i64))?;
        if !(0..=chunksize).contains(&i64::from(chunk_nbytes)) {
            return Err(damaged(format!(
                "it declares {chunk_nbytes} bytes, in chunks of {chunksize}"
            )));
        }
        let cbytes = u64::try_from(chunk_cbytes).unwrap_or(0);
        let most = chunk_nbytes as u64 + MAX_CHUNK_OVERHEAD;
        if cbytes < CHUNK_HEADER as u64 || cbytes > most.max(CHUNK_HEADER as u64) {
            return Err(damaged(format!(
                "it declares {chunk_cbytes} compressed bytes for {chunk_nbytes}"
            )));
        }
        if at + cbytes > section {
            return Err(damaged(format!(
                "its {chunk_cbytes} bytes at {at} do not fit in the {section} bytes of chunks"
            )));
        }
    }
    Ok(())
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Bytes of the fixed part of a frame header, all [`check_header`] reads.
pub const FRAME_HEADER_MINLEN: usize = 87;

/// More offsets of big-endian fields in a frame header.
const FRAME_TYPE_AT: usize = 26;
const TYPESIZE_AT: usize = 48;
const CHUNKSIZE_AT: usize = 58;
const NFILTERS_AT: usize = 70;
/// Most filters a pipeline may have (`BLOSC2_MAX_FILTERS`).
const MAX_FILTERS: u8 = 6;
/// Filter ids C-Blosc2 2.21 reserves but does not define: between its own
/// (0–4) and the registered ones (32–36), and past those up to the
/// user-defined ones (160–255). With one of them in a frame's pipeline,
/// opening the frame fails after C-Blosc2 has allocated the super-chunk and
/// its parameters, which it then leaks (`frame_to_schunk`: ~65 kB a time,
/// found by the `stored_file` fuzz target under LeakSanitizer).
const UNDEFINED_FILTERS: [std::ops::RangeInclusive<u8>; 2] = [5..=31, 37..=159];

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Checks the fixed part of a contiguous frame's header, the way C-Blosc2
/// does when it opens one, and returns the frame's declared length.
///
/// Why here: C-Blosc2 2.21 frees a frame twice when opening it *from a file*
/// fails on a header it rejects, which aborts the process. Checking first
/// turns those files into errors. It also lets a caller compare the declared
/// length with the bytes it has (a member of a zip store) before C-Blosc2
/// reads past them.
pub fn check_header(h: &[u8]) -> std::result::Result<u64, String> {
    let h = h
        .get(..FRAME_HEADER_MINLEN)
        .ok_or_else(|| format!("{} bytes are too few for a frame header", h.len()))?;
    if &h[1..11] != b"\xa8b2frame\0\xd2" || h[15] != 0xcf {
        return Err("it is not a Blosc2 frame".into());
    }
    let bad = |what: &str| Err(format!("its frame header is damaged: {what}"));
    if h[FRAME_TYPE_AT] != 0 {
        return bad("not a contiguous frame");
    }
    let header_len = be_i32(h, HEADER_LEN_AT).map_or(0, i64::from);
    let frame_len = be_i64(h, FRAME_LEN_AT).unwrap_or(-1);
    if header_len < FRAME_HEADER_MINLEN as i64 || header_len > frame_len {
        return bad("header and frame lengths disagree");
    }
    if be_i32(h, TYPESIZE_AT).unwrap_or(0) <= 0 {
        return bad("typesize is not positive");
    }
    if h[NFILTERS_AT] > MAX_FILTERS {
        return bad("too many filters");
    }
    let filters = &h[NFILTERS_AT + 1..NFILTERS_AT + 1 + usize::from(h[NFILTERS_AT])];
    if let Some(f) = filters
        .iter()
        .find(|f| UNDEFINED_FILTERS.iter().any(|r| r.contains(f)))
    {
        return bad(&format!("filter {f} is not one Blosc2 defines"));
    }
    let nbytes = be_i64(h, NBYTES_AT).unwrap_or(-1);
    let cbytes = be_i64(h, CBYTES_AT).unwrap_or(-1);
    let chunksize = i64::from(be_i32(h, CHUNKSIZE_AT).unwrap_or(0));
    if nbytes > 0 && chunksize > 0 {
        let nchunks = (nbytes + chunksize - 1) / chunksize;
        if nchunks >= i64::from(i32::MAX) || cbytes < 0 {
            return bad("sizes out of range");
        }
    }
    u64::try_from(frame_len).or_else(|_| bad("negative length"))
}

/// Largest frame header or trailer read to check a frame (they hold the
/// metalayers and the vlmeta, which are small).
pub(crate) const MAX_META_LEN: u64 = 64 << 20;
/// The trailer ends with its length: a msgpack uint32 marker, 22 bytes from
/// the end of the frame, in its last 25 bytes.
const TRAILER_MINLEN: u64 = 25;
const TRAILER_LEN_FROM_END: u64 = 22;

/// Checks the frame that starts `offset` bytes into `io` before C-Blosc2
/// opens it there, and returns what it read: (position in `io`, bytes) of
/// the frame's header and of its trailer.
///
/// Why: C-Blosc2 2.21 frees a frame twice when opening it from a file fails
/// on its header, metalayers or trailer, which aborts the process. So the
/// parts it parses on opening, and only those, are parsed first from memory,
/// where a failure is clean: the header ([`check_header`], then the whole
/// header) and the trailer are read (each bounded) and put together as a
/// frame with no chunks, which C-Blosc2 opens without reading chunks. The
/// parts read are returned, for C-Blosc2 to open exactly those bytes.
pub(crate) fn check_frame_io(io: &dyn FrameIo, offset: u64) -> Result<CheckedFrame> {
    let name = io.name();
    let io_err = |source| Error::Io {
        op: "reading a frame from",
        path: name.clone().into(),
        source,
    };
    let bad = |why: String| Error::Invalid(format!("{name}: {why}"));
    let file_len = io.len().map_err(io_err)?;
    let window = file_len.saturating_sub(offset);
    let fixed =
        read_exact_at(io, offset, (FRAME_HEADER_MINLEN as u64).min(window)).map_err(io_err)?;
    let frame_len = check_header(&fixed).map_err(bad)?;
    if frame_len > window {
        return Err(bad(format!(
            "its frame declares {frame_len} bytes but {window} follow it in the file"
        )));
    }
    let header_len = be_i32(&fixed, HEADER_LEN_AT).map_or(0, |v| v as u64);
    if header_len > MAX_META_LEN || frame_len < header_len + TRAILER_MINLEN {
        return Err(bad(format!(
            "a header of {header_len} bytes does not fit in a frame of {frame_len}"
        )));
    }
    let end =
        read_exact_at(io, offset + frame_len - TRAILER_MINLEN, TRAILER_MINLEN).map_err(io_err)?;
    let at = (TRAILER_MINLEN - TRAILER_LEN_FROM_END) as usize;
    let trailer_len = match (end.get(at - 1), be_u32(&end, at)) {
        (Some(0xce), Some(n)) => u64::from(n),
        _ => return Err(bad("its trailer is damaged".into())),
    };
    if !(TRAILER_MINLEN..=MAX_META_LEN).contains(&trailer_len)
        || trailer_len > frame_len - header_len
    {
        return Err(bad(format!(
            "a trailer of {trailer_len} bytes does not fit in a frame of {frame_len}"
        )));
    }
    // Without data C-Blosc2 looks for the trailer right after the header,
    // which is where an empty frame has it; anything else is damage.
    let nbytes = be_i64(&fixed, NBYTES_AT).unwrap_or(0);
    if nbytes <= 0 && header_len + trailer_len != frame_len {
        return Err(bad("it declares no data but holds some".into()));
    }
    // With data, C-Blosc2 takes the offsets index to be what lies between
    // the chunks (`cbytes` after the header) and the trailer, and allocates
    // that many bytes unchecked: there must be room for at least a chunk
    // header there.
    let chunksize = i64::from(be_i32(&fixed, CHUNKSIZE_AT).unwrap_or(0));
    let mut largest_read = header_len.max(trailer_len);
    if nbytes > 0 {
        let cbytes = be_i64(&fixed, CBYTES_AT).unwrap_or(-1);
        let index_at = u64::try_from(cbytes)
            .ok()
            .and_then(|c| c.checked_add(header_len))
            .filter(|at| at + CHUNK_HEADER as u64 <= frame_len - trailer_len)
            .ok_or_else(|| {
                bad(format!(
                    "its chunks ({cbytes} bytes) leave no room for their offsets index"
                ))
            })?;
        let index_len = frame_len - trailer_len - index_at;
        let head = read_exact_at(io, offset + index_at, CHUNK_HEADER as u64).map_err(io_err)?;
        let nchunks = (chunksize > 0).then(|| ((nbytes - 1) / chunksize + 1) as u64);
        check_offsets_header(&head, index_len, nchunks).map_err(bad)?;
        largest_read = largest_read.max(index_len);
        largest_read = largest_read.max(match u64::try_from(chunksize) {
            Ok(c) if c > 0 => c + MAX_CHUNK_OVERHEAD,
            // Chunks of varying sizes: no bound but the frame's.
            _ => frame_len,
        });
    }
    let header = read_exact_at(io, offset, header_len).map_err(io_err)?;
    let trailer_at = offset + frame_len - trailer_len;
    let trailer = read_exact_at(io, trailer_at, trailer_len).map_err(io_err)?;
    check_meta_index(&header, HEADER_META_INDEX_AT, "metalayers").map_err(bad)?;
    check_meta_index(
        &trailer,
        TRAILER_META_INDEX_AT,
        "variable-length metalayers",
    )
    .map_err(bad)?;
    // C-Blosc2 reads the fixed header and the end of the trailer again, from
    // these parts: they must be the ones checked.
    let trailer_end = trailer.len() - TRAILER_MINLEN as usize;
    if header.get(..FRAME_HEADER_MINLEN) != Some(&fixed[..]) || trailer[trailer_end..] != end[..] {
        return Err(bad("it changed while it was being read".into()));
    }
    let mut probe = Vec::with_capacity(header.len() + trailer.len());
    probe.extend_from_slice(&header);
    probe.extend_from_slice(&trailer);
    let probe_len = probe.len() as u64;
    probe[FRAME_LEN_AT..FRAME_LEN_AT + 8].copy_from_slice(&probe_len.to_be_bytes());
    probe_frame(&probe).map_err(|e| bad(e.to_string()))?;
    Ok(CheckedFrame {
        parts: vec![(offset, header), (trailer_at, trailer)],
        largest_read,
    })
}

/// Where the metalayers' index starts in a frame's header, and the
/// variable-length metalayers' index in its trailer: at a big-endian u16
/// (the index's size), then a msgpack map16 of names to offsets.
const HEADER_META_INDEX_AT: usize = 89;
const TRAILER_META_INDEX_AT: usize = 4;

/// Checks the index of (variable-length) metalayers in `section`, a frame's
/// header or trailer, the way C-Blosc2 reads it when it opens the frame
/// (`get_meta_from_header`, `get_vlmeta_from_trailer`): every content,
/// `0xc6`, its length and its bytes, must lie inside the section.
///
/// Why: C-Blosc2 2.21 adds a content's offset and declared length in 32
/// bits, so a length near 2^31 wraps past its bounds check and it copies
/// 2 GB from wherever the section is (a heap overflow, found by the `b2z`
/// fuzz target). Here the sums cannot wrap. Indexes C-Blosc2 would refuse
/// anyway are refused too.
fn check_meta_index(
    section: &[u8],
    index_at: usize,
    what: &str,
) -> std::result::Result<(), String> {
    let bad = |why: &str| Err(format!("its {what} index is damaged: {why}"));
    let byte = |at: usize| section.get(at).copied();
    let (Some(0xde), Some(count)) = (byte(index_at + 2), be_u16(section, index_at + 3)) else {
        return bad("no map of them");
    };
    let mut at = index_at + 5;
    for _ in 0..count {
        let Some(name_len) = byte(at)
            .filter(|b| b & 0xe0 == 0xa0)
            .map(|b| usize::from(b & 0x1f))
        else {
            return bad("a name is not a short string");
        };
        at += 1 + name_len;
        if byte(at) != Some(0xd2) {
            return bad("an offset is not an int32");
        }
        let Some(offset) = be_i32(section, at + 1) else {
            return bad("an offset is cut short");
        };
        at += 5;
        let content_at = usize::try_from(offset).ok().filter(|&o| o < section.len());
        let Some(content_at) = content_at else {
            return bad("an offset points outside it");
        };
        let (Some(0xc6), Some(len)) = (byte(content_at), be_u32(section, content_at + 1)) else {
            return bad("a content has no length");
        };
        let end = (content_at as u64) + 5 + u64::from(len);
        if len > i32::MAX as u32 || end > section.len() as u64 {
            return bad(&format!("a content of {len} bytes does not fit in it"));
        }
    }
    Ok(())
}

/// What [`check_frame_io`] read and learnt of a frame.
pub(crate) struct CheckedFrame {
    /// (position, bytes) of its header and trailer.
    pub(crate) parts: Vec<(u64, Vec<u8>)>,
    /// The most bytes any one read of the frame asks for, when the frame is
    /// what it declares: its header, its trailer, its offsets index, or a
    /// chunk (at most its chunk size and the overhead a Blosc2 chunk may
    /// add). C-Blosc2 allocates what a chunk's header declares before it
    /// reads the chunk; a bigger read is damage, refused before that.
    pub(crate) largest_read: u64,
}

/// Most bytes a compressed Blosc2 chunk holds beyond its data: C-Blosc2
/// stores a chunk that would grow past `BLOSC2_MAX_OVERHEAD` (32) as a copy
/// instead.
pub(crate) const MAX_CHUNK_OVERHEAD: u64 = 32;

/// Checks the header of a frame's offsets index, which C-Blosc2 reads an
/// item of for every chunk it fetches (`get_coffset`, through
/// `blosc2_getitem`, which copies from a stored index trusting its sizes):
/// sizes C-Blosc2 accepts, one 8-byte offset per chunk (`nchunks`, when the
/// chunks have one size), inside the `room` between the chunks and the
/// trailer, and when stored as a plain copy, long enough to hold them.
fn check_offsets_header(
    head: &[u8],
    room: u64,
    nchunks: Option<u64>,
) -> std::result::Result<(), String> {
    let (nbytes, cbytes, _) =
        chunk_sizes(head).map_err(|e| format!("its offsets index is damaged: {e}"))?;
    let (nbytes, cbytes) = (nbytes.max(0) as u64, cbytes.max(0) as u64);
    // C-Blosc2 reads offsets as items of the chunk's own typesize into an
    // 8-byte slot: any other size reads past the offset it meant (or leaves
    // half the slot unset), a pointer anywhere. Every writer uses 8.
    if head.get(3) != Some(&8) {
        return Err(format!(
            "its offsets index holds items of {} bytes, not 8",
            head.get(3).copied().unwrap_or(0)
        ));
    }
    let memcpyed = head.get(2).is_some_and(|flags| flags & 0x2 != 0);
    let special_kind = head.get(31).map_or(0, |flags| (flags & 0x70) >> 4);
    let special = special_kind != 0;
    // An index of zeros, NaNs or one repeated value is read as such; one
    // stored as uninitialised leaves C-Blosc2's 8-byte slot as it was (stack
    // garbage taken for an offset), and kinds past 4 are not Blosc2's.
    if special_kind > 3 {
        return Err(format!(
            "its offsets index is a special chunk of kind {special_kind} (uninitialised or unknown)"
        ));
    }
    if nbytes % 8 != 0 || nchunks.is_some_and(|n| Some(nbytes) != n.checked_mul(8)) {
        return Err(format!(
            "its offsets index holds {nbytes} bytes for {} chunks",
            nchunks.map_or("its".into(), |n| n.to_string())
        ));
    }
    if cbytes < CHUNK_HEADER as u64 || cbytes > room {
        return Err(format!(
            "its offsets index of {cbytes} bytes does not fit in the {room} bytes it has"
        ));
    }
    if memcpyed && !special && cbytes < nbytes + CHUNK_HEADER as u64 {
        return Err(format!(
            "its offsets index is a copy of {nbytes} bytes in only {cbytes}"
        ));
    }
    Ok(())
}

/// Has C-Blosc2 parse the header and trailer of `frame` (a whole frame, or
/// a header and trailer put together) without reading chunks, checking the
/// b2nd metalayer first, which C-Blosc2 parses without any bounds checks.
/// Answers whether the frame holds a b2nd array (has that metalayer).
pub(crate) fn probe_frame(frame: &[u8]) -> Result<bool> {
    let metas = crate::raw::schunk::RawSChunk::probe_metalayers(frame)
        .map_err(|e| Error::Invalid(format!("its metadata cannot be read ({e})")))?;
    let Some((_, meta)) = metas.iter().find(|(n, _)| n == "b2nd" || n == "caterva") else {
        return Ok(false);
    };
    check_b2nd_meta(meta).map_err(Error::Invalid)?;
    crate::raw::ndarray::RawNdArray::probe(frame)
        .map_err(|e| Error::Invalid(format!("its array metadata cannot be read ({e})")))?;
    Ok(true)
}

/// Checks the content of a `b2nd` metalayer (README_B2ND_METALAYER: a
/// msgpack array of version, ndim, shape as int64s, chunk and block shapes
/// as int32s, then dtype format and dtype string) the way C-Blosc2 reads it:
/// at fixed positions, so every length must agree with the bytes there, and
/// every dimension used as a divisor must be positive.
pub fn check_b2nd_meta(m: &[u8]) -> std::result::Result<(), String> {
    let bad = |what: &str| Err(format!("its b2nd metadata is damaged: {what}"));
    let ndim = match m.get(2) {
        Some(&n) if usize::from(n) <= crate::MAX_DIM => usize::from(n),
        Some(_) => return bad("too many dimensions"),
        None => return bad("too short"),
    };
    // Array marker, version, ndim; then three lists, each a marker and
    // ndim marked items of 8, 4 and 4 bytes.
    let dims_end = 3 + (1 + 9 * ndim) + 2 * (1 + 5 * ndim);
    if m.len() < dims_end {
        return bad("too short for its dimensions");
    }
    let item = |list: usize, size: usize, i: usize| {
        let start = match list {
            0 => 4,
            1 => 5 + 9 * ndim,
            _ => 6 + 14 * ndim,
        } + i * (size + 1)
            + 1;
        let b = &m[start..start + size];
        if size == 8 {
            b.try_into().map(i64::from_be_bytes).unwrap_or(-1)
        } else {
            b.try_into().map(i32::from_be_bytes).map_or(-1, i64::from)
        }
    };
    for i in 0..ndim {
        let (shape, chunk, block) = (item(0, 8, i), item(1, 4, i), item(2, 4, i));
        if shape < 0 || (shape > 0 && (chunk <= 0 || block <= 0)) || chunk < 0 || block < 0 {
            return bad("a dimension is out of range");
        }
    }
    if m.len() > dims_end {
        // dtype format, a str32 marker, the length, the string.
        let len = m
            .get(dims_end + 2..dims_end + 6)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_be_bytes);
        match len {
            Some(n) if n >= 0 && dims_end + 6 + n as usize <= m.len() => {}
            _ => return bad("its dtype runs past its end"),
        }
    }
    Ok(())
}

/// Checks a whole frame held in memory before C-Blosc2 copies it.
///
/// Why: when C-Blosc2 2.21 reads a frame from memory it follows the chunk
/// offsets in the frame without bounds checks. So the offsets index is
/// decompressed here and every chunk it points at must lie, with the size
/// its own header gives, inside the frame.
pub fn check_cframe(frame: &[u8]) -> std::result::Result<(), String> {
    let frame_len = check_header(frame)?;
    if frame_len != frame.len() as u64 {
        return Err(format!(
            "the frame declares {frame_len} bytes but {} are given",
            frame.len()
        ));
    }
    let header_len = be_i32(frame, HEADER_LEN_AT).map_or(0, |v| v as u64);
    let header = frame
        .get(..header_len as usize)
        .ok_or("its header is longer than the frame")?;
    check_meta_index(header, HEADER_META_INDEX_AT, "metalayers")?;
    let trailer_len = frame
        .len()
        .checked_sub(TRAILER_LEN_FROM_END as usize)
        .and_then(|at| be_u32(frame, at))
        .filter(|&n| n as usize <= frame.len() - header.len())
        .ok_or("its trailer is damaged")?;
    let trailer = &frame[frame.len() - trailer_len as usize..];
    check_meta_index(trailer, TRAILER_META_INDEX_AT, "variable-length metalayers")?;
    let nbytes = be_i64(frame, NBYTES_AT).unwrap_or(0);
    let cbytes = be_i64(frame, CBYTES_AT).unwrap_or(0);
    let chunksize = i64::from(be_i32(frame, CHUNKSIZE_AT).unwrap_or(0));
    if nbytes <= 0 || chunksize <= 0 {
        return Ok(());
    }
    let nchunks = ((nbytes + chunksize - 1) / chunksize) as u64;
    // Where C-Blosc2 looks for the offsets: right after the chunks.
    let off_pos = header_len
        .checked_add(u64::try_from(cbytes).map_err(|_| "negative cbytes".to_string())?)
        .filter(|&p| p + 32 <= frame_len)
        .ok_or("its offsets index lies outside the frame")? as usize;
    check_offsets_header(
        &frame[off_pos..],
        (frame.len() - off_pos) as u64,
        Some(nchunks),
    )?;
    let (off_nbytes, off_cbytes, _) =
        crate::chunk_sizes(&frame[off_pos..]).map_err(|e| format!("its offsets index: {e}"))?;
    let off_end = off_pos + off_cbytes.max(0) as usize;
    if off_end > frame.len() || off_nbytes as u64 != nchunks * 8 {
        return Err("its offsets index does not match its chunks".into());
    }
    if nchunks * 8 > MAX_META_LEN {
        return Err(format!("{nchunks} chunks are more than this server reads"));
    }
    let mut offsets = Vec::new();
    crate::Decompressor::new(1)
        .and_then(|mut d| d.decompress(&frame[off_pos..off_end], &mut offsets))
        .map_err(|e| format!("its offsets index: {e}"))?;
    for raw in offsets.chunks_exact(8) {
        let off = i64::from_le_bytes(raw.try_into().map_err(|_| "short offset".to_string())?);
        if off < 0 {
            continue; // a special chunk (zeros, uninitialised...), stored nowhere
        }
        let at = usize::try_from(header_len + off as u64).unwrap_or(usize::MAX);
        let fits = frame
            .get(at..)
            .filter(|c| c.len() >= 32)
            .and_then(|c| crate::chunk_sizes(c).ok())
            .is_some_and(|(_, c, _)| c >= 16 && at + c as usize <= frame.len());
        if !fits {
            return Err(format!("a chunk at offset {off} lies outside the frame"));
        }
    }
    Ok(())
}
