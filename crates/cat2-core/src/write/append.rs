//! Appending rows to a stored array along its first axis.
//!
//! The array is rewritten into a new frame beside it and renamed into
//! place, so a crash leaves the old array. Chunks that lie wholly in the
//! old rows are copied compressed, as they are; only chunks that receive new
//! rows are decompressed, filled and compressed again.

use std::sync::Arc;

use cat2_blosc2::{pack_chunk, ArraySpec, CParams, Compressor, NdArray};

use super::WritePolicy;
use crate::dtype::{DType, Kind};
use crate::error::{Error, Result};
use crate::fetch::{ArrayReader, MemReader};
use crate::path::{suffix, DsPath};
use crate::selection::BoxReader;
use crate::storage::{Entry, PutMode, StagedIo};
use crate::store::{Caller, StateDir};

/// Appends the array in `data` (an NDArray frame, staged as received) to
/// the array at `path`; returns the new shape.
pub fn append(
    sd: &StateDir,
    path: &DsPath,
    data: Arc<dyn StagedIo>,
    caller: Caller<'_>,
    policy: &WritePolicy,
) -> Result<Vec<i64>> {
    let target = sd.writable_key(path, caller, policy)?;
    if !matches!(sd.entry(&target)?, Some(Entry::Object(_))) {
        return Err(Error::BadRequest(
            "Target file does not exist or is not a file".into(),
        ));
    }
    if suffix(path.name()) != ".b2nd" {
        return Err(Error::BadRequest("Target file must be a NDArray".into()));
    }
    let storage = sd.storage();
    // Read, rebuilt and replaced under the frame lock, so that no chunk
    // write lands in between and is lost.
    let _locks = super::lock::lock_fillable(storage, &[&target])?;
    let blob = storage.open(&target)?;
    let old = crate::resolve::data_array(&blob)
        .map_err(|e| {
            Error::BadRequest(format!(
                "{} is not a readable Blosc2 array: {e}",
                target.name()
            ))
        })?
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "{path} is computed from other data and cannot be appended to"
            ))
        })?;
    let new = crate::frames::open_staged_array(data, "the data to append")
        .map_err(|e| Error::BadRequest(format!("the data to append is not a Blosc2 array: {e}")))?;
    let (old_shape, new_shape) = (old.shape(), new.shape());
    let incompatible = || {
        Error::BadRequest(
            "The shapes of the original dataset and the data to append are not compatible".into(),
        )
    };
    if old_shape.is_empty()
        || new_shape.len() != old_shape.len()
        || new_shape[1..] != old_shape[1..]
    {
        return Err(incompatible());
    }
    let dtype = DType::parse(&old.dtype())?;
    let new_dtype = DType::parse(&new.dtype())?;
    let rows = cast_items(&new.to_vec()?, &new_dtype, &dtype)?;
    sd.check_quota(policy, rows.len() as u64, 0, "Append")?;

    let mut shape = old_shape.clone();
    shape[0] += new_shape[0];
    let frame = appended_frame(&old, &dtype, &rows, &shape)?;
    storage.put(&target, &frame, PutMode::Overwrite)?;
    Ok(shape)
}

/// Reads rows below `split` from the old array and the rest from memory.
struct Appended<'a> {
    old: ArrayReader<'a>,
    new: MemReader<'a>,
    split: i64,
    shape: Vec<i64>,
    chunks: Vec<i64>,
    itemsize: usize,
}

impl BoxReader for Appended<'_> {
    fn shape(&self) -> &[i64] {
        &self.shape
    }
    fn chunk_shape(&self) -> &[i64] {
        &self.chunks
    }
    fn itemsize(&self) -> usize {
        self.itemsize
    }
    fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()> {
        // Axis 0 is outermost in C order: the old and new parts are two runs.
        let row_items: i64 = start[1..]
            .iter()
            .zip(&stop[1..])
            .map(|(a, b)| b - a)
            .product();
        let row_bytes = row_items as usize * self.itemsize;
        let mid = stop[0].min(self.split).max(start[0]);
        let n_old = (mid - start[0]) as usize * row_bytes;
        if mid > start[0] {
            let mut stop_old = stop.to_vec();
            stop_old[0] = mid;
            self.old.read_box(start, &stop_old, &mut out[..n_old])?;
        }
        if stop[0] > mid {
            let mut a = start.to_vec();
            let mut b = stop.to_vec();
            a[0] = mid - self.split;
            b[0] = stop[0] - self.split;
            self.new.read_box(&a, &b, &mut out[n_old..])?;
        }
        Ok(())
    }
}

fn appended_frame(old: &NdArray, dtype: &DType, rows: &[u8], shape: &[i64]) -> Result<Vec<u8>> {
    let itemsize = dtype.itemsize();
    let chunks: Vec<i64> = old.chunks().into_iter().map(i64::from).collect();
    let blocks: Vec<i64> = old.blocks().into_iter().map(i64::from).collect();
    let old_rows = old.shape()[0];
    let mut new_shape = shape.to_vec();
    new_shape[0] -= old_rows;
    let mut reader = Appended {
        old: ArrayReader::new(old),
        new: MemReader::new(rows, new_shape, itemsize),
        split: old_rows,
        shape: shape.to_vec(),
        chunks: chunks.clone(),
        itemsize,
    };
    let mut cparams = old.schunk().cparams();
    cparams.typesize = cat2_blosc2::cparams::clamp_typesize(itemsize);
    cparams.blocksize = i32::try_from(blocks.iter().product::<i64>() * itemsize as i64)
        .map_err(|_| Error::BadRequest("the array's blocks exceed 2 GB".into()))?;
    cparams.nthreads = cat2_blosc2::cparams::default_nthreads();
    let mut compressor = Compressor::new(&cparams)?;
    let grid: Vec<i64> = shape
        .iter()
        .zip(&chunks)
        .map(|(s, c)| (s + c - 1) / c)
        .collect();
    let nchunks: i64 = grid.iter().product();
    let mut out = Vec::with_capacity(nchunks.max(0) as usize);
    let mut coord = vec![0i64; grid.len()];
    for n in 0..nchunks {
        let start: Vec<i64> = coord.iter().zip(&chunks).map(|(c, k)| c * k).collect();
        let stop: Vec<i64> = start
            .iter()
            .zip(&chunks)
            .zip(shape)
            .map(|((s, k), d)| (s + k).min(*d))
            .collect();
        if stop[0] <= old_rows && stop[0] - start[0] == chunks[0] {
            // Wholly old, and a full chunk along axis 0: the stored bytes serve.
            out.push(old.schunk().chunk(n)?);
        } else {
            let box_shape: Vec<i64> = start.iter().zip(&stop).map(|(a, b)| b - a).collect();
            let mut data = vec![0u8; box_shape.iter().product::<i64>() as usize * itemsize];
            reader.read_box(&start, &stop, &mut data)?;
            out.push(
                compressor.compress(&pack_chunk(&data, &box_shape, &chunks, &blocks, itemsize))?,
            );
        }
        for i in (0..coord.len()).rev() {
            coord[i] += 1;
            if coord[i] < grid[i] {
                break;
            }
            coord[i] = 0;
        }
    }
    let mut vlmeta = Vec::new();
    for name in old.schunk().vlmeta_names()? {
        if let Some(raw) = old.schunk().vlmeta_raw(&name)? {
            vlmeta.push((name, raw));
        }
    }
    let spec = ArraySpec {
        shape: shape.to_vec(),
        chunks: old.chunks(),
        blocks: old.blocks(),
        dtype: old.dtype(),
        cparams: CParams {
            nthreads: 1,
            ..cparams
        },
        urlpath: None,
    };
    Ok(cat2_blosc2::ndarray_frame_from_chunks(
        &spec, &out, &vlmeta,
    )?)
}

/// Converts items between dtypes the way NumPy's `astype` does for the
/// common cases: identical dtypes pass through; bool, integer and float
/// dtypes of any width and byte order convert into each other.
pub(crate) fn cast_items(data: &[u8], from: &DType, to: &DType) -> Result<Vec<u8>> {
    if from == to || from.descr_str() == to.descr_str() {
        return Ok(data.to_vec());
    }
    let numeric = |d: &DType| matches!(d.kind(), Kind::Bool | Kind::Int | Kind::UInt | Kind::Float);
    let same_layout = from.kind() == to.kind() && from.itemsize() == to.itemsize();
    if !(numeric(from) && numeric(to)) {
        if same_layout && from.fields().is_none() {
            return Ok(data.to_vec());
        }
        return Err(Error::BadRequest(format!(
            "data of dtype {} cannot be appended to an array of dtype {}",
            from.numpy_str(),
            to.numpy_str()
        )));
    }
    let (fs, ts) = (from.itemsize(), to.itemsize());
    if fs == 0 || ts == 0 || ![1, 2, 4, 8].contains(&fs) || ![1, 2, 4, 8].contains(&ts) {
        return Err(Error::BadRequest(format!(
            "cannot convert {} to {}",
            from.numpy_str(),
            to.numpy_str()
        )));
    }
    let mut out = Vec::with_capacity(data.len() / fs * ts);
    for item in data.chunks_exact(fs) {
        let v = read_number(item, from);
        write_number(v, to, &mut out);
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Num {
    I(i128),
    F(f64),
}

fn ordered(bytes: &[u8], d: &DType) -> [u8; 8] {
    let mut b = [0u8; 8];
    if d.is_little_endian_or_na() {
        b[..bytes.len()].copy_from_slice(bytes);
    } else {
        for (i, v) in bytes.iter().rev().enumerate() {
            b[i] = *v;
        }
    }
    b
}

fn read_number(item: &[u8], d: &DType) -> Num {
    let b = ordered(item, d);
    let n = item.len();
    match d.kind() {
        Kind::Bool => Num::I(i128::from(b[0] != 0)),
        Kind::UInt => Num::I(i128::from(u64::from_le_bytes(b))),
        Kind::Int => {
            let shift = 64 - 8 * n as u32;
            Num::I(i128::from((i64::from_le_bytes(b) << shift) >> shift))
        }
        _ => match n {
            4 => Num::F(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            8 => Num::F(f64::from_le_bytes(b)),
            _ => Num::F(f64::NAN),
        },
    }
}

fn write_number(v: Num, d: &DType, out: &mut Vec<u8>) {
    let n = d.itemsize();
    let le: [u8; 8] = match d.kind() {
        Kind::Bool => {
            let t = match v {
                Num::I(i) => i != 0,
                Num::F(f) => f != 0.0,
            };
            [u8::from(t), 0, 0, 0, 0, 0, 0, 0]
        }
        Kind::Int | Kind::UInt => {
            let i = match v {
                Num::I(i) => i,
                Num::F(f) => f as i128,
            };
            (i as i64).to_le_bytes()
        }
        _ => {
            let f = match v {
                Num::I(i) => i as f64,
                Num::F(f) => f,
            };
            if n == 4 {
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&(f as f32).to_le_bytes());
                b
            } else {
                f.to_le_bytes()
            }
        }
    };
    if d.is_little_endian_or_na() {
        out.extend_from_slice(&le[..n]);
    } else {
        out.extend(le[..n].iter().rev());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DType {
        DType::parse(s).unwrap()
    }

    #[test]
    fn casts_follow_numpy_for_common_numbers() {
        let data: Vec<u8> = [1i32, -2, 300]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let out = cast_items(&data, &dt("<i4"), &dt("<i8")).unwrap();
        let back: Vec<i64> = out
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(back, [1, -2, 300]);
        let out = cast_items(&data, &dt("<i4"), &dt(">f8")).unwrap();
        assert_eq!(f64::from_be_bytes(out[8..16].try_into().unwrap()), -2.0);
        let out = cast_items(&data, &dt("<i4"), &dt("|b1")).unwrap();
        assert_eq!(out, [1, 1, 1]);
        assert!(cast_items(&data, &dt("<i4"), &dt("|S4")).is_err());
    }
}

#[cfg(test)]
mod append_tests {
    use super::*;
    use crate::storage::Key;
    use std::fs;

    /// Bytes staged as a received upload is.
    fn staged(sd: &StateDir, data: &[u8]) -> Box<dyn crate::storage::Staged> {
        let s = sd
            .storage()
            .stage(&Key::parse("personal/append").unwrap())
            .unwrap();
        s.io().write_at(0, data).unwrap();
        s
    }

    fn frame(shape: &[i64], chunks: &[i32], blocks: &[i32], values: &[i64]) -> Vec<u8> {
        let spec = ArraySpec {
            shape: shape.to_vec(),
            chunks: chunks.to_vec(),
            blocks: blocks.to_vec(),
            dtype: "<i8".into(),
            cparams: CParams::zstd_shuffle(8),
            urlpath: None,
        };
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        NdArray::from_buffer(&spec, &data)
            .unwrap()
            .to_cframe()
            .unwrap()
    }

    #[test]
    fn appends_rows_and_keeps_vlmeta() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = StateDir::open(tmp.path()).unwrap();
        let target = sd.path().join("shared/a.b2nd");
        let mut arr = NdArray::from_cframe(&frame(
            &[10, 3],
            &[4, 3],
            &[2, 3],
            &(0..30).collect::<Vec<_>>(),
        ))
        .unwrap();
        arr.schunk_mut()
            .set_vlmeta("who", &rmpv::Value::from("me"))
            .unwrap();
        fs::write(&target, arr.to_cframe().unwrap()).unwrap();
        let data = staged(
            &sd,
            &frame(&[3, 3], &[3, 3], &[3, 3], &(100..109).collect::<Vec<_>>()),
        );
        let caller = Caller {
            user_id: Some("f4e7e458-4fa4-4a4f-8546-7e6e021d6eda"),
            is_superuser: false,
        };
        let p = DsPath::parse("@shared/a.b2nd").unwrap();
        let shape = append(&sd, &p, data.io(), caller, &WritePolicy::default()).unwrap();
        assert_eq!(shape, [13, 3]);
        let back = NdArray::open(&target).unwrap();
        let values: Vec<i64> = back
            .to_vec()
            .unwrap()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let expected: Vec<i64> = (0..30).chain(100..109).collect();
        assert_eq!(values, expected);
        let vl = back.schunk().vlmeta().unwrap();
        assert_eq!(vl, [("who".to_string(), rmpv::Value::from("me"))]);

        let bad = staged(
            &sd,
            &frame(&[2, 4], &[2, 4], &[2, 4], &(0..8).collect::<Vec<_>>()),
        );
        let e = append(&sd, &p, bad.io(), caller, &WritePolicy::default()).unwrap_err();
        assert!(e.to_string().contains("not compatible"));
    }
}
