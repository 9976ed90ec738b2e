//! The users: fastapi-users' rules (validation, hashing, lookups) over a
//! [`UserTable`] that keeps the rows — `<statedir>/db.sqlite` by default
//! ([`crate::sqlite`]), or any other database with the same table shape
//! (PostgreSQL for replicas, in cat2-cloud).

use std::path::Path;
use std::sync::Arc;

use crate::password::{self, Verified};
use crate::{email, Error, Result};

/// The DDL that SQLAlchemy's `create_all` emits for fastapi-users' `SQLAlchemyBaseUserTableUUID`
/// on SQLite, byte for byte as it then appears in `sqlite_master`.
pub const CREATE_TABLE_SQL: &str = "CREATE TABLE user (\n\tid CHAR(36) NOT NULL, \n\temail VARCHAR(320) NOT NULL, \
                                    \n\thashed_password VARCHAR(1024) NOT NULL, \n\tis_active BOOLEAN NOT NULL, \
                                    \n\tis_superuser BOOLEAN NOT NULL, \n\tis_verified BOOLEAN NOT NULL, \
                                    \n\tPRIMARY KEY (id)\n)";
/// The unique e-mail index created together with the table.
pub const CREATE_INDEX_SQL: &str = "CREATE UNIQUE INDEX ix_user_email ON user (email)";

/// The name of the database file inside the state directory.
pub const DB_FILE: &str = "db.sqlite";

/// fastapi-users' minimum password length (caterva2's `UserManager.validate_password`).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// One row of the user table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Lowercase hyphenated UUID, as stored.
    pub id: String,
    pub email: String,
    pub hashed_password: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
}

/// What [`Users::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new user was inserted.
    Created(User),
    /// A user with this e-mail address (ignoring ASCII case) was there already; nothing
    /// changed. The reference answers "User added" anyway.
    Exists(User),
}

impl AddOutcome {
    /// The new or existing user.
    pub fn user(&self) -> &User {
        match self {
            AddOutcome::Created(u) | AddOutcome::Exists(u) => u,
        }
    }
}

/// Where the rows of the user table are kept: the storage half of
/// [`Users`], which adds fastapi-users' rules on top. Implementations keep
/// the reference's table shape (`id`, `email`, `hashed_password`,
/// `is_active`, `is_superuser`, `is_verified`) and see rows other processes
/// wrote at once.
pub trait UserTable: std::fmt::Debug + Send + Sync {
    /// Where the table is, for messages (`/srv/state/db.sqlite`).
    fn describe(&self) -> String;
    /// The local file of the table, if it is one.
    fn path(&self) -> Option<&Path> {
        None
    }
    /// The user whose e-mail equals `email` ignoring ASCII case.
    fn by_email(&self, email: &str) -> Result<Option<User>>;
    /// The user with this canonical (lowercase hyphenated) id.
    fn by_id(&self, id: &str) -> Result<Option<User>>;
    fn count(&self) -> Result<u64>;
    /// All users, in table order.
    fn list(&self) -> Result<Vec<User>>;
    /// Users whose e-mail is exactly `email`.
    fn list_email(&self, email: &str) -> Result<Vec<User>>;
    /// Inserts `user`, atomically refused with [`Error::UserAlreadyExists`]
    /// if its e-mail (ignoring ASCII case) is taken, or with
    /// [`Error::TooManyUsers`] if the table holds `max_users` rows already —
    /// also against racing inserts by other processes.
    fn insert(&self, user: &User, max_users: Option<u64>) -> Result<()>;
    fn delete(&self, id: &str) -> Result<()>;
    fn set_hash(&self, id: &str, hash: &str) -> Result<()>;
}

/// The users of one server. Cheap to clone (clones share their table and
/// its connections); rows written by other processes are seen at once.
#[derive(Debug, Clone)]
pub struct Users {
    table: Arc<dyn UserTable>,
}

impl Users {
    /// Opens `<statedir>/db.sqlite`, creating the directory, the file and the table (with the
    /// reference's DDL) when missing. Existing databases are used as they are.
    pub fn open(statedir: &Path) -> Result<Users> {
        Ok(Users::with_table(Arc::new(
            crate::sqlite::SqliteUsers::open(statedir)?,
        )))
    }

    /// Users kept in `table`.
    pub fn with_table(table: Arc<dyn UserTable>) -> Users {
        Users { table }
    }

    /// The SQLite file, when the users are kept in one.
    pub fn path(&self) -> Option<&Path> {
        self.table.path()
    }

    /// Where the users are kept, for messages.
    pub fn describe(&self) -> String {
        self.table.describe()
    }

    /// The user with this e-mail address, compared like fastapi-users does
    /// (`lower(email) = lower(?)`, i.e. ignoring ASCII case).
    pub fn get_by_email(&self, email: &str) -> Result<Option<User>> {
        self.table.by_email(email)
    }

    /// The user with this id. The id is parsed as Python's `uuid.UUID` would (hyphens, braces
    /// and a `urn:uuid:` prefix allowed, any case); an unparsable id is just "no user".
    pub fn get_by_id(&self, id: &str) -> Result<Option<User>> {
        match canonical_uuid(id) {
            Some(id) => self.table.by_id(&id),
            None => Ok(None),
        }
    }

    /// How many users there are.
    pub fn count(&self) -> Result<u64> {
        self.table.count()
    }

    /// All users, in table order (what `/api/listusers/` returns).
    pub fn list(&self) -> Result<Vec<User>> {
        self.table.list()
    }

    /// Users whose e-mail is exactly `email` (case-sensitive; `/api/listusers/?username=`).
    pub fn list_email(&self, email: &str) -> Result<Vec<User>> {
        self.table.list_email(email)
    }

    /// `srv_utils.add_user` semantics (used by `/api/adduser/` and the CLI): if a user with
    /// this e-mail exists (raw input, ignoring ASCII case) nothing happens; otherwise the user
    /// is created as by [`Users::create`]. A `None` password becomes 8 random letters.
    pub fn add(&self, email: &str, password: Option<&str>, superuser: bool) -> Result<AddOutcome> {
        let generated;
        let password = match password {
            Some(p) => p,
            None => {
                generated = password::generate()?;
                &generated
            }
        };
        if let Some(existing) = self.get_by_email(email)? {
            return Ok(AddOutcome::Exists(existing));
        }
        self.create(email, password, superuser)
            .map(AddOutcome::Created)
    }

    /// fastapi-users' `UserManager.create`: validates the e-mail (stored normalised) and the
    /// password, refuses an existing e-mail with [`Error::UserAlreadyExists`], and inserts an
    /// active, unverified user with a new uuid4 id and an argon2id hash.
    pub fn create(&self, email: &str, password: &str, superuser: bool) -> Result<User> {
        self.create_capped(email, password, superuser, None)
    }

    /// [`Users::create`], refused with [`Error::TooManyUsers`] when the table holds
    /// `max_users` users already. The count is taken atomically with the insert, so
    /// racing registrations (in this process or another) never go past it.
    pub fn create_capped(
        &self,
        email: &str,
        password: &str,
        superuser: bool,
        max_users: Option<u64>,
    ) -> Result<User> {
        let email = email::validate_email(email)?;
        validate_password(password)?;
        if self.get_by_email(&email)?.is_some() {
            return Err(Error::UserAlreadyExists { email });
        }
        // Refused before the password is hashed (Argon2: 64 MiB and a good
        // fraction of a second), so registrations to a full server cost
        // nothing; counted again atomically with the insert.
        if let Some(max) = max_users {
            if self.count()? >= max {
                return Err(Error::TooManyUsers { max });
            }
        }
        let user = User {
            id: uuid::Uuid::new_v4().hyphenated().to_string(),
            email,
            hashed_password: password::hash(password)?,
            is_active: true,
            is_superuser: superuser,
            is_verified: false,
        };
        self.table.insert(&user, max_users)?;
        Ok(user)
    }

    /// Deletes the user with this e-mail (ignoring ASCII case) and returns it;
    /// [`Error::UserNotExists`] (shown as `UserNotExists`) if there is none.
    pub fn delete(&self, email: &str) -> Result<User> {
        let user = self
            .get_by_email(email)?
            .ok_or_else(|| Error::UserNotExists {
                key: email.to_owned(),
            })?;
        self.table.delete(&user.id)?;
        Ok(user)
    }

    /// Checks an e-mail/password pair like fastapi-users' `authenticate` plus the login route's
    /// `is_active` test. A matching hash in an outdated format (bcrypt, other argon2
    /// parameters) is replaced by a default argon2id hash, as pwdlib does. Unknown e-mails,
    /// wrong passwords, unrecognised hash formats and inactive users give `None`.
    pub fn authenticate(&self, email: &str, password: &str) -> Result<Option<User>> {
        let Some(mut user) = self.get_by_email(email)? else {
            // Hash anyway so that unknown e-mails take as long as wrong passwords.
            password::hash(password)?;
            return Ok(None);
        };
        match password::verify_and_update(password, &user.hashed_password)? {
            Verified::No | Verified::UnknownHash => return Ok(None),
            Verified::Yes {
                rehash: Some(new_hash),
            } => {
                self.table.set_hash(&user.id, &new_hash)?;
                user.hashed_password = new_hash;
            }
            Verified::Yes { rehash: None } => {}
        }
        Ok(user.is_active.then_some(user))
    }

    /// Adds `user` as it is — id, e-mail, hash and flags — unless its e-mail
    /// is taken (moving users between databases); answers whether it was added.
    pub fn import(&self, user: &User) -> Result<bool> {
        if canonical_uuid(&user.id).as_deref() != Some(user.id.as_str()) {
            return Err(Error::UserNotExists {
                key: user.id.clone(),
            });
        }
        match self.table.insert(user, None) {
            Ok(()) => Ok(true),
            Err(Error::UserAlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets a new password (after the length check) for the user with this id.
    pub fn set_password(&self, id: &str, password: &str) -> Result<()> {
        validate_password(password)?;
        let user = self
            .get_by_id(id)?
            .ok_or_else(|| Error::UserNotExists { key: id.to_owned() })?;
        self.table.set_hash(&user.id, &password::hash(password)?)
    }
}

/// caterva2's password policy: at least 8 characters (Unicode code points, as Python counts).
pub fn validate_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::InvalidPassword {
            reason: "Password should be at least 8 characters".into(),
        });
    }
    Ok(())
}

/// Parses a UUID the way Python's `uuid.UUID(str)` does for ordinary input (`urn:`/`uuid:`
/// prefixes, braces and hyphens removed, then exactly 32 hex digits) and returns the
/// canonical lowercase hyphenated form.
pub(crate) fn canonical_uuid(s: &str) -> Option<String> {
    let s = s.replace("urn:", "").replace("uuid:", "");
    let hex: String = s
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|&c| c != '-')
        .collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let n = u128::from_str_radix(&hex, 16).ok()?;
    Some(uuid::Uuid::from_u128(n).hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn fresh() -> (tempfile::TempDir, Users) {
        let dir = tempfile::tempdir().unwrap();
        let users = Users::open(&dir.path().join("state")).unwrap();
        (dir, users)
    }

    #[test]
    fn open_creates_the_reference_schema() {
        let (_dir, users) = fresh();
        let conn = Connection::open(users.path().unwrap()).unwrap();
        let mut stmt = conn
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name")
            .unwrap();
        let rows: Vec<(String, String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "index".into(),
                    "ix_user_email".into(),
                    Some(CREATE_INDEX_SQL.into())
                ),
                ("index".into(), "sqlite_autoindex_user_1".into(), None),
                ("table".into(), "user".into(), Some(CREATE_TABLE_SQL.into())),
            ]
        );
        // Opening again leaves it alone.
        Users::open(users.path().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn create_capped_stops_at_the_limit() {
        let (_dir, users) = fresh();
        users.create("a@example.com", "apassword", false).unwrap();
        users
            .create_capped("b@example.com", "bpassword", false, Some(2))
            .unwrap();
        let e = users
            .create_capped("c@example.com", "cpassword", false, Some(2))
            .unwrap_err();
        assert!(matches!(e, Error::TooManyUsers { max: 2 }), "{e:?}");
        assert_eq!(e.to_string(), "Only a maximum of 2 users are allowed");
        assert_eq!(users.list().unwrap().len(), 2);
        // An existing e-mail is still that error, not the limit's.
        assert!(matches!(
            users.create_capped("a@example.com", "apassword", false, Some(2)),
            Err(Error::UserAlreadyExists { .. })
        ));
        users.delete("b@example.com").unwrap();
        users
            .create_capped("c@example.com", "cpassword", false, Some(2))
            .unwrap();
        users
            .create_capped("d@example.com", "dpassword", false, None)
            .unwrap();
    }

    #[test]
    fn add_list_get_delete() {
        let (_dir, users) = fresh();
        let bob = match users
            .add("bob@example.com", Some("bobpassword"), false)
            .unwrap()
        {
            AddOutcome::Created(u) => u,
            other => panic!("{other:?}"),
        };
        assert_eq!(canonical_uuid(&bob.id).as_deref(), Some(bob.id.as_str()));
        assert_eq!(uuid::Uuid::parse_str(&bob.id).unwrap().get_version_num(), 4);
        assert!(bob
            .hashed_password
            .starts_with("$argon2id$v=19$m=65536,t=3,p=4$"));
        assert!(bob.is_active && !bob.is_superuser && !bob.is_verified);

        let root = users
            .add("Root@Example.com", None, true)
            .unwrap()
            .user()
            .clone();
        assert!(root.is_superuser);
        assert_eq!(users.list().unwrap(), [bob.clone(), root.clone()]);

        // Existing, whatever the case: nothing changes (even with a bad password).
        assert_eq!(
            users.add("BOB@example.com", Some("x"), true).unwrap(),
            AddOutcome::Exists(bob.clone())
        );
        assert_eq!(users.list().unwrap().len(), 2);

        assert_eq!(
            users.get_by_email("root@example.COM").unwrap().as_ref(),
            Some(&root)
        );
        assert_eq!(users.list_email("root@example.com").unwrap(), []);
        assert_eq!(
            users.list_email("Root@example.com").unwrap(),
            std::slice::from_ref(&root)
        );
        assert_eq!(users.get_by_id(&bob.id).unwrap().as_ref(), Some(&bob));
        assert_eq!(
            users
                .get_by_id(&bob.id.to_uppercase().replace('-', ""))
                .unwrap()
                .as_ref(),
            Some(&bob)
        );
        assert_eq!(users.get_by_id("not-a-uuid").unwrap(), None);

        assert_eq!(users.delete("BOB@EXAMPLE.COM").unwrap(), bob);
        let err = users.delete("bob@example.com").unwrap_err();
        assert!(matches!(err, Error::UserNotExists { .. }));
        assert_eq!(err.to_string(), "UserNotExists");
        assert_eq!(users.list().unwrap(), [root]);
    }

    #[test]
    fn add_validates_like_the_reference() {
        let (_dir, users) = fresh();
        let err = users
            .add("notanemail", Some("whatever123"), false)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("1 validation error for UserCreate\nemail\n"),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains("An email address must have an @-sign."));
        let err = users
            .add("dave@example.com", Some("short"), false)
            .unwrap_err();
        assert_eq!(err.to_string(), "InvalidPasswordException");
        assert!(
            matches!(err, Error::InvalidPassword { ref reason } if reason == "Password should be at least 8 characters")
        );
        // Code points, not bytes: 8 characters are enough.
        users
            .add("eve@example.com", Some("éééééééé"), false)
            .unwrap();
        // The stored address is the normalised one.
        let u = users
            .add(" Carol <carol@EXAMPLE.com>", Some("carolpass"), false)
            .unwrap();
        assert_eq!(u.user().email, "carol@example.com");
    }

    #[test]
    fn create_refuses_existing_normalised_email() {
        let (_dir, users) = fresh();
        users
            .create("amy@example.com", "amypassword", false)
            .unwrap();
        let err = users
            .create("AMY@Example.com", "amypassword", false)
            .unwrap_err();
        assert!(matches!(err, Error::UserAlreadyExists { .. }));
        // add() looks the raw input up first: " amy@example.com" is not found that way, so it
        // reaches create(), which finds the normalised address (the reference does the same).
        assert!(matches!(
            users.add(" amy@example.com", Some("amypassword"), false),
            Err(Error::UserAlreadyExists { .. })
        ));
    }

    #[test]
    fn authenticate_and_set_password() {
        let (_dir, users) = fresh();
        let u = users
            .add("pat@example.com", Some("patpassword"), false)
            .unwrap()
            .user()
            .clone();
        assert_eq!(
            users
                .authenticate("PAT@example.com", "patpassword")
                .unwrap(),
            Some(u.clone())
        );
        assert_eq!(
            users
                .authenticate("pat@example.com", "wrongpassword")
                .unwrap(),
            None
        );
        assert_eq!(
            users
                .authenticate("nobody@example.com", "patpassword")
                .unwrap(),
            None
        );

        users.set_password(&u.id, "newpassword").unwrap();
        assert_eq!(
            users
                .authenticate("pat@example.com", "patpassword")
                .unwrap(),
            None
        );
        assert!(users
            .authenticate("pat@example.com", "newpassword")
            .unwrap()
            .is_some());
        assert!(matches!(
            users.set_password(&u.id, "short"),
            Err(Error::InvalidPassword { .. })
        ));
        let missing = uuid::Uuid::nil().to_string();
        assert!(matches!(
            users.set_password(&missing, "longenough"),
            Err(Error::UserNotExists { .. })
        ));

        // Inactive users do not log in.
        let conn = Connection::open(users.path().unwrap()).unwrap();
        conn.execute("UPDATE user SET is_active = 0", []).unwrap();
        assert_eq!(
            users
                .authenticate("pat@example.com", "newpassword")
                .unwrap(),
            None
        );
    }

    #[test]
    fn bcrypt_hash_is_upgraded_on_login() {
        let (_dir, users) = fresh();
        let u = users
            .add("old@example.com", Some("oldpassword"), false)
            .unwrap()
            .user()
            .clone();
        let bcrypt_hash = bcrypt::hash_with_salt("oldpassword", 4, [3u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        users.table.set_hash(&u.id, &bcrypt_hash).unwrap();
        let logged = users
            .authenticate("old@example.com", "oldpassword")
            .unwrap()
            .unwrap();
        assert!(logged
            .hashed_password
            .starts_with("$argon2id$v=19$m=65536,t=3,p=4$"));
        assert_eq!(
            users.get_by_id(&u.id).unwrap().unwrap().hashed_password,
            logged.hashed_password
        );
        // Unknown hash formats never log in (the reference fails with a server error).
        users.table.set_hash(&u.id, "plaintext").unwrap();
        assert_eq!(
            users.authenticate("old@example.com", "plaintext").unwrap(),
            None
        );
    }

    #[test]
    fn rows_written_behind_our_back_are_seen() {
        let (_dir, users) = fresh();
        let conn = Connection::open(users.path().unwrap()).unwrap();
        conn.execute(
            "INSERT INTO user VALUES ('0b1c3f3e-8a57-4d3c-9d0e-2f0c5f1f6a11', 'ext@example.com', 'x', 1, 0, 1)",
            [],
        )
        .unwrap();
        let u = users.get_by_email("ext@example.com").unwrap().unwrap();
        assert!(u.is_verified);
        // A database file replaced by another one (a restored backup) is read, not the
        // file the kept connections were opened on.
        let other = users.path().unwrap().with_file_name("other.sqlite");
        let conn = Connection::open(&other).unwrap();
        conn.execute_batch(&format!("{CREATE_TABLE_SQL}; {CREATE_INDEX_SQL};"))
            .unwrap();
        conn.execute(
            "INSERT INTO user VALUES ('1b1c3f3e-8a57-4d3c-9d0e-2f0c5f1f6a11', 'new@example.com', 'x', 1, 0, 0)",
            [],
        )
        .unwrap();
        drop(conn);
        std::fs::rename(&other, users.path().unwrap()).unwrap();
        let emails: Vec<String> = users.list().unwrap().into_iter().map(|u| u.email).collect();
        assert_eq!(emails, ["new@example.com"]);
        // A database file without the table (e.g. wiped) gets one on the next call.
        std::fs::remove_file(users.path().unwrap()).unwrap();
        assert_eq!(users.list().unwrap(), []);
    }

    #[test]
    fn python_style_uuid_parsing() {
        let want = Some("12345678-1234-5678-1234-567812345678".to_owned());
        for s in [
            "12345678-1234-5678-1234-567812345678",
            "12345678123456781234567812345678",
            "{12345678-1234-5678-1234-567812345678}",
            "urn:uuid:12345678-1234-5678-1234-567812345678",
            "1234-5678123456781234-5678-12345678",
            "12345678-1234-5678-1234-567812345678".to_uppercase().leak(),
        ] {
            assert_eq!(canonical_uuid(s), want, "{s}");
        }
        for s in [
            "",
            "1234",
            "g2345678123456781234567812345678",
            "12345678-1234-5678-1234-5678123456789",
        ] {
            assert_eq!(canonical_uuid(s), None, "{s}");
        }
    }
}
