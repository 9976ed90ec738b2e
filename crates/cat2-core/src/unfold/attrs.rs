//! The two encodings unfolding gives HDF5 attributes, byte for byte as the
//! reference server writes them (so a state dir unfolded by either server
//! reads the same with the other):
//!
//! * `!_attrs_.json`: Python's `json.dumps(attrs, indent=2, sort_keys=True)`:
//!   ASCII only (`\u00e9`), `NaN`/`Infinity` literals, floats in Python's
//!   `repr`, fixed-length strings as text (or `{"__bytes__": <base64>}` when
//!   not UTF-8), empty attributes as `null` (numbers) or `""` (strings),
//!   compound values as lists.
//! * proxy vlmeta: msgpack as python-blosc2 packs h5py's values: variable
//!   length strings as `str`, fixed-length ones (and empty strings) as `bin`,
//!   every float as float64, integers in their smallest form, arrays as
//!   arrays. Values msgpack cannot hold (compound records, complex numbers,
//!   references) are left out, as the reference leaves them out.
//!
//! One deliberate difference: when an attribute has no JSON form (complex,
//! references), the reference turns *every* value of that object into a
//! string; cat2rs writes only that attribute as the error string and keeps
//! the others as they are.

use cat2_hdf5::AttrValue;

/// Python's `repr(float)` (as `json.dumps` writes floats).
pub(crate) fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as Python's repr.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let body = if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        }
    } else {
        let m = if digits.len() == 1 {
            digits
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    };
    format!("{sign}{body}")
}

/// A JSON string literal with `ensure_ascii`.
fn py_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn newline(out: &mut String, level: usize) {
    out.push('\n');
    out.push_str(&"  ".repeat(level));
}

fn json_list(items: &[AttrValue], level: usize, out: &mut String) {
    if items.is_empty() {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, level + 1);
        json_value(item, level + 1, out);
    }
    newline(out, level);
    out.push(']');
}

fn json_value(v: &AttrValue, level: usize, out: &mut String) {
    match v {
        AttrValue::Empty => out.push_str("null"),
        AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttrValue::Int(i) => out.push_str(&i.to_string()),
        AttrValue::UInt(u) => out.push_str(&u.to_string()),
        AttrValue::Float(f) => out.push_str(&py_float(*f)),
        AttrValue::Str(s) => py_str(s, out),
        AttrValue::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => py_str(s, out),
            Err(_) => {
                out.push('{');
                newline(out, level + 1);
                py_str("__bytes__", out);
                out.push_str(": ");
                py_str(&base64(b), out);
                newline(out, level);
                out.push('}');
            }
        },
        AttrValue::List(items) | AttrValue::Record(items) => json_list(items, level, out),
        AttrValue::Unsupported(kind) => py_str(
            &format!("[Error: Object of type {kind} is not JSON serializable]"),
            out,
        ),
    }
}

/// The text of an `!_attrs_.json` file for these attributes.
pub(crate) fn attrs_json(attrs: &[(String, AttrValue)]) -> String {
    let mut sorted: Vec<&(String, AttrValue)> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    if sorted.is_empty() {
        return "{}".into();
    }
    let mut out = String::from("{");
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(&mut out, 1);
        py_str(name, &mut out);
        out.push_str(": ");
        json_value(value, 1, &mut out);
    }
    out.push_str("\n}");
    out
}

/// The msgpack value a proxy's vlmeta holds for an attribute, or `None`
/// when it has none (see the module docs).
pub(crate) fn attr_msgpack(v: &AttrValue) -> Option<rmpv::Value> {
    Some(match v {
        AttrValue::Empty => rmpv::Value::Nil,
        AttrValue::Bool(b) => rmpv::Value::Boolean(*b),
        AttrValue::Int(i) => rmpv::Value::from(*i),
        AttrValue::UInt(u) => rmpv::Value::from(*u),
        AttrValue::Float(f) => rmpv::Value::F64(*f),
        AttrValue::Str(s) => rmpv::Value::from(s.as_str()),
        AttrValue::Bytes(b) => rmpv::Value::Binary(b.clone()),
        AttrValue::List(items) => {
            rmpv::Value::Array(items.iter().map(attr_msgpack).collect::<Option<_>>()?)
        }
        AttrValue::Record(_) | AttrValue::Unsupported(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_python_writes_them() {
        let cases = [
            (2.71, "2.71"),
            (2.0, "2.0"),
            (1e-20, "1e-20"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.0, "123456789012345.0"),
            (f64::from(0.1f32), "0.10000000149011612"),
            (-0.0, "-0.0"),
            (-2.5, "-2.5"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float(f), want, "{f}");
        }
    }

    #[test]
    fn json_like_python_json_dumps() {
        let attrs = vec![
            ("str".to_string(), AttrValue::Str("héllo 😀".into())),
            (
                "arr".to_string(),
                AttrValue::List(vec![AttrValue::Int(1), AttrValue::Int(-2)]),
            ),
            (
                "raw".to_string(),
                AttrValue::Bytes(vec![0xff, 0xfe, 0x80, b'a', b'b', b'c']),
            ),
            ("empty".to_string(), AttrValue::List(vec![])),
            ("nan".to_string(), AttrValue::Float(f64::NAN)),
        ];
        let want = "{\n  \"arr\": [\n    1,\n    -2\n  ],\n  \"empty\": [],\n  \"nan\": NaN,\n  \
                    \"raw\": {\n    \"__bytes__\": \"//6AYWJj\"\n  },\n  \
                    \"str\": \"h\\u00e9llo \\ud83d\\ude00\"\n}";
        assert_eq!(attrs_json(&attrs), want);
        assert_eq!(attrs_json(&[]), "{}");
    }

    #[test]
    fn msgpack_kinds() {
        let enc = |v: &AttrValue| cat2_blosc2::encode_msgpack(&attr_msgpack(v).unwrap());
        assert_eq!(enc(&AttrValue::Bytes(b"fixed".to_vec())), b"\xc4\x05fixed");
        assert_eq!(enc(&AttrValue::Bytes(vec![])), b"\xc4\x00");
        assert_eq!(enc(&AttrValue::Int(-7)), b"\xf9");
        assert_eq!(enc(&AttrValue::UInt(255)), b"\xcc\xff");
        assert_eq!(enc(&AttrValue::Empty), b"\xc0");
        assert_eq!(enc(&AttrValue::Float(0.5)), b"\xcb\x3f\xe0\0\0\0\0\0\0");
        assert!(attr_msgpack(&AttrValue::Record(vec![])).is_none());
        assert!(attr_msgpack(&AttrValue::List(vec![AttrValue::Unsupported("complex")])).is_none());
    }
}
