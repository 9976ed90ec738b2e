//! Times a fetch of a lazy dataset in-process (no HTTP), for profiling the
//! compute pipeline: `lazy_fetch <statedir> <user-id> <path> [slice] [repeat]`.
//!
//! The path is logical (`@personal/x0.b2nd`); the user id is the owner's
//! (the directory name under `personal/`).

use std::time::Instant;

use cat2_core::fetch::{FetchOutput, FetchRequest};
use cat2_core::resolve::Resolver;
use cat2_core::store::{Caller, StateDir};
use cat2_core::DsPath;

/// The server's allocator, so that the timings are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: lazy_fetch <statedir> <user-id> <path> [slice] [repeat]".into());
    }
    let sd = StateDir::open(std::path::Path::new(&args[1]))?;
    let caller = Caller {
        user_id: Some(&args[2]),
        is_superuser: true,
    };
    let path = DsPath::parse(&args[3])?;
    let req = FetchRequest {
        slice: args.get(4).filter(|s| !s.is_empty()).cloned(),
        ..FetchRequest::default()
    };
    let repeat: usize = args.get(5).map_or(Ok(5), |s| s.parse())?;
    let resolver = Resolver::new(&sd, caller);
    for _ in 0..repeat {
        let t = Instant::now();
        let out = resolver.resolve(&path)?.fetch(&req)?;
        let len = match out {
            FetchOutput::Frame(f) => f.len(),
            FetchOutput::Spilled(f) => cat2_core::storage::ReadAt::len(f.as_ref()) as usize,
            FetchOutput::Stored { .. } => return Err("not computed: stored bytes".into()),
        };
        println!("{:.3} s, {len} bytes", t.elapsed().as_secs_f64());
    }
    Ok(())
}
