//! NumPy dtypes, read from and written back to the strings that carry them.
//!
//! Caterva2 never sends a dtype as anything but text: the b2nd metalayer of a
//! stored array holds NumPy's `dtype.str` (`'<i8'`) or, for records and
//! sub-arrays, Python's `str(dtype)` (`"[('a', '<i4'), ('c', 'S10')]"`), while
//! `/api/info` answers `str(dtype)` (`"int64"`). The server needs to understand
//! those strings (item sizes, byte order and field offsets drive slicing,
//! field extraction and filters) and to spell them back *exactly* as NumPy
//! does, because the official client feeds them to `np.dtype` and compares.
//!
//! So [`DType::parse`] accepts every form NumPy would (type names, type codes,
//! `dtype.str`, list/tuple/dict constructions), and [`DType::numpy_str`] and
//! [`DType::descr_str`] reproduce NumPy's and python-blosc2's spellings; the
//! expected strings in the tests were produced by NumPy 2.4 itself.
//!
//! Object dtypes (`'O'`) are refused: they hold pointers, not data.

use std::fmt::Write as _;

use crate::{Error, Result};

/// What kind of values a dtype holds (NumPy's `dtype.kind`, with the two
/// kinds of `'V'` that carry structure split out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `?`, one byte.
    Bool,
    /// Signed integers, `i1` … `i8`.
    Int,
    /// Unsigned integers, `u1` … `u8`.
    UInt,
    /// IEEE floats `f2`, `f4`, `f8` (and the x86 `f16` long double).
    Float,
    /// Pairs of floats, `c8`, `c16` (and `c32`).
    Complex,
    /// Fixed-length byte strings, `S<n>`, NUL padded.
    Bytes,
    /// Fixed-length UCS-4 strings, `U<n>` (4 bytes a character).
    Unicode,
    /// Opaque bytes, `V<n>`.
    Void,
    /// `datetime64[unit]`, an int64 count.
    DateTime,
    /// `timedelta64[unit]`, an int64 count.
    TimeDelta,
    /// A record of named fields.
    Struct,
    /// A fixed-shape block of a base dtype.
    SubArray,
}

/// How the bytes of an item are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Order {
    Little,
    Big,
    /// Not applicable: single bytes, byte strings, void.
    NotApplicable,
}

/// One named field of a record dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub dtype: DType,
    /// Byte offset of the field inside the record.
    pub offset: usize,
}

/// A NumPy dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct DType {
    repr: Repr,
}

#[derive(Clone, Debug, PartialEq)]
enum Repr {
    Scalar {
        kind: Kind,
        order: Order,
        size: usize,
        /// `datetime64`/`timedelta64` unit such as `ns` or `10s`; empty = generic.
        unit: String,
    },
    Struct {
        fields: Vec<Field>,
        itemsize: usize,
    },
    SubArray {
        base: Box<DType>,
        shape: Vec<usize>,
    },
}

/// How deeply nested a dtype literal may be before it is refused (keeps a
/// hostile string from exhausting the stack).
const MAX_DEPTH: usize = 32;

fn bad(s: &str, why: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{} is not a dtype: {why}", py_repr_str(s)))
}

impl DType {
    /// Parses any of the spellings NumPy accepts for the dtypes Blosc2 can
    /// store: names (`"int64"`, `"bool"`), codes (`"i4"`, `"?"`, `"S10"`),
    /// `dtype.str` (`"<i8"`, `"|S6"`, `"<M8[s]"`) and the Python literals of
    /// records and sub-arrays (`"[('a', '<i4'), ('b', 'S3', (2,))]"`,
    /// `"('<f8', (4,))"`, `"{'names': […], 'formats': […], …}"`).
    pub fn parse(s: &str) -> Result<DType> {
        let t = s.trim();
        if t.starts_with('[') || t.starts_with('(') || t.starts_with('{') {
            let lit = LitParser::new(t).parse_all().map_err(|why| bad(s, why))?;
            from_literal(&lit, 0).map_err(|why| bad(s, why))
        } else {
            parse_simple(t).map_err(|why| bad(s, why))
        }
    }

    fn scalar(kind: Kind, order: Order, size: usize, unit: String) -> DType {
        DType {
            repr: Repr::Scalar {
                kind,
                order,
                size,
                unit,
            },
        }
    }

    /// Bytes per item.
    pub fn itemsize(&self) -> usize {
        match &self.repr {
            Repr::Scalar { size, .. } => *size,
            Repr::Struct { itemsize, .. } => *itemsize,
            Repr::SubArray { base, shape } => base.itemsize() * shape.iter().product::<usize>(),
        }
    }

    /// What the items hold.
    pub fn kind(&self) -> Kind {
        match &self.repr {
            Repr::Scalar { kind, .. } => *kind,
            Repr::Struct { .. } => Kind::Struct,
            Repr::SubArray { .. } => Kind::SubArray,
        }
    }

    /// False when any number inside is stored big-endian (`'>i2'`), which a
    /// reader has to swap; true for little-endian and order-less types.
    pub fn is_little_endian_or_na(&self) -> bool {
        match &self.repr {
            Repr::Scalar { order, .. } => *order != Order::Big,
            Repr::Struct { fields, .. } => fields.iter().all(|f| f.dtype.is_little_endian_or_na()),
            Repr::SubArray { base, .. } => base.is_little_endian_or_na(),
        }
    }

    /// The datetime/timedelta unit (`"ns"`, `"10s"`), `None` for other kinds
    /// and for the generic `datetime64`.
    pub fn time_unit(&self) -> Option<&str> {
        match &self.repr {
            Repr::Scalar { unit, .. } if !unit.is_empty() => Some(unit),
            _ => None,
        }
    }

    /// The record's fields, in declaration order.
    pub fn fields(&self) -> Option<&[Field]> {
        match &self.repr {
            Repr::Struct { fields, .. } => Some(fields),
            _ => None,
        }
    }

    /// One field of a record, by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields()?.iter().find(|f| f.name == name)
    }

    /// Base dtype and shape of a sub-array dtype.
    pub fn subarray(&self) -> Option<(&DType, &[usize])> {
        match &self.repr {
            Repr::SubArray { base, shape } => Some((base, shape)),
            _ => None,
        }
    }

    /// Exactly Python's `str(np.dtype(x))`: what `/api/info` reports.
    pub fn numpy_str(&self) -> String {
        match &self.repr {
            Repr::Scalar {
                kind,
                order,
                size,
                unit,
            } => {
                if matches!(kind, Kind::Bytes | Kind::Unicode | Kind::Void) || *order == Order::Big
                {
                    self.type_str()
                } else {
                    numpy_name(*kind, *size, unit)
                }
            }
            Repr::Struct { .. } => self.struct_str(),
            Repr::SubArray { .. } => self.construction_repr(),
        }
    }

    /// What a b2nd metalayer holds for this dtype, as python-blosc2 writes it:
    /// `dtype.str` for plain types (`'<i8'`, `'|S6'`), `str(dtype)` for records
    /// and sub-arrays.
    pub fn descr_str(&self) -> String {
        match &self.repr {
            Repr::Scalar { .. } => self.type_str(),
            _ => self.numpy_str(),
        }
    }

    /// NumPy's `dtype.str` of a scalar: order character, kind code, size.
    fn type_str(&self) -> String {
        match &self.repr {
            Repr::Scalar {
                kind,
                order,
                size,
                unit,
            } => {
                let o = match order {
                    Order::Little => '<',
                    Order::Big => '>',
                    Order::NotApplicable => '|',
                };
                let n = if *kind == Kind::Unicode {
                    size / 4
                } else {
                    *size
                };
                let mut s = format!("{o}{}{n}", kind_code(*kind));
                push_unit(&mut s, *kind, unit);
                s
            }
            _ => format!("|V{}", self.itemsize()),
        }
    }

    /// NumPy's short "construction repr": how a field or sub-array base is
    /// written inside a record or sub-array spelling (`'<i4'`, `'S10'`, `'?'`,
    /// a nested list, or `('<f8', (4,))`).
    fn construction_repr(&self) -> String {
        match &self.repr {
            Repr::Scalar {
                kind,
                order,
                size,
                unit,
            } => {
                let o = match order {
                    Order::Little => "<",
                    Order::Big => ">",
                    Order::NotApplicable => "",
                };
                let mut s = String::from("'");
                match kind {
                    Kind::Bool => s.push('?'),
                    Kind::Bytes | Kind::Void => {
                        s.push(kind_code(*kind));
                        if *size > 0 {
                            let _ = write!(s, "{size}");
                        }
                    }
                    Kind::Unicode => {
                        let _ = write!(s, "{o}U");
                        if *size > 0 {
                            let _ = write!(s, "{}", size / 4);
                        }
                    }
                    Kind::DateTime | Kind::TimeDelta => {
                        let _ = write!(s, "{o}{}8", kind_code(*kind));
                        push_unit(&mut s, *kind, unit);
                    }
                    _ => {
                        let _ = write!(s, "{o}{}{size}", kind_code(*kind));
                    }
                }
                s.push('\'');
                s
            }
            Repr::Struct { .. } => self.struct_str(),
            Repr::SubArray { base, shape } => {
                format!("({}, {})", base.construction_repr(), py_tuple(shape))
            }
        }
    }

    /// A record as NumPy prints it: the list form when the fields are packed
    /// in order with no gaps, the dict form otherwise.
    fn struct_str(&self) -> String {
        let Repr::Struct { fields, itemsize } = &self.repr else {
            return self.construction_repr();
        };
        let mut total = 0;
        let packed = fields.iter().all(|f| {
            let ok = f.offset == total;
            total += f.dtype.itemsize();
            ok
        }) && total == *itemsize;
        let mut s = String::new();
        if packed {
            s.push('[');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                let _ = write!(s, "({}, ", py_repr_str(&f.name));
                match &f.dtype.repr {
                    Repr::SubArray { base, shape } => {
                        let _ = write!(s, "{}, {}", base.construction_repr(), py_tuple(shape));
                    }
                    _ => s.push_str(&f.dtype.construction_repr()),
                }
                s.push(')');
            }
            s.push(']');
        } else {
            let join = |parts: Vec<String>| parts.join(", ");
            let _ = write!(
                s,
                "{{'names': [{}], 'formats': [{}], 'offsets': [{}], 'itemsize': {}}}",
                join(fields.iter().map(|f| py_repr_str(&f.name)).collect()),
                join(fields.iter().map(|f| f.dtype.construction_repr()).collect()),
                join(fields.iter().map(|f| f.offset.to_string()).collect()),
                itemsize
            );
        }
        s
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.numpy_str())
    }
}

fn kind_code(kind: Kind) -> char {
    match kind {
        Kind::Bool => 'b',
        Kind::Int => 'i',
        Kind::UInt => 'u',
        Kind::Float => 'f',
        Kind::Complex => 'c',
        Kind::Bytes => 'S',
        Kind::Unicode => 'U',
        Kind::DateTime => 'M',
        Kind::TimeDelta => 'm',
        Kind::Void | Kind::Struct | Kind::SubArray => 'V',
    }
}

fn push_unit(s: &mut String, kind: Kind, unit: &str) {
    if matches!(kind, Kind::DateTime | Kind::TimeDelta) && !unit.is_empty() {
        let _ = write!(s, "[{unit}]");
    }
}

/// NumPy's `dtype.name` of a native-order scalar.
fn numpy_name(kind: Kind, size: usize, unit: &str) -> String {
    let mut s = match kind {
        Kind::Bool => return "bool".into(),
        Kind::Int => format!("int{}", size * 8),
        Kind::UInt => format!("uint{}", size * 8),
        Kind::Float => format!("float{}", size * 8),
        Kind::Complex => format!("complex{}", size * 8),
        Kind::DateTime => "datetime64".into(),
        Kind::TimeDelta => "timedelta64".into(),
        _ => return String::new(), // flexible kinds use dtype.str
    };
    push_unit(&mut s, kind, unit);
    s
}

/// A Python tuple of sizes: `(4,)`, `(2, 3)`, `()`.
fn py_tuple(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Python's `repr()` of a `str`, used wherever NumPy (or an error message
/// modelled on Python's) quotes a string.
pub(crate) fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let n = c as u32;
                if n < 0x100 {
                    let _ = write!(out, "\\x{n:02x}");
                } else {
                    let _ = write!(out, "\\u{n:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A plain (non-literal) type string: a name, a type code, or `dtype.str`.
fn parse_simple(s: &str) -> std::result::Result<DType, String> {
    if let Some(d) = named_type(s) {
        return Ok(d);
    }
    let (order, rest) = match s.chars().next() {
        Some('<') | Some('=') | Some('|') => (Order::Little, &s[1..]),
        Some('>') => (Order::Big, &s[1..]),
        _ => (Order::Little, s),
    };
    let with_order = |d: DType| match d.repr {
        Repr::Scalar {
            kind, size, unit, ..
        } if (size > 1 || kind == Kind::Unicode) && !matches!(kind, Kind::Bytes | Kind::Void) => {
            DType::scalar(kind, order, size, unit)
        }
        _ => d,
    };
    if let Some(d) = named_type(rest) {
        return Ok(with_order(d));
    }
    for (name, kind) in [
        ("datetime64", Kind::DateTime),
        ("timedelta64", Kind::TimeDelta),
    ] {
        if let Some(unit) = rest.strip_prefix(name) {
            let unit = parse_unit(unit)?;
            return Ok(with_order(DType::scalar(kind, order, 8, unit)));
        }
    }
    let mut chars = rest.chars();
    let code = chars.next().ok_or("it is empty")?;
    let tail = chars.as_str();
    let (kind, default_size) = match code {
        'b' => (Kind::Bool, None),
        'i' => (Kind::Int, None),
        'u' => (Kind::UInt, None),
        'f' => (Kind::Float, None),
        'c' => (Kind::Complex, None),
        'S' | 'a' => (Kind::Bytes, Some(0)),
        'U' => (Kind::Unicode, Some(0)),
        'V' => (Kind::Void, Some(0)),
        'M' | 'm' => {
            let kind = if code == 'M' {
                Kind::DateTime
            } else {
                Kind::TimeDelta
            };
            let unit_part = tail.strip_prefix('8').unwrap_or(tail);
            if unit_part.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!("{} has no such size", kind_code(kind)));
            }
            let unit = parse_unit(unit_part)?;
            return Ok(with_order(DType::scalar(kind, order, 8, unit)));
        }
        'O' => return Err("object dtypes cannot be stored or served".into()),
        _ => return Err("unknown type code".into()),
    };
    let size: usize = if tail.is_empty() {
        default_size.ok_or("a size is needed")?
    } else if tail.bytes().all(|b| b.is_ascii_digit()) {
        tail.parse().map_err(|_| "the size is too large")?
    } else {
        return Err("unknown type code".into());
    };
    let valid = match kind {
        Kind::Bool => size == 1,
        Kind::Int | Kind::UInt => matches!(size, 1 | 2 | 4 | 8),
        Kind::Float => matches!(size, 2 | 4 | 8 | 16),
        Kind::Complex => matches!(size, 8 | 16 | 32),
        _ => true,
    };
    if !valid {
        return Err(format!("{} has no {size}-byte type", kind_code(kind)));
    }
    let size = if kind == Kind::Unicode {
        size.checked_mul(4).ok_or("the size is too large")?
    } else {
        size
    };
    if size > isize::MAX as usize {
        return Err("the size is too large".into());
    }
    let order = if (size <= 1 && kind != Kind::Unicode) || matches!(kind, Kind::Bytes | Kind::Void)
    {
        Order::NotApplicable
    } else {
        order
    };
    Ok(DType::scalar(kind, order, size, String::new()))
}

/// Validates a `[unit]` suffix (`""`, `"[ns]"`, `"[10s]"`) and returns the unit.
fn parse_unit(s: &str) -> std::result::Result<String, String> {
    if s.is_empty() {
        return Ok(String::new());
    }
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or("a time unit is written [unit]")?;
    let base = inner.trim_start_matches(|c: char| c.is_ascii_digit());
    const UNITS: [&str; 14] = [
        "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic",
    ];
    if !UNITS.contains(&base) {
        return Err(format!("{} is not a time unit", py_repr_str(inner)));
    }
    Ok(if base == "generic" {
        String::new()
    } else {
        inner.to_string()
    })
}

/// NumPy's type names and one-letter codes (Linux x86-64 sizes).
fn named_type(s: &str) -> Option<DType> {
    let (kind, size) = match s {
        "bool" | "bool_" | "?" => (Kind::Bool, 1),
        "int8" | "byte" | "b" => (Kind::Int, 1),
        "int16" | "short" | "h" => (Kind::Int, 2),
        "int32" | "intc" | "i" => (Kind::Int, 4),
        "int64" | "int_" | "int" | "long" | "longlong" | "intp" | "l" | "q" | "p" => (Kind::Int, 8),
        "uint8" | "ubyte" | "B" => (Kind::UInt, 1),
        "uint16" | "ushort" | "H" => (Kind::UInt, 2),
        "uint32" | "uintc" | "I" => (Kind::UInt, 4),
        "uint64" | "uint" | "ulong" | "ulonglong" | "uintp" | "L" | "Q" | "P" => (Kind::UInt, 8),
        "float16" | "half" | "e" => (Kind::Float, 2),
        "float32" | "single" | "f" => (Kind::Float, 4),
        "float64" | "double" | "float" | "d" => (Kind::Float, 8),
        "float128" | "longdouble" | "g" => (Kind::Float, 16),
        "complex64" | "csingle" | "F" => (Kind::Complex, 8),
        "complex128" | "cdouble" | "complex" | "D" => (Kind::Complex, 16),
        "complex256" | "clongdouble" | "G" => (Kind::Complex, 32),
        "bytes" | "bytes_" => (Kind::Bytes, 0),
        "str" | "str_" => (Kind::Unicode, 0),
        "void" => (Kind::Void, 0),
        _ => return None,
    };
    let order = if (size <= 1 && kind != Kind::Unicode) || matches!(kind, Kind::Bytes | Kind::Void)
    {
        Order::NotApplicable
    } else {
        Order::Little
    };
    Some(DType::scalar(kind, order, size, String::new()))
}

/// A Python literal, as far as dtype spellings use them.
#[derive(Debug, PartialEq)]
enum Lit {
    Str(String),
    Int(i64),
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
    Const(&'static str),
}

fn from_literal(lit: &Lit, depth: usize) -> std::result::Result<DType, String> {
    if depth > MAX_DEPTH {
        return Err("it is nested too deeply".into());
    }
    match lit {
        Lit::Str(s) => parse_simple(s).map_err(|e| format!("{}: {e}", py_repr_str(s))),
        Lit::List(items) => {
            let mut fields = Vec::with_capacity(items.len());
            let mut offset = 0usize;
            for (i, item) in items.iter().enumerate() {
                let Lit::Tuple(parts) = item else {
                    return Err("a record field is a (name, format[, shape]) tuple".into());
                };
                let (name, fmt, shape) = match parts.as_slice() {
                    [n, f] => (n, f, None),
                    [n, f, s] => (n, f, Some(s)),
                    _ => return Err("a record field is a (name, format[, shape]) tuple".into()),
                };
                let Lit::Str(name) = name else {
                    return Err("a field name is a string (titles are not supported)".into());
                };
                let name = if name.is_empty() {
                    format!("f{i}")
                } else {
                    name.clone()
                };
                let mut dtype = from_literal(fmt, depth + 1)?;
                if let Some(shape) = shape {
                    dtype = with_shape(dtype, shape)?;
                }
                let size = dtype.itemsize();
                fields.push(Field {
                    name,
                    dtype,
                    offset,
                });
                offset = offset.checked_add(size).ok_or("the record is too large")?;
            }
            check_names(&fields)?;
            Ok(DType {
                repr: Repr::Struct {
                    fields,
                    itemsize: offset,
                },
            })
        }
        Lit::Tuple(parts) => match parts.as_slice() {
            [base, shape] => with_shape(from_literal(base, depth + 1)?, shape),
            _ => Err("a sub-array is a (format, shape) tuple".into()),
        },
        Lit::Dict(entries) => {
            let get = |key: &str| {
                entries
                    .iter()
                    .find(|(k, _)| matches!(k, Lit::Str(s) if s == key))
                    .map(|(_, v)| v)
            };
            for (k, v) in entries {
                match k {
                    Lit::Str(k)
                        if matches!(k.as_str(), "names" | "formats" | "offsets" | "itemsize") => {}
                    Lit::Str(k) if k == "aligned" && matches!(v, Lit::Const("False")) => {}
                    _ => {
                        return Err(
                            "a record dict has names, formats, offsets and itemsize only".into(),
                        )
                    }
                }
            }
            let (Some(Lit::List(names)), Some(Lit::List(formats))) = (get("names"), get("formats"))
            else {
                return Err("a record dict needs lists of names and formats".into());
            };
            if names.len() != formats.len() {
                return Err("names and formats differ in length".into());
            }
            let offsets: Option<Vec<usize>> = match get("offsets") {
                None => None,
                Some(Lit::List(offs)) if offs.len() == names.len() => Some(
                    offs.iter()
                        .map(|o| match o {
                            Lit::Int(n) => usize::try_from(*n)
                                .map_err(|_| "offsets cannot be negative".to_string()),
                            _ => Err("offsets are integers".into()),
                        })
                        .collect::<std::result::Result<_, String>>()?,
                ),
                Some(_) => return Err("offsets must be a list as long as names".into()),
            };
            let mut fields = Vec::with_capacity(names.len());
            let mut end = 0usize;
            for (i, (name, fmt)) in names.iter().zip(formats).enumerate() {
                let Lit::Str(name) = name else {
                    return Err("a field name is a string".into());
                };
                let name = if name.is_empty() {
                    format!("f{i}")
                } else {
                    name.clone()
                };
                let dtype = from_literal(fmt, depth + 1)?;
                let offset = match &offsets {
                    Some(o) => o[i],
                    None => end,
                };
                let stop = offset
                    .checked_add(dtype.itemsize())
                    .ok_or("the record is too large")?;
                end = end.max(stop);
                fields.push(Field {
                    name,
                    dtype,
                    offset,
                });
            }
            check_names(&fields)?;
            let itemsize = match get("itemsize") {
                None => end,
                Some(Lit::Int(n)) => {
                    let n = usize::try_from(*n)
                        .map_err(|_| "itemsize cannot be negative".to_string())?;
                    if n < end {
                        return Err(format!(
                            "itemsize {n} is smaller than the fields, which need {end}"
                        ));
                    }
                    n
                }
                Some(_) => return Err("itemsize is an integer".into()),
            };
            Ok(DType {
                repr: Repr::Struct { fields, itemsize },
            })
        }
        Lit::Int(_) | Lit::Const(_) => Err("expected a format, a record or a sub-array".into()),
    }
}

fn check_names(fields: &[Field]) -> std::result::Result<(), String> {
    for (i, f) in fields.iter().enumerate() {
        if fields[..i].iter().any(|g| g.name == f.name) {
            return Err(format!(
                "field {} occurs more than once",
                py_repr_str(&f.name)
            ));
        }
    }
    Ok(())
}

/// Wraps `base` in a sub-array of `shape` (an int or a tuple of ints); an
/// empty shape leaves it as it is, as NumPy does.
fn with_shape(base: DType, shape: &Lit) -> std::result::Result<DType, String> {
    let dims: Vec<usize> = match shape {
        Lit::Int(n) => vec![usize::try_from(*n).map_err(|_| "a shape cannot be negative")?],
        Lit::Tuple(items) => items
            .iter()
            .map(|i| match i {
                Lit::Int(n) => {
                    usize::try_from(*n).map_err(|_| "a shape cannot be negative".to_string())
                }
                _ => Err("a shape is a tuple of integers".into()),
            })
            .collect::<std::result::Result<_, String>>()?,
        _ => return Err("a shape is a tuple of integers".into()),
    };
    if dims.is_empty() {
        return Ok(base);
    }
    let n = dims
        .iter()
        .try_fold(base.itemsize(), |acc, &d| acc.checked_mul(d))
        .ok_or("the sub-array is too large")?;
    if n > isize::MAX as usize {
        return Err("the sub-array is too large".into());
    }
    Ok(DType {
        repr: Repr::SubArray {
            base: Box::new(base),
            shape: dims,
        },
    })
}

/// A recursive-descent reader of the Python literals dtype strings use.
struct LitParser<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
}

type PResult<T> = std::result::Result<T, String>;

impl<'a> LitParser<'a> {
    fn new(s: &'a str) -> Self {
        LitParser {
            s,
            pos: 0,
            depth: 0,
        }
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.rest().chars().next()
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at character {}", self.pos)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn parse_all(mut self) -> PResult<Lit> {
        let v = self.value()?;
        self.skip_ws();
        if self.pos != self.s.len() {
            return Err(self.err("unexpected text"));
        }
        Ok(v)
    }

    fn value(&mut self) -> PResult<Lit> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("it is nested too deeply".into());
        }
        let v = match self.peek() {
            Some('[') => {
                self.pos += 1;
                Lit::List(self.items(']')?.0)
            }
            Some('(') => {
                self.pos += 1;
                let (items, trailing_comma) = self.items(')')?;
                match items.len() {
                    1 if !trailing_comma => {
                        items.into_iter().next().ok_or_else(|| self.err("empty"))?
                    }
                    _ => Lit::Tuple(items),
                }
            }
            Some('{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    if self.eat('}') {
                        break;
                    }
                    let k = self.value()?;
                    if !self.eat(':') {
                        return Err(self.err("expected ':'"));
                    }
                    let v = self.value()?;
                    entries.push((k, v));
                    if self.eat(',') {
                        continue;
                    }
                    if !self.eat('}') {
                        return Err(self.err("expected ',' or '}'"));
                    }
                    break;
                }
                Lit::Dict(entries)
            }
            Some('\'') | Some('"') => Lit::Str(self.string()?),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => self.int()?,
            Some(c) if c.is_ascii_alphabetic() => {
                let word: String = self
                    .rest()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                self.pos += word.len();
                match word.as_str() {
                    "True" => Lit::Const("True"),
                    "False" => Lit::Const("False"),
                    "None" => Lit::Const("None"),
                    _ => return Err(self.err(&format!("unexpected name {word}"))),
                }
            }
            Some(_) => return Err(self.err("unexpected character")),
            None => return Err(self.err("unexpected end")),
        };
        self.depth -= 1;
        Ok(v)
    }

    /// Comma-separated values up to `close`; also says whether a trailing
    /// comma was present (it makes `(x,)` a tuple).
    fn items(&mut self, close: char) -> PResult<(Vec<Lit>, bool)> {
        let mut items = Vec::new();
        let mut trailing = false;
        loop {
            if self.eat(close) {
                return Ok((items, trailing));
            }
            items.push(self.value()?);
            trailing = false;
            if self.eat(',') {
                trailing = true;
                continue;
            }
            if !self.eat(close) {
                return Err(self.err(&format!("expected ',' or '{close}'")));
            }
            return Ok((items, trailing));
        }
    }

    fn int(&mut self) -> PResult<Lit> {
        let r = self.rest();
        let mut len = 0;
        for (i, c) in r.char_indices() {
            if c.is_ascii_digit() || ((c == '-' || c == '+') && i == 0) || (c == '_' && i > 0) {
                len = i + 1;
            } else {
                break;
            }
        }
        let text: String = r[..len].chars().filter(|c| *c != '_').collect();
        self.pos += len;
        text.parse::<i64>()
            .map(Lit::Int)
            .map_err(|_| self.err("bad integer"))
    }

    fn string(&mut self) -> PResult<String> {
        let mut chars = self.rest().char_indices();
        let Some((_, quote)) = chars.next() else {
            return Err(self.err("expected a string"));
        };
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + c.len_utf8();
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                '\\' | '\'' | '"' => out.push(e),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                    let code = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == n)
                        .and_then(char::from_u32)
                        .ok_or_else(|| self.err("bad escape"))?;
                    out.push(code);
                }
                _ => {
                    out.push('\\');
                    out.push(e);
                }
            }
        }
        Err(self.err("unterminated string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, str(np.dtype(input)), what blosc2 writes in the metalayer,
    /// itemsize), generated once with NumPy 2.4.6 / python-blosc2 4.14.0.
    const TABLE: &[(&str, &str, &str, usize)] = &[
        ("int8", "int8", "|i1", 1),
        ("int16", "int16", "<i2", 2),
        ("int32", "int32", "<i4", 4),
        ("int64", "int64", "<i8", 8),
        ("uint8", "uint8", "|u1", 1),
        ("uint16", "uint16", "<u2", 2),
        ("uint32", "uint32", "<u4", 4),
        ("uint64", "uint64", "<u8", 8),
        ("float16", "float16", "<f2", 2),
        ("float32", "float32", "<f4", 4),
        ("float64", "float64", "<f8", 8),
        ("complex64", "complex64", "<c8", 8),
        ("complex128", "complex128", "<c16", 16),
        ("bool", "bool", "|b1", 1),
        ("?", "bool", "|b1", 1),
        ("b1", "bool", "|b1", 1),
        ("i1", "int8", "|i1", 1),
        ("i2", "int16", "<i2", 2),
        ("i4", "int32", "<i4", 4),
        ("i8", "int64", "<i8", 8),
        ("u1", "uint8", "|u1", 1),
        ("u2", "uint16", "<u2", 2),
        ("u4", "uint32", "<u4", 4),
        ("u8", "uint64", "<u8", 8),
        ("f2", "float16", "<f2", 2),
        ("f4", "float32", "<f4", 4),
        ("f8", "float64", "<f8", 8),
        ("c8", "complex64", "<c8", 8),
        ("c16", "complex128", "<c16", 16),
        ("S10", "|S10", "|S10", 10),
        ("U3", "<U3", "<U3", 12),
        ("V4", "|V4", "|V4", 4),
        ("S", "|S0", "|S0", 0),
        ("<i8", "int64", "<i8", 8),
        (">i2", ">i2", ">i2", 2),
        ("|u1", "uint8", "|u1", 1),
        ("<f4", "float32", "<f4", 4),
        ("<c16", "complex128", "<c16", 16),
        ("|S6", "|S6", "|S6", 6),
        ("<U6", "<U6", "<U6", 24),
        ("|b1", "bool", "|b1", 1),
        ("|V16", "|V16", "|V16", 16),
        ("<m8[ns]", "timedelta64[ns]", "<m8[ns]", 8),
        ("<M8[s]", "datetime64[s]", "<M8[s]", 8),
        (">f8", ">f8", ">f8", 8),
        ("=i4", "int32", "<i4", 4),
        ("<S4", "|S4", "|S4", 4),
        (">S4", "|S4", "|S4", 4),
        ("<V2", "|V2", "|V2", 2),
        ("<b1", "bool", "|b1", 1),
        (">u1", "uint8", "|u1", 1),
        (">U3", ">U3", ">U3", 12),
        ("M8", "datetime64", "<M8", 8),
        ("m8[us]", "timedelta64[us]", "<m8[us]", 8),
        ("datetime64[ns]", "datetime64[ns]", "<M8[ns]", 8),
        ("timedelta64[10s]", "timedelta64[10s]", "<m8[10s]", 8),
        (">M8[D]", ">M8[D]", ">M8[D]", 8),
        ("float128", "float128", "<f16", 16),
        ("complex256", "complex256", "<c32", 32),
        ("f16", "float128", "<f16", 16),
        ("b", "int8", "|i1", 1),
        ("B", "uint8", "|u1", 1),
        ("h", "int16", "<i2", 2),
        ("H", "uint16", "<u2", 2),
        ("i", "int32", "<i4", 4),
        ("I", "uint32", "<u4", 4),
        ("l", "int64", "<i8", 8),
        ("L", "uint64", "<u8", 8),
        ("q", "int64", "<i8", 8),
        ("Q", "uint64", "<u8", 8),
        ("e", "float16", "<f2", 2),
        ("f", "float32", "<f4", 4),
        ("d", "float64", "<f8", 8),
        ("g", "float128", "<f16", 16),
        ("F", "complex64", "<c8", 8),
        ("D", "complex128", "<c16", 16),
        ("G", "complex256", "<c32", 32),
        ("byte", "int8", "|i1", 1),
        ("ubyte", "uint8", "|u1", 1),
        ("short", "int16", "<i2", 2),
        ("ushort", "uint16", "<u2", 2),
        ("intc", "int32", "<i4", 4),
        ("uintc", "uint32", "<u4", 4),
        ("int_", "int64", "<i8", 8),
        ("long", "int64", "<i8", 8),
        ("ulong", "uint64", "<u8", 8),
        ("longlong", "int64", "<i8", 8),
        ("ulonglong", "uint64", "<u8", 8),
        ("half", "float16", "<f2", 2),
        ("single", "float32", "<f4", 4),
        ("double", "float64", "<f8", 8),
        ("float", "float64", "<f8", 8),
        ("int", "int64", "<i8", 8),
        ("complex", "complex128", "<c16", 16),
        ("longdouble", "float128", "<f16", 16),
        ("bool_", "bool", "|b1", 1),
        ("bytes", "|S0", "|S0", 0),
        ("str", "<U0", "<U0", 0),
        ("void", "|V0", "|V0", 0),
        ("a5", "|S5", "|S5", 5),
        ("|i4", "int32", "<i4", 4),
        ("<b", "int8", "|i1", 1),
        (">h", ">i2", ">i2", 2),
        ("|?", "bool", "|b1", 1),
        ("|U3", "<U3", "<U3", 12),
        ("=S3", "|S3", "|S3", 3),
        ("|M8[s]", "datetime64[s]", "<M8[s]", 8),
        ("M8[10us]", "datetime64[10us]", "<M8[10us]", 8),
        ("M8[generic]", "datetime64", "<M8", 8),
        ("U0", "<U0", "<U0", 0),
        ("|f8", "float64", "<f8", 8),
        ("[]", "[]", "[]", 0),
        ("<f16", "float128", "<f16", 16),
        (
            "[('a', '<i4'), ('b', '<f8'), ('c', 'S10'), ('d', '?')]",
            "[('a', '<i4'), ('b', '<f8'), ('c', 'S10'), ('d', '?')]",
            "[('a', '<i4'), ('b', '<f8'), ('c', 'S10'), ('d', '?')]",
            23,
        ),
        (
            "[('a', '<i4'), ('b', '<f8'), ('c', '|S10'), ('d', '|b1')]",
            "[('a', '<i4'), ('b', '<f8'), ('c', 'S10'), ('d', '?')]",
            "[('a', '<i4'), ('b', '<f8'), ('c', 'S10'), ('d', '?')]",
            23,
        ),
        (
            "[('x', '<f8', (4,)), ('y', [('p', '>i2'), ('q', 'u1')])]",
            "[('x', '<f8', (4,)), ('y', [('p', '>i2'), ('q', 'u1')])]",
            "[('x', '<f8', (4,)), ('y', [('p', '>i2'), ('q', 'u1')])]",
            35,
        ),
        ("('<f8', (4,))", "('<f8', (4,))", "('<f8', (4,))", 32),
        ("('<f8', (2, 3))", "('<f8', (2, 3))", "('<f8', (2, 3))", 48),
        ("('>i4', 4)", "('>i4', (4,))", "('>i4', (4,))", 16),
        ("('?', (2,))", "('?', (2,))", "('?', (2,))", 2),
        ("('S3', (2,))", "('S3', (2,))", "('S3', (2,))", 6),
        ("(('<f8', (2,)), (3,))", "(('<f8', (2,)), (3,))", "(('<f8', (2,)), (3,))", 48),
        (
            "[('a', '<i4'), ('', '|V4'), ('b', '<f8')]",
            "[('a', '<i4'), ('f1', 'V4'), ('b', '<f8')]",
            "[('a', '<i4'), ('f1', 'V4'), ('b', '<f8')]",
            16,
        ),
        (
            "[('f0', 'u1'), ('f1', '<f8')]",
            "[('f0', 'u1'), ('f1', '<f8')]",
            "[('f0', 'u1'), ('f1', '<f8')]",
            9,
        ),
        ("[('a', 'S3', (2,))]", "[('a', 'S3', (2,))]", "[('a', 'S3', (2,))]", 6),
        ("[('a', '<U2')]", "[('a', '<U2')]", "[('a', '<U2')]", 8),
        ("[('t', '<M8[us]')]", "[('t', '<M8[us]')]", "[('t', '<M8[us]')]", 8),
        (
            "{'names': ['a', 'b'], 'formats': ['<i4', '<f8'], 'offsets': [0, 8], 'itemsize': 24}",
            "{'names': ['a', 'b'], 'formats': ['<i4', '<f8'], 'offsets': [0, 8], 'itemsize': 24}",
            "{'names': ['a', 'b'], 'formats': ['<i4', '<f8'], 'offsets': [0, 8], 'itemsize': 24}",
            24,
        ),
        (
            "{'names': ['b', 'a'], 'formats': ['<f8', '<i4'], 'offsets': [8, 0], 'itemsize': 16}",
            "{'names': ['b', 'a'], 'formats': ['<f8', '<i4'], 'offsets': [8, 0], 'itemsize': 16}",
            "{'names': ['b', 'a'], 'formats': ['<f8', '<i4'], 'offsets': [8, 0], 'itemsize': 16}",
            16,
        ),
        (
            "{'names': ['a', 'b'], 'formats': ['<i4', '<f8']}",
            "[('a', '<i4'), ('b', '<f8')]",
            "[('a', '<i4'), ('b', '<f8')]",
            12,
        ),
        (
            "{'names': ['a', 'x'], 'formats': ['<i4', ('<f8', (2,))], 'offsets': [0, 4], 'itemsize': 20}",
            "[('a', '<i4'), ('x', '<f8', (2,))]",
            "[('a', '<i4'), ('x', '<f8', (2,))]",
            20,
        ),
        (
            "{'names': ['a', 'x'], 'formats': ['<i4', ('<f8', (2,))], 'offsets': [0, 8], 'itemsize': 24}",
            "{'names': ['a', 'x'], 'formats': ['<i4', ('<f8', (2,))], 'offsets': [0, 8], 'itemsize': 24}",
            "{'names': ['a', 'x'], 'formats': ['<i4', ('<f8', (2,))], 'offsets': [0, 8], 'itemsize': 24}",
            24,
        ),
        (
            "[('a', 'int32'), ('b', 'float64')]",
            "[('a', '<i4'), ('b', '<f8')]",
            "[('a', '<i4'), ('b', '<f8')]",
            12,
        ),
        (
            "[('a', [('b', [('c', '>f4')])])]",
            "[('a', [('b', [('c', '>f4')])])]",
            "[('a', [('b', [('c', '>f4')])])]",
            4,
        ),
        ("[('it\\'s', '<i4')]", "[(\"it's\", '<i4')]", "[(\"it's\", '<i4')]", 4),
        ("[(\"q\\\"\", '<i4')]", "[('q\"', '<i4')]", "[('q\"', '<i4')]", 4),
        ("[('a', '<i4', ())]", "[('a', '<i4')]", "[('a', '<i4')]", 4),
        ("[('a', '<f8', (1,))]", "[('a', '<f8', (1,))]", "[('a', '<f8', (1,))]", 8),
        (
            "[('x', [('p', 'i1')], (2,))]",
            "[('x', [('p', 'i1')], (2,))]",
            "[('x', [('p', 'i1')], (2,))]",
            2,
        ),
        ("[('v', 'V3'), ('s', 'S0')]", "[('v', 'V3'), ('s', 'S')]", "[('v', 'V3'), ('s', 'S')]", 3),
        (
            "[('a', '<c8'), ('b', '>c16'), ('c', 'f2'), ('d', '<m8[ns]')]",
            "[('a', '<c8'), ('b', '>c16'), ('c', '<f2'), ('d', '<m8[ns]')]",
            "[('a', '<c8'), ('b', '>c16'), ('c', '<f2'), ('d', '<m8[ns]')]",
            34,
        ),
    ];

    #[test]
    fn matches_numpy_table() {
        for &(input, numpy, descr, size) in TABLE {
            let d = DType::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(d.numpy_str(), numpy, "numpy_str of {input}");
            assert_eq!(d.descr_str(), descr, "descr_str of {input}");
            assert_eq!(d.itemsize(), size, "itemsize of {input}");
            // Both spellings read back as the same dtype.
            assert_eq!(DType::parse(numpy).unwrap(), d, "reparse of {numpy}");
            assert_eq!(DType::parse(descr).unwrap(), d, "reparse of {descr}");
        }
    }

    #[test]
    fn kinds_and_fields() {
        let d = DType::parse("[('a', '<i4'), ('b', '>f8'), ('c', 'S10'), ('d', '?')]").unwrap();
        assert_eq!(d.kind(), Kind::Struct);
        assert!(!d.is_little_endian_or_na());
        let f = d.fields().unwrap();
        let names: Vec<_> = f.iter().map(|f| (f.name.as_str(), f.offset)).collect();
        assert_eq!(names, [("a", 0), ("b", 4), ("c", 12), ("d", 22)]);
        assert_eq!(d.field("c").unwrap().dtype.kind(), Kind::Bytes);
        assert_eq!(d.field("b").unwrap().dtype.kind(), Kind::Float);
        assert!(d.field("zz").is_none());

        let s = DType::parse("('<f8', (2, 3))").unwrap();
        let (base, shape) = s.subarray().unwrap();
        assert_eq!(base.kind(), Kind::Float);
        assert_eq!(shape, [2, 3]);
        assert_eq!(s.kind(), Kind::SubArray);

        assert_eq!(DType::parse("<M8[s]").unwrap().time_unit(), Some("s"));
        assert_eq!(DType::parse("M8").unwrap().time_unit(), None);
        assert_eq!(DType::parse("<U6").unwrap().kind(), Kind::Unicode);
        assert!(DType::parse("|S6").unwrap().is_little_endian_or_na());
        assert!(!DType::parse(">i2").unwrap().is_little_endian_or_na());
        assert!(DType::parse(">u1").unwrap().is_little_endian_or_na());
    }

    #[test]
    fn garbage_is_a_bad_request() {
        for s in [
            "",
            "int7",
            "i3",
            "f3",
            "xyz",
            "O",
            "|O",
            "S-1",
            "[('a')]",
            "[('a', 'i4'), ('a', 'f8')]",
            "[('a', 'i4'",
            "('<f8', (-1,))",
            "{'names': ['a'], 'formats': ['i4', 'f8']}",
            "{'names': ['a'], 'formats': ['i8'], 'itemsize': 4}",
            "[(('t', 'a'), 'i4')]",
            "M8[parsec]",
            "?1",
            "M4",
            "i4[s]",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            "('<f8', (99999999999, 99999999999, 99999999999))",
        ] {
            match DType::parse(s) {
                Err(Error::BadRequest(msg)) => {
                    assert!(msg.contains("is not a dtype"), "{s}: {msg}")
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        let Err(e) = DType::parse("int7") else {
            panic!()
        };
        assert_eq!(e.to_string(), "'int7' is not a dtype: unknown type code");
    }

    #[test]
    fn python_repr() {
        assert_eq!(py_repr_str("abc"), "'abc'");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("a'\""), "'a\\'\"'");
        assert_eq!(py_repr_str("a\\b\n"), "'a\\\\b\\n'");
        assert_eq!(py_repr_str("\u{1}"), "'\\x01'");
    }
}
