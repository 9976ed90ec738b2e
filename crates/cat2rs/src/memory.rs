//! The server's memory allocator policy.
//!
//! The server allocates big buffers per request (a decompressed operand chunk, a result
//! chunk, a whole answer frame of tens of MB). With the system allocator each of them was
//! mapped fresh and faulted in page by page, then unmapped: a third of a computed fetch
//! went to page faults. mimalloc (the global allocator, see `main.rs`) keeps freed pages
//! and hands them out again, but it returns them to the system only when the allocator is
//! used again after its purge delay, so an idle server kept the 64 MiB of every password
//! hash (argon2) resident. A background thread asks mimalloc every second to purge what
//! has been free for longer than the delay: memory goes back within seconds of going idle,
//! and busy servers keep reusing it.

use std::time::Duration;

/// How often freed memory past mimalloc's purge delay is returned to the system.
const PURGE_EVERY: Duration = Duration::from_secs(1);

/// Starts the purging thread (once per process).
pub fn start_idle_purge() {
    let spawned = std::thread::Builder::new()
        .name("memory-purge".into())
        .spawn(|| loop {
            std::thread::sleep(PURGE_EVERY);
            // SAFETY: mi_collect takes no pointers; `false` only purges memory whose
            // purge delay has passed, which is always allowed.
            unsafe { libmimalloc_sys::mi_collect(false) };
        });
    if let Err(e) = spawned {
        tracing::warn!("not returning idle memory to the system: {e}");
    }
}
