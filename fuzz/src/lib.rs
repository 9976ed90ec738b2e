//! Helpers shared by the fuzz targets: decoding a shape from the first
//! bytes of an input, a frame held in memory, and a state directory (on a
//! tmpfs when there is one) to put stored files in and read them back
//! through the resolver, as the server does.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use cat2_core::budget::{Budget, Limits, MemoryPool};

use cat2_core::{Caller, DsPath, StateDir};

/// Dimensions a byte stands for: mostly small (the arrays read through),
/// sometimes at the edges of the arithmetic.
fn dim_of(b: u8) -> i64 {
    const EDGES: [i64; 16] = [
        i64::MAX,
        i64::MAX - 1,
        i64::MAX / 2,
        1 << 31,
        (1 << 31) - 1,
        1 << 32,
        1 << 53,
        1 << 62,
        1_000_000_000_000,
        1_000_000,
        65_536,
        100_000,
        i32::MAX as i64 + 2,
        3_000_000_000,
        255,
        256,
    ];
    if b < 240 {
        i64::from(b % 64)
    } else {
        EDGES[usize::from(b - 240)]
    }
}

/// Splits `data` into a shape (a byte for the rank, 0 to 4, then one byte
/// per dimension), a chunk shape (one byte per dimension, 1 to 16) and the
/// rest.
pub fn take_shape(data: &[u8]) -> Option<(Vec<i64>, Vec<i64>, &[u8])> {
    let (&rank, rest) = data.split_first()?;
    let ndim = usize::from(rank % 5);
    if rest.len() < 2 * ndim {
        return None;
    }
    let (dims, rest) = rest.split_at(ndim);
    let (chunks, rest) = rest.split_at(ndim);
    Some((
        dims.iter().map(|&b| dim_of(b)).collect(),
        chunks.iter().map(|&c| i64::from(c % 16) + 1).collect(),
        rest,
    ))
}

/// A frame held in memory, read as C-Blosc2 reads frames from storage.
pub struct MemFrame(pub Vec<u8>);

impl cat2_blosc2::FrameIo for MemFrame {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
    fn name(&self) -> String {
        "fuzz input".into()
    }
}

/// A state directory for the whole run, with a counter for fresh names (a
/// fresh key per input: nothing cached for one input is seen by another).
pub struct State {
    pub dir: tempfile::TempDir,
    pub state: StateDir,
    counter: AtomicU64,
}

impl State {
    /// The run's state directory.
    pub fn get() -> &'static State {
        static STATE: OnceLock<State> = OnceLock::new();
        STATE.get_or_init(|| {
            let shm = Path::new("/dev/shm");
            let dir = if shm.is_dir() {
                tempfile::Builder::new()
                    .prefix("cat2rs-fuzz")
                    .tempdir_in(shm)
            } else {
                tempfile::Builder::new().prefix("cat2rs-fuzz").tempdir()
            }
            .expect("a temporary directory");
            let state = StateDir::open(dir.path()).expect("a state directory");
            State {
                dir,
                state,
                counter: AtomicU64::new(0),
            }
        })
    }

    /// A name not used before in this run.
    pub fn fresh_name(&self, suffix: &str) -> String {
        format!("f{}{suffix}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// Writes `bytes` as `public/<name>`, the way a file dropped into a root
    /// is found, and answers its logical path.
    pub fn put_public(&self, name: &str, bytes: &[u8]) -> DsPath {
        std::fs::write(self.dir.path().join("public").join(name), bytes).expect("writing");
        DsPath::parse(&format!("@public/{name}")).expect("a path")
    }

    /// Removes everything under `public/` (each input starts clean).
    pub fn clear_public(&self) {
        let public = self.dir.path().join("public");
        if let Ok(entries) = std::fs::read_dir(&public) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }

    /// A resolver for an anonymous reader.
    pub fn resolver(&self) -> cat2_core::resolve::Resolver {
        cat2_core::resolve::Resolver::new(&self.state, Caller::default())
    }
}

/// The rank of what `info` describes, when it is an array or a super-chunk.
pub fn rank_of(info: &cat2_proto::Info) -> Option<usize> {
    match info {
        cat2_proto::Info::Array(a) => Some(a.shape.len()),
        cat2_proto::Info::SChunk(_) => Some(1),
        _ => None,
    }
}

/// Small selections of an array of `rank` dimensions: the first two items
/// along every dimension, the last item, and a backward step.
pub fn small_slices(rank: usize) -> Vec<String> {
    if rank == 0 {
        return vec![String::new()];
    }
    let each = |s: &str| vec![s; rank].join(",");
    vec![each("0:2"), each("-1"), each("-1:-3:-1")]
}

/// A request's budget, as the server gives one (smaller than libFuzzer's
/// 2 GB memory limit: going past the budget is an error, past that a crash).
pub fn budget() -> Budget {
    let limits = Limits {
        request_memory: 256 << 20,
        total_memory: 512 << 20,
        compute_time: Duration::from_secs(10),
        // Nothing is spilled: a budget made by `Budget::new` has no storage.
        request_disk: 0,
        total_disk: 0,
    };
    Budget::new(&limits, MemoryPool::new(limits.total_memory))
}

/// Reads everything a client could ask of the dataset or group at `path`
/// (info, listing, small fetches, chunks), through the resolver; errors are
/// answers, panics are bugs.
pub fn read_all(path: &DsPath) {
    let st = State::get();
    let r = st.resolver();
    let node = || r.resolve(path);
    let rank = node()
        .and_then(|n| n.info())
        .ok()
        .as_ref()
        .and_then(rank_of);
    let _ = node().and_then(|n| n.list());
    let _ = node().map(|n| n.etag());
    if let Some(rank) = rank {
        for s in small_slices(rank) {
            let req = cat2_core::fetch::FetchRequest {
                slice: Some(s).filter(|s| !s.is_empty()),
                budget: budget(),
                ..Default::default()
            };
            let _ = node().and_then(|n| n.fetch(&req));
        }
        for n in [0, 1, -1] {
            let _ = node().and_then(|node| node.chunk(n, &budget()));
        }
    }
}
