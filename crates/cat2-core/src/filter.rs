//! filter (being written)
use crate::dtype::DType;
use crate::error::{Error, Result};
pub struct RowFilter;
impl RowFilter {
    pub fn parse(_e: &str, _d: &DType) -> Result<RowFilter> {
        Err(Error::BadFilter("filters are not supported yet".into()))
    }
    pub fn select(&self, _r: &[u8]) -> Vec<bool> {
        Vec::new()
    }
}
