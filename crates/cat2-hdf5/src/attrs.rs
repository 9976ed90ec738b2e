//! HDF5 attribute values, decoded into the shapes h5py gives them.
//!
//! Why a model of our own rather than JSON: unfolding writes each attribute
//! twice, as JSON (`!_attrs_.json`) and as msgpack (proxy vlmeta), and the two
//! encodings tell apart what JSON cannot (a fixed-length string is bytes to
//! h5py and a variable-length one is `str`; NaN is a float; a compound value
//! is a record that msgpack cannot hold). The writers live with the unfold
//! code; this module only says what each value *is*.

use hdf5_reader::messages::datatype::{StringSize, VarLenKind};
use hdf5_reader::{Attribute, ByteOrder, Datatype};

use crate::dtype::{is_bool, is_complex};

/// One attribute value, as h5py reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A numeric attribute without data (`h5py.Empty` of a number type).
    Empty,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    /// A variable-length string (h5py gives `str`).
    Str(String),
    /// A fixed-length string (h5py gives `numpy.bytes_`); an empty string
    /// attribute (`h5py.Empty` of a string type) is empty bytes too.
    Bytes(Vec<u8>),
    /// An array, as nested lists.
    List(Vec<AttrValue>),
    /// One compound element, field by field (a tuple to h5py).
    Record(Vec<AttrValue>),
    /// A value of a type with no plain form (complex, references, opaque):
    /// the name of its Python type.
    Unsupported(&'static str),
}

impl AttrValue {
    /// Whether the value holds an [`AttrValue::Unsupported`] or a record
    /// anywhere (msgpack cannot hold those).
    pub fn has_unencodable(&self) -> bool {
        match self {
            AttrValue::Unsupported(_) | AttrValue::Record(_) => true,
            AttrValue::List(items) => items.iter().any(AttrValue::has_unencodable),
            _ => false,
        }
    }
}

fn int(bytes: &[u8], signed: bool, bo: &ByteOrder) -> AttrValue {
    let n = bytes.len();
    if n == 0 || n > 8 {
        return AttrValue::Unsupported("int");
    }
    let mut b = [0u8; 8];
    match bo {
        ByteOrder::LittleEndian => b[..n].copy_from_slice(bytes),
        ByteOrder::BigEndian => {
            for (i, &x) in bytes.iter().rev().enumerate() {
                b[i] = x;
            }
        }
    }
    if signed && b[n - 1] & 0x80 != 0 {
        b[n..].fill(0xff);
    }
    let u = u64::from_le_bytes(b);
    if signed {
        AttrValue::Int(u as i64)
    } else {
        AttrValue::UInt(u)
    }
}

fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

fn float(bytes: &[u8], bo: &ByteOrder) -> AttrValue {
    let mut b = bytes.to_vec();
    if matches!(bo, ByteOrder::BigEndian) {
        b.reverse();
    }
    match b.len() {
        2 => AttrValue::Float(half_to_f64(u16::from_le_bytes([b[0], b[1]]))),
        4 => AttrValue::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        8 => AttrValue::Float(f64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ])),
        _ => AttrValue::Unsupported("float"),
    }
}

/// NumPy keeps a fixed-length string without its trailing NULs.
fn fixed_bytes(bytes: &[u8]) -> AttrValue {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    AttrValue::Bytes(bytes[..end].to_vec())
}

/// One element of type `dt`.
fn element(bytes: &[u8], dt: &Datatype) -> AttrValue {
    match dt {
        Datatype::FixedPoint {
            signed, byte_order, ..
        } => int(bytes, *signed, byte_order),
        Datatype::Bitfield { byte_order, .. } => int(bytes, false, byte_order),
        Datatype::FloatingPoint { byte_order, .. } => float(bytes, byte_order),
        Datatype::Enum { base, members } if is_bool(base, members) => {
            AttrValue::Bool(bytes.first().is_some_and(|&b| b != 0))
        }
        Datatype::Enum { base, .. } => element(bytes, base),
        Datatype::String {
            size: StringSize::Fixed(_),
            ..
        } => fixed_bytes(bytes),
        Datatype::Compound { .. } if is_complex(dt) => AttrValue::Unsupported("complex"),
        Datatype::Compound { fields, .. } => AttrValue::Record(
            fields
                .iter()
                .map(|f| {
                    let off = f.byte_offset as usize;
                    let n = hdf5_reader::dtype_element_size(&f.datatype).unwrap_or(0);
                    bytes
                        .get(off..off + n)
                        .map_or(AttrValue::Unsupported("field"), |b| element(b, &f.datatype))
                })
                .collect(),
        ),
        Datatype::Array { base, dims } => {
            let n = hdf5_reader::dtype_element_size(base).unwrap_or(0);
            if n == 0 {
                return AttrValue::Unsupported("array");
            }
            let values: Vec<AttrValue> = bytes.chunks(n).map(|b| element(b, base)).collect();
            nest(&mut values.into_iter(), dims)
        }
        Datatype::Reference { .. } => AttrValue::Unsupported("Reference"),
        Datatype::Opaque { .. } => AttrValue::Unsupported("void"),
        Datatype::String { .. } | Datatype::VarLen { .. } => AttrValue::Unsupported("object"),
    }
}

/// Nests a flat list of values into lists following `shape` (C order).
fn nest(values: &mut std::vec::IntoIter<AttrValue>, shape: &[u64]) -> AttrValue {
    match shape {
        [] => values.next().unwrap_or(AttrValue::Unsupported("missing")),
        [n, rest @ ..] => AttrValue::List((0..*n).map(|_| nest(values, rest)).collect()),
    }
}

fn is_string(dt: &Datatype) -> bool {
    matches!(
        dt,
        Datatype::String { .. }
            | Datatype::VarLen {
                kind: VarLenKind::String,
                ..
            }
    )
}

/// An attribute's value as h5py reads it.
pub fn attribute_value(a: &Attribute) -> AttrValue {
    // hdf5-reader gives a null dataspace the shape `[0]`; a zero-length
    // array looks the same, and is taken for empty too.
    let null = a.shape == [0] && a.raw_data.is_empty();
    if null {
        return if is_string(&a.datatype) {
            AttrValue::Bytes(Vec::new())
        } else {
            AttrValue::Empty
        };
    }
    let values: Vec<AttrValue> = match &a.datatype {
        Datatype::String {
            size: StringSize::Fixed(n),
            ..
        } => {
            let n = *n as usize;
            if n == 0 {
                vec![AttrValue::Bytes(Vec::new()); a.raw_data.len().max(1)]
            } else {
                a.raw_data.chunks(n).map(fixed_bytes).collect()
            }
        }
        dt if is_string(dt) => match a.read_strings() {
            Ok(s) => s.into_iter().map(AttrValue::Str).collect(),
            Err(_) => return AttrValue::Unsupported("str"),
        },
        Datatype::VarLen { .. } => return AttrValue::Unsupported("object"),
        dt => {
            let n = hdf5_reader::dtype_element_size(dt).unwrap_or(0);
            if n == 0 {
                return AttrValue::Unsupported("void");
            }
            a.raw_data.chunks(n).map(|b| element(b, dt)).collect()
        }
    };
    nest(&mut values.into_iter(), &a.shape)
}

/// Every attribute of an object, in h5py's order (by name).
pub fn attribute_values(attrs: &[Attribute]) -> Vec<(String, AttrValue)> {
    let mut out: Vec<(String, AttrValue)> = attrs
        .iter()
        .map(|a| (a.name.clone(), attribute_value(a)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_both_orders() {
        assert_eq!(
            int(&[0xff, 0xfe], true, &ByteOrder::BigEndian),
            AttrValue::Int(-2)
        );
        assert_eq!(
            int(&[0xff, 0xfe], false, &ByteOrder::LittleEndian),
            AttrValue::UInt(0xfeff)
        );
    }

    #[test]
    fn half_floats() {
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert!(half_to_f64(0x7e00).is_nan());
    }

    #[test]
    fn fixed_strings_lose_trailing_nuls_only() {
        assert_eq!(fixed_bytes(b"a\0b\0\0"), AttrValue::Bytes(b"a\0b".to_vec()));
    }
}
