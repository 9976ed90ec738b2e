//! The backends' own async runtime, and the one way synchronous code waits
//! on it.
//!
//! cat2-core's storage trait is synchronous (the server calls it on tokio's
//! blocking pool), while `object_store` and `tokio-postgres` are async. Their
//! futures run on a small runtime owned by the backend, never on the
//! server's: a caller on a blocking thread hands a future over and waits for
//! its answer on a channel. That keeps both worlds apart — no `block_on`
//! inside the server's runtime (which panics), and no server worker thread
//! ever parked on network I/O (the caller is already a blocking thread).
//!
//! Dropping the runtime never blocks (`shutdown_background`), so a backend
//! may be dropped anywhere, also inside the server's async context.

use std::future::Future;
use std::sync::mpsc;

/// A runtime for the backends' network I/O.
#[derive(Debug)]
pub struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    /// A runtime with `threads` workers (network I/O needs few).
    pub fn new(threads: usize) -> std::io::Result<Bridge> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("cat2-cloud-io")
            .enable_all()
            .build()?;
        Ok(Bridge {
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        // Only `Drop` takes the runtime out.
        self.runtime
            .as_ref()
            .map(tokio::runtime::Runtime::handle)
            .expect("the runtime lives as long as the bridge")
    }

    /// Enters the runtime's context (for constructors that look for one).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.handle().enter()
    }

    /// Runs `fut` on the runtime and waits for its output (from a
    /// synchronous caller: a blocking-pool thread, a test, the CLI).
    pub fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        match rx.recv() {
            Ok(out) => out,
            // The task panicked: carry the panic over to the caller, as a
            // direct call would have.
            Err(_) => panic!("a storage task panicked (see the log above)"),
        }
    }

    /// Starts `fut` now and answers a handle to wait for its output later
    /// (several uploads of parts in flight at once).
    pub fn start<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Pending<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        Pending(rx)
    }

    /// Starts `fut` without waiting for it (releasing a lock on drop).
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.handle().spawn(fut);
    }
}

/// The output of a future [`Bridge::start`]ed, to be waited for.
pub struct Pending<T>(mpsc::Receiver<T>);

impl<T> Pending<T> {
    /// Waits for the output.
    pub fn wait(self) -> T {
        match self.0.recv() {
            Ok(out) => out,
            Err(_) => panic!("a storage task panicked (see the log above)"),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bridge;

    #[test]
    fn runs_futures_for_synchronous_callers_and_drops_anywhere() {
        let bridge = Bridge::new(1).unwrap();
        assert_eq!(bridge.run(async { 6 * 7 }), 42);
        // Dropped inside another runtime's async context: must not panic.
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        outer.block_on(async move { drop(bridge) });
    }
}
