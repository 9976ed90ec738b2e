//! Server configuration: the `[server]` table of Caterva2's TOML file, with
//! the reference's defaults, overridable from the command line.

use std::path::PathBuf;

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port` to bind.
    pub listen: String,
    /// Public base URL (links, reset e-mails, `/api/peer`).
    pub urlbase: String,
    pub statedir: PathBuf,
    pub loglevel: String,
    /// Users and sessions enabled (needs `CATERVA2_SECRET`).
    pub login: bool,
    /// Self-registration enabled.
    pub register: bool,
    pub maxusers: Option<u64>,
    /// Disk quota over the state dir, in bytes.
    pub quota: Option<u64>,
    pub demo: bool,
    /// Where filled arrays are published (`publish_root`): a local directory.
    pub publish_root: Option<String>,
    /// Who may write to `@public` (`public_writes = "superusers" | "users"`).
    pub public_writes: cat2_core::write::PublicWrites,
    /// `load_from_url` may fetch from loopback, private and link-local
    /// addresses (off by default: the server must not be a door into the
    /// network it runs in).
    pub allow_private_urls: bool,
    /// Largest body `load_from_url` reads, in bytes.
    pub load_from_url_max_size: u64,
    /// Longest a `load_from_url` transfer may take, in seconds.
    pub load_from_url_timeout: u64,
    /// What one request, and all together, may spend: working memory and
    /// computation time.
    pub limits: cat2_core::budget::Limits,
    /// Largest side, in pixels, of an image the viewer asks for.
    pub max_frame_side: usize,
    /// Connections: how long a client may take to send a request's headers
    /// (and an idle keep-alive connection is kept), how long a body may
    /// stall, and how many connections are served at once.
    pub connections: ConnectionLimits,
}

/// Bounds on the connections a server keeps (nginx's defaults, or shorter).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Longest a client may take to send a request's headers; also how
    /// long an idle keep-alive connection is kept.
    pub header_timeout: std::time::Duration,
    /// Longest a request body may stall between two pieces.
    pub body_timeout: std::time::Duration,
    /// Most connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: std::time::Duration::from_secs(30),
            body_timeout: std::time::Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

impl Config {
    /// The write rules this configuration asks for.
    pub fn write_policy(&self) -> cat2_core::write::WritePolicy {
        cat2_core::write::WritePolicy {
            public_writes: self.public_writes,
            quota: self.quota,
        }
    }

    /// Where this server publishes filled arrays, if anywhere.
    pub fn publish_root(&self) -> Option<cat2_core::write::fill::PublishRoot> {
        self.publish_root
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(cat2_core::write::fill::PublishRoot::new)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "localhost:8000".into(),
            urlbase: "http://localhost:8000".into(),
            statedir: PathBuf::from("_caterva2/state"),
            loglevel: "warning".into(),
            login: true,
            register: false,
            maxusers: None,
            quota: None,
            demo: false,
            publish_root: None,
            public_writes: cat2_core::write::PublicWrites::Superusers,
            allow_private_urls: false,
            load_from_url_max_size: 4 << 30,
            load_from_url_timeout: 600,
            limits: cat2_core::budget::Limits::default(),
            max_frame_side: 4096,
            connections: ConnectionLimits::default(),
        }
    }
}

/// Parses a size such as `"10G"`, `"500"`, `"1.5M"` (units K/M/G/T, base 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 500, 1.5M or 10G"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("{s:?} is not a size such as 500, 1.5M or 10G"));
    }
    Ok((v * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500").unwrap(), 500);
        assert_eq!(parse_size("1.5M").unwrap(), 1_572_864);
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        assert!(parse_size("lots").is_err());
    }
}
