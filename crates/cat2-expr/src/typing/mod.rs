//! Type checking: from the parsed tree to a typed plan, with NumPy's rules.
//!
//! * Python literals are "weak" (NEP 50): a literal takes the dtype of the arrays it meets
//!   (`uint16 + 1` is `uint16`; `int8 + 2.5` is `float64`; an out-of-range integer literal
//!   is an `OverflowError`, except in comparisons, which NumPy 2 answers exactly).
//! * Each ufunc picks its inner loop like NumPy: the first loop of its list that every input
//!   casts to safely (`sqrt(int8)` is `float16`, `sqrt(int16)` is `float32`,
//!   `floor_divide(bool, bool)` is `int8`), with NumPy's special cases (`true_divide` of
//!   integers is `float64`; `-bool` and `bool - bool` are errors).
//! * Casts to the loop dtype are explicit nodes, so the evaluator only runs same-type
//!   kernels; subtrees without operands are folded into constants here.

use std::collections::HashMap;
use std::sync::Arc;

use crate::col::Col;
use crate::dtype::{can_cast, promote, DType, Kind, LOOP_ORDER};
use crate::error::{no_loop, Error, Result};
use crate::eval;
use crate::funcs::Func;
use crate::kernels::{BOp, UOp};
use crate::parser::Ast;
use crate::pyscalar::{self, Py};
use crate::shape::broadcast;
use crate::structural::{self, Arg, Args, Derived};
use crate::Plan;

mod rules;
use rules::{apply, fast_scalar_power, fold_python};
use DType::{Bool, C128, C64, F16, F32, F64, I16, I32, I64, I8, U16, U32, U64, U8};

/// A typed plan node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    pub(crate) kind: NodeKind,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    /// An operand, by index in the plan's operand list.
    Operand(usize),
    /// A constant (a one-value column of the node's dtype).
    Const(Col),
    /// The child converted to the node's dtype.
    Cast(Box<Node>),
    Unary(UOp, Box<Node>),
    Binary(BOp, Box<Node>, Box<Node>),
    /// `where(cond, x, y)`; `cond` is bool and `x`, `y` have the node's dtype.
    Where(Box<Node>, Box<Node>, Box<Node>),
}

/// A value during type checking: a Python literal, or a typed node.
pub(super) enum Val {
    Weak(Py),
    Strong(Node),
}

/// One operand the plan reads: an external one (read through the caller), or a derived one
/// (a non-element-wise operation computed from sub-plans; see `structural`).
#[derive(Debug, Clone)]
pub(crate) struct Operand {
    pub(crate) name: String,
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    pub(crate) derived: Option<Arc<Derived>>,
}

pub(crate) struct Checker<'a> {
    known: &'a HashMap<String, (DType, Vec<usize>)>,
    pub(crate) operands: Vec<Operand>,
}

pub(super) const ALL: &[DType] = &LOOP_ORDER;
pub(super) const NO_BOOL: &[DType] = &[
    I8, U8, I16, U16, I32, U32, I64, U64, F16, F32, F64, C64, C128,
];
pub(super) const INTS: &[DType] = &[I8, U8, I16, U16, I32, U32, I64, U64];
pub(super) const BOOL_INTS: &[DType] = &[Bool, I8, U8, I16, U16, I32, U32, I64, U64];
pub(super) const REAL_NO_BOOL: &[DType] = &[I8, U8, I16, U16, I32, U32, I64, U64, F16, F32, F64];
pub(super) const REAL: &[DType] = &[Bool, I8, U8, I16, U16, I32, U32, I64, U64, F16, F32, F64];
pub(super) const FLOATS: &[DType] = &[F16, F32, F64];
pub(super) const INEXACT: &[DType] = &[F16, F32, F64, C64, C128];

pub(super) fn node(dtype: DType, shape: Vec<usize>, kind: NodeKind) -> Node {
    Node { dtype, shape, kind }
}

pub(super) fn is_const(n: &Node) -> bool {
    matches!(n.kind, NodeKind::Const(_))
}

/// Folds a node whose children are all constants into a constant.
pub(super) fn fold(n: Node) -> Result<Node> {
    let children_const = match &n.kind {
        NodeKind::Operand(_) | NodeKind::Const(_) => return Ok(n),
        NodeKind::Cast(a) | NodeKind::Unary(_, a) => is_const(a),
        NodeKind::Binary(_, a, b) => is_const(a) && is_const(b),
        NodeKind::Where(c, a, b) => is_const(c) && is_const(a) && is_const(b),
    };
    if !children_const {
        return Ok(n);
    }
    let col = eval::eval_const(&n)?;
    Ok(node(n.dtype, n.shape, NodeKind::Const(col)))
}

pub(crate) fn cast(n: Node, to: DType) -> Result<Node> {
    if n.dtype == to {
        return Ok(n);
    }
    let shape = n.shape.clone();
    fold(node(to, shape, NodeKind::Cast(Box::new(n))))
}

pub(super) fn unary(op: UOp, a: Node, dtype: DType) -> Result<Node> {
    let shape = a.shape.clone();
    fold(node(dtype, shape, NodeKind::Unary(op, Box::new(a))))
}

pub(super) fn binary(op: BOp, a: Node, b: Node, dtype: DType) -> Result<Node> {
    let shape = broadcast(&[&a.shape, &b.shape])?;
    fold(node(
        dtype,
        shape,
        NodeKind::Binary(op, Box::new(a), Box::new(b)),
    ))
}

/// The first loop dtype every input casts to safely.
pub(super) fn find_loop(inputs: &[DType], loops: &[DType]) -> Option<DType> {
    loops
        .iter()
        .copied()
        .find(|&l| inputs.iter().all(|&d| can_cast(d, l)))
}

/// The dtype NEP 50 gives a Python scalar next to arrays of (promoted) dtype `strong`.
pub(crate) fn weak_dtype(p: &Py, strong: Option<DType>) -> DType {
    use DType::*;
    match (p, strong) {
        (Py::Bool(_), None) => Bool,
        (Py::Int(i), None) => {
            if i64::try_from(*i).is_ok() || u64::try_from(*i).is_err() {
                I64
            } else {
                U64
            }
        }
        (Py::Float(_), None) => F64,
        (Py::Complex(..), None) => C128,
        (Py::Bool(_), Some(s)) => s,
        (Py::Int(_), Some(Bool)) => I64,
        (Py::Int(_), Some(s)) => s,
        (Py::Float(_), Some(s)) => match s.kind() {
            Kind::Bool | Kind::Int => F64,
            _ => s,
        },
        (Py::Complex(..), Some(s)) => match s {
            F16 | F32 | C64 => C64,
            _ => C128,
        },
    }
}

/// The promoted dtype of the typed (non-literal) values, if any.
pub(super) fn strong_dtype<'v>(vals: impl IntoIterator<Item = &'v Val>) -> Option<DType> {
    vals.into_iter()
        .filter_map(|v| match v {
            Val::Strong(n) => Some(n.dtype),
            Val::Weak(_) => None,
        })
        .reduce(promote)
}

pub(crate) fn const_node(p: Py, dtype: DType) -> Result<Node> {
    Ok(node(
        dtype,
        Vec::new(),
        NodeKind::Const(Col::from_py(p, dtype)?),
    ))
}

/// Turns every value into a node, giving literals their NEP 50 dtype.
pub(super) fn resolve(vals: Vec<Val>) -> Result<Vec<Node>> {
    let strong = strong_dtype(&vals);
    vals.into_iter()
        .map(|v| match v {
            Val::Strong(n) => Ok(n),
            Val::Weak(p) => const_node(p, weak_dtype(&p, strong)),
        })
        .collect()
}

/// Picks a ufunc loop and converts the arguments to it. `choose` sees the NEP 50 dtypes of
/// the arguments; Python literals are then converted straight to the loop dtype, with the
/// range check done there, as NumPy does (`uint8 / 300` is fine, `uint8 + 300` is not).
pub(super) fn loop_args(
    vals: Vec<Val>,
    choose: impl Fn(&[DType]) -> Result<DType>,
) -> Result<(DType, Vec<Node>)> {
    let strong = strong_dtype(&vals);
    let dtypes: Vec<DType> = vals
        .iter()
        .map(|v| match v {
            Val::Strong(n) => n.dtype,
            Val::Weak(p) => weak_dtype(p, strong),
        })
        .collect();
    let l = choose(&dtypes)?;
    let nodes = vals
        .into_iter()
        .map(|v| match v {
            Val::Strong(n) => cast(n, l),
            Val::Weak(p) => const_node(p, l),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((l, nodes))
}

impl<'a> Checker<'a> {
    pub(crate) fn new(known: &'a HashMap<String, (DType, Vec<usize>)>) -> Self {
        Checker {
            known,
            operands: Vec::new(),
        }
    }

    /// Types a whole expression.
    pub(crate) fn check_root(&mut self, ast: &Ast) -> Result<Node> {
        match self.check(ast)? {
            Val::Strong(n) => Ok(n),
            Val::Weak(p) => const_node(p, weak_dtype(&p, None)),
        }
    }

    fn check(&mut self, ast: &Ast) -> Result<Val> {
        match ast {
            Ast::Lit(p) => Ok(Val::Weak(*p)),
            Ast::Name(name) => {
                let Some((dtype, shape)) = self.known.get(name) else {
                    return Err(Error::UnknownName(name.clone()));
                };
                let idx = match self.operands.iter().position(|o| &o.name == name) {
                    Some(i) => i,
                    None => {
                        self.operands.push(Operand {
                            name: name.clone(),
                            dtype: *dtype,
                            shape: shape.clone(),
                            derived: None,
                        });
                        self.operands.len() - 1
                    }
                };
                Ok(Val::Strong(node(
                    *dtype,
                    shape.clone(),
                    NodeKind::Operand(idx),
                )))
            }
            Ast::Call { func, args, op } => {
                let vals = args
                    .iter()
                    .map(|a| self.check(a))
                    .collect::<Result<Vec<_>>>()?;
                if *op && vals.iter().all(|v| matches!(v, Val::Weak(_))) {
                    return fold_python(*func, &vals).map(Val::Weak);
                }
                if *op && *func == Func::Pow {
                    if let Some(shortcut) = fast_scalar_power(&vals) {
                        let base = vals.into_iter().next();
                        return apply(shortcut, base.into_iter().collect()).map(Val::Strong);
                    }
                }
                // `np.real(x)`/`np.imag(x)` return `x.real`/`x.imag`: a Python scalar for a
                // Python scalar.
                if let (Func::Real | Func::Imag, [Val::Weak(p)]) = (func, vals.as_slice()) {
                    return Ok(Val::Weak(pyscalar::part(*func == Func::Imag, *p)));
                }
                apply(*func, vals).map(Val::Strong)
            }
            Ast::Apply { name, args, kwargs } => self.apply_call(name, args, kwargs),
            Ast::Str(_) | Ast::NoneLit | Ast::Ellipsis | Ast::Seq(_) | Ast::Slice(_) => {
                Err(Error::Type(
                    "tuples, lists, strings, slices and None are only function arguments".into(),
                ))
            }
        }
    }

    /// A call the parser did not resolve to an element-wise function: a cast, an
    /// element-wise function with keyword arguments, or a structural operation.
    #[inline(never)]
    fn apply_call(&mut self, name: &str, args: &[Ast], kwargs: &[(String, Ast)]) -> Result<Val> {
        let elementwise = |func: Func, params: &[&str]| -> Result<Ast> {
            let mut bound: Vec<Option<Ast>> = args.iter().cloned().map(Some).collect();
            for (key, value) in kwargs {
                let Some(i) = params.iter().position(|p| p == key) else {
                    return Err(Error::Type(format!(
                        "{name}() got an unexpected keyword argument '{key}'"
                    )));
                };
                if bound.len() <= i {
                    bound.resize(i + 1, None);
                }
                if bound[i].replace(value.clone()).is_some() {
                    return Err(Error::Type(format!(
                        "{name}() got multiple values for argument '{key}'"
                    )));
                }
            }
            let args = bound
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::Type(format!("{name}() is missing a positional argument")))?;
            Ok(Ast::Call {
                func,
                args,
                op: false,
            })
        };
        match name {
            "real" => return self.check(&elementwise(Func::Real, &["x"])?),
            "imag" => return self.check(&elementwise(Func::Imag, &["x"])?),
            "conj" => return self.check(&elementwise(Func::Conj, &["x"])?),
            "where" => return self.check(&elementwise(Func::Where, &["condition", "x", "y"])?),
            "round" => return self.check(&elementwise(Func::Round, &["x", "decimals"])?),
            "clip" => return self.check(&elementwise(Func::Clip, &["x", "min", "max"])?),
            _ => {}
        }
        // Casts (`float32(x)`, `x.astype('float32')`) are NumPy's `astype`, unsafe casts
        // included; a Python scalar becomes a NumPy scalar of that dtype (range-checked).
        let cast_to = match (name, args, kwargs) {
            ("astype", [_, dt], []) => Some(dtype_name(dt)?),
            ("astype", [_], [(key, dt)]) if key == "dtype" => Some(dtype_name(dt)?),
            ("astype", ..) => return Err(Error::Type("astype() takes x and a dtype".into())),
            (_, [_], []) if name.len() > 3 => DType::from_numpy(name),
            _ => None,
        };
        if let Some(to) = cast_to {
            return match self.check(&args[0])? {
                Val::Weak(p) => const_node(p, to).map(Val::Strong),
                Val::Strong(n) => cast(n, to).map(Val::Strong),
            };
        }
        let mut force = false;
        let pos = args
            .iter()
            .map(|a| self.argument(a, &mut force))
            .collect::<Result<Vec<_>>>()?;
        let kw = kwargs
            .iter()
            .map(|(k, v)| {
                let arg = match (k.as_str(), v) {
                    ("dtype", Ast::Name(n)) => Arg::Str(n.clone()),
                    _ => self.argument(v, &mut force)?,
                };
                Ok((k.clone(), arg))
            })
            .collect::<Result<Vec<_>>>()?;
        let args = Args::new(name, pos, kw);
        let built = structural::build(name, args)?;
        let derived = Derived::new(built, force);
        let (dtype, shape) = (derived.dtype, derived.shape.clone());
        self.operands.push(Operand {
            name: format!("\u{1}{}", self.operands.len()),
            dtype,
            shape: shape.clone(),
            derived: Some(Arc::new(derived)),
        });
        Ok(Val::Strong(node(
            dtype,
            shape,
            NodeKind::Operand(self.operands.len() - 1),
        )))
    }

    /// One argument of a structural call.
    #[inline(never)]
    fn argument(&mut self, ast: &Ast, force: &mut bool) -> Result<Arg> {
        Ok(match ast {
            Ast::Str(s) => Arg::Str(s.clone()),
            Ast::NoneLit => Arg::None,
            Ast::Ellipsis => Arg::Ellipsis,
            Ast::Seq(items) => Arg::Seq(
                items
                    .iter()
                    .map(|i| self.argument(i, force))
                    .collect::<Result<_>>()?,
            ),
            Ast::Slice(parts) => {
                let mut out = [None; 3];
                for (o, part) in out.iter_mut().zip(parts.iter()) {
                    if let Some(part) = part {
                        *o = match self.argument(part, force)? {
                            Arg::None => None,
                            a @ Arg::Scalar(Py::Int(_) | Py::Bool(_)) => {
                                Some(a.int("slice index")?)
                            }
                            _ => {
                                return Err(Error::Type(
                                    "slice indices must be integers or None".into(),
                                ))
                            }
                        };
                    }
                }
                Arg::Slice(out)
            }
            other => {
                let mut sub = Checker::new(self.known);
                match sub.check(other)? {
                    Val::Weak(p) => Arg::Scalar(p),
                    Val::Strong(root) => {
                        let plan = Plan {
                            root,
                            operands: sub.operands,
                            checkpoint: Default::default(),
                        };
                        *force |= plan.forces_compute();
                        Arg::Array(plan)
                    }
                }
            }
        })
    }
}

/// A dtype argument: a string or a bare dtype name.
fn dtype_name(ast: &Ast) -> Result<DType> {
    match ast {
        Ast::Str(name) | Ast::Name(name) => DType::from_numpy(name)
            .ok_or_else(|| Error::Type(format!("data type '{name}' not understood"))),
        _ => Err(Error::Type("dtype must be a dtype name".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn ty(expr: &str, ops: &[(&str, DType, &[usize])]) -> Result<(DType, Vec<usize>)> {
        let known: HashMap<String, (DType, Vec<usize>)> = ops
            .iter()
            .map(|(n, d, s)| (n.to_string(), (*d, s.to_vec())))
            .collect();
        let ast = parse(expr)?;
        let n = Checker::new(&known).check_root(&ast)?;
        Ok((n.dtype, n.shape))
    }

    fn dt(expr: &str, ops: &[(&str, DType)]) -> DType {
        let ops: Vec<(&str, DType, &[usize])> =
            ops.iter().map(|(n, d)| (*n, *d, &[3][..])).collect();
        ty(expr, &ops).unwrap_or_else(|e| panic!("{expr}: {e}")).0
    }

    #[test]
    fn nep50_weak_literals() {
        assert_eq!(dt("a + 1", &[("a", U16)]), U16);
        assert_eq!(dt("a + 1.5", &[("a", U16)]), F64);
        assert_eq!(dt("a + 1.5", &[("a", F32)]), F32);
        assert_eq!(dt("a + True", &[("a", I8)]), I8);
        assert_eq!(dt("a + 1", &[("a", Bool)]), I64);
        assert_eq!(dt("a + True", &[("a", Bool)]), Bool);
        assert_eq!(dt("a * 1j", &[("a", F32)]), C64);
        assert_eq!(dt("2**3 + a", &[("a", U16)]), U16);
        assert_eq!(dt("a + sqrt(2)", &[("a", F32)]), F64);
        assert!(ty("a + 70000", &[("a", U16, &[3])]).is_err());
        assert!(ty("a + -1", &[("a", U8, &[3])]).is_err());
        assert_eq!(dt("a / 300", &[("a", U8)]), F64);
        assert_eq!(dt("arctan2(a, 300)", &[("a", U8)]), F16);
        assert_eq!(dt("a < 70000", &[("a", U16)]), Bool);
        assert_eq!(ty("1 + 2", &[]), Ok((I64, vec![])));
        assert_eq!(ty("1 / 2", &[]), Ok((F64, vec![])));
    }

    #[test]
    fn ufunc_loops_match_numpy() {
        assert_eq!(dt("a + b", &[("a", U16), ("b", I64)]), I64);
        assert_eq!(dt("a + b", &[("a", U64), ("b", I64)]), F64);
        assert_eq!(dt("a / b", &[("a", I8), ("b", I8)]), F64);
        assert_eq!(dt("a / b", &[("a", I8), ("b", F16)]), F16);
        assert_eq!(dt("sqrt(a)", &[("a", U8)]), F16);
        assert_eq!(dt("sqrt(a)", &[("a", I16)]), F32);
        assert_eq!(dt("sqrt(a)", &[("a", I32)]), F64);
        assert_eq!(dt("sqrt(a)", &[("a", Bool)]), F16);
        assert_eq!(dt("arctan2(a, b)", &[("a", I8), ("b", U8)]), F16);
        assert_eq!(dt("a // b", &[("a", Bool), ("b", Bool)]), I8);
        assert_eq!(dt("a ** b", &[("a", Bool), ("b", Bool)]), I8);
        assert_eq!(dt("square(a)", &[("a", Bool)]), I8);
        assert_eq!(dt("floor(a)", &[("a", I16)]), I16);
        assert_eq!(dt("round(a)", &[("a", Bool)]), F16);
        assert_eq!(dt("abs(a)", &[("a", C64)]), F32);
        assert_eq!(dt("a < b", &[("a", F32), ("b", I64)]), Bool);
        assert_eq!(dt("where(a < 5, a, 0)", &[("a", U16)]), U16);
        assert_eq!(dt("where(a < 5, a, 1.5)", &[("a", U16)]), F64);
        assert_eq!(
            dt("where(a, b, c)", &[("a", Bool), ("b", F32), ("c", I64)]),
            F64
        );
        assert_eq!(dt("clip(a, -1, 2)", &[("a", U16)]), U16);
        assert_eq!(dt("clip(a, 0.5, 2)", &[("a", U16)]), F64);
        assert_eq!(dt("clip(a, 0, b)", &[("a", I8), ("b", I64)]), I64);
        assert_eq!(dt("a ** 2", &[("a", Bool)]), I8);
        assert_eq!(dt("power(a, 2)", &[("a", Bool)]), I64);
        assert_eq!(dt("a ** 0.5", &[("a", U8)]), F64);
        assert_eq!(dt("a ** 0.5", &[("a", F16)]), F16);
        assert_eq!(dt("logical_or(2**40, a)", &[("a", U8)]), Bool);
        assert_eq!(dt("a & b", &[("a", Bool), ("b", Bool)]), Bool);
        assert_eq!(dt("a & 1", &[("a", Bool)]), I64);
        assert_eq!(dt("~a", &[("a", U8)]), U8);
        assert_eq!(dt("logical_and(a, b)", &[("a", F32), ("b", I8)]), Bool);
        assert_eq!(dt("isnan(a)", &[("a", I8)]), Bool);
    }

    #[test]
    fn numpy_type_errors() {
        let err = |e: &str, d: DType| ty(e, &[("a", d, &[3])]).expect_err(e);
        assert!(matches!(err("-a", Bool), Error::Type(_)));
        assert!(matches!(err("a - a", Bool), Error::Type(_)));
        assert!(matches!(err("~a", F32), Error::Type(_)));
        assert!(matches!(err("a << 1", F64), Error::Type(_)));
        assert!(matches!(err("a % 2", C64), Error::Type(_)));
        assert!(matches!(err("a ** -1", I64), Error::Value(_)));
        assert!(matches!(err("a + b", I64), Error::UnknownName(_)));
    }

    #[test]
    fn broadcasting_shapes() {
        let ops: &[(&str, DType, &[usize])] =
            &[("a", F64, &[4, 1, 3]), ("b", I32, &[5, 1]), ("c", U8, &[])];
        assert_eq!(ty("a + b * c", ops), Ok((F64, vec![4, 5, 3])));
        let bad: &[(&str, DType, &[usize])] = &[("a", F64, &[3]), ("b", F64, &[4])];
        assert_eq!(
            ty("a + b", bad).expect_err("mismatch").to_string(),
            "operands could not be broadcast together with shapes (3,) (4,) "
        );
    }
}
