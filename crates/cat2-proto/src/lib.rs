//! cat2-proto: the JSON shapes of the Caterva2 REST API.
//!
//! The official Python client reads these answers with plain dict access, and
//! some of its dependencies (blosc2's `C2Array`) rebuild objects from them
//! with `**kwargs`, so field names, field *order* and the exact key set are
//! part of the protocol. Structs serialise in declaration order; keep it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Compression parameters as Caterva2 reports them (integer enums, and the
/// synthetic `"filters, meta"` pairs for the non-empty filter slots).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CParams {
    pub codec: u8,
    pub codec_meta: u8,
    pub clevel: u8,
    pub filters: Vec<u8>,
    pub filters_meta: Vec<i32>,
    pub typesize: i32,
    pub blocksize: i32,
    pub nthreads: i32,
    pub splitmode: i32,
    pub tuner: i32,
    pub use_dict: bool,
    #[serde(rename = "filters, meta")]
    pub filters_and_meta: Vec<(u8, i32)>,
}

/// Metadata of a super-chunk (`models.SChunk`). Top level for `.b2frame` and
/// regular files; nested under `schunk` for arrays.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SChunkInfo {
    pub cbytes: i64,
    pub chunkshape: i64,
    pub chunksize: i64,
    pub contiguous: bool,
    pub cparams: CParams,
    pub cratio: f64,
    pub nbytes: i64,
    pub urlpath: Option<String>,
    pub vlmeta: Map<String, Value>,
    pub nchunks: i64,
    pub mtime: Option<String>,
}

/// Metadata of an n-dimensional array (`models.Metadata`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArrayInfo {
    pub shape: Vec<i64>,
    pub chunks: Vec<i64>,
    pub blocks: Vec<i64>,
    pub dtype: String,
    pub schunk: SChunkInfo,
    pub mtime: Option<String>,
    /// `"bytes"` when `/api/fetch` honours `Range` for this array, `null` for
    /// computed data (HDF5 proxies, container leaves).
    pub accept_ranges: Option<String>,
}

/// A directory, root or container (`models.Directory`): `kind` is `"group"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupInfo {
    pub kind: String,
    pub mtime: Option<String>,
    pub size: u64,
    pub nfiles: u64,
}

/// A file that is not a dataset and could not be opened (`models.File`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileInfo {
    pub mtime: Option<String>,
    pub size: u64,
}

/// A dataset file whose content is not a valid Blosc2 frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UnreadableInfo {
    pub mtime: Option<String>,
    pub error: String,
}

/// `/api/info` of a stored lazy expression: what it computes, not how it
/// is stored (no chunks or blocks).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LazyInfo {
    pub shape: Vec<i64>,
    pub dtype: String,
    pub expression: String,
    /// Operand name → its logical path (`null` for one that is gone).
    pub operands: serde_json::Map<String, serde_json::Value>,
    pub mtime: Option<String>,
}

/// Every answer of `GET /api/info`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Info {
    Array(ArrayInfo),
    Lazy(LazyInfo),
    SChunk(SChunkInfo),
    Group(GroupInfo),
    Unreadable(UnreadableInfo),
    File(FileInfo),
}

/// One entry of `GET /api/roots`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootInfo {
    pub name: String,
}

/// The body of `POST /api/fetch`: the GET query parameters as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FetchParams {
    #[serde(default)]
    pub slice_: Option<String>,
    #[serde(default)]
    pub indices: Option<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
}

/// The answer of `POST /api/chunk/{path}?nchunk=N`: how far the fill has got.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkWritten {
    /// The slot that was written.
    pub nchunk: i64,
    /// Slots written so far (the UNINIT ones are the rest).
    pub written: i64,
    pub nchunks: i64,
    /// The array's `fill_state` vlmeta: `filling`, `complete`, `publishing`
    /// or `published`.
    pub state: String,
}

/// The answer of `POST /api/publish/{path}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Published {
    /// Where the copy went: `<publish_root>/<key>`.
    pub published: String,
}

/// A dataset path (`@shared/a b/x.b2nd`) percent-encoded for the path of a URL
/// (`/api/fetch/@shared/a%20b/x.b2nd`), keeping its slashes and `@`.
pub fn url_path(path: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'@')
        .remove(b'.')
        .remove(b'-')
        .remove(b'_')
        .remove(b'!');
    percent_encoding::utf8_percent_encode(path.trim_start_matches('/'), KEEP).to_string()
}
