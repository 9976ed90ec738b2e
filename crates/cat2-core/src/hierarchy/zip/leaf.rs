//! Opening leaves: a stored member is opened by C-Blosc2 in place, at its
//! offset in the archive; an embedded leaf is copied out of `embed.b2e`.
//! Both are checked first: the frame's declared length must fit in the bytes
//! it was found in (cat2-blosc2 checks the rest of what C-Blosc2 parses).

use cat2_blosc2::check_header;

use super::frame::{frame_fits, open_bytes, Leaf, LeafData, Placement};
use super::{Container, Source};
use crate::error::{Error, Result};

impl Container {
    fn leaf_error(&self, key: &str, why: impl std::fmt::Display) -> Error {
        let file = self.blob.meta().key.name().to_string();
        Error::BadRequest(format!("{key} in {file} cannot be read: {why}"))
    }

    /// Opens the frame that starts `offset` bytes into the archive, in place
    /// (chunks are read as they are needed; cat2-blosc2 checks what C-Blosc2
    /// parses on opening first).
    fn open_in_place(&self, offset: u64) -> cat2_blosc2::Result<LeafData> {
        let sc = crate::frames::open_frame_at(&self.blob, offset)?;
        if sc.metalayer("b2nd").is_some() {
            drop(sc);
            Ok(LeafData::Array(crate::frames::open_array_at(
                &self.blob, offset,
            )?))
        } else {
            Ok(LeafData::Frame(sc))
        }
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
                frame_fits(self.blob.as_ref(), offset, len)
                    .map_err(|why| self.leaf_error(key, why))?;
                let data = self
                    .open_in_place(offset)
                    .map_err(|e| self.leaf_error(key, e))?;
                Ok(Leaf {
                    data,
                    placement: Placement::Window { offset, len },
                })
            }
            Source::Embedded { offset, length } => {
                let frame = self.embedded_frame(key, *offset, *length)?;
                let data = open_bytes(&frame).map_err(|e| self.leaf_error(key, e))?;
                Ok(Leaf {
                    data,
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
        let estore = crate::frames::open_frame_at(&self.blob, self.embed_offset)
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
