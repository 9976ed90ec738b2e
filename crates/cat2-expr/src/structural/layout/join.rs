//! Joins: `concat`/`concatenate` (`axis=None` flattens first) and `stack`, and the
//! flattening they (and `outer`) need.
//!
//! The result dtype is NumPy's result type of the inputs (Python scalars are arrays of their
//! default dtype for `stack`, and weak for `concatenate(..., axis=None)`, as in NumPy);
//! inputs are cast to it in their own sub-plans. A box of the result reads, from each input
//! it overlaps, the matching box, and interleaves the pieces.

use super::{cast_plan, derived_plan};
use crate::dtype::promote;
use crate::error::{Error, Result};
use crate::structural::args::normalize_axis;
use crate::structural::{Arg, Args, Built, Structural};
use crate::typing::weak_dtype;
use crate::{Plan, ReadOperand};

pub(super) fn build(name: &str, mut args: Args) -> Result<Built> {
    let arrays = args.required(0, "arrays")?;
    let axis = args.take(1, "axis")?;
    args.finish()?;
    let Arg::Seq(items) = arrays else {
        return Err(Error::Unsupported(format!(
            "{}() takes a list or tuple of arrays",
            name
        )));
    };
    if items.is_empty() {
        let what = if name == "stack" {
            "stack"
        } else {
            "concatenate"
        };
        return Err(Error::Value(format!("need at least one array to {what}")));
    }
    let axis = match axis {
        None => Some(0),
        Some(Arg::None) => None,
        Some(a) => Some(a.int("axis")?),
    };
    if name == "stack" {
        let plans = items
            .into_iter()
            .map(|a| match a {
                Arg::Seq(_) => Err(nested(name)),
                a => a.into_plan("arrays"),
            })
            .collect::<Result<Vec<_>>>()?;
        return stack(plans, axis.unwrap_or(0));
    }
    match axis {
        Some(axis) => {
            let plans = items
                .into_iter()
                .map(|a| match a {
                    Arg::Seq(_) => Err(nested(name)),
                    a => a.into_plan("arrays"),
                })
                .collect::<Result<Vec<_>>>()?;
            concat(plans, axis)
        }
        None => concat_flat(items, name),
    }
}

fn nested(name: &str) -> Error {
    Error::Unsupported(format!(
        "{name}() takes arrays; nested lists are not supported"
    ))
}

/// The inputs cast to their common (promoted) dtype.
fn common(plans: Vec<Plan>) -> Result<Vec<Plan>> {
    let dtype = plans
        .iter()
        .map(Plan::dtype)
        .reduce(promote)
        .ok_or_else(|| Error::Internal("no inputs".into()))?;
    plans.into_iter().map(|p| cast_plan(p, dtype)).collect()
}

fn concat(plans: Vec<Plan>, axis: i64) -> Result<Built> {
    let first = plans[0].shape().to_vec();
    if first.is_empty() {
        return Err(Error::Value(
            "zero-dimensional arrays cannot be concatenated".into(),
        ));
    }
    let nd = first.len();
    let axis = normalize_axis(axis, nd)?;
    let mut sizes = Vec::with_capacity(plans.len());
    for (i, p) in plans.iter().enumerate() {
        let s = p.shape();
        if s.len() != nd {
            return Err(Error::Value(format!(
                "all the input arrays must have same number of dimensions, but the array at \
                 index 0 has {nd} dimension(s) and the array at index {i} has {} dimension(s)",
                s.len()
            )));
        }
        if let Some(d) = (0..nd).find(|&d| d != axis && s[d] != first[d]) {
            return Err(Error::Value(format!(
                "all the input array dimensions except for the concatenation axis must match \
                 exactly, but along dimension {d}, the array at index 0 has size {} and the \
                 array at index {i} has size {}",
                first[d], s[d]
            )));
        }
        sizes.push(s[axis]);
    }
    Join::built(common(plans)?, axis, sizes, false)
}

fn stack(plans: Vec<Plan>, axis: i64) -> Result<Built> {
    let first = plans[0].shape().to_vec();
    if plans.iter().any(|p| p.shape() != first) {
        return Err(Error::Value(
            "all input arrays must have the same shape".into(),
        ));
    }
    let axis = normalize_axis(axis, first.len() + 1)?;
    let sizes = vec![1; plans.len()];
    Join::built(common(plans)?, axis, sizes, true)
}

/// `concatenate(arrays, axis=None)`: the inputs flattened, end to end. Python scalars are
/// weak here, as NumPy treats them (their values are converted to the result dtype).
fn concat_flat(items: Vec<Arg>, name: &str) -> Result<Built> {
    let strong = items
        .iter()
        .filter_map(|a| match a {
            Arg::Array(p) => Some(p.dtype()),
            _ => None,
        })
        .reduce(promote);
    let mut dtype = None;
    for a in &items {
        let d = match a {
            Arg::Array(p) => p.dtype(),
            Arg::Scalar(p) => weak_dtype(p, strong),
            Arg::Seq(_) => return Err(nested(name)),
            other => return Err(Error::Type(format!("{name}() takes arrays, not {other:?}"))),
        };
        dtype = Some(dtype.map_or(d, |t| promote(t, d)));
    }
    let dtype = dtype.ok_or_else(|| Error::Internal("no inputs".into()))?;
    let mut plans = Vec::with_capacity(items.len());
    let mut sizes = Vec::with_capacity(items.len());
    for a in items {
        let plan = cast_plan(a.into_plan("arrays")?, dtype)?;
        sizes.push(plan.shape().iter().product());
        plans.push(flattened(plan));
    }
    Join::built(plans, 0, sizes, false)
}

/// The input flattened to one axis (C order); the plan itself if it is 1-D already.
pub(crate) fn flattened(plan: Plan) -> Plan {
    if plan.shape().len() == 1 {
        return plan;
    }
    let force = plan.forces_compute();
    let len = plan.shape().iter().product();
    let built = Built {
        dtype: plan.dtype(),
        shape: vec![len],
        op: Box::new(Flatten { input: plan }),
    };
    derived_plan(built, force)
}

/// Inputs joined along `axis`: input `i` covers `offsets[i]..offsets[i + 1]` of it. Stacked
/// inputs lack that axis (each covers one index of it).
#[derive(Debug)]
struct Join {
    inputs: Vec<Plan>,
    axis: usize,
    offsets: Vec<usize>,
    stacked: bool,
    itemsize: usize,
}

impl Join {
    fn built(inputs: Vec<Plan>, axis: usize, sizes: Vec<usize>, stacked: bool) -> Result<Built> {
        let dtype = inputs[0].dtype();
        let mut shape = inputs[0].shape().to_vec();
        let total = sizes.iter().sum();
        if stacked {
            shape.insert(axis, total);
        } else {
            shape[axis] = total;
        }
        let mut offsets = vec![0];
        for s in sizes {
            offsets.push(offsets.last().copied().unwrap_or(0) + s);
        }
        Ok(Built {
            dtype,
            shape,
            op: Box::new(Join {
                inputs,
                axis,
                offsets,
                stacked,
                itemsize: dtype.itemsize(),
            }),
        })
    }
}

impl Structural for Join {
    fn read_box(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        let a = self.axis;
        let outer: usize = start[..a].iter().zip(stop).map(|(s, e)| e - s).product();
        let inner: usize = start[a + 1..]
            .iter()
            .zip(&stop[a + 1..])
            .map(|(s, e)| e - s)
            .product();
        let mut pieces = Vec::new();
        for (i, input) in self.inputs.iter().enumerate() {
            let (o0, o1) = (self.offsets[i], self.offsets[i + 1]);
            let (lo, hi) = (start[a].max(o0), stop[a].min(o1));
            if lo >= hi {
                continue;
            }
            let (mut s, mut e) = (start.to_vec(), stop.to_vec());
            if self.stacked {
                s.remove(a);
                e.remove(a);
            } else {
                s[a] = lo - o0;
                e[a] = hi - o0;
            }
            let bytes = input.eval_box(&s, &e, read)?;
            pieces.push((bytes, (hi - lo) * inner * self.itemsize));
        }
        let total: usize = pieces.iter().map(|(b, _)| b.len()).sum();
        let mut out = Vec::with_capacity(total);
        for o in 0..outer {
            for (bytes, block) in &pieces {
                out.extend_from_slice(&bytes[o * block..(o + 1) * block]);
            }
        }
        Ok(out)
    }

    fn inputs(&self) -> Vec<&Plan> {
        self.inputs.iter().collect()
    }

    fn linalg(&self) -> bool {
        true
    }
}

/// An input flattened in C order.
#[derive(Debug)]
struct Flatten {
    input: Plan,
}

impl Structural for Flatten {
    fn read_box(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (s, e) in flat_boxes(self.input.shape(), start[0], stop[0]) {
            out.extend(self.input.eval_box(&s, &e, read)?);
        }
        Ok(out)
    }

    fn inputs(&self) -> Vec<&Plan> {
        vec![&self.input]
    }
}

type Box2 = (Vec<usize>, Vec<usize>);

/// Boxes of an array of `shape` whose items, box after box, are the flat (C-order) items
/// `s..e` (`s < e`): a partial first row, whole rows, a partial last row, recursively.
fn flat_boxes(shape: &[usize], s: usize, e: usize) -> Vec<Box2> {
    let Some((_, rest)) = shape.split_first() else {
        return vec![(Vec::new(), Vec::new())];
    };
    let row: usize = rest.iter().product();
    let prefixed = |r: usize, sub: Vec<Box2>| {
        sub.into_iter().map(move |(mut a, mut b)| {
            a.insert(0, r);
            b.insert(0, r + 1);
            (a, b)
        })
    };
    let (r0, r1) = (s / row, (e - 1) / row);
    if r0 == r1 {
        return prefixed(r0, flat_boxes(rest, s - r0 * row, e - r0 * row)).collect();
    }
    let mut out = Vec::new();
    let mut mid = r0;
    if !s.is_multiple_of(row) {
        out.extend(prefixed(r0, flat_boxes(rest, s % row, row)));
        mid += 1;
    }
    let mid_end = if !e.is_multiple_of(row) { r1 } else { r1 + 1 };
    if mid < mid_end {
        let mut a = vec![mid];
        let mut b = vec![mid_end];
        a.extend(rest.iter().map(|_| 0));
        b.extend_from_slice(rest);
        out.push((a, b));
    }
    if !e.is_multiple_of(row) {
        out.extend(prefixed(r1, flat_boxes(rest, 0, e % row)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_ranges_split_into_boxes() {
        let shape = [3, 4, 5];
        for s in 0..60 {
            for e in s + 1..=60 {
                let mut items = Vec::new();
                for (a, b) in flat_boxes(&shape, s, e) {
                    for i in a[0]..b[0] {
                        for j in a[1]..b[1] {
                            for k in a[2]..b[2] {
                                items.push(i * 20 + j * 5 + k);
                            }
                        }
                    }
                }
                assert_eq!(items, (s..e).collect::<Vec<_>>(), "{s}..{e}");
                assert!(flat_boxes(&shape, s, e).len() <= 5);
            }
        }
        assert_eq!(flat_boxes(&[], 0, 1), vec![(vec![], vec![])]);
    }
}
