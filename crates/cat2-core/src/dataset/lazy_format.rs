//! The files that hold lazy expressions, in python-blosc2's formats.
//!
//! python-blosc2 4.14 saves a lazy expression as a `.b2nd` *carrier*: an
//! array of the result's shape and dtype with no data (zero chunks), a
//! metalayer `b2o` = `{"kind": "lazyexpr", "version": 1}`, and vlmeta
//! `b2o` = `{"kind", "version", "expression", "operands": {name: {"kind":
//! "urlpath", "version": 1, "urlpath": <path relative to the carrier's
//! directory>}}}` plus `_b2o_user_vlmeta` = `{}`. Older releases (and the
//! reference server's UDFs) wrote a metalayer `LazyArray` and vlmeta
//! `_LazyArray` = `{"expression", "operands": {name: <path>}}`. cat2rs
//! writes the first and reads both, so python-blosc2, the reference server
//! and cat2rs open each other's files.

use std::path::{Path, PathBuf};

use cat2_blosc2::{ArraySpec, NdArray};
use rmpv::Value;

use crate::error::{Error, Result};

/// A stored lazy expression: its text and where its operands are.
#[derive(Debug, Clone, PartialEq)]
pub struct LazyDef {
    pub expression: String,
    /// Operand name → the operand's file (resolved against the carrier's
    /// directory; not checked here).
    pub operands: Vec<(String, PathBuf)>,
}

fn map_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn bad(carrier: &Path, why: &str) -> Error {
    Error::BadRequest(format!(
        "{} is a lazy expression this server cannot read: {why}",
        carrier.file_name().unwrap_or_default().to_string_lossy()
    ))
}

/// Reads the expression a carrier array holds, or `None` when it is a plain
/// array.
pub fn read(arr: &NdArray, carrier: &Path) -> Result<Option<LazyDef>> {
    let sc = arr.schunk();
    let dir = carrier.parent().unwrap_or(Path::new("."));
    let metas = sc.metalayers();
    if metas.iter().any(|(n, _)| n == "b2o") {
        let raw = sc
            .vlmeta_raw("b2o")?
            .ok_or_else(|| bad(carrier, "its b2o vlmeta is missing"))?;
        let v = cat2_blosc2::decode_msgpack(&raw);
        if map_get(&v, "kind").and_then(Value::as_str) != Some("lazyexpr") {
            return Err(bad(carrier, "it is not a lazy expression (b2o kind)"));
        }
        let expression = map_get(&v, "expression")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(carrier, "it has no expression"))?
            .to_string();
        let mut operands = Vec::new();
        if let Some(ops) = map_get(&v, "operands").and_then(Value::as_map) {
            for (k, spec) in ops {
                let name = k
                    .as_str()
                    .ok_or_else(|| bad(carrier, "an operand name is not text"))?;
                let url = match map_get(spec, "kind").and_then(Value::as_str) {
                    Some("urlpath") => map_get(spec, "urlpath").and_then(Value::as_str),
                    _ => None,
                }
                .ok_or_else(|| bad(carrier, &format!("operand {name} is not a file path")))?;
                operands.push((name.to_string(), dir.join(url)));
            }
        }
        return Ok(Some(LazyDef {
            expression,
            operands,
        }));
    }
    if metas.iter().any(|(n, _)| n == "LazyArray") {
        let raw = sc
            .vlmeta_raw("_LazyArray")?
            .ok_or_else(|| bad(carrier, "its _LazyArray vlmeta is missing"))?;
        let v = cat2_blosc2::decode_msgpack(&raw);
        if map_get(&v, "UDF").is_some() {
            return Err(Error::BadRequest(
                "Python user-defined functions are not run by this server".into(),
            ));
        }
        let expression = map_get(&v, "expression")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(carrier, "it has no expression"))?
            .to_string();
        let mut operands = Vec::new();
        if let Some(ops) = map_get(&v, "operands").and_then(Value::as_map) {
            for (k, p) in ops {
                let (Some(name), Some(path)) = (k.as_str(), p.as_str()) else {
                    return Err(bad(carrier, "an operand is not a name and a path"));
                };
                operands.push((name.to_string(), dir.join(path)));
            }
        }
        return Ok(Some(LazyDef {
            expression,
            operands,
        }));
    }
    Ok(None)
}

/// The frame of a carrier for `expression` with a result of geometry
/// `spec`, whose operands are at `urlpaths` (relative to the carrier's
/// directory).
pub fn carrier_frame(
    spec: &ArraySpec,
    expression: &str,
    urlpaths: &[(String, String)],
) -> Result<Vec<u8>> {
    let kind = |extra: Vec<(Value, Value)>| {
        let mut m = vec![
            (Value::from("kind"), Value::from("lazyexpr")),
            (Value::from("version"), Value::from(1)),
        ];
        m.extend(extra);
        Value::Map(m)
    };
    let operands = Value::Map(
        urlpaths
            .iter()
            .map(|(name, url)| {
                (
                    Value::from(name.as_str()),
                    Value::Map(vec![
                        (Value::from("kind"), Value::from("urlpath")),
                        (Value::from("version"), Value::from(1)),
                        (Value::from("urlpath"), Value::from(url.as_str())),
                    ]),
                )
            })
            .collect(),
    );
    let mut arr = NdArray::zeros(spec)?;
    let sc = arr.schunk_mut();
    sc.add_metalayer("b2o", &cat2_blosc2::encode_msgpack(&kind(vec![])))?;
    sc.set_vlmeta(
        "b2o",
        &kind(vec![
            (Value::from("expression"), Value::from(expression)),
            (Value::from("operands"), operands),
        ]),
    )?;
    sc.set_vlmeta("_b2o_user_vlmeta", &Value::Map(vec![]))?;
    Ok(arr.to_cframe()?)
}

/// `target` relative to the directory `from` (both absolute, normalised),
/// as python-blosc2 stores operand paths.
pub fn relative_path(from: &Path, target: &Path) -> String {
    let a: Vec<_> = from.components().collect();
    let b: Vec<_> = target.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), a.len() - common).collect();
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/s/personal/u"), Path::new("/s/shared/x.b2nd")),
            "../../shared/x.b2nd"
        );
        assert_eq!(
            relative_path(Path::new("/s/shared"), Path::new("/s/shared/d/x.b2nd")),
            "d/x.b2nd"
        );
    }

    #[test]
    fn carriers_read_back() {
        let spec = ArraySpec {
            shape: vec![10, 10],
            chunks: vec![5, 10],
            blocks: vec![5, 10],
            dtype: "<f8".into(),
            cparams: cat2_blosc2::CParams::zstd_shuffle(8),
            urlpath: None,
        };
        let frame = carrier_frame(
            &spec,
            "a * 2 + b",
            &[
                ("a".into(), "a.b2nd".into()),
                ("b".into(), "../b.b2nd".into()),
            ],
        )
        .unwrap();
        let arr = NdArray::from_cframe(&frame).unwrap();
        assert_eq!(
            crate::dataset::derived_kind(&arr),
            Some(crate::dataset::Derived::LazyExpr)
        );
        let def = read(&arr, Path::new("/s/shared/e.b2nd")).unwrap().unwrap();
        assert_eq!(def.expression, "a * 2 + b");
        assert_eq!(
            def.operands,
            [
                ("a".to_string(), PathBuf::from("/s/shared/a.b2nd")),
                ("b".to_string(), PathBuf::from("/s/shared/../b.b2nd"))
            ]
        );
    }
}
