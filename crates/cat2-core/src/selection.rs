//! The `slice_` parameter: parsing it, resolving it against a shape with
//! NumPy's rules, and reading the selected items without reading much more.
//!
//! Caterva2 clients send slices as text (`"1:3, 2:5"`, `"5"`, `":10, :20"`),
//! and the reference server answers with whatever NumPy indexing would give,
//! so the rules here are NumPy's: integers drop their dimension, missing
//! trailing dimensions are whole, bounds of a slice are clamped, negative
//! values count from the end, and an out-of-range integer is an error in
//! NumPy's words. The parse errors copy the reference server's texts (which
//! are Python's `int()` messages), since users and tests see them verbatim.
//!
//! Beyond the reference: `...` is accepted (the reference refuses it, the
//! client expands it before sending), and negative steps work as in NumPy
//! (the reference answers them with a 500).
//!
//! Reading is done through [`BoxReader`], which reads C-ordered
//! hyper-rectangles; [`read_selection`] plans those reads so that stepped
//! selections do not drag in a huge bounding box (see [`gather`]).

use std::fmt;

use crate::dtype::py_repr_str;
use crate::{Error, Result};

/// One comma-separated item of a `slice_` string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SliceItem {
    /// An integer: selects one position and drops the dimension.
    Index(i64),
    /// `start:stop[:step]`, each part optional.
    Range {
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    },
    /// `...`: as many whole dimensions as needed.
    Ellipsis,
}

/// A parsed `slice_` string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SliceSpec {
    pub items: Vec<SliceItem>,
    /// Whether the string had several items (a tuple key in Python); the
    /// server uses it to tell a "whole" tuple from a single `:`.
    pub is_tuple: bool,
}

/// Parses a `slice_` string; an empty string is `None` (the whole dataset).
pub(crate) fn parse_slice(s: &str) -> Result<Option<SliceSpec>> {
    if s.is_empty() {
        return Ok(None);
    }
    let items = s
        .split(',')
        .map(parse_item)
        .collect::<std::result::Result<Vec<_>, String>>()
        .map_err(|reason| Error::BadSlice {
            input: s.to_string(),
            reason,
        })?;
    let is_tuple = items.len() > 1;
    Ok(Some(SliceSpec { items, is_tuple }))
}

/// One item: an integer, `...`, or up to three `:`-separated integers.
/// The error is the reason only, worded as the reference server words it.
pub(crate) fn parse_item(segment: &str) -> std::result::Result<SliceItem, String> {
    if !segment.contains(':') {
        if segment.trim() == "..." {
            return Ok(SliceItem::Ellipsis);
        }
        return py_int(segment).map(SliceItem::Index);
    }
    let parts = segment
        .split(':')
        .map(|p| {
            let p = p.trim();
            if p.is_empty() {
                Ok(None)
            } else {
                py_int(p).map(Some)
            }
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    match parts.as_slice() {
        [start, stop] => Ok(SliceItem::Range {
            start: *start,
            stop: *stop,
            step: None,
        }),
        [start, stop, step] => Ok(SliceItem::Range {
            start: *start,
            stop: *stop,
            step: *step,
        }),
        _ => Err(format!(
            "{} is not a slice: a slice has a start, a stop and a step",
            py_repr_str(segment)
        )),
    }
}

/// Python's `int(text)` for base 10: surrounding whitespace, a sign, digits
/// with single underscores between them. Values beyond `i64` saturate, which
/// keeps slice bounds clamped and integer indices out of bounds, as in Python.
fn py_int(text: &str) -> std::result::Result<i64, String> {
    let invalid = || {
        format!(
            "invalid literal for int() with base 10: {}",
            py_repr_str(text)
        )
    };
    let t = text.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let bytes = digits.as_bytes();
    if bytes.is_empty() || bytes[0] == b'_' || bytes[bytes.len() - 1] == b'_' {
        return Err(invalid());
    }
    let mut value: i128 = 0;
    let mut prev_underscore = false;
    for &b in bytes {
        match b {
            b'0'..=b'9' => {
                value = (value * 10 + i128::from(b - b'0')).min(i128::from(u64::MAX));
                prev_underscore = false;
            }
            b'_' if !prev_underscore => prev_underscore = true,
            _ => return Err(invalid()),
        }
    }
    let value = if neg { -value } else { value };
    Ok(value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

impl fmt::Display for SliceItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: &Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        match self {
            SliceItem::Index(i) => write!(f, "{i}"),
            SliceItem::Ellipsis => f.write_str("..."),
            SliceItem::Range { start, stop, step } => {
                write!(f, "{}:{}", opt(start), opt(stop))?;
                if step.is_some() {
                    write!(f, ":{}", opt(step))?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for SliceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

/// The selection along one dimension, normalised: positions
/// `start + i * step` for `i` in `0..count`, all inside the dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DimSel {
    pub start: i64,
    /// Never zero; negative walks backwards as in NumPy.
    pub step: i64,
    pub count: i64,
    /// False for an integer index, whose dimension is dropped from the result.
    pub keep_dim: bool,
}

impl DimSel {
    /// The whole of a dimension of `len`.
    pub fn full(len: i64) -> DimSel {
        DimSel {
            start: 0,
            step: 1,
            count: len.max(0),
            keep_dim: true,
        }
    }

    /// An integer index (negative counts from the end) on `axis` of `len`.
    pub fn index(i: i64, axis: usize, len: i64) -> Result<DimSel> {
        let j = if i < 0 { i.saturating_add(len) } else { i };
        if j < 0 || j >= len {
            return Err(Error::OutOfBounds(format!(
                "index {i} is out of bounds for axis {axis} with size {len}"
            )));
        }
        Ok(DimSel {
            start: j,
            step: 1,
            count: 1,
            keep_dim: false,
        })
    }

    /// A slice with Python's `slice.indices(len)` semantics.
    pub fn range(
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
        len: i64,
    ) -> Result<DimSel> {
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(Error::BadSlice {
                input: SliceItem::Range {
                    start,
                    stop,
                    step: Some(step),
                }
                .to_string(),
                reason: "slice step cannot be zero".into(),
            });
        }
        let len = i128::from(len.max(0));
        let norm = |v: i64, lo: i128, hi: i128| {
            let v = i128::from(v);
            let v = if v < 0 { v + len } else { v };
            v.clamp(lo, hi)
        };
        let (s, e) = if step > 0 {
            (
                start.map_or(0, |v| norm(v, 0, len)),
                stop.map_or(len, |v| norm(v, 0, len)),
            )
        } else {
            (
                start.map_or(len - 1, |v| norm(v, -1, len - 1)),
                stop.map_or(-1, |v| norm(v, -1, len - 1)),
            )
        };
        let st = i128::from(step);
        let count = if step > 0 {
            if e > s {
                (e - s + st - 1) / st
            } else {
                0
            }
        } else if s > e {
            (s - e - st - 1) / -st
        } else {
            0
        };
        // Every value is within 0..=len (or -1), so these fit an i64. A step
        // is only ever walked between selected items: with one item or none
        // only its direction counts, and keeping just that keeps the step's
        // arithmetic inside i64 (a step of `i64::MIN` cannot be negated).
        let step = if count <= 1 { step.signum() } else { step };
        Ok(DimSel {
            start: s.max(0) as i64,
            step,
            count: count as i64,
            keep_dim: true,
        })
    }

    /// The source position of the `i`-th selected item.
    pub fn coord(&self, i: i64) -> i64 {
        self.start + i * self.step
    }

    /// Lowest and one past the highest selected position (`(s, s)` if empty).
    fn span(&self) -> (i64, i64) {
        if self.count <= 0 {
            return (self.start, self.start);
        }
        let a = self.coord(0);
        let b = self.coord(self.count - 1);
        (a.min(b), a.max(b) + 1)
    }
}

/// A resolved selection: one [`DimSel`] per dimension of the array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub dims: Vec<DimSel>,
}

impl SliceSpec {
    /// Applies the key to an array of `shape` with NumPy's rules.
    pub(crate) fn resolve(&self, shape: &[i64]) -> Result<Selection> {
        let ellipses = self
            .items
            .iter()
            .filter(|i| matches!(i, SliceItem::Ellipsis))
            .count();
        if ellipses > 1 {
            return Err(Error::BadSlice {
                input: self.to_string(),
                reason: "an index can only have a single ellipsis ('...')".into(),
            });
        }
        let indexed = self.items.len() - ellipses;
        if indexed > shape.len() {
            return Err(too_many_indices(shape.len(), indexed));
        }
        let fill = shape.len() - indexed;
        let mut expanded: Vec<Option<&SliceItem>> = Vec::with_capacity(shape.len());
        for item in &self.items {
            match item {
                SliceItem::Ellipsis => expanded.extend(std::iter::repeat_n(None, fill)),
                other => expanded.push(Some(other)),
            }
        }
        if ellipses == 0 {
            expanded.extend(std::iter::repeat_n(None, fill));
        }
        let dims = expanded
            .iter()
            .zip(shape)
            .enumerate()
            .map(|(axis, (item, &len))| match item {
                None | Some(SliceItem::Ellipsis) => Ok(DimSel::full(len)),
                Some(SliceItem::Index(i)) => DimSel::index(*i, axis, len),
                Some(SliceItem::Range { start, stop, step }) => {
                    DimSel::range(*start, *stop, *step, len)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Selection { dims })
    }
}

/// NumPy's complaint about a key with more entries than dimensions.
pub(crate) fn too_many_indices(ndim: usize, indexed: usize) -> Error {
    Error::BadRequest(format!(
        "too many indices for array: array is {ndim}-dimensional, but {indexed} were indexed"
    ))
}

impl Selection {
    /// Everything of an array of `shape`.
    pub fn full(shape: &[i64]) -> Selection {
        Selection {
            dims: shape.iter().map(|&n| DimSel::full(n)).collect(),
        }
    }

    /// Shape of the result: the kept dimensions' counts.
    pub fn out_shape(&self) -> Vec<i64> {
        self.dims
            .iter()
            .filter(|d| d.keep_dim)
            .map(|d| d.count)
            .collect()
    }

    /// Whether this selects all of an array of `shape`, in order, keeping
    /// every dimension.
    pub fn is_full(&self, shape: &[i64]) -> bool {
        self.dims.len() == shape.len()
            && self.dims.iter().zip(shape).all(|(d, &n)| {
                d.keep_dim && d.step == 1 && d.count == n && (d.start == 0 || n == 0)
            })
    }

    /// Source-coordinate box holding every selected item: start and
    /// exclusive stop per dimension.
    pub fn bounding_box(&self) -> (Vec<i64>, Vec<i64>) {
        self.dims.iter().map(DimSel::span).unzip()
    }
}

/// Something that can read a C-ordered hyper-rectangle of fixed-size items.
pub(crate) trait BoxReader {
    fn shape(&self) -> &[i64];
    /// The grid reads are grouped by (may equal the shape).
    fn chunk_shape(&self) -> &[i64];
    fn itemsize(&self) -> usize;
    /// Fills `out` (`prod(stop - start) * itemsize` bytes) with the items of
    /// the box `start..stop`, in C order.
    fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()>;

    /// The items of the box `start..stop` in C order, in a new buffer.
    /// Readers that make one anyway return it, saving a copy of the data.
    fn read_box_vec(&mut self, start: &[i64], stop: &[i64]) -> Result<Vec<u8>> {
        let items: i64 = start
            .iter()
            .zip(stop)
            .map(|(a, b)| (b - a).max(0))
            .product();
        let len = usize::try_from(items)
            .ok()
            .and_then(|n| n.checked_mul(self.itemsize()))
            .ok_or_else(too_large)?;
        let mut out = zeroed(len)?;
        self.read_box(start, stop, &mut out)?;
        Ok(out)
    }

    /// The block shape of Blosc2's layout in which [`BoxReader::read_native_chunk`] gives
    /// whole chunks of [`BoxReader::chunk_shape`]'s grid, for readers that make chunks in
    /// that layout directly (a computed chunk then goes to the compressor as it is, with no
    /// C-order box in between); `None` for the others.
    fn native_blocks(&self) -> Option<&[i64]> {
        None
    }

    /// Chunk `nchunk` of the chunk grid in the layout of [`BoxReader::native_blocks`]
    /// (blocks in C order, each block's items in C order, edges padded to whole blocks),
    /// into `out`, which the reader resizes and reuses.
    fn read_native_chunk(&mut self, nchunk: i64, out: &mut Vec<u8>) -> Result<()> {
        let _ = (nchunk, out);
        Err(Error::Blosc(cat2_blosc2::Error::Invalid(
            "this reader gives no chunks in Blosc2's layout".into(),
        )))
    }
}

/// Copies a box read into a new buffer into `out`, for readers whose
/// [`BoxReader::read_box`] is their `read_box_vec`; `what` names the source.
pub(crate) fn fill_box(data: Vec<u8>, out: &mut [u8], what: &str) -> Result<()> {
    if data.len() != out.len() {
        return Err(Error::BadRequest(format!(
            "{what} gave {} bytes for a box of {}",
            data.len(),
            out.len()
        )));
    }
    out.copy_from_slice(&data);
    Ok(())
}

/// The selected items in C order of the result (shape `sel.out_shape()`).
pub(crate) fn read_selection(reader: &mut dyn BoxReader, sel: &Selection) -> Result<Vec<u8>> {
    let shape = reader.shape().to_vec();
    if sel.dims.len() != shape.len() {
        return Err(Error::BadRequest(format!(
            "the selection has {} dimensions but the array has {}",
            sel.dims.len(),
            shape.len()
        )));
    }
    let out_shape = sel.out_shape();
    // A box (steps of 1, integer indices): its C order is the result's.
    if sel
        .dims
        .iter()
        .all(|d| d.step == 1 && d.count > 0 && (d.keep_dim || d.count == 1))
    {
        let start: Vec<i64> = sel.dims.iter().map(|d| d.start).collect();
        let stop: Vec<i64> = sel.dims.iter().map(|d| d.start + d.count).collect();
        return reader.read_box_vec(&start, &stop);
    }
    let strides = c_strides(&out_shape)?;
    let mut next = 0;
    let axes: Vec<Axis> = sel
        .dims
        .iter()
        .map(|d| {
            let out_stride = if d.keep_dim {
                next += 1;
                strides[next - 1]
            } else {
                0
            };
            Axis::Basic {
                sel: *d,
                out_stride,
            }
        })
        .collect();
    gather(reader, &axes, None, item_count(&out_shape)?)
}

/// Item strides of a C-ordered array of `shape`.
pub(crate) fn c_strides(shape: &[i64]) -> Result<Vec<usize>> {
    let mut strides = vec![0usize; shape.len()];
    let mut acc = 1usize;
    for (s, &n) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc = acc
            .checked_mul(usize::try_from(n.max(1)).map_err(|_| too_large())?)
            .ok_or_else(too_large)?;
    }
    Ok(strides)
}

/// Items in an array of `shape`.
pub(crate) fn item_count(shape: &[i64]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &n| {
        acc.checked_mul(usize::try_from(n.max(0)).map_err(|_| too_large())?)
            .ok_or_else(too_large)
    })
}

fn too_large() -> Error {
    Error::BadRequest("the selection is too large to be held in memory".into())
}

/// A zeroed buffer, refused with an error rather than an abort when the
/// memory is not there.
fn zeroed(len: usize) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_large())?;
    v.resize(len, 0);
    Ok(v)
}

/// How one source dimension is selected, for [`gather`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Axis {
    /// A regular progression, written with `out_stride` (items) per step
    /// (0 for a dropped dimension).
    Basic { sel: DimSel, out_stride: usize },
    /// Taken from the point list: coordinate `slot` of each point.
    Point { slot: usize },
}

/// Points for the [`Axis::Point`] dimensions (NumPy's advanced indexing):
/// point `p` has coordinates `coords[p * slots ..][..slots]` and lands at
/// `p * out_stride` in the result.
#[derive(Debug)]
pub(crate) struct PointSet {
    pub slots: usize,
    pub coords: Vec<i64>,
    pub out_stride: usize,
}

impl PointSet {
    fn len(&self) -> usize {
        self.coords.len().checked_div(self.slots).unwrap_or(0)
    }
    fn coord(&self, p: usize, slot: usize) -> i64 {
        self.coords.get(p * self.slots + slot).copied().unwrap_or(0)
    }
}

/// A box read is taken whole when it is at most this many bytes...
const SMALL_READ: u128 = 64 * 1024;
/// ...or holds at most this many items per selected item.
const MAX_WASTE: u128 = 4;

/// One planned read: an index range per basic axis and the points it covers.
struct Task {
    ranges: Vec<(i64, i64)>,
    pts: Vec<usize>,
}

/// Reads the items `axes` (and `points`) select into a fresh buffer of
/// `out_items` items.
///
/// The plan, and why:
/// * Unit steps and no points: the result *is* the bounding box, so it is
///   read in one call straight into the output.
/// * Otherwise the selected positions are grouped by the reader's chunk
///   grid (per basic axis, runs of positions that share a chunk; points by
///   the chunk cell they fall in), and each group is one candidate read of
///   its bounding box. A chunk is the unit storage decompresses anyway, so
///   reading a box inside one is cheap, and no read spans more than one
///   chunk's worth of items; far-apart points never pull in the space
///   between them.
/// * A candidate box that is both bigger than [`SMALL_READ`] and more than
///   [`MAX_WASTE`] times the items it delivers is split in two along its
///   sparsest axis (a large step, or scattered points), repeatedly, down to
///   single hyperplanes if need be. This matters when the chunk grid is
///   coarse (a reader whose chunk is the whole array) and the step large.
pub(crate) fn gather(
    reader: &mut dyn BoxReader,
    axes: &[Axis],
    points: Option<&PointSet>,
    out_items: usize,
) -> Result<Vec<u8>> {
    let itemsize = reader.itemsize();
    let shape = reader.shape().to_vec();
    let out_len = out_items.checked_mul(itemsize).ok_or_else(too_large)?;
    let mut out = zeroed(out_len)?;
    if axes.len() != shape.len() {
        return Err(Error::BadRequest(format!(
            "the selection has {} dimensions but the array has {}",
            axes.len(),
            shape.len()
        )));
    }
    let npts = points.map_or(1, PointSet::len);
    let empty = npts == 0
        || axes
            .iter()
            .any(|a| matches!(a, Axis::Basic { sel, .. } if sel.count <= 0));
    if out_items == 0 || empty {
        return Ok(out);
    }
    // Everything must lie inside the array: a bad plan is an error, not a panic.
    for (d, ax) in axes.iter().enumerate() {
        let in_range = match ax {
            Axis::Basic { sel, .. } => {
                let (lo, hi) = sel.span();
                lo >= 0 && hi <= shape[d] && sel.step != 0
            }
            Axis::Point { slot } => match points {
                Some(p) if *slot < p.slots => {
                    (0..npts).all(|i| (0..shape[d]).contains(&p.coord(i, *slot)))
                }
                _ => false,
            },
        };
        if !in_range {
            return Err(Error::BadRequest(format!(
                "the selection lies outside the array along axis {d}"
            )));
        }
    }

    let unit = points.is_none()
        && axes
            .iter()
            .all(|a| matches!(a, Axis::Basic { sel, .. } if sel.count <= 1 || sel.step.abs() == 1));
    if unit
        && axes
            .iter()
            .all(|a| matches!(a, Axis::Basic { sel, .. } if sel.count <= 1 || sel.step == 1))
    {
        let (lo, hi): (Vec<i64>, Vec<i64>) = axes
            .iter()
            .map(|a| match a {
                Axis::Basic { sel, .. } => sel.span(),
                Axis::Point { .. } => (0, 0),
            })
            .unzip();
        reader.read_box(&lo, &hi, &mut out)?;
        return Ok(out);
    }

    let full_ranges: Vec<(i64, i64)> = axes
        .iter()
        .map(|a| match a {
            Axis::Basic { sel, .. } => (0, sel.count),
            Axis::Point { .. } => (0, 0),
        })
        .collect();
    let mut ctx = Ctx {
        axes,
        points,
        itemsize,
        buf: Vec::new(),
    };
    if unit {
        // Steps of -1: the box is exactly the result, only reordered.
        let task = Task {
            ranges: full_ranges,
            pts: Vec::new(),
        };
        return ctx.read(reader, &task, &mut out).map(|()| out);
    }

    let chunk: Vec<i64> = (0..shape.len())
        .map(|d| {
            let c = reader.chunk_shape().get(d).copied().unwrap_or(shape[d]);
            if c > 0 {
                c
            } else {
                shape[d].max(1)
            }
        })
        .collect();
    // Per basic axis, runs of positions inside one chunk.
    let runs: Vec<Vec<(i64, i64)>> = axes
        .iter()
        .enumerate()
        .map(|(d, a)| match a {
            Axis::Basic { sel, .. } => chunk_runs(sel, chunk[d]),
            Axis::Point { .. } => vec![(0, 0)],
        })
        .collect();
    // Points, grouped by the chunk cell they fall in.
    let groups: Vec<Vec<usize>> = match points {
        None => vec![Vec::new()],
        Some(p) => {
            let point_axes: Vec<(usize, usize)> = axes
                .iter()
                .enumerate()
                .filter_map(|(d, a)| match a {
                    Axis::Point { slot } => Some((d, *slot)),
                    Axis::Basic { .. } => None,
                })
                .collect();
            let cell = |i: usize| -> Vec<i64> {
                point_axes
                    .iter()
                    .map(|&(d, slot)| p.coord(i, slot) / chunk[d])
                    .collect()
            };
            let mut keyed: Vec<(Vec<i64>, usize)> = (0..npts).map(|i| (cell(i), i)).collect();
            keyed.sort_unstable();
            let mut groups: Vec<Vec<usize>> = Vec::new();
            let mut last: Option<Vec<i64>> = None;
            for (key, i) in keyed {
                match groups.last_mut() {
                    Some(g) if last.as_ref() == Some(&key) => g.push(i),
                    _ => {
                        groups.push(vec![i]);
                        last = Some(key);
                    }
                }
            }
            groups
        }
    };

    let mut pick = vec![0usize; axes.len()];
    for group in &groups {
        pick.iter_mut().for_each(|p| *p = 0);
        loop {
            let task = Task {
                ranges: pick.iter().enumerate().map(|(d, &k)| runs[d][k]).collect(),
                pts: group.clone(),
            };
            ctx.run(reader, task, &mut out)?;
            // Next combination of runs (odometer, last axis fastest).
            let mut advanced = false;
            for d in (0..axes.len()).rev() {
                pick[d] += 1;
                if pick[d] < runs[d].len() {
                    advanced = true;
                    break;
                }
                pick[d] = 0;
            }
            if !advanced {
                break;
            }
        }
    }
    Ok(out)
}

/// Index ranges of `sel` whose positions share one chunk of extent `chunk`.
fn chunk_runs(sel: &DimSel, chunk: i64) -> Vec<(i64, i64)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < sel.count {
        let c = sel.coord(i);
        let cell_start = c - c % chunk;
        let n = if sel.step > 0 {
            (cell_start + chunk - c + sel.step - 1) / sel.step
        } else {
            (c - cell_start) / -sel.step + 1
        };
        let j = sel.count.min(i + n.max(1));
        runs.push((i, j));
        i = j;
    }
    runs
}

struct Ctx<'a> {
    axes: &'a [Axis],
    points: Option<&'a PointSet>,
    itemsize: usize,
    buf: Vec<u8>,
}

impl Ctx<'_> {
    /// Reads a task, splitting it first while its box is mostly waste.
    fn run(&mut self, reader: &mut dyn BoxReader, task: Task, out: &mut [u8]) -> Result<()> {
        let mut stack = vec![task];
        while let Some(task) = stack.pop() {
            let (lo, hi) = self.task_box(&task);
            let box_items: u128 = lo.iter().zip(&hi).map(|(a, b)| (b - a) as u128).product();
            let mut sel_items: u128 = 1;
            let mut best: Option<(f64, Option<usize>)> = None; // (waste ratio, basic axis or points)
            let mut point_volume: u128 = 1;
            for (d, ax) in self.axes.iter().enumerate() {
                match ax {
                    Axis::Basic { .. } => {
                        let (i0, i1) = task.ranges[d];
                        let n = (i1 - i0) as u128;
                        sel_items *= n;
                        if n > 1 {
                            let ratio = (hi[d] - lo[d]) as f64 / n as f64;
                            if best.is_none_or(|(r, _)| ratio > r) {
                                best = Some((ratio, Some(d)));
                            }
                        }
                    }
                    Axis::Point { .. } => point_volume *= (hi[d] - lo[d]) as u128,
                }
            }
            if self.points.is_some() {
                let n = task.pts.len() as u128;
                sel_items *= n;
                if n > 1 {
                    let ratio = point_volume as f64 / n as f64;
                    if best.is_none_or(|(r, _)| ratio > r) {
                        best = Some((ratio, None));
                    }
                }
            }
            let small = box_items.saturating_mul(self.itemsize as u128) <= SMALL_READ;
            match best {
                Some((_, which)) if !small && box_items > MAX_WASTE.saturating_mul(sel_items) => {
                    let (a, b) = self.split(task, which, &lo, &hi);
                    stack.push(b);
                    stack.push(a);
                }
                _ => self.read(reader, &task, out)?,
            }
        }
        Ok(())
    }

    /// Halves a task along basic axis `which`, or its points if `None`.
    fn split(&self, task: Task, which: Option<usize>, lo: &[i64], hi: &[i64]) -> (Task, Task) {
        match which {
            Some(d) => {
                let (i0, i1) = task.ranges[d];
                let mid = i0 + (i1 - i0) / 2;
                let mut a = task.ranges.clone();
                let mut b = task.ranges;
                a[d].1 = mid;
                b[d].0 = mid;
                (
                    Task {
                        ranges: a,
                        pts: task.pts.clone(),
                    },
                    Task {
                        ranges: b,
                        pts: task.pts,
                    },
                )
            }
            None => {
                // Split the points across their widest coordinate.
                let mut widest = (0, -1);
                for (d, ax) in self.axes.iter().enumerate() {
                    if let Axis::Point { slot } = ax {
                        if hi[d] - lo[d] > widest.1 {
                            widest = (*slot, hi[d] - lo[d]);
                        }
                    }
                }
                let mut pts = task.pts;
                if let Some(p) = self.points {
                    pts.sort_unstable_by_key(|&i| p.coord(i, widest.0));
                }
                let b = pts.split_off(pts.len() / 2);
                (
                    Task {
                        ranges: task.ranges.clone(),
                        pts,
                    },
                    Task {
                        ranges: task.ranges,
                        pts: b,
                    },
                )
            }
        }
    }

    /// The source box a task covers.
    fn task_box(&self, task: &Task) -> (Vec<i64>, Vec<i64>) {
        self.axes
            .iter()
            .enumerate()
            .map(|(d, ax)| match ax {
                Axis::Basic { sel, .. } => {
                    let (i0, i1) = task.ranges[d];
                    let (a, b) = (sel.coord(i0), sel.coord(i1 - 1));
                    (a.min(b), a.max(b) + 1)
                }
                Axis::Point { slot } => {
                    let p = self.points;
                    let coords = task
                        .pts
                        .iter()
                        .filter_map(|&i| p.map(|p| p.coord(i, *slot)));
                    let (lo, hi) =
                        coords.fold((i64::MAX, i64::MIN), |(l, h), c| (l.min(c), h.max(c)));
                    if lo > hi {
                        (0, 0)
                    } else {
                        (lo, hi + 1)
                    }
                }
            })
            .unzip()
    }

    /// Reads a task's box and scatters its selected items into `out`.
    fn read(&mut self, reader: &mut dyn BoxReader, task: &Task, out: &mut [u8]) -> Result<()> {
        let isz = self.itemsize;
        let (lo, hi) = self.task_box(task);
        let extents: Vec<i64> = lo.iter().zip(&hi).map(|(a, b)| b - a).collect();
        let box_items = item_count(&extents)?;
        let len = box_items.checked_mul(isz).ok_or_else(too_large)?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.try_reserve(len).map_err(|_| too_large())?;
        buf.resize(len, 0);
        reader.read_box(&lo, &hi, &mut buf)?;
        let bstrides = c_strides(&extents)?;

        let basic: Vec<usize> = (0..self.axes.len())
            .filter(|&d| matches!(self.axes[d], Axis::Basic { .. }))
            .collect();
        let point_axes: Vec<(usize, usize)> = (0..self.axes.len())
            .filter_map(|d| match self.axes[d] {
                Axis::Point { slot } => Some((d, slot)),
                Axis::Basic { .. } => None,
            })
            .collect();
        // (source offset, output offset) of each point, in items.
        let bases: Vec<(usize, usize)> = match self.points {
            None => vec![(0, 0)],
            Some(p) => task
                .pts
                .iter()
                .map(|&i| {
                    let src = point_axes
                        .iter()
                        .map(|&(d, slot)| (p.coord(i, slot) - lo[d]) as usize * bstrides[d])
                        .sum();
                    (src, i * p.out_stride)
                })
                .collect(),
        };
        let Some((&inner, outer)) = basic.split_last() else {
            for &(s, o) in &bases {
                copy_items(out, o * isz, &buf, s * isz, isz)?;
            }
            self.buf = buf;
            return Ok(());
        };
        let Axis::Basic {
            sel: inner_sel,
            out_stride: inner_os,
        } = self.axes[inner]
        else {
            return Ok(());
        };
        let (j0, j1) = task.ranges[inner];
        let contiguous = inner + 1 == self.axes.len() && inner_sel.step == 1 && inner_os == 1;
        let mut idx: Vec<i64> = outer.iter().map(|&d| task.ranges[d].0).collect();
        for &(base_src, base_out) in &bases {
            idx.iter_mut()
                .zip(outer)
                .for_each(|(i, &d)| *i = task.ranges[d].0);
            loop {
                let mut src = base_src;
                let mut dst = base_out;
                for (&i, &d) in idx.iter().zip(outer) {
                    if let Axis::Basic { sel, out_stride } = self.axes[d] {
                        src += (sel.coord(i) - lo[d]) as usize * bstrides[d];
                        dst += i as usize * out_stride;
                    }
                }
                let first = (inner_sel.coord(j0) - lo[inner]) as usize * bstrides[inner];
                if contiguous {
                    let n = (j1 - j0) as usize;
                    copy_items(
                        out,
                        (dst + j0 as usize) * isz,
                        &buf,
                        (src + first) * isz,
                        n * isz,
                    )?;
                } else {
                    for j in j0..j1 {
                        let s = src + (inner_sel.coord(j) - lo[inner]) as usize * bstrides[inner];
                        let o = dst + j as usize * inner_os;
                        copy_items(out, o * isz, &buf, s * isz, isz)?;
                    }
                }
                // Next outer index (odometer).
                let mut k = outer.len();
                let mut done = true;
                while k > 0 {
                    k -= 1;
                    idx[k] += 1;
                    if idx[k] < task.ranges[outer[k]].1 {
                        done = false;
                        break;
                    }
                    idx[k] = task.ranges[outer[k]].0;
                }
                if done {
                    break;
                }
            }
        }
        self.buf = buf;
        Ok(())
    }
}

fn copy_items(out: &mut [u8], o: usize, buf: &[u8], s: usize, n: usize) -> Result<()> {
    match (out.get_mut(o..o + n), buf.get(s..s + n)) {
        (Some(dst), Some(src)) => {
            dst.copy_from_slice(src);
            Ok(())
        }
        _ => Err(Error::BadRequest(
            "internal error: a read fell outside its buffer".into(),
        )),
    }
}

/// What the unit tests and the `slice` fuzz target both hold a reading of a
/// selection to: an array whose items count their own C-order positions,
/// read item by item.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod check {
    use super::{c_strides, Selection};

    /// Little-endian `u32` items.
    pub(crate) fn as_u32(bytes: &[u8]) -> Vec<u32> {
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// The positions a selection of an array of `shape` names, in C order
    /// of its result.
    pub(crate) fn naive(shape: &[i64], sel: &Selection) -> Vec<u32> {
        let strides = c_strides(shape).unwrap_or_default();
        let counts: Vec<i64> = sel.dims.iter().map(|d| d.count).collect();
        let total: i64 = counts.iter().product();
        (0..total)
            .map(|k| {
                let mut rem = k;
                let mut pos = 0;
                for d in (0..counts.len()).rev() {
                    pos += sel.dims[d].coord(rem % counts[d]) as usize * strides[d];
                    rem /= counts[d];
                }
                pos as u32
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An in-memory C-ordered array that records the boxes read from it.
    pub(crate) struct MemReader {
        pub shape: Vec<i64>,
        pub chunks: Vec<i64>,
        pub itemsize: usize,
        pub data: Vec<u8>,
        pub reads: Vec<(Vec<i64>, Vec<i64>)>,
    }

    impl MemReader {
        /// Items are u32 counters 0, 1, 2, … (so values name their position).
        pub(crate) fn counting(shape: &[i64], chunks: &[i64]) -> MemReader {
            let n: i64 = shape.iter().product();
            let data = (0..n as u32).flat_map(|v| v.to_le_bytes()).collect();
            MemReader {
                shape: shape.to_vec(),
                chunks: chunks.to_vec(),
                itemsize: 4,
                data,
                reads: Vec::new(),
            }
        }

        pub(crate) fn items_read(&self) -> i64 {
            self.reads
                .iter()
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| y - x).product::<i64>())
                .sum()
        }
    }

    impl BoxReader for MemReader {
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
            let ext: Vec<i64> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
            let n: i64 = ext.iter().product();
            assert_eq!(out.len(), n as usize * self.itemsize);
            assert!(start
                .iter()
                .zip(stop)
                .zip(&self.shape)
                .all(|((a, b), s)| 0 <= *a && a <= b && b <= s));
            let strides = c_strides(&self.shape).unwrap();
            for k in 0..n {
                let mut rem = k;
                let mut src = 0;
                for d in (0..ext.len()).rev() {
                    src += (start[d] + rem % ext[d]) as usize * strides[d];
                    rem /= ext[d];
                }
                let isz = self.itemsize;
                out[k as usize * isz..][..isz].copy_from_slice(&self.data[src * isz..][..isz]);
            }
            self.reads.push((start.to_vec(), stop.to_vec()));
            Ok(())
        }
    }

    pub(crate) use super::check::as_u32;
    use super::check::naive;

    fn fetch(shape: &[i64], chunks: &[i64], key: &str) -> (Vec<i64>, Vec<u32>) {
        let mut r = MemReader::counting(shape, chunks);
        let sel = match parse_slice(key).unwrap() {
            Some(spec) => spec.resolve(shape).unwrap(),
            None => Selection::full(shape),
        };
        let out = read_selection(&mut r, &sel).unwrap();
        (sel.out_shape(), as_u32(&out))
    }

    #[test]
    fn parse_grammar() {
        assert_eq!(parse_slice("").unwrap(), None);
        let s = parse_slice("5").unwrap().unwrap();
        assert_eq!(s.items, [SliceItem::Index(5)]);
        assert!(!s.is_tuple);
        let s = parse_slice(" 3 : 7 , :, -2::-1, ..., 1_0, +5")
            .unwrap()
            .unwrap();
        assert!(s.is_tuple);
        assert_eq!(
            s.items,
            [
                SliceItem::Range {
                    start: Some(3),
                    stop: Some(7),
                    step: None
                },
                SliceItem::Range {
                    start: None,
                    stop: None,
                    step: None
                },
                SliceItem::Range {
                    start: Some(-2),
                    stop: None,
                    step: Some(-1)
                },
                SliceItem::Ellipsis,
                SliceItem::Index(10),
                SliceItem::Index(5),
            ]
        );
        assert_eq!(s.to_string(), "3:7, :, -2::-1, ..., 10, 5");
        let s = parse_slice("99999999999999999999999:").unwrap().unwrap();
        assert_eq!(
            s.items,
            [SliceItem::Range {
                start: Some(i64::MAX),
                stop: None,
                step: None
            }]
        );
    }

    /// Found by the `slice` fuzz target: a step beyond `i64` (saturated to
    /// `i64::MIN`) was negated when the selection was split by chunks.
    #[test]
    fn steps_beyond_i64_select_one_item() {
        let huge = format!("::-{}, 1::4", "1".repeat(50));
        assert_eq!(
            fetch(&[10, 12], &[3, 5], &huge),
            (vec![1, 3], vec![109, 113, 117])
        );
        let (shape, items) = fetch(&[10], &[3], &format!("2::{}", "9".repeat(30)));
        assert_eq!((shape, items), (vec![1], vec![2]));
        let d = DimSel::range(None, None, Some(i64::MIN), 10).unwrap();
        assert_eq!((d.start, d.step, d.count), (9, -1, 1));
    }

    #[test]
    fn parse_errors_match_the_reference() {
        for (input, detail) in [
            ("abc", "slice_ is not a slice: invalid literal for int() with base 10: 'abc'"),
            (
                "1:2:3:4",
                "slice_ is not a slice: '1:2:3:4' is not a slice: a slice has a start, a stop and a step",
            ),
            ("1,", "slice_ is not a slice: invalid literal for int() with base 10: ''"),
            (" ", "slice_ is not a slice: invalid literal for int() with base 10: ' '"),
            ("1:x", "slice_ is not a slice: invalid literal for int() with base 10: 'x'"),
            ("1__0", "slice_ is not a slice: invalid literal for int() with base 10: '1__0'"),
            ("_1", "slice_ is not a slice: invalid literal for int() with base 10: '_1'"),
            ("1.5", "slice_ is not a slice: invalid literal for int() with base 10: '1.5'"),
            ("a:b:c:d", "slice_ is not a slice: invalid literal for int() with base 10: 'a'"),
        ] {
            let err = parse_slice(input).unwrap_err();
            assert!(matches!(err, Error::BadSlice { .. }), "{input}");
            assert_eq!(err.to_string(), detail, "{input}");
        }
    }

    #[test]
    fn resolve_errors() {
        let resolve = |s: &str, shape: &[i64]| {
            parse_slice(s)
                .unwrap()
                .unwrap()
                .resolve(shape)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            resolve("2000", &[1000]),
            "index 2000 is out of bounds for axis 0 with size 1000"
        );
        assert_eq!(
            resolve("-1001", &[1000]),
            "index -1001 is out of bounds for axis 0 with size 1000"
        );
        assert_eq!(
            resolve("1, 30", &[20, 30]),
            "index 30 is out of bounds for axis 1 with size 30"
        );
        assert_eq!(
            resolve("1,2", &[1000]),
            "too many indices for array: array is 1-dimensional, but 2 were indexed"
        );
        assert_eq!(
            resolve(":", &[]),
            "too many indices for array: array is 0-dimensional, but 1 were indexed"
        );
        assert_eq!(
            resolve("::0", &[10]),
            "slice_ is not a slice: slice step cannot be zero"
        );
        assert_eq!(
            resolve("..., 1, ...", &[10, 10]),
            "slice_ is not a slice: an index can only have a single ellipsis ('...')"
        );
        assert!(matches!(
            parse_slice("5").unwrap().unwrap().resolve(&[3]),
            Err(Error::OutOfBounds(_))
        ));
    }

    #[test]
    fn results_match_numpy() {
        // Expected values printed by NumPy for np.arange(600).reshape(20, 30)
        // and np.arange(1000) with the same keys.
        let (shape, v) = fetch(&[20, 30], &[5, 7], "::5, ::7");
        assert_eq!(shape, [4, 5]);
        assert_eq!(
            v,
            [
                0, 7, 14, 21, 28, 150, 157, 164, 171, 178, 300, 307, 314, 321, 328, 450, 457, 464,
                471, 478
            ]
        );
        let (shape, v) = fetch(&[20, 30], &[5, 7], ":, 3");
        assert_eq!(shape, [20]);
        assert_eq!(v, (0..20).map(|i| 3 + 30 * i).collect::<Vec<_>>());
        let (shape, v) = fetch(&[1000], &[100], "0:20:7");
        assert_eq!((shape, v), (vec![3], vec![0, 7, 14]));
        let (shape, v) = fetch(&[1000], &[100], "-5:");
        assert_eq!((shape, v), (vec![5], vec![995, 996, 997, 998, 999]));
        let (shape, v) = fetch(&[1000], &[100], "990:2000");
        assert_eq!((shape, v), (vec![10], (990..1000).collect()));
        let (shape, v) = fetch(&[1000], &[100], "-1");
        assert_eq!((shape, v), (vec![], vec![999]));
        let (shape, v) = fetch(&[1000], &[100], "995:2000:2");
        assert_eq!((shape, v), (vec![3], vec![995, 997, 999]));
        let (shape, v) = fetch(&[1000], &[100], "::-1");
        assert_eq!(shape, [1000]);
        assert_eq!(&v[..3], [999, 998, 997]);
        let (shape, v) = fetch(&[1000], &[100], "10:0:-2");
        assert_eq!((shape, v), (vec![5], vec![10, 8, 6, 4, 2]));
        let (shape, v) = fetch(&[1000], &[100], "-2000:5");
        assert_eq!((shape, v), (vec![5], vec![0, 1, 2, 3, 4]));
        let (shape, v) = fetch(&[4, 5, 6], &[2, 3, 4], "1, ..., 2");
        assert_eq!((shape, v), (vec![5], vec![32, 38, 44, 50, 56]));
        let (shape, v) = fetch(&[20, 64, 48], &[5, 10, 10], "5");
        assert_eq!(shape, [64, 48]);
        assert_eq!(v[0], 5 * 64 * 48);
    }

    #[test]
    fn empty_and_zero_dim() {
        for key in ["0:0", "2:0", "5:3", "-1:0", "0:0:-1"] {
            let (shape, v) = fetch(&[1000], &[100], key);
            assert_eq!(shape, [0], "{key}");
            assert!(v.is_empty());
        }
        let (shape, v) = fetch(&[20, 30], &[5, 7], "3:3, ::2");
        assert_eq!((shape, v), (vec![0, 15], vec![]));
        // 0-d: the whole selection is one item.
        let mut r = MemReader::counting(&[], &[]);
        let out = read_selection(&mut r, &Selection::full(&[])).unwrap();
        assert_eq!(as_u32(&out), [0]);
        let sel = parse_slice("...").unwrap().unwrap().resolve(&[]).unwrap();
        assert_eq!(sel.out_shape(), Vec::<i64>::new());
        // An array with an empty dimension.
        let (shape, v) = fetch(&[0, 5], &[0, 5], "");
        assert_eq!((shape, v), (vec![0, 5], vec![]));
    }

    #[test]
    fn selection_helpers() {
        let shape = [10, 20];
        let sel = parse_slice(":10, :20")
            .unwrap()
            .unwrap()
            .resolve(&shape)
            .unwrap();
        assert!(sel.is_full(&shape));
        assert!(Selection::full(&shape).is_full(&shape));
        let sel = parse_slice(":").unwrap().unwrap().resolve(&shape).unwrap();
        assert!(sel.is_full(&shape));
        let sel = parse_slice("1:, 3")
            .unwrap()
            .unwrap()
            .resolve(&shape)
            .unwrap();
        assert!(!sel.is_full(&shape));
        assert_eq!(sel.out_shape(), [9]);
        assert_eq!(sel.bounding_box(), (vec![1, 3], vec![10, 4]));
        let sel = parse_slice("8:2:-3, ::5")
            .unwrap()
            .unwrap()
            .resolve(&shape)
            .unwrap();
        assert_eq!(sel.out_shape(), [2, 4]);
        assert_eq!(sel.bounding_box(), (vec![5, 0], vec![9, 16]));
    }

    #[test]
    fn unit_steps_read_exactly_the_box() {
        let mut r = MemReader::counting(&[100, 100], &[10, 10]);
        let sel = parse_slice("5:50, 7")
            .unwrap()
            .unwrap()
            .resolve(&[100, 100])
            .unwrap();
        let out = read_selection(&mut r, &sel).unwrap();
        assert_eq!(r.reads, [(vec![5, 7], vec![50, 8])]);
        assert_eq!(
            as_u32(&out),
            (5..50).map(|i| i * 100 + 7).collect::<Vec<_>>()
        );
    }

    #[test]
    fn large_steps_do_not_read_the_bounding_box() {
        // One chunk is the whole array: the plan must still not read it all.
        let mut r = MemReader::counting(&[1_000_000], &[1_000_000]);
        let sel = parse_slice("::100000")
            .unwrap()
            .unwrap()
            .resolve(&[1_000_000])
            .unwrap();
        let out = read_selection(&mut r, &sel).unwrap();
        assert_eq!(
            as_u32(&out),
            (0..10).map(|i| i * 100_000).collect::<Vec<_>>()
        );
        assert!(r.items_read() <= 100, "read {} items", r.items_read());

        let mut r = MemReader::counting(&[2000, 2000], &[100, 100]);
        let sel = parse_slice("::500, ::700")
            .unwrap()
            .unwrap()
            .resolve(&[2000, 2000])
            .unwrap();
        let out = read_selection(&mut r, &sel).unwrap();
        assert_eq!(sel.out_shape(), [4, 3]);
        assert_eq!(as_u32(&out), naive(&[2000, 2000], &sel));
        assert_eq!(r.items_read(), 12);

        // Small steps read whole chunk boxes, a bounded overhead.
        let mut r = MemReader::counting(&[1000, 1000], &[100, 100]);
        let sel = parse_slice("::2, ::2")
            .unwrap()
            .unwrap()
            .resolve(&[1000, 1000])
            .unwrap();
        let out = read_selection(&mut r, &sel).unwrap();
        assert_eq!(as_u32(&out), naive(&[1000, 1000], &sel));
        assert!(r.items_read() <= 4 * 250_000);
        assert!(r.reads.len() <= 100);
    }

    #[test]
    fn random_selections_match_naive_reading() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = |n: i64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as i64
        };
        for _ in 0..400 {
            let ndim = rnd(4) as usize;
            let shape: Vec<i64> = (0..ndim).map(|_| rnd(13)).collect();
            let chunks: Vec<i64> = shape.iter().map(|&n| 1 + rnd(n.max(1))).collect();
            let mut items = Vec::new();
            for &n in &shape {
                let bound = |r: &mut dyn FnMut(i64) -> i64| {
                    if r(4) == 0 {
                        String::new()
                    } else {
                        (r(2 * n + 5) - n - 2).to_string()
                    }
                };
                let item = match rnd(5) {
                    0 if n > 0 => (rnd(2 * n) - n).to_string(),
                    1 => ":".to_string(),
                    _ => {
                        let step = match rnd(6) {
                            0 => String::new(),
                            1 => "-1".into(),
                            2 => format!("-{}", 1 + rnd(5)),
                            _ => (1 + rnd(6)).to_string(),
                        };
                        format!("{}:{}:{}", bound(&mut rnd), bound(&mut rnd), step)
                    }
                };
                items.push(item);
            }
            let keep = rnd(ndim as i64 + 1) as usize;
            let key = items[..keep].join(", ");
            let mut r = MemReader::counting(&shape, &chunks);
            let sel = match parse_slice(&key).unwrap() {
                Some(spec) => spec.resolve(&shape).unwrap(),
                None => Selection::full(&shape),
            };
            let out = read_selection(&mut r, &sel).unwrap();
            assert_eq!(
                as_u32(&out),
                naive(&shape, &sel),
                "{key} on {shape:?} / {chunks:?}"
            );
            assert_eq!(out.len(), item_count(&sel.out_shape()).unwrap() * 4);
        }
    }
}
