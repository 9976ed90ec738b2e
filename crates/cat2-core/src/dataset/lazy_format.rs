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

use std::path::{Component, Path};

use cat2_blosc2::{ArraySpec, NdArray};
use rmpv::Value;

use crate::error::{Error, Result};
use crate::storage::Key;

/// A stored lazy expression: its text and where its operands are.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LazyDef {
    pub expression: String,
    /// Operand name → the operand's file as stored: a path relative to the
    /// carrier's directory, or an absolute path (not checked here).
    pub operands: Vec<(String, String)>,
}

fn map_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn bad(carrier: &str, why: &str) -> Error {
    Error::BadRequest(format!(
        "{carrier} is a lazy expression this server cannot read: {why}"
    ))
}

/// Reads the expression a carrier array holds, or `None` when it is a plain
/// array.
/// `carrier` names the carrier's file in messages.
pub(crate) fn read(arr: &NdArray, carrier: &str) -> Result<Option<LazyDef>> {
    let sc = arr.schunk();
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
                operands.push((name.to_string(), url.to_string()));
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
                operands.push((name.to_string(), path.to_string()));
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
pub(crate) fn carrier_frame(
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

/// `target` relative to the directory `from`, as python-blosc2 stores
/// operand paths (`../../shared/x.b2nd`).
pub(crate) fn relative_path(from: &Key, target: &str) -> String {
    let a: Vec<&str> = from.segments().collect();
    let b: Vec<&str> = target.split('/').filter(|s| !s.is_empty()).collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = std::iter::repeat_n("..", a.len() - common).collect();
    parts.extend(&b[common..]);
    parts.join("/")
}

/// Where a relative operand path leads from the directory `dir`, climbing
/// with `..` lexically, as python-blosc2 resolves it; `None` above the root.
pub(crate) fn resolve_relative(dir: &Key, url: &str) -> Option<Vec<String>> {
    let mut parts: Vec<String> = dir.segments().map(str::to_string).collect();
    for c in Path::new(url).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str()?.to_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let key = |s| Key::parse(s).unwrap();
        assert_eq!(
            relative_path(&key("personal/u"), "shared/x.b2nd"),
            "../../shared/x.b2nd"
        );
        assert_eq!(relative_path(&key("shared"), "shared/d/x.b2nd"), "d/x.b2nd");
        assert_eq!(
            resolve_relative(&key("personal/u"), "../../shared/./x.b2nd"),
            Some(vec!["shared".to_string(), "x.b2nd".to_string()])
        );
        assert_eq!(resolve_relative(&key("shared"), "../../x.b2nd"), None);
        assert_eq!(resolve_relative(&key("shared"), "/etc/x"), None);
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
            crate::dataset::Derived::of(&arr),
            Some(crate::dataset::Derived::LazyExpr)
        );
        let def = read(&arr, "e.b2nd").unwrap().unwrap();
        assert_eq!(def.expression, "a * 2 + b");
        assert_eq!(
            def.operands,
            [
                ("a".to_string(), "a.b2nd".to_string()),
                ("b".to_string(), "../b.b2nd".to_string())
            ]
        );
    }
}
