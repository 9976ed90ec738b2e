//! Unfolding an HDF5 file written by h5py + hdf5plugin
//! (`fixtures/make_unfold_h5.py`) and serving its proxies: every answer is
//! compared with what h5py read from the same file (`fixtures/unfold.json`).

use cat2_core::budget::Budget;
use std::path::{Path, PathBuf};

use cat2_blosc2::{Decompressor, NdArray, SChunk};
use cat2_core::fetch::{FetchOutput, FetchRequest};
use cat2_core::node::Node;
use cat2_core::resolve::Resolver;
use cat2_core::write::WritePolicy;
use cat2_core::{Caller, DsPath, StateDir};
use cat2_proto::Info;
use serde_json::Value;
use sha2::{Digest, Sha256};

const USER: Caller<'static> = Caller {
    user_id: Some("8d0e3d0e-0000-4000-8000-000000000001"),
    is_superuser: true,
};

/// What `path` names for the test's user.
fn node(sd: &StateDir, path: &str) -> Node {
    Resolver::new(sd, USER)
        .resolve(&DsPath::parse(path).unwrap())
        .unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A state dir with the fixture uploaded to `@shared` and unfolded.
fn unfolded() -> (tempfile::TempDir, StateDir, Value) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let sd = StateDir::open(tmp.path()).expect("state dir");
    std::fs::copy(fixture("unfold.h5"), sd.path().join("shared/unfold.h5")).expect("copy");
    let file = DsPath::parse("@shared/unfold.h5").unwrap();
    let stem =
        cat2_core::unfold::unfold(&sd, &file, USER, &WritePolicy::default()).expect("unfold");
    assert_eq!(stem, "unfold");
    let want = std::fs::read_to_string(fixture("unfold.json")).expect("unfold.json");
    (tmp, sd, serde_json::from_str(&want).expect("json"))
}

fn fetched(sd: &StateDir, path: &str, slice: Option<&str>) -> NdArray {
    let req = FetchRequest {
        slice: slice.map(str::to_string),
        ..Default::default()
    };
    match node(sd, path).fetch(&req).expect(path) {
        FetchOutput::Frame(f) => NdArray::from_cframe(&f).expect("a frame"),
        FetchOutput::Stored { .. } => panic!("{path}: a proxy is computed, got stored bytes"),
        FetchOutput::Spilled(_) => panic!("{path}: spilled with an unlimited budget"),
    }
}

#[test]
fn unfold_writes_attributes_and_proxies() {
    let (_tmp, sd, want) = unfolded();
    let root = sd.path().join("shared/unfold");
    let attrs = SChunk::open(&root.join("!_attrs_.json.b2")).expect("attrs file");
    assert_eq!(
        String::from_utf8(attrs.to_bytes().unwrap()).unwrap(),
        "{\n  \"title\": \"cat2rs unfold fixture\"\n}"
    );
    assert!(root.join("entry/data/!_attrs_.json.b2").is_file());
    for name in want.as_object().unwrap().keys() {
        let proxy = NdArray::open(&root.join(format!("{name}.b2nd"))).expect(name);
        // All zero chunks: the data stays in the HDF5 file.
        assert!(
            std::fs::metadata(root.join(format!("{name}.b2nd")))
                .unwrap()
                .len()
                < 2000
        );
        let vlmeta = proxy.schunk().vlmeta().unwrap();
        let keys: Vec<&str> = vlmeta.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["_ftype", "_dsetname", "scale", "units"], "{name}");
        assert_eq!(vlmeta[1].1.as_str(), Some(name.as_str()));
    }
}

#[test]
fn proxies_serve_what_h5py_reads() {
    let (_tmp, sd, want) = unfolded();
    for (name, w) in want.as_object().unwrap() {
        let path = format!("@shared/unfold/{name}.b2nd");
        let Info::Array(info) = node(&sd, &path).info().expect("info") else {
            panic!("{name}: an array")
        };
        let shape: Vec<i64> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(info.shape, shape, "{name}");
        assert!(info.accept_ranges.is_none(), "{name}");
        assert!(info.schunk.cbytes > 0, "{name}: the HDF5 storage size");
        let all = fetched(&sd, &path, None);
        assert_eq!(sha(&all.to_vec().unwrap()), w["sha256"], "{name}");
        if shape.len() == 3 {
            let frame = fetched(&sd, &path, Some("1"));
            assert_eq!(sha(&frame.to_vec().unwrap()), w["frame1_sha256"], "{name}");
        }
        // Chunk 0 is a real chunk: its C-order bytes are h5py's first chunk.
        let chunk = node(&sd, &path)
            .chunk(0, &Budget::unlimited())
            .expect("chunk");
        let mut out = Vec::new();
        Decompressor::new(1)
            .unwrap()
            .decompress(&chunk, &mut out)
            .unwrap();
        assert_eq!(sha(&out), w["chunk0_sha256"], "{name}: chunk 0");
    }
}

#[test]
fn whole_chunks_pass_through_without_recompression() {
    let (_tmp, sd, _) = unfolded();
    // The frame's chunk is the stored one, re-framed: its codec is the file's.
    for (name, codec) in [("bitshuffle", 1u8), ("gzip", 4), ("blosc2", 1)] {
        let frame = fetched(
            &sd,
            &format!("@shared/unfold/entry/data/{name}.b2nd"),
            Some("2"),
        );
        assert_eq!(frame.schunk().cparams().codec, codec, "{name}");
    }
    // An unaligned slab is computed (our compression: LZ4).
    let slab = fetched(&sd, "@shared/unfold/entry/data/gzip.b2nd", Some("1:3, 5:9"));
    assert_eq!(slab.shape(), [2, 4, 128]);
}

#[test]
fn in_place_leaves_agree_with_proxies() {
    let (_tmp, sd, want) = unfolded();
    for name in [
        "entry/data/gzip",
        "entry/data/bitshuffle",
        "image_lzf_edges",
    ] {
        let in_place = fetched(&sd, &format!("@shared/unfold.h5/{name}"), None);
        assert_eq!(
            sha(&in_place.to_vec().unwrap()),
            want[name]["sha256"],
            "{name}"
        );
    }
}

#[test]
fn a_proxy_cannot_reach_outside_its_root() {
    let (_tmp, sd, _) = unfolded();
    // A proxy whose dataset name climbs more levels than it has.
    let src = sd.path().join("shared/unfold/records.b2nd");
    let mut arr = NdArray::open(&src).unwrap();
    let mut copy = NdArray::from_cframe(&arr.to_cframe().unwrap()).unwrap();
    copy.schunk_mut()
        .set_vlmeta("_dsetname", &rmpv::Value::from("a/b/c/d/records"))
        .unwrap();
    std::fs::write(
        sd.path().join("shared/evil.b2nd"),
        copy.to_cframe().unwrap(),
    )
    .unwrap();
    let err = node(&sd, "@shared/evil.b2nd")
        .fetch(&FetchRequest::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("points outside @shared"), "{err}");
    // And one whose HDF5 file is gone is a clear error too.
    std::fs::remove_file(sd.path().join("shared/unfold.h5")).unwrap();
    let err = node(&sd, "@shared/unfold/records.b2nd")
        .info()
        .unwrap_err()
        .to_string();
    assert!(err.contains("unfold.h5 is missing"), "{err}");
    let _ = arr.schunk_mut();
}
