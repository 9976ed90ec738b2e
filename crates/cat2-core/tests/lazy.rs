//! Saving lazy expressions and serving them: carriers, computed values,
//! chunks, chains, refusals and permissions.

use cat2_blosc2::{ArraySpec, CParams, Decompressor, NdArray};
use cat2_core::budget::Budget;
use cat2_core::fetch::{FetchOutput, FetchRequest};
use cat2_core::lazy::create::{save, LazyRequest};
use cat2_core::node::Node;
use cat2_core::resolve::Resolver;
use cat2_core::write::{PublicWrites, WritePolicy};
use cat2_core::{Caller, DsPath, Error, StateDir};

/// What `path` names for `caller`.
fn node(sd: &StateDir, path: &DsPath, caller: Caller<'_>) -> Node {
    Resolver::new(sd, caller).resolve(path).unwrap()
}

/// The stored bytes of what `path` names.
fn stored(sd: &StateDir, path: &DsPath) -> Vec<u8> {
    let (key, _) = node(sd, path, USER).stored_key().unwrap();
    cat2_core::storage::read_all(sd.storage(), &key).unwrap()
}
use cat2_proto::Info;

const USER: Caller<'static> = Caller {
    user_id: Some("8d0e3d0e-0000-4000-8000-000000000002"),
    is_superuser: true,
};
const ANONYMOUS: Caller<'static> = Caller {
    user_id: None,
    is_superuser: false,
};

fn policy() -> WritePolicy {
    WritePolicy {
        public_writes: PublicWrites::Users,
        quota: None,
    }
}

/// A state dir with `@shared/a.b2nd` = arange(1000) as int64 in chunks of 100.
fn state() -> (tempfile::TempDir, StateDir) {
    let tmp = tempfile::tempdir().unwrap();
    let sd = StateDir::open(tmp.path()).unwrap();
    let spec = ArraySpec {
        shape: vec![1000],
        chunks: vec![100],
        blocks: vec![10],
        dtype: "<i8".into(),
        cparams: CParams::zstd_shuffle(8),
        urlpath: None,
    };
    let data: Vec<u8> = (0..1000i64).flat_map(i64::to_le_bytes).collect();
    let arr = NdArray::from_buffer(&spec, &data).unwrap();
    std::fs::write(sd.path().join("shared/a.b2nd"), arr.to_cframe().unwrap()).unwrap();
    (tmp, sd)
}

fn request(expression: &str, operands: &[(&str, &str)]) -> LazyRequest {
    LazyRequest {
        expression: Some(expression.into()),
        operands: operands
            .iter()
            .map(|(n, p)| (n.to_string(), p.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn values(sd: &StateDir, path: &str, slice: Option<&str>, caller: Caller<'_>) -> Vec<i64> {
    let n = node(sd, &DsPath::parse(path).unwrap(), caller);
    let req = FetchRequest {
        slice: slice.map(str::to_string),
        ..Default::default()
    };
    let FetchOutput::Frame(frame) = n.fetch(&req).unwrap() else {
        panic!("computed")
    };
    NdArray::from_cframe(&frame)
        .unwrap()
        .to_vec()
        .unwrap()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn saved_expressions_compute_what_they_say() {
    let (_tmp, sd) = state();
    let e = DsPath::parse("@personal/e.b2nd").unwrap();
    save(
        &sd,
        &e,
        &request("(o0 + 1)", &[("o0", "@shared/a.b2nd")]),
        USER,
        &policy(),
        &Budget::unlimited(),
    )
    .unwrap();
    let Info::Lazy(info) = node(&sd, &e, USER).info().unwrap() else {
        panic!("a lazy expression")
    };
    assert_eq!(
        (info.shape.as_slice(), info.dtype.as_str()),
        (&[1000i64][..], "int64")
    );
    assert_eq!(info.operands["o0"], "@shared/a.b2nd");
    assert_eq!(
        values(&sd, "@personal/e.b2nd", Some("995:"), USER),
        [996, 997, 998, 999, 1000]
    );
    // A chain: an expression over the saved one, and where() in the text.
    let w = DsPath::parse("@personal/w.b2nd").unwrap();
    let req = request("where(e < 10, e * 2, -e)", &[("e", "@personal/e.b2nd")]);
    save(&sd, &w, &req, USER, &policy(), &Budget::unlimited()).unwrap();
    assert_eq!(
        values(&sd, "@personal/w.b2nd", Some("7:11"), USER),
        [16, 18, -10, -11]
    );
    // A chunk in the operand's geometry.
    let chunk = node(&sd, &e, USER).chunk(3, &Budget::unlimited()).unwrap();
    let mut out = Vec::new();
    Decompressor::new(1)
        .unwrap()
        .decompress(&chunk, &mut out)
        .unwrap();
    let got: Vec<i64> = out
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(got, (301..401).collect::<Vec<_>>());
    // compute = true stores the values.
    let c = DsPath::parse("@personal/c.b2nd").unwrap();
    let mut req = request("o0 * 3", &[("o0", "@shared/a.b2nd")]);
    req.compute = true;
    save(&sd, &c, &req, USER, &policy(), &Budget::unlimited()).unwrap();
    let Info::Array(_) = node(&sd, &c, USER).info().unwrap() else {
        panic!("a stored array")
    };
    assert_eq!(values(&sd, "@personal/c.b2nd", Some("2:4"), USER), [6, 9]);
}

#[test]
fn refusals_say_why() {
    let (_tmp, sd) = state();
    let p = DsPath::parse("@personal/x.b2nd").unwrap();
    let err = |req: LazyRequest| {
        save(&sd, &p, &req, USER, &policy(), &Budget::unlimited())
            .unwrap_err()
            .to_string()
    };
    let mut udf = request("", &[]);
    udf.func = Some("def f(inputs, output, offset): pass".into());
    assert!(err(udf).contains("Python user-defined functions are not run"));
    let mut masked = request("(o0 < 10)", &[("o0", "@shared/a.b2nd")]);
    masked.dtype = Some("int64".into());
    let text = err(masked);
    assert!(
        text.contains("computes bool") && text.contains("where(a < 10, a * 32000, a)"),
        "{text}"
    );
    assert!(err(request("b + 1", &[("a", "@shared/a.b2nd")]))
        .contains("b is not in the list of available datasets"));
    assert!(
        err(request("a +", &[("a", "@shared/a.b2nd")])).starts_with("Invalid name or expression")
    );
    assert!(err(request("a + 1", &[("a", "@shared/missing.b2nd")])).contains("not in the list"));
    let bad_name = DsPath::parse("@personal/x.txt").unwrap();
    let e = save(
        &sd,
        &bad_name,
        &request("a + 1", &[("a", "@shared/a.b2nd")]),
        USER,
        &policy(),
        &Budget::unlimited(),
    );
    assert!(e.unwrap_err().to_string().contains("must be \".b2nd\""));
}

#[test]
fn operands_are_read_with_the_callers_permissions() {
    let (_tmp, sd) = state();
    let p = DsPath::parse("@public/leak.b2nd").unwrap();
    save(
        &sd,
        &p,
        &request("a + 0", &[("a", "@shared/a.b2nd")]),
        USER,
        &policy(),
        &Budget::unlimited(),
    )
    .unwrap();
    let err = node(&sd, &p, ANONYMOUS)
        .fetch(&FetchRequest::default())
        .err()
        .unwrap();
    assert!(matches!(err, Error::Unauthorized), "{err:?}");
    assert_eq!(values(&sd, "@public/leak.b2nd", Some("1:3"), USER), [1, 2]);
}

/// Stores `name` in `@shared`: (37, 23) items of `f(i)` as float64, in `chunks` and `blocks`
/// (edge chunks partial, chunks not whole blocks).
fn store_f64(sd: &StateDir, name: &str, chunks: [i32; 2], blocks: [i32; 2], f: fn(usize) -> f64) {
    let spec = ArraySpec {
        shape: vec![37, 23],
        chunks: chunks.to_vec(),
        blocks: blocks.to_vec(),
        dtype: "<f8".into(),
        cparams: CParams::zstd_shuffle(8),
        urlpath: None,
    };
    let data: Vec<u8> = (0..37 * 23).flat_map(|i| f(i).to_le_bytes()).collect();
    let arr = NdArray::from_buffer(&spec, &data).unwrap();
    std::fs::write(
        sd.path().join("shared").join(name),
        arr.to_cframe().unwrap(),
    )
    .unwrap();
}

fn f64_values(frame: &[u8]) -> Vec<f64> {
    NdArray::from_cframe(frame)
        .unwrap()
        .to_vec()
        .unwrap()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// Element-wise expressions over operands of one geometry are computed chunk by chunk in
/// Blosc2's block layout (chunks and compute = true, which keep the carrier's geometry);
/// the values are those of the general path, which operands of another geometry take.
#[test]
fn chunks_computed_in_block_layout_hold_the_right_values() {
    let (_tmp, sd) = state();
    store_f64(&sd, "x.b2nd", [10, 8], [4, 3], |i| i as f64);
    store_f64(&sd, "y.b2nd", [10, 8], [4, 3], |i| (i % 7) as f64 - 3.0);
    store_f64(&sd, "z.b2nd", [16, 16], [8, 8], |i| (i % 7) as f64 - 3.0);
    let want: Vec<f64> = (0..37 * 23)
        .map(|i| i as f64 * 2.0 + ((i % 7) as f64 - 3.0))
        .collect();
    for other in ["y", "z"] {
        let p = DsPath::parse(&format!("@personal/n{other}.b2nd")).unwrap();
        let operands = [
            ("x", "@shared/x.b2nd"),
            ("o", &format!("@shared/{other}.b2nd")),
        ];
        save(
            &sd,
            &p,
            &request("x * 2 + o", &operands),
            USER,
            &policy(),
            &Budget::unlimited(),
        )
        .unwrap();
        let FetchOutput::Frame(frame) =
            node(&sd, &p, USER).fetch(&FetchRequest::default()).unwrap()
        else {
            panic!("computed")
        };
        assert_eq!(f64_values(&frame), want, "whole fetch with {other}");
        // Chunk 5 is rows 10..20, columns 16..23 (a partial edge chunk).
        let chunk = node(&sd, &p, USER).chunk(5, &Budget::unlimited()).unwrap();
        let mut out = Vec::new();
        Decompressor::new(1)
            .unwrap()
            .decompress(&chunk, &mut out)
            .unwrap();
        let laid_out: Vec<f64> = out
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        // Blocks of (4, 3) in C order over the (12, 9) extended chunk.
        let item = |r: usize, c: usize| laid_out[((r / 4) * 3 + c / 3) * 12 + (r % 4) * 3 + c % 3];
        for r in 0..10 {
            for c in 0..7 {
                assert_eq!(
                    item(r, c),
                    want[(10 + r) * 23 + 16 + c],
                    "chunk 5 at ({r}, {c})"
                );
            }
        }
        let mut req = request("x * 2 + o", &operands);
        req.compute = true;
        let c = DsPath::parse(&format!("@personal/c{other}.b2nd")).unwrap();
        save(&sd, &c, &req, USER, &policy(), &Budget::unlimited()).unwrap();
        let stored = stored(&sd, &c);
        assert_eq!(f64_values(&stored), want, "compute = true with {other}");
        let arr = NdArray::from_cframe(&stored).unwrap();
        assert_eq!((arr.chunks(), arr.blocks()), (vec![10, 8], vec![4, 3]));
    }
}
