//! NumPy broadcasting, and how a box of the result maps onto each operand.
//!
//! Shapes align at their trailing dimensions; a dimension of size 1 (or a missing leading
//! one) stretches. For a result box, an operand is read over the same ranges in its own
//! dimensions, except stretched ones, which are read as `0..1` and walked with stride 0.

use crate::error::{Error, Result};

/// A shape as Python prints it in NumPy's messages: `(3,)`, `(2,3)`, `()`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(","))
        }
    }
}

/// The broadcast shape of `shapes`.
pub(crate) fn broadcast(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let ndim = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; ndim];
    for s in shapes {
        let offset = ndim - s.len();
        for (j, &d) in s.iter().enumerate() {
            let o = &mut out[offset + j];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                let all: Vec<String> = shapes.iter().map(|s| fmt_shape(s)).collect();
                return Err(Error::Shape(format!(
                    "operands could not be broadcast together with shapes {} ",
                    all.join(" ")
                )));
            }
        }
    }
    Ok(out)
}

/// How an operand of `shape` is read for the result box `start..stop` (result coordinates).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OperandBox {
    /// The box to read, in the operand's coordinates.
    pub(crate) start: Vec<usize>,
    pub(crate) stop: Vec<usize>,
    /// For each result dimension, the stride (in items) of the read box; 0 where stretched.
    pub(crate) strides: Vec<usize>,
    /// Whether item `i` of the result box is item `i` of the read box.
    pub(crate) contiguous: bool,
    /// Items in the read box.
    pub(crate) len: usize,
}

pub(crate) fn operand_box(shape: &[usize], start: &[usize], stop: &[usize]) -> OperandBox {
    let n = start.len();
    let offset = n - shape.len();
    let mut ostart = Vec::with_capacity(shape.len());
    let mut ostop = Vec::with_capacity(shape.len());
    let mut stretched = vec![true; n];
    for (j, &d) in shape.iter().enumerate() {
        let i = offset + j;
        if d == 1 {
            ostart.push(0);
            ostop.push(1);
        } else {
            ostart.push(start[i]);
            ostop.push(stop[i]);
            stretched[i] = false;
        }
    }
    // C-order strides of the read box, spread over the result dimensions.
    let mut strides = vec![0usize; n];
    let mut acc = 1usize;
    for j in (0..shape.len()).rev() {
        let i = offset + j;
        if !stretched[i] {
            strides[i] = acc;
        }
        acc *= ostop[j] - ostart[j];
    }
    let len = acc;
    let mut contiguous = true;
    let mut expect = 1usize;
    for i in (0..n).rev() {
        let extent = stop[i] - start[i];
        if extent > 1 && strides[i] != expect {
            contiguous = false;
        }
        expect *= extent;
    }
    OperandBox {
        start: ostart,
        stop: ostop,
        strides,
        contiguous,
        len,
    }
}

/// Read-box item indices for result-box items `first..first + n` (C order), given the
/// box extents and the operand's strides.
pub(crate) fn gather_indices(
    extents: &[usize],
    strides: &[usize],
    first: usize,
    n: usize,
) -> Vec<usize> {
    let nd = extents.len();
    let mut out = Vec::with_capacity(n);
    if nd == 0 {
        out.resize(n, 0);
        return out;
    }
    // Multi-index of `first`.
    let mut idx = vec![0usize; nd];
    let mut rem = first;
    for i in (0..nd).rev() {
        if extents[i] > 0 {
            idx[i] = rem % extents[i];
            rem /= extents[i];
        }
    }
    let mut base: usize = idx.iter().zip(strides).map(|(i, s)| i * s).sum();
    let last = nd - 1;
    let (ext_last, s_last) = (extents[last], strides[last]);
    while out.len() < n {
        // The rest of the current row along the last dimension.
        let row = (ext_last - idx[last]).min(n - out.len());
        let row_base = base - idx[last] * s_last;
        out.extend((idx[last]..idx[last] + row).map(|k| row_base + k * s_last));
        // Advance to the next row.
        base = row_base;
        idx[last] = 0;
        let mut i = last;
        loop {
            if i == 0 {
                return out;
            }
            i -= 1;
            idx[i] += 1;
            base += strides[i];
            if idx[i] < extents[i] {
                break;
            }
            base -= idx[i] * strides[i];
            idx[i] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[&[4, 1, 3], &[5, 1], &[]]), Ok(vec![4, 5, 3]));
        assert_eq!(broadcast(&[&[0], &[1]]), Ok(vec![0]));
        assert!(broadcast(&[&[3], &[4]]).is_err());
        assert_eq!(fmt_shape(&[2, 3]), "(2,3)");
        assert_eq!(fmt_shape(&[]), "()");
    }

    #[test]
    fn operand_boxes_stretch_size_one_dimensions() {
        // Operand (5, 1) in result (4, 5, 3), box [1..3, 2..4, 0..3].
        let b = operand_box(&[5, 1], &[1, 2, 0], &[3, 4, 3]);
        assert_eq!((b.start.clone(), b.stop.clone()), (vec![2, 0], vec![4, 1]));
        assert_eq!(b.strides, vec![0, 1, 0]);
        assert!(!b.contiguous);
        assert_eq!(b.len, 2);
        // Same shape: contiguous.
        let c = operand_box(&[4, 5, 3], &[1, 2, 0], &[3, 4, 3]);
        assert!(c.contiguous);
        assert_eq!(c.strides, vec![6, 3, 1]);
        // Gathering follows the strides.
        let idx = gather_indices(&[2, 2, 3], &b.strides, 0, 12);
        assert_eq!(idx, vec![0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
        let idx = gather_indices(&[2, 2, 3], &c.strides, 4, 5);
        assert_eq!(idx, vec![4, 5, 6, 7, 8]);
        // A size-1 operand dimension is always read as 0..1, whatever the box.
        let d = operand_box(&[1, 5], &[0, 2, 1], &[3, 3, 4]);
        assert_eq!(
            (d.start, d.stop, d.strides),
            (vec![0, 1], vec![1, 4], vec![0, 0, 1])
        );
        assert!(!d.contiguous);
    }
}
