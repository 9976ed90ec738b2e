//! Entry points for the fuzz targets in `fuzz/` (compiled with the `fuzzing`
//! feature only, so the normal build's public surface stays what other crates
//! use).
//!
//! Each function runs one parser of what a client sends the way a request
//! does, then checks what it made against what it must be: a wrong answer
//! panics (the fuzzer reports it), a refused input is an `Err`. Reads go
//! through a synthetic array whose items are their own C-order positions, so
//! the check needs no data.

use crate::dtype::DType;
use crate::filter::RowFilter;
use crate::indices::{parse_indices, read_indices};
use crate::selection::check::{as_u32, naive};
use crate::selection::{c_strides, parse_slice, read_selection, BoxReader};
use crate::Result;

/// Most items of a synthetic array read through; larger shapes are only
/// parsed and resolved.
const MAX_READ_ITEMS: i64 = 1 << 16;

/// A C-ordered array of `u32` items, each its own linear position, read by
/// boxes as the dataset readers are (checking that every box asked for lies
/// inside the array).
struct Counting {
    shape: Vec<i64>,
    chunks: Vec<i64>,
    strides: Vec<usize>,
}

impl Counting {
    fn new(shape: &[i64], chunks: &[i64]) -> Result<Counting> {
        Ok(Counting {
            shape: shape.to_vec(),
            chunks: chunks.to_vec(),
            strides: c_strides(shape)?,
        })
    }
}

impl BoxReader for Counting {
    fn shape(&self) -> &[i64] {
        &self.shape
    }
    fn chunk_shape(&self) -> &[i64] {
        &self.chunks
    }
    fn itemsize(&self) -> usize {
        4
    }
    fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()> {
        assert_eq!(start.len(), self.shape.len(), "box of another rank");
        assert_eq!(stop.len(), self.shape.len(), "box of another rank");
        let inside = start
            .iter()
            .zip(stop)
            .zip(&self.shape)
            .all(|((&a, &b), &n)| 0 <= a && a <= b && b <= n);
        assert!(inside, "box {start:?}..{stop:?} outside {:?}", self.shape);
        let ext: Vec<i64> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
        let n: i64 = ext.iter().product();
        assert_eq!(out.len() as i64, n * 4, "buffer of another size");
        for (k, item) in out.chunks_exact_mut(4).enumerate() {
            let mut rem = k as i64;
            let mut pos = 0;
            for d in (0..ext.len()).rev() {
                pos += (start[d] + rem % ext[d]) as usize * self.strides[d];
                rem /= ext[d];
            }
            item.copy_from_slice(&(pos as u32).to_le_bytes());
        }
        Ok(())
    }
}

fn small(shape: &[i64]) -> bool {
    shape.iter().all(|&n| n >= 0)
        && shape
            .iter()
            .try_fold(1i64, |a, &n| a.checked_mul(n))
            .is_some_and(|n| n <= MAX_READ_ITEMS)
}

/// A `slice_` value for an array of `shape` stored in `chunks`: parsed,
/// resolved, and (for a small array) read and checked item by item.
pub fn slice(text: &str, shape: &[i64], chunks: &[i64]) -> Result<()> {
    let Some(spec) = parse_slice(text)? else {
        return Ok(());
    };
    let sel = spec.resolve(shape)?;
    assert_eq!(sel.dims.len(), shape.len(), "one DimSel per dimension");
    for (d, &n) in sel.dims.iter().zip(shape) {
        assert!(d.count >= 0 && d.step != 0, "{d:?}");
        if d.count > 0 {
            let (a, b) = (d.coord(0), d.coord(d.count - 1));
            assert!((0..n).contains(&a) && (0..n).contains(&b), "{d:?} of {n}");
        }
    }
    let out_shape = sel.out_shape();
    let (lo, hi) = sel.bounding_box();
    assert!(lo.iter().zip(&hi).all(|(a, b)| a <= b));
    if !small(shape) || chunks.len() != shape.len() || chunks.iter().any(|&c| c <= 0) {
        return Ok(());
    }
    let mut reader = Counting::new(shape, chunks)?;
    let got = read_selection(&mut reader, &sel)?;
    let items: i64 = out_shape.iter().product();
    assert_eq!(got.len() as i64, items * 4, "result of another size");
    assert_eq!(as_u32(&got), naive(shape, &sel), "wrong items for {text:?}");
    Ok(())
}

/// An `indices` body for an array of `shape` stored in `chunks`: parsed and
/// (for a small array) read, every item checked to be a position of it.
pub fn indices(text: &str, shape: &[i64], chunks: &[i64]) -> Result<()> {
    let idx = parse_indices(text, shape)?;
    let out_shape = idx.out_shape();
    assert!(out_shape.iter().all(|&n| n >= 0), "{out_shape:?}");
    if !small(shape)
        || !small(&out_shape)
        || chunks.len() != shape.len()
        || chunks.iter().any(|&c| c <= 0)
    {
        return Ok(());
    }
    let mut reader = Counting::new(shape, chunks)?;
    let got = read_indices(&mut reader, &idx)?;
    let items: i64 = out_shape.iter().product();
    assert_eq!(got.len() as i64, items * 4, "result of another size");
    let len: i64 = shape.iter().product();
    assert!(as_u32(&got).iter().all(|&p| i64::from(p) < len));
    Ok(())
}

/// A `filter` row predicate over records of `dtype` (a NumPy dtype string,
/// as a file's metadata holds it): parsed, checked, and run on `records`.
pub fn filter(dtype: &str, expr: &str, records: &[u8]) -> Result<()> {
    let dtype = DType::parse(dtype)?;
    let _ = (dtype.numpy_str(), dtype.descr_str(), dtype.itemsize());
    let filter = RowFilter::parse(expr, &dtype)?;
    let verdicts = filter.select(records);
    if dtype.itemsize() > 0 {
        assert_eq!(verdicts.len(), records.len() / dtype.itemsize());
    }
    Ok(())
}
