//! Opening leaves: a stored member is opened by C-Blosc2 in place, at its
//! offset in the archive; an embedded leaf is copied out of `embed.b2e`.
//! Both are checked first: the frame's declared length must fit in the bytes
//! it was found in (cat2-blosc2 checks the rest of what C-Blosc2 parses).

use std::fs::File;
use std::path::Path;

use cat2_blosc2::{check_header, NdArray, SChunk, FRAME_HEADER_MINLEN};

use super::{read_exact_at, Container, Leaf, Placement, Source};
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// Checks that `window` bytes at `offset` hold a whole frame: a sound header
/// ([`check_header`]) whose declared length fits. Returns that length.
pub(super) fn frame_fits(
    f: &mut File,
    offset: u64,
    window: u64,
) -> std::result::Result<u64, String> {
    let mut header = [0u8; FRAME_HEADER_MINLEN];
    if window < FRAME_HEADER_MINLEN as u64 || read_exact_at(f, offset, &mut header).is_err() {
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
fn open_bytes(frame: &[u8]) -> cat2_blosc2::Result<Dataset> {
    let sc = SChunk::from_cframe(frame)?;
    if sc.metalayer("b2nd").is_some() {
        drop(sc);
        Ok(Dataset::Array(NdArray::from_cframe(frame)?))
    } else {
        Ok(Dataset::Frame(sc))
    }
}

/// Opens the frame that starts `offset` bytes into the file at `path`, in
/// place (chunks are read from the file as they are needed; cat2-blosc2
/// checks what C-Blosc2 parses on opening first).
fn open_in_place(path: &Path, offset: u64) -> cat2_blosc2::Result<Dataset> {
    let sc = SChunk::open_offset(path, offset)?;
    if sc.metalayer("b2nd").is_some() {
        drop(sc);
        Ok(Dataset::Array(NdArray::open_offset(path, offset)?))
    } else {
        Ok(Dataset::Frame(sc))
    }
}

impl Container {
    fn leaf_error(&self, key: &str, why: impl std::fmt::Display) -> Error {
        let file = self
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        Error::BadRequest(format!("{key} in {file} cannot be read: {why}"))
    }

    /// Opens the leaf at `key`.
    pub fn open_leaf(&self, key: &str) -> Result<Leaf> {
        let source = self.leaves.get(key).ok_or_else(|| Error::NotFound {
            path: key.to_string(),
        })?;
        match source {
            Source::Member(i) => {
                let m = &self.members[*i];
                let offset = *self
                    .data_offsets
                    .get(i)
                    .ok_or_else(|| self.leaf_error(key, "its member has no data offset"))?;
                let len = m.compressed_size;
                let mut f = File::open(&self.path)
                    .map_err(|e| Error::io("opening", self.path.clone(), e))?;
                frame_fits(&mut f, offset, len).map_err(|why| self.leaf_error(key, why))?;
                let dataset =
                    open_in_place(&self.path, offset).map_err(|e| self.leaf_error(key, e))?;
                Ok(Leaf {
                    dataset,
                    placement: Placement::Window { offset, len },
                })
            }
            Source::Embedded { offset, length } => {
                let frame = self.embedded_frame(key, *offset, *length)?;
                let dataset = open_bytes(&frame).map_err(|e| self.leaf_error(key, e))?;
                Ok(Leaf {
                    dataset,
                    placement: Placement::Embedded(frame),
                })
            }
            Source::Remote(url) => Err(Error::BadRequest(format!(
                "{key} is a reference to the remote array {url}, which this server does not follow"
            ))),
        }
    }

    /// The bytes of an embedded leaf's frame, bounded by the file's size.
    fn embedded_frame(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        if length > self.file_len {
            return Err(self.leaf_error(
                key,
                format!(
                    "it claims {length} bytes, more than the {}-byte file holds",
                    self.file_len
                ),
            ));
        }
        let estore = SChunk::open_offset(&self.path, self.embed_offset)
            .map_err(|e| self.leaf_error(key, e))?;
        if estore.typesize() != 1 {
            return Err(self.leaf_error(key, "the embedded store is not a byte store"));
        }
        let end = offset
            .checked_add(length)
            .filter(|&end| i64::try_from(end).is_ok_and(|e| e <= estore.nbytes()))
            .ok_or_else(|| {
                self.leaf_error(
                    key,
                    format!(
                        "bytes {offset}+{length} lie outside the {} of the embedded store",
                        estore.nbytes()
                    ),
                )
            })?;
        let mut frame = estore
            .slice(offset as i64, end as i64)
            .map_err(|e| self.leaf_error(key, e))?;
        match check_header(&frame) {
            Ok(n) if n <= length => {
                frame.truncate(n as usize);
                Ok(frame)
            }
            Ok(n) => Err(self.leaf_error(
                key,
                format!("its frame declares {n} bytes but {length} are stored"),
            )),
            Err(why) => Err(self.leaf_error(key, why)),
        }
    }
}
