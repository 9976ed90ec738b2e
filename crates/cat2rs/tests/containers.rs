//! Browsing inside `.b2z` stores over HTTP, as the reference server does.
//!
//! The stores are cat2-core's fixtures, written by python-blosc2
//! (`crates/cat2-core/tests/fixtures/make_b2z.py`): `tree.b2z` (a TreeStore
//! with `/g/a` int32 (2, 3), `/g/b`, `/h/c` int32 0..10, `/s/people`
//! structured, `/s/scalar` 0-d, `/chunked` (200, 20) in (50, 20) chunks),
//! `flat.b2z` (a DictStore) and `embedded.b2z` (leaves kept inside
//! `embed.b2e`). `b2z.json` says where python-blosc2 puts each leaf's frame.
//! Every expected answer below was checked against caterva2 2026.9.2.

mod util;

use std::path::{Path, PathBuf};

use cat2_blosc2::NdArray;
use serde_json::Value;
use util::{Resp, TestServer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cat2-core/tests/fixtures")
        .join(name)
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// Where python-blosc2 says the frame of `key` lies in `store`.
fn window(store: &str, key: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(fixture("b2z.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let w = &v[store]["leaves"][key]["window"];
    (
        w[0].as_u64().unwrap() as usize,
        w[1].as_u64().unwrap() as usize,
    )
}

fn server() -> TestServer {
    TestServer::builder()
        .file("tree.b2z", &bytes("tree.b2z"))
        .file("sub/flat.b2z", &bytes("flat.b2z"))
        .file("embedded.b2z", &bytes("embedded.b2z"))
        .file("table.b2z", &bytes("table.b2z"))
        .file("bogus.b2z", b"not a blosc2 container")
        .start()
}

fn i32s(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn list(s: &TestServer, path: &str) -> Value {
    let r = s.get(&format!("/api/list/@public/{path}"));
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

#[test]
fn listings_descend_into_stores() {
    let s = server();
    let root = list(&s, "");
    assert!(root.as_array().unwrap().iter().any(|v| v == "tree.b2z"));
    assert!(!root.to_string().contains("tree.b2z/"));
    assert_eq!(
        list(&s, "tree.b2z"),
        serde_json::json!(["chunked", "g/a", "g/b", "h/c", "s/people", "s/scalar"])
    );
    assert_eq!(list(&s, "tree.b2z/g"), serde_json::json!(["a", "b"]));
    assert_eq!(list(&s, "tree.b2z/g/a"), serde_json::json!(["a"]));
    assert_eq!(list(&s, "tree.b2z/g/nope"), serde_json::json!([]));
    assert_eq!(
        list(&s, "sub/flat.b2z"),
        serde_json::json!(["flat", "frame", "grp/nested"])
    );
    assert_eq!(list(&s, "sub/flat.b2z/grp"), serde_json::json!(["nested"]));
    // Not stores that can be browsed: a table and a damaged file list as
    // files, and nothing is inside them.
    assert_eq!(list(&s, "table.b2z"), serde_json::json!(["table.b2z"]));
    assert_eq!(list(&s, "bogus.b2z"), serde_json::json!(["bogus.b2z"]));
    assert_eq!(s.get("/api/list/@public/bogus.b2z/x").status, 404);
}

#[test]
fn info_of_stores_groups_and_leaves() {
    let s = server();
    let file_len = bytes("tree.b2z").len() as u64;
    let store = s.get("/api/info/@public/tree.b2z");
    let etag = store.header("etag").expect("an etag").to_string();
    let v = store.json();
    assert_eq!(v["kind"], "group");
    assert_eq!(v["size"], file_len);
    assert_eq!(v["nfiles"], 6);

    let g = s.get("/api/info/@public/tree.b2z/g");
    assert_eq!(g.header("etag"), Some(etag.as_str()));
    let g = g.json();
    assert_eq!(g["kind"], "group");
    assert_eq!(g["nfiles"], 2);
    assert_eq!(g["size"], 296 + 269);
    assert_eq!(g["mtime"], v["mtime"]);

    let leaf = s.get("/api/info/@public/tree.b2z/g/a");
    assert_eq!(leaf.header("etag"), Some(etag.as_str()));
    let a = leaf.json();
    assert_eq!(a["shape"], serde_json::json!([2, 3]));
    assert_eq!(a["dtype"], "int32");
    assert_eq!(a["mtime"], v["mtime"]);
    assert_eq!(a["accept_ranges"], Value::Null);
    assert_eq!(a["schunk"]["contiguous"], true);
    // The logical path of the store that holds the leaf.
    assert!(a["schunk"]["urlpath"]
        .as_str()
        .unwrap()
        .starts_with("@public/"));
    assert!(a["schunk"]["urlpath"]
        .as_str()
        .unwrap()
        .ends_with("tree.b2z"));

    let sc = s.get("/api/info/@public/sub/flat.b2z/frame").json();
    assert_eq!(sc["nbytes"], 26);
    assert!(sc["mtime"].is_string());

    let embedded = s.get("/api/info/@public/embedded.b2z/e/small").json();
    assert_eq!(embedded["schunk"]["urlpath"], Value::Null);
    assert_eq!(embedded["schunk"]["contiguous"], false);

    assert_eq!(s.get("/api/info/@public/tree.b2z/g/nope").status, 404);
    assert_eq!(s.get("/api/info/@public/tree.b2z/g/%00bad").status, 404);
    assert_eq!(s.get("/api/info/@public/tree.b2z/g/a/x").status, 404);
    // A damaged store is a file; a table is not served yet but is a file too.
    assert_eq!(s.get("/api/info/@public/bogus.b2z").json()["size"], 22);
}

#[test]
fn a_store_is_fetched_whole_and_never_sliced() {
    let s = server();
    let r = s.get("/api/fetch/@public/tree.b2z");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bytes("tree.b2z"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    for (k, v) in [
        ("slice_", "0:1"),
        ("indices", "[[1,2]]"),
        ("filter", "x > 1"),
    ] {
        let r = s.get_with("/api/fetch/@public/tree.b2z", &[(k, v)], &[]);
        assert_eq!(r.status, 400, "{k}");
        assert!(r.detail().contains("nothing to slice"), "{}", r.detail());
    }
    let r = s.get("/api/fetch/@public/bogus.b2z");
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("not a readable"), "{}", r.detail());
    let r = s.get("/api/download/@public/tree.b2z");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bytes("tree.b2z"));
    assert_eq!(s.get("/api/download/@public/tree.b2z/g/a").status, 404);
}

#[test]
fn a_whole_leaf_is_its_window_with_ranges() {
    let s = server();
    let file = bytes("tree.b2z");
    let (off, len) = window("tree.b2z", "/g/a");
    let frame = &file[off..off + len];
    let etag = s
        .get("/api/info/@public/tree.b2z/g/a")
        .header("etag")
        .unwrap()
        .to_string();

    let r = s.get("/api/fetch/@public/tree.b2z/g/a");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, frame);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let arr = NdArray::from_cframe(&r.body).unwrap();
    assert_eq!(i32s(&arr.to_vec().unwrap()), [0, 1, 2, 3, 4, 5]);

    let range = |spec: &str| s.get_with("/api/fetch/@public/tree.b2z/g/a", &[], &[("range", spec)]);
    let r = range("bytes=0-31");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range").unwrap(),
        format!("bytes 0-31/{len}")
    );
    assert_eq!(r.body, &frame[..32]);
    assert_eq!(&r.body[2..9], b"b2frame");
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    let r = range(&format!("bytes=0-{}", len + 999));
    assert_eq!(r.status, 206);
    assert_eq!(r.body, frame);

    let r = range(&format!("bytes={len}-{}", len + 9));
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").unwrap(), format!("bytes */{len}"));

    let r = range("bytes=0-15, 40-55");
    assert_eq!(r.status, 206);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("multipart/byteranges"));
    let body = r.body.as_slice();
    for part in [&frame[..16], &frame[40..56]] {
        assert!(body.windows(16).any(|w| w == part));
    }
}

#[test]
fn leaves_are_sliced_filtered_and_chunked() {
    let s = server();
    let r = s.get_with("/api/fetch/@public/tree.b2z/h/c", &[("slice_", "2:5")], &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("accept-ranges"), Some("none"));
    let arr = NdArray::from_cframe(&r.body).unwrap();
    assert_eq!(i32s(&arr.to_vec().unwrap()), [2, 3, 4]);

    let r = s.get_with(
        "/api/fetch/@public/tree.b2z/h/c",
        &[("slice_", "2:5")],
        &[("range", "bytes=0-31")],
    );
    assert_eq!(r.status, 416);

    let r = s.get_with(
        "/api/fetch/@public/tree.b2z/s/people",
        &[("filter", "x > 1")],
        &[],
    );
    assert_eq!(r.status, 200);
    let rows = NdArray::from_cframe(&r.body).unwrap().to_vec().unwrap();
    let xs: Vec<i32> = rows
        .chunks_exact(12)
        .map(|rec| i32::from_le_bytes(rec[..4].try_into().unwrap()))
        .collect();
    assert_eq!(xs, [2, 3]);

    // The partitioning the info reports is the one fetched.
    let whole = s.get("/api/fetch/@public/tree.b2z/chunked");
    let arr = NdArray::from_cframe(&whole.body).unwrap();
    assert_eq!(arr.chunks(), [50, 20]);
    assert_eq!(arr.blocks(), [10, 20]);

    // A chunk is the stored one.
    let (off, len) = window("tree.b2z", "/chunked");
    let stored = NdArray::from_cframe(&bytes("tree.b2z")[off..off + len]).unwrap();
    let r = s.get_with(
        "/api/chunk/@public/tree.b2z/chunked",
        &[("nchunk", "2")],
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, stored.schunk().chunk(2).unwrap());

    assert_eq!(
        s.get_with("/api/chunk/@public/tree.b2z/g", &[("nchunk", "0")], &[])
            .status,
        404
    );
    assert_eq!(
        s.get_with(
            "/api/chunk/@public/tree.b2z/g/nope",
            &[("nchunk", "0")],
            &[]
        )
        .status,
        404
    );
    let r = s.get_with("/api/chunk/@public/tree.b2z", &[("nchunk", "0")], &[]);
    assert_eq!(r.status, 400);
    let r = s.get_with("/api/chunk/@public/table.b2z", &[("nchunk", "0")], &[]);
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("CTable"), "{}", r.detail());
}

#[test]
fn embedded_leaves_are_served_as_computed_frames() {
    let s = server();
    let r: Resp = s.get("/api/fetch/@public/embedded.b2z/e/small");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("accept-ranges"), Some("none"));
    let arr = NdArray::from_cframe(&r.body).unwrap();
    let v: Vec<i16> = arr
        .to_vec()
        .unwrap()
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(v, [0, 1, 2, 3, 4]);
    let r = s.get_with(
        "/api/fetch/@public/embedded.b2z/e/small",
        &[],
        &[("range", "bytes=0-9")],
    );
    assert_eq!(r.status, 416);
    let r = s.get("/api/fetch/@public/embedded.b2z/sc");
    assert_eq!(r.status, 200);
    let sc = cat2_blosc2::SChunk::from_cframe(&r.body).unwrap();
    assert_eq!(sc.to_bytes().unwrap(), b"hello world, this is a schunk!!!");
}
