//! `.b2z` stores: the index agrees with python-blosc2 on the stores it wrote
//! (`fixtures/make_b2z.py`), answers as the reference server browses them,
//! and damaged or hostile archives give errors, never panics.

use std::path::{Path, PathBuf};

use cat2_blosc2::{ArraySpec, CParams, NdArray, SChunk};
use cat2_core::hierarchy::zip::{Container, LeafData, NotAStore, Placement, StoreKind};
use cat2_core::hierarchy::Member as Node;
use cat2_core::hierarchy::Tree;
use cat2_core::storage::local::LocalStorage;
use cat2_core::storage::{Key, Storage};
use serde_json::Value;

/// Opens the store file at `path` through the storage seam, as the server does.
fn open_store(path: &Path) -> Result<Container, NotAStore> {
    let dir = path.parent().expect("a file in a directory");
    let store = LocalStorage::open(dir).expect("the directory");
    let key = Key::parse(&path.file_name().expect("a name").to_string_lossy()).expect("a key");
    Container::open(store.open(&key).expect("the file opens"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("b2z.json")).expect("b2z.json");
    serde_json::from_str(&text).expect("b2z.json is JSON")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every key python-blosc2 reports resolves, every leaf opens where
/// python-blosc2 says its frame lies, and holds the same bytes.
#[test]
fn python_stores_match_python_blosc2() {
    let all = expected();
    for (name, want) in all.as_object().expect("object") {
        let c = open_store(&fixture(name)).expect(name);
        match want["type"].as_str() {
            Some("TreeStore") => assert_eq!(c.kind(), StoreKind::Tree, "{name}"),
            Some("DictStore") => assert_eq!(c.kind(), StoreKind::Dict, "{name}"),
            Some("CTable") => {
                assert_eq!(c.kind(), StoreKind::Table, "{name}");
                continue;
            }
            other => panic!("{name}: unexpected type {other:?}"),
        }
        let leaves = want["leaves"].as_object().expect("leaves");
        for key in want["keys"].as_array().expect("keys") {
            let key = key.as_str().expect("key");
            let node = c.lookup(key);
            let Some(leaf) = leaves.get(key) else {
                assert!(
                    matches!(node, Some(Node::Group | Node::Object(_))),
                    "{name}{key}: {node:?}"
                );
                continue;
            };
            assert_eq!(node, Some(Node::Leaf), "{name}{key}");
            let opened = c.open_leaf(key).expect("leaf opens");
            match (&leaf["window"], &opened.placement) {
                (Value::Array(w), Placement::Window { offset, len }) => {
                    assert_eq!(w[0].as_u64(), Some(*offset), "{name}{key}");
                    assert_eq!(w[1].as_u64(), Some(*len), "{name}{key}");
                }
                (Value::Null, Placement::Embedded(_)) => {}
                (w, p) => panic!("{name}{key}: window {w:?}, placement {p:?}"),
            }
            match (leaf["kind"].as_str(), &opened.data) {
                (Some("ndarray"), LeafData::Array(arr)) => {
                    let shape: Vec<i64> = leaf["shape"]
                        .as_array()
                        .expect("shape")
                        .iter()
                        .filter_map(Value::as_i64)
                        .collect();
                    assert_eq!(arr.shape(), shape, "{name}{key}");
                    let data = arr.to_vec().expect("data");
                    let head = leaf["head"].as_str().expect("head");
                    assert_eq!(hex(&data[..head.len() / 2]), head, "{name}{key}");
                }
                (Some("schunk"), LeafData::Frame(sc)) => {
                    let data = sc.to_bytes().expect("data");
                    assert_eq!(data, leaf["bytes"].as_str().expect("bytes").as_bytes());
                }
                (kind, _) => panic!("{name}{key}: kind {kind:?} opened as the other"),
            }
        }
    }
}

/// Listings as the reference server gives them (checked against
/// caterva2 2026.9.2 on these very stores).
#[test]
fn listings_follow_the_reference() {
    let tree = open_store(&fixture("tree.b2z")).unwrap();
    assert_eq!(
        tree.list(None),
        ["chunked", "g/a", "g/b", "h/c", "s/people", "s/scalar"]
    );
    assert_eq!(tree.list(Some("/g")), ["a", "b"]);
    assert_eq!(tree.list(Some("/g/a")), ["a"]);
    assert!(tree.list(Some("/g/nope")).is_empty());
    assert!(tree.list(Some("/g/a/x")).is_empty());
    assert_eq!(tree.lookup("/g"), Some(Node::Group));
    assert_eq!(tree.lookup("/g/nope"), None);
    assert_eq!(tree.lookup("/g/a/x"), None);
    assert_eq!(tree.size("/g"), 296 + 269);
    assert_eq!(tree.leaves("/").len(), 6);

    let flat = open_store(&fixture("flat.b2z")).unwrap();
    assert_eq!(flat.list(None), ["flat", "frame", "grp/nested"]);
    assert_eq!(flat.list(Some("/grp")), ["nested"]);
    assert_eq!(flat.list(Some("/grp/nested")), ["nested"]);
    assert_eq!(flat.lookup("/grp"), Some(Node::Group));
    assert_eq!(flat.size("/grp"), 308);

    // A DictStore key that is also a prefix: a leaf, listing its children.
    let namesake = open_store(&fixture("namesake.b2z")).unwrap();
    assert_eq!(namesake.list(None), ["grp", "grp/a"]);
    assert_eq!(namesake.list(Some("/grp")), ["a"]);
    assert_eq!(namesake.lookup("/grp"), Some(Node::Leaf));

    // Metadata carriers make groups; they are not listed.
    let embedded = open_store(&fixture("embedded.b2z")).unwrap();
    assert_eq!(embedded.list(None), ["e/big", "e/small", "sc"]);
    assert_eq!(embedded.list(Some("/e")), ["big", "small"]);
    assert_eq!(embedded.lookup("/e/__vlmeta__"), None);

    // A CTable inside a tree is one entry; its parts stay reachable by key.
    let tt = open_store(&fixture("treetable.b2z")).unwrap();
    assert_eq!(tt.list(None), ["arr", "tbl"]);
    assert_eq!(tt.list(Some("/tbl")), ["tbl"]);
    assert_eq!(tt.lookup("/tbl"), Some(Node::Object("ctable")));
    assert_eq!(tt.lookup("/tbl/_cols/x"), Some(Node::Leaf));
    assert_eq!(tt.lookup("/tbl/_cols"), None);

    // A store that is a CTable is a table, not a group.
    let table = open_store(&fixture("table.b2z")).unwrap();
    assert!(!table.is_browsable());
    assert_eq!(table.lookup("/_meta"), None);
}

/// A small deterministic generator for the damage tests.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Opens a (possibly damaged) store and reads everything it claims to hold.
fn exercise(path: &Path) {
    let Ok(c) = open_store(path) else { return };
    let mut keys = c.leaves("/");
    for k in c.list(None) {
        keys.push(format!("/{k}"));
    }
    for key in keys {
        let _ = c.lookup(&key);
        let _ = c.list(Some(&key));
        let _ = c.size(&key);
        if let Ok(leaf) = c.open_leaf(&key) {
            // Read what the leaf holds, up to a bound: a damaged header can
            // declare any size, and reading is what must not crash.
            match leaf.data {
                LeafData::Array(arr) => {
                    let items: i64 = arr.shape().iter().product();
                    if items.saturating_mul(arr.itemsize() as i64) < 64 << 20 {
                        let _ = arr.to_vec();
                    }
                }
                LeafData::Frame(sc) => {
                    if sc.nbytes() < 64 << 20 {
                        let _ = sc.to_bytes();
                    }
                }
            }
        }
    }
}

#[test]
fn truncated_and_damaged_stores_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.b2z");
    let mut rng = Lcg(42);
    for name in ["tree.b2z", "flat.b2z", "embedded.b2z", "treetable.b2z"] {
        let good = std::fs::read(fixture(name)).unwrap();
        for cut in (0..good.len()).step_by(97) {
            std::fs::write(&path, &good[..cut]).unwrap();
            exercise(&path);
        }
        // Flip bits anywhere: zip structure, frame headers, metalayers,
        // chunk offsets, chunk data. (Thousands of runs of this, with other
        // seeds and whole bytes replaced, found the C-Blosc2 failures that
        // cat2-blosc2 now checks for before it opens a frame.)
        for _ in 0..300 {
            let mut bad = good.clone();
            let at = (rng.next() as usize) % bad.len();
            bad[at] ^= 1 << (rng.next() % 8);

            std::fs::write(&path, &bad).unwrap();
            exercise(&path);
        }
    }
}

/// A zip archive of stored members, for stores made here.
fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let offset = out.len() as u32;
        let n = data.len() as u32;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&n.to_le_bytes());
        central.extend_from_slice(&n.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// An `embed.b2e` of a TreeStore whose embedded data is `data` and whose
/// key map is `map` (key → (offset, length)).
fn embed_store(data: &[u8], map: &[(&str, u64, u64)]) -> Vec<u8> {
    use rmpv::Value as M;
    let mut sc = SChunk::new(&CParams::zstd_shuffle(1)).unwrap();
    sc.add_metalayer(
        "b2tree",
        &cat2_blosc2::encode_msgpack(&M::Map(vec![(M::from("version"), M::from(1))])),
    )
    .unwrap();
    if !data.is_empty() {
        sc.append_buffer(data).unwrap();
    }
    let entries = map
        .iter()
        .map(|(k, off, len)| {
            (
                M::from(*k),
                M::Map(vec![
                    (M::from("offset"), M::from(*off)),
                    (M::from("length"), M::from(*len)),
                ]),
            )
        })
        .collect();
    let meta = M::Map(vec![
        (M::from("embed_map"), M::Map(entries)),
        (M::from("current_offset"), M::from(data.len() as u64)),
    ]);
    sc.set_vlmeta("estore_metadata", &meta).unwrap();
    sc.to_cframe().unwrap()
}

fn small_array() -> Vec<u8> {
    let data: Vec<u8> = (0i32..10).flat_map(|v| v.to_le_bytes()).collect();
    let spec = ArraySpec {
        shape: vec![10],
        chunks: vec![5],
        blocks: vec![5],
        dtype: "<i4".into(),
        cparams: CParams::zstd_shuffle(4),
        urlpath: None,
    };
    NdArray::from_buffer(&spec, &data)
        .unwrap()
        .to_cframe()
        .unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn a_store_made_here_opens_and_serves_embedded_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let arr = small_array();
    let embed = embed_store(&arr, &[("/in/embedded", 0, arr.len() as u64)]);
    let p = write(
        dir.path(),
        "ok.b2z",
        &zip_of(&[("a/x.b2nd", &arr), ("embed.b2e", &embed)]),
    );
    let c = open_store(&p).unwrap();
    assert_eq!(c.list(None), ["a/x", "in/embedded"]);
    for key in ["/a/x", "/in/embedded"] {
        let leaf = c.open_leaf(key).unwrap();
        let LeafData::Array(a) = leaf.data else {
            panic!("{key} is an array")
        };
        assert_eq!(a.to_vec().unwrap().len(), 40);
    }
}

#[test]
fn hostile_stores_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let arr = small_array();
    let embed = embed_store(&[], &[]);

    // No embed.b2e: a zip, but not a store.
    let p = write(dir.path(), "noembed.b2z", &zip_of(&[("a.b2nd", &arr)]));
    let err = open_store(&p).unwrap_err();
    assert!(err.0.contains("embed.b2e"), "{err}");

    // A leaf whose frame claims more bytes than its member holds.
    let mut long = arr.clone();
    long[16..24].copy_from_slice(&(1u64 << 40).to_be_bytes());
    let p = write(
        dir.path(),
        "long.b2z",
        &zip_of(&[("a.b2nd", &long), ("embed.b2e", &embed)]),
    );
    let c = open_store(&p).unwrap();
    let err = c.open_leaf("/a").err().expect("refused");
    assert!(err.to_string().contains("declares"), "{err}");

    // Embedded leaves outside the embedded data, or bigger than the file.
    let e = embed_store(
        &arr,
        &[("/past", 5, arr.len() as u64), ("/huge", 0, 1 << 50)],
    );
    let p = write(dir.path(), "past.b2z", &zip_of(&[("embed.b2e", &e)]));
    let c = open_store(&p).unwrap();
    let err = c.open_leaf("/past").err().expect("refused");
    assert!(err.to_string().contains("outside"), "{err}");
    let err = c.open_leaf("/huge").err().expect("refused");
    assert!(err.to_string().contains("more than"), "{err}");

    // Garbage where a frame should be, under a trusted suffix.
    let p = write(
        dir.path(),
        "garbage.b2z",
        &zip_of(&[("a.b2nd", b"not a frame at all, no"), ("embed.b2e", &embed)]),
    );
    let c = open_store(&p).unwrap();
    assert!(c.open_leaf("/a").is_err());

    // Plain text is no store at all.
    let p = write(dir.path(), "text.b2z", b"not a blosc2 container");
    assert!(open_store(&p).is_err());
}

/// A 1.4 kB store (found by the `b2z` fuzz target) whose leaf `/g/b` declares
/// chunks of 512 × 13,762,563 items over a super-chunk of 48-byte chunks:
/// reading a slice of it used to allocate 56 GB; its leaf is refused when
/// opened, with the reason, and the other leaf still opens.
#[test]
fn a_leaf_whose_chunk_shape_is_not_its_chunks_is_refused() {
    let store = open_store(&fixture("huge-chunks.b2z")).expect("the store opens");
    let err = store.open_leaf("/g/b").err().expect("refused");
    assert!(
        err.to_string()
            .contains("do not describe its chunks of 48 bytes"),
        "{err}"
    );
    assert!(store.open_leaf("/a").is_ok());
}

/// A 1 kB store (found by the `b2z` fuzz target) whose leaf `/x` has the
/// dtype `int` (8-byte items) over chunks of 2-byte items: each box read was
/// a quarter of what its result was laid out from (a panic in a fetch of
/// it). The leaf is refused when opened, with the reason; the other leaf
/// still opens.
#[test]
fn a_leaf_whose_dtype_is_not_its_items_is_refused() {
    let store = open_store(&fixture("itemsize-mismatch.b2z")).expect("the store opens");
    let err = store.open_leaf("/x").err().expect("refused");
    assert!(
        err.to_string()
            .contains("its dtype int has items of 8 bytes, but its chunks hold items of 2"),
        "{err}"
    );
    assert!(store.open_leaf("/y").is_ok());
}

/// A 1 kB store (found by the `b2z` fuzz target) whose embedded index frame
/// declares a metalayer of 2 GB: C-Blosc2 copied 2 GB from its header (a
/// heap overflow) when the store was opened. Now it is not a store.
#[test]
fn a_store_whose_index_declares_a_huge_metalayer_is_refused() {
    let Err(err) = open_store(&fixture("metalayer-2gb.b2z")) else {
        panic!("the store opened");
    };
    assert!(err.to_string().contains("does not fit"), "{err}");
}
