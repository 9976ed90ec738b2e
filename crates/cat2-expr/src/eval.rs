//! Evaluation of a typed plan over one box of the result.
//!
//! Every operand is read once for the box (through the caller's `read`, which may do I/O
//! and so is called serially), then the box is cut into runs of `CHUNK` consecutive items
//! (C order) and the whole tree is evaluated run by run: each node's temporary is one run
//! long and stays in cache, which is numexpr's "fused" evaluation without its bytecode.
//! Runs are independent, so large boxes are evaluated in parallel with rayon, each run
//! writing straight into its slice of the output.

use rayon::prelude::*;

use crate::col::Col;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::{self, BOp, UOp};
use crate::shape::{fmt_shape, gather_indices, operand_box};
use crate::typing::{Node, NodeKind, Operand};
use crate::ReadOperand;

/// Items per run: each temporary is at most 8 KiB items (64 KiB for float64).
const CHUNK: usize = 8192;
/// Boxes with more items than this are evaluated in parallel.
const PARALLEL_MIN: usize = 1 << 18;

/// An operand's items for the box.
struct Leaf<'a> {
    dtype: DType,
    bytes: &'a [u8],
    strides: Vec<usize>,
    contiguous: bool,
}

/// One run of the result box.
struct Run<'a> {
    leaves: &'a [Leaf<'a>],
    extents: &'a [usize],
    first: usize,
    n: usize,
}

fn eval_node(node: &Node, run: &Run<'_>) -> Result<Col> {
    match &node.kind {
        NodeKind::Operand(i) => {
            let leaf = run
                .leaves
                .get(*i)
                .ok_or_else(|| Error::Internal("operand without data".into()))?;
            Ok(if leaf.contiguous {
                Col::decode(leaf.dtype, leaf.bytes, run.first, run.n, None)
            } else {
                let idx = gather_indices(run.extents, &leaf.strides, run.first, run.n);
                Col::decode(leaf.dtype, leaf.bytes, 0, 0, Some(&idx))
            })
        }
        NodeKind::Const(c) => Ok(c.repeat(run.n)),
        NodeKind::Cast(a) => Ok(eval_node(a, run)?.cast(node.dtype)),
        NodeKind::Unary(op, a) => kernels::unary(*op, eval_node(a, run)?),
        NodeKind::Binary(op, a, b) => {
            if *op == BOp::Pow {
                if let Some(fast) = scalar_power(node.dtype, b) {
                    let base = eval_node(a, run)?;
                    return match fast {
                        Some(op) => kernels::unary(op, base),
                        None => Ok(base),
                    };
                }
            }
            kernels::binary(*op, eval_node(a, run)?, eval_node(b, run)?)
        }
        NodeKind::Where(c, x, y) => {
            let Col::Bool(c) = eval_node(c, run)? else {
                return Err(Error::Internal("where() condition is not bool".into()));
            };
            kernels::select(&c, eval_node(x, run)?, eval_node(y, run)?)
        }
    }
}

/// NumPy's float power loop special-cases a scalar exponent: `x ** 0.5` is `sqrt(x)`
/// (which differs from `pow` for -0.0 and -inf; not for float16, which has no such loop),
/// and 2, -1 and 1 give `square`, `reciprocal` and a copy (the same values as `pow`, faster).
/// `Some(None)` means the base itself.
fn scalar_power(dtype: DType, exp: &Node) -> Option<Option<UOp>> {
    if !dtype.is_float() {
        return None;
    }
    let NodeKind::Const(c) = &exp.kind else {
        return None;
    };
    match c.first_c64()?.re {
        0.5 if dtype != DType::F16 => Some(Some(UOp::Sqrt)),
        2.0 => Some(Some(UOp::Square)),
        -1.0 => Some(Some(UOp::Reciprocal)),
        1.0 => Some(None),
        _ => None,
    }
}

/// Evaluates a node without operands to its one value.
pub(crate) fn eval_const(node: &Node) -> Result<Col> {
    let run = Run {
        leaves: &[],
        extents: &[],
        first: 0,
        n: 1,
    };
    eval_node(node, &run)
}

/// Evaluates `root` (of result `shape`) over the box `start..stop`.
pub(crate) fn eval_box(
    root: &Node,
    operands: &[Operand],
    start: &[usize],
    stop: &[usize],
    read: &mut ReadOperand<'_>,
) -> Result<Vec<u8>> {
    let shape = &root.shape;
    let bad_box = || {
        Error::Shape(format!(
            "box {start:?}..{stop:?} is not inside the result of shape {}",
            fmt_shape(shape)
        ))
    };
    if start.len() != shape.len() || stop.len() != shape.len() {
        return Err(bad_box());
    }
    let mut extents = Vec::with_capacity(shape.len());
    for ((&a, &b), &d) in start.iter().zip(stop).zip(shape) {
        if a > b || b > d {
            return Err(bad_box());
        }
        extents.push(b - a);
    }
    let total = extents
        .iter()
        .try_fold(1usize, |acc, &e| acc.checked_mul(e))
        .ok_or_else(bad_box)?;
    let itemsize = root.dtype.itemsize();
    if total == 0 {
        return Ok(Vec::new());
    }
    let nbytes = total.checked_mul(itemsize).ok_or_else(bad_box)?;
    let mut boxes = Vec::with_capacity(operands.len());
    for op in operands {
        let b = operand_box(&op.shape, start, stop);
        let bytes = read(&op.name, &b.start, &b.stop)?;
        let want = b.len * op.dtype.itemsize();
        if bytes.len() != want {
            return Err(Error::Read(format!(
                "operand {} gave {} bytes for box {:?}..{:?}, expected {want}",
                op.name,
                bytes.len(),
                b.start,
                b.stop
            )));
        }
        boxes.push((bytes, b));
    }
    let leaves: Vec<Leaf<'_>> = operands
        .iter()
        .zip(&boxes)
        .map(|(op, (bytes, b))| Leaf {
            dtype: op.dtype,
            bytes,
            strides: b.strides.clone(),
            contiguous: b.contiguous,
        })
        .collect();
    let mut out = vec![0u8; nbytes];
    eval_runs(root, &leaves, &extents, &mut out, total > PARALLEL_MIN)?;
    Ok(out)
}

/// Evaluates `root` over operands that each hold exactly the result's items, in the same
/// (any) order: the items are independent, so a layout shared by every operand and the
/// output (C order, or Blosc2's block order of one chunk) needs no rearranging. Serial;
/// callers run chunks in parallel.
pub(crate) fn eval_flat(
    root: &Node,
    operands: &[Operand],
    inputs: &[&[u8]],
    out: &mut [u8],
) -> Result<()> {
    let itemsize = root.dtype.itemsize();
    let n = out.len() / itemsize.max(1);
    if out.len() != n * itemsize || inputs.len() != operands.len() {
        return Err(Error::Internal(format!(
            "flat evaluation of {} operands into {} bytes given {} inputs",
            operands.len(),
            out.len(),
            inputs.len()
        )));
    }
    let mut leaves = Vec::with_capacity(operands.len());
    for (op, bytes) in operands.iter().zip(inputs) {
        if bytes.len() != n * op.dtype.itemsize() {
            return Err(Error::Read(format!(
                "operand {} gave {} bytes for {n} items of {}",
                op.name,
                bytes.len(),
                op.dtype.numpy_name()
            )));
        }
        leaves.push(Leaf {
            dtype: op.dtype,
            bytes,
            strides: Vec::new(),
            contiguous: true,
        });
    }
    eval_runs(root, &leaves, &[n], out, false)
}

/// Evaluates `root` run by run into `out` (the items of a box of `extents`).
fn eval_runs(
    root: &Node,
    leaves: &[Leaf<'_>],
    extents: &[usize],
    out: &mut [u8],
    parallel: bool,
) -> Result<()> {
    let itemsize = root.dtype.itemsize();
    let run_chunk = |k: usize, dst: &mut [u8]| -> Result<()> {
        let run = Run {
            leaves,
            extents,
            first: k * CHUNK,
            n: dst.len() / itemsize,
        };
        let col = eval_node(root, &run)?;
        if col.len() != run.n || col.dtype() != root.dtype {
            return Err(Error::Internal(
                "a run evaluated to the wrong length or dtype".into(),
            ));
        }
        col.encode(dst);
        Ok(())
    };
    if parallel {
        out.par_chunks_mut(CHUNK * itemsize)
            .enumerate()
            .try_for_each(|(k, dst)| run_chunk(k, dst))
    } else {
        out.chunks_mut(CHUNK * itemsize)
            .enumerate()
            .try_for_each(|(k, dst)| run_chunk(k, dst))
    }
}
