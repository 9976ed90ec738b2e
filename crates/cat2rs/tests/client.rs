//! The client commands (`cat2rs roots|list|tree|info|show|download|upload|
//! unfold|rm|mv|cp|expr`) against a real `cat2rs serve` with users: their
//! output, `--json`, the files they write, and their exit codes (0 done, 1
//! refused by the server or unreachable, 2 bad usage).

mod util;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use util::cat2rs;

const USER: &str = "cli@example.com";
const PASS: &str = "cli-password";

/// A login-enabled server over the example datasets, with one superuser.
struct LoginServer {
    dir: tempfile::TempDir,
    child: Child,
    url: String,
}

impl Drop for LoginServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LoginServer {
    fn start() -> LoginServer {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        util::run_examples(&state);
        let added = cat2rs(dir.path())
            .args(["adduser", USER, PASS, "--superuser", "--statedir"])
            .arg(&state)
            .output()
            .unwrap();
        assert!(added.status.success(), "{added:?}");
        let conf = dir.path().join("login.toml");
        fs::write(&conf, "[server]\nlogin = true\n").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = fs::File::create(dir.path().join("server.log")).unwrap();
        let child = cat2rs(dir.path())
            .env("CATERVA2_SECRET", "client-tests")
            .arg("serve")
            .arg(format!("--conf={}", conf.display()))
            .arg(format!("--statedir={}", state.display()))
            .arg(format!("--listen=127.0.0.1:{port}"))
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        LoginServer {
            dir,
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn work(&self) -> PathBuf {
        let w = self.dir.path().join("work");
        fs::create_dir_all(&w).unwrap();
        w
    }

    /// Where `cat2rs login` keeps sessions in these tests (never the user's own).
    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// `cat2rs <args> --url <server>`, anonymous.
    fn anon(&self, args: &[&str]) -> Output {
        cat2rs(&self.work())
            .args(args)
            .env("CAT2RS_CONFIG_DIR", self.config())
            .env("CAT2RS_URL", &self.url)
            .env_remove("CAT2RS_USER")
            .env_remove("CAT2RS_PASS")
            .output()
            .unwrap()
    }

    /// The same, logged in (credentials from the environment).
    fn run(&self, args: &[&str]) -> Output {
        cat2rs(&self.work())
            .args(args)
            .env("CAT2RS_CONFIG_DIR", self.config())
            .env("CAT2RS_URL", &self.url)
            .env("CAT2RS_USER", USER)
            .env("CAT2RS_PASS", PASS)
            .output()
            .unwrap()
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

#[test]
fn browsing_commands_print_for_people_and_for_programs() {
    let srv = LoginServer::start();
    assert_eq!(ok(&srv.anon(&["roots"])), "@public\n");
    assert_eq!(
        json(&srv.run(&["roots", "--json"])),
        serde_json::json!(["@public", "@personal", "@shared"])
    );
    let listed = ok(&srv.anon(&["list", "@public/examples"]));
    assert!(listed.lines().any(|l| l == "stack-3d.b2nd"), "{listed}");
    let tree = ok(&srv.anon(&["tree", "@public"]));
    assert!(
        tree.starts_with("@public\n    examples/\n        README.md\n"),
        "{tree}"
    );
    let info = ok(&srv.anon(&["info", "@public/examples/arange-1d.b2nd"]));
    assert!(info.contains("shape: [10000]"), "{info}");
    assert_eq!(
        json(&srv.anon(&["info", "@public/examples/arange-1d.b2nd", "--json"]))["shape"],
        serde_json::json!([10000])
    );

    // show: a slice written after the path, readable values, and the same as JSON and .npy.
    let shown = ok(&srv.anon(&["show", "@public/examples/arange-1d.b2nd[3:6]"]));
    assert_eq!(shown, "shape [3], dtype int64\n[3, 4, 5]\n");
    let big = ok(&srv.anon(&["show", "@public/examples/arange-1d.b2nd"]));
    assert_eq!(
        big,
        "shape [10000], dtype int64\n[0, 1, 2, ..., 9997, 9998, 9999]\n"
    );
    let rec = ok(&srv.anon(&["show", "@public/examples/records.b2nd[0:1]"]));
    assert!(rec.contains("(0, "), "{rec}");
    let as_json = json(&srv.anon(&["show", "@public/examples/arange-1d.b2nd[::5000]", "--json"]));
    assert_eq!(as_json["values"], serde_json::json!([0, 5000]));
    let npy = srv.work().join("slice.npy");
    ok(&srv.anon(&[
        "show",
        "@public/examples/arange-1d.b2nd[10:14]",
        "--npy",
        npy.to_str().unwrap(),
    ]));
    let bytes = fs::read(&npy).unwrap();
    assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + hlen]);
    assert!(
        header.contains("'descr': '<i8'") && header.contains("'shape': (4,)"),
        "{header}"
    );
    let values: Vec<i64> = bytes[10 + hlen..]
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values, [10, 11, 12, 13]);

    // download: regular files come back as their original bytes.
    ok(&srv.anon(&["download", "@public/examples/README.md"]));
    let readme = fs::read_to_string(srv.work().join("README.md")).unwrap();
    assert!(readme.starts_with("# Example datasets"), "{readme}");

    // Errors: exit 1 with the server's words, 2 for usage.
    let err = failed(&srv.anon(&["show", "@public/nothing.b2nd"]), 1);
    assert!(
        err.contains("show @public/nothing.b2nd") && err.contains("404"),
        "{err}"
    );
    let err = failed(&srv.anon(&["list", "@personal"]), 1);
    assert!(err.contains("401"), "{err}");
    failed(&srv.anon(&["show"]), 2);
    let err = failed(
        &srv.anon(&["roots", "--url", "http://127.0.0.1:9", "--json"]),
        1,
    );
    assert!(err.contains("cannot reach"), "{err}");
    let err = failed(&srv.run(&["roots", "--pass", "wrong-password"]), 1);
    assert!(err.contains("LOGIN_BAD_CREDENTIALS"), "{err}");
}

#[test]
fn writing_commands_change_the_server() {
    let srv = LoginServer::start();
    let local = srv.work().join("notes.txt");
    fs::write(&local, "some notes\n").unwrap();
    let notes = local.to_str().unwrap();
    assert_eq!(
        ok(&srv.run(&["upload", notes, "@personal/notes.txt"])),
        "@personal/notes.txt\n"
    );
    let err = failed(&srv.anon(&["upload", notes, "@personal/notes.txt"]), 1);
    assert!(err.contains("401"), "{err}");
    assert_eq!(
        ok(&srv.run(&["cp", "@personal/notes.txt", "@shared/copy.txt"])),
        "@shared/copy.txt\n"
    );
    assert_eq!(
        ok(&srv.run(&["mv", "@shared/copy.txt", "@shared/moved.txt"])),
        "@shared/moved.txt\n"
    );
    assert_eq!(ok(&srv.run(&["list", "@shared"])), "moved.txt\n");
    let dest = srv.work().join("back.txt");
    ok(&srv.run(&["download", "@shared/moved.txt", dest.to_str().unwrap()]));
    assert_eq!(fs::read_to_string(&dest).unwrap(), "some notes\n");
    ok(&srv.run(&["rm", "@shared/moved.txt"]));
    assert_eq!(ok(&srv.run(&["list", "@shared"])), "");

    // unfold an HDF5 file, then an expression over one of its proxies.
    let h5 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cat2-core/tests/fixtures/unfold.h5");
    ok(&srv.run(&["upload", h5.to_str().unwrap(), "@shared/unfold.h5"]));
    assert_eq!(ok(&srv.run(&["unfold", "@shared/unfold.h5"])), "unfold\n");
    let proxies: Vec<String> = ok(&srv.run(&["list", "@shared/unfold"]))
        .lines()
        .filter(|l| l.ends_with(".b2nd"))
        .map(str::to_string)
        .collect();
    assert!(!proxies.is_empty());

    ok(&srv.run(&[
        "expr",
        "@personal/e.b2nd",
        "where(a < 100, a * 2, a)",
        "-o",
        "a=@public/examples/arange-1d.b2nd",
    ]));
    assert_eq!(
        ok(&srv.run(&["show", "@personal/e.b2nd[98:102]"])),
        "shape [4], dtype int64\n[196, 198, 100, 101]\n"
    );
    ok(&srv.run(&[
        "expr",
        "@personal/s.b2nd",
        "sum(a)",
        "-o",
        "a=@public/examples/arange-1d.b2nd",
        "--compute",
    ]));
    assert_eq!(
        ok(&srv.run(&["show", "@personal/s.b2nd"])),
        "shape [], dtype int64\n49995000\n"
    );
    let err = failed(
        &srv.run(&[
            "expr",
            "@personal/bad.b2nd",
            "a +",
            "-o",
            "a=@public/examples/arange-1d.b2nd",
        ]),
        1,
    );
    assert!(err.contains("Invalid name or expression"), "{err}");
    let err = failed(
        &srv.run(&["expr", "@personal/bad.b2nd", "a", "-o", "no-equals"]),
        1,
    );
    assert!(err.contains("NAME=PATH"), "{err}");

    // append: rows from a .npy file (made by show --npy) at the end of a copy of an array.
    ok(&srv.run(&[
        "cp",
        "@public/examples/arange-1d.b2nd",
        "@personal/grow.b2nd",
    ]));
    let rows = srv.work().join("rows.npy");
    ok(&srv.run(&[
        "show",
        "@public/examples/arange-1d.b2nd[0:4]",
        "--npy",
        rows.to_str().unwrap(),
    ]));
    assert_eq!(
        ok(&srv.run(&[
            "append",
            "@personal/grow.b2nd",
            "--npy",
            rows.to_str().unwrap()
        ])),
        "@personal/grow.b2nd: shape now [10004]\n"
    );
    assert_eq!(
        ok(&srv.run(&["show", "@personal/grow.b2nd[9998:]"])),
        "shape [6], dtype int64\n[9998, 9999, 0, 1, 2, 3]\n"
    );
    let err = failed(
        &srv.run(&["append", "@personal/grow.b2nd", "--npy", "missing.npy"]),
        1,
    );
    assert!(err.contains("missing.npy"), "{err}");
}

#[test]
fn sessions_aliases_links_and_users_through_the_server() {
    let srv = LoginServer::start();
    // A saved login serves later commands without credentials, until logout.
    ok(&srv.run(&["login"]));
    let saved = srv.config().join("sessions.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&saved).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "sessions.json is readable by others: {mode:o}"
        );
    }
    assert_eq!(ok(&srv.anon(&["roots"])), "@public\n@personal\n@shared\n");
    ok(&srv.anon(&["logout"]));
    assert_eq!(ok(&srv.anon(&["roots"])), "@public\n");
    let err = failed(&srv.anon(&["login"]), 1);
    assert!(err.contains("--user"), "{err}");

    // The reference's command names work too.
    assert_eq!(
        ok(&srv.anon(&["ls", "@public"])),
        ok(&srv.anon(&["list", "@public"]))
    );
    assert_eq!(
        ok(&srv.anon(&["tr", "@public"])),
        ok(&srv.anon(&["tree", "@public"]))
    );
    assert_eq!(
        ok(&srv.anon(&["url", "@public/examples/a b.b2nd"])),
        format!("{}/api/download/@public/examples/a%20b.b2nd\n", srv.url)
    );
    assert_eq!(
        ok(&srv.anon(&["handle", "@public/examples/stack-3d.b2nd"])),
        format!("{}/roots/@public/examples/stack-3d.b2nd\n", srv.url)
    );

    // Users administered through the server, as a superuser.
    let admin = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", &srv.url, "--user", USER, "--pass", PASS]);
        srv.anon(&all)
    };
    let added = ok(&admin(&[
        "adduser",
        "second@example.com",
        "second-password",
    ]));
    assert!(added.contains("second@example.com"), "{added}");
    let generated = ok(&admin(&["adduser", "third@example.com"]));
    let password = generated
        .lines()
        .last()
        .unwrap()
        .strip_prefix("generated password: ")
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 8, "{generated}");
    let third = srv.anon(&["roots", "--user", "third@example.com", "--pass", &password]);
    assert_eq!(ok(&third), "@public\n@personal\n@shared\n");
    let users = json(&admin(&["lsu", "--json"]));
    let emails: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert!(
        emails.contains(&"second@example.com") && emails.contains(&USER),
        "{emails:?}"
    );
    ok(&admin(&["deluser", "second@example.com"]));
    let listed = ok(&admin(&["listusers"]));
    assert!(!listed.contains("second@example.com"), "{listed}");
    // Not a superuser, or nobody: refused by the server, exit 1.
    let err = failed(
        &srv.anon(&[
            "adduser",
            "x@example.com",
            "x-password",
            "--url",
            &srv.url,
            "--user",
            "third@example.com",
            "--pass",
            &password,
        ]),
        1,
    );
    assert!(err.contains("superusers"), "{err}");
    let err = failed(&srv.anon(&["listusers", "--url", &srv.url]), 1);
    assert!(err.contains("401"), "{err}");
    // browse, with no browser to open, prints the full-screen page to open.
    let out = cat2rs(&srv.work())
        .args([
            "browse",
            "@public/examples/stack-3d.b2nd",
            "--url",
            &srv.url,
        ])
        .env("PATH", "")
        .output()
        .unwrap();
    assert_eq!(
        ok(&out),
        format!(
            "{}/roots/@public/examples/stack-3d.b2nd?fullscreen=1\n",
            srv.url
        )
    );
}

#[test]
fn the_library_reports_progress_types_values_and_carries_details() {
    let srv = LoginServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = cat2_client::Client::new(&srv.url).unwrap();
        client.login(USER, PASS).await.unwrap();
        // Streamed upload and download, with progress up to the whole size.
        let local = srv.work().join("big.bin");
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&local, &payload).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let stored = client
            .upload(&local, "@personal/big.bin", move |done, total| {
                log.lock().unwrap().push((done, total))
            })
            .await
            .unwrap();
        assert_eq!(stored, "@personal/big.bin");
        let calls = seen.lock().unwrap().clone();
        assert!(calls.len() > 1, "{calls:?}");
        assert_eq!(calls.last(), Some(&(3_000_000, 3_000_000)));
        assert!(calls.windows(2).all(|w| w[0].0 < w[1].0));
        let back = srv.work().join("back.bin");
        let mut last = 0;
        let n = client
            .download("@personal/big.bin", &back, |done, _| last = done)
            .await
            .unwrap();
        assert_eq!((n, last), (3_000_000, 3_000_000));
        assert_eq!(fs::read(&back).unwrap(), payload);

        // Typed values and ndarray arrays of a fetched slice.
        let arr = client
            .fetch("@public/examples/arange-1d.b2nd", Some("10:16"))
            .await
            .unwrap();
        assert_eq!(arr.values::<i64>().unwrap(), [10, 11, 12, 13, 14, 15]);
        assert!(arr.values::<f64>().is_err());
        let stack = client
            .fetch("@public/examples/stack-3d.b2nd", Some("2, 0:3, 0:4"))
            .await
            .unwrap();
        let nd = stack.to_ndarray::<f32>().unwrap();
        assert_eq!(nd.shape(), &[3, 4]);
        // A chunk comes back as the server stores it: a Blosc2 chunk.
        let chunk = client
            .chunk("@public/examples/arange-1d.b2nd", 0)
            .await
            .unwrap();
        assert!(chunk.len() > 16);

        // Errors carry the server's status and detail.
        match client.info("@public/nothing.b2nd").await {
            Err(cat2_client::Error::Server { status, detail }) => {
                assert_eq!((status, detail.as_str()), (404, "Not Found"))
            }
            other => panic!("{other:?}"),
        }
        let anon = cat2_client::Client::new(&srv.url).unwrap();
        match anon.remove("@personal/big.bin").await {
            Err(cat2_client::Error::Server { status: 401, .. }) => {}
            other => panic!("{other:?}"),
        }
    });
}
