//! The client commands: `cat2rs roots|list|tree|info|show|download|upload|
//! unfold|rm|mv|cp|expr --url URL [--user U --pass P] [--json]`, on top of
//! `cat2-client`. Output is for people (tables, arrays printed readably)
//! unless `--json`; errors go to stderr with the server's words and a
//! non-zero exit status.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cat2_client::{Array, Client};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// Where the server is and who asks.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    // (also used by `cat2rs adduser|deluser|listusers --url`)
    /// The server's URL.
    #[arg(long, env = "CAT2RS_URL", default_value = "http://localhost:8000")]
    url: String,
    /// Log in as this user (an e-mail address).
    #[arg(long, env = "CAT2RS_USER")]
    user: Option<String>,
    /// The user's password.
    #[arg(long = "pass", env = "CAT2RS_PASS", hide_env_values = true)]
    password: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl Remote {
    pub fn new(url: String, user: Option<String>, password: Option<String>, json: bool) -> Remote {
        Remote {
            url,
            user,
            password,
            json,
        }
    }
}

/// How the user commands reach a server instead of a state directory.
#[derive(Args, Debug, Clone)]
pub struct AdminRemote {
    /// Ask this server (as a superuser) instead of changing a state directory.
    #[arg(long)]
    pub url: Option<String>,
    /// The superuser to log in as (with --url).
    #[arg(long)]
    pub user: Option<String>,
    /// Their password.
    #[arg(long = "pass", id = "server_pass")]
    pub password: Option<String>,
    /// Print JSON (with --url).
    #[arg(long)]
    pub json: bool,
}

impl AdminRemote {
    /// The server to ask, if `--url` was given.
    pub fn remote(&self) -> Option<Remote> {
        self.url
            .clone()
            .map(|url| Remote::new(url, self.user.clone(), self.password.clone(), self.json))
    }
}

#[derive(Subcommand, Debug)]
pub enum RemoteCommand {
    /// List the roots the session may see.
    Roots(#[command(flatten)] Remote),
    /// List every file below a path.
    #[command(alias = "ls")]
    List {
        path: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show the files below a path as a tree.
    #[command(alias = "tr")]
    Tree {
        path: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a dataset's metadata.
    Info {
        path: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print (a slice of) an array: `cat2rs show '@public/a.b2nd[1:3, ::2]'`.
    Show {
        /// A dataset path, optionally followed by a slice in brackets.
        target: String,
        /// Also write the values to this .npy file.
        #[arg(long)]
        npy: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Download a dataset or file.
    Download {
        path: String,
        /// Where to write it (default: its name, in the current directory).
        dest: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Upload a local file to a path (or into a directory).
    Upload {
        local: PathBuf,
        remote_path: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Unfold an HDF5 file into proxy datasets.
    Unfold {
        path: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a file or directory.
    #[command(alias = "remove")]
    Rm {
        path: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Move or rename.
    #[command(alias = "move")]
    Mv {
        src: String,
        dst: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Copy.
    #[command(alias = "copy")]
    Cp {
        src: String,
        dst: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Append the rows of a .npy file to an array (along its first axis).
    Append {
        path: String,
        /// The rows, as a NumPy .npy file of the array's dtype.
        #[arg(long)]
        npy: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the URL that downloads a dataset.
    Url {
        path: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the web GUI's page of a dataset.
    Handle {
        path: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Open the web GUI's page of a dataset in a browser.
    Browse {
        path: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Log in once: later commands to the same URL use the saved session (until `logout`).
    Login(#[command(flatten)] Remote),
    /// End the saved session of a URL.
    Logout(#[command(flatten)] Remote),
    /// Save a lazy expression: `cat2rs expr @personal/e.b2nd 'where(a < 10, a * 32000, a)' -o a=@shared/x.b2nd`.
    Expr {
        path: String,
        expression: String,
        /// An operand, NAME=PATH (repeatable).
        #[arg(short = 'o', long = "operand")]
        operands: Vec<String>,
        /// Store the computed result instead of the expression.
        #[arg(long)]
        compute: bool,
        #[command(flatten)]
        remote: Remote,
    },
}

impl RemoteCommand {
    fn remote(&self) -> &Remote {
        match self {
            RemoteCommand::Roots(r) | RemoteCommand::Login(r) | RemoteCommand::Logout(r) => r,
            RemoteCommand::Url { remote, .. }
            | RemoteCommand::Append { remote, .. }
            | RemoteCommand::Handle { remote, .. }
            | RemoteCommand::Browse { remote, .. } => remote,
            RemoteCommand::List { remote, .. }
            | RemoteCommand::Tree { remote, .. }
            | RemoteCommand::Info { remote, .. }
            | RemoteCommand::Show { remote, .. }
            | RemoteCommand::Download { remote, .. }
            | RemoteCommand::Upload { remote, .. }
            | RemoteCommand::Unfold { remote, .. }
            | RemoteCommand::Rm { remote, .. }
            | RemoteCommand::Mv { remote, .. }
            | RemoteCommand::Cp { remote, .. }
            | RemoteCommand::Expr { remote, .. } => remote,
        }
    }
}

/// Runs a client command to completion.
pub fn run(cmd: RemoteCommand) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(cmd))
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `path[1:3, ::2]` → (`path`, `Some("1:3, ::2")`).
fn split_slice(target: &str) -> Result<(&str, Option<&str>)> {
    match target.find('[') {
        None => Ok((target, None)),
        Some(i) => {
            let Some(inner) = target[i + 1..].strip_suffix(']') else {
                bail!("{target}: a slice is written in brackets, e.g. path[1:3, ::2]");
            };
            Ok((&target[..i], Some(inner)))
        }
    }
}

/// The command line as typed, for error messages.
fn described(cmd: &RemoteCommand) -> String {
    match cmd {
        RemoteCommand::Roots(_) => "roots".into(),
        RemoteCommand::Login(_) => "login".into(),
        RemoteCommand::Logout(_) => "logout".into(),
        RemoteCommand::Url { path, .. } => format!("url {path}"),
        RemoteCommand::Append { path, .. } => format!("append {path}"),
        RemoteCommand::Handle { path, .. } => format!("handle {path}"),
        RemoteCommand::Browse { path, .. } => format!("browse {path}"),
        RemoteCommand::List { path, .. } => format!("list {path}"),
        RemoteCommand::Tree { path, .. } => format!("tree {path}"),
        RemoteCommand::Info { path, .. } => format!("info {path}"),
        RemoteCommand::Show { target, .. } => format!("show {target}"),
        RemoteCommand::Download { path, .. } => format!("download {path}"),
        RemoteCommand::Upload {
            local, remote_path, ..
        } => {
            format!("upload {} {remote_path}", local.display())
        }
        RemoteCommand::Unfold { path, .. } => format!("unfold {path}"),
        RemoteCommand::Rm { path, .. } => format!("rm {path}"),
        RemoteCommand::Mv { src, dst, .. } => format!("mv {src} {dst}"),
        RemoteCommand::Cp { src, dst, .. } => format!("cp {src} {dst}"),
        RemoteCommand::Expr { path, .. } => format!("expr {path}"),
    }
}

async fn run_async(cmd: RemoteCommand) -> Result<()> {
    let what = described(&cmd);
    run_command(cmd).await.with_context(|| what)
}

async fn run_command(cmd: RemoteCommand) -> Result<()> {
    let r = cmd.remote().clone();
    let client = connect(&r).await?;
    match cmd {
        RemoteCommand::Login(_) => {
            let cookie = client
                .cookie()
                .context("login needs --user and --pass (or CAT2RS_USER and CAT2RS_PASS)")?;
            sessions::save(&r.url, Some(cookie))?;
            answer(r.json, &format!("logged in to {}", r.url));
        }
        RemoteCommand::Logout(_) => {
            let mut client = client;
            client.logout().await?;
            sessions::save(&r.url, None)?;
            answer(r.json, &format!("logged out of {}", r.url));
        }
        RemoteCommand::Append { path, npy, .. } => {
            let bytes =
                std::fs::read(&npy).with_context(|| format!("reading {}", npy.display()))?;
            let rows = parse_npy(&bytes).with_context(|| format!("reading {}", npy.display()))?;
            let shape = client.append(&path, &rows).await?;
            if r.json {
                print_json(&json!(shape));
            } else {
                println!("{path}: shape now {shape:?}");
            }
        }
        RemoteCommand::Url { path, .. } => answer(r.json, &client.download_url(&path)),
        RemoteCommand::Handle { path, .. } => answer(r.json, &client.handle_url(&path)),
        RemoteCommand::Browse { path, .. } => {
            let url = format!("{}?fullscreen=1", client.handle_url(&path));
            let opened = std::process::Command::new("xdg-open")
                .arg(&url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if opened {
                answer(r.json, &format!("opened {url}"));
            } else {
                answer(r.json, &url);
            }
        }
        RemoteCommand::Roots(_) => {
            let roots = client.roots().await?;
            if r.json {
                print_json(&json!(roots));
            } else {
                roots.iter().for_each(|x| println!("{x}"));
            }
        }
        RemoteCommand::List { path, .. } => {
            let names = client.list(&path).await?;
            if r.json {
                print_json(&json!(names));
            } else {
                names.iter().for_each(|x| println!("{x}"));
            }
        }
        RemoteCommand::Tree { path, .. } => {
            let names = client.list(&path).await?;
            if r.json {
                print_json(&json!(names));
            } else {
                print!("{}", tree(&path, &names));
            }
        }
        RemoteCommand::Info { path, .. } => {
            let info = client.info(&path).await?;
            if r.json {
                print_json(&info);
            } else {
                print_info(&info, "");
            }
        }
        RemoteCommand::Show { target, npy, .. } => {
            let (path, slice) = split_slice(&target)?;
            let arr = client.fetch(path, slice).await?;
            if let Some(file) = &npy {
                std::fs::write(file, npy_bytes(&arr))
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            if r.json {
                print_json(
                    &json!({"shape": arr.shape, "dtype": arr.dtype, "values": flat_values(&arr)?}),
                );
            } else {
                print!("{}", format_array(&arr)?);
            }
        }
        RemoteCommand::Download { path, dest, .. } => {
            let name = path.rsplit('/').next().unwrap_or("download").to_string();
            let dest = dest.unwrap_or_else(|| PathBuf::from(&name));
            let bar = Progress::new("download");
            let n = client
                .download(&path, &dest, |done, total| bar.show(done, total))
                .await?;
            bar.done();
            if r.json {
                print_json(&json!({"path": dest, "bytes": n}));
            } else {
                println!("{} ({n} bytes)", dest.display());
            }
        }
        RemoteCommand::Upload {
            local, remote_path, ..
        } => {
            let bar = Progress::new("upload");
            let shown = bar.clone();
            let stored = client
                .upload(&local, &remote_path, move |done, total| {
                    shown.show(done, Some(total))
                })
                .await?;
            bar.done();
            answer(r.json, &stored);
        }
        RemoteCommand::Unfold { path, .. } => answer(r.json, &client.unfold(&path).await?),
        RemoteCommand::Rm { path, .. } => answer(r.json, &client.remove(&path).await?),
        RemoteCommand::Mv { src, dst, .. } => answer(r.json, &client.move_to(&src, &dst).await?),
        RemoteCommand::Cp { src, dst, .. } => answer(r.json, &client.copy_to(&src, &dst).await?),
        RemoteCommand::Expr {
            path,
            expression,
            operands,
            compute,
            ..
        } => {
            let ops = operands
                .iter()
                .map(|o| {
                    o.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .with_context(|| format!("operand {o:?} is not NAME=PATH"))
                })
                .collect::<Result<Vec<_>>>()?;
            answer(
                r.json,
                &client.lazyexpr(&path, &expression, &ops, compute).await?,
            );
        }
    }
    Ok(())
}

/// A client of `r.url`: logged in with `--user`/`--pass`, else with the session saved by
/// `cat2rs login`, else anonymous.
pub async fn connect(r: &Remote) -> Result<Client> {
    let mut client = Client::new(&r.url)?;
    match (&r.user, &r.password) {
        (Some(u), Some(p)) => client.login(u, p).await.context("logging in")?,
        (Some(_), None) => bail!("--user needs --pass (or CAT2RS_PASS)"),
        _ => {
            if let Some(cookie) = sessions::load(&r.url)? {
                client = client.with_cookie(&cookie);
            }
        }
    }
    Ok(client)
}

/// Sessions saved by `cat2rs login`, one per server URL, in a file only its owner reads
/// (`$CAT2RS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/cat2rs`, else `~/.config/cat2rs`).
mod sessions {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use anyhow::{Context, Result};

    fn file() -> Option<PathBuf> {
        let dir = std::env::var_os("CAT2RS_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CONFIG_HOME").map(|d| PathBuf::from(d).join("cat2rs"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/cat2rs"))
            })?;
        Some(dir.join("sessions.json"))
    }

    fn read_all() -> BTreeMap<String, String> {
        file()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn load(url: &str) -> Result<Option<String>> {
        Ok(read_all().get(url.trim_end_matches('/')).cloned())
    }

    pub fn save(url: &str, cookie: Option<&str>) -> Result<()> {
        let path = file().context("no configuration directory (set HOME or CAT2RS_CONFIG_DIR)")?;
        let mut all = read_all();
        let key = url.trim_end_matches('/').to_string();
        match cookie {
            Some(c) => all.insert(key, c.to_string()),
            None => all.remove(&key),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&all)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        use std::io::Write;
        let mut f = opts
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// User administration through a server (superusers), for `cat2rs adduser|deluser|listusers --url`.
pub enum AdminOp {
    Add {
        email: String,
        password: Option<String>,
        superuser: bool,
    },
    Delete(String),
    List,
}

pub fn admin(op: AdminOp, r: Remote) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let client = connect(&r).await?;
        match op {
            AdminOp::Add {
                email,
                password,
                superuser,
            } => {
                let generated;
                let pw = match &password {
                    Some(p) => p.as_str(),
                    None => {
                        generated =
                            cat2_auth::password::generate().context("generating a password")?;
                        generated.as_str()
                    }
                };
                let msg = client
                    .adduser(&email, pw, superuser)
                    .await
                    .context("adduser")?;
                if password.is_none() {
                    answer(r.json, &format!("{msg}\ngenerated password: {pw}"));
                } else {
                    answer(r.json, &msg);
                }
            }
            AdminOp::Delete(email) => {
                answer(r.json, &client.deluser(&email).await.context("deluser")?)
            }
            AdminOp::List => {
                let users = client.listusers(None).await.context("listusers")?;
                if r.json {
                    print_json(&Value::Array(users));
                } else {
                    for u in users {
                        let flag = |k: &str, name: &str| {
                            if u[k].as_bool() == Some(true) {
                                format!(" {name}")
                            } else {
                                String::new()
                            }
                        };
                        println!(
                            "{} {}{}",
                            u["id"].as_str().unwrap_or(""),
                            u["email"].as_str().unwrap_or(""),
                            flag("is_superuser", "superuser")
                        );
                    }
                }
            }
        }
        Ok(())
    })
}

fn answer(json: bool, text: &str) {
    if json {
        print_json(&json!(text));
    } else {
        println!("{text}");
    }
}

/// A progress line on stderr, when stderr is a terminal.
#[derive(Clone)]
struct Progress {
    what: &'static str,
    tty: bool,
}

impl Progress {
    fn new(what: &'static str) -> Progress {
        Progress {
            what,
            tty: std::io::stderr().is_terminal(),
        }
    }
    fn show(&self, done: u64, total: Option<u64>) {
        if !self.tty {
            return;
        }
        let mut err = std::io::stderr();
        let _ = match total.filter(|&t| t > 0) {
            Some(t) => {
                let pct = done * 100 / t;
                let bar: String = (0..30)
                    .map(|i| if i * 100 < pct * 30 { '#' } else { '.' })
                    .collect();
                write!(err, "\r{} [{bar}] {pct:>3}% {done}/{t} bytes", self.what)
            }
            None => write!(err, "\r{} {done} bytes", self.what),
        };
    }
    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn print_info(v: &Value, indent: &str) {
    if let Value::Object(m) = v {
        for (k, val) in m {
            match val {
                Value::Object(_) => {
                    println!("{indent}{k}:");
                    print_info(val, &format!("{indent}  "));
                }
                Value::String(s) => println!("{indent}{k}: {s}"),
                other => println!("{indent}{k}: {other}"),
            }
        }
    }
}

/// The listing as an indented tree.
fn tree(root: &str, names: &[String]) -> String {
    let mut out = format!("{root}\n");
    let mut last: Vec<&str> = Vec::new();
    for name in names {
        let parts: Vec<&str> = name.split('/').collect();
        let common = last.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        for (depth, part) in parts.iter().enumerate().skip(common.min(parts.len() - 1)) {
            out.push_str(&"    ".repeat(depth + 1));
            out.push_str(part);
            if depth + 1 < parts.len() {
                out.push('/');
            }
            out.push('\n');
        }
        last = parts;
    }
    out
}

fn values_of(arr: &Array) -> Result<cat2_core::view::Values> {
    Ok(cat2_core::view::Values {
        shape: arr.shape.clone(),
        dtype: cat2_core::dtype::DType::parse(&arr.dtype)?,
        data: arr.data.clone(),
    })
}

fn flat_values(arr: &Array) -> Result<Vec<Value>> {
    let v = values_of(arr)?;
    Ok((0..v.len())
        .map(|i| match v.number(i) {
            Some(x) if x.fract() == 0.0 && x.abs() < 9e15 && !arr.dtype.contains('f') => {
                json!(x as i64)
            }
            Some(x) if x.is_finite() => json!(x),
            _ => json!(v.format(i)),
        })
        .collect())
}

/// An array printed readably: its shape and dtype, then its values by rows
/// (the middle left out of big ones, as NumPy does).
fn format_array(arr: &Array) -> Result<String> {
    const EDGE: usize = 3;
    let v = values_of(arr)?;
    let mut out = format!("shape {:?}, dtype {}\n", arr.shape, v.dtype.numpy_str());
    let n = v.len();
    let row_len = arr.shape.last().map_or(1, |&l| l.max(1) as usize);
    let rows = if arr.shape.is_empty() {
        1
    } else {
        n / row_len.max(1)
    };
    let cell = |i: usize| v.format(i);
    let fmt_row = |r: usize| -> String {
        let idx: Vec<usize> = if row_len > 2 * EDGE + 1 {
            (0..EDGE).chain(row_len - EDGE..row_len).collect()
        } else {
            (0..row_len).collect()
        };
        let mut cells: Vec<String> = idx.iter().map(|&c| cell(r * row_len + c)).collect();
        if row_len > 2 * EDGE + 1 {
            cells.insert(EDGE, "...".into());
        }
        format!("[{}]", cells.join(", "))
    };
    if n == 0 {
        out.push_str("[]\n");
        return Ok(out);
    }
    if arr.shape.is_empty() {
        out.push_str(&cell(0));
        out.push('\n');
        return Ok(out);
    }
    let shown: Vec<usize> = if rows > 2 * EDGE + 1 {
        (0..EDGE).chain(rows - EDGE..rows).collect()
    } else {
        (0..rows).collect()
    };
    for (k, r) in shown.iter().enumerate() {
        if rows > 2 * EDGE + 1 && k == EDGE {
            out.push_str(" ...\n");
        }
        out.push_str(&fmt_row(*r));
        out.push('\n');
    }
    Ok(out)
}

/// A `.npy` file (format 1, 2 or 3, C order) as an array.
fn parse_npy(bytes: &[u8]) -> Result<Array> {
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        bail!("not a .npy file");
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!(".npy format version {v} is not known"),
    };
    let header = std::str::from_utf8(bytes.get(start..start + hlen).context("truncated header")?)
        .context("the header is not text")?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}'"))
            .with_context(|| format!("no {key} in the header"))?;
        Ok(header[at + key.len() + 2..].trim_start_matches([':', ' ']))
    };
    if field("fortran_order")?.starts_with("True") {
        bail!("Fortran-ordered .npy files are not supported; save with np.ascontiguousarray");
    }
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .context("descr is not a simple dtype string")?
        .to_string();
    let shape_text = field("shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|t| t.split(')').next())
        .context("no shape tuple")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<i64>().context("a dimension is not a number"))
        .collect::<Result<Vec<_>>>()?;
    Ok(Array {
        shape,
        dtype: descr,
        data: bytes[start + hlen..].to_vec(),
    })
}

/// The array as a `.npy` file (format 1.0).
fn npy_bytes(arr: &Array) -> Vec<u8> {
    let shape = match arr.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", arr.shape[0]),
        _ => format!(
            "({})",
            arr.shape
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        arr.dtype
    );
    // Magic (6) + version (2) + length (2) + header, padded to 64 bytes with a final newline.
    let pad = 64 - (10 + header.len() + 1) % 64;
    header.push_str(&" ".repeat(pad % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&arr.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_the_path_in_brackets() {
        assert_eq!(split_slice("@p/a.b2nd").unwrap(), ("@p/a.b2nd", None));
        assert_eq!(
            split_slice("@p/a.b2nd[1:3, ::2]").unwrap(),
            ("@p/a.b2nd", Some("1:3, ::2"))
        );
        assert!(split_slice("@p/a.b2nd[1:3").is_err());
    }

    #[test]
    fn trees_indent_by_directory() {
        let names = ["a/b/x.b2nd", "a/b/y.b2nd", "a/z.txt", "top.h5"].map(String::from);
        assert_eq!(
            tree("@shared", &names),
            "@shared\n    a/\n        b/\n            x.b2nd\n            y.b2nd\n        z.txt\n    top.h5\n"
        );
    }

    #[test]
    fn npy_files_read_back() {
        let arr = Array {
            shape: vec![2, 3],
            dtype: "<u2".into(),
            data: (0..12).collect(),
        };
        assert_eq!(parse_npy(&npy_bytes(&arr)).unwrap(), arr);
        assert!(parse_npy(b"not npy").is_err());
    }

    #[test]
    fn npy_headers_are_aligned() {
        let arr = Array {
            shape: vec![2, 3],
            dtype: "<i4".into(),
            data: vec![0; 24],
        };
        let bytes = npy_bytes(&arr);
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(bytes.len(), 10 + hlen + 24);
    }
}
