//! `cat2rs`: the command line. Glue only: parse arguments, build the
//! library objects, run, and print errors with their causes. The server and
//! the local user administration are here; the client commands (`roots`,
//! `list`, `show`, `upload`, ...) in [`remote`].

mod backends;
mod conf;
mod memory;
mod remote;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// See [`memory`]: freed pages are kept for the next request, and returned when idle.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cat2rs",
    version,
    about = "A Caterva2-compatible server for Blosc2 and HDF5 datasets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (same flags as `cat2-server`).
    Serve {
        /// TOML configuration file with a [server] table.
        // The help text names a TOML table, not a link.
        #[allow(rustdoc::broken_intra_doc_links)]
        #[arg(long)]
        conf: Option<PathBuf>,
        /// State directory (datasets, users).
        #[arg(long)]
        statedir: Option<PathBuf>,
        /// Address to bind, HOST:PORT.
        #[arg(long)]
        listen: Option<String>,
        /// Log level: debug, info, warning, error.
        #[arg(long)]
        loglevel: Option<String>,
    },
    /// Add a user to a state directory's user database (works while a server runs), or
    /// through a server with --url.
    Adduser {
        /// E-mail address of the new user.
        email: String,
        /// Password (at least 8 characters); a random one is generated and
        /// printed when omitted.
        password: Option<String>,
        /// Make the user a superuser.
        #[arg(long, short = 'S')]
        superuser: bool,
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        server: remote::AdminRemote,
    },
    /// Delete a user and their @personal files (of a state directory, or through a server with --url).
    Deluser {
        email: String,
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        server: remote::AdminRemote,
    },
    /// List the users (of a state directory, or of a server with --url).
    #[command(alias = "lsu")]
    Listusers {
        #[command(flatten)]
        place: Place,
        #[command(flatten)]
        server: remote::AdminRemote,
    },
    /// Write the example datasets into @public/examples of a state directory.
    Examples {
        #[command(flatten)]
        place: Place,
    },
    /// Copy a Caterva2 state directory (datasets, proxies, lazy expressions,
    /// users) into the object store and database a configuration names.
    Import {
        /// The state directory to copy from.
        statedir: PathBuf,
        /// The configuration with [storage] and [database].
        // The help text names TOML tables, not links.
        #[allow(rustdoc::broken_intra_doc_links)]
        #[arg(long)]
        conf: PathBuf,
    },
    /// Copy the state of the object store and database a configuration names
    /// into a state directory (that a Caterva2 server can serve).
    Export {
        /// The state directory to copy into (made if missing).
        statedir: PathBuf,
        /// The configuration with [storage] and [database].
        // The help text names TOML tables, not links.
        #[allow(rustdoc::broken_intra_doc_links)]
        #[arg(long)]
        conf: PathBuf,
    },
    #[command(flatten)]
    Remote(remote::RemoteCommand),
}

/// Which state and users a local admin command acts on.
#[derive(clap::Args)]
struct Place {
    /// State directory (default: the configuration's, else _caterva2/state).
    #[arg(long)]
    statedir: Option<PathBuf>,
    /// Configuration file: its statedir, or its [storage] and [database]
    /// (the users and data of a cluster).
    // The help text names TOML tables, not links.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long)]
    conf: Option<PathBuf>,
}

impl Place {
    /// The state directory and the backends named.
    fn resolve(&self) -> anyhow::Result<(PathBuf, backends::Backends)> {
        let (config, backends) = match &self.conf {
            Some(c) => {
                anyhow::ensure!(c.exists(), "no configuration file at {}", c.display());
                conf::load(Some(c))?
            }
            None => Default::default(),
        };
        let statedir = self.statedir.clone().unwrap_or(config.statedir);
        Ok((statedir, backends))
    }

    fn users(&self) -> anyhow::Result<cat2_auth::Users> {
        let (statedir, backends) = self.resolve()?;
        backends.open_users(&statedir)
    }

    fn state(&self) -> anyhow::Result<cat2_core::StateDir> {
        let (statedir, backends) = self.resolve()?;
        backends.open_state(&statedir)
    }
}

/// Stack size of the server's async, blocking and compute threads.
const WORKER_STACK: usize = 8 << 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A client command that fails (the server said no, or could not be reached) exits 1;
    // clap's usage errors exit 2, as do failures of the local commands.
    let failure = match &cli.command {
        Command::Remote(_) => ExitCode::from(1),
        Command::Adduser { server, .. }
        | Command::Deluser { server, .. }
        | Command::Listusers { server, .. }
            if server.url.is_some() =>
        {
            ExitCode::from(1)
        }
        _ => ExitCode::from(2),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cat2rs: {e:#}");
            failure
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            conf,
            statedir,
            listen,
            loglevel,
        } => {
            conf::load_dotenv();
            let (mut config, backends) = conf::load(conf.as_deref())?;
            if let Some(d) = statedir {
                config.statedir = d;
            }
            if let Some(l) = listen {
                config.listen = l;
            }
            if let Some(l) = loglevel {
                config.loglevel = l;
            }
            init_logging(&config.loglevel);
            let secret = std::env::var("CATERVA2_SECRET").ok();
            let state_dir = backends.open_state(&config.statedir)?;
            // Users are opened only with login (and once the secret is known
            // to be there); their database's errors say where.
            let users = match cat2_server::AppState::session_secret(&config, secret.as_deref()) {
                Ok(Some(_)) => Some(backends.open_users(&config.statedir)?),
                Ok(None) => None,
                Err(e) => anyhow::bail!("{e}"),
            };
            let state = cat2_server::AppState::with_backends(
                config.clone(),
                secret.as_deref(),
                state_dir,
                users,
            )
            .with_context(|| format!("opening state dir {}", config.statedir.display()))?;
            let swept = state
                .state_dir()
                .storage()
                .sweep()
                .context("removing what interrupted writes left")?;
            if swept > 0 {
                tracing::warn!(
                    swept,
                    "removed temporary files of writes that never finished"
                );
            }
            // Expressions are parsed, typed and evaluated recursively (at most 200 levels
            // deep): 8 MiB stacks leave room even in unoptimised builds.
            rayon::ThreadPoolBuilder::new()
                .stack_size(WORKER_STACK)
                .build_global()
                .context("starting the compute thread pool")?;
            memory::start_idle_purge();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(WORKER_STACK)
                .build()
                .context("starting the async runtime")?;
            runtime
                .block_on(cat2_server::serve(state))
                .with_context(|| format!("serving on {}", config.listen))
        }
        Command::Adduser {
            email,
            password,
            superuser,
            place,
            server,
        } => {
            if let Some(r) = server.remote() {
                return remote::admin(
                    remote::AdminOp::Add {
                        email,
                        password,
                        superuser,
                    },
                    r,
                );
            }
            let users = place.users()?;
            let generated = match &password {
                Some(_) => None,
                None => Some(cat2_auth::password::generate().context("generating a password")?),
            };
            let pw = password.as_deref().or(generated.as_deref());
            match users
                .add(&email, pw, superuser)
                .context("adding the user")?
            {
                cat2_auth::AddOutcome::Created(u) => {
                    println!(
                        "added {} (id {}, superuser: {})",
                        u.email, u.id, u.is_superuser
                    );
                    if let Some(g) = generated {
                        println!("generated password: {g}");
                    }
                }
                cat2_auth::AddOutcome::Exists(u) => {
                    println!("{} exists already; nothing changed", u.email);
                }
            }
            Ok(())
        }
        Command::Deluser {
            email,
            place,
            server,
        } => {
            if let Some(r) = server.remote() {
                return remote::admin(remote::AdminOp::Delete(email), r);
            }
            let users = place.users()?;
            let user = users.delete(&email).context("deleting the user")?;
            let sd = place.state()?;
            sd.remove_personal(&user.id)
                .with_context(|| format!("removing the @personal of {}", user.email))?;
            println!("deleted {}", user.email);
            Ok(())
        }
        Command::Listusers { place, server } => {
            if let Some(r) = server.remote() {
                return remote::admin(remote::AdminOp::List, r);
            }
            let users = place.users()?;
            for u in users.list().context("listing users")? {
                let su = if u.is_superuser { " superuser" } else { "" };
                let active = if u.is_active { "" } else { " inactive" };
                println!("{} {}{su}{active}", u.id, u.email);
            }
            Ok(())
        }
        Command::Remote(cmd) => remote::run(cmd),
        Command::Import { statedir, conf } => {
            anyhow::ensure!(
                statedir.is_dir(),
                "no state directory at {}",
                statedir.display()
            );
            migrate(&statedir, &conf, true)
        }
        Command::Export { statedir, conf } => migrate(&statedir, &conf, false),
        Command::Examples { place } => {
            let sd = place.state()?;
            let local = place.resolve()?.1.storage.is_none();
            let written =
                cat2_core::examples::write_examples(&sd).context("writing the example datasets")?;
            for key in written {
                if local {
                    println!("{}", sd.path().join(key.as_str()).display());
                } else {
                    println!("{} {key}", sd.storage().describe());
                }
            }
            Ok(())
        }
    }
}

/// Copies a whole state (objects, then users) between the state directory
/// `statedir` and the cluster `conf` names: into the cluster (`import`) or
/// out of it; says what it did.
fn migrate(statedir: &std::path::Path, conf: &std::path::Path, import: bool) -> anyhow::Result<()> {
    let (config, cluster) = conf::load(Some(conf))?;
    anyhow::ensure!(
        cluster.storage.is_some(),
        "{} names no [storage] to {} {}",
        conf.display(),
        if import { "import" } else { "export" },
        if import { "into" } else { "from" },
    );
    let local = backends::Backends::default();
    let (dir, here) = (&config.statedir, &local);
    let ((from_dir, from), (to_dir, to)) = if import {
        ((statedir, here), (dir.as_path(), &cluster))
    } else {
        ((dir.as_path(), &cluster), (statedir, here))
    };
    let (from, from_users) = (from.open_state(from_dir)?, from.open_users(from_dir)?);
    let (to, to_users) = (to.open_state(to_dir)?, to.open_users(to_dir)?);
    let copied = cat2_core::storage::transfer::copy_state(from.storage(), to.storage())
        .with_context(|| format!("copying into {}", to.storage().describe()))?;
    if import {
        // The absolute operand paths its stored lazy expressions recorded.
        let absolute = std::path::absolute(statedir)
            .with_context(|| format!("finding where {} is", statedir.display()))?;
        let canonical = statedir.canonicalize().unwrap_or_else(|_| absolute.clone());
        for dir in [absolute, canonical] {
            to.storage()
                .record_origin(&dir)
                .with_context(|| format!("recording {} as an origin", dir.display()))?;
        }
    }
    println!(
        "copied {} objects ({} bytes) from {} to {}",
        copied.objects,
        copied.bytes,
        from.storage().describe(),
        to.storage().describe()
    );
    let (mut added, mut kept) = (0, 0);
    for user in from_users.list().context("listing the users")? {
        if to_users
            .import(&user)
            .with_context(|| format!("copying the user {}", user.email))?
        {
            added += 1;
        } else {
            kept += 1;
        }
    }
    println!(
        "copied {added} users to {} ({kept} were there already)",
        to_users.describe()
    );
    Ok(())
}

fn init_logging(level: &str) {
    let level = match level.to_ascii_lowercase().as_str() {
        "warning" | "warn" => "warn",
        "critical" | "error" => "error",
        "debug" => "debug",
        "trace" => "trace",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAT2RS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
