//! dtype (placeholder until the full parser lands)
use crate::error::{Error, Result};
pub struct DType(String);
impl DType {
    pub fn parse(s: &str) -> Result<DType> { Err(Error::BadRequest(s.to_string())) }
    pub fn numpy_str(&self) -> String { self.0.clone() }
}
