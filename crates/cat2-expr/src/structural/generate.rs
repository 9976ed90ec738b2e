//! Constructors: `linspace`, `arange`, `zeros`, `ones`, `full`, `empty`, `nans`, `eye` and
//! the `*_like` forms.
//!
//! They have no input: each item is a function of its flat (C-order) index, so any box is
//! computed directly, in parallel, without materialising the rest. Values follow NumPy's
//! formulas (`linspace`: `i * step + start` with the last item exactly `stop`; `arange`:
//! `start + i * step`), and python-blosc2's `shape=` keyword lays the sequence out in that
//! shape.

use rayon::prelude::*;

use super::args::{take_dtype, Arg};
use super::{py_f64, Args, Built, Structural};
use crate::col::Col;
use crate::dtype::{DType, Kind};
use crate::error::{Error, Result};
use crate::pyscalar::Py;
use crate::typing::weak_dtype;
use crate::{Plan, ReadOperand};

/// What each item is, as a function of its flat index.
#[derive(Debug, Clone)]
enum Rule {
    /// NumPy's `linspace`: `i * step + start` (`i / div * delta + start` when the step
    /// underflows to 0), the last item `stop` when `endpoint`; floored for integer dtypes.
    Linspace {
        start: f64,
        delta: f64,
        div: usize,
        num: usize,
        stop: Option<f64>,
    },
    /// `start + i * step`, in integers when the dtype is integral.
    ArangeInt {
        start: i64,
        step: i64,
    },
    ArangeFloat {
        start: f64,
        step: f64,
    },
    /// One value everywhere.
    Fill(Col),
    /// Ones on the `k`-th diagonal of an `n × m` matrix.
    Eye {
        m: usize,
        k: i64,
    },
}

#[derive(Debug)]
struct Generate {
    dtype: DType,
    shape: Vec<usize>,
    rule: Rule,
}

/// Items per parallel task.
const TASK: usize = 1 << 16;

impl Structural for Generate {
    fn inputs(&self) -> Vec<&Plan> {
        Vec::new()
    }

    fn read_box(
        &self,
        start: &[usize],
        stop: &[usize],
        _read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        let flat = flat_indices(&self.shape, start, stop);
        let itemsize = self.dtype.itemsize();
        let mut out = vec![0u8; flat.len() * itemsize];
        out.par_chunks_mut(TASK * itemsize)
            .zip(flat.par_chunks(TASK))
            .for_each(|(o, idx)| self.values(idx).encode(o));
        Ok(out)
    }
}

impl Generate {
    fn values(&self, idx: &[usize]) -> Col {
        match &self.rule {
            Rule::Linspace {
                start,
                delta,
                div,
                num,
                stop,
            } => {
                let step = if *div > 0 {
                    delta / *div as f64
                } else {
                    f64::NAN
                };
                let v: Vec<f64> = idx
                    .iter()
                    .map(|&i| {
                        let y = if let (Some(stop), true) = (stop, i + 1 == *num && *num > 1) {
                            *stop
                        } else if *div == 0 {
                            *start
                        } else if step == 0.0 {
                            i as f64 / *div as f64 * delta + start
                        } else {
                            i as f64 * step + start
                        };
                        if matches!(self.dtype.kind(), Kind::Int | Kind::Bool) {
                            y.floor()
                        } else {
                            y
                        }
                    })
                    .collect();
                Col::F64(v).cast(self.dtype)
            }
            Rule::ArangeInt { start, step } => Col::I64(
                idx.iter()
                    .map(|&i| start.wrapping_add((i as i64).wrapping_mul(*step)))
                    .collect(),
            )
            .cast(self.dtype),
            Rule::ArangeFloat { start, step } => {
                Col::F64(idx.iter().map(|&i| start + i as f64 * step).collect()).cast(self.dtype)
            }
            Rule::Fill(value) => value.repeat(idx.len()),
            Rule::Eye { m, k } => Col::Bool(
                idx.iter()
                    .map(|&i| (i % m) as i64 - (i / m) as i64 == *k)
                    .collect(),
            )
            .cast(self.dtype),
        }
    }
}

/// The flat C-order indices of the items of a box, in C order.
fn flat_indices(shape: &[usize], start: &[usize], stop: &[usize]) -> Vec<usize> {
    let mut out = vec![0usize];
    for d in 0..shape.len() {
        let mut next = Vec::with_capacity(out.len() * (stop[d] - start[d]));
        for base in out {
            next.extend((start[d]..stop[d]).map(|i| base * shape[d] + i));
        }
        out = next;
    }
    out
}

fn finish(args: Args, dtype: DType, shape: Vec<usize>, rule: Rule) -> Result<Built> {
    args.finish()?;
    Ok(Built {
        dtype,
        shape: shape.clone(),
        op: Box::new(Generate { dtype, shape, rule }),
    })
}

fn real(arg: &Arg, what: &str) -> Result<f64> {
    py_f64(arg.py(what)?)
        .ok_or_else(|| Error::Unsupported(format!("complex {what} is not supported")))
}

/// python-blosc2's `shape=` (a 1-D sequence of `len` items laid out in that shape).
fn layout(args: &mut Args, len: usize) -> Result<Vec<usize>> {
    match args.keyword("shape")? {
        None | Some(Arg::None) => Ok(vec![len]),
        Some(s) => {
            let shape = s.shape("shape")?;
            if shape.iter().product::<usize>() != len {
                return Err(Error::Value(format!(
                    "the shape {shape:?} does not hold the {len} items of {}()",
                    args.func()
                )));
            }
            Ok(shape)
        }
    }
}

/// The dtype NumPy gives a Python fill value.
fn fill_dtype(p: Py) -> DType {
    weak_dtype(&p, None)
}

pub(crate) fn build(name: &str, mut args: Args) -> Result<Built> {
    match name {
        "linspace" => {
            let start = real(&args.required(0, "start")?, "start")?;
            let stop = real(&args.required(1, "stop")?, "stop")?;
            let num = match args.take(2, "num")? {
                Some(n) => usize::try_from(n.int("num")?).map_err(|_| {
                    Error::Value("Number of samples, -1, must be non-negative.".into())
                })?,
                None => 50,
            };
            let endpoint = match args.take(3, "endpoint")? {
                Some(e) => e.truth("endpoint")?,
                None => true,
            };
            let dtype = take_dtype(&mut args, 5)?.unwrap_or(DType::F64);
            let shape = layout(&mut args, num)?;
            let div = if endpoint { num.saturating_sub(1) } else { num };
            let rule = Rule::Linspace {
                start,
                delta: stop - start,
                div,
                num,
                stop: endpoint.then_some(stop),
            };
            finish(args, dtype, shape, rule)
        }
        "arange" => {
            let first = args.required(0, "start")?;
            let second = args.take(1, "stop")?.filter(|a| !matches!(a, Arg::None));
            let step = args.take(2, "step")?.unwrap_or(Arg::Scalar(Py::Int(1)));
            let (start, stop) = match second {
                Some(stop) => (first, stop),
                None => (Arg::Scalar(Py::Int(0)), first),
            };
            let (p0, p1, ps) = (start.py("start")?, stop.py("stop")?, step.py("step")?);
            let all_int = [p0, p1, ps]
                .iter()
                .all(|p| matches!(p, Py::Int(_) | Py::Bool(_)));
            let dtype =
                take_dtype(&mut args, 3)?.unwrap_or(if all_int { DType::I64 } else { DType::F64 });
            let (a, b, s) = (
                real(&start, "start")?,
                real(&stop, "stop")?,
                real(&step, "step")?,
            );
            if s == 0.0 {
                return Err(Error::Value("Maximum allowed size exceeded".into()));
            }
            let len = ((b - a) / s).ceil().max(0.0);
            if !len.is_finite() || len > 1e15 {
                return Err(Error::Value("Maximum allowed size exceeded".into()));
            }
            let shape = layout(&mut args, len as usize)?;
            let rule = if all_int && dtype.kind() != Kind::Float && dtype.kind() != Kind::Complex {
                Rule::ArangeInt {
                    start: start.int("start")?,
                    step: step.int("step")?,
                }
            } else {
                Rule::ArangeFloat { start: a, step: s }
            };
            finish(args, dtype, shape, rule)
        }
        "zeros" | "ones" | "empty" | "nans" | "full" => {
            let shape = args.required(0, "shape")?.shape("shape")?;
            let (value, index) = match name {
                "full" => (Some(args.required(1, "fill_value")?.py("fill_value")?), 2),
                "ones" => (Some(Py::Int(1)), 1),
                "nans" => (Some(Py::Float(f64::NAN)), 1),
                _ => (Some(Py::Int(0)), 1),
            };
            let default = match (name, value) {
                ("full", Some(p)) => fill_dtype(p),
                _ => DType::F64,
            };
            let dtype = take_dtype(&mut args, index)?.unwrap_or(default);
            let value = Col::from_py(value.unwrap_or(Py::Int(0)), dtype)?;
            finish(args, dtype, shape, Rule::Fill(value))
        }
        "eye" => {
            let n = args.required(0, "N")?.shape("N")?;
            let [n] = n[..] else {
                return Err(Error::Type("N must be an integer".into()));
            };
            let m = match args.take(1, "M")? {
                None | Some(Arg::None) => n,
                Some(m) => usize::try_from(m.int("M")?)
                    .map_err(|_| Error::Value("negative dimensions are not allowed".into()))?,
            };
            let k = match args.take(2, "k")? {
                Some(k) => k.int("k")?,
                None => 0,
            };
            let dtype = take_dtype(&mut args, 3)?.unwrap_or(DType::F64);
            finish(args, dtype, vec![n, m], Rule::Eye { m: m.max(1), k })
        }
        _ => {
            // The `*_like` forms: the shape and dtype of an array argument.
            let like = args.required(0, "x")?.into_plan("x")?;
            let value = match name {
                "full_like" => args.required(1, "fill_value")?.py("fill_value")?,
                "ones_like" => Py::Int(1),
                _ => Py::Int(0),
            };
            let index = if name == "full_like" { 2 } else { 1 };
            let dtype = take_dtype(&mut args, index)?.unwrap_or(like.dtype());
            let value = Col::from_py(value, dtype)?;
            finish(args, dtype, like.shape().to_vec(), Rule::Fill(value))
        }
    }
}
