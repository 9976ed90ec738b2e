//! The one place that chooses where data and users live: the state
//! directory and its `db.sqlite` (the default, nothing to set up), or S3 and
//! PostgreSQL (`[storage]` and `[database]` in the configuration), for
//! replicas. Everything above gets a `StateDir` and a `Users` either way.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use cat2_core::StateDir;

/// Where the data and the users live: the state directory and its
/// `db.sqlite` unless the configuration names other backends.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    /// Data on S3 with its catalog in the database.
    pub storage: Option<cat2_cloud::CloudConfig>,
    /// Where objects being written are spooled, if the configuration says;
    /// else `spool/` in the state directory the server is given.
    pub spool: Option<std::path::PathBuf>,
    /// Users in PostgreSQL.
    pub database_url: Option<String>,
}

impl Backends {
    /// The state: on S3 when configured, else the local `statedir`
    /// (which then also holds only what replicas keep locally: spools).
    pub fn open_state(&self, statedir: &Path) -> anyhow::Result<StateDir> {
        match &self.storage {
            None => StateDir::open(statedir)
                .with_context(|| format!("opening state dir {}", statedir.display())),
            Some(cloud) => {
                let mut cloud = cloud.clone();
                cloud.spool_dir = self.spool.clone().unwrap_or_else(|| statedir.join("spool"));
                let storage = cat2_cloud::CloudStorage::open(&cloud).with_context(|| {
                    format!(
                        "opening {} with its catalog in {}",
                        cloud.storage_url,
                        cat2_cloud::redact(&cloud.database_url)
                    )
                })?;
                StateDir::with_storage(statedir.to_path_buf(), Arc::new(storage))
                    .with_context(|| format!("making the layout in {}", cloud.storage_url))
            }
        }
    }

    /// The users: in PostgreSQL when configured, else `statedir/db.sqlite`.
    pub fn open_users(&self, statedir: &Path) -> anyhow::Result<cat2_auth::Users> {
        match &self.database_url {
            None => cat2_auth::Users::open(statedir)
                .with_context(|| format!("opening the user database of {}", statedir.display())),
            Some(url) => {
                let table = cat2_cloud::PgUsers::open(url)
                    .with_context(|| format!("opening the users in {}", cat2_cloud::redact(url)))?;
                Ok(cat2_auth::Users::with_table(Arc::new(table)))
            }
        }
    }
}
