//! Reductions (`sum`, `prod`, `mean`, `std`, `var`, `min`, `max`, `any`, `all`,
//! `count_nonzero`, `argmax`, `argmin`) and cumulative sums and products
//! (`cumulative_sum`, `cumulative_prod`, `cumsum`, `cumprod`), with NumPy's result dtypes,
//! shapes and errors.
//!
//! A box of a reduction's result needs the same box of its input on kept dimensions and the
//! whole input on reduced ones; that input box is streamed slab by slab (`stream`) through
//! typed accumulation loops (`kernels`), so no reduction holds its whole input. Reductions
//! are eager: the framework computes a small result once per plan.
//!
//! Accumulators: wrapping `i64`/`u64` for integer sums and products (NumPy's `int64` and
//! `uint64` results wrap the same way), `f64` for float sums, means and variances (float16
//! and float32 results are rounded at the end, so they may differ from NumPy's own float32
//! arithmetic in the last bits), complex `f64` pairs for complex ones. Variances are exact
//! two-pass computations per slab, merged across slabs with Chan's formula.
//!
//! Parameters are bound by position as python-blosc2 declares them (`sum(x, axis, dtype,
//! keepdims)`, `std(x, axis, dtype, ddof, keepdims)`, `max(x, axis, keepdims)`, `argmax(x,
//! axis, keepdims)`, `cumulative_sum(x, axis, dtype, include_initial)`), which is also
//! NumPy's order up to `dtype`; `out=` and `where=` are refused unless `None`.

use super::args::{normalize_axis, take_dtype};
use super::{Arg, Args, Built, Structural};
use crate::col::Col;
use crate::dtype::{DType, Kind};
use crate::error::{Error, Result};
use crate::pyscalar::Py;
use crate::typing;
use crate::{Plan, ReadOperand};

mod cumulative;
mod kernels;
mod stream;
#[cfg(test)]
mod tests;
mod values;

use kernels::{ArgExtreme, CountNonzero, Extreme, Kernel, Prod, Sum, Truth, Variance, NO_INDEX};
use values::{with_item, Item, Mean, Num, Ordered, Val};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Sum,
    Prod,
    Mean,
    Var,
    Std,
    Min,
    Max,
    Any,
    All,
    CountNonzero,
    ArgMax,
    ArgMin,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "sum" => Func::Sum,
            "prod" => Func::Prod,
            "mean" => Func::Mean,
            "var" => Func::Var,
            "std" => Func::Std,
            "min" => Func::Min,
            "max" => Func::Max,
            "any" => Func::Any,
            "all" => Func::All,
            "count_nonzero" => Func::CountNonzero,
            "argmax" => Func::ArgMax,
            "argmin" => Func::ArgMin,
            _ => return None,
        })
    }

    /// NumPy's ufunc name in its messages.
    fn ufunc(self) -> &'static str {
        match self {
            Func::Min => "minimum",
            Func::Max => "maximum",
            Func::ArgMax => "argmax",
            _ => "argmin",
        }
    }
}

/// A reduction of `input` over the dimensions marked in `reduced`.
#[derive(Debug)]
struct Reduce {
    func: Func,
    input: Plan,
    reduced: Vec<bool>,
    keepdims: bool,
    dtype: DType,
    /// Delta degrees of freedom (`var`, `std`).
    ddof: f64,
    /// Items per slab read from the input.
    slab: usize,
}

/// The dtype of NumPy's `sum`, `prod` and cumulative sums without `dtype=`: small integers
/// and bools widen to the platform integer of their signedness.
pub(super) fn sum_dtype(dt: DType) -> DType {
    match dt {
        DType::Bool | DType::I8 | DType::I16 | DType::I32 => DType::I64,
        DType::U8 | DType::U16 | DType::U32 => DType::U64,
        other => other,
    }
}

/// The array argument (NumPy calls it `a`, python-blosc2 `ndarr`, the array API `x`).
pub(super) fn take_array(args: &mut Args) -> Result<Plan> {
    let arg = match args.take(0, "a")? {
        Some(a) => Some(a),
        None => match args.keyword("ndarr")? {
            Some(a) => Some(a),
            None => args.keyword("x")?,
        },
    };
    arg.ok_or_else(|| {
        Error::Type(format!(
            "{}() missing required argument 'a' (pos 1)",
            args.func()
        ))
    })?
    .into_plan("a")
}

/// Refuses NumPy parameters this engine does not implement, unless they are `None`.
pub(super) fn refuse(args: &mut Args, names: &[&str]) -> Result<()> {
    for name in names {
        if let Some(a) = args.keyword(name)? {
            if !matches!(a, Arg::None) {
                return Err(Error::Unsupported(format!(
                    "{}() with {name}= is not supported",
                    args.func()
                )));
            }
        }
    }
    Ok(())
}

fn truth(arg: Option<Arg>, what: &str) -> Result<bool> {
    arg.map_or(Ok(false), |a| a.truth(what))
}

/// The input cast to `dtype` (NumPy's reductions cast their input to `dtype=`, unsafely).
pub(super) fn cast_input(plan: Plan, dtype: DType) -> Result<Plan> {
    if plan.dtype() == dtype {
        return Ok(plan);
    }
    Ok(Plan {
        root: typing::cast(plan.root, dtype)?,
        operands: plan.operands,
        checkpoint: plan.checkpoint,
    })
}

pub(crate) fn build(name: &str, mut args: Args) -> Result<Built> {
    let Some(func) = Func::from_name(name) else {
        return cumulative::build(name, args);
    };
    let input = take_array(&mut args)?;
    let ndim = input.shape().len();
    let axis = args.take(1, "axis")?.unwrap_or(Arg::None);
    let (dtype, ddof, keepdims) = match func {
        Func::Sum | Func::Prod | Func::Mean => {
            let dtype = take_dtype(&mut args, 2)?;
            (dtype, 0.0, truth(args.take(3, "keepdims")?, "keepdims")?)
        }
        Func::Var | Func::Std => {
            let dtype = take_dtype(&mut args, 2)?;
            let ddof = args.take(3, "ddof")?;
            let correction = args.keyword("correction")?;
            let value = |a: &Arg, what: &str| -> Result<f64> {
                super::py_f64(a.py(what)?)
                    .ok_or_else(|| Error::Type(format!("{what} must be a real number")))
            };
            let ddof = match (ddof, correction) {
                (Some(d), Some(c)) => {
                    if value(&d, "ddof")? != 0.0 {
                        return Err(Error::Value(
                            "ddof and correction can't be provided simultaneously.".into(),
                        ));
                    }
                    value(&c, "correction")?
                }
                (Some(d), None) => value(&d, "ddof")?,
                (None, Some(c)) => value(&c, "correction")?,
                (None, None) => 0.0,
            };
            (dtype, ddof, truth(args.take(4, "keepdims")?, "keepdims")?)
        }
        Func::CountNonzero => (None, 0.0, truth(args.keyword("keepdims")?, "keepdims")?),
        _ => (None, 0.0, truth(args.take(2, "keepdims")?, "keepdims")?),
    };
    // NumPy's parameters that this engine does not implement.
    let unsupported: &[&str] = match func {
        Func::Sum | Func::Prod | Func::Min | Func::Max => &["out", "where", "initial"],
        Func::Var | Func::Std => &["out", "where", "mean"],
        Func::CountNonzero => &[],
        Func::ArgMax | Func::ArgMin => &["out"],
        _ => &["out", "where"],
    };
    refuse(&mut args, unsupported)?;
    args.finish()?;

    let reduced = reduced_dims(func, &axis, ndim)?;

    let in_shape = input.shape().to_vec();
    let shape: Vec<usize> = in_shape
        .iter()
        .zip(&reduced)
        .filter_map(|(&n, &r)| match (r, keepdims) {
            (false, _) => Some(n),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let count: usize = in_shape
        .iter()
        .zip(&reduced)
        .filter(|(_, &r)| r)
        .map(|(&n, _)| n)
        .product();
    if count == 0 && shape.iter().product::<usize>() > 0 {
        match func {
            Func::Min | Func::Max => {
                return Err(Error::Value(format!(
                    "zero-size array to reduction operation {} which has no identity",
                    func.ufunc()
                )))
            }
            Func::ArgMax | Func::ArgMin => {
                return Err(Error::Value(format!(
                    "attempt to get {} of an empty sequence",
                    func.ufunc()
                )))
            }
            _ => {}
        }
    }

    let in_dt = input.dtype();
    let mut input = input;
    let out = match func {
        Func::Sum | Func::Prod => match dtype {
            Some(dt) => {
                input = cast_input(input, dt)?;
                dt
            }
            None => sum_dtype(in_dt),
        },
        Func::Mean => match dtype {
            Some(dt) => {
                input = cast_input(input, dt)?;
                dt
            }
            None if matches!(in_dt.kind(), Kind::Bool | Kind::Int) => DType::F64,
            None => in_dt,
        },
        Func::Var | Func::Std => match dtype {
            Some(dt) if dt.is_float() => {
                input = cast_input(input, dt)?;
                dt
            }
            Some(dt) => {
                return Err(Error::Unsupported(format!(
                    "{name}() with dtype={dt} is not supported (only float dtypes)"
                )))
            }
            None if matches!(in_dt.kind(), Kind::Bool | Kind::Int) => DType::F64,
            None => in_dt.real_part(),
        },
        Func::Min | Func::Max => in_dt,
        Func::Any | Func::All => DType::Bool,
        Func::CountNonzero | Func::ArgMax | Func::ArgMin => DType::I64,
    };
    let slab = stream::slab_items(input.dtype().itemsize());
    Ok(Built {
        dtype: out,
        shape,
        op: Box::new(Reduce {
            func,
            input,
            reduced,
            keepdims,
            dtype: out,
            ddof,
            slab,
        }),
    })
}

/// Which dimensions `axis` reduces, as NumPy reads it for `func`.
fn reduced_dims(func: Func, axis: &Arg, ndim: usize) -> Result<Vec<bool>> {
    // NumPy lets an integer axis 0 or -1 name the one "dimension" of a 0-d array, except in
    // `mean`, `var` and `std`.
    if ndim == 0
        && !matches!(func, Func::Mean | Func::Var | Func::Std)
        && matches!(axis, Arg::Scalar(Py::Int(0 | -1)))
    {
        return Ok(Vec::new());
    }
    let axes = if matches!(func, Func::ArgMax | Func::ArgMin) {
        // A single axis (a tuple is a TypeError).
        match axis {
            Arg::None => None,
            a => Some(vec![normalize_axis(a.int("axis")?, ndim)?]),
        }
    } else {
        axis.axes(ndim)?
    };
    Ok(match axes {
        None => vec![true; ndim],
        Some(axes) => (0..ndim).map(|d| axes.contains(&d)).collect(),
    })
}

/// The kind of accumulator of a sum or product into `dtype`.
#[derive(Clone, Copy)]
enum AccKind {
    Signed,
    Unsigned,
    Float,
    Complex,
}

fn acc_kind(dtype: DType) -> AccKind {
    match dtype.kind() {
        Kind::Bool | Kind::Int if dtype.is_unsigned() => AccKind::Unsigned,
        Kind::Bool | Kind::Int => AccKind::Signed,
        Kind::Float => AccKind::Float,
        Kind::Complex => AccKind::Complex,
    }
}

impl Structural for Reduce {
    fn inputs(&self) -> Vec<&Plan> {
        vec![&self.input]
    }

    fn eager(&self) -> bool {
        true
    }

    fn read_box(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        // The input box: the output box on kept dimensions, everything on reduced ones.
        let in_shape = self.input.shape();
        let (mut in_start, mut in_stop) = (Vec::new(), Vec::new());
        let mut o = 0;
        for (d, &n) in in_shape.iter().enumerate() {
            if self.reduced[d] {
                in_start.push(0);
                in_stop.push(n);
                o += usize::from(self.keepdims);
            } else {
                in_start.push(start[o]);
                in_stop.push(stop[o]);
                o += 1;
            }
        }
        let b = InBox {
            start: in_start,
            stop: in_stop,
            outputs: start.iter().zip(stop).map(|(a, b)| b - a).product(),
            count: in_shape
                .iter()
                .zip(&self.reduced)
                .filter(|(_, &r)| r)
                .map(|(&n, _)| n)
                .product(),
        };
        let col = self.compute(&b, read)?;
        let mut out = vec![0u8; b.outputs * self.dtype.itemsize()];
        col.encode(&mut out);
        Ok(out)
    }
}

/// The input box of one output box.
struct InBox {
    start: Vec<usize>,
    stop: Vec<usize>,
    /// Items in the output box.
    outputs: usize,
    /// Input items per output item.
    count: usize,
}

impl Reduce {
    /// Streams the input box through `k` into `acc` (one accumulator per output item).
    fn stream<K: Kernel>(
        &self,
        k: &K,
        acc: &mut [K::Acc],
        b: &InBox,
        read: &mut ReadOperand<'_>,
    ) -> Result<()> {
        let itemsize = self.input.dtype().itemsize();
        stream::for_each_slab(
            &self.input,
            &b.start,
            &b.stop,
            &self.reduced,
            self.slab,
            read,
            |data, lay, range, idx| {
                stream::run(k, lay, data, itemsize, &mut acc[range], idx);
                Ok(())
            },
        )
    }

    fn compute(&self, b: &InBox, read: &mut ReadOperand<'_>) -> Result<Col> {
        let out = self.dtype;
        let n = b.outputs;
        Ok(match self.func {
            Func::Sum | Func::Prod | Func::Mean => {
                let prod = self.func == Func::Prod;
                let sums = match acc_kind(out) {
                    AccKind::Signed => self.sum_prod::<i64>(prod, b, read)?,
                    AccKind::Unsigned => self.sum_prod::<u64>(prod, b, read)?,
                    AccKind::Float => self.sum_prod::<f64>(prod, b, read)?,
                    AccKind::Complex => self.sum_prod::<num_complex::Complex64>(prod, b, read)?,
                };
                if self.func != Func::Mean {
                    return Ok(sums.cast(out));
                }
                // Integer means (`dtype=int32`) wrap the sum to the dtype and truncate the
                // quotient, as NumPy's `true_divide(..., out=sum, casting='unsafe')`.
                let sums = if matches!(out.kind(), Kind::Bool | Kind::Int) {
                    sums.cast(out).cast(DType::F64)
                } else {
                    sums
                };
                let k = b.count as f64;
                match sums {
                    Col::F64(v) => Col::F64(v.into_iter().map(|s| s / k).collect()),
                    Col::C128(v) => Col::C128(v.into_iter().map(|s| s / k).collect()),
                    _ => return Err(Error::Internal("mean of an integer sum".into())),
                }
                .cast(out)
            }
            Func::Var | Func::Std => {
                let acc = if self.input.dtype().is_complex() {
                    with_item!(self.input.dtype(), T => self.var::<T, num_complex::Complex64>(b, read)?)
                } else {
                    with_item!(self.input.dtype(), T => self.var::<T, f64>(b, read)?)
                };
                let std = self.func == Func::Std;
                // NumPy sums the squared deviations in the input's (float) dtype before
                // dividing: a float16 sum of squares overflows to infinity above 65504.
                let precision = self.input.dtype().real_part();
                let values = acc
                    .into_iter()
                    .map(|m2| {
                        let m2 = match precision {
                            DType::F16 => f64::from(crate::f16::round(m2 as f32)),
                            DType::F32 => f64::from(m2 as f32),
                            _ => m2,
                        };
                        let v = m2 / (b.count as f64 - self.ddof).max(0.0);
                        if std {
                            v.sqrt()
                        } else {
                            v
                        }
                    })
                    .collect();
                Col::F64(values).cast(out)
            }
            Func::Min => with_item!(out, T => self.extreme::<T, false>(n, b, read)?),
            Func::Max => with_item!(out, T => self.extreme::<T, true>(n, b, read)?),
            Func::ArgMin => {
                with_item!(self.input.dtype(), T => self.arg_extreme::<T, false>(n, b, read)?)
            }
            Func::ArgMax => {
                with_item!(self.input.dtype(), T => self.arg_extreme::<T, true>(n, b, read)?)
            }
            Func::Any | Func::All => {
                let all = self.func == Func::All;
                let mut acc = vec![all; n];
                with_item!(self.input.dtype(), T => if all {
                    self.stream(&Truth::<T, true>::new(), &mut acc, b, read)?
                } else {
                    self.stream(&Truth::<T, false>::new(), &mut acc, b, read)?
                });
                Col::Bool(acc)
            }
            Func::CountNonzero => {
                let mut acc = vec![0i64; n];
                with_item!(self.input.dtype(), T => {
                    self.stream(&CountNonzero::<T>::new(), &mut acc, b, read)?
                });
                Col::I64(acc)
            }
        })
    }

    /// Sums or products into accumulators of `A`, as a column of `A`'s dtype.
    fn sum_prod<A: Num>(&self, prod: bool, b: &InBox, read: &mut ReadOperand<'_>) -> Result<Col> {
        let mut acc = vec![if prod { A::ONE } else { A::ZERO }; b.outputs];
        with_item!(self.input.dtype(), T => if prod {
            self.stream(&Prod::<T, A>::new(), &mut acc, b, read)?
        } else {
            self.stream(&Sum::<T, A>::new(), &mut acc, b, read)?
        });
        Ok(A::col(acc, self.dtype))
    }

    fn extreme<T: Item, const MAX: bool>(
        &self,
        n: usize,
        b: &InBox,
        read: &mut ReadOperand<'_>,
    ) -> Result<Col>
    where
        T::V: Ordered,
    {
        let init = if MAX {
            <T::V as Ordered>::LOWEST
        } else {
            <T::V as Ordered>::HIGHEST
        };
        let mut acc = vec![init; n];
        self.stream(&Extreme::<T, MAX>::new(), &mut acc, b, read)?;
        Ok(<T::V as Val>::col(acc, self.dtype))
    }

    fn arg_extreme<T: Item, const MAX: bool>(
        &self,
        n: usize,
        b: &InBox,
        read: &mut ReadOperand<'_>,
    ) -> Result<Col>
    where
        T::V: Ordered,
    {
        let mut acc = vec![(<T::V as Ordered>::LOWEST, NO_INDEX); n];
        self.stream(&ArgExtreme::<T, MAX>::new(), &mut acc, b, read)?;
        Ok(Col::I64(
            acc.into_iter()
                .map(|(_, i)| if i == NO_INDEX { 0 } else { i as i64 })
                .collect(),
        ))
    }

    /// The sums of squared deviations from the mean of each output (`var` times the count).
    fn var<T: Item, M: Mean>(&self, b: &InBox, read: &mut ReadOperand<'_>) -> Result<Vec<f64>> {
        let mut acc = vec![(0.0f64, M::ZERO, 0.0f64); b.outputs];
        self.stream(&Variance::<T, M>::new(), &mut acc, b, read)?;
        Ok(acc.into_iter().map(|(_, _, m2)| m2).collect())
    }
}
