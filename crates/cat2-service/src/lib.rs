//! cat2-service: the operations of a Caterva2 server, typed.
//!
//! [`Service`] is what the HTTP API (`cat2-server`'s `api/`) and the web GUI
//! (its `gui/`) both call: reading (`info`, `fetch`, `list`, ...), writing
//! (`upload`, `copy`, `unfold`, `save_expression`, chunk writes, ...) and
//! user administration, each one operation with the rules of who may do it
//! and the answer it gives, for a caller ([`Who`]). The HTTP layer parses a
//! request, calls one operation on its blocking pool and maps the result;
//! the GUI's prompt runs the same operations as the API does, so their rules
//! (who may write where, quotas, superusers) are one set.
//!
//! Design choice: operations are synchronous and free of HTTP types, like
//! the core below them; which thread runs them is the server's business, and
//! streaming bodies in and out is too (an upload is staged here, filled by
//! the server, and finished here).

#![forbid(unsafe_code)]

mod error;
mod read;
mod users;
mod write;

pub use error::{Error, Result};
pub use read::{PanelInfo, Roots, Table};
pub use users::UserView;
pub use write::Upload;

use cat2_core::write::fill::PublishRoot;
use cat2_core::write::WritePolicy;
use cat2_core::{Caller, StateDir};

/// Who asks: the user id (a lowercase hyphenated UUID) when logged in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub user_id: Option<String>,
    pub is_superuser: bool,
}

impl Who {
    /// Nobody logged in.
    pub fn anonymous() -> Who {
        Who::default()
    }

    pub fn caller(&self) -> Caller<'_> {
        Caller {
            user_id: self.user_id.as_deref(),
            is_superuser: self.is_superuser,
        }
    }

    pub fn is_logged_in(&self) -> bool {
        self.user_id.is_some()
    }
}

/// The rules a server runs with.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub writes: WritePolicy,
    /// Where filled arrays are published, if anywhere.
    pub publish_root: Option<PublishRoot>,
    /// Most users the server may have.
    pub maxusers: Option<u64>,
    /// Self-registration allowed.
    pub register: bool,
    /// The public base URL (password reset links).
    pub urlbase: String,
}

/// A server's operations over its state and its users.
#[derive(Debug, Clone)]
pub struct Service {
    state: StateDir,
    /// Users and their tokens; `None` on a server without logins.
    users: Option<Accounts>,
    settings: Settings,
}

/// A login-enabled server's users and session tokens.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub users: cat2_auth::Users,
    pub tokens: cat2_auth::Tokens,
}

impl Service {
    pub fn new(state: StateDir, users: Option<Accounts>, settings: Settings) -> Service {
        Service {
            state,
            users,
            settings,
        }
    }

    /// Whether this server can answer requests: its storage answers and,
    /// with users, their database does (`GET /healthz`). The error names
    /// what does not answer.
    pub fn health(&self) -> Result<(), String> {
        self.state
            .storage()
            .check_health()
            .map_err(|e| format!("storage: {e}"))?;
        if let Some(accounts) = &self.users {
            accounts.users.count().map_err(|e| format!("users: {e}"))?;
        }
        Ok(())
    }

    pub fn state(&self) -> &StateDir {
        &self.state
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The users of a login-enabled server.
    pub fn accounts(&self) -> Option<&Accounts> {
        self.users.as_ref()
    }

    fn resolver(&self, who: &Who) -> cat2_core::resolve::Resolver {
        cat2_core::resolve::Resolver::new(&self.state, who.caller())
    }
}
