//! The typed inner loop of the products: rows of `a` times blocks of `b`, accumulated in
//! i-k-j order (each row of `b` is walked contiguously), rows computed in parallel.
//!
//! Integers of every width accumulate in wrapping `i64` (wrapping arithmetic commutes with
//! truncation, so the result is NumPy's wrapping result in the narrower dtype), `bool` is
//! the logical or of ands, `float16` accumulates in `f32` and rounds once at the end, as
//! NumPy's float16 matmul loop does; other floats and complex numbers accumulate in their
//! own dtype.

use num_complex::{Complex32, Complex64};
use rayon::prelude::*;

use crate::col::Col;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// What a product needs from an element type.
trait Dot: Copy + Send + Sync {
    const ZERO: Self;
    fn mul(a: Self, b: Self) -> Self;
    fn add(a: Self, b: Self) -> Self;
}

impl Dot for bool {
    const ZERO: bool = false;
    #[inline]
    fn mul(a: bool, b: bool) -> bool {
        a & b
    }
    #[inline]
    fn add(a: bool, b: bool) -> bool {
        a | b
    }
}

impl Dot for i64 {
    const ZERO: i64 = 0;
    #[inline]
    fn mul(a: i64, b: i64) -> i64 {
        a.wrapping_mul(b)
    }
    #[inline]
    fn add(a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
}

macro_rules! dot_arith {
    ($($t:ty = $zero:expr),*) => {$(
        impl Dot for $t {
            const ZERO: $t = $zero;
            #[inline]
            fn mul(a: $t, b: $t) -> $t {
                a * b
            }
            #[inline]
            fn add(a: $t, b: $t) -> $t {
                a + b
            }
        }
    )*};
}
dot_arith!(
    f32 = 0.0,
    f64 = 0.0,
    Complex32 = Complex32::new(0.0, 0.0),
    Complex64 = Complex64::new(0.0, 0.0)
);

/// Where each output row's operands are: `a[a_at..a_at + k]` is its row of `a`, and
/// `b[b_at..b_at + k * m]` its `k × m` block of `b`.
pub(super) struct Rows {
    pub(super) at: Vec<(usize, usize)>,
    pub(super) k: usize,
    pub(super) m: usize,
}

/// Output rows of `m` items with fewer items than this per task are batched.
const TASK: usize = 1 << 14;

fn run<T: Dot>(a: &[T], b: &[T], rows: &Rows) -> Vec<T> {
    let (k, m) = (rows.k, rows.m);
    let mut out = vec![T::ZERO; rows.at.len() * m];
    if m == 0 || k == 0 {
        return out;
    }
    let min_rows = (TASK / (k * m)).max(1);
    out.par_chunks_mut(m)
        .zip(rows.at.par_iter())
        .with_min_len(min_rows)
        .for_each(|(o, &(ai, bi))| {
            let arow = &a[ai..ai + k];
            let block = &b[bi..bi + k * m];
            for (p, (&x, brow)) in arow.iter().zip(block.chunks_exact(m)).enumerate() {
                if p == 0 {
                    for (o, &y) in o.iter_mut().zip(brow) {
                        *o = T::mul(x, y);
                    }
                } else {
                    for (o, &y) in o.iter_mut().zip(brow) {
                        *o = T::add(*o, T::mul(x, y));
                    }
                }
            }
        });
    out
}

/// The products of `a` and `b` (native-endian items of `dtype`) for `rows`, as bytes of
/// `dtype`; `conj_a` conjugates `a` first (`vecdot` of complex inputs).
pub(super) fn products(
    dtype: DType,
    a: &[u8],
    b: &[u8],
    conj_a: bool,
    rows: &Rows,
) -> Result<Vec<u8>> {
    let isz = dtype.itemsize();
    let ca = Col::decode(dtype, a, 0, a.len() / isz, None);
    let cb = Col::decode(dtype, b, 0, b.len() / isz, None);
    let out = match (ca, cb) {
        (Col::Bool(a), Col::Bool(b)) => Col::Bool(run(&a, &b, rows)),
        (Col::F16(a), Col::F16(b)) => Col::F16(run(&a, &b, rows)),
        (Col::F32(a), Col::F32(b)) => Col::F32(run(&a, &b, rows)),
        (Col::F64(a), Col::F64(b)) => Col::F64(run(&a, &b, rows)),
        (Col::C64(mut a), Col::C64(b)) => {
            if conj_a {
                a.iter_mut().for_each(|x| *x = x.conj());
            }
            Col::C64(run(&a, &b, rows))
        }
        (Col::C128(mut a), Col::C128(b)) => {
            if conj_a {
                a.iter_mut().for_each(|x| *x = x.conj());
            }
            Col::C128(run(&a, &b, rows))
        }
        (a, b) if dtype.is_integer() => {
            let (Col::I64(a), Col::I64(b)) = (a.cast(DType::I64), b.cast(DType::I64)) else {
                return Err(Error::Internal("integer columns did not widen".into()));
            };
            Col::I64(run(&a, &b, rows)).cast(dtype)
        }
        _ => return Err(Error::Internal(format!("no product loop for {dtype}"))),
    };
    let mut bytes = vec![0u8; out.len() * isz];
    out.encode(&mut bytes);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_i8(v: &[i8]) -> Vec<u8> {
        v.iter().map(|x| x.to_ne_bytes()[0]).collect()
    }

    #[test]
    fn integer_products_wrap_and_bools_are_logical() {
        // [[100, 1]] @ [[2], [100]] in int8: 200 + 100 = 300 wraps to 44.
        let rows = Rows {
            at: vec![(0, 0)],
            k: 2,
            m: 1,
        };
        let out = products(
            DType::I8,
            &bytes_i8(&[100, 1]),
            &bytes_i8(&[2, 100]),
            false,
            &rows,
        )
        .expect("runs");
        assert_eq!(out, bytes_i8(&[44]));
        let out = products(DType::Bool, &[1, 0], &[0, 1], false, &rows).expect("runs");
        assert_eq!(out, [0]);
        let out = products(DType::Bool, &[1, 1], &[0, 1], false, &rows).expect("runs");
        assert_eq!(out, [1]);
        // k = 0: zeros.
        let empty = Rows {
            at: vec![(0, 0); 2],
            k: 0,
            m: 3,
        };
        let out = products(DType::F64, &[], &[], false, &empty).expect("runs");
        assert_eq!(out, vec![0u8; 48]);
    }
}
