//! Box readers over a stored array and over items in memory.

use cat2_blosc2::NdArray;

use crate::error::Result;
use crate::selection::BoxReader;

/// Reads boxes of a stored array.
pub(crate) struct ArrayReader<'a> {
    arr: &'a NdArray,
    shape: Vec<i64>,
    chunks: Vec<i64>,
    itemsize: usize,
}

impl<'a> ArrayReader<'a> {
    pub(crate) fn new(arr: &'a NdArray) -> Self {
        ArrayReader {
            shape: arr.shape(),
            chunks: arr.chunks().into_iter().map(i64::from).collect(),
            itemsize: arr.itemsize(),
            arr,
        }
    }
}

impl BoxReader for ArrayReader<'_> {
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
        Ok(self.arr.read_box(start, stop, out)?)
    }
    fn read_box_vec(&mut self, start: &[i64], stop: &[i64]) -> Result<Vec<u8>> {
        Ok(self.arr.read_box_vec(start, stop)?)
    }
}

/// A `BoxReader` over C-ordered items in memory.
pub(crate) struct MemReader<'a> {
    data: &'a [u8],
    shape: Vec<i64>,
    itemsize: usize,
}

impl<'a> MemReader<'a> {
    pub(crate) fn new(data: &'a [u8], shape: Vec<i64>, itemsize: usize) -> Self {
        MemReader {
            data,
            shape,
            itemsize,
        }
    }
}

impl BoxReader for MemReader<'_> {
    fn shape(&self) -> &[i64] {
        &self.shape
    }
    fn chunk_shape(&self) -> &[i64] {
        &self.shape
    }
    fn itemsize(&self) -> usize {
        self.itemsize
    }
    fn read_box(&mut self, start: &[i64], stop: &[i64], out: &mut [u8]) -> Result<()> {
        let nd = self.shape.len();
        if nd == 0 {
            out.copy_from_slice(&self.data[..self.itemsize]);
            return Ok(());
        }
        // Copy row by row along the last dimension.
        let row = ((stop[nd - 1] - start[nd - 1]) as usize) * self.itemsize;
        let mut strides = vec![self.itemsize as i64; nd];
        for i in (0..nd - 1).rev() {
            strides[i] = strides[i + 1] * self.shape[i + 1];
        }
        let counts: Vec<i64> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
        if counts.contains(&0) {
            return Ok(());
        }
        let mut idx = vec![0i64; nd - 1];
        let mut off = 0usize;
        loop {
            let mut src = start[nd - 1] * strides[nd - 1];
            for i in 0..nd - 1 {
                src += (start[i] + idx[i]) * strides[i];
            }
            let src = src as usize;
            out[off..off + row].copy_from_slice(&self.data[src..src + row]);
            off += row;
            let mut d = nd - 1;
            loop {
                if d == 0 {
                    return Ok(());
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < counts[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}
