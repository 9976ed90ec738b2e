//! Python scalars and Python's own arithmetic on them.
//!
//! In python-blosc2 (as in NumPy code) an operator between two literals, such as `2**3` in
//! `2**3 + a`, is computed by Python before NumPy sees it, and the result is again a Python
//! scalar, which NEP 50 treats as "weak" (it takes the dtype of the array it meets). So
//! literal-only operator subtrees are folded here with Python's rules (bools are ints,
//! `/` is true division, `//` and `%` floor, `**` with a negative integer exponent gives a
//! float) and stay weak.

use crate::error::{Error, Result};
use crate::funcs::Func;
use crate::kernels::{complex, float::Float};
use num_complex::Complex64;

/// A Python `bool`, `int`, `float` or `complex` value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Py {
    Bool(bool),
    Int(i128),
    Float(f64),
    Complex(f64, f64),
}

fn overflow() -> Error {
    Error::Type("Python int too large to convert to C long".into())
}

fn zero_div(msg: &str) -> Error {
    Error::Value(msg.to_string())
}

impl Py {
    fn type_name(&self) -> &'static str {
        match self {
            Py::Bool(_) => "bool",
            Py::Int(_) => "int",
            Py::Float(_) => "float",
            Py::Complex(..) => "complex",
        }
    }

    fn as_int(&self) -> Option<i128> {
        match *self {
            Py::Bool(b) => Some(i128::from(b)),
            Py::Int(i) => Some(i),
            _ => None,
        }
    }

    fn as_float(&self) -> Option<f64> {
        match *self {
            Py::Bool(b) => Some(f64::from(u8::from(b))),
            Py::Int(i) => Some(i as f64),
            Py::Float(f) => Some(f),
            Py::Complex(..) => None,
        }
    }

    fn as_complex(&self) -> Complex64 {
        match *self {
            Py::Complex(re, im) => Complex64::new(re, im),
            other => Complex64::new(other.as_float().unwrap_or(0.0), 0.0),
        }
    }

    /// Python's truth value.
    pub(crate) fn truthy(&self) -> bool {
        match *self {
            Py::Bool(b) => b,
            Py::Int(i) => i != 0,
            Py::Float(f) => f != 0.0,
            Py::Complex(re, im) => re != 0.0 || im != 0.0,
        }
    }
}

fn complex_result(z: Complex64) -> Py {
    Py::Complex(z.re, z.im)
}

/// A unary operator applied by Python.
pub(crate) fn unary(func: Func, x: Py) -> Result<Py> {
    let bad = |op: &str| {
        Error::Type(format!(
            "bad operand type for unary {op}: '{}'",
            x.type_name()
        ))
    };
    Ok(match func {
        Func::LogicalNot => Py::Bool(!x.truthy()),
        Func::Neg => match x {
            Py::Float(f) => Py::Float(-f),
            Py::Complex(re, im) => Py::Complex(-re, -im),
            other => Py::Int(
                other
                    .as_int()
                    .unwrap_or(0)
                    .checked_neg()
                    .ok_or_else(overflow)?,
            ),
        },
        Func::Pos => match x {
            Py::Bool(b) => Py::Int(i128::from(b)),
            other => other,
        },
        Func::Invert => match x.as_int() {
            Some(i) => Py::Int(!i),
            None => return Err(bad("~")),
        },
        _ => {
            return Err(Error::Internal(format!(
                "{func:?} is not a Python operator"
            )))
        }
    })
}

/// Python's `x.real` (`imag` false) or `x.imag`.
pub(crate) fn part(imag: bool, x: Py) -> Py {
    match (x, imag) {
        (Py::Bool(b), false) => Py::Int(i128::from(b)),
        (Py::Bool(_) | Py::Int(_), true) => Py::Int(0),
        (Py::Int(i), false) => Py::Int(i),
        (Py::Float(f), false) => Py::Float(f),
        (Py::Float(_), true) => Py::Float(0.0),
        (Py::Complex(re, _), false) => Py::Float(re),
        (Py::Complex(_, im), true) => Py::Float(im),
    }
}

fn op_symbol(func: Func) -> &'static str {
    match func {
        Func::Add => "+",
        Func::Sub => "-",
        Func::Mul => "*",
        Func::TrueDiv => "/",
        Func::FloorDiv => "//",
        Func::Mod => "%",
        Func::Pow => "** or pow()",
        Func::BitAnd => "&",
        Func::BitOr => "|",
        Func::BitXor => "^",
        Func::Shl => "<<",
        Func::Shr => ">>",
        Func::Lt => "<",
        Func::Le => "<=",
        Func::Gt => ">",
        Func::Ge => ">=",
        _ => "?",
    }
}

/// A binary operator applied by Python.
pub(crate) fn binary(func: Func, a: Py, b: Py) -> Result<Py> {
    let unsupported = || {
        Error::Type(format!(
            "unsupported operand type(s) for {}: '{}' and '{}'",
            op_symbol(func),
            a.type_name(),
            b.type_name()
        ))
    };
    // Comparisons.
    if let Some(r) = compare(func, a, b) {
        return r;
    }
    match func {
        Func::BitAnd | Func::BitOr | Func::BitXor => {
            if let (Py::Bool(x), Py::Bool(y)) = (a, b) {
                return Ok(Py::Bool(match func {
                    Func::BitAnd => x & y,
                    Func::BitOr => x | y,
                    _ => x ^ y,
                }));
            }
            let (Some(x), Some(y)) = (a.as_int(), b.as_int()) else {
                return Err(unsupported());
            };
            return Ok(Py::Int(match func {
                Func::BitAnd => x & y,
                Func::BitOr => x | y,
                _ => x ^ y,
            }));
        }
        Func::Shl | Func::Shr => {
            let (Some(x), Some(y)) = (a.as_int(), b.as_int()) else {
                return Err(unsupported());
            };
            if y < 0 {
                return Err(Error::Value("negative shift count".into()));
            }
            return Ok(Py::Int(if func == Func::Shr {
                if y >= 127 {
                    if x < 0 {
                        -1
                    } else {
                        0
                    }
                } else {
                    x >> y
                }
            } else {
                if x == 0 {
                    return Ok(Py::Int(0));
                }
                let s = u32::try_from(y).map_err(|_| overflow())?;
                let r = x.checked_shl(s).ok_or_else(overflow)?;
                if r >> s != x {
                    return Err(overflow());
                }
                r
            }));
        }
        _ => {}
    }
    if matches!(a, Py::Complex(..)) || matches!(b, Py::Complex(..)) {
        return complex_op(func, a.as_complex(), b.as_complex()).map(complex_result);
    }
    if let (Some(x), Some(y)) = (a.as_int(), b.as_int()) {
        return int_op(func, x, y);
    }
    let (Some(x), Some(y)) = (a.as_float(), b.as_float()) else {
        return Err(unsupported());
    };
    float_op(func, x, y)
}

fn compare(func: Func, a: Py, b: Py) -> Option<Result<Py>> {
    let ord = matches!(func, Func::Lt | Func::Le | Func::Gt | Func::Ge);
    if !ord && !matches!(func, Func::Eq | Func::Ne) {
        return None;
    }
    let complex = matches!(a, Py::Complex(..)) || matches!(b, Py::Complex(..));
    let r = if complex {
        if ord {
            return Some(Err(Error::Type(format!(
                "'{}' not supported between instances of '{}' and '{}'",
                op_symbol(func),
                a.type_name(),
                b.type_name()
            ))));
        }
        a.as_complex() == b.as_complex()
    } else if let (Some(x), Some(y)) = (a.as_int(), b.as_int()) {
        return Some(Ok(Py::Bool(match func {
            Func::Lt => x < y,
            Func::Le => x <= y,
            Func::Gt => x > y,
            Func::Ge => x >= y,
            Func::Eq => x == y,
            _ => x != y,
        })));
    } else {
        let (x, y) = (
            a.as_float().unwrap_or(f64::NAN),
            b.as_float().unwrap_or(f64::NAN),
        );
        return Some(Ok(Py::Bool(match func {
            Func::Lt => x < y,
            Func::Le => x <= y,
            Func::Gt => x > y,
            Func::Ge => x >= y,
            Func::Eq => x == y,
            _ => x != y,
        })));
    };
    Some(Ok(Py::Bool(if func == Func::Eq { r } else { !r })))
}

fn int_op(func: Func, x: i128, y: i128) -> Result<Py> {
    let v = match func {
        Func::Add => x.checked_add(y),
        Func::Sub => x.checked_sub(y),
        Func::Mul => x.checked_mul(y),
        Func::TrueDiv => {
            if y == 0 {
                return Err(zero_div("division by zero"));
            }
            return Ok(Py::Float(x as f64 / y as f64));
        }
        Func::FloorDiv | Func::Mod => {
            if y == 0 {
                return Err(zero_div("integer division or modulo by zero"));
            }
            let (q, r) = (x.div_euclid(y), x.rem_euclid(y));
            // Python rounds toward negative infinity: the remainder takes the divisor's sign.
            let (q, r) = if r != 0 && y < 0 {
                (q - 1, r + y)
            } else {
                (q, r)
            };
            Some(if func == Func::FloorDiv { q } else { r })
        }
        Func::Pow => {
            if y < 0 {
                if x == 0 {
                    return Err(zero_div("0.0 cannot be raised to a negative power"));
                }
                return Ok(Py::Float((x as f64).powf(y as f64)));
            }
            let e = u32::try_from(y).map_err(|_| overflow())?;
            x.checked_pow(e)
        }
        _ => {
            return Err(Error::Internal(format!(
                "{func:?} is not an arithmetic operator"
            )))
        }
    };
    v.map(Py::Int).ok_or_else(overflow)
}

fn float_op(func: Func, x: f64, y: f64) -> Result<Py> {
    let v = match func {
        Func::Add => x + y,
        Func::Sub => x - y,
        Func::Mul => x * y,
        Func::TrueDiv => {
            if y == 0.0 {
                return Err(zero_div("float division by zero"));
            }
            x / y
        }
        Func::FloorDiv => {
            if y == 0.0 {
                return Err(zero_div("float floor division by zero"));
            }
            x.np_floordiv(y)
        }
        Func::Mod => {
            if y == 0.0 {
                return Err(zero_div("float modulo by zero"));
            }
            x.np_rem(y)
        }
        Func::Pow => {
            if x == 0.0 && y < 0.0 {
                return Err(zero_div("0.0 cannot be raised to a negative power"));
            }
            if x < 0.0 && y.is_finite() && y.fract() != 0.0 {
                // Python returns a complex number here.
                let z = complex::pow(Complex64::new(x, 0.0), Complex64::new(y, 0.0));
                return Ok(complex_result(z));
            }
            let r = x.powf(y);
            if r.is_infinite() && x.is_finite() && y.is_finite() {
                return Err(Error::Type("(34, 'Numerical result out of range')".into()));
            }
            r
        }
        _ => {
            return Err(Error::Internal(format!(
                "{func:?} is not an arithmetic operator"
            )))
        }
    };
    Ok(Py::Float(v))
}

fn complex_op(func: Func, x: Complex64, y: Complex64) -> Result<Complex64> {
    Ok(match func {
        Func::Add => x + y,
        Func::Sub => x - y,
        Func::Mul => complex::mul(x, y),
        Func::TrueDiv => {
            if y.re == 0.0 && y.im == 0.0 {
                return Err(zero_div("complex division by zero"));
            }
            complex::div(x, y)
        }
        Func::Pow => {
            if x.re == 0.0 && x.im == 0.0 && (y.im != 0.0 || y.re < 0.0) {
                return Err(zero_div("0.0 to a negative or complex power"));
            }
            complex::pow(x, y)
        }
        _ => {
            return Err(Error::Type(format!(
                "unsupported operand type(s) for {}: 'complex' and 'complex'",
                op_symbol(func)
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_arithmetic() {
        let b = |f, x, y| binary(f, x, y).expect("ok");
        assert_eq!(b(Func::FloorDiv, Py::Int(-7), Py::Int(2)), Py::Int(-4));
        assert_eq!(b(Func::Mod, Py::Int(-7), Py::Int(2)), Py::Int(1));
        assert_eq!(b(Func::Mod, Py::Int(7), Py::Int(-2)), Py::Int(-1));
        assert_eq!(b(Func::FloorDiv, Py::Int(7), Py::Int(-2)), Py::Int(-4));
        assert_eq!(b(Func::TrueDiv, Py::Int(1), Py::Int(2)), Py::Float(0.5));
        assert_eq!(b(Func::Pow, Py::Int(2), Py::Int(-1)), Py::Float(0.5));
        assert_eq!(b(Func::Pow, Py::Int(2), Py::Int(10)), Py::Int(1024));
        assert_eq!(b(Func::Add, Py::Bool(true), Py::Bool(true)), Py::Int(2));
        assert_eq!(
            b(Func::BitAnd, Py::Bool(true), Py::Bool(false)),
            Py::Bool(false)
        );
        assert_eq!(b(Func::Lt, Py::Int(1), Py::Float(1.5)), Py::Bool(true));
        assert_eq!(
            b(Func::Mod, Py::Float(-5.0), Py::Float(3.0)),
            Py::Float(1.0)
        );
        assert_eq!(
            unary(Func::Invert, Py::Bool(true)).expect("ok"),
            Py::Int(-2)
        );
        assert!(binary(Func::TrueDiv, Py::Int(1), Py::Int(0)).is_err());
        assert!(binary(Func::BitAnd, Py::Float(1.0), Py::Int(1)).is_err());
        assert!(binary(Func::Pow, Py::Int(10), Py::Int(40)).is_err());
        assert!(unary(Func::Invert, Py::Float(1.0)).is_err());
    }
}
