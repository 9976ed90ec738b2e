//! The `cat2rs` command line apart from `serve`: `cat2rs examples` writes the
//! example datasets (checked here with cat2-blosc2, no Python needed), and
//! the usual clap behaviour.

mod util;

use std::fs;
use std::path::{Path, PathBuf};

use cat2_blosc2::{NdArray, SChunk};
use util::{cat2rs, run_examples};

const EXAMPLES: [&str; 7] = [
    "arange-1d.b2nd",
    "image-2d.b2nd",
    "stack-3d.b2nd",
    "complex-4d.b2nd",
    "records.b2nd",
    "hello.b2frame",
    "README.md.b2",
];

fn examples_dir(statedir: &Path) -> PathBuf {
    statedir.join("public/examples")
}

fn printed_paths(out: &std::process::Output) -> Vec<PathBuf> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect()
}

fn open(statedir: &Path, name: &str) -> NdArray {
    NdArray::open(&examples_dir(statedir).join(name)).unwrap()
}

fn read_box(arr: &NdArray, start: &[i64], stop: &[i64]) -> Vec<u8> {
    let n: i64 = start.iter().zip(stop).map(|(a, b)| b - a).product();
    let mut out = vec![0u8; n as usize * arr.itemsize()];
    arr.read_box(start, stop, &mut out).unwrap();
    out
}

#[test]
fn examples_writes_every_dataset_and_the_state_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let statedir = tmp.path().join("state");
    let out = run_examples(&statedir);
    let printed = printed_paths(&out);
    assert_eq!(printed.len(), EXAMPLES.len(), "{printed:?}");
    let dir = examples_dir(&statedir.canonicalize().unwrap());
    for name in EXAMPLES {
        assert!(
            printed.contains(&dir.join(name)),
            "{name} not in {printed:?}"
        );
        assert!(dir.join(name).is_file(), "{name}");
    }
    for sub in ["public", "shared", "personal", "media"] {
        assert!(statedir.join(sub).is_dir(), "{sub}");
    }
    assert_eq!(fs::read_to_string(statedir.join("db.json")).unwrap(), "{}");
    let peer = fs::read_to_string(statedir.join("peer_id")).unwrap();
    assert_eq!(peer.len(), 32);
    assert!(peer.chars().all(|c| c.is_ascii_hexdigit()));
    // Nothing half-written is left behind.
    let stray: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !EXAMPLES.contains(&n.as_str()))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn examples_arrays_hold_what_they_promise() {
    let tmp = tempfile::tempdir().unwrap();
    let statedir = tmp.path().join("state");
    run_examples(&statedir);

    let a = open(&statedir, "arange-1d.b2nd");
    assert_eq!(
        (a.shape(), a.chunks(), a.blocks()),
        (vec![10_000], vec![1000], vec![100])
    );
    assert_eq!(a.dtype(), "<i8");
    let values: Vec<i64> = a
        .to_vec()
        .unwrap()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(values, (0..10_000).collect::<Vec<_>>());

    let img = open(&statedir, "image-2d.b2nd");
    assert_eq!(img.shape(), vec![512, 512]);
    assert_eq!(img.dtype(), "<u2");
    let row = read_box(&img, &[300, 0], &[301, 512]);
    for (x, b) in row.chunks_exact(2).enumerate() {
        let (x, y) = (x as i64, 300i64);
        let want = ((x ^ y) * 97 + x * y) as u16;
        assert_eq!(u16::from_le_bytes([b[0], b[1]]), want, "x={x}");
    }

    let stack = open(&statedir, "stack-3d.b2nd");
    assert_eq!(stack.shape(), vec![32, 128, 128]);
    assert_eq!(stack.dtype(), "<f4");
    assert_eq!(stack.chunks(), vec![1, 128, 128]);
    let frame = read_box(&stack, &[16, 0, 0], &[17, 128, 128]);
    let values: Vec<f32> = frame
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert!(values
        .iter()
        .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    assert_eq!(
        values[64 * 128 + 64],
        0.0,
        "the centre is a node of the shells"
    );

    let c = open(&statedir, "complex-4d.b2nd");
    assert_eq!(c.shape(), vec![2, 3, 4, 5]);
    assert_eq!(c.dtype(), "<c16");
    let all = c.to_vec().unwrap();
    for (i, item) in all.chunks_exact(16).enumerate() {
        let re = f64::from_le_bytes(item[..8].try_into().unwrap());
        let im = f64::from_le_bytes(item[8..].try_into().unwrap());
        assert_eq!((re, im), (i as f64, -(i as f64) / 2.0), "item {i}");
    }

    let rec = open(&statedir, "records.b2nd");
    assert_eq!(
        rec.dtype(),
        "[('id', '<i4'), ('x', '<f8'), ('name', 'S8'), ('ok', '?')]"
    );
    assert_eq!(rec.itemsize(), 21);
    assert_eq!(rec.shape(), vec![1000]);
    let row = read_box(&rec, &[42], &[43]);
    assert_eq!(i32::from_le_bytes(row[..4].try_into().unwrap()), 42);
    assert_eq!(f64::from_le_bytes(row[4..12].try_into().unwrap()), 10.5);
    assert_eq!(&row[12..20], b"row42\0\0\0");
    assert_eq!(row[20], 1);
}

#[test]
fn examples_superchunk_and_readme() {
    let tmp = tempfile::tempdir().unwrap();
    let statedir = tmp.path().join("state");
    run_examples(&statedir);
    let dir = examples_dir(&statedir);

    let hello = SChunk::open(&dir.join("hello.b2frame")).unwrap();
    assert_eq!(hello.typesize(), 1);
    assert!(NdArray::open(&dir.join("hello.b2frame")).is_err());
    assert_eq!(
        hello.to_bytes().unwrap(),
        b"Hello from cat2rs! ".repeat(100)
    );

    let readme = SChunk::open(&dir.join("README.md.b2")).unwrap();
    assert_eq!(readme.typesize(), 1);
    let text = String::from_utf8(readme.to_bytes().unwrap()).unwrap();
    assert!(text.starts_with("# Example datasets\n"), "{text}");
    for name in &EXAMPLES[..6] {
        assert!(text.contains(name), "README does not mention {name}");
    }
}

#[test]
fn examples_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let statedir = tmp.path().join("state");
    run_examples(&statedir);
    let dir = examples_dir(&statedir);
    let before: Vec<(Vec<u8>, std::time::SystemTime)> = EXAMPLES
        .iter()
        .map(|n| {
            let p = dir.join(n);
            (
                fs::read(&p).unwrap(),
                fs::metadata(&p).unwrap().modified().unwrap(),
            )
        })
        .collect();
    let peer = fs::read(statedir.join("peer_id")).unwrap();

    let again = run_examples(&statedir);
    assert!(
        again.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    for (n, (bytes, mtime)) in EXAMPLES.iter().zip(&before) {
        let p = dir.join(n);
        assert!(&fs::read(&p).unwrap() == bytes, "{n} changed");
        assert_eq!(
            &fs::metadata(&p).unwrap().modified().unwrap(),
            mtime,
            "{n} rewritten"
        );
    }
    assert_eq!(fs::read(statedir.join("peer_id")).unwrap(), peer);
}

#[test]
fn examples_restores_only_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let statedir = tmp.path().join("state");
    run_examples(&statedir);
    let dir = examples_dir(&statedir);
    let original = open(&statedir, "image-2d.b2nd").to_vec().unwrap();
    fs::remove_file(dir.join("image-2d.b2nd")).unwrap();

    let out = run_examples(&statedir);
    let printed = printed_paths(&out);
    assert_eq!(printed.len(), 1, "{printed:?}");
    assert!(printed[0].ends_with("public/examples/image-2d.b2nd"));
    // The values are generated deterministically (the bytes need not be:
    // blocks compressed by several threads may be stored in any order).
    assert!(open(&statedir, "image-2d.b2nd").to_vec().unwrap() == original);
}

#[test]
fn examples_defaults_to_the_caterva2_state_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cat2rs(tmp.path()).arg("examples").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tmp
        .path()
        .join("_caterva2/state/public/examples/arange-1d.b2nd")
        .is_file());
}

#[test]
fn examples_into_a_file_fails_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let not_a_dir = tmp.path().join("state");
    fs::write(&not_a_dir, b"a file").unwrap();
    let out = cat2rs(tmp.path())
        .args(["examples", "--statedir"])
        .arg(&not_a_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("cat2rs: opening state dir"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn version_and_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let v = cat2rs(tmp.path()).arg("--version").output().unwrap();
    assert!(v.status.success());
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        format!("cat2rs {}", env!("CARGO_PKG_VERSION"))
    );
    let none = cat2rs(tmp.path()).output().unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("Usage"));
    let bad = cat2rs(tmp.path()).arg("frobnicate").output().unwrap();
    assert!(!bad.status.success());
}

mod users {
    use super::util::cat2rs;

    fn run(args: &[&str]) -> std::process::Output {
        cat2rs(&std::env::temp_dir()).args(args).output().unwrap()
    }

    #[test]
    fn adduser_listusers_deluser_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = tmp.path().to_str().unwrap();
        let out = run(&[
            "adduser",
            "ann@example.com",
            "longenough1",
            "--superuser",
            "--statedir",
            sd,
        ]);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("ann@example.com") && !stdout.contains("longenough1"));
        assert!(tmp.path().join("db.sqlite").is_file());
        let out = run(&["adduser", "bob@example.com", "--statedir", sd]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("generated password: "));
        let list =
            String::from_utf8_lossy(&run(&["listusers", "--statedir", sd]).stdout).into_owned();
        assert!(list.contains("ann@example.com superuser"), "{list}");
        assert!(
            list.lines().any(|l| l.ends_with(" bob@example.com")),
            "{list}"
        );
        assert!(!list.contains("argon2"));
        let out = run(&["deluser", "bob@example.com", "--statedir", sd]);
        assert!(out.status.success());
        let out = run(&["deluser", "bob@example.com", "--statedir", sd]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("UserNotExists"));
    }

    #[test]
    fn bad_emails_and_short_passwords_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let sd = tmp.path().to_str().unwrap();
        let out = run(&["adduser", "notanemail", "longenough1", "--statedir", sd]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid email address"));
        let out = run(&["adduser", "c@example.com", "short", "--statedir", sd]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidPasswordException"));
    }
}
