//! The values reductions work with: how items are loaded from bytes ([`Item`]), converted
//! and tested ([`Val`]), summed and multiplied ([`Num`]), ordered ([`Ordered`]) and averaged
//! ([`Mean`]).

use num_complex::{Complex32, Complex64};

use crate::col::Col;
use crate::dtype::DType;
use crate::f16;

/// A value as reductions see it (an item once loaded, or an accumulator).
pub(crate) trait Val: Copy + Send + Sync + 'static {
    fn as_i64(self) -> i64;
    fn as_u64(self) -> u64;
    fn as_f64(self) -> f64;
    fn as_c(self) -> Complex64;
    /// NumPy's truth value (`x != 0`; NaN is true).
    fn truthy(self) -> bool;
    /// The values as a column of `dtype` (this type's own dtype, or `float16` for `f32`
    /// values that are exactly representable in it).
    fn col(v: Vec<Self>, dtype: DType) -> Col;
}

macro_rules! val_real {
    ($($t:ty => $variant:ident, $zero:expr);*) => {$(
        impl Val for $t {
            #[inline(always)] fn as_i64(self) -> i64 { self as i64 }
            #[inline(always)] fn as_u64(self) -> u64 { self as u64 }
            #[inline(always)] fn as_f64(self) -> f64 { self as f64 }
            #[inline(always)] fn as_c(self) -> Complex64 { Complex64::new(self as f64, 0.0) }
            #[inline(always)] fn truthy(self) -> bool { self != $zero }
            fn col(v: Vec<Self>, _: DType) -> Col { Col::$variant(v) }
        }
    )*};
}
val_real!(i8 => I8, 0; i16 => I16, 0; i32 => I32, 0; i64 => I64, 0; u8 => U8, 0;
    u16 => U16, 0; u32 => U32, 0; u64 => U64, 0; f64 => F64, 0.0);

#[rustfmt::skip]
impl Val for f32 {
    #[inline(always)] fn as_i64(self) -> i64 { self as i64 }
    #[inline(always)] fn as_u64(self) -> u64 { self as u64 }
    #[inline(always)] fn as_f64(self) -> f64 { self.into() }
    #[inline(always)] fn as_c(self) -> Complex64 { Complex64::new(self.into(), 0.0) }
    #[inline(always)] fn truthy(self) -> bool { self != 0.0 }
    fn col(v: Vec<Self>, dtype: DType) -> Col {
        if dtype == DType::F16 { Col::F16(v) } else { Col::F32(v) }
    }
}

#[rustfmt::skip]
impl Val for bool {
    #[inline(always)] fn as_i64(self) -> i64 { self.into() }
    #[inline(always)] fn as_u64(self) -> u64 { self.into() }
    #[inline(always)] fn as_f64(self) -> f64 { u8::from(self).into() }
    #[inline(always)] fn as_c(self) -> Complex64 { Complex64::new(self.as_f64(), 0.0) }
    #[inline(always)] fn truthy(self) -> bool { self }
    fn col(v: Vec<Self>, _: DType) -> Col { Col::Bool(v) }
}

macro_rules! val_complex {
    ($($t:ty => $variant:ident);*) => {$(
        impl Val for $t {
            #[inline(always)] fn as_i64(self) -> i64 { self.re as i64 }
            #[inline(always)] fn as_u64(self) -> u64 { self.re as u64 }
            #[inline(always)] fn as_f64(self) -> f64 { self.re.into() }
            #[inline(always)]
            fn as_c(self) -> Complex64 { Complex64::new(self.re.into(), self.im.into()) }
            #[inline(always)] fn truthy(self) -> bool { self.re != 0.0 || self.im != 0.0 }
            fn col(v: Vec<Self>, _: DType) -> Col { Col::$variant(v) }
        }
    )*};
}
val_complex!(Complex32 => C64; Complex64 => C128);

/// An input item type: how one value is loaded from its native-endian bytes.
pub(crate) trait Item: Send + Sync + 'static {
    /// Bytes per item.
    const SIZE: usize;
    /// The loaded value (`f32` for float16).
    type V: Val;
    fn load(b: &[u8]) -> Self::V;
}

macro_rules! item_prim {
    ($($t:ty),*) => {$(
        impl Item for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            type V = $t;
            #[inline(always)]
            fn load(b: &[u8]) -> $t {
                <$t>::from_ne_bytes(b.try_into().expect("one item"))
            }
        }
    )*};
}
item_prim!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl Item for bool {
    const SIZE: usize = 1;
    type V = bool;
    #[inline(always)]
    fn load(b: &[u8]) -> bool {
        b[0] != 0
    }
}

/// float16 items, loaded as the `f32` of the same value.
pub(crate) struct Half;

impl Item for Half {
    const SIZE: usize = 2;
    type V = f32;
    #[inline(always)]
    fn load(b: &[u8]) -> f32 {
        f16::bits_to_f32(u16::from_ne_bytes(b.try_into().expect("one item")))
    }
}

macro_rules! item_complex {
    ($($t:ty, $f:ty);*) => {$(
        impl Item for $t {
            const SIZE: usize = 2 * std::mem::size_of::<$f>();
            type V = $t;
            #[inline(always)]
            fn load(b: &[u8]) -> $t {
                let (re, im) = b.split_at(Self::SIZE / 2);
                let part = |p: &[u8]| <$f>::from_ne_bytes(p.try_into().expect("one part"));
                <$t>::new(part(re), part(im))
            }
        }
    )*};
}
item_complex!(Complex32, f32; Complex64, f64);

/// The values of a row of items.
#[inline(always)]
pub(crate) fn items<T: Item>(row: &[u8]) -> impl Iterator<Item = T::V> + '_ {
    row.chunks_exact(T::SIZE).map(T::load)
}

/// Runs `$body` with the type alias `$t` bound to the [`Item`] type of `$dtype`.
macro_rules! with_item {
    ($dtype:expr, $t:ident => $body:expr) => {{
        use $crate::dtype::DType;
        match $dtype {
            DType::Bool => {
                type $t = bool;
                $body
            }
            DType::I8 => {
                type $t = i8;
                $body
            }
            DType::I16 => {
                type $t = i16;
                $body
            }
            DType::I32 => {
                type $t = i32;
                $body
            }
            DType::I64 => {
                type $t = i64;
                $body
            }
            DType::U8 => {
                type $t = u8;
                $body
            }
            DType::U16 => {
                type $t = u16;
                $body
            }
            DType::U32 => {
                type $t = u32;
                $body
            }
            DType::U64 => {
                type $t = u64;
                $body
            }
            DType::F16 => {
                type $t = $crate::structural::reduce::values::Half;
                $body
            }
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::F64 => {
                type $t = f64;
                $body
            }
            DType::C64 => {
                type $t = num_complex::Complex32;
                $body
            }
            DType::C128 => {
                type $t = num_complex::Complex64;
                $body
            }
        }
    }};
}
pub(crate) use with_item;

/// A sum or product accumulator: wrapping `i64`/`u64` for integers, floats and complex.
pub(crate) trait Num: Val {
    const ZERO: Self;
    const ONE: Self;
    fn from_val<V: Val>(v: V) -> Self;
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
}

macro_rules! num_int {
    ($($t:ty, $from:ident);*) => {$(
        impl Num for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            #[inline(always)] fn from_val<V: Val>(v: V) -> Self { v.$from() }
            #[inline(always)] fn add(self, o: Self) -> Self { self.wrapping_add(o) }
            #[inline(always)] fn mul(self, o: Self) -> Self { self.wrapping_mul(o) }
        }
    )*};
}
num_int!(i64, as_i64; u64, as_u64);

macro_rules! num_float {
    ($($t:ty, $zero:expr, $one:expr, $from:expr);*) => {$(
        impl Num for $t {
            const ZERO: Self = $zero;
            const ONE: Self = $one;
            #[inline(always)] fn from_val<V: Val>(v: V) -> Self { $from(v) }
            #[inline(always)] fn add(self, o: Self) -> Self { self + o }
            #[inline(always)] fn mul(self, o: Self) -> Self { self * o }
        }
    )*};
}
num_float!(
    f64, 0.0, 1.0, |v: V| v.as_f64();
    f32, 0.0, 1.0, |v: V| v.as_f64() as f32;
    Complex64, Complex64::new(0.0, 0.0), Complex64::new(1.0, 0.0), |v: V| v.as_c();
    Complex32, Complex32::new(0.0, 0.0), Complex32::new(1.0, 0.0), |v: V| {
        let c = v.as_c();
        Complex32::new(c.re as f32, c.im as f32)
    }
);

/// A float16 running value (cumulative sums and products): NumPy's float16 loops compute
/// each step in `f32` and round the result to float16.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HalfAcc(pub(crate) f32);

#[rustfmt::skip]
impl Val for HalfAcc {
    fn as_i64(self) -> i64 { self.0.as_i64() }
    fn as_u64(self) -> u64 { self.0.as_u64() }
    fn as_f64(self) -> f64 { self.0.into() }
    fn as_c(self) -> Complex64 { self.0.as_c() }
    fn truthy(self) -> bool { self.0 != 0.0 }
    fn col(v: Vec<Self>, _: DType) -> Col { Col::F16(v.into_iter().map(|h| h.0).collect()) }
}

impl Num for HalfAcc {
    const ZERO: Self = HalfAcc(0.0);
    const ONE: Self = HalfAcc(1.0);
    #[inline(always)]
    fn from_val<V: Val>(v: V) -> Self {
        HalfAcc(f16::round(v.as_f64() as f32))
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        HalfAcc(f16::round(self.0 + o.0))
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        HalfAcc(f16::round(self.0 * o.0))
    }
}

/// Values with NumPy's ordering for `min`/`max`/`argmin`/`argmax`: complex numbers compare
/// lexicographically, and NaN (in either part) wins over everything.
pub(crate) trait Ordered: Val {
    const LOWEST: Self;
    const HIGHEST: Self;
    fn gt(self, o: Self) -> bool;
    fn is_nan(self) -> bool;
}

macro_rules! ordered_int {
    ($($t:ty),*) => {$(
        impl Ordered for $t {
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            #[inline(always)] fn gt(self, o: Self) -> bool { self > o }
            #[inline(always)] fn is_nan(self) -> bool { false }
        }
    )*};
}
ordered_int!(i8, i16, i32, i64, u8, u16, u32, u64);

#[rustfmt::skip]
impl Ordered for bool {
    const LOWEST: Self = false;
    const HIGHEST: Self = true;
    #[inline(always)] fn gt(self, o: Self) -> bool { self & !o }
    #[inline(always)] fn is_nan(self) -> bool { false }
}

macro_rules! ordered_float {
    ($($t:ty),*) => {$(
        impl Ordered for $t {
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            #[inline(always)] fn gt(self, o: Self) -> bool { self > o }
            #[inline(always)] fn is_nan(self) -> bool { self.is_nan() }
        }
    )*};
}
ordered_float!(f32, f64);

macro_rules! ordered_complex {
    ($($t:ty, $f:ty);*) => {$(
        impl Ordered for $t {
            const LOWEST: Self = <$t>::new(<$f>::NEG_INFINITY, <$f>::NEG_INFINITY);
            const HIGHEST: Self = <$t>::new(<$f>::INFINITY, <$f>::INFINITY);
            #[inline(always)]
            fn gt(self, o: Self) -> bool {
                self.re > o.re || (self.re == o.re && self.im > o.im)
            }
            #[inline(always)]
            fn is_nan(self) -> bool { self.re.is_nan() || self.im.is_nan() }
        }
    )*};
}
ordered_complex!(Complex32, f32; Complex64, f64);

/// The running mean of `var`/`std`: `f64` for real inputs, complex for complex ones.
pub(crate) trait Mean: Num {
    /// `|self - mean|²`.
    fn dev2(self, mean: Self) -> f64;
    fn scale(self, k: f64) -> Self;
}

impl Mean for f64 {
    #[inline(always)]
    fn dev2(self, mean: f64) -> f64 {
        let d = self - mean;
        d * d
    }
    #[inline(always)]
    fn scale(self, k: f64) -> f64 {
        self * k
    }
}

impl Mean for Complex64 {
    #[inline(always)]
    fn dev2(self, mean: Complex64) -> f64 {
        (self - mean).norm_sqr()
    }
    #[inline(always)]
    fn scale(self, k: f64) -> Complex64 {
        self * k
    }
}
