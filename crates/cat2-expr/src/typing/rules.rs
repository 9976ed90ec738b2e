//! The typing rules of each function: which NumPy loop it runs, and the special cases
//! NumPy adds on top of loop selection (comparisons with out-of-range Python integers,
//! `where`, `clip`, `round`, the `**` operator's shortcuts, bool errors).

use super::*;
use crate::kernels::int::negative_power_error;

fn bool_error(func: Func) -> Option<Error> {
    Some(Error::Type(match func {
        Func::Neg => "The numpy boolean negative, the `-` operator, is not supported, use the `~` \
                      operator or the logical_not function instead."
            .into(),
        Func::Sub => "numpy boolean subtract, the `-` operator, is not supported, use the \
                      bitwise_xor, the `^` operator, or the logical_xor function instead."
            .into(),
        Func::Pos | Func::Sign => format!(
            "ufunc '{}' did not contain a loop with signature matching types",
            func.ufunc_name()
        ),
        _ => return None,
    }))
}

/// Loop list and kernel of the plain ufuncs.
fn ufunc_loops(func: Func) -> Option<(&'static [DType], Option<BOp>, Option<UOp>)> {
    use Func::*;
    let b = |l, op| Some((l, Some(op), None));
    let u = |l, op| Some((l, None, Some(op)));
    match func {
        Add => b(ALL, BOp::Add),
        Sub => b(NO_BOOL, BOp::Sub),
        Mul => b(ALL, BOp::Mul),
        FloorDiv => b(REAL_NO_BOOL, BOp::FloorDiv),
        Mod => b(REAL_NO_BOOL, BOp::Mod),
        Pow => b(NO_BOOL, BOp::Pow),
        BitAnd => b(BOOL_INTS, BOp::And),
        BitOr => b(BOOL_INTS, BOp::Or),
        BitXor => b(BOOL_INTS, BOp::Xor),
        Shl => b(INTS, BOp::Shl),
        Shr => b(INTS, BOp::Shr),
        Maximum => b(ALL, BOp::Max),
        Minimum => b(ALL, BOp::Min),
        Arctan2 => b(FLOATS, BOp::Atan2),
        Hypot => b(FLOATS, BOp::Hypot),
        Copysign => b(FLOATS, BOp::Copysign),
        LogAddExp => b(FLOATS, BOp::LogAddExp),
        NextAfter => b(FLOATS, BOp::NextAfter),
        Neg => u(NO_BOOL, UOp::Neg),
        Invert => u(BOOL_INTS, UOp::Invert),
        Sign => u(NO_BOOL, UOp::Sign),
        Square => u(NO_BOOL, UOp::Square),
        Reciprocal => u(NO_BOOL, UOp::Reciprocal),
        Sqrt => u(INEXACT, UOp::Sqrt),
        Exp => u(INEXACT, UOp::Exp),
        Expm1 => u(INEXACT, UOp::Expm1),
        Log => u(INEXACT, UOp::Log),
        Log1p => u(INEXACT, UOp::Log1p),
        Log2 => u(INEXACT, UOp::Log2),
        Log10 => u(INEXACT, UOp::Log10),
        Sin => u(INEXACT, UOp::Sin),
        Cos => u(INEXACT, UOp::Cos),
        Tan => u(INEXACT, UOp::Tan),
        Arcsin => u(INEXACT, UOp::Asin),
        Arccos => u(INEXACT, UOp::Acos),
        Arctan => u(INEXACT, UOp::Atan),
        Sinh => u(INEXACT, UOp::Sinh),
        Cosh => u(INEXACT, UOp::Cosh),
        Tanh => u(INEXACT, UOp::Tanh),
        Arcsinh => u(INEXACT, UOp::Asinh),
        Arccosh => u(INEXACT, UOp::Acosh),
        Arctanh => u(INEXACT, UOp::Atanh),
        Floor => u(REAL, UOp::Floor),
        Ceil => u(REAL, UOp::Ceil),
        Trunc => u(REAL, UOp::Trunc),
        SignBit => u(FLOATS, UOp::SignBit),
        // `positive` is a copy: a loop without a kernel.
        Pos => Some((NO_BOOL, None, None)),
        _ => None,
    }
}

/// NumPy's `**` operator (not `power()`) on an array and a Python scalar exponent: `x ** 2`
/// is `square(x)` (so `bool ** 2` is `int8`), and `x ** 0.5` is `sqrt(x)` for float and
/// complex `x`.
/// Only arrays have this shortcut: a 0-d result of a ufunc is a NumPy scalar in NumPy, and
/// scalars compute `**` plainly (0-d operands are arrays).
pub(super) fn fast_scalar_power(vals: &[Val]) -> Option<Func> {
    let [Val::Strong(n), Val::Weak(e)] = vals else {
        return None;
    };
    if n.shape.is_empty() && !matches!(n.kind, NodeKind::Operand(_)) {
        return None;
    }
    match e {
        Py::Int(2) => Some(Func::Square),
        Py::Float(e) if *e == 0.5 && (n.dtype.is_float() || n.dtype.is_complex()) => {
            Some(Func::Sqrt)
        }
        _ => None,
    }
}

/// An operator between Python literals, evaluated by Python.
pub(super) fn fold_python(func: Func, vals: &[Val]) -> Result<Py> {
    let lit = |i: usize| match vals.get(i) {
        Some(Val::Weak(p)) => Ok(*p),
        _ => Err(Error::Internal("literal operator without literals".into())),
    };
    if vals.len() == 1 {
        pyscalar::unary(func, lit(0)?)
    } else {
        pyscalar::binary(func, lit(0)?, lit(1)?)
    }
}

/// Types one function or operator application.
pub(super) fn apply(func: Func, vals: Vec<Val>) -> Result<Node> {
    use Func::*;
    match func {
        Lt | Le | Gt | Ge | Eq | Ne => compare(func, vals),
        TrueDiv => {
            let (l, args) = loop_args(vals, |dtypes| {
                if dtypes.iter().all(|d| d.kind() <= Kind::Int) {
                    Ok(DType::F64)
                } else {
                    find_loop(dtypes, INEXACT).ok_or_else(|| no_loop(func.ufunc_name()))
                }
            })?;
            let [a, b] = two(args)?;
            binary(BOp::Div, a, b, l)
        }
        // The logical ufuncs run their bool loop: every input, literals included, is
        // converted to its truth value.
        LogicalAnd | LogicalOr | LogicalXor => {
            let [a, b] = two(loop_args(vals, |_| Ok(DType::Bool))?.1)?;
            let op = match func {
                LogicalAnd => BOp::And,
                LogicalOr => BOp::Or,
                _ => BOp::Xor,
            };
            binary(op, a, b, DType::Bool)
        }
        LogicalNot => {
            let [a] = one(loop_args(vals, |_| Ok(DType::Bool))?.1)?;
            unary(UOp::Invert, a, DType::Bool)
        }
        IsNan | IsInf | IsFinite => {
            let [a] = one(resolve(vals)?)?;
            let op = match func {
                IsNan => UOp::IsNan,
                IsInf => UOp::IsInf,
                _ => UOp::IsFinite,
            };
            unary(op, a, DType::Bool)
        }
        Abs | Real | Imag | Conj => {
            let [a] = one(resolve(vals)?)?;
            let op = match func {
                Abs => UOp::Abs,
                Real => UOp::Real,
                Imag => UOp::Imag,
                _ => UOp::Conj,
            };
            match (func, a.dtype.is_complex()) {
                (Abs | Real | Imag, true) => {
                    let out = a.dtype.real_part();
                    unary(op, a, out)
                }
                (Real, false) => Ok(a),
                // `conjugate` is a ufunc without a bool loop: bool becomes int8.
                (Conj, false) => {
                    let l = find_loop(&[a.dtype], NO_BOOL).ok_or_else(|| no_loop("conjugate"))?;
                    cast(a, l)
                }
                _ => {
                    let dt = a.dtype;
                    unary(op, a, dt)
                }
            }
        }
        Where => {
            let mut vals = vals.into_iter();
            let (Some(c), Some(x), Some(y)) = (vals.next(), vals.next(), vals.next()) else {
                return Err(Error::Internal("where() without 3 arguments".into()));
            };
            let [c] = one(loop_args(vec![c], |_| Ok(DType::Bool))?.1)?;
            // `where` converts a Python integer to an integer result dtype with a C cast
            // (wrapping) instead of NEP 50's range check.
            let wrap = |v: Val, strong: Option<DType>| match (v, strong) {
                (Val::Weak(Py::Int(i)), Some(dt)) if dt.is_integer() => {
                    Ok(Val::Strong(const_node(Py::Int(wrap_int(i, dt)), dt)?))
                }
                (v, _) => Ok(v),
            };
            let strong = strong_dtype([&x, &y]);
            let (x, y) = (wrap(x, strong)?, wrap(y, strong)?);
            let [x, y] = two(resolve(vec![x, y])?)?;
            let dt = promote(x.dtype, y.dtype);
            let (x, y) = (cast(x, dt)?, cast(y, dt)?);
            let shape = broadcast(&[&c.shape, &x.shape, &y.shape])?;
            let kind = NodeKind::Where(Box::new(c), Box::new(x), Box::new(y));
            fold(node(dt, shape, kind))
        }
        Clip => clip(vals),
        Round => round(vals),
        _ => {
            let (loops, bop, uop) = ufunc_loops(func)
                .ok_or_else(|| Error::Internal(format!("no rule for {func:?}")))?;
            let (l, mut args) = loop_args(vals, |dtypes| {
                if dtypes.iter().all(|&d| d == DType::Bool) {
                    if let Some(e) = bool_error(func) {
                        return Err(e);
                    }
                }
                find_loop(dtypes, loops).ok_or_else(|| no_loop(func.ufunc_name()))
            })?;
            match (bop, uop) {
                (Some(op), _) => {
                    let b = args.pop();
                    let a = args.pop();
                    let (Some(a), Some(b)) = (a, b) else {
                        return Err(Error::Internal("binary ufunc arity".into()));
                    };
                    if op == BOp::Pow && l.is_integer() && negative_const(&b) {
                        return Err(negative_power_error());
                    }
                    binary(op, a, b, l)
                }
                (None, Some(op)) => {
                    let [a] = one(args)?;
                    let out = if op == UOp::SignBit { DType::Bool } else { l };
                    unary(op, a, out)
                }
                (None, None) => {
                    let [a] = one(args)?;
                    Ok(a)
                }
            }
        }
    }
}

/// `i` converted to integer dtype `dt` as C does (keeping the low bits).
fn wrap_int(i: i128, dt: DType) -> i128 {
    let bits = 8 * dt.itemsize() as u32;
    let low = i.rem_euclid(1i128 << bits);
    if !dt.is_unsigned() && low >= 1i128 << (bits - 1) {
        low - (1i128 << bits)
    } else {
        low
    }
}

fn negative_const(n: &Node) -> bool {
    match &n.kind {
        NodeKind::Const(c) => c.first_c64().is_some_and(|z| z.re < 0.0),
        _ => false,
    }
}

fn one(v: Vec<Node>) -> Result<[Node; 1]> {
    v.try_into()
        .map_err(|_| Error::Internal("expected one argument".into()))
}

fn two(v: Vec<Node>) -> Result<[Node; 2]> {
    v.try_into()
        .map_err(|_| Error::Internal("expected two arguments".into()))
}

fn compare_op(func: Func) -> BOp {
    match func {
        Func::Lt => BOp::Lt,
        Func::Le => BOp::Le,
        Func::Gt => BOp::Gt,
        Func::Ge => BOp::Ge,
        Func::Eq => BOp::Eq,
        _ => BOp::Ne,
    }
}

/// Comparisons, with NumPy 2's exact answers for Python integers outside the array's range
/// and for `uint64` against `int64`.
fn compare(func: Func, vals: Vec<Val>) -> Result<Node> {
    let op = compare_op(func);
    if let [a, b] = vals.as_slice() {
        let (strong, lit, flipped) = match (a, b) {
            (Val::Strong(n), Val::Weak(Py::Int(i))) => (Some(n), *i, false),
            (Val::Weak(Py::Int(i)), Val::Strong(n)) => (Some(n), *i, true),
            _ => (None, 0, false),
        };
        if let Some(n) = strong {
            if let Some((lo, hi)) = n.dtype.int_range() {
                if lit < lo || lit > hi {
                    // Written as `array op literal`: the literal is above or below every value.
                    let above = lit > hi;
                    let op = if flipped { flip(op) } else { op };
                    let value = match op {
                        BOp::Lt | BOp::Le => above,
                        BOp::Gt | BOp::Ge => !above,
                        BOp::Eq => false,
                        _ => true,
                    };
                    return unary(UOp::Fill(value), n.clone(), DType::Bool);
                }
            }
        }
    }
    if let [Val::Strong(a), Val::Strong(b)] = vals.as_slice() {
        if matches!(
            (a.dtype, b.dtype),
            (DType::U64, DType::I64) | (DType::I64, DType::U64)
        ) {
            let [a, b] = two(resolve(vals)?)?;
            return binary(op, a, b, DType::Bool);
        }
    }
    let (_, args) = loop_args(vals, |dtypes| {
        find_loop(dtypes, ALL).ok_or_else(|| no_loop(func.ufunc_name()))
    })?;
    let [a, b] = two(args)?;
    binary(op, a, b, DType::Bool)
}

fn flip(op: BOp) -> BOp {
    match op {
        BOp::Lt => BOp::Gt,
        BOp::Le => BOp::Ge,
        BOp::Gt => BOp::Lt,
        BOp::Ge => BOp::Le,
        other => other,
    }
}

/// `np.clip(x, lo, hi)`: for an integer `x`, a Python integer bound at or beyond the
/// range of `x`'s dtype is dropped (NumPy's `_clip`); then `clip` is the ufunc
/// `minimum(maximum(x, lo), hi)` (or just one of the two).
fn clip(mut vals: Vec<Val>) -> Result<Node> {
    // `np.clip` turns a Python scalar `x` into an array (strongly typed); the bounds stay
    // weak.
    if let Some(Val::Weak(p)) = vals.first() {
        let p = *p;
        vals[0] = Val::Strong(const_node(p, weak_dtype(&p, None))?);
    }
    let mut it = vals.into_iter();
    let (Some(Val::Strong(x)), Some(lo), Some(hi)) = (it.next(), it.next(), it.next()) else {
        return Err(Error::Internal("clip() without 3 arguments".into()));
    };
    let range = x.dtype.int_range();
    let lo = match (lo, range) {
        (Val::Weak(Py::Int(i)), Some((min, _))) if i <= min => None,
        (v, _) => Some(v),
    };
    let hi = match (hi, range) {
        (Val::Weak(Py::Int(i)), Some((_, max))) if i >= max => None,
        (v, _) => Some(v),
    };
    match (lo, hi) {
        (None, None) => apply(Func::Pos, vec![Val::Strong(x)]),
        (Some(lo), None) => apply(Func::Maximum, vec![Val::Strong(x), lo]),
        (None, Some(hi)) => apply(Func::Minimum, vec![Val::Strong(x), hi]),
        (Some(lo), Some(hi)) => {
            let (l, args) = loop_args(vec![Val::Strong(x), lo, hi], |dtypes| {
                find_loop(dtypes, ALL).ok_or_else(|| no_loop("clip"))
            })?;
            let [x, lo, hi]: [Node; 3] = args
                .try_into()
                .map_err(|_| Error::Internal("clip() without 3 arguments".into()))?;
            let m = binary(BOp::ClipMax, x, lo, l)?;
            binary(BOp::ClipMin, m, hi, l)
        }
    }
}

/// `round(x[, decimals])`: NumPy's `around` (integers unchanged, else `rint`, scaled by a
/// power of ten for non-zero `decimals`).
fn round(mut vals: Vec<Val>) -> Result<Node> {
    let decimals = if vals.len() == 2 {
        match vals.pop() {
            Some(Val::Weak(Py::Int(d))) => d,
            Some(Val::Weak(Py::Bool(d))) => i128::from(d),
            _ => {
                return Err(Error::Type(
                    "round(): decimals must be an integer literal".into(),
                ))
            }
        }
    } else {
        0
    };
    let [x] = one(resolve(vals)?)?;
    if x.dtype.is_integer() {
        if decimals < 0 {
            return Err(Error::Unsupported(
                "round() of integers with negative decimals is not supported".into(),
            ));
        }
        return Ok(x);
    }
    let l = find_loop(&[x.dtype], INEXACT).ok_or_else(|| no_loop("rint"))?;
    let x = cast(x, l)?;
    if decimals == 0 {
        return unary(UOp::Rint, x, l);
    }
    let exp = i32::try_from(decimals.unsigned_abs())
        .map_err(|_| Error::Value("round(): decimals out of range".into()))?;
    let factor = const_node(
        Py::Float(10f64.powi(exp)),
        weak_dtype(&Py::Float(0.0), Some(l)),
    )?;
    let (first, then) = if decimals > 0 {
        (BOp::Mul, BOp::Div)
    } else {
        (BOp::Div, BOp::Mul)
    };
    let y = binary(first, x, factor.clone(), l)?;
    let y = unary(UOp::Rint, y, l)?;
    binary(then, y, factor, l)
}
