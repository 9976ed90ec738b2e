//! HDF5 datatypes as NumPy dtype strings, and attribute values as JSON.

use hdf5_reader::messages::datatype::StringSize;
use hdf5_reader::{Attribute, ByteOrder, Datatype};
use serde_json::Value;

fn order(bo: &ByteOrder, size: u64) -> char {
    match (size, bo) {
        (1, _) => '|',
        (_, ByteOrder::LittleEndian) => '<',
        (_, ByteOrder::BigEndian) => '>',
    }
}

/// Whether an enum is h5py's bool (`FALSE` = 0, `TRUE` = 1 over a 1-byte integer).
fn is_bool(base: &Datatype, members: &[hdf5_reader::EnumMember]) -> bool {
    matches!(base, Datatype::FixedPoint { size: 1, .. })
        && members.len() == 2
        && members
            .iter()
            .all(|m| (m.name == "FALSE" && m.value == [0]) || (m.name == "TRUE" && m.value == [1]))
}

/// The NumPy dtype string of a datatype: `<i4`, `>u2`, `<f8`, `|b1`, `|S10`, `|V16`,
/// `O` for variable-length data, a list of `(name, dtype)` tuples for a packed compound
/// or NumPy's dict form (`names`, `formats`, `offsets`, `itemsize`) for a padded one.
pub fn numpy_dtype(dt: &Datatype) -> String {
    match dt {
        Datatype::FixedPoint {
            size,
            signed,
            byte_order,
        } => format!(
            "{}{}{size}",
            order(byte_order, u64::from(*size)),
            if *signed { 'i' } else { 'u' }
        ),
        Datatype::FloatingPoint { size, byte_order } => {
            format!("{}f{size}", order(byte_order, u64::from(*size)))
        }
        Datatype::Bitfield { size, byte_order } => {
            format!("{}u{size}", order(byte_order, u64::from(*size)))
        }
        Datatype::String {
            size: StringSize::Fixed(n),
            ..
        } => format!("|S{n}"),
        Datatype::String { .. } | Datatype::VarLen { .. } => "|O".to_string(),
        Datatype::Enum { base, members } if is_bool(base, members) => "|b1".to_string(),
        Datatype::Enum { base, .. } => numpy_dtype(base),
        Datatype::Array { base, dims } => {
            let dims: Vec<String> = dims.iter().map(u64::to_string).collect();
            let comma = if dims.len() == 1 { "," } else { "" };
            format!("('{}', ({}{comma}))", numpy_dtype(base), dims.join(", "))
        }
        Datatype::Compound { size, fields } => {
            let mut end = 0u64;
            let mut packed = true;
            for f in fields {
                packed &= u64::from(f.byte_offset) == end;
                end = u64::from(f.byte_offset)
                    + hdf5_reader::dtype_element_size(&f.datatype).unwrap_or(0) as u64;
            }
            packed &= end == u64::from(*size);
            let fmt = |f: &hdf5_reader::CompoundField| match &f.datatype {
                Datatype::Array { base, dims } => {
                    let dims: Vec<String> = dims.iter().map(u64::to_string).collect();
                    let comma = if dims.len() == 1 { "," } else { "" };
                    format!("'{}', ({}{comma})", numpy_dtype(base), dims.join(", "))
                }
                other => format!("'{}'", numpy_dtype(other)),
            };
            if packed {
                let items: Vec<String> = fields
                    .iter()
                    .map(|f| format!("('{}', {})", f.name, fmt(f)))
                    .collect();
                format!("[{}]", items.join(", "))
            } else {
                let names: Vec<String> = fields.iter().map(|f| format!("'{}'", f.name)).collect();
                let formats: Vec<String> = fields
                    .iter()
                    .map(|f| match &f.datatype {
                        Datatype::Array { .. } => format!("({})", fmt(f)),
                        _ => fmt(f),
                    })
                    .collect();
                let offsets: Vec<String> =
                    fields.iter().map(|f| f.byte_offset.to_string()).collect();
                format!(
                    "{{'names': [{}], 'formats': [{}], 'offsets': [{}], 'itemsize': {size}}}",
                    names.join(", "),
                    formats.join(", "),
                    offsets.join(", ")
                )
            }
        }
        Datatype::Opaque { size, .. } => format!("|V{size}"),
        Datatype::Reference { size, .. } => format!("|V{size}"),
    }
}

fn int(bytes: &[u8], signed: bool, bo: &ByteOrder) -> Option<Value> {
    let mut b = [0u8; 8];
    let n = bytes.len();
    if n == 0 || n > 8 {
        return None;
    }
    match bo {
        ByteOrder::LittleEndian => b[..n].copy_from_slice(bytes),
        ByteOrder::BigEndian => {
            for (i, &x) in bytes.iter().rev().enumerate() {
                b[i] = x;
            }
        }
    }
    let neg = signed && b[n - 1] & 0x80 != 0;
    if neg {
        b[n..].fill(0xff);
    }
    let u = u64::from_le_bytes(b);
    Some(if signed {
        Value::from(u as i64)
    } else {
        Value::from(u)
    })
}

fn float(bytes: &[u8], bo: &ByteOrder) -> Option<Value> {
    let mut b = bytes.to_vec();
    if matches!(bo, ByteOrder::BigEndian) {
        b.reverse();
    }
    let v = match b.len() {
        4 => f64::from(f32::from_le_bytes(b.try_into().ok()?)),
        8 => f64::from_le_bytes(b.try_into().ok()?),
        _ => return None,
    };
    // JSON has no NaN or infinities; `null` marks them.
    Some(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
}

fn fixed_string(bytes: &[u8]) -> Value {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Value::String(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// One element as JSON, or `Null` when its type has no JSON form here.
fn element(bytes: &[u8], dt: &Datatype) -> Value {
    match dt {
        Datatype::FixedPoint {
            signed, byte_order, ..
        } => int(bytes, *signed, byte_order).unwrap_or(Value::Null),
        Datatype::Bitfield { byte_order, .. } => {
            int(bytes, false, byte_order).unwrap_or(Value::Null)
        }
        Datatype::FloatingPoint { byte_order, .. } => {
            float(bytes, byte_order).unwrap_or(Value::Null)
        }
        Datatype::Enum { base, members } if is_bool(base, members) => {
            Value::Bool(bytes.first().is_some_and(|&b| b != 0))
        }
        Datatype::Enum { base, .. } => element(bytes, base),
        Datatype::String {
            size: StringSize::Fixed(_),
            ..
        } => fixed_string(bytes),
        Datatype::Compound { fields, .. } => Value::Object(
            fields
                .iter()
                .map(|f| {
                    let off = f.byte_offset as usize;
                    let n = hdf5_reader::dtype_element_size(&f.datatype).unwrap_or(0);
                    let v = bytes
                        .get(off..off + n)
                        .map_or(Value::Null, |b| element(b, &f.datatype));
                    (f.name.clone(), v)
                })
                .collect(),
        ),
        Datatype::Array { base, .. } => {
            let n = hdf5_reader::dtype_element_size(base).unwrap_or(0);
            if n == 0 {
                return Value::Null;
            }
            Value::Array(bytes.chunks(n).map(|b| element(b, base)).collect())
        }
        _ => Value::Null,
    }
}

/// Nests a flat list of values into lists following `shape` (C order).
fn nest(values: &mut std::vec::IntoIter<Value>, shape: &[u64]) -> Value {
    match shape {
        [] => values.next().unwrap_or(Value::Null),
        [n, rest @ ..] => Value::Array((0..*n).map(|_| nest(values, rest)).collect()),
    }
}

/// An attribute's value as JSON: scalars as values, arrays as nested lists, strings as
/// strings (invalid UTF-8 replaced), compounds as objects; `null` for what has no JSON form.
pub fn attribute_json(a: &Attribute) -> Value {
    let values: Vec<Value> = match &a.datatype {
        Datatype::String { .. } | Datatype::VarLen { .. } => match a.read_strings() {
            Ok(s) => s.into_iter().map(Value::String).collect(),
            Err(_) => return Value::Null,
        },
        dt => {
            let n = hdf5_reader::dtype_element_size(dt).unwrap_or(0);
            if n == 0 {
                return Value::Null;
            }
            a.raw_data.chunks(n).map(|b| element(b, dt)).collect()
        }
    };
    nest(&mut values.into_iter(), &a.shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_dtypes() {
        let be = ByteOrder::BigEndian;
        let le = ByteOrder::LittleEndian;
        let int = |size, signed, byte_order| Datatype::FixedPoint {
            size,
            signed,
            byte_order,
        };
        assert_eq!(numpy_dtype(&int(2, false, le)), "<u2");
        assert_eq!(numpy_dtype(&int(2, true, be)), ">i2");
        assert_eq!(numpy_dtype(&int(1, true, be)), "|i1");
        assert_eq!(
            numpy_dtype(&Datatype::FloatingPoint {
                size: 8,
                byte_order: le
            }),
            "<f8"
        );
    }

    #[test]
    fn integers_as_json() {
        assert_eq!(
            int(&[0xff, 0xfe], true, &ByteOrder::BigEndian),
            Some(Value::from(-2))
        );
        assert_eq!(
            int(&[0xff, 0xfe], false, &ByteOrder::LittleEndian),
            Some(Value::from(0xfeffu64))
        );
    }
}
