//! The user table in `<statedir>/db.sqlite`, as fastapi-users' SQLAlchemy
//! adapter keeps it (the reference's file: both servers can share it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use crate::pool::{ConnPool, Pooled};
use crate::users::{UserTable, CREATE_INDEX_SQL, CREATE_TABLE_SQL, DB_FILE};
use crate::{Error, Result, User};

/// How long a call waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const COLUMNS: &str = "id, email, hashed_password, is_active, is_superuser, is_verified";

/// The user table of one state directory's `db.sqlite`.
#[derive(Debug)]
pub(crate) struct SqliteUsers {
    path: PathBuf,
    pool: Arc<ConnPool>,
}

impl SqliteUsers {
    /// Opens `<statedir>/db.sqlite`, creating the directory, the file and the table (with the
    /// reference's DDL) when missing. Existing databases are used as they are.
    pub(crate) fn open(statedir: &Path) -> Result<SqliteUsers> {
        std::fs::create_dir_all(statedir).map_err(|source| Error::StateDir {
            path: statedir.to_owned(),
            source,
        })?;
        let users = SqliteUsers {
            path: statedir.join(DB_FILE),
            pool: Arc::default(),
        };
        users.connect()?;
        Ok(users)
    }
}

impl UserTable for SqliteUsers {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn by_email(&self, email: &str) -> Result<Option<User>> {
        let conn = self.connect()?;
        self.query_one(
            &conn,
            &format!("SELECT {COLUMNS} FROM user WHERE lower(email) = lower(?1)"),
            email,
        )
    }

    fn by_id(&self, id: &str) -> Result<Option<User>> {
        let conn = self.connect()?;
        self.query_one(
            &conn,
            &format!("SELECT {COLUMNS} FROM user WHERE id = ?1"),
            id,
        )
    }

    fn count(&self) -> Result<u64> {
        let conn = self.connect()?;
        let n: i64 = conn
            .query_row("SELECT count(*) FROM user", [], |r| r.get(0))
            .map_err(|e| self.db("count users", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn list(&self) -> Result<Vec<User>> {
        let conn = self.connect()?;
        self.query_all(&conn, &format!("SELECT {COLUMNS} FROM user"), &[])
    }

    fn list_email(&self, email: &str) -> Result<Vec<User>> {
        let conn = self.connect()?;
        self.query_all(
            &conn,
            &format!("SELECT {COLUMNS} FROM user WHERE email = ?1"),
            &[email],
        )
    }

    fn insert(&self, user: &User, max_users: Option<u64>) -> Result<()> {
        let mut conn = self.connect()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db("begin insert", e))?;
        // Checked again under the write lock: another process may have added it meanwhile.
        if self
            .query_one(
                &tx,
                &format!("SELECT {COLUMNS} FROM user WHERE lower(email) = lower(?1)"),
                &user.email,
            )?
            .is_some()
        {
            return Err(Error::UserAlreadyExists {
                email: user.email.clone(),
            });
        }
        if let Some(max) = max_users {
            let count: i64 = tx
                .query_row("SELECT count(*) FROM user", [], |r| r.get(0))
                .map_err(|e| self.db("count users", e))?;
            if u64::try_from(count).unwrap_or(0) >= max {
                return Err(Error::TooManyUsers { max });
            }
        }
        tx.execute(
            "INSERT INTO user (id, email, hashed_password, is_active, is_superuser, is_verified) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (
                &user.id,
                &user.email,
                &user.hashed_password,
                user.is_active,
                user.is_superuser,
                user.is_verified,
            ),
        )
        .map_err(|e| self.db("insert user", e))?;
        tx.commit().map_err(|e| self.db("commit insert", e))?;
        Ok(())
    }

    fn delete(&self, id: &str) -> Result<()> {
        let conn = self.connect()?;
        conn.execute("DELETE FROM user WHERE id = ?1", [id])
            .map_err(|e| self.db("delete user", e))?;
        Ok(())
    }

    fn set_hash(&self, id: &str, hash: &str) -> Result<()> {
        let conn = self.connect()?;
        conn.execute(
            "UPDATE user SET hashed_password = ?1 WHERE id = ?2",
            [hash, id],
        )
        .map_err(|e| self.db("update password hash", e))?;
        Ok(())
    }
}

impl SqliteUsers {
    /// A kept connection, or a new one (with the table created first if the file lacks it).
    fn connect(&self) -> Result<Pooled<'_>> {
        let conn = match self.pool.take(&self.path) {
            Some(conn) => conn,
            None => self.open_connection()?,
        };
        Ok(self.pool.lend(&self.path, conn))
    }

    fn open_connection(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(&self.path, flags).map_err(|e| self.db("open", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.db("set busy timeout", e))?;
        if !self.has_user_table(&conn)? {
            // Like SQLAlchemy's create_all: table and index together, only if the table is missing.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.db("begin create table", e))?;
            if !self.has_user_table(&tx)? {
                tx.execute_batch(&format!("{CREATE_TABLE_SQL};\n{CREATE_INDEX_SQL};"))
                    .map_err(|e| self.db("create table", e))?;
            }
            tx.commit().map_err(|e| self.db("commit create table", e))?;
        }
        Ok(conn)
    }

    fn has_user_table(&self, conn: &Connection) -> Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'user'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(|e| self.db("look up table", e))
    }

    fn query_one(&self, conn: &Connection, sql: &str, arg: &str) -> Result<Option<User>> {
        let mut stmt = conn
            .prepare_cached(sql)
            .map_err(|e| self.db("prepare query", e))?;
        let row = stmt
            .query_row([arg], |row| Ok(self.user_from_row(row)))
            .optional()
            .map_err(|e| self.db("query", e))?;
        row.transpose()
    }

    fn query_all(&self, conn: &Connection, sql: &str, args: &[&str]) -> Result<Vec<User>> {
        let mut stmt = conn
            .prepare_cached(sql)
            .map_err(|e| self.db("prepare query", e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |row| {
                Ok(self.user_from_row(row))
            })
            .map_err(|e| self.db("query", e))?;
        let mut users = Vec::new();
        for row in rows {
            users.push(row.map_err(|e| self.db("read row", e))??);
        }
        Ok(users)
    }

    fn user_from_row(&self, row: &Row<'_>) -> Result<User> {
        let text = |i: usize, column: &'static str| -> Result<String> {
            match row.get_ref(i) {
                Ok(ValueRef::Text(t)) => {
                    String::from_utf8(t.to_vec()).map_err(|_| self.bad_row(column))
                }
                _ => Err(self.bad_row(column)),
            }
        };
        // SQLAlchemy stores booleans as 0/1 and reads any number with bool().
        let flag = |i: usize, column: &'static str| -> Result<bool> {
            match row.get_ref(i) {
                Ok(ValueRef::Integer(n)) => Ok(n != 0),
                Ok(ValueRef::Real(x)) => Ok(x != 0.0),
                _ => Err(self.bad_row(column)),
            }
        };
        Ok(User {
            id: text(0, "id")?,
            email: text(1, "email")?,
            hashed_password: text(2, "hashed_password")?,
            is_active: flag(3, "is_active")?,
            is_superuser: flag(4, "is_superuser")?,
            is_verified: flag(5, "is_verified")?,
        })
    }

    fn db(&self, op: &'static str, source: rusqlite::Error) -> Error {
        Error::Db {
            path: self.path.clone(),
            op,
            source,
        }
    }

    fn bad_row(&self, column: &'static str) -> Error {
        Error::BadRow {
            path: self.path.clone(),
            column,
        }
    }
}
