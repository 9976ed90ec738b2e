//! A recursive-descent parser for the Python expression subset, with Python's precedence.
//!
//! Python's grammar is followed level by level (`not`, comparisons, `|`, `^`, `&`, shifts,
//! `+ -`, `* / // % @`, unary `+ - ~`, `**`), because NumPy users write Python: in
//! `a < b & c` the `&` binds tighter than `<`, and `-a**2` is `-(a**2)`. Constructs outside
//! the subset (attributes, subscripts, `and`/`or`, chained comparisons, keyword arguments)
//! are rejected with a message saying so rather than with a bare "invalid syntax".

use crate::error::{invalid_syntax, Error, Result};
use crate::funcs::Func;
use crate::lexer::{tokenize, Tok};
use crate::pyscalar::Py;

/// A parsed expression tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    /// A free name: an operand.
    Name(String),
    /// A Python literal.
    Lit(Py),
    /// A function call or an operator (`op` is true for operators, which Python folds
    /// itself when all their arguments are literals).
    Call {
        func: Func,
        args: Vec<Ast>,
        op: bool,
    },
}

/// Python refuses deeper nesting than this ("too many nested parentheses"). The same bound
/// on the tree's depth (long operator chains nest too) keeps the recursive type checker and
/// evaluator far from the stack limit, and the token bound keeps even rejected trees small.
const MAX_DEPTH: usize = 200;
const MAX_TOKENS: usize = 4000;

fn too_complex() -> Error {
    Error::Syntax("expression too long or too deeply nested".into())
}

/// The depth of a tree, without recursion.
fn depth(ast: &Ast) -> usize {
    let mut max = 0;
    let mut stack = vec![(ast, 1usize)];
    while let Some((a, d)) = stack.pop() {
        max = max.max(d);
        if let Ast::Call { args, .. } = a {
            stack.extend(args.iter().map(|x| (x, d + 1)));
        }
    }
    max
}

pub(crate) fn parse(text: &str) -> Result<Ast> {
    if text.trim().is_empty() {
        return Err(Error::Syntax("invalid syntax (<unknown>, line 0)".into()));
    }
    let toks = tokenize(text)?;
    if toks.len() > MAX_TOKENS {
        return Err(too_complex());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        open_parens: 0,
    };
    let ast = p.expr()?;
    match p.peek() {
        None if depth(&ast) > MAX_DEPTH => Err(too_complex()),
        None => Ok(ast),
        Some(Tok::Op(")")) if p.open_parens == 0 => {
            Err(Error::Syntax("unmatched ')' (<unknown>, line 1)".into()))
        }
        Some(tok) => Err(p.unexpected(tok.clone())),
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    open_parens: usize,
}

fn call(func: Func, args: Vec<Ast>) -> Ast {
    Ast::Call {
        func,
        args,
        op: true,
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_op(&self) -> Option<&'static str> {
        match self.peek() {
            Some(Tok::Op(op)) => Some(op),
            _ => None,
        }
    }

    fn peek_keyword(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Name(n)) => Some(n.as_str()),
            _ => None,
        }
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// The error for a token that cannot continue the expression.
    fn unexpected(&self, tok: Tok) -> Error {
        match tok {
            Tok::Name(n) if n == "and" || n == "or" => Error::Unsupported(
                "'and' and 'or' are not supported on arrays; use '&' and '|'".into(),
            ),
            Tok::Name(n) if n == "if" => {
                Error::Unsupported("conditional expressions are not supported; use where()".into())
            }
            Tok::Name(n) if n == "in" || n == "is" => {
                Error::Unsupported(format!("the '{n}' operator is not supported"))
            }
            Tok::Op(")") if self.open_parens == 0 => {
                Error::Syntax("unmatched ')' (<unknown>, line 1)".into())
            }
            _ => invalid_syntax(),
        }
    }

    fn end_of_input(&self) -> Error {
        if self.open_parens > 0 {
            Error::Syntax("'(' was never closed (<unknown>, line 1)".into())
        } else {
            invalid_syntax()
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::Syntax(
                "too many nested parentheses (<unknown>, line 1)".into(),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Ast> {
        self.enter()?;
        let r = self.not_test();
        self.depth -= 1;
        r
    }

    fn not_test(&mut self) -> Result<Ast> {
        if self.peek_keyword() == Some("not") {
            self.bump();
            self.enter()?;
            let arg = self.not_test();
            self.depth -= 1;
            return Ok(call(Func::LogicalNot, vec![arg?]));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Ast> {
        let lhs = self.binary(0)?;
        let Some(func) = self.peek_op().and_then(compare_op) else {
            return Ok(lhs);
        };
        self.bump();
        let rhs = self.binary(0)?;
        if self.peek_op().and_then(compare_op).is_some() {
            return Err(Error::Unsupported(
                "chained comparisons such as 'a < b < c' are not supported; use '(a < b) & (b < c)'"
                    .into(),
            ));
        }
        Ok(call(func, vec![lhs, rhs]))
    }

    /// Left-associative binary operators by precedence climbing (one frame per operator,
    /// not per precedence level, to keep deep nesting cheap).
    fn binary(&mut self, min_level: u8) -> Result<Ast> {
        let mut lhs = self.factor()?;
        while let Some((level, func)) = self.peek_op().and_then(binary_op) {
            if level < min_level {
                break;
            }
            if self.peek_op() == Some("@") {
                return Err(Error::Unsupported(
                    "matrix multiplication ('@') is not supported".into(),
                ));
            }
            self.bump();
            self.enter()?;
            let rhs = self.binary(level + 1);
            self.depth -= 1;
            lhs = call(func, vec![lhs, rhs?]);
        }
        Ok(lhs)
    }

    fn factor(&mut self) -> Result<Ast> {
        let func = match self.peek_op() {
            Some("-") => Func::Neg,
            Some("+") => Func::Pos,
            Some("~") => Func::Invert,
            _ => return self.power(),
        };
        self.bump();
        self.enter()?;
        let arg = self.factor();
        self.depth -= 1;
        Ok(call(func, vec![arg?]))
    }

    fn power(&mut self) -> Result<Ast> {
        let base = self.primary()?;
        if self.peek_op() != Some("**") {
            return Ok(base);
        }
        self.bump();
        self.enter()?;
        // The exponent is a `factor`: `a ** -b` and right associativity `a ** b ** c`.
        let exp = self.factor();
        self.depth -= 1;
        Ok(call(Func::Pow, vec![base, exp?]))
    }

    fn primary(&mut self) -> Result<Ast> {
        let atom = self.atom()?;
        match self.peek_op() {
            Some(".") => {
                self.bump();
                let what = match self.bump() {
                    Some(Tok::Name(n)) => format!("attribute and method access (.{n})"),
                    _ => return Err(invalid_syntax()),
                };
                Err(Error::Unsupported(format!("{what} is not supported")))
            }
            Some("[") => Err(Error::Unsupported(
                "indexing (a[...]) is not supported".into(),
            )),
            Some("(") => Err(Error::Type("only functions can be called".into())),
            _ => Ok(atom),
        }
    }

    fn atom(&mut self) -> Result<Ast> {
        let Some(tok) = self.bump() else {
            return Err(self.end_of_input());
        };
        match tok {
            Tok::Num(p) => Ok(Ast::Lit(p)),
            Tok::Str => Err(Error::Unsupported(
                "string literals are not supported".into(),
            )),
            Tok::Name(n) => match n.as_str() {
                "True" => Ok(Ast::Lit(Py::Bool(true))),
                "False" => Ok(Ast::Lit(Py::Bool(false))),
                "None" => Err(Error::Unsupported("None is not supported".into())),
                "lambda" => Err(Error::Unsupported("lambda is not supported".into())),
                "and" | "or" | "not" | "if" | "else" | "in" | "is" | "for" | "import" | "def"
                | "class" | "return" | "yield" | "await" | "del" | "pass" => Err(invalid_syntax()),
                _ if self.peek_op() == Some("(") => self.call(n),
                _ => Ok(Ast::Name(n)),
            },
            Tok::Op("(") => {
                self.open_parens += 1;
                let inner = self.expr()?;
                match self.bump() {
                    Some(Tok::Op(")")) => {
                        self.open_parens -= 1;
                        Ok(inner)
                    }
                    Some(Tok::Op(",")) => {
                        Err(Error::Unsupported("tuples are not supported".into()))
                    }
                    Some(other) => Err(self.unexpected(other)),
                    None => Err(self.end_of_input()),
                }
            }
            Tok::Op(")") if self.open_parens == 0 => {
                Err(Error::Syntax("unmatched ')' (<unknown>, line 1)".into()))
            }
            Tok::Op(_) => Err(invalid_syntax()),
        }
    }

    /// `name(args)`; the opening parenthesis is next.
    fn call(&mut self, name: String) -> Result<Ast> {
        self.bump();
        self.open_parens += 1;
        let mut args = Vec::new();
        loop {
            if self.peek_op() == Some(")") {
                self.bump();
                break;
            }
            if let (Some(Tok::Name(_)), Some(Tok::Op("="))) =
                (self.toks.get(self.pos), self.toks.get(self.pos + 1))
            {
                return Err(Error::Unsupported(format!(
                    "keyword arguments are not supported (in {name}())"
                )));
            }
            args.push(self.expr()?);
            match self.bump() {
                Some(Tok::Op(",")) => continue,
                Some(Tok::Op(")")) => break,
                Some(other) => return Err(self.unexpected(other)),
                None => return Err(self.end_of_input()),
            }
        }
        self.open_parens -= 1;
        let func = Func::lookup(&name)?;
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            let takes = if min == max {
                format!("{min}")
            } else {
                format!("from {min} to {max}")
            };
            let plural = if max == 1 { "argument" } else { "arguments" };
            return Err(Error::Type(format!(
                "{name}() takes {takes} positional {plural} but {} were given",
                args.len()
            )));
        }
        Ok(Ast::Call {
            func,
            args,
            op: false,
        })
    }
}

/// Precedence level (loosest first) and function of a binary operator.
fn binary_op(op: &str) -> Option<(u8, Func)> {
    Some(match op {
        "|" => (0, Func::BitOr),
        "^" => (1, Func::BitXor),
        "&" => (2, Func::BitAnd),
        "<<" => (3, Func::Shl),
        ">>" => (3, Func::Shr),
        "+" => (4, Func::Add),
        "-" => (4, Func::Sub),
        "*" => (5, Func::Mul),
        "/" => (5, Func::TrueDiv),
        "//" => (5, Func::FloorDiv),
        "%" => (5, Func::Mod),
        "@" => (5, Func::Mul),
        _ => return None,
    })
}

fn compare_op(op: &str) -> Option<Func> {
    Some(match op {
        "<" => Func::Lt,
        "<=" => Func::Le,
        ">" => Func::Gt,
        ">=" => Func::Ge,
        "==" => Func::Eq,
        "!=" => Func::Ne,
        _ => return None,
    })
}

impl Ast {
    /// Free names, in first-use order (with repeats).
    pub(crate) fn names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Ast::Name(n) => out.push(n),
            Ast::Lit(_) => {}
            Ast::Call { args, .. } => args.iter().for_each(|a| a.names(out)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fully parenthesised rendering, to check precedence.
    fn show(a: &Ast) -> String {
        match a {
            Ast::Name(n) => n.clone(),
            Ast::Lit(Py::Int(i)) => i.to_string(),
            Ast::Lit(Py::Float(f)) => format!("{f:?}"),
            Ast::Lit(Py::Bool(b)) => b.to_string(),
            Ast::Lit(Py::Complex(re, im)) => format!("({re}+{im}j)"),
            Ast::Call { func, args, .. } => {
                let args: Vec<String> = args.iter().map(show).collect();
                format!("{}({})", func.ufunc_name(), args.join(", "))
            }
        }
    }

    fn p(s: &str) -> String {
        show(&parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn python_precedence() {
        assert_eq!(p("-a**2"), "negative(power(a, 2))");
        assert_eq!(p("a**-b"), "power(a, negative(b))");
        assert_eq!(p("a**b**c"), "power(a, power(b, c))");
        assert_eq!(p("a < b & c"), "less(a, bitwise_and(b, c))");
        assert_eq!(
            p("a & b | c ^ d"),
            "bitwise_or(bitwise_and(a, b), bitwise_xor(c, d))"
        );
        assert_eq!(p("a + b * c"), "add(a, multiply(b, c))");
        assert_eq!(p("a - b - c"), "subtract(subtract(a, b), c)");
        assert_eq!(
            p("a / b // c % d"),
            "remainder(floor_divide(divide(a, b), c), d)"
        );
        assert_eq!(p("a << 1 + 2"), "left_shift(a, add(1, 2))");
        assert_eq!(p("~a == -b"), "equal(invert(a), negative(b))");
        assert_eq!(p("not a < b"), "logical_not(less(a, b))");
        assert_eq!(p("-2 ** 2"), "negative(power(2, 2))");
        assert_eq!(p("(o0 + 0)"), "add(o0, 0)");
        assert_eq!(
            p("where(a < 50, a + 50, b)"),
            "where(less(a, 50), add(a, 50), b)"
        );
        assert_eq!(p("sqrt(a) ** sin(b)"), "power(sqrt(a), sin(b))");
        assert_eq!(p("arctan2(a, b,)"), "arctan2(a, b)");
        assert_eq!(
            p("a ** 2.3 + b / 2.3"),
            "add(power(a, 2.3), divide(b, 2.3))"
        );
        assert_eq!(p("True + 1e-3"), "add(true, 0.001)");
    }

    #[test]
    fn python_syntax_errors() {
        let err = |s: &str| parse(s).expect_err(s).to_string();
        assert_eq!(err("a +"), "invalid syntax (<unknown>, line 1)");
        assert_eq!(err("a b"), "invalid syntax (<unknown>, line 1)");
        assert_eq!(err("(a"), "'(' was never closed (<unknown>, line 1)");
        assert_eq!(err("a)"), "unmatched ')' (<unknown>, line 1)");
        assert_eq!(err("a $ b"), "invalid syntax (<unknown>, line 1)");
        assert_eq!(err(""), "invalid syntax (<unknown>, line 0)");
        assert_eq!(err("1 +* a"), "invalid syntax (<unknown>, line 1)");
        assert_eq!(err("foo(a)"), "name 'foo' is not defined");
        assert_eq!(
            err("sqrt(a, a)"),
            "sqrt() takes 1 positional argument but 2 were given"
        );
        assert!(matches!(parse("a < b < c"), Err(Error::Unsupported(_))));
        assert!(matches!(parse("a.T"), Err(Error::Unsupported(_))));
        assert!(matches!(parse("a[0]"), Err(Error::Unsupported(_))));
        assert!(matches!(parse("a and b"), Err(Error::Unsupported(_))));
        assert!(matches!(parse("sum(a)"), Err(Error::Unsupported(_))));
        assert!(matches!(parse("float32(a)"), Err(Error::Unsupported(_))));
        assert!(matches!(
            parse("round(a, decimals=2)"),
            Err(Error::Unsupported(_))
        ));
        let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
        assert!(matches!(parse(&deep), Err(Error::Syntax(_))));
        let long = vec!["a"; 300].join(" + ");
        assert!(matches!(parse(&long), Err(Error::Syntax(_))));
        let huge = vec!["a"; 100_000].join(" + ");
        assert!(matches!(parse(&huge), Err(Error::Syntax(_))));
        assert!(parse(&vec!["a"; 150].join(" + ")).is_ok());
    }
}
