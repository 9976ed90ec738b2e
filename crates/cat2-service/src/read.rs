//! Reading: roots, listings, metadata, data, chunks, downloads, and the web
//! GUI's views of them. Every path is resolved once, for the caller, and the
//! node it names answers.

use cat2_core::budget::Budget;
use cat2_core::dataset::{Dataset, Download};
use cat2_core::fetch::{FetchOutput, FetchRequest};
use cat2_core::node::Node;
use cat2_core::storage::Entry;
use cat2_core::view::{self, Image, RecordPage, RecordQuery, Values};
use cat2_core::DsPath;
use cat2_proto::Info;

use crate::{Result, Service, Who};

/// The roots a caller sees.
pub type Roots = Vec<&'static str>;

/// What the web GUI's dataset panel shows.
pub struct PanelInfo {
    pub info: Info,
    /// A regular file, which the Display tab renders by its type.
    pub is_regular_file: bool,
}

impl Service {
    /// `@public` for everyone, the private roots once logged in.
    pub fn roots(&self, who: &Who) -> Roots {
        if who.is_logged_in() {
            vec!["@public", "@personal", "@shared"]
        } else {
            vec!["@public"]
        }
    }

    /// What `path` names, for `who`.
    pub fn resolve(&self, who: &Who, path: &DsPath) -> Result<Node> {
        Ok(self.resolver(who).resolve(path)?)
    }

    /// `/api/list`.
    pub fn list(&self, who: &Who, path: &DsPath) -> Result<Vec<String>> {
        Ok(self.resolve(who, path)?.list()?)
    }

    /// `/api/info`, with the validator of the version it describes.
    pub fn info(&self, who: &Who, path: &DsPath) -> Result<(Info, Option<String>)> {
        let node = self.resolve(who, path)?;
        let etag = node.etag();
        Ok((node.info()?, etag))
    }

    /// `/api/fetch`.
    pub fn fetch(&self, who: &Who, path: &DsPath, req: &FetchRequest) -> Result<FetchOutput> {
        Ok(self.resolve(who, path)?.fetch(req)?)
    }

    /// `/api/chunk`.
    pub fn chunk(&self, who: &Who, path: &DsPath, nchunk: i64, budget: &Budget) -> Result<Vec<u8>> {
        Ok(self.resolve(who, path)?.chunk(nchunk, budget)?)
    }

    /// `/api/download`.
    pub fn download(&self, who: &Who, path: &DsPath, budget: &Budget) -> Result<Download> {
        Ok(self.resolve(who, path)?.download(budget)?)
    }

    /// `/api/preview`.
    pub fn preview(&self, who: &Who, path: &DsPath, budget: &Budget) -> Result<Download> {
        Ok(self.resolve(who, path)?.preview(budget)?)
    }

    /// This server's identity for its peers.
    pub fn peer_id(&self) -> Result<String> {
        Ok(self.state.peer_id()?)
    }

    /// Bytes the state holds, as the quota counts them.
    pub fn usage(&self) -> Result<u64> {
        Ok(self.state.usage()?)
    }

    /// Every file of the roots given, by path, with its stored size
    /// (`None` for a path that is not a file of a root: `also`, which the
    /// caller wants in the list whatever it is). Sorted.
    pub fn files(
        &self,
        who: &Who,
        roots: &[String],
        also: Option<String>,
    ) -> Result<Vec<(String, Option<u64>)>> {
        let resolver = self.resolver(who);
        let mut paths = Vec::new();
        for root in roots {
            let dir = DsPath::parse(root)?;
            for (name, size) in resolver.resolve(&dir)?.files()? {
                paths.push((format!("{root}/{name}"), Some(size)));
            }
        }
        if let Some(c) = also {
            if !paths.iter().any(|(p, _)| *p == c) {
                paths.push((c, None));
            }
        }
        paths.sort();
        Ok(paths)
    }

    /// The size of the stored file `path` lies in (a container, for what is
    /// inside one), for the GUI's list.
    pub fn stored_size(&self, who: &Who, path: &DsPath) -> Option<u64> {
        let node = self.resolve(who, path).ok()?;
        let (key, _) = node.stored_key()?;
        match self.state.storage().head(&key).ok()? {
            Entry::Object(m) => Some(m.size),
            Entry::Dir { .. } => None,
        }
    }

    /// The web GUI's dataset panel: metadata, and whether the Display tab
    /// applies. Directories and nothing have no panel.
    pub fn panel(&self, who: &Who, path: &DsPath) -> Result<PanelInfo> {
        let node = self.resolve(who, path)?;
        if matches!(node, Node::Missing(_) | Node::Dir(_)) {
            return Err(cat2_core::Error::NotFound {
                path: path.to_string(),
            }
            .into());
        }
        let is_regular_file = node.is_regular_file();
        Ok(PanelInfo {
            info: node.info()?,
            is_regular_file,
        })
    }

    /// The decompressed bytes of a regular file, for the Display tab.
    pub fn regular_file(&self, who: &Who, path: &DsPath, budget: &Budget) -> Result<Vec<u8>> {
        let node = self.resolve(who, path)?;
        if let Node::Missing(_) = node {
            return Err(cat2_core::Error::NotFound {
                path: path.to_string(),
            }
            .into());
        }
        let not_regular =
            || cat2_core::Error::BadRequest(format!("{path} is not a regular file")).into();
        if !node.is_regular_file() {
            return Err(not_regular());
        }
        match node.download(budget)? {
            Download::RegularFile(blob) => {
                let sc = cat2_core::frames::open_frame(&blob).map_err(cat2_core::Error::from)?;
                budget.fits(sc.nbytes().max(0) as u64, &|| format!("showing {path}"))?;
                Ok(cat2_core::blob::read_blob(&blob)?)
            }
            _ => Err(not_regular()),
        }
    }

    /// The array `path` names, or why it is not one.
    pub fn array(&self, who: &Who, path: &DsPath) -> Result<Box<dyn Dataset>> {
        Ok(view::array_of(self.resolve(who, path)?)?)
    }

    /// The Data tab: a window of an array (`slice_` syntax), or a page of a
    /// 1-D record array.
    pub fn table(
        &self,
        who: &Who,
        path: &DsPath,
        window: impl FnOnce(&[i64]) -> Option<String>,
        records: &RecordQuery,
        budget: &Budget,
    ) -> Result<Table> {
        let ds = self.array(who, path)?;
        let shape = view::array_shape(ds.as_ref())?;
        if let [len] = shape[..] {
            if len > 0 {
                let probe = view::fetch_values(ds.as_ref(), Some("0:1".into()), budget)?;
                if probe.dtype.fields().is_some() {
                    let page = view::record_page(ds.as_ref(), len as usize, records, budget)?;
                    return Ok(Table::Records(page));
                }
            }
        }
        let slice = window(&shape);
        let values = view::fetch_values(ds.as_ref(), slice, budget)?;
        Ok(Table::Window(shape, values))
    }

    /// The viewer: frame `index` along `axis` as a float32 image, shrunk to
    /// at most `max_side` pixels a side.
    pub fn frame(
        &self,
        who: &Who,
        path: &DsPath,
        axis: usize,
        index: i64,
        max_side: usize,
        budget: &Budget,
    ) -> Result<Image> {
        let ds = self.array(who, path)?;
        let shape = view::array_shape(ds.as_ref())?;
        Ok(view::frame(
            ds.as_ref(),
            &shape,
            axis,
            index,
            max_side,
            budget,
        )?)
    }
}

/// What the Data tab shows.
pub enum Table {
    /// The array's shape and the values of the window.
    Window(Vec<i64>, Values),
    /// A page of records.
    Records(RecordPage),
}
