//! Layout operations: basic indexing (`a[2:5, ::-1]`, python-blosc2's `.slice()`),
//! transposes, `expand_dims`, `squeeze`, `broadcast_to`, and the joins `concat` and `stack`.
//!
//! None of them computes anything: each result item is an item of an input, so they work on
//! raw bytes of the input's dtype. The single-input ones are all *affine views* ([`View`]):
//! input index `i_j = base_j + Σ_k coef[j][k]·o_k` for output index `o`, which covers
//! slices with any step (negative ones too), integer indices, new axes, permutations,
//! broadcasting and diagonals. A box of a view reads the box of the input that covers it
//! (for `|step| > 1` the covering range, subsampled) and gathers from it; the joins split
//! the box over their inputs.

mod gather;
mod index;
mod join;
pub(crate) use join::flattened;
pub(crate) mod view;

use std::sync::Arc;

use super::args::normalize_axis;
use super::{Arg, Args, Built, Derived};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::pyscalar::Py;
use crate::typing::{self, Node, NodeKind, Operand};
use crate::Plan;
use view::{Affine, View};

pub(crate) fn build(name: &str, mut args: Args) -> Result<Built> {
    match name {
        ".slice" => index::build(args),
        ".T" | ".mT" | "matrix_transpose" => {
            let x = args.required(0, "x")?.into_plan("x")?;
            args.finish()?;
            let nd = x.shape().len();
            let mut perm: Vec<usize> = (0..nd).collect();
            match name {
                ".T" => perm.reverse(),
                _ if nd < 2 => {
                    return Err(Error::Value(if name == ".mT" {
                        "matrix transpose with ndim < 2 is undefined".into()
                    } else {
                        format!("Input array must be at least 2-dimensional, but it is {nd}")
                    }))
                }
                _ => perm.swap(nd - 2, nd - 1),
            }
            let affine = Affine::permutation(x.shape(), &perm);
            Ok(View::built(x, affine, name == "matrix_transpose"))
        }
        "transpose" | "permute_dims" => {
            let x = args.required(0, "x")?.into_plan("x")?;
            let axes = if name == "transpose" {
                // The method form `a.transpose(1, 0, 2)` passes the axes one by one.
                let first = args.take(1, "axes")?;
                let mut rest = Vec::new();
                while let Some(a) = args.take(rest.len() + 2, "\0")? {
                    rest.push(a);
                }
                match first {
                    Some(first) if !rest.is_empty() => {
                        rest.insert(0, first);
                        Arg::Seq(rest)
                    }
                    Some(first) => first,
                    None => Arg::None,
                }
            } else {
                args.required(1, "axes")?
            };
            args.finish()?;
            let perm = permutation(&axes, x.shape().len())?;
            let affine = Affine::permutation(x.shape(), &perm);
            Ok(View::built(x, affine, true))
        }
        "expand_dims" => {
            let x = args.required(0, "x")?.into_plan("x")?;
            let axis = args.take(1, "axis")?.unwrap_or(Arg::Scalar(Py::Int(0)));
            args.finish()?;
            let affine = view::expand_dims(x.shape(), &axis)?;
            Ok(View::built(x, affine, true))
        }
        "squeeze" => {
            let x = args.required(0, "x")?.into_plan("x")?;
            let axis = args.take(1, "axis")?.unwrap_or(Arg::None);
            args.finish()?;
            let affine = view::squeeze(x.shape(), &axis)?;
            Ok(View::built(x, affine, true))
        }
        "broadcast_to" => {
            let x = args.required(0, "x")?.into_plan("x")?;
            let shape = args.required(1, "shape")?.shape("shape")?;
            args.finish()?;
            let affine = view::broadcast_to(x.shape(), &shape)?;
            Ok(View::built(x, affine, false))
        }
        "concat" | "concatenate" | "stack" => join::build(name, args),
        _ => Err(Error::Internal(format!("{name} is not a layout operation"))),
    }
}

/// `axes` of `transpose`: `None` (reverse) or a permutation of `0..ndim` (negative axes
/// allowed), checked as NumPy does.
fn permutation(axes: &Arg, ndim: usize) -> Result<Vec<usize>> {
    let raw = match axes {
        Arg::None => return Ok((0..ndim).rev().collect()),
        Arg::Seq(items) => items
            .iter()
            .map(|i| i.int("axes"))
            .collect::<Result<Vec<_>>>()?,
        other => vec![other.int("axes")?],
    };
    if raw.len() != ndim {
        return Err(Error::Value("axes don't match array".into()));
    }
    let mut seen = vec![false; ndim];
    let mut perm = Vec::with_capacity(ndim);
    for a in raw {
        let a = normalize_axis(a, ndim)?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(Error::Value("repeated axis in transpose".into()));
        }
        perm.push(a);
    }
    Ok(perm)
}

/// The plan converted to `dtype` (NumPy's `astype`; a no-op for the same dtype).
pub(crate) fn cast_plan(plan: Plan, dtype: DType) -> Result<Plan> {
    if plan.dtype() == dtype {
        return Ok(plan);
    }
    Ok(Plan {
        root: typing::cast(plan.root, dtype)?,
        operands: plan.operands,
        checkpoint: plan.checkpoint,
    })
}

/// A plan whose result is an operation built here (for operations made of others, such as
/// `outer` of flattened inputs).
pub(crate) fn derived_plan(built: Built, inputs_force: bool) -> Plan {
    let derived = Derived::new(built, inputs_force);
    let (dtype, shape) = (derived.dtype, derived.shape.clone());
    Plan {
        root: Node {
            dtype,
            shape: shape.clone(),
            kind: NodeKind::Operand(0),
        },
        operands: vec![Operand {
            name: "\u{1}0".into(),
            dtype,
            shape,
            derived: Some(Arc::new(derived)),
        }],
        checkpoint: Default::default(),
    }
}

/// The plan with its axes permuted (`perm[k]` is the input axis of output axis `k`); the
/// plan itself for the identity.
pub(crate) fn permuted(plan: Plan, perm: &[usize]) -> Plan {
    if perm.iter().enumerate().all(|(k, &p)| k == p) {
        return plan;
    }
    let force = plan.forces_compute();
    let affine = Affine::permutation(plan.shape(), perm);
    derived_plan(View::built(plan, affine, false), force)
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{DType, Error, Expr, Operands};

    pub(crate) fn operands() -> Operands {
        let mut ops = Operands::new();
        ops.insert("a".into(), (DType::I16, vec![10, 4]));
        ops.insert("b".into(), (DType::F32, vec![3, 4]));
        ops.insert("v".into(), (DType::F64, vec![4]));
        ops
    }

    /// Evaluates `expr` over the box and returns the values (as f64) and the operand boxes
    /// read. Item `[i, j]` of `a` is `10 i + j`; of `b`, `-(10 i + j)`; of `v`, `j`.
    pub(crate) fn run(expr: &str, start: &[usize], stop: &[usize]) -> (Vec<f64>, Vec<String>) {
        let plan = Expr::parse(expr)
            .and_then(|e| e.plan(&operands()))
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let mut reads = Vec::new();
        let bytes = plan
            .eval_box(start, stop, &mut |name, s, e| {
                reads.push(format!("{name}{s:?}..{e:?}"));
                let mut out = Vec::new();
                let rows = if s.len() == 2 { s[0]..e[0] } else { 0..1 };
                for i in rows {
                    for j in s[s.len() - 1]..e[e.len() - 1] {
                        match name {
                            "a" => out.extend((10 * i as i16 + j as i16).to_ne_bytes()),
                            "b" => out.extend((-10.0 * i as f32 - j as f32).to_ne_bytes()),
                            _ => out.extend((j as f64).to_ne_bytes()),
                        }
                    }
                }
                Ok(out)
            })
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let values = match plan.dtype() {
            DType::I16 => bytes
                .chunks_exact(2)
                .map(|c| f64::from(i16::from_ne_bytes([c[0], c[1]])))
                .collect(),
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_ne_bytes(c.try_into().expect("4"))))
                .collect(),
            _ => bytes
                .chunks_exact(8)
                .map(|c| f64::from_ne_bytes(c.try_into().expect("8")))
                .collect(),
        };
        (values, reads)
    }

    #[test]
    fn slices_read_only_the_box_they_need() {
        // a[2:8, ::-1], rows 1..3 and columns 1..3: input rows 3..5, columns 1..3 reversed.
        let (values, reads) = run("a[2:8, ::-1]", &[1, 1], &[3, 3]);
        assert_eq!(reads, ["a[3, 1]..[5, 3]"]);
        assert_eq!(values, [32.0, 31.0, 42.0, 41.0]);
        // python-blosc2's spelling, with a stop past the end (clipped, as NumPy does).
        let plan = Expr::parse("a.slice((slice(None, 20, None),))")
            .and_then(|e| e.plan(&operands()))
            .expect("plans");
        assert_eq!(plan.shape(), [10, 4]);
        // A step of 3 reads the covering rows once.
        let (values, reads) = run("a[1::3, 2]", &[1], &[3]);
        assert_eq!(reads, ["a[4, 2]..[8, 3]"]);
        assert_eq!(values, [42.0, 72.0]);
    }

    #[test]
    fn joins_read_only_the_inputs_a_box_touches() {
        let (values, reads) = run("concat([a, b])", &[11, 1], &[13, 2]);
        assert_eq!(reads, ["b[1, 1]..[3, 2]"]);
        assert_eq!(values, [-11.0, -21.0]);
        let (values, reads) = run("concat([a, b])[9:11, 3]", &[0], &[2]);
        assert_eq!(reads, ["a[9, 3]..[10, 4]", "b[0, 3]..[1, 4]"]);
        assert_eq!(values, [93.0, -3.0]);
        let (values, _) = run("stack([v, v * 2], axis=1)", &[2, 0], &[4, 2]);
        assert_eq!(values, [2.0, 4.0, 3.0, 6.0]);
        let (values, _) = run("concatenate([b, a], axis=None)[10:14]", &[0], &[4]);
        assert_eq!(values, [-22.0, -23.0, 0.0, 1.0]);
    }

    #[test]
    fn linear_algebra_forces_compute() {
        let forces = |expr: &str| {
            Expr::parse(expr)
                .and_then(|e| e.plan(&operands()))
                .unwrap_or_else(|e| panic!("{expr}: {e}"))
                .forces_compute()
        };
        for expr in [
            "a[1:3] + 1",
            "a.T",
            "b.mT",
            "broadcast_to(v, (3, 4))",
            "a[::-1][2]",
        ] {
            assert!(!forces(expr), "{expr}");
        }
        for expr in [
            "concat([a, b])",
            "concatenate([a, b])",
            "stack([b, b])",
            "transpose(a)",
            "permute_dims(a, (1, 0))",
            "matrix_transpose(a)",
            "expand_dims(a, 0)",
            "squeeze(a)",
            "transpose(a)[1]",
        ] {
            assert!(forces(expr), "{expr}");
        }
    }

    #[test]
    fn advanced_indexing_is_refused() {
        let err = |expr: &str| {
            Expr::parse(expr)
                .and_then(|e| e.plan(&operands()))
                .expect_err(expr)
        };
        assert!(matches!(err("a[v]"), Error::Unsupported(_)));
        assert!(matches!(err("a[[1, 2]]"), Error::Unsupported(_)));
        assert!(matches!(err("a[True]"), Error::Unsupported(_)));
        assert!(matches!(err("concat(a)"), Error::Unsupported(_)));
    }
}
