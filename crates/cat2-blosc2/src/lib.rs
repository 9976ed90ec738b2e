//! cat2-blosc2 (being written)
#[derive(Debug, thiserror::Error)]
#[error("blosc2 {op} failed with code {code}")]
pub struct Error { pub op: &'static str, pub code: i32 }
