//! NumPy's numeric dtypes and its promotion rules.
//!
//! Promotion is written as NumPy's `np.promote_types` table (kind first, then size), and
//! "safe casting" is derived from it (`a` casts safely to `b` exactly when promoting the two
//! gives `b`). Ufunc loop selection (see `typing`) is NumPy's linear search over a ufunc's
//! loop list with that safe-cast test, which is *not* always the same as promoting first:
//! `arctan2(int8, uint8)` is `float16` in NumPy, not `float32`.

use std::fmt;

/// A NumPy numeric dtype.
///
/// `F16` is included because NumPy computes `sqrt`, `sin`, ... of `bool`, `int8` and `uint8`
/// arrays in `float16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F16,
    F32,
    F64,
    C64,
    C128,
}

/// Every dtype, in NumPy's type-number order (`?bBhHiIqQefdFD`): the order of ufunc loops.
pub(crate) const LOOP_ORDER: [DType; 14] = [
    DType::Bool,
    DType::I8,
    DType::U8,
    DType::I16,
    DType::U16,
    DType::I32,
    DType::U32,
    DType::I64,
    DType::U64,
    DType::F16,
    DType::F32,
    DType::F64,
    DType::C64,
    DType::C128,
];

/// The kind of a dtype, NumPy's `dtype.kind` with signed and unsigned merged where the
/// promotion rules treat them alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Bool,
    Int,
    Float,
    Complex,
}

impl DType {
    /// Parses a NumPy dtype spelling: a name (`"uint16"`, `"float64"`, `"bool"`), a type
    /// string with or without byte order (`"<u2"`, `"|b1"`, `">i4"`, `"f8"`) or a one-letter
    /// code (`"H"`, `"?"`, `"d"`). Byte order is left to the caller.
    pub fn from_numpy(s: &str) -> Option<DType> {
        use DType::*;
        let s = s.trim();
        let body = s.strip_prefix(['<', '>', '|', '=']).unwrap_or(s);
        let dt = match body {
            "bool" | "bool_" | "b1" | "?" => Bool,
            "int8" | "i1" | "b" | "byte" => I8,
            "int16" | "i2" | "h" | "short" => I16,
            "int32" | "i4" | "i" | "intc" => I32,
            "int64" | "i8" | "l" | "q" | "int" | "int_" | "intp" | "longlong" => I64,
            "uint8" | "u1" | "B" | "ubyte" => U8,
            "uint16" | "u2" | "H" | "ushort" => U16,
            "uint32" | "u4" | "I" | "uintc" => U32,
            "uint64" | "u8" | "L" | "Q" | "uint" | "uintp" | "ulonglong" => U64,
            "float16" | "f2" | "e" | "half" => F16,
            "float32" | "f4" | "f" | "single" => F32,
            "float64" | "f8" | "d" | "float" | "double" | "float_" => F64,
            "complex64" | "c8" | "F" | "csingle" => C64,
            "complex128" | "c16" | "D" | "complex" | "cdouble" | "complex_" => C128,
            _ => return None,
        };
        Some(dt)
    }

    /// `str(np.dtype(...))`, e.g. `"uint16"`.
    pub fn numpy_name(&self) -> &'static str {
        use DType::*;
        match self {
            Bool => "bool",
            I8 => "int8",
            I16 => "int16",
            I32 => "int32",
            I64 => "int64",
            U8 => "uint8",
            U16 => "uint16",
            U32 => "uint32",
            U64 => "uint64",
            F16 => "float16",
            F32 => "float32",
            F64 => "float64",
            C64 => "complex64",
            C128 => "complex128",
        }
    }

    /// `np.dtype(...).str` for native byte order, e.g. `"<u2"`, `"|b1"`.
    pub fn descr(&self) -> &'static str {
        use DType::*;
        let little = cfg!(target_endian = "little");
        match self {
            Bool => "|b1",
            I8 => "|i1",
            U8 => "|u1",
            I16 if little => "<i2",
            I16 => ">i2",
            I32 if little => "<i4",
            I32 => ">i4",
            I64 if little => "<i8",
            I64 => ">i8",
            U16 if little => "<u2",
            U16 => ">u2",
            U32 if little => "<u4",
            U32 => ">u4",
            U64 if little => "<u8",
            U64 => ">u8",
            F16 if little => "<f2",
            F16 => ">f2",
            F32 if little => "<f4",
            F32 => ">f4",
            F64 if little => "<f8",
            F64 => ">f8",
            C64 if little => "<c8",
            C64 => ">c8",
            C128 if little => "<c16",
            C128 => ">c16",
        }
    }

    /// Bytes per item.
    pub fn itemsize(&self) -> usize {
        use DType::*;
        match self {
            Bool | I8 | U8 => 1,
            I16 | U16 | F16 => 2,
            I32 | U32 | F32 => 4,
            I64 | U64 | F64 | C64 => 8,
            C128 => 16,
        }
    }

    /// Whether this is a signed or unsigned integer dtype (not bool).
    pub fn is_integer(&self) -> bool {
        self.kind() == Kind::Int
    }

    /// Whether this is a float dtype (not complex).
    pub fn is_float(&self) -> bool {
        self.kind() == Kind::Float
    }

    /// Whether this is a complex dtype.
    pub fn is_complex(&self) -> bool {
        self.kind() == Kind::Complex
    }

    pub(crate) fn kind(&self) -> Kind {
        use DType::*;
        match self {
            Bool => Kind::Bool,
            I8 | I16 | I32 | I64 | U8 | U16 | U32 | U64 => Kind::Int,
            F16 | F32 | F64 => Kind::Float,
            C64 | C128 => Kind::Complex,
        }
    }

    pub(crate) fn is_unsigned(&self) -> bool {
        matches!(self, DType::U8 | DType::U16 | DType::U32 | DType::U64)
    }

    /// The float dtype of a complex one's parts, or the dtype itself.
    pub(crate) fn real_part(&self) -> DType {
        match self {
            DType::C64 => DType::F32,
            DType::C128 => DType::F64,
            other => *other,
        }
    }

    /// Inclusive value range of an integer dtype.
    pub(crate) fn int_range(&self) -> Option<(i128, i128)> {
        use DType::*;
        Some(match self {
            I8 => (i8::MIN.into(), i8::MAX.into()),
            I16 => (i16::MIN.into(), i16::MAX.into()),
            I32 => (i32::MIN.into(), i32::MAX.into()),
            I64 => (i64::MIN.into(), i64::MAX.into()),
            U8 => (0, u8::MAX.into()),
            U16 => (0, u16::MAX.into()),
            U32 => (0, u32::MAX.into()),
            U64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.numpy_name())
    }
}

/// The smallest float a (bool or) integer dtype casts to safely.
fn min_float(dt: DType) -> DType {
    use DType::*;
    match dt {
        Bool | I8 | U8 => F16,
        I16 | U16 => F32,
        _ => F64,
    }
}

fn complex_of(float: DType) -> DType {
    if float == DType::F64 {
        DType::C128
    } else {
        DType::C64
    }
}

/// `np.promote_types(a, b)`.
pub fn promote(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    match (a.kind(), b.kind()) {
        (Kind::Bool, _) => b,
        (_, Kind::Bool) => a,
        (Kind::Int, Kind::Int) => {
            if a.is_unsigned() == b.is_unsigned() {
                return if a.itemsize() >= b.itemsize() { a } else { b };
            }
            let (s, u) = if a.is_unsigned() { (b, a) } else { (a, b) };
            if s.itemsize() > u.itemsize() {
                return s;
            }
            match u {
                U8 => I16,
                U16 => I32,
                U32 => I64,
                _ => F64,
            }
        }
        (Kind::Int, _) => promote(min_float(a), b),
        (_, Kind::Int) => promote(a, min_float(b)),
        (Kind::Float, Kind::Float) => a.max(b),
        (Kind::Float, Kind::Complex) => complex_of(a.max(b.real_part())),
        (Kind::Complex, Kind::Float) => complex_of(b.max(a.real_part())),
        (Kind::Complex, Kind::Complex) => a.max(b),
    }
}

/// `np.can_cast(from, to, casting="safe")`.
pub fn can_cast(from: DType, to: DType) -> bool {
    promote(from, to) == to
}

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;

    #[test]
    fn parses_numpy_spellings() {
        assert_eq!(DType::from_numpy("<u2"), Some(U16));
        assert_eq!(DType::from_numpy("|b1"), Some(Bool));
        assert_eq!(DType::from_numpy(">i4"), Some(I32));
        assert_eq!(DType::from_numpy("uint16"), Some(U16));
        assert_eq!(DType::from_numpy("float64"), Some(F64));
        assert_eq!(DType::from_numpy("bool"), Some(Bool));
        assert_eq!(DType::from_numpy("<c16"), Some(C128));
        assert_eq!(DType::from_numpy("S3"), None);
        assert_eq!(DType::from_numpy("<M8[s]"), None);
        for dt in LOOP_ORDER {
            assert_eq!(DType::from_numpy(dt.numpy_name()), Some(dt));
            assert_eq!(DType::from_numpy(dt.descr()), Some(dt));
        }
        assert_eq!(U16.descr(), "<u2");
        assert_eq!(C128.itemsize(), 16);
    }

    #[test]
    fn promotion_matches_numpy() {
        assert_eq!(promote(U16, I64), I64);
        assert_eq!(promote(U64, I64), F64);
        assert_eq!(promote(U8, I8), I16);
        assert_eq!(promote(U32, I32), I64);
        assert_eq!(promote(I16, F16), F32);
        assert_eq!(promote(I8, F16), F16);
        assert_eq!(promote(I64, F32), F64);
        assert_eq!(promote(I16, F32), F32);
        assert_eq!(promote(Bool, U8), U8);
        assert_eq!(promote(F64, C64), C128);
        assert_eq!(promote(I16, C64), C64);
        assert_eq!(promote(I32, C64), C128);
        assert!(can_cast(I8, F16));
        assert!(!can_cast(I16, F16));
        assert!(!can_cast(U64, I64));
        assert!(can_cast(I64, F64));
    }
}
