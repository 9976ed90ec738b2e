//! The `slice_` grammar of Caterva2's fetch API, resolved with NumPy's
//! rules, and reading the selected items through a [`BoxReader`].
//!
//! Why a reader trait: the same selection code serves stored arrays, HDF5
//! datasets and in-memory results, and it only ever asks for boxes that
//! intersect one chunk-grid cell, so a strided selection never decompresses
//! the whole bounding box.

use crate::error::{Error, Result};

/// One comma-separated item of `slice_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SliceItem {
    Index(i64),
    Range {
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    },
    Ellipsis,
}

/// A parsed `slice_`: its items and whether it was a tuple (matters for the
/// "whole dataset" rule: only a tuple covering everything is served verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceSpec {
    pub items: Vec<SliceItem>,
    pub is_tuple: bool,
}

/// Parses `slice_`; an empty string means "no selection" (`None`).
pub fn parse_slice(s: &str) -> Result<Option<SliceSpec>> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = |reason: String| Error::BadSlice {
        input: s.to_string(),
        reason,
    };
    let trailing_comma = t.ends_with(',');
    let body = t.strip_suffix(',').unwrap_or(t);
    let mut items = Vec::new();
    for raw in body.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            return Err(bad(format!("empty item in {s:?}")));
        }
        if item == "..." {
            items.push(SliceItem::Ellipsis);
            continue;
        }
        if item.contains(':') {
            let parts: Vec<&str> = item.split(':').collect();
            if parts.len() > 3 {
                return Err(bad(format!("{item:?} has more than two colons")));
            }
            let num = |p: &str| -> Result<Option<i64>> {
                let p = p.trim();
                if p.is_empty() || p == "None" {
                    Ok(None)
                } else {
                    parse_int(p)
                        .map(Some)
                        .ok_or_else(|| bad(format!("{p:?} is not an integer")))
                }
            };
            items.push(SliceItem::Range {
                start: num(parts[0])?,
                stop: num(parts[1])?,
                step: match parts.get(2) {
                    Some(p) => num(p)?,
                    None => None,
                },
            });
        } else {
            let i = parse_int(item).ok_or_else(|| bad(format!("{item:?} is not an integer")))?;
            items.push(SliceItem::Index(i));
        }
    }
    Ok(Some(SliceSpec {
        is_tuple: items.len() > 1 || trailing_comma,
        items,
    }))
}

fn parse_int(s: &str) -> Option<i64> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    digits.replace('_', "").parse().ok()
}

/// The selection along one dimension, normalised: items
/// `start, start+step, …` (`count` of them). `keep_dim` is false for an
/// integer index, which drops the dimension from the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimSel {
    pub start: i64,
    pub step: i64,
    pub count: i64,
    pub keep_dim: bool,
}

impl DimSel {
    fn full(size: i64) -> DimSel {
        DimSel {
            start: 0,
            step: 1,
            count: size,
            keep_dim: true,
        }
    }

    /// The k-th selected index.
    pub fn at(&self, k: i64) -> i64 {
        self.start + k * self.step
    }

    /// Smallest and one-past-largest selected index (count must be > 0).
    pub fn span(&self) -> (i64, i64) {
        let last = self.at(self.count - 1);
        (self.start.min(last), self.start.max(last) + 1)
    }
}

/// A resolved selection: one [`DimSel`] per array dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub dims: Vec<DimSel>,
}

impl SliceSpec {
    /// Applies NumPy's indexing rules against `shape`.
    pub fn resolve(&self, shape: &[i64]) -> Result<Selection> {
        let ndim = shape.len();
        let n_ellipsis = self
            .items
            .iter()
            .filter(|i| **i == SliceItem::Ellipsis)
            .count();
        if n_ellipsis > 1 {
            return Err(Error::BadSlice {
                input: format!("{:?}", self.items),
                reason: "an index can only have a single ellipsis ('...')".into(),
            });
        }
        let n_real = self.items.len() - n_ellipsis;
        if n_real > ndim {
            return Err(Error::OutOfBounds(format!(
                "too many indices for array: array is {ndim}-dimensional, but {n_real} were indexed"
            )));
        }
        let mut expanded: Vec<&SliceItem> = Vec::with_capacity(ndim);
        let full = SliceItem::Range {
            start: None,
            stop: None,
            step: None,
        };
        for item in &self.items {
            if *item == SliceItem::Ellipsis {
                for _ in 0..(ndim - n_real) {
                    expanded.push(&full);
                }
            } else {
                expanded.push(item);
            }
        }
        while expanded.len() < ndim {
            expanded.push(&full);
        }
        let mut dims = Vec::with_capacity(ndim);
        for (axis, (item, &size)) in expanded.iter().zip(shape).enumerate() {
            dims.push(match item {
                SliceItem::Index(i) => {
                    let j = if *i < 0 { i + size } else { *i };
                    if j < 0 || j >= size {
                        return Err(Error::OutOfBounds(format!(
                            "index {i} is out of bounds for axis {axis} with size {size}"
                        )));
                    }
                    DimSel {
                        start: j,
                        step: 1,
                        count: 1,
                        keep_dim: false,
                    }
                }
                SliceItem::Range { start, stop, step } => {
                    resolve_range(*start, *stop, step.unwrap_or(1), size)?
                }
                SliceItem::Ellipsis => DimSel::full(size),
            });
        }
        Ok(Selection { dims })
    }
}

/// Python's `slice.indices(size)` followed by the item count.
fn resolve_range(start: Option<i64>, stop: Option<i64>, step: i64, size: i64) -> Result<DimSel> {
    if step == 0 {
        return Err(Error::BadSlice {
            input: format!("{start:?}:{stop:?}:0"),
            reason: "slice step cannot be zero".into(),
        });
    }
    let (lower, upper) = if step > 0 { (0, size) } else { (-1, size - 1) };
    let clip = |v: i64| {
        if v < 0 {
            (v + size).max(lower)
        } else {
            v.min(upper)
        }
    };
    let a = start.map_or(if step > 0 { lower } else { upper }, clip);
    let b = stop.map_or(if step > 0 { upper } else { lower }, clip);
    let count = if step > 0 {
        if b > a {
            (b - a + step - 1) / step
        } else {
            0
        }
    } else if a > b {
        (a - b + (-step) - 1) / (-step)
    } else {
        0
    };
    Ok(DimSel {
        start: a,
        step,
        count,
        keep_dim: true,
    })
}

impl Selection {
    /// Everything in `shape`.
    pub fn full(shape: &[i64]) -> Selection {
        Selection {
            dims: shape.iter().map(|&s| DimSel::full(s)).collect(),
        }
    }

    /// The shape of the result (integer-indexed dimensions dropped).
    pub fn out_shape(&self) -> Vec<i64> {
        self.dims
            .iter()
            .filter(|d| d.keep_dim)
            .map(|d| d.count)
            .collect()
    }

    /// Whether this selects the whole array, in order, keeping every dimension.
    pub fn is_full(&self, shape: &[i64]) -> bool {
        self.dims.len() == shape.len()
            && self
                .dims
                .iter()
                .zip(shape)
                .all(|(d, &s)| d.keep_dim && d.start == 0 && d.step == 1 && d.count == s)
    }

    /// Start and (exclusive) stop of the box holding every selected item.
    pub fn bounding_box(&self) -> (Vec<i64>, Vec<i64>) {
        self.dims
            .iter()
            .map(|d| {
                if d.count == 0 {
                    (d.start, d.start)
                } else {
                    d.span()
                }
            })
            .unzip()
    }

    fn nitems(&self) -> i64 {
        self.dims.iter().map(|d| d.count).product()
    }
}

/// Something that can read a C-ordered hyper-rectangle of fixed-size items.
pub trait BoxReader {
    fn shape(&self) -> &[i64];
    /// Grid to group reads by (a chunk shape; may equal the shape).
    fn chunk_shape(&self) -> &[i64];
    fn itemsize(&self) -> usize;
    /// Fills `out` (exactly `prod(stop - start) * itemsize` bytes) with the box.
    fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()>;
}

/// One run of consecutive selected positions that fall in one grid cell.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Output positions `k0..k1`.
    k0: i64,
    k1: i64,
    /// Source box along this dimension.
    lo: i64,
    hi: i64,
}

fn runs(d: &DimSel, chunk: i64) -> Vec<Run> {
    let chunk = chunk.max(1);
    let mut out: Vec<Run> = Vec::new();
    for k in 0..d.count {
        let i = d.at(k);
        match out.last_mut() {
            Some(r) if r.lo.div_euclid(chunk) == i.div_euclid(chunk) => {
                r.k1 = k + 1;
                r.lo = r.lo.min(i);
                r.hi = r.hi.max(i + 1);
            }
            _ => out.push(Run {
                k0: k,
                k1: k + 1,
                lo: i,
                hi: i + 1,
            }),
        }
    }
    out
}

/// Reads the selected items in C order (shape [`Selection::out_shape`]).
///
/// Unit-step selections are one box read. Strided selections are read one
/// chunk-grid cell at a time, each read covering only the selected span
/// inside that cell, then the selected items are picked out.
pub fn read_selection(reader: &mut dyn BoxReader, sel: &Selection) -> Result<Vec<u8>> {
    let itemsize = reader.itemsize();
    let nd = sel.dims.len();
    let total = usize::try_from(sel.nitems()).unwrap_or(0);
    let mut out = vec![0u8; total * itemsize];
    if total == 0 {
        return Ok(out);
    }
    if nd == 0 {
        reader.read_box(&[], &[], &mut out)?;
        return Ok(out);
    }
    if sel.dims.iter().all(|d| d.step == 1) {
        let (start, stop) = sel.bounding_box();
        reader.read_box(&start, &stop, &mut out)?;
        return Ok(out);
    }
    let chunk: Vec<i64> = reader.chunk_shape().to_vec();
    let per_dim: Vec<Vec<Run>> = sel
        .dims
        .iter()
        .enumerate()
        .map(|(i, d)| runs(d, chunk.get(i).copied().unwrap_or(1)))
        .collect();
    let counts: Vec<i64> = sel.dims.iter().map(|d| d.count).collect();
    let mut out_strides = vec![1i64; nd];
    for i in (0..nd - 1).rev() {
        out_strides[i] = out_strides[i + 1] * counts[i + 1];
    }
    let mut which = vec![0usize; nd];
    let mut buf = Vec::new();
    loop {
        let cell: Vec<Run> = (0..nd).map(|i| per_dim[i][which[i]]).collect();
        let start: Vec<i64> = cell.iter().map(|r| r.lo).collect();
        let stop: Vec<i64> = cell.iter().map(|r| r.hi).collect();
        let box_shape: Vec<i64> = cell.iter().map(|r| r.hi - r.lo).collect();
        let n: i64 = box_shape.iter().product();
        buf.resize(n as usize * itemsize, 0);
        reader.read_box(&start, &stop, &mut buf)?;
        let mut box_strides = vec![1i64; nd];
        for i in (0..nd - 1).rev() {
            box_strides[i] = box_strides[i + 1] * box_shape[i + 1];
        }
        // Copy every selected item of this cell.
        let mut k: Vec<i64> = cell.iter().map(|r| r.k0).collect();
        loop {
            let mut src = 0i64;
            let mut dst = 0i64;
            for i in 0..nd {
                src += (sel.dims[i].at(k[i]) - cell[i].lo) * box_strides[i];
                dst += k[i] * out_strides[i];
            }
            let (src, dst) = (src as usize * itemsize, dst as usize * itemsize);
            out[dst..dst + itemsize].copy_from_slice(&buf[src..src + itemsize]);
            let mut d = nd;
            loop {
                if d == 0 {
                    break;
                }
                d -= 1;
                k[d] += 1;
                if k[d] < cell[d].k1 {
                    break;
                }
                k[d] = cell[d].k0;
                if d == 0 {
                    d = usize::MAX;
                    break;
                }
            }
            if d == usize::MAX {
                break;
            }
        }
        // Next cell.
        let mut d = nd;
        loop {
            if d == 0 {
                return Ok(out);
            }
            d -= 1;
            which[d] += 1;
            if which[d] < per_dim[d].len() {
                break;
            }
            which[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::MemReader;

    fn sel(s: &str, shape: &[i64]) -> Result<Selection> {
        parse_slice(s)?.expect("non-empty").resolve(shape)
    }

    /// A naive reference: compute every selected flat index directly.
    fn naive(data: &[i64], shape: &[i64], sel: &Selection) -> Vec<i64> {
        let nd = shape.len();
        let mut strides = vec![1i64; nd];
        for i in (0..nd.saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        let mut out = Vec::new();
        let counts: Vec<i64> = sel.dims.iter().map(|d| d.count).collect();
        if counts.contains(&0) {
            return out;
        }
        let mut k = vec![0i64; nd];
        loop {
            let flat: i64 = (0..nd).map(|i| sel.dims[i].at(k[i]) * strides[i]).sum();
            out.push(data[flat as usize]);
            let mut d = nd;
            loop {
                if d == 0 {
                    return out;
                }
                d -= 1;
                k[d] += 1;
                if k[d] < counts[d] {
                    break;
                }
                k[d] = 0;
            }
        }
    }

    struct Chunked<'a> {
        mem: MemReader<'a>,
        chunks: Vec<i64>,
        reads: usize,
    }
    impl BoxReader for Chunked<'_> {
        fn shape(&self) -> &[i64] {
            self.mem.shape()
        }
        fn chunk_shape(&self) -> &[i64] {
            &self.chunks
        }
        fn itemsize(&self) -> usize {
            8
        }
        fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()> {
            self.reads += 1;
            self.mem.read_box(start, stop, out)
        }
    }

    fn check(key: &str, shape: &[i64], chunks: &[i64]) {
        let n: i64 = shape.iter().product();
        let data: Vec<i64> = (0..n).collect();
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let s = sel(key, shape).unwrap();
        let mut r = Chunked {
            mem: MemReader::new(&bytes, shape.to_vec(), 8),
            chunks: chunks.to_vec(),
            reads: 0,
        };
        let got = read_selection(&mut r, &s).unwrap();
        let got: Vec<i64> = got
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(got, naive(&data, shape, &s), "key {key}");
    }

    #[test]
    fn parses_items_and_tuples() {
        let s = parse_slice("1:3, 2:5").unwrap().unwrap();
        assert!(s.is_tuple);
        assert_eq!(s.items.len(), 2);
        let s = parse_slice(" 5 ").unwrap().unwrap();
        assert!(!s.is_tuple);
        assert_eq!(s.items, [SliceItem::Index(5)]);
        assert!(parse_slice("5,").unwrap().unwrap().is_tuple);
        assert_eq!(parse_slice("").unwrap(), None);
        let s = parse_slice("::-2").unwrap().unwrap();
        assert_eq!(
            s.items,
            [SliceItem::Range {
                start: None,
                stop: None,
                step: Some(-2)
            }]
        );
    }

    #[test]
    fn malformed_slices_say_not_a_slice() {
        for bad in ["1:2:3:4", "abc", "1,,2", "1.5"] {
            let e = parse_slice(bad).unwrap_err().to_string();
            assert!(e.contains("not a slice"), "{bad}: {e}");
        }
    }

    #[test]
    fn numpy_rules() {
        let s = sel("5", &[20, 64, 48]).unwrap();
        assert_eq!(s.out_shape(), [64, 48]);
        assert_eq!(sel("5", &[10]).unwrap().out_shape(), Vec::<i64>::new());
        assert_eq!(sel("0:0", &[10]).unwrap().out_shape(), [0]);
        assert_eq!(sel("2:0", &[10]).unwrap().out_shape(), [0]);
        assert_eq!(sel("-3:", &[10]).unwrap().dims[0].start, 7);
        assert_eq!(sel("..., 1", &[3, 4, 5]).unwrap().out_shape(), [3, 4]);
        assert_eq!(sel("::3", &[10]).unwrap().out_shape(), [4]);
        assert_eq!(sel("::-1", &[10]).unwrap().dims[0].start, 9);
        let e = sel("2000", &[1000]).unwrap_err().to_string();
        assert_eq!(e, "index 2000 is out of bounds for axis 0 with size 1000");
        assert!(sel("1,2", &[5]).is_err());
        assert!(sel("::0", &[5]).is_err());
    }

    #[test]
    fn whole_detection() {
        let shape = [10, 20];
        assert!(sel(":10, :20", &shape).unwrap().is_full(&shape));
        assert!(sel(":, :", &shape).unwrap().is_full(&shape));
        assert!(!sel("1:, :", &shape).unwrap().is_full(&shape));
    }

    #[test]
    fn reads_match_a_naive_reference() {
        let shape = [7, 9, 11];
        for key in [
            "1:5, 2:7, 3:10",
            "::2, ::3, ::4",
            "::-1, 1:8:3, ::-5",
            "3, ::2, -1",
            "..., 4",
            "6:1:-2",
            "0:0, :, :",
            "::100, ::100, ::100",
        ] {
            check(key, &shape, &[3, 4, 5]);
            check(key, &shape, &[7, 9, 11]);
            check(key, &shape, &[1, 1, 1]);
        }
    }

    #[test]
    fn strided_reads_stay_inside_cells() {
        let shape = [1000i64];
        let data: Vec<u8> = (0..1000i64).flat_map(|v| v.to_le_bytes()).collect();
        let s = sel("::500", &shape).unwrap();
        let mut r = Chunked {
            mem: MemReader::new(&data, shape.to_vec(), 8),
            chunks: vec![100],
            reads: 0,
        };
        let out = read_selection(&mut r, &s).unwrap();
        assert_eq!(out.len(), 16);
        assert_eq!(r.reads, 2);
    }
}
