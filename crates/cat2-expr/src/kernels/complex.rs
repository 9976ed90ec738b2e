//! Complex kernels (`complex64`, `complex128`) with NumPy's formulas: Smith's division,
//! `nc_pow` (repeated multiplication for small integer exponents), lexicographic ordering
//! for comparisons and `maximum`/`minimum`, `sign(z) = z/|z|`, and `expm1`/`log1p`/`log2`/
//! `log10` as NumPy writes them. The elementary functions are in `elementary`.

use num_complex::{Complex32, Complex64};

use super::elementary::{e32, e64};
use super::{map_in_place, zip_in_place, BOp, UOp};
use crate::col::Col;
use crate::error::{Error, Result};

macro_rules! complex_impl {
    ($m:ident, $c:ident, $f:ident, $e:ident) => {
        pub(crate) mod $m {
            use super::*;

            #[inline]
            pub(crate) fn mul(a: $c, b: $c) -> $c {
                $c::new(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re)
            }

            /// Smith's algorithm, as NumPy's complex division loop.
            #[inline]
            pub(crate) fn div(a: $c, b: $c) -> $c {
                let (br_abs, bi_abs) = (b.re.abs(), b.im.abs());
                if br_abs >= bi_abs {
                    if br_abs == 0.0 && bi_abs == 0.0 {
                        return $c::new(a.re / br_abs, a.im / bi_abs);
                    }
                    let rat = b.im / b.re;
                    let scl = 1.0 / (b.re + b.im * rat);
                    $c::new((a.re + a.im * rat) * scl, (a.im - a.re * rat) * scl)
                } else {
                    let rat = b.re / b.im;
                    let scl = 1.0 / (b.im + b.re * rat);
                    $c::new((a.re * rat + a.im) * scl, (a.im * rat - a.re) * scl)
                }
            }

            /// NumPy's `nc_pow`.
            pub(crate) fn pow(a: $c, b: $c) -> $c {
                if b.re == 0.0 && b.im == 0.0 {
                    return $c::new(1.0, 0.0);
                }
                if a.re == 0.0 && a.im == 0.0 {
                    return if b.re > 0.0 {
                        $c::new(0.0, 0.0)
                    } else {
                        $c::new($f::NAN, $f::NAN)
                    };
                }
                if b.im == 0.0 && b.re == b.re.trunc() && b.re.abs() < 100.0 {
                    let n = b.re as i32;
                    if n == 1 {
                        return a;
                    }
                    if n == 2 {
                        return mul(a, a);
                    }
                    if n == 3 {
                        return mul(mul(a, a), a);
                    }
                    let mut mask = 1;
                    let mut aa = $c::new(1.0, 0.0);
                    let mut p = a;
                    let m = n.abs();
                    while mask <= m {
                        if m & mask != 0 {
                            aa = mul(aa, p);
                        }
                        mask <<= 1;
                        p = mul(p, p);
                    }
                    return if n < 0 {
                        div($c::new(1.0, 0.0), aa)
                    } else {
                        aa
                    };
                }
                $e::cpow(a, b)
            }

            /// NumPy's lexicographic `>=` (real parts first; NaN imaginary parts unordered).
            #[inline]
            pub(crate) fn ge(a: $c, b: $c) -> bool {
                (a.re > b.re && !a.im.is_nan() && !b.im.is_nan()) || (a.re == b.re && a.im >= b.im)
            }
            #[inline]
            pub(crate) fn gt(a: $c, b: $c) -> bool {
                (a.re > b.re && !a.im.is_nan() && !b.im.is_nan()) || (a.re == b.re && a.im > b.im)
            }
            #[inline]
            pub(crate) fn le(a: $c, b: $c) -> bool {
                (a.re < b.re && !a.im.is_nan() && !b.im.is_nan()) || (a.re == b.re && a.im <= b.im)
            }
            #[inline]
            pub(crate) fn lt(a: $c, b: $c) -> bool {
                (a.re < b.re && !a.im.is_nan() && !b.im.is_nan()) || (a.re == b.re && a.im < b.im)
            }

            fn is_nan(a: $c) -> bool {
                a.re.is_nan() || a.im.is_nan()
            }

            fn sign(z: $c) -> $c {
                let abs = z.re.hypot(z.im);
                if abs.is_nan() {
                    $c::new($f::NAN, $f::NAN)
                } else if abs.is_infinite() {
                    if z.re.is_infinite() {
                        if z.im.is_infinite() {
                            $c::new($f::NAN, $f::NAN)
                        } else {
                            $c::new(z.re.signum(), 0.0)
                        }
                    } else {
                        $c::new(0.0, z.im.signum())
                    }
                } else if abs == 0.0 {
                    $c::new(0.0, 0.0)
                } else {
                    $c::new(z.re / abs, z.im / abs)
                }
            }

            fn reciprocal(z: $c) -> $c {
                if z.im.abs() <= z.re.abs() {
                    let r = z.im / z.re;
                    let d = z.re + z.im * r;
                    $c::new(1.0 / d, -r / d)
                } else {
                    let r = z.re / z.im;
                    let d = z.re * r + z.im;
                    $c::new(r / d, -1.0 / d)
                }
            }

            pub(crate) fn binary(op: BOp, mut a: Vec<$c>, b: &[$c]) -> Result<Vec<$c>> {
                let v = &mut a;
                match op {
                    BOp::Add => zip_in_place(v, b, |x, y| x + y),
                    BOp::Sub => zip_in_place(v, b, |x, y| x - y),
                    BOp::Mul => zip_in_place(v, b, mul),
                    BOp::Div => zip_in_place(v, b, div),
                    BOp::Pow => zip_in_place(v, b, pow),
                    BOp::Max => {
                        zip_in_place(v, b, |x, y| if ge(x, y) || is_nan(x) { x } else { y })
                    }
                    BOp::Min => {
                        zip_in_place(v, b, |x, y| if le(x, y) || is_nan(x) { x } else { y })
                    }
                    // NumPy's clip: `PyArray_CGT`/`PyArray_CLT` (strict, real parts first).
                    BOp::ClipMax => zip_in_place(v, b, |x, y| {
                        let gt = if x.re == y.re {
                            x.im > y.im
                        } else {
                            x.re > y.re
                        };
                        if is_nan(x) || gt {
                            x
                        } else {
                            y
                        }
                    }),
                    BOp::ClipMin => zip_in_place(v, b, |x, y| {
                        let lt = if x.re == y.re {
                            x.im < y.im
                        } else {
                            x.re < y.re
                        };
                        if is_nan(x) || lt {
                            x
                        } else {
                            y
                        }
                    }),
                    _ => return Err(Error::Internal(format!("{op:?} on complex numbers"))),
                }
                Ok(a)
            }

            pub(crate) fn compare(op: BOp, a: &[$c], b: &[$c]) -> Vec<bool> {
                let z = a.iter().zip(b);
                match op {
                    BOp::Lt => z.map(|(&x, &y)| lt(x, y)).collect(),
                    BOp::Le => z.map(|(&x, &y)| le(x, y)).collect(),
                    BOp::Gt => z.map(|(&x, &y)| gt(x, y)).collect(),
                    BOp::Ge => z.map(|(&x, &y)| ge(x, y)).collect(),
                    BOp::Eq => z.map(|(&x, &y)| x.re == y.re && x.im == y.im).collect(),
                    _ => z.map(|(&x, &y)| x.re != y.re || x.im != y.im).collect(),
                }
            }

            /// Unary functions; `abs`, `real` and `imag` give a float column.
            pub(crate) fn unary(op: UOp, mut a: Vec<$c>) -> Result<Vec<$c>> {
                let v = &mut a;
                if let Some(f) = $e::elementary(op) {
                    map_in_place(v, f);
                    return Ok(a);
                }
                match op {
                    UOp::Neg => map_in_place(v, |x| -x),
                    UOp::Conj => map_in_place(v, |x| x.conj()),
                    UOp::Sign => map_in_place(v, sign),
                    UOp::Square => map_in_place(v, |x| mul(x, x)),
                    UOp::Reciprocal => map_in_place(v, reciprocal),
                    UOp::Rint => map_in_place(v, |x| {
                        $c::new(x.re.round_ties_even(), x.im.round_ties_even())
                    }),
                    _ => return Err(Error::Internal(format!("{op:?} on complex numbers"))),
                }
                Ok(a)
            }

            pub(crate) fn parts(op: UOp, a: &[$c]) -> Vec<$f> {
                match op {
                    UOp::Abs => a.iter().map(|x| x.re.hypot(x.im)).collect(),
                    UOp::Real => a.iter().map(|x| x.re).collect(),
                    _ => a.iter().map(|x| x.im).collect(),
                }
            }
        }
    };
}

complex_impl!(c64, Complex32, f32, e32);
complex_impl!(c128, Complex64, f64, e64);

pub(crate) use c128::{div, mul, pow};

/// A unary operation on a complex column.
pub(crate) fn unary(op: UOp, col: Col) -> Result<Col> {
    Ok(match (op, col) {
        (UOp::Abs | UOp::Real | UOp::Imag, Col::C64(v)) => Col::F32(c64::parts(op, &v)),
        (UOp::Abs | UOp::Real | UOp::Imag, Col::C128(v)) => Col::F64(c128::parts(op, &v)),
        (_, Col::C64(v)) => Col::C64(c64::unary(op, v)?),
        (_, Col::C128(v)) => Col::C128(c128::unary(op, v)?),
        _ => return Err(Error::Internal("complex kernel on a real column".into())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_complex_rules() {
        let z = |re, im| Complex64::new(re, im);
        assert_eq!(div(z(1.0, 0.0), z(0.0, 2.0)), z(0.0, -0.5));
        assert_eq!(pow(z(0.0, 1.0), z(2.0, 0.0)), z(-1.0, 0.0));
        assert_eq!(pow(z(2.0, 0.0), z(-1.0, 0.0)), z(0.5, 0.0));
        assert_eq!(pow(z(0.0, 0.0), z(0.0, 0.0)), z(1.0, 0.0));
        assert!(c128::lt(z(1.0, 5.0), z(2.0, 0.0)));
        assert!(c128::lt(z(1.0, 0.0), z(1.0, 1.0)));
        assert!(!c128::lt(z(1.0, f64::NAN), z(2.0, 0.0)));
    }
}
