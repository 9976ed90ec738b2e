//! HDF5 datatypes as NumPy dtype strings, following h5py's mapping.

use hdf5_reader::messages::datatype::StringSize;
use hdf5_reader::{ByteOrder, Datatype};

fn order(bo: &ByteOrder, size: u64) -> char {
    match (size, bo) {
        (1, _) => '|',
        (_, ByteOrder::LittleEndian) => '<',
        (_, ByteOrder::BigEndian) => '>',
    }
}

/// Whether a compound is h5py's complex number: two floats of one size and
/// byte order named `r` and `i`, packed.
pub(crate) fn is_complex(dt: &Datatype) -> bool {
    let Datatype::Compound { size, fields } = dt else {
        return false;
    };
    match fields.as_slice() {
        [r, i] => {
            let (
                Datatype::FloatingPoint {
                    size: a,
                    byte_order: oa,
                },
                Datatype::FloatingPoint {
                    size: b,
                    byte_order: ob,
                },
            ) = (&r.datatype, &i.datatype)
            else {
                return false;
            };
            r.name == "r"
                && i.name == "i"
                && a == b
                && oa == ob
                && r.byte_offset == 0
                && i.byte_offset == u32::from(*a)
                && *size == 2 * u32::from(*a)
        }
        _ => false,
    }
}

/// Whether an enum is h5py's bool (`FALSE` = 0, `TRUE` = 1 over a 1-byte integer).
pub(crate) fn is_bool(base: &Datatype, members: &[hdf5_reader::EnumMember]) -> bool {
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
        Datatype::Compound { fields, .. } if is_complex(dt) => match &fields[0].datatype {
            Datatype::FloatingPoint { size, byte_order } => {
                format!("{}c{}", order(byte_order, 2), 2 * size)
            }
            _ => unreachable!("is_complex checked the field types"),
        },
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
}
