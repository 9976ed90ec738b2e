//! Typed accumulation loops.
//!
//! An input item type ([`Item`]) says how to load one value from native-endian bytes; a
//! [`Kernel`] says how values combine into an accumulator. The loops are generic and
//! monomorphised per (item, accumulator) pair, so there is no per-element dispatch: a
//! `uint16` sum into `u64` accumulators is a plain widening add that the compiler
//! vectorises.

use std::marker::PhantomData;

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

macro_rules! val_int {
    ($($t:ty => $variant:ident),*) => {$(
        impl Val for $t {
            #[inline(always)] fn as_i64(self) -> i64 { self as i64 }
            #[inline(always)] fn as_u64(self) -> u64 { self as u64 }
            #[inline(always)] fn as_f64(self) -> f64 { self as f64 }
            #[inline(always)] fn as_c(self) -> Complex64 { Complex64::new(self as f64, 0.0) }
            #[inline(always)] fn truthy(self) -> bool { self != 0 }
            fn col(v: Vec<Self>, _: DType) -> Col { Col::$variant(v) }
        }
    )*};
}
val_int!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32,
    u64 => U64);

impl Val for bool {
    #[inline(always)]
    fn as_i64(self) -> i64 {
        i64::from(self)
    }
    #[inline(always)]
    fn as_u64(self) -> u64 {
        u64::from(self)
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    #[inline(always)]
    fn as_c(self) -> Complex64 {
        Complex64::new(self.as_f64(), 0.0)
    }
    #[inline(always)]
    fn truthy(self) -> bool {
        self
    }
    fn col(v: Vec<Self>, _: DType) -> Col {
        Col::Bool(v)
    }
}

impl Val for f32 {
    #[inline(always)]
    fn as_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn as_u64(self) -> u64 {
        self as u64
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn as_c(self) -> Complex64 {
        Complex64::new(self.into(), 0.0)
    }
    #[inline(always)]
    fn truthy(self) -> bool {
        self != 0.0
    }
    fn col(v: Vec<Self>, dtype: DType) -> Col {
        if dtype == DType::F16 {
            Col::F16(v)
        } else {
            Col::F32(v)
        }
    }
}

impl Val for f64 {
    #[inline(always)]
    fn as_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn as_u64(self) -> u64 {
        self as u64
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn as_c(self) -> Complex64 {
        Complex64::new(self, 0.0)
    }
    #[inline(always)]
    fn truthy(self) -> bool {
        self != 0.0
    }
    fn col(v: Vec<Self>, _: DType) -> Col {
        Col::F64(v)
    }
}

impl Val for Complex32 {
    #[inline(always)]
    fn as_i64(self) -> i64 {
        self.re as i64
    }
    #[inline(always)]
    fn as_u64(self) -> u64 {
        self.re as u64
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self.re.into()
    }
    #[inline(always)]
    fn as_c(self) -> Complex64 {
        Complex64::new(self.re.into(), self.im.into())
    }
    #[inline(always)]
    fn truthy(self) -> bool {
        self.re != 0.0 || self.im != 0.0
    }
    fn col(v: Vec<Self>, _: DType) -> Col {
        Col::C64(v)
    }
}

impl Val for Complex64 {
    #[inline(always)]
    fn as_i64(self) -> i64 {
        self.re as i64
    }
    #[inline(always)]
    fn as_u64(self) -> u64 {
        self.re as u64
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self.re
    }
    #[inline(always)]
    fn as_c(self) -> Complex64 {
        self
    }
    #[inline(always)]
    fn truthy(self) -> bool {
        self.re != 0.0 || self.im != 0.0
    }
    fn col(v: Vec<Self>, _: DType) -> Col {
        Col::C128(v)
    }
}

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

impl Item for Complex32 {
    const SIZE: usize = 8;
    type V = Complex32;
    #[inline(always)]
    fn load(b: &[u8]) -> Complex32 {
        let part = |p: &[u8]| f32::from_ne_bytes(p.try_into().expect("4 bytes"));
        Complex32::new(part(&b[..4]), part(&b[4..]))
    }
}

impl Item for Complex64 {
    const SIZE: usize = 16;
    type V = Complex64;
    #[inline(always)]
    fn load(b: &[u8]) -> Complex64 {
        let part = |p: &[u8]| f64::from_ne_bytes(p.try_into().expect("8 bytes"));
        Complex64::new(part(&b[..8]), part(&b[8..]))
    }
}

/// The values of a row of items.
#[inline(always)]
pub(crate) fn items<T: Item>(row: &[u8]) -> impl Iterator<Item = T::V> + '_ {
    row.chunks_exact(T::SIZE).map(T::load)
}

/// Runs `$body` with the type alias `$t` bound to the [`Item`] type of `$dtype`.
macro_rules! with_item {
    ($dtype:expr, $t:ident => $body:expr) => {{
        use num_complex::{Complex32, Complex64};
        use $crate::dtype::DType;
        #[allow(unused_imports)]
        use $crate::structural::reduce::kernels::Half;
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
                type $t = Half;
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
                type $t = Complex32;
                $body
            }
            DType::C128 => {
                type $t = Complex64;
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

impl Num for i64 {
    const ZERO: Self = 0;
    const ONE: Self = 1;
    #[inline(always)]
    fn from_val<V: Val>(v: V) -> Self {
        v.as_i64()
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.wrapping_mul(o)
    }
}

impl Num for u64 {
    const ZERO: Self = 0;
    const ONE: Self = 1;
    #[inline(always)]
    fn from_val<V: Val>(v: V) -> Self {
        v.as_u64()
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.wrapping_mul(o)
    }
}

impl Num for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_val<V: Val>(v: V) -> Self {
        v.as_f64()
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
}

impl Num for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_val<V: Val>(v: V) -> Self {
        v.as_f64() as f32
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
}

impl Num for Complex64 {
    const ZERO: Self = Complex64::new(0.0, 0.0);
    const ONE: Self = Complex64::new(1.0, 0.0);
    #[inline(always)]
    fn from_val<V: Val>(v: V) -> Self {
        v.as_c()
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
}

impl Num for Complex32 {
    const ZERO: Self = Complex32::new(0.0, 0.0);
    const ONE: Self = Complex32::new(1.0, 0.0);
    #[inline(always)]
    fn from_val<V: Val>(v: V) -> Self {
        let c = v.as_c();
        Complex32::new(c.re as f32, c.im as f32)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
}

/// A float16 running value (cumulative sums and products): NumPy's float16 loops compute
/// each step in `f32` and round the result to float16.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HalfAcc(pub(crate) f32);

impl Val for HalfAcc {
    fn as_i64(self) -> i64 {
        self.0 as i64
    }
    fn as_u64(self) -> u64 {
        self.0 as u64
    }
    fn as_f64(self) -> f64 {
        self.0.into()
    }
    fn as_c(self) -> Complex64 {
        self.0.as_c()
    }
    fn truthy(self) -> bool {
        self.0 != 0.0
    }
    fn col(v: Vec<Self>, _: DType) -> Col {
        Col::F16(v.into_iter().map(|h| h.0).collect())
    }
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

/// How values of one input item type combine into an accumulator.
///
/// `accumulate` handles a row whose items belong to consecutive accumulators (the
/// innermost dimension is kept); `fold` a row whose items all belong to one accumulator (the
/// innermost dimension is reduced). `idx` is the position of the row's (first) item in the
/// reduced dimensions, flattened in C order (only `argmax`/`argmin` use it).
pub(crate) trait Kernel: Sync {
    type Acc: Copy + Send + Sync;
    fn accumulate(&self, acc: &mut [Self::Acc], row: &[u8], idx: usize);
    fn fold(&self, acc: &mut Self::Acc, row: &[u8], idx: usize);
    /// `accumulate` of every row of `rows` (a tile: the rows' items for `acc`).
    fn accumulate_rows(&self, acc: &mut [Self::Acc], rows: &Rows<'_>) {
        for (row, idx) in rows.iter() {
            self.accumulate(acc, row, idx);
        }
    }
    /// `fold` of every row of `rows`.
    fn fold_rows(&self, acc: &mut Self::Acc, rows: &Rows<'_>) {
        for (row, idx) in rows.iter() {
            self.fold(acc, row, idx);
        }
    }
    /// A fresh partial accumulator for the same output as `like` (partial results of one
    /// output are computed in parallel and merged in order).
    fn fresh(&self, like: &Self::Acc) -> Self::Acc;
    /// Adds `later` (the partial result of items after those in `acc`) to `acc`.
    fn merge(&self, acc: &mut Self::Acc, later: Self::Acc);
}

/// Rows of a slab that reduce into the same accumulators, in order.
pub(crate) struct Rows<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) itemsize: usize,
    /// Item offset added to every row offset.
    pub(crate) base: usize,
    /// Item offsets of the rows.
    pub(crate) offsets: &'a [usize],
    /// Items per row.
    pub(crate) len: usize,
    /// Reduced position of the first row's first item, and between rows.
    pub(crate) idx: usize,
    pub(crate) step: usize,
}

impl Rows<'_> {
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], usize)> + '_ {
        self.offsets.iter().enumerate().map(move |(r, &off)| {
            let p = (self.base + off) * self.itemsize;
            (
                &self.data[p..p + self.len * self.itemsize],
                self.idx + r * self.step,
            )
        })
    }

    /// Items in all rows.
    pub(crate) fn items(&self) -> usize {
        self.offsets.len() * self.len
    }
}

/// Sums `map` of a row's items over 8 independent lanes (vectorisable for floats, whose
/// additions the compiler may not reorder, and more accurate than one running sum), in
/// blocks so that no lane adds up more than a block's worth before the blocks are summed.
#[inline(always)]
fn lane_sum<T: Item, A: Num>(row: &[u8], map: impl Fn(T::V) -> A) -> A {
    const LANES: usize = 8;
    const BLOCK: usize = 1024;
    let mut total = A::ZERO;
    for block in row.chunks(BLOCK * T::SIZE) {
        let mut lanes = [A::ZERO; LANES];
        let mut chunks = block.chunks_exact(LANES * T::SIZE);
        for c in &mut chunks {
            for (l, x) in lanes.iter_mut().zip(items::<T>(c)) {
                *l = l.add(map(x));
            }
        }
        let mut s = (lanes[0].add(lanes[4]))
            .add(lanes[1].add(lanes[5]))
            .add((lanes[2].add(lanes[6])).add(lanes[3].add(lanes[7])));
        for x in items::<T>(chunks.remainder()) {
            s = s.add(map(x));
        }
        total = total.add(s);
    }
    total
}

/// `sum` (and `mean`'s sum): items of `T` added into `A`.
pub(crate) struct Sum<T, A>(PhantomData<(T, A)>);

impl<T, A> Sum<T, A> {
    pub(crate) fn new() -> Self {
        Sum(PhantomData)
    }
}

impl<T: Item, A: Num> Kernel for Sum<T, A> {
    type Acc = A;
    #[inline]
    fn accumulate(&self, acc: &mut [A], row: &[u8], _idx: usize) {
        for (a, x) in acc.iter_mut().zip(items::<T>(row)) {
            *a = a.add(A::from_val(x));
        }
    }
    #[inline]
    fn fold(&self, acc: &mut A, row: &[u8], _idx: usize) {
        *acc = acc.add(lane_sum::<T, A>(row, A::from_val));
    }
    fn fresh(&self, _like: &A) -> A {
        A::ZERO
    }
    fn merge(&self, acc: &mut A, later: A) {
        *acc = acc.add(later);
    }
}

/// `prod`: items of `T` multiplied into `A`.
pub(crate) struct Prod<T, A>(PhantomData<(T, A)>);

impl<T, A> Prod<T, A> {
    pub(crate) fn new() -> Self {
        Prod(PhantomData)
    }
}

impl<T: Item, A: Num> Kernel for Prod<T, A> {
    type Acc = A;
    #[inline]
    fn accumulate(&self, acc: &mut [A], row: &[u8], _idx: usize) {
        for (a, x) in acc.iter_mut().zip(items::<T>(row)) {
            *a = a.mul(A::from_val(x));
        }
    }
    #[inline]
    fn fold(&self, acc: &mut A, row: &[u8], _idx: usize) {
        let mut lanes = [A::ONE; 4];
        let mut chunks = row.chunks_exact(4 * T::SIZE);
        for c in &mut chunks {
            for (l, x) in lanes.iter_mut().zip(items::<T>(c)) {
                *l = l.mul(A::from_val(x));
            }
        }
        let mut p = lanes[0].mul(lanes[1]).mul(lanes[2].mul(lanes[3]));
        for x in items::<T>(chunks.remainder()) {
            p = p.mul(A::from_val(x));
        }
        *acc = acc.mul(p);
    }
    fn fresh(&self, _like: &A) -> A {
        A::ONE
    }
    fn merge(&self, acc: &mut A, later: A) {
        *acc = acc.mul(later);
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

impl Ordered for bool {
    const LOWEST: Self = false;
    const HIGHEST: Self = true;
    #[inline(always)]
    fn gt(self, o: Self) -> bool {
        self & !o
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        false
    }
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

/// `max` (`MAX`) or `min`: the accumulator is the running extreme, NaN once one was seen.
pub(crate) struct Extreme<T, const MAX: bool>(PhantomData<T>);

impl<T, const MAX: bool> Extreme<T, MAX> {
    pub(crate) fn new() -> Self {
        Extreme(PhantomData)
    }
}

/// Whether `x` replaces the running extreme `acc` (NaN propagates: once `acc` is NaN no
/// comparison is true, and a NaN `x` always replaces).
#[inline(always)]
fn beats<V: Ordered, const MAX: bool>(x: V, acc: V) -> bool {
    (if MAX { x.gt(acc) } else { acc.gt(x) }) || x.is_nan()
}

impl<T: Item, const MAX: bool> Kernel for Extreme<T, MAX>
where
    T::V: Ordered,
{
    type Acc = T::V;
    #[inline]
    fn accumulate(&self, acc: &mut [T::V], row: &[u8], _idx: usize) {
        // Selects rather than conditional stores, so that the loop vectorises.
        for (a, x) in acc.iter_mut().zip(items::<T>(row)) {
            *a = if beats::<_, MAX>(x, *a) && !a.is_nan() {
                x
            } else {
                *a
            };
        }
    }
    #[inline]
    fn fold(&self, acc: &mut T::V, row: &[u8], _idx: usize) {
        let mut m = *acc;
        for x in items::<T>(row) {
            m = if beats::<_, MAX>(x, m) && !m.is_nan() {
                x
            } else {
                m
            };
        }
        *acc = m;
    }
    fn fresh(&self, _like: &T::V) -> T::V {
        if MAX {
            <T::V as Ordered>::LOWEST
        } else {
            <T::V as Ordered>::HIGHEST
        }
    }
    fn merge(&self, acc: &mut T::V, later: T::V) {
        if beats::<_, MAX>(later, *acc) && !acc.is_nan() {
            *acc = later;
        }
    }
}

/// No position yet.
pub(crate) const NO_INDEX: usize = usize::MAX;

/// `argmax` (`MAX`) or `argmin`: the running extreme and its position (the first one, or
/// the first NaN).
pub(crate) struct ArgExtreme<T, const MAX: bool>(PhantomData<T>);

impl<T, const MAX: bool> ArgExtreme<T, MAX> {
    pub(crate) fn new() -> Self {
        ArgExtreme(PhantomData)
    }
}

#[inline(always)]
fn arg_step<V: Ordered, const MAX: bool>(acc: &mut (V, usize), x: V, i: usize) {
    if acc.1 == NO_INDEX || (!acc.0.is_nan() && beats::<V, MAX>(x, acc.0)) {
        *acc = (x, i);
    }
}

impl<T: Item, const MAX: bool> Kernel for ArgExtreme<T, MAX>
where
    T::V: Ordered,
{
    type Acc = (T::V, usize);
    #[inline]
    fn accumulate(&self, acc: &mut [Self::Acc], row: &[u8], idx: usize) {
        for (a, x) in acc.iter_mut().zip(items::<T>(row)) {
            arg_step::<_, MAX>(a, x, idx);
        }
    }
    #[inline]
    fn fold(&self, acc: &mut Self::Acc, row: &[u8], idx: usize) {
        let mut a = *acc;
        for (j, x) in items::<T>(row).enumerate() {
            arg_step::<_, MAX>(&mut a, x, idx + j);
        }
        *acc = a;
    }
    fn fresh(&self, like: &Self::Acc) -> Self::Acc {
        (like.0, NO_INDEX)
    }
    fn merge(&self, acc: &mut Self::Acc, later: Self::Acc) {
        if later.1 != NO_INDEX {
            arg_step::<_, MAX>(acc, later.0, later.1);
        }
    }
}

/// `all` (`ALL`) or `any`.
pub(crate) struct Truth<T, const ALL: bool>(PhantomData<T>);

impl<T, const ALL: bool> Truth<T, ALL> {
    pub(crate) fn new() -> Self {
        Truth(PhantomData)
    }
}

impl<T: Item, const ALL: bool> Kernel for Truth<T, ALL> {
    type Acc = bool;
    #[inline]
    fn accumulate(&self, acc: &mut [bool], row: &[u8], _idx: usize) {
        for (a, x) in acc.iter_mut().zip(items::<T>(row)) {
            if ALL {
                *a &= x.truthy();
            } else {
                *a |= x.truthy();
            }
        }
    }
    #[inline]
    fn fold(&self, acc: &mut bool, row: &[u8], _idx: usize) {
        if ALL {
            *acc = *acc && items::<T>(row).all(Val::truthy);
        } else {
            *acc = *acc || items::<T>(row).any(Val::truthy);
        }
    }
    fn fresh(&self, _like: &bool) -> bool {
        ALL
    }
    fn merge(&self, acc: &mut bool, later: bool) {
        if ALL {
            *acc &= later;
        } else {
            *acc |= later;
        }
    }
}

/// `count_nonzero`.
pub(crate) struct CountNonzero<T>(PhantomData<T>);

impl<T> CountNonzero<T> {
    pub(crate) fn new() -> Self {
        CountNonzero(PhantomData)
    }
}

impl<T: Item> Kernel for CountNonzero<T> {
    type Acc = i64;
    #[inline]
    fn accumulate(&self, acc: &mut [i64], row: &[u8], _idx: usize) {
        for (a, x) in acc.iter_mut().zip(items::<T>(row)) {
            *a += i64::from(x.truthy());
        }
    }
    #[inline]
    fn fold(&self, acc: &mut i64, row: &[u8], _idx: usize) {
        *acc += items::<T>(row).map(|x| i64::from(x.truthy())).sum::<i64>();
    }
    fn fresh(&self, _like: &i64) -> i64 {
        0
    }
    fn merge(&self, acc: &mut i64, later: i64) {
        *acc += later;
    }
}

/// The running mean of `var`/`std`: `f64` for real inputs, complex for complex ones.
pub(crate) trait Mean: Num {
    /// `|x - mean|²`.
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

/// `var`/`std`: per output, the count, mean and sum of squared deviations from the mean.
/// Each tile of rows is reduced exactly in two passes (its sums, then squared deviations
/// from its means, all in cache), and merged into the accumulators with Chan et al.'s
/// formula.
pub(crate) struct Variance<T, M>(PhantomData<(T, M)>);

impl<T, M> Variance<T, M> {
    pub(crate) fn new() -> Self {
        Variance(PhantomData)
    }
}

/// Merges `nb` items of mean `mean_b` and squared deviations `m2_b` into `acc`.
#[inline(always)]
fn chan<M: Mean>(acc: &mut (f64, M, f64), nb: f64, mean_b: M, m2_b: f64) {
    let (na, mean_a, m2_a) = *acc;
    if nb == 0.0 {
        return;
    }
    if na == 0.0 {
        *acc = (nb, mean_b, m2_b);
        return;
    }
    let w = nb / (na + nb);
    let delta = mean_b.add(mean_a.scale(-1.0));
    *acc = (
        na + nb,
        mean_a.add(delta.scale(w)),
        m2_a + m2_b + delta.dev2(M::ZERO) * na * w,
    );
}

impl<T: Item, M: Mean> Kernel for Variance<T, M> {
    type Acc = (f64, M, f64);
    fn accumulate(&self, acc: &mut [Self::Acc], row: &[u8], idx: usize) {
        let rows = Rows {
            data: row,
            itemsize: T::SIZE,
            base: 0,
            offsets: &[0],
            len: acc.len(),
            idx,
            step: 0,
        };
        self.accumulate_rows(acc, &rows);
    }
    fn fold(&self, acc: &mut Self::Acc, row: &[u8], idx: usize) {
        let rows = Rows {
            data: row,
            itemsize: T::SIZE,
            base: 0,
            offsets: &[0],
            len: row.len() / T::SIZE,
            idx,
            step: 0,
        };
        self.fold_rows(acc, &rows);
    }
    fn accumulate_rows(&self, acc: &mut [Self::Acc], rows: &Rows<'_>) {
        const SUB: usize = 256;
        let nb = rows.offsets.len() as f64;
        for (t, accs) in acc.chunks_mut(SUB).enumerate() {
            let (lo, n) = (t * SUB * T::SIZE, accs.len());
            let mut mean = [M::ZERO; SUB];
            let mut m2 = [0f64; SUB];
            for (row, _) in rows.iter() {
                let row = &row[lo..lo + n * T::SIZE];
                for (s, x) in mean.iter_mut().zip(items::<T>(row)) {
                    *s = s.add(M::from_val(x));
                }
            }
            for s in &mut mean[..n] {
                *s = s.scale(1.0 / nb);
            }
            for (row, _) in rows.iter() {
                let row = &row[lo..lo + n * T::SIZE];
                for ((q, m), x) in m2.iter_mut().zip(&mean).zip(items::<T>(row)) {
                    *q += M::from_val(x).dev2(*m);
                }
            }
            for ((a, &m), &q) in accs.iter_mut().zip(&mean).zip(&m2) {
                chan(a, nb, m, q);
            }
        }
    }
    fn fold_rows(&self, acc: &mut Self::Acc, rows: &Rows<'_>) {
        let nb = rows.items() as f64;
        let mut sum = M::ZERO;
        for (row, _) in rows.iter() {
            sum = sum.add(lane_sum::<T, M>(row, M::from_val));
        }
        let mean = sum.scale(1.0 / nb);
        let mut m2 = 0.0;
        for (row, _) in rows.iter() {
            m2 += lane_sum::<T, f64>(row, |x| M::from_val(x).dev2(mean));
        }
        chan(acc, nb, mean, m2);
    }
    fn fresh(&self, _like: &Self::Acc) -> Self::Acc {
        (0.0, M::ZERO, 0.0)
    }
    fn merge(&self, acc: &mut Self::Acc, later: Self::Acc) {
        chan(acc, later.0, later.1, later.2);
    }
}
