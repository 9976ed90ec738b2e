//! The crate's one error type.
//!
//! Messages are written to be shown to a client as they are (the server wraps them in
//! Caterva2's `"Invalid name or expression: <msg>"`), so they copy Python's and NumPy's
//! wording where a user would recognise it (`invalid syntax (<unknown>, line 1)`,
//! `Unknown symbol: b`, `operands could not be broadcast together with shapes (3,) (4,) `).

/// What went wrong while parsing, typing or evaluating an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not a valid expression (Python's `SyntaxError`).
    #[error("{0}")]
    Syntax(String),
    /// A free name with no operand of that name (blosc2's `ValueError`).
    #[error("Unknown symbol: {0}")]
    UnknownName(String),
    /// A call to a function that does not exist (Python's `NameError`).
    #[error("name '{0}' is not defined")]
    UnknownFunction(String),
    /// A construct this engine does not evaluate (attributes, reductions, casts, ...).
    #[error("{0}")]
    Unsupported(String),
    /// Wrong argument types or counts, or no NumPy loop for the operand dtypes (`TypeError`,
    /// `OverflowError` for out-of-range Python integers).
    #[error("{0}")]
    Type(String),
    /// Operands whose shapes do not broadcast, or a box outside the result.
    #[error("{0}")]
    Shape(String),
    /// A value-dependent failure while evaluating (NumPy's `ValueError`, e.g. integers to
    /// negative integer powers).
    #[error("{0}")]
    Value(String),
    /// The operand reader failed or returned the wrong number of bytes.
    #[error("{0}")]
    Read(String),
    /// The caller's interrupt hook stopped the evaluation (see [`crate::Plan::interrupt_with`]).
    #[error("{0}")]
    Interrupted(String),
    /// A broken invariant of this crate (a bug, never the caller's fault).
    #[error("internal error in the expression engine: {0}")]
    Internal(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Python's message for a malformed expression.
pub(crate) fn invalid_syntax() -> Error {
    Error::Syntax("invalid syntax (<unknown>, line 1)".into())
}

/// NumPy's message when no inner loop of a ufunc accepts the operand dtypes.
pub(crate) fn no_loop(ufunc: &str) -> Error {
    Error::Type(format!(
        "ufunc '{ufunc}' not supported for the input types, and the inputs could not be safely \
         coerced to any supported types according to the casting rule ''safe''"
    ))
}
