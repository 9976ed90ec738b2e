//! Throughput of reductions over an in-memory operand (the reader copies boxes out of it,
//! standing in for decompression): `cargo run --release -p cat2-expr --example reduce_bench
//! [EXPR...]` (`RAYON_NUM_THREADS=1` for one thread).

use std::time::Instant;

use cat2_expr::{DType, Expr, Operands, Result};

/// The box `start..stop` of a C-order 3-D array of `u16`.
fn read_box(data: &[u8], shape: &[usize], start: &[usize], stop: &[usize]) -> Vec<u8> {
    let (n1, n2) = (shape[1], shape[2]);
    let row = (stop[2] - start[2]) * 2;
    let mut out = Vec::with_capacity((stop[0] - start[0]) * (stop[1] - start[1]) * row);
    for i in start[0]..stop[0] {
        for j in start[1]..stop[1] {
            let off = ((i * n1 + j) * n2 + start[2]) * 2;
            out.extend_from_slice(&data[off..off + row]);
        }
    }
    out
}

fn main() -> Result<()> {
    let shape = vec![100usize, 1000, 1000];
    let n: usize = shape.iter().product();
    let data: Vec<u8> = (0..n)
        .flat_map(|i| ((i.wrapping_mul(2_654_435_761) >> 7) as u16 % 1000).to_ne_bytes())
        .collect();
    let mut ops = Operands::new();
    ops.insert("a".into(), (DType::U16, shape.clone()));
    let mb = (n * 2) as f64 / 1e6;

    // The reader alone (copying every box out of the array).
    let t = Instant::now();
    let mut copied = 0;
    for i in (0..100).step_by(4) {
        copied += read_box(&data, &shape, &[i, 0, 0], &[i + 4, 1000, 1000]).len();
    }
    let read_s = t.elapsed().as_secs_f64();
    println!("reader alone: {:.0} MB/s ({copied} bytes)", mb / read_s);

    let args: Vec<String> = std::env::args().skip(1).collect();
    let default = [
        "sum(a, axis=0)",
        "sum(a, axis=(1, 2))",
        "sum(a)",
        "mean(a, axis=0)",
        "max(a, axis=0)",
        "std(a, axis=0)",
        "argmax(a, axis=0)",
        "sum(a, axis=2)",
        "cumulative_sum(a, axis=0)",
    ]
    .map(String::from);
    let exprs = if args.is_empty() {
        default.to_vec()
    } else {
        args
    };
    for expr in &exprs {
        let expr = expr.as_str();
        let plan = Expr::parse(expr)?.plan(&ops)?;
        let out_shape = plan.shape().to_vec();
        // Cumulative results are as big as the input: time one slice of them.
        let stop: Vec<usize> = if expr.starts_with("cumulative") {
            vec![100, 100, 1000]
        } else {
            out_shape.clone()
        };
        let zeros = vec![0; out_shape.len()];
        let mut best = f64::MAX;
        for _ in 0..3 {
            let plan = Expr::parse(expr)?.plan(&ops)?;
            let t = Instant::now();
            let out = plan.eval_box(&zeros, &stop, &mut |_, a, b| {
                Ok(read_box(&data, &shape, a, b))
            })?;
            best = best.min(t.elapsed().as_secs_f64());
            std::hint::black_box(out);
        }
        let input_mb = if expr.starts_with("cumulative") {
            mb / 10.0
        } else {
            mb
        };
        println!(
            "{expr:28} {:7.1} ms  {:6.0} MB/s of input (reader included)",
            best * 1e3,
            input_mb / best
        );
    }
    Ok(())
}
