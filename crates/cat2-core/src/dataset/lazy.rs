//! Arrays as operands of expressions, wherever their data is: stored
//! `.b2nd` arrays, HDF5 proxies, datasets inside HDF5 files (in place) and
//! other lazy expressions.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cat2_blosc2::{CParams, NdArray};
use cat2_expr::{DType as XType, Expr, Plan};
use cat2_proto::{Info, LazyInfo};

use super::format;
use crate::container::{browse, h5::H5Reader, h5::H5Tree};
use crate::dataset::{self, Derived, FileKind};
use crate::error::{Error, Result};
use crate::meta::iso_mtime;
use crate::path::DsPath;
use crate::proxy::Proxy;
use crate::selection::BoxReader;
use crate::store::{Caller, Entry, Located, StateDir};

/// Deepest chain of lazy expressions over lazy expressions (a cycle of
/// files ends here too).
const MAX_DEPTH: usize = 16;

/// An array an expression reads.
pub enum Source {
    Stored(NdArray),
    Proxy(Box<Proxy>),
    /// A dataset of an HDF5 file, read in place (`@shared/x.h5/entry/data`).
    Hdf5 {
        tree: Arc<H5Tree>,
        key: String,
    },
    Lazy(Box<Lazy>),
}

/// A lazy expression with its operands opened.
pub struct Lazy {
    /// The expression, typed against its operands once, for every box.
    plan: Plan,
    /// The expression as stored.
    pub text: String,
    /// Operands by name, with their logical paths.
    pub operands: Vec<(String, DsPath, Source)>,
    pub dtype: XType,
    pub shape: Vec<usize>,
    /// The carrier's geometry (the result's chunks and blocks).
    pub chunks: Vec<i64>,
    pub blocks: Vec<i64>,
    /// How results are compressed: the carrier's cparams (for a new
    /// expression, [`crate::fetch::result_cparams`], which its carrier keeps).
    pub cparams: CParams,
}

/// A NumPy dtype string as the expression engine's type, and whether its
/// bytes are big-endian (they are swapped to native order when read).
pub fn expr_dtype(numpy: &str) -> Result<(XType, bool)> {
    let t = XType::from_numpy(numpy).ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid name or expression: operands of dtype {numpy} cannot be computed with"
        ))
    })?;
    Ok((t, numpy.starts_with('>') && t.itemsize() > 1))
}

fn swap_items(bytes: &mut [u8], itemsize: usize) {
    if itemsize > 1 {
        for item in bytes.chunks_exact_mut(itemsize) {
            item.reverse();
        }
    }
}

impl Source {
    /// Opens the array a located path names, as the caller may see it.
    pub fn open(sd: &StateDir, loc: &Located, caller: Caller<'_>, depth: usize) -> Result<Source> {
        if depth > MAX_DEPTH {
            return Err(Error::BadRequest(format!(
                "Invalid name or expression: lazy expressions nest deeper than {MAX_DEPTH} \
                 (or refer to themselves) at {}",
                loc.logical
            )));
        }
        if loc.entry == Entry::Missing {
            return Err(Error::NotFound {
                path: loc.logical.to_string(),
            });
        }
        if loc.entry == Entry::Member && browse::is_hdf5(loc) {
            let tree = browse::open_h5_for_member(loc)?;
            let key = browse::inner_key(loc).to_string();
            if tree.dataset(&key).is_none() {
                return Err(Error::BadRequest(format!(
                    "Invalid name or expression: {} is not an HDF5 dataset",
                    loc.logical
                )));
            }
            return Ok(Source::Hdf5 { tree, key });
        }
        if FileKind::of(loc) != Some(FileKind::Array) || loc.entry != Entry::Dataset {
            return Err(Error::BadRequest(format!(
                "Invalid name or expression: {} is not an array (.b2nd)",
                loc.logical
            )));
        }
        let arr = dataset::open_array(&loc.fs)?;
        Ok(match dataset::derived_kind(&arr) {
            None => Source::Stored(arr),
            Some(Derived::Hdf5Proxy) => Source::Proxy(Box::new(Proxy::open(loc, arr)?)),
            Some(Derived::LazyExpr) => {
                Source::Lazy(Box::new(Lazy::open(sd, loc, &arr, caller, depth)?))
            }
        })
    }

    /// The NumPy dtype string of the data.
    fn numpy_dtype(&self) -> String {
        match self {
            Source::Stored(a) => a.dtype(),
            Source::Proxy(p) => p.dataset().dtype.clone(),
            Source::Hdf5 { tree, key } => tree
                .dataset(key)
                .map(|d| d.dtype.clone())
                .unwrap_or_default(),
            Source::Lazy(l) => l.dtype.descr().to_string(),
        }
    }

    pub fn dtype(&self) -> Result<XType> {
        Ok(expr_dtype(&self.numpy_dtype())?.0)
    }

    pub fn shape(&self) -> Vec<usize> {
        match self {
            Source::Stored(a) => a.shape().iter().map(|&n| n.max(0) as usize).collect(),
            Source::Proxy(p) => p.arr.shape().iter().map(|&n| n.max(0) as usize).collect(),
            Source::Hdf5 { tree, key } => tree
                .dataset(key)
                .map(|d| d.shape.iter().map(|&n| n as usize).collect())
                .unwrap_or_default(),
            Source::Lazy(l) => l.shape.clone(),
        }
    }

    /// The items of the box `start..stop`, native-endian, in C order.
    pub fn read(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>> {
        let s: Vec<i64> = start.iter().map(|&n| n as i64).collect();
        let e: Vec<i64> = stop.iter().map(|&n| n as i64).collect();
        let (_, big_endian) = expr_dtype(&self.numpy_dtype())?;
        let mut data = match self {
            Source::Stored(a) => crate::fetch::ArrayReader::new(a).read_box_vec(&s, &e)?,
            Source::Proxy(p) => p.reader().read_box_vec(&s, &e)?,
            Source::Hdf5 { tree, key } => {
                let d = tree
                    .dataset(key)
                    .ok_or_else(|| Error::NotFound { path: key.clone() })?;
                H5Reader::new(tree.file(), d).read_box_vec(&s, &e)?
            }
            Source::Lazy(l) => return l.eval(start, stop),
        };
        if big_endian {
            swap_items(&mut data, self.dtype()?.itemsize());
        }
        Ok(data)
    }
}

/// Lexically normalises a path (`a/b/../c` → `a/c`).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The logical path of a file of the state dir, as `caller` addresses it;
/// `None` when it lies outside the roots (or in another user's `@personal`).
pub fn logical_of(sd: &StateDir, file: &Path, caller: Caller<'_>) -> Option<DsPath> {
    let rel = normalise(file);
    let rel = rel.strip_prefix(sd.path()).ok()?;
    let mut parts = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let root = match parts.next()?.as_str() {
        "public" => "@public".to_string(),
        "shared" => "@shared".to_string(),
        "personal" => {
            let uid = parts.next()?;
            if Some(uid.as_str()) != caller.user_id {
                return None;
            }
            "@personal".to_string()
        }
        _ => return None,
    };
    let rest: Vec<String> = parts.collect();
    DsPath::parse(&format!("{root}/{}", rest.join("/"))).ok()
}

impl Lazy {
    /// Opens the lazy expression stored in the carrier `arr` at `loc`.
    pub fn open(
        sd: &StateDir,
        loc: &Located,
        arr: &NdArray,
        caller: Caller<'_>,
        depth: usize,
    ) -> Result<Lazy> {
        let def = format::read(arr, &loc.fs)?.ok_or_else(|| {
            Error::BadRequest(format!("{} is not a lazy expression", loc.logical))
        })?;
        let mut operands = Vec::with_capacity(def.operands.len());
        for (name, file) in def.operands {
            let logical = logical_of(sd, &file, caller).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Expression error: operand {name} of {} lies outside the roots this caller may read",
                    loc.logical
                ))
            })?;
            let oloc = sd.locate(&logical, caller)?;
            let source = Source::open(sd, &oloc, caller, depth + 1).map_err(|e| match e {
                Error::NotFound { .. } => Error::BadRequest(format!(
                    "Expression error: operand {name} ({logical}) of {} is missing",
                    loc.logical
                )),
                other => other,
            })?;
            operands.push((name, logical, source));
        }
        let mut lazy = Lazy::new(&def.expression, operands)?;
        lazy.chunks = arr.chunks().into_iter().map(i64::from).collect();
        lazy.blocks = arr.blocks().into_iter().map(i64::from).collect();
        lazy.cparams = CParams {
            typesize: cat2_blosc2::cparams::clamp_typesize(lazy.dtype.itemsize()),
            ..arr.schunk().cparams()
        };
        if lazy.shape.iter().map(|&n| n as i64).collect::<Vec<_>>() != arr.shape() {
            return Err(Error::BadRequest(format!(
                "{}: its operands changed shape since it was saved; save it again",
                loc.logical
            )));
        }
        Ok(lazy)
    }

    /// An expression over opened operands, with its result type, and a
    /// geometry for the result (an operand's of the same shape, else
    /// python-blosc2's choice).
    pub fn new(text: &str, operands: Vec<(String, DsPath, Source)>) -> Result<Lazy> {
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
        let (dtype, shape) = (plan.dtype(), plan.shape().to_vec());
        let shape64: Vec<i64> = shape.iter().map(|&n| n as i64).collect();
        let (chunks, blocks) = operands
            .iter()
            .find_map(|(_, _, s)| match s {
                Source::Stored(a) if a.shape() == shape64 => Some((
                    a.chunks().into_iter().map(i64::from).collect(),
                    a.blocks().into_iter().map(i64::from).collect(),
                )),
                Source::Proxy(p) if p.arr.shape() == shape64 => Some((
                    p.arr.chunks().into_iter().map(i64::from).collect(),
                    p.arr.blocks().into_iter().map(i64::from).collect(),
                )),
                Source::Lazy(l) if l.shape == shape => Some((l.chunks.clone(), l.blocks.clone())),
                _ => None,
            })
            .unwrap_or_else(|| {
                crate::unfold::geometry::chunks_blocks(&shape64, None, dtype.itemsize())
            });
        Ok(Lazy {
            plan,
            text: text.to_string(),
            operands,
            dtype,
            shape,
            chunks,
            blocks,
            cparams: crate::fetch::result_cparams(dtype.itemsize()),
        })
    }

    /// Whether result chunks are best computed by one opened expression, one after the
    /// other: its reductions and products keep their whole results for every chunk, which
    /// workers opening the expression for themselves would each compute again.
    pub fn computes_serially(&self) -> bool {
        self.plan.keeps_whole_results()
    }

    /// Whether the expression uses linear algebra, whose results are stored computed.
    pub fn forces_compute(&self) -> bool {
        self.plan.forces_compute()
    }

    /// The result's items in the box `start..stop`, native-endian, C order.
    pub fn eval(&self, start: &[usize], stop: &[usize]) -> Result<Vec<u8>> {
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
            source
                .read(a, b)
                .map_err(|e| cat2_expr::Error::Read(e.to_string()))
        };
        self.plan
            .eval_box(start, stop, &mut read)
            .map_err(|e| Error::BadRequest(format!("Runtime error: {e}")))
    }

    /// Whether result chunks can be computed in Blosc2's block layout straight from the
    /// operands' decompressed chunks: an element-wise expression whose operands are all
    /// stored arrays (native byte order) with the result's shape, chunks and blocks. Item
    /// `i` of every decompressed chunk then lines up with item `i` of the result chunk, so
    /// nothing is re-laid out between the decompressor, the evaluator and the compressor.
    pub fn has_native_chunks(&self) -> bool {
        let Some(names) = self.plan.flat_operands() else {
            return false;
        };
        let shape: Vec<i64> = self.shape.iter().map(|&n| n as i64).collect();
        names.iter().all(|name| match self.source(name) {
            Some(Source::Stored(a)) => {
                a.shape() == shape
                    && a.chunks()
                        .iter()
                        .map(|&c| i64::from(c))
                        .eq(self.chunks.iter().copied())
                    && a.blocks()
                        .iter()
                        .map(|&b| i64::from(b))
                        .eq(self.blocks.iter().copied())
                    && expr_dtype(&a.dtype()).is_ok_and(|(_, big_endian)| !big_endian)
            }
            _ => false,
        })
    }

    fn source(&self, name: &str) -> Option<&Source> {
        self.operands
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, s)| s)
    }

    /// Result chunk `nchunk` in Blosc2's block layout (see [`Lazy::has_native_chunks`],
    /// which must hold), into `out`; `inputs` are buffers kept between calls for the
    /// operands' decompressed chunks.
    pub fn native_chunk(
        &self,
        nchunk: i64,
        inputs: &mut Vec<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let names = self.plan.flat_operands().unwrap_or_default();
        inputs.resize_with(names.len(), Vec::new);
        let mut items = None;
        for (name, buf) in names.iter().zip(inputs.iter_mut()) {
            let Some(Source::Stored(a)) = self.source(name) else {
                return Err(Error::BadRequest(format!(
                    "Runtime error: operand {name} is not a stored array"
                )));
            };
            a.schunk().decompress_chunk(nchunk, buf)?;
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
        self.plan
            .eval_flat(&views, out)
            .map_err(|e| Error::BadRequest(format!("Runtime error: {e}")))
    }

    /// `/api/info`: what the expression computes.
    pub fn info(&self, loc: &Located) -> Result<Info> {
        let meta = std::fs::metadata(&loc.fs).map_err(|e| Error::io("stat", &loc.fs, e))?;
        Ok(Info::Lazy(LazyInfo {
            shape: self.shape.iter().map(|&n| n as i64).collect(),
            dtype: self.dtype.numpy_name().to_string(),
            expression: self.text.clone(),
            operands: self
                .operands
                .iter()
                .map(|(n, p, _)| (n.clone(), serde_json::Value::from(p.to_string())))
                .collect(),
            mtime: iso_mtime(&meta),
        }))
    }

    /// The result's dtype as the rest of cat2-core knows dtypes.
    pub fn core_dtype(&self) -> Result<crate::dtype::DType> {
        crate::dtype::DType::parse(self.dtype.descr())
    }

    /// A box reader that owns the expression (for workers that open their own).
    pub fn into_reader(self) -> OwnedLazyReader {
        ReaderOf::new(self)
    }

    /// A box reader over the result, for the fetch machinery.
    pub fn reader(&self) -> LazyReader<'_> {
        ReaderOf::new(self)
    }
}

/// Reads boxes of a lazy expression's result, borrowing it ([`LazyReader`]) or
/// owning it ([`OwnedLazyReader`]).
pub struct ReaderOf<L> {
    lazy: L,
    shape: Vec<i64>,
    /// The operands' decompressed chunks, kept between native chunks.
    inputs: Vec<Vec<u8>>,
}

/// A reader of an expression opened elsewhere.
pub type LazyReader<'a> = ReaderOf<&'a Lazy>;
/// A reader owning its expression.
pub type OwnedLazyReader = ReaderOf<Lazy>;

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
