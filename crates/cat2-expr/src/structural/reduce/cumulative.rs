//! Cumulative sums and products: NumPy 2.1's `cumulative_sum` / `cumulative_prod` (array
//! API: `axis` required for more than one dimension, `include_initial`), and NumPy's
//! `cumsum` / `cumprod` (no `axis`: over the flattened array).
//!
//! Item `p` along the axis needs input items `0..=p` (`0..p` with `include_initial`), so a
//! box of the result reads its own box on the other dimensions and the axis from 0 up to its
//! end, in slabs (C order), carrying one running value per lane (position on the other
//! dimensions). Running values are kept in the result dtype with NumPy's step-by-step
//! arithmetic (float16 rounds after each step, float32 stays float32), so results match
//! NumPy's sequential accumulation exactly.

use super::stream::{self, slabs};
use super::values::{items, with_item, HalfAcc, Item, Num};
use super::{cast_input, refuse, sum_dtype, take_array};
use super::{Arg, Args, Built, Structural};
use crate::dtype::{DType, Kind};
use crate::error::{Error, Result};
use crate::structural::args::{normalize_axis, take_dtype};
use crate::{Plan, ReadOperand};

#[derive(Debug)]
struct Cumulative {
    input: Plan,
    prod: bool,
    /// The axis, or `None` for the flattened input (`cumsum` without `axis`).
    axis: Option<usize>,
    include_initial: bool,
    dtype: DType,
    shape: Vec<usize>,
    slab: usize,
}

pub(super) fn build(name: &str, mut args: Args) -> Result<Built> {
    let prod = matches!(name, "cumulative_prod" | "cumprod");
    let array_api = name.starts_with("cumulative");
    let input = take_array(&mut args)?;
    let axis = args.take(1, "axis")?.unwrap_or(Arg::None);
    let dtype = take_dtype(&mut args, 2)?;
    let include_initial = if array_api {
        match args.take(3, "include_initial")? {
            Some(a) => a.truth("include_initial")?,
            None => false,
        }
    } else {
        match args.take(3, "out")? {
            None | Some(Arg::None) => false,
            Some(_) => {
                return Err(Error::Unsupported(format!(
                    "{name}() with out= is not supported"
                )))
            }
        }
    };
    refuse(&mut args, &["out"])?;
    args.finish()?;

    let in_shape = input.shape().to_vec();
    // A 0-d input is accumulated as a 1-D array of one item.
    let view: Vec<usize> = if in_shape.is_empty() {
        vec![1]
    } else {
        in_shape.clone()
    };
    let axis = match axis {
        Arg::None if array_api && in_shape.len() > 1 => {
            return Err(Error::Value(
                "For arrays which have more than one dimension ``axis`` argument is required."
                    .into(),
            ))
        }
        Arg::None if view.len() == 1 => Some(0),
        Arg::None => None,
        Arg::Seq(items) if array_api => match &items[..] {
            [one] => Some(normalize_axis(one.int("axis")?, view.len())?),
            _ => {
                return Err(Error::Value(
                    "accumulate does not allow multiple axes".into(),
                ))
            }
        },
        other => Some(normalize_axis(other.int("axis")?, view.len())?),
    };
    let out = dtype.unwrap_or_else(|| sum_dtype(input.dtype()));
    let input = if dtype.is_some() {
        cast_input(input, out)?
    } else {
        input
    };
    let shape = match axis {
        Some(ax) => {
            let mut s = view;
            s[ax] += usize::from(include_initial);
            s
        }
        None => vec![view.iter().product()],
    };
    let slab = stream::slab_items(input.dtype().itemsize());
    Ok(Built {
        dtype: out,
        shape: shape.clone(),
        op: Box::new(Cumulative {
            input,
            prod,
            axis,
            include_initial,
            dtype: out,
            shape,
            slab,
        }),
    })
}

/// One slab as a 3-D block (outer, axis, inner) of the result box's lanes.
struct Block<'a> {
    data: &'a [u8],
    /// Extents: outer, along the axis, inner.
    outer: usize,
    along: usize,
    inner: usize,
    /// The lane of the block's first item, and the axis position of its first item.
    lane: usize,
    first: usize,
}

/// Where running values go: the result box as (outer, axis range, inner) lanes.
struct Target<A> {
    carry: Vec<A>,
    out: Vec<A>,
    /// Items per outer index in the box (inner extent).
    lanes_inner: usize,
    /// The result box's range along the axis.
    lo: usize,
    hi: usize,
    /// 1 with `include_initial` (result position `p` is after input item `p - 1`).
    shift: usize,
}

impl<A: Num> Target<A> {
    /// Runs the block through the running values (`PROD`: products, else sums), writing
    /// those that fall in the result box.
    fn feed<T: Item, const PROD: bool>(&mut self, b: &Block<'_>) {
        let op = |a: A, x: A| if PROD { a.mul(x) } else { a.add(x) };
        let itemsize = T::SIZE;
        let span = self.hi - self.lo;
        for o in 0..b.outer {
            let lane0 = b.lane + o * self.lanes_inner;
            let (ob, ib) = (lane0 / self.lanes_inner, lane0 % self.lanes_inner);
            let carry = &mut self.carry[lane0..lane0 + b.inner];
            for a in 0..b.along {
                let row = (o * b.along + a) * b.inner * itemsize;
                let row = &b.data[row..row + b.inner * itemsize];
                if b.inner == 1 {
                    carry[0] = op(carry[0], A::from_val(T::load(row)));
                } else {
                    for (c, x) in carry.iter_mut().zip(items::<T>(row)) {
                        *c = op(*c, A::from_val(x));
                    }
                }
                let p = b.first + a + self.shift;
                if (self.lo..self.hi).contains(&p) {
                    let at = (ob * span + (p - self.lo)) * self.lanes_inner + ib;
                    self.out[at..at + b.inner].copy_from_slice(carry);
                }
            }
        }
    }
}

impl Structural for Cumulative {
    fn inputs(&self) -> Vec<&Plan> {
        vec![&self.input]
    }

    /// The whole result is computed once when small: a box needs everything before it
    /// along the axis, so computing boxes one by one would re-read the input per box.
    fn eager(&self) -> bool {
        true
    }

    fn read_box(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        let col = match self.dtype {
            DType::F16 => self.typed::<HalfAcc>(start, stop, read)?,
            DType::F32 => self.typed::<f32>(start, stop, read)?,
            DType::F64 => self.typed::<f64>(start, stop, read)?,
            DType::C64 => self.typed::<num_complex::Complex32>(start, stop, read)?,
            DType::C128 => self.typed::<num_complex::Complex64>(start, stop, read)?,
            dt if dt.is_unsigned() => self.typed::<u64>(start, stop, read)?,
            dt => {
                debug_assert!(matches!(dt.kind(), Kind::Bool | Kind::Int));
                self.typed::<i64>(start, stop, read)?
            }
        };
        let col = col.cast(self.dtype);
        let mut out = vec![0u8; col.len() * self.dtype.itemsize()];
        col.encode(&mut out);
        Ok(out)
    }
}

impl Cumulative {
    fn typed<A: Num>(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<crate::col::Col> {
        let identity = if self.prod { A::ONE } else { A::ZERO };
        let shift = usize::from(self.include_initial);
        let total: usize = start.iter().zip(stop).map(|(a, b)| b - a).product();
        let in_shape = self.input.shape().to_vec();
        let itemsize = self.input.dtype().itemsize();
        with_item!(self.input.dtype(), T => {
            match self.axis {
                Some(ax) => {
                    let nd = self.shape.len();
                    let (lo, hi) = (start[ax], stop[ax]);
                    let outer: usize = (0..ax).map(|d| stop[d] - start[d]).product();
                    let inner: usize = (ax + 1..nd).map(|d| stop[d] - start[d]).product();
                    let mut t = Target {
                        carry: vec![identity; outer * inner],
                        out: vec![identity; total],
                        lanes_inner: inner,
                        lo,
                        hi,
                        shift,
                    };
                    // The input box: the result box, from 0 along the axis.
                    let (mut s0, mut s1) = (start.to_vec(), stop.to_vec());
                    s0[ax] = 0;
                    s1[ax] = hi - shift;
                    let reduced: Vec<bool> = (0..nd).map(|d| d == ax).collect();
                    if s1[ax] > 0 {
                        for (a, b) in slabs(&s0, &s1, self.slab) {
                            let data = if in_shape.is_empty() {
                                self.input.eval_box(&[], &[], read)?
                            } else {
                                self.input.eval_box(&a, &b, read)?
                            };
                            let (lane, first) = stream::slab_offsets(&s0, &s1, &a, &reduced);
                            let block = Block {
                                data: &data,
                                outer: (0..ax).map(|d| b[d] - a[d]).product(),
                                along: b[ax] - a[ax],
                                inner: (ax + 1..nd).map(|d| b[d] - a[d]).product(),
                                lane,
                                first,
                            };
                            if self.prod {
                                t.feed::<T, true>(&block);
                            } else {
                                t.feed::<T, false>(&block);
                            }
                        }
                    }
                    Ok(A::col(t.out, self.dtype))
                }
                None => {
                    let (lo, hi) = (start[0], stop[0]);
                    let mut t = Target {
                        carry: vec![identity],
                        out: vec![identity; total],
                        lanes_inner: 1,
                        lo,
                        hi,
                        shift: 0,
                    };
                    for (a, b) in flat_boxes(&in_shape, hi) {
                        for (s0, s1) in slabs(&a, &b, self.slab) {
                            let data = self.input.eval_box(&s0, &s1, read)?;
                            let first = flat_index(&in_shape, &s0);
                            let block = Block {
                                data: &data,
                                outer: 1,
                                along: data.len() / itemsize,
                                inner: 1,
                                lane: 0,
                                first,
                            };
                            if self.prod {
                                t.feed::<T, true>(&block);
                            } else {
                                t.feed::<T, false>(&block);
                            }
                        }
                    }
                    Ok(A::col(t.out, self.dtype))
                }
            }
        })
    }
}

fn flat_index(shape: &[usize], idx: &[usize]) -> usize {
    shape.iter().zip(idx).fold(0, |acc, (&n, &i)| acc * n + i)
}

/// Boxes covering the flat (C-order) items `0..end` of an array of `shape`, in order.
fn flat_boxes(shape: &[usize], end: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    let total: usize = shape.iter().product();
    if end == 0 {
        return Vec::new();
    }
    if end >= total {
        return vec![(vec![0; shape.len()], shape.to_vec())];
    }
    // The coordinates of `end`: whole blocks along each dimension, then a prefix.
    let mut coords = vec![0; shape.len()];
    let mut rest = end;
    for d in (0..shape.len()).rev() {
        coords[d] = rest % shape[d];
        rest /= shape[d];
    }
    let mut boxes = Vec::new();
    for d in 0..shape.len() {
        if coords[d] == 0 {
            continue;
        }
        let mut a = coords.clone();
        let mut b: Vec<usize> = coords.iter().map(|c| c + 1).collect();
        a[d] = 0;
        b[d] = coords[d];
        for k in d + 1..shape.len() {
            a[k] = 0;
            b[k] = shape[k];
        }
        boxes.push((a, b));
    }
    boxes
}
