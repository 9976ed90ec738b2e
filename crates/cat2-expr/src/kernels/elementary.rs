//! Complex elementary functions, written once for `complex64` and `complex128`.
//!
//! NumPy calls C's `csqrtf`/`csqrt` & co. (glibc), computing `complex64` in single
//! precision, so these run in the element type too: overflow and rounding then happen where
//! NumPy's do. `num-complex` provides `ln` (and `exp`'s special values); the rest follows glibc,
//! FreeBSD's libm and Kahan ("Branch Cuts for Complex Elementary Functions", 1987), because
//! num-complex's textbook formulas cancel badly (`tan` near its poles, `asinh` of large
//! negative values) and ignore C99's signed zeros on branch cuts and special values.

use num_complex::{Complex32, Complex64};

use super::float::Float;
use super::UOp;

macro_rules! elementary_impl {
    ($m:ident, $c:ident, $f:ident, $t:expr, $thresh:expr) => {
        pub(crate) mod $m {
            use super::*;

            /// The elementary functions, computed in complex128 (complex64 values are widened first,
            /// which makes them as accurate as C's `csinf` & co. rather than num-complex's `f32`
            /// formulas). `num-complex` provides most; `sqrt`, `tan` and `tanh` use Kahan's algorithms
            /// (as FreeBSD's and glibc's libm) because its versions lose accuracy (`tan` near its poles),
            /// and branch cuts follow C99's signed-zero conventions.
            pub(crate) fn elementary(op: UOp) -> Option<fn($c) -> $c> {
                Some(match op {
                    UOp::Sqrt => csqrt,
                    UOp::Exp => cexp,
                    UOp::Expm1 => expm1,
                    UOp::Log => |z| z.ln(),
                    UOp::Log1p => log1p,
                    UOp::Log2 => |z| scaled_log(z, std::$f::consts::LOG2_E),
                    UOp::Log10 => |z| scaled_log(z, std::$f::consts::LOG10_E),
                    UOp::Sin => csin,
                    UOp::Cos => ccos,
                    UOp::Tan => ctan,
                    UOp::Asin => |z| real_cut(z, casin(z), true),
                    UOp::Acos => |z| real_cut(z, cacos(z), false),
                    UOp::Atan => |z| imag_cut(z, catan(z)),
                    UOp::Sinh => csinh,
                    UOp::Cosh => ccosh,
                    UOp::Tanh => ctanh,
                    UOp::Asinh => |z| imag_cut(z, casinh(z)),
                    UOp::Acosh => |z| real_cut(z, cacosh(z), true),
                    UOp::Atanh => |z| real_cut(z, catanh(z), true),
                    _ => return None,
                })
            }

            /// NumPy's `nc_expm1`.
            fn expm1(z: $c) -> $c {
                let a = (z.im / 2.0).sin();
                $c::new(
                    z.re.exp_m1() * z.im.cos() - 2.0 * a * a,
                    z.re.exp() * z.im.sin(),
                )
            }

            /// NumPy's `nc_log1p`.
            fn log1p(z: $c) -> $c {
                let l = (z.re + 1.0).hypot(z.im);
                $c::new(l.ln(), z.im.atan2(z.re + 1.0))
            }

            /// NumPy's `nc_log2`/`nc_log10`: the natural logarithm scaled.
            fn scaled_log(z: $c, k: $f) -> $c {
                let l = z.ln();
                $c::new(l.re * k, l.im * k)
            }

            /// `f(z)` with C99's sign conventions on a branch cut along the real axis (`same`: the
            /// result's imaginary part takes the sign of `z`'s, as in `casin`, `catanh`, `cacosh`; else
            /// the opposite sign, as in `cacos`). `num-complex` does not honour signed zeros there.
            fn real_cut(z: $c, w: $c, same: bool) -> $c {
                if z.im != 0.0 || w.im == 0.0 {
                    return w;
                }
                let sign = if same { z.im } else { -z.im };
                $c::new(w.re, w.im.abs().copysign(sign))
            }

            /// Same for a branch cut along the imaginary axis (`casinh`, `catan`): the result's real
            /// part takes the sign of `z`'s.
            fn imag_cut(z: $c, w: $c) -> $c {
                if z.re != 0.0 || w.re == 0.0 {
                    return w;
                }
                $c::new(w.re.abs().copysign(z.re), w.im)
            }

            /// C's `y - y`: 0 for finite `y`, NaN for infinities and NaN.
            fn nan_or_zero(y: $f) -> $f {
                if y.is_finite() {
                    0.0
                } else {
                    <$f>::NAN
                }
            }

            /// Kahan's `asin` ("Branch Cuts for Complex Elementary Functions", 1987): well conditioned
            /// where the textbook `-i ln(iz + sqrt(1 - z^2))` cancels, and right on the branch cuts.
            fn casin(z: $c) -> $c {
                let (s1m, s1p) = (one_minus_sqrt(z), one_plus_sqrt(z));
                let re = z.re.atan2(s1m.re * s1p.re - s1m.im * s1p.im);
                let im = real_asinh(s1m.re * s1p.im - s1m.im * s1p.re);
                $c::new(re, im)
            }

            /// Kahan's `acos`.
            fn cacos(z: $c) -> $c {
                let (s1m, s1p) = (one_minus_sqrt(z), one_plus_sqrt(z));
                let re = 2.0 * s1m.re.atan2(s1p.re);
                let im = real_asinh(s1p.re * s1m.im - s1p.im * s1m.re);
                $c::new(re, im)
            }

            /// Kahan's `acosh`.
            fn cacosh(z: $c) -> $c {
                let sm = csqrt($c::new(z.re - 1.0, z.im));
                let sp = csqrt($c::new(z.re + 1.0, z.im));
                let re = real_asinh(sm.re * sp.re + sm.im * sp.im);
                let im = 2.0 * sm.im.atan2(sp.re);
                $c::new(re, im)
            }

            /// `atanh(z)` as `(log1p(4x / ((1 - x)^2 + y^2)) / 4, atan2(2y, (1 - x)(1 + x) - y^2) / 2)`
            /// (on `|x|`, `|y|`),
            /// which keeps the tiny real part far from the origin that `(ln(1 + z) - ln(1 - z)) / 2`
            /// cancels away, with C99's signs on the branch cuts; for huge `z`, `x / |z|^2 + i pi/2`.
            ///
            /// Near its singularities `±1` the single-precision version loses many bits, so
            /// `complex64` is computed in double precision (nothing overflows there).
            #[allow(clippy::unnecessary_cast)]
            fn catanh(z: $c) -> $c {
                let w = super::e64::catanh_native(Complex64::new(z.re as f64, z.im as f64));
                $c::new(w.re as $f, w.im as $f)
            }

            #[allow(dead_code)]
            pub(crate) fn catanh_native(z: $c) -> $c {
                let (x, y) = (z.re, z.im);
                let half_pi = std::$f::consts::FRAC_PI_2;
                let large = <$f>::MAX.sqrt() * 0.25;
                if x.is_nan() || y.is_nan() {
                    return $c::new(<$f>::NAN, <$f>::NAN);
                }
                if x.abs() > large || y.abs() > large {
                    let re = if x.is_infinite() || y.is_infinite() {
                        (0.0 as $f).copysign(x)
                    } else {
                        let s = x.abs().max(y.abs());
                        let (xs, ys) = (x / s, y / s);
                        xs / s / (xs * xs + ys * ys)
                    };
                    return $c::new(re, half_pi.copysign(y));
                }
                // On |x| and |y| (FreeBSD's `catanh`): the `log1p` argument is then positive and
                // nothing cancels; the signs come back at the end.
                let (ax, ay) = (x.abs(), y.abs());
                let one_m = 1.0 - ax;
                let re = 0.25 * (4.0 * ax / (one_m * one_m + ay * ay)).ln_1p();
                let im = 0.5 * (2.0 * ay).atan2(one_m * (1.0 + ax) - ay * ay);
                $c::new(re.copysign(x), im.copysign(y))
            }

            /// `atan(z) = -i atanh(i z)`.
            fn catan(z: $c) -> $c {
                let w = catanh($c::new(-z.im, z.re));
                $c::new(w.im, -w.re)
            }

            /// `asinh(z) = -i asin(i z)`.
            fn casinh(z: $c) -> $c {
                let w = casin($c::new(-z.im, z.re));
                $c::new(w.im, -w.re)
            }

            /// `sqrt(1 - z)`, with `1 - z` formed part by part so that signed zeros survive.
            fn one_minus_sqrt(z: $c) -> $c {
                csqrt($c::new(1.0 - z.re, -z.im))
            }

            /// `sqrt(1 + z)`.
            fn one_plus_sqrt(z: $c) -> $c {
                csqrt($c::new(1.0 + z.re, z.im))
            }

            fn real_asinh(x: $f) -> $f {
                x.np_asinh()
            }

            /// Kahan's complex square root (FreeBSD `s_csqrt.c`), with C99's special values.
            fn csqrt(z: $c) -> $c {
                let (a, b) = (z.re, z.im);
                if a == 0.0 && b == 0.0 {
                    return $c::new(0.0, b);
                }
                if b.is_infinite() {
                    return $c::new(<$f>::INFINITY, b);
                }
                if a.is_nan() {
                    return $c::new(<$f>::NAN, <$f>::NAN);
                }
                if a.is_infinite() {
                    return if a < 0.0 {
                        $c::new(nan_or_zero(b), a.abs().copysign(b))
                    } else {
                        $c::new(a, nan_or_zero(b).copysign(b))
                    };
                }
                if b.is_nan() {
                    return $c::new(<$f>::NAN, <$f>::NAN);
                }
                if a.abs() >= $thresh || b.abs() >= $thresh {
                    let r = csqrt($c::new(a * 0.25, b * 0.25));
                    return $c::new(r.re * 2.0, r.im * 2.0);
                }
                if a >= 0.0 {
                    let t = ((a + a.hypot(b)) * 0.5).sqrt();
                    $c::new(t, b / (2.0 * t))
                } else {
                    let t = ((-a + a.hypot(b)) * 0.5).sqrt();
                    $c::new(b.abs() / (2.0 * t), t.copysign(b))
                }
            }

            /// Kahan's complex hyperbolic tangent (FreeBSD `s_ctanh.c`).
            fn ctanh(z: $c) -> $c {
                let (x, y) = (z.re, z.im);
                if !x.is_finite() {
                    if x.is_nan() {
                        return $c::new(<$f>::NAN, if y == 0.0 { y } else { <$f>::NAN });
                    }
                    let im = if y.is_infinite() {
                        y
                    } else {
                        y.sin() * y.cos()
                    };
                    return $c::new((1.0 as $f).copysign(x), (0.0 as $f).copysign(im));
                }
                if !y.is_finite() {
                    return $c::new(if x != 0.0 { nan_or_zero(y) } else { x }, nan_or_zero(y));
                }
                if x.abs() >= 22.0 {
                    let exp_mx = (-x.abs()).exp();
                    return $c::new(
                        (1.0 as $f).copysign(x),
                        4.0 * y.sin() * y.cos() * exp_mx * exp_mx,
                    );
                }
                let t = y.tan();
                let beta = 1.0 + t * t;
                let s = x.sinh();
                let rho = (1.0 + s * s).sqrt();
                let denom = 1.0 + beta * s * s;
                $c::new((beta * rho * s) / denom, t / denom)
            }

            /// C's `cpow` (`cexp(b * clog(a))`, with C's complex multiplication).
            pub(crate) fn cpow(a: $c, b: $c) -> $c {
                cexp(muldc3(b, a.ln()))
            }

            /// The complex exponential as glibc computes it for finite arguments (scaling large real
            /// parts so that a zero imaginary part stays zero instead of becoming `inf * 0`);
            /// num-complex's C99 special values otherwise.
            fn cexp(z: $c) -> $c {
                let (mut x, y) = (z.re, z.im);
                if !(x.is_finite() && y.is_finite()) {
                    return z.exp();
                }
                let (mut s, mut c) = if y.abs() > <$f>::MIN_POSITIVE {
                    y.sin_cos()
                } else {
                    (y, 1.0)
                };
                if x > $t {
                    let e = ($t as $f).exp();
                    x -= $t;
                    s *= e;
                    c *= e;
                    if x > $t {
                        x -= $t;
                        s *= e;
                        c *= e;
                    }
                }
                if x > $t {
                    return $c::new(<$f>::MAX * c, <$f>::MAX * s);
                }
                let e = x.exp();
                $c::new(e * c, e * s)
            }

            /// C's complex multiplication (libgcc's `__muldc3`): the textbook formula, but infinities
            /// that it turns into NaN + NaN i are recovered as C99 Annex G requires.
            fn muldc3(z: $c, w: $c) -> $c {
                let (mut a, mut b, mut c, mut d) = (z.re, z.im, w.re, w.im);
                let (ac, bd, ad, bc) = (a * c, b * d, a * d, b * c);
                let (x, y) = (ac - bd, ad + bc);
                if !(x.is_nan() && y.is_nan()) {
                    return $c::new(x, y);
                }
                let boxed = |v: $f| {
                    (if v.is_infinite() {
                        (1.0 as $f)
                    } else {
                        (0.0 as $f)
                    })
                    .copysign(v)
                };
                let zeroed = |v: $f| {
                    if v.is_nan() {
                        (0.0 as $f).copysign(v)
                    } else {
                        v
                    }
                };
                let mut recalc = false;
                if a.is_infinite() || b.is_infinite() {
                    (a, b, c, d) = (boxed(a), boxed(b), zeroed(c), zeroed(d));
                    recalc = true;
                }
                if c.is_infinite() || d.is_infinite() {
                    (a, b, c, d) = (zeroed(a), zeroed(b), boxed(c), boxed(d));
                    recalc = true;
                }
                if !recalc && [ac, bd, ad, bc].iter().any(|v| v.is_infinite()) {
                    (a, b, c, d) = (zeroed(a), zeroed(b), zeroed(c), zeroed(d));
                    recalc = true;
                }
                if recalc {
                    $c::new(
                        <$f>::INFINITY * (a * c - b * d),
                        <$f>::INFINITY * (a * d + b * c),
                    )
                } else {
                    $c::new(x, y)
                }
            }

            /// The complex hyperbolic cosine with C99's special values (FreeBSD `s_ccosh.c`).
            fn ccosh(z: $c) -> $c {
                let (x, y) = (z.re, z.im);
                if x.is_finite() && y.is_finite() {
                    if y == 0.0 {
                        return $c::new(x.cosh(), x * y);
                    }
                    return $c::new(x.cosh() * y.cos(), x.sinh() * y.sin());
                }
                if x == 0.0 {
                    // y is infinite or NaN.
                    return $c::new(<$f>::NAN, x * (0.0 as $f).copysign(nan_or_zero(y)));
                }
                if y == 0.0 {
                    // x is infinite or NaN.
                    return $c::new(x * x, (0.0 as $f).copysign(x) * y);
                }
                if x.is_finite() {
                    return $c::new(<$f>::NAN, <$f>::NAN);
                }
                if x.is_infinite() {
                    if !y.is_finite() {
                        return $c::new(x * x, x * nan_or_zero(y));
                    }
                    return $c::new(x * x * y.cos(), x * y.sin());
                }
                $c::new(<$f>::NAN, <$f>::NAN)
            }

            /// The complex hyperbolic sine with C99's special values (FreeBSD `s_csinh.c`).
            fn csinh(z: $c) -> $c {
                let (x, y) = (z.re, z.im);
                if x.is_finite() && y.is_finite() {
                    if y == 0.0 {
                        return $c::new(x.sinh(), y);
                    }
                    return $c::new(x.sinh() * y.cos(), x.cosh() * y.sin());
                }
                if x == 0.0 {
                    // y is infinite or NaN.
                    return $c::new(x, <$f>::NAN);
                }
                if y == 0.0 {
                    // x is infinite or NaN.
                    return $c::new(x, y);
                }
                if x.is_finite() {
                    return $c::new(<$f>::NAN, <$f>::NAN);
                }
                if x.is_infinite() {
                    if !y.is_finite() {
                        return $c::new(x * x, <$f>::NAN);
                    }
                    return $c::new(x * y.cos(), <$f>::INFINITY * y.sin());
                }
                $c::new(<$f>::NAN, <$f>::NAN)
            }

            /// `sin(z) = -i sinh(i z)`.
            fn csin(z: $c) -> $c {
                let w = csinh($c::new(-z.im, z.re));
                $c::new(w.im, -w.re)
            }

            /// `cos(z) = cosh(i z)`.
            fn ccos(z: $c) -> $c {
                ccosh($c::new(-z.im, z.re))
            }

            /// `tan(z) = -i tanh(i z)`.
            fn ctan(z: $c) -> $c {
                let w = ctanh($c::new(-z.im, z.re));
                $c::new(w.im, -w.re)
            }
        }
    };
}

// Overflow thresholds of `exp` (glibc's `cexp`) and of `csqrt`'s scaling (FreeBSD).
elementary_impl!(e32, Complex32, f32, 88.0, 1.0e38);
elementary_impl!(e64, Complex64, f64, 709.0, 7.446288774449766e307);
