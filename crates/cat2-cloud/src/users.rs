//! The users in PostgreSQL: the reference's `user` table as SQLAlchemy
//! makes it on PostgreSQL (native `uuid` ids, the unique `ix_user_email`
//! index), so every replica sees the same users, and a token signed with
//! the shared `CATERVA2_SECRET` is good on any of them.
//!
//! E-mails are compared ignoring ASCII case only (`translate`, not
//! PostgreSQL's locale-aware `lower`), exactly as the SQLite table compares
//! them, so that moving users between the two changes no login.

use std::sync::Arc;

use cat2_auth::{Error, Result, User, UserTable};
use tokio_postgres::types::ToSql;

use crate::bridge::Bridge;
use crate::pg::PgPool;

const TABLE: &str = r#"
CREATE TABLE IF NOT EXISTS "user" (
    id UUID NOT NULL,
    email VARCHAR(320) NOT NULL,
    hashed_password VARCHAR(1024) NOT NULL,
    is_active BOOLEAN NOT NULL,
    is_superuser BOOLEAN NOT NULL,
    is_verified BOOLEAN NOT NULL,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_user_email ON "user" (email);
"#;

const COLUMNS: &str = "id, email, hashed_password, is_active, is_superuser, is_verified";

/// `lower()` of ASCII letters only, as SQLite's.
const ASCII_LOWER: &str =
    "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')";

fn ascii_lower(expr: &str) -> String {
    ASCII_LOWER.replace("{}", expr)
}

/// The user table in a PostgreSQL database.
#[derive(Debug)]
pub struct PgUsers {
    bridge: Bridge,
    pool: Arc<PgPool>,
    place: String,
}

fn user(r: &tokio_postgres::Row) -> User {
    User {
        id: r.get::<_, uuid::Uuid>(0).hyphenated().to_string(),
        email: r.get(1),
        hashed_password: r.get(2),
        is_active: r.get(3),
        is_superuser: r.get(4),
        is_verified: r.get(5),
    }
}

impl PgUsers {
    /// Connects to the database at `url`, making the table if it is missing.
    pub fn open(url: &str) -> Result<PgUsers> {
        let place = crate::storage::redact(url);
        let failed = |op: &'static str, e: String| Error::Backend {
            place: place.clone(),
            op,
            source: e.into(),
        };
        let bridge = Bridge::new(1).map_err(|e| failed("starting its runtime", e.to_string()))?;
        let pool =
            PgPool::new("users", url, 4).map_err(|e| failed("reading the url", e.to_string()))?;
        let users = PgUsers {
            bridge,
            pool,
            place: place.clone(),
        };
        users.run("making the user table", |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                // One replica at a time: CREATE ... IF NOT EXISTS races otherwise.
                tx.execute("SELECT pg_advisory_xact_lock(1664235568, 1)", &[])
                    .await?;
                tx.batch_execute(TABLE).await?;
                tx.commit().await?;
                Ok(())
            })
        })?;
        Ok(users)
    }

    fn run<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c mut tokio_postgres::Client,
            ) -> futures_util::future::BoxFuture<
                'c,
                std::result::Result<T, UsersDbError>,
            > + Send
            + 'static,
    {
        let pool = self.pool.clone();
        self.bridge
            .run(async move {
                let mut conn = pool
                    .get()
                    .await
                    .map_err(|e| UsersDbError::Db(Box::new(e)))?;
                f(&mut conn).await
            })
            .map_err(|e| match e {
                UsersDbError::Auth(e) => e,
                UsersDbError::Db(source) => Error::Backend {
                    place: self.place.clone(),
                    op,
                    source,
                },
            })
    }

    fn query(&self, op: &'static str, sql: String, arg: Option<Arg>) -> Result<Vec<User>> {
        self.run(op, move |c| {
            Box::pin(async move {
                let rows = match &arg {
                    None => c.query(&sql, &[]).await?,
                    Some(a) => c.query(&sql, &[a.as_sql()]).await?,
                };
                Ok(rows.iter().map(user).collect())
            })
        })
    }
}

/// A query's one parameter.
enum Arg {
    Text(String),
    Id(uuid::Uuid),
}

impl Arg {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Arg::Text(s) => s,
            Arg::Id(u) => u,
        }
    }
}

/// A database fault, or an answer of the user rules (exists, too many).
#[derive(Debug)]
enum UsersDbError {
    Auth(Error),
    Db(Box<dyn std::error::Error + Send + Sync>),
}

impl From<tokio_postgres::Error> for UsersDbError {
    fn from(e: tokio_postgres::Error) -> Self {
        UsersDbError::Db(Box::new(e))
    }
}

fn id_of(id: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(id).ok()
}

impl UserTable for PgUsers {
    fn describe(&self) -> String {
        self.place.clone()
    }

    fn by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM \"user\" WHERE {} = {}",
            ascii_lower("email"),
            ascii_lower("$1")
        );
        let rows = self.query("looking up a user", sql, Some(Arg::Text(email.into())))?;
        Ok(rows.into_iter().next())
    }

    fn by_id(&self, id: &str) -> Result<Option<User>> {
        let Some(id) = id_of(id) else {
            return Ok(None);
        };
        let sql = format!("SELECT {COLUMNS} FROM \"user\" WHERE id = $1");
        let rows = self.query("looking up a user", sql, Some(Arg::Id(id)))?;
        Ok(rows.into_iter().next())
    }

    fn count(&self) -> Result<u64> {
        self.run("counting users", |c| {
            Box::pin(async move {
                let n: i64 = c
                    .query_one("SELECT count(*) FROM \"user\"", &[])
                    .await?
                    .get(0);
                Ok(u64::try_from(n).unwrap_or(0))
            })
        })
    }

    fn list(&self) -> Result<Vec<User>> {
        self.query(
            "listing users",
            format!("SELECT {COLUMNS} FROM \"user\""),
            None,
        )
    }

    fn list_email(&self, email: &str) -> Result<Vec<User>> {
        let sql = format!("SELECT {COLUMNS} FROM \"user\" WHERE email = $1");
        self.query("listing users", sql, Some(Arg::Text(email.into())))
    }

    fn insert(&self, new: &User, max_users: Option<u64>) -> Result<()> {
        let Some(id) = id_of(&new.id) else {
            return Err(Error::UserNotExists {
                key: new.id.clone(),
            });
        };
        let new = new.clone();
        self.run("adding a user", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                // Inserts wait for each other (the lock conflicts with
                // itself), so the checks below hold until the commit.
                tx.batch_execute("LOCK TABLE \"user\" IN SHARE ROW EXCLUSIVE MODE")
                    .await?;
                let taken = format!(
                    "SELECT 1 FROM \"user\" WHERE {} = {}",
                    ascii_lower("email"),
                    ascii_lower("$1")
                );
                if tx.query_opt(&taken, &[&new.email]).await?.is_some() {
                    return Err(UsersDbError::Auth(Error::UserAlreadyExists {
                        email: new.email.clone(),
                    }));
                }
                if let Some(max) = max_users {
                    let n: i64 = tx
                        .query_one("SELECT count(*) FROM \"user\"", &[])
                        .await?
                        .get(0);
                    if u64::try_from(n).unwrap_or(0) >= max {
                        return Err(UsersDbError::Auth(Error::TooManyUsers { max }));
                    }
                }
                tx.execute(
                    "INSERT INTO \"user\" (id, email, hashed_password, is_active, is_superuser, \
                     is_verified) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &id,
                        &new.email,
                        &new.hashed_password,
                        &new.is_active,
                        &new.is_superuser,
                        &new.is_verified,
                    ],
                )
                .await?;
                tx.commit().await?;
                Ok(())
            })
        })
    }

    fn delete(&self, id: &str) -> Result<()> {
        let Some(id) = id_of(id) else {
            return Ok(());
        };
        self.run("deleting a user", move |c| {
            Box::pin(async move {
                c.execute("DELETE FROM \"user\" WHERE id = $1", &[&id])
                    .await?;
                Ok(())
            })
        })
    }

    fn set_hash(&self, id: &str, hash: &str) -> Result<()> {
        let Some(id) = id_of(id) else {
            return Ok(());
        };
        let hash = hash.to_string();
        self.run("storing a password hash", move |c| {
            Box::pin(async move {
                c.execute(
                    "UPDATE \"user\" SET hashed_password = $1 WHERE id = $2",
                    &[&hash, &id],
                )
                .await?;
                Ok(())
            })
        })
    }
}
