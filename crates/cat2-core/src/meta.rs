//! Small conversions shared by every metadata answer: times, msgpack values
//! as JSON, compression parameters as Caterva2 reports them.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};

/// An ISO-8601 UTC time as Caterva2 writes it: microseconds when non-zero,
/// and a `Z` suffix (`2026-11-25T14:30:48.330007Z`).
pub(crate) fn iso_time(t: SystemTime) -> String {
    let dt: DateTime<Utc> = t.into();
    if dt.timestamp_subsec_micros() == 0 {
        dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// A msgpack value as JSON, the way Caterva2's metadata shows vlmeta:
/// bytes become (lossy) UTF-8 strings, map keys become strings.
pub(crate) fn msgpack_to_json(v: &rmpv::Value) -> Value {
    use rmpv::Value as M;
    match v {
        M::Nil => Value::Null,
        M::Boolean(b) => Value::Bool(*b),
        M::Integer(i) => {
            if let Some(u) = i.as_u64() {
                Value::Number(u.into())
            } else if let Some(s) = i.as_i64() {
                Value::Number(s.into())
            } else {
                Value::Null
            }
        }
        M::F32(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        M::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        M::String(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        M::Binary(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        M::Array(items) => Value::Array(items.iter().map(msgpack_to_json).collect()),
        M::Map(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                let key = match k {
                    M::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    M::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                    other => other.to_string(),
                };
                m.insert(key, msgpack_to_json(v));
            }
            Value::Object(m)
        }
        M::Ext(_, data) => Value::String(String::from_utf8_lossy(data).into_owned()),
    }
}

/// Compression parameters in Caterva2's JSON form.
pub(crate) fn cparams_json(cp: &cat2_blosc2::CParams) -> cat2_proto::CParams {
    let filters_and_meta = cp
        .filters
        .iter()
        .zip(cp.filters_meta.iter())
        .filter(|(f, _)| **f != 0)
        .map(|(f, m)| (*f, i32::from(*m)))
        .collect();
    cat2_proto::CParams {
        codec: cp.codec,
        codec_meta: cp.codec_meta,
        clevel: cp.clevel,
        filters: cp.filters.to_vec(),
        filters_meta: cp.filters_meta.iter().map(|&m| i32::from(m)).collect(),
        typesize: cp.typesize,
        blocksize: cp.blocksize,
        nthreads: i32::from(cat2_blosc2::cparams::default_nthreads()),
        splitmode: cp.splitmode,
        tuner: cp.tuner,
        use_dict: cp.use_dict,
        filters_and_meta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn iso_time_has_micros_only_when_nonzero() {
        let t = UNIX_EPOCH + Duration::new(1_795_000_000, 330_007_000);
        assert_eq!(iso_time(t), "2026-11-18T11:06:40.330007Z");
        let t = UNIX_EPOCH + Duration::new(1_795_000_000, 0);
        assert_eq!(iso_time(t), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn msgpack_values_become_json() {
        let v = rmpv::Value::Map(vec![
            (rmpv::Value::from("a"), rmpv::Value::from(1)),
            (rmpv::Value::from("b"), rmpv::Value::Binary(b"foo".to_vec())),
            (rmpv::Value::from("c"), rmpv::Value::F64(123.456)),
        ]);
        assert_eq!(
            serde_json::to_string(&msgpack_to_json(&v)).unwrap(),
            r#"{"a":1,"b":"foo","c":123.456}"#
        );
    }
}
