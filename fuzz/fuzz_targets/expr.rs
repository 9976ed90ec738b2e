//! The expression language of lazy arrays (`/api/upload_lazyarr`, the GUI's
//! prompt): `cat2_expr::Expr::parse`, then `plan` against operands `a`, `b`
//! and `c` (dtypes and shapes picked by the first byte), then one small box
//! of the result evaluated. Input: that byte, then the expression.
//!
//! Evaluation is skipped when the literals could ask for a huge computation
//! (`sum(linspace(0, 1, 10**12))`): bounding work is the request budget's
//! job, not the parser's.
#![no_main]

use cat2_expr::{DType, Expr, Operands};
use libfuzzer_sys::fuzz_target;

const DTYPES: [DType; 14] = [
    DType::Bool,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::F16,
    DType::F32,
    DType::F64,
    DType::C64,
    DType::C128,
];

const SHAPES: [&[usize]; 8] = [&[], &[1], &[5], &[3, 4], &[2, 1, 3], &[0], &[4, 0], &[1, 4]];

fn operands(pick: u8) -> Operands {
    let mut ops = Operands::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let dtype = DTYPES[(usize::from(pick) + 5 * i) % DTYPES.len()];
        let shape = SHAPES[(usize::from(pick >> 3) + i) % SHAPES.len()];
        ops.insert(name.into(), (dtype, shape.to_vec()));
    }
    ops
}

/// Whether the numbers written in `text` multiply to little (each number
/// could be a length, a count or a shape).
fn cheap(text: &str) -> bool {
    if text.len() > 300 || text.contains("**") || text.contains("<<") {
        return false;
    }
    // An exponent (`1e12`) is a large number too.
    let b = text.as_bytes();
    if b.windows(2)
        .any(|w| w[0].is_ascii_digit() && matches!(w[1], b'e' | b'E'))
    {
        return false;
    }
    let mut product: f64 = 1.0;
    for run in text.split(|c: char| !c.is_ascii_digit()) {
        if let Ok(n) = run.parse::<f64>() {
            product *= n.max(1.0);
        }
    }
    product <= 1e5
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(expr) = Expr::parse(text) else {
        return;
    };
    let _ = (expr.operand_names(), expr.to_string());
    let ops = operands(pick);
    let Ok(plan) = expr.plan(&ops) else {
        return;
    };
    let _ = (plan.operand_names(), plan.forces_compute());
    let shape = plan.shape().to_vec();
    if !cheap(text) || shape.iter().product::<usize>() > 1 << 12 {
        return;
    }
    // The first two items along every dimension.
    let start = vec![0; shape.len()];
    let stop: Vec<usize> = shape.iter().map(|&n| n.min(2)).collect();
    let out = plan.eval_box(&start, &stop, &mut |name, start, stop| {
        let Some((dtype, _)) = ops.get(name) else {
            return Err(cat2_expr::Error::Read(format!("no operand {name}")));
        };
        let items: usize = start.iter().zip(stop).map(|(a, b)| b - a).product();
        Ok((0..items * dtype.itemsize()).map(|i| i as u8).collect())
    });
    if let Ok(bytes) = out {
        let items: usize = stop.iter().product();
        assert_eq!(bytes.len(), items * plan.dtype().itemsize(), "{text:?}");
    }
});
