//! Integer kernels with NumPy's C semantics: wrapping overflow, floor division and modulo
//! that give 0 for a zero divisor (NumPy warns and returns 0), shifts by the type width or
//! more give 0 (or -1 for negative values shifted right), integer `**` by squaring.

use super::{zip_in_place, BOp, UOp};
use crate::error::{Error, Result};

pub(crate) trait Int: Copy + Ord + Send + Sync + 'static {
    const ZERO: Self;
    const SIGNED: bool;
    fn wadd(self, o: Self) -> Self;
    fn wsub(self, o: Self) -> Self;
    fn wmul(self, o: Self) -> Self;
    fn wneg(self) -> Self;
    fn wabs(self) -> Self;
    fn floordiv(self, o: Self) -> Self;
    fn modulo(self, o: Self) -> Self;
    fn ipow(self, o: Self) -> Self;
    fn shl(self, o: Self) -> Self;
    fn shr(self, o: Self) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    fn not(self) -> Self;
    fn sign(self) -> Self;
    fn recip(self) -> Self;
}

macro_rules! impl_int {
    ($t:ty, $u:ty, signed = $signed:expr, recip0 = $recip0:expr) => {
        impl Int for $t {
            const ZERO: Self = 0;
            const SIGNED: bool = $signed;
            #[inline]
            fn wadd(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline]
            fn wsub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline]
            fn wmul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline]
            fn wneg(self) -> Self {
                self.wrapping_neg()
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn wabs(self) -> Self {
                if self < 0 {
                    self.wrapping_neg()
                } else {
                    self
                }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn floordiv(self, o: Self) -> Self {
                if o == 0 {
                    return 0;
                }
                // MIN // -1 overflows: NumPy returns MIN (wrapping).
                let q = self.wrapping_div(o);
                if (self < 0) != (o < 0) && q.wrapping_mul(o) != self {
                    q - 1
                } else {
                    q
                }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn modulo(self, o: Self) -> Self {
                if o == 0 {
                    return 0;
                }
                let r = self.wrapping_rem(o);
                if r != 0 && ((r < 0) != (o < 0)) {
                    r + o
                } else {
                    r
                }
            }
            #[inline]
            fn ipow(self, o: Self) -> Self {
                // Exponents are non-negative here (negative ones are refused beforehand).
                let mut base = self;
                let mut exp = o as $u;
                let mut out: Self = 1;
                while exp > 0 {
                    if exp & 1 == 1 {
                        out = out.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    exp >>= 1;
                }
                out
            }
            #[inline]
            fn shl(self, o: Self) -> Self {
                // NumPy casts the shift to an unsigned size: negative shifts are huge.
                let s = o as $u;
                if s < <$t>::BITS as $u {
                    self.wrapping_shl(s as u32)
                } else {
                    0
                }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn shr(self, o: Self) -> Self {
                let s = o as $u;
                if s < <$t>::BITS as $u {
                    self.wrapping_shr(s as u32)
                } else if self < 0 {
                    (0 as $t).wrapping_sub(1)
                } else {
                    0
                }
            }
            #[inline]
            fn and(self, o: Self) -> Self {
                self & o
            }
            #[inline]
            fn or(self, o: Self) -> Self {
                self | o
            }
            #[inline]
            fn xor(self, o: Self) -> Self {
                self ^ o
            }
            #[inline]
            fn not(self) -> Self {
                !self
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn sign(self) -> Self {
                if self > 0 {
                    1
                } else if self < 0 {
                    (0 as $t).wrapping_sub(1)
                } else {
                    0
                }
            }
            #[inline]
            fn recip(self) -> Self {
                // NumPy computes `1.0 / x` in double and converts with the C cast; on x86
                // 1/0 = inf converts to the 32/64-bit "integer indefinite" value.
                match self {
                    0 => $recip0,
                    1 => 1,
                    _ => (1.0 / (self as f64)) as $t,
                }
            }
        }
    };
}

impl_int!(i8, u8, signed = true, recip0 = 0);
impl_int!(i16, u16, signed = true, recip0 = 0);
impl_int!(i32, u32, signed = true, recip0 = i32::MIN);
impl_int!(i64, u64, signed = true, recip0 = i64::MIN);
impl_int!(u8, u8, signed = false, recip0 = 0);
impl_int!(u16, u16, signed = false, recip0 = 0);
impl_int!(u32, u32, signed = false, recip0 = 0);
impl_int!(u64, u64, signed = false, recip0 = 0);

pub(crate) fn negative_power_error() -> Error {
    Error::Value("Integers to negative integer powers are not allowed.".into())
}

pub(crate) fn binary<T: Int>(op: BOp, mut a: Vec<T>, b: &[T]) -> Result<Vec<T>> {
    let v = &mut a;
    match op {
        BOp::Add => zip_in_place(v, b, T::wadd),
        BOp::Sub => zip_in_place(v, b, T::wsub),
        BOp::Mul => zip_in_place(v, b, T::wmul),
        BOp::FloorDiv => zip_in_place(v, b, T::floordiv),
        BOp::Mod => zip_in_place(v, b, T::modulo),
        BOp::Pow => {
            if T::SIGNED && b.iter().any(|&x| x < T::ZERO) {
                return Err(negative_power_error());
            }
            zip_in_place(v, b, T::ipow)
        }
        BOp::Max | BOp::ClipMax => zip_in_place(v, b, Ord::max),
        BOp::Min | BOp::ClipMin => zip_in_place(v, b, Ord::min),
        BOp::And => zip_in_place(v, b, T::and),
        BOp::Or => zip_in_place(v, b, T::or),
        BOp::Xor => zip_in_place(v, b, T::xor),
        BOp::Shl => zip_in_place(v, b, T::shl),
        BOp::Shr => zip_in_place(v, b, T::shr),
        _ => return Err(Error::Internal(format!("{op:?} on integers"))),
    }
    Ok(a)
}

pub(crate) fn unary<T: Int>(op: UOp, mut a: Vec<T>) -> Result<Vec<T>> {
    let map = |a: &mut Vec<T>, f: fn(T) -> T| a.iter_mut().for_each(|x| *x = f(*x));
    match op {
        UOp::Neg => map(&mut a, T::wneg),
        UOp::Invert => map(&mut a, T::not),
        UOp::Abs => map(&mut a, T::wabs),
        UOp::Sign => map(&mut a, T::sign),
        UOp::Square => a.iter_mut().for_each(|x| *x = x.wmul(*x)),
        UOp::Reciprocal => map(&mut a, T::recip),
        // Integers are their own floor, ceiling, truncation, rounding, real part, conjugate.
        UOp::Floor | UOp::Ceil | UOp::Trunc | UOp::Rint | UOp::Real | UOp::Conj => {}
        UOp::Imag => a.iter_mut().for_each(|x| *x = T::ZERO),
        _ => return Err(Error::Internal(format!("{op:?} on integers"))),
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_integer_semantics() {
        assert_eq!(i64::MIN.floordiv(-1), i64::MIN);
        assert_eq!(i64::MIN.modulo(-1), 0);
        assert_eq!(7i64.floordiv(0), 0);
        assert_eq!(7i64.modulo(0), 0);
        assert_eq!((-7i64).floordiv(2), -4);
        assert_eq!((-7i64).modulo(3), 2);
        assert_eq!(7i64.modulo(-3), -2);
        assert_eq!((-7i64).modulo(-3), -1);
        assert_eq!((-128i8).shl(9), 0);
        assert_eq!((-128i8).shr(9), -1);
        assert_eq!(7i8.shr(-1), 0);
        assert_eq!((-7i8).shr(-1), -1);
        assert_eq!(200u8.shr(9), 0);
        assert_eq!(1i8.shl(7), -128);
        assert_eq!((-128i8).ipow(2), 0);
        assert_eq!(3i8.ipow(2), 9);
        assert_eq!(0i8.ipow(0), 1);
        assert_eq!((-128i8).wabs(), -128);
        assert_eq!(0i32.recip(), i32::MIN);
        assert_eq!(0i16.recip(), 0);
        assert_eq!((-1i16).recip(), -1);
        assert_eq!(2u8.recip(), 0);
        assert_eq!(5u8.sign(), 1);
        assert_eq!(5u8.wneg(), 251);
    }
}
