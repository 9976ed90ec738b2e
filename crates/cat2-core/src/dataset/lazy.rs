//! Stored lazy expressions: a `.b2nd` *carrier* (python-blosc2's format,
//! see [`super::lazy_format`]) holding an expression over other arrays,
//! computed box by box of its result when it is read.
//!
//! Operands are opened again on every use, through an [`Opener`] that acts
//! for whoever asks, so a lazy expression in `@public` never lets an
//! anonymous caller read the `@shared` data it names. Any array-like dataset
//! is an operand ([`Operand`]): stored arrays, HDF5 proxies, datasets inside
//! HDF5 files and other lazy expressions.

use std::rc::Rc;
use std::sync::Arc;

use cat2_blosc2::{CParams, NdArray};
use cat2_expr::{DType as XType, Expr, Plan};
use cat2_proto::{Info, LazyInfo};

use super::lazy_format;
use super::operand::{Opening, SharedOperand};
use super::{Dataset, Download, Opener, Operand};
use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::fetch::{
    compress_chunk, frame_from_chunks, indices_frame, result_geometry, ChunkSource, FetchOutput,
    FetchRequest, OpenReader,
};
use crate::grid::{chunk_box, chunk_count};
use crate::path::DsPath;
use crate::selection::BoxReader;
use crate::storage::{Blob, Key};

/// Deepest chain of lazy expressions over lazy expressions (a cycle of
/// files ends here too).
pub(crate) const MAX_DEPTH: usize = 16;

/// A NumPy dtype string as the expression engine's type, and whether its
/// bytes are big-endian (they are swapped to native order when read).
pub(crate) fn expr_dtype(numpy: &str) -> Result<(XType, bool)> {
    let t = XType::from_numpy(numpy).ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid name or expression: operands of dtype {numpy} cannot be computed with"
        ))
    })?;
    Ok((t, numpy.starts_with('>') && t.itemsize() > 1))
}

/// Items read as stored (`numpy` dtype), in native byte order.
pub(crate) fn to_native(mut data: Vec<u8>, numpy: &str) -> Result<Vec<u8>> {
    let (t, big_endian) = expr_dtype(numpy)?;
    let itemsize = t.itemsize();
    if big_endian && itemsize > 1 {
        for item in data.chunks_exact_mut(itemsize) {
            item.reverse();
        }
    }
    Ok(data)
}

/// A lazy expression carrier found at `path`; its expression is opened
/// (operands and all) when it is used.
pub(crate) struct LazyDataset {
    path: DsPath,
    blob: Arc<dyn Blob>,
    arr: NdArray,
    opener: Arc<dyn Opener>,
    depth: usize,
}

impl LazyDataset {
    pub(crate) fn new(
        path: DsPath,
        blob: Arc<dyn Blob>,
        arr: NdArray,
        opener: Arc<dyn Opener>,
        depth: usize,
    ) -> LazyDataset {
        LazyDataset {
            path,
            blob,
            arr,
            opener,
            depth,
        }
    }

    /// The expression, with its operands opened for whoever asks, to be
    /// computed within `budget`.
    pub(crate) fn open(&self, budget: &Budget) -> Result<Lazy> {
        Lazy::open(
            self.opener.as_ref(),
            &self.path,
            &self.blob.meta().key,
            &self.arr,
            self.depth,
            &mut Opening::new(budget),
        )
    }
}

impl Dataset for LazyDataset {
    fn path(&self) -> &DsPath {
        &self.path
    }

    fn info(&self) -> Result<Info> {
        // Opening reads definitions, never data.
        let lazy = self.open(&Budget::unlimited())?;
        Ok(Info::Lazy(LazyInfo {
            shape: lazy.shape.iter().map(|&n| n as i64).collect(),
            dtype: lazy.dtype.numpy_name().to_string(),
            expression: lazy.text.clone(),
            operands: lazy
                .operands
                .iter()
                .map(|(n, p, _)| (n.clone(), serde_json::Value::from(p.to_string())))
                .collect(),
            mtime: super::mtime_of(&self.blob),
        }))
    }

    fn fetch(&self, req: &FetchRequest) -> Result<FetchOutput> {
        let lazy = self.open(&req.budget)?;
        // Workers open the expression again for themselves, carrier and all
        // (an opened array serves one thread).
        let (opener, blob, depth) = (self.opener.as_ref(), &self.blob, self.depth);
        let path = &self.path;
        let open = || -> Result<Box<dyn BoxReader>> {
            let arr = crate::frames::open_array(blob)?;
            let mut opening = Opening::new(&req.budget);
            let lazy = Lazy::open(opener, path, &blob.meta().key, &arr, depth, &mut opening)?;
            Ok(Box::new(lazy.into_reader()))
        };
        fetch_lazy(&lazy, &open, req)
    }

    fn chunk(&self, nchunk: i64, budget: &Budget) -> Result<Vec<u8>> {
        lazy_chunk(&self.open(budget)?, nchunk)
    }

    /// Downloaded as the array it computes.
    fn download(&self, budget: &Budget) -> Result<Download> {
        super::computed(self, budget)
    }

    /// The carrier file itself.
    fn preview(&self, _budget: &Budget) -> Result<Download> {
        Ok(Download::Stored(self.blob.clone()))
    }

    fn object(&self) -> &Arc<dyn Blob> {
        &self.blob
    }

    fn into_operand(self: Box<Self>, opening: &mut Opening) -> Result<Box<dyn Operand>> {
        Ok(Box::new(Lazy::open(
            self.opener.as_ref(),
            &self.path,
            &self.blob.meta().key,
            &self.arr,
            self.depth,
            opening,
        )?))
    }
}

impl Operand for Lazy {
    fn dtype(&self) -> Result<XType> {
        Ok(self.dtype)
    }

    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn geometry(&self) -> Option<(Vec<i64>, Vec<i64>)> {
        Some((self.chunks.clone(), self.blocks.clone()))
    }

    fn read(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>> {
        self.eval(start, stop)
    }
}

/// Opened operands by name, with their logical paths.
pub(crate) type Operands = Vec<(String, DsPath, Rc<SharedOperand>)>;

/// A lazy expression with its operands opened.
pub(crate) struct Lazy {
    /// The expression, typed against its operands once, for every box.
    plan: Plan,
    /// The expression as stored.
    pub text: String,
    /// Operands by name, with their logical paths.
    pub operands: Operands,
    pub dtype: XType,
    pub shape: Vec<usize>,
    /// The carrier's geometry (the result's chunks and blocks).
    pub chunks: Vec<i64>,
    pub blocks: Vec<i64>,
    /// How results are compressed: the carrier's cparams (for a new
    /// expression, [`crate::fetch::result_cparams`], which its carrier keeps).
    pub cparams: CParams,
    /// What computing it may spend; asked between boxes and pieces.
    budget: Budget,
}

impl Lazy {
    /// Opens the lazy expression stored in the carrier `arr` (found at
    /// `path`, stored at `key`), its operands opened through `opener`.
    pub(crate) fn open(
        opener: &dyn Opener,
        path: &DsPath,
        key: &Key,
        arr: &NdArray,
        depth: usize,
        opening: &mut Opening,
    ) -> Result<Lazy> {
        let def = lazy_format::read(arr, key.name())?
            .ok_or_else(|| Error::BadRequest(format!("{path} is not a lazy expression")))?;
        let dir = key.parent().unwrap_or_default();
        let mut operands = Vec::with_capacity(def.operands.len());
        for (name, url) in def.operands {
            let outside = || {
                Error::BadRequest(format!(
                    "Expression error: operand {name} of {path} lies outside the roots this caller may read"
                ))
            };
            let logical = opener.logical_path(&dir, &url).ok_or_else(outside)?;
            let operand = opener
                .operand(&logical, depth + 1, opening)
                .map_err(|e| match e {
                    Error::NotFound { .. } => Error::BadRequest(format!(
                        "Expression error: operand {name} ({logical}) of {path} is missing"
                    )),
                    other => other,
                })?;
            operands.push((name, logical, operand));
        }
        let mut lazy = Lazy::new(&def.expression, operands, opening.budget())?;
        lazy.chunks = arr.chunks().into_iter().map(i64::from).collect();
        lazy.blocks = arr.blocks().into_iter().map(i64::from).collect();
        lazy.cparams = CParams {
            typesize: cat2_blosc2::cparams::clamp_typesize(lazy.dtype.itemsize()),
            ..arr.schunk().cparams()
        };
        if lazy.shape.iter().map(|&n| n as i64).collect::<Vec<_>>() != arr.shape() {
            return Err(Error::BadRequest(format!(
                "{path}: its operands changed shape since it was saved; save it again"
            )));
        }
        Ok(lazy)
    }

    /// An expression over opened operands, with its result type, and a
    /// geometry for the result (an operand's of the same shape, else
    /// python-blosc2's choice).
    pub(crate) fn new(text: &str, operands: Operands, budget: &Budget) -> Result<Lazy> {
        let expr = Expr::parse(text)
            .map_err(|e| Error::BadRequest(format!("Invalid name or expression: {e}")))?;
        let known: std::collections::HashMap<String, (XType, Vec<usize>)> = operands
            .iter()
            .map(|(n, _, s)| Ok((n.clone(), (s.dtype()?, s.shape()))))
            .collect::<Result<_>>()?;
        for name in expr.operand_names() {
            if !known.contains_key(&name) {
                return Err(Error::BadRequest(format!(
                    "Expression error: {name} is not in the list of available datasets"
                )));
            }
        }
        let plan = expr
            .plan(&known)
            .map_err(|e| Error::BadRequest(format!("Invalid name or expression: {e}")))?;
        let watch = budget.clone();
        plan.interrupt_with(Arc::new(move || watch.check().map_err(|e| e.to_string())));
        let (dtype, shape) = (plan.dtype(), plan.shape().to_vec());
        let shape64: Vec<i64> = shape.iter().map(|&n| n as i64).collect();
        let (chunks, blocks) = operands
            .iter()
            .filter(|(_, _, s)| s.shape() == shape)
            .find_map(|(_, _, s)| s.geometry())
            .unwrap_or_else(|| crate::chunking::chunks_blocks(&shape64, None, dtype.itemsize()));
        Ok(Lazy {
            plan,
            text: text.to_string(),
            operands,
            dtype,
            shape,
            chunks,
            blocks,
            cparams: crate::fetch::result_cparams(dtype.itemsize()),
            budget: budget.clone(),
        })
    }

    /// Whether result chunks are best computed by one opened expression, one after the
    /// other: its reductions and products keep their whole results for every chunk, which
    /// workers opening the expression for themselves would each compute again.
    pub(crate) fn computes_serially(&self) -> bool {
        self.plan.keeps_whole_results()
    }

    /// Whether the expression uses linear algebra, whose results are stored computed.
    pub(crate) fn forces_compute(&self) -> bool {
        self.plan.forces_compute()
    }

    /// The result's items in the box `start..stop`, native-endian, C order.
    pub(crate) fn eval(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>> {
        // The engine carries an operand's failure as text; the first one is
        // kept here whole, for its status (damage in a stored operand).
        let failed = std::cell::RefCell::new(None);
        let mut read = |name: &str,
                        a: &[usize],
                        b: &[usize]|
         -> std::result::Result<Vec<u8>, cat2_expr::Error> {
            let source = self
                .operands
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, _, s)| s)
                .ok_or_else(|| cat2_expr::Error::UnknownName(name.to_string()))?;
            self.budget
                .check()
                .and_then(|()| source.read(a, b))
                .map_err(|e| {
                    let text = e.to_string();
                    failed.borrow_mut().get_or_insert(e);
                    cat2_expr::Error::Read(text)
                })
        };
        let result = self.plan.eval_box(start, stop, &mut read);
        result.map_err(|e| match failed.take() {
            Some(e @ Error::Damaged { .. }) => e,
            Some(e) if e.is_io_fault() => e,
            _ => self.runtime_error(e),
        })
    }

    /// An evaluation error as the request sees it: the budget's own refusal
    /// when it stopped the evaluation, else the engine's message.
    fn runtime_error(&self, e: cat2_expr::Error) -> Error {
        match self.budget.check() {
            Err(stopped) => stopped,
            Ok(()) => Error::BadRequest(format!("Runtime error: {e}")),
        }
    }

    /// Whether result chunks can be computed in Blosc2's block layout straight from the
    /// operands' decompressed chunks: an element-wise expression whose operands are all
    /// stored arrays (native byte order) with the result's shape, chunks and blocks. Item
    /// `i` of every decompressed chunk then lines up with item `i` of the result chunk, so
    /// nothing is re-laid out between the decompressor, the evaluator and the compressor.
    pub(crate) fn has_native_chunks(&self) -> bool {
        let Some(names) = self.plan.flat_operands() else {
            return false;
        };
        let shape: Vec<i64> = self.shape.iter().map(|&n| n as i64).collect();
        names.iter().all(
            |name| match self.source(name).and_then(|s| s.native_array()) {
                Some(a) => {
                    a.shape() == shape
                        && a.chunks()
                            .iter()
                            .map(|&c| i64::from(c))
                            .eq(self.chunks.iter().copied())
                        && a.blocks()
                            .iter()
                            .map(|&b| i64::from(b))
                            .eq(self.blocks.iter().copied())
                }
                None => false,
            },
        )
    }

    fn source(&self, name: &str) -> Option<&dyn Operand> {
        self.operands
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, s)| s.as_ref() as &dyn Operand)
    }

    /// Result chunk `nchunk` in Blosc2's block layout (see [`Lazy::has_native_chunks`],
    /// which must hold), into `out`; `inputs` are buffers kept between calls for the
    /// operands' decompressed chunks.
    pub(crate) fn native_chunk(
        &self,
        nchunk: i64,
        inputs: &mut Vec<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let names = self.plan.flat_operands().unwrap_or_default();
        inputs.resize_with(names.len(), Vec::new);
        let mut items = None;
        for (name, buf) in names.iter().zip(inputs.iter_mut()) {
            let native = (self.operands.iter())
                .find(|(n, _, _)| n == name)
                .and_then(|(_, path, s)| Some((path, s.native_array()?)));
            let Some((path, a)) = native else {
                return Err(Error::BadRequest(format!(
                    "Runtime error: operand {name} is not a stored array"
                )));
            };
            a.schunk()
                .decompress_chunk(nchunk, buf)
                .map_err(|e| Error::from(e).reading(path))?;
            let n = buf.len() / a.itemsize().max(1);
            if *items.get_or_insert(n) != n {
                return Err(Error::BadRequest(format!(
                    "Runtime error: chunk {nchunk} of operand {name} holds {n} items, \
                     the other operands' {}",
                    items.unwrap_or_default()
                )));
            }
        }
        out.resize(items.unwrap_or_default() * self.dtype.itemsize(), 0);
        let views: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        self.budget.check()?;
        self.plan
            .eval_flat(&views, out)
            .map_err(|e| self.runtime_error(e))
    }

    /// The result's dtype as the rest of cat2-core knows dtypes.
    pub(crate) fn core_dtype(&self) -> Result<crate::dtype::DType> {
        crate::dtype::DType::parse(self.dtype.descr())
    }

    /// A box reader that owns the expression (for workers that open their own).
    pub(crate) fn into_reader(self) -> OwnedLazyReader {
        ReaderOf::new(self)
    }

    /// A box reader over the result, for the fetch machinery.
    pub(crate) fn reader(&self) -> LazyReader<'_> {
        ReaderOf::new(self)
    }
}

/// Reads boxes of a lazy expression's result, borrowing it ([`LazyReader`]) or
/// owning it ([`OwnedLazyReader`]).
pub(crate) struct ReaderOf<L> {
    lazy: L,
    shape: Vec<i64>,
    /// The operands' decompressed chunks, kept between native chunks.
    inputs: Vec<Vec<u8>>,
}

/// A reader of an expression opened elsewhere.
pub(crate) type LazyReader<'a> = ReaderOf<&'a Lazy>;
/// A reader owning its expression.
pub(crate) type OwnedLazyReader = ReaderOf<Lazy>;

impl<L: std::borrow::Borrow<Lazy>> ReaderOf<L> {
    fn new(lazy: L) -> Self {
        let shape = lazy.borrow().shape.iter().map(|&n| n as i64).collect();
        ReaderOf {
            lazy,
            shape,
            inputs: Vec::new(),
        }
    }
}

impl<L: std::borrow::Borrow<Lazy>> BoxReader for ReaderOf<L> {
    fn shape(&self) -> &[i64] {
        &self.shape
    }
    fn chunk_shape(&self) -> &[i64] {
        &self.lazy.borrow().chunks
    }
    fn itemsize(&self) -> usize {
        self.lazy.borrow().dtype.itemsize()
    }
    fn read_box_vec(&mut self, start: &[i64], stop: &[i64]) -> Result<Vec<u8>> {
        let a: Vec<usize> = start.iter().map(|&n| n.max(0) as usize).collect();
        let b: Vec<usize> = stop.iter().map(|&n| n.max(0) as usize).collect();
        self.lazy.borrow().eval(&a, &b)
    }
    fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()> {
        let data = self.read_box_vec(start, stop)?;
        crate::selection::fill_box(data, out, "the expression")
    }
    fn native_blocks(&self) -> Option<&[i64]> {
        let lazy = self.lazy.borrow();
        lazy.has_native_chunks().then_some(lazy.blocks.as_slice())
    }
    fn read_native_chunk(&mut self, nchunk: i64, out: &mut Vec<u8>) -> Result<()> {
        self.lazy
            .borrow()
            .native_chunk(nchunk, &mut self.inputs, out)
    }
}

/// A selection of a lazy expression's result, computed box by box.
fn fetch_lazy(lazy: &Lazy, open: &OpenReader<'_>, req: &FetchRequest) -> Result<FetchOutput> {
    if req.filter.is_some() || req.field.is_some() {
        return Err(Error::BadRequest(
            "Filtering and fields are not supported for lazy expressions".into(),
        ));
    }
    let dtype = lazy.core_dtype()?;
    let shape: Vec<i64> = lazy.shape.iter().map(|&n| n as i64).collect();
    let mut reader = lazy.reader();
    if let Some(ind) = &req.indices {
        return indices_frame(&mut reader, ind, &shape, &dtype, &req.budget);
    }
    let sel = req.selection(&shape)?;
    let geometry = result_geometry(
        &sel,
        &sel.out_shape(),
        &lazy.chunks,
        &lazy.blocks,
        dtype.itemsize(),
    );
    let source = if lazy.computes_serially() {
        ChunkSource::Serial(&mut reader)
    } else {
        ChunkSource::Workers(open)
    };
    frame_from_chunks(source, &sel, &dtype, geometry, &lazy.cparams, &req.budget)
}

/// Chunk `nchunk` of a lazy expression's result, in its carrier's geometry.
fn lazy_chunk(lazy: &Lazy, nchunk: i64) -> Result<Vec<u8>> {
    let shape: Vec<i64> = lazy.shape.iter().map(|&n| n as i64).collect();
    let nchunks = chunk_count(&shape, &lazy.chunks);
    if nchunk < 0 || nchunk >= nchunks {
        return Err(Error::BadRequest(format!(
            "nchunk {nchunk} is out of range: the result has {nchunks} chunks"
        )));
    }
    let itemsize = lazy.dtype.itemsize();
    let mut reader = lazy.reader();
    if reader.native_blocks() == Some(lazy.blocks.as_slice()) {
        let mut chunk = Vec::new();
        reader.read_native_chunk(nchunk, &mut chunk)?;
        return crate::fetch::results::compress_packed(
            &chunk,
            &lazy.blocks,
            itemsize,
            lazy.cparams.clone(),
        );
    }
    let (start, stop) = chunk_box(&shape, &lazy.chunks, nchunk);
    let data = reader.read_box_vec(&start, &stop)?;
    compress_chunk(
        data,
        &start,
        &stop,
        &lazy.chunks,
        &lazy.blocks,
        itemsize,
        lazy.cparams.clone(),
    )
}
