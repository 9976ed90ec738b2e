//! Unfolding an HDF5 file (`POST /api/unfold`) into a tree of proxies.
//!
//! For `<dir>/<name>.h5` the reference server creates the directory
//! `<dir>/<name>/` beside the file and mirrors the HDF5 hierarchy in it: an
//! `!_attrs_.json` (stored as `!_attrs_.json.b2`) with the attributes of the
//! file and of every group, and for every dataset a `.b2nd` *proxy*: an
//! array of the dataset's shape and dtype whose chunks are all special zero
//! chunks (a few hundred bytes), whose vlmeta say where the data is
//! (`_ftype = "hdf5"`, `_dsetname`) and carry the dataset's attributes. The
//! data stays in the HDF5 file; [`crate::dataset::proxy`] serves it from there.
//!
//! cat2rs writes the same files byte for byte where the format is fixed
//! (vlmeta, attribute encodings, cparams; geometry in [`crate::chunking`]), so
//! either server serves what the other unfolded. Unfolding reads metadata
//! only — except the first chunk of a Blosc2-filtered dataset, whose frame
//! gives the proxy its compression parameters — so its cost grows with the
//! number of objects, not with the data.
//!
//! Differences from the reference, all on the safe side: HDF5 names that
//! cannot be file names here (`.`, `..`, the names every write refuses:
//! reserved ones, ones with control characters, ones too long to store) are
//! skipped; a dataset attribute named `_ftype` or
//! `_dsetname` cannot overwrite the proxy's own keys (the reference lets it,
//! which breaks the proxy); and every file is written beside its target and
//! renamed into place, so a crash leaves each file old or new (one
//! [`crate::storage::Storage::put_many`]: on a local disk, two filesystem
//! syncs for the whole tree, not two per file).

pub(crate) mod attrs;

use cat2_blosc2::{ArraySpec, CParams, NdArray, SChunk};
use cat2_hdf5::{DatasetInfo, File, Node};

use crate::chunking as geometry;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::hierarchy::h5::compatible;
use crate::path::{check_new_name, is_reserved_name, DsPath};
use crate::resolve::Resolver;
use crate::storage::{Entry, Key};
use crate::store::{Caller, StateDir};
use crate::write::WritePolicy;

/// Most vlmeta entries a frame may carry and still be read by python-blosc2
/// (C-Blosc2 3.x): the proxy's two keys and 14 attributes. The reference
/// fails the whole unfold (500) on a dataset with more; cat2rs keeps the
/// first 14 (by name) and says so in the log.
const MAX_VLMETA: usize = 16;

/// Name of the attribute files, as listed (stored with `.b2`).
pub(crate) const ATTRS_NAME: &str = "!_attrs_.json";

/// The vlmeta key that marks a proxy, and its value.
pub(crate) const FTYPE_KEY: &str = "_ftype";
pub(crate) const FTYPE_HDF5: &str = "hdf5";
/// The vlmeta key naming the dataset inside the HDF5 file.
pub(crate) use crate::dataset::proxy::DSETNAME_KEY;

/// Python's `PurePosixPath(name).stem`.
pub(crate) fn stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => &name[..i],
        _ => name,
    }
}

/// Unfolds the HDF5 file `path` names; answers the stem of its name (the
/// reference's answer: `"kevlar"` for `@shared/kevlar.h5`).
pub fn unfold(
    sd: &StateDir,
    path: &DsPath,
    caller: Caller<'_>,
    policy: &WritePolicy,
) -> Result<String> {
    let key = sd.writable_key(path, caller, policy)?;
    let node = Resolver::new(sd, caller).resolve(path)?;
    match node.stored_key() {
        Some((found, false)) if found == key => {}
        Some((found, false)) if found == key.with_suffix(".b2")? => {
            return Err(not_a_container());
        }
        _ => {
            return Err(Error::BadRequest(
                "Target file does not exist or is not a file".into(),
            ))
        }
    }
    let tree = match node.hdf5_file() {
        Some(Ok(tree)) => tree,
        Some(Err(why)) => {
            return Err(Error::BadRequest(format!(
                "{path} is not a readable HDF5 file: {why}"
            )))
        }
        None => return Err(not_a_container()),
    };
    let name = path.name();
    let stem = stem(name);
    if stem == name || is_reserved_name(stem) {
        return Err(Error::BadRequest(format!(
            "{name} has no suffix to drop, so there is no directory name to unfold it into"
        )));
    }
    let file = tree.file();
    let nodes = file
        .walk()
        .map_err(|e| Error::BadRequest(format!("{path} cannot be unfolded: {e}")))?;
    // As the reference: a file without datasets is refused; one whose
    // datasets all lack a Blosc2 form unfolds into its groups only.
    if !nodes.iter().any(|n| matches!(n, Node::Dataset(_))) {
        return Err(Error::BadRequest("No arrays found in HDF5 file".into()));
    }
    let target = key
        .parent()
        .unwrap_or_default()
        .join(stem)
        .map_err(|_| Error::BadRequest(format!("{path} cannot be unfolded into {stem:?}")))?;
    if matches!(sd.entry(&target)?, Some(Entry::Object(_))) {
        return Err(Error::BadRequest(format!(
            "{path} cannot be unfolded: {stem} exists and is not a directory"
        )));
    }
    // Proxies and attribute files are small: a generous estimate per object.
    sd.check_quota(policy, nodes.len() as u64 * 4096, 0, "Unfold")?;
    let storage = sd.storage();
    let mut batch = Vec::new();
    for node in &nodes {
        match node {
            Node::Group(g) => {
                let Some(dir) = object_key(&target, &g.path, "") else {
                    continue;
                };
                storage.create_dir(&dir)?;
                let json = attrs::attrs_json(&g.attrs);
                batch.push((dir.join(&format!("{ATTRS_NAME}.b2"))?, attrs_frame(&json)?));
            }
            Node::Dataset(d) if compatible(d) => {
                let Some(proxy) = object_key(&target, &d.path, ".b2nd") else {
                    continue;
                };
                let frame = match proxy_frame(file, d) {
                    Ok(f) => f,
                    // A dataset whose dtype or geometry has no Blosc2 form is
                    // skipped, as the reference skips what it cannot store.
                    Err(e) => {
                        tracing::warn!("unfold: skipping HDF5 dataset {}: {e}", d.path);
                        continue;
                    }
                };
                batch.push((proxy, frame));
            }
            Node::Dataset(_) => {}
        }
    }
    storage.put_many(batch)?;
    Ok(stem.to_string())
}

fn not_a_container() -> Error {
    Error::BadRequest("Target file must be a zip, tar or hdf5 container".into())
}

/// Where an object of the HDF5 file (`/g/d`) lands below `target`, its last
/// name with `suffix` added (`.b2nd` for a dataset's proxy), or `None` when
/// one of its names cannot be a file name here (the rules of any new name,
/// `path::check_new_name`: no reserved name, no control character, short
/// enough to store).
fn object_key(target: &Key, h5path: &str, suffix: &str) -> Option<Key> {
    let parts: Vec<&str> = h5path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((last, dirs)) = parts.split_last() else {
        // The root group: the target directory itself.
        return suffix.is_empty().then(|| target.clone());
    };
    let mut key = target.clone();
    for part in dirs {
        check_new_name(part).ok()?;
        key = key.join(part).ok()?;
    }
    let last = format!("{last}{suffix}");
    check_new_name(&last).ok()?;
    key.join(&last).ok()
}

/// The compression parameters of proxies and attribute files: python-blosc2
/// defaults as the reference server runs it (ZSTD 5, shuffle, automatic split).
/// One thread: what is compressed is small (zero chunks, a JSON text), and
/// C-Blosc2 would start a thread pool per file otherwise.
fn default_cparams(typesize: usize) -> CParams {
    CParams {
        clevel: 5,
        nthreads: 1,
        splitmode: cat2_blosc2::cparams::splitmode::AUTO,
        ..CParams::zstd_shuffle(typesize)
    }
}

/// An `!_attrs_.json.b2` file: the JSON text as a one-chunk super-chunk.
fn attrs_frame(json: &str) -> Result<Vec<u8>> {
    let data = json.as_bytes();
    let sc = SChunk::from_bytes(data, data.len().max(1), &default_cparams(1))?;
    Ok(sc.to_cframe()?)
}

/// A Blosc2 filter's frame in the dataset's first chunk, when Blosc2 is the
/// dataset's only filter: its geometry and parameters are the proxy's.
fn blosc2_source(file: &File, d: &DatasetInfo) -> Option<(Vec<i64>, CParams)> {
    if d.filters.len() != 1 || d.filters[0].id != cat2_hdf5::filters::BLOSC2 {
        return None;
    }
    let chunks = file.raw_chunks(&d.path).ok()?;
    let first = chunks.iter().min_by(|a, b| a.offsets.cmp(&b.offsets))?;
    let raw = file.read_raw_chunk(first).ok()?;
    let arr = NdArray::from_cframe(&raw).ok()?;
    let blocks = arr.blocks().into_iter().map(i64::from).collect();
    Some((blocks, arr.schunk().cparams()))
}

/// The frame of the proxy of dataset `d`.
pub(crate) fn proxy_frame(file: &File, d: &DatasetInfo) -> Result<Vec<u8>> {
    let shape: Vec<i64> = d
        .shape
        .iter()
        .map(|&n| i64::try_from(n).unwrap_or(i64::MAX))
        .collect();
    let h5chunks: Option<Vec<i64>> = d
        .chunks
        .as_ref()
        .filter(|c| c.len() == shape.len())
        .map(|c| c.iter().map(|&n| n as i64).collect());
    let dtype = DType::parse(&d.dtype)?;
    let (chunks, mut blocks) = geometry::chunks_blocks(&shape, h5chunks.as_deref(), d.itemsize);
    let mut cparams = default_cparams(d.itemsize);
    if let Some((b, cp)) = blosc2_source(file, d) {
        if b.len() == blocks.len() {
            blocks = b;
            cparams = CParams {
                typesize: cparams.typesize,
                nthreads: cparams.nthreads,
                ..cp
            };
        }
    }
    let clamp = |v: &i64| i32::try_from(*v).unwrap_or(i32::MAX);
    cparams.blocksize =
        i32::try_from(blocks.iter().product::<i64>() * d.itemsize as i64).unwrap_or(0);
    let spec = ArraySpec {
        shape,
        chunks: chunks.iter().map(clamp).collect(),
        blocks: blocks.iter().map(clamp).collect(),
        dtype: dtype.descr_str(),
        cparams,
        urlpath: None,
    };
    let mut arr = NdArray::zeros(&spec)?;
    let sc = arr.schunk_mut();
    sc.set_vlmeta(FTYPE_KEY, &rmpv::Value::from(FTYPE_HDF5))?;
    sc.set_vlmeta(
        DSETNAME_KEY,
        &rmpv::Value::from(d.path.trim_start_matches('/')),
    )?;
    let mut entries = 2;
    for (name, value) in &d.attrs {
        if name == FTYPE_KEY || name == DSETNAME_KEY {
            continue;
        }
        let Some(v) = attrs::attr_msgpack(value) else {
            continue;
        };
        if entries == MAX_VLMETA {
            tracing::warn!(
                "unfold: HDF5 dataset {} has more attributes than a proxy holds; \
                 the ones after {name:?} are left out",
                d.path
            );
            break;
        }
        sc.set_vlmeta(name, &v)?;
        entries += 1;
    }
    Ok(arr.to_cframe()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_follow_the_rules_of_new_names() {
        let target = Key::parse("public/scan").unwrap();
        let key = |p: &str, sfx: &str| object_key(&target, p, sfx).map(|k| k.to_string());
        assert_eq!(key("/", "").as_deref(), Some("public/scan"));
        assert_eq!(key("/", ".b2nd"), None);
        assert_eq!(
            key("/g/d", ".b2nd").as_deref(),
            Some("public/scan/g/d.b2nd")
        );
        assert_eq!(key("/g", "").as_deref(), Some("public/scan/g"));
        // 240 bytes fit; with ".b2nd" added, 241 do not (245 at most).
        assert!(key(&format!("/{}", "d".repeat(240)), ".b2nd").is_some());
        assert_eq!(key(&format!("/{}", "d".repeat(241)), ".b2nd"), None);
        assert_eq!(key(&format!("/{}/d", "g".repeat(246)), ".b2nd"), None);
        for bad in [
            "/g\u{1}/d",
            "/g/d\u{202e}x",
            "/.cat2rs-tmp-1/d",
            "/x.b2lock/d",
            "/../d",
        ] {
            assert_eq!(key(bad, ".b2nd"), None, "{bad:?}");
        }
    }
}
