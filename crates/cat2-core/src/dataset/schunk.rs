//! Super-chunks: `.b2frame` files and frame leaves of `.b2z` stores
//! ([`FrameDataset`]: sliced along their items), and regular files, stored as
//! a super-chunk of their bytes named `<name>.b2` ([`RegularFile`]: not
//! sliced, downloaded decompressed).

use std::sync::Arc;

use cat2_blosc2::{CParams, SChunk};
use cat2_proto::Info;

use super::{Dataset, Download, Stored};
use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::fetch::{FetchOutput, FetchRequest, NOT_A_DATASET};
use crate::path::DsPath;
use crate::selection::{parse_slice, SliceItem};
use crate::storage::Blob;

/// A super-chunk of data.
pub(crate) struct FrameDataset {
    path: DsPath,
    sc: SChunk,
    stored: Stored,
}

impl FrameDataset {
    pub(crate) fn new(path: DsPath, sc: SChunk, stored: Stored) -> FrameDataset {
        FrameDataset { path, sc, stored }
    }
}

impl Dataset for FrameDataset {
    fn path(&self) -> &DsPath {
        &self.path
    }

    fn info(&self) -> Result<Info> {
        let mtime = super::mtime_of(self.stored.blob());
        let info = self.stored.schunk_info(&self.sc, &self.path, mtime);
        Ok(Info::SChunk(info.map_err(|e| e.reading(&self.path))?))
    }

    fn fetch(&self, req: &FetchRequest) -> Result<FetchOutput> {
        let answer = fetch_frame(&self.sc, req).map_err(|e| e.reading(&self.path))?;
        Ok(answer.unwrap_or_else(|| self.stored.verbatim()))
    }

    fn chunk(&self, nchunk: i64, budget: &Budget) -> Result<Vec<u8>> {
        super::stored_chunk(&self.sc, &self.path, nchunk, budget)
    }

    fn download(&self, _budget: &Budget) -> Result<Download> {
        self.stored.download(&self.path)
    }

    fn list(&self) -> Vec<String> {
        self.stored.list(&self.path)
    }

    fn object(&self) -> &Arc<dyn Blob> {
        self.stored.blob()
    }
}

/// Decompressed chunks a streamed download holds at once: the one being
/// decompressed, the ones queued for the connection, the one being sent.
pub(crate) const STREAMED_CHUNKS_HELD: u64 = 4;

/// A regular file: any file that is not a dataset, stored (as Caterva2
/// stores it) as a super-chunk of its bytes.
pub(crate) struct RegularFile {
    path: DsPath,
    sc: SChunk,
    blob: Arc<dyn Blob>,
    /// Whether it was addressed by its stored name (`x.b2`), which lists as
    /// itself; by its logical name it lists as nothing, as the reference.
    by_stored_name: bool,
}

impl RegularFile {
    pub(crate) fn new(
        path: DsPath,
        sc: SChunk,
        blob: Arc<dyn Blob>,
        by_stored_name: bool,
    ) -> RegularFile {
        RegularFile {
            path,
            sc,
            blob,
            by_stored_name,
        }
    }
}

impl Dataset for RegularFile {
    fn path(&self) -> &DsPath {
        &self.path
    }

    fn info(&self) -> Result<Info> {
        let mtime = super::mtime_of(&self.blob);
        Ok(Info::SChunk(super::schunk_info(
            &self.sc,
            Some(self.path.to_string()),
            mtime,
        )?))
    }

    fn fetch(&self, _req: &FetchRequest) -> Result<FetchOutput> {
        Err(Error::BadRequest(NOT_A_DATASET.into()))
    }

    fn chunk(&self, nchunk: i64, budget: &Budget) -> Result<Vec<u8>> {
        super::stored_chunk(&self.sc, &self.path, nchunk, budget)
    }

    /// Sent decompressed, chunk by chunk: refused when the file's chunks
    /// are more than the request may hold ([`STREAMED_CHUNKS_HELD`] at a time).
    fn download(&self, budget: &Budget) -> Result<Download> {
        budget.check_chunks(
            self.sc.chunksize().max(0) as u64,
            STREAMED_CHUNKS_HELD,
            &self.path,
        )?;
        Ok(Download::RegularFile(self.blob.clone()))
    }

    fn is_regular_file(&self) -> bool {
        true
    }

    fn list(&self) -> Vec<String> {
        if self.by_stored_name {
            vec![self.path.name().to_string()]
        } else {
            Vec::new()
        }
    }

    fn object(&self) -> &Arc<dyn Blob> {
        &self.blob
    }
}

/// A fetch from a super-chunk: `Ok(None)` when the answer is the stored frame.
pub(crate) fn fetch_frame(sc: &SChunk, req: &FetchRequest) -> Result<Option<FetchOutput>> {
    if req.filter.is_some() {
        return Err(Error::BadRequest(
            "Filtering/sorting is not supported for this dataset type".into(),
        ));
    }
    if req.indices.is_some() || req.field.is_some() {
        return Err(Error::BadRequest(
            "indices and field need an array (.b2nd); this is a super-chunk (.b2frame)".into(),
        ));
    }
    let Some(spec) = req.slice.as_deref().map(parse_slice).transpose()?.flatten() else {
        return Ok(None);
    };
    let typesize = sc.typesize() as i64;
    let nitems = sc.nbytes() / typesize.max(1);
    let bad = |reason: &str| Error::BadSlice {
        input: req.slice.clone().unwrap_or_default(),
        reason: reason.to_string(),
    };
    let [item] = spec.items.as_slice() else {
        return Err(bad(
            "a super-chunk is sliced with a single integer or slice",
        ));
    };
    let (start, stop) = match *item {
        SliceItem::Index(i) => {
            let j = if i < 0 { i + nitems } else { i };
            if j < 0 || j >= nitems {
                return Err(Error::OutOfBounds(format!(
                    "index {i} is out of bounds for axis 0 with size {nitems}"
                )));
            }
            (j, j + 1)
        }
        SliceItem::Range { start, stop, step } => {
            if step.is_some_and(|s| s != 1) {
                return Err(bad("super-chunks can only be sliced with step 1"));
            }
            let norm = |v: i64| {
                if v < 0 {
                    (v + nitems).max(0)
                } else {
                    v.min(nitems)
                }
            };
            let a = start.map_or(0, norm);
            let b = stop.map_or(nitems, norm);
            (a, b.max(a))
        }
        SliceItem::Ellipsis => (0, nitems),
    };
    if spec.is_tuple && start == 0 && stop == nitems {
        return Ok(None);
    }
    req.budget
        .check_chunks(sc.chunksize().max(0) as u64, 1, &"the super-chunk")?;
    // The items, the new super-chunk of them, and its frame.
    let bytes = ((stop - start) * typesize).max(0) as u64;
    let _held = req.budget.reserve(bytes.saturating_mul(3), &|| {
        format!("items {start}..{stop} of the super-chunk, held whole,")
    })?;
    let data = sc.slice(start, stop)?;
    let mut cparams = CParams::zstd_shuffle(typesize as usize);
    cparams.typesize = sc.typesize() as i32;
    let chunkbytes = (sc.chunksize().max(typesize)) as usize;
    let out = SChunk::from_bytes(&data, chunkbytes, &cparams)?;
    Ok(Some(FetchOutput::Frame(out.to_cframe()?)))
}
