//! Slab streaming: many small slabs (and the parallel paths of large ones) give the same
//! results as one slab, and the input is never read in pieces larger than a slab.

use std::collections::HashMap;
use std::sync::Arc;

use super::stream::{slab_items, slabs, Layout, TEST_SLAB};
use super::values::{items, with_item, Val};
use crate::col::Col;
use crate::structural::{extract_box, Derived};
use crate::{DType, Expr, Operands, Plan, Result};

struct Data {
    ops: Operands,
    bytes: HashMap<String, Vec<u8>>,
}

/// Deterministic values: small integers (and a NaN in float arrays when `nan`).
fn data(specs: &[(&str, DType, &[usize])], nan: bool) -> Data {
    let mut ops = Operands::new();
    let mut bytes = HashMap::new();
    for (k, (name, dt, shape)) in specs.iter().enumerate() {
        let n: usize = shape.iter().product();
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ k as u64;
        let vals: Vec<i64> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2001) as i64 - 1000
            })
            .collect();
        let col = if dt.is_float() || dt.is_complex() {
            let mut f: Vec<f64> = vals.iter().map(|&v| v as f64 / 8.0).collect();
            if nan && n > 7 {
                f[n / 3] = f64::NAN;
            }
            Col::F64(f).cast(*dt)
        } else {
            Col::I64(vals).cast(*dt)
        };
        let mut b = vec![0u8; n * dt.itemsize()];
        col.encode(&mut b);
        ops.insert(name.to_string(), (*dt, shape.to_vec()));
        bytes.insert(name.to_string(), b);
    }
    Data { ops, bytes }
}

fn derived(plan: &Plan) -> Arc<Derived> {
    plan.operands
        .iter()
        .find_map(|o| o.derived.clone())
        .expect("a derived operand")
}

/// The reduction `expr` built with slabs of `slab` items, evaluated over `start..stop`
/// directly (not through the eager cache); every read is at most `max_read` items.
fn eval(
    expr: &str,
    d: &Data,
    slab: usize,
    max_read: usize,
    start: &[usize],
    stop: &[usize],
) -> Result<(DType, Vec<u8>)> {
    TEST_SLAB.with(|s| s.set(slab));
    let plan = Expr::parse(expr).and_then(|e| e.plan(&d.ops));
    TEST_SLAB.with(|s| s.set(0));
    let der = derived(&plan?);
    let mut read = |name: &str, a: &[usize], b: &[usize]| -> Result<Vec<u8>> {
        let n: usize = a.iter().zip(b).map(|(a, b)| b - a).product();
        assert!(
            n <= max_read,
            "{expr}: read {a:?}..{b:?} ({n} items > {max_read})"
        );
        let (dt, shape) = &d.ops[name];
        Ok(extract_box(&d.bytes[name], shape, dt.itemsize(), a, b))
    };
    Ok((der.dtype, der.op.read_box(start, stop, &mut read)?))
}

fn values(dt: DType, bytes: &[u8]) -> Vec<(f64, f64)> {
    with_item!(dt, T => items::<T>(bytes).map(|v| {
        let c = Val::as_c(v);
        (c.re, c.im)
    }).collect())
}

/// Equal, within `tol` (relative) for floats.
fn same(dt: DType, a: &[u8], b: &[u8], tol: f64) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if !(dt.is_float() || dt.is_complex()) {
        return a == b;
    }
    let close = |x: f64, y: f64| {
        (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol * (x.abs().max(y.abs()) + 1.0)
    };
    values(dt, a)
        .iter()
        .zip(values(dt, b))
        .all(|(&(ar, ai), (br, bi))| close(ar, br) && close(ai, bi))
}

fn tolerance(dt: DType) -> f64 {
    match dt.real_part() {
        DType::F16 => 2e-3,
        DType::F32 => 2e-6,
        _ => 1e-12,
    }
}

#[test]
fn slabs_cover_the_box_in_order() {
    for (start, stop) in [
        (vec![0, 0, 0], vec![6, 5, 4]),
        (vec![1, 2, 0], vec![5, 5, 3]),
        (vec![3], vec![17]),
        (vec![], vec![]),
        (vec![0, 0, 0, 0], vec![2, 3, 1, 5]),
    ] {
        let nd = start.len();
        let total: usize = start.iter().zip(&stop).map(|(a, b)| b - a).product();
        for limit in [1, 2, 3, 4, 7, 20, 21, 1000] {
            // Every item of the box, in C order.
            let mut seen: Vec<Vec<usize>> = Vec::new();
            for (a, b) in slabs(&start, &stop, limit) {
                let n: usize = a.iter().zip(&b).map(|(a, b)| b - a).product();
                assert!(n >= 1 && n <= limit.max(1), "{a:?}..{b:?} limit {limit}");
                let mut idx = a.clone();
                'items: loop {
                    seen.push(idx.clone());
                    let mut d = nd;
                    loop {
                        if d == 0 {
                            break 'items;
                        }
                        d -= 1;
                        idx[d] += 1;
                        if idx[d] < b[d] {
                            break;
                        }
                        idx[d] = a[d];
                    }
                }
            }
            assert_eq!(seen.len(), total, "{start:?}..{stop:?} limit {limit}");
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "C order");
        }
    }
}

#[test]
fn layouts_merge_and_drop_dimensions() {
    // (6, 5, 4) reducing 0 and 2: outer reduced 6, kept 5, inner reduced 4.
    let l = Layout::new(&[6, 5, 4], &[true, false, true]);
    assert_eq!((l.inner, l.inner_reduced), (4, true));
    assert_eq!(l.kept, vec![0, 4, 8, 12, 16]);
    assert_eq!(l.reduced, vec![0, 20, 40, 60, 80, 100]);
    // Size-1 dimensions go, neighbours of the same kind merge.
    let l = Layout::new(&[3, 1, 2, 4], &[true, false, true, false]);
    assert_eq!((l.inner, l.inner_reduced), (4, false));
    assert_eq!(l.kept, vec![0]);
    assert_eq!(l.reduced, vec![0, 4, 8, 12, 16, 20]);
    let l = Layout::new(&[1, 1], &[false, true]);
    assert_eq!((l.inner, l.inner_reduced, l.outputs()), (1, true, 1));
}

const FUNCS: &[&str] = &[
    "sum",
    "prod",
    "mean",
    "var",
    "std",
    "min",
    "max",
    "any",
    "all",
    "count_nonzero",
];

#[test]
fn small_slabs_match_one_slab() {
    let d = data(
        &[
            ("b", DType::Bool, &[6, 5, 4]),
            ("i", DType::I16, &[6, 5, 4]),
            ("u", DType::U8, &[6, 5, 4]),
            ("h", DType::F16, &[6, 5, 4]),
            ("f", DType::F64, &[6, 5, 4]),
            ("c", DType::C64, &[6, 5, 4]),
        ],
        true,
    );
    let mut exprs = Vec::new();
    for f in FUNCS {
        for x in ["b", "i", "u", "h", "f", "c"] {
            for axis in ["None", "0", "1", "2", "(0, 2)", "(0, 1)", "(1, 2)", "()"] {
                exprs.push(format!("{f}({x}, axis={axis})"));
            }
            exprs.push(format!("{f}({x}, axis=1, keepdims=True)"));
        }
    }
    for f in ["argmax", "argmin"] {
        for x in ["b", "i", "u", "h", "f", "c"] {
            for axis in ["None", "0", "1", "2"] {
                exprs.push(format!("{f}({x}, axis={axis})"));
            }
        }
    }
    exprs.push("sum(i * 3 + 1, axis=1)".into());
    for expr in &exprs {
        let shape = Expr::parse(expr)
            .and_then(|e| e.result_type(&d.ops))
            .expect(expr)
            .1;
        let zeros = vec![0; shape.len()];
        let (dt, whole) = eval(expr, &d, usize::MAX, usize::MAX, &zeros, &shape).expect(expr);
        // Sub-boxes of the result: the whole, and a few partial ones.
        let mut boxes = vec![(zeros.clone(), shape.clone())];
        for k in 0..3 {
            let a: Vec<usize> = shape.iter().map(|&n| (k + 1).min(n - 1)).collect();
            let b: Vec<usize> = shape
                .iter()
                .zip(&a)
                .map(|(&n, &a)| (a + 2).min(n))
                .collect();
            boxes.push((a, b));
        }
        for slab in [1, 2, 3, 5, 13, 64] {
            for (a, b) in &boxes {
                let want = extract_box(&whole, &shape, dt.itemsize(), a, b);
                let (_, got) = eval(expr, &d, slab, slab, a, b).expect(expr);
                assert!(
                    same(dt, &got, &want, tolerance(dt)),
                    "{expr} slab {slab} box {a:?}..{b:?}: {:?} != {:?}",
                    values(dt, &got),
                    values(dt, &want)
                );
            }
        }
    }
}

#[test]
fn cumulative_small_slabs_match_one_slab() {
    let d = data(
        &[
            ("i", DType::I8, &[6, 5, 4]),
            ("h", DType::F16, &[6, 5, 4]),
            ("f", DType::F32, &[6, 5, 4]),
            ("c", DType::C128, &[6, 5, 4]),
            ("v", DType::U16, &[23]),
        ],
        false,
    );
    let mut exprs = Vec::new();
    for f in ["cumulative_sum", "cumulative_prod"] {
        for x in ["i", "h", "f", "c"] {
            for axis in ["0", "1", "2"] {
                exprs.push(format!("{f}({x}, axis={axis})"));
                exprs.push(format!("{f}({x}, axis={axis}, include_initial=True)"));
            }
        }
        exprs.push(format!("{f}(v, include_initial=True)"));
    }
    for f in ["cumsum", "cumprod"] {
        for x in ["i", "h", "f", "c", "v"] {
            exprs.push(format!("{f}({x})"));
        }
    }
    for expr in &exprs {
        let shape = Expr::parse(expr)
            .and_then(|e| e.result_type(&d.ops))
            .expect(expr)
            .1;
        let zeros = vec![0; shape.len()];
        let (dt, whole) = eval(expr, &d, usize::MAX, usize::MAX, &zeros, &shape).expect(expr);
        let mut boxes = vec![(zeros.clone(), shape.clone())];
        for k in 0..4 {
            let a: Vec<usize> = shape.iter().map(|&n| (k * 2 + 1).min(n - 1)).collect();
            let b: Vec<usize> = shape
                .iter()
                .zip(&a)
                .map(|(&n, &a)| (a + 3).min(n))
                .collect();
            boxes.push((a, b));
        }
        for slab in [1, 2, 3, 7, 40] {
            for (a, b) in &boxes {
                let want = extract_box(&whole, &shape, dt.itemsize(), a, b);
                let (_, got) = eval(expr, &d, slab, slab, a, b).expect(expr);
                // The same steps in the same order: exact.
                assert!(
                    same(dt, &got, &want, 0.0),
                    "{expr} slab {slab} box {a:?}..{b:?}"
                );
            }
        }
    }
}

/// Naive reference: the values reduced into each output, in order.
fn groups(shape: &[usize], reduced: &[bool], vals: &[f64]) -> Vec<Vec<f64>> {
    let nd = shape.len();
    let kept: Vec<usize> = (0..nd).filter(|&d| !reduced[d]).collect();
    let outputs: usize = kept.iter().map(|&d| shape[d]).product();
    let mut out = vec![Vec::new(); outputs];
    let mut idx = vec![0usize; nd];
    for &v in vals {
        let o = kept.iter().fold(0, |acc, &d| acc * shape[d] + idx[d]);
        out[o].push(v);
        for d in (0..nd).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

fn as_f64(dt: DType, bytes: &[u8]) -> Vec<f64> {
    values(dt, bytes).into_iter().map(|(r, _)| r).collect()
}

/// Large slabs take the parallel paths (rows of outputs, tiles of a long kept row, pieces
/// of one long reduction); they must agree with a naive reduction.
#[test]
fn parallel_paths_match_a_naive_reduction() {
    for shape in [&[70usize, 33, 64][..], &[40, 4100], &[300_000]] {
        let d = data(&[("a", DType::I32, shape), ("f", DType::F64, shape)], false);
        let ints = as_f64(DType::I32, &d.bytes["a"]);
        let floats = as_f64(DType::F64, &d.bytes["f"]);
        let nd = shape.len();
        let mut axes: Vec<Vec<usize>> = vec![(0..nd).collect()];
        axes.extend((0..nd).map(|a| vec![a]));
        if nd == 3 {
            axes.extend([vec![0, 2], vec![0, 1], vec![1, 2]]);
        }
        for ax in &axes {
            let reduced: Vec<bool> = (0..nd).map(|d| ax.contains(&d)).collect();
            let spelled = match &ax[..] {
                [one] => one.to_string(),
                _ if ax.len() == nd => "None".to_string(),
                _ => format!(
                    "({})",
                    ax.iter().map(|a| format!("{a},")).collect::<String>()
                ),
            };
            let out_shape: Vec<usize> =
                (0..nd).filter(|&d| !reduced[d]).map(|d| shape[d]).collect();
            let zeros = vec![0; out_shape.len()];
            let gi = groups(shape, &reduced, &ints);
            let gf = groups(shape, &reduced, &floats);
            for slab in [0, 100_000] {
                let run = |f: &str, x: &str| {
                    let expr = format!("{f}({x}, axis={spelled})");
                    let max_read = if slab == 0 { slab_items(8) } else { slab };
                    let (dt, bytes) =
                        eval(&expr, &d, slab, max_read, &zeros, &out_shape).expect(&expr);
                    (expr, as_f64(dt, &bytes))
                };
                let (e, got) = run("sum", "a");
                let want: Vec<f64> = gi.iter().map(|g| g.iter().sum()).collect();
                assert_eq!(got, want, "{e}");
                let (e, got) = run("max", "a");
                let want: Vec<f64> = gi
                    .iter()
                    .map(|g| g.iter().cloned().fold(f64::MIN, f64::max))
                    .collect();
                assert_eq!(got, want, "{e}");
                let (e, got) = run("count_nonzero", "a");
                let want: Vec<f64> = gi
                    .iter()
                    .map(|g| g.iter().filter(|&&v| v != 0.0).count() as f64)
                    .collect();
                assert_eq!(got, want, "{e}");
                if ax.len() == 1 || ax.len() == nd {
                    let (e, got) = run("argmin", "a");
                    let want: Vec<f64> = gi
                        .iter()
                        .map(|g| {
                            let m = g.iter().cloned().fold(f64::MAX, f64::min);
                            g.iter().position(|&v| v == m).expect("min") as f64
                        })
                        .collect();
                    assert_eq!(got, want, "{e}");
                }
                let (e, got) = run("mean", "f");
                let mean: Vec<f64> = gf
                    .iter()
                    .map(|g| g.iter().sum::<f64>() / g.len() as f64)
                    .collect();
                assert!(same_f64(&got, &mean), "{e}");
                let (e, got) = run("var", "f");
                let want: Vec<f64> = gf
                    .iter()
                    .zip(&mean)
                    .map(|(g, m)| g.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / g.len() as f64)
                    .collect();
                assert!(same_f64(&got, &want), "{e}");
            }
        }
    }
}

fn same_f64(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-10 * (x.abs().max(y.abs()) + 1.0))
}

/// The benchmark's shape of reduction, scaled down: `sum(a, axis=0)` over a uint16 array
/// bigger than a slab is read in slabs of at most a slab's items.
#[test]
fn big_reductions_read_in_slabs() {
    let shape = [40usize, 500, 1000];
    let d = data(&[("a", DType::U16, &shape)], false);
    let slab = slab_items(2);
    assert!(slab < 40 * 500 * 1000);
    let (dt, bytes) = eval("sum(a, axis=0)", &d, 0, slab, &[0, 0], &[500, 1000]).expect("sum");
    assert_eq!(dt, DType::U64);
    let a: Vec<u16> = d.bytes["a"]
        .chunks_exact(2)
        .map(|c| u16::from_ne_bytes([c[0], c[1]]))
        .collect();
    let plane = 500 * 1000;
    let got: Vec<u64> = items::<u64>(&bytes).collect();
    for j in (0..plane).step_by(997) {
        let want: u64 = (0..40).map(|i| u64::from(a[i * plane + j])).sum();
        assert_eq!(got[j], want, "item {j}");
    }
    // A box of the result reads only its own part of each plane.
    let (_, part) = eval(
        "sum(a, axis=0)",
        &d,
        0,
        40 * 10 * 1000,
        &[100, 0],
        &[110, 1000],
    )
    .expect("sum");
    assert_eq!(part, bytes[100 * 1000 * 8..110 * 1000 * 8]);
}
