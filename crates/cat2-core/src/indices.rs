//! The `indices=` fetch parameter: NumPy fancy indexing, gathered server-side.
//!
//! The 2026 client sends list, array and mask keys as JSON, one entry per
//! dimension: a list of integers (gather), an integer, a slice string
//! (`"0:3"`, one `slice_` item) or `null` (the whole dimension). The answer
//! must be what NumPy gives for `array[key]`, including its less obvious
//! rules: several lists are broadcast together and read pointwise, integers
//! next to lists join them as 0-d index arrays, and the gathered dimension
//! goes first when the advanced entries are separated by a slice (in place
//! when they are adjacent). The reference server answers the separated case
//! with a 500; here it follows NumPy.
//!
//! The point of gathering on the server is that scattered points are cheap to
//! read where the data is, so [`read_indices`] groups the points by chunk-grid
//! cell and reads each cell's box of points, never the box of all of them.
//!
//! Validation messages are the reference server's, word for word, since the
//! upstream test-suite matches on them.

use serde_json::Value;

use crate::dtype::py_repr_str;
use crate::selection::{
    c_strides, gather, item_count, parse_item, read_selection, too_many_indices, Axis, BoxReader,
    DimSel, PointSet, Selection, SliceItem,
};
use crate::{Error, Result};

/// Longest `indices` string read, in characters.
pub(crate) const MAX_INDICES_CHARS: usize = 8 * 1024 * 1024;
/// Most coordinates (summed over the list entries) one request may name.
pub(crate) const MAX_FETCH_COORDS: usize = 1_000_000;

/// A parsed and resolved `indices` key.
#[derive(Debug)]
pub(crate) struct Indices {
    plan: Plan,
}

#[derive(Debug)]
enum Plan {
    /// No list entry: plain NumPy basic indexing.
    Basic(Selection),
    /// Advanced indexing: `points` along the list/int axes, progressions along the rest.
    Fancy {
        axes: Vec<Axis>,
        points: PointSet,
        out_shape: Vec<i64>,
    },
}

/// One JSON entry, checked.
enum Entry {
    Full,
    Int(i64),
    Slice(SliceItem),
    List(Vec<i64>),
}

/// Parses `indices` for an array of `shape`, with NumPy's semantics.
pub(crate) fn parse_indices(s: &str, shape: &[i64]) -> Result<Indices> {
    if s.len() > MAX_INDICES_CHARS {
        let n = s.chars().count();
        if n > MAX_INDICES_CHARS {
            return Err(Error::BadIndices(format!(
                "indices is {n} characters where at most {MAX_INDICES_CHARS} are read"
            )));
        }
    }
    let raw: Value = serde_json::from_str(s)
        .map_err(|e| Error::BadIndices(format!("indices is not JSON: {e}")))?;
    let Value::Array(raw) = raw else {
        return Err(Error::BadIndices(
            "indices must be a JSON list, one entry per dimension".into(),
        ));
    };
    let coords: usize = raw
        .iter()
        .map(|e| match e {
            Value::Array(l) => l.len(),
            _ => 0,
        })
        .sum();
    if coords > MAX_FETCH_COORDS {
        return Err(Error::BadIndices(format!(
            "indices names {coords} coordinates where at most {MAX_FETCH_COORDS} are gathered; ask for them in batches"
        )));
    }
    let mut entries = Vec::with_capacity(raw.len());
    for (axis, entry) in raw.iter().enumerate() {
        let len = shape.get(axis).copied().unwrap_or(0);
        entries.push(match entry {
            Value::Null => Entry::Full,
            Value::String(text) => match parse_item(text) {
                Ok(item @ SliceItem::Range { .. }) => Entry::Slice(item),
                Ok(SliceItem::Index(i)) => Entry::Int(i),
                Ok(SliceItem::Ellipsis) => {
                    return Err(Error::BadIndices(format!(
                    "indices entry {} is not a slice: invalid literal for int() with base 10: {}",
                    py_repr_str(text),
                    py_repr_str(text)
                )))
                }
                Err(reason) => {
                    return Err(Error::BadIndices(format!(
                        "indices entry {} is not a slice: {reason}",
                        py_repr_str(text)
                    )))
                }
            },
            Value::Number(n) if n.is_i64() || n.is_u64() => match n.as_i64() {
                Some(i) => Entry::Int(i),
                None => return Err(out_of_bounds(&n.to_string(), axis, len)),
            },
            Value::Array(list) => {
                let mut v = Vec::with_capacity(list.len());
                for x in list {
                    match x {
                        Value::Number(n) if n.is_i64() => v.push(n.as_i64().unwrap_or(0)),
                        Value::Number(n) if n.is_u64() => {
                            return Err(out_of_bounds(&n.to_string(), axis, len))
                        }
                        _ => {
                            return Err(Error::BadIndices(
                                "an indices list may hold only integers".into(),
                            ))
                        }
                    }
                }
                Entry::List(v)
            }
            other => {
                return Err(Error::BadIndices(format!(
                    "indices entry {} is not an integer, a list of them, a slice or null",
                    py_repr_json(other)
                )))
            }
        });
    }
    resolve(entries, shape)
}

fn out_of_bounds(index: &str, axis: usize, len: i64) -> Error {
    Error::OutOfBounds(format!(
        "index {index} is out of bounds for axis {axis} with size {len}"
    ))
}

fn slice_sel(item: SliceItem, len: i64) -> Result<DimSel> {
    match item {
        SliceItem::Range { start, stop, step } => {
            DimSel::range(start, stop, step, len).map_err(|e| match e {
                Error::BadSlice { reason, .. } => Error::BadIndices(reason),
                other => other,
            })
        }
        _ => Ok(DimSel::full(len)),
    }
}

/// Applies NumPy's indexing rules to checked entries.
fn resolve(entries: Vec<Entry>, shape: &[i64]) -> Result<Indices> {
    if entries.len() > shape.len() {
        return Err(too_many_indices(shape.len(), entries.len()));
    }
    let has_list = entries.iter().any(|e| matches!(e, Entry::List(_)));
    if !has_list {
        let mut dims = Vec::with_capacity(shape.len());
        for (axis, &len) in shape.iter().enumerate() {
            dims.push(match entries.get(axis) {
                None | Some(Entry::Full) => DimSel::full(len),
                Some(Entry::Int(i)) => DimSel::index(*i, axis, len)?,
                Some(Entry::Slice(item)) => slice_sel(*item, len)?,
                Some(Entry::List(_)) => DimSel::full(len), // not reached: no lists here
            });
        }
        return Ok(Indices {
            plan: Plan::Basic(Selection { dims }),
        });
    }

    // Broadcast the lists (integers are 0-d and fit anything).
    let lens: Vec<usize> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::List(l) => Some(l.len()),
            _ => None,
        })
        .collect();
    let mut npts = 1usize;
    for &n in &lens {
        if n != 1 {
            if npts != 1 && npts != n {
                let shapes: Vec<String> = lens.iter().map(|n| format!("({n},)")).collect();
                return Err(Error::BadIndices(format!(
                    "shape mismatch: indexing arrays could not be broadcast together with shapes {}",
                    shapes.join(" ")
                )));
            }
            npts = n;
        }
    }

    let advanced: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Entry::List(_) | Entry::Int(_)))
        .map(|(i, _)| i)
        .collect();
    let (Some(&first), Some(&last)) = (advanced.first(), advanced.last()) else {
        return Err(Error::BadIndices("indices has no list entry".into()));
    };
    let adjacent = last - first + 1 == advanced.len();

    // Bounds and normalisation, axis by axis as NumPy checks them.
    let slots = advanced.len();
    let mut coords = vec![
        0i64;
        npts.checked_mul(slots)
            .ok_or_else(|| Error::BadIndices("indices is too large".into()))?
    ];
    let mut basic: Vec<Option<DimSel>> = vec![None; shape.len()];
    let mut slot = 0;
    for (axis, &len) in shape.iter().enumerate() {
        match entries.get(axis) {
            None | Some(Entry::Full) => basic[axis] = Some(DimSel::full(len)),
            Some(Entry::Slice(item)) => basic[axis] = Some(slice_sel(*item, len)?),
            Some(Entry::Int(i)) => {
                let j = DimSel::index(*i, axis, len)?.start;
                for p in 0..npts {
                    coords[p * slots + slot] = j;
                }
                slot += 1;
            }
            Some(Entry::List(list)) => {
                for p in 0..npts {
                    let i = list
                        .get(if list.len() == 1 { 0 } else { p })
                        .copied()
                        .unwrap_or(0);
                    let j = if i < 0 { i.saturating_add(len) } else { i };
                    if j < 0 || j >= len {
                        return Err(out_of_bounds(&i.to_string(), axis, len));
                    }
                    coords[p * slots + slot] = j;
                }
                slot += 1;
            }
        }
    }

    // The result's dimensions: the gathered one first, or in place of the
    // (adjacent) advanced entries; then the sliced ones in order.
    let mut out_shape = Vec::new();
    let mut out_dim_of_axis = vec![usize::MAX; shape.len()];
    let mut point_dim = 0;
    if !adjacent {
        out_shape.push(npts as i64);
    }
    for axis in 0..shape.len() {
        if adjacent && axis == first {
            point_dim = out_shape.len();
            out_shape.push(npts as i64);
        }
        if let Some(sel) = basic[axis] {
            out_dim_of_axis[axis] = out_shape.len();
            out_shape.push(sel.count);
        }
    }
    let strides = c_strides(&out_shape)?;
    let mut slot = 0;
    let axes = (0..shape.len())
        .map(|axis| match basic[axis] {
            Some(sel) => Axis::Basic {
                sel,
                out_stride: strides[out_dim_of_axis[axis]],
            },
            None => {
                slot += 1;
                Axis::Point { slot: slot - 1 }
            }
        })
        .collect();
    Ok(Indices {
        plan: Plan::Fancy {
            axes,
            points: PointSet {
                slots,
                coords,
                out_stride: strides[point_dim],
            },
            out_shape,
        },
    })
}

impl Indices {
    /// Shape of the gathered result.
    pub(crate) fn out_shape(&self) -> Vec<i64> {
        match &self.plan {
            Plan::Basic(sel) => sel.out_shape(),
            Plan::Fancy { out_shape, .. } => out_shape.clone(),
        }
    }
}

/// Gathers the indexed items, in C order of [`Indices::out_shape`]. Points
/// are grouped by the reader's chunk grid: each touched cell is read once,
/// as the box of the points inside it (split further only when that box is
/// large and mostly empty).
pub(crate) fn read_indices(reader: &mut dyn BoxReader, idx: &Indices) -> Result<Vec<u8>> {
    match &idx.plan {
        Plan::Basic(sel) => read_selection(reader, sel),
        Plan::Fancy {
            axes,
            points,
            out_shape,
        } => gather(reader, axes, Some(points), item_count(out_shape)?),
    }
}

/// Python's `repr()` of what `json.loads` makes of a JSON value.
fn py_repr_json(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !(n.is_i64() || n.is_u64()) => py_float_repr(f),
            _ => n.to_string(),
        },
        Value::String(s) => py_repr_str(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(py_repr_json).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr_json(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Python's `repr()` of a float: shortest round-trip digits, fixed notation
/// for decimal exponents from -4 to 15, scientific (`1e+20`) otherwise.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{f:e}"); // e.g. "-1.5e-5", shortest round-trip
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::tests::{as_u32, MemReader};

    fn get(shape: &[i64], chunks: &[i64], key: &str) -> (Vec<i64>, Vec<u32>, MemReader) {
        let idx = parse_indices(key, shape).unwrap_or_else(|e| panic!("{key}: {e}"));
        let mut r = MemReader::counting(shape, chunks);
        let out = read_indices(&mut r, &idx).unwrap();
        (idx.out_shape(), as_u32(&out), r)
    }

    fn err(key: &str, shape: &[i64]) -> String {
        parse_indices(key, shape).unwrap_err().to_string()
    }

    #[test]
    fn results_match_numpy() {
        // (shape, key, expected shape, expected values), the values printed
        // by NumPy for np.arange(prod(shape)).reshape(shape)[key].
        type Case = (&'static [i64], &'static str, &'static [i64], &'static [u32]);
        let cases: &[Case] = &[
            (&[1000], "[[1,5,9]]", &[3], &[1, 5, 9]),
            (&[1000], "[[-1]]", &[1], &[999]),
            (&[1000], "[[3,1,3]]", &[3], &[3, 1, 3]),
            (&[1000], "[5]", &[], &[5]),
            (&[1000], "[[]]", &[0], &[]),
            (&[1000], "[\"0:20:7\"]", &[3], &[0, 7, 14]),
            (
                &[20, 30],
                "[[1,5],\"0:3\"]",
                &[2, 3],
                &[30, 31, 32, 150, 151, 152],
            ),
            (&[20, 30], "[[1,5],[2,3]]", &[2], &[32, 153]),
            (&[20, 30], "[[1],[2,3,4]]", &[3], &[32, 33, 34]),
            (&[20, 30], "[3,[2,3,4]]", &[3], &[92, 93, 94]),
            (
                &[20, 30],
                "[\"1:3\",[2,3,4]]",
                &[2, 3],
                &[32, 33, 34, 62, 63, 64],
            ),
            (&[20, 30], "[[1,2],1]", &[2], &[31, 61]),
            (&[20, 30], "[[0,19],[29,-30]]", &[2], &[29, 570]),
            (
                &[4, 5, 6],
                "[[1,2],[0,4],\":2\"]",
                &[2, 2],
                &[30, 31, 84, 85],
            ),
            (
                &[4, 5, 6],
                "[\"1:3\",[0,4],[1,5]]",
                &[2, 2],
                &[31, 59, 61, 89],
            ),
            (&[4, 5, 6], "[[1],2,[1,5]]", &[2], &[43, 47]),
            // Separated advanced entries: the gathered dimension goes first.
            (
                &[4, 5, 6],
                "[[0,1],null,1]",
                &[2, 5],
                &[1, 7, 13, 19, 25, 31, 37, 43, 49, 55],
            ),
            (
                &[4, 5, 6],
                "[1,\":\",[1,5]]",
                &[2, 5],
                &[31, 37, 43, 49, 55, 35, 41, 47, 53, 59],
            ),
            (
                &[4, 5, 6],
                "[[0,3],\"::2\",[5]]",
                &[2, 3],
                &[5, 17, 29, 95, 107, 119],
            ),
        ];
        for &(shape, key, out_shape, values) in cases {
            let (s, v, _) = get(shape, shape, key);
            assert_eq!(s, out_shape, "{key}");
            assert_eq!(v, values, "{key}");
        }
        let (s, v, _) = get(&[20, 30], &[5, 7], "[null,[2,3,4]]");
        assert_eq!(s, [20, 3]);
        assert_eq!(&v[..6], [2, 3, 4, 32, 33, 34]);
        let (s, v, _) = get(&[1000], &[100], "[\"::-1\"]");
        assert_eq!(s, [1000]);
        assert_eq!(&v[..2], [999, 998]);
        let (s, v, _) = get(&[1000], &[100], "[]");
        assert_eq!((s, v.len()), (vec![1000], 1000));
        let (s, v, _) = get(&[], &[], "[]");
        assert_eq!((s, v), (vec![], vec![0]));
    }

    #[test]
    fn messages_match_the_reference() {
        let d1: &[i64] = &[1000];
        for (key, shape, detail) in [
            ("[[1,true]]", d1, "an indices list may hold only integers"),
            ("[[1.5]]", d1, "an indices list may hold only integers"),
            ("[[[1,2]]]", d1, "an indices list may hold only integers"),
            ("[{}]", d1, "indices entry {} is not an integer, a list of them, a slice or null"),
            ("[true]", d1, "indices entry True is not an integer, a list of them, a slice or null"),
            ("[1.5]", d1, "indices entry 1.5 is not an integer, a list of them, a slice or null"),
            ("[1e20]", d1, "indices entry 1e+20 is not an integer, a list of them, a slice or null"),
            ("[-0.0]", d1, "indices entry -0.0 is not an integer, a list of them, a slice or null"),
            (
                "[{\"a\":[1,null,\"x\",1.0,1e20]}]",
                d1,
                "indices entry {'a': [1, None, 'x', 1.0, 1e+20]} is not an integer, a list of them, a slice or null",
            ),
            ("{\"a\":1}", d1, "indices must be a JSON list, one entry per dimension"),
            ("5", d1, "indices must be a JSON list, one entry per dimension"),
            ("[[1000]]", d1, "index 1000 is out of bounds for axis 0 with size 1000"),
            ("[[-1001]]", d1, "index -1001 is out of bounds for axis 0 with size 1000"),
            ("[1000]", d1, "index 1000 is out of bounds for axis 0 with size 1000"),
            (
                "[9223372036854775808]",
                d1,
                "index 9223372036854775808 is out of bounds for axis 0 with size 1000",
            ),
            (
                "[\"1:2:3:4\"]",
                d1,
                "indices entry '1:2:3:4' is not a slice: '1:2:3:4' is not a slice: a slice has a start, a stop and a step",
            ),
            (
                "[\"abc\"]",
                d1,
                "indices entry 'abc' is not a slice: invalid literal for int() with base 10: 'abc'",
            ),
            (
                "[\"...\"]",
                d1,
                "indices entry '...' is not a slice: invalid literal for int() with base 10: '...'",
            ),
            ("[\"::0\"]", d1, "slice step cannot be zero"),
            (
                "[[1],[2]]",
                d1,
                "too many indices for array: array is 1-dimensional, but 2 were indexed",
            ),
            (
                "[[0]]",
                &[],
                "too many indices for array: array is 0-dimensional, but 1 were indexed",
            ),
            (
                "[[1,5],[2,3,4]]",
                &[20, 30],
                "shape mismatch: indexing arrays could not be broadcast together with shapes (2,) (3,)",
            ),
            (
                "[[1,3],0,[2,3,4]]",
                &[4, 5, 6],
                "shape mismatch: indexing arrays could not be broadcast together with shapes (2,) (3,)",
            ),
            ("[[],40]", &[20, 30], "index 40 is out of bounds for axis 1 with size 30"),
            ("[[1,50],40]", &[20, 30], "index 50 is out of bounds for axis 0 with size 20"),
            ("[50,[1,50]]", &[20, 30], "index 50 is out of bounds for axis 0 with size 20"),
        ] {
            assert_eq!(err(key, shape), detail, "{key}");
        }
        assert!(err("nope", d1).starts_with("indices is not JSON: "));
        assert!(err("[[1,2]", d1).starts_with("indices is not JSON: "));
        // Broadcast to nothing: the list's values are never used, as in NumPy.
        assert_eq!(get(&[20, 30], &[5, 5], "[[],[100]]").0, [0]);
    }

    #[test]
    fn python_float_repr() {
        for (f, text) in [
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5, "1.5"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (123456789012345.6, "123456789012345.6"),
            (1e15, "1000000000000000.0"),
            (2.5e-300, "2.5e-300"),
        ] {
            assert_eq!(py_float_repr(f), text);
        }
    }

    #[test]
    fn limits() {
        let many = format!("[[{}]]", vec!["0"; MAX_FETCH_COORDS + 1].join(","));
        assert_eq!(
            err(&many, &[10]),
            "indices names 1000001 coordinates where at most 1000000 are gathered; ask for them in batches"
        );
        let long = format!("[{}]", " ".repeat(MAX_INDICES_CHARS));
        assert_eq!(
            err(&long, &[10]),
            "indices is 8388610 characters where at most 8388608 are read"
        );
        assert!(matches!(
            parse_indices("[[1,true]]", &[3]),
            Err(Error::BadIndices(_))
        ));
        assert!(matches!(
            parse_indices("[[7]]", &[3]),
            Err(Error::OutOfBounds(_))
        ));
    }

    #[test]
    fn reads_only_the_cells_with_points() {
        // Two far-apart points in a big array: two tiny reads, not the box between.
        let (s, v, r) = get(&[1000, 1000], &[100, 100], "[[3,998],[4,997]]");
        assert_eq!(s, [2]);
        assert_eq!(v, [3004, 998_997]);
        assert_eq!(r.reads.len(), 2);
        assert_eq!(r.items_read(), 2);
        // Points sharing a cell come in one read of their box.
        let (_, v, r) = get(&[1000], &[100], "[[10,12,11,950,951]]");
        assert_eq!(v, [10, 12, 11, 950, 951]);
        assert_eq!(r.reads, [(vec![10], vec![13]), (vec![950], vec![952])]);
        // Even with one chunk spanning everything, sparse points are read alone.
        let (_, v, r) = get(&[1_000_000], &[1_000_000], "[[5,500000,999999]]");
        assert_eq!(v, [5, 500_000, 999_999]);
        assert_eq!(r.items_read(), 3);
    }

    #[test]
    fn random_keys_match_a_naive_numpy_model() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = |n: i64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as i64
        };
        for _ in 0..300 {
            let ndim = 1 + rnd(3) as usize;
            let shape: Vec<i64> = (0..ndim).map(|_| 1 + rnd(9)).collect();
            let chunks: Vec<i64> = shape.iter().map(|&n| 1 + rnd(n)).collect();
            let npts = rnd(5) as usize;
            let nent = 1 + rnd(ndim as i64) as usize;
            let mut parts = Vec::new();
            let mut kinds = Vec::new();
            for &n in &shape[..nent] {
                let k = rnd(4);
                kinds.push(k);
                parts.push(match k {
                    0 => {
                        let v: Vec<String> =
                            (0..npts).map(|_| (rnd(2 * n) - n).to_string()).collect();
                        format!("[{}]", v.join(","))
                    }
                    1 => (rnd(2 * n) - n).to_string(),
                    2 => format!(
                        "\"{}:{}:{}\"",
                        rnd(n + 1),
                        rnd(n + 1),
                        [1, 2, -1][rnd(3) as usize]
                    ),
                    _ => "null".into(),
                });
            }
            if !kinds.contains(&0) {
                continue;
            }
            let key = format!("[{}]", parts.join(","));
            let (out_shape, got, _) = get(&shape, &chunks, &key);
            // Naive model: enumerate the output, map each position back.
            let entries: Vec<serde_json::Value> = serde_json::from_str(&key).unwrap();
            let adv: Vec<usize> = (0..nent).filter(|&i| kinds[i] <= 1).collect();
            let adjacent = adv.last().unwrap() - adv[0] + 1 == adv.len();
            let norm = |i: i64, n: i64| if i < 0 { i + n } else { i };
            let basic: Vec<(usize, DimSel)> = (0..ndim)
                .filter(|&a| a >= nent || kinds[a] >= 2)
                .map(|a| {
                    let sel = match entries.get(a) {
                        Some(serde_json::Value::String(s)) => {
                            let SliceItem::Range { start, stop, step } = parse_item(s).unwrap()
                            else {
                                panic!()
                            };
                            DimSel::range(start, stop, step, shape[a]).unwrap()
                        }
                        _ => DimSel::full(shape[a]),
                    };
                    (a, sel)
                })
                .collect();
            let total: i64 = out_shape.iter().product();
            let strides = c_strides(&shape).unwrap();
            let mut want = Vec::new();
            for k in 0..total {
                let mut rem = k;
                let mut pos = vec![0i64; out_shape.len()];
                for d in (0..out_shape.len()).rev() {
                    pos[d] = rem % out_shape[d];
                    rem /= out_shape[d];
                }
                let pdim = if adjacent {
                    basic.iter().filter(|(a, _)| *a < adv[0]).count()
                } else {
                    0
                };
                let p = pos[pdim] as usize;
                let mut src = vec![0i64; ndim];
                for &a in &adv {
                    src[a] = match &entries[a] {
                        serde_json::Value::Array(l) => {
                            let x = if l.len() == 1 { &l[0] } else { &l[p] };
                            norm(x.as_i64().unwrap(), shape[a])
                        }
                        x => norm(x.as_i64().unwrap(), shape[a]),
                    };
                }
                let mut d = 0;
                for (a, sel) in &basic {
                    if d == pdim {
                        d += 1;
                    }
                    src[*a] = sel.coord(pos[d]);
                    d += 1;
                }
                want.push(
                    src.iter()
                        .zip(&strides)
                        .map(|(c, s)| *c as usize * s)
                        .sum::<usize>() as u32,
                );
            }
            assert_eq!(got, want, "{key} on {shape:?}");
        }
    }
}
