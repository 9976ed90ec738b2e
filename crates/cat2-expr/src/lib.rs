//! Evaluates python-blosc2 lazy expressions (Caterva2's `/api/upload_lazyarr`) on boxes of
//! data, with NumPy's semantics.
//!
//! [`Expr::parse`] reads the Python expression subset python-blosc2 writes (`"(o0 + 1) * 2"`,
//! `"where(a < 50, a + 50, b)"`, `"sqrt(a) ** sin(b)"`); [`Expr::plan`] types it against the
//! operands' dtypes and shapes, giving a [`Plan`] with the result dtype and shape; and
//! [`Plan::eval_box`] computes any box of the result, asking the caller for exactly the
//! operand boxes that broadcast onto it. The crate is pure computation: operands come in as
//! bytes through a callback, so storage, HTTP and Blosc2 stay in other crates.
//!
//! ```
//! use cat2_expr::{DType, Expr, Operands};
//!
//! let expr = Expr::parse("where(a < 2, a + 50, b * 0.5)")?;
//! let mut operands = Operands::new();
//! operands.insert("a".into(), (DType::U16, vec![4]));
//! operands.insert("b".into(), (DType::F32, vec![1])); // broadcasts
//! let plan = expr.plan(&operands)?;
//! assert_eq!((plan.dtype(), plan.shape()), (DType::F32, &[4][..]));
//!
//! let bytes = plan.eval_box(&[1], &[3], &mut |name, start, stop| {
//!     Ok(match name {
//!         "a" => [0u16, 1, 2, 3][start[0]..stop[0]].iter().flat_map(|v| v.to_ne_bytes()).collect(),
//!         _ => 10f32.to_ne_bytes().to_vec(), // asked for 0..1: the stretched dimension
//!     })
//! })?;
//! let values: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_ne_bytes(c.try_into().unwrap())).collect();
//! assert_eq!(values, [51.0, 5.0]);
//! # Ok::<(), cat2_expr::Error>(())
//! ```
//!
//! The design choice that matters most is to follow NumPy rather than numexpr: NEP 50
//! promotion with weak Python literals, NumPy's ufunc loop selection (`sqrt(uint8)` is
//! `float16`), its integer semantics (wrapping, `x // 0 == 0`) and its float formulas. The
//! reference server evaluates with python-blosc2, which mostly agrees; where it does not
//! (numexpr's quirks, such as refusing `~` on integers), NumPy is what users expect.
//!
//! The pipeline is `lexer` → `parser` (AST) → `typing` (typed plan with explicit casts,
//! constants folded) → `eval` (fused, chunked, parallel) → `kernels` (typed loops).
//! Operations that are not element-wise (`structural`: reductions, constructors, indexing,
//! joins, matrix products) become *derived operands* of the fused plan around them: the
//! plan reads their boxes like stored operands', and each computes a box from sub-plans of
//! its arguments, reading only the operand boxes it needs.
//!
//! # Language
//!
//! Numeric and string literals (Python syntax, `True`/`False`, `None`, imaginary `2j`),
//! tuples and lists as arguments, operand names, parentheses, unary `- + ~ not`, binary
//! `+ - * / // % ** @`, `& | ^ << >>`, one comparison `< <= > >= == !=` (not chained),
//! indexing (`a[2:30:3, ::-1, None, ..., 5]`, python-blosc2's `a.slice(key)`), `.T`, `.mT`,
//! keyword arguments, and calls of:
//!
//! * NumPy's element-wise functions under NumPy's and the array API's names: `where`, `clip`,
//!   `round` (with literal `decimals`), `abs`, `sign`, `square`, `reciprocal`, `negative`,
//!   `positive`, `sqrt`, `exp`, `expm1`, `log`, `log1p`, `log2`, `log10`, trigonometric and
//!   hyperbolic functions and their inverses (`arcsin`/`asin`, ...), `arctan2`, `hypot`,
//!   `copysign`, `logaddexp`, `nextafter`, `floor`, `ceil`, `trunc`, `maximum`, `minimum`,
//!   `power`/`pow`, `isnan`, `isinf`, `isfinite`, `signbit`, `logical_and/or/xor/not`,
//!   `real`, `imag`, `conj`, and the ufunc spellings of the operators (`add`, `less_equal`,
//!   `bitwise_and`, `left_shift`, ...);
//! * reductions (`axis`, `keepdims`): `sum`, `prod`, `mean`, `std`, `var`, `min`, `max`,
//!   `any`, `all`, `count_nonzero`, `argmax`, `argmin`, `cumulative_sum`, `cumulative_prod`;
//! * constructors: `linspace`, `arange` (python-blosc2's `shape=`), `zeros`, `ones`, `full`,
//!   `empty`, `nans`, `eye` and the `*_like` forms;
//! * layout and linear algebra: `transpose`/`permute_dims`, `matrix_transpose`,
//!   `expand_dims`, `squeeze`, `broadcast_to`, `concat`/`concatenate`, `stack`, `matmul`,
//!   `tensordot`, `vecdot`, `outer`, `diagonal`;
//! * casts: `float32(a)`, `a.astype('int16')` (NumPy's `astype`).
//!
//! Dtypes: bool, (u)int8–64, float16/32/64, complex64/128.
//!
//! Not supported (a clear [`Error::Unsupported`]): fancy indexing, strings as values,
//! `and`/`or`, chained comparisons, `reshape`, `round` of integers with negative `decimals`.
//!
//! Known differences from NumPy: transcendental functions use the platform libm where NumPy
//! may use its own SIMD code, so results can differ in the last bit or two; complex
//! inverse trigonometric functions (and `sin`/`cos`) do not reproduce C99's special values
//! for infinite or NaN arguments (finite arguments, including branch cuts with signed
//! zeros, match). Where python-blosc2's numexpr-based evaluation differs from NumPy
//! (`uint16 + 70000` wraps there but is an `OverflowError` in NumPy; `~` on integers,
//! integer `reciprocal`), this crate follows NumPy.

#![forbid(unsafe_code)]

mod checkpoint;
mod col;
mod dtype;
mod error;
mod eval;
mod f16;
mod funcs;
mod kernels;
mod lexer;
mod parser;
mod pyscalar;
mod shape;
mod structural;
mod typing;

use std::collections::HashMap;
use std::fmt;

use checkpoint::Checkpoint;
pub use checkpoint::Interrupt;
pub use dtype::{can_cast, promote, DType};
pub use error::{Error, Result};

/// The operand reader given to [`Plan::eval_box`]: `read(name, start, stop)` returns the
/// items of operand `name` in the box `start..stop` of its own coordinates.
pub type ReadOperand<'a> = dyn FnMut(&str, &[usize], &[usize]) -> Result<Vec<u8>> + 'a;

/// The operands an expression may use: name → (dtype, shape).
pub type Operands = HashMap<String, (DType, Vec<usize>)>;

/// A parsed expression.
#[derive(Clone)]
pub struct Expr {
    text: String,
    ast: parser::Ast,
}

impl Expr {
    /// Parses Python expression syntax (the subset python-blosc2 evaluates element-wise).
    pub fn parse(text: &str) -> Result<Expr> {
        let ast = parser::parse(text)?;
        Ok(Expr {
            text: text.to_string(),
            ast,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The free names (operands), sorted and deduplicated; function names are not included.
    pub fn operand_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.ast.names(&mut names);
        let mut names: Vec<String> = names.into_iter().map(str::to_string).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Types the expression against its operands.
    pub fn plan(&self, operands: &Operands) -> Result<Plan> {
        let mut checker = typing::Checker::new(operands);
        let root = checker.check_root(&self.ast)?;
        Ok(Plan {
            root,
            operands: checker.operands,
            checkpoint: Checkpoint::default(),
        })
    }

    /// Result dtype and shape given each operand's dtype and shape: NumPy promotion (NEP 50:
    /// Python literals are weak) and broadcasting.
    pub fn result_type(&self, operands: &Operands) -> Result<(DType, Vec<usize>)> {
        let plan = self.plan(operands)?;
        Ok((plan.dtype(), plan.shape().to_vec()))
    }

    /// Evaluates the box `start..stop` of the result (result coordinates); see
    /// [`Plan::eval_box`].
    pub fn eval_box(
        &self,
        operands: &Operands,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        self.plan(operands)?.eval_box(start, stop, read)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.text)
    }
}

/// A typed expression, ready to evaluate any number of boxes.
#[derive(Debug, Clone)]
pub struct Plan {
    root: typing::Node,
    operands: Vec<typing::Operand>,
    checkpoint: Checkpoint,
}

impl Plan {
    /// The result dtype.
    pub fn dtype(&self) -> DType {
        self.root.dtype
    }

    /// The result shape.
    pub fn shape(&self) -> &[usize] {
        &self.root.shape
    }

    /// Asks `hook` before every box this plan, or any sub-plan of its
    /// reductions, constructors and products, evaluates; an `Err` stops the
    /// evaluation with [`Error::Interrupted`]. Set once; later calls are
    /// ignored.
    pub fn interrupt_with(&self, hook: std::sync::Arc<Interrupt>) {
        self.checkpoint.set(hook.clone());
        for op in &self.operands {
            if let Some(d) = &op.derived {
                for input in d.inputs() {
                    input.interrupt_with(hook.clone());
                }
            }
        }
    }

    /// The external operands the expression reads, in first-use order (operands of
    /// reductions, slices and other non-element-wise calls included).
    pub fn operand_names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        self.collect_names(&mut names);
        names
    }

    fn collect_names<'a>(&'a self, names: &mut Vec<&'a str>) {
        for o in &self.operands {
            match &o.derived {
                None if !names.contains(&o.name.as_str()) => names.push(&o.name),
                None => {}
                Some(d) => d.collect_names(names),
            }
        }
    }

    /// Whether the expression uses a linear-algebra function (`concat`, `stack`, `matmul`,
    /// `transpose`, ...), for which Caterva2 stores the computed result rather than the
    /// expression.
    pub fn forces_compute(&self) -> bool {
        self.operands
            .iter()
            .any(|o| o.derived.as_ref().is_some_and(|d| d.forces_compute))
    }

    /// A plan that is just an operand (`a` in `sum(a)`, `concat([a, b])`) reads it straight
    /// through, without a copy by the element-wise evaluator; `None` for any other plan.
    fn read_bare_operand(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Option<Vec<u8>>> {
        let (typing::NodeKind::Operand(0), [op]) = (&self.root.kind, &self.operands[..]) else {
            return Ok(None);
        };
        if op.shape != self.root.shape
            || op.dtype != self.root.dtype
            || start.len() != op.shape.len()
            || start.iter().zip(stop).any(|(a, b)| a >= b)
        {
            return Ok(None);
        }
        let bytes = match &op.derived {
            Some(d) => d.read_box(start, stop, read)?,
            None => read(&op.name, start, stop)?,
        };
        let items: usize = start.iter().zip(stop).map(|(a, b)| b - a).product();
        let want = items * op.dtype.itemsize();
        if bytes.len() != want {
            return Err(Error::Read(format!(
                "operand {} gave {} bytes for box {start:?}..{stop:?}, expected {want}",
                op.name,
                bytes.len()
            )));
        }
        Ok(Some(bytes))
    }

    /// Whether the plan holds an operation whose whole result it computes once and keeps
    /// (reductions, matrix products): boxes of one plan then share that work, which
    /// separate plans for the same expression would each redo.
    pub fn keeps_whole_results(&self) -> bool {
        self.operands
            .iter()
            .any(|o| o.derived.as_ref().is_some_and(|d| d.keeps_whole_results()))
    }

    /// The operands of a purely element-wise plan whose every operand has the result's
    /// shape, in the order [`Plan::eval_flat`] takes their items; `None` for any other plan
    /// (broadcasting, reductions, slices...). Such a plan maps item `i` of the operands to
    /// item `i` of the result in any layout the operands and the result share.
    pub fn flat_operands(&self) -> Option<Vec<&str>> {
        let same = |o: &typing::Operand| o.derived.is_none() && o.shape == self.root.shape;
        if self.root.shape.is_empty() || !self.operands.iter().all(same) {
            return None;
        }
        Some(self.operands.iter().map(|o| o.name.as_str()).collect())
    }

    /// Evaluates a plan that has [`Plan::flat_operands`] over `inputs` (the operands' items
    /// in that order, native-endian, all in one layout), writing the result's items in that
    /// layout into `out` (whose length says how many items there are).
    pub fn eval_flat(&self, inputs: &[&[u8]], out: &mut [u8]) -> Result<()> {
        if self.flat_operands().is_none() {
            return Err(Error::Internal(
                "eval_flat on a plan that is not element-wise over same-shape operands".into(),
            ));
        }
        eval::eval_flat(&self.root, &self.operands, inputs, out)
    }

    /// A plan computing a Python scalar (a 0-d array of its NEP 50 default dtype).
    pub(crate) fn constant(p: pyscalar::Py) -> Result<Plan> {
        let dtype = typing::weak_dtype(&p, None);
        Ok(Plan {
            root: typing::const_node(p, dtype)?,
            operands: Vec::new(),
            checkpoint: Checkpoint::default(),
        })
    }

    /// Evaluates the box `start..stop` of the result (result coordinates) and returns its
    /// items as native-endian bytes of [`Plan::dtype`], in C order.
    ///
    /// `read(name, start, stop)` must return the items of operand `name` in the box
    /// `start..stop` of the operand's own coordinates (native-endian bytes of its dtype, C
    /// order). For element-wise expressions that box is the part of the operand that
    /// broadcasts onto the result box: the same ranges for matching dimensions, `0..1` for
    /// stretched size-1 dimensions; reductions, slices and joins ask for what they need.
    /// An empty box reads nothing.
    pub fn eval_box(
        &self,
        start: &[usize],
        stop: &[usize],
        read: &mut ReadOperand<'_>,
    ) -> Result<Vec<u8>> {
        self.checkpoint.check()?;
        if let Some(bytes) = self.read_bare_operand(start, stop, read)? {
            return Ok(bytes);
        }
        if self.operands.iter().all(|o| o.derived.is_none()) {
            return eval::eval_box(&self.root, &self.operands, start, stop, read);
        }
        let mut dispatch = |name: &str, a: &[usize], b: &[usize]| -> Result<Vec<u8>> {
            match self.operands.iter().find(|o| o.name == name) {
                Some(typing::Operand {
                    derived: Some(d), ..
                }) => d.read_box(a, b, read),
                _ => read(name, a, b),
            }
        };
        eval::eval_box(&self.root, &self.operands, start, stop, &mut dispatch)
    }
}
