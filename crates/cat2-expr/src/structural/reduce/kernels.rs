//! Typed accumulation loops.
//!
//! A [`Kernel`] says how the values of one input item type combine into an accumulator, for
//! a row whose items go to consecutive accumulators (the innermost dimension kept) or to one
//! (the innermost dimension reduced). The loops are generic and monomorphised per (item,
//! accumulator) pair, so there is no per-element dispatch: a `uint16` sum into `u64`
//! accumulators is a plain widening add that the compiler vectorises.

use std::marker::PhantomData;

use super::values::{items, Item, Mean, Num, Ordered, Val};

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
