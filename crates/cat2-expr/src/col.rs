//! Typed columns: the values of one expression node over one stretch of the result box.
//!
//! Kernels work on `Vec<T>` of one concrete type so the compiler can vectorise their loops;
//! the enum is matched once per column, never per element. `float16` columns hold `f32`
//! values that are exactly representable in float16 (see `f16`).

use num_complex::{Complex32, Complex64};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::f16;
use crate::pyscalar::Py;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Col {
    Bool(Vec<bool>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F16(Vec<f32>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    C64(Vec<Complex32>),
    C128(Vec<Complex64>),
}

/// Runs `$e` with `$v` bound to the vector inside any variant.
macro_rules! each {
    ($col:expr, $v:ident => $e:expr) => {
        match $col {
            Col::Bool($v) => $e,
            Col::I8($v) => $e,
            Col::I16($v) => $e,
            Col::I32($v) => $e,
            Col::I64($v) => $e,
            Col::U8($v) => $e,
            Col::U16($v) => $e,
            Col::U32($v) => $e,
            Col::U64($v) => $e,
            Col::F16($v) => $e,
            Col::F32($v) => $e,
            Col::F64($v) => $e,
            Col::C64($v) => $e,
            Col::C128($v) => $e,
        }
    };
}

/// Like `each!`, rebuilding the same variant from `$e`.
macro_rules! each_same {
    ($col:expr, $v:ident => $e:expr) => {
        match $col {
            Col::Bool($v) => Col::Bool($e),
            Col::I8($v) => Col::I8($e),
            Col::I16($v) => Col::I16($e),
            Col::I32($v) => Col::I32($e),
            Col::I64($v) => Col::I64($e),
            Col::U8($v) => Col::U8($e),
            Col::U16($v) => Col::U16($e),
            Col::U32($v) => Col::U32($e),
            Col::U64($v) => Col::U64($e),
            Col::F16($v) => Col::F16($e),
            Col::F32($v) => Col::F32($e),
            Col::F64($v) => Col::F64($e),
            Col::C64($v) => Col::C64($e),
            Col::C128($v) => Col::C128($e),
        }
    };
}

/// What a cast needs from an element type.
pub(crate) trait Elem: Copy + Send + Sync + 'static {
    /// The (real part of the) value as `f64`.
    fn re(self) -> f64;
    /// The imaginary part.
    fn im(self) -> f64 {
        0.0
    }
    /// The value of a bool or integer (floats are never cast to integers here).
    fn int(self) -> i128;
    /// NumPy's truth value (`x != 0`; NaN is true).
    fn truthy(self) -> bool;
}

macro_rules! elem_int {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            #[inline] fn re(self) -> f64 { self as f64 }
            #[inline] fn int(self) -> i128 { self as i128 }
            #[inline] fn truthy(self) -> bool { self != 0 }
        }
    )*};
}
elem_int!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Elem for bool {
    #[inline]
    fn re(self) -> f64 {
        f64::from(u8::from(self))
    }
    #[inline]
    fn int(self) -> i128 {
        i128::from(self)
    }
    #[inline]
    fn truthy(self) -> bool {
        self
    }
}

macro_rules! elem_float {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            #[inline] fn re(self) -> f64 { self as f64 }
            #[inline] fn int(self) -> i128 { self as i128 }
            #[inline] fn truthy(self) -> bool { self != 0.0 }
        }
    )*};
}
elem_float!(f32, f64);

macro_rules! elem_complex {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            #[inline] fn re(self) -> f64 { self.re as f64 }
            #[inline] fn im(self) -> f64 { self.im as f64 }
            #[inline] fn int(self) -> i128 { self.re as i128 }
            #[inline] fn truthy(self) -> bool { self.re != 0.0 || self.im != 0.0 }
        }
    )*};
}
elem_complex!(Complex32, Complex64);

/// Converts `v` to `to` (a safe cast in NumPy's sense, or to bool by truth value).
fn cast_slice<S: Elem>(v: &[S], to: DType) -> Col {
    use DType::*;
    match to {
        Bool => Col::Bool(v.iter().map(|x| x.truthy()).collect()),
        I8 => Col::I8(v.iter().map(|x| x.int() as i8).collect()),
        I16 => Col::I16(v.iter().map(|x| x.int() as i16).collect()),
        I32 => Col::I32(v.iter().map(|x| x.int() as i32).collect()),
        I64 => Col::I64(v.iter().map(|x| x.int() as i64).collect()),
        U8 => Col::U8(v.iter().map(|x| x.int() as u8).collect()),
        U16 => Col::U16(v.iter().map(|x| x.int() as u16).collect()),
        U32 => Col::U32(v.iter().map(|x| x.int() as u32).collect()),
        U64 => Col::U64(v.iter().map(|x| x.int() as u64).collect()),
        F16 => Col::F16(
            v.iter()
                .map(|x| f16::bits_to_f32(f16::f64_to_bits(x.re())))
                .collect(),
        ),
        F32 => Col::F32(v.iter().map(|x| x.re() as f32).collect()),
        F64 => Col::F64(v.iter().map(|x| x.re()).collect()),
        C64 => Col::C64(
            v.iter()
                .map(|x| Complex32::new(x.re() as f32, x.im() as f32))
                .collect(),
        ),
        C128 => Col::C128(v.iter().map(|x| Complex64::new(x.re(), x.im())).collect()),
    }
}

/// A one-value integer column of `dtype` holding `i` (already range-checked).
fn int_col(i: i128, dtype: DType) -> Option<Col> {
    Some(match dtype {
        DType::I8 => Col::I8(vec![i as i8]),
        DType::I16 => Col::I16(vec![i as i16]),
        DType::I32 => Col::I32(vec![i as i32]),
        DType::I64 => Col::I64(vec![i as i64]),
        DType::U8 => Col::U8(vec![i as u8]),
        DType::U16 => Col::U16(vec![i as u16]),
        DType::U32 => Col::U32(vec![i as u32]),
        DType::U64 => Col::U64(vec![i as u64]),
        _ => return None,
    })
}

/// A one-value float or complex column of `dtype` (narrowing a Python float is what NEP 50
/// does with weak scalars).
fn float_col(re: f64, im: f64, dtype: DType) -> Col {
    match dtype {
        DType::F32 => Col::F32(vec![re as f32]),
        DType::C64 => Col::C64(vec![Complex32::new(re as f32, im as f32)]),
        DType::C128 => Col::C128(vec![Complex64::new(re, im)]),
        other => Col::F64(vec![re]).cast(other),
    }
}

impl Col {
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Col::Bool(_) => DType::Bool,
            Col::I8(_) => DType::I8,
            Col::I16(_) => DType::I16,
            Col::I32(_) => DType::I32,
            Col::I64(_) => DType::I64,
            Col::U8(_) => DType::U8,
            Col::U16(_) => DType::U16,
            Col::U32(_) => DType::U32,
            Col::U64(_) => DType::U64,
            Col::F16(_) => DType::F16,
            Col::F32(_) => DType::F32,
            Col::F64(_) => DType::F64,
            Col::C64(_) => DType::C64,
            Col::C128(_) => DType::C128,
        }
    }

    pub(crate) fn len(&self) -> usize {
        each!(self, v => v.len())
    }

    /// `n` copies of the first value (of a one-value constant column).
    pub(crate) fn repeat(&self, n: usize) -> Col {
        each_same!(self, v => v.first().map(|&x| vec![x; n]).unwrap_or_default())
    }

    /// The column converted to `to` (NumPy safe casts, and truth values for bool).
    pub(crate) fn cast(self, to: DType) -> Col {
        if self.dtype() == to {
            return self;
        }
        each!(&self, v => cast_slice(v, to))
    }

    /// The first value as a complex `f64` pair (for constants).
    pub(crate) fn first_c64(&self) -> Option<Complex64> {
        each!(self, v => v.first().map(|x| Complex64::new(x.re(), x.im())))
    }

    /// A one-value column of `dtype` holding a Python scalar, with NumPy's (NEP 50) range
    /// check for Python integers.
    pub(crate) fn from_py(p: Py, dtype: DType) -> Result<Col> {
        if dtype == DType::Bool {
            return Ok(Col::Bool(vec![p.truthy()]));
        }
        match p {
            Py::Bool(b) => Ok(Col::Bool(vec![b]).cast(dtype)),
            Py::Int(i) => {
                if let Some((lo, hi)) = dtype.int_range() {
                    if i < lo || i > hi {
                        return Err(Error::Type(format!(
                            "Python integer {i} out of bounds for {dtype}"
                        )));
                    }
                }
                Ok(int_col(i, dtype).unwrap_or_else(|| float_col(i as f64, 0.0, dtype)))
            }
            Py::Float(f) => Ok(float_col(f, 0.0, dtype)),
            Py::Complex(re, im) => Ok(float_col(re, im, dtype)),
        }
    }

    /// Decodes native-endian items of `dtype` from `bytes`, taking items `start..start+n`
    /// when `idx` is `None` or the listed item indices otherwise. The caller guarantees the
    /// indices are in range.
    pub(crate) fn decode(
        dtype: DType,
        bytes: &[u8],
        start: usize,
        n: usize,
        idx: Option<&[usize]>,
    ) -> Col {
        fn rd<T, const N: usize>(
            bytes: &[u8],
            start: usize,
            n: usize,
            idx: Option<&[usize]>,
            f: impl Fn([u8; N]) -> T,
        ) -> Vec<T> {
            let item = |c: &[u8]| f(c.try_into().expect("slices of N bytes"));
            match idx {
                None => bytes[start * N..(start + n) * N]
                    .chunks_exact(N)
                    .map(item)
                    .collect(),
                Some(idx) => idx
                    .iter()
                    .map(|&i| item(&bytes[i * N..i * N + N]))
                    .collect(),
            }
        }
        let (b, s) = (bytes, start);
        match dtype {
            DType::Bool => Col::Bool(rd(b, s, n, idx, |[x]: [u8; 1]| x != 0)),
            DType::I8 => Col::I8(rd(b, s, n, idx, i8::from_ne_bytes)),
            DType::I16 => Col::I16(rd(b, s, n, idx, i16::from_ne_bytes)),
            DType::I32 => Col::I32(rd(b, s, n, idx, i32::from_ne_bytes)),
            DType::I64 => Col::I64(rd(b, s, n, idx, i64::from_ne_bytes)),
            DType::U8 => Col::U8(rd(b, s, n, idx, u8::from_ne_bytes)),
            DType::U16 => Col::U16(rd(b, s, n, idx, u16::from_ne_bytes)),
            DType::U32 => Col::U32(rd(b, s, n, idx, u32::from_ne_bytes)),
            DType::U64 => Col::U64(rd(b, s, n, idx, u64::from_ne_bytes)),
            DType::F16 => Col::F16(rd(b, s, n, idx, |x| {
                f16::bits_to_f32(u16::from_ne_bytes(x))
            })),
            DType::F32 => Col::F32(rd(b, s, n, idx, f32::from_ne_bytes)),
            DType::F64 => Col::F64(rd(b, s, n, idx, f64::from_ne_bytes)),
            DType::C64 => Col::C64(rd(b, s, n, idx, |x: [u8; 8]| {
                let (re, im) = x.split_at(4);
                Complex32::new(
                    f32::from_ne_bytes(re.try_into().expect("4 bytes")),
                    f32::from_ne_bytes(im.try_into().expect("4 bytes")),
                )
            })),
            DType::C128 => Col::C128(rd(b, s, n, idx, |x: [u8; 16]| {
                let (re, im) = x.split_at(8);
                Complex64::new(
                    f64::from_ne_bytes(re.try_into().expect("8 bytes")),
                    f64::from_ne_bytes(im.try_into().expect("8 bytes")),
                )
            })),
        }
    }

    /// Writes the values as native-endian bytes; `out` has exactly `len * itemsize` bytes.
    pub(crate) fn encode(&self, out: &mut [u8]) {
        fn wr<T: Copy, const N: usize>(v: &[T], out: &mut [u8], f: impl Fn(T) -> [u8; N]) {
            for (o, &x) in out.chunks_exact_mut(N).zip(v) {
                o.copy_from_slice(&f(x));
            }
        }
        match self {
            Col::Bool(v) => wr(v, out, |x| [u8::from(x)]),
            Col::I8(v) => wr(v, out, i8::to_ne_bytes),
            Col::I16(v) => wr(v, out, i16::to_ne_bytes),
            Col::I32(v) => wr(v, out, i32::to_ne_bytes),
            Col::I64(v) => wr(v, out, i64::to_ne_bytes),
            Col::U8(v) => wr(v, out, u8::to_ne_bytes),
            Col::U16(v) => wr(v, out, u16::to_ne_bytes),
            Col::U32(v) => wr(v, out, u32::to_ne_bytes),
            Col::U64(v) => wr(v, out, u64::to_ne_bytes),
            Col::F16(v) => wr(v, out, |x| f16::f64_to_bits(f64::from(x)).to_ne_bytes()),
            Col::F32(v) => wr(v, out, f32::to_ne_bytes),
            Col::F64(v) => wr(v, out, f64::to_ne_bytes),
            Col::C64(v) => wr(v, out, |x| {
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&x.re.to_ne_bytes());
                b[4..].copy_from_slice(&x.im.to_ne_bytes());
                b
            }),
            Col::C128(v) => wr(v, out, |x| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&x.re.to_ne_bytes());
                b[8..].copy_from_slice(&x.im.to_ne_bytes());
                b
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bytes() {
        for dt in crate::dtype::LOOP_ORDER {
            let col = Col::I8(vec![0, 1, 2, 3]).cast(dt);
            let mut bytes = vec![0u8; 4 * dt.itemsize()];
            col.encode(&mut bytes);
            assert_eq!(Col::decode(dt, &bytes, 0, 4, None), col, "{dt}");
            assert_eq!(Col::decode(dt, &bytes, 1, 2, None).len(), 2);
            let picked = Col::decode(dt, &bytes, 0, 0, Some(&[3, 3, 0]));
            assert_eq!(picked, Col::I8(vec![3, 3, 0]).cast(dt));
        }
    }

    #[test]
    fn python_scalars_follow_nep50() {
        assert_eq!(Col::from_py(Py::Int(7), DType::U16), Ok(Col::U16(vec![7])));
        assert!(Col::from_py(Py::Int(70000), DType::U16).is_err());
        assert!(Col::from_py(Py::Int(-1), DType::U8).is_err());
        assert_eq!(
            Col::from_py(Py::Float(0.1), DType::F32),
            Ok(Col::F32(vec![0.1]))
        );
        assert_eq!(
            Col::from_py(Py::Bool(true), DType::I8),
            Ok(Col::I8(vec![1]))
        );
    }
}
