//! cat2-auth: Caterva2's users, password hashes and login tokens, compatible with the
//! reference server's fastapi-users set-up.
//!
//! [`Users`] reads and writes the `user` table of `<statedir>/db.sqlite` exactly as
//! fastapi-users' SQLAlchemy adapter lays it out, so existing state directories work as they
//! are and the upstream test harness can add users behind the server's back. Password hashes
//! follow pwdlib (argon2id with argon2-cffi's defaults; bcrypt accepted; see [`password`]),
//! and [`Tokens`] makes and checks the HS256 JWTs of fastapi-users' `JWTStrategy` and its
//! reset-password flow. E-mail addresses are checked like pydantic's `EmailStr`
//! ([`validate_email`]).
//!
//! Design choice: the crate is synchronous and caches no rows: the server calls it from a
//! blocking pool, and another process (the Python test harness, `cat2rs adduser`) may write
//! the same file at any time, so every call reads the table again. Connections are reused
//! (a small pool; SQLite sees other processes' commits at the next read), and SQLite's own
//! locking plus a busy timeout handle concurrent writers. Error texts are the ones the
//! reference server puts in its HTTP answers (`UserNotExists`, `InvalidPasswordException`,
//! pydantic's validation message), so the server can format them without translation.
//!
//! ```
//! use cat2_auth::{AddOutcome, Tokens, Users};
//! # let dir = tempfile::tempdir().unwrap();
//! # let statedir = dir.path();
//! let users = Users::open(statedir)?; // <statedir>/db.sqlite, table created if missing
//! let bob = match users.add("bob@example.com", Some("bobpassword"), false)? {
//!     AddOutcome::Created(u) | AddOutcome::Exists(u) => u,
//! };
//! let user = users.authenticate("BOB@example.com", "bobpassword")?.expect("right password");
//! let tokens = Tokens::new("CATERVA2_SECRET value");
//! let cookie = tokens.session(&user.id)?; // the c2subauth cookie value
//! assert_eq!(tokens.verify_session(&cookie), Some(bob.id));
//! # Ok::<(), cat2_auth::Error>(())
//! ```
#![forbid(unsafe_code)]

use std::path::PathBuf;

mod email;
pub mod password;
mod pool;
mod sqlite;
mod tokens;
mod users;

pub use email::validate_email;
pub use tokens::{
    Tokens, RESET_AUDIENCE, RESET_LIFETIME_SECS, SESSION_AUDIENCE, SESSION_LIFETIME_SECS,
};
pub use users::{
    validate_password, AddOutcome, User, UserTable, Users, CREATE_INDEX_SQL, CREATE_TABLE_SQL,
    DB_FILE, MIN_PASSWORD_CHARS,
};

/// Errors of this crate. The `Display` texts of the first group are exactly what the
/// reference server shows its clients (usually after `"Error in adding <email>: "`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The e-mail address is not valid; `Display` is pydantic's `UserCreate` validation
    /// message, `reason` is email-validator's explanation.
    #[error("{}", email::pydantic_message(input, reason))]
    InvalidEmail { input: String, reason: String },
    /// The password breaks the policy (at least 8 characters). `Display` is the name of
    /// fastapi-users' exception, `reason` its human text.
    #[error("InvalidPasswordException")]
    InvalidPassword { reason: String },
    /// A user with this e-mail address (compared without ASCII case) exists already.
    #[error("UserAlreadyExists")]
    UserAlreadyExists { email: String },
    /// No user has this e-mail address or id.
    #[error("UserNotExists")]
    UserNotExists { key: String },
    /// The server has as many users as its `maxusers` setting allows (the reference's
    /// text for `/api/adduser/`).
    #[error("Only a maximum of {max} users are allowed")]
    TooManyUsers { max: u64 },
    /// A reset-password token is malformed, expired, for an unknown or inactive user, or was
    /// made before the password last changed.
    #[error("RESET_PASSWORD_BAD_TOKEN")]
    BadResetToken { reason: &'static str },
    /// The state directory could not be created.
    #[error("creating state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("user database {path}: {op}: {source}")]
    Db {
        path: PathBuf,
        op: &'static str,
        source: rusqlite::Error,
    },
    /// Another user database (PostgreSQL) failed.
    #[error("user database {place}: {op}: {source}")]
    Backend {
        place: String,
        op: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A row of the user table holds a value of the wrong type.
    #[error("user database {path}: column {column} of a user row has an unexpected value")]
    BadRow { path: PathBuf, column: &'static str },
    /// Argon2 refused to hash (cannot happen with the fixed parameters).
    #[error("hashing a password: {reason}")]
    Hash { reason: String },
    /// A token could not be signed.
    #[error("signing a token: {source}")]
    Token { source: jsonwebtoken::errors::Error },
    /// The operating system's random number generator failed.
    #[error("random number generator: {0}")]
    Random(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_cross_threads() {
        fn shared<T: Send + Sync + Clone>() {}
        shared::<Users>();
        shared::<Tokens>();
        shared::<User>();
        fn sendable<T: Send + Sync>() {}
        sendable::<Error>();
    }

    #[test]
    fn texts_the_server_relays() {
        let e = Error::UserNotExists {
            key: "bob@example.com".into(),
        };
        assert_eq!(
            format!("Error in deleting bob@example.com: {e}"),
            "Error in deleting bob@example.com: UserNotExists"
        );
        let e = Error::InvalidPassword {
            reason: "Password should be at least 8 characters".into(),
        };
        assert_eq!(e.to_string(), "InvalidPasswordException");
        assert_eq!(
            Error::BadResetToken { reason: "x" }.to_string(),
            "RESET_PASSWORD_BAD_TOKEN"
        );
        assert_eq!(
            Error::UserAlreadyExists {
                email: "a@b.co".into()
            }
            .to_string(),
            "UserAlreadyExists"
        );
    }
}
