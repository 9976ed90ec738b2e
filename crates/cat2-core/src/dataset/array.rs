//! b2nd arrays whose data is their own: a stored `.b2nd`, or a leaf of a
//! `.b2z` store. A whole array is served as its stored frame; a selection
//! made of whole chunks copies them as they are ([`passthrough`]); anything
//! else is read box by box and built into a new frame.

use cat2_blosc2::NdArray;
use cat2_proto::Info;

use super::operand::Opening;
use super::{array_meta, Dataset, Download, Operand, Stored};
use crate::budget::Budget;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::fetch::passthrough::{passthrough_with, StoredChunks};
use crate::fetch::{
    build_array_frame, indices_frame, result_geometry, selection_frame, ArrayReader, FetchOutput,
    FetchRequest, MemReader,
};
use crate::filter::RowFilter;
use crate::path::DsPath;
use crate::selection::{parse_slice, read_selection, BoxReader, Selection};

/// A b2nd array with its data.
pub(crate) struct ArrayDataset {
    path: DsPath,
    arr: NdArray,
    stored: Stored,
}

impl ArrayDataset {
    pub(crate) fn new(path: DsPath, arr: NdArray, stored: Stored) -> ArrayDataset {
        ArrayDataset { path, arr, stored }
    }
}

impl Dataset for ArrayDataset {
    fn path(&self) -> &DsPath {
        &self.path
    }

    fn info(&self) -> Result<Info> {
        let mtime = super::mtime_of(self.stored.blob());
        let schunk = self
            .stored
            .schunk_info(self.arr.schunk(), &self.path, None)
            .map_err(|e| e.reading(&self.path))?;
        // A member's byte ranges are not advertised (they are the store's).
        let ranges = (!self.stored.is_member()).then(|| "bytes".to_string());
        Ok(Info::Array(array_meta(&self.arr, schunk, mtime, ranges)))
    }

    fn fetch(&self, req: &FetchRequest) -> Result<FetchOutput> {
        match fetch_array(&self.arr, &self.path, req).map_err(|e| e.reading(&self.path))? {
            Answer::Stored => Ok(self.stored.verbatim()),
            Answer::Computed(out) => Ok(out),
        }
    }

    fn chunk(&self, nchunk: i64, budget: &Budget) -> Result<Vec<u8>> {
        super::stored_chunk(self.arr.schunk(), &self.path, nchunk, budget)
    }

    fn download(&self, _budget: &Budget) -> Result<Download> {
        self.stored.download(&self.path)
    }

    fn list(&self) -> Vec<String> {
        self.stored.list(&self.path)
    }

    fn object(&self) -> &std::sync::Arc<dyn crate::storage::Blob> {
        self.stored.blob()
    }

    fn into_operand(self: Box<Self>, _opening: &mut Opening) -> Result<Box<dyn Operand>> {
        if self.stored.is_member() {
            return Err(Error::BadRequest(format!(
                "Invalid name or expression: {} is not an array (.b2nd)",
                self.path
            )));
        }
        Ok(Box::new(StoredOperand {
            arr: self.arr,
            path: self.path,
        }))
    }
}

/// What [`fetch_array`] decided: the stored frame, or a computed answer.
pub(crate) enum Answer {
    Stored,
    Computed(FetchOutput),
}

/// A fetch from an array that holds its data (see the module docs).
pub(crate) fn fetch_array(arr: &NdArray, path: &DsPath, req: &FetchRequest) -> Result<Answer> {
    let stored_dtype = arr.dtype();
    let dtype = DType::parse(&stored_dtype)?;
    let shape = arr.shape();
    let src_chunks: Vec<i64> = arr.chunks().into_iter().map(i64::from).collect();
    let src_blocks: Vec<i64> = arr.blocks().into_iter().map(i64::from).collect();
    let mut reader = ArrayReader::new(arr);
    let budget = &req.budget;
    // Reading decompresses a chunk per thread.
    let check_chunks = || {
        budget.check_chunks(
            arr.schunk().chunksize().max(0) as u64,
            rayon::current_num_threads() as u64,
            path,
        )
    };

    if let Some(ind) = &req.indices {
        check_chunks()?;
        return indices_frame(&mut reader, ind, &shape, &dtype, budget).map(Answer::Computed);
    }

    if let Some(expr) = &req.filter {
        if dtype.fields().is_none() {
            return Err(Error::BadRequest(
                "Filtering/sorting is not supported for this dataset type".into(),
            ));
        }
        let filter = RowFilter::parse(expr, &dtype)?;
        check_chunks()?;
        // The records, the ones kept, and their frame.
        let _held = crate::fetch::reserve_whole(budget, &shape, dtype.itemsize(), "filtering")?;
        let all = arr.to_vec()?;
        let keep = filter.select(&all);
        let itemsize = dtype.itemsize();
        let mut rows = Vec::new();
        for (rec, ok) in all.chunks_exact(itemsize.max(1)).zip(keep) {
            if ok {
                rows.extend_from_slice(rec);
            }
        }
        let n = (rows.len() / itemsize.max(1)) as i64;
        let (data, out_shape) = match req.slice.as_deref().map(parse_slice).transpose()?.flatten() {
            None => (rows, vec![n]),
            Some(spec) => {
                let sel = spec.resolve(&[n])?;
                let mut mem = MemReader::new(&rows, vec![n], itemsize);
                (read_selection(&mut mem, &sel)?, sel.out_shape())
            }
        };
        return build_array_frame(&data, &out_shape, &dtype, None)
            .map(|f| Answer::Computed(FetchOutput::Frame(f)));
    }

    let spec = match &req.slice {
        Some(s) => parse_slice(s)?,
        None => None,
    };
    let sel = match &spec {
        None => Selection::full(&shape),
        Some(spec) => spec.resolve(&shape)?,
    };
    let whole = match &spec {
        None => true,
        Some(spec) => spec.is_tuple && sel.is_full(&shape),
    };
    if whole && req.field.is_none() {
        return Ok(Answer::Stored);
    }
    if req.field.is_none() {
        if let Some(frame) = passthrough(arr, &sel)? {
            return Ok(Answer::Computed(FetchOutput::Frame(frame)));
        }
    }
    let geometry = result_geometry(
        &sel,
        &sel.out_shape(),
        &src_chunks,
        &src_blocks,
        dtype.itemsize(),
    );
    check_chunks()?;
    selection_frame(
        &mut reader,
        &sel,
        &dtype,
        geometry,
        req.field.as_deref(),
        budget,
    )
    .map(Answer::Computed)
}

/// Serves a selection made of whole stored chunks without decompressing it.
///
/// When every kept dimension is selected from a chunk boundary to a chunk
/// boundary (or the end) with step 1, and every integer-indexed dimension has
/// chunks of 1, the result — given the source's chunk and block shapes on the
/// kept dimensions — has exactly the source's chunk bytes: the block grid of
/// a chunk is the same with or without the dropped size-1 dimensions. Those
/// compressed chunks are copied as they are. This is what makes fetching a
/// frame of a detector stack (one chunk per frame) cost a file read.
fn passthrough(arr: &NdArray, sel: &Selection) -> Result<Option<Vec<u8>>> {
    let mut cparams = arr.schunk().cparams();
    cparams.nthreads = cat2_blosc2::cparams::default_nthreads();
    let source = StoredChunks {
        shape: arr.shape(),
        chunks: arr.chunks().into_iter().map(i64::from).collect(),
        blocks: arr.blocks().into_iter().map(i64::from).collect(),
        dtype: arr.dtype(),
        cparams,
    };
    passthrough_with(&source, sel, &mut |index| {
        Ok(Some(arr.schunk().chunk(index)?))
    })
}

/// A stored array as an expression operand.
pub(crate) struct StoredOperand {
    pub(crate) arr: NdArray,
    /// Where it was found, for messages about what it holds.
    pub(crate) path: DsPath,
}

impl Operand for StoredOperand {
    fn dtype(&self) -> Result<cat2_expr::DType> {
        Ok(super::lazy::expr_dtype(&self.arr.dtype())?.0)
    }

    fn shape(&self) -> Vec<usize> {
        self.arr
            .shape()
            .iter()
            .map(|&n| n.max(0) as usize)
            .collect()
    }

    fn geometry(&self) -> Option<(Vec<i64>, Vec<i64>)> {
        Some((
            self.arr.chunks().into_iter().map(i64::from).collect(),
            self.arr.blocks().into_iter().map(i64::from).collect(),
        ))
    }

    fn read(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>> {
        let s: Vec<i64> = start.iter().map(|&n| n as i64).collect();
        let e: Vec<i64> = stop.iter().map(|&n| n as i64).collect();
        let data = ArrayReader::new(&self.arr)
            .read_box_vec(&s, &e)
            .map_err(|e| e.reading(&self.path))?;
        super::lazy::to_native(data, &self.arr.dtype())
    }

    fn native_array(&self) -> Option<&NdArray> {
        super::lazy::expr_dtype(&self.arr.dtype())
            .is_ok_and(|(_, big_endian)| !big_endian)
            .then_some(&self.arr)
    }
}
