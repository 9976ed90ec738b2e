//! indices (being written)
use crate::error::{Error, Result};
use crate::selection::BoxReader;
pub struct Indices;
impl Indices {
    pub fn out_shape(&self) -> Vec<i64> {
        Vec::new()
    }
}
pub fn parse_indices(_s: &str, _shape: &[i64]) -> Result<Indices> {
    Err(Error::BadIndices("indices are not supported yet".into()))
}
pub fn read_indices(_r: &mut dyn BoxReader, _i: &Indices) -> Result<Vec<u8>> {
    Err(Error::BadIndices("indices are not supported yet".into()))
}
