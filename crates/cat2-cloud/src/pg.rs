//! A small pool of PostgreSQL connections (tokio-postgres on the bridge's
//! runtime).
//!
//! Bounded: at most `max_open` connections at once, so that N replicas stay
//! within the server's `max_connections`; a caller waits for one at most
//! [`WAIT`] and then gets an error naming the pool, never a hang. A broken
//! connection (the database restarted) is dropped rather than returned.
//! Callers that hold a connection for long (advisory locks held across a
//! whole edit) take it from a pool of their own, so that they can never
//! exhaust the one that short catalog queries need (which would deadlock:
//! every lock holder waiting for a query connection).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

use crate::tls::{Target, UrlError};

/// Longest a caller waits for a free connection.
const WAIT: Duration = Duration::from_secs(60);

/// Connections to one database.
#[derive(Debug)]
pub struct PgPool {
    name: &'static str,
    target: Target,
    idle: Mutex<Vec<Client>>,
    open: Arc<Semaphore>,
}

/// A connection lent by a [`PgPool`]; it goes back when dropped.
pub struct Conn {
    client: Option<Client>,
    pool: Arc<PgPool>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Conn {
    /// Closes the connection instead of returning it to the pool.
    pub fn discard(&mut self) {
        self.client = None;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|c| !c.is_closed()) {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.push(client);
        }
    }
}

/// Why a connection could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("connecting to the database: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error("no {0} database connection came free within {1:?}")]
    Exhausted(&'static str, Duration),
}

impl PgPool {
    /// A pool for the database at `url` (`postgresql://user@host:port/db`,
    /// with libpq's `sslmode` and `sslrootcert`: see [`crate::tls`]);
    /// connects lazily. Must be called on the bridge's runtime or outside
    /// any (connections are driven by tasks spawned where they are made).
    pub fn new(name: &'static str, url: &str, max_open: usize) -> Result<Arc<PgPool>, UrlError> {
        let mut target = Target::parse(url)?;
        if target.config.get_application_name().is_none() {
            target.config.application_name("cat2rs");
        }
        target.config.connect_timeout(Duration::from_secs(10));
        Ok(Arc::new(PgPool {
            name,
            target,
            idle: Mutex::new(Vec::new()),
            open: Arc::new(Semaphore::new(max_open.max(1))),
        }))
    }

    /// A connection: an idle one, or a new one if fewer than `max_open` are
    /// out. Runs on the bridge's runtime (the connection's task is spawned
    /// there).
    pub async fn get(self: &Arc<Self>) -> Result<Conn, PoolError> {
        let permit = tokio::time::timeout(WAIT, self.open.clone().acquire_owned())
            .await
            .map_err(|_| PoolError::Exhausted(self.name, WAIT))?
            .map_err(|_| PoolError::Exhausted(self.name, WAIT))?;
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some(c) = idle.pop() {
                if !c.is_closed() {
                    found = Some(c);
                    break;
                }
            }
            found
        };
        let client = match reused {
            Some(c) => c,
            None => self.target.connect().await.map_err(PoolError::Connect)?,
        };
        Ok(Conn {
            client: Some(client),
            pool: self.clone(),
            _permit: permit,
        })
    }
}
