//! Reading Caterva2's TOML configuration (`[server]` table) and `.env`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cat2_server::config::{parse_size, Config};

use crate::backends::Backends;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    server: ServerTable,
    /// cat2rs only: data on S3-compatible object storage (replicas).
    storage: Option<StorageTable>,
    /// cat2rs only: users, catalog and locks in PostgreSQL (replicas).
    database: Option<DatabaseTable>,
}

/// `[storage]`: where the data lives when it is not the state directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageTable {
    /// `s3://BUCKET[/PREFIX]`.
    url: String,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    /// Where objects being written are spooled (default `<statedir>/spool`).
    spool: Option<PathBuf>,
    /// Seconds superseded data objects are kept before they are deleted.
    gc_grace: Option<u64>,
    /// Bytes of the cache of small reads (a size such as "64M").
    cache_size: Option<toml::Value>,
}

/// `[database]`: the PostgreSQL database of users (and of the catalog,
/// with `[storage]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseTable {
    /// `postgresql://USER[:PASSWORD]@HOST:PORT/DB`.
    url: String,
    /// Most connections one replica's storage opens (the users' take 4 more).
    connections: Option<usize>,
}

/// The keys Caterva2 reads; unknown keys (peers, client sections) are ignored.
#[derive(Debug, Default, Deserialize)]
struct ServerTable {
    listen: Option<String>,
    urlbase: Option<String>,
    statedir: Option<PathBuf>,
    loglevel: Option<String>,
    login: Option<bool>,
    register: Option<bool>,
    maxusers: Option<u64>,
    quota: Option<toml::Value>,
    demo: Option<bool>,
    publish_root: Option<String>,
    /// cat2rs only: who may write to @public, "superusers" (default) or "users".
    public_writes: Option<String>,
    /// cat2rs only: let load_from_url reach loopback/private/link-local hosts.
    allow_private_urls: Option<bool>,
    /// cat2rs only: size bound of load_from_url (a size such as "4G").
    load_from_url_max_size: Option<toml::Value>,
    /// cat2rs only: time bound of load_from_url, in seconds.
    load_from_url_timeout: Option<u64>,
    /// cat2rs only: working memory of one request (a size such as "512M").
    request_memory_limit: Option<toml::Value>,
    /// cat2rs only: working memory of all requests together.
    total_memory_limit: Option<toml::Value>,
    /// cat2rs only: storage one computed answer too large for memory may be
    /// spilled into (a size such as "8G"; 0: refused instead).
    request_disk_limit: Option<toml::Value>,
    /// cat2rs only: storage all spilled answers together may hold.
    total_disk_limit: Option<toml::Value>,
    /// cat2rs only: longest a computation may run, in seconds.
    compute_time_limit: Option<u64>,
    /// cat2rs only: largest side of a viewer frame, in pixels.
    max_frame_side: Option<usize>,
    /// cat2rs only: longest a client may take to send request headers (and
    /// an idle keep-alive connection is kept), in seconds.
    header_timeout: Option<u64>,
    /// cat2rs only: longest a request body may stall, in seconds.
    body_timeout: Option<u64>,
    /// cat2rs only: most connections served at once.
    max_connections: Option<usize>,
}

/// Where Caterva2 looks for its configuration when `--conf` is not given.
fn default_paths() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("caterva2-server.toml")];
    if let Some(home) = std::env::var_os("HOME") {
        v.push(Path::new(&home).join(".caterva2-server.toml"));
    }
    v.push(PathBuf::from("/etc/caterva2-server.toml"));
    v
}

/// Loads the configuration and the backends it names; a missing file means
/// all defaults, as in Caterva2.
pub fn load(conf: Option<&Path>) -> anyhow::Result<(Config, Backends)> {
    let path = match conf {
        Some(p) => Some(p.to_path_buf()).filter(|p| p.exists()),
        None => default_paths().into_iter().find(|p| p.exists()),
    };
    let mut config = Config::default();
    let Some(path) = path else {
        return Ok((config, Backends::default()));
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: File =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let s = file.server;
    apply_limits(&mut config, &s)?;
    let backends = backends(file.storage, file.database)
        .with_context(|| format!("reading {}", path.display()))?;
    if let Some(v) = s.listen {
        config.urlbase = format!("http://{v}");
        config.listen = v;
    }
    if let Some(v) = s.urlbase {
        config.urlbase = v;
    }
    if let Some(v) = s.statedir {
        config.statedir = v;
    }
    if let Some(v) = s.loglevel {
        config.loglevel = v;
    }
    if let Some(v) = s.login {
        config.login = v;
    }
    if let Some(v) = s.register {
        config.register = v;
    }
    config.maxusers = s.maxusers.filter(|&n| n > 0);
    config.quota = s.quota.map(|v| size_value(v, "quota")).transpose()?;
    if let Some(v) = s.load_from_url_max_size {
        config.load_from_url_max_size = size_value(v, "load_from_url_max_size")?;
    }
    if let Some(v) = s.load_from_url_timeout {
        config.load_from_url_timeout = v;
    }
    if let Some(v) = s.allow_private_urls {
        config.allow_private_urls = v;
    }
    if let Some(v) = s.demo {
        config.demo = v;
    }
    config.publish_root = s.publish_root;
    config.public_writes = match s.public_writes.as_deref() {
        None | Some("superusers") => cat2_core::write::PublicWrites::Superusers,
        Some("users") => cat2_core::write::PublicWrites::Users,
        Some(other) => {
            anyhow::bail!("public_writes must be \"superusers\" or \"users\", not {other:?}")
        }
    };
    Ok((config, backends))
}

fn backends(
    storage: Option<StorageTable>,
    database: Option<DatabaseTable>,
) -> anyhow::Result<Backends> {
    let connections = database.as_ref().and_then(|d| d.connections);
    let database_url = database.map(|d| d.url);
    let Some(st) = storage else {
        return Ok(Backends {
            storage: None,
            spool: None,
            database_url,
        });
    };
    let Some(db) = &database_url else {
        anyhow::bail!(
            "[storage] needs a [database] url: the catalog of what the bucket holds is kept there"
        );
    };
    let mut cloud = cat2_cloud::CloudConfig::new(&st.url, db);
    cloud.endpoint = st.endpoint;
    cloud.region = st.region;
    cloud.access_key_id = st.access_key_id;
    cloud.secret_access_key = st.secret_access_key;
    if let Some(n) = connections {
        anyhow::ensure!(n >= 4, "[database] connections must be at least 4");
        cloud.connections = n;
    }
    if let Some(g) = st.gc_grace {
        cloud.gc_grace = std::time::Duration::from_secs(g);
    }
    if let Some(v) = st.cache_size {
        cloud.cache_bytes = usize::try_from(size_value(v, "[storage] cache_size")?)
            .context("[storage] cache_size is too large")?;
    }
    Ok(Backends {
        spool: st.spool.clone(),
        storage: Some(cloud),
        database_url,
    })
}

/// The budgets of requests and connections; zero is refused (it would make
/// the server refuse everything or nothing).
fn apply_limits(config: &mut Config, s: &ServerTable) -> anyhow::Result<()> {
    let positive = |v: u64, key: &str| -> anyhow::Result<u64> {
        anyhow::ensure!(v > 0, "{key} must be more than 0");
        Ok(v)
    };
    let secs = |v: u64, key: &str| -> anyhow::Result<std::time::Duration> {
        Ok(std::time::Duration::from_secs(positive(v, key)?))
    };
    let limits = &mut config.limits;
    if let Some(v) = &s.request_memory_limit {
        let key = "request_memory_limit";
        limits.request_memory = positive(size_value(v.clone(), key)?, key)?;
    }
    if let Some(v) = &s.total_memory_limit {
        let key = "total_memory_limit";
        limits.total_memory = positive(size_value(v.clone(), key)?, key)?;
    }
    if let Some(v) = &s.request_disk_limit {
        limits.request_disk = size_value(v.clone(), "request_disk_limit")?;
    }
    if let Some(v) = &s.total_disk_limit {
        limits.total_disk = size_value(v.clone(), "total_disk_limit")?;
    }
    if let Some(v) = s.compute_time_limit {
        limits.compute_time = secs(v, "compute_time_limit")?;
    }
    if let Some(v) = s.max_frame_side {
        config.max_frame_side = positive(v as u64, "max_frame_side")? as usize;
    }
    let conns = &mut config.connections;
    if let Some(v) = s.header_timeout {
        conns.header_timeout = secs(v, "header_timeout")?;
    }
    if let Some(v) = s.body_timeout {
        conns.body_timeout = secs(v, "body_timeout")?;
    }
    if let Some(v) = s.max_connections {
        conns.max_connections = positive(v as u64, "max_connections")? as usize;
    }
    Ok(())
}

/// A size given as a number of bytes or a string such as "10G".
fn size_value(v: toml::Value, key: &str) -> anyhow::Result<u64> {
    match v {
        toml::Value::Integer(n) => {
            u64::try_from(n).with_context(|| format!("{key} must be positive"))
        }
        toml::Value::String(s) => parse_size(&s)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("reading {key}")),
        other => anyhow::bail!("{key} must be a size such as \"10G\", not {other}"),
    }
}

/// Loads `KEY=VALUE` lines from `./.env` into the environment without
/// overriding variables that are already set (python-dotenv's behaviour).
pub fn load_dotenv() {
    let Ok(text) = std::fs::read_to_string(".env") else {
        return;
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
        if !k.is_empty() && std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
}
