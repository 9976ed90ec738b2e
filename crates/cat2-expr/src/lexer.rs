//! Tokens of the Python expression subset.
//!
//! Numbers follow Python's literal grammar (underscores, `0x`/`0o`/`0b`, `.5`, `1e-3`,
//! imaginary `2j`) so that any expression python-blosc2 prints back parses here; integers
//! are kept as `i128` because Python's are unbounded and NumPy checks their range later.

use crate::error::{invalid_syntax, Error, Result};
use crate::pyscalar::Py;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Name(String),
    Num(Py),
    /// An operator or punctuation: `+ - * / // % ** << >> & | ^ ~ < <= > >= == != ( ) , . [ ] = @ :`.
    Op(&'static str),
    /// A plain string literal's text (dtype names such as `'float32'`); `None` for prefixed
    /// or escaped strings, which the parser rejects with a clear message.
    Str(Option<String>),
}

const OPS: [&str; 29] = [
    "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "&", "|", "^", "~",
    "<", ">", "(", ")", ",", ".", "[", "]", "=", "@", ":", "!",
];

/// Splits `text` into tokens.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0c' {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let (tok, next) = number(&chars, i)?;
            toks.push(Tok::Num(tok));
            i = next;
            continue;
        }
        if c == '_' || c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i] == '_' || chars[i].is_alphanumeric()) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if chars.get(i).is_some_and(|&q| q == '\'' || q == '"') && is_string_prefix(&name) {
                i = skip_string(&chars, i)?;
                toks.push(Tok::Str(None));
            } else {
                toks.push(Tok::Name(name));
            }
            continue;
        }
        if c == '\'' || c == '"' {
            let start = i;
            i = skip_string(&chars, i)?;
            let body: String = chars[start + 1..i - 1].iter().collect();
            toks.push(Tok::Str((!body.contains('\\')).then_some(body)));
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match OPS.iter().find(|op| rest.starts_with(*op)) {
            Some(op) => {
                toks.push(Tok::Op(op));
                i += op.chars().count();
            }
            None => return Err(invalid_syntax()),
        }
    }
    Ok(toks)
}

fn is_string_prefix(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "r" | "b" | "u" | "f" | "rb" | "br" | "fr" | "rf"
    )
}

fn skip_string(chars: &[char], start: usize) -> Result<usize> {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            q if q == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(Error::Syntax(
        "unterminated string literal (detected at line 1) (<unknown>, line 1)".into(),
    ))
}

/// Digits of `radix` with single underscores between them, from `i`.
fn digits(chars: &[char], mut i: usize, radix: u32, out: &mut String) -> Result<usize> {
    let mut last_underscore = false;
    let mut any = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '_' {
            if last_underscore || !any {
                return Err(invalid_literal(radix));
            }
            last_underscore = true;
        } else if c.is_digit(radix) {
            out.push(c);
            last_underscore = false;
            any = true;
        } else {
            break;
        }
        i += 1;
    }
    if last_underscore {
        return Err(invalid_literal(radix));
    }
    Ok(i)
}

fn invalid_literal(radix: u32) -> Error {
    let kind = match radix {
        16 => "hexadecimal",
        8 => "octal",
        2 => "binary",
        _ => "decimal",
    };
    Error::Syntax(format!("invalid {kind} literal (<unknown>, line 1)"))
}

fn too_big() -> Error {
    Error::Type("Python int too large to convert to C long".into())
}

fn number(chars: &[char], start: usize) -> Result<(Py, usize)> {
    let mut i = start;
    let next_is_name = |i: usize| {
        chars
            .get(i)
            .is_some_and(|&c| c == '_' || c.is_alphanumeric())
    };
    // Prefixed integers.
    if chars[i] == '0' {
        let radix = match chars.get(i + 1) {
            Some('x' | 'X') => 16,
            Some('o' | 'O') => 8,
            Some('b' | 'B') => 2,
            _ => 10,
        };
        if radix != 10 {
            let mut s = String::new();
            i += 2;
            if chars.get(i) == Some(&'_') {
                i += 1;
            }
            i = digits(chars, i, radix, &mut s)?;
            if s.is_empty() || next_is_name(i) {
                return Err(invalid_literal(radix));
            }
            let v = i128::from_str_radix(&s, radix).map_err(|_| too_big())?;
            return Ok((Py::Int(v), i));
        }
    }
    let mut int_part = String::new();
    i = digits(chars, i, 10, &mut int_part)?;
    let mut is_float = false;
    let mut text = int_part.clone();
    if chars.get(i) == Some(&'.') {
        is_float = true;
        i += 1;
        text.push('.');
        if chars.get(i).is_some_and(char::is_ascii_digit) {
            i = digits(chars, i, 10, &mut text)?;
        }
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        let mut exp = String::from("e");
        if let Some(&s @ ('+' | '-')) = chars.get(j) {
            exp.push(s);
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            i = digits(chars, j, 10, &mut exp)?;
            text.push_str(&exp);
            is_float = true;
        } else {
            return Err(invalid_literal(10));
        }
    }
    if matches!(chars.get(i), Some('j' | 'J')) {
        i += 1;
        if next_is_name(i) {
            return Err(invalid_literal(10));
        }
        let v: f64 = text.parse().map_err(|_| invalid_literal(10))?;
        return Ok((Py::Complex(0.0, v), i));
    }
    if next_is_name(i) {
        return Err(invalid_literal(10));
    }
    if is_float {
        let v: f64 = text.parse().map_err(|_| invalid_literal(10))?;
        return Ok((Py::Float(v), i));
    }
    if int_part.len() > 1 && int_part.starts_with('0') && int_part.chars().any(|c| c != '0') {
        return Err(Error::Syntax(
            "leading zeros in decimal integer literals are not permitted; use an 0o prefix for \
             octal integers (<unknown>, line 1)"
                .into(),
        ));
    }
    let v: i128 = int_part.parse().map_err(|_| too_big())?;
    Ok((Py::Int(v), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Py {
        match tokenize(s).expect("tokenizes").as_slice() {
            [Tok::Num(p)] => *p,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn python_number_literals() {
        assert_eq!(num("1_000"), Py::Int(1000));
        assert_eq!(num("0x1F"), Py::Int(31));
        assert_eq!(num("0o17"), Py::Int(15));
        assert_eq!(num("0b101"), Py::Int(5));
        assert_eq!(num("00"), Py::Int(0));
        assert_eq!(num(".5"), Py::Float(0.5));
        assert_eq!(num("1."), Py::Float(1.0));
        assert_eq!(num("1e-3"), Py::Float(1e-3));
        assert_eq!(num("1E3"), Py::Float(1000.0));
        assert_eq!(num("2.5j"), Py::Complex(0.0, 2.5));
        assert!(tokenize("01").is_err());
        assert!(tokenize("1a").is_err());
        assert!(tokenize("1__0").is_err());
        assert!(tokenize("1e").is_err());
        assert!(tokenize("a $ b").is_err());
    }

    #[test]
    fn operators_take_the_longest_match() {
        let toks = tokenize("a**-b//c<=d").expect("ok");
        assert_eq!(
            toks,
            vec![
                Tok::Name("a".into()),
                Tok::Op("**"),
                Tok::Op("-"),
                Tok::Name("b".into()),
                Tok::Op("//"),
                Tok::Name("c".into()),
                Tok::Op("<="),
                Tok::Name("d".into()),
            ]
        );
        assert_eq!(
            tokenize("'x'").expect("ok"),
            vec![Tok::Str(Some("x".into()))]
        );
    }
}
