//! (being written)

use super::{Args, Built};
use crate::error::{Error, Result};

pub(crate) fn build(name: &str, _args: Args) -> Result<Built> {
    Err(Error::Unsupported(format!("{name}() is not supported yet")))
}
