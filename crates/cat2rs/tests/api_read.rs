//! The read API of a real `cat2rs serve`, spoken to over HTTP.
//!
//! Most tests use [`TestServer::standard`]: `cat2rs examples` (in
//! `@public/examples/`) plus files written here with cat2-blosc2:
//!
//! | `@public/...`                  | what                                             |
//! |--------------------------------|--------------------------------------------------|
//! | `ds-1d.b2nd`                   | int64 0..1000, chunks 100, blocks 10             |
//! | `dir1/ds-2d.b2nd`              | uint16 (10, 13), value y*100+x, chunks (5, 5)    |
//! | `dir1/dir2/ds-3d.b2nd`         | float32 (4, 5, 6), value i/2, chunks (2, 3, 4)   |
//! | `ds-sc-attr.b2nd`              | 0-d `<U6` "foobar", vlmeta a=1, b="foo", c=123.456 |
//! | `dir with space/my array.b2nd` | int64 [0, 1, 2]                                  |
//! | `notes.txt` (`notes.txt.b2`)   | a regular file, [`util::NOTES`]                  |
//! | `bad.b2nd`                     | not a Blosc2 frame                               |
//!
//! Expected values come from those formulas or from reading the stored file
//! with cat2-blosc2; JSON shapes and texts from `protocol.md` §4–§5.

mod util;

use cat2_blosc2::{Decompressor, NdArray, SChunk};
use serde_json::{json, Value};
use util::{Resp, TestServer, NOTES};

fn i64s(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn u16s(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("{v} is not an object"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// Decodes a computed `/api/fetch` answer, which must be an NDArray frame.
fn array_of(r: &Resp) -> NdArray {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("accept-ranges"), Some("none"));
    NdArray::from_cframe(&r.body).expect("an NDArray frame")
}

/// A box of a stored array, read with cat2-blosc2.
fn stored_box(s: &TestServer, rel: &str, start: &[i64], stop: &[i64]) -> Vec<u8> {
    let arr = NdArray::open(&s.public(rel)).unwrap();
    let n: i64 = start.iter().zip(stop).map(|(a, b)| b - a).product();
    let mut out = vec![0u8; n as usize * arr.itemsize()];
    arr.read_box(start, stop, &mut out).unwrap();
    out
}

fn is_iso_utc(s: &str) -> bool {
    s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T'
}

mod roots {
    use super::*;

    #[test]
    fn roots_anonymous_lists_only_public() {
        let s = TestServer::builder().start();
        let r = s.get("/api/roots");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.text(), r#"{"@public":{"name":"@public"}}"#);
    }
}

mod list {
    use super::*;

    #[test]
    fn list_root_is_recursive_sorted_and_strips_b2() {
        let s = TestServer::standard();
        let r = s.get("/api/list/@public");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            json!([
                "bad.b2nd",
                "dir with space/my array.b2nd",
                "dir1/dir2/ds-3d.b2nd",
                "dir1/ds-2d.b2nd",
                "ds-1d.b2nd",
                "ds-sc-attr.b2nd",
                "examples/README.md",
                "examples/arange-1d.b2nd",
                "examples/complex-4d.b2nd",
                "examples/hello.b2frame",
                "examples/image-2d.b2nd",
                "examples/records.b2nd",
                "examples/stack-3d.b2nd",
                "notes.txt",
            ])
        );
    }

    #[test]
    fn list_dir_is_relative_to_it() {
        let s = TestServer::standard();
        let r = s.get("/api/list/@public/dir1");
        assert_eq!(r.json(), json!(["dir2/ds-3d.b2nd", "ds-2d.b2nd"]));
        // Trailing and repeated slashes and a percent-encoded root change nothing.
        for p in ["/api/list/@public/dir1/", "/api/list/%40public//dir1"] {
            assert_eq!(s.get(p).json(), r.json(), "{p}");
        }
    }

    #[test]
    fn list_file_is_its_own_name() {
        let s = TestServer::standard();
        let r = s.get("/api/list/@public/dir1/ds-2d.b2nd");
        assert_eq!(r.json(), json!(["ds-2d.b2nd"]));
    }

    #[test]
    fn list_regular_file_by_logical_name_is_empty() {
        // protocol.md §5.2: the single-file lookup does not add `.b2`.
        let s = TestServer::standard();
        assert_eq!(s.get("/api/list/@public/notes.txt").json(), json!([]));
    }

    #[test]
    fn list_missing_is_empty() {
        let s = TestServer::standard();
        for p in ["/api/list/@public/nope", "/api/list/@public/dir1/nope.b2nd"] {
            let r = s.get(p);
            assert_eq!(r.status, 200, "{p}");
            assert_eq!(r.json(), json!([]), "{p}");
        }
    }

    #[test]
    fn list_empty_root_is_empty() {
        let s = TestServer::builder().start();
        assert_eq!(s.get("/api/list/@public").json(), json!([]));
    }

    #[test]
    fn list_sees_files_added_while_running() {
        let s = TestServer::builder().start();
        std::fs::write(s.public("late.b2nd"), b"x").unwrap();
        assert_eq!(s.get("/api/list/@public").json(), json!(["late.b2nd"]));
    }
}

mod info {
    use super::*;

    const ARRAY_KEYS: [&str; 7] = [
        "shape",
        "chunks",
        "blocks",
        "dtype",
        "schunk",
        "mtime",
        "accept_ranges",
    ];
    const SCHUNK_KEYS: [&str; 11] = [
        "cbytes",
        "chunkshape",
        "chunksize",
        "contiguous",
        "cparams",
        "cratio",
        "nbytes",
        "urlpath",
        "vlmeta",
        "nchunks",
        "mtime",
    ];
    const CPARAMS_KEYS: [&str; 12] = [
        "codec",
        "codec_meta",
        "clevel",
        "filters",
        "filters_meta",
        "typesize",
        "blocksize",
        "nthreads",
        "splitmode",
        "tuner",
        "use_dict",
        "filters, meta",
    ];

    #[test]
    fn info_array_key_order_and_values() {
        let s = TestServer::standard();
        let r = s.get("/api/info/@public/ds-1d.b2nd");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(keys(&v), ARRAY_KEYS);
        assert_eq!(keys(&v["schunk"]), SCHUNK_KEYS);
        assert_eq!(keys(&v["schunk"]["cparams"]), CPARAMS_KEYS);
        assert_eq!(v["shape"], json!([1000]));
        assert_eq!(v["chunks"], json!([100]));
        assert_eq!(v["blocks"], json!([10]));
        assert_eq!(v["dtype"], "int64");
        assert_eq!(v["accept_ranges"], "bytes");
        assert!(is_iso_utc(v["mtime"].as_str().unwrap()), "{}", v["mtime"]);

        let sc = &v["schunk"];
        let stored = SChunk::open(&s.public("ds-1d.b2nd")).unwrap();
        assert_eq!(sc["cbytes"], json!(stored.cbytes()));
        assert_eq!(sc["chunkshape"], 100);
        assert_eq!(sc["chunksize"], 800);
        assert_eq!(sc["contiguous"], true);
        assert_eq!(sc["nbytes"], 8000);
        assert_eq!(sc["nchunks"], 10);
        assert_eq!(sc["vlmeta"], json!({}));
        assert_eq!(sc["mtime"], Value::Null);
        assert_eq!(
            sc["cratio"].as_f64().unwrap(),
            8000.0 / stored.cbytes() as f64
        );
        assert!(sc["urlpath"].as_str().unwrap().ends_with("/ds-1d.b2nd"));
        assert!(sc["urlpath"].as_str().unwrap().starts_with('@'));

        let cp = &sc["cparams"];
        assert_eq!(cp["codec"], 5);
        assert_eq!(cp["codec_meta"], 0);
        assert_eq!(cp["clevel"], 1);
        assert_eq!(cp["filters"], json!([0, 0, 0, 0, 0, 1]));
        assert_eq!(cp["filters_meta"], json!([0, 0, 0, 0, 0, 0]));
        assert_eq!(cp["typesize"], 8);
        assert_eq!(cp["splitmode"], 1);
        assert_eq!(cp["tuner"], 0);
        assert_eq!(cp["use_dict"], false);
        assert_eq!(cp["filters, meta"], json!([[1, 0]]));
        assert!(cp["nthreads"].as_i64().unwrap() >= 1);
    }

    #[test]
    fn info_counts_padded_chunks() {
        // chunks (2, 3, 4) over blocks (2, 2, 2): an extended chunk is 2*4*4 items.
        let s = TestServer::standard();
        let v = s.get("/api/info/@public/dir1/dir2/ds-3d.b2nd").json();
        assert_eq!(v["shape"], json!([4, 5, 6]));
        assert_eq!(v["chunks"], json!([2, 3, 4]));
        assert_eq!(v["blocks"], json!([2, 2, 2]));
        assert_eq!(v["dtype"], "float32");
        let sc = &v["schunk"];
        assert_eq!(sc["chunkshape"], 32);
        assert_eq!(sc["chunksize"], 128);
        assert_eq!(sc["nchunks"], 2 * 2 * 2);
        assert_eq!(sc["nbytes"], 8 * 128);
        assert_eq!(sc["cparams"]["typesize"], 4);
    }

    #[test]
    fn info_scalar_with_vlmeta() {
        let s = TestServer::standard();
        let v = s.get("/api/info/@public/ds-sc-attr.b2nd").json();
        assert_eq!(v["shape"], json!([]));
        assert_eq!(v["chunks"], json!([]));
        assert_eq!(v["blocks"], json!([]));
        assert_eq!(v["dtype"], "<U6");
        assert_eq!(
            serde_json::to_string(&v["schunk"]["vlmeta"]).unwrap(),
            r#"{"a":1,"b":"foo","c":123.456}"#
        );
    }

    #[test]
    fn info_dtype_strings_are_numpys() {
        let s = TestServer::standard();
        for (p, dtype) in [
            ("dir1/ds-2d.b2nd", "uint16"),
            ("examples/complex-4d.b2nd", "complex128"),
            ("examples/stack-3d.b2nd", "float32"),
            (
                "examples/records.b2nd",
                "[('id', '<i4'), ('x', '<f8'), ('name', 'S8'), ('ok', '?')]",
            ),
        ] {
            let v = s.get(&format!("/api/info/@public/{p}")).json();
            assert_eq!(v["dtype"], dtype, "{p}");
        }
    }

    #[test]
    fn info_superchunk_is_top_level() {
        let s = TestServer::standard();
        let v = s.get("/api/info/@public/examples/hello.b2frame").json();
        assert_eq!(keys(&v), SCHUNK_KEYS);
        assert_eq!(keys(&v["cparams"]), CPARAMS_KEYS);
        assert_eq!(v["nbytes"], 1900);
        assert_eq!(v["chunksize"], 190);
        assert_eq!(v["chunkshape"], 190);
        assert_eq!(v["nchunks"], 10);
        assert_eq!(v["cparams"]["typesize"], 1);
        assert!(is_iso_utc(v["mtime"].as_str().unwrap()));
    }

    #[test]
    fn info_regular_file_is_a_superchunk_of_its_bytes() {
        let s = TestServer::standard();
        let r = s.get("/api/info/@public/notes.txt");
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(keys(&v), SCHUNK_KEYS);
        assert_eq!(v["nbytes"], NOTES.len());
        assert_eq!(v["nchunks"], 1);
        assert_eq!(v["cparams"]["typesize"], 1);
        // The logical path (the reference shows the stored file's absolute path).
        assert_eq!(v["urlpath"], "@public/notes.txt");
    }

    #[test]
    fn info_dir_is_a_group() {
        let s = TestServer::standard();
        let v = s.get("/api/info/@public/dir1").json();
        assert_eq!(keys(&v), ["kind", "mtime", "size", "nfiles"]);
        assert_eq!(v["kind"], "group");
        assert_eq!(v["nfiles"], 2);
        let size = std::fs::metadata(s.public("dir1/ds-2d.b2nd"))
            .unwrap()
            .len()
            + std::fs::metadata(s.public("dir1/dir2/ds-3d.b2nd"))
                .unwrap()
                .len();
        assert_eq!(v["size"], size);
        assert!(is_iso_utc(v["mtime"].as_str().unwrap()));
        let root = s.get("/api/info/@public").json();
        assert_eq!(root["kind"], "group");
        assert_eq!(root["nfiles"], 14);
    }

    #[test]
    fn info_etag_names_the_file_version() {
        let s = TestServer::standard();
        let r = s.get("/api/info/@public/ds-1d.b2nd");
        let etag = r.header("etag").expect("an etag");
        let len = std::fs::metadata(s.public("ds-1d.b2nd")).unwrap().len();
        assert!(
            etag.starts_with(&format!("\"u-{len:x}-")) && etag.ends_with('"'),
            "{etag}"
        );
        // The same for the whole-file fetch, and it changes when the file does.
        let f = s.get("/api/fetch/@public/ds-1d.b2nd");
        assert_eq!(f.header("etag"), Some(etag));
        let bytes = std::fs::read(s.public("ds-1d.b2nd")).unwrap();
        std::fs::write(s.public("ds-1d.b2nd"), [&bytes[..], b"\0"].concat()).unwrap();
        let again = s.get("/api/info/@public/ds-1d.b2nd");
        assert_ne!(again.header("etag"), Some(etag));
        assert!(s.get("/api/info/@public/dir1").header("etag").is_none());
    }

    #[test]
    fn info_unreadable_frame_says_so() {
        let s = TestServer::standard();
        let r = s.get("/api/info/@public/bad.b2nd");
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(keys(&v), ["mtime", "error"]);
        assert_eq!(v["error"], "Unrecognized format");
    }

    #[test]
    fn info_missing_is_404() {
        let s = TestServer::standard();
        for p in ["/api/info/@public/nope.b2nd", "/api/info/@public/nope.txt"] {
            let r = s.get(p);
            assert_eq!(r.status, 404, "{p}");
            assert_eq!(r.json(), json!({"detail": "Not Found"}));
        }
    }

    #[test]
    fn info_decodes_percent_encoded_names() {
        let s = TestServer::standard();
        let r = s.get("/api/info/@public/dir%20with%20space/my%20array.b2nd");
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["shape"], json!([3]));
    }
}

mod fetch {
    use super::*;

    #[test]
    fn fetch_whole_is_the_stored_file() {
        let s = TestServer::standard();
        for rel in ["ds-1d.b2nd", "examples/hello.b2frame", "ds-sc-attr.b2nd"] {
            let r = s.get(&format!("/api/fetch/@public/{rel}"));
            assert_eq!(r.status, 200, "{rel}");
            let file = std::fs::read(s.public(rel)).unwrap();
            assert!(r.body == file, "{rel}: body is not the file");
            assert_eq!(r.header("accept-ranges"), Some("bytes"));
            assert_eq!(r.header("content-type"), Some("application/octet-stream"));
            assert_eq!(r.header("content-length"), Some(&*file.len().to_string()));
            let name = rel.rsplit('/').next().unwrap();
            assert_eq!(
                r.header("content-disposition"),
                Some(&*format!("attachment; filename=\"{name}\""))
            );
            assert!(r.header("last-modified").is_some());
            assert!(r.header("etag").is_some());
        }
    }

    #[test]
    fn fetch_full_tuple_slice_is_the_stored_file() {
        let s = TestServer::standard();
        let file = std::fs::read(s.public("dir1/ds-2d.b2nd")).unwrap();
        for sl in [":, :", "0:10, 0:13", "0:100, :"] {
            let r = s.get_with("/api/fetch/@public/dir1/ds-2d.b2nd", &[("slice_", sl)], &[]);
            assert!(r.body == file, "slice_={sl}");
            assert_eq!(r.header("accept-ranges"), Some("bytes"), "slice_={sl}");
        }
    }

    #[test]
    fn fetch_single_colon_is_recomputed() {
        // protocol.md §5.4.2: a non-tuple `:` is not "whole".
        let s = TestServer::standard();
        let r = s.get_with("/api/fetch/@public/ds-1d.b2nd", &[("slice_", ":")], &[]);
        let arr = array_of(&r);
        assert_eq!(arr.shape(), vec![1000]);
        assert_eq!(i64s(&arr.to_vec().unwrap()), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn fetch_slice_1d() {
        let s = TestServer::standard();
        let r = s.get_with("/api/fetch/@public/ds-1d.b2nd", &[("slice_", "10:20")], &[]);
        let arr = array_of(&r);
        assert_eq!(arr.shape(), vec![10]);
        assert_eq!(arr.dtype(), "<i8");
        assert_eq!(i64s(&arr.to_vec().unwrap()), (10..20).collect::<Vec<_>>());
    }

    #[test]
    fn fetch_slice_2d_matches_the_stored_box() {
        let s = TestServer::standard();
        for (sl, start, stop) in [
            ("1:3, 2:5", [1, 2], [3, 5]),
            ("4:6, 3:12", [4, 3], [6, 12]),
            (":10, 12", [0, 12], [10, 13]),
        ] {
            let r = s.get_with("/api/fetch/@public/dir1/ds-2d.b2nd", &[("slice_", sl)], &[]);
            let arr = array_of(&r);
            assert_eq!(arr.dtype(), "<u2");
            let want = stored_box(&s, "dir1/ds-2d.b2nd", &start, &stop);
            assert_eq!(arr.to_vec().unwrap(), want, "slice_={sl}");
        }
        let r = s.get_with(
            "/api/fetch/@public/dir1/ds-2d.b2nd",
            &[("slice_", "1:3, 2:5")],
            &[],
        );
        assert_eq!(array_of(&r).shape(), vec![2, 3]);
        assert_eq!(
            u16s(&array_of(&r).to_vec().unwrap()),
            [102, 103, 104, 202, 203, 204]
        );
    }

    #[test]
    fn fetch_integer_on_1d_is_0d() {
        let s = TestServer::standard();
        let r = s.get_with("/api/fetch/@public/ds-1d.b2nd", &[("slice_", "5")], &[]);
        let arr = array_of(&r);
        assert_eq!(arr.ndim(), 0);
        assert_eq!(arr.shape(), Vec::<i64>::new());
        assert_eq!(i64s(&arr.to_vec().unwrap()), [5]);
    }

    #[test]
    fn fetch_integer_drops_its_dimension() {
        let s = TestServer::standard();
        let r = s.get_with(
            "/api/fetch/@public/dir1/dir2/ds-3d.b2nd",
            &[("slice_", "2")],
            &[],
        );
        let arr = array_of(&r);
        assert_eq!(arr.shape(), vec![5, 6]);
        let want: Vec<f32> = (60..90).map(|i| i as f32 / 2.0).collect();
        assert_eq!(f32s(&arr.to_vec().unwrap()), want);
        let r = s.get_with(
            "/api/fetch/@public/dir1/dir2/ds-3d.b2nd",
            &[("slice_", ":, 1, -1")],
            &[],
        );
        let arr = array_of(&r);
        assert_eq!(arr.shape(), vec![4]);
        let want: Vec<f32> = (0..4).map(|z| (z * 30 + 6 + 5) as f32 / 2.0).collect();
        assert_eq!(f32s(&arr.to_vec().unwrap()), want);
    }

    #[test]
    fn fetch_negative_bounds_count_from_the_end() {
        let s = TestServer::standard();
        let r = s.get_with("/api/fetch/@public/ds-1d.b2nd", &[("slice_", "-3:")], &[]);
        assert_eq!(i64s(&array_of(&r).to_vec().unwrap()), [997, 998, 999]);
    }

    #[test]
    fn fetch_slice_past_end_is_clamped() {
        let s = TestServer::standard();
        let r = s.get_with(
            "/api/fetch/@public/ds-1d.b2nd",
            &[("slice_", "995:2000")],
            &[],
        );
        assert_eq!(
            i64s(&array_of(&r).to_vec().unwrap()),
            [995, 996, 997, 998, 999]
        );
        let r = s.get_with("/api/fetch/@public/ds-1d.b2nd", &[("slice_", "0:0")], &[]);
        assert_eq!(array_of(&r).shape(), vec![0]);
    }

    #[test]
    fn fetch_index_past_end_is_400() {
        let s = TestServer::standard();
        for sl in ["1000", "-1001"] {
            let r = s.get_with("/api/fetch/@public/ds-1d.b2nd", &[("slice_", sl)], &[]);
            assert_eq!(r.status, 400, "slice_={sl}");
            assert!(r.detail().contains("out of bounds"), "{}", r.detail());
        }
    }

    #[test]
    fn fetch_steps() {
        let s = TestServer::standard();
        let r = s.get_with("/api/fetch/@public/ds-1d.b2nd", &[("slice_", "::100")], &[]);
        assert_eq!(
            i64s(&array_of(&r).to_vec().unwrap()),
            (0..1000).step_by(100).collect::<Vec<_>>()
        );
        let r = s.get_with(
            "/api/fetch/@public/dir1/ds-2d.b2nd",
            &[("slice_", "1:10:4, ::5")],
            &[],
        );
        let arr = array_of(&r);
        assert_eq!(arr.shape(), vec![3, 3]);
        assert_eq!(
            u16s(&arr.to_vec().unwrap()),
            [100, 105, 110, 500, 505, 510, 900, 905, 910]
        );
    }

    #[test]
    fn fetch_indices_gather_points() {
        let s = TestServer::standard();
        let r = s.get_with(
            "/api/fetch/@public/ds-1d.b2nd",
            &[("indices", "[[1, 5, 999, 5]]")],
            &[],
        );
        assert_eq!(i64s(&array_of(&r).to_vec().unwrap()), [1, 5, 999, 5]);
        let r = s.get_with(
            "/api/fetch/@public/dir1/ds-2d.b2nd",
            &[("indices", r#"[[1, 5], "0:3"]"#)],
            &[],
        );
        let arr = array_of(&r);
        assert_eq!(arr.shape(), vec![2, 3]);
        assert_eq!(u16s(&arr.to_vec().unwrap()), [100, 101, 102, 500, 501, 502]);
    }

    #[test]
    fn fetch_field_of_records() {
        let s = TestServer::standard();
        let r = s.get_with(
            "/api/fetch/@public/examples/records.b2nd",
            &[("field", "x")],
            &[],
        );
        let arr = array_of(&r);
        assert_eq!(arr.dtype(), "<f8");
        assert_eq!(arr.shape(), vec![1000]);
        let xs: Vec<f64> = arr
            .to_vec()
            .unwrap()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(
            xs,
            (0..1000).map(|i| f64::from(i) * 0.25).collect::<Vec<_>>()
        );

        let r = s.get_with(
            "/api/fetch/@public/examples/records.b2nd",
            &[("field", "name"), ("slice_", "0:3")],
            &[],
        );
        let arr = array_of(&r);
        assert_eq!(arr.dtype(), "|S8");
        assert_eq!(
            arr.to_vec().unwrap(),
            b"row0\0\0\0\0row1\0\0\0\0row2\0\0\0\0"
        );
    }

    #[test]
    fn fetch_filter_keeps_matching_rows_in_order() {
        let s = TestServer::standard();
        let r = s.get_with(
            "/api/fetch/@public/examples/records.b2nd",
            &[("filter", "(id < 10) & ok")],
            &[],
        );
        let arr = array_of(&r);
        assert_eq!(
            arr.dtype(),
            "[('id', '<i4'), ('x', '<f8'), ('name', 'S8'), ('ok', '?')]"
        );
        assert_eq!(arr.itemsize(), 21);
        let ids: Vec<i32> = arr
            .to_vec()
            .unwrap()
            .chunks_exact(21)
            .map(|rec| i32::from_le_bytes(rec[..4].try_into().unwrap()))
            .collect();
        assert_eq!(ids, [0, 3, 6, 9]);
        // slice_ applies after the filter.
        let r = s.get_with(
            "/api/fetch/@public/examples/records.b2nd",
            &[("filter", "x >= 200"), ("slice_", "1:3")],
            &[],
        );
        let rows = array_of(&r).to_vec().unwrap();
        let ids: Vec<i32> = rows
            .chunks_exact(21)
            .map(|rec| i32::from_le_bytes(rec[..4].try_into().unwrap()))
            .collect();
        assert_eq!(ids, [801, 802]);
    }

    #[test]
    fn fetch_field_and_filter_together_is_400() {
        let s = TestServer::standard();
        let r = s.get_with(
            "/api/fetch/@public/examples/records.b2nd",
            &[("field", "x"), ("filter", "ok")],
            &[],
        );
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("Cannot handle both field and filter"));
    }

    #[test]
    fn fetch_filter_on_plain_array_is_400() {
        let s = TestServer::standard();
        let r = s.get_with("/api/fetch/@public/ds-1d.b2nd", &[("filter", "a > 1")], &[]);
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("not supported"), "{}", r.detail());
    }

    #[test]
    fn fetch_superchunk_slices_are_superchunk_frames() {
        let s = TestServer::standard();
        for (sl, want) in [("0:5", &b"Hello"[..]), ("1", b"e"), ("-8:", b"cat2rs! ")] {
            let r = s.get_with(
                "/api/fetch/@public/examples/hello.b2frame",
                &[("slice_", sl)],
                &[],
            );
            assert_eq!(r.status, 200, "slice_={sl}");
            assert_eq!(r.header("accept-ranges"), Some("none"));
            assert!(NdArray::from_cframe(&r.body).is_err(), "not an NDArray");
            let sc = SChunk::from_cframe(&r.body).unwrap();
            assert_eq!(sc.typesize(), 1);
            assert_eq!(sc.to_bytes().unwrap(), want, "slice_={sl}");
        }
    }

    #[test]
    fn fetch_superchunk_slices_count_items_of_typesize() {
        let items: Vec<u8> = (0..500i32).flat_map(i32::to_le_bytes).collect();
        let frame = SChunk::from_bytes(&items, 400, &cat2_blosc2::CParams::zstd_shuffle(4))
            .unwrap()
            .to_cframe()
            .unwrap();
        let s = TestServer::builder().file("ints.b2frame", &frame).start();
        let r = s.get_with(
            "/api/fetch/@public/ints.b2frame",
            &[("slice_", "98:103")],
            &[],
        );
        let sc = SChunk::from_cframe(&r.body).unwrap();
        assert_eq!(sc.typesize(), 4);
        assert_eq!(sc.to_bytes().unwrap(), items[98 * 4..103 * 4]);
    }

    #[test]
    fn fetch_post_answers_like_get() {
        // A result of one block: compression is deterministic, so bytes can match.
        let s = TestServer::standard();
        let get = s.get_with(
            "/api/fetch/@public/dir1/ds-2d.b2nd",
            &[("slice_", "1:3, 2:5")],
            &[],
        );
        let post = s.post_json(
            "/api/fetch/@public/dir1/ds-2d.b2nd",
            r#"{"slice_": "1:3, 2:5"}"#,
        );
        assert_eq!(post.status, 200);
        assert!(post.body == get.body, "POST and GET differ");
        let bad = s.post_json("/api/fetch/@public/dir1/ds-2d.b2nd", r#"{"slice": "1"}"#);
        assert_eq!(bad.status, 422);
        assert_eq!(bad.json()["detail"][0]["type"], "extra_forbidden");
    }

    #[test]
    fn fetch_bad_slice_is_400_not_a_slice() {
        let s = TestServer::standard();
        for sl in ["abc", "1:2:3:4", "1.5", "1;2"] {
            let r = s.get_with("/api/fetch/@public/ds-1d.b2nd", &[("slice_", sl)], &[]);
            assert_eq!(r.status, 400, "slice_={sl}");
            assert!(
                r.detail().contains("not a slice"),
                "slice_={sl}: {}",
                r.detail()
            );
        }
    }

    #[test]
    fn fetch_regular_file_is_400() {
        let s = TestServer::standard();
        let r = s.get("/api/fetch/@public/notes.txt");
        assert_eq!(r.status, 400);
        assert!(
            r.detail().contains("use the download API"),
            "{}",
            r.detail()
        );
    }

    #[test]
    fn fetch_missing_is_404() {
        let s = TestServer::standard();
        let r = s.get("/api/fetch/@public/nope.b2nd");
        assert_eq!(r.status, 404);
        assert_eq!(r.json(), json!({"detail": "Not Found"}));
    }

    #[test]
    fn fetch_slice_of_items_wider_than_255_bytes_keeps_every_byte() {
        let data: Vec<u8> = (0..5 * 300).map(|i| (i % 251) as u8).collect();
        let mut spec = util::spec(&[5], &[2], &[1], "<i8");
        spec.dtype = "|S300".into();
        spec.cparams.typesize = 300;
        let s = TestServer::builder()
            .array("wide.b2nd", &spec, &data, &[])
            .start();
        let r = s.get_with("/api/fetch/@public/wide.b2nd", &[("slice_", "1:3")], &[]);
        let arr = array_of(&r);
        assert_eq!(arr.dtype(), "|S300");
        assert_eq!(arr.to_vec().unwrap(), data[300..900]);
    }
}

mod ranges {
    use super::*;

    fn file(s: &TestServer) -> Vec<u8> {
        std::fs::read(s.public("ds-1d.b2nd")).unwrap()
    }

    #[test]
    fn fetch_range_single() {
        let s = TestServer::standard();
        let f = file(&s);
        let r = s.get_with(
            "/api/fetch/@public/ds-1d.b2nd",
            &[],
            &[("range", "bytes=0-9")],
        );
        assert_eq!(r.status, 206);
        assert_eq!(r.body, f[..10]);
        assert_eq!(
            r.header("content-range"),
            Some(&*format!("bytes 0-9/{}", f.len()))
        );
        let r = s.get_with(
            "/api/fetch/@public/ds-1d.b2nd",
            &[],
            &[("range", "bytes=-16")],
        );
        assert_eq!(r.status, 206);
        assert_eq!(r.body, f[f.len() - 16..]);
    }

    #[test]
    fn fetch_range_multi_is_multipart() {
        let s = TestServer::standard();
        let f = file(&s);
        let r = s.get_with(
            "/api/fetch/@public/ds-1d.b2nd",
            &[],
            &[("range", "bytes=0-3, 100-109")],
        );
        assert_eq!(r.status, 206);
        let ct = r.header("content-type").unwrap();
        let boundary = ct
            .strip_prefix("multipart/byteranges; boundary=")
            .unwrap_or_else(|| panic!("{ct}"));
        let parts = multipart(&r.body, boundary);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, format!("bytes 0-3/{}", f.len()));
        assert_eq!(parts[0].1, f[0..4]);
        assert_eq!(parts[1].0, format!("bytes 100-109/{}", f.len()));
        assert_eq!(parts[1].1, f[100..110]);
    }

    /// (content-range, data) of each part of a multipart/byteranges body.
    fn multipart(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
        let delim = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut rest = body;
        loop {
            let at = find(rest, delim.as_bytes()).expect("a boundary");
            rest = &rest[at + delim.len()..];
            if rest.starts_with(b"--") {
                return parts;
            }
            let head_end = find(rest, b"\r\n\r\n").expect("part headers");
            let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
            let range = head
                .lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-range"))
                        .map(|(_, v)| v.trim().to_string())
                })
                .expect("a content-range per part");
            rest = &rest[head_end + 4..];
            let end = find(rest, delim.as_bytes()).expect("a closing boundary");
            let data = rest[..end]
                .strip_suffix(b"\r\n")
                .expect("CRLF before boundary");
            parts.push((range, data.to_vec()));
            rest = &rest[end..];
        }
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn fetch_range_past_the_end_is_416() {
        let s = TestServer::standard();
        let len = file(&s).len();
        let r = s.get_with(
            "/api/fetch/@public/ds-1d.b2nd",
            &[],
            &[("range", &format!("bytes={len}-"))],
        );
        assert_eq!(r.status, 416);
        assert_eq!(r.header("content-range"), Some(&*format!("bytes */{len}")));
    }

    #[test]
    fn fetch_range_on_a_computed_answer_is_416() {
        let s = TestServer::standard();
        let r = s.get_with(
            "/api/fetch/@public/ds-1d.b2nd",
            &[("slice_", "0:3")],
            &[("range", "bytes=0-9")],
        );
        assert_eq!(r.status, 416);
        assert_eq!(r.header("accept-ranges"), Some("none"));
        assert!(
            r.detail().contains("byte ranges are not available"),
            "{}",
            r.detail()
        );
    }
}

mod chunk {
    use super::*;

    #[test]
    fn chunk_is_the_stored_chunk() {
        let s = TestServer::standard();
        let stored = SChunk::open(&s.public("ds-1d.b2nd")).unwrap();
        for n in [0, 3, 9] {
            let r = s.get_with(
                "/api/chunk/@public/ds-1d.b2nd",
                &[("nchunk", &n.to_string())],
                &[],
            );
            assert_eq!(r.status, 200);
            assert!(r.header("content-type").is_none());
            assert_eq!(r.body, stored.chunk(n).unwrap(), "chunk {n}");
            let mut out = Vec::new();
            Decompressor::new(1)
                .unwrap()
                .decompress(&r.body, &mut out)
                .unwrap();
            assert_eq!(i64s(&out), (n * 100..n * 100 + 100).collect::<Vec<_>>());
        }
    }

    #[test]
    fn chunk_of_superchunks_and_regular_files() {
        let s = TestServer::standard();
        for (path, stored) in [
            ("examples/hello.b2frame", "examples/hello.b2frame"),
            ("notes.txt", "notes.txt.b2"),
        ] {
            let r = s.get_with(
                &format!("/api/chunk/@public/{path}"),
                &[("nchunk", "0")],
                &[],
            );
            assert_eq!(r.status, 200, "{path}");
            let sc = SChunk::open(&s.public(stored)).unwrap();
            assert_eq!(r.body, sc.chunk(0).unwrap(), "{path}");
        }
    }

    #[test]
    fn chunk_without_nchunk_is_422() {
        let s = TestServer::standard();
        let r = s.get("/api/chunk/@public/ds-1d.b2nd");
        assert_eq!(r.status, 422);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.json(),
            json!({"detail": [{"type": "missing", "loc": ["query", "nchunk"], "msg": "Field required", "input": null}]})
        );
    }

    #[test]
    fn chunk_with_a_non_integer_nchunk_is_422() {
        let s = TestServer::standard();
        let r = s.get_with("/api/chunk/@public/ds-1d.b2nd", &[("nchunk", "one")], &[]);
        assert_eq!(r.status, 422);
        let d = &r.json()["detail"][0];
        assert_eq!(d["type"], "int_parsing");
        assert_eq!(d["loc"], json!(["query", "nchunk"]));
        assert_eq!(d["input"], "one");
    }

    #[test]
    fn chunk_out_of_range_is_400() {
        let s = TestServer::standard();
        for n in ["10", "-1"] {
            let r = s.get_with("/api/chunk/@public/ds-1d.b2nd", &[("nchunk", n)], &[]);
            assert_eq!(r.status, 400, "nchunk={n}");
        }
    }
}

mod download {
    use super::*;

    #[test]
    fn download_regular_file_is_decompressed() {
        let s = TestServer::standard();
        let r = s.get("/api/download/@public/notes.txt");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), NOTES);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(
            r.header("content-disposition"),
            Some("attachment; filename=\"notes.txt\"")
        );
        assert_eq!(r.header("accept-ranges"), Some("none"));
        assert!(r.header("content-encoding").is_none());
        let md = s.get("/api/download/@public/examples/README.md");
        assert_eq!(
            md.header("content-type"),
            Some("text/markdown; charset=utf-8")
        );
        assert!(md.text().starts_with("# Example datasets"));
    }

    #[test]
    fn download_regular_file_as_blosc2() {
        let s = TestServer::standard();
        let r = s.get_with(
            "/api/download/@public/notes.txt",
            &[],
            &[("accept-encoding", "blosc2")],
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("blosc2"));
        assert_eq!(r.body, std::fs::read(s.public("notes.txt.b2")).unwrap());
        let sc = SChunk::from_cframe(&r.body).unwrap();
        assert_eq!(sc.to_bytes().unwrap(), NOTES.as_bytes());
    }

    #[test]
    fn download_dataset_is_the_stored_file() {
        let s = TestServer::standard();
        for rel in ["ds-1d.b2nd", "examples/hello.b2frame"] {
            let r = s.get_with(
                &format!("/api/download/@public/{rel}"),
                &[],
                &[("accept-encoding", "gzip, blosc2")],
            );
            assert_eq!(r.status, 200, "{rel}");
            assert!(r.body == std::fs::read(s.public(rel)).unwrap(), "{rel}");
            assert!(r.header("content-encoding").is_none(), "{rel}");
            assert!(r.header("content-type").is_none(), "{rel}");
        }
    }

    #[test]
    fn download_missing_is_404() {
        let s = TestServer::standard();
        assert_eq!(s.get("/api/download/@public/nope.txt").status, 404);
    }

    #[test]
    fn download_range_is_416() {
        let s = TestServer::standard();
        let r = s.get_with(
            "/api/download/@public/ds-1d.b2nd",
            &[],
            &[("range", "bytes=0-1")],
        );
        assert_eq!(r.status, 416);
    }

    #[test]
    fn download_directory_is_a_client_error() {
        let s = TestServer::standard();
        let r = s.get("/api/download/@public/dir1");
        assert_eq!(r.status, 400);
    }
}

mod errors {
    use super::*;

    const ENDPOINTS: [&str; 5] = ["info", "list", "fetch", "download", "chunk"];

    #[test]
    fn unknown_root_is_404() {
        let s = TestServer::standard();
        for e in ENDPOINTS {
            let r = s.get_with(&format!("/api/{e}/@nope/x.b2nd"), &[("nchunk", "0")], &[]);
            assert_eq!(r.status, 404, "{e}");
            assert_eq!(r.json(), json!({"detail": "Not Found"}), "{e}");
        }
    }

    #[test]
    fn private_roots_are_401_for_anonymous_callers() {
        let s = TestServer::standard();
        std::fs::write(s.statedir().join("shared/secret.b2nd"), b"x").unwrap();
        for root in ["@shared", "@personal"] {
            for e in ENDPOINTS {
                let r = s.get_with(
                    &format!("/api/{e}/{root}/secret.b2nd"),
                    &[("nchunk", "0")],
                    &[],
                );
                assert_eq!(r.status, 401, "{e} {root}");
                assert_eq!(r.json(), json!({"detail": "Unauthorized"}), "{e} {root}");
            }
            assert_eq!(s.get(&format!("/api/list/{root}")).status, 401);
        }
    }

    #[test]
    fn dotdot_is_400() {
        let s = TestServer::standard();
        for target in [
            "/api/info/@public/../shared/secret.b2nd",
            "/api/fetch/@public/dir1/../../etc/passwd",
            "/api/list/@public/..",
            "/api/chunk/@public/../shared/x.b2nd?nchunk=0",
            "/api/download/@public/dir1/%2E%2E/%2E%2E/shared/x.txt",
        ] {
            let r = s.raw("GET", target);
            assert_eq!(r.status, 400, "{target}");
            assert!(r.text().contains("climbs out of"), "{target}: {}", r.text());
        }
    }

    #[test]
    fn unknown_route_is_404_json() {
        let s = TestServer::standard();
        for p in ["/nope", "/api/nope", "/api/info"] {
            let r = s.get(p);
            assert_eq!(r.status, 404, "{p}");
            assert_eq!(r.header("content-type"), Some("application/json"), "{p}");
            assert_eq!(r.json(), json!({"detail": "Not Found"}), "{p}");
        }
    }

    #[test]
    fn wrong_method_is_405_json() {
        let s = TestServer::standard();
        let r = s.raw("DELETE", "/api/roots");
        assert_eq!(r.status, 405);
        assert_eq!(r.json(), json!({"detail": "Method Not Allowed"}));
    }

    #[test]
    fn head_on_a_get_route_is_405() {
        let s = TestServer::standard();
        let r = s.head("/api/roots");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET"));
    }

    #[test]
    fn errors_never_leak_a_500() {
        // Odd but valid requests that must answer with a 4xx at worst.
        let s = TestServer::standard();
        for (p, q) in [
            ("/api/fetch/@public/bad.b2nd", ("slice_", "0")),
            ("/api/chunk/@public/bad.b2nd", ("nchunk", "0")),
            ("/api/fetch/@public/dir1", ("slice_", "0")),
            ("/api/fetch/@public/ds-1d.b2nd", ("indices", "[[true]]")),
            ("/api/fetch/@public/ds-1d.b2nd", ("indices", "nojson")),
            ("/api/fetch/@public/examples/records.b2nd", ("field", "zz")),
        ] {
            let r = s.get_with(p, &[q], &[]);
            assert!((400..500).contains(&r.status), "{p} {q:?}: {}", r.status);
        }
    }
}

mod cors {
    use super::*;

    #[test]
    fn cors_without_origin_only_varies() {
        let s = TestServer::standard();
        let r = s.get("/api/roots");
        assert_eq!(r.header("vary"), Some("Origin"));
        assert!(r.header("access-control-allow-origin").is_none());
    }

    #[test]
    fn cors_with_origin_allows_any() {
        let s = TestServer::standard();
        for p in [
            "/api/roots",
            "/api/info/@public/nope.b2nd",
            "/api/fetch/@public/ds-1d.b2nd",
        ] {
            let r = s.get_with(p, &[], &[("origin", "http://example.org")]);
            assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{p}");
            assert_eq!(r.header("vary"), Some("Origin"), "{p}");
        }
    }

    #[test]
    fn cors_preflight_is_answered() {
        let s = TestServer::standard();
        let r = s.options(
            "/api/fetch/@public/ds-1d.b2nd",
            &[
                ("origin", "http://example.org"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "OK");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, QUERY")
        );
        assert_eq!(r.header("access-control-max-age"), Some("600"));
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some("content-type")
        );
        assert_eq!(r.header("vary"), Some("Origin"));
    }
}

mod startup {
    use super::*;

    #[test]
    fn serve_with_login_and_no_secret_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("login.toml"), "[server]\nlogin = true\n").unwrap();
        for secret in [None, Some("")] {
            let mut cmd = util::cat2rs(dir.path());
            cmd.args(["serve", "--conf", "login.toml", "--statedir", "state"])
                .args(["--listen", "127.0.0.1:0"]);
            if let Some(v) = secret {
                cmd.env("CATERVA2_SECRET", v);
            }
            let out = cmd.output().unwrap();
            assert!(!out.status.success(), "secret {secret:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
            assert!(stderr.contains("CATERVA2_SECRET"), "{stderr}");
            assert!(out.stdout.is_empty());
        }
    }

    #[test]
    fn server_sees_new_files_without_restarting() {
        let s = TestServer::builder().start();
        assert_eq!(s.get("/api/info/@public/late.b2nd").status, 404);
        let data: Vec<u8> = (0..10i64).flat_map(i64::to_le_bytes).collect();
        let arr = NdArray::from_buffer(&util::spec(&[10], &[5], &[5], "<i8"), &data).unwrap();
        std::fs::write(s.public("late.b2nd"), arr.to_cframe().unwrap()).unwrap();
        let r = s.get_with("/api/fetch/@public/late.b2nd", &[("slice_", "2:4")], &[]);
        assert_eq!(i64s(&array_of(&r).to_vec().unwrap()), [2, 3]);
    }
}
