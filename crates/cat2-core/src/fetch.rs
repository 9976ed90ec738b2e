//! `/api/fetch`: turning `slice_`, `indices`, `field` and `filter` into the
//! bytes of a Blosc2 frame, or deciding that the stored file itself is the
//! answer.
//!
//! Data is read through [`BoxReader`] so the selection logic never touches
//! C-Blosc2 directly and only the chunks a selection touches are decompressed.

use cat2_blosc2::{ArraySpec, CParams, NdArray, SChunk};

use crate::container::h5::H5Reader;
use crate::container::Placement;
use crate::dataset::{self, Dataset, FileKind};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::filter::RowFilter;
use crate::indices::{parse_indices, read_indices};
use crate::selection::{parse_slice, read_selection, BoxReader, Selection, SliceItem};
use crate::store::Located;

/// The parameters of a fetch (query string or JSON body).
#[derive(Debug, Clone, Default)]
pub struct FetchRequest {
    pub slice: Option<String>,
    pub indices: Option<String>,
    pub filter: Option<String>,
    pub field: Option<String>,
}

/// What to answer.
#[derive(Debug)]
pub enum FetchOutput {
    /// The stored file, byte for byte (ranges allowed).
    Verbatim,
    /// Bytes `offset..offset + len` of the stored file, byte for byte
    /// (ranges allowed, relative to the window): a leaf of a `.b2z` store.
    Window { offset: u64, len: u64 },
    /// A freshly built frame (NDArray or SChunk).
    Frame(Vec<u8>),
}

const NOT_A_DATASET: &str = "The fetch API only supports datasets (.b2nd, .b2frame, .b2z); use the download API if you only want to download the file";

/// Computes the answer of a fetch on a located path.
pub fn fetch(loc: &Located, req: &FetchRequest) -> Result<FetchOutput> {
    fetch_as(None, loc, req)
}

fn fetch_as(asker: dataset::Asker<'_>, loc: &Located, req: &FetchRequest) -> Result<FetchOutput> {
    if req.indices.is_some() && (req.slice.is_some() || req.filter.is_some() || req.field.is_some())
    {
        return Err(Error::BadRequest(
            "indices cannot be combined with slice_, filter or field".into(),
        ));
    }
    if req.field.is_some() && req.filter.is_some() {
        return Err(Error::BadRequest(
            "Cannot handle both field and filter parameters at the same time".into(),
        ));
    }
    if loc.entry == crate::Entry::Member {
        if crate::container::browse::is_hdf5(loc) {
            return fetch_h5(loc, req);
        }
        return fetch_member(loc, req);
    }
    match FileKind::of(loc) {
        Some(FileKind::Array) | Some(FileKind::Frame) => {}
        Some(FileKind::Store) => return fetch_store(loc, req),
        None if loc.entry == crate::Entry::Missing => {
            return Err(Error::NotFound {
                path: loc.logical.to_string(),
            })
        }
        _ => return Err(Error::BadRequest(NOT_A_DATASET.into())),
    }
    if FileKind::of(loc) == Some(FileKind::Array) {
        // Opened once; what it derives from decides how it is read.
        let arr = dataset::open_array(&loc.fs)?;
        return match dataset::derived_kind(&arr) {
            None => fetch_array(&arr, req),
            Some(dataset::Derived::Hdf5Proxy) => fetch_proxy(loc, arr, req),
            Some(dataset::Derived::LazyExpr) => {
                let lazy = dataset::lazy_of(asker, loc, &arr)?;
                // Workers open the expression again for themselves.
                let open = || -> Result<Box<dyn BoxReader>> {
                    let arr = dataset::open_array(&loc.fs)?;
                    Ok(Box::new(dataset::lazy_of(asker, loc, &arr)?.into_reader()))
                };
                fetch_lazy(&lazy, &open, req)
            }
        };
    }
    match dataset::open(loc)? {
        Dataset::Array(arr) => fetch_array(&arr, req),
        Dataset::Frame(sc) => fetch_frame(&sc, req),
    }
}

/// [`fetch`] as `caller` sees it: a lazy expression is computed for the
/// selection (its operands read with the caller's permissions).
pub fn fetch_with(
    sd: &crate::store::StateDir,
    loc: &Located,
    req: &FetchRequest,
    caller: crate::store::Caller<'_>,
) -> Result<FetchOutput> {
    fetch_as(Some((sd, caller)), loc, req)
}

/// A selection of a lazy expression's result, computed box by box.
fn fetch_lazy(
    lazy: &crate::lazy::Lazy,
    open: &OpenReader<'_>,
    req: &FetchRequest,
) -> Result<FetchOutput> {
    if req.filter.is_some() || req.field.is_some() {
        return Err(Error::BadRequest(
            "Filtering and fields are not supported for lazy expressions".into(),
        ));
    }
    let dtype = lazy.core_dtype()?;
    let shape: Vec<i64> = lazy.shape.iter().map(|&n| n as i64).collect();
    let mut reader = lazy.reader();
    if let Some(ind) = &req.indices {
        return indices_frame(&mut reader, ind, &shape, &dtype);
    }
    let sel = match req.slice.as_deref().map(parse_slice).transpose()?.flatten() {
        None => Selection::full(&shape),
        Some(spec) => spec.resolve(&shape)?,
    };
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
    frame_from_chunks(source, &sel, &dtype, geometry, &lazy.cparams).map(FetchOutput::Frame)
}

/// Chunk `nchunk` of a lazy expression's result, in its carrier's geometry.
pub fn lazy_chunk(lazy: &crate::lazy::Lazy, nchunk: i64) -> Result<Vec<u8>> {
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
        return compress_packed(&chunk, &lazy.blocks, itemsize, lazy.cparams.clone());
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

/// Chunks in the grid of `chunks` over `shape` (1 for a 0-d array).
pub fn chunk_count(shape: &[i64], chunks: &[i64]) -> i64 {
    shape
        .iter()
        .zip(chunks)
        .map(|(&s, &c)| if c > 0 { (s + c - 1) / c } else { 0 })
        .product()
}

/// The box of items of chunk `index` (C order of the chunk grid).
pub fn chunk_box(shape: &[i64], chunks: &[i64], index: i64) -> (Vec<i64>, Vec<i64>) {
    let mut start = vec![0i64; shape.len()];
    let mut rest = index;
    for d in (0..shape.len()).rev() {
        let c = chunks[d].max(1);
        let g = ((shape[d] + c - 1) / c).max(1);
        start[d] = (rest % g) * c;
        rest /= g;
    }
    let stop = (0..shape.len())
        .map(|d| (start[d] + chunks[d]).min(shape[d]))
        .collect();
    (start, stop)
}

/// The index (C order of the chunk grid) of the chunk holding item `at`.
pub fn chunk_index(shape: &[i64], chunks: &[i64], at: &[i64]) -> i64 {
    let mut index = 0i64;
    for ((&s, &c), &a) in shape.iter().zip(chunks).zip(at) {
        let c = c.max(1);
        index = index * ((s + c - 1) / c).max(1) + a / c;
    }
    index
}

/// The items of the box `start..stop` (C order), laid out and compressed as
/// one chunk of geometry `chunks`/`blocks` with `cparams`.
pub fn compress_chunk(
    data: Vec<u8>,
    start: &[i64],
    stop: &[i64],
    chunks: &[i64],
    blocks: &[i64],
    itemsize: usize,
    cparams: CParams,
) -> Result<Vec<u8>> {
    let box_shape: Vec<i64> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
    let packed = cat2_blosc2::pack_chunk_owned(data, &box_shape, chunks, blocks, itemsize);
    compress_packed(&packed, blocks, itemsize, cparams)
}

/// Compresses a chunk already in block layout (see [`compress_chunk`]).
fn compress_packed(
    packed: &[u8],
    blocks: &[i64],
    itemsize: usize,
    mut cparams: CParams,
) -> Result<Vec<u8>> {
    cparams.typesize = cat2_blosc2::cparams::clamp_typesize(itemsize);
    cparams.blocksize = i32::try_from(blocks.iter().product::<i64>() * itemsize as i64)
        .map_err(|_| Error::BadRequest("a block of the chunk would exceed 2 GB".into()))?;
    cparams.nthreads = cat2_blosc2::cparams::default_nthreads();
    Ok(cat2_blosc2::Compressor::new(&cparams)?.compress(packed)?)
}

/// A `.b2z` store is served as the file it is: there is nothing to slice.
fn fetch_store(loc: &Located, req: &FetchRequest) -> Result<FetchOutput> {
    let c = crate::container::Container::open_cached(&loc.fs).map_err(|e| {
        Error::BadRequest(format!(
            "{} is not a readable Blosc2 zip store: {e}",
            loc.logical
        ))
    })?;
    if !c.is_browsable() {
        return Err(crate::container::browse::object_unsupported(loc, "ctable"));
    }
    if req.slice.is_some() || req.indices.is_some() || req.filter.is_some() || req.field.is_some() {
        return Err(Error::BadRequest(format!(
            "{} is a container, so there is nothing to slice; ask for a dataset inside it",
            loc.logical
        )));
    }
    Ok(FetchOutput::Verbatim)
}

/// A leaf of a store is fetched like a file of its own; when the answer is
/// the whole leaf, that is its frame as it lies in the store (a window of
/// the file, or the bytes copied out of the embedded store).
fn fetch_member(loc: &Located, req: &FetchRequest) -> Result<FetchOutput> {
    let leaf = dataset::open_member(loc)?;
    let out = match &leaf.dataset {
        Dataset::Array(arr) => fetch_array(arr, req)?,
        Dataset::Frame(sc) => fetch_frame(sc, req)?,
    };
    Ok(match (out, leaf.placement) {
        (FetchOutput::Verbatim, Placement::Window { offset, len }) => {
            FetchOutput::Window { offset, len }
        }
        (FetchOutput::Verbatim, Placement::Embedded(frame)) => FetchOutput::Frame(frame),
        (out, _) => out,
    })
}

/// A dataset of an HDF5 file: every answer is computed (read through
/// `cat2-hdf5` and recompressed as a new NDArray frame), never file bytes.
fn fetch_h5(loc: &Located, req: &FetchRequest) -> Result<FetchOutput> {
    use crate::container::browse;
    let t = browse::open_h5_for_member(loc)?;
    let d = t
        .dataset(browse::inner_key(loc))
        .ok_or_else(|| Error::NotFound {
            path: loc.logical.to_string(),
        })?;
    let mut reader = H5Reader::new(t.file(), d);
    let chunks = reader.chunks.clone();
    fetch_hdf5(&mut reader, &d.dtype, &chunks, &chunks, req)
}

/// An unfolded HDF5 proxy: computed from the HDF5 dataset like an in-place
/// leaf, with the proxy's geometry guiding the result's.
fn fetch_proxy(loc: &Located, arr: NdArray, req: &FetchRequest) -> Result<FetchOutput> {
    let proxy = crate::proxy::Proxy::open(loc, arr)?;
    let plain = req.field.is_none() && req.indices.is_none() && req.filter.is_none();
    if plain && DType::parse(&proxy.dataset().dtype)?.subarray().is_none() {
        let shape = proxy.arr.shape();
        let sel = match req.slice.as_deref().map(parse_slice).transpose()?.flatten() {
            None => Selection::full(&shape),
            Some(spec) => spec.resolve(&shape)?,
        };
        // Whole stored chunks (a detector frame) are copied, not recomputed.
        if let Some(frame) = proxy.passthrough(&sel)? {
            return Ok(FetchOutput::Frame(frame));
        }
    }
    let chunks: Vec<i64> = proxy.arr.chunks().into_iter().map(i64::from).collect();
    let blocks: Vec<i64> = proxy.arr.blocks().into_iter().map(i64::from).collect();
    let mut reader = proxy.reader();
    fetch_hdf5(&mut reader, &proxy.dataset().dtype, &chunks, &blocks, req)
}

/// A fetch from an HDF5 dataset: every answer is computed (read through
/// `cat2-hdf5` and compressed as a new NDArray frame), never file bytes.
fn fetch_hdf5(
    reader: &mut H5Reader<'_>,
    stored_dtype: &str,
    chunks: &[i64],
    blocks: &[i64],
    req: &FetchRequest,
) -> Result<FetchOutput> {
    if req.filter.is_some() {
        return Err(Error::BadRequest(
            "Filtering is not supported for HDF5-backed datasets".into(),
        ));
    }
    let dtype = DType::parse(stored_dtype)?;
    let shape = reader.shape.clone();
    if let Some(ind) = &req.indices {
        return indices_frame(reader, ind, &shape, &dtype);
    }
    let sel = match req.slice.as_deref().map(parse_slice).transpose()?.flatten() {
        None => Selection::full(&shape),
        Some(spec) => spec.resolve(&shape)?,
    };
    if let (Some((base, sub)), None) = (dtype.subarray(), &req.field) {
        // A sub-array element is its own dimensions to NumPy (and to h5py).
        let data = read_selection(reader, &sel)?;
        let mut out_shape = sel.out_shape();
        out_shape.extend(sub.iter().map(|&n| n as i64));
        return build_array_frame(&data, &out_shape, base, None).map(FetchOutput::Frame);
    }
    let geometry = result_geometry(&sel, &sel.out_shape(), chunks, blocks, dtype.itemsize());
    selection_frame(reader, &sel, &dtype, geometry, req.field.as_deref())
}

/// Reads boxes of a stored array.
pub struct ArrayReader<'a> {
    arr: &'a NdArray,
    shape: Vec<i64>,
    chunks: Vec<i64>,
    itemsize: usize,
}

impl<'a> ArrayReader<'a> {
    pub fn new(arr: &'a NdArray) -> Self {
        ArrayReader {
            shape: arr.shape(),
            chunks: arr.chunks().into_iter().map(i64::from).collect(),
            itemsize: arr.itemsize(),
            arr,
        }
    }
}

impl BoxReader for ArrayReader<'_> {
    fn shape(&self) -> &[i64] {
        &self.shape
    }
    fn chunk_shape(&self) -> &[i64] {
        &self.chunks
    }
    fn itemsize(&self) -> usize {
        self.itemsize
    }
    fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()> {
        Ok(self.arr.read_box(start, stop, out)?)
    }
    fn read_box_vec(&mut self, start: &[i64], stop: &[i64]) -> Result<Vec<u8>> {
        Ok(self.arr.read_box_vec(start, stop)?)
    }
}

fn fetch_array(arr: &NdArray, req: &FetchRequest) -> Result<FetchOutput> {
    let stored_dtype = arr.dtype();
    let dtype = DType::parse(&stored_dtype)?;
    let shape = arr.shape();
    let src_chunks: Vec<i64> = arr.chunks().into_iter().map(i64::from).collect();
    let src_blocks: Vec<i64> = arr.blocks().into_iter().map(i64::from).collect();
    let mut reader = ArrayReader::new(arr);

    if let Some(ind) = &req.indices {
        return indices_frame(&mut reader, ind, &shape, &dtype);
    }

    if let Some(expr) = &req.filter {
        if dtype.fields().is_none() {
            return Err(Error::BadRequest(
                "Filtering/sorting is not supported for this dataset type".into(),
            ));
        }
        let filter = RowFilter::parse(expr, &dtype)?;
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
        return build_array_frame(&data, &out_shape, &dtype, None).map(FetchOutput::Frame);
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
        return Ok(FetchOutput::Verbatim);
    }
    if req.field.is_none() {
        if let Some(frame) = passthrough(arr, &sel)? {
            return Ok(FetchOutput::Frame(frame));
        }
    }
    let geometry = result_geometry(
        &sel,
        &sel.out_shape(),
        &src_chunks,
        &src_blocks,
        dtype.itemsize(),
    );
    selection_frame(&mut reader, &sel, &dtype, geometry, req.field.as_deref())
}

/// The frame of an `indices=` gather from any dataset.
fn indices_frame(
    reader: &mut dyn BoxReader,
    indices: &str,
    shape: &[i64],
    dtype: &DType,
) -> Result<FetchOutput> {
    let idx = parse_indices(indices, shape)?;
    let data = read_indices(reader, &idx)?;
    build_array_frame(&data, &idx.out_shape(), dtype, None).map(FetchOutput::Frame)
}

/// The frame of a resolved selection from any dataset, or of one field of it.
fn selection_frame(
    reader: &mut dyn BoxReader,
    sel: &Selection,
    dtype: &DType,
    geometry: Geometry,
    field: Option<&str>,
) -> Result<FetchOutput> {
    match field {
        None => frame_from_selection(reader, sel, dtype, geometry).map(FetchOutput::Frame),
        Some(name) => {
            let out_shape = sel.out_shape();
            let data = read_selection(reader, sel)?;
            let (fdata, fshape, fdtype) = project_field(&data, &out_shape, dtype, name)?;
            let geometry = (fshape.len() == out_shape.len()).then_some(geometry);
            build_array_frame(&fdata, &fshape, &fdtype, geometry).map(FetchOutput::Frame)
        }
    }
}

/// The chunk and block shapes of a sliced result.
///
/// Result chunks are read one at a time, and each reads the source chunks it
/// overlaps, so the choice decides how often a source chunk is decompressed:
/// a result that fits one chunk is one chunk (each source chunk read once); a
/// selection that starts on the source's chunk grid keeps the source's chunk
/// and block sizes (one source chunk per result chunk, and it compresses like
/// the source); anything else is cut into slabs of about
/// [`TARGET_CHUNK_BYTES`] along the leading dimensions, so a source chunk is
/// read at most twice and usually once.
fn result_geometry(
    sel: &Selection,
    out_shape: &[i64],
    src_chunks: &[i64],
    src_blocks: &[i64],
    itemsize: usize,
) -> Geometry {
    let bytes = out_shape
        .iter()
        .product::<i64>()
        .saturating_mul(itemsize as i64);
    if bytes <= TARGET_CHUNK_BYTES {
        return auto_geometry(out_shape, itemsize);
    }
    let kept: Vec<usize> = (0..sel.dims.len())
        .filter(|&d| sel.dims[d].keep_dim)
        .collect();
    let aligned = kept.iter().all(|&d| {
        let s = sel.dims[d];
        s.step == 1 && src_chunks[d] > 0 && s.start % src_chunks[d] == 0
    });
    if aligned {
        Geometry {
            chunks: kept.iter().map(|&d| src_chunks[d]).collect(),
            blocks: kept.iter().map(|&d| src_blocks[d]).collect(),
        }
    } else {
        auto_geometry(out_shape, itemsize)
    }
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

/// A source whose compressed chunks can be copied into a result: its
/// geometry, dtype and the parameters its chunks were compressed with.
pub struct StoredChunks {
    pub shape: Vec<i64>,
    pub chunks: Vec<i64>,
    pub blocks: Vec<i64>,
    /// As stored in a b2nd metalayer.
    pub dtype: String,
    pub cparams: CParams,
}

/// [`passthrough`] for any source: `chunk(i)` gives the compressed chunk
/// at index `i` of the source's chunk grid (C order), or `None` when it
/// cannot be copied (the whole selection is then computed instead).
pub fn passthrough_with(
    source: &StoredChunks,
    sel: &Selection,
    chunk: &mut dyn FnMut(i64) -> Result<Option<Vec<u8>>>,
) -> Result<Option<Vec<u8>>> {
    let shape = source.shape.clone();
    let chunks = &source.chunks;
    let blocks = &source.blocks;
    if shape.is_empty() || sel.dims.len() != shape.len() || chunks.len() != shape.len() {
        return Ok(None);
    }
    let mut first_chunk = Vec::with_capacity(shape.len());
    for (d, s) in sel.dims.iter().enumerate() {
        let c = chunks[d];
        if c <= 0 {
            return Ok(None);
        }
        if !s.keep_dim {
            if c != 1 {
                return Ok(None);
            }
            first_chunk.push(s.start);
            continue;
        }
        let stop = s.start + s.count;
        if s.step != 1 || s.count == 0 || s.start % c != 0 || (stop != shape[d] && stop % c != 0) {
            return Ok(None);
        }
        first_chunk.push(s.start / c);
    }
    let out_shape = sel.out_shape();
    if out_shape.is_empty() {
        return Ok(None);
    }
    let kept: Vec<usize> = (0..shape.len()).filter(|&d| sel.dims[d].keep_dim).collect();
    let clamp = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let spec = ArraySpec {
        shape: out_shape.clone(),
        chunks: kept.iter().map(|&d| clamp(chunks[d])).collect(),
        blocks: kept.iter().map(|&d| clamp(blocks[d])).collect(),
        dtype: source.dtype.clone(),
        cparams: source.cparams.clone(),
        urlpath: None,
    };
    // Chunk grids (C order) of the source and of the result.
    let src_grid: Vec<i64> = shape
        .iter()
        .zip(chunks)
        .map(|(s, c)| (s + c - 1) / c)
        .collect();
    let out_grid: Vec<i64> = kept
        .iter()
        .map(|&d| (sel.dims[d].count + chunks[d] - 1) / chunks[d])
        .collect();
    let nout: i64 = out_grid.iter().product();
    let mut coord = vec![0i64; out_grid.len()];
    let mut picked = Vec::with_capacity(nout.max(0) as usize);
    for _ in 0..nout {
        let mut src_index = 0i64;
        let mut k = 0;
        for d in 0..shape.len() {
            let c = if sel.dims[d].keep_dim {
                let v = first_chunk[d] + coord[k];
                k += 1;
                v
            } else {
                first_chunk[d]
            };
            src_index = src_index * src_grid[d] + c;
        }
        match chunk(src_index)? {
            Some(c) => picked.push(c),
            None => return Ok(None),
        }
        for i in (0..coord.len()).rev() {
            coord[i] += 1;
            if coord[i] < out_grid[i] {
                break;
            }
            coord[i] = 0;
        }
    }
    Ok(Some(cat2_blosc2::ndarray_frame_from_chunks(
        &spec,
        &picked,
        &[],
    )?))
}

/// Extracts one field of every record; sub-array fields add dimensions.
fn project_field(
    data: &[u8],
    shape: &[i64],
    dtype: &DType,
    name: &str,
) -> Result<(Vec<u8>, Vec<i64>, DType)> {
    let Some(fields) = dtype.fields() else {
        return Err(Error::BadRequest(format!(
            "field {name:?} was asked for, but the dataset has no fields"
        )));
    };
    let field = fields.iter().find(|f| f.name == name).ok_or_else(|| {
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        Error::BadRequest(format!("no field named {name:?}; the fields are {names:?}"))
    })?;
    let itemsize = dtype.itemsize().max(1);
    let fsize = field.dtype.itemsize();
    let mut out = Vec::with_capacity(data.len() / itemsize * fsize);
    for rec in data.chunks_exact(itemsize) {
        let bytes = rec
            .get(field.offset..field.offset + fsize)
            .ok_or_else(|| Error::BadRequest(format!("field {name:?} lies outside its record")))?;
        out.extend_from_slice(bytes);
    }
    let mut out_shape = shape.to_vec();
    let mut out_dtype = field.dtype.clone();
    if let Some((base, sub)) = field.dtype.subarray() {
        out_shape.extend(sub.iter().map(|&d| d as i64));
        out_dtype = base.clone();
    }
    Ok((out, out_shape, out_dtype))
}

/// Chunk and block shapes for a result.
#[derive(Debug, Clone)]
pub struct Geometry {
    pub chunks: Vec<i64>,
    pub blocks: Vec<i64>,
}

/// Bytes a result chunk aims at: big enough to compress well, small enough to
/// stream.
const TARGET_CHUNK_BYTES: i64 = 8 << 20;
/// Bytes a block aims at: about what fits in a core's L2 cache.
const TARGET_BLOCK_BYTES: i64 = 256 << 10;

/// Halves the leading dimensions of `shape` until it holds at most `target` bytes.
fn shrink_to(shape: &[i64], itemsize: i64, target: i64) -> Vec<i64> {
    let mut s: Vec<i64> = shape.iter().map(|&d| d.max(1)).collect();
    loop {
        let bytes = s.iter().product::<i64>().saturating_mul(itemsize.max(1));
        if bytes <= target {
            break;
        }
        match s.iter_mut().find(|d| **d > 1) {
            Some(d) => *d = (*d + 1) / 2,
            None => break,
        }
    }
    s
}

/// Automatic geometry for a result of `shape`.
pub fn auto_geometry(shape: &[i64], itemsize: usize) -> Geometry {
    let chunks = shrink_to(shape, itemsize as i64, TARGET_CHUNK_BYTES);
    let blocks = shrink_to(&chunks, itemsize as i64, TARGET_BLOCK_BYTES);
    Geometry { chunks, blocks }
}

/// Makes a geometry valid for `shape`: chunks no bigger than the shape,
/// blocks no bigger than the chunks, nothing below 1 (0 for empty dims).
fn fit_geometry(shape: &[i64], itemsize: usize, g: Option<Geometry>) -> (Vec<i32>, Vec<i32>) {
    let g = match g {
        Some(g) if g.chunks.len() == shape.len() && g.blocks.len() == shape.len() => g,
        _ => auto_geometry(shape, itemsize),
    };
    let clamp = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let mut chunks = Vec::with_capacity(shape.len());
    let mut blocks = Vec::with_capacity(shape.len());
    let empty = shape.contains(&0);
    for ((&size, &gc), &gb) in shape.iter().zip(&g.chunks).zip(&g.blocks) {
        if empty {
            chunks.push(clamp(size));
            blocks.push(clamp(size));
            continue;
        }
        let c = gc.clamp(1, size.max(1));
        let b = gb.clamp(1, c);
        chunks.push(clamp(c));
        blocks.push(clamp(b));
    }
    (chunks, blocks)
}

/// Result chunks read, laid out and compressed together: bounds the memory a
/// large selection holds to this many decompressed result chunks.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Opens a reader of the same data for one worker (see [`ChunkSource`]).
pub type OpenReader<'a> = dyn Fn() -> Result<Box<dyn BoxReader>> + Sync + 'a;

/// Where the result chunks of a frame are read from.
pub enum ChunkSource<'a> {
    /// One reader, read a result chunk after the other (its reads may be
    /// parallel inside); the chunks are compressed in parallel.
    Serial(&'a mut dyn BoxReader),
    /// A reader per worker thread, opened once by the worker: each worker
    /// takes the next result chunk, reads (or computes), lays out and
    /// compresses it start to end, with its own buffers and compressor, and
    /// no worker waits for another. For computed data (lazy expressions),
    /// where reading is decompression plus arithmetic, this keeps every core
    /// busy.
    Workers(&'a OpenReader<'a>),
}

/// Reads a selection into a new NDArray frame one result chunk at a time:
/// each chunk's items are read, laid out in blocks and compressed (in
/// parallel, a batch at a time), so memory stays at a few chunks whatever
/// the size of the selection.
pub fn frame_from_selection(
    reader: &mut dyn BoxReader,
    sel: &Selection,
    dtype: &DType,
    geometry: Geometry,
) -> Result<Vec<u8>> {
    let cparams = result_cparams(dtype.itemsize());
    frame_from_chunks(ChunkSource::Serial(reader), sel, dtype, geometry, &cparams)
}

/// The result chunks of a selection, in the chunk grid of its frame.
struct ResultGrid<'s> {
    sel: &'s Selection,
    out_shape: Vec<i64>,
    chunks: Vec<i64>,
    blocks: Vec<i64>,
    itemsize: usize,
    /// The selection's dimensions that the result keeps.
    kept: Vec<usize>,
    grid: Vec<i64>,
    cparams: CParams,
}

impl ResultGrid<'_> {
    fn nchunks(&self) -> i64 {
        self.grid.iter().product()
    }

    /// Result chunk `n` as a selection of the source, with its shape.
    fn chunk_selection(&self, n: i64) -> (Selection, Vec<i64>) {
        let mut coord = vec![0i64; self.grid.len()];
        let mut rest = n;
        for (c, &g) in coord.iter_mut().zip(&self.grid).rev() {
            *c = rest % g;
            rest /= g;
        }
        let mut sub = self.sel.clone();
        let mut box_shape = Vec::with_capacity(self.kept.len());
        for (k, &d) in self.kept.iter().enumerate() {
            let o0 = coord[k] * self.chunks[k];
            let o1 = (o0 + self.chunks[k]).min(self.out_shape[k]);
            let src = self.sel.dims[d];
            sub.dims[d].start = src.start + o0 * src.step;
            sub.dims[d].count = o1 - o0;
            box_shape.push(o1 - o0);
        }
        (sub, box_shape)
    }

    /// Whether `reader` makes the result chunks itself, already in block layout: the
    /// whole of it is selected and its chunk grid and blocks are the result's.
    fn native_from(&self, reader: &dyn BoxReader) -> bool {
        self.sel.is_full(reader.shape())
            && reader.chunk_shape() == self.chunks.as_slice()
            && reader.native_blocks() == Some(self.blocks.as_slice())
    }

    /// Result chunk `n` read through `reader`, compressed.
    fn compressed_chunk(
        &self,
        reader: &mut dyn BoxReader,
        native: bool,
        compressor: &mut cat2_blosc2::Compressor,
        scratch: &mut Vec<u8>,
        n: i64,
    ) -> Result<Vec<u8>> {
        if native {
            reader.read_native_chunk(n, scratch)?;
            return Ok(compressor.compress(scratch)?);
        }
        let (sub, box_shape) = self.chunk_selection(n);
        let packed = self.pack(read_selection(reader, &sub)?, &box_shape);
        Ok(compressor.compress(&packed)?)
    }

    fn pack(&self, data: Vec<u8>, box_shape: &[i64]) -> Vec<u8> {
        cat2_blosc2::pack_chunk_owned(data, box_shape, &self.chunks, &self.blocks, self.itemsize)
    }

    fn compressor(&self) -> Result<cat2_blosc2::Compressor> {
        cat2_blosc2::Compressor::new(&self.cparams)
            .map_err(|e| Error::BadRequest(format!("compressor: {e}")))
    }
}

/// [`frame_from_selection`] from any [`ChunkSource`].
pub fn frame_from_chunks(
    mut source: ChunkSource<'_>,
    sel: &Selection,
    dtype: &DType,
    geometry: Geometry,
    cparams: &CParams,
) -> Result<Vec<u8>> {
    let out_shape = sel.out_shape();
    let itemsize = dtype.itemsize();
    if out_shape.is_empty() || out_shape.contains(&0) || itemsize == 0 {
        let data = match &mut source {
            ChunkSource::Serial(reader) => read_selection(*reader, sel)?,
            ChunkSource::Workers(open) => read_selection(&mut *open()?, sel)?,
        };
        return build_array_frame(&data, &out_shape, dtype, Some(geometry));
    }
    let (chunks, blocks) = fit_geometry(&out_shape, itemsize, Some(geometry));
    let chunks64: Vec<i64> = chunks.iter().map(|&c| i64::from(c)).collect();
    let blocks64: Vec<i64> = blocks.iter().map(|&b| i64::from(b)).collect();
    let mut cparams = CParams {
        typesize: cat2_blosc2::cparams::clamp_typesize(itemsize),
        nthreads: cat2_blosc2::cparams::default_nthreads(),
        ..cparams.clone()
    };
    cparams.blocksize = i32::try_from(blocks64.iter().product::<i64>() * itemsize as i64)
        .map_err(|_| Error::BadRequest("a block of the result would exceed 2 GB".into()))?;
    let grid: Vec<i64> = out_shape
        .iter()
        .zip(&chunks64)
        .map(|(s, c)| (s + c - 1) / c)
        .collect();
    let mut rg = ResultGrid {
        sel,
        kept: (0..sel.dims.len())
            .filter(|&d| sel.dims[d].keep_dim)
            .collect(),
        out_shape: out_shape.clone(),
        chunks: chunks64,
        blocks: blocks64,
        itemsize,
        grid,
        cparams,
    };
    if rg.nchunks() > 1 {
        // Parallelism comes from working on several chunks at once.
        rg.cparams.nthreads = 1;
    }
    let compressed = match source {
        ChunkSource::Serial(reader) => serial_chunks(&rg, reader)?,
        ChunkSource::Workers(open) => worker_chunks(&rg, open)?,
    };
    let spec = ArraySpec {
        shape: out_shape,
        chunks,
        blocks,
        dtype: dtype.descr_str(),
        cparams: rg.cparams,
        urlpath: None,
    };
    Ok(cat2_blosc2::ndarray_frame_from_chunks(
        &spec,
        &compressed,
        &[],
    )?)
}

/// The compressed result chunks of one reader, read a batch at a time and
/// compressed in parallel.
fn serial_chunks(rg: &ResultGrid<'_>, reader: &mut dyn BoxReader) -> Result<Vec<Vec<u8>>> {
    use rayon::prelude::*;

    let nchunks = rg.nchunks();
    let native = rg.native_from(reader);
    let mut compressed = Vec::with_capacity(nchunks as usize);
    let mut batch = Vec::with_capacity(CHUNKS_IN_FLIGHT);
    for n in 0..nchunks {
        batch.push(if native {
            let mut chunk = Vec::new();
            reader.read_native_chunk(n, &mut chunk)?;
            chunk
        } else {
            let (sub, box_shape) = rg.chunk_selection(n);
            rg.pack(read_selection(reader, &sub)?, &box_shape)
        });
        if batch.len() < CHUNKS_IN_FLIGHT && n + 1 < nchunks {
            continue;
        }
        let done: Vec<Vec<u8>> = batch
            .par_iter()
            .map(|packed| Ok(rg.compressor()?.compress(packed)?))
            .collect::<Result<_>>()?;
        compressed.extend(done);
        batch.clear();
    }
    Ok(compressed)
}

/// The compressed result chunks made by one worker per thread, each with a
/// reader of its own, taking chunks from a shared counter.
fn worker_chunks(rg: &ResultGrid<'_>, open: &OpenReader<'_>) -> Result<Vec<Vec<u8>>> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    let nchunks = rg.nchunks();
    let next = AtomicI64::new(0);
    let failed = AtomicBool::new(false);
    let workers = rayon::current_num_threads().clamp(1, nchunks as usize);
    let made: Vec<Vec<(i64, Vec<u8>)>> = (0..workers)
        .into_par_iter()
        .map(|_| {
            let work = || -> Result<Vec<(i64, Vec<u8>)>> {
                let mut reader = open()?;
                let native = rg.native_from(&*reader);
                let mut compressor = rg.compressor()?;
                let mut scratch = Vec::new();
                let mut mine = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= nchunks || failed.load(Ordering::Relaxed) {
                        return Ok(mine);
                    }
                    let chunk = rg.compressed_chunk(
                        &mut *reader,
                        native,
                        &mut compressor,
                        &mut scratch,
                        n,
                    )?;
                    mine.push((n, chunk));
                }
            };
            work().inspect_err(|_| failed.store(true, Ordering::Relaxed))
        })
        .collect::<Result<_>>()?;
    let mut compressed: Vec<Vec<u8>> = vec![Vec::new(); nchunks as usize];
    for (n, chunk) in made.into_iter().flatten() {
        compressed[n as usize] = chunk;
    }
    Ok(compressed)
}

/// Compresses C-ordered items into an NDArray frame.
pub fn build_array_frame(
    data: &[u8],
    shape: &[i64],
    dtype: &DType,
    geometry: Option<Geometry>,
) -> Result<Vec<u8>> {
    let itemsize = dtype.itemsize();
    let (chunks, blocks) = fit_geometry(shape, itemsize, geometry);
    let spec = ArraySpec {
        shape: shape.to_vec(),
        chunks,
        blocks,
        dtype: dtype.descr_str(),
        cparams: CParams::zstd_shuffle(itemsize),
        urlpath: None,
    };
    let arr = NdArray::from_buffer(&spec, data)?;
    Ok(arr.to_cframe()?)
}

fn fetch_frame(sc: &SChunk, req: &FetchRequest) -> Result<FetchOutput> {
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
        return Ok(FetchOutput::Verbatim);
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
        return Ok(FetchOutput::Verbatim);
    }
    let data = sc.slice(start, stop)?;
    let mut cparams = CParams::zstd_shuffle(typesize as usize);
    cparams.typesize = sc.typesize() as i32;
    let chunkbytes = (sc.chunksize().max(typesize)) as usize;
    let out = SChunk::from_bytes(&data, chunkbytes, &cparams)?;
    Ok(FetchOutput::Frame(out.to_cframe()?))
}

/// A `BoxReader` over C-ordered items in memory.
pub struct MemReader<'a> {
    data: &'a [u8],
    shape: Vec<i64>,
    itemsize: usize,
}

impl<'a> MemReader<'a> {
    pub fn new(data: &'a [u8], shape: Vec<i64>, itemsize: usize) -> Self {
        MemReader {
            data,
            shape,
            itemsize,
        }
    }
}

impl BoxReader for MemReader<'_> {
    fn shape(&self) -> &[i64] {
        &self.shape
    }
    fn chunk_shape(&self) -> &[i64] {
        &self.shape
    }
    fn itemsize(&self) -> usize {
        self.itemsize
    }
    fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()> {
        let nd = self.shape.len();
        if nd == 0 {
            out.copy_from_slice(&self.data[..self.itemsize]);
            return Ok(());
        }
        // Copy row by row along the last dimension.
        let row = ((stop[nd - 1] - start[nd - 1]) as usize) * self.itemsize;
        let mut strides = vec![self.itemsize as i64; nd];
        for i in (0..nd - 1).rev() {
            strides[i] = strides[i + 1] * self.shape[i + 1];
        }
        let counts: Vec<i64> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
        if counts.contains(&0) {
            return Ok(());
        }
        let mut idx = vec![0i64; nd - 1];
        let mut off = 0usize;
        loop {
            let mut src = start[nd - 1] * strides[nd - 1];
            for i in 0..nd - 1 {
                src += (start[i] + idx[i]) * strides[i];
            }
            let src = src as usize;
            out[off..off + row].copy_from_slice(&self.data[src..src + row]);
            off += row;
            let mut d = nd - 1;
            loop {
                if d == 0 {
                    return Ok(());
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < counts[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}

/// How computed answers are compressed: LZ4 over bit-shuffled items. The
/// client throws the compression away at once, so speed counts more than
/// ratio; on detector data bitshuffle + LZ4 compresses within ~15% of
/// ZSTD 1 + shuffle at several times its speed (bench/hdf5_proxy.py).
pub fn result_cparams(itemsize: usize) -> CParams {
    let mut cp = CParams::lz4_fast(itemsize);
    cp.clevel = 5;
    cp.filters = [0, 0, 0, 0, 0, cat2_blosc2::cparams::filter::BITSHUFFLE];
    cp
}
