//! Values for people to look at: a selection decoded to numbers (the web
//! GUI's data table) and 2-D frames as float32 images (its viewer).
//!
//! Both go through [`Dataset::fetch`], the code behind `/api/fetch`, so the
//! web GUI reads exactly what the API would answer, with the same permission
//! checks (the dataset was resolved for the caller), HDF5 proxies read in
//! place and lazy expressions computed for the selection only; the frame is
//! then decoded here because browsers cannot decompress Blosc2.

use cat2_blosc2::NdArray;

use crate::budget::{bytes_of, dims_of, Budget};
use crate::dataset::Dataset;
use crate::dtype::{DType, Kind};
use crate::error::{Error, Result};
use crate::fetch::{FetchOutput, FetchRequest};
use crate::filter::f16_to_f64;

/// A selection's items, decoded from the answer of a fetch.
#[derive(Debug)]
pub struct Values {
    pub shape: Vec<i64>,
    pub dtype: DType,
    /// C-order items, as stored (byte order of `dtype`).
    pub data: Vec<u8>,
}

/// The dataset a node is, or a 400 for what is not an array (a 404 for
/// nothing, and a refused node's own error).
pub fn array_of(node: crate::node::Node) -> Result<Box<dyn Dataset>> {
    use crate::node::Node;
    match node {
        Node::Dataset(d) => Ok(d),
        Node::Missing(_) | Node::Refused(_) => node.into_dataset(),
        other => Err(Error::BadRequest(format!(
            "{} is not an array",
            other.path()
        ))),
    }
}

/// The shape of an array as the API's info shows it (lazy expressions
/// included), or a 400 for what is not an array.
pub fn array_shape(ds: &dyn Dataset) -> Result<Vec<i64>> {
    match ds.info()? {
        cat2_proto::Info::Array(a) => Ok(a.shape),
        cat2_proto::Info::Lazy(l) => Ok(l.shape),
        _ => Err(Error::BadRequest(format!("{} is not an array", ds.path()))),
    }
}

/// The items of `slice` (`/api/fetch`'s `slice_` syntax; `None`: everything),
/// refused when the request could not hold them (and a copy of them: what
/// the views make of them).
pub fn fetch_values(ds: &dyn Dataset, slice: Option<String>, budget: &Budget) -> Result<Values> {
    let req = FetchRequest {
        slice,
        budget: budget.clone(),
        ..FetchRequest::default()
    };
    // Held until the items are read: a spilled answer lives as long as it.
    let answer = ds.fetch(&req)?;
    let arr: NdArray = match &answer {
        FetchOutput::Frame(bytes) => NdArray::from_cframe(bytes)?,
        FetchOutput::Spilled(frame) => crate::frames::open_staged_array(frame.io(), "the answer")?,
        FetchOutput::Stored { blob, offset, .. } => crate::frames::open_array_at(blob, *offset)?,
    };
    // The items, and what the views make of them (up to 8 bytes each).
    let shape = arr.shape();
    let items = bytes_of(dims_of(&shape), 1);
    let bytes = items.saturating_mul(arr.itemsize() as u64 + 8);
    budget.fits(bytes, &|| format!("showing {items} items of {}", ds.path()))?;
    Ok(Values {
        shape,
        dtype: DType::parse(&arr.dtype())?,
        data: arr.to_vec()?,
    })
}

impl Values {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.itemsize().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn item(&self, i: usize) -> &[u8] {
        let n = self.dtype.itemsize();
        &self.data[i * n..(i + 1) * n]
    }

    /// Item `i` as a number, for dtypes whose items are one real number
    /// (booleans, integers, floats); `None` otherwise.
    pub fn number(&self, i: usize) -> Option<f64> {
        number(&self.dtype, self.item(i))
    }

    /// Every item as f32, for dtypes whose items are one real number.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        let little = self.dtype.is_little_endian_or_na();
        let n = self.dtype.itemsize();
        macro_rules! conv {
            ($t:ty, $n:expr) => {
                self.data
                    .chunks_exact($n)
                    .map(|c| {
                        let a: [u8; $n] = c.try_into().unwrap_or([0; $n]);
                        (if little {
                            <$t>::from_le_bytes(a)
                        } else {
                            <$t>::from_be_bytes(a)
                        }) as f32
                    })
                    .collect()
            };
        }
        Some(match (self.dtype.kind(), n) {
            (Kind::Bool, 1) => self
                .data
                .iter()
                .map(|&b| f32::from(u8::from(b != 0)))
                .collect(),
            (Kind::UInt, 1) => self.data.iter().map(|&b| f32::from(b)).collect(),
            (Kind::Int, 1) => self.data.iter().map(|&b| f32::from(b as i8)).collect(),
            (Kind::UInt, 2) => conv!(u16, 2),
            (Kind::Int, 2) => conv!(i16, 2),
            (Kind::UInt, 4) => conv!(u32, 4),
            (Kind::Int, 4) => conv!(i32, 4),
            (Kind::UInt, 8) => conv!(u64, 8),
            (Kind::Int, 8) => conv!(i64, 8),
            (Kind::Float, 4) => conv!(f32, 4),
            (Kind::Float, 8) => conv!(f64, 8),
            (Kind::Float, 2) => (0..self.len())
                .map(|i| self.number(i).unwrap_or(f64::NAN) as f32)
                .collect(),
            _ => return None,
        })
    }

    /// Item `i` as a table shows it.
    pub fn format(&self, i: usize) -> String {
        let bytes = self.item(i);
        let little = self.dtype.is_little_endian_or_na();
        match self.dtype.kind() {
            Kind::Bool => (if bytes[0] != 0 { "True" } else { "False" }).into(),
            Kind::Float if bytes.len() == 4 => {
                // Shortest digits that read back as the same float32, as NumPy prints it.
                let x = f32_at(bytes, little);
                if x.is_finite() && x != 0.0 && (x.abs() >= 1e16 || x.abs() < 1e-4) {
                    format!("{x:e}")
                } else if x.is_finite() {
                    format!("{x}")
                } else {
                    format_float(f64::from(x))
                }
            }
            Kind::Struct => {
                let fields = self.dtype.fields().unwrap_or(&[]);
                let cells: Vec<String> = fields
                    .iter()
                    .map(|f| {
                        let end = (f.offset + f.dtype.itemsize()).min(bytes.len());
                        let start = f.offset.min(end);
                        Values {
                            shape: vec![1],
                            dtype: f.dtype.clone(),
                            data: bytes[start..end].to_vec(),
                        }
                        .format(0)
                    })
                    .collect();
                format!("({})", cells.join(", "))
            }
            Kind::Int | Kind::UInt | Kind::Float => match number(&self.dtype, bytes) {
                Some(x) if self.dtype.kind() == Kind::Float => format_float(x),
                Some(x) => integer_text(&self.dtype, bytes).unwrap_or_else(|| format!("{x}")),
                None => hex(bytes),
            },
            Kind::Complex if bytes.len() == 16 => {
                let re = f64_at(&bytes[..8], little);
                let im = f64_at(&bytes[8..], little);
                format!("{}{:+}j", format_float(re), im)
            }
            Kind::Complex if bytes.len() == 8 => {
                let re = f64::from(f32_at(&bytes[..4], little));
                let im = f64::from(f32_at(&bytes[4..], little));
                format!("{}{:+}j", format_float(re), im)
            }
            Kind::Bytes => {
                let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                format!("b'{}'", String::from_utf8_lossy(&bytes[..end]))
            }
            Kind::Unicode => bytes
                .chunks_exact(4)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    if little {
                        u32::from_le_bytes(b)
                    } else {
                        u32::from_be_bytes(b)
                    }
                })
                .take_while(|&c| c != 0)
                .filter_map(char::from_u32)
                .collect(),
            _ => hex(bytes),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn format_float(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        (if x > 0.0 { "inf" } else { "-inf" }).into()
    } else if x != 0.0 && (x.abs() >= 1e16 || x.abs() < 1e-4) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

fn f64_at(b: &[u8], little: bool) -> f64 {
    let a: [u8; 8] = b.try_into().unwrap_or([0; 8]);
    if little {
        f64::from_le_bytes(a)
    } else {
        f64::from_be_bytes(a)
    }
}

fn f32_at(b: &[u8], little: bool) -> f32 {
    let a: [u8; 4] = b.try_into().unwrap_or([0; 4]);
    if little {
        f32::from_le_bytes(a)
    } else {
        f32::from_be_bytes(a)
    }
}

/// An integer item (up to 8 bytes) as a signed or unsigned 64-bit value.
enum Integer {
    Signed(i64),
    Unsigned(u64),
}

fn integer(dtype: &DType, bytes: &[u8]) -> Option<Integer> {
    let n = bytes.len();
    if n == 0 || n > 8 {
        return None;
    }
    let mut b = [0u8; 8];
    if dtype.is_little_endian_or_na() {
        b[..n].copy_from_slice(bytes);
    } else {
        for (k, &v) in bytes.iter().rev().enumerate() {
            b[k] = v;
        }
    }
    let raw = u64::from_le_bytes(b);
    Some(match dtype.kind() {
        Kind::UInt => Integer::Unsigned(raw),
        _ => {
            let shift = 64 - 8 * n as u32;
            Integer::Signed(((raw << shift) as i64) >> shift)
        }
    })
}

/// An integer item exactly (64-bit integers do not all fit an f64).
fn integer_text(dtype: &DType, bytes: &[u8]) -> Option<String> {
    Some(match integer(dtype, bytes)? {
        Integer::Signed(v) => v.to_string(),
        Integer::Unsigned(v) => v.to_string(),
    })
}

/// One real-number item as f64.
fn number(dtype: &DType, bytes: &[u8]) -> Option<f64> {
    let little = dtype.is_little_endian_or_na();
    let n = bytes.len();
    match dtype.kind() {
        Kind::Bool => Some(f64::from(u8::from(bytes[0] != 0))),
        Kind::Int | Kind::UInt => Some(match integer(dtype, bytes)? {
            Integer::Signed(v) => v as f64,
            Integer::Unsigned(v) => v as f64,
        }),
        Kind::Float => match n {
            2 => {
                let b = [bytes[0], bytes[1]];
                let bits = if little {
                    u16::from_le_bytes(b)
                } else {
                    u16::from_be_bytes(b)
                };
                Some(f16_to_f64(bits))
            }
            4 => Some(f64::from(f32_at(bytes, little))),
            8 => Some(f64_at(bytes, little)),
            _ => None,
        },
        _ => None,
    }
}

/// A 2-D image (with 1, 3 or 4 channels), row-major, as float32.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// The size of the frame before it was shrunk.
    pub full_height: usize,
    pub full_width: usize,
    pub pixels: Vec<f32>,
}

/// How a dataset can be shown as images: the axes frames can be taken
/// along and whether its last dimension is colour channels.
pub fn frame_axes(shape: &[i64]) -> Option<(usize, bool)> {
    match shape.len() {
        2 => Some((0, false)),
        3 if shape[2] == 3 || shape[2] == 4 => Some((0, true)),
        3 => Some((3, false)),
        4 if shape[3] == 3 || shape[3] == 4 => Some((3, true)),
        _ => None,
    }
}

/// Frame `index` along `axis` of a dataset of `shape` (a 2-D array, or an
/// RGB(A) image, is its own only frame), shrunk by averaging blocks of
/// pixels until no side exceeds `max_side`.
pub fn frame(
    ds: &dyn Dataset,
    shape: &[i64],
    axis: usize,
    index: i64,
    max_side: usize,
    budget: &Budget,
) -> Result<Image> {
    let (naxes, rgb) = frame_axes(shape).ok_or_else(|| {
        Error::BadRequest(format!(
            "a dataset of shape {shape:?} is not a stack of images (2-D, 3-D, or 3-D/4-D with 3 or 4 channels last)"
        ))
    })?;
    let slice = if naxes == 0 {
        None
    } else {
        if axis >= naxes {
            return Err(Error::BadRequest(format!(
                "axis {axis} is not one of the {naxes} axes frames are taken along"
            )));
        }
        if index < 0 || index >= shape[axis] {
            return Err(Error::BadRequest(format!(
                "frame {index} is out of range: axis {axis} has {} frames",
                shape[axis]
            )));
        }
        let mut parts = vec![":".to_string(); shape.len()];
        parts[axis] = format!("{index}:{}", index + 1);
        Some(parts.join(","))
    };
    let values = fetch_values(ds, slice, budget)?;
    let mut dims: Vec<usize> = values.shape.iter().map(|&n| n as usize).collect();
    if naxes > 0 {
        dims.remove(axis);
    }
    let channels = if rgb { dims.pop().unwrap_or(1) } else { 1 };
    let (height, width) = match dims[..] {
        [h, w] => (h, w),
        _ => {
            return Err(Error::BadRequest(format!(
                "frame of shape {:?} is not 2-D",
                values.shape
            )))
        }
    };
    let items = values.to_f32().ok_or_else(|| {
        Error::BadRequest(format!(
            "items of dtype {} cannot be shown as pixels",
            values.dtype.numpy_str()
        ))
    })?;
    let factor = height.max(width).div_ceil(max_side.max(1)).max(1);
    let (out_h, out_w) = (height.div_ceil(factor), width.div_ceil(factor));
    let mut pixels = vec![0f32; out_h * out_w * channels];
    for oy in 0..out_h {
        for ox in 0..out_w {
            for c in 0..channels {
                let (mut sum, mut count) = (0f64, 0u32);
                for y in oy * factor..((oy + 1) * factor).min(height) {
                    for x in ox * factor..((ox + 1) * factor).min(width) {
                        sum += f64::from(items[(y * width + x) * channels + c]);
                        count += 1;
                    }
                }
                pixels[(oy * out_w + ox) * channels + c] = (sum / f64::from(count.max(1))) as f32;
            }
        }
    }
    Ok(Image {
        height: out_h,
        width: out_w,
        channels,
        full_height: height,
        full_width: width,
        pixels,
    })
}

/// The most bytes of records the data table filters or sorts in one go.
const RECORDS_MAX_BYTES: u64 = 256 << 20;

/// A page of a record (structured) array's table.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    /// Every field of the dtype, and the ones shown.
    pub all_fields: Vec<String>,
    pub fields: Vec<String>,
    /// Rows after the filter, and the page: (original row index, cells).
    pub matching: usize,
    pub rows: Vec<(usize, Vec<String>)>,
}

/// What a record table shows: which fields, which rows (a filter over the
/// fields, as `/api/fetch`'s `filter=`), in which order, and which page.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    pub fields: Vec<String>,
    pub filter: Option<String>,
    pub sortby: Option<String>,
    pub start: usize,
    pub size: usize,
}

/// A page of the 1-D record array at `loc`. Without a filter or an order only
/// the page is read; with one, the whole array is (up to 256 MB).
pub fn record_page(
    ds: &dyn Dataset,
    len: usize,
    q: &RecordQuery,
    budget: &Budget,
) -> Result<RecordPage> {
    let size = q.size.max(1);
    let whole = q.filter.is_some() || q.sortby.is_some();
    let values = if whole {
        let values = fetch_values(ds, None, budget)?;
        if values.data.len() as u64 > RECORDS_MAX_BYTES {
            return Err(Error::BadRequest(format!(
                "{} is too big to filter or sort here ({} MB); use /api/fetch with filter=",
                ds.path(),
                values.data.len() >> 20
            )));
        }
        values
    } else {
        let start = q.start.min(len.saturating_sub(1));
        fetch_values(
            ds,
            Some(format!("{start}:{}", (start + size).min(len))),
            budget,
        )?
    };
    let dtype = values.dtype.clone();
    let fields = dtype
        .fields()
        .ok_or_else(|| Error::BadRequest(format!("{} is not a record array", ds.path())))?;
    let all_fields: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
    let shown: Vec<&crate::dtype::Field> = if q.fields.is_empty() {
        fields.iter().take(5).collect()
    } else {
        q.fields
            .iter()
            .map(|n| {
                dtype
                    .field(n)
                    .ok_or_else(|| Error::BadRequest(format!("Unknown field: {n}")))
            })
            .collect::<Result<_>>()?
    };
    let itemsize = dtype.itemsize().max(1);
    let record = |i: usize| &values.data[i * itemsize..(i + 1) * itemsize];
    let cell = |i: usize, f: &crate::dtype::Field| {
        let bytes = record(i)[f.offset..f.offset + f.dtype.itemsize()].to_vec();
        Values {
            shape: vec![1],
            dtype: f.dtype.clone(),
            data: bytes,
        }
    };
    let n = values.len();
    let (first_index, mut order): (usize, Vec<usize>) = if whole {
        let keep = match &q.filter {
            Some(expr) => crate::filter::RowFilter::parse(expr, &dtype)?.select(&values.data),
            None => vec![true; n],
        };
        (0, (0..n).filter(|&i| keep[i]).collect())
    } else {
        (q.start.min(len.saturating_sub(1)), (0..n).collect())
    };
    if let Some(name) = &q.sortby {
        let f = dtype
            .field(name)
            .ok_or_else(|| Error::BadRequest(format!("Unknown field: {name}")))?;
        let keys: Vec<(Option<f64>, String)> = (0..n)
            .map(|i| {
                let v = cell(i, f);
                match v.number(0) {
                    Some(x) => (Some(x), String::new()),
                    None => (None, v.format(0)),
                }
            })
            .collect();
        order.sort_by(|&a, &b| match (&keys[a], &keys[b]) {
            ((Some(x), _), (Some(y), _)) => x.total_cmp(y),
            ((_, s), (_, t)) => s.cmp(t),
        });
    }
    let matching = if whole { order.len() } else { len };
    let page: Vec<usize> = if whole {
        order.into_iter().skip(q.start).take(size).collect()
    } else {
        order
    };
    let rows = page
        .into_iter()
        .map(|i| {
            let cells = shown.iter().map(|f| cell(i, f).format(0)).collect();
            (first_index + i, cells)
        })
        .collect();
    Ok(RecordPage {
        all_fields,
        fields: shown.iter().map(|f| f.name.clone()).collect(),
        matching,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(dtype: &str, data: Vec<u8>) -> Values {
        let dtype = DType::parse(dtype).unwrap();
        let n = data.len() / dtype.itemsize();
        Values {
            shape: vec![n as i64],
            dtype,
            data,
        }
    }

    #[test]
    fn items_are_shown_as_numpy_prints_them() {
        let v = values(
            "<i2",
            [-3i16, 7].iter().flat_map(|x| x.to_le_bytes()).collect(),
        );
        assert_eq!((v.format(0), v.format(1)), ("-3".into(), "7".into()));
        assert_eq!(v.number(0), Some(-3.0));
        let v = values(">u8", u64::MAX.to_be_bytes().to_vec());
        assert_eq!(v.format(0), u64::MAX.to_string());
        let v = values("<f4", 0.5f32.to_le_bytes().to_vec());
        assert_eq!(v.format(0), "0.5");
        let v = values("<f4", 0.1f32.to_le_bytes().to_vec());
        assert_eq!(v.format(0), "0.1");
        let rec = DType::parse("[('id', '<i4'), ('name', 'S4'), ('ok', '?')]").unwrap();
        let mut data = 7i32.to_le_bytes().to_vec();
        data.extend(b"ab\0\0");
        data.push(1);
        let v = Values {
            shape: vec![1],
            dtype: rec,
            data,
        };
        assert_eq!(v.format(0), "(7, b'ab', True)");
        let v = values("<f2", vec![0x00, 0x3c]); // 1.0 in half precision
        assert_eq!(v.number(0), Some(1.0));
        let v = values("|b1", vec![1, 0]);
        assert_eq!((v.format(0), v.format(1)), ("True".into(), "False".into()));
        let v = values(
            "<U3",
            "ab".chars()
                .flat_map(|c| (c as u32).to_le_bytes())
                .chain([0; 4])
                .collect(),
        );
        assert_eq!(v.format(0), "ab");
        assert_eq!(v.number(0), None);
    }

    #[test]
    fn frames_come_from_the_axes_of_image_stacks() {
        assert_eq!(frame_axes(&[5, 6]), Some((0, false)));
        assert_eq!(frame_axes(&[4, 5, 6]), Some((3, false)));
        assert_eq!(frame_axes(&[5, 6, 3]), Some((0, true)));
        assert_eq!(frame_axes(&[2, 5, 6, 4]), Some((3, true)));
        assert_eq!(frame_axes(&[7]), None);
    }
}
