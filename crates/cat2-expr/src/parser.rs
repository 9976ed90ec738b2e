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

/// Keyword arguments of a call, in the order written.
pub(crate) type Keywords = Vec<(String, Ast)>;

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
    /// A call that is not a plain element-wise one: reductions, constructors, linear
    /// algebra, casts, or any call with keyword arguments. Methods and indexing are
    /// rewritten to these too: `a.slice(k)` and `a[k]` to `.slice(a, k)`, `a.T` to `.T(a)`,
    /// `a.sum(axis=0)` to `sum(a, axis=0)`.
    Apply {
        name: String,
        args: Vec<Ast>,
        kwargs: Vec<(String, Ast)>,
    },
    /// A plain string literal (dtype names).
    Str(String),
    /// `None`.
    NoneLit,
    /// `...` in an index.
    Ellipsis,
    /// A tuple `(a, b)` or a list `[a, b]` (both are sequences to the functions taking them).
    Seq(Vec<Ast>),
    /// `start:stop:step` in an index, or `slice(start, stop, step)`.
    Slice(Box<[Option<Ast>; 3]>),
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
        a.for_each_child(|x| stack.push((x, d + 1)));
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
            let matmul = self.peek_op() == Some("@");
            self.bump();
            self.enter()?;
            let rhs = self.binary(level + 1);
            self.depth -= 1;
            lhs = if matmul {
                Ast::Apply {
                    name: "matmul".into(),
                    args: vec![lhs, rhs?],
                    kwargs: Vec::new(),
                }
            } else {
                call(func, vec![lhs, rhs?])
            };
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

    /// An atom followed by any number of `.name`, `.name(...)` and `[...]` trailers.
    fn primary(&mut self) -> Result<Ast> {
        let atom = self.atom()?;
        match self.peek_op() {
            Some("." | "[") => self.trailers(atom),
            Some("(") => Err(Error::Type("only functions can be called".into())),
            _ => Ok(atom),
        }
    }

    #[inline(never)]
    fn trailers(&mut self, mut value: Ast) -> Result<Ast> {
        loop {
            match self.peek_op() {
                Some(".") => {
                    self.bump();
                    let Some(Tok::Name(name)) = self.bump() else {
                        return Err(invalid_syntax());
                    };
                    value = if self.peek_op() == Some("(") {
                        let (mut args, kwargs) = self.arguments(&name)?;
                        args.insert(0, value);
                        method(name, args, kwargs)?
                    } else {
                        attribute(name, value)?
                    };
                }
                Some("[") => {
                    self.bump();
                    self.open_parens += 1;
                    let items = self.subscript()?;
                    self.open_parens -= 1;
                    value = Ast::Apply {
                        name: ".slice".into(),
                        args: vec![value, Ast::Seq(items)],
                        kwargs: Vec::new(),
                    };
                }
                Some("(") => return Err(Error::Type("only functions can be called".into())),
                _ => return Ok(value),
            }
        }
    }

    /// The items of `[...]` (the `[` is consumed; so is the closing `]`).
    fn subscript(&mut self) -> Result<Vec<Ast>> {
        let mut items = Vec::new();
        loop {
            if self.peek_op() == Some("]") {
                self.bump();
                return Ok(items);
            }
            items.push(self.subscript_item()?);
            match self.bump() {
                Some(Tok::Op(",")) => continue,
                Some(Tok::Op("]")) => return Ok(items),
                Some(other) => return Err(self.unexpected(other)),
                None => return Err(self.end_of_input()),
            }
        }
    }

    /// One index item: an expression, `...`, or `[start]:[stop][:[step]]`.
    fn subscript_item(&mut self) -> Result<Ast> {
        if self.peek_op() == Some(".")
            && self.toks.get(self.pos + 1) == Some(&Tok::Op("."))
            && self.toks.get(self.pos + 2) == Some(&Tok::Op("."))
        {
            self.pos += 3;
            return Ok(Ast::Ellipsis);
        }
        let ends = |p: &Parser| matches!(p.peek_op(), Some(":" | "," | "]"));
        let start = if ends(self) { None } else { Some(self.expr()?) };
        if self.peek_op() != Some(":") {
            return start.ok_or_else(invalid_syntax);
        }
        self.bump();
        let stop = if ends(self) { None } else { Some(self.expr()?) };
        let mut step = None;
        if self.peek_op() == Some(":") {
            self.bump();
            step = if ends(self) { None } else { Some(self.expr()?) };
        }
        Ok(Ast::Slice(Box::new([start, stop, step])))
    }

    fn atom(&mut self) -> Result<Ast> {
        let Some(tok) = self.bump() else {
            return Err(self.end_of_input());
        };
        match tok {
            Tok::Num(p) => Ok(Ast::Lit(p)),
            Tok::Str(Some(text)) => Ok(Ast::Str(text)),
            Tok::Str(None) => Err(Error::Unsupported(
                "only plain string literals (dtype names) are supported".into(),
            )),
            Tok::Name(n) => match n.as_str() {
                "True" => Ok(Ast::Lit(Py::Bool(true))),
                "False" => Ok(Ast::Lit(Py::Bool(false))),
                "None" => Ok(Ast::NoneLit),
                "lambda" => Err(Error::Unsupported("lambda is not supported".into())),
                "and" | "or" | "not" | "if" | "else" | "in" | "is" | "for" | "import" | "def"
                | "class" | "return" | "yield" | "await" | "del" | "pass" => Err(invalid_syntax()),
                _ if self.peek_op() == Some("(") => self.call(n),
                _ => Ok(Ast::Name(n)),
            },
            Tok::Op("(") => self.parenthesised(),
            Tok::Op("[") => self.list(),
            Tok::Op(")") if self.open_parens == 0 => {
                Err(Error::Syntax("unmatched ')' (<unknown>, line 1)".into()))
            }
            Tok::Op(_) => Err(invalid_syntax()),
        }
    }

    /// After `(`: a parenthesised expression or a tuple. Kept out of `atom` so that the
    /// recursion's stack frames stay small.
    #[inline(never)]
    fn parenthesised(&mut self) -> Result<Ast> {
        self.open_parens += 1;
        if self.peek_op() == Some(")") {
            self.bump();
            self.open_parens -= 1;
            return Ok(Ast::Seq(Vec::new()));
        }
        let first = self.expr()?;
        match self.bump() {
            Some(Tok::Op(")")) => {
                self.open_parens -= 1;
                Ok(first)
            }
            Some(Tok::Op(",")) => {
                let items = self.sequence(first, ")")?;
                self.open_parens -= 1;
                Ok(Ast::Seq(items))
            }
            Some(other) => Err(self.unexpected(other)),
            None => Err(self.end_of_input()),
        }
    }

    /// After `[`: a list.
    #[inline(never)]
    fn list(&mut self) -> Result<Ast> {
        self.open_parens += 1;
        if self.peek_op() == Some("]") {
            self.bump();
            self.open_parens -= 1;
            return Ok(Ast::Seq(Vec::new()));
        }
        let first = self.expr()?;
        let items = match self.bump() {
            Some(Tok::Op("]")) => vec![first],
            Some(Tok::Op(",")) => self.sequence(first, "]")?,
            Some(other) => return Err(self.unexpected(other)),
            None => return Err(self.end_of_input()),
        };
        self.open_parens -= 1;
        Ok(Ast::Seq(items))
    }

    /// The rest of a tuple or list after its first item and comma, up to `close`.
    fn sequence(&mut self, first: Ast, close: &str) -> Result<Vec<Ast>> {
        let mut items = vec![first];
        loop {
            if self.peek_op() == Some(close) {
                self.bump();
                return Ok(items);
            }
            items.push(self.expr()?);
            match self.bump() {
                Some(Tok::Op(",")) => continue,
                Some(Tok::Op(op)) if op == close => return Ok(items),
                Some(other) => return Err(self.unexpected(other)),
                None => return Err(self.end_of_input()),
            }
        }
    }

    /// `(args)` of a call: positional arguments, then keyword ones.
    #[inline(never)]
    fn arguments(&mut self, name: &str) -> Result<(Vec<Ast>, Keywords)> {
        self.bump();
        self.open_parens += 1;
        let mut args = Vec::new();
        let mut kwargs: Vec<(String, Ast)> = Vec::new();
        loop {
            if self.peek_op() == Some(")") {
                self.bump();
                break;
            }
            if let (Some(Tok::Name(key)), Some(Tok::Op("="))) =
                (self.toks.get(self.pos), self.toks.get(self.pos + 1))
            {
                let key = key.clone();
                if kwargs.iter().any(|(k, _)| *k == key) {
                    return Err(argument_error("keyword argument repeated: ", &key));
                }
                self.pos += 2;
                kwargs.push((key, self.expr()?));
            } else if !kwargs.is_empty() {
                return Err(argument_error(
                    "positional argument follows keyword argument in ",
                    name,
                ));
            } else {
                args.push(self.expr()?);
            }
            match self.bump() {
                Some(Tok::Op(",")) => continue,
                Some(Tok::Op(")")) => break,
                Some(other) => return Err(self.unexpected(other)),
                None => return Err(self.end_of_input()),
            }
        }
        self.open_parens -= 1;
        Ok((args, kwargs))
    }

    /// `name(args)`; the opening parenthesis is next.
    #[inline(never)]
    fn call(&mut self, name: String) -> Result<Ast> {
        let (args, kwargs) = self.arguments(&name)?;
        resolve_call(name, args, kwargs)
    }
}

/// A parsed call: an element-wise function (arity checked), `slice(...)`, or an `Apply`
/// for the type checker (structural operations, casts, keyword arguments).
#[inline(never)]
fn resolve_call(name: String, args: Vec<Ast>, kwargs: Keywords) -> Result<Ast> {
    if name == "slice" && kwargs.is_empty() {
        return slice_call(args);
    }
    let func = match Func::lookup(&name) {
        Ok(func) if kwargs.is_empty() => func,
        Ok(_) => return Ok(Ast::Apply { name, args, kwargs }),
        Err(_) if crate::structural::is_known(&name) => {
            return Ok(Ast::Apply { name, args, kwargs })
        }
        Err(e) => return Err(e),
    };
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

/// Python's `slice(stop)` / `slice(start, stop[, step])`.
fn slice_call(args: Vec<Ast>) -> Result<Ast> {
    if args.is_empty() || args.len() > 3 {
        return Err(Error::Type("slice expected 1 to 3 arguments".into()));
    }
    let mut parts: Vec<Option<Ast>> = args
        .into_iter()
        .map(|a| match a {
            Ast::NoneLit => None,
            a => Some(a),
        })
        .collect();
    if parts.len() == 1 {
        parts.insert(0, None);
    }
    parts.resize(3, None);
    let [start, stop, step]: [Option<Ast>; 3] = parts
        .try_into()
        .map_err(|_| Error::Internal("slice parts".into()))?;
    Ok(Ast::Slice(Box::new([start, stop, step])))
}

/// Python's syntax errors about call arguments (out of line: `arguments` is on the
/// recursion path, and formatting makes debug-build frames large).
#[cold]
#[inline(never)]
fn argument_error(what: &str, name: &str) -> Error {
    Error::Syntax(format!("{what}{name} (<unknown>, line 1)"))
}

/// The methods python-blosc2 writes or NumPy users reach for, as function calls.
const METHODS: &[&str] = &[
    "slice",
    "sum",
    "prod",
    "mean",
    "std",
    "var",
    "min",
    "max",
    "any",
    "all",
    "argmax",
    "argmin",
    "astype",
    "transpose",
    "reshape",
    "squeeze",
    "flatten",
    "copy",
    "conj",
    "where",
];

fn method(name: String, args: Vec<Ast>, kwargs: Keywords) -> Result<Ast> {
    if !METHODS.contains(&name.as_str()) {
        return Err(Error::Unsupported(format!("Invalid method name: {name}")));
    }
    let name = if name == "slice" {
        ".slice".into()
    } else {
        name
    };
    Ok(Ast::Apply { name, args, kwargs })
}

fn attribute(name: String, value: Ast) -> Result<Ast> {
    let name = match name.as_str() {
        "T" | "mT" => format!(".{name}"),
        "real" | "imag" => name,
        _ => {
            return Err(Error::Unsupported(format!(
                "attribute access (.{name}) is not supported"
            )))
        }
    };
    Ok(Ast::Apply {
        name,
        args: vec![value],
        kwargs: Vec::new(),
    })
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
            // A `dtype=` keyword may name a dtype without quotes (`dtype=float32`).
            Ast::Apply { args, kwargs, .. } => {
                args.iter().for_each(|a| a.names(out));
                for (key, value) in kwargs {
                    if key != "dtype" {
                        value.names(out);
                    }
                }
            }
            other => other.for_each_child(|a| a.names(out)),
        }
    }

    /// Calls `f` on each direct child.
    pub(crate) fn for_each_child<'a>(&'a self, mut f: impl FnMut(&'a Ast)) {
        match self {
            Ast::Name(_) | Ast::Lit(_) | Ast::Str(_) | Ast::NoneLit | Ast::Ellipsis => {}
            Ast::Call { args, .. } | Ast::Seq(args) => args.iter().for_each(f),
            Ast::Apply { args, kwargs, .. } => {
                args.iter().for_each(&mut f);
                kwargs.iter().for_each(|(_, v)| f(v));
            }
            Ast::Slice(parts) => parts.iter().flatten().for_each(f),
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
            Ast::Apply { name, args, kwargs } => {
                let mut parts: Vec<String> = args.iter().map(show).collect();
                parts.extend(kwargs.iter().map(|(k, v)| format!("{k}={}", show(v))));
                format!("{name}({})", parts.join(", "))
            }
            Ast::Str(t) => format!("{t:?}"),
            Ast::NoneLit => "None".into(),
            Ast::Ellipsis => "...".into(),
            Ast::Seq(items) => {
                let items: Vec<String> = items.iter().map(show).collect();
                format!("[{}]", items.join(", "))
            }
            Ast::Slice(parts) => {
                let parts: Vec<String> = parts
                    .iter()
                    .map(|p| p.as_ref().map(show).unwrap_or_default())
                    .collect();
                parts.join(":")
            }
        }
    }

    #[test]
    fn structural_syntax() {
        assert_eq!(p("sum(o0, axis=0) + 1"), "add(sum(o0, axis=0), 1)");
        assert_eq!(
            p("o0.slice((slice(None, 20, None),))"),
            ".slice(o0, [:20:])"
        );
        assert_eq!(p("o0[2:5, 1]"), ".slice(o0, [2:5:, 1])");
        assert_eq!(p("a[::-1][0]"), ".slice(.slice(a, [::negative(1)]), [0])");
        assert_eq!(p("a[...]"), ".slice(a, [...])");
        assert_eq!(p("a.T + 1"), "add(.T(a), 1)");
        assert_eq!(p("a.sum(axis=1)"), "sum(a, axis=1)");
        assert_eq!(p("a @ b"), "matmul(a, b)");
        assert_eq!(
            p("zeros((10, 10), dtype='float32')"),
            "zeros([10, 10], dtype=\"float32\")"
        );
        assert_eq!(p("concat([a, b], axis=0)"), "concat([a, b], axis=0)");
        assert_eq!(p("float32(a)"), "float32(a)");
        assert_eq!(p("()"), "[]");
        assert_eq!(p("(1,)"), "[1]");
        assert_eq!(p("slice(3)"), ":3:");
        let ast = parse("zeros((3,), dtype=float32) + sum(a, axis=b)").expect("parses");
        let mut names = Vec::new();
        ast.names(&mut names);
        assert_eq!(names, ["a", "b"]);
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
        assert!(matches!(parse("a.foo"), Err(Error::Unsupported(_))));
        assert_eq!(err("a.tolist()"), "Invalid method name: tolist");
        assert!(matches!(parse("a and b"), Err(Error::Unsupported(_))));
        assert!(matches!(parse("b'x'"), Err(Error::Unsupported(_))));
        assert!(parse("sum(a, axis=0, axis=1)").is_err());
        assert!(parse("sum(axis=0, a)").is_err());
        assert!(parse("a[1::]").is_ok());
        assert!(parse("a[:, ::-1, ...]").is_ok());
        let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
        assert!(matches!(parse(&deep), Err(Error::Syntax(_))));
        let long = vec!["a"; 300].join(" + ");
        assert!(matches!(parse(&long), Err(Error::Syntax(_))));
        let huge = vec!["a"; 100_000].join(" + ");
        assert!(matches!(parse(&huge), Err(Error::Syntax(_))));
        assert!(parse(&vec!["a"; 150].join(" + ")).is_ok());
    }
}
