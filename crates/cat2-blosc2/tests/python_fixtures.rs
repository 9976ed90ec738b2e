//! Files written by python-blosc2 4.14.0 (`tests/fixtures/make_fixtures.py`)
//! read with cat2-blosc2: every field of each manifest, the data, boxes,
//! stored chunks and decompressed chunks must agree with what Python read.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use cat2_blosc2::{chunk_sizes, Decompressor, NdArray, SChunk, Special};
use common::{c_order_box, fixtures_dir, i64s, int, manifests, sha256_hex, vlmeta_json};
use serde_json::Value;

fn special_code(s: Special) -> i64 {
    match s {
        Special::None => 0,
        Special::Zero => 1,
        Special::Nan => 2,
        Special::Value => 3,
        Special::Uninit => 4,
    }
}

/// How a frame was read: C-Blosc2 counts `cbytes` differently for a frame
/// copied from memory (special chunks count their 32-byte header).
#[derive(Clone, Copy, PartialEq)]
enum Read {
    File,
    Cframe,
}

/// Checks what a super-chunk reports against the manifest's shared fields.
fn check_schunk(name: &str, sc: &SChunk, m: &Value, read: Read) {
    assert_eq!(
        sc.typesize() as i64,
        int(&m["typesize"]),
        "{name}: typesize"
    );
    assert_eq!(sc.chunksize(), int(&m["chunksize"]), "{name}: chunksize");
    assert_eq!(sc.nchunks(), int(&m["nchunks"]), "{name}: nchunks");
    assert_eq!(sc.nbytes(), int(&m["nbytes"]), "{name}: nbytes");
    let cbytes_key = match read {
        Read::File => "cbytes",
        Read::Cframe => "cframe_cbytes",
    };
    assert_eq!(sc.cbytes(), int(&m[cbytes_key]), "{name}: {cbytes_key}");

    let cp = sc.cparams();
    let want = &m["cparams"];
    assert_eq!(i64::from(cp.codec), int(&want["codec"]), "{name}: codec");
    assert_eq!(
        i64::from(cp.codec_meta),
        int(&want["codec_meta"]),
        "{name}: codec_meta"
    );
    assert_eq!(i64::from(cp.clevel), int(&want["clevel"]), "{name}: clevel");
    assert_eq!(
        cp.filters.iter().map(|&f| i64::from(f)).collect::<Vec<_>>(),
        i64s(&want["filters"]),
        "{name}: filters"
    );
    assert_eq!(
        cp.filters_meta
            .iter()
            .map(|&f| i64::from(f))
            .collect::<Vec<_>>(),
        i64s(&want["filters_meta"]),
        "{name}: filters_meta"
    );
    assert_eq!(
        i64::from(cp.typesize),
        int(&want["typesize"]),
        "{name}: cparams typesize"
    );
    assert_eq!(
        i64::from(cp.blocksize),
        int(&want["blocksize"]),
        "{name}: blocksize"
    );
    assert_eq!(
        i64::from(cp.splitmode),
        int(&want["splitmode"]),
        "{name}: splitmode"
    );

    assert_eq!(vlmeta_json(sc), m["vlmeta"], "{name}: vlmeta");
    let mut names = sc.vlmeta_names().unwrap();
    names.sort();
    let want_names: BTreeSet<&String> = m["vlmeta"].as_object().unwrap().keys().collect();
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>(),
        want_names,
        "{name}: vlmeta names"
    );

    let mut dctx = Decompressor::new(1).unwrap();
    for c in m["chunk_samples"].as_array().unwrap() {
        let n = int(&c["n"]);
        let chunk = sc.chunk(n).unwrap();
        assert_eq!(
            chunk.len() as i64,
            int(&c["len"]),
            "{name}: chunk {n} length"
        );
        assert_eq!(sha256_hex(&chunk), c["sha256"], "{name}: chunk {n} bytes");
        assert_eq!(
            special_code(Special::of(&chunk)),
            int(&c["special"]),
            "{name}: chunk {n} special"
        );
        let (nbytes, cbytes, _blocksize) = chunk_sizes(&chunk).unwrap();
        assert_eq!(
            i64::from(nbytes),
            int(&c["nbytes"]),
            "{name}: chunk {n} nbytes"
        );
        assert_eq!(cbytes as usize, chunk.len(), "{name}: chunk {n} cbytes");
        if let Some(want) = c["decompressed_sha256"].as_str() {
            let mut out = Vec::new();
            sc.decompress_chunk(n, &mut out).unwrap();
            assert_eq!(
                out.len() as i64,
                int(&c["nbytes"]),
                "{name}: chunk {n} size"
            );
            assert_eq!(sha256_hex(&out), want, "{name}: decompressed chunk {n}");
            // A stand-alone context must agree with the super-chunk's own.
            let mut alone = Vec::new();
            dctx.decompress(&chunk, &mut alone).unwrap();
            assert_eq!(
                sha256_hex(&alone),
                want,
                "{name}: chunk {n} via Decompressor"
            );
        }
    }
}

fn check_ndarray(name: &str, arr: &NdArray, m: &Value, read: Read) {
    let shape = i64s(&m["shape"]);
    let chunks = i64s(&m["chunks"]);
    assert_eq!(arr.ndim(), shape.len(), "{name}: ndim");
    assert_eq!(arr.shape(), shape, "{name}: shape");
    assert_eq!(
        arr.chunks().into_iter().map(i64::from).collect::<Vec<_>>(),
        chunks,
        "{name}: chunks"
    );
    assert_eq!(
        arr.blocks().into_iter().map(i64::from).collect::<Vec<_>>(),
        i64s(&m["blocks"]),
        "{name}: blocks"
    );
    assert_eq!(arr.dtype(), m["dtype"], "{name}: dtype");
    assert_eq!(
        arr.itemsize() as i64,
        int(&m["itemsize"]),
        "{name}: itemsize"
    );
    check_schunk(name, arr.schunk(), m, read);

    let Some(want) = m["data_sha256"].as_str() else {
        // Uninitialised data has no stable value; the shape of a read still must.
        let n: i64 = shape.iter().product();
        assert_eq!(
            arr.to_vec().unwrap().len() as i64,
            n * arr.itemsize() as i64,
            "{name}: size of to_vec"
        );
        return;
    };
    let data = arr.to_vec().unwrap();
    assert_eq!(
        data.len() as i64,
        int(&m["data_len"]),
        "{name}: data length"
    );
    assert_eq!(sha256_hex(&data), want, "{name}: data");

    for (start, stop) in common::sample_boxes(&shape, &chunks) {
        let want = c_order_box(&data, &shape, arr.itemsize(), &start, &stop);
        let mut got = vec![0u8; want.len()];
        arr.read_box(&start, &stop, &mut got)
            .unwrap_or_else(|e| panic!("{name}: read_box {start:?}..{stop:?}: {e}"));
        assert!(got == want, "{name}: box {start:?}..{stop:?} differs");
    }
}

fn check_frame(name: &str, sc: &SChunk, m: &Value, read: Read) {
    check_schunk(name, sc, m, read);
    let data = sc.to_bytes().unwrap();
    assert_eq!(
        data.len() as i64,
        int(&m["data_len"]),
        "{name}: data length"
    );
    assert_eq!(sha256_hex(&data), m["data_sha256"], "{name}: data");
    let typesize = sc.typesize();
    let nitems = data.len() / typesize;
    for (a, b) in [
        (0, 1),
        (0, nitems),
        (nitems / 3, nitems / 2),
        (nitems - 1, nitems),
    ] {
        let got = sc.slice(a as i64, b as i64).unwrap();
        assert!(
            got == data[a * typesize..b * typesize],
            "{name}: slice {a}..{b}"
        );
    }
}

fn path_of(m: &Value) -> std::path::PathBuf {
    fixtures_dir().join(m["file"].as_str().expect("manifest names its file"))
}

#[test]
fn every_fixture_file_has_a_manifest() {
    let listed: BTreeSet<String> = manifests()
        .iter()
        .map(|m| m["file"].as_str().unwrap().to_string())
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".b2nd") || n.ends_with(".b2frame") || n.ends_with(".b2"))
        .collect();
    assert_eq!(listed, on_disk);
    assert!(listed.len() >= 20, "the fixtures cover many cases");
}

#[test]
fn fixtures_stay_small() {
    let total: u64 = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total < 512 * 1024, "fixtures take {total} bytes");
}

#[test]
fn arrays_opened_from_files_match_python() {
    let mut seen = 0;
    for m in manifests().iter().filter(|m| m["kind"] == "ndarray") {
        let name = m["name"].as_str().unwrap();
        let arr = NdArray::open(&path_of(m)).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_ndarray(name, &arr, m, Read::File);
        seen += 1;
    }
    assert!(seen >= 20);
}

#[test]
fn arrays_read_from_cframes_match_python() {
    for m in manifests().iter().filter(|m| m["kind"] == "ndarray") {
        let name = m["name"].as_str().unwrap();
        let bytes = std::fs::read(path_of(m)).unwrap();
        let arr = NdArray::from_cframe(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_ndarray(name, &arr, m, Read::Cframe);
    }
}

#[test]
fn array_files_open_as_plain_superchunks() {
    for m in manifests().iter().filter(|m| m["kind"] == "ndarray") {
        let name = m["name"].as_str().unwrap();
        let sc = SChunk::open(&path_of(m)).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_schunk(name, &sc, m, Read::File);
        let b2nd = sc.metalayer("b2nd").expect("a b2nd metalayer");
        // msgpack [version, ndim, shape, chunks, blocks, dtype_format, dtype]
        let meta = cat2_blosc2::decode_msgpack(&b2nd);
        let items = meta.as_array().expect("the b2nd metalayer is a list");
        assert_eq!(items.len(), 7, "{name}: b2nd metalayer");
        assert_eq!(
            items[6].as_str(),
            m["dtype"].as_str(),
            "{name}: stored dtype"
        );
    }
}

#[test]
fn superchunks_match_python() {
    let mut seen = 0;
    for m in manifests().iter().filter(|m| m["kind"] == "schunk") {
        let name = m["name"].as_str().unwrap();
        let path = path_of(m);
        let sc = SChunk::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_frame(name, &sc, m, Read::File);
        let sc = SChunk::from_cframe(&std::fs::read(&path).unwrap()).unwrap();
        check_frame(name, &sc, m, Read::Cframe);
        assert!(sc.metalayer("b2nd").is_none(), "{name}: no b2nd metalayer");
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn superchunk_frames_are_not_arrays() {
    for m in manifests().iter().filter(|m| m["kind"] == "schunk") {
        let path = path_of(m);
        assert!(NdArray::open(&path).is_err(), "{path:?}");
        assert!(NdArray::from_cframe(&std::fs::read(&path).unwrap()).is_err());
    }
}

#[test]
fn regular_file_superchunk_holds_the_text() {
    let sc = SChunk::open(&fixtures_dir().join("notes.txt.b2")).unwrap();
    assert_eq!(sc.typesize(), 1);
    let text = String::from_utf8(sc.to_bytes().unwrap()).unwrap();
    assert!(text.starts_with("line 0: the quick brown fox"));
    assert_eq!(text.lines().count(), 60);
    assert!(sc.nchunks() > 1, "the text spans several chunks");
}

#[test]
fn scalar_and_typed_values_decode() {
    let open = |n: &str| NdArray::open(&fixtures_dir().join(n)).unwrap();
    let f = open("d0_f8.b2nd").to_vec().unwrap();
    assert_eq!(f64::from_le_bytes(f.try_into().unwrap()), 3.25);

    let be = open("d1_be_i2.b2nd").to_vec().unwrap();
    let first: Vec<i16> = be
        .chunks_exact(2)
        .take(3)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(first, [-6000, -5700, -5400]);

    let full = open("special_full.b2nd").to_vec().unwrap();
    assert!(full
        .chunks_exact(4)
        .all(|b| i32::from_le_bytes(b.try_into().unwrap()) == 7));
    let zeros = open("special_zeros.b2nd").to_vec().unwrap();
    assert_eq!(zeros.len(), 25 * 6 * 8);
    assert!(zeros.iter().all(|&b| b == 0));

    // Records of [('a', '<i4'), ('b', '<f8'), ('c', 'S3')]: 15 bytes each.
    let rec = open("d1_struct.b2nd");
    assert_eq!(rec.itemsize(), 15);
    let mut row = vec![0u8; 15];
    rec.read_box(&[3], &[4], &mut row).unwrap();
    assert_eq!(
        i32::from_le_bytes(row[0..4].try_into().unwrap()),
        3 * 11 - 100
    );
    assert_eq!(f64::from_le_bytes(row[4..12].try_into().unwrap()), 0.75);
    assert_eq!(&row[12..15], b"r3\0");
}

#[test]
fn special_chunks_are_header_only() {
    for (file, special) in [
        ("special_zeros.b2nd", Special::Zero),
        ("special_uninit.b2nd", Special::Uninit),
        ("special_full.b2nd", Special::Value),
    ] {
        let arr = NdArray::open(&fixtures_dir().join(file)).unwrap();
        let sc = arr.schunk();
        for n in 0..sc.nchunks() {
            let chunk = sc.chunk(n).unwrap();
            assert_eq!(Special::of(&chunk), special, "{file} chunk {n}");
            assert!(chunk.len() <= 32 + arr.itemsize(), "{file} chunk {n}");
        }
    }
    let plain = NdArray::open(&fixtures_dir().join("d1_i16_zstd_bitshuffle.b2nd")).unwrap();
    assert_eq!(
        Special::of(&plain.schunk().chunk(0).unwrap()),
        Special::None
    );
}

#[test]
fn every_chunk_decompresses_to_chunksize() {
    for m in manifests() {
        let path = path_of(&m);
        let sc = SChunk::open(Path::new(&path)).unwrap();
        let mut out = Vec::new();
        let mut total = 0i64;
        for n in 0..sc.nchunks() {
            sc.decompress_chunk(n, &mut out).unwrap();
            let (nbytes, _, _) = chunk_sizes(&sc.chunk(n).unwrap()).unwrap();
            assert_eq!(out.len(), nbytes as usize, "{path:?} chunk {n}");
            total += out.len() as i64;
        }
        assert_eq!(total, sc.nbytes(), "{path:?}");
    }
}
