//! Test harness for the `cat2rs` binary, in the manner of ripgrep's
//! `tests/util.rs`: every test gets a fresh temporary state directory and
//! its own `cat2rs serve` process on a free loopback port, killed on drop.

#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cat2_blosc2::{ArraySpec, CParams, NdArray, SChunk};

/// The `cat2rs` binary built for these tests.
pub fn cat2rs_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cat2rs")
}

/// A `cat2rs` command run in `dir`, with no inherited Caterva2 settings.
pub fn cat2rs(dir: &Path) -> Command {
    let mut cmd = Command::new(cat2rs_bin());
    cmd.current_dir(dir)
        .env_remove("CATERVA2_SECRET")
        .env_remove("CAT2RS_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cat2rs examples --statedir <statedir>` and checks it succeeded.
pub fn run_examples(statedir: &Path) -> Output {
    let out = cat2rs(statedir.parent().unwrap_or(Path::new("/")))
        .arg("examples")
        .arg("--statedir")
        .arg(statedir)
        .output()
        .expect("running cat2rs examples");
    assert!(
        out.status.success(),
        "cat2rs examples failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// How long a server may take to answer its first request.
const STARTUP: Duration = Duration::from_secs(10);

/// Builds the state directory of a [`TestServer`] before starting it.
pub struct Builder {
    dir: tempfile::TempDir,
}

impl Builder {
    pub fn statedir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Where `@public/<rel>` is stored.
    pub fn public(&self, rel: &str) -> PathBuf {
        self.statedir().join("public").join(rel)
    }

    /// `cat2rs examples`: `@public/examples/...`.
    pub fn examples(self) -> Self {
        run_examples(&self.statedir());
        self
    }

    /// Writes raw bytes at `public/<rel>` (stored name, so `.b2` included).
    pub fn file(self, rel: &str, bytes: &[u8]) -> Self {
        let p = self.public(rel);
        fs::create_dir_all(p.parent().expect("a file has a parent")).unwrap();
        fs::write(&p, bytes).unwrap();
        self
    }

    /// Stores a regular file as Caterva2 does: `public/<rel>.b2`, an SChunk of its bytes.
    pub fn regular_file(self, rel: &str, content: &[u8]) -> Self {
        let sc = SChunk::from_bytes(content, 1 << 20, &CParams::zstd_shuffle(1)).unwrap();
        self.file(&format!("{rel}.b2"), &sc.to_cframe().unwrap())
    }

    /// Writes an NDArray frame at `public/<rel>`, with vlmeta.
    pub fn array(
        self,
        rel: &str,
        spec: &ArraySpec,
        data: &[u8],
        vlmeta: &[(&str, rmpv::Value)],
    ) -> Self {
        let mut arr = NdArray::from_buffer(spec, data).unwrap();
        for (k, v) in vlmeta {
            arr.schunk_mut().set_vlmeta(k, v).unwrap();
        }
        self.file(rel, &arr.to_cframe().unwrap())
    }

    /// The datasets most tests use (see the module docs of `api_read.rs`).
    pub fn standard(self) -> Self {
        let ds1d: Vec<u8> = (0..1000i64).flat_map(i64::to_le_bytes).collect();
        let ds2d: Vec<u8> = (0..10u16)
            .flat_map(|y| (0..13u16).map(move |x| y * 100 + x))
            .flat_map(u16::to_le_bytes)
            .collect();
        let ds3d: Vec<u8> = (0..120)
            .flat_map(|i| (i as f32 / 2.0).to_le_bytes())
            .collect();
        let mut word = Vec::new();
        for c in "foobar".chars() {
            word.extend_from_slice(&(c as u32).to_le_bytes());
        }
        let attrs = [
            ("a", rmpv::Value::from(1)),
            ("b", rmpv::Value::from("foo")),
            ("c", rmpv::Value::F64(123.456)),
        ];
        self.examples()
            .array(
                "ds-1d.b2nd",
                &spec(&[1000], &[100], &[10], "<i8"),
                &ds1d,
                &[],
            )
            .array(
                "dir1/ds-2d.b2nd",
                &spec(&[10, 13], &[5, 5], &[2, 3], "<u2"),
                &ds2d,
                &[],
            )
            .array(
                "dir1/dir2/ds-3d.b2nd",
                &spec(&[4, 5, 6], &[2, 3, 4], &[2, 2, 2], "<f4"),
                &ds3d,
                &[],
            )
            .array(
                "ds-sc-attr.b2nd",
                &spec(&[], &[], &[], "<U6"),
                &word,
                &attrs,
            )
            .array(
                "dir with space/my array.b2nd",
                &spec(&[3], &[3], &[3], "<i8"),
                &ds1d[..24],
                &[],
            )
            .regular_file("notes.txt", NOTES.as_bytes())
            .file("bad.b2nd", b"this is not a Blosc2 frame")
    }

    /// Starts `cat2rs serve` on the state directory.
    pub fn start(self) -> TestServer {
        TestServer::start(self.dir)
    }
}

/// The content of `@public/notes.txt` in [`Builder::standard`].
pub const NOTES: &str = "Notes kept next to the datasets.\nSecond line.\n";

/// An `ArraySpec` with python-blosc2's default compression.
pub fn spec(shape: &[i64], chunks: &[i32], blocks: &[i32], dtype: &str) -> ArraySpec {
    let itemsize = match dtype {
        "<U6" => 24,
        d => d[2..].parse::<usize>().expect("a simple dtype such as <i8"),
    };
    ArraySpec {
        shape: shape.to_vec(),
        chunks: chunks.to_vec(),
        blocks: blocks.to_vec(),
        dtype: dtype.to_string(),
        cparams: CParams::zstd_shuffle(itemsize),
        urlpath: None,
    }
}

/// A running `cat2rs serve`, killed when dropped.
pub struct TestServer {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    agent: ureq::Agent,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The value of a header (names are case-insensitive); panics on repeats.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = found.next();
        assert!(found.next().is_none(), "header {name} appears twice");
        first
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }

    /// The `detail` of an error answer.
    pub fn detail(&self) -> String {
        match &self.json()["detail"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

impl TestServer {
    /// A builder over a fresh, empty state directory.
    pub fn builder() -> Builder {
        let dir = tempfile::Builder::new()
            .prefix("cat2rs-test-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(dir.path().join("state/public")).unwrap();
        Builder { dir }
    }

    /// A server over the [`Builder::standard`] datasets.
    pub fn standard() -> TestServer {
        Self::builder().standard().start()
    }

    fn start(dir: tempfile::TempDir) -> TestServer {
        let conf = dir.path().join("nologin.toml");
        fs::write(&conf, "[server]\nlogin = false\n").unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let log = dir.path().join("server.log");
        // A port taken between probing and binding makes the server exit;
        // then try another.
        for _ in 0..3 {
            let port = free_port();
            let logf = fs::File::create(&log).unwrap();
            let mut child = cat2rs(dir.path())
                .arg("serve")
                .arg("--conf")
                .arg(&conf)
                .arg("--statedir")
                .arg(dir.path().join("state"))
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .stdout(logf.try_clone().unwrap())
                .stderr(logf)
                .spawn()
                .expect("spawning cat2rs serve");
            if wait_ready(&mut child, &agent, port) {
                return TestServer {
                    dir,
                    child,
                    port,
                    agent,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "cat2rs serve did not answer within {STARTUP:?}:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn statedir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Where `@public/<rel>` is stored.
    pub fn public(&self, rel: &str) -> PathBuf {
        self.statedir().join("public").join(rel)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[], &[])
    }

    /// `GET path` with query parameters (encoded here) and headers.
    pub fn get_with(&self, path: &str, query: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.get(self.url(path));
        for (k, v) in query {
            req = req.query(k, v);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.call())
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &str) -> Resp {
        let req = self
            .agent
            .post(self.url(path))
            .header("content-type", "application/json");
        read(req.send(body))
    }

    /// `OPTIONS path` with headers.
    pub fn options(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.options(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.call())
    }

    /// `HEAD path`.
    pub fn head(&self, path: &str) -> Resp {
        read(self.agent.head(self.url(path)).call())
    }

    /// Sends `method target` exactly as given (no URL normalisation) over a
    /// plain socket; the answer must carry a content-length.
    pub fn raw(&self, method: &str, target: &str) -> Resp {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete HTTP head");
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: buf[split + 4..].to_vec(),
        }
    }
}

fn read(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.expect("an HTTP answer");
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = r
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .expect("reading the body");
    Resp {
        status: r.status().as_u16(),
        headers,
        body,
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `/api/roots` until the server answers (true) or exits (false).
fn wait_ready(child: &mut Child, agent: &ureq::Agent, port: u16) -> bool {
    let deadline = Instant::now() + STARTUP;
    let url = format!("http://127.0.0.1:{port}/api/roots");
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            if let Ok(r) = agent.get(&url).call() {
                if r.status().as_u16() < 500 {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}
