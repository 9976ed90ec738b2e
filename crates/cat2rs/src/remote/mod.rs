//! The client commands: `cat2rs roots|list|tree|info|show|download|upload|
//! unfold|rm|mv|cp|expr --url URL [--user U --pass P] [--json]`, on top of
//! `cat2-client`. Output is for people (tables, arrays printed readably)
//! unless `--json`; errors go to stderr with the server's words and a
//! non-zero exit status.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cat2_client::Client;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

mod npy;
mod output;
mod sessions;

use npy::{npy_bytes, parse_npy};
use output::{flat_values, format_array, print_info, tree, Progress};

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
}
