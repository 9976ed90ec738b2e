//! Helpers shared by the integration tests of cat2-blosc2: hashing, the
//! fixture folder and its manifests, msgpack values as JSON, and reading a box
//! out of C-ordered bytes (the reference every `read_box` is checked against).

#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256, as Python's `hashlib.sha256(b).hexdigest()`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// The folder written by `tests/fixtures/make_fixtures.py`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture manifest, in the order of `index.json`.
pub fn manifests() -> Vec<Value> {
    let dir = fixtures_dir();
    let index: Value = read_json(&dir.join("index.json"));
    index["fixtures"]
        .as_array()
        .expect("index.json has a fixtures list")
        .iter()
        .map(|n| {
            let name = n.as_str().expect("fixture names are strings");
            read_json(&dir.join(format!("{name}.json")))
        })
        .collect()
}

pub fn read_json(path: &std::path::Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn i64s(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not a list"))
        .iter()
        .map(|x| {
            x.as_i64()
                .unwrap_or_else(|| panic!("{x} is not an integer"))
        })
        .collect()
}

pub fn int(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("{v} is not an integer"))
}

/// A msgpack value in the manifests' JSON convention: binary values are
/// `{"$bytes": "<hex>"}`, everything else maps as usual.
pub fn msgpack_json(v: &rmpv::Value) -> Value {
    use rmpv::Value as M;
    match v {
        M::Nil => Value::Null,
        M::Boolean(b) => json!(b),
        M::Integer(i) => i
            .as_i64()
            .map(|n| json!(n))
            .or_else(|| i.as_u64().map(|n| json!(n)))
            .expect("msgpack integers fit i64 or u64"),
        M::F32(f) => json!(f64::from(*f)),
        M::F64(f) => json!(f),
        M::String(s) => json!(s.as_str().expect("vlmeta strings are UTF-8")),
        M::Binary(b) => json!({ "$bytes": hex(b) }),
        M::Array(items) => Value::Array(items.iter().map(msgpack_json).collect()),
        M::Map(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                let key = k.as_str().map_or_else(|| k.to_string(), str::to_string);
                m.insert(key, msgpack_json(v));
            }
            Value::Object(m)
        }
        M::Ext(tag, data) => json!({ "$ext": tag, "data": hex(data) }),
    }
}

/// All vlmeta of a super-chunk as a JSON object (manifest convention).
pub fn vlmeta_json(sc: &cat2_blosc2::SChunk) -> Value {
    let mut m = Map::new();
    for (k, v) in sc.vlmeta().expect("vlmeta is readable") {
        m.insert(k, msgpack_json(&v));
    }
    Value::Object(m)
}

/// The box `[start, stop)` of a C-ordered array of `shape`, copied item by item.
pub fn c_order_box(
    data: &[u8],
    shape: &[i64],
    itemsize: usize,
    start: &[i64],
    stop: &[i64],
) -> Vec<u8> {
    let nd = shape.len();
    let count: Vec<i64> = start.iter().zip(stop).map(|(a, b)| b - a).collect();
    let total: i64 = count.iter().product();
    let mut out = Vec::with_capacity(total.max(0) as usize * itemsize);
    if total <= 0 {
        return out;
    }
    let mut idx = vec![0i64; nd];
    loop {
        let mut flat = 0i64;
        for d in 0..nd {
            flat = flat * shape[d] + start[d] + idx[d];
        }
        let at = flat as usize * itemsize;
        out.extend_from_slice(&data[at..at + itemsize]);
        // Advance the odometer, last dimension fastest.
        let mut d = nd;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < count[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// A handful of boxes worth reading from an array: the whole array, its first
/// and last item, an interior box, boxes straddling chunk edges, and an empty one.
pub fn sample_boxes(shape: &[i64], chunks: &[i64]) -> Vec<(Vec<i64>, Vec<i64>)> {
    let nd = shape.len();
    let mut boxes = vec![(vec![0; nd], shape.to_vec())];
    if shape.contains(&0) {
        return boxes;
    }
    boxes.push((vec![0; nd], vec![1; nd]));
    boxes.push((shape.iter().map(|s| s - 1).collect(), shape.to_vec()));
    boxes.push((
        shape.iter().map(|&s| (s > 2) as i64).collect(),
        shape
            .iter()
            .map(|&s| if s > 2 { s - 1 } else { s })
            .collect(),
    ));
    // Across the first chunk boundary of every dimension.
    boxes.push((
        chunks
            .iter()
            .zip(shape)
            .map(|(&c, &s)| (c - 1).clamp(0, s - 1))
            .collect(),
        chunks
            .iter()
            .zip(shape)
            .map(|(&c, &s)| (c + 1).min(s))
            .collect(),
    ));
    // The last, possibly partial, chunk of every dimension.
    boxes.push((
        chunks
            .iter()
            .zip(shape)
            .map(|(&c, &s)| (s - 1) / c.max(1) * c)
            .collect(),
        shape.to_vec(),
    ));
    if nd > 0 {
        let mut stop = shape.to_vec();
        stop[0] = 0;
        boxes.push((vec![0; nd], stop));
    }
    boxes
}
