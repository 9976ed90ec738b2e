//! `/api/fetch`: what a request asks for ([`FetchRequest`]), what the answer
//! is ([`FetchOutput`]), and the machinery every kind of dataset answers
//! with: selections read through a [`BoxReader`] and built into new frames
//! ([`results`]; where their chunks go, memory, a spill or a staged object:
//! [`frame_out`]), their geometry ([`geometry`]), stored chunks copied as they
//! are ([`passthrough`]), and readers over arrays and memory ([`readers`]).
//!
//! Which of these a dataset uses is its own business
//! ([`crate::dataset::Dataset::fetch`]); this module knows no kinds.

pub(crate) mod frame_out;
pub(crate) mod geometry;
mod output;
pub(crate) mod passthrough;
pub(crate) mod readers;
pub(crate) mod results;

pub use frame_out::SpilledFrame;
pub use geometry::{auto_geometry, result_geometry, Geometry};
pub use output::FetchOutput;
pub(crate) use readers::{ArrayReader, MemReader};
pub(crate) use results::{
    build_array_frame, compress_chunk, frame_from_chunks, frame_from_selection, result_cparams,
    write_frame, ChunkSource, OpenReader,
};

use crate::budget::{bytes_of, dims_of, Budget, Reservation};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::indices::{parse_indices, read_indices};
use crate::selection::{parse_slice, read_selection, BoxReader, Selection};

/// The parameters of a fetch (query string or JSON body).
#[derive(Debug, Clone, Default)]
pub struct FetchRequest {
    pub slice: Option<String>,
    pub indices: Option<String>,
    pub filter: Option<String>,
    pub field: Option<String>,
    /// What answering may spend (the default: no limits, for the server's
    /// own work and tests; requests always set one).
    pub budget: Budget,
}

impl FetchRequest {
    /// The combinations no dataset answers, refused before any is opened.
    pub fn check(&self) -> Result<()> {
        if self.indices.is_some()
            && (self.slice.is_some() || self.filter.is_some() || self.field.is_some())
        {
            return Err(Error::BadRequest(
                "indices cannot be combined with slice_, filter or field".into(),
            ));
        }
        if self.field.is_some() && self.filter.is_some() {
            return Err(Error::BadRequest(
                "Cannot handle both field and filter parameters at the same time".into(),
            ));
        }
        Ok(())
    }

    /// Whether the request asks for anything but the whole dataset.
    pub fn selects(&self) -> bool {
        self.slice.is_some()
            || self.indices.is_some()
            || self.filter.is_some()
            || self.field.is_some()
    }

    /// The `slice_` resolved against `shape` (everything without one).
    pub fn selection(&self, shape: &[i64]) -> Result<Selection> {
        match self
            .slice
            .as_deref()
            .map(parse_slice)
            .transpose()?
            .flatten()
        {
            None => Ok(Selection::full(shape)),
            Some(spec) => spec.resolve(shape),
        }
    }
}

/// The refusal of a fetch of something that is not a dataset.
pub(crate) const NOT_A_DATASET: &str = "The fetch API only supports datasets (.b2nd, .b2frame, .b2z); use the download API if you only want to download the file";

/// Working memory of parsing an `indices` text, per byte of it: the JSON
/// values, the parsed coordinates and their grouping by chunk.
const INDICES_BYTES_PER_CHAR: u64 = 48;

/// The frame of an `indices=` gather from any dataset.
pub(crate) fn indices_frame(
    reader: &mut dyn BoxReader,
    indices: &str,
    shape: &[i64],
    dtype: &DType,
    budget: &Budget,
) -> Result<FetchOutput> {
    let parsing = budget.reserve(indices.len() as u64 * INDICES_BYTES_PER_CHAR, &|| {
        format!("an indices list of {} characters", indices.len())
    })?;
    let idx = parse_indices(indices, shape)?;
    let out_shape = idx.out_shape();
    let _held = reserve_whole(budget, &out_shape, dtype.itemsize(), "the gathered items")?;
    let data = read_indices(reader, &idx)?;
    drop(parsing);
    build_array_frame(&data, &out_shape, dtype, None).map(FetchOutput::Frame)
}

/// Reserves what an answer held whole in memory costs: its items, and the
/// frame built from them (`what` names it for the message).
pub(crate) fn reserve_whole(
    budget: &Budget,
    shape: &[i64],
    itemsize: usize,
    what: &str,
) -> Result<Reservation> {
    let bytes = bytes_of(dims_of(shape), itemsize as u64).saturating_mul(2);
    budget.reserve(bytes, &|| {
        format!("{what} (shape {shape:?}, {itemsize} bytes an item, held whole)")
    })
}

/// The frame of a resolved selection from any dataset, or of one field of it.
pub(crate) fn selection_frame(
    reader: &mut dyn BoxReader,
    sel: &Selection,
    dtype: &DType,
    geometry: Geometry,
    field: Option<&str>,
    budget: &Budget,
) -> Result<FetchOutput> {
    match field {
        None => frame_from_selection(reader, sel, dtype, geometry, budget),
        Some(name) => {
            let out_shape = sel.out_shape();
            // The records, and the field's items taken out of them.
            let _held = reserve_whole(budget, &out_shape, dtype.itemsize(), "the selection")?;
            let data = read_selection(reader, sel)?;
            let (fdata, fshape, fdtype) = project_field(&data, &out_shape, dtype, name)?;
            let geometry = (fshape.len() == out_shape.len()).then_some(geometry);
            build_array_frame(&fdata, &fshape, &fdtype, geometry).map(FetchOutput::Frame)
        }
    }
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
