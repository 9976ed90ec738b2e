//! Differential test against NumPy: random expressions over random operands of every dtype
//! and several broadcasting shapes, generated and evaluated by `fixtures/gen_cases.py` (fixed
//! seed). Checks the result dtype and shape, that NumPy and this crate fail on the same
//! expressions, and the values: exactly for integers, bools and correctly rounded float
//! operations; within a few ulps where NumPy uses its own SIMD transcendental functions.
//! A sample of cases is also evaluated box by box, to check sub-boxes with broadcasting.
//!
//! Needs `CAT2RS_PYTHON`: a Python with NumPy. Without it the test prints a note and passes.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use cat2_expr::{DType, Error, Expr};
use serde_json::Value;

struct Operand {
    dtype: DType,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The box `start..stop` of a C-order array.
fn extract(op: &Operand, start: &[usize], stop: &[usize]) -> Vec<u8> {
    let isz = op.dtype.itemsize();
    let nd = op.shape.len();
    let mut out = Vec::new();
    if start.iter().zip(stop).any(|(a, b)| a >= b) {
        return out;
    }
    let mut strides = vec![1usize; nd];
    for i in (0..nd.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * op.shape[i + 1];
    }
    let mut idx = start.to_vec();
    loop {
        let off: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.extend_from_slice(&op.bytes[off * isz..(off + 1) * isz]);
        let mut d = nd;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < stop[d] {
                break;
            }
            idx[d] = start[d];
        }
    }
}

fn shape_of(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("shape array")
        .iter()
        .map(|x| x.as_u64().expect("dim") as usize)
        .collect()
}

/// Values as f64 pairs (complex parts; imaginary 0 for real dtypes).
fn values(dtype: DType, bytes: &[u8]) -> Vec<(f64, f64)> {
    let isz = dtype.itemsize();
    bytes
        .chunks_exact(isz)
        .map(|c| {
            let f4 = |b: &[u8]| f64::from(f32::from_ne_bytes(b.try_into().expect("4")));
            let f8 = |b: &[u8]| f64::from_ne_bytes(b.try_into().expect("8"));
            match dtype {
                DType::F16 => (half_to_f64(u16::from_ne_bytes([c[0], c[1]])), 0.0),
                DType::F32 => (f4(c), 0.0),
                DType::F64 => (f8(c), 0.0),
                DType::C64 => (f4(&c[..4]), f4(&c[4..])),
                DType::C128 => (f8(&c[..8]), f8(&c[8..])),
                _ => (0.0, 0.0),
            }
        })
        .collect()
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f64::from(h & 0x3ff);
    sign * match exp {
        0 => man * 2f64.powi(-24),
        31 if man == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + man / 1024.0) * 2f64.powi(exp - 15),
    }
}

fn eps(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 2f64.powi(-10),
        DType::F32 | DType::C64 => 2f64.powi(-23),
        _ => 2f64.powi(-52),
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    a == b || (a - b).abs() <= tol * (a.abs().max(b.abs()) + 1.0)
}

/// Compares results; `None` when they match.
fn compare(dtype: DType, got: &[u8], want: &[u8], case_eps: f64) -> Option<String> {
    if got.len() != want.len() {
        return Some(format!("{} bytes, expected {}", got.len(), want.len()));
    }
    if !(dtype.is_float() || dtype.is_complex()) {
        return (got != want).then(|| "integer/bool values differ".to_string());
    }
    // Exactly rounded operations must match exactly (complex parts get a hair of tolerance:
    // NumPy may fuse multiply-adds in its SIMD loops). Results that went through
    // transcendental functions get a few ulps of the least precise such step.
    let tol = if case_eps > 0.0 {
        32.0 * case_eps.max(eps(dtype))
    } else if dtype.is_complex() {
        2.0 * eps(dtype)
    } else {
        0.0
    };
    let (g, w) = (values(dtype, got), values(dtype, want));
    let finite = |r: f64, i: f64| r.is_finite() && i.is_finite();
    for (i, (&(gr, gi), &(wr, wi))) in g.iter().zip(&w).enumerate() {
        let ok = if dtype.is_complex() && finite(gr, gi) && finite(wr, wi) {
            // Complex values: the error relative to the modulus.
            (gr - wr).hypot(gi - wi) <= tol * (wr.hypot(wi) + 1.0)
        } else if dtype.is_complex() && case_eps > 0.0 {
            // Overflowed results of approximate complex functions: NumPy's single-step
            // overflows can leave NaN where a careful formula keeps an infinity.
            !finite(gr, gi) && !finite(wr, wi)
        } else {
            close(gr, wr, tol) && close(gi, wi, tol)
        };
        if !ok {
            return Some(format!(
                "item {i}: got ({gr:e}, {gi:e}), expected ({wr:e}, {wi:e})"
            ));
        }
    }
    None
}

/// Whether our error is the counterpart of NumPy's exception (`"TypeError: ..."`).
fn same_kind(numpy: &str, ours: &Error) -> bool {
    let class = numpy.split(':').next().unwrap_or_default();
    match ours {
        Error::Type(_) => ["TypeError", "UFuncTypeError", "OverflowError"].contains(&class),
        // NumPy's `IndexError`s (basic indexing) and `AxisError` (a `ValueError` and an
        // `IndexError`) are value errors here.
        Error::Value(_) | Error::Shape(_) => {
            ["ValueError", "ZeroDivisionError", "IndexError", "AxisError"].contains(&class)
        }
        Error::UnknownName(_) | Error::UnknownFunction(_) => class == "NameError",
        _ => false,
    }
}

#[test]
fn expressions_match_numpy() {
    run_cases("gen_cases.py", 4);
}

/// Reductions, constructors, indexing, joins, matrix products and casts: the hand-written
/// cases of `fixtures/structural/*.txt`, evaluated by NumPy (`fixtures/gen_structural.py`).
#[test]
fn structural_expressions_match_numpy() {
    run_cases("gen_structural.py", 1);
}

/// Runs a case generator and checks every case; every `subbox_every`-th case is also
/// evaluated in sub-boxes.
fn run_cases(generator: &str, subbox_every: usize) {
    let Some(python) = std::env::var_os("CAT2RS_PYTHON") else {
        eprintln!("note: CAT2RS_PYTHON is not set; skipping the NumPy differential test");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(generator);
    let status = Command::new(python)
        .arg(&script)
        .arg(dir.path())
        .status()
        .expect("running the case generator");
    assert!(status.success(), "{generator} failed");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("manifest.json")).expect("manifest"),
    )
    .expect("json");

    let mut operands = HashMap::new();
    let mut data = HashMap::new();
    for (name, o) in manifest["operands"].as_object().expect("operands") {
        let dtype = DType::from_numpy(o["dtype"].as_str().expect("dtype")).expect("known dtype");
        let shape = shape_of(&o["shape"]);
        let bytes =
            std::fs::read(dir.path().join(o["file"].as_str().expect("file"))).expect("read");
        operands.insert(name.clone(), (dtype, shape.clone()));
        data.insert(
            name.clone(),
            Operand {
                dtype,
                shape,
                bytes,
            },
        );
    }

    let mut failures = Vec::new();
    let (mut ok, mut errors, mut flat_cases) = (0, 0, 0);
    let cases = manifest["cases"].as_array().expect("cases");
    for (k, case) in cases.iter().enumerate() {
        let text = case["expr"].as_str().expect("expr");
        let case_eps = case["eps"].as_f64().unwrap_or(0.0);
        let planned = Expr::parse(text).and_then(|e| e.plan(&operands));
        if let Some(err) = case["error"].as_str() {
            match planned.and_then(|p| {
                let stop = p.shape().to_vec();
                p.eval_box(&vec![0; stop.len()], &stop, &mut |n, a, b| {
                    Ok(extract(&data[n], a, b))
                })
            }) {
                Ok(_) => failures.push(format!("{text}: NumPy raised {err}, we did not")),
                Err(e) if same_kind(err, &e) => errors += 1,
                // NumPy evaluates eagerly, left to right, so a run-time error on the left
                // can come before a type error on the right that we find first.
                Err(Error::Type(_)) if err.starts_with("ValueError: Integers to negative") => {
                    errors += 1
                }
                Err(e) => failures.push(format!("{text}: NumPy raised {err}, we: {e:?}")),
            }
            continue;
        }
        let plan = match planned {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{text}: {e}"));
                continue;
            }
        };
        let want_dtype = DType::from_numpy(case["dtype"].as_str().expect("dtype")).expect("dtype");
        let want_shape = shape_of(&case["shape"]);
        if plan.dtype() != want_dtype || plan.shape() != want_shape {
            failures.push(format!(
                "{text}: type {} {:?}, NumPy {want_dtype} {want_shape:?}",
                plan.dtype(),
                plan.shape()
            ));
            continue;
        }
        let want =
            std::fs::read(dir.path().join(case["file"].as_str().expect("file"))).expect("read");
        let mut read = |n: &str, a: &[usize], b: &[usize]| -> Result<Vec<u8>, Error> {
            Ok(extract(&data[n], a, b))
        };
        let full = match plan.eval_box(&vec![0; want_shape.len()], &want_shape, &mut read) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{text}: evaluation failed: {e}"));
                continue;
            }
        };
        if let Some(why) = compare(want_dtype, &full, &want, case_eps) {
            failures.push(format!("{text} ({want_dtype}): {why}"));
            continue;
        }
        // Element-wise plans over same-shape operands: the flat evaluation (what the
        // server runs on whole decompressed chunks) gives the same bytes.
        if let Some(names) = plan.flat_operands() {
            flat_cases += 1;
            let inputs: Vec<&[u8]> = names.iter().map(|n| data[*n].bytes.as_slice()).collect();
            let mut flat = vec![0u8; full.len()];
            match plan.eval_flat(&inputs, &mut flat) {
                Ok(()) if flat == full => {}
                Ok(()) => failures.push(format!("{text}: eval_flat differs from eval_box")),
                Err(e) => failures.push(format!("{text}: eval_flat: {e}")),
            }
        }
        // Sub-boxes: every fourth case, a few boxes of the result.
        if k % subbox_every == 0 && !want_shape.is_empty() {
            let result = Operand {
                dtype: want_dtype,
                shape: want_shape.clone(),
                bytes: full.clone(),
            };
            for (i, _) in (0..3).enumerate() {
                let start: Vec<usize> = want_shape.iter().map(|&d| (i + k) % d.max(1)).collect();
                let stop: Vec<usize> = start
                    .iter()
                    .zip(&want_shape)
                    .map(|(&a, &d)| (a + 2 + i).min(d))
                    .collect();
                match plan.eval_box(&start, &stop, &mut read) {
                    Ok(part) if part == extract(&result, &start, &stop) => {}
                    Ok(_) => failures.push(format!("{text}: box {start:?}..{stop:?} differs")),
                    Err(e) => failures.push(format!("{text}: box {start:?}..{stop:?}: {e}")),
                }
            }
        }
        ok += 1;
    }
    eprintln!(
        "{} cases: {ok} values matched ({flat_cases} also flat), {errors} errors matched, \
         {} failures",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ok > cases.len() / 2, "too few successful cases: {ok}");
}
