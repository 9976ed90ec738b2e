//! The one error of the operations: the core's and the users database's,
//! and the refusals only this layer makes.

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request the data cannot answer, a missing dataset, a storage fault.
    #[error(transparent)]
    Core(#[from] cat2_core::Error),

    /// The users database refused or failed.
    #[error(transparent)]
    Users(#[from] cat2_auth::Error),

    /// A caller who may not do this, told why (the reference answers 401).
    #[error("{0}")]
    NotAllowed(String),

    /// A request this server will not do, with the reason.
    #[error("{0}")]
    BadRequest(String),

    /// This server has no users, so the operation does not exist here.
    #[error("this server has no users")]
    NoUsers,

    /// A login with a wrong e-mail or password (the reference's code).
    #[error("LOGIN_BAD_CREDENTIALS")]
    BadCredentials,
}

/// `Result` with the operations' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<cat2_core::storage::Error> for Error {
    fn from(e: cat2_core::storage::Error) -> Self {
        Error::Core(e.into())
    }
}
