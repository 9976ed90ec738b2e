//! Files and cframes written by cat2-blosc2, read back by cat2-blosc2 and —
//! when `CAT2RS_PYTHON` names a Python with python-blosc2 (CI points it at
//! the conformance venv; locally e.g. `/tmp/refvenv/bin/python`) — by
//! python-blosc2, which must see the same shapes, dtypes, values and vlmeta.

mod common;

use std::path::Path;
use std::process::Command;

use cat2_blosc2::cparams::{codec, filter};
use cat2_blosc2::{ArraySpec, CParams, NdArray, SChunk, Special};
use common::{hex, msgpack_json, sha256_hex, vlmeta_json};
use rmpv::Value as M;
use serde_json::{json, Value};

fn cparams(codec: u8, clevel: u8, filt: u8, typesize: usize) -> CParams {
    let mut cp = CParams::zstd_shuffle(typesize);
    cp.codec = codec;
    cp.clevel = clevel;
    cp.filters = [0, 0, 0, 0, 0, filt];
    cp
}

fn spec(shape: &[i64], chunks: &[i32], blocks: &[i32], dtype: &str, cp: CParams) -> ArraySpec {
    ArraySpec {
        shape: shape.to_vec(),
        chunks: chunks.to_vec(),
        blocks: blocks.to_vec(),
        dtype: dtype.to_string(),
        cparams: cp,
        urlpath: None,
    }
}

fn sample_vlmeta() -> Vec<(&'static str, M)> {
    vec![
        ("int", M::from(42)),
        ("neg", M::from(-7)),
        ("text", M::from("héllo")),
        ("float", M::F64(0.125)),
        ("flag", M::Boolean(true)),
        ("nothing", M::Nil),
        ("raw", M::Binary(vec![0, 1, 255])),
        (
            "list",
            M::Array(vec![M::from(1), M::from("a"), M::F64(2.5)]),
        ),
        (
            "map",
            M::Map(vec![(M::from("k"), M::Array(vec![M::Boolean(false)]))]),
        ),
    ]
}

fn vlmeta_expect(entries: &[(&str, M)]) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in entries {
        m.insert((*k).to_string(), msgpack_json(v));
    }
    Value::Object(m)
}

/// What was written and what any reader must find in it.
struct Written {
    file: String,
    /// "open" (a file) or "cframe" (bytes to hand to *_from_cframe).
    how: &'static str,
    kind: &'static str,
    shape: Vec<i64>,
    dtype: String,
    /// SHA-256 of the C-ordered items (ndarray) or of all bytes (schunk);
    /// `None` for uninitialised data.
    data_sha256: Option<String>,
    vlmeta: Value,
    /// The special marker every chunk must carry, if any.
    special: Option<i64>,
    typesize: usize,
}

impl Written {
    fn to_json(&self) -> Value {
        json!({
            "file": self.file, "how": self.how, "kind": self.kind,
            "shape": self.shape, "dtype": self.dtype, "data_sha256": self.data_sha256,
            "vlmeta": self.vlmeta, "special": self.special, "typesize": self.typesize,
        })
    }
}

/// Items of a given shape and itemsize with a recognisable pattern.
fn pattern(n: usize, itemsize: usize) -> Vec<u8> {
    (0..n * itemsize)
        .map(|i| ((i * 31 + i / itemsize * 7) % 251) as u8)
        .collect()
}

fn write_all(dir: &Path) -> Vec<Written> {
    let mut out = Vec::new();
    let mut add_array = |name: &str,
                         s: ArraySpec,
                         data: Option<Vec<u8>>,
                         fill: &str,
                         vlmeta: Vec<(&'static str, M)>| {
        let mut arr = match (fill, &data) {
            ("data", Some(d)) => NdArray::from_buffer(&s, d).unwrap(),
            ("zeros", _) => NdArray::zeros(&s).unwrap(),
            ("uninit", _) => NdArray::uninit(&s).unwrap(),
            _ => unreachable!(),
        };
        for (k, v) in &vlmeta {
            arr.schunk_mut().set_vlmeta(k, v).unwrap();
        }
        let itemsize = arr.itemsize();
        let n: i64 = s.shape.iter().product();
        let sha = match fill {
            "data" => Some(sha256_hex(data.as_deref().unwrap())),
            "zeros" => Some(sha256_hex(&vec![0u8; n as usize * itemsize])),
            _ => None,
        };
        let special = match fill {
            "zeros" => Some(1),
            "uninit" => Some(4),
            _ => None,
        };
        let file = format!("{name}.b2nd");
        if itemsize > 255 {
            // NdArray::save loses a typesize > 255 (chunks_and_errors.rs,
            // saved_arrays_of_wide_items_reopen_with_their_itemsize).
            std::fs::write(dir.join(&file), arr.to_cframe().unwrap()).unwrap();
        } else {
            arr.save(&dir.join(&file)).unwrap();
        }
        let cframe = format!("{name}.cframe");
        std::fs::write(dir.join(&cframe), arr.to_cframe().unwrap()).unwrap();
        for (file, how) in [(file, "open"), (cframe, "cframe")] {
            out.push(Written {
                file,
                how,
                kind: "ndarray",
                shape: s.shape.clone(),
                dtype: s.dtype.clone(),
                data_sha256: sha.clone(),
                vlmeta: vlmeta_expect(&vlmeta),
                special,
                typesize: itemsize,
            });
        }
    };

    let d = |n: usize, size: usize| Some(pattern(n, size));
    add_array(
        "i4_2d",
        spec(
            &[7, 9],
            &[3, 4],
            &[2, 2],
            "<i4",
            cparams(codec::ZSTD, 5, filter::SHUFFLE, 4),
        ),
        d(63, 4),
        "data",
        sample_vlmeta(),
    );
    let scalar = 2.5f64.to_le_bytes().to_vec();
    add_array(
        "f8_0d",
        spec(&[], &[], &[], "<f8", CParams::zstd_shuffle(8)),
        Some(scalar),
        "data",
        vec![("unit", M::from("K"))],
    );
    add_array(
        "u1_1d_blosclz",
        spec(
            &[1000],
            &[300],
            &[64],
            "|u1",
            cparams(codec::BLOSCLZ, 9, filter::NOFILTER, 1),
        ),
        d(1000, 1),
        "data",
        vec![],
    );
    add_array(
        "bool_1d_lz4",
        spec(
            &[50],
            &[16],
            &[8],
            "|b1",
            cparams(codec::LZ4, 1, filter::BITSHUFFLE, 1),
        ),
        Some((0..50).map(|i| u8::from(i % 3 == 1)).collect()),
        "data",
        vec![],
    );
    add_array(
        "be_i2_lz4hc",
        spec(
            &[33],
            &[10],
            &[5],
            ">i2",
            cparams(codec::LZ4HC, 5, filter::SHUFFLE, 2),
        ),
        Some((-16i16..17).flat_map(|v| (v * 999).to_be_bytes()).collect()),
        "data",
        vec![],
    );
    add_array(
        "c16_3d_zlib",
        spec(
            &[3, 4, 5],
            &[2, 3, 3],
            &[1, 2, 3],
            "<c16",
            cparams(codec::ZLIB, 4, filter::NOFILTER, 16),
        ),
        Some(
            (0..60)
                .flat_map(|i| {
                    let mut b = (f64::from(i) / 3.0).to_le_bytes().to_vec();
                    b.extend_from_slice(&(-f64::from(i)).to_le_bytes());
                    b
                })
                .collect(),
        ),
        "data",
        vec![],
    );
    add_array(
        "u3_unicode",
        spec(&[6], &[4], &[2], "<U3", CParams::lz4_fast(12)),
        Some(
            ["a", "bc", "déf", "", "xyz", "é"]
                .iter()
                .flat_map(|s| {
                    let mut cps: Vec<u8> =
                        s.chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
                    cps.resize(12, 0);
                    cps
                })
                .collect(),
        ),
        "data",
        vec![],
    );
    add_array(
        "records",
        spec(
            &[11],
            &[4],
            &[2],
            "[('a', '<i4'), ('b', '<f8'), ('c', 'S3')]",
            CParams::zstd_shuffle(15),
        ),
        Some(
            (0..11i32)
                .flat_map(|i| {
                    let mut r = (i * 3).to_le_bytes().to_vec();
                    r.extend_from_slice(&(f64::from(i) * 1.5).to_le_bytes());
                    r.extend_from_slice(&[b'r', b'0' + i as u8 % 10, 0]);
                    r
                })
                .collect(),
        ),
        "data",
        vec![("title", M::from("records"))],
    );
    add_array(
        "u8_8d",
        spec(
            &[2, 1, 2, 3, 1, 2, 2, 3],
            &[1, 1, 2, 2, 1, 1, 2, 2],
            &[1, 1, 1, 2, 1, 1, 1, 2],
            "<u8",
            CParams::zstd_shuffle(8),
        ),
        d(144, 8),
        "data",
        vec![],
    );
    // Items wider than 255 bytes need the full item size as typesize.
    let mut wide = CParams::zstd_shuffle(1);
    wide.typesize = 300;
    add_array(
        "s300_wide",
        spec(&[5], &[2], &[1], "|S300", wide),
        d(5, 300),
        "data",
        vec![],
    );
    add_array(
        "f4_zeros",
        spec(
            &[20, 30],
            &[8, 16],
            &[4, 8],
            "<f4",
            CParams::zstd_shuffle(4),
        ),
        None,
        "zeros",
        vec![("note", M::from("all zero"))],
    );
    add_array(
        "i8_uninit",
        spec(&[100], &[25], &[5], "<i8", CParams::zstd_shuffle(8)),
        None,
        "uninit",
        vec![],
    );

    // An array created straight on disk through ArraySpec::urlpath.
    let path = dir.join("direct.b2nd");
    let mut s = spec(&[5, 5], &[2, 5], &[1, 5], "<i2", CParams::zstd_shuffle(2));
    s.urlpath = Some(path.clone());
    let data: Vec<u8> = (0..25i16).flat_map(|v| (v - 12).to_le_bytes()).collect();
    drop(NdArray::from_buffer(&s, &data).unwrap());
    out.push(Written {
        file: "direct.b2nd".into(),
        how: "open",
        kind: "ndarray",
        shape: vec![5, 5],
        dtype: "<i2".into(),
        data_sha256: Some(sha256_hex(&data)),
        vlmeta: json!({}),
        special: None,
        typesize: 2,
    });

    // Super-chunks: int32 items (typesize 4) with vlmeta, and a regular file (typesize 1).
    let items: Vec<u8> = (0..2500i32)
        .flat_map(|i| (i * i % 977).to_le_bytes())
        .collect();
    let mut sc =
        SChunk::from_bytes(&items, 4000, &cparams(codec::LZ4, 5, filter::SHUFFLE, 4)).unwrap();
    let vl = sample_vlmeta();
    for (k, v) in &vl {
        sc.set_vlmeta(k, v).unwrap();
    }
    // Replacing an entry keeps one entry with the new value.
    sc.set_vlmeta("int", &M::from(43)).unwrap();
    let mut vl_expect = vlmeta_expect(&vl);
    vl_expect["int"] = json!(43);
    let frame = sc.to_cframe().unwrap();
    std::fs::write(dir.join("ints.b2frame"), &frame).unwrap();
    std::fs::write(dir.join("ints.cframe"), &frame).unwrap();
    for (file, how) in [("ints.b2frame", "open"), ("ints.cframe", "cframe")] {
        out.push(Written {
            file: file.into(),
            how,
            kind: "schunk",
            shape: vec![],
            dtype: String::new(),
            data_sha256: Some(sha256_hex(&items)),
            vlmeta: vl_expect.clone(),
            special: None,
            typesize: 4,
        });
    }
    let text = "Some notes, in a file that is not a dataset.\n".repeat(100);
    let sc = SChunk::from_bytes(text.as_bytes(), 1024, &CParams::zstd_shuffle(1)).unwrap();
    std::fs::write(dir.join("notes.md.b2"), sc.to_cframe().unwrap()).unwrap();
    out.push(Written {
        file: "notes.md.b2".into(),
        how: "open",
        kind: "schunk",
        shape: vec![],
        dtype: String::new(),
        data_sha256: Some(sha256_hex(text.as_bytes())),
        vlmeta: json!({}),
        special: None,
        typesize: 1,
    });
    out
}

/// Reads everything back with cat2-blosc2.
fn check_with_rust(dir: &Path, written: &[Written]) {
    for w in written {
        let path = dir.join(&w.file);
        let bytes = std::fs::read(&path).unwrap();
        match w.kind {
            "ndarray" => {
                let arr = if w.how == "open" {
                    NdArray::open(&path).unwrap()
                } else {
                    NdArray::from_cframe(&bytes).unwrap()
                };
                assert_eq!(arr.shape(), w.shape, "{}", w.file);
                assert_eq!(arr.dtype(), w.dtype, "{}", w.file);
                assert_eq!(arr.itemsize(), w.typesize, "{}", w.file);
                let data = arr.to_vec().unwrap();
                if let Some(sha) = &w.data_sha256 {
                    assert_eq!(&sha256_hex(&data), sha, "{}", w.file);
                }
                assert_eq!(vlmeta_json(arr.schunk()), w.vlmeta, "{}", w.file);
                if let Some(special) = w.special {
                    let sc = arr.schunk();
                    for n in 0..sc.nchunks() {
                        let code = match Special::of(&sc.chunk(n).unwrap()) {
                            Special::Zero => 1,
                            Special::Uninit => 4,
                            other => panic!("{}: chunk {n} is {other:?}", w.file),
                        };
                        assert_eq!(code, special, "{}", w.file);
                    }
                }
                // A frame of a frame is the same array.
                let again = NdArray::from_cframe(&arr.to_cframe().unwrap()).unwrap();
                assert_eq!(again.shape(), w.shape);
                if w.data_sha256.is_some() {
                    assert!(again.to_vec().unwrap() == data, "{}", w.file);
                }
            }
            _ => {
                let sc = if w.how == "open" {
                    SChunk::open(&path).unwrap()
                } else {
                    SChunk::from_cframe(&bytes).unwrap()
                };
                assert_eq!(sc.typesize(), w.typesize, "{}", w.file);
                assert_eq!(
                    Some(sha256_hex(&sc.to_bytes().unwrap())),
                    w.data_sha256,
                    "{}",
                    w.file
                );
                assert_eq!(vlmeta_json(&sc), w.vlmeta, "{}", w.file);
                assert!(sc.metalayer("b2nd").is_none());
            }
        }
    }
}

/// Opens every written file with python-blosc2 and compares it with the
/// expectations in `expect.json`; prints one line per problem and exits 1.
const PYTHON_CHECK: &str = r#"
import ast, hashlib, json, pathlib, sys
import blosc2, numpy as np

def jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v

d = pathlib.Path(sys.argv[1])
problems = []
for w in json.loads((d / "expect.json").read_text()):
    f = w["file"]
    def bad(what, got, want):
        problems.append(f"{f}: {what}: python-blosc2 reads {got!r}, expected {want!r}")
    try:
        if w["how"] == "open":
            obj = blosc2.open(str(d / f))
        elif w["kind"] == "ndarray":
            obj = blosc2.ndarray_from_cframe((d / f).read_bytes())
        else:
            obj = blosc2.schunk_from_cframe((d / f).read_bytes())
        if w["kind"] == "ndarray":
            if not isinstance(obj, blosc2.NDArray):
                bad("type", type(obj).__name__, "NDArray")
                continue
            sc = obj.schunk
            if list(obj.shape) != w["shape"]:
                bad("shape", list(obj.shape), w["shape"])
            want_dtype = np.dtype(ast.literal_eval(w["dtype"]) if w["dtype"].startswith("[") else w["dtype"])
            if obj.dtype != want_dtype:
                bad("dtype", str(obj.dtype), str(want_dtype))
            data = np.ascontiguousarray(obj[()]).tobytes()
        else:
            sc = obj
            if not isinstance(obj, blosc2.SChunk) or isinstance(obj, blosc2.NDArray):
                bad("type", type(obj).__name__, "SChunk")
                continue
            data = bytes(sc[:])
        if sc.typesize != w["typesize"]:
            bad("typesize", sc.typesize, w["typesize"])
        if w["data_sha256"] is not None and hashlib.sha256(data).hexdigest() != w["data_sha256"]:
            bad("data sha256", hashlib.sha256(data).hexdigest(), w["data_sha256"])
        vl = jsonable(sc.vlmeta.getall())
        if vl != w["vlmeta"]:
            bad("vlmeta", vl, w["vlmeta"])
        if w["special"] is not None:
            marks = {(sc.get_chunk(i)[31] >> 4) & 7 for i in range(sc.nchunks)}
            if marks != {w["special"]}:
                bad("special chunks", marks, {w["special"]})
    except Exception as e:
        problems.append(f"{f}: {type(e).__name__}: {e}")
for p in problems:
    print(p)
print(f"python-blosc2 {blosc2.__version__} checked {len(json.loads((d / 'expect.json').read_text()))} files, {len(problems)} problems")
sys.exit(1 if problems else 0)
"#;

#[test]
fn rust_written_arrays_and_frames_read_back_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let written = write_all(tmp.path());
    assert!(written.len() >= 20);
    check_with_rust(tmp.path(), &written);

    let expect = Value::Array(written.iter().map(Written::to_json).collect());
    std::fs::write(
        tmp.path().join("expect.json"),
        serde_json::to_vec_pretty(&expect).unwrap(),
    )
    .unwrap();

    let Some(python) = std::env::var_os("CAT2RS_PYTHON").filter(|p| !p.is_empty()) else {
        eprintln!(
            "CAT2RS_PYTHON is not set: skipped the python-blosc2 half of this test (the Rust re-read passed)"
        );
        return;
    };
    let out = Command::new(&python)
        .arg("-c")
        .arg(PYTHON_CHECK)
        .arg(tmp.path())
        .output()
        .unwrap_or_else(|e| panic!("running {python:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "python-blosc2 disagrees with cat2-blosc2:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("0 problems"), "{stdout}");
}

#[test]
fn vlmeta_values_keep_their_msgpack_types() {
    let mut sc = SChunk::from_bytes(b"abc", 3, &CParams::zstd_shuffle(1)).unwrap();
    for (k, v) in sample_vlmeta() {
        sc.set_vlmeta(k, &v).unwrap();
    }
    let back = SChunk::from_cframe(&sc.to_cframe().unwrap()).unwrap();
    let names = back.vlmeta_names().unwrap();
    assert_eq!(
        names,
        sample_vlmeta()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        back.vlmeta().unwrap(),
        sample_vlmeta()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Vec<_>>()
    );
    let raw = back.vlmeta_raw("raw").unwrap().unwrap();
    assert_eq!(hex(&raw), "c4030001ff");
    assert_eq!(back.vlmeta_raw("missing").unwrap(), None);
    // Raw entries are stored as given.
    let mut sc = back;
    sc.set_vlmeta_raw("opaque", b"\xc3").unwrap();
    assert_eq!(sc.vlmeta_raw("opaque").unwrap().unwrap(), b"\xc3");
}
