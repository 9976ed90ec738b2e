//! Opening a file, walking its groups and datasets, and reading boxes of a dataset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdf5_reader::messages::filter_pipeline::FilterDescription;
use hdf5_reader::messages::HdfMessage;
use hdf5_reader::{Dataset, Datatype, Hdf5File, OpenOptions, SliceInfo, SliceInfoElem};

use crate::attrs::{attribute_values, AttrValue};
use crate::dtype::numpy_dtype;
use crate::filters::{check_pipeline, filter_name, registry};
use crate::{Error, Result};

/// Bytes of decoded chunks an open [`File`] keeps for reuse (reading one
/// frame after another out of the same chunks decodes each chunk once).
pub const CHUNK_CACHE_BYTES: usize = 32 << 20;

/// Deepest group nesting [`File::walk`] follows.
pub const MAX_GROUP_DEPTH: usize = 128;

/// An open HDF5 file, with every filter of [`crate::filters`] registered.
pub struct File {
    pub(crate) inner: Hdf5File,
    /// The files external links led to (see `owner`).
    pub(crate) linked: Arc<crate::owner::LinkedFiles>,
    /// Our filters, for decoding chunks ourselves (see `chunked`).
    pub(crate) registry: hdf5_reader::FilterRegistry,
    /// Chunk indexes read so far, by dataset path.
    pub(crate) chunk_maps:
        std::sync::Mutex<std::collections::HashMap<String, Arc<crate::chunked::ChunkMap>>>,
    path: PathBuf,
}

/// One filter of a dataset's pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub id: u16,
    pub name: String,
    /// The filter's client data (`cd_values`).
    pub params: Vec<u32>,
}

/// What a dataset looks like, without its data.
#[derive(Debug, Clone)]
pub struct DatasetInfo {
    /// Path inside the file, starting with `/`.
    pub path: String,
    pub shape: Vec<u64>,
    /// NumPy dtype string (`<u2`, `|S10`, `[('a', '<i4'), ('b', '<f8')]`, ...).
    pub dtype: String,
    /// Bytes per element.
    pub itemsize: usize,
    /// The chunk shape, for chunked datasets.
    pub chunks: Option<Vec<u64>>,
    pub filters: Vec<Filter>,
    pub attrs: Vec<(String, AttrValue)>,
}

/// What a group looks like, without its members.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    /// Path inside the file: `/` for the root.
    pub path: String,
    pub attrs: Vec<(String, AttrValue)>,
}

/// One entry of [`File::walk`].
#[derive(Debug, Clone)]
pub enum Node {
    Group(GroupInfo),
    Dataset(DatasetInfo),
}

impl File {
    /// Opens `path`, resolving external links relative to its directory.
    pub fn open(path: impl AsRef<Path>) -> Result<File> {
        let path = path.as_ref().to_path_buf();
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let storage =
            hdf5_reader::storage::FileStorage::open(&path).map_err(|source| Error::Open {
                path: path.clone(),
                source,
            })?;
        Self::open_storage(
            Arc::new(storage),
            &path.to_string_lossy(),
            Arc::new(crate::owner::DirLinks::new(dir)),
        )
    }

    /// Opens the HDF5 file whose bytes `storage` reads (a file, an object of
    /// a store, a range of something larger), named `name` in messages;
    /// external links are followed through `links`.
    pub fn open_storage(
        storage: hdf5_reader::storage::DynStorage,
        name: &str,
        links: Arc<dyn crate::LinkOpener>,
    ) -> Result<File> {
        let path = PathBuf::from(name);
        let linked = Arc::new(crate::owner::LinkedFiles::new(links));
        let options = OpenOptions::default()
            .with_chunk_cache_bytes(CHUNK_CACHE_BYTES)
            .with_filter_registry(registry())
            .with_external_link_resolver(linked.clone());
        let inner = Hdf5File::from_storage_with_options(storage, options).map_err(|source| {
            Error::Open {
                path: path.clone(),
                source,
            }
        })?;
        Ok(File {
            inner,
            linked,
            path,
            registry: registry(),
            chunk_maps: Default::default(),
        })
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the root group's header and the names of its members: that the
    /// file's structure starts where its superblock says (what an upload is
    /// checked for; deeper damage is met, and reported, as it is read).
    pub fn check_root(&self) -> Result<()> {
        self.inner.root_group()?.member_names()?;
        Ok(())
    }

    /// Every group (root first) and dataset, depth first, children sorted by name.
    ///
    /// A group is walked once, under the first path that reaches it (as
    /// h5py's `visititems` does): HDF5 allows hard links that make cycles,
    /// which a file can use to send a walk down forever (found by fuzzing:
    /// a group linking to itself overflowed the stack). Groups nested more
    /// than [`MAX_GROUP_DEPTH`] deep are an error.
    pub fn walk(&self) -> Result<Vec<Node>> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        self.walk_group("/", 0, &mut seen, &mut out)?;
        Ok(out)
    }

    fn walk_group(
        &self,
        path: &str,
        depth: usize,
        seen: &mut std::collections::HashSet<u64>,
        out: &mut Vec<Node>,
    ) -> Result<()> {
        let group = if path == "/" {
            self.inner.root_group()?
        } else {
            self.inner.group(path)?
        };
        if !seen.insert(group.address()) {
            return Ok(());
        }
        if depth > MAX_GROUP_DEPTH {
            return Err(Error::TooDeep(format!(
                "groups nested more than {MAX_GROUP_DEPTH} deep (at {path})"
            )));
        }
        out.push(Node::Group(GroupInfo {
            path: path.to_string(),
            attrs: attribute_values(&group.attributes()?),
        }));
        let (mut groups, mut datasets) = group.member_names()?;
        groups.sort();
        datasets.sort();
        let child = |name: &str| {
            if path == "/" {
                format!("/{name}")
            } else {
                format!("{path}/{name}")
            }
        };
        for name in datasets {
            out.push(Node::Dataset(self.dataset(&child(&name))?));
        }
        for name in groups {
            self.walk_group(&child(&name), depth + 1, seen, out)?;
        }
        Ok(())
    }

    /// Describes the dataset at `path`.
    pub fn dataset(&self, path: &str) -> Result<DatasetInfo> {
        let ds = self.inner.dataset(path)?;
        let shape = ds.shape().to_vec();
        let chunks = ds
            .chunks()
            .map(|c| c.iter().take(shape.len()).map(|&d| u64::from(d)).collect());
        Ok(DatasetInfo {
            path: normalize(path),
            dtype: numpy_dtype(ds.dtype()),
            itemsize: ds.raw_element_size()?,
            shape,
            chunks,
            filters: self
                .pipeline(&ds)?
                .into_iter()
                .map(|f| Filter {
                    id: f.id,
                    name: filter_name(&f),
                    params: f.client_data,
                })
                .collect(),
            attrs: attribute_values(&ds.attributes()),
        })
    }

    fn pipeline(&self, ds: &Dataset) -> Result<Vec<FilterDescription>> {
        let header = self.owner(ds)?.header;
        Ok(header
            .messages
            .iter()
            .find_map(|m| match m {
                HdfMessage::FilterPipeline(p) => Some(p.filters.clone()),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// The attributes of the group at `path`.
    pub fn group_attrs(&self, path: &str) -> Result<Vec<(String, AttrValue)>> {
        let group = if normalize(path) == "/" {
            self.inner.root_group()?
        } else {
            self.inner.group(path)?
        };
        Ok(attribute_values(&group.attributes()?))
    }

    /// Reads the elements `start[i]..stop[i]` of the dataset at `path`, as raw element
    /// bytes (in the dataset's byte order, see [`DatasetInfo::dtype`]) in C order.
    /// A scalar dataset takes empty `start` and `stop`.
    pub fn read_box(&self, path: &str, start: &[u64], stop: &[u64]) -> Result<Vec<u8>> {
        let ds = self.inner.dataset(path)?;
        check_pipeline(&self.pipeline(&ds)?)?;
        let shape = ds.shape();
        let bad = |reason: String| Error::BadBox {
            path: normalize(path),
            reason,
        };
        if start.len() != shape.len() || stop.len() != shape.len() {
            return Err(bad(format!(
                "dataset has {} dimensions, box has {} and {}",
                shape.len(),
                start.len(),
                stop.len()
            )));
        }
        for (d, ((&a, &b), &n)) in start.iter().zip(stop).zip(shape).enumerate() {
            if a > b || b > n {
                return Err(bad(format!(
                    "dimension {d}: {a}..{b} does not fit in 0..{n}"
                )));
            }
        }
        if shape.is_empty() {
            // An empty dataset (null dataspace, h5py.Empty) holds no element:
            // it is served as a zero of its dtype, as h5py-based servers do.
            if ds.num_elements()? == 0 {
                return Ok(vec![0; ds.raw_element_size()?]);
            }
            return Ok(ds.read_raw_bytes()?);
        }
        if start.iter().zip(stop).any(|(a, b)| a == b) {
            return Ok(Vec::new());
        }
        let itemsize = ds.raw_element_size()?;
        if let Some(chunks) = ds.chunks() {
            let chunks: Vec<u64> = chunks
                .iter()
                .take(shape.len())
                .map(|&c| u64::from(c))
                .collect();
            let pipeline = self.pipeline(&ds)?;
            let plain = chunks.len() == shape.len()
                && chunks.iter().all(|&c| c > 0)
                && !matches!(
                    ds.dtype(),
                    Datatype::String { .. } | Datatype::VarLen { .. }
                );
            if plain {
                let filters: Vec<Filter> = pipeline
                    .iter()
                    .map(|f| Filter {
                        id: f.id,
                        name: filter_name(f),
                        params: f.client_data.clone(),
                    })
                    .collect();
                let spec = crate::chunked::ChunkedDataset {
                    path,
                    shape,
                    chunks: &chunks,
                    itemsize,
                    pipeline: &pipeline,
                    filters: &filters,
                };
                if let Some(out) = self.read_chunked_box(&spec, start, stop)? {
                    return Ok(out);
                }
            }
        }
        let selection = SliceInfo {
            selections: start
                .iter()
                .zip(stop)
                .map(|(&start, &end)| SliceInfoElem::Slice {
                    start,
                    end,
                    step: 1,
                })
                .collect(),
        };
        // Elements of the common sizes are read as fixed arrays: no allocation each.
        Ok(match itemsize {
            1 => read_fixed::<1>(&ds, &selection)?,
            2 => read_fixed::<2>(&ds, &selection)?,
            4 => read_fixed::<4>(&ds, &selection)?,
            8 => read_fixed::<8>(&ds, &selection)?,
            16 => read_fixed::<16>(&ds, &selection)?,
            _ => {
                let arr = ds.read_slice::<RawElem>(&selection)?;
                let mut out = Vec::with_capacity(arr.len() * itemsize);
                for e in arr.iter() {
                    out.extend_from_slice(&e.0);
                }
                out
            }
        })
    }
}

fn read_fixed<const N: usize>(ds: &Dataset, selection: &SliceInfo) -> Result<Vec<u8>> {
    // Chunked datasets decode the chunks a box overlaps in parallel.
    let arr = ds.read_slice_parallel::<Fixed<N>>(selection)?;
    let mut out = Vec::with_capacity(arr.len() * N);
    for e in arr.iter() {
        out.extend_from_slice(&e.0);
    }
    Ok(out)
}

fn normalize(path: &str) -> String {
    format!("/{}", path.trim_matches('/'))
}

/// One element as its raw bytes, whatever its type: lets `read_slice` do the
/// hyperslab selection without converting values.
#[derive(Clone)]
struct RawElem(Vec<u8>);

impl hdf5_reader::H5Type for RawElem {
    fn hdf5_type() -> Datatype {
        Datatype::Opaque {
            size: 0,
            tag: "raw".to_string(),
        }
    }

    fn from_bytes(bytes: &[u8], _dtype: &Datatype) -> hdf5_reader::error::Result<Self> {
        Ok(RawElem(bytes.to_vec()))
    }

    fn element_size(dtype: &Datatype) -> usize {
        hdf5_reader::dtype_element_size(dtype).unwrap_or(0)
    }
}

/// One element of exactly `N` bytes, kept as raw bytes.
#[derive(Clone)]
struct Fixed<const N: usize>([u8; N]);

impl<const N: usize> hdf5_reader::H5Type for Fixed<N> {
    fn hdf5_type() -> Datatype {
        Datatype::Opaque {
            size: N as u32,
            tag: "raw".to_string(),
        }
    }

    fn from_bytes(bytes: &[u8], _dtype: &Datatype) -> hdf5_reader::error::Result<Self> {
        bytes.try_into().map(Fixed).map_err(|_| {
            hdf5_reader::error::Error::InvalidData(format!(
                "element of {} bytes, expected {N}",
                bytes.len()
            ))
        })
    }

    fn element_size(_dtype: &Datatype) -> usize {
        N
    }

    /// Raw bytes are exactly what is wanted: chunks are copied, not
    /// converted element by element.
    fn native_copy_compatible(dtype: &Datatype) -> bool {
        hdf5_reader::dtype_element_size(dtype).ok() == Some(N)
    }
}
