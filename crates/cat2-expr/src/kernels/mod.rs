//! Element-wise kernels over typed columns.
//!
//! Each operation is matched once per column and then runs a tight loop over one concrete
//! element type (`zip_in_place`/`map_in_place` with a closure the compiler inlines), so
//! integer and float loops vectorise. Operands arrive already cast to the loop dtype that
//! type checking chose; only comparisons between `uint64` and `int64` mix types, because
//! NumPy 2 compares those exactly instead of through `float64`.

pub(crate) mod complex;
pub(crate) mod elementary;
pub(crate) mod float;
pub(crate) mod int;

use crate::col::Col;
use crate::error::{Error, Result};
use crate::f16;

/// Unary operations (besides casts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UOp {
    Neg,
    Invert,
    Abs,
    Sign,
    Square,
    Reciprocal,
    Sqrt,
    Exp,
    Expm1,
    Log,
    Log1p,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Floor,
    Ceil,
    Trunc,
    Rint,
    IsNan,
    IsInf,
    IsFinite,
    SignBit,
    Conj,
    Real,
    Imag,
    /// A constant bool of the input's length (comparisons with out-of-range Python ints).
    Fill(bool),
}

/// Binary operations; both operands have the same dtype (except `uint64` vs `int64`
/// comparisons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Max,
    Min,
    /// `clip`'s maximum and minimum: as `Max`/`Min`, except that complex ties give the
    /// second operand (NumPy's clip loop compares strictly; `maximum` does not).
    ClipMax,
    ClipMin,
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Atan2,
    Hypot,
    Copysign,
    LogAddExp,
    NextAfter,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl BOp {
    pub(crate) fn is_compare(self) -> bool {
        matches!(
            self,
            BOp::Lt | BOp::Le | BOp::Gt | BOp::Ge | BOp::Eq | BOp::Ne
        )
    }
}

impl UOp {
    pub(crate) fn is_predicate(self) -> bool {
        matches!(
            self,
            UOp::IsNan | UOp::IsInf | UOp::IsFinite | UOp::SignBit | UOp::Fill(_)
        )
    }
}

#[inline]
pub(crate) fn zip_in_place<T: Copy>(a: &mut [T], b: &[T], f: impl Fn(T, T) -> T) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x = f(*x, y);
    }
}

#[inline]
pub(crate) fn map_in_place<T: Copy>(a: &mut [T], f: impl Fn(T) -> T) {
    for x in a.iter_mut() {
        *x = f(*x);
    }
}

fn round_f16(mut v: Vec<f32>) -> Vec<f32> {
    map_in_place(&mut v, f16::round);
    v
}

fn next_after_f16(x: f32, y: f32) -> f32 {
    if x.is_nan() || y.is_nan() {
        return x + y;
    }
    if x == y {
        return y;
    }
    let h = f16::f64_to_bits(f64::from(x));
    let r = if x == 0.0 {
        if y.is_sign_negative() {
            0x8001
        } else {
            0x0001
        }
    } else if (x < y) == (x > 0.0) {
        h + 1
    } else {
        h - 1
    };
    f16::bits_to_f32(r)
}

fn mismatch(what: &str) -> Error {
    Error::Internal(format!("operands of {what} have different dtypes"))
}

/// A unary operation.
pub(crate) fn unary(op: UOp, col: Col) -> Result<Col> {
    if op.is_predicate() {
        return Ok(Col::Bool(predicate(op, &col)));
    }
    Ok(match col {
        Col::Bool(mut v) => {
            match op {
                UOp::Invert => map_in_place(&mut v, |x| !x),
                UOp::Abs | UOp::Floor | UOp::Ceil | UOp::Trunc | UOp::Real | UOp::Conj => {}
                UOp::Imag => map_in_place(&mut v, |_| false),
                _ => return Err(Error::Internal(format!("{op:?} on bools"))),
            }
            Col::Bool(v)
        }
        Col::I8(v) => Col::I8(int::unary(op, v)?),
        Col::I16(v) => Col::I16(int::unary(op, v)?),
        Col::I32(v) => Col::I32(int::unary(op, v)?),
        Col::I64(v) => Col::I64(int::unary(op, v)?),
        Col::U8(v) => Col::U8(int::unary(op, v)?),
        Col::U16(v) => Col::U16(int::unary(op, v)?),
        Col::U32(v) => Col::U32(int::unary(op, v)?),
        Col::U64(v) => Col::U64(int::unary(op, v)?),
        Col::F16(v) => Col::F16(round_f16(float::unary_f32(op, v)?)),
        Col::F32(v) => Col::F32(float::unary_f32(op, v)?),
        Col::F64(v) => Col::F64(float::unary_f64(op, v)?),
        c @ (Col::C64(_) | Col::C128(_)) => complex::unary(op, c)?,
    })
}

fn predicate(op: UOp, col: &Col) -> Vec<bool> {
    let n = col.len();
    if let UOp::Fill(b) = op {
        return vec![b; n];
    }
    let float = |x: f64| (x.is_nan(), x.is_infinite(), x.is_sign_negative());
    match col {
        Col::F16(v) | Col::F32(v) => float::predicate(op, v, |x: f32| float(f64::from(x))),
        Col::F64(v) => float::predicate(op, v, float),
        Col::C64(v) => float::predicate(op, v, |z| {
            let (re, im) = (f64::from(z.re), f64::from(z.im));
            (
                re.is_nan() || im.is_nan(),
                re.is_infinite() || im.is_infinite(),
                false,
            )
        }),
        Col::C128(v) => float::predicate(op, v, |z| {
            (
                z.re.is_nan() || z.im.is_nan(),
                z.re.is_infinite() || z.im.is_infinite(),
                false,
            )
        }),
        // Integers and bools are never NaN or infinite.
        _ => vec![op == UOp::IsFinite; n],
    }
}

/// A binary operation (arithmetic or comparison).
pub(crate) fn binary(op: BOp, a: Col, b: Col) -> Result<Col> {
    if op.is_compare() {
        return compare(op, &a, &b).map(Col::Bool);
    }
    Ok(match (a, b) {
        (Col::Bool(mut x), Col::Bool(y)) => {
            match op {
                BOp::Add | BOp::Max | BOp::ClipMax | BOp::Or => {
                    zip_in_place(&mut x, &y, |p, q| p | q)
                }
                BOp::Mul | BOp::Min | BOp::ClipMin | BOp::And => {
                    zip_in_place(&mut x, &y, |p, q| p & q)
                }
                BOp::Xor => zip_in_place(&mut x, &y, |p, q| p ^ q),
                _ => return Err(Error::Internal(format!("{op:?} on bools"))),
            }
            Col::Bool(x)
        }
        (Col::I8(x), Col::I8(y)) => Col::I8(int::binary(op, x, &y)?),
        (Col::I16(x), Col::I16(y)) => Col::I16(int::binary(op, x, &y)?),
        (Col::I32(x), Col::I32(y)) => Col::I32(int::binary(op, x, &y)?),
        (Col::I64(x), Col::I64(y)) => Col::I64(int::binary(op, x, &y)?),
        (Col::U8(x), Col::U8(y)) => Col::U8(int::binary(op, x, &y)?),
        (Col::U16(x), Col::U16(y)) => Col::U16(int::binary(op, x, &y)?),
        (Col::U32(x), Col::U32(y)) => Col::U32(int::binary(op, x, &y)?),
        (Col::U64(x), Col::U64(y)) => Col::U64(int::binary(op, x, &y)?),
        (Col::F16(mut x), Col::F16(y)) if op == BOp::NextAfter => {
            // Steps of float16, not of float32.
            zip_in_place(&mut x, &y, next_after_f16);
            Col::F16(x)
        }
        (Col::F16(mut x), Col::F16(y)) if matches!(op, BOp::Max | BOp::ClipMax) => {
            // NumPy's float16 loops keep the first operand on ties (0.0 vs -0.0); its
            // float32/float64 loops keep the second.
            zip_in_place(&mut x, &y, |p, q| if p >= q || p.is_nan() { p } else { q });
            Col::F16(x)
        }
        (Col::F16(mut x), Col::F16(y)) if matches!(op, BOp::Min | BOp::ClipMin) => {
            zip_in_place(&mut x, &y, |p, q| if p <= q || p.is_nan() { p } else { q });
            Col::F16(x)
        }
        (Col::F16(x), Col::F16(y)) => Col::F16(round_f16(float::binary_f32(op, x, &y)?)),
        (Col::F32(x), Col::F32(y)) => Col::F32(float::binary_f32(op, x, &y)?),
        (Col::F64(x), Col::F64(y)) => Col::F64(float::binary_f64(op, x, &y)?),
        (Col::C64(x), Col::C64(y)) => Col::C64(complex::c64::binary(op, x, &y)?),
        (Col::C128(x), Col::C128(y)) => Col::C128(complex::c128::binary(op, x, &y)?),
        _ => return Err(mismatch("a binary operation")),
    })
}

fn cmp_ord<T: Copy + PartialOrd>(op: BOp, a: &[T], b: &[T]) -> Vec<bool> {
    let z = a.iter().zip(b);
    match op {
        BOp::Lt => z.map(|(x, y)| x < y).collect(),
        BOp::Le => z.map(|(x, y)| x <= y).collect(),
        BOp::Gt => z.map(|(x, y)| x > y).collect(),
        BOp::Ge => z.map(|(x, y)| x >= y).collect(),
        BOp::Eq => z.map(|(x, y)| x == y).collect(),
        _ => z.map(|(x, y)| x != y).collect(),
    }
}

fn compare(op: BOp, a: &Col, b: &Col) -> Result<Vec<bool>> {
    Ok(match (a, b) {
        (Col::Bool(x), Col::Bool(y)) => cmp_ord(op, x, y),
        (Col::I8(x), Col::I8(y)) => cmp_ord(op, x, y),
        (Col::I16(x), Col::I16(y)) => cmp_ord(op, x, y),
        (Col::I32(x), Col::I32(y)) => cmp_ord(op, x, y),
        (Col::I64(x), Col::I64(y)) => cmp_ord(op, x, y),
        (Col::U8(x), Col::U8(y)) => cmp_ord(op, x, y),
        (Col::U16(x), Col::U16(y)) => cmp_ord(op, x, y),
        (Col::U32(x), Col::U32(y)) => cmp_ord(op, x, y),
        (Col::U64(x), Col::U64(y)) => cmp_ord(op, x, y),
        (Col::F16(x), Col::F16(y)) | (Col::F32(x), Col::F32(y)) => cmp_ord(op, x, y),
        (Col::F64(x), Col::F64(y)) => cmp_ord(op, x, y),
        (Col::C64(x), Col::C64(y)) => complex::c64::compare(op, x, y),
        (Col::C128(x), Col::C128(y)) => complex::c128::compare(op, x, y),
        (Col::U64(x), Col::I64(y)) => mixed(op, x, y),
        (Col::I64(x), Col::U64(y)) => {
            let flipped = match op {
                BOp::Lt => BOp::Gt,
                BOp::Le => BOp::Ge,
                BOp::Gt => BOp::Lt,
                BOp::Ge => BOp::Le,
                other => other,
            };
            mixed(flipped, y, x)
        }
        _ => return Err(mismatch("a comparison")),
    })
}

/// Exact `uint64` vs `int64` comparison.
fn mixed(op: BOp, a: &[u64], b: &[i64]) -> Vec<bool> {
    let a: Vec<i128> = a.iter().map(|&x| i128::from(x)).collect();
    let b: Vec<i128> = b.iter().map(|&x| i128::from(x)).collect();
    cmp_ord(op, &a, &b)
}

/// `where(cond, x, y)` with `x` and `y` of one dtype.
pub(crate) fn select(cond: &[bool], x: Col, y: Col) -> Result<Col> {
    fn sel<T: Copy>(c: &[bool], mut x: Vec<T>, y: &[T]) -> Vec<T> {
        for ((o, &c), &y) in x.iter_mut().zip(c).zip(y) {
            if !c {
                *o = y;
            }
        }
        x
    }
    Ok(match (x, y) {
        (Col::Bool(x), Col::Bool(y)) => Col::Bool(sel(cond, x, &y)),
        (Col::I8(x), Col::I8(y)) => Col::I8(sel(cond, x, &y)),
        (Col::I16(x), Col::I16(y)) => Col::I16(sel(cond, x, &y)),
        (Col::I32(x), Col::I32(y)) => Col::I32(sel(cond, x, &y)),
        (Col::I64(x), Col::I64(y)) => Col::I64(sel(cond, x, &y)),
        (Col::U8(x), Col::U8(y)) => Col::U8(sel(cond, x, &y)),
        (Col::U16(x), Col::U16(y)) => Col::U16(sel(cond, x, &y)),
        (Col::U32(x), Col::U32(y)) => Col::U32(sel(cond, x, &y)),
        (Col::U64(x), Col::U64(y)) => Col::U64(sel(cond, x, &y)),
        (Col::F16(x), Col::F16(y)) => Col::F16(sel(cond, x, &y)),
        (Col::F32(x), Col::F32(y)) => Col::F32(sel(cond, x, &y)),
        (Col::F64(x), Col::F64(y)) => Col::F64(sel(cond, x, &y)),
        (Col::C64(x), Col::C64(y)) => Col::C64(sel(cond, x, &y)),
        (Col::C128(x), Col::C128(y)) => Col::C128(sel(cond, x, &y)),
        _ => return Err(mismatch("where()")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint64_int64_comparisons_are_exact() {
        let a = Col::U64(vec![1 << 63, 5, 0]);
        let b = Col::I64(vec![i64::MAX, 5, -1]);
        let r = |op| compare(op, &a, &b).expect("ok");
        assert_eq!(r(BOp::Gt), vec![true, false, true]);
        assert_eq!(r(BOp::Eq), vec![false, true, false]);
        assert_eq!(r(BOp::Le), vec![false, true, false]);
        assert_eq!(
            compare(BOp::Lt, &b, &a).expect("ok"),
            vec![true, false, true]
        );
    }

    #[test]
    fn float16_results_are_rounded() {
        let r = binary(BOp::Add, Col::F16(vec![1.0]), Col::F16(vec![0.0001])).expect("ok");
        assert_eq!(r, Col::F16(vec![1.0]));
        let r = binary(BOp::NextAfter, Col::F16(vec![1.0]), Col::F16(vec![0.0])).expect("ok");
        assert_eq!(r, Col::F16(vec![0.999_511_7]));
    }
}
