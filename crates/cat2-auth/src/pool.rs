//! Reused SQLite connections to `db.sqlite`.
//!
//! Opening a connection costs ~0.3 ms (file open, locks, schema read), which
//! used to be most of the time of a small logged-in request. Connections are
//! kept for reuse instead: SQLite checks the file's change counter at the
//! start of every read transaction, so a reused connection still sees users
//! that another process (`cat2rs adduser`, a reference server on the same
//! state dir) committed a moment ago. If the file is replaced (a new inode),
//! the kept connections belong to the old file and are dropped.

use std::ops::{Deref, DerefMut};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;

/// Most idle connections kept; more may be open at once, the rest are closed.
const MAX_IDLE: usize = 8;

/// Idle connections to one database file.
#[derive(Debug, Default)]
pub(crate) struct ConnPool {
    idle: Mutex<Idle>,
}

#[derive(Debug, Default)]
struct Idle {
    /// `(device, inode)` of the file the connections were opened on.
    file: Option<(u64, u64)>,
    conns: Vec<Connection>,
}

/// The identity of the file at `path`, if it exists.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl ConnPool {
    /// An idle connection to the file now at `path`, if one is kept.
    pub(crate) fn take(&self, path: &Path) -> Option<Connection> {
        let now = file_identity(path);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.file != now || now.is_none() {
            idle.conns.clear();
            idle.file = now;
            return None;
        }
        idle.conns.pop()
    }

    /// Lends `conn` to a caller; it comes back when the guard is dropped.
    pub(crate) fn lend<'p>(&'p self, path: &Path, conn: Connection) -> Pooled<'p> {
        Pooled {
            pool: self,
            file: file_identity(path),
            conn: Some(conn),
        }
    }

    fn give_back(&self, file: Option<(u64, u64)>, conn: Connection) {
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if file.is_some() && idle.file == file && idle.conns.len() < MAX_IDLE {
                idle.conns.push(conn);
            }
        }
    }
}

/// A connection borrowed from a [`ConnPool`].
pub(crate) struct Pooled<'p> {
    pool: &'p ConnPool,
    file: Option<(u64, u64)>,
    conn: Option<Connection>,
}

impl Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a lent connection is present until dropped")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a lent connection is present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(self.file, conn);
        }
    }
}
