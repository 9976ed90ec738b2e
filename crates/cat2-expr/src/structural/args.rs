//! Arguments of non-element-wise calls, checked the way NumPy checks them.
//!
//! The type checker turns each argument into an [`Arg`]: array-valued expressions become
//! sub-plans, literal expressions (`-1`, `2**3`) Python scalars, and tuples, lists, strings,
//! `None` and slices stay what they are. Builders then take parameters by position or
//! keyword, as Python binds them, and read them with the accessors here, so that every
//! operation reports a wrong argument with the same words.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::pyscalar::Py;
use crate::Plan;

/// One argument value.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Array(Plan),
    Scalar(Py),
    Str(String),
    None,
    Ellipsis,
    /// A tuple or a list.
    Seq(Vec<Arg>),
    /// `start:stop:step` (each part optional).
    Slice([Option<i64>; 3]),
}

/// The arguments of one call, bound to parameters as they are taken.
#[derive(Debug)]
pub(crate) struct Args {
    func: String,
    pos: Vec<Option<Arg>>,
    kw: Vec<(String, Option<Arg>)>,
}

impl Args {
    pub(crate) fn new(func: &str, pos: Vec<Arg>, kw: Vec<(String, Arg)>) -> Args {
        Args {
            func: func.trim_start_matches('.').to_string(),
            pos: pos.into_iter().map(Some).collect(),
            kw: kw.into_iter().map(|(k, v)| (k, Some(v))).collect(),
        }
    }

    /// The function's name, for messages.
    pub(crate) fn func(&self) -> &str {
        &self.func
    }

    /// Parameter `index` (positional) or `name` (keyword), if given.
    pub(crate) fn take(&mut self, index: usize, name: &str) -> Result<Option<Arg>> {
        let positional = self.pos.get_mut(index).and_then(Option::take);
        let keyword = self
            .kw
            .iter_mut()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.take());
        match (positional, keyword) {
            (Some(_), Some(_)) => Err(Error::Type(format!(
                "{}() got multiple values for argument '{name}'",
                self.func
            ))),
            (a, b) => Ok(a.or(b)),
        }
    }

    /// Like [`Args::take`], for a parameter without a default.
    pub(crate) fn required(&mut self, index: usize, name: &str) -> Result<Arg> {
        self.take(index, name)?.ok_or_else(|| {
            Error::Type(format!(
                "{}() missing required argument '{name}' (pos {})",
                self.func,
                index + 1
            ))
        })
    }

    /// A keyword-only parameter.
    pub(crate) fn keyword(&mut self, name: &str) -> Result<Option<Arg>> {
        self.take(usize::MAX, name)
    }

    /// Checks that every argument was taken.
    pub(crate) fn finish(self) -> Result<()> {
        if let Some((k, _)) = self.kw.iter().find(|(_, v)| v.is_some()) {
            return Err(Error::Type(format!(
                "{}() got an unexpected keyword argument '{k}'",
                self.func
            )));
        }
        let given = self.pos.len();
        if self.pos.iter().any(Option::is_some) {
            let taken = self.pos.iter().filter(|a| a.is_none()).count();
            return Err(Error::Type(format!(
                "{}() takes {taken} positional arguments but {given} were given",
                self.func
            )));
        }
        Ok(())
    }
}

/// NumPy's `normalize_axis_index`.
pub(crate) fn normalize_axis(axis: i64, ndim: usize) -> Result<usize> {
    let n = ndim as i64;
    if axis < -n || axis >= n {
        return Err(Error::Value(format!(
            "axis {axis} is out of bounds for array of dimension {ndim}"
        )));
    }
    Ok(if axis < 0 { axis + n } else { axis } as usize)
}

impl Arg {
    fn describe(&self) -> &'static str {
        match self {
            Arg::Array(_) => "an array",
            Arg::Scalar(_) => "a number",
            Arg::Str(_) => "a string",
            Arg::None => "None",
            Arg::Ellipsis => "Ellipsis",
            Arg::Seq(_) => "a sequence",
            Arg::Slice(_) => "a slice",
        }
    }

    fn wrong(&self, what: &str, expected: &str) -> Error {
        Error::Type(format!(
            "{what} must be {expected}, not {}",
            self.describe()
        ))
    }

    /// The argument as an array: a sub-plan, or a Python scalar as a 0-d constant.
    pub(crate) fn into_plan(self, what: &str) -> Result<Plan> {
        match self {
            Arg::Array(plan) => Ok(plan),
            Arg::Scalar(p) => Plan::constant(p),
            other => Err(other.wrong(what, "an array")),
        }
    }

    /// A Python scalar.
    pub(crate) fn py(&self, what: &str) -> Result<Py> {
        match self {
            Arg::Scalar(p) => Ok(*p),
            other => Err(other.wrong(what, "a number")),
        }
    }

    /// A Python integer (or bool).
    pub(crate) fn int(&self, what: &str) -> Result<i64> {
        match self {
            Arg::Scalar(Py::Int(i)) => {
                i64::try_from(*i).map_err(|_| Error::Value(format!("{what} {i} is too large")))
            }
            Arg::Scalar(Py::Bool(b)) => Ok(i64::from(*b)),
            other => Err(other.wrong(what, "an integer")),
        }
    }

    /// A truth value (Python's `bool(x)` of a literal).
    pub(crate) fn truth(&self, what: &str) -> Result<bool> {
        match self {
            Arg::Scalar(p) => Ok(p.truthy()),
            Arg::None => Ok(false),
            other => Err(other.wrong(what, "True or False")),
        }
    }

    /// A shape: an integer or a sequence of integers, none negative.
    pub(crate) fn shape(&self, what: &str) -> Result<Vec<usize>> {
        let dims = match self {
            Arg::Seq(items) => items
                .iter()
                .map(|i| i.int(what))
                .collect::<Result<Vec<_>>>()?,
            other => vec![other.int(what)?],
        };
        dims.into_iter()
            .map(|d| {
                usize::try_from(d)
                    .map_err(|_| Error::Value("negative dimensions are not allowed".into()))
            })
            .collect()
    }

    /// `axis`: `None` (all axes), an integer or a sequence of distinct integers, normalised
    /// against `ndim` and sorted.
    pub(crate) fn axes(&self, ndim: usize) -> Result<Option<Vec<usize>>> {
        let raw = match self {
            Arg::None => return Ok(None),
            Arg::Seq(items) => items
                .iter()
                .map(|i| i.int("axis"))
                .collect::<Result<Vec<_>>>()?,
            other => vec![other.int("axis")?],
        };
        let mut axes = raw
            .into_iter()
            .map(|a| normalize_axis(a, ndim))
            .collect::<Result<Vec<_>>>()?;
        axes.sort_unstable();
        if axes.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Value("duplicate value in 'axis'".into()));
        }
        Ok(Some(axes))
    }

    /// A dtype given by name (`'float32'`, `float32`, `'f8'`), or `None`.
    pub(crate) fn dtype(&self) -> Result<Option<DType>> {
        match self {
            Arg::None => Ok(None),
            Arg::Str(name) => DType::from_numpy(name)
                .map(Some)
                .ok_or_else(|| Error::Type(format!("data type '{name}' not understood"))),
            other => Err(other.wrong("dtype", "a dtype name")),
        }
    }
}

/// Takes an optional `dtype` parameter.
pub(crate) fn take_dtype(args: &mut Args, index: usize) -> Result<Option<DType>> {
    match args.take(index, "dtype")? {
        Some(a) => a.dtype(),
        None => Ok(None),
    }
}
