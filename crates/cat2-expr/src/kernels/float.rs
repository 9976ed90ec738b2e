//! Float kernels (`f32`, `f64`; float16 goes through `f32`).
//!
//! Transcendental functions call the platform libm through `std`, as NumPy's scalar loops
//! do (NumPy's own SIMD versions may differ in the last bit or two). Where NumPy has its own
//! formula it is copied: floor division and remainder (`npy_divmod`), `sign`,
//! `logaddexp`, `nextafter`, NaN-propagating `maximum`/`minimum`. The inverse hyperbolic
//! functions of `std` are not libm's, so fdlibm's algorithms are used instead.

use super::{map_in_place, zip_in_place, BOp, UOp};
use crate::error::{Error, Result};

pub(crate) trait Float: Copy + PartialOrd + Send + Sync + 'static {
    fn np_floordiv(self, b: Self) -> Self;
    fn np_rem(self, b: Self) -> Self;
    fn np_sign(self) -> Self;
    fn np_max(self, b: Self) -> Self;
    fn np_min(self, b: Self) -> Self;
    fn logaddexp(self, b: Self) -> Self;
    fn next_after(self, b: Self) -> Self;
    fn np_asinh(self) -> Self;
    fn np_acosh(self) -> Self;
    fn np_atanh(self) -> Self;
}

macro_rules! impl_float {
    ($t:ident) => {
        impl Float for $t {
            #[inline]
            fn np_floordiv(self, b: Self) -> Self {
                if b == 0.0 {
                    return self / b;
                }
                divmod_impl!($t, self, b).0
            }
            #[inline]
            fn np_rem(self, b: Self) -> Self {
                if b == 0.0 {
                    return self % b;
                }
                divmod_impl!($t, self, b).1
            }
            #[inline]
            fn np_sign(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else if self == 0.0 {
                    0.0
                } else {
                    self
                }
            }
            #[inline]
            fn np_max(self, b: Self) -> Self {
                // Ties give the second operand (0.0 vs -0.0 matters to `signbit`).
                if self > b || self.is_nan() {
                    self
                } else {
                    b
                }
            }
            #[inline]
            fn np_min(self, b: Self) -> Self {
                if self < b || self.is_nan() {
                    self
                } else {
                    b
                }
            }
            #[inline]
            fn logaddexp(self, b: Self) -> Self {
                if self == b {
                    return self + std::$t::consts::LN_2;
                }
                let tmp = self - b;
                if tmp > 0.0 {
                    self + (-tmp).exp().ln_1p()
                } else if tmp <= 0.0 {
                    b + tmp.exp().ln_1p()
                } else {
                    tmp
                }
            }
            #[inline]
            fn next_after(self, b: Self) -> Self {
                if self.is_nan() || b.is_nan() {
                    return self + b;
                }
                if self == b {
                    return b;
                }
                if self == 0.0 {
                    return <$t>::from_bits(1).copysign(b);
                }
                let bits = self.to_bits();
                let up = (self < b) == (self > 0.0);
                <$t>::from_bits(if up { bits + 1 } else { bits - 1 })
            }
            #[inline]
            fn np_asinh(self) -> Self {
                fdlibm_asinh(self as f64) as $t
            }
            #[inline]
            fn np_acosh(self) -> Self {
                fdlibm_acosh(self as f64) as $t
            }
            #[inline]
            fn np_atanh(self) -> Self {
                fdlibm_atanh(self as f64) as $t
            }
        }
    };
}

/// NumPy's `npy_divmod` for a non-zero divisor: `(floor quotient, Python remainder)`.
macro_rules! divmod_impl {
    ($t:ident, $a:expr, $b:expr) => {{
        let (a, b): ($t, $t) = ($a, $b);
        let mut m = a % b;
        let mut div = (a - m) / b;
        if m != 0.0 {
            if (b < 0.0) != (m < 0.0) {
                m += b;
                div -= 1.0;
            }
        } else {
            m = (0.0 as $t).copysign(b);
        }
        let floordiv = if div != 0.0 {
            let mut f = div.floor();
            if div - f > 0.5 {
                f += 1.0;
            }
            f
        } else {
            (0.0 as $t).copysign(a / b)
        };
        (floordiv, m)
    }};
}
impl_float!(f32);
impl_float!(f64);

const LN2: f64 = std::f64::consts::LN_2;
const TWO28: f64 = 268_435_456.0;

/// fdlibm `s_asinh.c`.
fn fdlibm_asinh(x: f64) -> f64 {
    if !x.is_finite() {
        return x + x;
    }
    let ax = x.abs();
    if ax < 1.0 / TWO28 {
        return x;
    }
    let w = if ax > TWO28 {
        ax.ln() + LN2
    } else if ax > 2.0 {
        (2.0 * ax + 1.0 / ((x * x + 1.0).sqrt() + ax)).ln()
    } else {
        let t = x * x;
        (ax + t / (1.0 + (1.0 + t).sqrt())).ln_1p()
    };
    w.copysign(x)
}

/// fdlibm `e_acosh.c`.
fn fdlibm_acosh(x: f64) -> f64 {
    if x.is_nan() || x < 1.0 {
        return f64::NAN;
    }
    if x >= TWO28 {
        if x.is_infinite() {
            return x;
        }
        return x.ln() + LN2;
    }
    if x == 1.0 {
        return 0.0;
    }
    if x > 2.0 {
        let t = x * x;
        (2.0 * x - 1.0 / (x + (t - 1.0).sqrt())).ln()
    } else {
        let t = x - 1.0;
        (t + (2.0 * t + t * t).sqrt()).ln_1p()
    }
}

/// fdlibm `e_atanh.c`.
fn fdlibm_atanh(x: f64) -> f64 {
    let ax = x.abs();
    if x.is_nan() || ax > 1.0 {
        return f64::NAN;
    }
    if ax == 1.0 {
        return f64::INFINITY.copysign(x);
    }
    if ax < 1.0 / TWO28 {
        return x;
    }
    let t = if ax < 0.5 {
        let t = ax + ax;
        0.5 * (t + t * ax / (1.0 - ax)).ln_1p()
    } else {
        0.5 * ((ax + ax) / (1.0 - ax)).ln_1p()
    };
    t.copysign(x)
}

macro_rules! float_kernels {
    ($binary:ident, $unary:ident, $t:ident) => {
        pub(crate) fn $binary(op: BOp, mut a: Vec<$t>, b: &[$t]) -> Result<Vec<$t>> {
            let v = &mut a;
            match op {
                BOp::Add => zip_in_place(v, b, |x, y| x + y),
                BOp::Sub => zip_in_place(v, b, |x, y| x - y),
                BOp::Mul => zip_in_place(v, b, |x, y| x * y),
                BOp::Div => zip_in_place(v, b, |x, y| x / y),
                BOp::FloorDiv => zip_in_place(v, b, <$t>::np_floordiv),
                BOp::Mod => zip_in_place(v, b, <$t>::np_rem),
                BOp::Pow => zip_in_place(v, b, <$t>::powf),
                BOp::Max | BOp::ClipMax => zip_in_place(v, b, <$t>::np_max),
                BOp::Min | BOp::ClipMin => zip_in_place(v, b, <$t>::np_min),
                BOp::Atan2 => zip_in_place(v, b, <$t>::atan2),
                BOp::Hypot => zip_in_place(v, b, <$t>::hypot),
                BOp::Copysign => zip_in_place(v, b, <$t>::copysign),
                BOp::LogAddExp => zip_in_place(v, b, <$t>::logaddexp),
                BOp::NextAfter => zip_in_place(v, b, <$t>::next_after),
                _ => return Err(Error::Internal(format!("{op:?} on floats"))),
            }
            Ok(a)
        }

        pub(crate) fn $unary(op: UOp, mut a: Vec<$t>) -> Result<Vec<$t>> {
            let v = &mut a;
            match op {
                UOp::Neg => map_in_place(v, |x| -x),
                UOp::Abs => map_in_place(v, <$t>::abs),
                UOp::Sign => map_in_place(v, <$t>::np_sign),
                UOp::Square => map_in_place(v, |x| x * x),
                UOp::Reciprocal => map_in_place(v, |x| 1.0 / x),
                UOp::Sqrt => map_in_place(v, <$t>::sqrt),
                UOp::Exp => map_in_place(v, <$t>::exp),
                UOp::Expm1 => map_in_place(v, <$t>::exp_m1),
                UOp::Log => map_in_place(v, <$t>::ln),
                UOp::Log1p => map_in_place(v, <$t>::ln_1p),
                UOp::Log2 => map_in_place(v, <$t>::log2),
                UOp::Log10 => map_in_place(v, <$t>::log10),
                UOp::Sin => map_in_place(v, <$t>::sin),
                UOp::Cos => map_in_place(v, <$t>::cos),
                UOp::Tan => map_in_place(v, <$t>::tan),
                UOp::Asin => map_in_place(v, <$t>::asin),
                UOp::Acos => map_in_place(v, <$t>::acos),
                UOp::Atan => map_in_place(v, <$t>::atan),
                UOp::Sinh => map_in_place(v, <$t>::sinh),
                UOp::Cosh => map_in_place(v, <$t>::cosh),
                UOp::Tanh => map_in_place(v, <$t>::tanh),
                UOp::Asinh => map_in_place(v, <$t>::np_asinh),
                UOp::Acosh => map_in_place(v, <$t>::np_acosh),
                UOp::Atanh => map_in_place(v, <$t>::np_atanh),
                UOp::Floor => map_in_place(v, <$t>::floor),
                UOp::Ceil => map_in_place(v, <$t>::ceil),
                UOp::Trunc => map_in_place(v, <$t>::trunc),
                UOp::Rint => map_in_place(v, <$t>::round_ties_even),
                UOp::Real | UOp::Conj => {}
                UOp::Imag => map_in_place(v, |_| 0.0),
                _ => return Err(Error::Internal(format!("{op:?} on floats"))),
            }
            Ok(a)
        }
    };
}

float_kernels!(binary_f32, unary_f32, f32);
float_kernels!(binary_f64, unary_f64, f64);

/// `isnan`, `isinf`, `isfinite`, `signbit` of float values.
pub(crate) fn predicate<T: Copy>(
    op: UOp,
    a: &[T],
    f: impl Fn(T) -> (bool, bool, bool),
) -> Vec<bool> {
    let pick = |x: T| {
        let (nan, inf, neg) = f(x);
        match op {
            UOp::IsNan => nan,
            UOp::IsInf => inf,
            UOp::IsFinite => !nan && !inf,
            _ => neg,
        }
    };
    a.iter().map(|&x| pick(x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_float_divmod() {
        let fd = |a: f64, b: f64| a.np_floordiv(b);
        let rm = |a: f64, b: f64| a.np_rem(b);
        assert_eq!(fd(5.0, 3.0), 1.0);
        assert_eq!(fd(-5.0, 3.0), -2.0);
        assert_eq!(fd(5.0, -3.0), -2.0);
        assert_eq!(rm(-5.0, 3.0), 1.0);
        assert_eq!(rm(5.0, -3.0), -1.0);
        assert!(rm(5.0, 0.0).is_nan());
        assert_eq!(fd(1.0, 0.0), f64::INFINITY);
        assert_eq!(fd(-1.0, 0.0), f64::NEG_INFINITY);
        assert!(fd(0.0, 0.0).is_nan());
        assert!(rm(-0.0, 3.0).to_bits() == 0.0f64.to_bits());
    }

    #[test]
    fn inverse_hyperbolics_are_accurate() {
        // glibc's values (Python's math module).
        let asinh = [
            (1e-10, 1e-10),
            (0.3, 0.29567304756342244),
            (1.5, 1.1947632172871094),
            (3.0, 1.8184464592320668),
            (1e10, 23.7189981105004),
            (-2.5, -1.6472311463710958),
        ];
        let acosh = [
            (1.0000001, 0.0004472135919037347),
            (1.5, 0.9624236501192069),
            (3.0, 1.762747174039086),
            (1e10, 23.7189981105004),
        ];
        let atanh = [
            (1e-10, 1e-10),
            (0.3, 0.30951960420311175),
            (0.75, 0.9729550745276566),
            (-0.99, -2.6466524123622457),
        ];
        let close = |a: f64, b: f64| (a - b).abs() <= 2.0 * f64::EPSILON * b.abs();
        for (x, want) in asinh {
            assert!(close(fdlibm_asinh(x), want), "asinh({x})");
        }
        for (x, want) in acosh {
            assert!(close(fdlibm_acosh(x), want), "acosh({x})");
        }
        for (x, want) in atanh {
            assert!(close(fdlibm_atanh(x), want), "atanh({x})");
        }
        assert_eq!(fdlibm_atanh(1.0), f64::INFINITY);
        assert_eq!(1.0f32.next_after(2.0), 1.000_000_1);
        assert_eq!(0.0f64.next_after(-1.0), -f64::from_bits(1));
        assert!(f64::NAN.np_sign().is_nan());
    }
}
