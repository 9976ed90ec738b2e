//! What the client commands print: arrays readably (NumPy's elisions), JSON
//! values, metadata, listings as trees, and progress bars on a terminal.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use cat2_client::Array;
use serde_json::{json, Value};

/// A progress line on stderr, when stderr is a terminal.
#[derive(Clone)]
pub struct Progress {
    what: &'static str,
    tty: bool,
}

impl Progress {
    pub fn new(what: &'static str) -> Progress {
        Progress {
            what,
            tty: std::io::stderr().is_terminal(),
        }
    }
    pub fn show(&self, done: u64, total: Option<u64>) {
        if !self.tty {
            return;
        }
        let mut err = std::io::stderr();
        let _ = match total.filter(|&t| t > 0) {
            Some(t) => {
                let pct = done * 100 / t;
                let bar: String = (0..30)
                    .map(|i| if i * 100 < pct * 30 { '#' } else { '.' })
                    .collect();
                write!(err, "\r{} [{bar}] {pct:>3}% {done}/{t} bytes", self.what)
            }
            None => write!(err, "\r{} {done} bytes", self.what),
        };
    }
    pub fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

pub fn print_info(v: &Value, indent: &str) {
    if let Value::Object(m) = v {
        for (k, val) in m {
            match val {
                Value::Object(_) => {
                    println!("{indent}{k}:");
                    print_info(val, &format!("{indent}  "));
                }
                Value::String(s) => println!("{indent}{k}: {s}"),
                other => println!("{indent}{k}: {other}"),
            }
        }
    }
}

/// The listing as an indented tree.
pub fn tree(root: &str, names: &[String]) -> String {
    let mut out = format!("{root}\n");
    let mut last: Vec<&str> = Vec::new();
    for name in names {
        let parts: Vec<&str> = name.split('/').collect();
        let common = last.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        for (depth, part) in parts.iter().enumerate().skip(common.min(parts.len() - 1)) {
            out.push_str(&"    ".repeat(depth + 1));
            out.push_str(part);
            if depth + 1 < parts.len() {
                out.push('/');
            }
            out.push('\n');
        }
        last = parts;
    }
    out
}

fn values_of(arr: &Array) -> Result<cat2_core::view::Values> {
    Ok(cat2_core::view::Values {
        shape: arr.shape.clone(),
        dtype: cat2_core::dtype::DType::parse(&arr.dtype)?,
        data: arr.data.clone(),
    })
}

pub fn flat_values(arr: &Array) -> Result<Vec<Value>> {
    let v = values_of(arr)?;
    Ok((0..v.len())
        .map(|i| match v.number(i) {
            Some(x) if x.fract() == 0.0 && x.abs() < 9e15 && !arr.dtype.contains('f') => {
                json!(x as i64)
            }
            Some(x) if x.is_finite() => json!(x),
            _ => json!(v.format(i)),
        })
        .collect())
}

/// An array printed readably: its shape and dtype, then its values by rows
/// (the middle left out of big ones, as NumPy does).
pub fn format_array(arr: &Array) -> Result<String> {
    const EDGE: usize = 3;
    let v = values_of(arr)?;
    let mut out = format!("shape {:?}, dtype {}\n", arr.shape, v.dtype.numpy_str());
    let n = v.len();
    let row_len = arr.shape.last().map_or(1, |&l| l.max(1) as usize);
    let rows = if arr.shape.is_empty() {
        1
    } else {
        n / row_len.max(1)
    };
    let cell = |i: usize| v.format(i);
    let fmt_row = |r: usize| -> String {
        let idx: Vec<usize> = if row_len > 2 * EDGE + 1 {
            (0..EDGE).chain(row_len - EDGE..row_len).collect()
        } else {
            (0..row_len).collect()
        };
        let mut cells: Vec<String> = idx.iter().map(|&c| cell(r * row_len + c)).collect();
        if row_len > 2 * EDGE + 1 {
            cells.insert(EDGE, "...".into());
        }
        format!("[{}]", cells.join(", "))
    };
    if n == 0 {
        out.push_str("[]\n");
        return Ok(out);
    }
    if arr.shape.is_empty() {
        out.push_str(&cell(0));
        out.push('\n');
        return Ok(out);
    }
    let shown: Vec<usize> = if rows > 2 * EDGE + 1 {
        (0..EDGE).chain(rows - EDGE..rows).collect()
    } else {
        (0..rows).collect()
    };
    for (k, r) in shown.iter().enumerate() {
        if rows > 2 * EDGE + 1 && k == EDGE {
            out.push_str(" ...\n");
        }
        out.push_str(&fmt_row(*r));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_indent_by_directory() {
        let names = ["a/b/x.b2nd", "a/b/y.b2nd", "a/z.txt", "top.h5"].map(String::from);
        assert_eq!(
            tree("@shared", &names),
            "@shared\n    a/\n        b/\n            x.b2nd\n            y.b2nd\n        z.txt\n    top.h5\n"
        );
    }
}
