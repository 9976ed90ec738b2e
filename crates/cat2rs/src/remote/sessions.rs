//! Sessions saved by `cat2rs login`, one per server URL, in a file only its owner reads
//! (`$CAT2RS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/cat2rs`, else `~/.config/cat2rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};

fn file() -> Option<PathBuf> {
    let dir = std::env::var_os("CAT2RS_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CONFIG_HOME").map(|d| PathBuf::from(d).join("cat2rs")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/cat2rs")))?;
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
