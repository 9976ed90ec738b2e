//! Users: logging in, registering, password resets, and administration
//! (adding, deleting, listing) — on servers with logins. Who may do what, the
//! `maxusers` limit and the answers' texts are the reference server's, except
//! that `maxusers` bounds self-registration too (the reference lets anyone
//! register past it).

use cat2_auth::{AddOutcome, User};

use crate::{Accounts, Error, Result, Service, Who};

/// The public view of a user (no password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            is_active: u.is_active,
            is_superuser: u.is_superuser,
            is_verified: u.is_verified,
        }
    }
}

impl Service {
    fn users(&self) -> Result<&Accounts> {
        self.users.as_ref().ok_or(Error::NoUsers)
    }

    /// The caller a session token stands for, if it is valid and its user
    /// is active (users removed or deactivated elsewhere count at once).
    pub fn who(&self, token: &str) -> Who {
        let Some(accounts) = &self.users else {
            return Who::anonymous();
        };
        let Some(id) = accounts.tokens.verify_session(token) else {
            return Who::anonymous();
        };
        match accounts.users.get_by_id(&id) {
            Ok(Some(user)) if user.is_active => Who {
                user_id: Some(user.id),
                is_superuser: user.is_superuser,
            },
            Ok(_) => Who::anonymous(),
            Err(e) => {
                tracing::error!(error = %e, "reading the user database");
                Who::anonymous()
            }
        }
    }

    /// The e-mail of the logged-in caller.
    pub fn email_of(&self, who: &Who) -> Result<Option<String>> {
        match (&self.users, &who.user_id) {
            (Some(accounts), Some(id)) => Ok(accounts.users.get_by_id(id)?.map(|u| u.email)),
            _ => Ok(None),
        }
    }

    /// A session token for the user with this e-mail and password.
    pub fn login(&self, email: &str, password: &str) -> Result<String> {
        let accounts = self.users()?;
        match accounts.users.authenticate(email, password)? {
            Some(user) => Ok(accounts.tokens.session(&user.id)?),
            None => Err(Error::BadCredentials),
        }
    }

    /// Self-registration (checked first by the caller: the e-mail and
    /// password rules); `None` when the user exists already. Bounded by
    /// `maxusers` as `/api/adduser/` is (the reference does not bound it:
    /// anyone could then fill a server that is meant to have a few users),
    /// counted under the database's write lock, so racing registrations
    /// cannot overshoot it.
    pub fn register(&self, email: &str, password: &str) -> Result<Option<UserView>> {
        if !self.settings.register {
            return Err(Error::NoUsers);
        }
        let accounts = self.users()?;
        match accounts
            .users
            .create_capped(email, password, false, self.settings.maxusers)
        {
            Ok(u) => Ok(Some(UserView::from(&u))),
            Err(cat2_auth::Error::UserAlreadyExists { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A password reset for `email`: there is no mail server, so the link
    /// goes to the server log (at warning level, so the default log shows it).
    pub fn forgot_password(&self, email: &str) -> Result<()> {
        let accounts = self.users()?;
        if let Some(user) = accounts.users.get_by_email(email)? {
            if user.is_active {
                let token = accounts.tokens.reset(&user)?;
                let urlbase = self.settings.urlbase.trim_end_matches('/');
                tracing::warn!(
                    user = %user.email,
                    "password reset requested: {urlbase}/reset-password/{token}"
                );
            }
        }
        Ok(())
    }

    /// Sets a new password with a reset token.
    pub fn reset_password(&self, token: &str, password: &str) -> Result<()> {
        let accounts = self.users()?;
        let user = accounts.tokens.verify_reset(token, &accounts.users)?;
        cat2_auth::validate_password(password)?;
        Ok(accounts.users.set_password(&user.id, password)?)
    }

    /// `/api/adduser/` (superusers): answers the reference's text, which
    /// never repeats the password.
    pub fn add_user(
        &self,
        who: &Who,
        email: &str,
        password: Option<&str>,
        superuser: bool,
    ) -> Result<String> {
        let accounts = self.users()?;
        if !who.is_superuser {
            return Err(Error::NotAllowed("Only superusers can add users".into()));
        }
        if let Some(max) = self.settings.maxusers {
            if accounts.users.count()? >= max {
                return Err(Error::BadRequest(format!(
                    "Only a maximum of {max} users are allowed"
                )));
            }
        }
        match accounts.users.add(email, password, superuser) {
            Ok(AddOutcome::Created(_) | AddOutcome::Exists(_)) => {}
            Err(
                e @ (cat2_auth::Error::InvalidEmail { .. }
                | cat2_auth::Error::InvalidPassword { .. }),
            ) => return Err(Error::BadRequest(format!("Error in adding {email}: {e}"))),
            Err(e) => return Err(e.into()),
        }
        let su = if superuser { "True" } else { "False" };
        Ok(format!("User added: username='{email}' superuser={su}"))
    }

    /// `/api/deluser/` (superusers), with the user's `@personal`.
    pub fn delete_user(&self, who: &Who, email: &str) -> Result<String> {
        let accounts = self.users()?;
        if !who.is_superuser {
            return Err(Error::NotAllowed("Only superusers can delete users".into()));
        }
        match accounts.users.delete(email) {
            Ok(user) => {
                if let Err(e) = self.state.remove_personal(&user.id) {
                    tracing::warn!(error = %e, "removing the @personal of a deleted user");
                }
                Ok(format!("User deleted: {email}"))
            }
            Err(e @ cat2_auth::Error::UserNotExists { .. }) => {
                Err(Error::BadRequest(format!("Error in deleting {email}: {e}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `/api/listusers/` (any logged-in user), all or the one with `email`.
    pub fn list_users(&self, who: &Who, email: Option<&str>) -> Result<Vec<UserView>> {
        let accounts = self.users()?;
        if !who.is_logged_in() {
            return Err(cat2_core::Error::Unauthorized.into());
        }
        let users = match email {
            Some(e) => accounts.users.list_email(e)?,
            None => accounts.users.list()?,
        };
        Ok(users.iter().map(UserView::from).collect())
    }
}
