//! `eval_box` over sub-boxes with broadcasting operands, checked against a direct
//! element-by-element computation (no Python needed).

use std::collections::HashMap;

use cat2_expr::{DType, Error, Expr, Operands};

/// A C-order array of `f64` values stored as `dtype`.
struct Array {
    dtype: DType,
    shape: Vec<usize>,
    values: Vec<f64>,
}

impl Array {
    fn new(dtype: DType, shape: &[usize], f: impl Fn(usize) -> f64) -> Array {
        let n = shape.iter().product();
        Array {
            dtype,
            shape: shape.to_vec(),
            values: (0..n).map(f).collect(),
        }
    }

    fn strides(&self) -> Vec<usize> {
        let mut s = vec![1; self.shape.len()];
        for i in (0..self.shape.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.shape[i + 1];
        }
        s
    }

    /// Value at a result index, broadcasting (trailing alignment, size-1 stretch).
    fn at(&self, idx: &[usize]) -> f64 {
        let off = idx.len() - self.shape.len();
        let strides = self.strides();
        let flat: usize = (0..self.shape.len())
            .map(|j| {
                if self.shape[j] == 1 {
                    0
                } else {
                    idx[off + j] * strides[j]
                }
            })
            .sum();
        self.values[flat]
    }

    /// Bytes of the box `start..stop` (own coordinates).
    fn box_bytes(&self, start: &[usize], stop: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        for_each_index(start, stop, |idx| {
            let strides = self.strides();
            let flat: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
            let v = self.values[flat];
            match self.dtype {
                DType::I32 => out.extend_from_slice(&(v as i32).to_ne_bytes()),
                DType::U8 => out.extend_from_slice(&(v as u8).to_ne_bytes()),
                DType::F32 => out.extend_from_slice(&(v as f32).to_ne_bytes()),
                DType::F64 => out.extend_from_slice(&v.to_ne_bytes()),
                other => panic!("test arrays are not {other}"),
            }
        });
        out
    }
}

fn for_each_index(start: &[usize], stop: &[usize], mut f: impl FnMut(&[usize])) {
    if start.iter().zip(stop).any(|(a, b)| a >= b) {
        return;
    }
    let mut idx = start.to_vec();
    loop {
        f(&idx);
        let mut d = idx.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < stop[d] {
                break;
            }
            idx[d] = start[d];
        }
    }
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

fn operands(arrays: &HashMap<&str, Array>) -> Operands {
    arrays
        .iter()
        .map(|(n, a)| (n.to_string(), (a.dtype, a.shape.clone())))
        .collect()
}

fn fixture() -> HashMap<&'static str, Array> {
    let mut arrays = HashMap::new();
    arrays.insert("a", Array::new(DType::I32, &[4, 1, 3], |i| i as f64 - 5.0));
    arrays.insert("b", Array::new(DType::U8, &[5, 1], |i| (i * 3) as f64));
    arrays.insert("c", Array::new(DType::F64, &[], |_| 0.25));
    arrays.insert("d", Array::new(DType::F32, &[4, 5, 3], |i| i as f64 * 0.5));
    arrays
}

#[test]
fn sub_boxes_with_broadcasting_match_elementwise() {
    let arrays = fixture();
    let ops = operands(&arrays);
    let expr = Expr::parse("a * b + c - d").expect("parses");
    let plan = expr.plan(&ops).expect("types");
    assert_eq!(plan.dtype(), DType::F64);
    assert_eq!(plan.shape(), &[4, 5, 3]);
    let boxes: [(&[usize], &[usize]); 6] = [
        (&[0, 0, 0], &[4, 5, 3]),
        (&[1, 2, 0], &[3, 4, 3]),
        (&[3, 4, 2], &[4, 5, 3]),
        (&[0, 1, 1], &[4, 2, 2]),
        (&[2, 0, 0], &[3, 5, 1]),
        (&[1, 1, 1], &[1, 3, 3]),
    ];
    for (start, stop) in boxes {
        let mut calls: Vec<(String, Vec<usize>, Vec<usize>)> = Vec::new();
        let got = plan
            .eval_box(start, stop, &mut |name, s, e| {
                calls.push((name.to_string(), s.to_vec(), e.to_vec()));
                Ok(arrays[name].box_bytes(s, e))
            })
            .expect("evaluates");
        let mut want = Vec::new();
        for_each_index(start, stop, |idx| {
            let v = |n: &str| arrays[n].at(idx);
            want.push(v("a") * v("b") + v("c") - v("d"));
        });
        assert_eq!(f64s(&got), want, "box {start:?}..{stop:?}");
        if want.is_empty() {
            assert!(calls.is_empty(), "an empty box reads nothing");
            continue;
        }
        // Each operand is read once, over the part that broadcasts onto the box.
        let call = |n: &str| calls.iter().find(|c| c.0 == n).cloned().expect("read");
        assert_eq!(calls.len(), 4);
        assert_eq!(call("a").1, vec![start[0], 0, start[2]]);
        assert_eq!(call("a").2, vec![stop[0], 1, stop[2]]);
        assert_eq!(
            (call("b").1, call("b").2),
            (vec![start[1], 0], vec![stop[1], 1])
        );
        assert_eq!((call("c").1, call("c").2), (vec![], vec![]));
        assert_eq!((call("d").1, call("d").2), (start.to_vec(), stop.to_vec()));
    }
}

#[test]
fn large_boxes_are_evaluated_in_parallel_with_the_same_result() {
    // 64 x 100 x 50 = 320 000 items: above the parallel threshold, several runs.
    let mut arrays = HashMap::new();
    arrays.insert(
        "x",
        Array::new(DType::F64, &[64, 100, 50], |i| (i % 1000) as f64 * 0.01),
    );
    arrays.insert("y", Array::new(DType::I32, &[100, 1], |i| i as f64 - 50.0));
    let ops = operands(&arrays);
    let plan = Expr::parse("where(y < 0, x * y, sqrt(x) + y)")
        .expect("parses")
        .plan(&ops)
        .expect("types");
    let mut read = |name: &str, s: &[usize], e: &[usize]| -> Result<Vec<u8>, Error> {
        Ok(arrays[name].box_bytes(s, e))
    };
    let whole = plan
        .eval_box(&[0, 0, 0], &[64, 100, 50], &mut read)
        .expect("whole");
    let mut want = Vec::with_capacity(320_000);
    for_each_index(&[0, 0, 0], &[64, 100, 50], |idx| {
        let (x, y) = (arrays["x"].at(idx), arrays["y"].at(idx));
        want.push(if y < 0.0 { x * y } else { x.sqrt() + y });
    });
    assert_eq!(f64s(&whole), want);
    // A box that is not a run of whole rows.
    let part = plan
        .eval_box(&[10, 3, 7], &[60, 97, 49], &mut read)
        .expect("part");
    let mut want = Vec::new();
    for_each_index(&[10, 3, 7], &[60, 97, 49], |idx| {
        let (x, y) = (arrays["x"].at(idx), arrays["y"].at(idx));
        want.push(if y < 0.0 { x * y } else { x.sqrt() + y });
    });
    assert_eq!(f64s(&part), want);
}

#[test]
fn bad_boxes_and_bad_reads_are_errors() {
    let arrays = fixture();
    let ops = operands(&arrays);
    let plan = Expr::parse("a + d")
        .expect("parses")
        .plan(&ops)
        .expect("types");
    let mut read = |name: &str, s: &[usize], e: &[usize]| -> Result<Vec<u8>, Error> {
        Ok(arrays[name].box_bytes(s, e))
    };
    assert!(matches!(
        plan.eval_box(&[0, 0], &[4, 5], &mut read),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        plan.eval_box(&[0, 0, 0], &[5, 5, 3], &mut read),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        plan.eval_box(&[2, 0, 0], &[1, 5, 3], &mut read),
        Err(Error::Shape(_))
    ));
    let mut short =
        |_: &str, _: &[usize], _: &[usize]| -> Result<Vec<u8>, Error> { Ok(vec![0; 3]) };
    assert!(matches!(
        plan.eval_box(&[0, 0, 0], &[1, 1, 1], &mut short),
        Err(Error::Read(_))
    ));
    let mut failing = |n: &str, _: &[usize], _: &[usize]| -> Result<Vec<u8>, Error> {
        Err(Error::Read(format!("{n} is gone")))
    };
    assert_eq!(
        plan.eval_box(&[0, 0, 0], &[1, 1, 1], &mut failing),
        Err(Error::Read("a is gone".into()))
    );
}

#[test]
fn api_examples() {
    let e = Expr::parse("where(a < 50, a + 50, b) * sin(x)").expect("parses");
    assert_eq!(e.operand_names(), vec!["a", "b", "x"]);
    let mut ops = Operands::new();
    ops.insert("a".into(), (DType::U16, vec![10]));
    ops.insert("b".into(), (DType::U16, vec![10]));
    ops.insert("x".into(), (DType::F32, vec![1]));
    assert_eq!(e.result_type(&ops), Ok((DType::F32, vec![10])));
    ops.remove("b");
    assert_eq!(e.result_type(&ops), Err(Error::UnknownName("b".into())));
    assert_eq!(
        Expr::parse("a +").expect_err("syntax").to_string(),
        "invalid syntax (<unknown>, line 1)"
    );
    assert_eq!(
        Error::UnknownName("b".into()).to_string(),
        "Unknown symbol: b"
    );

    // A constant expression is a 0-d result.
    let one = Expr::parse("(1 + 2) * 3").expect("parses");
    let got = one.eval_box(&Operands::new(), &[], &[], &mut |_, _, _| unreachable!());
    assert_eq!(got, Ok(9i64.to_ne_bytes().to_vec()));

    // `not`, where() with a wrapped Python integer, comparisons out of range.
    let mut ops = Operands::new();
    ops.insert("i".into(), (DType::I8, vec![3]));
    let data: Vec<u8> = [-1i8, 0, 5].iter().map(|v| *v as u8).collect();
    let run = |text: &str| {
        let e = Expr::parse(text).expect("parses");
        let (dt, _) = e.result_type(&ops).expect("types");
        let bytes = e
            .eval_box(&ops, &[0], &[3], &mut |_, _, _| Ok(data.clone()))
            .expect("evaluates");
        (dt, bytes)
    };
    assert_eq!(run("not i"), (DType::Bool, vec![0, 1, 0]));
    assert_eq!(run("where(i > 0, i, 300)"), (DType::I8, vec![44, 44, 5]));
    assert_eq!(run("i < 1000"), (DType::Bool, vec![1, 1, 1]));
    assert_eq!(run("i // 0"), (DType::I8, vec![0, 0, 0]));
    assert_eq!(run("~i"), (DType::I8, vec![0, 255, 250]));
}

#[test]
fn deepest_accepted_expressions_fit_a_small_stack() {
    // The server's blocking and compute threads have 8 MiB stacks (cat2rs main.rs); this
    // holds in unoptimised builds too, whose frames are several times larger.
    let worker = std::thread::Builder::new().stack_size(8 << 20).spawn(|| {
        let mut ops = Operands::new();
        ops.insert("a".into(), (DType::F64, vec![4]));
        let chain = vec!["a"; 190].join(" + ");
        let nested = format!("{}a{}", "negative(".repeat(190), ")".repeat(190));
        let parens = format!("{}a{}", "(1 + ".repeat(95), ")".repeat(95));
        for text in [chain, nested, parens] {
            let parsed = Expr::parse(&text).expect("parses");
            let plan = parsed.plan(&ops).expect("types");
            let data: Vec<u8> = (0..4).flat_map(|i| f64::from(i).to_ne_bytes()).collect();
            let out = plan.eval_box(&[0], &[4], &mut |_, _, _| Ok(data.clone()));
            assert_eq!(out.map(|b| b.len()), Ok(32));
        }
    });
    worker.expect("spawns").join().expect("no stack overflow");
}
