//! Stopping a long evaluation from outside: the caller hands a plan a hook
//! ([`crate::Plan::interrupt_with`]) that every plan of the expression — the
//! top one and the argument sub-plans of its reductions, constructors and
//! products — asks before it evaluates a box. Operations that stream over a
//! large input (`sum(linspace(0, 1, 10**12))`) evaluate it a piece at a
//! time through such a sub-plan, so a computation stops within a piece of
//! the hook saying no, whatever its shape.
//!
//! Rejected: a thread-local hook (rayon runs pieces on other threads, and
//! may run another request's work on a thread that waits), and a flag in the
//! read callback's protocol (expressions without stored operands never call
//! it).

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};

/// What a plan asks before each box: `Err(reason)` stops the evaluation
/// with [`Error::Interrupted`].
pub type Interrupt = dyn Fn() -> std::result::Result<(), String> + Send + Sync;

/// A plan's hook, set at most once (plans are made bottom up, and the hook
/// comes from whoever evaluates them).
#[derive(Clone, Default)]
pub(crate) struct Checkpoint(Arc<OnceLock<Arc<Interrupt>>>);

impl Checkpoint {
    pub(crate) fn set(&self, hook: Arc<Interrupt>) {
        let _ = self.0.set(hook);
    }

    pub(crate) fn check(&self) -> Result<()> {
        match self.0.get() {
            Some(hook) => hook().map_err(Error::Interrupted),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Checkpoint(set)"
        } else {
            "Checkpoint(unset)"
        })
    }
}
