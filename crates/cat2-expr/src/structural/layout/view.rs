//! Affine views: results whose items are input items at indices affine in the output index.
//!
//! Output index `o` reads input index `i_j = base_j + Σ_k coef[j][k]·o_k`. A slice
//! `start:stop:step` of input axis `j` is `base_j = start`, `coef[j][k] = step`; an integer
//! index is a `base` alone; `None` is an output axis no input axis follows; a permutation
//! has one `1` per row; broadcasting has `0`s; a diagonal has two input axes following one
//! output axis. For an output box the extreme input indices are at the box's corners, so
//! the input box to read is found per axis, and the items are then gathered from it with
//! the strides the coefficients give (whole rows copied when the last axis is unit-stride).

use super::gather::gather;
use crate::error::{Error, Result};
use crate::shape::fmt_shape;
use crate::structural::args::normalize_axis;
use crate::structural::{Arg, Built, Structural};
use crate::{Plan, ReadOperand};

/// The index map of a view.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Affine {
    /// The output shape.
    pub(crate) shape: Vec<usize>,
    /// Per input axis.
    pub(crate) base: Vec<i64>,
    /// Per input axis, per output axis.
    pub(crate) coef: Vec<Vec<i64>>,
}

impl Affine {
    /// A map from an input of `in_ndim` axes with no output axes yet (integer indices
    /// everywhere, at 0).
    pub(crate) fn new(in_ndim: usize) -> Affine {
        Affine {
            shape: Vec::new(),
            base: vec![0; in_ndim],
            coef: vec![Vec::new(); in_ndim],
        }
    }

    /// Appends an output axis of `size` along which input axis `j` moves by `step` for each
    /// `(j, step)` of `links`.
    pub(crate) fn push(&mut self, size: usize, links: &[(usize, i64)]) {
        let k = self.shape.len();
        self.shape.push(size);
        for row in &mut self.coef {
            row.push(0);
        }
        for &(j, step) in links {
            self.coef[j][k] = step;
        }
    }

    /// Output axis `k` is input axis `perm[k]`.
    pub(crate) fn permutation(in_shape: &[usize], perm: &[usize]) -> Affine {
        let mut a = Affine::new(in_shape.len());
        for &p in perm {
            a.push(in_shape[p], &[(p, 1)]);
        }
        a
    }

    /// The input box covering the output box `start..stop` (not empty).
    pub(crate) fn input_box(&self, start: &[usize], stop: &[usize]) -> (Vec<usize>, Vec<usize>) {
        let mut lo = Vec::with_capacity(self.base.len());
        let mut hi = Vec::with_capacity(self.base.len());
        for (base, row) in self.base.iter().zip(&self.coef) {
            let (mut a, mut b) = (*base, *base);
            for ((&c, &s), &e) in row.iter().zip(start).zip(stop) {
                let (first, last) = (s as i64, e as i64 - 1);
                if c > 0 {
                    a += c * first;
                    b += c * last;
                } else if c < 0 {
                    a += c * last;
                    b += c * first;
                }
            }
            lo.push(a as usize);
            hi.push(b as usize + 1);
        }
        (lo, hi)
    }
}

/// A view of one input.
#[derive(Debug)]
pub(crate) struct View {
    input: Plan,
    affine: Affine,
    itemsize: usize,
    linalg: bool,
}

impl View {
    /// The view as a built operation (`linalg`: whether Caterva2 counts it as a
    /// linear-algebra function).
    pub(crate) fn built(input: Plan, affine: Affine, linalg: bool) -> Built {
        let dtype = input.dtype();
        Built {
            dtype,
            shape: affine.shape.clone(),
            op: Box::new(View {
                input,
                affine,
                itemsize: dtype.itemsize(),
                linalg,
            }),
        }
    }
}

impl Structural for View {
    fn read_box(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        let (lo, hi) = self.affine.input_box(start, stop);
        let in_shape = self.input.shape();
        if hi.iter().zip(in_shape).any(|(h, n)| h > n) {
            return Err(Error::Internal(format!(
                "a view read {lo:?}..{hi:?} outside its input of shape {in_shape:?}"
            )));
        }
        let buf = self.input.eval_box(&lo, &hi, read)?;
        // C-order strides of the read box, in items.
        let nin = lo.len();
        let mut bs = vec![1i64; nin];
        for j in (0..nin.saturating_sub(1)).rev() {
            bs[j] = bs[j + 1] * (hi[j + 1] - lo[j + 1]) as i64;
        }
        let a = &self.affine;
        let strides: Vec<i64> = (0..start.len())
            .map(|k| (0..nin).map(|j| a.coef[j][k] * bs[j]).sum())
            .collect();
        let first: i64 = (0..nin)
            .map(|j| {
                let at: i64 = a.base[j]
                    + (0..start.len())
                        .map(|k| a.coef[j][k] * start[k] as i64)
                        .sum::<i64>();
                (at - lo[j] as i64) * bs[j]
            })
            .sum();
        let extents: Vec<usize> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
        gather(&buf, self.itemsize, first, &strides, &extents)
    }

    fn inputs(&self) -> Vec<&Plan> {
        vec![&self.input]
    }

    fn linalg(&self) -> bool {
        self.linalg
    }
}

/// `expand_dims(x, axis)`: size-1 axes at the positions `axis` (an integer or a sequence)
/// of the result.
pub(crate) fn expand_dims(in_shape: &[usize], axis: &Arg) -> Result<Affine> {
    let raw = match axis {
        Arg::Seq(items) => items
            .iter()
            .map(|i| i.int("axis"))
            .collect::<Result<Vec<_>>>()?,
        other => vec![other.int("axis")?],
    };
    let out_nd = in_shape.len() + raw.len();
    let mut new = vec![false; out_nd];
    for a in raw {
        let a = normalize_axis(a, out_nd)?;
        if std::mem::replace(&mut new[a], true) {
            return Err(Error::Value("repeated axis".into()));
        }
    }
    let mut affine = Affine::new(in_shape.len());
    let mut j = 0;
    for is_new in new {
        if is_new {
            affine.push(1, &[]);
        } else {
            affine.push(in_shape[j], &[(j, 1)]);
            j += 1;
        }
    }
    Ok(affine)
}

/// `squeeze(x, axis=None)`: without the size-1 axes `axis` (all of them for `None`).
pub(crate) fn squeeze(in_shape: &[usize], axis: &Arg) -> Result<Affine> {
    let drop: Vec<usize> = match axis.axes(in_shape.len())? {
        None => (0..in_shape.len()).filter(|&j| in_shape[j] == 1).collect(),
        Some(axes) => {
            if axes.iter().any(|&j| in_shape[j] != 1) {
                return Err(Error::Value(
                    "cannot select an axis to squeeze out which has size not equal to one".into(),
                ));
            }
            axes
        }
    };
    let mut affine = Affine::new(in_shape.len());
    for (j, &n) in in_shape.iter().enumerate() {
        if !drop.contains(&j) {
            affine.push(n, &[(j, 1)]);
        }
    }
    Ok(affine)
}

/// `broadcast_to(x, shape)`: NumPy's broadcasting of the input to exactly `shape`.
pub(crate) fn broadcast_to(in_shape: &[usize], shape: &[usize]) -> Result<Affine> {
    if shape.len() < in_shape.len() {
        return Err(Error::Value(
            "input operand has more dimensions than allowed by the axis remapping".into(),
        ));
    }
    let offset = shape.len() - in_shape.len();
    let mut affine = Affine::new(in_shape.len());
    for (k, &n) in shape.iter().enumerate() {
        match k.checked_sub(offset).map(|j| (j, in_shape[j])) {
            None => affine.push(n, &[]),
            Some((j, d)) if d == n => affine.push(n, &[(j, 1)]),
            Some((_, 1)) => affine.push(n, &[]),
            Some(_) => {
                return Err(Error::Value(format!(
                    "operands could not be broadcast together with remapped shapes \
                     [original->remapped]: {}  and requested shape {}",
                    fmt_shape(in_shape),
                    fmt_shape(shape)
                )))
            }
        }
    }
    Ok(affine)
}

/// NumPy's `diagonal(x, offset, axis1, axis2)`: the other axes in order, then the diagonal.
pub(crate) fn diagonal(in_shape: &[usize], offset: i64, axis1: i64, axis2: i64) -> Result<Affine> {
    let nd = in_shape.len();
    if nd < 2 {
        return Err(Error::Value(
            "diag requires an array of at least two dimensions".into(),
        ));
    }
    let name = |what: &str, e: Error| match e {
        Error::Value(m) => Error::Value(format!("{what}: {m}")),
        other => other,
    };
    let a1 = normalize_axis(axis1, nd).map_err(|e| name("axis1", e))?;
    let a2 = normalize_axis(axis2, nd).map_err(|e| name("axis2", e))?;
    if a1 == a2 {
        return Err(Error::Value("axis1 and axis2 cannot be the same".into()));
    }
    let (r0, c0) = if offset >= 0 {
        (0, offset)
    } else {
        (-offset, 0)
    };
    let len = (in_shape[a1] as i64 - r0)
        .min(in_shape[a2] as i64 - c0)
        .max(0) as usize;
    let mut affine = Affine::new(nd);
    for (j, &n) in in_shape.iter().enumerate() {
        if j != a1 && j != a2 {
            affine.push(n, &[(j, 1)]);
        }
    }
    affine.push(len, &[(a1, 1), (a2, 1)]);
    affine.base[a1] = r0;
    affine.base[a2] = c0;
    Ok(affine)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::pyscalar::Py;

    /// Applies a map to the C-order array `0..Π in_shape` (as one-byte items), for the
    /// output box `start..stop`, and checks it against direct indexing.
    pub(crate) fn check(affine: &Affine, in_shape: &[usize], start: &[usize], stop: &[usize]) {
        let (lo, hi) = affine.input_box(start, stop);
        let mut strides = vec![1usize; in_shape.len()];
        for j in (0..in_shape.len().saturating_sub(1)).rev() {
            strides[j] = strides[j + 1] * in_shape[j + 1];
        }
        let flat = |i: &[usize]| i.iter().zip(&strides).map(|(a, s)| a * s).sum::<usize>();
        // The read box, as flat input indices (u32 items).
        let mut buf = Vec::new();
        let mut idx = lo.clone();
        let count: usize = lo.iter().zip(&hi).map(|(a, b)| b - a).product();
        for _ in 0..count {
            buf.extend_from_slice(&(flat(&idx) as u32).to_ne_bytes());
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < hi[d] {
                    break;
                }
                idx[d] = lo[d];
            }
        }
        let nin = lo.len();
        let mut bs = vec![1i64; nin];
        for j in (0..nin.saturating_sub(1)).rev() {
            bs[j] = bs[j + 1] * (hi[j + 1] - lo[j + 1]) as i64;
        }
        let strides_out: Vec<i64> = (0..start.len())
            .map(|k| (0..nin).map(|j| affine.coef[j][k] * bs[j]).sum())
            .collect();
        let first: i64 = (0..nin)
            .map(|j| {
                let at = affine.base[j]
                    + (0..start.len())
                        .map(|k| affine.coef[j][k] * start[k] as i64)
                        .sum::<i64>();
                (at - lo[j] as i64) * bs[j]
            })
            .sum();
        let extents: Vec<usize> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
        let got: Vec<u32> = gather(&buf, 4, first, &strides_out, &extents)
            .expect("gathers")
            .chunks_exact(4)
            .map(|c| u32::from_ne_bytes(c.try_into().expect("4")))
            .collect();
        // Direct: each output index of the box through the map.
        let mut want = Vec::new();
        let mut o = start.to_vec();
        let total: usize = extents.iter().product();
        for _ in 0..total {
            let i: Vec<usize> = (0..nin)
                .map(|j| {
                    let v = affine.base[j]
                        + (0..o.len())
                            .map(|k| affine.coef[j][k] * o[k] as i64)
                            .sum::<i64>();
                    assert!(v >= 0 && (v as usize) < in_shape[j], "index out of range");
                    v as usize
                })
                .collect();
            want.push(flat(&i) as u32);
            for d in (0..o.len()).rev() {
                o[d] += 1;
                if o[d] < stop[d] {
                    break;
                }
                o[d] = start[d];
            }
        }
        assert_eq!(got, want, "{affine:?} box {start:?}..{stop:?}");
    }

    #[test]
    fn permutations_and_broadcasts_gather_right() {
        let t = Affine::permutation(&[3, 4, 5], &[2, 0, 1]);
        assert_eq!(t.shape, [5, 3, 4]);
        check(&t, &[3, 4, 5], &[0, 0, 0], &[5, 3, 4]);
        check(&t, &[3, 4, 5], &[1, 1, 2], &[4, 3, 3]);
        let b = broadcast_to(&[4, 1], &[2, 4, 3]).expect("broadcasts");
        check(&b, &[4, 1], &[0, 1, 1], &[2, 3, 3]);
        let (lo, hi) = b.input_box(&[0, 1, 1], &[2, 3, 3]);
        assert_eq!((lo, hi), (vec![1, 0], vec![3, 1]));
        assert!(broadcast_to(&[4, 2], &[4, 3]).is_err());
        let axes = Arg::Seq(vec![Arg::Scalar(Py::Int(0)), Arg::Scalar(Py::Int(-1))]);
        let e = expand_dims(&[3, 4], &axes).expect("expands");
        assert_eq!(e.shape, [1, 3, 4, 1]);
        check(&e, &[3, 4], &[0, 1, 2, 0], &[1, 3, 4, 1]);
    }

    #[test]
    fn diagonals_read_the_covering_square() {
        let d = diagonal(&[4, 6], 1, 0, 1).expect("diagonal");
        assert_eq!(d.shape, [4]);
        assert_eq!(d.input_box(&[1], &[3]), (vec![1, 2], vec![3, 4]));
        check(&d, &[4, 6], &[0], &[4]);
        let d = diagonal(&[3, 4, 5], -1, 2, 0).expect("diagonal");
        assert_eq!(d.shape, [4, 3]);
        check(&d, &[3, 4, 5], &[1, 0], &[3, 3]);
        assert_eq!(diagonal(&[3, 4], 9, 0, 1).expect("empty").shape, [0]);
        assert!(diagonal(&[3, 4], 0, 1, -1).is_err());
    }
}
