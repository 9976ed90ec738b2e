//! Basic indexing: `a[2:5, ::-1, None, ..., 0]` and python-blosc2's `a.slice(key)`, with
//! NumPy's rules (slices clipped as Python's `slice.indices`, negative integers counted from
//! the end, one `...`, missing trailing items meaning `:`). NumPy's `IndexError`s are
//! reported as [`Error::Value`]. Advanced ("fancy") indexing with arrays, lists or booleans
//! is not supported.

use super::view::{Affine, View};
use crate::error::{Error, Result};
use crate::pyscalar::Py;
use crate::structural::{Arg, Args, Built};

pub(super) fn build(mut args: Args) -> Result<Built> {
    let x = args.required(0, "x")?.into_plan("x")?;
    let key = args.required(1, "key")?;
    args.finish()?;
    let mut items = match key {
        Arg::Seq(items) => items,
        one => vec![one],
    };
    // `a[()]` (the parser keeps `a[k]`'s items as written, so the key is `((),)`): the
    // empty tuple. A non-empty inner sequence is ambiguous (`a[(1, 2)]` is `a[1, 2]`, but
    // `a[[1, 2]]` is advanced indexing), so it is left to be refused below.
    if matches!(&items[..], [Arg::Seq(inner)] if inner.is_empty()) {
        items.clear();
    }
    let affine = basic_index(x.shape(), &items)?;
    Ok(View::built(x, affine, false))
}

/// One item of an index, checked.
enum Item {
    Int(i64),
    Slice([Option<i64>; 3]),
    NewAxis,
    Ellipsis,
}

fn item(arg: &Arg) -> Result<Item> {
    Ok(match arg {
        Arg::Scalar(Py::Int(_)) => Item::Int(arg.int("index")?),
        Arg::Slice(parts) => Item::Slice(*parts),
        Arg::None => Item::NewAxis,
        Arg::Ellipsis => Item::Ellipsis,
        Arg::Scalar(Py::Bool(_)) | Arg::Array(_) | Arg::Seq(_) => {
            return Err(Error::Unsupported(
                "advanced indexing (with arrays, lists or booleans) is not supported; \
                 use integers, slices, None and ..."
                    .into(),
            ))
        }
        Arg::Scalar(_) | Arg::Str(_) => {
            return Err(Error::Value(
                "only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and \
                 integer or boolean arrays are valid indices"
                    .into(),
            ))
        }
    })
}

/// Python's `slice(start, stop, step).indices(len)`, as (first index, step, item count).
pub(crate) fn slice_indices(parts: [Option<i64>; 3], len: usize) -> Result<(i64, i64, usize)> {
    let n = len as i64;
    let step = parts[2].unwrap_or(1);
    if step == 0 {
        return Err(Error::Value("slice step cannot be zero".into()));
    }
    let (lower, upper) = if step > 0 { (0, n) } else { (-1, n - 1) };
    let clip = |v: Option<i64>, default: i64| match v {
        None => default,
        Some(v) if v < 0 => (v.saturating_add(n)).max(lower),
        Some(v) => v.min(upper),
    };
    let start = clip(parts[0], if step > 0 { lower } else { upper });
    let stop = clip(parts[1], if step > 0 { upper } else { lower });
    let count = if step > 0 && start < stop {
        (stop - start - 1) / step + 1
    } else if step < 0 && stop < start {
        (start - stop - 1) / (-step) + 1
    } else {
        0
    };
    Ok((start, step, count as usize))
}

/// The view of an array of `shape` that NumPy's basic indexing with `items` gives.
pub(crate) fn basic_index(shape: &[usize], items: &[Arg]) -> Result<Affine> {
    let items = items.iter().map(item).collect::<Result<Vec<_>>>()?;
    let nd = shape.len();
    let used = items
        .iter()
        .filter(|i| matches!(i, Item::Int(_) | Item::Slice(_)))
        .count();
    if used > nd {
        return Err(Error::Value(format!(
            "too many indices for array: array is {nd}-dimensional, but {used} were indexed"
        )));
    }
    if items.iter().filter(|i| matches!(i, Item::Ellipsis)).count() > 1 {
        return Err(Error::Value(
            "an index can only have a single ellipsis ('...')".into(),
        ));
    }
    let full = Item::Slice([None; 3]);
    let mut affine = Affine::new(nd);
    let mut j = 0;
    let axis = |item: &Item, affine: &mut Affine, j: &mut usize| -> Result<()> {
        match item {
            Item::Int(i) => {
                let n = shape[*j] as i64;
                let at = if *i < 0 { i + n } else { *i };
                if at < 0 || at >= n {
                    return Err(Error::Value(format!(
                        "index {i} is out of bounds for axis {j} with size {n}"
                    )));
                }
                affine.base[*j] = at;
                *j += 1;
            }
            Item::Slice(parts) => {
                let (first, step, count) = slice_indices(*parts, shape[*j])?;
                affine.base[*j] = first;
                affine.push(count, &[(*j, step)]);
                *j += 1;
            }
            Item::NewAxis => affine.push(1, &[]),
            Item::Ellipsis => {
                for _ in 0..nd - used {
                    affine.base[*j] = 0;
                    affine.push(shape[*j], &[(*j, 1)]);
                    *j += 1;
                }
            }
        }
        Ok(())
    };
    let had_ellipsis = items.iter().any(|i| matches!(i, Item::Ellipsis));
    for it in &items {
        axis(it, &mut affine, &mut j)?;
    }
    if !had_ellipsis {
        while j < nd {
            axis(&full, &mut affine, &mut j)?;
        }
    }
    Ok(affine)
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::check;
    use super::*;

    fn sl(start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Arg {
        Arg::Slice([start, stop, step])
    }

    fn int(i: i64) -> Arg {
        Arg::Scalar(Py::Int(i.into()))
    }

    #[test]
    fn slices_follow_python() {
        let idx = |p, n| slice_indices(p, n).expect("valid");
        assert_eq!(idx([None, Some(20), None], 10), (0, 1, 10));
        assert_eq!(idx([None, None, Some(-1)], 6), (5, -1, 6));
        assert_eq!(idx([Some(-2), None, None], 6), (4, 1, 2));
        assert_eq!(idx([Some(10), Some(-10), Some(-3)], 6), (5, -3, 2));
        assert_eq!(idx([Some(1), Some(100), Some(4)], 6), (1, 4, 2));
        assert_eq!(idx([Some(4), Some(2), None], 6), (4, 1, 0));
        assert_eq!(idx([None, None, Some(-7)], 6), (5, -7, 1));
        assert_eq!(idx([Some(-100), Some(100), Some(7)], 6), (0, 7, 1));
        assert_eq!(idx([None, None, None], 0), (0, 1, 0));
        assert!(slice_indices([None, None, Some(0)], 6).is_err());
    }

    #[test]
    fn negative_and_large_steps_map_boxes() {
        let shape = [6, 5, 4];
        // a[::-1, 1:5:3, ::-3]
        let a = basic_index(
            &shape,
            &[
                sl(None, None, Some(-1)),
                sl(Some(1), Some(5), Some(3)),
                sl(None, None, Some(-3)),
            ],
        )
        .expect("indexes");
        assert_eq!(a.shape, [6, 2, 2]);
        // Rows 1..3 of the reversed axis are input rows 3..5; columns 4 and 1 cover 1..5.
        assert_eq!(
            a.input_box(&[1, 0, 0], &[3, 2, 2]),
            (vec![3, 1, 0], vec![5, 5, 4])
        );
        check(&a, &shape, &[0, 0, 0], &[6, 2, 2]);
        check(&a, &shape, &[1, 1, 1], &[3, 2, 2]);
        check(&a, &shape, &[5, 0, 0], &[6, 1, 2]);
        // a[4:0:-2, None, ..., 2]: an integer, a new axis and an ellipsis.
        let b = basic_index(
            &shape,
            &[
                sl(Some(4), Some(0), Some(-2)),
                Arg::None,
                Arg::Ellipsis,
                int(-2),
            ],
        )
        .expect("indexes");
        assert_eq!(b.shape, [2, 1, 5]);
        assert_eq!(
            b.input_box(&[1, 0, 1], &[2, 1, 4]),
            (vec![2, 1, 2], vec![3, 4, 3])
        );
        check(&b, &shape, &[0, 0, 0], &[2, 1, 5]);
        // A large step reads the covering range once.
        let c = basic_index(&[1000], &[sl(Some(3), None, Some(250))]).expect("indexes");
        assert_eq!(c.shape, [4]);
        assert_eq!(c.input_box(&[1], &[3]), (vec![253], vec![504]));
        check(&c, &[1000], &[1], &[4]);
        // Trailing axes are full slices.
        let d = basic_index(&shape, &[int(1)]).expect("indexes");
        assert_eq!(d.shape, [5, 4]);
        check(&d, &shape, &[2, 1], &[4, 3]);
    }

    #[test]
    fn index_errors_are_numpys() {
        let err = |items: &[Arg]| basic_index(&[6, 5, 4], items).expect_err("fails");
        assert_eq!(
            err(&[int(7)]).to_string(),
            "index 7 is out of bounds for axis 0 with size 6"
        );
        assert_eq!(
            err(&[int(0), int(-6)]).to_string(),
            "index -6 is out of bounds for axis 1 with size 5"
        );
        assert!(matches!(
            err(&[int(0), int(0), int(0), int(0)]),
            Error::Value(_)
        ));
        assert!(matches!(
            err(&[Arg::Ellipsis, Arg::Ellipsis]),
            Error::Value(_)
        ));
        assert!(matches!(
            err(&[Arg::Seq(vec![int(0), int(1)])]),
            Error::Unsupported(_)
        ));
        assert!(matches!(
            err(&[Arg::Scalar(Py::Bool(true))]),
            Error::Unsupported(_)
        ));
        assert!(matches!(
            err(&[Arg::Scalar(Py::Float(1.0))]),
            Error::Value(_)
        ));
        assert_eq!(
            basic_index(&[], &[]).expect("0-d").shape,
            Vec::<usize>::new()
        );
        assert_eq!(basic_index(&[], &[Arg::None]).expect("0-d").shape, [1]);
    }
}
