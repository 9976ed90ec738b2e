//! Products: `matmul` (`a @ b`), `tensordot`, `vecdot`, `outer`, and `diagonal` (a view,
//! listed with them as python-blosc2 lists it among its linear-algebra functions).
//! `diagonal` is NumPy's, `diagonal(a, offset=0, axis1=0, axis2=1)`; python-blosc2's
//! `diagonal(x, offset=0)` takes the last two axes instead, which is the same for 2-D
//! arrays only.
//!
//! The products are one operation ([`Product`]): `a` of shape `batch_a + rows + K` and `b`
//! of shape `batch_b + K + cols`, batch axes broadcast (NumPy's rules), the `K` axes summed
//! over; the result has shape `batch + rows + cols`. `matmul` is `rows = [n]`,
//! `cols = [m]`, `K = [k]` (a 1-D operand contributes no row or column axis, which is
//! NumPy's promote-then-remove); `vecdot` has no rows or columns; `tensordot` permutes its
//! operands so that the summed axes are last in `a` and first in `b`, with no batch; and
//! `outer` sums over nothing. A box of the result reads, from each operand, its batch
//! (`0..1` where it broadcasts), its rows or columns in the box, and all of `K`. Products
//! are eager: the whole result is computed once per plan when it is small.

mod kernel;

use super::args::normalize_axis;
use super::layout::view::{self, View};
use super::layout::{cast_plan, permuted};
use super::{Arg, Args, Built, Structural};
use crate::dtype::{promote, DType};
use crate::error::{Error, Result};
use crate::pyscalar::Py;
use crate::shape::{broadcast, fmt_shape};
use crate::{Plan, ReadOperand};

pub(crate) fn build(name: &str, mut args: Args) -> Result<Built> {
    match name {
        "matmul" => {
            let a = args.required(0, "x1")?.into_plan("x1")?;
            let b = args.required(1, "x2")?.into_plan("x2")?;
            args.finish()?;
            matmul(a, b)
        }
        "tensordot" => {
            let a = args.required(0, "a")?.into_plan("a")?;
            let b = args.required(1, "b")?.into_plan("b")?;
            let axes = args.take(2, "axes")?.unwrap_or(Arg::Scalar(Py::Int(2)));
            args.finish()?;
            tensordot(a, b, &axes)
        }
        "vecdot" => {
            let a = args.required(0, "x1")?.into_plan("x1")?;
            let b = args.required(1, "x2")?.into_plan("x2")?;
            let axis = match args.take(2, "axis")? {
                Some(a) => a.int("axis")?,
                None => -1,
            };
            args.finish()?;
            vecdot(a, b, axis)
        }
        "outer" => {
            let a = args.required(0, "a")?.into_plan("a")?;
            let b = args.required(1, "b")?.into_plan("b")?;
            args.finish()?;
            outer(a, b)
        }
        "diagonal" => {
            let x = args.required(0, "a")?.into_plan("a")?;
            let mut int = |i: usize, name: &str, default: i64| match args.take(i, name)? {
                Some(a) => a.int(name),
                None => Ok(default),
            };
            let offset = int(1, "offset", 0)?;
            let axis1 = int(2, "axis1", 0)?;
            let axis2 = int(3, "axis2", 1)?;
            args.finish()?;
            let affine = view::diagonal(x.shape(), offset, axis1, axis2)?;
            Ok(View::built(x, affine, true))
        }
        _ => Err(Error::Internal(format!("{name} is not a product"))),
    }
}

/// A product of `a` (`batch_a + rows + K`) and `b` (`batch_b + K + cols`).
#[derive(Debug)]
struct Product {
    a: Plan,
    b: Plan,
    dtype: DType,
    /// The broadcast batch shape; each operand's batch axes align with its end.
    batch: Vec<usize>,
    /// The number of row axes (in `a`) and column axes (in `b`), and the summed axes.
    rows: usize,
    cols: usize,
    sum: Vec<usize>,
    conj_a: bool,
}

impl Product {
    /// The operation; `a` and `b` are cast to the promoted dtype here.
    fn built(
        a: Plan,
        b: Plan,
        rows: usize,
        cols: usize,
        sum: Vec<usize>,
        conj_a: bool,
        what: &str,
    ) -> Result<Built> {
        let dtype = promote(a.dtype(), b.dtype());
        let a = cast_plan(a, dtype)?;
        let b = cast_plan(b, dtype)?;
        let (sa, sb) = (a.shape(), b.shape());
        let batch_a = &sa[..sa.len() - rows - sum.len()];
        let batch_b = &sb[..sb.len() - cols - sum.len()];
        let batch = broadcast(&[batch_a, batch_b]).map_err(|_| {
            Error::Value(format!(
                "{what}: the batch dimensions of shapes {} and {} do not broadcast",
                fmt_shape(sa),
                fmt_shape(sb)
            ))
        })?;
        let mut shape = batch.clone();
        shape.extend_from_slice(&sa[batch_a.len()..batch_a.len() + rows]);
        shape.extend_from_slice(&sb[sb.len() - cols..]);
        Ok(Built {
            dtype,
            shape,
            op: Box::new(Product {
                a,
                b,
                dtype,
                batch,
                rows,
                cols,
                sum,
                conj_a,
            }),
        })
    }
}

/// The box of an operand's batch axes for the output box's batch part, and the operand's
/// batch offset (in blocks) for each output batch index of the box, in C order.
fn batch_read(batch: &[usize], own: &[usize], start: &[usize], stop: &[usize]) -> Box3 {
    let off = batch.len() - own.len();
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    for (d, &n) in own.iter().enumerate() {
        let g = off + d;
        if n == 1 {
            lo.push(0);
            hi.push(1);
        } else {
            lo.push(start[g]);
            hi.push(stop[g]);
        }
    }
    // C-order strides (in blocks) of the read batch box, 0 where the operand broadcasts.
    let mut strides = vec![0usize; batch.len()];
    let mut acc = 1;
    for d in (0..own.len()).rev() {
        if own[d] != 1 {
            strides[off + d] = acc;
        }
        acc *= hi[d] - lo[d];
    }
    let extents: Vec<usize> = start.iter().zip(stop).map(|(s, e)| e - s).collect();
    let total: usize = extents.iter().product();
    let mut blocks = Vec::with_capacity(total);
    let mut idx = vec![0usize; batch.len()];
    for _ in 0..total {
        blocks.push(idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < extents[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    (lo, hi, blocks)
}

type Box3 = (Vec<usize>, Vec<usize>, Vec<usize>);

impl Structural for Product {
    fn read_box(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        let nb = self.batch.len();
        let (sa, sb) = (self.a.shape(), self.b.shape());
        let nsum = self.sum.len();
        let batch_a = &sa[..sa.len() - self.rows - nsum];
        let batch_b = &sb[..sb.len() - self.cols - nsum];
        let (row_s, row_e) = (&start[nb..nb + self.rows], &stop[nb..nb + self.rows]);
        let (col_s, col_e) = (&start[nb + self.rows..], &stop[nb + self.rows..]);
        let count =
            |s: &[usize], e: &[usize]| -> usize { s.iter().zip(e).map(|(s, e)| e - s).product() };
        let (n, m, k) = (
            count(row_s, row_e),
            count(col_s, col_e),
            self.sum.iter().product::<usize>(),
        );

        let (mut a_lo, mut a_hi, a_blocks) =
            batch_read(&self.batch, batch_a, &start[..nb], &stop[..nb]);
        a_lo.extend_from_slice(row_s);
        a_hi.extend_from_slice(row_e);
        a_lo.extend(self.sum.iter().map(|_| 0));
        a_hi.extend_from_slice(&self.sum);
        let (mut b_lo, mut b_hi, b_blocks) =
            batch_read(&self.batch, batch_b, &start[..nb], &stop[..nb]);
        b_lo.extend(self.sum.iter().map(|_| 0));
        b_hi.extend_from_slice(&self.sum);
        b_lo.extend_from_slice(col_s);
        b_hi.extend_from_slice(col_e);
        let a = self.a.eval_box(&a_lo, &a_hi, read)?;
        let b = self.b.eval_box(&b_lo, &b_hi, read)?;

        let mut at = Vec::with_capacity(a_blocks.len() * n);
        for (&ab, &bb) in a_blocks.iter().zip(&b_blocks) {
            for i in 0..n {
                at.push((ab * n * k + i * k, bb * k * m));
            }
        }
        let rows = kernel::Rows { at, k, m };
        kernel::products(self.dtype, &a, &b, self.conj_a, &rows)
    }

    fn inputs(&self) -> Vec<&Plan> {
        vec![&self.a, &self.b]
    }

    fn eager(&self) -> bool {
        true
    }

    fn linalg(&self) -> bool {
        true
    }
}

/// NumPy's message for a gufunc operand with too few core dimensions.
fn too_few_dims(func: &str, i: usize, signature: &str, needed: usize) -> Error {
    Error::Value(format!(
        "{func}: Input operand {i} does not have enough dimensions (has 0, gufunc core with \
         signature {signature} requires {needed})"
    ))
}

const MATMUL_SIG: &str = "(n?,k),(k,m?)->(n?,m?)";
const VECDOT_SIG: &str = "(n),(n)->()";

fn matmul(a: Plan, b: Plan) -> Result<Built> {
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    for (i, s) in [&sa, &sb].into_iter().enumerate() {
        if s.is_empty() {
            return Err(too_few_dims("matmul", i, MATMUL_SIG, 1));
        }
    }
    let (rows, ka) = match sa.len() {
        1 => (0, sa[0]),
        n => (1, sa[n - 1]),
    };
    let (cols, kb) = match sb.len() {
        1 => (0, sb[0]),
        n => (1, sb[n - 2]),
    };
    if ka != kb {
        return Err(Error::Value(format!(
            "matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc \
             signature {MATMUL_SIG} (size {kb} is different from {ka})"
        )));
    }
    Product::built(a, b, rows, cols, vec![ka], false, "matmul")
}

fn vecdot(a: Plan, b: Plan, axis: i64) -> Result<Built> {
    let mut moved = Vec::with_capacity(2);
    let mut sizes = Vec::with_capacity(2);
    for (i, p) in [a, b].into_iter().enumerate() {
        let nd = p.shape().len();
        if nd == 0 {
            return Err(too_few_dims("vecdot", i, VECDOT_SIG, 1));
        }
        let ax = normalize_axis(axis, nd)?;
        sizes.push(p.shape()[ax]);
        let mut perm: Vec<usize> = (0..nd).filter(|&d| d != ax).collect();
        perm.push(ax);
        moved.push(permuted(p, &perm));
    }
    if sizes[0] != sizes[1] {
        return Err(Error::Value(format!(
            "vecdot: Input operand 1 has a mismatch in its core dimension 0, with gufunc \
             signature {VECDOT_SIG} (size {} is different from {})",
            sizes[1], sizes[0]
        )));
    }
    let b = moved
        .pop()
        .ok_or_else(|| Error::Internal("vecdot operands".into()))?;
    let a = moved
        .pop()
        .ok_or_else(|| Error::Internal("vecdot operands".into()))?;
    let conj = promote(a.dtype(), b.dtype()).is_complex();
    Product::built(a, b, 0, 0, vec![sizes[0]], conj, "vecdot")
}

fn outer(a: Plan, b: Plan) -> Result<Built> {
    let a = super::layout::flattened(a);
    let b = super::layout::flattened(b);
    Product::built(a, b, 1, 1, Vec::new(), false, "outer")
}

/// `tensordot`'s `axes`: an integer `N` (the last `N` axes of `a` with the first `N` of
/// `b`) or a pair of axis sequences (or integers).
fn tensordot_axes(axes: &Arg, nda: usize, ndb: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let mismatch = || Error::Value("shape-mismatch for sum".into());
    if let Arg::Seq(pair) = axes {
        let [xa, xb] = &pair[..] else {
            return Err(Error::Value(
                "tensordot: axes must be an integer or a pair of axis sequences".into(),
            ));
        };
        let list = |x: &Arg, nd: usize| -> Result<Vec<usize>> {
            let raw = match x {
                Arg::Seq(items) => items.iter().map(|i| i.int("axes")).collect::<Result<_>>()?,
                other => vec![other.int("axes")?],
            };
            raw.into_iter().map(|a| normalize_axis(a, nd)).collect()
        };
        let (la, lb) = (list(xa, nda)?, list(xb, ndb)?);
        if la.len() != lb.len() {
            return Err(mismatch());
        }
        for l in [&la, &lb] {
            let mut sorted = l.clone();
            sorted.sort_unstable();
            if sorted.windows(2).any(|w| w[0] == w[1]) {
                return Err(Error::Value("tensordot: repeated axis".into()));
            }
        }
        return Ok((la, lb));
    }
    let n = axes.int("axes")?;
    let n = usize::try_from(n)
        .map_err(|_| Error::Value("tensordot: axes must be a non-negative integer".into()))?;
    if n > nda || n > ndb {
        return Err(Error::Value(format!(
            "tensordot: cannot sum over {n} axes of arrays with {nda} and {ndb} dimensions"
        )));
    }
    Ok(((nda - n..nda).collect(), (0..n).collect()))
}

fn tensordot(a: Plan, b: Plan, axes: &Arg) -> Result<Built> {
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    let (la, lb) = tensordot_axes(axes, sa.len(), sb.len())?;
    if la.iter().zip(&lb).any(|(&i, &j)| sa[i] != sb[j]) {
        return Err(Error::Value("shape-mismatch for sum".into()));
    }
    let free_a: Vec<usize> = (0..sa.len()).filter(|d| !la.contains(d)).collect();
    let free_b: Vec<usize> = (0..sb.len()).filter(|d| !lb.contains(d)).collect();
    let perm_a: Vec<usize> = free_a.iter().chain(&la).copied().collect();
    let perm_b: Vec<usize> = lb.iter().chain(&free_b).copied().collect();
    let sum: Vec<usize> = la.iter().map(|&i| sa[i]).collect();
    let (rows, cols) = (free_a.len(), free_b.len());
    Product::built(
        permuted(a, &perm_a),
        permuted(b, &perm_b),
        rows,
        cols,
        sum,
        false,
        "tensordot",
    )
}

#[cfg(test)]
mod tests {
    use crate::structural::layout::tests::{operands, run};
    use crate::Expr;

    #[test]
    fn products_and_views_compose() {
        // b @ v: rows of b dotted with 0..4.
        let (values, _) = run("b @ v", &[0], &[3]);
        assert_eq!(values, [-14.0, -74.0, -134.0]);
        let (values, _) = run("(a.T @ a)[1, 2]", &[], &[]);
        let want: f64 = (0..10)
            .map(|i| f64::from((10 * i + 1) * (10 * i + 2)))
            .sum();
        assert_eq!(values, [want]);
        let (values, _) = run("diagonal(outer(v, v))", &[0], &[4]);
        assert_eq!(values, [0.0, 1.0, 4.0, 9.0]);
        // A box of a product reads all of both operands once (eager, cached per plan).
        let (values, reads) = run("outer(v, b)[1:3, 5:7]", &[0, 0], &[2, 2]);
        assert_eq!(reads, ["v[0]..[4]", "b[0, 0]..[3, 4]"]);
        assert_eq!(values, [-11.0, -12.0, -22.0, -24.0]);
    }

    #[test]
    fn products_force_compute() {
        for expr in [
            "b @ v",
            "matmul(b, v)",
            "tensordot(a, b, ((1,), (1,)))",
            "vecdot(b, v)",
            "outer(v, v)",
            "diagonal(b)",
            "(b @ v)[1:] + 1",
        ] {
            let plan = Expr::parse(expr)
                .and_then(|e| e.plan(&operands()))
                .unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert!(plan.forces_compute(), "{expr}");
        }
        let plan = Expr::parse("outer(v, a) + 1")
            .and_then(|e| e.plan(&operands()))
            .expect("plans");
        assert_eq!(plan.operand_names(), ["v", "a"]);
    }
}
