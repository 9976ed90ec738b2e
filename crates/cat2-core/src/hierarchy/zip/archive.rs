//! Just enough of the zip format to find where each member of a `.b2z` lies.
//!
//! python-blosc2 writes its stores with every member *stored* (not deflated),
//! so a member's bytes in the archive are the Blosc2 frame itself and nothing
//! has to be unpacked: reading the central directory and, per member, the
//! local header's two name lengths gives each frame's byte window. Zip64
//! records are followed when the classic fields overflow.
//!
//! The file is untrusted. Every offset and length read from it is checked
//! against the file's size before it is used, the central directory is read
//! once with a fixed upper bound, and nothing here allocates more than the
//! directory it read. Malformed input is a [`ZipError`], never a panic.

use crate::storage::ReadAt;

/// End of central directory record (classic).
const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: u64 = 22;
/// Zip64 end of central directory locator and record.
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_LOCATOR_LEN: u64 = 20;
const EOCD64_SIG: u32 = 0x0606_4b50;
const EOCD64_LEN: u64 = 56;
/// Central directory file header.
const CDH_SIG: u32 = 0x0201_4b50;
const CDH_LEN: usize = 46;
/// Local file header.
const LFH_SIG: u32 = 0x0403_4b50;
const LFH_LEN: u64 = 30;
/// The zip64 "extended information" extra field.
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// Longest archive comment, hence how far from the end the EOCD can start.
const MAX_COMMENT: u64 = 0xffff;
/// Largest central directory read (about a million members); a bigger one
/// is refused rather than read into memory.
pub(crate) const MAX_DIRECTORY: u64 = 64 << 20;

/// Why a file is not a zip archive this module can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ZipError(pub String);

fn bad(msg: impl Into<String>) -> ZipError {
    ZipError(msg.into())
}

/// One member as the central directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ZipMember {
    /// The member's name (`g/a.b2nd`), UTF-8 (invalid bytes replaced).
    pub name: String,
    /// Compression method: 0 is stored.
    pub method: u16,
    /// General purpose flags (bit 0: encrypted).
    pub flags: u16,
    /// Bytes the member occupies in the archive.
    pub compressed_size: u64,
    /// Bytes once extracted.
    pub size: u64,
    /// Where the member's local header starts.
    pub header_offset: u64,
}

impl ZipMember {
    /// Whether the member's bytes in the archive are its contents: stored
    /// uncompressed, not encrypted, and the same size both ways.
    pub(crate) fn is_stored(&self) -> bool {
        self.method == 0 && self.flags & 1 == 0 && self.compressed_size == self.size
    }
}

/// The central directory of an archive.
#[derive(Debug, Clone)]
pub(crate) struct ZipIndex {
    pub members: Vec<ZipMember>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ZipError> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or_else(|| bad("a zip record is cut short"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ZipError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| bad("a zip record is cut short"))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, ZipError> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| bad("a zip record is cut short"))
}

/// Reads `len` bytes at `offset`, which the caller has checked lie in the file.
fn read_at(f: &dyn ReadAt, offset: u64, len: usize) -> Result<Vec<u8>, ZipError> {
    f.read_range(offset, len)
        .map_err(|e| bad(format!("cannot read {len} bytes at {offset}: {e}")))
}

/// Where the central directory is and how many entries it claims.
struct Directory {
    offset: u64,
    size: u64,
    entries: u64,
}

/// Finds the end of central directory record (and its zip64 twin).
fn find_directory(f: &dyn ReadAt, file_len: u64) -> Result<Directory, ZipError> {
    if file_len < EOCD_LEN {
        return Err(bad(format!(
            "{file_len} bytes are too few for a zip archive"
        )));
    }
    let tail_len = file_len.min(EOCD_LEN + MAX_COMMENT);
    let tail_start = file_len - tail_len;
    let tail = read_at(f, tail_start, tail_len as usize)?;
    // The last signature whose comment length reaches exactly to the end.
    let mut found = None;
    for at in (0..=tail.len() - EOCD_LEN as usize).rev() {
        if u32_at(&tail, at)? == EOCD_SIG {
            let comment = u64::from(u16_at(&tail, at + 20)?);
            if at as u64 + EOCD_LEN + comment == tail_len {
                found = Some(at);
                break;
            }
        }
    }
    let at = found.ok_or_else(|| bad("no end of central directory record: not a zip archive"))?;
    let eocd_offset = tail_start + at as u64;
    let entries16 = u16_at(&tail, at + 10)?;
    let size32 = u32_at(&tail, at + 12)?;
    let offset32 = u32_at(&tail, at + 16)?;
    let mut dir = Directory {
        offset: u64::from(offset32),
        size: u64::from(size32),
        entries: u64::from(entries16),
    };
    if entries16 == 0xffff || size32 == 0xffff_ffff || offset32 == 0xffff_ffff {
        dir = zip64_directory(f, eocd_offset)?;
    }
    let end = dir
        .offset
        .checked_add(dir.size)
        .ok_or_else(|| bad("the central directory's bounds overflow"))?;
    if end > eocd_offset {
        return Err(bad(format!(
            "the central directory ({} bytes at {}) runs past its end record at {eocd_offset}",
            dir.size, dir.offset
        )));
    }
    if dir.size > MAX_DIRECTORY {
        return Err(bad(format!(
            "the central directory is {} bytes, more than the {MAX_DIRECTORY} read",
            dir.size
        )));
    }
    if dir.entries > dir.size / CDH_LEN as u64 {
        return Err(bad(format!(
            "{} members cannot fit in a central directory of {} bytes",
            dir.entries, dir.size
        )));
    }
    Ok(dir)
}

fn zip64_directory(f: &dyn ReadAt, eocd_offset: u64) -> Result<Directory, ZipError> {
    let loc_offset = eocd_offset
        .checked_sub(EOCD64_LOCATOR_LEN)
        .ok_or_else(|| bad("zip64 fields without a zip64 locator"))?;
    let loc = read_at(f, loc_offset, EOCD64_LOCATOR_LEN as usize)?;
    if u32_at(&loc, 0)? != EOCD64_LOCATOR_SIG {
        return Err(bad("zip64 fields without a zip64 locator"));
    }
    let rec_offset = u64_at(&loc, 8)?;
    if rec_offset
        .checked_add(EOCD64_LEN)
        .is_none_or(|end| end > loc_offset)
    {
        return Err(bad(format!(
            "the zip64 end record at {rec_offset} lies outside the archive"
        )));
    }
    let rec = read_at(f, rec_offset, EOCD64_LEN as usize)?;
    if u32_at(&rec, 0)? != EOCD64_SIG {
        return Err(bad("the zip64 locator points at no zip64 end record"));
    }
    Ok(Directory {
        entries: u64_at(&rec, 32)?,
        size: u64_at(&rec, 40)?,
        offset: u64_at(&rec, 48)?,
    })
}

/// Reads the central directory of the archive `f`, which is `file_len` bytes.
pub(crate) fn read_index(f: &dyn ReadAt, file_len: u64) -> Result<ZipIndex, ZipError> {
    let dir = find_directory(f, file_len)?;
    let raw = read_at(f, dir.offset, dir.size as usize)?;
    let mut members = Vec::with_capacity(dir.entries as usize);
    let mut at = 0usize;
    for n in 0..dir.entries {
        let h = raw
            .get(at..at + CDH_LEN)
            .ok_or_else(|| bad(format!("central directory entry {n} is cut short")))?;
        if u32_at(h, 0)? != CDH_SIG {
            return Err(bad(format!(
                "central directory entry {n} has a bad signature"
            )));
        }
        let flags = u16_at(h, 8)?;
        let method = u16_at(h, 10)?;
        let csize32 = u32_at(h, 20)?;
        let size32 = u32_at(h, 24)?;
        let name_len = usize::from(u16_at(h, 28)?);
        let extra_len = usize::from(u16_at(h, 30)?);
        let comment_len = usize::from(u16_at(h, 32)?);
        let offset32 = u32_at(h, 42)?;
        let name_at = at + CDH_LEN;
        let extra_at = name_at + name_len;
        let next = extra_at + extra_len + comment_len;
        let name = raw
            .get(name_at..extra_at)
            .ok_or_else(|| bad(format!("the name of member {n} is cut short")))?;
        let extra = raw
            .get(extra_at..extra_at + extra_len)
            .ok_or_else(|| bad(format!("the extra field of member {n} is cut short")))?;
        let mut m = ZipMember {
            name: String::from_utf8_lossy(name).into_owned(),
            method,
            flags,
            compressed_size: u64::from(csize32),
            size: u64::from(size32),
            header_offset: u64::from(offset32),
        };
        apply_zip64_extra(&mut m, extra, size32, csize32, offset32)?;
        members.push(m);
        at = next;
    }
    Ok(ZipIndex { members })
}

/// Replaces the overflowed classic fields with their zip64 values, which come
/// in this order and only for the fields that overflowed.
fn apply_zip64_extra(
    m: &mut ZipMember,
    mut extra: &[u8],
    size32: u32,
    csize32: u32,
    offset32: u32,
) -> Result<(), ZipError> {
    if size32 != 0xffff_ffff && csize32 != 0xffff_ffff && offset32 != 0xffff_ffff {
        return Ok(());
    }
    while extra.len() >= 4 {
        let id = u16_at(extra, 0)?;
        let len = usize::from(u16_at(extra, 2)?);
        let body = extra
            .get(4..4 + len)
            .ok_or_else(|| bad(format!("the extra field of {} is cut short", m.name)))?;
        if id == ZIP64_EXTRA_ID {
            let mut at = 0;
            let mut next = || -> Result<u64, ZipError> {
                let v = u64_at(body, at)
                    .map_err(|_| bad(format!("the zip64 field of {} is cut short", m.name)))?;
                at += 8;
                Ok(v)
            };
            if size32 == 0xffff_ffff {
                m.size = next()?;
            }
            if csize32 == 0xffff_ffff {
                m.compressed_size = next()?;
            }
            if offset32 == 0xffff_ffff {
                m.header_offset = next()?;
            }
            return Ok(());
        }
        extra = &extra[4 + len..];
    }
    Err(bad(format!(
        "{} has zip64 sizes but no zip64 extra field",
        m.name
    )))
}

/// Where a member's bytes start, from its local header, checked to lie with
/// all of its bytes inside the archive.
pub(crate) fn data_offset(f: &dyn ReadAt, file_len: u64, m: &ZipMember) -> Result<u64, ZipError> {
    if m.header_offset
        .checked_add(LFH_LEN)
        .is_none_or(|end| end > file_len)
    {
        return Err(bad(format!(
            "the local header of {} at {} lies outside the archive",
            m.name, m.header_offset
        )));
    }
    let h = read_at(f, m.header_offset, LFH_LEN as usize)?;
    if u32_at(&h, 0)? != LFH_SIG {
        return Err(bad(format!(
            "the local header of {} has a bad signature",
            m.name
        )));
    }
    let name_len = u64::from(u16_at(&h, 26)?);
    let extra_len = u64::from(u16_at(&h, 28)?);
    let start = m.header_offset + LFH_LEN + name_len + extra_len;
    if start
        .checked_add(m.compressed_size)
        .is_none_or(|end| end > file_len)
    {
        return Err(bad(format!(
            "{} claims {} bytes at {start}, past the end of the {file_len}-byte archive",
            m.name, m.compressed_size
        )));
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal archive of stored members, written by hand.
    pub(crate) fn build_zip(members: &[(&str, &[u8])], zip64: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in members {
            let offset = out.len() as u32;
            out.extend_from_slice(&LFH_SIG.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(&CDH_SIG.to_le_bytes());
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            let (sz, off, extra) = if zip64 {
                let mut e = Vec::new();
                e.extend_from_slice(&ZIP64_EXTRA_ID.to_le_bytes());
                e.extend_from_slice(&24u16.to_le_bytes());
                e.extend_from_slice(&(data.len() as u64).to_le_bytes());
                e.extend_from_slice(&(data.len() as u64).to_le_bytes());
                e.extend_from_slice(&u64::from(offset).to_le_bytes());
                (0xffff_ffffu32, 0xffff_ffffu32, e)
            } else {
                (data.len() as u32, offset, Vec::new())
            };
            central.extend_from_slice(&sz.to_le_bytes());
            central.extend_from_slice(&sz.to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&off.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
            central.extend_from_slice(&extra);
        }
        let cd_offset = out.len() as u64;
        out.extend_from_slice(&central);
        let n = members.len() as u64;
        if zip64 {
            let rec_offset = out.len() as u64;
            out.extend_from_slice(&EOCD64_SIG.to_le_bytes());
            out.extend_from_slice(&44u64.to_le_bytes());
            out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&(central.len() as u64).to_le_bytes());
            out.extend_from_slice(&cd_offset.to_le_bytes());
            out.extend_from_slice(&EOCD64_LOCATOR_SIG.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&rec_offset.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let (n16, size32, off32) = if zip64 {
            (0xffffu16, 0xffff_ffffu32, 0xffff_ffffu32)
        } else {
            (n as u16, central.len() as u32, cd_offset as u32)
        };
        out.extend_from_slice(&n16.to_le_bytes());
        out.extend_from_slice(&n16.to_le_bytes());
        out.extend_from_slice(&size32.to_le_bytes());
        out.extend_from_slice(&off32.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn index_of(bytes: &[u8]) -> (Vec<u8>, Result<ZipIndex, ZipError>) {
        let f = bytes.to_vec();
        let r = read_index(&f, bytes.len() as u64);
        (f, r)
    }

    #[test]
    fn reads_windows_of_stored_members() {
        for zip64 in [false, true] {
            let bytes = build_zip(&[("a.b2nd", b"hello"), ("g/b.b2f", b"world!")], zip64);
            let (tmp, idx) = index_of(&bytes);
            let idx = idx.unwrap();
            assert_eq!(idx.members.len(), 2);
            let f = &tmp;
            for (m, want) in idx.members.iter().zip([&b"hello"[..], b"world!"]) {
                assert!(m.is_stored());
                let at = data_offset(f, bytes.len() as u64, m).unwrap() as usize;
                assert_eq!(&bytes[at..at + m.compressed_size as usize], want);
            }
            assert_eq!(idx.members[1].name, "g/b.b2f");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"not a zip",
            b"PK\x05\x06",
            &[
                0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0, 0,
            ],
        ] {
            let (_tmp, r) = index_of(bytes);
            assert!(r.is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_handled() {
        let bytes = build_zip(&[("a.b2nd", b"hello"), ("embed.b2e", b"xyz")], false);
        for cut in 0..bytes.len() {
            let (_tmp, _r) = index_of(&bytes[..cut]);
        }
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                let (tmp, r) = index_of(&b);
                if let Ok(idx) = r {
                    let f = &tmp;
                    for m in &idx.members {
                        if let Ok(at) = data_offset(f, b.len() as u64, m) {
                            assert!(at + m.compressed_size <= b.len() as u64);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_member_past_the_end_is_refused() {
        let mut bytes = build_zip(&[("a.b2nd", b"hello")], false);
        // Claim a huge compressed size in the central directory.
        let cd = bytes.len() - 22 - (46 + 6);
        bytes[cd + 20..cd + 24].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        let (tmp, idx) = index_of(&bytes);
        let idx = idx.unwrap();
        let f = &tmp;
        let err = data_offset(f, bytes.len() as u64, &idx.members[0]).unwrap_err();
        assert!(err.0.contains("past the end"), "{err}");
    }
}
