//! Operations that are not element-wise: reductions, constructors, indexing, joins and
//! matrix products.
//!
//! The fused evaluator (`eval`) only knows element-wise trees over operands. Rather than
//! teach it every shape-changing operation, each such call becomes a *derived operand* of
//! the element-wise plan around it: the plan reads boxes of `sum(a, axis=0)` exactly as it
//! reads boxes of a stored array, and the operation computes those boxes from sub-plans of
//! its own arguments (which may contain further derived operands). So `sum(a, axis=0) + 1`
//! is a fused `x + 1` over a derived `x`, and only the operation itself decides how much of
//! `a` it must read for a box.
//!
//! Operations that need all of their input for any part of the result (reductions, matrix
//! products) are *eager*: their whole result is computed once per plan and cached when it is
//! small, so fetching it chunk by chunk does not re-read the input per chunk.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::pyscalar::Py;
use crate::{Plan, ReadOperand};

pub(crate) mod args;
mod generate;
mod layout;
mod matmul;
mod reduce;

pub(crate) use args::{Arg, Args};

/// Whole results of eager operations up to this size are cached for the plan's lifetime.
const EAGER_CACHE_MAX: usize = 256 << 20;

/// One non-element-wise operation with its argument sub-plans.
pub(crate) trait Structural: Send + Sync + fmt::Debug {
    /// The items of the box `start..stop` of the result (result coordinates), as
    /// native-endian bytes of the result dtype, in C order. `read` reads the external
    /// operands of the argument sub-plans (pass it to their `Plan::eval_box`). The box is
    /// inside the result and not empty.
    fn read_box(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>>;

    /// The argument sub-plans (their external operands are the expression's too).
    fn inputs(&self) -> Vec<&Plan>;

    /// Whether any part of the result needs (nearly) all of the input, so that computing
    /// the whole result once is cheaper than computing it box by box.
    fn eager(&self) -> bool {
        false
    }

    /// Whether the operation is one of the linear-algebra functions for which Caterva2
    /// stores the computed result instead of the expression.
    fn linalg(&self) -> bool {
        false
    }
}

/// What a builder returns: the operation with its result dtype and shape.
pub(crate) struct Built {
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    pub(crate) op: Box<dyn Structural>,
}

/// A derived operand: an operation, its result type, and its cached result if eager.
pub(crate) struct Derived {
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    op: Box<dyn Structural>,
    /// True when this operation or one in its arguments is linear algebra.
    pub(crate) forces_compute: bool,
    cache: Mutex<Option<Arc<Vec<u8>>>>,
}

impl fmt::Debug for Derived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Derived")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("op", &self.op)
            .finish()
    }
}

impl Derived {
    pub(crate) fn new(built: Built, args_force: bool) -> Derived {
        Derived {
            forces_compute: args_force || built.op.linalg(),
            dtype: built.dtype,
            shape: built.shape,
            op: built.op,
            cache: Mutex::new(None),
        }
    }

    /// The argument sub-plans of the operation.
    pub(crate) fn inputs(&self) -> Vec<&Plan> {
        self.op.inputs()
    }

    pub(crate) fn read_box(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        if start.len() != self.shape.len()
            || stop.len() != self.shape.len()
            || start
                .iter()
                .zip(stop)
                .zip(&self.shape)
                .any(|((a, b), n)| a > b || b > n)
        {
            return Err(Error::Internal(format!(
                "box {start:?}..{stop:?} outside a derived result of shape {:?}",
                self.shape
            )));
        }
        if start.iter().zip(stop).any(|(a, b)| a == b) {
            return Ok(Vec::new());
        }
        let itemsize = self.dtype.itemsize();
        let whole = self.shape.iter().product::<usize>() * itemsize;
        if !self.op.eager() || whole > EAGER_CACHE_MAX {
            return self.op.read_box(start, stop, read);
        }
        let full = {
            let mut cache = self
                .cache
                .lock()
                .map_err(|_| Error::Internal("poisoned result cache".into()))?;
            match &*cache {
                Some(full) => full.clone(),
                None => {
                    let zeros = vec![0; self.shape.len()];
                    let full = Arc::new(self.op.read_box(&zeros, &self.shape, read)?);
                    *cache = Some(full.clone());
                    full
                }
            }
        };
        Ok(extract_box(&full, &self.shape, itemsize, start, stop))
    }
}

/// The items of the box `start..stop` of a C-order array of `shape`.
pub(crate) fn extract_box(
    data: &[u8],
    shape: &[usize],
    itemsize: usize,
    start: &[usize],
    stop: &[usize],
) -> Vec<u8> {
    let nd = shape.len();
    if nd == 0 {
        return data[..itemsize].to_vec();
    }
    let count: usize = start.iter().zip(stop).map(|(a, b)| b - a).product();
    let mut out = Vec::with_capacity(count * itemsize);
    if count == 0 {
        return out;
    }
    let mut strides = vec![itemsize; nd];
    for d in (0..nd - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let row = (stop[nd - 1] - start[nd - 1]) * itemsize;
    let mut idx = start.to_vec();
    loop {
        let offset: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.extend_from_slice(&data[offset..offset + row]);
        // The next row: odometer over all dimensions but the last.
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < stop[d] {
                break;
            }
            idx[d] = start[d];
        }
    }
}

/// Builds the operation `name` (a parser `Apply` name that is not a cast) from its
/// arguments. Unknown names get the element-wise function table's error.
pub(crate) fn build(name: &str, args: Args) -> Result<Built> {
    if REDUCTIONS.contains(&name) {
        reduce::build(name, args)
    } else if CONSTRUCTORS.contains(&name) {
        generate::build(name, args)
    } else if LAYOUT.contains(&name) {
        layout::build(name, args)
    } else if PRODUCTS.contains(&name) {
        matmul::build(name, args)
    } else {
        match crate::funcs::Func::lookup(name) {
            Ok(_) => Err(Error::Type(format!(
                "{name}() takes no keyword arguments here"
            ))),
            Err(e) => Err(e),
        }
    }
}

const REDUCTIONS: &[&str] = &[
    "sum",
    "prod",
    "mean",
    "std",
    "var",
    "min",
    "max",
    "any",
    "all",
    "count_nonzero",
    "argmax",
    "argmin",
    "cumulative_sum",
    "cumulative_prod",
    "cumsum",
    "cumprod",
];
const CONSTRUCTORS: &[&str] = &[
    "linspace",
    "arange",
    "zeros",
    "ones",
    "full",
    "empty",
    "nans",
    "eye",
    "zeros_like",
    "ones_like",
    "full_like",
    "empty_like",
];
const LAYOUT: &[&str] = &[
    ".slice",
    ".T",
    ".mT",
    "transpose",
    "permute_dims",
    "matrix_transpose",
    "expand_dims",
    "squeeze",
    "concat",
    "concatenate",
    "stack",
    "broadcast_to",
];
const PRODUCTS: &[&str] = &["matmul", "tensordot", "vecdot", "outer", "diagonal"];

/// Whether `name` is an operation of this module (or a cast or method the type checker
/// resolves), so that the parser can leave it to the type checker.
pub(crate) fn is_known(name: &str) -> bool {
    [REDUCTIONS, CONSTRUCTORS, LAYOUT, PRODUCTS]
        .iter()
        .any(|names| names.contains(&name))
        || ["astype", "real", "imag", "conj", "where", "round", "clip"].contains(&name)
        || (name.len() > 3 && crate::DType::from_numpy(name).is_some())
}

/// A Python scalar as `f64` (bools and ints included), for constructor parameters.
pub(crate) fn py_f64(p: Py) -> Option<f64> {
    match p {
        Py::Bool(b) => Some(f64::from(u8::from(b))),
        Py::Int(i) => Some(i as f64),
        Py::Float(f) => Some(f),
        Py::Complex(..) => None,
    }
}

impl Derived {
    /// See [`Plan::keeps_whole_results`].
    pub(crate) fn keeps_whole_results(&self) -> bool {
        self.op.eager() || self.op.inputs().iter().any(|p| p.keeps_whole_results())
    }

    /// The external operand names of the operation's argument sub-plans.
    pub(crate) fn collect_names<'a>(&'a self, names: &mut Vec<&'a str>) {
        for plan in self.op.inputs() {
            for name in plan.operand_names() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
}
